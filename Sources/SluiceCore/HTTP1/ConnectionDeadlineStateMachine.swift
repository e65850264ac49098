public import NIOCore

/// What a connection waits for, with its deadline.
public enum ConnectionDeadline: Sendable, Equatable {
    case none
    /// The first request head (`headerReadTimeout`: 408 when it passes).
    case firstHead(NIODeadline)
    /// The next request on a kept-alive connection (`idleTimeout`: closed when it passes).
    case idle(NIODeadline)
    /// The upstream's response head (`upstreamTimeout`: 504 UT when it passes).
    case response(NIODeadline, TimeAmount)

    @inlinable
    public var instant: NIODeadline? {
        switch self {
        case .none: return nil
        case .firstHead(let at), .idle(let at), .response(let at, _): return at
        }
    }
}

/// A connection's one deadline and its one timer, as a state machine: events in (a deadline
/// set or cleared, the timer firing at a time the caller reads from its clock), actions out
/// (arm the timer, the deadline expired). No clock and no timer of its own, so it is tested
/// with plain `NIODeadline`s and a handler on an `EmbeddedEventLoop` moves it with
/// `advanceTime` (the shape of Hummingbird's clock-injected connection state).
///
/// The timer is re-armed lazily: a deadline moved later (every request moves one) costs no
/// timer; the timer, when it fires before the deadline, asks to be armed again.
public struct ConnectionDeadlineStateMachine: Sendable {
    /// What the caller does after `set`.
    public enum SetAction: Sendable, Equatable {
        /// The armed timer fires early enough (or there is no deadline): nothing.
        case none
        /// Cancel the armed timer (if any) and arm one for this instant.
        case arm(NIODeadline)
    }

    /// What the caller does when its timer fired.
    public enum FiredAction: Sendable, Equatable {
        /// No deadline any more: nothing.
        case none
        /// The deadline moved later: arm the timer again for this instant.
        case arm(NIODeadline)
        /// This deadline passed (it is cleared now): act on it.
        case expired(ConnectionDeadline)
    }

    @inlinable public var deadline: ConnectionDeadline { self._deadline }
    @usableFromInline var _deadline: ConnectionDeadline = ConnectionDeadline.none
    /// When the armed timer fires; nil when none is armed.
    @usableFromInline
    var timerFiresAt: NIODeadline?

    public init() {}

    /// Waits for `deadline` from now on (replacing what was waited for).
    @inlinable
    public mutating func set(_ deadline: ConnectionDeadline) -> SetAction {
        self._deadline = deadline
        guard let at = deadline.instant else { return .none }
        if let firesAt = self.timerFiresAt, firesAt <= at { return .none }
        self.timerFiresAt = at
        return .arm(at)
    }

    /// Nothing is waited for (a request head arrived, a tunnel took the connection). An armed
    /// timer is left to fire and find nothing.
    @inlinable
    public mutating func clear() {
        self._deadline = .none
    }

    /// The armed timer fired; `now` is the clock's reading.
    public mutating func timerFired(now: NIODeadline) -> FiredAction {
        self.timerFiresAt = nil
        guard let at = self.deadline.instant else { return .none }
        if now < at {
            self.timerFiresAt = at
            return .arm(at)
        }
        let expired = self.deadline
        self._deadline = .none
        return .expired(expired)
    }

    /// The timer was cancelled (the handler left its pipeline).
    public mutating func timerCancelled() {
        self.timerFiresAt = nil
    }
}

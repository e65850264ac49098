/// "Hold reads, then replay" for a handler that applies backpressure: a `read()` that comes
/// while the handler cannot take more is kept, and issued once the wait is over. The caller
/// says whether it must wait (`held`); this remembers the kept read.
///
/// Used by the HTTP proxy's two handlers (a pipelined request waiting its turn, an upstream
/// being dialled or not writable, a downstream not writable), by the glue of a tunnel (its
/// partner not writable) and by the HTTP/2 stream relays (the other side's stream not writable).
public struct ReadHoldStateMachine: Sendable {
    /// What to do with a `read()`.
    public enum ReadAction: Sendable, Equatable {
        /// Pass it on now.
        case read
        /// Kept: `resume` issues it later.
        case hold
    }

    @inlinable public var readPending: Bool { self._readPending }
    @usableFromInline var _readPending: Bool = false

    public init() {}

    /// A `read()` came; `held`: the handler cannot take more now.
    @inlinable
    public mutating func read(held: Bool) -> ReadAction {
        if held {
            self._readPending = true
            return .hold
        }
        return .read
    }

    /// The cause of a hold may be gone (`held` is the state now): true when a kept read must
    /// be issued now.
    @inlinable
    public mutating func resume(held: Bool) -> Bool {
        guard self.readPending, !held else { return false }
        self._readPending = false
        return true
    }
}

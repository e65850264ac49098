import NIOCore
import NIOPosix
import SluiceCore

/// A connection handler's deadline on its event loop's `LoopTimers`.
protocol LoopTimerHandler: AnyObject {
    /// The deadline passed (called on the event loop, once, unless cancelled before).
    func loopTimerFired()
}

/// One pending deadline: cancel it with `cancel()`.
struct LoopTimer {
    fileprivate let timers: LoopTimers
    fileprivate let handle: DeadlineHeap.Handle

    /// Cancels the deadline if it has not fired; a no-op after it did.
    func cancel() {
        self.timers.cancel(self.handle)
    }
}

/// The per-connection deadlines of one event loop (the sniff timeout, the HTTP handler's
/// header-read, response and idle deadlines) behind one NIO timer armed for the earliest.
///
/// NIO's own scheduled callbacks cost ~4.5k instructions to arm and ~5.5k to cancel (its heap
/// finds a cancelled task by a linear search and copies entries holding existentials, and
/// `assumeIsolated()` goes through a generic wrapper whose metadata is looked up at run
/// time), and a new connection armed and cancelled two. Here arming and cancelling is an
/// O(log n) step on a heap of integers (`DeadlineHeap`). The NIO timer is re-armed only when
/// a new deadline is earlier than the one it is armed for; a cancelled earliest deadline leaves
/// it armed, to fire early, find nothing due and re-arm for what is then the earliest.
///
/// Deadlines are read on the loop's own clock (`EventLoop.now`), so an `EmbeddedEventLoop`'s
/// `advanceTime` moves them in tests. One instance per event loop (`on(_:)`), used only on
/// that loop's thread.
final class LoopTimers: NIOScheduledCallbackHandler, @unchecked Sendable {
    // @unchecked: used only on `eventLoop`'s thread, reached through that thread's variable.
    private static let perThread = ThreadSpecificVariable<Registry>()

    /// The loops of one thread: one in production (a thread per event loop); tests run
    /// several `EmbeddedEventLoop`s on one thread. @unchecked: reached only through its
    /// thread's variable.
    private final class Registry: @unchecked Sendable {
        var timers: [LoopTimers] = []
    }

    let eventLoop: any EventLoop
    private var heap = DeadlineHeap()
    /// Per heap slot, whom its deadline calls.
    private var handlers: [(any LoopTimerHandler)?] = []
    /// The NIO timer and when it fires.
    private var armed: (callback: NIOScheduledCallback, at: NIODeadline)?
    /// Deadlines are being fired: the NIO timer is re-armed once, after.
    private var firing = false

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The timers of `eventLoop`, on its thread.
    static func on(_ eventLoop: any EventLoop) -> LoopTimers {
        let registry: Registry
        if let existing = perThread.currentValue {
            registry = existing
        } else {
            registry = Registry()
            perThread.currentValue = registry
        }
        for timers in registry.timers where timers.eventLoop === eventLoop { return timers }
        // Loops that ended (tests) and have nothing pending are dropped.
        if registry.timers.count >= 8 { registry.timers.removeAll { $0.heap.count == 0 } }
        let timers = LoopTimers(eventLoop: eventLoop)
        registry.timers.append(timers)
        return timers
    }

    /// Calls `handler.loopTimerFired()` at `deadline`, unless the returned timer is cancelled first.
    func schedule(at deadline: NIODeadline, _ handler: any LoopTimerHandler) -> LoopTimer {
        let handle = self.heap.insert(deadline.uptimeNanoseconds)
        if handle.slot == self.handlers.count {
            self.handlers.append(handler)
        } else {
            self.handlers[handle.slot] = handler
        }
        if !self.firing { self.arm(for: deadline) }
        return LoopTimer(timers: self, handle: handle)
    }

    fileprivate func cancel(_ handle: DeadlineHeap.Handle) {
        if self.heap.cancel(handle) { self.handlers[handle.slot] = nil }
    }

    /// Arms the NIO timer for `deadline` unless it fires earlier already.
    private func arm(for deadline: NIODeadline) {
        if let armed = self.armed {
            if armed.at <= deadline { return }
            armed.callback.cancel()
        }
        do {
            self.armed = (try self.eventLoop.scheduleCallback(at: deadline, handler: self), deadline)
        } catch {
            // The loop is shutting down: its connections are closed with it.
            self.armed = nil
        }
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        self.armed = nil
        self.firing = true
        let now = self.eventLoop.now.uptimeNanoseconds
        while let slot = self.heap.popExpired(now: now) {
            let handler = self.handlers[slot]
            self.handlers[slot] = nil
            handler?.loopTimerFired()
        }
        self.firing = false
        if let next = self.heap.earliest { self.arm(for: NIODeadline.uptimeNanoseconds(next)) }
    }
}

import Foundation
import NIOConcurrencyHelpers
import NIOCore
public import SluiceCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an access log could not be set up.
public struct AccessLogWriterError: Error, CustomStringConvertible, Sendable {
    /// The configured `accessLog.path`.
    public let path: String
    /// The `errno` from `open(2)`.
    public let errno: Int32

    /// One line for the user: which file and why.
    public var description: String {
        "cannot open access log \(path): \(String(cString: strerror(errno)))"
    }
}

/// Writes access-log lines to a file or stdout/stderr without ever blocking the event loop.
///
/// `write(_:)` encodes the record on the calling thread and appends the bytes to a bounded
/// in-memory queue; one dedicated thread drains the queue with `write(2)`, so a slow disk or a
/// stalled stdout pipe costs memory up to `maxPendingBytes`, never latency. Past that bound
/// lines are dropped and counted in `droppedLines` (availability before completeness, as a
/// sidecar must). Whatever was queued before `shutdown()` is written before it returns.
public final class AccessLogWriter: Sendable {
    /// Default bound on bytes queued and not yet written (about 10k–20k lines).
    public static let defaultMaxPendingBytes = 8 << 20

    /// The configured path (`/dev/stdout`, `/dev/stderr` or a file).
    public let path: String
    /// Line format.
    public let format: AccessLogFormat
    /// Bound on queued bytes before lines are dropped.
    public let maxPendingBytes: Int

    private let queue: LineQueue
    /// Set once the drain thread has exited; `shutdown()` waits on it.
    private let drained = ConditionLock(value: false)

    /// Opens the log and starts its writer thread.
    ///
    /// `/dev/stdout` and `/dev/stderr` write to fds 1 and 2 (no reopen, so a container's log
    /// pipe is used as given); any other path is opened `O_WRONLY|O_APPEND|O_CREAT`, mode 0644.
    /// Throws `AccessLogWriterError` when the file cannot be opened.
    public init(path: String, format: AccessLogFormat, maxPendingBytes: Int = AccessLogWriter.defaultMaxPendingBytes) throws {
        let fd: CInt
        let ownsFD: Bool
        switch path {
        case "/dev/stdout":
            (fd, ownsFD) = (STDOUT_FILENO, false)
        case "/dev/stderr":
            (fd, ownsFD) = (STDERR_FILENO, false)
        default:
            let opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard opened >= 0 else { throw AccessLogWriterError(path: path, errno: errno) }
            (fd, ownsFD) = (opened, true)
        }
        self.path = path
        self.format = format
        self.maxPendingBytes = max(0, maxPendingBytes)
        self.queue = LineQueue(fd: fd, ownsFD: ownsFD)

        let queue = self.queue
        let drained = self.drained
        let thread = Thread {
            queue.drainUntilShutdown()
            drained.lock()
            drained.unlock(withValue: true)
        }
        thread.name = "sluice-access-log"
        thread.start()
    }

    deinit {
        // A writer dropped without shutdown() still flushes and releases its thread and fd.
        shutdown()
    }

    /// Queues one record; never blocks on I/O. Dropped (and counted) when the queue is full
    /// or the writer has shut down.
    public func write(_ record: AccessLogRecord) {
        queue.append(record, format: format, maxPendingBytes: maxPendingBytes)
    }

    /// Lines dropped so far: queue full, written after shutdown, or lost to a write error.
    public var droppedLines: UInt64 {
        queue.droppedLines
    }

    /// Writes everything queued, stops the writer thread and closes the file. Idempotent;
    /// blocks until the queue is on disk, so call it from shutdown code, not an event loop.
    public func shutdown() {
        queue.requestShutdown()
        drained.lock(whenValue: true)
        drained.unlock()
        queue.closeFileOnce()
    }
}

/// The queue between event loops and the writer thread, with its file descriptor.
///
/// `@unchecked Sendable`: every mutable field is touched only while holding `condition`
/// (whose value is true when there are lines to write or a shutdown to act on), except
/// `spare`, which only the writer thread uses.
private final class LineQueue: @unchecked Sendable {
    private let fd: CInt
    private let ownsFD: Bool
    private let condition = ConditionLock(value: false)

    // Guarded by `condition`.
    private var pending = ByteBufferAllocator().buffer(capacity: 64 << 10)
    private var pendingLines = 0
    private var dropped: UInt64 = 0
    private var shuttingDown = false
    private var closed = false
    /// The second last formatted for a line's start time.
    private var timestamps = RFC3339.SecondCache()

    // Writer thread only.
    private var spare = ByteBufferAllocator().buffer(capacity: 64 << 10)

    /// Capacity a drained buffer may keep; a burst past this gives its memory back.
    private static let retainedCapacity = 1 << 20
    /// Queued bytes that wake the writer before its timer does.
    private static let wakeThreshold = 64 << 10
    /// How long a line may wait in the queue: the writer's own wake-up period.
    private static let flushInterval = 0.1

    init(fd: CInt, ownsFD: Bool) {
        self.fd = fd
        self.ownsFD = ownsFD
    }

    var droppedLines: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return dropped
    }

    func append(_ record: AccessLogRecord, format: AccessLogFormat, maxPendingBytes: Int) {
        condition.lock()
        guard !shuttingDown, pending.readableBytes < maxPendingBytes else {
            dropped += 1
            condition.unlock()
            return
        }
        // Encoding straight into the queue costs no intermediate buffer; it takes about a
        // microsecond, short enough to hold the lock for.
        let mark = pending.writerIndex
        record.appendLine(format: format, to: &pending, timestamps: &timestamps)
        if pending.readableBytes > maxPendingBytes {
            pending.moveWriterIndex(to: mark)
            dropped += 1
            condition.unlock()
            return
        }
        pendingLines += 1
        // Wake the writer only when a batch has built up: it also wakes by itself every
        // `flushInterval`. A wake per line (or per idle → busy edge, which under steady load
        // is nearly every line) put a thread switch on every request's path.
        if pending.readableBytes >= Self.wakeThreshold, pending.readableBytes - (pending.writerIndex - mark) < Self.wakeThreshold {
            condition.unlock(withValue: true)
        } else {
            condition.unlock()
        }
    }

    func requestShutdown() {
        condition.lock()
        shuttingDown = true
        condition.unlock(withValue: true)
    }

    /// The writer thread's loop: take everything queued, write it outside the lock, repeat
    /// until a shutdown has been seen with the queue empty.
    func drainUntilShutdown() {
        while true {
            if !condition.lock(whenValue: true, timeoutSeconds: Self.flushInterval) {
                condition.lock()
            }
            swap(&pending, &spare)
            let lines = pendingLines
            pendingLines = 0
            let stop = shuttingDown
            condition.unlock(withValue: false)

            if spare.readableBytes > 0 {
                let lost = writeAll(&spare, lines: lines)
                if lost > 0 {
                    condition.lock()
                    dropped += UInt64(lost)
                    condition.unlock()
                }
            }
            spare.clear()
            if spare.capacity > Self.retainedCapacity {
                spare = ByteBufferAllocator().buffer(capacity: 64 << 10)
            }
            // Appends stop once shuttingDown is set, so the swap above took the last of them.
            if stop { return }
        }
    }

    /// Writes `buffer` fully; returns how many of its `lines` could not be written.
    private func writeAll(_ buffer: inout ByteBuffer, lines: Int) -> Int {
        while buffer.readableBytes > 0 {
            let result = buffer.withUnsafeReadableBytes { bytes in
                write(fd, bytes.baseAddress, bytes.count)
            }
            if result > 0 {
                buffer.moveReaderIndex(forwardBy: result)
                continue
            }
            let error = errno
            if result < 0 && error == EINTR { continue }
            if result < 0 && (error == EAGAIN || error == EWOULDBLOCK) {
                // stdout can be a non-blocking pipe we did not open; wait for it on this
                // thread rather than lose lines.
                var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&descriptor, 1, 100)
                continue
            }
            // ENOSPC, EPIPE, EBADF...: give up on this batch, count what is lost, keep going.
            return buffer.readableBytesView.reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
        }
        return 0
    }

    func closeFileOnce() {
        condition.lock()
        let shouldClose = ownsFD && !closed
        closed = true
        condition.unlock()
        if shouldClose { _ = close(fd) }
    }
}

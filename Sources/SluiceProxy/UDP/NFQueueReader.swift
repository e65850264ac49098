import CNetfilterQueue
import Foundation
import NIOConcurrencyHelpers

/// Reads one NFQUEUE on a thread of its own and answers every packet with a verdict.
///
/// - Copy range 1500 bytes: an IP and UDP header (at most 60 + 8), a DNS query, and a whole
///   QUIC Initial (clients send them in datagrams of 1200 to 1472 bytes, as the path MTU
///   allows); a longer packet is still judged on its headers (the kernel keeps the rest and
///   reinjects the whole packet).
/// - GSO super-packets arrive whole (NFQA_CFG_F_GSO): no segmentation to copy; only headers
///   are read.
/// - Batched: one recv returns as many queued messages as fit in 256 KiB; their verdicts go
///   back in one send. The receive and verdict buffers are allocated once.
/// - Held verdicts: `decide` may hold a packet (a QUIC ClientHello that continues in the next
///   datagram); the kernel keeps it queued until its verdict comes from `due` (polled after
///   every batch and every receive timeout, so at least every 100 ms) or from `send`, which
///   any thread may call.
/// - Stop: `stop()` sets a flag the loop checks at least every 100 ms (a receive timeout);
///   the last `due(closing: true)` gives every held packet its verdict, then closing the
///   socket unbinds the queue, after which the kernel drops (fail-closed) or passes
///   (`--queue-bypass`) what arrives.
final class NFQueueReader: @unchecked Sendable {
    /// What `decide` says about one packet.
    enum PacketVerdict {
        case accept
        case drop
        /// No verdict yet: it comes later, from `due` or `send`.
        case hold
    }

    /// Errors opening the queue.
    struct OpenError: Error, CustomStringConvertible {
        let queue: Int
        let errno: Int32
        var description: String {
            let hint = errno == EPERM ? " (needs CAP_NET_ADMIN)" : errno == EBUSY ? " (another process reads this queue)" : ""
            return "cannot bind NFQUEUE \(queue): \(String(cString: strerror(errno)))\(hint)"
        }
    }

    static let copyRange: UInt32 = 1500
    static let receiveBufferSize = 256 << 10
    static let verdictBufferSize = 64 << 10
    /// How often an idle reader wakes to give held packets whose time ran out their verdict.
    static let receiveTimeoutMilliseconds: Int32 = 100

    let queue: UInt16
    // Touched by the reader thread only, after init; `stopped` is the only shared state.
    private let socket: OpaquePointer
    private let receiveBuffer: UnsafeMutableRawPointer
    private let verdictBuffer: UnsafeMutableRawPointer
    private let stopped = NIOLockedValueBox(false)
    private let finished = ConditionLock(value: false)

    /// Binds the queue; throws when the kernel refuses.
    init(queue: Int, maxQueued: UInt32 = 4096) throws {
        self.queue = UInt16(clamping: queue)
        guard let socket = sluice_nfq_open(
            self.queue, NFQueueReader.copyRange, maxQueued, 4 << 20, NFQueueReader.receiveTimeoutMilliseconds) else {
            throw OpenError(queue: queue, errno: errno)
        }
        self.socket = socket
        self.receiveBuffer = .allocate(byteCount: NFQueueReader.receiveBufferSize, alignment: 16)
        self.verdictBuffer = .allocate(byteCount: NFQueueReader.verdictBufferSize, alignment: 16)
    }

    deinit {
        receiveBuffer.deallocate()
        verdictBuffer.deallocate()
    }

    /// Starts the reader thread. `decide` gets each packet (the network-layer bytes, valid
    /// only during the call, and its id) and says what to do with it; `due` returns the
    /// verdicts of held packets that are ready (with `closing` true, of every held packet).
    func start(
        onError: @escaping @Sendable (String) -> Void,
        decide: @escaping @Sendable (UnsafeRawBufferPointer, UInt32) -> PacketVerdict,
        due: @escaping @Sendable (_ closing: Bool) -> [(id: UInt32, accept: Bool)]
    ) {
        let thread = Thread { [self] in
            self.loop(onError: onError, decide: decide, due: due)
            var length = 0
            for verdict in due(true) { self.put(verdict.id, verdict.accept, &length, onError: onError) }
            self.flush(&length, onError: onError)
            sluice_nfq_close(self.socket)
            self.finished.lock()
            self.finished.unlock(withValue: true)
        }
        thread.name = "sluice-nfqueue-\(queue)"
        thread.start()
    }

    /// Asks the thread to stop and waits until it has closed the queue.
    func stop() {
        stopped.withLockedValue { $0 = true }
        finished.lock(whenValue: true)
        finished.unlock()
    }

    /// Sends verdicts for held packets, from any thread (a socket send of its own, with a
    /// buffer of its own).
    func send(_ verdicts: [(id: UInt32, accept: Bool)], onError: @Sendable (String) -> Void) {
        guard !verdicts.isEmpty else { return }
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 16) { buffer in
            guard let base = buffer.baseAddress else { return }
            var length = 0
            for verdict in verdicts {
                if sluice_nfq_put_verdict(base, buffer.count, &length, queue, verdict.id, verdict.accept ? 1 : 0) < 0 {
                    send(base, &length, onError: onError)
                    _ = sluice_nfq_put_verdict(base, buffer.count, &length, queue, verdict.id, verdict.accept ? 1 : 0)
                }
            }
            send(base, &length, onError: onError)
        }
    }

    private func loop(
        onError: @Sendable (String) -> Void, decide: (UnsafeRawBufferPointer, UInt32) -> PacketVerdict,
        due: (Bool) -> [(id: UInt32, accept: Bool)]
    ) {
        var packet = sluice_nfq_packet()
        while !stopped.withLockedValue({ $0 }) {
            let received = sluice_nfq_receive(socket, receiveBuffer, NFQueueReader.receiveBufferSize)
            var verdictLength = 0
            if received < 0 {
                onError("NFQUEUE \(queue) receive failed: \(String(cString: strerror(errno)))")
            }
            var offset = 0
            while received > 0 {
                let status = sluice_nfq_next(receiveBuffer, Int(received), &offset, &packet)
                if status < 0 { break }
                if status == 0 { continue }
                let bytes = UnsafeRawBufferPointer(start: packet.payload, count: Int(packet.payload_len))
                switch decide(bytes, packet.id) {
                case .accept: put(packet.id, true, &verdictLength, onError: onError)
                case .drop: put(packet.id, false, &verdictLength, onError: onError)
                case .hold: break
                }
            }
            for verdict in due(false) { put(verdict.id, verdict.accept, &verdictLength, onError: onError) }
            flush(&verdictLength, onError: onError)
        }
    }

    /// Adds one verdict to the batch, sending the batch first when it is full.
    private func put(_ id: UInt32, _ accept: Bool, _ length: inout Int, onError: @Sendable (String) -> Void) {
        if sluice_nfq_put_verdict(verdictBuffer, NFQueueReader.verdictBufferSize, &length, queue, id, accept ? 1 : 0) < 0 {
            flush(&length, onError: onError)
            _ = sluice_nfq_put_verdict(verdictBuffer, NFQueueReader.verdictBufferSize, &length, queue, id, accept ? 1 : 0)
        }
    }

    private func flush(_ length: inout Int, onError: @Sendable (String) -> Void) {
        send(verdictBuffer, &length, onError: onError)
    }

    private func send(_ buffer: UnsafeMutableRawPointer, _ length: inout Int, onError: @Sendable (String) -> Void) {
        guard length > 0 else { return }
        if sluice_nfq_send(socket, buffer, length) < 0 {
            onError("NFQUEUE \(queue) verdicts not sent: \(String(cString: strerror(errno)))")
        }
        length = 0
    }
}

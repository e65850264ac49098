import CNetfilterQueue
import Foundation
import NIOConcurrencyHelpers

/// Reads one NFQUEUE on a thread of its own and answers every packet with a verdict.
///
/// - Copy range 1500 bytes: an IP and UDP header (at most 60 + 8), a DNS query, and a QUIC
///   Initial's header with the start of its CRYPTO frame; a longer packet is still judged on
///   its headers (the kernel keeps the rest and reinjects the whole packet).
/// - GSO super-packets arrive whole (NFQA_CFG_F_GSO): no segmentation to copy; only headers
///   are read.
/// - Batched: one recv returns as many queued messages as fit in 256 KiB; their verdicts go
///   back in one send. The receive and verdict buffers are allocated once.
/// - Stop: `stop()` sets a flag the loop checks at least every 200 ms (a receive timeout);
///   closing the socket unbinds the queue, after which the kernel drops (fail-closed) or
///   passes (`--queue-bypass`) what arrives.
final class NFQueueReader: @unchecked Sendable {
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
        guard let socket = sluice_nfq_open(self.queue, NFQueueReader.copyRange, maxQueued, 4 << 20, 200) else {
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
    /// only during the call) and returns true to accept it.
    func start(onError: @escaping @Sendable (String) -> Void, decide: @escaping @Sendable (UnsafeRawBufferPointer) -> Bool) {
        let thread = Thread { [self] in
            self.loop(onError: onError, decide: decide)
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

    private func loop(onError: @Sendable (String) -> Void, decide: (UnsafeRawBufferPointer) -> Bool) {
        var packet = sluice_nfq_packet()
        while !stopped.withLockedValue({ $0 }) {
            let received = sluice_nfq_receive(socket, receiveBuffer, NFQueueReader.receiveBufferSize)
            if received == 0 { continue }
            if received < 0 {
                onError("NFQUEUE \(queue) receive failed: \(String(cString: strerror(errno)))")
                continue
            }
            var offset = 0
            var verdictLength = 0
            while true {
                let status = sluice_nfq_next(receiveBuffer, Int(received), &offset, &packet)
                if status < 0 { break }
                if status == 0 { continue }
                let bytes = UnsafeRawBufferPointer(start: packet.payload, count: Int(packet.payload_len))
                let accept = decide(bytes)
                if sluice_nfq_put_verdict(verdictBuffer, NFQueueReader.verdictBufferSize, &verdictLength, queue, packet.id, accept ? 1 : 0) < 0 {
                    flush(&verdictLength, onError: onError)
                    _ = sluice_nfq_put_verdict(verdictBuffer, NFQueueReader.verdictBufferSize, &verdictLength, queue, packet.id, accept ? 1 : 0)
                }
            }
            flush(&verdictLength, onError: onError)
        }
    }

    private func flush(_ length: inout Int, onError: @Sendable (String) -> Void) {
        guard length > 0 else { return }
        if sluice_nfq_send(socket, verdictBuffer, length) < 0 {
            onError("NFQUEUE \(queue) verdicts not sent: \(String(cString: strerror(errno)))")
        }
        length = 0
    }
}

import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SluiceCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One UDP socket of the DNS proxy and the thread that serves it: the thread blocks in
/// recvmmsg (no epoll, no event-loop turn), answers cache hits in place and sends a batch's
/// answers with one sendmmsg; every other query (a miss, a refusal, anything it cannot answer
/// from the cache) goes to `loop`, where DNSResponder decides and forwards as on TCP, and its
/// reply is sent on this socket from there.
///
/// Nothing is allocated per hit: the receive slots, reply slots, addresses and message
/// headers are allocated once. The hit count goes to the metric once a batch.
///
/// Stop: `stop()` sets a flag and shuts the socket down for reading, which wakes a blocked
/// recvmmsg (it returns an empty datagram); the thread sees the flag and ends, and `stop()`
/// returns once it has. The socket stays open until `close()`, called when no event loop can
/// still send a reply on it.
final class DNSDatagramListener: @unchecked Sendable {
    /// Datagrams read (and answers sent) per system call.
    static let batch = 16
    /// A receive slot: more than a query needs (NIO's former 2 KiB).
    static let querySize = 2048
    /// A reply slot: the largest EDNS answer resolvers send (a larger cached answer takes the
    /// responder's path).
    static let replySize = 4096
    /// MSG_WAITFORONE (linux/socket.h): block for the first datagram only.
    static let waitForOne: Int32 = 0x10000

    let address: SocketAddress
    private let fd: Int32
    private let responder: DNSResponder
    private let loop: any EventLoop
    private let logger: Logger
    // The thread's own, after init.
    private let received: UnsafeMutablePointer<MessageHeader>
    private let sent: UnsafeMutablePointer<MessageHeader>
    private let receiveVectors: UnsafeMutablePointer<iovec>
    private let sendVectors: UnsafeMutablePointer<iovec>
    private let names: UnsafeMutablePointer<sockaddr_storage>
    private let queries: UnsafeMutableRawPointer
    private let replies: UnsafeMutableRawPointer
    private let stopping = NIOLockedValueBox(false)
    /// 1 once the thread has ended.
    private let finished = ConditionLock<Int>(value: 0)
    private let started = NIOLockedValueBox(false)
    private let closed = NIOLockedValueBox(false)

    /// Binds a UDP socket to `host`:`port` (SO_REUSEPORT: one per thread on the same port;
    /// `port` 0 picks one, see `address`); misses are answered on `loop`.
    init(host: String, port: Int, responder: DNSResponder, loop: any EventLoop, logger: Logger) throws {
        guard MessageVectors.available else { throw DNSSocketError(call: "recvmmsg/sendmmsg lookup", errno: ENOSYS) }
        let wanted = try SocketAddress(ipAddress: host, port: port)
        let family = wanted.protocol.rawValue
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DNSSocketError(call: "socket", errno: errno) }
        var one: Int32 = 1
        var failure: DNSSocketError?
        if setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) != 0
            || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) != 0
            || (family == AF_INET6 && setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) != 0) {
            failure = DNSSocketError(call: "setsockopt", errno: errno)
        } else if wanted.withSockAddr({ bind(fd, $0, socklen_t($1)) }) != 0 {
            failure = DNSSocketError(call: "bind \(wanted)", errno: errno)
        }
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        if failure == nil, withUnsafeMutablePointer(to: &bound, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }) != 0 {
            failure = DNSSocketError(call: "getsockname", errno: errno)
        }
        if let failure {
            Glibc.close(fd)
            throw failure
        }
        self.fd = fd
        self.address = (try? Self.socketAddress(bound)) ?? wanted
        self.responder = responder
        self.loop = loop
        self.logger = logger
        let batch = Self.batch
        received = .allocate(capacity: batch)
        sent = .allocate(capacity: batch)
        receiveVectors = .allocate(capacity: batch)
        sendVectors = .allocate(capacity: batch)
        names = .allocate(capacity: batch)
        names.initialize(repeating: sockaddr_storage(), count: batch)
        queries = .allocate(byteCount: batch * Self.querySize, alignment: 16)
        replies = .allocate(byteCount: batch * Self.replySize, alignment: 16)
        for slot in 0..<batch {
            receiveVectors[slot] = iovec(iov_base: queries + slot * Self.querySize, iov_len: Self.querySize)
            sendVectors[slot] = iovec(iov_base: replies + slot * Self.replySize, iov_len: 0)
            received[slot] = MessageHeader(msg_hdr: msghdr(), msg_len: 0)
            sent[slot] = MessageHeader(msg_hdr: msghdr(), msg_len: 0)
        }
    }

    deinit {
        close()
        received.deallocate()
        sent.deallocate()
        receiveVectors.deallocate()
        sendVectors.deallocate()
        names.deallocate()
        queries.deallocate()
        replies.deallocate()
    }

    /// Starts the thread.
    func start() {
        started.withLockedValue { $0 = true }
        let thread = Thread { [self] in
            self.serve()
            self.finished.lock()
            self.finished.unlock(withValue: 1)
        }
        thread.name = "sluice-dns-\(address.port ?? 0)"
        thread.start()
    }

    /// Wakes the thread and waits until it has ended (at once when it never started).
    func stop() {
        stopping.withLockedValue { $0 = true }
        _ = Glibc.shutdown(fd, Int32(SHUT_RD))  // ENOTCONN on UDP, but the reader is woken
        guard started.withLockedValue({ $0 }) else { return }
        finished.lock(whenValue: 1)
        finished.unlock()
    }

    /// Closes the socket (after `stop()`, once no event loop sends on it any more).
    func close() {
        closed.withLockedValue { closed in
            if !closed { Glibc.close(fd) }
            closed = true
        }
    }

    private func serve() {
        let batch = Self.batch
        while true {
            for slot in 0..<batch {
                received[slot].msg_hdr = msghdr(
                    msg_name: UnsafeMutableRawPointer(names + slot), msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size),
                    msg_iov: receiveVectors + slot, msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
                received[slot].msg_len = 0
            }
            let count = MessageVectors.receive(fd, received, UInt32(batch), Self.waitForOne, nil)
            if stopping.withLockedValue({ $0 }) { return }
            guard count > 0 else {
                if count < 0, errno != EINTR {
                    logger.error("DNS: receive on \(address) failed: \(String(cString: strerror(errno)))")
                    if errno == EBADF || errno == ENOTSOCK { return }
                }
                continue
            }
            answer(count)
        }
    }

    /// Answers the `count` datagrams received: hits into the reply slots and out with one
    /// sendmmsg, the rest handed to the loop.
    private func answer(_ count: Int32) {
        let config = responder.runtime.config
        let now = LearnedAddressBook.now()
        var hits = 0
        for slot in 0..<Int(count) {
            let query = UnsafeRawBufferPointer(start: queries + slot * Self.querySize, count: Int(received[slot].msg_len))
            let reply = UnsafeMutableRawBufferPointer(start: replies + slot * Self.replySize, count: Self.replySize)
            guard let length = responder.answerFromCache(query, into: reply, config: config, now: now) else {
                handOff(query, from: names[slot], nameLength: received[slot].msg_hdr.msg_namelen)
                continue
            }
            sendVectors[hits] = iovec(iov_base: reply.baseAddress, iov_len: length)
            sent[hits].msg_hdr = msghdr(
                msg_name: UnsafeMutableRawPointer(names + slot), msg_namelen: received[slot].msg_hdr.msg_namelen,
                msg_iov: sendVectors + hits, msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
            hits += 1
        }
        guard hits > 0 else { return }
        responder.metrics.count(.cache, by: hits)
        var done = 0
        while done < hits {
            let sentNow = MessageVectors.send(fd, sent + done, UInt32(hits - done), 0)
            if sentNow > 0 {
                done += Int(sentNow)
            } else if sentNow < 0, errno == EINTR {
                continue
            } else {
                // The client went away (or a send failed for one datagram): skip it, as UDP would.
                if sentNow < 0 { logger.debug("DNS: reply not sent: \(String(cString: strerror(errno)))") }
                done += 1
            }
        }
    }

    /// A query the cache does not answer: to DNSResponder on the loop, its reply sent from there.
    private func handOff(_ query: UnsafeRawBufferPointer, from name: sockaddr_storage, nameLength: socklen_t) {
        let bytes = Array(query)
        let client = try? Self.socketAddress(name)
        let responder = self.responder
        loop.execute {
            responder.respond(bytes, from: client, on: self.loop).whenSuccess { reply in
                guard let reply else { return }
                self.send(reply, to: name, length: nameLength)
            }
        }
    }

    /// Sends one reply from an event loop (not waiting when the socket's buffer is full).
    private func send(_ reply: [UInt8], to name: sockaddr_storage, length: socklen_t) {
        var name = name
        // Under the lock `close()` takes: never a send on a closed (or reused) descriptor.
        let result = closed.withLockedValue { closed -> Int in
            guard !closed else { return 0 }
            return reply.withUnsafeBytes { bytes in
                withUnsafePointer(to: &name) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, length)
                    }
                }
            }
        }
        if result < 0 { logger.debug("DNS: reply not sent: \(String(cString: strerror(errno)))") }
    }

    /// The address in `storage` (IPv4 or IPv6).
    static func socketAddress(_ storage: sockaddr_storage) throws -> SocketAddress {
        var storage = storage
        return try withUnsafePointer(to: &storage) { pointer in
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET: return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee) }
            case AF_INET6: return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee) }
            default: throw DNSSocketError(call: "address family \(pointer.pointee.ss_family)", errno: EAFNOSUPPORT)
            }
        }
    }
}

/// A socket call of the DNS proxy's UDP listener failed.
struct DNSSocketError: Error, CustomStringConvertible {
    let call: String
    let errno: Int32
    var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Why a name gave no address to dial (Envoy's `DF`, DNS resolution failure).
struct DNSResolutionError: Error, CustomStringConvertible {
    let host: String
    let reason: String
    var description: String { "no address for \(host): \(reason)" }
}

/// Resolves registered host names with the system resolver (so `/etc/hosts` and the pod's
/// resolv.conf apply) and caches the answers, off the event loops.
///
/// getaddrinfo blocks, so it runs on a small thread pool; answers are cached for `ttl`
/// (getaddrinfo reports no TTL) and failures for `negativeTTL`, so a hot host costs a
/// dictionary lookup and a dead resolver cannot pile up threads. The pool's threads start
/// with the first lookup: a proxy whose hosts are all IP addresses or original destinations
/// never has them (each is a stack and a malloc arena of idle memory).
final class DNSResolver: Sendable {
    private struct Entry {
        let addresses: [SocketAddress]
        let failure: String?
        let expires: NIODeadline
    }

    private let pool: NIOThreadPool
    /// Whether `pool` was started (and not yet shut down: then it is never started again).
    private let poolState = NIOLockedValueBox(PoolState.idle)
    private enum PoolState { case idle, started, shutDown }
    private let cache = NIOLockedValueBox<[String: Entry]>([:])
    private let ttl: TimeAmount
    private let negativeTTL: TimeAmount

    init(threads: Int = 2, ttl: TimeAmount = .seconds(30), negativeTTL: TimeAmount = .seconds(2)) {
        self.pool = NIOThreadPool(numberOfThreads: threads)
        self.ttl = ttl
        self.negativeTTL = negativeTTL
    }

    /// Stops the lookup threads.
    func shutdown() {
        let started = self.poolState.withLockedValue { state in
            defer { state = .shutDown }
            return state == .started
        }
        if started { try? self.pool.syncShutdownGracefully() }
    }

    /// Starts the lookup threads on first use; false once shut down.
    private func startPoolIfNeeded() -> Bool {
        self.poolState.withLockedValue { state in
            switch state {
            case .started: return true
            case .shutDown: return false
            case .idle:
                self.pool.start()
                state = .started
                return true
            }
        }
    }

    /// Addresses for `host:port`; IP literals are returned without a lookup.
    func resolve(host: String, port: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[SocketAddress]> {
        if let literal = try? SocketAddress(ipAddress: host, port: port) {
            return eventLoop.makeSucceededFuture([literal])
        }
        let now = NIODeadline.now()
        if let hit = self.cache.withLockedValue({ $0[host] }), hit.expires > now {
            if let failure = hit.failure {
                return eventLoop.makeFailedFuture(DNSResolutionError(host: host, reason: failure))
            }
            return eventLoop.makeSucceededFuture(hit.addresses.map { $0.withPort(port) })
        }
        guard self.startPoolIfNeeded() else {
            return eventLoop.makeFailedFuture(DNSResolutionError(host: host, reason: "the resolver is shut down"))
        }
        return self.pool.runIfActive(eventLoop: eventLoop) { () -> [SocketAddress] in
            let result = Self.getaddrinfo(host: host)
            let now = NIODeadline.now()
            switch result {
            case .success(let addresses):
                self.cache.withLockedValue { $0[host] = Entry(addresses: addresses, failure: nil, expires: now + self.ttl) }
                return addresses.map { $0.withPort(port) }
            case .failure(let error):
                self.cache.withLockedValue {
                    $0[host] = Entry(addresses: [], failure: error.reason, expires: now + self.negativeTTL)
                }
                throw error
            }
        }
    }

    /// One blocking system lookup; IPv4 answers first, as most origins prefer them.
    private static func getaddrinfo(host: String) -> Result<[SocketAddress], DNSResolutionError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var info: UnsafeMutablePointer<addrinfo>?
        let rc = Glibc.getaddrinfo(host, nil, &hints, &info)
        guard rc == 0, let first = info else {
            let reason = String(cString: gai_strerror(rc))
            return .failure(DNSResolutionError(host: host, reason: reason))
        }
        defer { freeaddrinfo(first) }
        var v4: [SocketAddress] = []
        var v6: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let sa = entry.pointee.ai_addr {
                switch Int32(sa.pointee.sa_family) {
                case AF_INET:
                    let addr = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in.self)
                    let address = SocketAddress(addr, host: host)
                    if !v4.contains(address) { v4.append(address) }
                case AF_INET6:
                    let addr = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in6.self)
                    let address = SocketAddress(addr, host: host)
                    if !v6.contains(address) { v6.append(address) }
                default:
                    break
                }
            }
            cursor = entry.pointee.ai_next
        }
        let all = v4 + v6
        if all.isEmpty { return .failure(DNSResolutionError(host: host, reason: "no IPv4 or IPv6 address")) }
        return .success(all)
    }
}

extension SocketAddress {
    /// The same address with another port.
    func withPort(_ port: Int) -> SocketAddress {
        var copy = self
        copy.port = port
        return copy
    }
}

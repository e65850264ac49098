import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceCore

/// Why an upstream gave no answer.
struct DNSForwardError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}

/// Sends a query to the pod's resolvers (resolv.conf's nameservers, in order; the next on a
/// timeout) and returns the answer, with the query's own id. Each event loop keeps a
/// connected UDP socket per resolver (DNSUpstreamSocket: queries in flight told apart by
/// random ids, answers matched by id and question, a new source port every few queries),
/// instead of a socket per query. The sidecar runs as the proxy uid, so these queries are not captured again.
final class DNSForwarder: Sendable {
    let upstreams: [IPAddress]
    let timeout: TimeAmount
    /// The resolvers' port (53; tests use their own).
    let port: Int
    let metrics: DNSMetrics?
    /// Each loop's sockets, by the loop's identity: created on first use, touched on that loop only.
    private let sockets = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<[DNSUpstreamSocket?]>]>([:])

    init(upstreams: [IPAddress], timeout: TimeAmount = .seconds(2), port: Int = 53, metrics: DNSMetrics? = nil) {
        self.upstreams = upstreams
        self.timeout = timeout
        self.port = port
        self.metrics = metrics
    }

    /// The answer to `query` (its bytes, with its id), from the first resolver that answers.
    func forward(_ query: [UInt8], on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        guard loop.inEventLoop else { return loop.flatSubmit { self.forward(query, on: loop) } }
        return attempt(query, index: 0, on: loop)
    }

    private func attempt(_ query: [UInt8], index: Int, on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        guard index < upstreams.count else {
            return loop.makeFailedFuture(DNSForwardError(reason: upstreams.isEmpty ? "no nameserver in resolv.conf" : "no nameserver answered"))
        }
        guard let socket = socket(index, on: loop) else {
            return attempt(query, index: index + 1, on: loop)
        }
        return socket.send(query).flatMapError { _ in
            self.attempt(query, index: index + 1, on: loop)
        }
    }

    /// This loop's socket to upstream `index` (nil for an address that is not one).
    private func socket(_ index: Int, on loop: any EventLoop) -> DNSUpstreamSocket? {
        let key = ObjectIdentifier(loop)
        let bound = sockets.withLockedValue { sockets in
            if let bound = sockets[key] { return bound }
            let made = upstreams.map { upstream in
                (try? SocketAddress(ipAddress: upstream.description, port: port)).map {
                    DNSUpstreamSocket(to: $0, timeout: timeout, on: loop, metrics: metrics)
                }
            }
            let bound = NIOLoopBound(made, eventLoop: loop)
            sockets[key] = bound
            return bound
        }
        return bound.value[index]
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// The address the application dialled before the kernel's REDIRECT rewrote it.
///
/// Envoy's `original_dst` listener filter does the same in about forty lines; so do we.
struct OriginalDestination: Sendable, Hashable {
    let address: SocketAddress
}

/// Why a connection has no usable original destination.
enum OriginalDestinationError: Error, CustomStringConvertible {
    /// The socket is not a kernel socket (tests) or not TCP.
    case unsupported
    /// The address family of the accepted socket is neither IPv4 nor IPv6.
    case unknownFamily

    var description: String {
        switch self {
        case .unsupported: return "socket does not support SO_ORIGINAL_DST"
        case .unknownFamily: return "accepted socket is neither IPv4 nor IPv6"
        }
    }
}

extension OriginalDestination {
    /// `SO_ORIGINAL_DST` from linux/netfilter_ipv4.h.
    static let soOriginalDst: SocketOptionName = 80
    /// `IP6T_SO_ORIGINAL_DST` from linux/netfilter_ipv6/ip6_tables.h (same number, `SOL_IPV6`).
    static let ip6tSoOriginalDst: SocketOptionName = 80

    /// Reads the original destination of an accepted, redirected connection, on its event
    /// loop. NIO answers a socket option there at once, in an already-completed future: the
    /// value is taken from it (a callback added to a fulfilled future runs inline) rather
    /// than chained on, so accepting a connection costs no further futures.
    ///
    /// Kept non-public and non-inlinable: NIO warns that `unsafeGetSocketOption` must not be
    /// called from code that can be specialised across modules.
    static func read(from channel: any Channel) throws -> OriginalDestination {
        guard let provider = channel as? any SocketOptionProvider else {
            throw OriginalDestinationError.unsupported
        }
        switch channel.localAddress {
        case .v4?:
            let future: EventLoopFuture<sockaddr_in> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(IPPROTO_IP),
                name: soOriginalDst
            )
            return OriginalDestination(address: SocketAddress(try Self.value(of: future, on: channel), host: ""))
        case .v6?:
            let future: EventLoopFuture<sockaddr_in6> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(IPPROTO_IPV6),
                name: ip6tSoOriginalDst
            )
            return OriginalDestination(address: SocketAddress(try Self.value(of: future, on: channel), host: ""))
        default:
            throw OriginalDestinationError.unknownFamily
        }
    }

    /// The value of `future`, which NIO completed before returning it (called on the
    /// channel's event loop); a future still pending means the socket gave no answer.
    private static func value<Value>(of future: EventLoopFuture<Value>, on channel: any Channel) throws -> Value {
        channel.eventLoop.preconditionInEventLoop()
        var result: Result<Value, any Error>?
        future.assumeIsolated().whenComplete { result = $0 }
        guard let result else { throw OriginalDestinationError.unsupported }
        return try result.get()
    }
}

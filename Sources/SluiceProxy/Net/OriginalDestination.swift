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

    /// Reads the original destination of an accepted, redirected connection.
    ///
    /// Kept non-public and non-inlinable: NIO warns that `unsafeGetSocketOption` must not be
    /// called from code that can be specialised across modules.
    static func read(from channel: any Channel) -> EventLoopFuture<OriginalDestination> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(OriginalDestinationError.unsupported)
        }
        switch channel.localAddress {
        case .v4?:
            let future: EventLoopFuture<sockaddr_in> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(IPPROTO_IP),
                name: soOriginalDst
            )
            return future.map { OriginalDestination(address: SocketAddress($0, host: "")) }
        case .v6?:
            let future: EventLoopFuture<sockaddr_in6> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(IPPROTO_IPV6),
                name: ip6tSoOriginalDst
            )
            return future.map { OriginalDestination(address: SocketAddress($0, host: "")) }
        default:
            return channel.eventLoop.makeFailedFuture(OriginalDestinationError.unknownFamily)
        }
    }
}

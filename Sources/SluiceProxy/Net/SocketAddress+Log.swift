import NIOCore
import SluiceCore

extension SocketAddress {
    /// `ip:port`, IPv6 as `[ip]:port`: the form Envoy writes in access logs. Formatted from
    /// the address's bytes (NIO's `ipAddress` is glibc's `inet_ntop`, a `sprintf` per IPv4
    /// address, and this runs twice per accepted connection).
    var logDescription: String {
        guard let ip = self.sluiceIPAddress, let port = self.port else { return "-" }
        return ip.endpointText(port: port)
    }

    /// The address as the registry's type, for policy decisions.
    /// Read from the socket address's bytes (no text formatted and parsed back: this runs
    /// for every accepted connection).
    var sluiceIPAddress: IPAddress? {
        switch self {
        case .v4(let address):
            return .v4(UInt32(bigEndian: address.address.sin_addr.s_addr))
        case .v6(let address):
            return withUnsafeBytes(of: address.address.sin6_addr) { IPAddress(bytes: $0) }
        case .unixDomainSocket:
            return nil
        }
    }

    /// Builds a socket address from the registry's address type without any name lookup.
    static func from(_ ip: IPAddress, port: Int) -> SocketAddress? {
        try? SocketAddress(ipAddress: ip.description, port: port)
    }
}

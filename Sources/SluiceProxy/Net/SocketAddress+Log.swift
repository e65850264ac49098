import NIOCore
import SluiceCore

extension SocketAddress {
    /// `ip:port`, IPv6 as `[ip]:port`: the form Envoy writes in access logs.
    var logDescription: String {
        guard let ip = self.ipAddress, let port = self.port else { return "-" }
        if case .v6 = self { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
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

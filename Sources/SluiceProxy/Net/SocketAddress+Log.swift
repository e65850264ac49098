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
    var sluiceIPAddress: IPAddress? {
        self.ipAddress.flatMap { IPAddress($0) }
    }

    /// Builds a socket address from the registry's address type without any name lookup.
    static func from(_ ip: IPAddress, port: Int) -> SocketAddress? {
        try? SocketAddress(ipAddress: ip.description, port: port)
    }
}

import NIOCore
import SluiceCore

extension TCPForwarder {
    /// Closes a connection an AuthorizationPolicy denied (Envoy's network RBAC filter: the
    /// connection is closed without a byte), and logs it with the route it would have taken;
    /// the policy that denied is in the operational log (`GatewayAuthorization`).
    func denyByAuthorization(channel: any Channel, bytesReceived: Int) {
        self.closeDenied(channel: channel, bytesReceived: bytesReceived, flags: [])
    }
}

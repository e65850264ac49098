import NIOCore
import SluiceCore

extension TCPForwarder {
    /// Closes a connection an AuthorizationPolicy denied (Envoy's network RBAC filter: the
    /// connection is closed without a byte), and logs it with the route it would have taken;
    /// the policy that denied is in the operational log (`GatewayAuthorization`).
    func denyByAuthorization(channel: any Channel, bytesReceived: Int) {
        var record = self.record(upstream: nil, upstreamLocal: nil)
        record.bytesReceived = UInt64(bytesReceived)
        record.duration = self.connection.start.millisecondsElapsed
        self.runtime.metrics.denied(self.serverName == nil ? .tcp : .tls)
        self.runtime.metrics.tcpOpened(cluster: self.decision.cluster)
        self.runtime.completedConnection(record)
        channel.close(promise: nil)
    }
}

import NIOCore
import SluiceCore

extension TCPForwarder {
    /// Closes a connection an AuthorizationPolicy denied (Envoy's network RBAC filter: the
    /// connection is closed without a byte), and logs it with the route it would have taken.
    func denyByAuthorization(channel: any Channel, _ denial: AuthorizationDecision, bytesReceived: Int) {
        var record = AccessLogRecord()
        self.connection.start(&record)
        record.responseCode = 0
        record.upstreamCluster = self.decision.cluster
        record.routeName = self.decision.routeName
        record.requestedServerName = self.serverName
        record.bytesReceived = UInt64(bytesReceived)
        record.duration = self.connection.start.millisecondsElapsed
        self.runtime.metrics.denied(self.serverName == nil ? .tcp : .tls)
        self.runtime.metrics.tcpOpened(cluster: self.decision.cluster)
        self.runtime.completedConnection(record)
        channel.close(promise: nil)
    }
}

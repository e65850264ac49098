import Logging
import NIOCore
import SluiceCore

/// Forwards an allowed TLS or opaque-TCP connection: connects upstream, replays the bytes
/// read while sniffing, glues the two channels, and writes one access-log line at the end.
/// A denied one is closed without a byte and logged.
struct TCPForwarder {
    let runtime: ProxyRuntime
    let connection: DownstreamConnection
    let decision: Decision
    let serverName: String?
    let config: ActiveConfig

    /// Closes a denied connection without sending a byte, as Envoy's BlackHoleCluster does.
    func deny(channel: any Channel, bytesReceived: Int) {
        self.runtime.logger.info(
            "denied \(self.serverName.map { "tls \($0)" } ?? "tcp") to \(self.connection.destinationText)",
            metadata: ["reason": "\(self.decision.reason)"]
        )
        self.closeDenied(channel: channel, bytesReceived: bytesReceived, flags: [.noRouteFound])
    }

    /// Logs and counts a denied connection with `flags`, then closes it without a byte.
    func closeDenied(channel: any Channel, bytesReceived: Int, flags: ResponseFlags) {
        var record = self.record(upstream: nil, upstreamLocal: nil)
        record.responseFlags = flags
        record.bytesReceived = UInt64(bytesReceived)
        record.duration = self.connection.start.millisecondsElapsed
        self.runtime.metrics.denied(self.serverName == nil ? .tcp : .tls)
        self.runtime.metrics.tcpOpened(cluster: self.decision.cluster, connection: self.connection)
        self.runtime.completedConnection(record)
        channel.close(promise: nil)
    }

    /// Connects and glues. `buffered` are the bytes already read from the client; the
    /// caller holds downstream reads until `onGlued` runs.
    func forward(
        downstream: any Channel,
        target: UpstreamTarget,
        buffered: ByteBuffer,
        onGlued: @escaping () -> Void
    ) {
        if self.decision.audited {
            self.runtime.metrics.auditDenied(
                self.serverName == nil ? .tcp : .tls, host: self.serverName ?? self.connection.destinationText)
        }
        if let cluster = self.runtime.clusters.state(for: self.decision, route: self.decision.route) {
            // A DestinationRule traffic policy: balanced endpoints, counted connections.
            self.forward(downstream: downstream, target: target, buffered: buffered, cluster: cluster, onGlued: onGlued)
            return
        }
        self.runtime.connector.connect(
            target: target,
            gateway: self.config.gateway,
            tls: self.decision.upstreamTLS,
            eventLoop: downstream.eventLoop,
            connectTimeout: .init(self.config.limits.connectTimeout)
        ) { result in
            switch result {
            case .failure(let failure):
                self.connectFailed(failure, downstream: downstream, buffered: buffered)
            case .success(let upstream):
                self.glue(downstream: downstream, upstream: upstream, buffered: buffered, onGlued: onGlued)
            }
        }
    }

    /// No upstream: logged with the failure's flag, and the app's connection closed.
    func connectFailed(_ failure: UpstreamError, downstream: any Channel, buffered: ByteBuffer) {
        self.runtime.logger.warning(
            "upstream connect failed for \(self.connection.destinationText)",
            metadata: ["error": "\(failure)", "cluster": "\(self.decision.cluster)"]
        )
        var record = self.record(upstream: nil, upstreamLocal: nil)
        record.responseFlags = failure.responseFlag
        if case .overflow = failure {} else { record.upstreamTransportFailureReason = failure.transportFailureReason }
        record.bytesReceived = UInt64(buffered.readableBytes)
        record.duration = self.connection.start.millisecondsElapsed
        self.runtime.metrics.tcpOpened(cluster: self.decision.cluster, connection: self.connection)
        self.runtime.completedConnection(record)
        downstream.close(promise: nil)
    }

    func glue(
        downstream: any Channel,
        upstream: UpstreamConnection,
        buffered: ByteBuffer,
        onGlued: () -> Void
    ) {
        guard downstream.isActive else {
            upstream.channel.close(promise: nil)
            return
        }
        let counters = TransferCounters()
        counters.downstreamBytes = UInt64(buffered.readableBytes)
        let upstreamLocal = upstream.channel.localAddress
        let remote = upstream.remote
        do {
            // A tunnel silent both ways for idleTimeout is closed (Envoy's TCP idle_timeout).
            try GlueHandler.join(
                downstream: downstream,
                upstream: upstream.channel,
                idleTimeout: TimeAmount(self.config.limits.idleTimeout),
                counters: counters
            ) { counters in
                var record = self.record(upstream: remote, upstreamLocal: upstreamLocal)
                if counters.upstreamClosedFirst && counters.upstreamBytes == 0 {
                    record.responseFlags = [.upstreamConnectionTermination]
                }
                record.bytesReceived = counters.downstreamBytes
                record.bytesSent = counters.upstreamBytes
                record.duration = self.connection.start.millisecondsElapsed
                self.runtime.completedConnection(record)
            }
        } catch {
            downstream.close(promise: nil)
            upstream.channel.close(promise: nil)
            return
        }
        if buffered.readableBytes > 0 {
            upstream.channel.writeAndFlush(buffered, promise: nil)
        }
        self.runtime.metrics.tcpOpened(cluster: self.decision.cluster, connection: self.connection)
        GlueHandler.startReading(upstream.channel)
        onGlued()
    }

    /// The fields every TCP record shares.
    private func record(upstream: SocketAddress?, upstreamLocal: SocketAddress?) -> AccessLogRecord {
        var record = AccessLogRecord()
        self.connection.start(&record)
        record.responseCode = 0
        record.upstreamHost = upstream?.logDescription
        record.upstreamLocalAddress = upstreamLocal?.logDescription
        record.upstreamCluster = self.decision.cluster
        record.routeName = self.decision.routeName
        record.requestedServerName = self.serverName
        if self.decision.audited { record.istioPolicyStatus = Decision.auditDeniedStatus }
        return record
    }
}

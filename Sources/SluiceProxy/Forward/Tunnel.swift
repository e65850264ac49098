import NIOCore
import SluiceCore

/// A raw tunnel that follows an HTTP exchange: the app's CONNECT in the sidecar, the
/// gateway's CONNECT listener, an upgraded (101) exchange. The steps they share: the access
/// log's upstream fields, and the splice of the two channels with what each side read past
/// the switch sent first.
enum Tunnel {
    /// Decides a CONNECT to `target` as both CONNECT paths do (the registry by name or
    /// address, on any protocol of that port): the record's cluster and route, the audit mark
    /// and metric; a denial is counted and logged (`source` says whose CONNECT). The target to
    /// dial, or nil when denied (the caller answers 403 with `NR`).
    static func decide(
        connectTo target: Authority,
        runtime: ProxyRuntime,
        config: ActiveConfig,
        record: inout AccessLogRecord,
        source: String
    ) -> UpstreamTarget? {
        let decision = config.policy.decide(tunnelTo: target)
        record.upstreamCluster = decision.cluster
        record.routeName = decision.routeName
        if decision.audited {
            record.istioPolicyStatus = Decision.auditDeniedStatus
            runtime.metrics.auditDenied(.connect, host: target.host)
        }
        guard case .forward(let upstreamTarget) = decision.action else {
            runtime.metrics.denied(.connect)
            runtime.logger.info("denied CONNECT \(record.authority ?? "-")\(source)", metadata: ["reason": "\(decision.reason)"])
            return nil
        }
        return upstreamTarget
    }

    /// The log record's fields for the connection dialled for a tunnel (answered 200).
    static func noteEstablished(_ upstream: UpstreamConnection, in record: inout AccessLogRecord) {
        record.responseCode = 200
        record.upstreamHost = upstream.remote.logDescription
        record.upstreamLocalAddress = upstream.channel.localAddress?.logDescription
    }

    /// Glues `downstream` and `upstream` as raw bytes (`GlueHandler.join`, `onClose` once both
    /// closed), sends first what the HTTP side read past the switch (`fromApp`: the app's
    /// first tunnel bytes; `fromOrigin`: the origin's bytes behind its 101), counted as tunnel
    /// bytes. The caller then takes its HTTP handlers out of the pipelines and turns reading on
    /// for the upstream (`GlueHandler.startReading`: dialled with autoRead off, like every
    /// upstream).
    static func splice(
        downstream: any Channel,
        upstream: any Channel,
        fromApp: ByteBuffer? = nil,
        fromOrigin: ByteBuffer? = nil,
        onClose: @escaping (TransferCounters) -> Void
    ) throws {
        let counters = TransferCounters()
        try GlueHandler.join(downstream: downstream, upstream: upstream, counters: counters, onClose: onClose)
        if let fromApp, fromApp.readableBytes > 0 {
            counters.downstreamBytes &+= UInt64(fromApp.readableBytes)
            upstream.writeAndFlush(fromApp, promise: nil)
        }
        if let fromOrigin, fromOrigin.readableBytes > 0 {
            counters.upstreamBytes &+= UInt64(fromOrigin.readableBytes)
            downstream.writeAndFlush(fromOrigin, promise: nil)
        }
    }
}

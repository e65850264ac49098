import NIOConcurrencyHelpers
import Prometheus
public import SluiceCore

/// The proxy's metrics: Istio's standard request and TCP metrics plus Sluice's own, kept in a
/// Prometheus registry that belongs to this object (no global `MetricsSystem`), so two
/// runtimes in one process each count their own traffic.
///
/// Every recording call is cheap enough for the event loop: counters are atomics, a histogram
/// sample takes that histogram's own short lock, and the series for a request is the one the
/// connection's previous request used (`RequestSeriesMemo`, no lock) or found under a short
/// lock by service, code and flags (the cluster name is parsed and capped once per name, the
/// registry touched once per label set).
///
/// Label values come only from configuration (registered hosts, via the cluster name) and
/// small enums, never from a client's Host, SNI or path; on top of that the number of
/// distinct `destination_service` values is capped at `maxDestinationServices` (the rest
/// report as `other`).
public final class ProxyMetrics: Sendable {
    /// Cap on distinct `destination_service` values, a defence against unbounded series.
    public static let maxDestinationServices = 1000
    /// Cap on distinct `host` values of `sluice_audit_denials_total`: they come from clients.
    public static let maxAuditHosts = 200
    /// Cap on distinct `source_principal` values at the gateway. They come from certificates
    /// the mesh root signed, so this is a defence in depth; past it, `other`.
    public static let maxSourcePrincipals = 1000

    /// Sidecar or gateway; decides the `reporter` label.
    public let role: ProxyRole
    /// Where every series lives; `prometheusText()` renders it.
    let registry: PrometheusCollectorRegistry
    private let reporter: String
    private let sniffCounters: [SniffOutcome: Counter]
    private let deniedCounters: [DeniedProtocol: Counter]
    private let reloadSuccesses: Counter
    private let reloadFailures: Counter
    private let registryEntries: Gauge
    private let registryRejected: Counter
    private let accessLogDroppedLines: Gauge
    private let upstreamConnectDuration: ValueHistogram
    private let table: NIOLockedValueBox<SeriesTable>

    /// Creates the metrics of one proxy process.
    public init(role: ProxyRole) {
        self.role = role
        // Istio: `source` for a client-side proxy. The gateway reports as `gateway` so that
        // its series never add up with the sidecars' in a `reporter="source"` query.
        self.reporter = role == .sidecar ? "source" : "gateway"
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        // The enum-labelled series exist from the start at 0, so `rate()` and alerts see them
        // before the first event.
        var sniff: [SniffOutcome: Counter] = [:]
        for outcome in SniffOutcome.allCases {
            sniff[outcome] = registry.counter(MetricName.sniff, Help.sniff, [(MetricLabel.outcome, outcome.rawValue)])
        }
        self.sniffCounters = sniff
        var denied: [DeniedProtocol: Counter] = [:]
        for kind in DeniedProtocol.allCases {
            denied[kind] = registry.counter(MetricName.denied, Help.denied, [(MetricLabel.protocol, kind.rawValue)])
        }
        self.deniedCounters = denied
        self.reloadSuccesses = registry.counter(MetricName.configReloads, Help.configReloads, [(MetricLabel.result, "success")])
        self.reloadFailures = registry.counter(MetricName.configReloads, Help.configReloads, [(MetricLabel.result, "failure")])
        self.registryEntries = registry.gauge(MetricName.registryServiceEntries, Help.registryEntries)
        self.registryRejected = registry.counter(MetricName.registryRejectedObjects, Help.registryRejected, [])
        self.accessLogDroppedLines = registry.gauge(MetricName.accessLogDroppedLines, Help.accessLogDropped)
        self.upstreamConnectDuration = registry.histogram(MetricName.upstreamConnectDuration, Help.upstreamConnect, [], buckets: MetricBuckets.milliseconds)
        self.auditTable = NIOLockedValueBox(AuditTable(hosts: LabelValueCap(limit: Self.maxAuditHosts)))
        self.retryTable = NIOLockedValueBox(AuditTable(hosts: LabelValueCap(limit: Self.maxDestinationServices)))
        self.table = NIOLockedValueBox(SeriesTable(
            services: LabelValueCap(
                limit: Self.maxDestinationServices,
                fixed: [Decision.passthroughCluster, Decision.blackHoleCluster, MetricLabelValues.unknown]),
            principals: role == .gateway ? LabelValueCap(limit: Self.maxSourcePrincipals, fixed: [MetricLabelValues.unknown]) : nil))
    }

    // MARK: - Recording

    /// One HTTP request finished: counts it and records its duration and body sizes, labelled
    /// by the record's cluster, response code and flags.
    public func requestCompleted(_ record: AccessLogRecord) {
        var memo = RequestSeriesMemo()
        self.requestCompleted(record, memo: &memo)
    }

    /// One HTTP request finished, on a connection that remembers in `memo` which series its
    /// last request was counted in: a keep-alive connection's requests mostly share one.
    public func requestCompleted(_ record: AccessLogRecord, memo: inout RequestSeriesMemo) {
        // Codes outside 0…999 share one key, as they share the `other` label value.
        let code = (0...999).contains(record.responseCode) ? record.responseCode : -1
        let key = ClusterRequestKey(
            cluster: record.upstreamCluster, code: code, flags: record.responseFlags.rawValue,
            peerURISAN: record.downstreamPeerURISAN, mutualTLS: record.downstreamMutualTLS)
        let series: RequestSeries
        if let last = memo.series, memo.key == key {
            series = last
        } else {
            series = self.requestSeries(key)
            memo.key = key
            memo.series = series
        }
        series.requests.increment()
        series.duration.record(Double(max(0, record.duration)))
        series.requestBytes.record(Double(record.bytesReceived))
        series.responseBytes.record(Double(record.bytesSent))
    }

    /// A TCP (TLS or opaque) connection was accepted for `cluster`, from a caller whose
    /// certificate's URI SAN is `peerURISAN` (nil without one) over mutual TLS or not.
    public func tcpOpened(cluster: String, peerURISAN: String?, mutualTLS: Bool) {
        self.tcpSeries(cluster: cluster, source: SourceKey(peerURISAN: peerURISAN, mutualTLS: mutualTLS)).opened.increment()
    }

    /// A TCP connection closed: counts the close (with its flags) and its bytes in each direction.
    public func tcpClosed(_ record: AccessLogRecord) {
        let (series, closed) = self.tcpClosedSeries(
            cluster: record.upstreamCluster, flags: record.responseFlags,
            source: SourceKey(peerURISAN: record.downstreamPeerURISAN, mutualTLS: record.downstreamMutualTLS))
        closed.increment()
        series.sent.increment(by: Int64(clamping: record.bytesSent))
        series.received.increment(by: Int64(clamping: record.bytesReceived))
    }

    /// Protocol detection finished for a captured connection.
    public func sniffed(_ outcome: SniffOutcome) {
        self.sniffCounters[outcome]?.increment()
    }

    /// A request or connection was denied.
    public func denied(_ protocol: DeniedProtocol) {
        self.deniedCounters[`protocol`]?.increment()
    }

    /// Audit mode let through a request or connection that REGISTRY_ONLY would deny; `host` is
    /// the Host, SNI or address it tried.
    public func auditDenied(_ protocol: DeniedProtocol, host: String) {
        let counter = self.auditTable.withLockedValue { table -> Counter in
            let label = table.hosts.admit(host)
            let key = "\(`protocol`.rawValue)|\(label)"
            if let known = table.counters[key] { return known }
            let counter = self.registry.counter(
                MetricName.auditDenials, Help.auditDenials, [(MetricLabel.protocol, `protocol`.rawValue), (MetricLabel.host, label)])
            table.counters[key] = counter
            return counter
        }
        counter.increment()
    }

    /// An upstream connection was established after `milliseconds`.
    public func upstreamConnected(milliseconds: Double) {
        guard milliseconds.isFinite else { return }
        self.upstreamConnectDuration.record(max(0, milliseconds))
    }

    /// A config reload was attempted; a failure kept the last good configuration.
    public func configReloaded(success: Bool) {
        (success ? self.reloadSuccesses : self.reloadFailures).increment()
    }

    /// A load rejected `count` registry objects (each keeps its last good version, if any).
    public func registryRejected(_ count: Int) {
        if count > 0 { self.registryRejected.increment(by: Int64(count)) }
    }

    /// The registry in force now has `entries` ServiceEntries.
    public func registrySize(_ entries: Int) {
        self.registryEntries.set(Double(entries))
    }

    /// The access log has dropped `total` lines since start (the writer's running count).
    public func accessLogDropped(_ total: UInt64) {
        self.accessLogDroppedLines.set(Double(total))
    }

    // MARK: - Rendering

    /// Every series in the Prometheus text exposition format (version 0.0.4).
    public func prometheusText() -> String {
        self.registry.emitToString()
    }

    /// Envoy-like `/stats` text: one `name{labels}: value` line per counter, gauge and
    /// histogram `_count` / `_sum`, sorted. Histogram buckets are left to `/stats/prometheus`,
    /// where a dashboard can use them; on a terminal they are noise.
    public func plainText() -> String {
        Self.plainText(fromPrometheus: self.prometheusText())
    }

    /// Converts exposition text to `/stats` lines; exposed for tests.
    static func plainText(fromPrometheus text: String) -> String {
        var lines: [Substring] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            // `name{labels} value`: the value follows the last space (label values may hold spaces).
            guard let space = line.lastIndex(of: " ") else { continue }
            let series = line[..<space]
            let name = series.prefix { $0 != "{" }
            if name.hasSuffix("_bucket") { continue }
            lines.append(line)
        }
        lines.sort()
        var out = ""
        for line in lines {
            guard let space = line.lastIndex(of: " ") else { continue }
            out += line[..<space]
            out += ": "
            // Gauges and sums come out as `42.0`; Envoy's /stats prints whole numbers bare.
            let value = line[line.index(after: space)...]
            out += value.hasSuffix(".0") ? value.dropLast(2) : value
            out += "\n"
        }
        return out
    }

    // MARK: - Series lookup

    /// The handles of one HTTP label set. A class: the memo hands it out once per request, as
    /// one reference rather than four.
    final class RequestSeries: Sendable {
        let requests: Counter
        let duration: ValueHistogram
        let requestBytes: ValueHistogram
        let responseBytes: ValueHistogram

        init(requests: Counter, duration: ValueHistogram, requestBytes: ValueHistogram, responseBytes: ValueHistogram) {
            self.requests = requests
            self.duration = duration
            self.requestBytes = requestBytes
            self.responseBytes = responseBytes
        }
    }

    private struct RequestKey: Hashable, Sendable {
        let service: String
        let code: Int
        let flags: UInt32
        /// Gateway only; nil on the sidecar, whose series have no source labels.
        let source: SourceIdentityLabels?
    }

    /// A request's series as the record names it: its cluster as it is (a connection's
    /// requests to one host share the decision's string, so comparing is cheap), and its
    /// caller as the connection knows it (one string per connection, likewise).
    struct ClusterRequestKey: Equatable, Sendable {
        let cluster: String?
        let code: Int
        let flags: UInt32
        let peerURISAN: String?
        let mutualTLS: Bool

        var source: SourceKey { SourceKey(peerURISAN: peerURISAN, mutualTLS: mutualTLS) }
    }

    /// The caller as a record names it, before its labels are worked out and capped.
    struct SourceKey: Hashable, Sendable {
        let peerURISAN: String?
        let mutualTLS: Bool
    }

    /// The handles that depend on the destination only.
    private struct TCPSeries: Sendable {
        let opened: Counter
        let sent: Counter
        let received: Counter
    }

    private struct TCPKey: Hashable, Sendable {
        let service: String
        let source: SourceIdentityLabels?
    }

    private struct TCPClosedKey: Hashable, Sendable {
        let service: String
        let flags: UInt32
        let source: SourceIdentityLabels?
    }

    /// Bound on the memo of cluster name → service. Cluster names come from configuration, so
    /// this is never reached in practice; if it is, names past it are parsed again each
    /// time, which gives the same answer.
    static let maxMemoizedClusters = 4 * maxDestinationServices

    private struct AuditTable: Sendable {
        var hosts: LabelValueCap
        var counters: [String: Counter] = [:]
    }
    private let auditTable: NIOLockedValueBox<AuditTable>
    /// `sluice_upstream_retries_total` by cluster (names from configuration, capped).
    private let retryTable: NIOLockedValueBox<AuditTable>

    /// A route's retry policy sent a request again (Envoy's `upstream_rq_retry`).
    public func upstreamRetry(cluster: String) {
        let counter = self.retryTable.withLockedValue { table -> Counter in
            let label = table.hosts.admit(cluster)
            if let known = table.counters[label] { return known }
            let counter = self.registry.counter(MetricName.upstreamRetries, Help.upstreamRetries, [(MetricLabel.cluster, label)])
            table.counters[label] = counter
            return counter
        }
        counter.increment()
    }

    private struct SeriesTable: Sendable {
        var services: LabelValueCap
        /// Cluster name → its admitted `destination_service` (the name's host, or `other`
        /// past the cap). Admission is final either way, so the answer can be kept.
        var serviceByCluster: [String?: String] = [:]
        /// `source_principal` values admitted at the gateway; nil on the sidecar (no source labels).
        var principals: LabelValueCap?
        var sourceByKey: [SourceKey: SourceIdentityLabels] = [:]
        var requests: [RequestKey: RequestSeries] = [:]
        var tcp: [TCPKey: TCPSeries] = [:]
        var tcpClosed: [TCPClosedKey: Counter] = [:]

        /// The caller's labels, capped (gateway), or nil (sidecar).
        mutating func source(_ key: SourceKey) -> SourceIdentityLabels? {
            guard principals != nil else { return nil }
            if let known = sourceByKey[key] { return known }
            var labels = SourceIdentityLabels(peerURISAN: key.peerURISAN, mutualTLS: key.mutualTLS)
            if principals?.admit(labels.principal) == MetricLabelValues.other {
                labels = SourceIdentityLabels(capped: MetricLabelValues.other, securityPolicy: labels.securityPolicy)
            }
            if sourceByKey.count < ProxyMetrics.maxMemoizedClusters {
                sourceByKey[key] = labels
            }
            return labels
        }

        /// The admitted `destination_service` for `cluster`, parsed and capped on first sight.
        mutating func service(cluster: String?) -> String {
            if let known = serviceByCluster[cluster] { return known }
            let service = services.admit(MetricLabelValues.destinationService(cluster: cluster))
            if serviceByCluster.count < ProxyMetrics.maxMemoizedClusters {
                serviceByCluster[cluster] = service
            }
            return service
        }
    }

    private func requestSeries(_ clusterKey: ClusterRequestKey) -> RequestSeries {
        let (key, found) = self.table.withLockedValue { table in
            let key = RequestKey(
                service: table.service(cluster: clusterKey.cluster), code: clusterKey.code, flags: clusterKey.flags,
                source: table.source(clusterKey.source))
            return (key, table.requests[key])
        }
        if let found { return found }
        // First sighting of this label set: create it outside our lock (the registry has its
        // own), then publish. Two threads racing here get the same handles from the registry.
        let labels = self.labels(service: key.service, source: key.source) + [
            (MetricLabel.requestProtocol, "http"),
            (MetricLabel.responseCode, MetricLabelValues.responseCode(key.code)),
            (MetricLabel.responseFlags, MetricLabelValues.responseFlags(ResponseFlags(rawValue: key.flags))),
        ]
        let series = RequestSeries(
            requests: self.registry.counter(MetricName.requestsTotal, Help.requests, labels),
            duration: self.registry.histogram(MetricName.requestDuration, Help.duration, labels, buckets: MetricBuckets.milliseconds),
            requestBytes: self.registry.histogram(MetricName.requestBytes, Help.requestBytes, labels, buckets: MetricBuckets.bytes),
            responseBytes: self.registry.histogram(MetricName.responseBytes, Help.responseBytes, labels, buckets: MetricBuckets.bytes))
        self.table.withLockedValue { $0.requests[key] = series }
        return series
    }

    private func tcpSeries(cluster: String?, source: SourceKey) -> TCPSeries {
        let (key, found) = self.table.withLockedValue { table in
            let key = TCPKey(service: table.service(cluster: cluster), source: table.source(source))
            return (key, table.tcp[key])
        }
        if let found { return found }
        let labels = self.labels(service: key.service, source: key.source) + [(MetricLabel.requestProtocol, "tcp")]
        let series = TCPSeries(
            opened: self.registry.counter(MetricName.tcpConnectionsOpened, Help.tcpOpened, labels),
            sent: self.registry.counter(MetricName.tcpSentBytes, Help.tcpSent, labels),
            received: self.registry.counter(MetricName.tcpReceivedBytes, Help.tcpReceived, labels))
        self.table.withLockedValue { $0.tcp[key] = series }
        return series
    }

    private func tcpClosedSeries(cluster: String?, flags: ResponseFlags, source: SourceKey) -> (TCPSeries, Counter) {
        let series = self.tcpSeries(cluster: cluster, source: source)
        let (key, found) = self.table.withLockedValue { table in
            let key = TCPClosedKey(service: table.service(cluster: cluster), flags: flags.rawValue, source: table.source(source))
            return (key, table.tcpClosed[key])
        }
        if let found { return (series, found) }
        let labels = self.labels(service: key.service, source: key.source) + [
            (MetricLabel.requestProtocol, "tcp"),
            (MetricLabel.responseFlags, MetricLabelValues.responseFlags(flags)),
        ]
        let closed = self.registry.counter(MetricName.tcpConnectionsClosed, Help.tcpClosed, labels)
        self.table.withLockedValue { $0.tcpClosed[key] = closed }
        return (series, closed)
    }

    private func labels(service: String, source: SourceIdentityLabels?) -> [(String, String)] {
        var labels = [
            (MetricLabel.reporter, self.reporter),
            (MetricLabel.destinationService, service),
            (MetricLabel.destinationServiceName, service),
        ]
        if let source {
            labels += [
                (MetricLabel.sourcePrincipal, source.principal),
                (MetricLabel.sourceWorkloadNamespace, source.namespace),
                (MetricLabel.connectionSecurityPolicy, source.securityPolicy),
            ]
        }
        return labels
    }

    /// HELP texts; one per name, as the registry requires every series of a name to share it.
    private enum Help {
        static let requests = "HTTP requests completed."
        static let duration = "HTTP request duration in milliseconds."
        static let requestBytes = "HTTP request body bytes."
        static let responseBytes = "HTTP response body bytes."
        static let tcpOpened = "TCP connections opened."
        static let tcpClosed = "TCP connections closed."
        static let tcpSent = "Bytes sent downstream on TCP connections."
        static let tcpReceived = "Bytes received from downstream on TCP connections."
        static let sniff = "Protocol detection outcomes of captured connections."
        static let denied = "Requests and connections denied by policy."
        static let configReloads = "Config reloads by result; a failure keeps the last good config."
        static let registryEntries = "ServiceEntries in the registry in force."
        static let auditDenials = "Requests and connections REGISTRY_ONLY would deny that audit mode let through."
        static let upstreamRetries = "Requests sent again by a VirtualService route's retry policy (Envoy's upstream_rq_retry)."
        static let registryRejected = "Registry objects rejected by a load; each keeps its last good version where it had one."
        static let accessLogDropped = "Access-log lines dropped because the output could not keep up."
        static let upstreamConnect = "Time to establish an upstream connection in milliseconds."
    }
}

extension PrometheusCollectorRegistry {
    // Sluice's names are fixed strings (Istio's), not assembled from namespace and unit, so
    // each goes in whole as the descriptor's metric name.

    fileprivate func counter(_ name: String, _ help: String, _ labels: [(String, String)]) -> Counter {
        self.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    fileprivate func gauge(_ name: String, _ help: String) -> Gauge {
        self.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
    }

    fileprivate func histogram(_ name: String, _ help: String, _ labels: [(String, String)], buckets: [Double]) -> ValueHistogram {
        let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        // An unlabelled series must be made without labels: a family is either one or the other.
        return labels.isEmpty
            ? self.makeValueHistogram(descriptor: descriptor, buckets: buckets)
            : self.makeValueHistogram(descriptor: descriptor, labels: labels, buckets: buckets)
    }
}

/// Which series a connection's last request was counted in (see
/// `ProxyMetrics.requestCompleted(_:memo:)`); one per connection, used on its event loop.
public struct RequestSeriesMemo: Sendable {
    fileprivate var key: ProxyMetrics.ClusterRequestKey?
    fileprivate var series: ProxyMetrics.RequestSeries?

    public init() {}
}

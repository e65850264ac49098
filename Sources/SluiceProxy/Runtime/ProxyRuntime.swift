public import Logging
import NIOConcurrencyHelpers
import NIOCore
public import SluiceCore

/// The configuration every new connection or request reads: swapped whole on reload, so a
/// request sees one consistent version of it. A class: reading the one in force costs a
/// retain, not a copy of every field.
public final class ActiveConfig: Sendable {
    /// The loaded config and registry.
    public let snapshot: SluiceSnapshot
    /// The decision function built from them.
    public let policy: Policy
    /// The AuthorizationPolicies that select this workload (the gateway enforces them):
    /// those of its namespace and the root namespace whose selector its labels satisfy.
    public let authorization: AuthorizationEvaluator
    /// The learned-address table the policy decides with when the sidecar's DNS proxy sees
    /// the pod's DNS (see `ResolvedNames`); nil otherwise. Kept across reloads.
    public let names: LearnedAddressBook?
    /// Which load this is: a connection may reuse a decision only while this is unchanged.
    /// (A connection's cached decision holds this small token, not the whole configuration,
    /// so an idle connection does not keep a replaced registry alive.)
    let identity = ConfigIdentity()

    /// Builds the policy for a role (the gateway never forwards to another gateway);
    /// `forceAudit` keeps audit mode on whatever the config file says (`--audit`), and
    /// `forceAutoAllocate` `dns.autoAllocate` (`SLUICE_DNS_AUTO_ALLOCATE`, from Istio's
    /// `ISTIO_META_DNS_AUTO_ALLOCATE` at injection). With `names` (the DNS proxy serves this
    /// sidecar), opaque ports of entries without addresses are enforced by the addresses the
    /// pod resolved, and `dns.autoAllocate` allocates.
    public init(
        snapshot: SluiceSnapshot, role: ProxyRole, forceAudit: Bool = false, forceAutoAllocate: Bool = false,
        names: LearnedAddressBook? = nil
    ) {
        var snapshot = snapshot
        if forceAutoAllocate { snapshot.config.dns.autoAllocate = true }
        self.snapshot = snapshot
        var policy = snapshot.policy(role: role, forceAudit: forceAudit)
        if let names, role == .sidecar {
            policy.resolveNames(autoAllocate: snapshot.config.dns.autoAllocate) { names.hostname(for: $0) }
        }
        self.policy = policy
        self.names = names
        self.authorization = AuthorizationEvaluator(
            policies: snapshot.authorizationPolicies, namespace: snapshot.namespace, labels: snapshot.identity.labels)
    }

    var limits: Limits { self.snapshot.config.limits }

    var gateway: EgressGatewayConfig? { self.snapshot.config.egressGateway }
}

/// Compared by reference: one per loaded configuration.
final class ConfigIdentity: Sendable {}

/// Process-wide state shared by all connections: the current config, the access log, the
/// resolver and the logger.
public final class ProxyRuntime: Sendable {
    /// Sidecar or gateway.
    public let role: ProxyRole
    /// Human-readable operational log (stderr).
    public let logger: Logger
    /// Istio-named Prometheus metrics.
    public let metrics: ProxyMetrics
    /// What /healthz/ready answers.
    public let readiness = Readiness()
    /// The run-time log level (admin `/logging`).
    public let logLevel: LogLevelBox
    /// Addresses the pod resolved through the DNS proxy, and from which names (issue 22).
    public let learned: LearnedAddressBook
    let accessLog: AccessLogWriter?
    let resolver: DNSResolver
    let connector: UpstreamConnector
    /// DestinationRule traffic-policy state per cluster (limits, outlier detection, balancing).
    let clusters: ClusterStates
    package let connections = ConnectionTracker()
    /// The mesh certificates (`--certs`), when a listener or the route to the gateway uses mTLS.
    public let certificates: CertificateStore?
    /// Their metrics; nil without certificates.
    let identityMetrics: IdentityMetrics?
    /// AuthorizationPolicy decisions.
    let authorizationMetrics: AuthorizationMetrics
    private let active: NIOLockedValueBox<ActiveConfig>

    /// Creates the runtime with a first, already validated configuration.
    public init(
        role: ProxyRole,
        config: ActiveConfig,
        accessLog: AccessLogWriter?,
        logger: Logger,
        logLevel: LogLevelBox = LogLevelBox(.info),
        certificates: CertificateStore? = nil,
        credentialsDirectory: String? = nil,
        learned: LearnedAddressBook = LearnedAddressBook()
    ) {
        self.learned = learned
        self.certificates = certificates
        self.role = role
        self.logger = logger
        self.logLevel = logLevel
        self.accessLog = accessLog
        self.metrics = ProxyMetrics(role: role)
        self.resolver = DNSResolver()
        self.connector = UpstreamConnector(
            resolver: self.resolver, logger: logger, metrics: self.metrics, certificates: certificates,
            fileContexts: FileTLSContexts(credentialsDirectory: credentialsDirectory))
        let registry = self.metrics.registry
        self.clusters = ClusterStates(metrics: ClusterMetrics(registry: registry), logger: logger)
        self.identityMetrics = certificates.map { _ in IdentityMetrics(registry: registry) }
        self.authorizationMetrics = AuthorizationMetrics(registry: registry)
        self.active = NIOLockedValueBox(config)
        self.metrics.registrySize(config.snapshot.registry.entries.count)
    }

    /// The configuration in force now.
    public var config: ActiveConfig { self.active.withLockedValue { $0 } }

    /// Replaces the configuration; connections already established keep their decision.
    public func update(_ config: ActiveConfig) {
        self.active.withLockedValue { $0 = config }
    }

    /// One HTTP request (or CONNECT answer) is done: its log line and its metrics.
    func completedRequest(_ record: AccessLogRecord) {
        var memo = RequestSeriesMemo()
        var record = record
        self.completedRequest(&record, memo: &memo)
    }

    /// The same, on a connection that remembers its last request's metric series in `memo`.
    /// The record is only read: `inout` lets a caller pass one stored in a class (the
    /// exchange's) in place, where a plain argument is copied, retaining each of its strings.
    func completedRequest(_ record: inout AccessLogRecord, memo: inout RequestSeriesMemo) {
        self.accessLog?.write(record)
        self.metrics.requestCompleted(record, memo: &memo)
    }

    /// One TCP/TLS connection or tunnel is done: its log line and its metrics.
    func completedConnection(_ record: AccessLogRecord) {
        var record = record
        // Issue 22: an opaque connection is logged with the name the pod resolved its address from.
        if record.authority == nil { record.authority = self.learned.hostname(forLogAddress: record.downstreamLocalAddress) }
        self.accessLog?.write(record)
        self.metrics.tcpClosed(record)
    }

    /// Access-log lines dropped because the writer could not keep up.
    var accessLogDropped: UInt64 { self.accessLog?.droppedLines ?? 0 }

    /// Stops background threads and flushes the access log.
    public func shutdown() {
        self.resolver.shutdown()
        self.accessLog?.shutdown()
    }
}

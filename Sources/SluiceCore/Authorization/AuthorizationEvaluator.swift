/// What an AuthorizationPolicy is matched against: one TCP/TLS connection, or one HTTP
/// request on it (`http` set).
public struct AuthorizationRequest: Sendable {
    /// The caller's principal (its SPIFFE ID without `spiffe://`), from a verified client
    /// certificate; nil on plaintext or TLS without mTLS.
    public var principal: String?
    /// The peer's address (`source.ip`, `ipBlocks`).
    public var sourceIP: IPAddress?
    /// The original client (`remoteIpBlocks`): X-Forwarded-For's per Envoy's settings; the
    /// peer address when not known.
    public var remoteIP: IPAddress?
    /// The port the connection arrived on (`destination.port`, `ports`).
    public var destinationPort: Int?
    /// The TLS SNI (`connection.sni`), the inner one for TLS carried inside mTLS.
    public var sni: String?
    /// The HTTP request, for `hosts`, `methods`, `paths` and `request.headers`.
    public var http: HTTP?

    /// One HTTP request's attributes.
    public struct HTTP: Sendable {
        public var host: String
        public var method: String
        /// The path without the query string, as Envoy's RBAC matches `paths`; empty for a
        /// request without one (a CONNECT), which no `paths` entry matches, not even `*`.
        public var path: String
        /// Header names lower-case; repeated headers joined with "," as Envoy presents them.
        public var headers: [String: String]

        public init(host: String, method: String, path: String, headers: [String: String] = [:]) {
            self.host = host
            self.method = method
            self.path = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? path
            self.headers = headers
        }
    }

    public init(
        principal: String? = nil, sourceIP: IPAddress? = nil, remoteIP: IPAddress? = nil, destinationPort: Int? = nil,
        sni: String? = nil, http: HTTP? = nil
    ) {
        self.principal = principal
        self.sourceIP = sourceIP
        self.remoteIP = remoteIP ?? sourceIP
        self.destinationPort = destinationPort
        self.sni = sni
        self.http = http
    }

    /// `source.namespace`: the `ns/<ns>/` part of an Istio principal.
    var sourceNamespace: String? {
        guard let principal else { return nil }
        let parts = principal.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 5, parts[1] == "ns" else { return nil }
        return String(parts[2])
    }
}

/// The outcome of evaluating the policies that apply to a workload.
public struct AuthorizationDecision: Sendable, Equatable {
    /// Whether the traffic may pass.
    public let allowed: Bool
    /// The enforced policy that decided (`ns[ns]-policy[name]-rule[i]`), `none` when the
    /// default deny of ALLOW policies decided, nil when nothing applied.
    public let matchedPolicy: String?
    /// Dry-run policies that would have denied (a DENY's `ns[..]-policy[..]-rule[..]`, or
    /// `none` when the dry-run ALLOW policies together would deny by default), and AUDIT
    /// policies that matched (logged only).
    public let shadowDenied: [String]
    public let audited: [String]

    /// Envoy's `response_code_details` for a denial: `rbac_access_denied_matched_policy[…]`.
    public var responseCodeDetails: String? {
        allowed ? nil : "rbac_access_denied_matched_policy[\(matchedPolicy ?? "none")]"
    }
}

/// Istio's AuthorizationPolicy semantics over Envoy RBAC, for one workload: the policies that
/// select it, DENY before ALLOW, any ALLOW policy making the default deny, AUDIT and dry-run
/// evaluated but not enforced. For TCP traffic (no `http`), a rule with HTTP-only fields
/// (hosts, methods, paths, request.headers) never matches in an ALLOW policy and matches
/// without those fields in a DENY or AUDIT policy, as Istio builds its TCP filter.
public struct AuthorizationEvaluator: Sendable {
    /// The policies that apply to this workload, in load order.
    public let policies: [AuthorizationPolicy]

    /// Istio's default root namespace: its policies without a selector apply mesh-wide.
    public static let defaultRootNamespace = "istio-system"

    /// Keeps the policies that apply to a workload in `namespace` with `labels`: those of its
    /// namespace or of `rootNamespace`, whose selector (if any) its labels satisfy.
    public init(
        policies: [AuthorizationPolicy], namespace: String, labels: [String: String],
        rootNamespace: String = AuthorizationEvaluator.defaultRootNamespace
    ) {
        self.policies = policies.filter { policy in
            guard policy.namespace == namespace || policy.namespace == rootNamespace else { return false }
            guard let selector = policy.selector else { return true }
            return selector.allSatisfy { labels[$0.key] == $0.value }
        }
    }

    /// Whether no policy applies (nothing to evaluate).
    public var isEmpty: Bool { policies.isEmpty }

    /// Evaluates `request`.
    public func authorize(_ request: AuthorizationRequest) -> AuthorizationDecision {
        var shadowDenied: [String] = []
        var audited: [String] = []
        for policy in policies where policy.action == .audit {
            if let rule = Self.firstMatch(policy, request) { audited.append("\(policy.envoyName)-rule[\(rule)]") }
        }
        for policy in policies where policy.action == .deny {
            guard let rule = Self.firstMatch(policy, request) else { continue }
            let name = "\(policy.envoyName)-rule[\(rule)]"
            if policy.dryRun {
                shadowDenied.append(name)
            } else {
                return AuthorizationDecision(allowed: false, matchedPolicy: name, shadowDenied: shadowDenied, audited: audited)
            }
        }
        let allows = policies.filter { $0.action == .allow }
        let enforced = allows.filter { !$0.dryRun }
        // Istio puts every dry-run ALLOW rule into one shadow engine (Envoy's shadow_rules):
        // it denies, by its default deny, only when none of them matches.
        let shadowAllows = allows.filter(\.dryRun)
        if !shadowAllows.isEmpty, !shadowAllows.contains(where: { Self.firstMatch($0, request) != nil }) {
            shadowDenied.append("none")
        }
        guard !enforced.isEmpty else {
            return AuthorizationDecision(allowed: true, matchedPolicy: nil, shadowDenied: shadowDenied, audited: audited)
        }
        for policy in enforced {
            if let rule = Self.firstMatch(policy, request) {
                return AuthorizationDecision(
                    allowed: true, matchedPolicy: "\(policy.envoyName)-rule[\(rule)]", shadowDenied: shadowDenied, audited: audited)
            }
        }
        return AuthorizationDecision(allowed: false, matchedPolicy: nil, shadowDenied: shadowDenied, audited: audited)
    }

    /// The index of the first rule of `policy` that matches, else nil.
    static func firstMatch(_ policy: AuthorizationPolicy, _ request: AuthorizationRequest) -> Int? {
        let tcp = request.http == nil
        for (index, rule) in policy.rules.enumerated() {
            var rule = rule
            if tcp && (rule.to.contains { $0.hasHTTPFields } || rule.when.contains { $0.isHTTPOnly }) {
                // Istio's TCP filter: an ALLOW rule naming HTTP fields is dropped; a DENY
                // (or AUDIT) rule keeps its other fields, so it denies more, never less.
                if policy.action == .allow { continue }
                rule.to = rule.to.map { operation in
                    var operation = operation
                    (operation.hosts, operation.notHosts, operation.methods, operation.notMethods, operation.paths, operation.notPaths) =
                        (nil, nil, nil, nil, nil, nil)
                    return operation
                }
                rule.when.removeAll { $0.isHTTPOnly }
            }
            if matches(rule, request) { return index }
        }
        return nil
    }

    static func matches(_ rule: AuthorizationPolicy.Rule, _ request: AuthorizationRequest) -> Bool {
        (rule.from.isEmpty || rule.from.contains { matches($0, request) })
            && (rule.to.isEmpty || rule.to.contains { matches($0, request) })
            && rule.when.allSatisfy { matches($0, request) }
    }

    static func matches(_ source: AuthorizationPolicy.Source, _ request: AuthorizationRequest) -> Bool {
        field(source.principals, source.notPrincipals, request.principal)
            && field(source.namespaces, source.notNamespaces, request.sourceNamespace)
            && block(source.ipBlocks, source.notIpBlocks, request.sourceIP)
            && block(source.remoteIpBlocks, source.notRemoteIpBlocks, request.remoteIP)
    }

    static func matches(_ operation: AuthorizationPolicy.Operation, _ request: AuthorizationRequest) -> Bool {
        let port = request.destinationPort
        if let ports = operation.ports, !(port.map { ports.contains($0) } ?? false) { return false }
        if let notPorts = operation.notPorts, let port, notPorts.contains(port) { return false }
        let http = request.http
        return field(operation.hosts, operation.notHosts, http.map { Self.hostWithoutPort($0.host) }, caseInsensitive: true)
            && field(operation.methods, operation.notMethods, http?.method)
            && field(operation.paths, operation.notPaths, http.flatMap { $0.path.isEmpty ? nil : $0.path })
    }

    static func matches(_ condition: AuthorizationPolicy.Condition, _ request: AuthorizationRequest) -> Bool {
        let value: String?
        switch condition.key {
        case .requestHeader(let name): value = request.http?.headers[name.lowercased()]
        case .sourcePrincipal: value = request.principal
        case .sourceNamespace: value = request.sourceNamespace
        case .sourceIP: return blockText(condition, request.sourceIP)
        case .remoteIP: return blockText(condition, request.remoteIP)
        case .destinationPort: value = request.destinationPort.map(String.init)
        case .connectionSNI: value = request.sni
        }
        return field(condition.values, condition.notValues, value)
    }

    /// A field with its `not` form: the value must match some of `positive` (when given) and
    /// none of `negative`. An absent value matches no positive list, and no negative one.
    static func field(_ positive: [AuthorizationMatch]?, _ negative: [AuthorizationMatch]?, _ value: String?, caseInsensitive: Bool = false) -> Bool {
        if let positive {
            guard let value, positive.contains(where: { $0.matches(value, caseInsensitive: caseInsensitive) }) else { return false }
        }
        if let negative, let value, negative.contains(where: { $0.matches(value, caseInsensitive: caseInsensitive) }) {
            return false
        }
        return true
    }

    static func block(_ positive: [CIDR]?, _ negative: [CIDR]?, _ address: IPAddress?) -> Bool {
        if let positive {
            guard let address, positive.contains(where: { $0.contains(address) }) else { return false }
        }
        if let negative, let address, negative.contains(where: { $0.contains(address) }) { return false }
        return true
    }

    /// `source.ip` / `remote.ip` conditions take addresses or CIDRs.
    static func blockText(_ condition: AuthorizationPolicy.Condition, _ address: IPAddress?) -> Bool {
        func cidr(_ text: String) -> CIDR? {
            if let block = CIDR(text) { return block }
            guard let ip = IPAddress(text) else { return nil }
            return CIDR(address: ip, prefixLength: ip.isIPv4 ? 32 : 128)
        }
        func cidrs(_ list: [AuthorizationMatch]?) -> [CIDR]? { list.map { $0.compactMap { cidr($0.description) } } }
        return block(cidrs(condition.values), cidrs(condition.notValues), address)
    }

    static func hostWithoutPort(_ host: String) -> String {
        Authority(host)?.host ?? host
    }
}

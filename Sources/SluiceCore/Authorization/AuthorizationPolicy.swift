/// An Istio `AuthorizationPolicy` (security.istio.io/v1, v1beta1), as Envoy's RBAC filter
/// applies it. See istio.io/latest/docs/reference/config/security/authorization-policy/.
public struct AuthorizationPolicy: Sendable, Equatable {
    /// What a matching rule does.
    public enum Action: String, Sendable, Equatable {
        /// Only matching traffic is allowed (once any ALLOW policy applies to a workload).
        case allow = "ALLOW"
        /// Matching traffic is denied; evaluated before ALLOW.
        case deny = "DENY"
        /// Matching traffic is logged as audited; never changes the decision.
        case audit = "AUDIT"
    }

    /// `metadata.namespace` (default `default`).
    public let namespace: String
    /// `metadata.name`.
    public let name: String
    /// `spec.selector.matchLabels`; nil when absent (the whole namespace, or the mesh from
    /// the root namespace).
    public let selector: [String: String]?
    /// `spec.action` (ALLOW when absent).
    public let action: Action
    /// `spec.rules`: a policy with none matches nothing (an ALLOW one then denies all).
    public let rules: [Rule]
    /// The `istio.io/dry-run: "true"` annotation: evaluated and logged, never enforced.
    public let dryRun: Bool
    /// Where it was loaded from.
    public let source: SourceLocation

    /// Creates a policy.
    public init(
        namespace: String, name: String, selector: [String: String]? = nil, action: Action = .allow, rules: [Rule],
        dryRun: Bool = false, source: SourceLocation = SourceLocation(path: "-", line: 1)
    ) {
        self.namespace = namespace
        self.name = name
        self.selector = selector
        self.action = action
        self.rules = rules
        self.dryRun = dryRun
        self.source = source
    }

    /// One rule: matches when some `from` matches (or there is none), some `to` matches (or
    /// there is none) and every `when` holds.
    public struct Rule: Sendable, Equatable {
        public var from: [Source] = []
        public var to: [Operation] = []
        public var when: [Condition] = []

        /// Creates a rule; an empty one matches everything.
        public init(from: [Source] = [], to: [Operation] = [], when: [Condition] = []) {
            self.from = from
            self.to = to
            self.when = when
        }
    }

    /// `rules[].from[].source`: every field given must match (each a list of alternatives).
    public struct Source: Sendable, Equatable {
        public var principals: [AuthorizationMatch]?
        public var notPrincipals: [AuthorizationMatch]?
        public var namespaces: [AuthorizationMatch]?
        public var notNamespaces: [AuthorizationMatch]?
        public var ipBlocks: [CIDR]?
        public var notIpBlocks: [CIDR]?
        public var remoteIpBlocks: [CIDR]?
        public var notRemoteIpBlocks: [CIDR]?

        /// Creates a source that matches everything.
        public init() {}
    }

    /// `rules[].to[].operation`.
    public struct Operation: Sendable, Equatable {
        public var hosts: [AuthorizationMatch]?
        public var notHosts: [AuthorizationMatch]?
        public var ports: [Int]?
        public var notPorts: [Int]?
        public var methods: [AuthorizationMatch]?
        public var notMethods: [AuthorizationMatch]?
        public var paths: [AuthorizationMatch]?
        public var notPaths: [AuthorizationMatch]?

        /// Creates an operation that matches everything.
        public init() {}

        /// It names HTTP-only fields (hosts, methods, paths), which TCP traffic cannot match.
        var hasHTTPFields: Bool {
            hosts != nil || notHosts != nil || methods != nil || notMethods != nil || paths != nil || notPaths != nil
        }
    }

    /// `rules[].when[]`: `key` (a supported attribute) is one of `values` and none of `notValues`.
    public struct Condition: Sendable, Equatable {
        /// The attributes Sluice evaluates.
        public enum Key: Sendable, Equatable {
            case requestHeader(String)
            case sourcePrincipal
            case sourceNamespace
            case sourceIP
            case remoteIP
            case destinationPort
            case connectionSNI
        }
        public var key: Key
        public var values: [AuthorizationMatch]?
        public var notValues: [AuthorizationMatch]?

        /// Creates a condition.
        public init(key: Key, values: [AuthorizationMatch]? = nil, notValues: [AuthorizationMatch]? = nil) {
            self.key = key
            self.values = values
            self.notValues = notValues
        }

        var isHTTPOnly: Bool {
            if case .requestHeader = key { return true }
            return false
        }
    }

    /// Envoy's name for the policy in RBAC logs and `response_code_details`.
    public var envoyName: String { "ns[\(namespace)]-policy[\(name)]" }
}

/// Istio's string match: exact, prefix (`abc*`), suffix (`*abc`) or presence (`*`).
public enum AuthorizationMatch: Sendable, Equatable, CustomStringConvertible {
    case exact(String)
    case prefix(String)
    case suffix(String)
    case any

    /// Reads Istio's notation.
    public init(_ text: String) {
        if text == "*" {
            self = .any
        } else if text.hasPrefix("*") {
            self = .suffix(String(text.dropFirst()))
        } else if text.hasSuffix("*") {
            self = .prefix(String(text.dropLast()))
        } else {
            self = .exact(text)
        }
    }

    /// Whether `value` matches; `caseInsensitive` for hosts.
    public func matches(_ value: String, caseInsensitive: Bool = false) -> Bool {
        let value = caseInsensitive ? value.lowercased() : value
        switch self {
        case .any: return true
        case .exact(let s): return value == (caseInsensitive ? s.lowercased() : s)
        case .prefix(let s): return value.hasPrefix(caseInsensitive ? s.lowercased() : s)
        case .suffix(let s): return value.hasSuffix(caseInsensitive ? s.lowercased() : s)
        }
    }

    public var description: String {
        switch self {
        case .any: "*"
        case .exact(let s): s
        case .prefix(let s): s + "*"
        case .suffix(let s): "*" + s
        }
    }
}

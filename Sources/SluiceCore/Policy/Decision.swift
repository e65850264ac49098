/// Which process decides. It decides how a denial is answered, and whether there is an
/// original destination to pass traffic to.
public enum ProxyRole: String, Sendable {
    /// The per-pod outbound interceptor: denial is 502 (HTTP) or a closed connection.
    case sidecar
    /// The egress gateway: denial is 404 with `NR` (HTTP), 403 (CONNECT) or a closed connection.
    case gateway
}

/// What the sniffer learned about a connection: the input to `Policy.decide`.
public enum TrafficKind: Sendable, Equatable {
    /// An HTTP/1.x request; its authority (Host, or the absolute-form target's).
    case http(Authority)
    /// A TLS connection; `serverName` is the ClientHello's SNI, if it had one.
    case tls(serverName: String?)
    /// Anything else: bytes that are neither HTTP nor TLS, or that did not arrive in time.
    case tcp
}

/// One outbound connection (or HTTP request) as the policy sees it.
public struct ConnectionFacts: Sendable {
    /// What the first bytes showed.
    public var kind: TrafficKind
    /// The address the client dialed (`SO_ORIGINAL_DST`); at the gateway, its own listener's.
    public var destination: IPAddress
    /// The port the client dialed; registry ports are matched against this. A Host that names
    /// another port matches nothing, as Istio's route domains (`host`, `host:port`) do.
    public var port: Int

    /// The request beyond its authority (method, path, headers), when the caller has it:
    /// VirtualService http matches on `uri`, `method` and `headers` look at it. Without it
    /// such conditions do not match (see `Decision.dependsOnlyOnAuthority`).
    public var request: HTTPRequestView?

    /// A decision this connection made for an earlier request with the same authority, port,
    /// destination and configuration (the caller's promise). When this request takes the same
    /// route to the same destination (`Decision.routeKey`), that decision is returned as it is
    /// instead of being built again: with many routes, building it cost more than matching.
    public var previous: Decision?

    /// Creates facts.
    public init(kind: TrafficKind, destination: IPAddress, port: Int, request: HTTPRequestView? = nil, previous: Decision? = nil) {
        self.kind = kind
        self.destination = destination
        self.port = port
        self.request = request
        self.previous = previous
    }
}

/// Which route and destination an HTTP decision took: equal keys under the same authority,
/// port, destination and configuration give the same decision.
public struct RouteKey: Sendable, Equatable {
    /// The VirtualService.
    var virtualService: RoutingObjectID
    /// The route's index in its `http` list, the match item's, the destination's.
    var route: Int
    var match: Int?
    var destination: Int?
}

/// What VirtualService http matches read of a request besides its authority.
public struct HTTPRequestView: Sendable {
    /// The method, as sent (`GET`).
    public var method: String
    /// The path with its query (`/a?b=c`), origin form.
    public var path: String
    /// The path without its query (`/a`): what `uri` matches read, split once per request.
    public let uriPath: Substring
    /// A header's first value by lower-cased name; nil when absent.
    public var header: @Sendable (String) -> String?

    /// Creates a view.
    public init(method: String, path: String, header: @escaping @Sendable (String) -> String? = { _ in nil }) {
        self.method = method
        self.path = path
        self.uriPath = path.utf8.firstIndex(of: UInt8(ascii: "?")).map { path[..<$0] } ?? path[...]
        self.header = header
    }

    /// No request: what deciding by authority alone passes where a view is needed.
    static let empty = HTTPRequestView(method: "", path: "")

    /// A view over a list of header pairs (names compared case-insensitively).
    public init(method: String, path: String, headers: [(String, String)]) {
        let lowered = headers.map { ($0.0.lowercased(), $0.1) }
        self.init(method: method, path: path, header: { name in lowered.first { $0.0 == name }?.1 })
    }
}

/// An immutable reference to a selection, so that `Decision` keeps one pointer for it.
public final class RouteSelectionBox: Sendable {
    /// Read through the box in place: copying a `RouteSelection` out retains each of its
    /// strings, arrays and policies.
    public let selection: RouteSelection
    init(_ selection: RouteSelection) { self.selection = selection }
}

/// The VirtualService route (or Sidecar egressProxy) a decision took, with everything the
/// data path applies on top of the destination, as plain values.
public struct RouteSelection: Sendable, Equatable {
    /// The VirtualService; nil for a Sidecar's egressProxy.
    public var virtualService: RoutingObjectID?
    /// Where the VirtualService (or Sidecar) was defined.
    public var source: SourceLocation?
    /// http, tls or tcp.
    public var kind: VirtualServiceRoute.Kind
    /// Index of the route in its list (`http[1]`).
    public var index: Int
    /// Index of the match item that matched; nil when the route has no match.
    public var matchIndex: Int?
    /// The destination chosen (by weight, when there are several).
    public var destination: RouteDestination
    /// The matched item's `uri` condition: what `rewrite.uri` replaces (Envoy's prefix_rewrite).
    public var matchedURI: StringMatch?
    /// http behaviours: timeout, retries, header operations, rewrite, redirect, fault.
    public var behaviour: HTTPRouteBehaviour
    /// The DestinationRule's policy for the destination (subset and port settings merged):
    /// connection pool, outlier detection, load balancer, TLS (not applied yet).
    public var trafficPolicy: TrafficPolicy?
    /// The DestinationRule that gave `trafficPolicy`.
    public var destinationRule: RoutingObjectID?

    /// Creates a selection.
    public init(
        virtualService: RoutingObjectID?, source: SourceLocation?, kind: VirtualServiceRoute.Kind, index: Int, matchIndex: Int?,
        destination: RouteDestination, behaviour: HTTPRouteBehaviour = HTTPRouteBehaviour(), trafficPolicy: TrafficPolicy? = nil,
        destinationRule: RoutingObjectID? = nil
    ) {
        self.virtualService = virtualService
        self.source = source
        self.kind = kind
        self.index = index
        self.matchIndex = matchIndex
        self.destination = destination
        self.behaviour = behaviour
        self.trafficPolicy = trafficPolicy
        self.destinationRule = destinationRule
    }

    /// `http[0] match[1]` or `tls[0]`.
    public var position: String { Self.position(kind: kind, index: index, matchIndex: matchIndex) }

    /// `http[0] match[1]` or `tls[0]`.
    public static func position(kind: VirtualServiceRoute.Kind, index: Int, matchIndex: Int?) -> String {
        "\(kind.rawValue)[\(index)]" + (matchIndex.map { " match[\($0)]" } ?? "")
    }
}

/// A host (name or IP) and a port, printed the way logs and CONNECT requests want it.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// A DNS name or an IP address in text form (without brackets).
    public var host: String
    /// The port.
    public var port: Int

    /// Creates a host and port.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// An IP address and port, with the address in canonical text.
    public init(address: IPAddress, port: Int) {
        self.init(host: address.description, port: port)
    }

    /// `host:port`, or `[v6]:port` for an IPv6 address.
    public var description: String {
        // Bytes, not `contains(":")`: that resolves to Foundation's CFString search here.
        host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// Where a forwarded connection goes.
public enum UpstreamTarget: Sendable, Hashable, CustomStringConvertible {
    /// Where the client was going: passthrough, and registered entries with resolution NONE.
    case originalDestination(IPAddress, Int)
    /// Resolve this name and dial the port (resolution DNS / DNS_ROUND_ROBIN without endpoints).
    /// The name is the one the client asked for (the concrete name for a wildcard entry).
    case resolve(host: String, port: Int)
    /// Dial one of these, in order (resolution STATIC, or DNS with endpoints: names to resolve).
    case endpoints([HostPort])
    /// Go through the egress gateway: dial `gatewayPort` on a gateway address; `authority` is
    /// what the gateway should reach (the CONNECT target, or the Host / SNI it routes by).
    case gateway(authority: HostPort, gatewayPort: Int, protocol: EgressGatewayProtocol)

    /// A short human form, for `sluice explain` and debug logs.
    public var description: String {
        switch self {
        case .originalDestination(let address, let port):
            return "original destination \(HostPort(address: address, port: port))"
        case .resolve(let host, let port):
            return "DNS \(HostPort(host: host, port: port))"
        case .endpoints(let endpoints):
            return "endpoints " + endpoints.map(\.description).joined(separator: ", ")
        case .gateway(let authority, let gatewayPort, let proto):
            return "egress gateway port \(gatewayPort) (\(proto.rawValue)) for \(authority)"
        }
    }
}

/// The policy's verdict on one connection or request.
public struct Decision: Sendable, Equatable {
    /// Forward or refuse.
    public enum Action: Sendable, Equatable {
        /// Forward to this upstream.
        case forward(UpstreamTarget)
        /// Refuse, answering as `Decision.denial` says.
        case deny
    }

    /// What a refused client gets.
    public enum Denial: Sendable, Equatable, CustomStringConvertible {
        /// An HTTP response with this status: 502 at the sidecar (Envoy's `block_all`), 404 `NR`
        /// at the gateway, 403 for a CONNECT.
        case httpStatus(Int)
        /// The connection is closed without a byte (BlackHoleCluster).
        case close

        /// `502 Bad Gateway`, or "connection closed without a byte".
        public var description: String {
            switch self {
            case .httpStatus(502): return "502 Bad Gateway"
            case .httpStatus(404): return "404 Not Found (NR)"
            case .httpStatus(403): return "403 Forbidden"
            case .httpStatus(let code): return "\(code)"
            case .close: return "connection closed without a byte"
            }
        }
    }

    /// What to do.
    public var action: Action
    /// Envoy's `upstream_cluster`: `outbound|80||aliyun.com`, `PassthroughCluster` or `BlackHoleCluster`.
    public var cluster: String
    /// Envoy's `route_name`: `allow_any`, `block_all`, or `host:port` of the matched entry host.
    public var routeName: String
    /// The registry match, when the destination is registered.
    public var match: RegistryMatch?
    /// How a `.deny` is answered; `.close` for a forward.
    public var denial: Denial
    /// Audit mode turned this denial into a forward: log and count it as a denial
    /// (`istio_policy_status: audit_denied`), but let it through.
    public var audited: Bool = false
    /// The VirtualService route (or egressProxy) taken, when routing objects decided.
    public var route: RouteSelection? {
        get { routeBox?.selection }
        set { routeBox = newValue.map(RouteSelectionBox.init) }
    }
    /// Boxed: a decision without a route stays as small to copy as it was. The data path
    /// reads the route through the box (`routeBox?.selection.behaviour`), once per request.
    public private(set) var routeBox: RouteSelectionBox?
    /// The route and destination of an HTTP decision routes made (see `ConnectionFacts.previous`).
    public internal(set) var routeKey: RouteKey?
    /// For an HTTP decision that depends on the request: tells whether a later request on the
    /// same authority takes the same route (see `HTTPRequestRouter`).
    public internal(set) var requestRouter: HTTPRequestRouter?
    /// TLS on the upstream connection: the DestinationRule's `tls` for the destination (or
    /// the `egressGateway.tls` shorthand), resolved; nil for plaintext (or the app's own TLS).
    public var upstreamTLS: UpstreamTLS?
    /// The DestinationRule policy of a registered destination no VirtualService routes (a
    /// routed one has it in `route.trafficPolicy`).
    public var clusterPolicy: ClusterPolicy? {
        get { clusterPolicyBox?.value }
        set { clusterPolicyBox = newValue.map(ClusterPolicyBox.init) }
    }
    private var clusterPolicyBox: ClusterPolicyBox?
    /// True when `clusterPolicy` is set (without copying it out).
    public var hasClusterPolicy: Bool { self.clusterPolicyBox != nil }
    /// True when the same authority and port always get this decision: no VirtualService
    /// match on uri, method or headers was consulted, no weighted choice among several
    /// destinations and no fault percentage. The HTTP path may then cache it per authority;
    /// when false it must decide again for every request (with `ConnectionFacts.request`).
    public var dependsOnlyOnAuthority: Bool = true
    /// One sentence saying why, naming the entry (namespace/name, file:line) and the port.
    /// Built on first use: the data path decides every request but reads the reason only
    /// for `sluice explain` and debug logs, and composing it cost more than the lookup.
    public var reason: String {
        get { self.explain() }
        set { self.explain = { newValue } }
    }
    private var explain: @Sendable () -> String

    /// Creates a decision.
    public init(
        action: Action, cluster: String, routeName: String, match: RegistryMatch?, denial: Denial = .close, reason: String
    ) {
        self.init(action: action, cluster: cluster, routeName: routeName, match: match, denial: denial, explain: { reason })
    }

    /// Creates a decision whose reason is composed only when asked for.
    init(
        action: Action, cluster: String, routeName: String, match: RegistryMatch?, denial: Denial = .close,
        explain: @escaping @Sendable () -> String
    ) {
        self.action = action
        self.cluster = cluster
        self.routeName = routeName
        self.match = match
        self.denial = denial
        self.explain = explain
    }

    /// Equal when they act alike and give the same reason.
    public static func == (lhs: Decision, rhs: Decision) -> Bool {
        lhs.action == rhs.action && lhs.cluster == rhs.cluster && lhs.routeName == rhs.routeName
            && lhs.match == rhs.match && lhs.denial == rhs.denial && lhs.audited == rhs.audited && lhs.route == rhs.route
            && lhs.upstreamTLS == rhs.upstreamTLS && lhs.clusterPolicy == rhs.clusterPolicy
            && lhs.reason == rhs.reason
    }

    /// Envoy's cluster for unregistered traffic that is let through.
    public static let passthroughCluster = "PassthroughCluster"
    /// Envoy's cluster for unregistered traffic that is refused.
    public static let blackHoleCluster = "BlackHoleCluster"
    /// Istio's route name for unregistered traffic under ALLOW_ANY.
    public static let allowAnyRoute = "allow_any"
    /// Istio's route name for unregistered traffic under REGISTRY_ONLY.
    public static let blockAllRoute = "block_all"
    /// `istio_policy_status` of a request or connection that audit mode let through.
    public static let auditDeniedStatus = "audit_denied"

    /// True for `.deny`.
    public var isDenied: Bool { action == .deny }
}

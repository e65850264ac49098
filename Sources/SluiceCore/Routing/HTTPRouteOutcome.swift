/// What a VirtualService route's local behaviours make of one request, before any upstream is
/// dialled: a redirect answered with a `Location`, a fault's abort and delay (each for its
/// percentage of requests). Pure: the data path supplies the samples and applies the result.
public enum HTTPRouteOutcome {
    /// A fault's plan for one request: how long to hold it first, and whether to answer it
    /// with a status instead of forwarding it. Envoy's fault filter delays first, then aborts.
    public struct FaultPlan: Sendable, Equatable {
        /// `delay.fixedDelay`, when this request falls within `delay.percentage`.
        public var delay: Duration?
        /// `abort.httpStatus`, when this request falls within `abort.percentage`.
        public var abortStatus: Int?

        public init(delay: Duration? = nil, abortStatus: Int? = nil) {
            self.delay = delay
            self.abortStatus = abortStatus
        }

        /// True when the request is neither delayed nor aborted.
        public var isEmpty: Bool { delay == nil && abortStatus == nil }
    }

    /// Envoy's body for a fault abort (source/extensions/filters/http/fault/fault_filter.cc).
    public static let faultAbortBody = "fault filter abort"

    /// The plan for `fault`, given two samples uniform in `0..<100` (one for the delay, one
    /// for the abort, drawn independently as Envoy's fault filter does). A percentage of 100
    /// always applies, 0 never.
    public static func plan(_ fault: HTTPFault, delaySample: Double, abortSample: Double) -> FaultPlan {
        var plan = FaultPlan()
        if let delay = fault.delay, delaySample < delay.percent { plan.delay = delay.duration }
        if let abort = fault.abort, abortSample < abort.percent { plan.abortStatus = abort.status }
        return plan
    }

    /// The `Location` of a redirect, built as Envoy's route `redirect` action builds it from
    /// the request (scheme, Host and path) and what the route replaces:
    /// - `scheme`: replaces the request's scheme;
    /// - `authority`: replaces the Host (with its port, if it names one);
    /// - `port`: replaces the port (the Host's own is dropped); without it, a Host port that is
    ///   the default of the resulting scheme (`:80` for http, `:443` for https) is dropped;
    /// - `uri`: replaces the path; the request's query string stays unless `uri` has its own.
    public static func location(_ redirect: HTTPRedirect, requestScheme: String, host: String, path: String) -> String {
        let scheme = redirect.scheme ?? requestScheme
        var authority = redirect.authority ?? host
        if let port = redirect.port {
            authority = Self.strippingPort(authority) + ":\(port)"
        } else {
            let defaultPort = scheme == "https" ? ":443" : (scheme == "http" ? ":80" : nil)
            if let defaultPort, authority.hasSuffix(defaultPort), Self.strippingPort(authority) != authority {
                authority = Self.strippingPort(authority)
            }
        }
        var finalPath = path
        if let uri = redirect.uri {
            if uri.contains("?") {
                finalPath = uri
            } else if let query = path.firstIndex(of: "?") {
                finalPath = uri + path[query...]
            } else {
                finalPath = uri
            }
        }
        return "\(scheme)://\(authority)\(finalPath)"
    }

    /// `host` without a trailing `:port` (an IPv6 literal keeps its brackets).
    static func strippingPort(_ host: String) -> String {
        guard let colon = host.lastIndex(of: ":") else { return host }
        if host.hasPrefix("["), let close = host.lastIndex(of: "]"), close > colon { return host }
        let digits = host[host.index(after: colon)...]
        return !digits.isEmpty && digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber) ? String(host[..<colon]) : host
    }
}

/// What an HTTP decision that depends on the request hands the data path: the VirtualService's
/// compiled routes for this authority and port, to tell per request whether the request takes
/// the route an earlier one took — then that earlier decision stands as it is, without
/// deciding again (`ConnectionFacts.previous` is the same rule, inside `Policy.decide`).
///
/// It reads every input a route match reads: the port and authority it was made for (the
/// caller's cache key), and the request's method, path and headers.
public final class HTTPRequestRouter: Sendable {
    let service: RoutingObjectID
    let matcher: HTTPRouteMatcher
    let port: Int
    let authority: Authority

    init(service: RoutingObjectID, matcher: HTTPRouteMatcher, port: Int, authority: Authority) {
        self.service = service
        self.matcher = matcher
        self.port = port
        self.authority = authority
    }

    /// True when `head` takes the same route and match item as `previous` (a decision made
    /// for the same authority, port, destination and configuration) and that route has at
    /// most one destination: `previous` is then this request's decision too.
    public func takesRoute(of previous: Decision, _ head: borrowing HTTP1Head) -> Bool {
        guard let key = previous.routeKey, key.virtualService == service,
              let choice = HTTPMatchInput.with(head, { matcher.firstMatch(port: port, authority: authority, input: $0) })
        else { return false }
        return choice.deterministic && choice.routeIndex == key.route && choice.matchIndex == key.match
    }
}

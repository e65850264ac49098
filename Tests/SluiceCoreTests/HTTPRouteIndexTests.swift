import NIOCore
@testable import SluiceCore
import XCTest

/// The compiled route index (`HTTPRouteMatcher`) against the plain walk it replaces: routes in
/// order, the first match item all of whose conditions hold (VirtualService reference,
/// HTTPMatchRequest: items ORed, conditions ANDed; uri without the query; headers by
/// lower-cased name). Seeded (LearnRegistryTests' SplitMix64), so a failure repeats; the request is given both as a view
/// (HTTP/2, `explain`) and as a parsed HTTP/1 head (the data path's bytes).
final class HTTPRouteIndexTests: XCTestCase {
    typealias Route = (matches: [HTTPMatchRequest], matchIndices: [Int], routeIndex: Int, dependent: Bool, deterministic: Bool)

    /// The plain walk: what Istio's route list means.
    static func linear(_ routes: [Route], port: Int, authority: Authority, request: HTTPRequestView?) -> HTTPRouteMatcher.Choice? {
        for (position, route) in routes.enumerated() {
            let choice = { (match: Int?) in
                HTTPRouteMatcher.Choice(position: position, routeIndex: route.routeIndex, matchIndex: match, deterministic: route.deterministic)
            }
            if route.matches.isEmpty { return choice(nil) }
            for (offset, match) in route.matches.enumerated() where takes(match, port: port, authority: authority, request: request) {
                return choice(route.matchIndices[offset])
            }
        }
        return nil
    }

    static func takes(_ match: HTTPMatchRequest, port: Int, authority: Authority, request: HTTPRequestView?) -> Bool {
        if let wanted = match.port, wanted != port { return false }
        if let rule = match.authority {
            let text = authority.port.map { "\(authority.host):\($0)" } ?? authority.host
            if !rule.matches(text) && !rule.matches(authority.host) { return false }
        }
        guard match.dependsOnRequest else { return true }
        guard let request else { return false }
        if let uri = match.uri, !uri.matches(request.uriPath) { return false }
        if let method = match.method, !method.matches(request.method) { return false }
        for (name, rule) in match.headers {
            guard let value = request.header(name), rule.matches(value) else { return false }
        }
        return true
    }

    typealias Generator = SeededGenerator

    static let uris = ["", "/", "/a", "/ab", "/a/", "/a/b", "/b", "/v1", "/v10", "/api/1", "/%C3"]
    static let regexes = ["/a.*", "/v[0-9]+", ".*b", "/"]
    static let headerNames = ["x-a", "x-b", "x-route"]
    static let headerValues = ["1", "12", "r1", "", "É"]

    static func stringMatch(_ g: inout Generator, _ texts: [String], _ patterns: [String]) -> StringMatch {
        switch g.below(5) {
        case 0, 1: return .exact(g.pick(texts))
        case 2, 3: return .prefix(g.pick(texts))
        default: return StringMatch.regex(g.pick(patterns)) ?? .exact("")
        }
    }

    static func route(_ g: inout Generator, index: Int) -> Route {
        var matches: [HTTPMatchRequest] = []
        for _ in 0..<(g.chance(4) ? 0 : g.pick([1, 1, 1, 2, 3])) {
            var match = HTTPMatchRequest()
            if g.chance(60) { match.uri = stringMatch(&g, uris, regexes) }
            if g.chance(30) { match.method = stringMatch(&g, ["GET", "POST", "get", "P"], ["P.*T", "GET|HEAD"]) }
            for name in headerNames where g.chance(20) { match.headers[name] = stringMatch(&g, headerValues, ["r[0-9]", ".*"]) }
            if g.chance(15) { match.port = g.pick([80, 8080]) }
            if g.chance(8) { match.authority = stringMatch(&g, ["h.example", "h.", "h.example:8080"], ["h\\..*"]) }
            matches.append(match)
        }
        let indices = Array(0..<matches.count).map { $0 * 2 + (index % 2) }  // not 0-based: only some items applied here
        return (matches, indices, index + g.below(2), matches.contains(where: \.dependsOnRequest), g.chance(80))
    }

    struct Request {
        var method: String
        var target: String
        var path: String
        var headers: [(String, String)]
    }

    static func request(_ g: inout Generator) -> Request {
        let path = g.pick(["/", "/a", "/ab", "/a/b", "/a/bc", "/b", "/v1", "/v10/x", "/api/1/2", "/%C3%A9", ""]) + g.pick(["", "", "?q=1", "?/a"])
        let absolute = g.chance(15)
        let target = absolute ? "http://h.example" + path : (path.isEmpty ? "/" : path)
        var headers: [(String, String)] = []
        for name in headerNames + ["X-A", "x-other"] where g.chance(30) { headers.append((name, g.pick(headerValues))) }
        return Request(method: g.pick(["GET", "POST", "PUT", "PATCH", "get"]), target: target, path: HTTP1Head.originPath(target), headers: headers)
    }

    func testTheIndexChoosesAsThePlainWalkOnGeneratedTablesAndRequests() throws {
        var g = Generator(seed: 20)
        var matched = 0
        var compared = 0
        for _ in 0..<150 {
            let routes = (0..<g.pick([1, 3, 10, 50, 70])).map { Self.route(&g, index: $0 * 2) }
            let matcher = HTTPRouteMatcher(routes)
            for _ in 0..<40 {
                let request = Self.request(&g)
                let port = g.pick([80, 8080, 9090])
                let authority = try XCTUnwrap(Authority(g.pick(["h.example", "h.example:8080", "other"])))
                let view = HTTPRequestView(method: request.method, path: request.path, headers: request.headers)
                let expected = Self.linear(routes, port: port, authority: authority, request: view)
                let context = "\(request.method) \(request.target) \(request.headers) port \(port) \(authority) over \(routes.map(\.matches))"
                XCTAssertEqual(HTTPMatchInput.with(view) { matcher.firstMatch(port: port, authority: authority, input: $0) }, expected, context)

                let text = "\(request.method) \(request.target) HTTP/1.1\r\nhost: h.example\r\n"
                    + request.headers.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n"
                let head = try HTTP1Head(parsing: ByteBuffer(string: text), kind: .request)
                XCTAssertEqual(HTTPMatchInput.with(head) { matcher.firstMatch(port: port, authority: authority, input: $0) }, expected, context)
                XCTAssertEqual(Self.linear(routes, port: port, authority: authority, request: head.requestView), expected, context)

                XCTAssertEqual(HTTPMatchInput.withoutRequest { matcher.firstMatch(port: port, authority: authority, input: $0) },
                               Self.linear(routes, port: port, authority: authority, request: nil), context)
                let onPort = routes.filter { $0.matches.isEmpty || $0.matches.contains { $0.port == nil || $0.port == port } }
                XCTAssertTrue(matcher.routes(onPort: port) == (!onPort.isEmpty, onPort.contains(where: \.dependent)), context)

                // The data path's shortcut: an earlier request's decision stands only for the
                // same route and item of a route with one destination.
                let other = Self.request(&g)
                let otherView = HTTPRequestView(method: other.method, path: other.path, headers: other.headers)
                if let earlier = Self.linear(routes, port: port, authority: authority, request: otherView) {
                    let service = RoutingObjectID(kind: "VirtualService", namespace: "ns", name: "vs")
                    var previous = Decision(action: .deny, cluster: "", routeName: "", match: nil, reason: "")
                    previous.routeKey = RouteKey(virtualService: service, route: earlier.routeIndex, match: earlier.matchIndex, destination: 0)
                    let router = HTTPRequestRouter(service: service, matcher: matcher, port: port, authority: authority)
                    let same = expected.map { $0.routeIndex == earlier.routeIndex && $0.matchIndex == earlier.matchIndex && $0.deterministic } ?? false
                    XCTAssertEqual(router.takesRoute(of: previous, head), same, context)
                }
                compared += 1
                if expected != nil { matched += 1 }
            }
        }
        // Both outcomes are well represented, or the comparison says little.
        XCTAssertGreaterThan(matched, compared / 10)
        XCTAssertLessThan(matched, compared * 9 / 10)
    }

    /// The bench's table (Benchmarks/scripts/routes.py): 49 routes `GET /1k` misses, then a
    /// catch-all; a request matching one of the 49 takes it.
    func testTheBenchTableTakesTheCatchAllAndTheRoutesItsRequestsName() {
        let routes: [Route] = (0..<49).map { i in
            var match = HTTPMatchRequest()
            switch i % 3 {
            case 0: match.uri = .prefix("/v\(i)/"); match.method = .exact("POST")
            case 1: match.uri = .prefix("/v\(i)/")
            default: match.headers["x-route"] = .exact("r\(i)")
            }
            return ([match], [0], i, true, true)
        } + [([], [], 49, false, true)]
        let matcher = HTTPRouteMatcher(routes)
        let host = Authority(host: "origin.bench")
        func choose(_ method: String, _ path: String, _ headers: [(String, String)] = []) -> Int? {
            HTTPMatchInput.with(HTTPRequestView(method: method, path: path, headers: headers)) {
                matcher.firstMatch(port: 80, authority: host, input: $0)?.routeIndex
            }
        }
        XCTAssertEqual(choose("GET", "/1k"), 49)
        XCTAssertEqual(choose("GET", "/v1/x"), 1)
        XCTAssertEqual(choose("GET", "/v3/x"), 49, "route 3 wants POST")
        XCTAssertEqual(choose("POST", "/v3/x?y"), 3)
        XCTAssertEqual(choose("GET", "/v4"), 49, "the prefix is /v4/")
        XCTAssertEqual(choose("GET", "/1k", [("X-Route", "r2")]), 2)
        XCTAssertEqual(choose("GET", "/v1/", [("x-route", "r2")]), 1, "the first route in order wins")
    }
}

extension SeededGenerator {
    mutating func below(_ n: Int) -> Int { Int.random(in: 0..<n, using: &self) }
    mutating func pick<T>(_ values: [T]) -> T { values[below(values.count)] }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

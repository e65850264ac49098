import Foundation
public import NIOHTTP1

/// One request to the admin, stats or health server, read whole (they have no real bodies).
public struct AdminRequest: Sendable {
    /// The request method.
    public var method: HTTPMethod
    /// The path, without the query.
    public var path: String
    /// Query parameters, percent-decoded; the last one wins when a name repeats.
    public var query: [String: String]

    /// Splits `uri` (`/logging?level=debug`) into path and query.
    public init(method: HTTPMethod, uri: String) {
        self.method = method
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        self.path = parts.first.map(String.init) ?? "/"
        var query: [String: String] = [:]
        if parts.count == 2 {
            for item in parts[1].split(separator: "&") {
                let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = Self.decode(pair[0])
                query[name] = pair.count == 2 ? Self.decode(pair[1]) : ""
            }
        }
        self.query = query
    }

    /// `+` is a space in a query; a malformed escape is kept as written.
    private static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}

/// A complete answer: status, content type and body.
public struct AdminResponse: Sendable {
    /// The status line's code.
    public var status: HTTPResponseStatus
    /// The `Content-Type` header.
    public var contentType: String
    /// The body.
    public var body: String
    /// Extra headers (`Allow` on a 405).
    public var headers: [(String, String)]

    /// Creates a response.
    public init(status: HTTPResponseStatus, contentType: String = "text/plain; charset=utf-8", body: String, headers: [(String, String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    /// A plain-text answer; a trailing newline is added so curl output ends cleanly.
    public static func text(_ body: String, status: HTTPResponseStatus = .ok) -> AdminResponse {
        AdminResponse(status: status, body: body.hasSuffix("\n") || body.isEmpty ? body : body + "\n")
    }
}

/// One endpoint: a path, the methods it answers, and what it answers.
public struct AdminRoute: Sendable {
    /// The exact path (`/healthz/ready`).
    public var path: String
    /// Methods answered; HEAD is answered wherever GET is.
    public var methods: [HTTPMethod]
    /// One line for the `/` listing.
    public var summary: String
    /// True for work that may take a while (rendering every series or the whole registry):
    /// it runs off the event loop, which keeps serving the proxy's connections meanwhile.
    public var offload: Bool
    /// Builds the answer; must not block.
    public var handler: @Sendable (AdminRequest) -> AdminResponse

    /// Creates a route.
    public init(
        _ path: String,
        methods: [HTTPMethod] = [.GET],
        summary: String,
        offload: Bool = false,
        handler: @escaping @Sendable (AdminRequest) -> AdminResponse
    ) {
        self.path = path
        self.methods = methods
        self.summary = summary
        self.offload = offload
        self.handler = handler
    }
}

/// Maps requests to routes: exact paths, 404 for others, 405 for a method a path does not
/// answer or one these servers never answer.
public struct AdminRouter: Sendable {
    /// What to do with a request.
    public enum Resolution: Sendable {
        /// Answer at once (404, 405).
        case respond(AdminResponse)
        /// Run this route.
        case route(AdminRoute)
    }

    /// Methods any of the servers answer; anything else is refused before routing.
    static let knownMethods: [HTTPMethod] = [.GET, .HEAD, .POST]

    /// The routes, in listing order.
    public let routes: [AdminRoute]

    /// Creates a router over `routes`.
    public init(_ routes: [AdminRoute]) {
        self.routes = routes
    }

    /// Finds the route for `request`, or the error answer.
    public func resolve(_ request: AdminRequest) -> Resolution {
        guard Self.knownMethods.contains(request.method) else {
            return .respond(Self.methodNotAllowed(allowed: Self.knownMethods))
        }
        guard let route = routes.first(where: { $0.path == request.path }) else {
            return .respond(.text("not found: try /", status: .notFound))
        }
        let method = request.method == .HEAD ? HTTPMethod.GET : request.method
        guard route.methods.contains(method) else {
            return .respond(Self.methodNotAllowed(allowed: route.methods.contains(.GET) ? route.methods + [.HEAD] : route.methods))
        }
        return .route(route)
    }

    /// The `/` page: every endpoint and what it does, like Envoy's admin index.
    public func listing() -> String {
        var text = "admin commands are:\n"
        for route in routes {
            text += "  \(route.path): \(route.summary)\n"
        }
        return text
    }

    private static func methodNotAllowed(allowed: [HTTPMethod]) -> AdminResponse {
        let names = allowed.map(\.rawValue).sorted().joined(separator: ", ")
        return AdminResponse(status: .methodNotAllowed, body: "method not allowed\n", headers: [("Allow", names)])
    }
}

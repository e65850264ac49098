import NIOCore

/// A route's `headers.request` or `headers.response` folded into what the head writer does,
/// in Envoy's order (HeaderParser: removals first, then each header to add): the original
/// fields to leave out by lower-cased name (`remove`, and the names `set` replaces), and the
/// fields to append (`set`, then `add`, as Istio lists them for Envoy).
public struct HeaderEdits: Sendable, Equatable {
    /// Lower-cased names of original fields not forwarded.
    public var dropped: Set<String> = []
    /// Fields written after the original ones.
    public var appended: [HeaderOperations.Pair] = []

    /// The edits for `operations`.
    public init(_ operations: HeaderOperations) {
        for name in operations.remove {
            let lowered = name.lowercased()
            self.dropped.insert(lowered)
            self.appended.removeAll { $0.name.lowercased() == lowered }
        }
        for pair in operations.setPairs {
            let lowered = pair.name.lowercased()
            self.dropped.insert(lowered)
            self.appended.removeAll { $0.name.lowercased() == lowered }
            self.appended.append(pair)
        }
        self.appended += operations.addPairs
    }

    /// True when nothing changes.
    public var isEmpty: Bool { dropped.isEmpty && appended.isEmpty }

    /// Bytes the appended fields take.
    var appendedBound: Int { appended.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } }

    /// The field named by these bytes is one to leave out.
    func drops(_ name: UnsafeRawBufferPointer) -> Bool {
        !dropped.isEmpty && dropped.contains(String(decoding: name, as: UTF8.self).lowercased())
    }

    func writeAppended(to w: inout BoundedWriter) {
        for pair in appended {
            w.write(string: pair.name)
            w.write(": ")
            w.write(string: pair.value)
            w.write("\r\n")
        }
    }
}

/// What a VirtualService route changes in a request it forwards: the target (`rewrite.uri`),
/// the Host (`rewrite.authority`) and `headers.request`.
public struct RouteRequestEdits: Sendable, Equatable {
    /// The request target sent instead of the app's (origin form).
    public var target: String?
    /// The Host sent instead of the app's.
    public var authority: String?
    /// `headers.request`.
    public var headers: HeaderEdits

    public init(target: String? = nil, authority: String? = nil, headers: HeaderEdits = HeaderEdits(HeaderOperations())) {
        self.target = target
        self.authority = authority
        self.headers = headers
    }

    /// The edits a route asks for on a request for `target` (origin or absolute form), matched
    /// by `matchedURI`; nil when it asks for none (the request is then written exactly as
    /// without routes).
    public static func forRoute(_ behaviour: HTTPRouteBehaviour, matchedURI: StringMatch?, target: String) -> RouteRequestEdits? {
        let rewrite = behaviour.rewrite
        guard rewrite?.uri != nil || rewrite?.authority != nil || !behaviour.requestHeaders.isEmpty else { return nil }
        return RouteRequestEdits(
            target: rewrite?.uri.map { HTTPRouteOutcome.rewrittenPath(HTTP1Head.originPath(target), rewrite: $0, matchedURI: matchedURI) },
            authority: rewrite?.authority,
            headers: HeaderEdits(behaviour.requestHeaders))
    }
}

extension HTTPRouteOutcome {
    /// The path Envoy sends for Istio's `rewrite.uri` (a route `prefix_rewrite`): the matched
    /// prefix replaced; for an exact or regex match, the whole path (the query string stays);
    /// for a route without a uri match (Envoy's prefix `/`), the leading `/`.
    public static func rewrittenPath(_ path: String, rewrite: String, matchedURI: StringMatch?) -> String {
        let queryStart = path.firstIndex(of: "?") ?? path.endIndex
        switch matchedURI {
        case .prefix(let prefix)? where path.hasPrefix(prefix):
            return rewrite + path.dropFirst(prefix.count)
        case .exact?, .regex?, .prefix?:
            return rewrite + path[queryStart...]
        case nil:
            return path.hasPrefix("/") ? rewrite + path.dropFirst() : rewrite + path
        }
    }
}

extension RouteRequestEdits {
    /// Bytes the route's own target, Host and fields take.
    var bound: Int {
        headers.appendedBound + (target?.utf8.count ?? 0) + (authority.map { $0.utf8.count + 8 } ?? 0)
    }

    /// The rewritten Host, first after the request line.
    func writeHost(_ head: HTTP1Head, to w: inout BoundedWriter) {
        guard let authority else { return }
        w.write("host: ")
        w.write(string: authority)
        w.write("\r\n")
    }

    /// An original field not forwarded: the Host when it is rewritten, a name the route's
    /// operations remove or set.
    func drops(_ field: HTTP1Field, _ name: UnsafeRawBufferPointer, _ head: HTTP1Head) -> Bool {
        (authority != nil && head.host == field.value) || headers.drops(name)
    }
}

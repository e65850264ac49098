/// One http route's match items, compiled once when the `RouteTable` is built and read in
/// place per request: a final class, so that deciding passes one reference instead of copying
/// `HTTPMatchRequest`s (their optionals, dictionaries and strings: retains, releases and value
/// witnesses per item per request — most of the cost of 50 routes, issue 20).
///
/// Semantics are `HTTPMatchRequest`'s (VirtualService reference): the items are ORed, the
/// conditions inside one item ANDed; `uri` reads the path without its query, headers are
/// looked up by lower-cased name; without a request, uri, method and header conditions do not
/// match.
final class HTTPRouteMatcher: Sendable, Equatable {
    /// One match item's conditions as flat fields (no dictionary walk per request). A final
    /// class too: as a struct, the optimiser copied each item (value witnesses and all) per check.
    final class Item: Sendable, Equatable {
        let port: Int?
        let authority: StringMatch?
        let uri: StringMatch?
        let method: StringMatch?
        let headers: ContiguousArray<Header>
        /// Whether it has a uri, method or header condition.
        let readsRequest: Bool

        struct Header: Sendable, Equatable {
            var name: String
            var rule: StringMatch
        }

        init(_ match: HTTPMatchRequest) {
            port = match.port
            authority = match.authority
            uri = match.uri
            method = match.method
            // Sorted by name: a fixed order whatever the dictionary's (all must hold anyway).
            headers = ContiguousArray(match.headers.sorted { $0.key < $1.key }.map { Header(name: $0.key, rule: $0.value) })
            readsRequest = uri != nil || method != nil || !headers.isEmpty
        }

        static func == (lhs: Item, rhs: Item) -> Bool {
            lhs === rhs || (lhs.port == rhs.port && lhs.authority == rhs.authority && lhs.uri == rhs.uri && lhs.method == rhs.method
                && lhs.headers == rhs.headers)
        }
    }

    /// The items, in the route's order.
    let items: ContiguousArray<Item>

    /// Compiles `matches`.
    init(_ matches: [HTTPMatchRequest]) {
        items = ContiguousArray(matches.map(Item.init))
    }

    /// The position of the first item that takes the request, nil when none does.
    func firstMatch(port: Int, authority: Authority, request: borrowing HTTPRequestView, hasRequest: Bool) -> Int? {
        items.withUnsafeBufferPointer { items in
            for position in items.indices where Self.matches(items[position], port: port, authority: authority, request: request, hasRequest: hasRequest) {
                return position
            }
            return nil
        }
    }

    /// Whether `item` takes the request: every condition it has holds. Not inlined into the
    /// loop (inlined, the optimiser copied the item's fields per check).
    @inline(never)
    private static func matches(_ item: Item, port: Int, authority: Authority, request: borrowing HTTPRequestView, hasRequest: Bool) -> Bool {
        if let wanted = item.port, wanted != port { return false }
        if item.authority != nil {
            let text = authority.port.map { "\(authority.host):\($0)" } ?? authority.host
            if item.authority?.matches(text) == false && item.authority?.matches(authority.host) == false { return false }
        }
        guard item.readsRequest else { return true }
        guard hasRequest else { return false }
        // Optional chaining reads the condition where it lies; `if let` bound a copy of it.
        if item.uri?.matches(request.uriPath) == false { return false }
        if item.method?.matches(request.method) == false { return false }
        return item.headers.withUnsafeBufferPointer { headers in
            for header in headers {
                guard let value = request.header(header.name), header.rule.matches(value) else { return false }
            }
            return true
        }
    }

    static func == (lhs: HTTPRouteMatcher, rhs: HTTPRouteMatcher) -> Bool {
        lhs === rhs || lhs.items == rhs.items
    }
}

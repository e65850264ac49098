/// One VirtualService's http routes as one proxy applies them, compiled once with the
/// `RouteTable` into a first-match index over their match items, so that a request is tested
/// only against the items that could take it (issue 20: 50 routes within 5% of none).
///
/// Semantics are `HTTPMatchRequest`'s (VirtualService reference): the items of a route are
/// ORed, the conditions inside one item ANDed, routes are tried in order and the first item
/// that takes the request wins; `uri` reads the path without its query, headers are looked up
/// by lower-cased name (the first field with that name); without a request, uri, method and
/// header conditions do not match. A route without match items takes every request.
///
/// How: every item (routes in order, items in order) has a bit. Per request, the bits of the
/// items its port, method, path and header names leave possible are ANDed from masks compiled
/// here — by port; by exact method; by a byte trie of exact/prefix uris (the items whose
/// uri is a prefix of the path); by header names the request lacks — and only the set bits
/// are tested, lowest first, with every condition. The masks only ever rule out items that
/// cannot match, so the first item that passes the full test is the plain walk's first match
/// (`HTTPRouteIndexTests` compares the two on generated tables).
///
/// Its tables are plain values in memory it owns, read through pointers: the walk does no
/// reference counting. `@unchecked Sendable`: immutable after `init`, freed in `deinit`.
final class HTTPRouteMatcher: @unchecked Sendable {
    typealias Bytes = UnsafeBufferPointer<UInt8>

    /// Which item of which route took a request.
    struct Choice: Equatable {
        /// Position of the route in the list compiled from.
        var position: Int
        /// The route's index in its VirtualService's `http` list.
        var routeIndex: Int
        /// The item's original index (`RouteTable.Route.matchIndices`); nil for a route without items.
        var matchIndex: Int?
        /// The route has at most one destination: the same choice always gives the same decision.
        var deterministic: Bool
    }

    /// Bytes in `pool`.
    struct Text: Sendable {
        var start: Int32
        var count: Int32
    }

    /// A `StringMatch` compiled: exact and prefix as bytes, a regex by position in `regexes`.
    struct Condition: Sendable {
        enum Kind: UInt8, Sendable { case exact, prefix, regex }
        var kind: Kind
        var text: Text
        var regex: Int32
    }

    struct HeaderCondition: Sendable {
        var name: Text
        var rule: Condition
    }

    /// One match item as flat fields; a route without items has one with no condition.
    struct Item: Sendable {
        var position: Int32
        var routeIndex: Int32
        var matchIndex: Int32
        var deterministic: Bool
        var port: Int?
        var authority: Int32
        var uri: Condition?
        var method: Condition?
        var headers: Range<Int32>
        var readsRequest: Bool
    }

    struct PortFilter: Sendable {
        var port: Int
        var mask: Int32
        /// Some route exists on the port (an item allows it, or the route has none).
        var anyRoute: Bool
        /// Some route on the port looks beyond the authority (`RouteTable.Route.dependsOnRequest`).
        var dependent: Bool
    }

    struct NamedMask: Sendable {
        var name: Text
        var mask: Int32
    }

    struct TrieNode: Sendable {
        var edges: Range<Int32>
        /// The items whose uri's bytes end here; -1 for none.
        var mask: Int32
    }

    struct TrieEdge: Sendable {
        var byte: UInt8
        var node: Int32
    }

    private let pool: UnsafeMutableBufferPointer<UInt8>
    private let items: UnsafeMutableBufferPointer<Item>
    private let headerConditions: UnsafeMutableBufferPointer<HeaderCondition>
    /// Mask `m` is `words` words from `m * words`.
    private let masks: UnsafeMutableBufferPointer<UInt64>
    private let words: Int
    private let ports: UnsafeMutableBufferPointer<PortFilter>
    /// Ports no item names.
    private let otherPorts: PortFilter
    /// Exact methods items name, and the items each leaves possible.
    private let methods: UnsafeMutableBufferPointer<NamedMask>
    private let otherMethods: Int32
    /// Items without an exact/prefix uri: possible whatever the path.
    private let uriAny: Int32
    /// Node 0 is the root (the empty prefix).
    private let nodes: UnsafeMutableBufferPointer<TrieNode>
    private let edges: UnsafeMutableBufferPointer<TrieEdge>
    /// Header names items require, and the items each rules out when absent.
    private let headerNames: UnsafeMutableBufferPointer<NamedMask>
    /// Items that read nothing of the request: all that is possible without one.
    private let withoutRequest: Int32
    private let regexes: [CompiledRegex]
    private let authorities: [StringMatch]

    /// Compiles `routes` (in order): each with its match items, their original indices, its
    /// index in the VirtualService, and whether it looks beyond the authority / has one destination.
    init(_ routes: [(matches: [HTTPMatchRequest], matchIndices: [Int], routeIndex: Int, dependent: Bool, deterministic: Bool)]) {
        var builder = Builder()
        for (position, route) in routes.enumerated() {
            let matches: [HTTPMatchRequest?] = route.matches.isEmpty ? [nil] : route.matches
            for (offset, match) in matches.enumerated() {
                builder.add(match, position: position, routeIndex: route.routeIndex,
                            matchIndex: match == nil ? -1 : route.matchIndices[offset], deterministic: route.deterministic)
            }
        }
        let items = builder.items
        let words = max(1, (items.count + 63) / 64)
        var masks: [UInt64] = []
        func mask(_ included: (Item) -> Bool) -> Int32 {
            let id = Int32(masks.count / words)
            var chunk = [UInt64](repeating: 0, count: words)
            for (bit, item) in items.enumerated() where included(item) { chunk[bit / 64] |= 1 << UInt64(bit % 64) }
            masks += chunk
            return id
        }
        func filter(port: Int?) -> PortFilter {
            let on = items.filter { $0.port == nil || $0.port == port }
            let dependentRoutes = Set(routes.indices.filter { routes[$0].dependent })
            return PortFilter(port: port ?? -1, mask: mask { $0.port == nil || $0.port == port }, anyRoute: !on.isEmpty,
                              dependent: on.contains { dependentRoutes.contains(Int($0.position)) })
        }
        let portList = Set(items.compactMap(\.port)).sorted().map { filter(port: $0) }
        otherPorts = filter(port: nil)
        let pool = builder.pool
        func bytes(_ text: Text) -> ArraySlice<UInt8> { pool[Int(text.start)..<Int(text.start + text.count)] }
        func exactMethod(_ item: Item) -> ArraySlice<UInt8>? { item.method.flatMap { $0.kind == .exact ? bytes($0.text) : nil } }
        var methodList: [NamedMask] = []
        for method in builder.exactMethods {
            methodList.append(NamedMask(name: method, mask: mask { item in exactMethod(item).map { $0 == bytes(method) } ?? true }))
        }
        otherMethods = mask { exactMethod($0) == nil }
        uriAny = mask { $0.uri.map { $0.kind == .regex } ?? true }
        var trieNodes: [TrieNode] = []
        var trieEdges: [TrieEdge] = []
        builder.trie.flatten(into: &trieNodes, &trieEdges) { endingHere in mask { endingHere.contains(Int($0.position) << 32 | Int($0.matchIndex + 1)) } }
        var nameList: [NamedMask] = []
        for name in builder.headerNames {
            let requiring = Set(builder.headerConditions.indices.filter { bytes(builder.headerConditions[$0].name) == bytes(name) }.map { Int32($0) })
            nameList.append(NamedMask(name: name, mask: mask { item in item.headers.contains { requiring.contains($0) } }))
        }
        withoutRequest = mask { !$0.readsRequest }
        self.words = words
        self.pool = Self.copy(pool)
        self.items = Self.copy(items)
        self.headerConditions = Self.copy(builder.headerConditions)
        self.ports = Self.copy(portList)
        self.methods = Self.copy(methodList)
        self.nodes = Self.copy(trieNodes)
        self.edges = Self.copy(trieEdges)
        self.headerNames = Self.copy(nameList)
        self.masks = Self.copy(masks)
        self.regexes = builder.regexes
        self.authorities = builder.authorities
    }

    deinit {
        pool.deallocate()
        items.deallocate()
        headerConditions.deallocate()
        ports.deallocate()
        methods.deallocate()
        nodes.deallocate()
        edges.deallocate()
        headerNames.deallocate()
        masks.deallocate()
    }

    private static func copy<T>(_ values: [T]) -> UnsafeMutableBufferPointer<T> {
        let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, values.count))
        _ = buffer.initialize(from: values)
        return UnsafeMutableBufferPointer(rebasing: buffer[..<values.count])
    }

    /// Whether some route exists on `port`, and whether one of those looks beyond the authority.
    func routes(onPort port: Int) -> (any: Bool, dependent: Bool) {
        let filter = portFilter(port)
        return (filter.anyRoute, filter.dependent)
    }

    private func portFilter(_ port: Int) -> PortFilter {
        for filter in ports where filter.port == port { return filter }
        return otherPorts
    }

    /// The first route (and item) that takes the request, nil when none does.
    func firstMatch(port: Int, authority: Authority, input: HTTPMatchInput) -> Choice? {
        let filter = portFilter(port)
        guard filter.anyRoute else { return nil }
        let words = self.words
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 2 * words) { scratch in
            let candidates = UnsafeMutableBufferPointer(rebasing: scratch[..<words])
            let uris = UnsafeMutableBufferPointer(rebasing: scratch[words...])
            for w in 0..<words { candidates[w] = mask(filter.mask, w) }
            if input.hasRequest {
                var methodMask = otherMethods
                for method in methods where equal(method.name, input.method) {
                    methodMask = method.mask
                    break
                }
                for w in 0..<words { uris[w] = mask(uriAny, w) }
                var node = nodes[0]
                orInto(uris, node.mask)
                for byte in input.uriPath {
                    guard let next = edges[Int(node.edges.lowerBound)..<Int(node.edges.upperBound)].first(where: { $0.byte == byte }) else { break }
                    node = nodes[Int(next.node)]
                    orInto(uris, node.mask)
                }
                for w in 0..<words { candidates[w] &= mask(methodMask, w) & uris[w] }
                for name in headerNames where !input.hasHeader(text(name.name)) {
                    for w in 0..<words { candidates[w] &= ~mask(name.mask, w) }
                }
            } else {
                for w in 0..<words { candidates[w] &= mask(withoutRequest, w) }
            }
            for w in 0..<words {
                var bits = candidates[w]
                while bits != 0 {
                    let item = items[w * 64 + bits.trailingZeroBitCount]
                    if matches(item, port: port, authority: authority, input: input) {
                        return Choice(position: Int(item.position), routeIndex: Int(item.routeIndex),
                                      matchIndex: item.matchIndex < 0 ? nil : Int(item.matchIndex), deterministic: item.deterministic)
                    }
                    bits &= bits - 1
                }
            }
            return nil
        }
    }

    @inline(__always)
    private func mask(_ id: Int32, _ word: Int) -> UInt64 { masks[Int(id) * words + word] }

    private func orInto(_ target: UnsafeMutableBufferPointer<UInt64>, _ id: Int32) {
        guard id >= 0 else { return }
        for w in 0..<words { target[w] |= mask(id, w) }
    }

    private func text(_ text: Text) -> Bytes {
        Bytes(rebasing: pool[Int(text.start)..<Int(text.start + text.count)])
    }

    private func equal(_ wanted: Text, _ value: Bytes) -> Bool {
        Int(wanted.count) == value.count && text(wanted).elementsEqual(value)
    }

    /// Whether every condition `item` has holds (the plain test, on the candidates only).
    private func matches(_ item: Item, port: Int, authority: Authority, input: HTTPMatchInput) -> Bool {
        if let wanted = item.port, wanted != port { return false }
        if item.authority >= 0 {
            let rule = authorities[Int(item.authority)]
            let text = authority.port.map { "\(authority.host):\($0)" } ?? authority.host
            if !rule.matches(text) && !rule.matches(authority.host) { return false }
        }
        guard item.readsRequest else { return true }
        guard input.hasRequest else { return false }
        if let uri = item.uri, !matches(uri, input.uriPath) { return false }
        if let method = item.method, !matches(method, input.method) { return false }
        for header in headerConditions[Int(item.headers.lowerBound)..<Int(item.headers.upperBound)] {
            guard input.withHeader(text(header.name), { value in value.map { matches(header.rule, $0) } ?? false }) else { return false }
        }
        return true
    }

    /// `StringMatch.matches` on bytes: exact and prefix compare them as Envoy does.
    private func matches(_ condition: Condition, _ value: Bytes) -> Bool {
        switch condition.kind {
        case .exact: return equal(condition.text, value)
        case .prefix:
            return Int(condition.text.count) <= value.count && text(condition.text).elementsEqual(value[..<Int(condition.text.count)])
        case .regex:
            return regexes[Int(condition.regex)].wholeMatches(String(decoding: value, as: UTF8.self)[...])
        }
    }
}

extension HTTPRouteMatcher {
    /// Gathers the items, their condition bytes and the uri trie.
    private struct Builder {
        var pool: [UInt8] = []
        var items: [Item] = []
        var headerConditions: [HeaderCondition] = []
        var regexes: [CompiledRegex] = []
        var authorities: [StringMatch] = []
        var exactMethods: [Text] = []
        var headerNames: [Text] = []
        var trie = Trie()

        mutating func text(_ string: String) -> Text {
            let start = Int32(pool.count)
            pool += Array(string.utf8)
            return Text(start: start, count: Int32(pool.count) - start)
        }

        private func bytes(_ text: Text) -> ArraySlice<UInt8> { pool[Int(text.start)..<Int(text.start + text.count)] }

        mutating func condition(_ match: StringMatch) -> Condition {
            switch match {
            case .exact(let value): return Condition(kind: .exact, text: text(value), regex: -1)
            case .prefix(let value): return Condition(kind: .prefix, text: text(value), regex: -1)
            case .regex(let compiled):
                regexes.append(compiled)
                return Condition(kind: .regex, text: Text(start: 0, count: 0), regex: Int32(regexes.count - 1))
            }
        }

        mutating func add(_ match: HTTPMatchRequest?, position: Int, routeIndex: Int, matchIndex: Int, deterministic: Bool) {
            let headersStart = Int32(headerConditions.count)
            // Sorted by name: a fixed order whatever the dictionary's (all must hold anyway).
            for (name, rule) in (match?.headers ?? [:]).sorted(by: { $0.key < $1.key }) {
                let header = HeaderCondition(name: text(name), rule: condition(rule))
                headerConditions.append(header)
                if !headerNames.contains(where: { bytes($0) == bytes(header.name) }) { headerNames.append(header.name) }
            }
            var uri: Condition?
            var method: Condition?
            if let rule = match?.uri { uri = condition(rule) }
            if let rule = match?.method { method = condition(rule) }
            if let method, method.kind == .exact, !exactMethods.contains(where: { bytes($0) == bytes(method.text) }) {
                exactMethods.append(method.text)
            }
            let authority: Int32
            if let rule = match?.authority {
                authorities.append(rule)
                authority = Int32(authorities.count - 1)
            } else {
                authority = -1
            }
            let item = Item(
                position: Int32(position), routeIndex: Int32(routeIndex), matchIndex: Int32(matchIndex), deterministic: deterministic,
                port: match?.port, authority: authority, uri: uri, method: method,
                headers: headersStart..<Int32(headerConditions.count), readsRequest: match?.dependsOnRequest ?? false)
            if let uri, uri.kind != .regex {
                let text = bytes(uri.text)
                trie.insert(text, item: item)
            }
            items.append(item)
        }
    }

    /// The exact/prefix uris as a byte trie while compiling; each node lists the items
    /// (as `position << 32 | matchIndex + 1`) whose uri ends there.
    private struct Trie {
        var children: [[UInt8: Int]] = [[:]]
        var ending: [Set<Int>] = [[]]

        mutating func insert(_ bytes: ArraySlice<UInt8>, item: Item) {
            var node = 0
            for byte in bytes {
                if let next = children[node][byte] {
                    node = next
                } else {
                    children.append([:])
                    ending.append([])
                    children[node][byte] = children.count - 1
                    node = children.count - 1
                }
            }
            ending[node].insert(Int(item.position) << 32 | Int(item.matchIndex + 1))
        }

        /// The flat nodes (same numbering, root 0) and edges sorted by byte; `mask` makes a
        /// node's mask from the items ending there.
        func flatten(into nodes: inout [TrieNode], _ edges: inout [TrieEdge], mask: (Set<Int>) -> Int32) {
            for node in children.indices {
                let start = Int32(edges.count)
                for (byte, child) in children[node].sorted(by: { $0.key < $1.key }) { edges.append(TrieEdge(byte: byte, node: Int32(child))) }
                nodes.append(TrieNode(edges: start..<Int32(edges.count), mask: ending[node].isEmpty ? -1 : mask(ending[node])))
            }
        }
    }
}

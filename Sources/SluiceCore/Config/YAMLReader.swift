import Yams

/// Reads typed values out of a Yams node tree and records what is wrong with them as
/// `ConfigDiagnostic`s that carry the file, the line and the field path.
///
/// Decoding works on `Node` rather than `Codable` because only the node tree keeps line
/// numbers, and every error a user sees must point at a line.
struct YAMLReader {
    /// The file being read, as named in diagnostics.
    let path: String
    /// The resource being read (`ServiceEntry ns/name`), put into every diagnostic.
    var resource: String?
    /// The line used when a node has no mark (e.g. a missing field): the enclosing object's.
    var fallbackLine: Int?
    /// Everything reported so far.
    var diagnostics: [ConfigDiagnostic] = []

    init(path: String, resource: String? = nil, fallbackLine: Int? = nil) {
        self.path = path
        self.resource = resource
        self.fallbackLine = fallbackLine
    }

    /// True once an error (not a warning or note) was reported.
    var hasErrors: Bool { diagnostics.contains { $0.isError } }

    // MARK: Reporting

    mutating func report(_ severity: ConfigDiagnostic.Severity, _ field: String?, at node: Node?, _ message: String) {
        diagnostics.append(ConfigDiagnostic(
            severity: severity, path: path, line: YAMLReader.line(of: node) ?? fallbackLine,
            resource: resource, field: field, message: message))
    }

    mutating func error(_ field: String?, at node: Node?, _ message: String) {
        report(.error, field, at: node, message)
    }

    mutating func warning(_ field: String?, at node: Node?, _ message: String) {
        report(.warning, field, at: node, message)
    }

    mutating func note(_ field: String?, at node: Node?, _ message: String) {
        report(.note, field, at: node, message)
    }

    static func line(of node: Node?) -> Int? { node?.mark?.line }

    static func join(_ prefix: String, _ key: String) -> String {
        prefix.isEmpty ? key : prefix + "." + key
    }

    // MARK: Documents

    /// Splits a YAML stream into its documents. A syntax error ends the stream: the documents
    /// before it are returned together with the error.
    static func documents(yaml: String, path: String) -> (documents: [Node], error: ConfigDiagnostic?) {
        var result: [Node] = []
        let error = forEachDocument(yaml: yaml, path: path) { result.append($0) }
        return (result, error)
    }

    /// Hands each document of a YAML stream to `body` as soon as it is composed, so a file of
    /// thousands of resources never holds all their node trees at once. A syntax error ends
    /// the stream and is returned after the documents before it.
    static func forEachDocument(yaml: String, path: String, _ body: (Node) -> Void) -> ConfigDiagnostic? {
        if let line = aliasUsedAsKey(in: yaml) {
            // Yams hashes a key node in full to find duplicate keys; an alias key that expands
            // to a nested structure makes that exponential (a 1 KB file took over 15 s).
            // Kubernetes resources never need one.
            return ConfigDiagnostic(path: path, line: line, message: "invalid YAML: an alias (*name) used as a mapping key is not supported")
        }
        // Editors on Windows save UTF-8 with a byte-order mark, which libyaml would read as
        // part of the first key.
        let yaml = yaml.hasPrefix("\u{FEFF}") ? String(yaml.dropFirst()) : yaml
        do {
            // The basic resolver tags every plain scalar as a string: this reader converts
            // scalars itself, and the default resolver's regular expressions (int, float,
            // timestamp…) made loading 10,000 ServiceEntries take seconds.
            var sequence = try Yams.compose_all(yaml: yaml, .basic)
            while let node = sequence.next() { body(node) }
            if let error = sequence.error { return syntaxDiagnostic(error, path: path) }
        } catch {
            return syntaxDiagnostic(error, path: path)
        }
        return nil
    }

    /// The line of the first alias written as a mapping key (`*name:`), if any. A `*` that
    /// starts a token is always an alias in YAML (a literal `*` must be quoted), so a byte
    /// scan suffices.
    static func aliasUsedAsKey(in yaml: String) -> Int? {
        var line = 1
        var previous: UInt8 = UInt8(ascii: "\n")
        var inQuote: UInt8? = nil
        var bytes = yaml.utf8.makeIterator()
        var pending: UInt8? = nil
        func next() -> UInt8? {
            if let byte = pending { pending = nil; return byte }
            return bytes.next()
        }
        while let byte = next() {
            defer { previous = byte }
            if byte == UInt8(ascii: "\n") { line += 1; inQuote = nil; continue }
            if let quote = inQuote {
                if byte == quote { inQuote = nil }
                continue
            }
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                if Self.startsToken(previous) { inQuote = byte }
                continue
            }
            if byte == UInt8(ascii: "#"), Self.startsToken(previous) {
                // A comment runs to the end of the line.
                while let c = next(), c != UInt8(ascii: "\n") {}
                line += 1
                previous = UInt8(ascii: "\n")
                continue
            }
            guard byte == UInt8(ascii: "*"), Self.startsToken(previous) else { continue }
            var after: UInt8? = next()
            while let c = after, !Self.endsAlias(c) { after = next() }
            while after == UInt8(ascii: " ") { after = next() }
            if after == UInt8(ascii: ":") {
                let following = next()
                if following == nil || following == UInt8(ascii: " ") || following == UInt8(ascii: "\n") { return line }
                pending = following
            } else {
                pending = after
            }
        }
        return nil
    }

    private static func startsToken(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"),
            UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ","), UInt8(ascii: "-"), UInt8(ascii: "?"):
            return true
        default:
            return false
        }
    }

    private static func endsAlias(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"),
            UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ":"):
            return true
        default:
            return false
        }
    }

    private static func syntaxDiagnostic(_ error: any Error, path: String) -> ConfigDiagnostic {
        func described(_ problem: String, _ context: YamlError.Context?) -> String {
            guard let context else { return "invalid YAML: \(problem)" }
            return "invalid YAML: \(problem) (\(context.text) at line \(context.mark.line))"
        }
        switch error {
        case YamlError.scanner(let context, let problem, let mark, _),
             YamlError.parser(let context, let problem, let mark, _),
             YamlError.composer(let context, let problem, let mark, _):
            return ConfigDiagnostic(path: path, line: mark.line, message: described(problem, context))
        case YamlError.duplicatedKeysInMapping(let duplicates, let context):
            return ConfigDiagnostic(
                path: path, line: context.mark.line,
                message: "invalid YAML: duplicate key \(duplicates.map { "\"\($0)\"" }.joined(separator: ", "))")
        case YamlError.reader(let problem, let offset, _, let yaml):
            let line = offset.map { lineNumber(utf8Offset: $0, in: yaml) }
            return ConfigDiagnostic(path: path, line: line, message: "invalid YAML: \(problem)")
        default:
            return ConfigDiagnostic(path: path, message: "invalid YAML: \(error)")
        }
    }

    private static func lineNumber(utf8Offset: Int, in text: String) -> Int {
        1 + text.utf8.prefix(utf8Offset).reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    }

    // MARK: Typed access

    /// The value for `key` in `mapping`, comparing keys as plain strings.
    static func value(_ mapping: Node.Mapping, _ key: String) -> Node? {
        for (name, value) in mapping where name.scalar?.string == key { return value }
        return nil
    }

    /// Reports every key of `mapping` not in `allowed` as an unknown field at its own line.
    mutating func checkKeys(
        _ mapping: Node.Mapping, allowed: Set<String>, prefix: String,
        severity: ConfigDiagnostic.Severity = .error
    ) {
        for (key, _) in mapping {
            let name = key.scalar?.string ?? "\(key)"
            guard !allowed.contains(name) else { continue }
            let hint = YAMLReader.suggestion(for: name, in: allowed).map { "; did you mean \"\($0)\"?" } ?? ""
            report(severity, YAMLReader.join(prefix, name), at: key, "unknown field\(hint)")
        }
    }

    /// The allowed key closest to a misspelt one, if it is close enough to be a typo.
    static func suggestion(for name: String, in allowed: Set<String>) -> String? {
        let lowered = name.lowercased()
        let scored = allowed.map { ($0, editDistance(lowered, $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }) else { return nil }
        return best.1 <= max(1, name.count / 4) ? best.0 : nil
    }

    /// Edit distance counting an adjacent transposition as one edit ("fromat" is one from "format").
    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }

    /// The diagnostics in line order (stable), the order a reader of the file meets them.
    var sortedDiagnostics: [ConfigDiagnostic] {
        diagnostics.enumerated().sorted { lhs, rhs in
            let left = lhs.element.line ?? 0, right = rhs.element.line ?? 0
            return left != right ? left < right : lhs.offset < rhs.offset
        }.map(\.element)
    }

    /// A mapping; an empty mapping for an explicit null; nil (with an error) for anything else.
    mutating func mapping(_ node: Node, _ field: String) -> Node.Mapping? {
        if let mapping = node.effectiveMapping { return mapping }
        if node.isNull { return Node.Mapping([]) }
        error(field, at: node, "must be a mapping")
        return nil
    }

    /// A sequence; empty for an explicit null; nil (with an error) for anything else.
    mutating func sequence(_ node: Node, _ field: String) -> [Node]? {
        if let sequence = node.sequence { return Array(sequence) }
        if node.isNull { return [] }
        error(field, at: node, "must be a list")
        return nil
    }

    /// A scalar's text; nil for null, and nil with an error for a list or mapping.
    mutating func string(_ node: Node, _ field: String) -> String? {
        if node.isNull { return nil }
        guard let scalar = node.scalar else {
            error(field, at: node, "must be a string")
            return nil
        }
        return scalar.string
    }

    /// A decimal integer in `range`; nil (with an error) when it is not one.
    mutating func int(_ node: Node, _ field: String, in range: ClosedRange<Int>? = nil, what: String = "") -> Int? {
        guard let text = string(node, field) else {
            if node.isNull { error(field, at: node, "must be a number") }
            return nil
        }
        guard let value = Int(text.trimmingASCIIWhitespace()) else {
            error(field, at: node, "must be a number, not \"\(text)\"")
            return nil
        }
        if let range, !range.contains(value) {
            error(field, at: node, "must be \(range.lowerBound)-\(range.upperBound)\(what), not \(value)")
            return nil
        }
        return value
    }

    /// `true` / `false` (YAML 1.2 core schema spellings).
    mutating func bool(_ node: Node, _ field: String) -> Bool? {
        guard let text = string(node, field) else { return nil }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default:
            error(field, at: node, "must be true or false, not \"\(text)\"")
            return nil
        }
    }

    /// A list of strings; with `allowSingle`, one string stands for a list of one.
    mutating func stringList(_ node: Node, _ field: String, allowSingle: Bool = false) -> [String]? {
        if allowSingle, node.scalar != nil, !node.isNull {
            return string(node, field).map { [$0] }
        }
        guard let items = sequence(node, field) else { return nil }
        var result: [String] = []
        var ok = true
        for (index, item) in items.enumerated() {
            if item.scalar != nil, !item.isNull, let text = item.scalar?.string {
                result.append(text)
            } else {
                error("\(field)[\(index)]", at: item, "must be a string")
                ok = false
            }
        }
        return ok ? result : nil
    }

    /// A mapping of strings to strings (labels).
    mutating func stringMap(_ node: Node, _ field: String) -> [String: String]? {
        guard let mapping = mapping(node, field) else { return nil }
        var result: [String: String] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string, let text = value.scalar?.string, !value.isNull else {
                error(YAMLReader.join(field, key.scalar?.string ?? "?"), at: value, "must be a string")
                return nil
            }
            result[name] = text
        }
        return result
    }
}

extension Node {
    /// The mapping with YAML merge keys (`<<: *defaults`) applied, as kubectl applies them:
    /// keys written in the mapping win over merged ones, and earlier merge sources over later.
    /// Nil when the node is not a mapping.
    ///
    /// Nil too when merging would take more than `maxMergeSources` merge sources, nested ones
    /// included: aliases let a few lines merge a mapping into itself 2^30 times over, which
    /// would hang the loader. Callers report nil as an error, so such a file is refused.
    var effectiveMapping: Node.Mapping? {
        var budget = Node.maxMergeSources
        return effectiveMapping(budget: &budget)
    }

    /// Far more merge sources than any hand-written or generated resource uses.
    static let maxMergeSources = 1_000

    private func effectiveMapping(budget: inout Int) -> Node.Mapping? {
        guard let mapping = self.mapping else { return nil }
        guard mapping.contains(where: { $0.key.scalar?.string == "<<" }) else { return mapping }
        var pairs: [(Node, Node)] = []
        var seen: Set<String> = []
        var sources: [Node] = []
        for (key, value) in mapping {
            if key.scalar?.string == "<<" {
                sources += value.sequence.map(Array.init) ?? [value]
            } else {
                pairs.append((key, value))
                if let name = key.scalar?.string { seen.insert(name) }
            }
        }
        for source in sources {
            budget -= 1
            if budget < 0 { return nil }
            let merged = source.effectiveMapping(budget: &budget)
            if budget < 0 { return nil }
            guard let merged else {
                // Not a mapping: keep it so that the unknown-field check reports "<<" at its line.
                pairs.append((Node("<<"), source))
                continue
            }
            for (key, value) in merged where !seen.contains(key.scalar?.string ?? "") {
                pairs.append((key, value))
                if let name = key.scalar?.string { seen.insert(name) }
            }
        }
        return Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark)
    }

    /// True for an empty value, `~` or `null` written without quotes.
    var isNull: Bool {
        guard let scalar = scalar, scalar.style == .plain || scalar.style == .any else { return false }
        switch scalar.string {
        case "", "~", "null", "Null", "NULL": return true
        default: return false
        }
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }),
              let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}

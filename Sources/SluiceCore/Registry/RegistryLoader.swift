import Foundation
import Yams

/// What loading registry files produced: the valid entries and everything worth telling the user.
public struct RegistryLoadResult: Sendable {
    /// Valid entries, in load order (files sorted by name, documents in file order).
    public var entries: [ServiceEntry]
    /// Errors, warnings and notes, in load order.
    public var diagnostics: [ConfigDiagnostic]
    /// The files that were read, in load order; what a config watcher should poll.
    public var files: [String]
    /// `namespace/name` of each ServiceEntry rejected as invalid, in load order.
    public var rejected: [String] = []
    /// Files that could not be read or parsed to their end (a YAML syntax error): what they
    /// held past that point is unknown, so a reload keeps their last good objects.
    public var incompleteFiles: [String] = []
    /// Errors that are not one object's: a configured registry path that does not exist.
    public var pathErrors: [ConfigDiagnostic] = []
    /// Gateways, VirtualServices, DestinationRules and Sidecars found beside the entries.
    public var routing = RoutingObjects()
    /// Routing objects rejected as invalid.
    public var rejectedRoutingObjects = 0
    /// AuthorizationPolicies (security.istio.io), valid ones in load order.
    public var authorizationPolicies: [AuthorizationPolicy] = []
    /// `namespace/name` of each AuthorizationPolicy rejected as invalid or unsupported.
    public var rejectedAuthorizationPolicies: [String] = []
    /// Which routing objects were rejected (a reload keeps their last good versions).
    public var rejectedRoutingIDs: [RoutingObjectID] = []
    /// True if any diagnostic is an error: some resource or file was not loaded.
    public var hasErrors: Bool { diagnostics.contains { $0.isError } }

    /// Creates a result.
    public init(entries: [ServiceEntry] = [], diagnostics: [ConfigDiagnostic] = [], files: [String] = []) {
        self.entries = entries
        self.diagnostics = diagnostics
        self.files = files
    }

    mutating func append(_ other: RegistryLoadResult) {
        entries += other.entries
        diagnostics += other.diagnostics
        files += other.files
        rejected += other.rejected
        incompleteFiles += other.incompleteFiles
        pathErrors += other.pathErrors
        routing.append(other.routing)
        rejectedRoutingObjects += other.rejectedRoutingObjects
        authorizationPolicies += other.authorizationPolicies
        rejectedAuthorizationPolicies += other.rejectedAuthorizationPolicies
        rejectedRoutingIDs += other.rejectedRoutingIDs
    }
}

/// The parts of a file parsed on several threads, each stored once under the lock.
private final class ChunkResults: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var parts: [(result: RegistryLoadResult, syntaxError: Bool)?]

    init(count: Int) {
        self.parts = Array(repeating: nil, count: count)
    }

    func set(_ index: Int, _ part: (result: RegistryLoadResult, syntaxError: Bool)) {
        self.lock.withLock { self.parts[index] = part }
    }

    var all: [(result: RegistryLoadResult, syntaxError: Bool)?] {
        self.lock.withLock { self.parts }
    }
}

/// Loads Istio ServiceEntry resources, and the routing objects beside them (Gateway,
/// VirtualService, DestinationRule, Sidecar), from YAML (or JSON) text, files and directories.
public enum RegistryLoader {
    /// File name extensions read from a directory.
    public static let fileExtensions: Set<String> = ["yaml", "yml", "json"]

    /// Parses a YAML stream that may hold several documents and `kind: List` resources.
    /// Resources of other kinds are skipped with a note; invalid ServiceEntries are reported and
    /// left out while the valid ones in the same file still load. Pure: reads no files.
    public static func parse(yaml: String, path: String) -> RegistryLoadResult {
        var result = parseDocuments(yaml: yaml, path: path)
        warnAboutDuplicateNames(&result)
        return result
    }

    private static func parseDocuments(yaml: String, path: String) -> RegistryLoadResult {
        let chunks = documentChunks(yaml, count: ProcessInfo.processInfo.activeProcessorCount)
        guard chunks.count > 1 else { return parseChunk(yaml, path: path).result }
        // A big registry file (a mesh's 10,000 entries) is cut at document markers and its
        // parts parsed at once on the machine's cores: the sidecar is ready that much sooner.
        // Documents never share anchors (YAML scopes them per document), so each part parses
        // as it would in one piece; padding each part with the newlines before it keeps every
        // line number in the diagnostics the file's own.
        let parts = ChunkResults(count: chunks.count)
        DispatchQueue.concurrentPerform(iterations: chunks.count) { index in
            let chunk = chunks[index]
            let text = String(repeating: "\n", count: chunk.firstLine - 1) + chunk.text
            parts.set(index, parseChunk(text, path: path))
        }
        var result = RegistryLoadResult()
        for part in parts.all {
            guard let part else { continue }
            result.append(part.result)
            // In one piece, parsing would have stopped at the syntax error.
            if part.syntaxError { break }
        }
        return result
    }

    private static func parseChunk(_ yaml: String, path: String) -> (result: RegistryLoadResult, syntaxError: Bool) {
        var result = RegistryLoadResult()
        let syntaxError = YAMLReader.forEachDocument(yaml: yaml, path: path) { document in
            parseResource(document, path: path, into: &result, inList: false)
        }
        if let syntaxError {
            result.diagnostics.append(syntaxError)
            result.incompleteFiles = [path]
        }
        return (result, syntaxError != nil)
    }

    /// Below this a file is parsed in one piece: threads cost more than they save.
    static let parallelParseMinimumBytes = 256 * 1024

    /// Up to `count` pieces of `yaml`, each starting at a document marker (`---` at the start
    /// of a line, which ends whatever came before it in YAML) except the first, with the line
    /// each starts on. One piece when the text is small or has no marker to cut at.
    static func documentChunks(_ yaml: String, count: Int) -> [(text: String, firstLine: Int)] {
        let total = yaml.utf8.count
        guard count > 1, total >= parallelParseMinimumBytes else { return [(yaml, 1)] }
        let bytes = Array(yaml.utf8)
        var cuts: [(offset: Int, line: Int)] = []
        var nextTarget = total / count
        var line = 1
        var offset = 0
        while offset < total, cuts.count < count - 1 {
            if bytes[offset] == UInt8(ascii: "\n") {
                line += 1
                let start = offset + 1
                if start >= nextTarget, isDocumentMarker(bytes, at: start) {
                    cuts.append((start, line))
                    nextTarget = total / count * (cuts.count + 1)
                }
            }
            offset += 1
        }
        guard !cuts.isEmpty else { return [(yaml, 1)] }
        var chunks: [(text: String, firstLine: Int)] = []
        var from = (offset: 0, line: 1)
        for cut in cuts + [(total, 0)] {
            chunks.append((String(decoding: bytes[from.offset..<cut.offset], as: UTF8.self), from.line))
            from = cut
        }
        return chunks
    }

    /// `---` followed by a space, a tab, a line end or the end of the text.
    private static func isDocumentMarker(_ bytes: [UInt8], at start: Int) -> Bool {
        guard start + 3 <= bytes.count,
            bytes[start] == UInt8(ascii: "-"), bytes[start + 1] == UInt8(ascii: "-"), bytes[start + 2] == UInt8(ascii: "-")
        else { return false }
        guard start + 3 < bytes.count else { return true }
        switch bytes[start + 3] {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"): return true
        default: return false
        }
    }

    /// Loads each path, a file or a directory (its `*.yaml`, `*.yml` and `*.json` files in name
    /// order, not recursive). Relative paths are taken from `baseDirectory`.
    ///
    /// Hidden entries are skipped, which skips the `..data` and `..2024_…` entries of a mounted
    /// Kubernetes ConfigMap, while its visible symlinks (`a.yaml -> ..data/a.yaml`) are followed.
    public static func load(paths: [String], relativeTo baseDirectory: String) -> RegistryLoadResult {
        var result = RegistryLoadResult()
        for original in paths {
            let path = ConfigPath.resolve(original, relativeTo: baseDirectory)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                let missing = ConfigDiagnostic(path: path, message: "no such file or directory")
                result.diagnostics.append(missing)
                result.pathErrors.append(missing)
                continue
            }
            if isDirectory.boolValue {
                result.append(loadDirectory(path))
            } else {
                result.append(loadFile(path))
            }
        }
        warnAboutDuplicateNames(&result)
        return result
    }

    /// Reads and parses one file; duplicate names are checked by the caller, across all files.
    private static func loadFile(_ path: String) -> RegistryLoadResult {
        guard let data = FileManager.default.contents(atPath: path) else {
            var result = RegistryLoadResult(diagnostics: [ConfigDiagnostic(path: path, message: "cannot read file")])
            result.incompleteFiles = [path]
            return result
        }
        guard let text = String(data: data, encoding: .utf8) else {
            var result = RegistryLoadResult(diagnostics: [ConfigDiagnostic(path: path, message: "not UTF-8 text")], files: [path])
            result.incompleteFiles = [path]
            return result
        }
        var result = parseDocuments(yaml: text, path: path)
        result.files = [path]
        return result
    }

    private static func loadDirectory(_ directory: String) -> RegistryLoadResult {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            let unlisted = ConfigDiagnostic(path: directory, message: "cannot list directory")
            var result = RegistryLoadResult(diagnostics: [unlisted])
            result.pathErrors = [unlisted]
            return result
        }
        var result = RegistryLoadResult()
        var found = false
        for name in names.sorted() where !name.hasPrefix(".") {
            guard let dot = name.lastIndex(of: "."), fileExtensions.contains(name[name.index(after: dot)...].lowercased())
            else { continue }
            let path = ConfigPath.join(directory, name)
            var isDirectory: ObjCBool = false
            // fileExists follows symlinks, so ConfigMap links to ..data/ count as files.
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue
            else { continue }
            found = true
            result.append(loadFile(path))
        }
        if !found {
            result.diagnostics.append(ConfigDiagnostic(
                severity: .warning, path: directory, message: "no *.yaml, *.yml or *.json files in directory"))
        }
        return result
    }

    /// `namespace/name` of a resource as its metadata says (namespace `default` when absent),
    /// for a rejected object whose last good version may be kept.
    private static func objectKey(_ mapping: Node.Mapping) -> String {
        let metadata = YAMLReader.value(mapping, "metadata")?.effectiveMapping
        let name = metadata.flatMap { YAMLReader.value($0, "name") }?.scalar?.string ?? ""
        let namespace = metadata.flatMap { YAMLReader.value($0, "namespace") }?.scalar?.string ?? ""
        return "\(namespace.isEmpty ? "default" : namespace)/\(name)"
    }

    private static func parseResource(_ node: Node, path: String, into result: inout RegistryLoadResult, inList: Bool) {
        if node.isNull { return }  // empty document, e.g. a trailing "---"
        let line = YAMLReader.line(of: node)
        guard let mapping = node.effectiveMapping else {
            result.diagnostics.append(ConfigDiagnostic(path: path, line: line, message: "a resource must be a mapping"))
            return
        }
        let kind = YAMLReader.value(mapping, "kind")?.scalar?.string
        switch kind {
        case "ServiceEntry":
            let (entry, diagnostics) = ServiceEntry.decode(node, path: path)
            result.diagnostics += diagnostics
            if let entry {
                result.entries.append(entry)
            } else {
                result.rejected.append(objectKey(mapping))
            }
        case let routingKind? where RoutingObjectDecoder.kinds.contains(routingKind):
            let (diagnostics, rejected) = RoutingObjectDecoder.decode(kind: routingKind, node, path: path, into: &result.routing)
            result.diagnostics += diagnostics
            if let rejected {
                result.rejectedRoutingObjects += 1
                result.rejectedRoutingIDs.append(rejected)
            }
        case "AuthorizationPolicy":
            let (policy, diagnostics) = AuthorizationPolicy.decode(node, path: path)
            result.diagnostics += diagnostics
            if let policy {
                result.authorizationPolicies.append(policy)
            } else {
                result.rejectedAuthorizationPolicies.append(objectKey(mapping))
            }
        case "List" where !inList:
            // kubectl's List (and `kubectl get -o yaml` output): resources under `items`.
            guard let itemsNode = YAMLReader.value(mapping, "items") else { return }
            guard let items = itemsNode.sequence else {
                if !itemsNode.isNull {
                    result.diagnostics.append(ConfigDiagnostic(
                        path: path, line: YAMLReader.line(of: itemsNode), resource: "List", field: "items",
                        message: "must be a list"))
                }
                return
            }
            for item in items { parseResource(item, path: path, into: &result, inList: true) }
        case nil:
            result.diagnostics.append(ConfigDiagnostic(path: path, line: line, field: "kind", message: "required"))
        case let other?:
            let name = YAMLReader.value(mapping, "metadata")?.effectiveMapping.flatMap { YAMLReader.value($0, "name") }?.scalar?.string
            result.diagnostics.append(ConfigDiagnostic(
                severity: .note, path: path, line: line, resource: name.map { "\(other) \($0)" },
                message: "skipped kind \(other)"))
        }
    }

    /// Two resources with one name would replace each other in Kubernetes; here both load and
    /// the first wins any host conflict, so say so.
    private static func warnAboutDuplicateNames(_ result: inout RegistryLoadResult) {
        var first: [String: SourceLocation] = [:]
        for entry in result.entries {
            let key = "\(entry.namespace)/\(entry.name)"
            if let earlier = first[key] {
                result.diagnostics.append(ConfigDiagnostic(
                    severity: .warning, path: entry.source.path, line: entry.source.line, resource: entry.resourceName,
                    message: "another ServiceEntry has the same namespace/name (\(earlier)); both are loaded and the earlier one wins conflicts"))
            } else {
                first[key] = entry.source
            }
        }
    }
}

/// Lexical path handling for config files: no file system access, so it is testable.
enum ConfigPath {
    /// `path` if absolute, else `base/path`, with `.` and `..` components and repeated slashes removed.
    static func resolve(_ path: String, relativeTo base: String) -> String {
        normalise(path.hasPrefix("/") || base.isEmpty ? path : join(base, path))
    }

    static func join(_ base: String, _ name: String) -> String {
        base.hasSuffix("/") ? base + name : base + "/" + name
    }

    /// The directory part of `path` (`.` when there is none).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    static func normalise(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." {
                parts.removeLast()
            } else if part == "..", absolute {
                continue  // "/.." is "/"
            } else {
                parts.append(part)
            }
        }
        let joined = parts.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }
}

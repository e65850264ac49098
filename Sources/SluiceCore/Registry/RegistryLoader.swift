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
    }
}

/// Loads Istio ServiceEntry resources from YAML (or JSON) text, files and directories.
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
        var result = RegistryLoadResult()
        let syntaxError = YAMLReader.forEachDocument(yaml: yaml, path: path) { document in
            parseResource(document, path: path, into: &result, inList: false)
        }
        if let syntaxError { result.diagnostics.append(syntaxError) }
        return result
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
                result.diagnostics.append(ConfigDiagnostic(path: path, message: "no such file or directory"))
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
            return RegistryLoadResult(diagnostics: [ConfigDiagnostic(path: path, message: "cannot read file")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return RegistryLoadResult(diagnostics: [ConfigDiagnostic(path: path, message: "not UTF-8 text")], files: [path])
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
            return RegistryLoadResult(diagnostics: [ConfigDiagnostic(path: directory, message: "cannot list directory")])
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
            if let entry { result.entries.append(entry) }
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

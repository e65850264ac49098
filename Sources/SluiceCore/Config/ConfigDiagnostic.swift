/// A problem found in a config or registry file, pointing at the file, line, resource and field.
///
/// Diagnostics are values, not log lines: `sluice check` prints them, the config watcher logs
/// them when it keeps the last good snapshot, and tests compare them exactly.
public struct ConfigDiagnostic: Error, Sendable, Equatable, CustomStringConvertible {
    /// How bad the problem is.
    public enum Severity: String, Sendable {
        /// The resource (or the whole file, for syntax errors) is not loaded.
        case error
        /// Loaded, but probably not what was meant.
        case warning
        /// Informational, e.g. a resource of another kind was skipped.
        case note
    }

    /// How bad the problem is.
    public var severity: Severity
    /// The file, as it was named when loaded.
    public var path: String
    /// 1-based line, when known.
    public var line: Int?
    /// The resource, e.g. `ServiceEntry default/aliyun`.
    public var resource: String?
    /// The field path, e.g. `spec.ports[0].number`.
    public var field: String?
    /// What is wrong, in one sentence without a trailing period.
    public var message: String

    /// Creates a diagnostic.
    public init(
        severity: Severity = .error,
        path: String,
        line: Int? = nil,
        resource: String? = nil,
        field: String? = nil,
        message: String
    ) {
        self.severity = severity
        self.path = path
        self.line = line
        self.resource = resource
        self.field = field
        self.message = message
    }

    /// True for `.error`.
    public var isError: Bool { severity == .error }

    /// `path:line: resource: field: message`, parts that are missing left out. Warnings and
    /// notes say so after the location, as compilers do; errors carry no prefix.
    public var description: String {
        var parts: [String] = []
        parts.append(line.map { "\(path):\($0)" } ?? path)
        if severity != .error { parts.append(severity.rawValue) }
        if let resource, !resource.isEmpty { parts.append(resource) }
        if let field, !field.isEmpty { parts.append(field) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }
}

/// The diagnostics of a load that failed; a collection of `ConfigDiagnostic`.
///
/// `Result` needs an `Error` as its failure type and an array is not one, so failures carry
/// this collection instead; iterate it, index it or call `.diagnostics` as with an array.
public struct ConfigDiagnostics: Error, Sendable, Equatable, RandomAccessCollection, CustomStringConvertible {
    /// The diagnostics, in file order.
    public var diagnostics: [ConfigDiagnostic]

    /// Wraps `diagnostics`.
    public init(_ diagnostics: [ConfigDiagnostic]) {
        self.diagnostics = diagnostics
    }

    /// The first index.
    public var startIndex: Int { diagnostics.startIndex }
    /// One past the last index.
    public var endIndex: Int { diagnostics.endIndex }
    /// The diagnostic at `position`.
    public subscript(position: Int) -> ConfigDiagnostic { diagnostics[position] }

    /// The errors only.
    public var errors: [ConfigDiagnostic] { diagnostics.filter(\.isError) }

    /// One diagnostic per line.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

import Yams

/// Why a manifest could not be injected, pointing at the file and line: `path:line: message`.
public struct InjectError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file as the user named it (`-` for standard input).
    public var path: String
    /// 1-based line, when known.
    public var line: Int?
    /// What is wrong, in one sentence without a trailing period.
    public var message: String

    /// Creates an error.
    public init(path: String, line: Int?, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    /// `path:line: message`.
    public var description: String {
        "\(line.map { "\(path):\($0)" } ?? path): \(message)"
    }

    /// A Yams parse error as `path:line: invalid YAML: …`.
    static func syntax(_ error: any Error, path: String) -> InjectError {
        switch error {
        case YamlError.scanner(let context, let problem, let mark, _),
             YamlError.parser(let context, let problem, let mark, _),
             YamlError.composer(let context, let problem, let mark, _):
            let detail = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return InjectError(path: path, line: mark.line, message: "invalid YAML: \(problem)\(detail)")
        case YamlError.duplicatedKeysInMapping(let duplicates, let context):
            return InjectError(
                path: path, line: context.mark.line,
                message: "invalid YAML: duplicate key \(duplicates.map { "\"\($0)\"" }.joined(separator: ", "))")
        case YamlError.reader(let problem, let offset, _, let yaml):
            let line = offset.map { offset in 1 + yaml.utf8.prefix(offset).reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) } }
            return InjectError(path: path, line: line, message: "invalid YAML: \(problem)")
        default:
            return InjectError(path: path, line: nil, message: "invalid YAML: \(error)")
        }
    }
}

/// Who the proxy works for: what `workloadSelector`, `Sidecar` selection, `exportTo`,
/// `sourceLabels` and ASM's `from` are matched against. At the gateway, the gateway's own
/// labels, which a Gateway's `selector` selects.
public struct WorkloadIdentity: Sendable, Equatable {
    /// The pod's namespace (`--namespace`, `POD_NAMESPACE`).
    public var namespace: String
    /// The pod's labels (`--labels-file`, the downward API's `labels` file).
    public var labels: [String: String]
    /// The pod's service account (`--service-account`, `SERVICE_ACCOUNT`).
    public var serviceAccount: String?

    /// Creates an identity.
    public init(namespace: String = "default", labels: [String: String] = [:], serviceAccount: String? = nil) {
        self.namespace = namespace
        self.labels = labels
        self.serviceAccount = serviceAccount
    }

    /// Kubernetes label selection: every label of `selector` is one of ours with that value;
    /// an empty selector selects everything.
    public func isSelected(by selector: [String: String]) -> Bool {
        selector.allSatisfy { labels[$0.key] == $0.value }
    }
}

/// The Kubernetes downward API's labels file (`fieldRef: metadata.labels`): one `key="value"`
/// per line, the value a Go-quoted string (`\"`, `\\`, `\n`, `\t`, `\xNN`, `\uNNNN`).
public enum LabelsFile {
    /// A line that is not `key="value"`.
    public struct LineError: Error, Equatable, CustomStringConvertible {
        /// 1-based line number.
        public var line: Int
        /// What is wrong.
        public var message: String

        public var description: String { "line \(line): \(message)" }
    }

    /// The labels in `text`; blank lines are skipped, a bad line fails the whole file (a
    /// half-read identity would select the wrong Sidecar).
    public static func parse(_ text: String) -> Result<[String: String], LineError> {
        var labels: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            guard let equals = line.firstIndex(of: "=") else {
                return .failure(LineError(line: index + 1, message: "expected key=\"value\""))
            }
            let key = String(line[..<equals])
            guard !key.isEmpty, !key.contains(where: { $0 == " " || $0 == "\"" }) else {
                return .failure(LineError(line: index + 1, message: "bad label name \"\(key)\""))
            }
            switch unquote(line[line.index(after: equals)...]) {
            case .success(let value): labels[key] = value
            case .failure(let problem): return .failure(LineError(line: index + 1, message: problem.message))
            }
        }
        return .success(labels)
    }

    /// Why a quoted value is not one.
    struct UnquoteError: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    /// A Go `strconv.Quote`d string.
    static func unquote(_ quoted: Substring) -> Result<String, UnquoteError> {
        var scalars = Array(quoted.unicodeScalars)
        guard scalars.count >= 2, scalars.first == "\"", scalars.last == "\"" else { return .failure(UnquoteError("the value must be in double quotes")) }
        scalars = Array(scalars.dropFirst().dropLast())
        var result = String.UnicodeScalarView()
        var index = 0
        func hex(_ count: Int) -> UInt32? {
            guard index + count <= scalars.count else { return nil }
            let digits = String(String.UnicodeScalarView(scalars[index..<(index + count)]))
            index += count
            return UInt32(digits, radix: 16)
        }
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            if scalar == "\"" { return .failure(UnquoteError("unescaped quote inside the value")) }
            guard scalar == "\\" else {
                result.append(scalar)
                continue
            }
            guard index < scalars.count else { return .failure(UnquoteError("a backslash ends the value")) }
            let escape = scalars[index]
            index += 1
            switch escape {
            case "\"": result.append("\"")
            case "\\": result.append("\\")
            case "n": result.append("\n")
            case "t": result.append("\t")
            case "r": result.append("\r")
            case "a": result.append("\u{07}")
            case "b": result.append("\u{08}")
            case "f": result.append("\u{0C}")
            case "v": result.append("\u{0B}")
            case "x", "u", "U":
                let count = escape == "x" ? 2 : (escape == "u" ? 4 : 8)
                guard let value = hex(count), let decoded = Unicode.Scalar(value) else { return .failure(UnquoteError("bad \\\(escape) escape")) }
                result.append(decoded)
            default:
                return .failure(UnquoteError("unknown escape \\\(escape)"))
            }
        }
        return .success(String(result))
    }
}

import Yams

/// Writes a Yams node tree as compact JSON: the AdmissionReview response and its JSONPatch
/// values. Scalars keep the type the YAML resolver gives them (a quoted `"15090"` stays a
/// string, a plain `15090` is a number), which is what Kubernetes' own YAML-to-JSON does.
enum JSONText {
    /// The JSON text of `node`.
    static func write(_ node: Node) -> String {
        var out = ""
        write(node, into: &out)
        return out
    }

    private static func write(_ node: Node, into out: inout String) {
        switch node {
        case .mapping(let mapping):
            out += "{"
            for (index, pair) in mapping.enumerated() {
                if index > 0 { out += "," }
                string(pair.key.scalar?.string ?? "", into: &out)
                out += ":"
                write(pair.value, into: &out)
            }
            out += "}"
        case .sequence(let sequence):
            out += "["
            for (index, item) in sequence.enumerated() {
                if index > 0 { out += "," }
                write(item, into: &out)
            }
            out += "]"
        case .scalar(let scalar):
            let tag = node.tag.rawValue
            if tag == Tag.Name.null.rawValue {
                out += "null"
            } else if tag == Tag.Name.bool.rawValue, let value = node.bool {
                out += value ? "true" : "false"
            } else if tag == Tag.Name.int.rawValue, let value = node.int {
                out += String(value)
            } else if tag == Tag.Name.float.rawValue, let value = node.float, value.isFinite {
                out += scalar.string.allSatisfy({ "0123456789.-+eE".contains($0) }) ? scalar.string : String(value)
            } else {
                string(scalar.string, into: &out)
            }
        case .alias:
            out += "null"
        }
    }

    /// A JSON string literal of `text`.
    static func string(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

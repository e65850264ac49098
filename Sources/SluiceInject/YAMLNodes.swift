import Yams

/// Small constructors and lookups on Yams node trees. Keys are compared as plain strings:
/// a key read from a file is tagged `str` by the resolver and one made here is not, so the
/// tree's own `==` would tell them apart.
enum YAMLNodes {
    /// A string scalar that the emitter quotes when it would otherwise read as something else
    /// (`"false"`, `"15090"`).
    static func string(_ value: String) -> Node {
        // The emitter writes a `str` scalar plain whenever it can, even when a reader would
        // then resolve it as a bool or a number: ask the resolver, and quote such values.
        let plain = Node.scalar(Node.Scalar(value))
        let style: Node.Scalar.Style = plain.tag.rawValue == Tag.Name.str.rawValue ? .any : .doubleQuoted
        return .scalar(Node.Scalar(value, Tag(.str), style))
    }

    /// An integer scalar.
    static func int(_ value: Int) -> Node {
        .scalar(Node.Scalar(String(value), Tag(.int)))
    }

    /// A boolean scalar.
    static func bool(_ value: Bool) -> Node {
        .scalar(Node.Scalar(value ? "true" : "false", Tag(.bool)))
    }

    /// A mapping with these keys, in this order.
    static func mapping(_ pairs: [(String, Node)]) -> Node {
        .mapping(Node.Mapping(pairs.map { (string($0.0), $0.1) }))
    }

    /// A sequence of these nodes.
    static func sequence(_ items: [Node]) -> Node {
        .sequence(Node.Sequence(items))
    }

    /// A sequence of strings.
    static func strings(_ items: [String]) -> Node {
        sequence(items.map(string))
    }

    /// The value of `key` in `mapping`.
    static func value(_ mapping: Node.Mapping, _ key: String) -> Node? {
        for (name, value) in mapping where name.scalar?.string == key { return value }
        return nil
    }

    /// The string value of `key`, when it is a scalar.
    static func text(_ mapping: Node.Mapping, _ key: String) -> String? {
        value(mapping, key)?.scalar?.string
    }

    /// Sets `key` to `value`, in place when the key exists, else at the end.
    static func set(_ mapping: inout Node.Mapping, _ key: String, _ value: Node) {
        if let index = mapping.firstIndex(where: { $0.key.scalar?.string == key }) {
            mapping[index] = (key: mapping[index].key, value: value)
        } else {
            mapping[string(key)] = value
        }
    }

    /// True for a scalar that means "true" the way Kubernetes' annotations do.
    static func isTrue(_ text: String?) -> Bool {
        guard let text else { return false }
        return ["true", "yes", "y", "on", "enabled"].contains(text.lowercased())
    }

    /// True for a scalar that means "false".
    static func isFalse(_ text: String?) -> Bool {
        guard let text else { return false }
        return ["false", "no", "n", "off", "disabled"].contains(text.lowercased())
    }

    /// The node's line, 1-based, when the parser recorded one.
    static func line(_ node: Node?) -> Int? { node?.mark?.line }
}

/// The request methods the proxy names (case-sensitive, as methods are); `other` for the rest.
public enum HTTP1Method: Sendable {
    case get, head, post, put, delete, patch, options, connect, other

    /// The method in the first `length` bytes of `raw`.
    init(_ raw: UnsafeRawBufferPointer, length: Int) {
        func matches(_ name: StaticString) -> Bool {
            name.utf8CodeUnitCount == length
                && name.withUTF8Buffer { HTTP1Bytes.equal(raw, 0..<length, $0, caseInsensitive: false) }
        }
        switch length {
        case 3: self = matches("GET") ? .get : matches("PUT") ? .put : .other
        case 4: self = matches("POST") ? .post : matches("HEAD") ? .head : .other
        case 5: self = matches("PATCH") ? .patch : .other
        case 6: self = matches("DELETE") ? .delete : .other
        case 7: self = matches("OPTIONS") ? .options : matches("CONNECT") ? .connect : .other
        default: self = .other
        }
    }
}

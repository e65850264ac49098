/// One field line of a head, as offsets into `HTTP1Head.bytes`'s readable bytes (0 = its readerIndex).
public struct HTTP1Field: Sendable, Equatable {
    /// The field name as sent (case preserved).
    public var name: Range<Int>
    /// The field value, leading and trailing whitespace (OWS) removed; may be empty.
    public var value: Range<Int>
    /// The whole line, name through the end of the value's trailing whitespace, CRLF excluded:
    /// what the proxy copies when it forwards the field unchanged.
    public var line: Range<Int>

    public init(name: Range<Int>, value: Range<Int>, line: Range<Int>) {
        self.name = name
        self.value = value
        self.line = line
    }
}

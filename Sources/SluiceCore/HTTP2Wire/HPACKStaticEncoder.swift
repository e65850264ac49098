public import NIOCore

/// An HPACK encoder (RFC 7541) that uses only the static table and literals, never Huffman
/// and never the dynamic table — what HAProxy's encoder sends. A relay re-encodes every
/// header block it forwards: this trades a few bytes per block for no per-field Huffman
/// encoding and no header-table search or eviction, and the peer's decoder state never
/// depends on ours (SETTINGS_HEADER_TABLE_SIZE may be anything; we use none of it).
///
/// Each field is one of (RFC 7541 §6.1, §6.2.2):
/// - an indexed field when name and value are a static-table entry (`:method GET` is 0x82);
/// - a literal without indexing whose name is a static-table index (`:path /sample/path` is
///   0x04 0x0c "/sample/path");
/// - a literal without indexing with a literal name.
public enum HPACKStaticEncoder {
    /// Appends one field to `block`. `name` must already be lowercase (HTTP/2 field names are).
    public static func append(name: String, value: String, to block: inout ByteBuffer) {
        if let entry = staticNames[name] {
            if let index = entry.values[value] {
                writeInteger(index, prefixBits: 7, firstByte: 0x80, to: &block)
                return
            }
            writeInteger(entry.first, prefixBits: 4, firstByte: 0x00, to: &block)
        } else {
            block.writeInteger(UInt8(0x00))
            writeString(name, to: &block)
        }
        writeString(value, to: &block)
    }

    /// An HPACK integer (RFC 7541 §5.1) with an N-bit prefix in the first byte.
    static func writeInteger(_ value: Int, prefixBits: Int, firstByte: UInt8, to block: inout ByteBuffer) {
        let limit = (1 << prefixBits) - 1
        if value < limit {
            block.writeInteger(firstByte | UInt8(value))
            return
        }
        block.writeInteger(firstByte | UInt8(limit))
        var rest = value - limit
        while rest >= 128 {
            block.writeInteger(UInt8(rest & 0x7f | 0x80))
            rest >>= 7
        }
        block.writeInteger(UInt8(rest))
    }

    /// A string literal without Huffman coding (RFC 7541 §5.2: H = 0, 7-bit length prefix).
    private static func writeString(_ string: String, to block: inout ByteBuffer) {
        writeInteger(string.utf8.count, prefixBits: 7, firstByte: 0x00, to: &block)
        block.writeString(string)
    }

    private struct NameEntry: Sendable {
        var first: Int
        var values: [String: Int]
    }

    /// RFC 7541 Appendix A, by name: the first index of each name and the indexes of its values.
    private static let staticNames: [String: NameEntry] = {
        var names: [String: NameEntry] = [:]
        for (offset, field) in staticTable.enumerated() {
            let index = offset + 1
            names[field.0, default: NameEntry(first: index, values: [:])].values[field.1] = index
        }
        return names
    }()

    /// RFC 7541 Appendix A: the static table, entries 1-61.
    static let staticTable: [(String, String)] = [
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
        (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
        (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
        ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
        ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
        ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""),
        ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""),
        ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""), ("if-unmodified-since", ""),
        ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
        ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""),
        ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
        ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ]
}

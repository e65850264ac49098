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
    ///
    /// One buffer operation per field: ByteBuffer's small writes each cost a uniqueness and an
    /// exclusivity check, which for a header block of short fields cost more than the bytes.
    public static func append(name: String, value: String, to block: inout ByteBuffer) {
        var name = name
        var value = value
        let nameBytes = name.utf8.count
        let valueBytes = value.utf8.count
        let entry = lookUp(name, length: nameBytes)
        if let entry, let index = entry.values.first(where: { $0.value == value })?.index {
            block.writeWithUnsafeMutableBytes(minimumWritableBytes: 8) { out in
                writeInteger(index, prefixBits: 7, firstByte: 0x80, to: out, at: 0)
            }
            return
        }
        // Two integers of at most 5 bytes each (lengths < 2^28), a name index or a literal name.
        block.writeWithUnsafeMutableBytes(minimumWritableBytes: nameBytes + valueBytes + 16) { out in
            var at: Int
            if let entry {
                at = writeInteger(entry.first, prefixBits: 4, firstByte: 0x00, to: out, at: 0)
            } else {
                out[0] = 0x00
                at = writeInteger(nameBytes, prefixBits: 7, firstByte: 0x00, to: out, at: 1)
                at = copy(&name, to: out, at: at)
            }
            at = writeInteger(valueBytes, prefixBits: 7, firstByte: 0x00, to: out, at: at)
            return copy(&value, to: out, at: at)
        }
    }

    /// The string's UTF-8 at `at`; returns the index after it.
    private static func copy(_ string: inout String, to out: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        string.withUTF8 { utf8 in
            guard let base = utf8.baseAddress, let target = out.baseAddress, utf8.count > 0 else { return at + utf8.count }
            (target + at).copyMemory(from: base, byteCount: utf8.count)
            return at + utf8.count
        }
    }

    /// An HPACK integer (RFC 7541 §5.1) with an N-bit prefix in the first byte, written at `at`
    /// (room checked by the caller); returns the index after it.
    @discardableResult
    static func writeInteger(_ value: Int, prefixBits: Int, firstByte: UInt8, to out: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        let limit = (1 << prefixBits) - 1
        if value < limit {
            out[at] = firstByte | UInt8(value)
            return at + 1
        }
        out[at] = firstByte | UInt8(limit)
        var index = at + 1
        var rest = value - limit
        while rest >= 128 {
            out[index] = UInt8(rest & 0x7f | 0x80)
            index += 1
            rest >>= 7
        }
        out[index] = UInt8(rest)
        return index + 1
    }

    /// The static-table entry of `name`: names of the same length compared, no hashing.
    private static func lookUp(_ name: String, length: Int) -> NameEntry? {
        guard length < byLength.count else { return nil }
        for entry in byLength[length] where entry.name == name { return entry }
        return nil
    }

    private struct NameEntry: Sendable {
        var name: String
        var first: Int
        var values: [(value: String, index: Int)]
    }

    /// RFC 7541 Appendix A by name length: each name's first index and its values' indexes.
    private static let byLength: [[NameEntry]] = {
        var buckets: [[NameEntry]] = Array(repeating: [], count: 28)
        for (offset, field) in staticTable.enumerated() {
            let index = offset + 1
            let length = field.0.utf8.count
            if let at = buckets[length].firstIndex(where: { $0.name == field.0 }) {
                buckets[length][at].values.append((field.1, index))
            } else {
                buckets[length].append(NameEntry(name: field.0, first: index, values: [(field.1, index)]))
            }
        }
        return buckets
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

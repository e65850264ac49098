public import NIOCore

/// Result of peeking at the first bytes a client sent.
public enum ClientHelloParseResult: Equatable, Sendable {
    /// A valid prefix of a TLS handshake; the caller should read more bytes and ask again.
    case incomplete
    /// The first bytes are not a TLS handshake record (`0x16 0x03 0x0X ...`): classify as HTTP or opaque TCP.
    case notTLS
    /// A TLS handshake record that is invalid; the message says why.
    case malformed(String)
    /// A complete ClientHello; `serverName` is the SNI host_name (lowercased ASCII, trailing dot
    /// stripped) or nil when the client sent no SNI.
    case clientHello(serverName: String?)
}

/// Finds the SNI host name in the first bytes of a TLS connection, without consuming them.
///
/// Pure and allocation-light: a ClientHello carried in one record (what every real client sends)
/// is read in place; one split across records is reassembled into a single array. The parser is
/// total: every input, however hostile, gives one of the four results and never traps.
public enum ClientHelloParser {
    /// Max bytes of ClientHello we will buffer: the records that carry it, headers included, must
    /// end within the first `maxClientHelloBytes` bytes of the stream.
    ///
    /// This is one maximum-size TLS record (2^14 bytes of payload, RFC 8446 §5.1, plus its 5-byte
    /// header). Real ClientHellos are 200–2,000 bytes (larger with post-quantum key shares), so
    /// this is generous while bounding what a sniffer holds per connection, as Envoy's
    /// tls_inspector does. Anything larger is `.malformed("ClientHello too large")`.
    public static let maxClientHelloBytes: Int = maxRecordPayload + recordHeaderLength

    /// Parses from the buffer's readerIndex without consuming it.
    public static func parse(_ buffer: ByteBuffer) -> ClientHelloParseResult {
        buffer.withUnsafeReadableBytes { parse(wire: $0) }
    }

    /// Parses raw bytes (the start of the stream), like `parse(_: ByteBuffer)`.
    public static func parse<Bytes: Collection>(_ bytes: Bytes) -> ClientHelloParseResult
    where Bytes.Element == UInt8 {
        if let result = bytes.withContiguousStorageIfAvailable({ parse(wire: UnsafeRawBufferPointer($0)) }) {
            return result
        }
        // Nothing past the cap can change the answer, so copy at most that much.
        let copy = Array(bytes.prefix(maxClientHelloBytes))
        return copy.withUnsafeBytes { parse(wire: $0) }
    }

    /// Parses a bare TLS Handshake message, without the record layer: how QUIC carries the
    /// ClientHello, in CRYPTO frames (RFC 9001 §4). `.incomplete` until the message's advertised
    /// length has arrived; `.notTLS` never (the caller knows it is a handshake).
    public static func parse<Bytes: Collection<UInt8>>(handshakeMessage bytes: Bytes) -> ClientHelloParseResult {
        let message = Array(bytes.prefix(maxClientHelloBytes + 1))
        guard let type = message.first else { return .incomplete }
        guard type == handshakeTypeClientHello else {
            return .malformed("handshake message type \(type) is not client_hello")
        }
        guard message.count >= handshakeHeaderLength else { return .incomplete }
        let total = handshakeHeaderLength + (Int(message[1]) << 16 | Int(message[2]) << 8 | Int(message[3]))
        if total > maxClientHelloBytes { return .malformed("ClientHello too large") }
        guard message.count >= total else { return .incomplete }
        return message.withUnsafeBytes { parseClientHello(ByteReader($0, 0..<total)) }
    }
}

// MARK: - Record layer

extension ClientHelloParser {
    static let recordHeaderLength = 5
    static let maxRecordPayload = 1 << 14
    static let handshakeHeaderLength = 4

    static let contentTypeHandshake: UInt8 = 0x16
    static let handshakeTypeClientHello: UInt8 = 0x01
    static let extensionTypeServerName: UInt16 = 0x0000
    static let nameTypeHostName: UInt8 = 0x00
    static let maxHostNameLength = 255

    /// Where the ClientHello handshake message lives once it is complete.
    private enum HandshakeBytes {
        /// Entirely inside the first record's payload: read it in place.
        case inPlace(Range<Int>)
        /// Spread over several records: the fragments concatenated.
        case reassembled([UInt8])
    }

    private enum Gathered {
        case complete(HandshakeBytes)
        case stop(ClientHelloParseResult)
    }

    static func parse(wire: UnsafeRawBufferPointer) -> ClientHelloParseResult {
        switch gatherHandshake(wire: wire) {
        case .stop(let result):
            return result
        case .complete(.inPlace(let range)):
            return parseClientHello(ByteReader(wire, range))
        case .complete(.reassembled(let bytes)):
            return bytes.withUnsafeBytes { parseClientHello(ByteReader($0, 0..<$0.count)) }
        }
    }

    /// True when the byte at `index` could be part of a handshake record header at
    /// `headerStart`; answers for a partial header too, so that prefixes stay `.incomplete`.
    ///
    /// ```
    /// struct {
    ///     ContentType type;                     // handshake(22)
    ///     ProtocolVersion legacy_record_version; // 0x0301 in practice; 0x0300..0x0304 accepted
    ///     uint16 length;                        // 1..2^14 for handshake records
    ///     opaque fragment[TLSPlaintext.length];
    /// } TLSPlaintext;                           // RFC 8446 §5.1, RFC 5246 §6.2.1
    /// ```
    private static func headerBytesLookTLS(_ wire: UnsafeRawBufferPointer, headerStart: Int) -> Bool {
        let available = min(wire.count - headerStart, 3)
        if available >= 1, wire[headerStart] != contentTypeHandshake { return false }
        if available >= 2, wire[headerStart + 1] != 0x03 { return false }
        if available >= 3, wire[headerStart + 2] > 0x04 { return false }
        return true
    }

    /// Walks consecutive handshake records and collects the first handshake message.
    ///
    /// ```
    /// struct {
    ///     HandshakeType msg_type;   // client_hello(1)
    ///     uint24 length;
    ///     ClientHello body;         // may be fragmented over several records
    /// } Handshake;                  // RFC 8446 §4, RFC 5246 §7.4
    /// ```
    private static func gatherHandshake(wire: UnsafeRawBufferPointer) -> Gathered {
        if wire.isEmpty { return .stop(.incomplete) }
        // Anything that does not start like a handshake record (HTTP, SSLv2's high-bit length,
        // an alert) is someone else's protocol, not a broken TLS one.
        guard headerBytesLookTLS(wire, headerStart: 0) else { return .stop(.notTLS) }

        var recordStart = 0
        var reassembled: [UInt8]? = nil
        var firstPayload = 0..<0
        var collected = 0  // handshake bytes seen so far, over all records
        var messageLength: Int? = nil  // header + body, once the header is known

        while true {
            // Bytes of the handshake stream still needed: at least the 4-byte header.
            let needed = (messageLength ?? handshakeHeaderLength) - collected
            if recordStart + recordHeaderLength + needed > maxClientHelloBytes {
                return .stop(.malformed("ClientHello too large"))
            }
            guard wire.count - recordStart >= recordHeaderLength else {
                if headerBytesLookTLS(wire, headerStart: recordStart) { return .stop(.incomplete) }
                return .stop(.malformed(unexpectedRecordMessage(wire, recordStart)))
            }
            guard headerBytesLookTLS(wire, headerStart: recordStart) else {
                return .stop(.malformed(unexpectedRecordMessage(wire, recordStart)))
            }
            let recordLength = Int(wire[recordStart + 3]) << 8 | Int(wire[recordStart + 4])
            // RFC 8446 §5.1: handshake fragments are never empty and never exceed 2^14 bytes.
            if recordLength == 0 { return .stop(.malformed("empty handshake record")) }
            if recordLength > maxRecordPayload { return .stop(.malformed("record length \(recordLength) exceeds 2^14")) }

            let payloadStart = recordStart + recordHeaderLength
            let payloadEnd = payloadStart + recordLength
            let availableEnd = min(payloadEnd, wire.count)
            let fragment = payloadStart..<availableEnd

            if recordStart == 0 {
                firstPayload = fragment
            } else {
                if reassembled == nil {
                    var bytes: [UInt8] = []
                    bytes.reserveCapacity(min(messageLength ?? 512, maxClientHelloBytes))
                    bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: wire[firstPayload]))
                    reassembled = bytes
                }
                let take = min(fragment.count, (messageLength ?? Int.max) - collected)
                reassembled?.append(
                    contentsOf: UnsafeRawBufferPointer(rebasing: wire[fragment.lowerBound..<(fragment.lowerBound + take)])
                )
            }
            collected += fragment.count

            // Read the handshake header as soon as its bytes exist, wherever they landed.
            if messageLength == nil {
                // Byte `i` of the handshake stream, if it has arrived.
                func handshakeByte(_ i: Int) -> UInt8? {
                    if let reassembled { return i < reassembled.count ? reassembled[i] : nil }
                    return i < firstPayload.count ? wire[firstPayload.lowerBound + i] : nil
                }
                if let typeByte = handshakeByte(0), typeByte != handshakeTypeClientHello {
                    return .stop(.malformed("handshake message type \(typeByte) is not client_hello"))
                }
                if let b1 = handshakeByte(1), let b2 = handshakeByte(2), let b3 = handshakeByte(3) {
                    let total = handshakeHeaderLength + (Int(b1) << 16 | Int(b2) << 8 | Int(b3))
                    messageLength = total
                    // The message must end within the cap: its bytes still to come, counted from
                    // where this fragment's share of it starts on the wire.
                    let wireEnd = payloadStart + (total - (collected - fragment.count))
                    if wireEnd > maxClientHelloBytes { return .stop(.malformed("ClientHello too large")) }
                    // Anything after the message in a later record is not part of it.
                    if let count = reassembled?.count, count > total {
                        reassembled?.removeLast(count - total)
                    }
                }
            }

            if let total = messageLength, collected >= total {
                if let reassembled { return .complete(.reassembled(reassembled)) }
                let start = firstPayload.lowerBound
                return .complete(.inPlace(start..<(start + total)))
            }
            if availableEnd < payloadEnd { return .stop(.incomplete) }
            recordStart = payloadEnd
        }
    }

    private static func unexpectedRecordMessage(_ wire: UnsafeRawBufferPointer, _ start: Int) -> String {
        let type = wire[start]
        if type != contentTypeHandshake { return "record type \(type) before the ClientHello was complete" }
        return "bad record version in a handshake record"
    }
}

// MARK: - ClientHello

extension ClientHelloParser {
    /// Reads the ClientHello body (the handshake message without its 4-byte header is skipped here).
    ///
    /// ```
    /// struct {
    ///     ProtocolVersion legacy_version;          // 0x0303 for TLS 1.2 and 1.3
    ///     Random random;                           // 32 bytes
    ///     opaque legacy_session_id<0..32>;
    ///     CipherSuite cipher_suites<2..2^16-2>;    // uint16 each
    ///     opaque legacy_compression_methods<1..2^8-1>;
    ///     Extension extensions<8..2^16-1>;         // absent entirely in a bare TLS 1.2 hello
    /// } ClientHello;                               // RFC 8446 §4.1.2, RFC 5246 §7.4.1.2
    ///
    /// struct {
    ///     ExtensionType extension_type;            // server_name(0)
    ///     opaque extension_data<0..2^16-1>;
    /// } Extension;                                 // RFC 8446 §4.2
    /// ```
    private static func parseClientHello(_ message: ByteReader) -> ClientHelloParseResult {
        var message = message
        guard message.skip(handshakeHeaderLength) else { return .malformed("truncated handshake header") }
        var body = message  // exactly the advertised body length: gatherHandshake sliced it

        guard let major = body.readUInt8(), body.skip(1) else { return .malformed("truncated legacy_version") }
        guard major == 0x03 else { return .malformed("ClientHello legacy_version major \(major) is not 3") }
        guard body.skip(32) else { return .malformed("truncated random") }

        guard let sessionID = body.readVector8() else { return .malformed("truncated legacy_session_id") }
        guard sessionID.remaining <= 32 else { return .malformed("legacy_session_id longer than 32 bytes") }

        guard let cipherSuites = body.readVector16() else { return .malformed("truncated cipher_suites") }
        guard cipherSuites.remaining >= 2, cipherSuites.remaining % 2 == 0 else {
            return .malformed("cipher_suites length \(cipherSuites.remaining) is not a positive even number")
        }

        guard let compression = body.readVector8() else { return .malformed("truncated legacy_compression_methods") }
        guard compression.remaining >= 1 else { return .malformed("empty legacy_compression_methods") }

        // RFC 5246 §7.4.1.2: a TLS 1.2 client may omit the extensions block altogether.
        if body.remaining == 0 { return .clientHello(serverName: nil) }

        guard var extensions = body.readVector16() else { return .malformed("truncated extensions block") }
        guard body.remaining == 0 else { return .malformed("\(body.remaining) bytes after the extensions block") }

        var serverName: String? = nil
        var sawServerName = false
        while extensions.remaining > 0 {
            guard let type = extensions.readUInt16() else { return .malformed("truncated extension type") }
            guard let data = extensions.readVector16() else { return .malformed("truncated extension \(type)") }
            guard type == extensionTypeServerName else { continue }
            // RFC 8446 §4.2: no extension type may appear twice.
            if sawServerName { return .malformed("duplicate server_name extension") }
            sawServerName = true
            switch parseServerNameExtension(data) {
            case .success(let name): serverName = name
            case .failure(let reason): return .malformed(reason.message)
            }
        }
        return .clientHello(serverName: serverName)
    }

    private struct Reason: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    /// Reads the server_name extension's data.
    ///
    /// ```
    /// struct {
    ///     NameType name_type;                      // host_name(0)
    ///     select (name_type) {
    ///         case host_name: HostName;
    ///     } name;
    /// } ServerName;
    /// opaque HostName<1..2^16-1>;
    /// struct {
    ///     ServerName server_name_list<1..2^16-1>
    /// } ServerNameList;                            // RFC 6066 §3
    /// ```
    private static func parseServerNameExtension(_ data: ByteReader) -> Result<String?, Reason> {
        var data = data
        guard var list = data.readVector16() else { return .failure(Reason("truncated server_name list")) }
        guard data.remaining == 0 else { return .failure(Reason("bytes after the server_name list")) }
        guard list.remaining > 0 else { return .failure(Reason("empty server_name list")) }

        var hostName: String? = nil
        while list.remaining > 0 {
            guard let nameType = list.readUInt8() else { return .failure(Reason("truncated server name type")) }
            // Unknown name types carry the same uint16-prefixed opaque in every implementation,
            // so they can be skipped rather than rejected.
            guard let name = list.readVector16() else { return .failure(Reason("truncated server name")) }
            guard nameType == nameTypeHostName else { continue }
            // RFC 6066 §3: at most one name of each type.
            if hostName != nil { return .failure(Reason("more than one host_name in server_name")) }
            switch validatedHostName(name) {
            case .success(let validated): hostName = validated
            case .failure(let reason): return .failure(reason)
            }
        }
        return .success(hostName)
    }

    /// Checks a host_name is plain ASCII hostname characters and returns it lowercased,
    /// without a trailing dot, so that policy matching sees one spelling per name.
    private static func validatedHostName(_ name: ByteReader) -> Result<String, Reason> {
        let bytes = name.unreadBytes
        guard bytes.count <= maxHostNameLength else {
            return .failure(Reason("host_name longer than \(maxHostNameLength) bytes"))
        }
        for byte in bytes where !isHostNameByte(byte) {
            return .failure(Reason("host_name contains byte 0x\(String(byte, radix: 16))"))
        }
        var length = bytes.count
        if length > 0, bytes[bytes.count - 1] == UInt8(ascii: ".") { length -= 1 }
        guard length > 0 else { return .failure(Reason("empty host_name")) }
        // One spelling per name: "a..", ".a" and "a..b" have an empty label, so no DNS name is
        // spelt that way; "a.." would otherwise come out as "a." and dodge exact-host rules.
        var previous = UInt8(ascii: ".")
        for i in 0..<bytes.count {
            if bytes[i] == UInt8(ascii: "."), previous == UInt8(ascii: ".") {
                return .failure(Reason("host_name has an empty label"))
            }
            previous = bytes[i]
        }
        let lowered = String(unsafeUninitializedCapacity: length) { out in
            for i in 0..<length {
                let byte = bytes[i]
                out[i] = (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
            }
            return length
        }
        return .success(lowered)
    }

    private static func isHostNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }
}

// MARK: - Bounds-checked reader

/// A cursor over a fixed window of bytes. Every read checks the window first and returns nil
/// when the bytes are not there, so a lying length field can never read outside its parent.
private struct ByteReader {
    private let base: UnsafeRawBufferPointer
    private var position: Int
    private let end: Int

    /// `window` must lie inside `base`; callers only pass ranges they have already checked.
    init(_ base: UnsafeRawBufferPointer, _ window: Range<Int>) {
        self.base = base
        let lower = max(0, min(window.lowerBound, base.count))
        self.position = lower
        self.end = max(lower, min(window.upperBound, base.count))
    }

    var remaining: Int { end - position }

    /// The bytes not read yet, indexed from zero.
    var unreadBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: base[position..<end]) }

    mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, count <= remaining else { return false }
        position += count
        return true
    }

    mutating func readUInt8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { position += 1 }
        return base[position]
    }

    mutating func readUInt16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { position += 2 }
        return UInt16(base[position]) << 8 | UInt16(base[position + 1])
    }

    /// Reads a `<..2^8-1>` vector: a 1-byte length, then a reader over exactly that many bytes.
    mutating func readVector8() -> ByteReader? {
        guard let length = readUInt8() else { return nil }
        return readSlice(Int(length))
    }

    /// Reads a `<..2^16-1>` vector: a 2-byte length, then a reader over exactly that many bytes.
    mutating func readVector16() -> ByteReader? {
        guard let length = readUInt16() else { return nil }
        return readSlice(Int(length))
    }

    private mutating func readSlice(_ length: Int) -> ByteReader? {
        guard length <= remaining else { return nil }
        defer { position += length }
        return ByteReader(base, position..<(position + length))
    }
}

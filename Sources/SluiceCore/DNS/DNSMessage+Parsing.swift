/// Reading DNS messages from the wire (RFC 1035 4.1), hostile input in mind: every read is
/// bounds-checked, a compression pointer must point backwards (so no loop can be built) and
/// at most 64 of them are followed per name, names are at most 255 bytes and labels 63 bytes of
/// printable ASCII without dots, and counts are capped, so a small datagram cannot make the
/// parser do much work.
extension DNSMessage {
    /// Why a message could not be read.
    public enum ParseError: Error, Sendable, Equatable {
        /// The message ends inside the header, a name or a record.
        case truncated
        /// A name is malformed: a bad label length, a forward or looping pointer, too long.
        case badName
        /// More questions or records than a real message carries.
        case tooManyRecords
    }

    /// The most questions and answers read from one message.
    public static let maxRecords = 64

    /// Parses `bytes` (a whole message: a UDP payload, or a TCP message without its length
    /// prefix). Authority and additional sections are not read.
    public static func parse(_ bytes: some Collection<UInt8>) throws(ParseError) -> DNSMessage {
        var reader = DNSReader(Array(bytes))
        let id = try reader.u16()
        let flags = try reader.u16()
        let questionCount = Int(try reader.u16())
        let answerCount = Int(try reader.u16())
        _ = try reader.u16()  // NSCOUNT
        _ = try reader.u16()  // ARCOUNT
        guard questionCount <= maxRecords, answerCount <= maxRecords else { throw .tooManyRecords }
        var questions: [DNSQuestion] = []
        for _ in 0..<questionCount {
            let name = try reader.name()
            let type = DNSRecordType(rawValue: try reader.u16())
            questions.append(DNSQuestion(name: name, type: type, class: try reader.u16()))
        }
        var answers: [DNSRecord] = []
        for _ in 0..<answerCount {
            let name = try reader.name()
            let type = DNSRecordType(rawValue: try reader.u16())
            let recordClass = try reader.u16()
            let ttl = try reader.u32()
            let length = Int(try reader.u16())
            let start = reader.offset
            guard let end = reader.offset.checkedAdding(length), end <= reader.bytes.count else { throw .truncated }
            let data: DNSRecord.Data
            switch type {
            case .a where length == 4, .aaaa where length == 16:
                guard let address = IPAddress(bytes: reader.bytes[start..<end]) else { throw .truncated }
                data = .address(address)
            case .cname:
                data = .canonicalName(try reader.name())
            default:
                data = .raw(type: type, bytes: Array(reader.bytes[start..<end]))
            }
            reader.offset = end
            answers.append(DNSRecord(name: name, ttl: ttl, data: data, class: recordClass))
        }
        return DNSMessage(id: id, flags: flags, questions: questions, answers: answers)
    }
}

/// A cursor over a message's bytes.
struct DNSReader {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func u8() throws(DNSMessage.ParseError) -> UInt8 {
        guard offset < bytes.count else { throw .truncated }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws(DNSMessage.ParseError) -> UInt16 {
        UInt16(try u8()) << 8 | UInt16(try u8())
    }

    mutating func u32() throws(DNSMessage.ParseError) -> UInt32 {
        UInt32(try u16()) << 16 | UInt32(try u16())
    }

    /// Reads a possibly compressed name at the cursor; the cursor ends after the name's
    /// bytes at this position (after the first pointer, if any). Lowercased, dot-joined.
    mutating func name() throws(DNSMessage.ParseError) -> String {
        var labels: [String] = []
        var wireLength = 1
        var position = offset
        var jumps = 0
        var resumeAt: Int?
        while true {
            guard position < bytes.count else { throw .truncated }
            let length = Int(bytes[position])
            switch length & 0xC0 {
            case 0xC0:
                guard position + 1 < bytes.count else { throw .truncated }
                let target = (length & 0x3F) << 8 | Int(bytes[position + 1])
                // Backwards only: every jump lands strictly before the last, so no loop.
                guard target < position, jumps < 64 else { throw .badName }
                jumps += 1
                if resumeAt == nil { resumeAt = position + 2 }
                position = target
            case 0x00:
                if length == 0 {
                    offset = resumeAt ?? position + 1
                    return labels.joined(separator: ".")
                }
                guard position + 1 + length <= bytes.count else { throw .truncated }
                wireLength += length + 1
                guard wireLength <= 255 else { throw .badName }
                let label = bytes[(position + 1)...(position + length)]
                // Printable ASCII without dots only: a dot or a raw byte inside a label would make
                // the text name differ from the wire name the upstream resolves (a registered-looking
                // text for another name), so such a name is refused rather than rendered.
                guard label.allSatisfy({ (0x21...0x7E).contains($0) && $0 != UInt8(ascii: ".") }) else { throw .badName }
                labels.append(String(decoding: label.map(DNSReader.lowercased), as: UTF8.self))
                position += 1 + length
            default:
                throw .badName  // 0x40 and 0x80: extended label types, obsolete
            }
        }
    }

    static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }
}

extension Int {
    fileprivate func checkedAdding(_ other: Int) -> Int? {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? nil : sum
    }
}

/// A DNS message (RFC 1035 section 4): the header fields Sluice reads or sets, the questions,
/// and the answer records it understands (A, AAAA, CNAME; others kept as raw data).
public struct DNSMessage: Sendable, Equatable {
    /// The query id, echoed in the response.
    public var id: UInt16
    /// The flags word: QR, opcode, AA, TC, RD, RA, rcode.
    public var flags: UInt16
    /// The question section (one question in practice).
    public var questions: [DNSQuestion]
    /// The answer section.
    public var answers: [DNSRecord]

    /// Creates a message.
    public init(id: UInt16, flags: UInt16, questions: [DNSQuestion], answers: [DNSRecord] = []) {
        self.id = id
        self.flags = flags
        self.questions = questions
        self.answers = answers
    }

    /// True for a response (QR set), false for a query.
    public var isResponse: Bool { flags & 0x8000 != 0 }
    /// The opcode (0: standard query).
    public var opcode: UInt8 { UInt8((flags >> 11) & 0xF) }
    /// The response code (0 NOERROR, 3 NXDOMAIN, 5 REFUSED).
    public var rcode: DNSResponseCode { DNSResponseCode(rawValue: UInt8(flags & 0xF)) }

    /// The response to this query with `rcode` and `answers`: same id and question, QR and RA
    /// set, RD copied, AA set when answering from the registry (we are the authority there).
    public func response(rcode: DNSResponseCode, answers: [DNSRecord] = [], authoritative: Bool = false) -> DNSMessage {
        var flags: UInt16 = 0x8000 | 0x0080 | (self.flags & 0x0100) | (self.flags & 0x7800)
        if authoritative { flags |= 0x0400 }
        flags |= UInt16(rcode.rawValue & 0xF)
        return DNSMessage(id: id, flags: flags, questions: questions, answers: answers)
    }
}

/// A DNS response code.
public struct DNSResponseCode: RawRepresentable, Sendable, Equatable, CustomStringConvertible {
    /// The 4-bit code.
    public let rawValue: UInt8
    /// Creates a code from its number.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// No error.
    public static let noError = DNSResponseCode(rawValue: 0)
    /// The server failed.
    public static let serverFailure = DNSResponseCode(rawValue: 2)
    /// The name does not exist.
    public static let nameError = DNSResponseCode(rawValue: 3)
    /// The server refuses to answer.
    public static let refused = DNSResponseCode(rawValue: 5)

    /// The name dig prints (`NXDOMAIN`…).
    public var description: String {
        switch rawValue {
        case 0: return "NOERROR"
        case 1: return "FORMERR"
        case 2: return "SERVFAIL"
        case 3: return "NXDOMAIN"
        case 4: return "NOTIMP"
        case 5: return "REFUSED"
        default: return "RCODE\(rawValue)"
        }
    }
}

/// A record type number (RFC 1035 3.2.2, RFC 3596).
public struct DNSRecordType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The 16-bit type.
    public let rawValue: UInt16
    /// Creates a type from its number.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// IPv4 address.
    public static let a = DNSRecordType(rawValue: 1)
    /// Canonical name.
    public static let cname = DNSRecordType(rawValue: 5)
    /// IPv6 address.
    public static let aaaa = DNSRecordType(rawValue: 28)

    /// `A`, `AAAA`, `CNAME`, or `TYPE<n>`.
    public var description: String {
        switch self {
        case .a: return "A"
        case .aaaa: return "AAAA"
        case .cname: return "CNAME"
        default: return "TYPE\(rawValue)"
        }
    }
}

/// One question: a name (lowercase, no trailing dot), a type and a class.
public struct DNSQuestion: Sendable, Equatable {
    /// The queried name, lowercased, without the trailing dot ("" is the root).
    public var name: String
    /// The queried type.
    public var type: DNSRecordType
    /// The class (1: IN).
    public var `class`: UInt16

    /// Creates a question (class IN by default).
    public init(name: String, type: DNSRecordType, class: UInt16 = 1) {
        self.name = name
        self.type = type
        self.class = `class`
    }
}

/// One resource record of the answer section.
public struct DNSRecord: Sendable, Equatable {
    /// What a record holds.
    public enum Data: Sendable, Equatable {
        /// An A or AAAA record's address.
        case address(IPAddress)
        /// A CNAME's target (lowercase, no trailing dot).
        case canonicalName(String)
        /// Any other type, as it was on the wire.
        case raw(type: DNSRecordType, bytes: [UInt8])
    }

    /// The owner name (lowercase, no trailing dot).
    public var name: String
    /// Seconds the record may be cached.
    public var ttl: UInt32
    /// The record's data.
    public var data: Data
    /// The class (1: IN).
    public var `class`: UInt16

    /// Creates a record (class IN by default).
    public init(name: String, ttl: UInt32, data: Data, class: UInt16 = 1) {
        self.name = name
        self.ttl = ttl
        self.data = data
        self.class = `class`
    }

    /// The record's type, from its data.
    public var type: DNSRecordType {
        switch data {
        case .address(let address): return address.isIPv4 ? .a : .aaaa
        case .canonicalName: return .cname
        case .raw(let type, _): return type
        }
    }
}

/// Writing DNS messages (RFC 1035 4.1). Names are compressed against the names already
/// written (4.1.4), which keeps answers to the question's name at two bytes each.
extension DNSMessage {
    /// Why a message could not be written.
    public enum WriteError: Error, Sendable, Equatable {
        /// A name has an empty label (or a trailing dot), a label over 63 bytes, or is over 255 bytes.
        case badName(String)
    }

    /// The message as wire bytes (no TCP length prefix).
    public func serialized() throws(WriteError) -> [UInt8] {
        try serializedWithTTLOffsets().bytes
    }

    /// The wire bytes and where each answer's TTL field is in them (for the answer cache,
    /// which patches TTLs in place).
    func serializedWithTTLOffsets() throws(WriteError) -> (bytes: [UInt8], ttlOffsets: [Int]) {
        var writer = DNSWriter()
        var ttlOffsets: [Int] = []
        ttlOffsets.reserveCapacity(answers.count)
        writer.u16(id)
        writer.u16(flags)
        writer.u16(UInt16(clamping: questions.count))
        writer.u16(UInt16(clamping: answers.count))
        writer.u16(0)
        writer.u16(0)
        for question in questions {
            try writer.name(question.name)
            writer.u16(question.type.rawValue)
            writer.u16(question.class)
        }
        for record in answers {
            try writer.name(record.name)
            writer.u16(record.type.rawValue)
            writer.u16(record.class)
            ttlOffsets.append(writer.bytes.count)
            writer.u32(record.ttl)
            let lengthAt = writer.bytes.count
            writer.u16(0)
            switch record.data {
            case .address(let address): writer.bytes += address.bytes
            case .canonicalName(let target): try writer.name(target)
            case .raw(_, let bytes): writer.bytes += bytes
            }
            let length = writer.bytes.count - lengthAt - 2
            writer.bytes[lengthAt] = UInt8(truncatingIfNeeded: length >> 8)
            writer.bytes[lengthAt + 1] = UInt8(truncatingIfNeeded: length)
        }
        return (writer.bytes, ttlOffsets)
    }
}

struct DNSWriter {
    var bytes: [UInt8] = []
    /// Offsets of names (and their suffixes) already written, for compression pointers.
    private var written: [String: Int] = [:]

    mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    mutating func u32(_ value: UInt32) {
        u16(UInt16(truncatingIfNeeded: value >> 16))
        u16(UInt16(truncatingIfNeeded: value))
    }

    mutating func name(_ name: String) throws(DNSMessage.WriteError) {
        // Names are written as the parser gives them: no trailing dot ("" is the root).
        let labels = name.isEmpty ? [] : name.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 63 }),
              labels.reduce(1, { $0 + $1.utf8.count + 1 }) <= 255
        else { throw .badName(name) }
        for index in labels.indices {
            let suffix = labels[index...].joined(separator: ".").lowercased()
            if let at = written[suffix] {
                u16(0xC000 | UInt16(at))
                return
            }
            if bytes.count < 0x3FFF { written[suffix] = bytes.count }
            bytes.append(UInt8(labels[index].utf8.count))
            bytes += labels[index].utf8
        }
        bytes.append(0)
    }
}

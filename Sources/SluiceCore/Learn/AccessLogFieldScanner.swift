/// Reads the few top-level string fields `sluice learn` needs from one JSON object in a single
/// pass, validating the syntax of the whole object (strict RFC 8259) on the way.
///
/// Why not `JSONDecoder`: measured on a million sidecar lines (680 MB), decoding with it took
/// ~7 of the 10 s `sluice learn` needed, most of it making a String of every one of the 25 keys
/// of every line. This scanner makes Strings of the 8 wanted values only, and agrees with
/// `JSONDecoder` wherever it accepts a line: the same fields (the first of a repeated key),
/// "another shape" where a wanted field is not a string or null, and "not JSON" wherever the
/// decoder finds it corrupt. It is stricter than the decoder, which lets pass trailing commas
/// and numbers such as `01`, `1.` or `-` in fields it does not read: those lines count as
/// invalid JSON here (skipped either way). The unit tests and the `learnline` fuzz target check
/// this against `JSONDecoder` itself on real lines, their prefixes and mutations.
enum AccessLogFieldScanner {
    /// What one object held.
    enum Outcome: Equatable {
        /// Valid JSON; the wanted fields that were strings (nil when absent or `null`).
        case fields(AccessLogLineReader.Fields)
        /// Not valid JSON: a line cut short, or garbage.
        case invalidJSON
        /// Valid JSON, but a wanted field is not a string or null.
        case otherShape
    }

    /// The deepest nesting accepted, as `JSONDecoder`'s own limit.
    static let maxDepth = 512

    /// Scans `bytes`, which must hold one JSON object and nothing but whitespace around it.
    static func scan(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        var cursor = Cursor(bytes: bytes)
        do {
            let (fields, wrongType) = try cursor.topLevelObject()
            cursor.skipSpace()
            guard cursor.index == bytes.count else { return .invalidJSON }
            return wrongType ? .otherShape : .fields(fields)
        } catch {
            return .invalidJSON
        }
    }

    /// The wanted keys, as bytes; `set` says where each value goes.
    private static let keys: [[UInt8]] = [
        "start_time", "method", "protocol", "authority", "requested_server_name", "downstream_local_address",
        "upstream_cluster", "response_flags", "istio_policy_status",
    ].map { Array($0.utf8) }

    private static func set(_ key: Int, _ value: String?, in fields: inout AccessLogLineReader.Fields) {
        switch key {
        case 0: fields.startTime = value
        case 1: fields.method = value
        case 2: fields.protocol = value
        case 3: fields.authority = value
        case 4: fields.requestedServerName = value
        case 5: fields.downstreamLocalAddress = value
        case 6: fields.upstreamCluster = value
        case 7: fields.responseFlags = value
        default: fields.istioPolicyStatus = value
        }
    }

    private struct Invalid: Error {}

    /// A string's contents: a range of the input when it had no escapes (nearly always), else
    /// the decoded bytes.
    private enum Text {
        case raw(Range<Int>)
        case decoded([UInt8])
    }

    private struct Cursor {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func expect(_ byte: UInt8) throws {
            guard current == byte else { throw Invalid() }
            index += 1
        }

        mutating func expect(word: StaticString) throws {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw Invalid() }
            for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw Invalid() }
            index += count
        }

        /// `{ "key": value, ... }` at the top: wanted keys' string values kept, everything
        /// else validated and skipped. The second value is true when a wanted key held
        /// something other than a string or null.
        mutating func topLevelObject() throws -> (AccessLogLineReader.Fields, Bool) {
            var fields = AccessLogLineReader.Fields()
            var wrongType = false
            var seen = 0
            skipSpace()
            try expect(UInt8(ascii: "{"))
            skipSpace()
            if current == UInt8(ascii: "}") {
                index += 1
                return (fields, false)
            }
            while true {
                skipSpace()
                let key = try string(keep: true)
                skipSpace()
                try expect(UInt8(ascii: ":"))
                skipSpace()
                // A key given twice counts once, the first time, as JSONDecoder reads it.
                if let key, let wanted = AccessLogFieldScanner.keys.firstIndex(where: { matches(key, $0) }),
                   seen & (1 << wanted) == 0 {
                    seen |= 1 << wanted
                    switch current {
                    case UInt8(ascii: "\""):
                        // Validated as UTF-8 by string(keep:).
                        switch try string(keep: true) {
                        case .raw(let range)?:
                            AccessLogFieldScanner.set(wanted, String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self), in: &fields)
                        case .decoded(let decoded)?:
                            AccessLogFieldScanner.set(wanted, String(decoding: decoded, as: UTF8.self), in: &fields)
                        case nil:
                            throw Invalid()
                        }
                    case UInt8(ascii: "n"):
                        try expect(word: "null")
                        AccessLogFieldScanner.set(wanted, nil, in: &fields)
                    default:
                        try value(depth: 1)
                        wrongType = true
                    }
                } else {
                    try value(depth: 1)
                }
                skipSpace()
                switch current {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"):
                    index += 1
                    return (fields, wrongType)
                default: throw Invalid()
                }
            }
        }

        /// True when a key's text is `name`.
        func matches(_ text: Text, _ name: [UInt8]) -> Bool {
            switch text {
            case .raw(let range):
                guard range.count == name.count else { return false }
                return name.withUnsafeBytes { $0.elementsEqual(UnsafeRawBufferPointer(rebasing: bytes[range])) }
            case .decoded(let decoded):
                return decoded == name
            }
        }

        /// Any JSON value, validated and skipped.
        mutating func value(depth: Int) throws {
            guard depth <= AccessLogFieldScanner.maxDepth, let first = current else { throw Invalid() }
            switch first {
            case UInt8(ascii: "\""): _ = try string(keep: false)
            case UInt8(ascii: "{"):
                index += 1
                skipSpace()
                if current == UInt8(ascii: "}") {
                    index += 1
                    return
                }
                while true {
                    skipSpace()
                    _ = try string(keep: false)
                    skipSpace()
                    try expect(UInt8(ascii: ":"))
                    skipSpace()
                    try value(depth: depth + 1)
                    skipSpace()
                    if current == UInt8(ascii: ",") { index += 1; continue }
                    try expect(UInt8(ascii: "}"))
                    return
                }
            case UInt8(ascii: "["):
                index += 1
                skipSpace()
                if current == UInt8(ascii: "]") {
                    index += 1
                    return
                }
                while true {
                    skipSpace()
                    try value(depth: depth + 1)
                    skipSpace()
                    if current == UInt8(ascii: ",") { index += 1; continue }
                    try expect(UInt8(ascii: "]"))
                    return
                }
            case UInt8(ascii: "t"): try expect(word: "true")
            case UInt8(ascii: "f"): try expect(word: "false")
            case UInt8(ascii: "n"): try expect(word: "null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw Invalid()
            }
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        mutating func number() throws {
            if current == UInt8(ascii: "-") { index += 1 }
            guard let first = current, isDigit(first) else { throw Invalid() }
            index += 1
            if first != UInt8(ascii: "0") { digits() }
            if current == UInt8(ascii: ".") {
                index += 1
                guard let next = current, isDigit(next) else { throw Invalid() }
                digits()
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                index += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
                guard let next = current, isDigit(next) else { throw Invalid() }
                digits()
            }
        }

        mutating func digits() {
            while let byte = current, isDigit(byte) { index += 1 }
        }

        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        /// A string at the cursor. With `keep`, its decoded bytes (escapes resolved); else nil.
        /// Escapes must be JSON's; control characters must be escaped; a `\u` surrogate must
        /// come in a pair. The bytes themselves must be valid UTF-8, as the decoder requires.
        mutating func string(keep: Bool) throws -> Text? {
            try expect(UInt8(ascii: "\""))
            let start = index
            // The common case: no escapes. Find the closing quote, checking bytes as we go.
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                    index += 1
                    try validateUTF8(raw)
                    return keep ? .raw(start..<index - 1) : nil
                }
                if byte == UInt8(ascii: "\\") { break }
                guard byte >= 0x20 else { throw Invalid() }
                index += 1
            }
            // Escapes: decode from the start.
            index = start
            var out: [UInt8] = []
            var runStart = index
            while true {
                guard index < bytes.count else { throw Invalid() }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    let run = UnsafeRawBufferPointer(rebasing: bytes[runStart..<index])
                    try validateUTF8(run)
                    out.append(contentsOf: run)
                    index += 1
                    return keep ? .decoded(out) : nil
                }
                guard byte >= 0x20 else { throw Invalid() }
                guard byte == UInt8(ascii: "\\") else {
                    index += 1
                    continue
                }
                let run = UnsafeRawBufferPointer(rebasing: bytes[runStart..<index])
                try validateUTF8(run)
                out.append(contentsOf: run)
                index += 1
                guard let escape = current else { throw Invalid() }
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        // A high surrogate must be followed by an escaped low one.
                        try expect(UInt8(ascii: "\\"))
                        try expect(UInt8(ascii: "u"))
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw Invalid() }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw Invalid()
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw Invalid() }
                    out.append(contentsOf: UTF8.encode(unicode).map { Array($0) } ?? [])
                default: throw Invalid()
                }
                runStart = index
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard index + 4 <= bytes.count else { throw Invalid() }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw Invalid()
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        /// ASCII (nearly every byte of a log) passes at once; anything else must be UTF-8.
        func validateUTF8(_ run: UnsafeRawBufferPointer) throws {
            guard run.contains(where: { $0 >= 0x80 }) else { return }
            guard String(validating: run, as: UTF8.self) != nil else { throw Invalid() }
        }
    }
}

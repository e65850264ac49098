// MARK: - Byte classes

/// ASCII bytes and character classes of RFC 9110 §5.6.2 / RFC 9112, as branch-light tests.
enum HTTP1Bytes {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let sp: UInt8 = 0x20
    static let htab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A
    static let comma: UInt8 = 0x2C
    static let semicolon: UInt8 = 0x3B

    /// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA,
    /// as a 128-bit set (bytes 0x80 and up are never tchar).
    @inline(__always)
    static func isTchar(_ byte: UInt8) -> Bool {
        let low: UInt64 = 0x03FF_6CFA_0000_0000
        let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE
        switch byte >> 6 {
        case 0: return (low >> UInt64(byte & 63)) & 1 == 1
        case 1: return (high >> UInt64(byte & 63)) & 1 == 1
        default: return false
        }
    }

    /// The end of the run of 8-byte words from `start` in which every byte is SP, a visible
    /// character or obs-text (>= 0x20, not DEL): most of a field value, skipped a word at a
    /// time. The caller's byte loop continues from there and judges every other byte.
    ///
    /// Per word (the exact "some byte is less than n" and "some byte is zero" tests of Bit
    /// Twiddling Hacks, as in the access log's escaping): a byte < 0x20 sets its high bit in
    /// `(w - 0x20…) & ~w & 0x80…`; a DEL byte is a zero byte of `w ^ 0x7F…`.
    @inline(__always)
    static func plainValueEnd(_ raw: UnsafeRawBufferPointer, from start: Int) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var i = start
        while i + 8 <= raw.count {
            let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let control = (w &- 0x20 &* ones) & ~w
            let d = w ^ (0x7F &* ones)
            let del = (d &- ones) & ~d
            if (control | del) & highs != 0 { break }
            i += 8
        }
        return i
    }

    /// SP / HTAB.
    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == sp || byte == htab
    }

    /// field-vchar / obs-text, SP and HTAB: what a field value (or reason phrase) may hold.
    /// Every other control byte, DEL included, is refused.
    @inline(__always)
    static func isFieldContent(_ byte: UInt8) -> Bool {
        byte >= sp ? byte != 0x7F : byte == htab
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool {
        byte &- 0x30 < 10
    }

    /// The value of a hex digit, or nil.
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt64? {
        switch byte {
        case 0x30...0x39: UInt64(byte - 0x30)
        case 0x41...0x46: UInt64(byte - 0x41 + 10)
        case 0x61...0x66: UInt64(byte - 0x61 + 10)
        default: nil
        }
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    /// `raw[range]` equals `expected`, optionally ignoring ASCII case (`expected` is lowercase then).
    static func equal(
        _ raw: UnsafeRawBufferPointer,
        _ range: Range<Int>,
        _ expected: UnsafeBufferPointer<UInt8>,
        caseInsensitive: Bool
    ) -> Bool {
        guard range.count == expected.count, range.lowerBound >= 0, range.upperBound <= raw.count else { return false }
        var i = range.lowerBound
        for want in expected {
            let byte = raw[i]
            if (caseInsensitive ? lowercased(byte) : byte) != want { return false }
            i += 1
        }
        return true
    }

    /// `raw[range]` equals the lowercase ASCII `expected`, ignoring case. For the names the parser
    /// looks for, letters and `-` only, folding with `| 0x20` is exact on token bytes.
    @inline(__always)
    static func equalFolded(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, _ expected: StaticString) -> Bool {
        guard range.count == expected.utf8CodeUnitCount else { return false }
        let want = expected.utf8Start
        var i = 0
        while i < range.count {
            if raw[range.lowerBound + i] | 0x20 != want[i] { return false }
            i += 1
        }
        return true
    }
}

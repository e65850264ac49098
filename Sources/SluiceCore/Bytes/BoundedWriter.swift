import NIOCore

/// Writes bytes into memory reserved up front: a head, a log line.
///
/// A forwarded head or a log line is dozens of small writes; going through `ByteBuffer.write*`
/// for each costs a capacity check, a uniqueness check and an exclusivity check apiece, several
/// times the cost of the bytes (in the keep-alive profile, ~35 such writes per request were a
/// tenth of all instructions). Instead the writers reserve a worst-case bound once
/// (`ByteBuffer.writeBounded(_:_:)`) and store bytes through this cursor. Every store still
/// checks the bound, so a wrong bound truncates the output (and trips an assertion in debug
/// builds) instead of touching memory it must not.
struct BoundedWriter {
    private let out: UnsafeMutableRawBufferPointer
    /// Bytes written so far.
    private(set) var count = 0

    init(_ out: UnsafeMutableRawBufferPointer) {
        self.out = out
    }

    // The small writers below are `@inline(__always)`: each is a bound check and a store or
    // two, and dozens of out-of-line calls per head or line cost more than the bytes they write.

    @inline(__always)
    private func fits(_ extra: Int) -> Bool {
        guard extra <= out.count - count else {
            assertionFailure("BoundedWriter: bound too small")
            return false
        }
        return true
    }

    @inline(__always)
    mutating func write(_ byte: UInt8) {
        guard fits(1) else { return }
        out[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func write(_ text: StaticString) {
        text.withUTF8Buffer { write(bytes: UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    mutating func write(bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0, fits(n), let source = bytes.baseAddress, let base = out.baseAddress else { return }
        let target = base + count
        if n >= 8 && n <= 16 {
            // Most keys and values are this short: two overlapping word moves beat a memmove call.
            let head = source.loadUnaligned(as: UInt64.self)
            let tail = source.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            target.storeBytes(of: head, as: UInt64.self)
            target.storeBytes(of: tail, toByteOffset: n - 8, as: UInt64.self)
        } else {
            target.copyMemory(from: source, byteCount: n)
        }
        count += n
    }

    /// Writes `value` in decimal, at most 20 bytes.
    mutating func writeDecimal(_ value: UInt64) {
        var digits = 1
        var probe = value
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        writeDigits(value, width: digits)
    }

    /// Writes `value` in decimal with a leading `-` when negative, at most 20 bytes.
    mutating func writeDecimal(_ value: Int64) {
        if value < 0 {
            write(UInt8(ascii: "-"))
            // Two's complement negation in UInt64 also covers Int64.min.
            writeDecimal(0 &- UInt64(bitPattern: value))
        } else {
            writeDecimal(UInt64(value))
        }
    }

    /// Writes `value` zero-padded to exactly `width` digits (`value` must fit).
    @inline(__always)
    mutating func writePadded(_ value: Int, width: Int) {
        writeDigits(UInt64(max(value, 0)), width: width)
    }

    /// The last `width` decimal digits of `value`, most significant first.
    @inline(__always)
    private mutating func writeDigits(_ value: UInt64, width: Int) {
        guard fits(width) else { return }
        var rest = value
        for i in stride(from: count + width - 1, through: count, by: -1) {
            out[i] = UInt8(truncatingIfNeeded: 0x30 &+ rest % 10)
            rest /= 10
        }
        count += width
    }

    /// Lets `body` fill the next `n` bytes directly (one bound check for all of them); they
    /// count as written. Nothing is written if they do not fit.
    @inline(__always)
    mutating func writeSlot(_ n: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        guard fits(n), let base = out.baseAddress else { return }
        body(UnsafeMutableRawBufferPointer(start: base + count, count: n))
        count += n
    }

    /// Writes a string's UTF-8 bytes as they are.
    @inline(__always)
    mutating func write(string: String) {
        var string = string
        string.withUTF8 { write(bytes: UnsafeRawBufferPointer($0)) }
    }
}

extension ByteBuffer {
    /// Reserves `bound` bytes once and lets `body` fill them through a `BoundedWriter`; the
    /// buffer's writer index moves by what was written.
    mutating func writeBounded(_ bound: Int, _ body: (inout BoundedWriter) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { out in
            var writer = BoundedWriter(out)
            body(&writer)
            return writer.count
        }
    }
}

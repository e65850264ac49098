import CLibFuzzer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fails the fuzz run when a property of the parser's answer does not hold.
///
/// libFuzzer treats the abort as a crash: it prints the message and stack, saves the input as
/// `crash-<sha1>` and exits non-zero, so an invariant break is reported exactly like a trap.
@inline(never)
public func invariant(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    guard !condition() else { return }
    let text = "INVARIANT FAILED at \(file):\(line): \(message())\n"
    _ = text.utf8CString.withUnsafeBufferPointer { write(STDERR_FILENO, $0.baseAddress, $0.count - 1) }
    abort()
}

/// Byte lengths of a few prefixes of an input of `count` bytes, chosen from the input itself so
/// that libFuzzer can steer them: every length for short inputs, else the first 16, the last 16
/// and 32 spread in between. Bounds the quadratic cost of "check every prefix".
public func prefixLengths(count: Int, seed: UInt64) -> [Int] {
    if count <= 64 { return Array(0..<count) }
    var lengths = Array(0..<16) + Array((count - 16)..<count)
    var state = seed | 1
    for _ in 0..<32 {
        // xorshift64: cheap, deterministic for a given input.
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        lengths.append(Int(state % UInt64(count)))
    }
    return lengths
}

/// A seed for `prefixLengths` from the input's bytes (FNV-1a).
public func seed(of bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    return hash
}

/// The type of `LLVMFuzzerTestOneInput`.
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// Runs libFuzzer's driver from a target's own entry point.
///
/// SwiftPM links every executable with `--defsym main=<Module>_main` (so that tests can call an
/// executable's main), and `-parse-as-library` means the module never defines `<Module>_main`:
/// linking fails with "undefined symbol 'FuzzX_main'". Each target therefore defines
/// `<Module>_main` itself and hands over to `LLVMFuzzerRunDriver`, which takes the same flags
/// as libFuzzer's own main.
public func runLibFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ callback: FuzzCallback
) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}

/// Whether a byte may appear in an SNI as the parsers return it: lower-case letters, digits,
/// `-`, `.` and `_`.
public func isLowerHostNameByte(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
}

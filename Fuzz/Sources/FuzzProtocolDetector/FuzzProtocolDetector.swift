import FuzzSupport
import NIOCore
import SluiceCore

/// Fuzzes `ProtocolDetector.detect` with its default cap, as the sniff handler calls it. Checks:
/// - the answer does not depend on the buffer's readerIndex;
/// - detection is stable: once a prefix gets a verdict, the whole input gets the same verdict
///   (TLS stays TLS with the same SNI, HTTP stays HTTP, opaque stays opaque), so deciding on the
///   first bytes that arrive can never contradict what the full stream would have said;
/// - a TLS verdict is exactly what the ClientHello parser says, and HTTP starts with a method;
/// - nothing is left undecided once the cap is reached.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtocolDetector(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    let allocator = ByteBufferAllocator()
    let defaultCap = 16 * 1024 + 64

    let whole = ProtocolDetector.detect(allocator.buffer(bytes: input))

    var shifted = allocator.buffer(capacity: input.count + 5)
    shifted.writeString("GET /")  // already-consumed bytes must not count
    shifted.writeBytes(input)
    shifted.moveReaderIndex(forwardBy: 5)
    let fromShifted = ProtocolDetector.detect(shifted)
    invariant(fromShifted == whole, "readerIndex 5 gives \(String(describing: fromShifted)), 0 gives \(String(describing: whole))")

    switch whole {
    case .tls(let serverName):
        let parsed = ClientHelloParser.parse(input)
        invariant(parsed == .clientHello(serverName: serverName), "detect says TLS \(String(describing: serverName)), parser says \(parsed)")
    case .http:
        invariant(input.first != 0x16, "HTTP verdict for a TLS record")
        let head = Array(input.prefix(8))
        let known = ["GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "TRACE ", "CONNECT "]
        invariant(known.contains { input.starts(with: Array($0.utf8)) }, "HTTP verdict for \(head)")
    case .http2:
        invariant(input.starts(with: Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)), "HTTP/2 verdict without the connection preface")
    case .opaque:
        break
    case nil:
        invariant(input.count < defaultCap, "undecided after \(input.count) bytes (cap \(defaultCap))")
    }

    for length in prefixLengths(count: input.count, seed: seed(of: input)) {
        let partial = ProtocolDetector.detect(allocator.buffer(bytes: UnsafeRawBufferPointer(rebasing: input[0..<length])))
        if let partial {
            invariant(partial == whole, "prefix of \(length) bytes says \(partial), all \(input.count) bytes say \(String(describing: whole))")
        }
    }
    return 0
}

/// The entry point SwiftPM's link line names (see `runLibFuzzer`).
@_cdecl("FuzzProtocolDetector_main")
public func fuzzProtocolDetectorMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzProtocolDetector)
}

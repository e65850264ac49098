import FuzzSupport
@testable import SluiceCore

/// Fuzzes `sluice learn`'s line reading: the field scanner against Foundation's `JSONDecoder`,
/// and the reader on whatever it accepts. Beyond "never traps", it checks that:
/// - wherever the scanner accepts a line, `JSONDecoder` reads the very same fields, and wherever
///   `JSONDecoder` rejects one as corrupt, so does the scanner (it may only be stricter, on
///   input that is not RFC 8259 JSON);
/// - a learned connection's host is a lower-case name a ServiceEntry can hold, never a
///   wildcard, or an IP; its port is 1-65535;
/// - cutting the input into lines at any chunk size gives the same verdicts as whole lines.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAccessLogLine(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)

    let scanned = AccessLogFieldScanner.scan(input)
    let decoded = AccessLogLineReader.decodeWithFoundation(input)
    if scanned != .invalidJSON || decoded == .invalidJSON {
        invariant(scanned == decoded, "scanner \(scanned) but JSONDecoder \(decoded)")
    }

    let reader = AccessLogLineReader()
    if case .success(let connection)? = reader.read(input) {
        invariant((1...65535).contains(connection.port), "port \(connection.port)")
        switch connection.traffic {
        case .http(let host), .tls(let host), .tunnel(let host):
            if IPAddress(host) == nil {
                invariant(ServiceEntry.hostProblem(host) == nil && !host.contains("*"), "host \(host) cannot be learned")
                invariant(host == host.lowercased(), "host \(host) not lower case")
            }
        case .tcp:
            invariant(connection.destination != nil, "TCP without a destination")
        }
    }

    // The input as a log: lines cut by the splitter at a chunk size the input chooses must
    // read as the same lines whole.
    let chunk = Int(input.first ?? 1) % 17 + 1
    var whole: [[UInt8]] = []
    var splitWhole = LogLineSplitter(maxLineBytes: 4096)
    splitWhole.feed(input) { whole.append(Array($0)) }
    splitWhole.finish { whole.append(Array($0)) }
    var pieces: [[UInt8]] = []
    var splitPieces = LogLineSplitter(maxLineBytes: 4096)
    var start = 0
    while start < input.count {
        let end = min(start + chunk, input.count)
        splitPieces.feed(UnsafeRawBufferPointer(rebasing: input[start..<end])) { pieces.append(Array($0)) }
        start = end
    }
    splitPieces.finish { pieces.append(Array($0)) }
    invariant(whole == pieces, "chunks of \(chunk) gave \(pieces.count) lines, whole input \(whole.count)")
    invariant(splitWhole.overlongLines == splitPieces.overlongLines, "overlong lines differ by chunking")
    return 0
}

/// The entry point SwiftPM's link line names (see `runLibFuzzer`).
@_cdecl("FuzzAccessLogLine_main")
public func fuzzAccessLogLineMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzAccessLogLine)
}

import FuzzSupport
import NIOCore
import SluiceCore

/// Fuzzes the SNI parser. Beyond "never traps", it checks that:
/// - every entry point (Array, ByteBuffer at any readerIndex, a non-contiguous collection) agrees;
/// - a returned SNI is 1–255 bytes of lower-case hostname characters without a trailing dot;
/// - the parser is a streaming one: once a prefix of the input gets a verdict other than
///   `.incomplete`, the whole input gets that same verdict (more bytes never change a decision,
///   which is what lets the sniffer decide on a prefix and stop reading).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClientHello(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    let bytes = Array(input)

    let whole = ClientHelloParser.parse(bytes)

    var buffer = ByteBufferAllocator().buffer(capacity: bytes.count + 3)
    buffer.writeBytes([0xAA, 0xBB, 0xCC])
    buffer.writeBytes(bytes)
    buffer.moveReaderIndex(forwardBy: 3)
    let fromBuffer = ClientHelloParser.parse(buffer)
    invariant(fromBuffer == whole, "ByteBuffer path \(fromBuffer) != Array path \(whole)")

    let nonContiguous = ClientHelloParser.parse(bytes.lazy.map { $0 })
    invariant(nonContiguous == whole, "non-contiguous path \(nonContiguous) != Array path \(whole)")

    if case .clientHello(let serverName?) = whole {
        let name = Array(serverName.utf8)
        invariant(!name.isEmpty && name.count <= 255, "SNI length \(name.count) outside 1...255")
        invariant(name.allSatisfy(isLowerHostNameByte), "SNI \(name) has a byte outside [a-z0-9._-]")
        invariant(name.last != UInt8(ascii: ".") && name.first != UInt8(ascii: ".") && !serverName.contains(".."),
                  "SNI \(serverName) has an empty label")
    }
    if let first = bytes.first, first != 0x16 {
        invariant(whole == .notTLS, "input starting 0x\(String(first, radix: 16)) is \(whole), not notTLS")
    }

    // Random bytes rarely get four nested length fields right, so also wrap the input, with
    // correct lengths, as the host_name of an otherwise valid ClientHello split at a point the
    // input picks: this drives the SNI validation itself.
    let hostName = Array(bytes.prefix(300))
    let split = bytes.first.map { Int($0) } ?? 0
    let synthetic = clientHello(serverName: hostName, splitAt: split)
    let parsed = ClientHelloParser.parse(synthetic)
    let valid = !hostName.isEmpty && hostName.count <= 255
        && hostName.allSatisfy { isLowerHostNameByte($0 | (($0 >= 0x41 && $0 <= 0x5A) ? 0x20 : 0)) }
    switch parsed {
    case .clientHello(let name?):
        invariant(valid, "accepted host_name \(hostName) as \(name)")
        invariant(name.last != "." && name.first != "." && !name.contains(".."), "SNI \(name) has an empty label (host_name \(hostName))")
        invariant(Array(name.utf8).allSatisfy(isLowerHostNameByte), "SNI \(name) is not lower-case hostname bytes")
    case .malformed:
        // Valid bytes may still be refused for an empty label ("a..b", ".a", "a..").
        let labels = hostName.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        let hasEmptyLabel = labels.dropLast(hostName.last == UInt8(ascii: ".") ? 1 : 0).contains { $0.isEmpty }
        invariant(!valid || hasEmptyLabel, "refused valid host_name \(hostName): \(parsed)")
    case .clientHello(nil), .incomplete, .notTLS:
        invariant(false, "synthetic ClientHello for \(hostName) gave \(parsed)")
    }

    for length in prefixLengths(count: bytes.count, seed: seed(of: input)) {
        let partial = bytes.withUnsafeBufferPointer { ClientHelloParser.parse(UnsafeBufferPointer(rebasing: $0[0..<length])) }
        if partial != .incomplete {
            invariant(partial == whole, "prefix of \(length) bytes says \(partial), all \(bytes.count) bytes say \(whole)")
        }
    }
    return 0
}

/// The entry point SwiftPM's link line names (see `runLibFuzzer`).
@_cdecl("FuzzClientHello_main")
public func fuzzClientHelloMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzClientHello)
}

/// A minimal TLS 1.2 ClientHello whose server_name extension carries `serverName`, its handshake
/// message split over two records after `splitAt` bytes (one record when that is past the end).
private func clientHello(serverName: [UInt8], splitAt: Int) -> [UInt8] {
    func u16(_ n: Int) -> [UInt8] { [UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] }
    let entry = [UInt8(0)] + u16(serverName.count) + serverName
    let sniData = u16(entry.count) + entry
    let extensions = u16(0) + u16(sniData.count) + sniData
    var body: [UInt8] = [0x03, 0x03] + Array(repeating: 0x42, count: 32) + [0]
    body += u16(2) + [0x13, 0x01] + [1, 0] + u16(extensions.count) + extensions
    let message = [UInt8(1), 0] + u16(body.count) + body
    func record(_ fragment: ArraySlice<UInt8>) -> [UInt8] { [0x16, 0x03, 0x01] + u16(fragment.count) + fragment }
    let cut = max(1, min(splitAt, message.count))
    if cut >= message.count { return record(message[...]) }
    return record(message[..<cut]) + record(message[cut...])
}

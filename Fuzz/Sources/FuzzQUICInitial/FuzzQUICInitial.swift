import FuzzSupport
import SluiceCore
import SluiceQUIC

/// Fuzzes the QUIC Initial reader (hostile datagrams from the pod, to UDP 443). Random bytes
/// rarely get past the AEAD tag, so the input is used two ways, chosen by its first byte:
/// - even: one to three raw datagrams of one flow (cut where bytes 1 and 2 say);
/// - odd: the rest is the frames of client Initials sealed with the right keys (split over
///   two packets where byte 1 says), which drives the frame walk, the CRYPTO reassembly and
///   the ClientHello parser.
/// Beyond "never traps", it checks that:
/// - a result other than `.incomplete` never changes with more datagrams;
/// - a returned SNI is 1-255 bytes of lower-case hostname characters;
/// - a single CRYPTO frame at offset 0 gives what `ClientHelloParser.parse(handshakeMessage:)`
///   says of its data (the two readers agree);
/// - the waiting room stays within its limits in flows and held packets.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQUICInitial(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    guard let selector = bytes.first else { return 0 }
    let body = Array(bytes.dropFirst(3))
    let cut = bytes.count > 1 ? Int(bytes[1]) * 8 : 0
    let datagrams: [[UInt8]]
    if selector & 1 == 0 {
        let second = bytes.count > 2 ? Int(bytes[2]) * 8 : 0
        let first = min(cut, body.count)
        let middle = min(first + second, body.count)
        datagrams = [Array(body[..<first]), Array(body[first..<middle]), Array(body[middle...])].filter { !$0.isEmpty }
    } else {
        let connectionID = [UInt8](repeating: selector, count: 8)
        let split = min(cut, body.count)
        datagrams = [
            QUICClientInitial.make(frames: Array(body[..<split]), connectionID: connectionID, packetNumber: 0),
            QUICClientInitial.make(frames: Array(body[split...]), connectionID: connectionID, packetNumber: 1),
        ]
        // One CRYPTO frame with the whole body: the sniffer and the bare parser must agree.
        var single = QUICInitialSniffer()
        let result = single.feed(datagram: QUICClientInitial.make(
            frames: QUICClientInitial.cryptoFrame(offset: 0, body), connectionID: connectionID))
        if body.count <= 1100 {
            let declared = body.count >= 4 ? 4 + (Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3])) : 0
            let expected: QUICClientHelloResult
            switch ClientHelloParser.parse(handshakeMessage: body) {
            case _ where declared > QUICInitialSniffer.maxCryptoBytes: expected = .undecodable(.cryptoTooLarge)
            case .incomplete: expected = .incomplete
            case .clientHello(let name): expected = .clientHello(serverName: name)
            case .malformed(let reason): expected = .undecodable(.clientHello(reason))
            case .notTLS: expected = .undecodable(.clientHello("not a TLS handshake message"))
            }
            invariant(result == expected, "one CRYPTO frame gave \(result), the parser says \(expected)")
        }
    }

    var sniffer = QUICInitialSniffer()
    var decided: QUICClientHelloResult?
    for datagram in datagrams {
        let result = sniffer.feed(datagram: datagram)
        if let decided { invariant(result == decided, "decided \(decided), then \(result)") }
        if result != .incomplete { decided = result }
        if case .clientHello(let name?) = result {
            let utf8 = Array(name.utf8)
            invariant(!utf8.isEmpty && utf8.count <= 255 && utf8.allSatisfy(isLowerHostNameByte), "SNI \(name)")
        }
    }

    var flows = QUICPendingFlows<Int>(limits: .init(packets: 3, wait: 250, flows: 2))
    for (index, datagram) in datagrams.enumerated() {
        let flow = Int(datagram.first ?? 0) % 3
        if case .decide(let result, let packets) = flows.datagram(datagram, packet: UInt32(index), flow: flow, now: UInt64(index) * 100) {
            invariant(result != .incomplete, "decided as incomplete")
            invariant(!packets.isEmpty && packets.count <= 3, "\(packets.count) packets held")
        }
        invariant(flows.count <= 2 && flows.heldPackets <= 6, "\(flows.count) flows, \(flows.heldPackets) packets waiting")
    }
    _ = flows.expire(now: 10_000)
    invariant(flows.count == 0, "flows left after their deadline")
    return 0
}

/// The entry point SwiftPM's link line names (see `runLibFuzzer`).
@_cdecl("FuzzQUICInitial_main")
public func fuzzQUICInitialMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzQUICInitial)
}

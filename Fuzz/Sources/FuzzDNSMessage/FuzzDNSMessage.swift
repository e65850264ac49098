import FuzzSupport
import SluiceCore

/// Fuzzes the DNS message parser and the UDP packet reader (hostile bytes from the pod's
/// queries, from upstream answers and from NFQUEUE). Beyond "never traps", it checks that:
/// - a parsed name is at most 253 characters and the counts are within the parser's caps;
/// - a message that parses and whose names can be written again parses back equal after
///   `serialized()` (the writer's compression and the reader's pointers agree);
/// - learning from any parsed response keeps the table within its capacity;
/// - the UDP reader never hands out a port above 65535.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDNSMessage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    if let message = try? DNSMessage.parse(bytes) {
        invariant(message.questions.count <= DNSMessage.maxRecords && message.answers.count <= DNSMessage.maxRecords,
                  "more records than the cap")
        for name in message.questions.map(\.name) + message.answers.map(\.name) {
            invariant(name.utf8.count <= 254, "name of \(name.utf8.count) bytes")
        }
        if let written = try? message.serialized() {
            let again = try? DNSMessage.parse(written)
            invariant(again == message, "round trip changed \(message) into \(String(describing: again))")
        }
        var table = LearnedAddresses(capacity: 4)
        table.learn(from: message, now: 0)
        invariant(table.count <= 4, "table over capacity: \(table.count)")
    }
    if let datagram = UDPDatagram(packet: bytes) {
        invariant(datagram.sourcePort <= 65535 && datagram.destinationPort <= 65535, "port out of range")
    }
    return 0
}

/// The entry point SwiftPM's link line names (see `runLibFuzzer`).
@_cdecl("FuzzDNSMessage_main")
public func fuzzDNSMessageMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzDNSMessage)
}

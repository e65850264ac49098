@testable import SluiceCore
@testable import SluiceQUIC
import XCTest

/// The QUIC Initial reader: RFC 9001 Appendix A byte for byte, aioquic's real first flights
/// (one datagram, no SNI, a ClientHello split over two), and what a hostile or broken sender
/// may put in a datagram.
final class QUICInitialTests: XCTestCase {
    func testInitialKeysAreRFC9001AppendixA1s() {
        let keys = QUICInitialKeys(destinationConnectionID: QUICTestPackets.rfcConnectionID)
        XCTAssertEqual(keys.keyBytes, QUICTestPackets.hex("1f369613dd76d5467730efcbe3b1a22d"))
        XCTAssertEqual(keys.iv, QUICTestPackets.hex("fa044b2f42a3fd3b46fb255c"))
        XCTAssertEqual(keys.headerProtectionBytes, QUICTestPackets.hex("9f50449e04a0e810283a1e9933adedd2"))
        // A.2: the sample and the mask it gives.
        XCTAssertEqual(keys.mask(sample: QUICTestPackets.hex("d1b1c98dd7689fb8ec11d242b123dc9b")[...])?.prefix(5).map { $0 },
                       QUICTestPackets.hex("437b9aec36"))
    }

    func testRFC9001AppendixA2PacketOpensToItsCryptoFrame() throws {
        let datagram = try QUICTestPackets.fixture("rfc9001-a2-client-initial")
        XCTAssertEqual(datagram.count, 1200)
        let (packets, stop) = QUICLongHeaderPacket.packets(in: datagram)
        XCTAssertEqual(stop, .endOfLongHeaders)
        let packet = try XCTUnwrap(packets.first)
        XCTAssertEqual(packets.count, 1)
        XCTAssertEqual(packet.type, .initial)
        XCTAssertEqual(Array(datagram[packet.destinationConnectionID]), QUICTestPackets.rfcConnectionID)
        XCTAssertEqual(packet.packetNumberOffset, 18)
        XCTAssertEqual(packet.end, 1200)
        let keys = QUICInitialKeys(destinationConnectionID: QUICTestPackets.rfcConnectionID)
        let plaintext = try packet.open(in: datagram, keys: keys).get()
        XCTAssertEqual(plaintext, QUICTestPackets.rfcCryptoFrame + [UInt8](repeating: 0, count: 1162 - QUICTestPackets.rfcCryptoFrame.count))
    }

    func testSealingTheRFCPlaintextGivesTheRFCPacket() throws {
        // The client side, checked against A.2, so that the packets it makes below are what a
        // client would send.
        let payload = QUICTestPackets.rfcCryptoFrame + [UInt8](repeating: 0, count: 1162 - QUICTestPackets.rfcCryptoFrame.count)
        let sealed = QUICClientInitial.seal(
            header: QUICTestPackets.rfcHeader, packetNumberLength: 4, payload: payload, connectionID: QUICTestPackets.rfcConnectionID)
        XCTAssertEqual(sealed, try QUICTestPackets.fixture("rfc9001-a2-client-initial"))
    }

    func testRFCClientInitialNamesExampleCom() throws {
        var sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: try QUICTestPackets.fixture("rfc9001-a2-client-initial")),
                       .clientHello(serverName: "example.com"))
    }

    func testAioquicFirstFlights() throws {
        var single = QUICInitialSniffer()
        XCTAssertEqual(single.feed(datagram: try QUICTestPackets.fixture("aioquic-initial")), .clientHello(serverName: "api.quic.test"))
        var nosni = QUICInitialSniffer()
        XCTAssertEqual(nosni.feed(datagram: try QUICTestPackets.fixture("aioquic-nosni")), .clientHello(serverName: nil))
    }

    func testClientHelloSplitOverTwoDatagramsInEitherOrder() throws {
        let first = try QUICTestPackets.fixture("aioquic-split-1")
        let second = try QUICTestPackets.fixture("aioquic-split-2")
        var inOrder = QUICInitialSniffer()
        XCTAssertEqual(inOrder.feed(datagram: first), .incomplete)
        XCTAssertEqual(inOrder.feed(datagram: second), .clientHello(serverName: "big.quic.test"))
        XCTAssertEqual(inOrder.feed(datagram: [0xFF]), .clientHello(serverName: "big.quic.test"), "decided stays decided")
        var reversed = QUICInitialSniffer()
        XCTAssertEqual(reversed.feed(datagram: second), .incomplete)
        XCTAssertEqual(reversed.feed(datagram: first), .clientHello(serverName: "big.quic.test"))
        var repeated = QUICInitialSniffer()
        XCTAssertEqual(repeated.feed(datagram: first), .incomplete)
        XCTAssertEqual(repeated.feed(datagram: first), .incomplete, "a retransmission adds nothing")
        XCTAssertEqual(repeated.feed(datagram: second), .clientHello(serverName: "big.quic.test"))
    }

    func testEveryTruncationOfTheRFCPacketIsUndecodableNeverAName() throws {
        let datagram = try QUICTestPackets.fixture("rfc9001-a2-client-initial")
        for length in 0..<datagram.count {
            var sniffer = QUICInitialSniffer()
            let result = sniffer.feed(datagram: datagram.prefix(length))
            guard case .undecodable = result else { return XCTFail("a \(length)-byte prefix gave \(result)") }
        }
    }

    func testAlteredOrForeignPacketsAreUndecodable() throws {
        let datagram = try QUICTestPackets.fixture("rfc9001-a2-client-initial")
        var flipped = datagram
        flipped[600] ^= 0x01
        var sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: flipped), .undecodable(.authenticationFailed))

        var version2 = datagram
        version2.replaceSubrange(1..<5, with: [0x6b, 0x33, 0x43, 0xcf])  // RFC 9369's QUIC v2
        sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: version2), .undecodable(.unsupportedVersion(0x6b33_43cf)))

        var handshake = datagram
        handshake[0] = 0xE0  // long header, type Handshake
        sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: handshake), .undecodable(.notInitial))

        sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: [0x40] + datagram.dropFirst()), .undecodable(.notLongHeader), "a short header")
        sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: [UInt8]("GET / HTTP/1.1\r\n".utf8)), .undecodable(.notLongHeader))

        var longConnectionID = datagram
        longConnectionID[5] = 21
        sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: longConnectionID), .undecodable(.truncated), "connection IDs are at most 20 bytes")
    }

    func testGarbageNeverTrapsNorNamesAHost() {
        var generator = SeededGenerator(seed: 22)  // LearnRegistryTests' SplitMix64
        for _ in 0..<2000 {
            let count = Int(generator.next() % 1400)
            var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            // Half of them look like a v1 Initial's first five bytes.
            if count >= 5, generator.next() % 2 == 0 { bytes.replaceSubrange(0..<5, with: [0xC3, 0, 0, 0, 1]) }
            var sniffer = QUICInitialSniffer()
            if case .clientHello = sniffer.feed(datagram: bytes) { return XCTFail("garbage \(bytes.prefix(16)) named a host") }
        }
    }

    func testCoalescedPacketsAfterTheInitialAreSkipped() throws {
        var datagram = try QUICTestPackets.fixture("aioquic-initial")
        // A 0-RTT packet (type 1) coalesced after it: read past by its Length, not opened.
        datagram += [0xD0, 0, 0, 0, 1, 4, 1, 2, 3, 4, 0, 0x05, 9, 9, 9, 9, 9]
        var sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: datagram), .clientHello(serverName: "api.quic.test"))
    }

    func testFramesOtherThanInitialsAllowOnesEndTheReading() throws {
        let hello = try clientHelloMessage()
        // PING, ACK (with a range and ECN counts), CONNECTION_CLOSE-free CRYPTO: fine.
        let ack: [UInt8] = [0x03, 5, 0, 1, 0, 1, 1, 0, 0, 0]
        var sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: QUICTestPackets.initial(
            [0x01] + ack + QUICClientInitial.cryptoFrame(offset: 0, hello[...]))), .clientHello(serverName: "example.com"))
        // A STREAM frame (0x08) has no place in an Initial.
        sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: QUICTestPackets.initial([0x08, 0, 1, 0x41])), .undecodable(.frameNotAllowed(8)))
        // A CRYPTO frame whose length runs past the payload.
        sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: QUICTestPackets.initial([0x06, 0, 0x50, 0x00, 1, 2], minimumSize: 0)),
                       .undecodable(.malformedFrame))
    }

    func testCryptoDataPastSixteenKiBIsRefused() throws {
        let hello = try clientHelloMessage()
        var sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: QUICTestPackets.initial(QUICClientInitial.cryptoFrame(offset: 16380, hello[0..<10]))),
                       .undecodable(.cryptoTooLarge))
        // A ClientHello that announces 20 000 bytes cannot fit.
        sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: QUICTestPackets.initial(QUICClientInitial.cryptoFrame(offset: 0, [1, 0, 0x4E, 0x20, 3, 3][...]))),
                       .undecodable(.cryptoTooLarge))
    }

    func testCryptoFramesOutOfOrderInOnePacketAndAcrossPackets() throws {
        let hello = try clientHelloMessage()
        let cut = 100
        var sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: QUICTestPackets.initial(
            QUICClientInitial.cryptoFrame(offset: UInt64(cut), hello[cut...]) + QUICClientInitial.cryptoFrame(offset: 0, hello[..<cut]))),
            .clientHello(serverName: "example.com"))
        sniffer = QUICInitialSniffer()
        XCTAssertEqual(sniffer.feed(datagram: QUICTestPackets.initial(QUICClientInitial.cryptoFrame(offset: 0, hello[..<cut]))), .incomplete)
        // A packet under another connection ID is not this flow's: ignored.
        XCTAssertEqual(sniffer.feed(datagram: QUICTestPackets.initial(
            QUICClientInitial.cryptoFrame(offset: UInt64(cut), hello[cut...]), connectionID: [1, 2, 3, 4, 5, 6, 7, 8])), .incomplete)
        XCTAssertEqual(sniffer.feed(datagram: QUICTestPackets.initial(
            QUICClientInitial.cryptoFrame(offset: UInt64(cut), hello[cut...]), packetNumber: 1)), .clientHello(serverName: "example.com"))
    }

    func testBareHandshakeMessageEntryPoint() throws {
        let hello = try clientHelloMessage()
        XCTAssertEqual(ClientHelloParser.parse(handshakeMessage: hello), .clientHello(serverName: "example.com"))
        XCTAssertEqual(ClientHelloParser.parse(handshakeMessage: hello.prefix(3)), .incomplete)
        XCTAssertEqual(ClientHelloParser.parse(handshakeMessage: hello.dropLast()), .incomplete)
        XCTAssertEqual(ClientHelloParser.parse(handshakeMessage: [UInt8]()), .incomplete)
        XCTAssertEqual(ClientHelloParser.parse(handshakeMessage: [2, 0, 0, 0]), .malformed("handshake message type 2 is not client_hello"))
        XCTAssertEqual(ClientHelloParser.parse(handshakeMessage: [1, 0x01, 0, 0]), .malformed("ClientHello too large"))
    }

    /// RFC 9001 A.2's ClientHello message (the CRYPTO frame's data).
    private func clientHelloMessage() throws -> [UInt8] {
        let frame = QUICTestPackets.rfcCryptoFrame
        XCTAssertEqual(Array(frame.prefix(4)), [0x06, 0x00, 0x40, 0xF1])
        return Array(frame.dropFirst(4))
    }
}


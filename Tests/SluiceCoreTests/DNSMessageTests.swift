import SluiceCore
import XCTest

/// The DNS parser/writer, the learned-address table and the UDP flow policy. The response
/// bytes follow RFC 1035 section 4.1 (header, question, answers with 4.1.4 compression
/// pointers), laid out as `dig` shows a CNAME-chained answer.
final class DNSMessageTests: XCTestCase {
    // www.example.com A? → www.example.com CNAME cdn.example.net, cdn.example.net A 192.0.2.10
    static let response: [UInt8] = [
        0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        3, 0x77, 0x77, 0x77, 7, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 3, 0x63, 0x6f, 0x6d, 0,
        0x00, 0x01, 0x00, 0x01,
        // answer 1: name = pointer to 12, CNAME, IN, ttl 300, rdata "cdn.example.net"
        0xC0, 0x0C, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2C, 0x00, 17,
        3, 0x63, 0x64, 0x6e, 7, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 3, 0x6e, 0x65, 0x74, 0,
        // answer 2: name = pointer to 45 (cdn.example.net), A, IN, ttl 5, 192.0.2.10
        0xC0, 45, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 4, 192, 0, 2, 10,
    ]

    func testParsesACNAMEChainWithCompression() throws {
        let message = try DNSMessage.parse(Self.response)
        XCTAssertEqual(message.id, 0x1234)
        XCTAssertTrue(message.isResponse)
        XCTAssertEqual(message.rcode, .noError)
        XCTAssertEqual(message.questions, [DNSQuestion(name: "www.example.com", type: .a)])
        XCTAssertEqual(message.answers.map(\.name), ["www.example.com", "cdn.example.net"])
        XCTAssertEqual(message.answers[0].data, .canonicalName("cdn.example.net"))
        XCTAssertEqual(message.answers[1].data, .address(try XCTUnwrap(IPAddress("192.0.2.10"))))
        XCTAssertEqual(message.answers[1].ttl, 5)
    }

    func testEveryPrefixIsTruncatedNeverACrash() {
        for length in 0..<Self.response.count {
            XCTAssertThrowsError(try DNSMessage.parse(Self.response.prefix(length)), "prefix \(length)")
        }
    }

    func testPointerLoopsAndForwardPointersAreRejected() {
        var selfLoop = Array(Self.response.prefix(12))
        selfLoop[5] = 1
        selfLoop[7] = 0
        selfLoop += [0xC0, 12, 0, 1, 0, 1]  // a name that points at itself
        XCTAssertThrowsError(try DNSMessage.parse(selfLoop)) { XCTAssertEqual($0 as? DNSMessage.ParseError, .badName) }
        var forward = Array(Self.response.prefix(12))
        forward[5] = 1
        forward[7] = 0
        forward += [0xC0, 20, 0, 1, 0, 1, 0, 0]
        XCTAssertThrowsError(try DNSMessage.parse(forward)) { XCTAssertEqual($0 as? DNSMessage.ParseError, .badName) }
    }

    func testALabelWithADotOrARawByteIsRefused() {
        // One label "allowed.example" would read as the registered-looking text of another name.
        var query: [UInt8] = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 15]
        query += Array("allowed.example".utf8) + [0, 0, 1, 0, 1]
        XCTAssertThrowsError(try DNSMessage.parse(query)) { XCTAssertEqual($0 as? DNSMessage.ParseError, .badName) }
        query[13] = 0xC3
        XCTAssertThrowsError(try DNSMessage.parse(query)) { XCTAssertEqual($0 as? DNSMessage.ParseError, .badName) }
    }

    func testWrittenMessagesParseBackAndCompress() throws {
        let query = DNSMessage(id: 7, flags: 0x0100, questions: [DNSQuestion(name: "api.example.com", type: .aaaa)])
        let address = try XCTUnwrap(IPAddress("2001:db8::5"))
        let answer = query.response(rcode: .noError, answers: [DNSRecord(name: "api.example.com", ttl: 60, data: .address(address))], authoritative: true)
        let bytes = try answer.serialized()
        XCTAssertEqual(try DNSMessage.parse(bytes), answer)
        // The answer's owner name is a 2-byte pointer to the question's.
        XCTAssertEqual(bytes.count, 12 + 17 + 4 + 2 + 10 + 16)
        let nx = try DNSMessage.parse(try query.response(rcode: .nameError).serialized())
        XCTAssertEqual(nx.rcode, .nameError)
        XCTAssertEqual(nx.id, 7)
        XCTAssertThrowsError(try DNSMessage(id: 1, flags: 0, questions: [DNSQuestion(name: "a..b", type: .a)]).serialized())
    }

    func testLearnedAddressesFollowCNAMEsClampTTLsAndStayBounded() throws {
        var table = LearnedAddresses(capacity: 2, minimumTTL: 30, maximumTTL: 600)
        let learned = table.learn(from: try DNSMessage.parse(Self.response), now: 1000)
        let address = try XCTUnwrap(IPAddress("192.0.2.10"))
        XCTAssertEqual(learned, [address])
        XCTAssertEqual(table.hostname(for: address, now: 1000), "www.example.com")
        XCTAssertEqual(table.hostname(for: address, now: 1029), "www.example.com", "TTL 5 held at the 30 s floor")
        XCTAssertNil(table.hostname(for: address, now: 1030))
        table.learn(try XCTUnwrap(IPAddress("192.0.2.11")), hostname: "b", ttl: 86400, now: 1000)
        XCTAssertNil(table.hostname(for: try XCTUnwrap(IPAddress("192.0.2.11")), now: 1600), "capped at 600 s")
        table.learn(try XCTUnwrap(IPAddress("192.0.2.12")), hostname: "c", ttl: 100, now: 1000)
        XCTAssertEqual(table.count, 2, "the one expiring first made room")
        XCTAssertNil(table.hostname(for: address, now: 1000))
    }

    private func registry() throws -> Registry {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: game, namespace: default}
            spec:
              hosts: [game.example.com]
              ports: [{number: 9000, name: udp, protocol: UDP}]
              location: MESH_EXTERNAL
              resolution: DNS
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: web, namespace: default}
            spec:
              hosts: ["*.example.org"]
              ports: [{number: 443, name: https, protocol: HTTPS}]
              location: MESH_EXTERNAL
              resolution: DNS
            """
        return Registry(RegistryLoader.parse(yaml: yaml, path: "dns-test.yaml").entries)
    }

    func testQueryDecisionFollowsTheRegistryAndTheConfiguredAnswer() throws {
        let registry = try registry()
        XCTAssertEqual(DNSQueryDecision.decide(name: "game.example.com", registry: registry, mode: .registryOnly, unregistered: .nxdomain),
                       .resolve(registeredHost: "game.example.com"))
        XCTAssertEqual(DNSQueryDecision.decide(name: "a.example.org", registry: registry, mode: .registryOnly, unregistered: .nxdomain),
                       .resolve(registeredHost: "*.example.org"))
        XCTAssertEqual(DNSQueryDecision.decide(name: "evil.test", registry: registry, mode: .registryOnly, unregistered: .nxdomain), .answer(.nameError))
        XCTAssertEqual(DNSQueryDecision.decide(name: "evil.test", registry: registry, mode: .registryOnly, unregistered: .refused), .answer(.refused))
        XCTAssertEqual(DNSQueryDecision.decide(name: "evil.test", registry: registry, mode: .registryOnly, unregistered: .pass), .resolve(registeredHost: nil))
        XCTAssertEqual(DNSQueryDecision.decide(name: "evil.test", registry: registry, mode: .allowAny, unregistered: .nxdomain), .resolve(registeredHost: nil))
    }

    func testUDPPolicyAllowsLearnedRegisteredPortsAndLeavesQUICToTheSNI() throws {
        let registry = try registry()
        var table = LearnedAddresses()
        let game = try XCTUnwrap(IPAddress("192.0.2.20"))
        let web = try XCTUnwrap(IPAddress("192.0.2.21"))
        table.learn(game, hostname: "game.example.com", ttl: 60, now: 0)
        table.learn(web, hostname: "www.example.org", ttl: 60, now: 0)
        let client = try XCTUnwrap(IPAddress("10.0.0.1"))
        func verdict(_ to: IPAddress, _ port: Int, _ mode: OutboundTrafficPolicyMode = .registryOnly) -> UDPFlowVerdict {
            UDPFlowPolicy.decide(UDPDatagram(source: client, sourcePort: 40000, destination: to, destinationPort: port),
                                 registry: registry, learned: table, now: 10, mode: mode, dns: DNSConfig())
        }
        XCTAssertEqual(verdict(game, 9000).allow, true)
        XCTAssertEqual(verdict(game, 9000).hostname, "game.example.com")
        XCTAssertEqual(verdict(game, 9001).allow, false, "a port the entry does not register")
        XCTAssertEqual(verdict(web, 443).allow, false, "QUIC to a host registered with HTTPS on 443 is decided by its SNI")
        XCTAssertTrue(UDPFlowPolicy.isDecidedBySNI(
            UDPDatagram(source: client, sourcePort: 40000, destination: web, destinationPort: 443), verdict: verdict(web, 443)))
        XCTAssertEqual(verdict(try XCTUnwrap(IPAddress("192.0.2.99")), 9000).allow, false)
        XCTAssertEqual(verdict(try XCTUnwrap(IPAddress("192.0.2.99")), 9000, .allowAny).allow, true)
        let expired = UDPFlowPolicy.decide(UDPDatagram(source: client, sourcePort: 1, destination: game, destinationPort: 9000),
                                           registry: registry, learned: table, now: 10_000, mode: .registryOnly, dns: DNSConfig())
        XCTAssertFalse(expired.allow, "a learned address expires")
    }

    func testUDPDatagramReadsIPv4AndDNSQueriesAreDecidedByName() throws {
        let query = try DNSMessage(id: 9, flags: 0x0100, questions: [DNSQuestion(name: "evil.test", type: .a)]).serialized()
        var packet: [UInt8] = [0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 192, 0, 2, 53]
        packet += [0x9C, 0x40, 0, 53, 0, UInt8(8 + query.count), 0, 0] + query
        let datagram = try XCTUnwrap(UDPDatagram(packet: packet))
        XCTAssertEqual(datagram.destination, IPAddress("192.0.2.53"))
        XCTAssertEqual(datagram.sourcePort, 40000)
        XCTAssertEqual(Array(datagram.payload), query)
        let verdict = UDPFlowPolicy.decide(datagram, registry: try registry(), learned: LearnedAddresses(), now: 0, mode: .registryOnly, dns: DNSConfig())
        XCTAssertFalse(verdict.allow)
        XCTAssertEqual(verdict.hostname, "evil.test")
        XCTAssertNil(UDPDatagram(packet: Array(packet.prefix(27))))
    }

    func testIPv6UDPIsFoundBehindExtensionHeaders() throws {
        // RFC 8200: fixed header, then a destination options header (next header 17, length 0
        // = 8 bytes: a PadN option), then UDP 40000 -> 443.
        var packet: [UInt8] = [0x60, 0, 0, 0, 0, 16, 60, 64]
        packet += try XCTUnwrap(IPAddress("2001:db8::1")).bytes + (try XCTUnwrap(IPAddress("2001:db8::2")).bytes)
        packet += [17, 0, 1, 4, 0, 0, 0, 0]
        packet += [0x9C, 0x40, 0x01, 0xBB, 0, 8, 0, 0]
        let datagram = try XCTUnwrap(UDPDatagram(packet: packet))
        XCTAssertEqual(datagram.destination, IPAddress("2001:db8::2"))
        XCTAssertEqual(datagram.destinationPort, 443)
        packet[40] = 44  // a fragment header instead: not read as UDP
        XCTAssertNil(UDPDatagram(packet: packet))
    }

    func testDNSAndUDPConfigKeysDecode() throws {
        let yaml = "dns: {proxy: true, unregistered: REFUSED, autoAllocate: false}\nudp: {capture: true, queue: 15200}\n"
        let config = try SluiceConfig.parse(yaml: yaml, path: "sluice.yaml").get()
        XCTAssertEqual(config.dns, DNSConfig(proxy: true, unregistered: .refused))
        XCTAssertEqual(config.udp, UDPConfig(capture: true, queue: 15200))
        guard case .failure(let errors) = SluiceConfig.parse(yaml: "dns: {unregistered: MAYBE}\n", path: "sluice.yaml") else {
            return XCTFail("a bad dns.unregistered must be an error")
        }
        XCTAssertTrue("\(errors)".contains("dns.unregistered"))
    }
}

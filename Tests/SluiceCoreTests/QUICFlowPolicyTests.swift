import SluiceCore
import SluiceQUIC
import XCTest

/// QUIC by SNI: the waiting room for ClientHellos split over datagrams, and the decision
/// (registered SNI, and only to an address that name resolves to).
final class QUICFlowPolicyTests: XCTestCase {
    private let client = IPAddress("10.0.0.1")!
    private let api = IPAddress("192.0.2.10")!
    private let cdn = IPAddress("192.0.2.99")!

    // MARK: Waiting for the rest of a ClientHello

    func testSplitClientHelloIsHeldThenDecidedForEveryHeldPacket() throws {
        var flows = QUICPendingFlows<Int>()
        XCTAssertEqual(flows.datagram(try QUICTestPackets.fixture("aioquic-split-1"), packet: 7, flow: 1, now: 1000), .hold)
        XCTAssertEqual(flows.count, 1)
        XCTAssertEqual(flows.heldPackets, 1)
        XCTAssertEqual(flows.datagram(try QUICTestPackets.fixture("aioquic-split-2"), packet: 8, flow: 1, now: 1010),
                       .decide(.clientHello(serverName: "big.quic.test"), packets: [7, 8]))
        XCTAssertEqual(flows.count, 0)
        XCTAssertEqual(flows.datagram(try QUICTestPackets.fixture("aioquic-initial"), packet: 9, flow: 2, now: 1020),
                       .decide(.clientHello(serverName: "api.quic.test"), packets: [9]), "a whole ClientHello waits for nothing")
        XCTAssertEqual(flows.datagram([0x17, 0x03, 0x03], packet: 10, flow: 3, now: 1030),
                       .decide(.undecodable(.notLongHeader), packets: [10]))
    }

    func testWaitingIsBoundedInPacketsTimeAndFlows() throws {
        let first = try QUICTestPackets.fixture("aioquic-split-1")
        var flows = QUICPendingFlows<Int>(limits: .init(packets: 3, wait: 250, flows: 2))
        XCTAssertEqual(flows.datagram(first, packet: 1, flow: 1, now: 0), .hold)
        XCTAssertEqual(flows.datagram(first, packet: 2, flow: 1, now: 1), .hold)
        XCTAssertEqual(flows.datagram(first, packet: 3, flow: 1, now: 2), .decide(.undecodable(.incompleteClientHello), packets: [1, 2, 3]),
                       "the third datagram without the rest ends the wait")

        XCTAssertEqual(flows.datagram(first, packet: 4, flow: 2, now: 100), .hold)
        XCTAssertEqual(flows.datagram(first, packet: 5, flow: 3, now: 100), .hold)
        XCTAssertEqual(flows.datagram(first, packet: 6, flow: 4, now: 100), .decide(.undecodable(.incompleteClientHello), packets: [6]),
                       "no room for a third waiting flow")
        XCTAssertTrue(flows.expire(now: 349).isEmpty)
        let expired = flows.expire(now: 350).sorted { $0.flow < $1.flow }
        XCTAssertEqual(expired.map(\.flow), [2, 3])
        XCTAssertEqual(expired.map(\.packets), [[4], [5]])
        XCTAssertEqual(flows.count, 0)

        XCTAssertEqual(flows.datagram(first, packet: 7, flow: 5, now: 400), .hold)
        XCTAssertEqual(flows.datagram(first, packet: 8, flow: 5, now: 650),
                       .decide(.undecodable(.incompleteClientHello), packets: [7, 8]), "past the deadline, still incomplete")
        XCTAssertEqual(flows.datagram(first, packet: 10, flow: 7, now: 700), .hold)
        XCTAssertEqual(flows.datagram(try QUICTestPackets.fixture("aioquic-split-2"), packet: 11, flow: 7, now: 960),
                       .decide(.clientHello(serverName: "big.quic.test"), packets: [10, 11]),
                       "the rest arrived late but before the expiry ran: the SNI counts")
        XCTAssertEqual(flows.datagram(first, packet: 9, flow: 6, now: 1000), .hold)
        XCTAssertEqual(flows.removeAll().map(\.packets), [[9]])
    }

    // MARK: The decision

    private func registry() -> Registry {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: api, namespace: default}
            spec:
              hosts: [api.quic.test, "*.cdn.test"]
              ports: [{number: 443, name: https, protocol: HTTPS}]
              resolution: DNS
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: plain-http, namespace: default}
            spec:
              hosts: [web.quic.test]
              ports: [{number: 443, name: http, protocol: HTTP}]
              resolution: DNS
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: udp-443, namespace: default}
            spec:
              hosts: [media.quic.test]
              ports: [{number: 443, name: media, protocol: UDP}]
              resolution: DNS
            """
        return Registry(RegistryLoader.parse(yaml: yaml, path: "quic-test.yaml").entries)
    }

    private func step(
        _ serverName: String?, to destination: IPAddress, learned: LearnedAddresses = LearnedAddresses(),
        mode: OutboundTrafficPolicyMode = .registryOnly, resolved: [IPAddress]? = nil
    ) -> UDPFlowPolicy.QUICStep {
        UDPFlowPolicy.decideQUIC(
            UDPDatagram(source: client, sourcePort: 50000, destination: destination, destinationPort: 443),
            clientHello: .clientHello(serverName: serverName), registry: registry(), learned: learned, now: 10,
            mode: mode, resolved: resolved)
    }

    private func verdict(_ step: UDPFlowPolicy.QUICStep) -> UDPFlowVerdict? {
        if case .verdict(let verdict) = step { return verdict }
        return nil
    }

    func testRegisteredSNIToAnAddressLearnedFromThatNameIsAllowed() {
        var learned = LearnedAddresses()
        learned.learn(api, hostname: "api.quic.test", ttl: 60, now: 0)
        let allowed = verdict(step("api.quic.test", to: api, learned: learned))
        XCTAssertEqual(allowed, UDPFlowVerdict(allow: true, hostname: "api.quic.test", reason: "quic sni", registered: true, serverName: "api.quic.test"))
    }

    func testAnotherAddressIsAllowedOnlyIfTheSidecarResolvesTheNameToIt() {
        var learned = LearnedAddresses()
        learned.learn(cdn, hostname: "other.test", ttl: 60, now: 0)
        XCTAssertEqual(step("api.quic.test", to: cdn, learned: learned), .resolve(host: "api.quic.test"),
                       "learned from another name: ask the resolver")
        XCTAssertEqual(step("api.quic.test", to: cdn), .resolve(host: "api.quic.test"), "not learned at all")
        XCTAssertEqual(verdict(step("api.quic.test", to: cdn, resolved: [api, cdn]))?.reason, "quic sni resolved")
        XCTAssertEqual(verdict(step("api.quic.test", to: cdn, resolved: [api, cdn]))?.allow, true)
        let mismatch = verdict(step("api.quic.test", to: cdn, resolved: [api]))
        XCTAssertEqual(mismatch?.allow, false)
        XCTAssertEqual(mismatch?.reason, "quic sni address mismatch")
        XCTAssertEqual(mismatch?.serverName, "api.quic.test")
        XCTAssertEqual(verdict(step("api.quic.test", to: cdn, resolved: []))?.allow, false, "the name does not resolve")
        XCTAssertEqual(verdict(step("api.quic.test", to: cdn, mode: .allowAny))?.allow, true, "ALLOW_ANY resolves nothing")
    }

    func testWildcardHostsMatchTheSNI() {
        var learned = LearnedAddresses()
        learned.learn(cdn, hostname: "img.cdn.test", ttl: 60, now: 0)
        XCTAssertEqual(verdict(step("IMG.cdn.test.", to: cdn, learned: learned))?.allow, true, "SNI normalised like TLS's")
        XCTAssertEqual(verdict(step("cdn.test", to: cdn, learned: learned))?.reason, "quic sni unregistered", "*.cdn.test is not cdn.test")
    }

    func testUnregisteredOrMissingSNIIsDecidedByTheMode() {
        var learned = LearnedAddresses()
        learned.learn(api, hostname: "api.quic.test", ttl: 60, now: 0)
        let unregistered = verdict(step("evil.test", to: api, learned: learned))
        XCTAssertEqual(unregistered?.allow, false, "a registered destination does not open it to another SNI")
        XCTAssertEqual(unregistered?.reason, "quic sni unregistered")
        XCTAssertEqual(unregistered?.hostname, "evil.test")
        XCTAssertEqual(verdict(step("web.quic.test", to: api))?.reason, "quic sni unregistered", "HTTP on 443 is not HTTPS")
        XCTAssertEqual(verdict(step("evil.test", to: api, mode: .allowAny)),
                       UDPFlowVerdict(allow: true, hostname: "evil.test", reason: "allow any", registered: false, serverName: "evil.test"))

        let datagram = UDPDatagram(source: client, sourcePort: 50000, destination: api, destinationPort: 443)
        for hello: QUICClientHelloResult in [.clientHello(serverName: nil), .undecodable(.unsupportedVersion(2)), .undecodable(.incompleteClientHello)] {
            let decided = UDPFlowPolicy.decideQUIC(datagram, clientHello: hello, registry: registry(), learned: learned, now: 10, mode: .registryOnly)
            XCTAssertEqual(verdict(decided), UDPFlowVerdict(allow: false, hostname: "api.quic.test", reason: "quic no sni", registered: false), "\(hello)")
        }
    }

    func testOnlyUDP443WithoutAPlainUDPPortIsDecidedBySNI() {
        var learned = LearnedAddresses()
        learned.learn(api, hostname: "api.quic.test", ttl: 60, now: 0)
        learned.learn(cdn, hostname: "media.quic.test", ttl: 60, now: 0)
        func plain(_ to: IPAddress, _ port: Int) -> (UDPDatagram, UDPFlowVerdict) {
            let datagram = UDPDatagram(source: client, sourcePort: 50000, destination: to, destinationPort: port)
            return (datagram, UDPFlowPolicy.decide(datagram, registry: registry(), learned: learned, now: 10, mode: .registryOnly, dns: DNSConfig()))
        }
        let quic = plain(api, 443)
        XCTAssertFalse(quic.1.allow, "an HTTPS host's name alone no longer opens UDP 443")
        XCTAssertTrue(UDPFlowPolicy.isDecidedBySNI(quic.0, verdict: quic.1))
        let media = plain(cdn, 443)
        XCTAssertTrue(media.1.allow, "a `protocol: UDP` port 443 is plain UDP")
        XCTAssertFalse(UDPFlowPolicy.isDecidedBySNI(media.0, verdict: media.1))
        let other = plain(api, 9000)
        XCTAssertFalse(UDPFlowPolicy.isDecidedBySNI(other.0, verdict: other.1))
    }
}

import SluiceCore
import XCTest

/// The DNS proxy's plan (registry answers, refusals, cache, forwarding), its answer cache and
/// the resolv.conf reader. The STATIC entry follows Istio's ServiceEntry docs example of
/// `resolution: STATIC` endpoints ("external-svc-mongocluster", addresses as endpoints).
final class DNSProxyAnswerTests: XCTestCase {
    private func registry() -> Registry {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: mongo, namespace: default}
            spec:
              hosts: [mymongodb.somedomain]
              ports: [{number: 27018, name: mongodb, protocol: MONGO}]
              location: MESH_INTERNAL
              resolution: STATIC
              endpoints: [{address: 2.2.2.2}, {address: 3.3.3.3}]
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: web, namespace: default}
            spec:
              hosts: [api.example.com]
              ports: [{number: 443, name: https, protocol: HTTPS}]
              resolution: DNS
            """
        return Registry(RegistryLoader.parse(yaml: yaml, path: "proxy-test.yaml").entries)
    }

    private func query(_ name: String, _ type: DNSRecordType = .a) -> DNSMessage {
        DNSMessage(id: 42, flags: 0x0100, questions: [DNSQuestion(name: name, type: type)])
    }

    func testStaticEndpointsAreAnsweredFromTheRegistry() throws {
        let plan = DNSProxyAnswer.plan(query("mymongodb.somedomain"), registry: registry(), mode: .registryOnly,
                                       config: DNSConfig(proxy: true), cache: DNSAnswerCache(), now: 0)
        guard case .local(let answer, denied: false) = plan else { return XCTFail("\(plan)") }
        XCTAssertEqual(answer.rcode, .noError)
        XCTAssertEqual(answer.flags & 0x0400, 0x0400, "authoritative")
        XCTAssertEqual(answer.answers.map(\.data), [.address(try XCTUnwrap(IPAddress("2.2.2.2"))), .address(try XCTUnwrap(IPAddress("3.3.3.3")))])
        let aaaa = DNSProxyAnswer.plan(query("mymongodb.somedomain", .aaaa), registry: registry(), mode: .registryOnly,
                                       config: DNSConfig(proxy: true), cache: DNSAnswerCache(), now: 0)
        XCTAssertEqual(aaaa, .local(query("mymongodb.somedomain", .aaaa).response(rcode: .noError, authoritative: true), denied: false))
    }

    func testUnregisteredNamesAreRefusedAndOthersForwardedThenCached() throws {
        let refused = DNSProxyAnswer.plan(query("exfil.attacker.test"), registry: registry(), mode: .registryOnly,
                                          config: DNSConfig(proxy: true, unregistered: .refused), cache: DNSAnswerCache(), now: 0)
        XCTAssertEqual(refused, .local(query("exfil.attacker.test").response(rcode: .refused), denied: true))
        var cache = DNSAnswerCache(maximumTTL: 300)
        XCTAssertEqual(DNSProxyAnswer.plan(query("api.example.com"), registry: registry(), mode: .registryOnly,
                                           config: DNSConfig(proxy: true), cache: cache, now: 0), .forward)
        let upstream = query("api.example.com").response(
            rcode: .noError, answers: [DNSRecord(name: "api.example.com", ttl: 600, data: .address(try XCTUnwrap(IPAddress("192.0.2.8"))))])
        cache.store(upstream, now: 100)
        let hit = DNSProxyAnswer.plan(query("api.example.com"), registry: registry(), mode: .registryOnly,
                                      config: DNSConfig(proxy: true), cache: cache, now: 150)
        guard case .local(let answer, denied: false) = hit else { return XCTFail("\(hit)") }
        XCTAssertEqual(answer.answers.first?.ttl, 250, "600 s capped at 300, 50 s of it gone")
        XCTAssertEqual(DNSProxyAnswer.plan(query("api.example.com"), registry: registry(), mode: .registryOnly,
                                           config: DNSConfig(proxy: true), cache: cache, now: 400), .forward, "expired")
    }

    func testResolvConfNameservers() {
        let text = "# kubelet\nsearch default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver\tfd00::a\noptions ndots:5\nnameserver not-an-ip\n"
        XCTAssertEqual(ResolvConf.nameservers(text), [IPAddress("10.96.0.10"), IPAddress("fd00::a")].compactMap { $0 })
    }
}

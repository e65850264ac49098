import SluiceCore
import XCTest

/// Issue 22 items 4 and 5: opaque TCP entries without addresses enforced by the addresses the
/// pod resolved through the DNS proxy, and Istio's DNS auto-allocation.
///
/// The registry is the one of Istio's "DNS Proxying" guide, section "External TCP services
/// without VIPs" (istio.io/latest/docs/ops/configuration/traffic-management/dns-proxy/): two
/// TCP ServiceEntries on port 9000 without addresses, which Istio can tell apart only with
/// its DNS proxy. The allocation fixtures are Istio's own tests of `autoAllocateIPs`
/// (pilot/pkg/serviceregistry/serviceentry/controller_test.go).
final class ResolvedNamesTests: XCTestCase {
    private let one = "tcp-echo.external-1.svc.cluster.local"
    private let two = "tcp-echo.external-2.svc.cluster.local"

    private func registry() -> Registry {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: external-svc-1, namespace: default}
            spec:
              hosts: [tcp-echo.external-1.svc.cluster.local]
              ports: [{name: external-svc-1, number: 9000, protocol: TCP}]
              resolution: DNS
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: external-svc-2, namespace: default}
            spec:
              hosts: [tcp-echo.external-2.svc.cluster.local]
              ports: [{name: external-svc-2, number: 9000, protocol: TCP}]
              resolution: DNS
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: passthrough, namespace: default}
            spec:
              hosts: [legacy.example.com]
              ports: [{name: tcp, number: 7000, protocol: TCP}]
              resolution: NONE
            """
        return Registry(RegistryLoader.parse(yaml: yaml, path: "dns-proxy.yaml").entries)
    }

    private func ip(_ text: String) -> IPAddress {
        guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
        return address
    }

    /// A sidecar policy whose DNS proxy resolved `learned` (address → name).
    private func policy(learned: [String: String] = [:], autoAllocate: Bool = false) -> Policy {
        var policy = Policy(mode: .registryOnly, registry: registry(), gateway: nil)
        let table = Dictionary(uniqueKeysWithValues: learned.map { (ip($0.key), $0.value) })
        policy.resolveNames(autoAllocate: autoAllocate) { table[$0] }
        return policy
    }

    /// A CONNECT to an IP literal gets the same address rule as a captured connection: under
    /// the DNS proxy, a TCP entry without addresses admits only the addresses the pod resolved
    /// from its hosts; without it, every address (Istio's 0.0.0.0 listener).
    func testATunnelToAnIPLiteralIsHeldToTheResolvedAddresses() {
        let policy = policy(learned: ["192.0.2.1": one])
        let learned = policy.decide(tunnelTo: HostPort(host: "192.0.2.1", port: 9000))
        XCTAssertEqual(learned.match?.entry.name, "external-svc-1")
        XCTAssertEqual(learned.match?.matchedBy, .resolvedName(one, address: ip("192.0.2.1"), allocated: false))
        XCTAssertFalse(learned.isDenied)
        let other = policy.decide(tunnelTo: HostPort(host: "203.0.113.9", port: 9000))
        XCTAssertNil(other.match)
        XCTAssertTrue(other.isDenied, "an address nobody resolved: unregistered under REGISTRY_ONLY")
        let plain = Policy(mode: .registryOnly, registry: registry(), gateway: nil)
        XCTAssertEqual(plain.decide(tunnelTo: HostPort(host: "203.0.113.9", port: 9000)).match?.matchedBy, .anyAddress)
    }

    func testWithoutTheDNSProxyAPortWithoutAddressesTakesEveryAddress() {
        let plain = Policy(mode: .registryOnly, registry: registry(), gateway: nil)
        let decision = plain.decide(ConnectionFacts(kind: .tcp, destination: ip("203.0.113.9"), port: 9000))
        XCTAssertEqual(decision.match?.matchedBy, .anyAddress, "Istio's 0.0.0.0:9000 listener")
        XCTAssertFalse(decision.isDenied)
    }

    func testALearnedAddressMatchesItsHostsEntryAndNoOther() {
        let policy = policy(learned: ["192.0.2.1": one, "192.0.2.2": two])
        let first = policy.decide(ConnectionFacts(kind: .tcp, destination: ip("192.0.2.1"), port: 9000))
        XCTAssertEqual(first.match?.entry.name, "external-svc-1")
        XCTAssertEqual(first.match?.matchedBy, .resolvedName(one, address: ip("192.0.2.1"), allocated: false))
        XCTAssertEqual(first.action, .forward(.resolve(host: one, port: 9000)))
        XCTAssertEqual(first.cluster, "outbound|9000||\(one)")
        XCTAssertEqual(first.reason,
                       "ServiceEntry default/external-svc-1 (dns-proxy.yaml:1) registers host \(one) on port 9000 (TCP), and the pod resolved 192.0.2.1 from \(one) through the DNS proxy; resolution DNS resolves \(one):9000")
        XCTAssertEqual(policy.decide(ConnectionFacts(kind: .tcp, destination: ip("192.0.2.2"), port: 9000)).match?.entry.name,
                       "external-svc-2")
        // Server-first protocols: decided at accept where the name is known, read otherwise.
        XCTAssertEqual(policy.decideBeforeReading(destination: ip("192.0.2.1"), port: 9000)?.match?.entry.name, "external-svc-1")
        XCTAssertNil(policy.decideBeforeReading(destination: ip("203.0.113.9"), port: 9000))
        // TLS bytes on the opaque port: the same address rule.
        XCTAssertEqual(policy.decide(ConnectionFacts(kind: .tls(serverName: "x.test"), destination: ip("192.0.2.2"), port: 9000)).match?.entry.name,
                       "external-svc-2")
    }

    func testAnotherAddressOnThePortIsUnregistered() {
        let policy = policy(learned: ["192.0.2.1": one])
        let decision = policy.decide(ConnectionFacts(kind: .tcp, destination: ip("203.0.113.9"), port: 9000))
        XCTAssertEqual(decision.action, .deny)
        XCTAssertEqual(decision.cluster, Decision.blackHoleCluster)
        XCTAssertEqual(decision.denial, .close)
        XCTAssertTrue(decision.reason.contains("only at addresses the pod resolved from"), decision.reason)
        XCTAssertTrue(decision.reason.hasSuffix("; REGISTRY_ONLY blocks it"), decision.reason)
        // A learned name that the port's entries do not register does not open the port either.
        let other = self.policy(learned: ["198.51.100.4": "unrelated.example.com"])
        XCTAssertTrue(other.decide(ConnectionFacts(kind: .tcp, destination: ip("198.51.100.4"), port: 9000)).isDenied)
        // Nor does a registered name on a port its entry does not declare.
        XCTAssertTrue(policy.decide(ConnectionFacts(kind: .tcp, destination: ip("192.0.2.1"), port: 7000)).isDenied)
    }

    func testResolutionNoneForwardsToTheLearnedAddressItself() {
        let policy = policy(learned: ["198.51.100.7": "legacy.example.com"])
        let decision = policy.decide(ConnectionFacts(kind: .tcp, destination: ip("198.51.100.7"), port: 7000))
        XCTAssertEqual(decision.action, .forward(.originalDestination(ip("198.51.100.7"), 7000)))
    }

    func testAllocatedAddressesMapBackToTheirHost() throws {
        let policy = policy(autoAllocate: true)
        let names = try XCTUnwrap(policy.resolvedNames)
        let allocation = try XCTUnwrap(names.allocations.allocation(forHost: two))
        XCTAssertNil(names.allocations.allocation(forHost: "legacy.example.com"), "resolution NONE: Istio allocates nothing")
        for address in [allocation.ipv4, try XCTUnwrap(allocation.ipv6)] {
            let decision = policy.decide(ConnectionFacts(kind: .tcp, destination: address, port: 9000))
            XCTAssertEqual(decision.match?.entry.name, "external-svc-2")
            XCTAssertEqual(decision.match?.matchedBy, .resolvedName(two, address: address, allocated: true))
            XCTAssertEqual(decision.action, .forward(.resolve(host: two, port: 9000)), "dialled at the host's real address")
            XCTAssertTrue(decision.reason.contains("the address the DNS proxy allocated to \(two)"), decision.reason)
        }
    }

    func testIstioAllocationFixtures() {
        func allocate(_ hosts: [String], namespace: String = "") -> DNSAllocations {
            DNSAllocations(entries: hosts.map {
                ServiceEntry(name: $0, namespace: namespace, hosts: [$0], ports: [ServicePort(number: 80, name: "tcp", protocol: .tcp)],
                             resolution: .dns)
            })
        }
        // "allocate IP for dns lb"
        let foo = allocate(["foo.com"]).allocation(forHost: "foo.com")
        XCTAssertEqual(foo?.ipv4, ip("240.240.227.81"))
        XCTAssertEqual(foo?.ipv6, ip("2001:2::f0f0:e351"))
        // "stable IP - baseline test" (namespace a)
        XCTAssertEqual(allocate(["a.example.com"], namespace: "a").allocation(forHost: "a.example.com")?.ipv4, ip("240.240.134.206"))
        // "collision": both hash to one slot; the second probes onwards.
        let collision = allocate(["a17061.example.com", "a44155.example.com"])
        XCTAssertEqual(collision.allocation(forHost: "a17061.example.com")?.ipv4, ip("240.240.25.11"))
        XCTAssertEqual(collision.allocation(forHost: "a17061.example.com")?.ipv6, ip("2001:2::f0f0:19b"))
        XCTAssertEqual(collision.allocation(forHost: "a44155.example.com")?.ipv4, ip("240.240.31.17"))
        XCTAssertEqual(collision.allocation(forHost: "a44155.example.com")?.ipv6, ip("2001:2::f0f0:1f11"))
        XCTAssertEqual(collision.host(for: ip("240.240.31.17")), "a44155.example.com")
        // Test_legacyAutoAllocateIP_deterministic
        let fixed = ["a.com": "240.240.109.8", "c.com": "240.240.234.51", "e.com": "240.240.85.60", "g.com": "240.240.23.172",
                     "i.com": "240.240.15.2", "k.com": "240.240.160.161", "l.com": "240.240.42.96", "n.com": "240.240.121.61",
                     "o.com": "240.240.122.71"]
        let all = allocate(fixed.keys.sorted())
        for (host, address) in fixed { XCTAssertEqual(all.allocation(forHost: host)?.ipv4, ip(address), host) }
        let more = allocate(fixed.keys.sorted() + ["b.com", "d.com", "f.com"])
        for (host, address) in fixed { XCTAssertEqual(more.allocation(forHost: host)?.ipv4, ip(address), "stable: \(host)") }
    }

    func testWildcardsAndEntriesWithAddressesGetNoAllocation() {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: wild}
            spec: {hosts: ["*.example.com"], ports: [{number: 9000, name: tcp, protocol: TCP}], resolution: DNS}
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: vip}
            spec: {hosts: [db.example.net], addresses: [10.9.9.9], ports: [{number: 9000, name: tcp, protocol: TCP}], resolution: DNS}
            """
        XCTAssertTrue(DNSAllocations(entries: RegistryLoader.parse(yaml: yaml, path: "x.yaml").entries).isEmpty)
    }

    func testTheDNSProxyAnswersAllocatedAddresses() throws {
        let allocations = DNSAllocations(registry: registry())
        let allocation = try XCTUnwrap(allocations.allocation(forHost: one))
        for (type, address) in [(DNSRecordType.a, allocation.ipv4), (.aaaa, try XCTUnwrap(allocation.ipv6))] {
            let query = DNSMessage(id: 7, flags: 0x0100, questions: [DNSQuestion(name: one, type: type)])
            let plan = DNSProxyAnswer.plan(query, registry: registry(), mode: .registryOnly, config: DNSConfig(proxy: true, autoAllocate: true),
                                           cache: DNSAnswerCache(), now: 0, allocations: allocations)
            XCTAssertEqual(plan, .local(query.response(
                rcode: .noError, answers: [DNSRecord(name: one, ttl: DNSProxyAnswer.registryTTL, data: .address(address))],
                authoritative: true), denied: false))
        }
        let config = try SluiceConfig.parse(yaml: "dns: {proxy: true, autoAllocate: true}\n", path: "sluice.yaml").get()
        XCTAssertTrue(config.dns.autoAllocate)
    }
}

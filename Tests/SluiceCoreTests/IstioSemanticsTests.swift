import SluiceCore
import XCTest

/// The decision table (port protocol × addresses × resolution × Host / SNI / IP) against
/// fixtures built from Istio's own examples (Fixtures/registry/istio-semantics, each file
/// credits its source). Every case says what Istio does and why.
final class IstioSemanticsTests: XCTestCase {
    private var policy = Policy(mode: .registryOnly, registry: Registry(), gateway: nil)
    private var loaded = RegistryLoadResult()

    override func setUpWithError() throws {
        loaded = RegistryLoader.load(paths: ["registry/istio-semantics"], relativeTo: RegistryFixtures.root)
        XCTAssertFalse(loaded.hasErrors, loaded.diagnostics.map(\.description).joined(separator: "\n"))
        let visible = loaded.entries.filter { $0.isVisible(fromNamespace: "default") }
        policy = Policy(mode: .registryOnly, registry: Registry(visible), gateway: nil)
    }

    private func ip(_ text: String) -> IPAddress {
        guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
        return address
    }

    private enum Expect {
        case allow(entry: String)
        case deny(Decision.Denial)
    }

    private struct Case {
        var kind: TrafficKind
        var destination: String
        var port: Int
        var expect: Expect
        var why: String
    }

    private func check(_ cases: [Case], policy: Policy? = nil, file: StaticString = #filePath, line: UInt = #line) {
        let policy = policy ?? self.policy
        for item in cases {
            let decision = policy.decide(ConnectionFacts(kind: item.kind, destination: ip(item.destination), port: item.port))
            switch item.expect {
            case .allow(let entry):
                XCTAssertFalse(decision.isDenied, "\(item.why): \(decision.reason)", file: file, line: line)
                XCTAssertEqual(decision.match?.entry.name, entry, item.why, file: file, line: line)
            case .deny(let denial):
                XCTAssertTrue(decision.isDenied, "\(item.why): \(decision.reason)", file: file, line: line)
                XCTAssertEqual(decision.denial, denial, item.why, file: file, line: line)
                XCTAssertEqual(decision.cluster, "BlackHoleCluster", item.why, file: file, line: line)
            }
        }
    }

    // MARK: 1. TCP ports of entries with addresses: by address only

    func testTCPPortWithAddressesIgnoresHostAndSNI() {
        check([
            Case(kind: .http(host: "my-company-proxy.com"), destination: "203.0.113.66", port: 3128, expect: .deny(.close),
                 why: "the bypass: Host of a TCP entry to another address; no HTTP listener on 3128, so closed like TCP"),
            Case(kind: .tls(serverName: "my-company-proxy.com"), destination: "203.0.113.66", port: 3128, expect: .deny(.close),
                 why: "SNI does not open a TCP entry's port either"),
            Case(kind: .tcp, destination: "203.0.113.66", port: 3128, expect: .deny(.close),
                 why: "another address on the port: unregistered"),
            Case(kind: .http(host: "anything.example"), destination: "10.1.2.3", port: 3128, expect: .allow(entry: "proxy"),
                 why: "the registered address takes any bytes, whatever the Host"),
            Case(kind: .tcp, destination: "10.1.2.3", port: 3128, expect: .allow(entry: "proxy"),
                 why: "opaque bytes to the registered address"),
            Case(kind: .tls(serverName: "evil.example"), destination: "10.1.2.3", port: 3128, expect: .allow(entry: "proxy"),
                 why: "TLS to the registered address, any SNI: the TCP proxy does not look"),
        ])
    }

    func testTheOpaquePortIsDecidedBeforeReading() {
        let early = policy.decideBeforeReading(destination: ip("10.1.2.3"), port: 3128)
        XCTAssertEqual(early?.match?.entry.name, "proxy", "server-first protocols need no sniffing")
        XCTAssertNil(policy.decideBeforeReading(destination: ip("203.0.113.66"), port: 3128), "other addresses are sniffed")
        XCTAssertNil(policy.decideBeforeReading(destination: ip("192.0.2.44"), port: 8443), "a TLS VIP needs its bytes to be TLS")
    }

    func testOverlappingCIDRsTheMorePreciseWins() {
        check([
            Case(kind: .tcp, destination: "10.9.8.7", port: 9999, expect: .allow(entry: "se2"), why: "matches both, /32 is more precise"),
            Case(kind: .tcp, destination: "10.9.1.1", port: 9999, expect: .allow(entry: "se1"), why: "only the /16"),
        ])
    }

    // MARK: 2. A port's protocol decides what may flow on it

    func testTLSPorts() {
        check([
            Case(kind: .tls(serverName: "api.dropboxapi.com"), destination: "203.0.113.5", port: 443, expect: .allow(entry: "external-svc-https"),
                 why: "SNI of a TLS entry without addresses, any destination"),
            Case(kind: .tls(serverName: "evil.example"), destination: "203.0.113.5", port: 443, expect: .deny(.close),
                 why: "unregistered SNI"),
            Case(kind: .tls(serverName: nil), destination: "203.0.113.5", port: 443, expect: .deny(.close),
                 why: "no SNI and no address match"),
            Case(kind: .tcp, destination: "203.0.113.5", port: 443, expect: .deny(.close),
                 why: "opaque bytes on a TLS port are not forwarded as TCP"),
            Case(kind: .http(host: "api.dropboxapi.com"), destination: "203.0.113.5", port: 443, expect: .deny(.close),
                 why: "plain HTTP on a TLS-only port: no HTTP listener, closed"),
            Case(kind: .tls(serverName: nil), destination: "192.0.2.44", port: 8443, expect: .allow(entry: "tls-vip"),
                 why: "a VIP identifies the service; Istio does no SNI match there"),
            Case(kind: .tcp, destination: "192.0.2.44", port: 8443, expect: .deny(.close),
                 why: "bytes that are not TLS to a TLS VIP are refused"),
            Case(kind: .tls(serverName: "vip.tls.example"), destination: "203.0.113.5", port: 8443, expect: .deny(.close),
                 why: "an entry with addresses has its TLS port bound to them: its hosts do not match other addresses"),
            Case(kind: .tls(serverName: "cidr.tls.example"), destination: "198.51.100.9", port: 8443, expect: .allow(entry: "tls-cidr"),
                 why: "CIDR and SNI together"),
            Case(kind: .tls(serverName: "other.example"), destination: "198.51.100.9", port: 8443, expect: .deny(.close),
                 why: "in the CIDR, but the SNI is not the entry's"),
        ])
    }

    func testHTTPPorts() {
        check([
            Case(kind: .http(host: "httpbin.org"), destination: "203.0.113.7", port: 80, expect: .allow(entry: "httpbin-ext"),
                 why: "Host of an HTTP entry"),
            Case(kind: .http(host: "httpbin.org:80"), destination: "203.0.113.7", port: 80, expect: .allow(entry: "httpbin-ext"),
                 why: "host:port of the port dialled is one of Istio's route domains"),
            Case(kind: .http(host: "httpbin.org:8080"), destination: "203.0.113.7", port: 80, expect: .deny(.httpStatus(502)),
                 why: "a Host naming another port matches no route on this one"),
            Case(kind: .http(host: "evil.example"), destination: "203.0.113.7", port: 80, expect: .deny(.httpStatus(502)),
                 why: "block_all on an HTTP port"),
            Case(kind: .tls(serverName: "httpbin.org"), destination: "203.0.113.7", port: 80, expect: .deny(.close),
                 why: "TLS on an HTTP port is not matched by the HTTP entry's host"),
            Case(kind: .tcp, destination: "203.0.113.7", port: 80, expect: .deny(.close),
                 why: "opaque bytes on an HTTP port"),
            Case(kind: .http(host: "evil.example"), destination: "203.0.113.7", port: 8081, expect: .deny(.httpStatus(502)),
                 why: "a port nobody declares still answers HTTP with 502 (as a cluster's HTTP services on it would)"),
        ])
    }

    // MARK: 3. Ports without a protocol: detected

    func testDetectedPorts() {
        check([
            Case(kind: .http(host: "api.sniffed.example"), destination: "203.0.113.8", port: 8080, expect: .allow(entry: "sniffed"),
                 why: "HTTP detected, routed by Host"),
            Case(kind: .http(host: "evil.example"), destination: "203.0.113.8", port: 8080, expect: .deny(.httpStatus(502)),
                 why: "unregistered Host on a detected port gets 502, not opaque TCP"),
            Case(kind: .tls(serverName: "api.sniffed.example"), destination: "203.0.113.8", port: 8080, expect: .allow(entry: "sniffed"),
                 why: "TLS detected, routed by SNI"),
            Case(kind: .tls(serverName: "evil.example"), destination: "203.0.113.8", port: 8080, expect: .deny(.close),
                 why: "unregistered SNI on a detected port"),
        ])
        XCTAssertNil(policy.decideBeforeReading(destination: ip("203.0.113.8"), port: 8080), "a detected port needs its bytes")
    }

    // MARK: 4. Valid Istio oddities load and mean what they mean in Istio

    func testValidIstioOdditiesLoad() throws {
        let names = Set(loaded.entries.map(\.name))
        for name in ["partial-wildcard", "no-ports", "unix-domain-socket-example", "details-svc", "dual-stack", "external-svc-httpbin"] {
            XCTAssertTrue(names.contains(name), name)
        }
        let dual = try XCTUnwrap(loaded.entries.first { $0.name == "dual-stack" })
        XCTAssertEqual(dual.addresses.map(\.description), ["192.0.2.80/32", "2001:db8::80/128"])
        let said = loaded.diagnostics.map(\.description).joined(separator: "\n")
        XCTAssertTrue(said.contains("warning: ServiceEntry default/partial-wildcard: spec.hosts[0]: partial wildcard"), said)
        XCTAssertTrue(said.contains("warning: ServiceEntry default/no-ports: spec.ports: no ports"), said)
        XCTAssertTrue(said.contains("note: ServiceEntry default/unix-domain-socket-example: spec.endpoints[0].address: a unix domain socket"), said)
        XCTAssertTrue(said.contains("note: ServiceEntry default/details-svc: spec.workloadSelector: a sidecar cannot discover the pods"), said)
    }

    func testPartialWildcardMatchesAsEnvoySuffixDomains() {
        check([
            Case(kind: .http(host: "abcx.example.com"), destination: "203.0.113.9", port: 80, expect: .allow(entry: "partial-wildcard"),
                 why: "*x.example.com matches a name ending in x.example.com"),
            Case(kind: .http(host: "a.b.x.example.com"), destination: "203.0.113.9", port: 80, expect: .allow(entry: "partial-wildcard"),
                 why: "the suffix may follow any number of labels"),
            Case(kind: .http(host: "x.example.com"), destination: "203.0.113.9", port: 80, expect: .deny(.httpStatus(502)),
                 why: "the wildcard needs at least one character"),
        ])
    }

    func testUnixEndpointsAreIgnoredAndWorkloadSelectorHasNoUpstream() throws {
        let unix = policy.decide(ConnectionFacts(kind: .http(host: "example.unix.local"), destination: ip("203.0.113.1"), port: 80))
        XCTAssertEqual(unix.action, .forward(.endpoints([])))
        XCTAssertTrue(unix.reason.contains("none a sidecar can reach"), unix.reason)
        let selected = policy.decide(ConnectionFacts(kind: .http(host: "details.bookinfo.com"), destination: ip("203.0.113.1"), port: 80))
        XCTAssertEqual(selected.action, .forward(.endpoints([])))
    }

    // MARK: 6. exportTo

    func testExportToIsEnforcedForTheWorkloadsNamespace() {
        let facts = ConnectionFacts(kind: .http(host: "example.com"), destination: ip("203.0.113.1"), port: 80)
        XCTAssertTrue(policy.decide(facts).isDenied, "exportTo \".\" hides it from namespace default")
        let egress = Policy(mode: .registryOnly, registry: Registry(loaded.entries.filter { $0.isVisible(fromNamespace: "egress") }), gateway: nil)
        XCTAssertEqual(egress.decide(facts).match?.entry.name, "external-svc-httpbin")
        let entry = ServiceEntry(name: "x", namespace: "a", hosts: ["x.example"], ports: [], exportTo: ["b", "~"])
        XCTAssertTrue(entry.isVisible(fromNamespace: "b"))
        XCTAssertFalse(entry.isVisible(fromNamespace: "a"))
        XCTAssertFalse(ServiceEntry(name: "y", hosts: ["y.example"], ports: [], exportTo: ["~"]).isVisible(fromNamespace: "default"))
        XCTAssertTrue(ServiceEntry(name: "z", hosts: ["z.example"], ports: [], exportTo: ["*"]).isVisible(fromNamespace: "q"))
    }

    // MARK: 7. The gateway role, decided in the same place

    func testGatewayResolvesWhereASidecarWouldPassThrough() {
        let gateway = Policy(mode: .registryOnly, registry: policy.registry, gateway: nil, role: .gateway)
        let http = gateway.decide(ConnectionFacts(kind: .http(host: "api.sniffed.example"), destination: ip("192.0.2.200"), port: 8080))
        XCTAssertEqual(http.action, .forward(.resolve(host: "api.sniffed.example", port: 8080)), "resolution NONE at a gateway resolves the name")
        let denied = gateway.decide(ConnectionFacts(kind: .http(host: "evil.example"), destination: ip("192.0.2.200"), port: 80))
        XCTAssertEqual(denied.denial, .httpStatus(404))
        let vip = gateway.decide(ConnectionFacts(kind: .tls(serverName: "vip.tls.example"), destination: ip("192.0.2.200"), port: 8443))
        XCTAssertEqual(vip.action, .forward(.resolve(host: "vip.tls.example", port: 8443)), "at a gateway SNI is all there is")
        XCTAssertTrue(gateway.decide(ConnectionFacts(kind: .tcp, destination: ip("192.0.2.200"), port: 443)).isDenied)
        XCTAssertNil(gateway.decideBeforeReading(destination: ip("10.1.2.3"), port: 3128))
    }

    // MARK: Tunnels

    func testTunnelsByNameIgnoreHostsOfTCPEntriesWithAddresses() {
        XCTAssertTrue(policy.decide(tunnelTo: HostPort(host: "my-company-proxy.com", port: 3128)).isDenied,
                      "hosts of a TCP entry with addresses are ignored for tunnels too")
        XCTAssertEqual(policy.decide(tunnelTo: HostPort(host: "10.1.2.3", port: 3128)).match?.entry.name, "proxy")
        XCTAssertEqual(policy.decide(tunnelTo: HostPort(host: "api.dropboxapi.com", port: 443)).match?.entry.name, "external-svc-https")
    }
}

/// Audit mode: decided exactly as REGISTRY_ONLY, let through, marked.
final class AuditModeTests: XCTestCase {
    func testAuditLetsAWouldBeDenialThroughMarkedAsOne() throws {
        let entry = ServiceEntry(name: "a", hosts: ["a.example"], ports: [ServicePort(number: 80, name: "http", protocol: .http)], resolution: .dns)
        let registry = Registry([entry])
        let audit = Policy(mode: .registryOnly, registry: registry, gateway: nil, audit: true)
        let strict = Policy(mode: .registryOnly, registry: registry, gateway: nil)
        let destination = try XCTUnwrap(IPAddress("203.0.113.1"))
        let facts = ConnectionFacts(kind: .http(host: "b.example"), destination: destination, port: 80)
        let would = strict.decide(facts)
        let audited = audit.decide(facts)
        XCTAssertTrue(would.isDenied)
        XCTAssertEqual(audited.action, .forward(.originalDestination(destination, 80)))
        XCTAssertTrue(audited.audited)
        XCTAssertEqual(audited.cluster, would.cluster, "logged with everything a denial logs")
        XCTAssertEqual(audited.routeName, would.routeName)
        XCTAssertEqual(audited.denial, .httpStatus(502), "what the client would have got")
        XCTAssertTrue(audited.reason.contains("audit mode lets it through"), audited.reason)
        // Registered traffic is decided as always.
        let registered = audit.decide(ConnectionFacts(kind: .http(host: "a.example"), destination: destination, port: 80))
        XCTAssertFalse(registered.audited)
        XCTAssertEqual(registered, strict.decide(ConnectionFacts(kind: .http(host: "a.example"), destination: destination, port: 80)))
        // A gateway with no name to resolve still cannot pass opaque bytes anywhere.
        let gateway = Policy(mode: .registryOnly, registry: registry, gateway: nil, role: .gateway, audit: true)
        XCTAssertTrue(gateway.decide(ConnectionFacts(kind: .tcp, destination: destination, port: 443)).isDenied)
        XCTAssertTrue(gateway.decide(ConnectionFacts(kind: .http(host: "b.example"), destination: destination, port: 80)).audited)
    }

    func testAuditIsReadFromTheConfig() throws {
        let config = try SluiceConfig.parse(yaml: "outboundTrafficPolicy: {mode: REGISTRY_ONLY, audit: true}\n", path: "a.yaml").get()
        XCTAssertTrue(config.audit)
        XCTAssertFalse(try SluiceConfig.parse(yaml: "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n", path: "b.yaml").get().audit)
        XCTAssertTrue(SluiceSnapshot(config: config, entries: []).policy(role: .sidecar).audit)
    }
}

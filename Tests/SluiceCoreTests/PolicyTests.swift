import SluiceCore
import XCTest

/// One test per branch of `Policy.decide`, against the Istio docs fixtures.
final class PolicyTests: XCTestCase {
    private var registry = Registry()
    private var docsPath = ""

    override func setUpWithError() throws {
        let loaded = RegistryLoader.load(paths: ["registry/istio-docs"], relativeTo: RegistryFixtures.root)
        XCTAssertFalse(loaded.hasErrors)
        registry = Registry(loaded.entries)
        docsPath = RegistryFixtures.path("registry/istio-docs")
    }

    private func ip(_ text: String) -> IPAddress {
        guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
        return address
    }

    private func decide(
        _ kind: TrafficKind, _ destination: String, _ port: Int,
        mode: OutboundTrafficPolicyMode = .registryOnly, gateway: EgressGatewayConfig? = nil, registry: Registry? = nil
    ) -> Decision {
        Policy(mode: mode, registry: registry ?? self.registry, gateway: gateway)
            .decide(ConnectionFacts(kind: kind, destination: ip(destination), port: port))
    }

    // MARK: HTTP

    func testRegisteredHTTPWithDNSResolutionResolvesTheHost() {
        let decision = decide(.http(host: "aliyun.com"), "106.11.249.99", 80)
        XCTAssertEqual(decision.action, .forward(.resolve(host: "aliyun.com", port: 80)))
        XCTAssertEqual(decision.cluster, "outbound|80||aliyun.com")
        XCTAssertEqual(decision.routeName, "aliyun.com:80")
        XCTAssertEqual(decision.match?.entry.name, "aliyun")
        XCTAssertEqual(decision.reason,
                       "ServiceEntry default/aliyun (\(docsPath)/01-aliyun.yaml:2) registers host aliyun.com on port 80 (HTTP); resolution DNS resolves aliyun.com:80")
    }

    func testHostHeaderIsNormalisedAndMustNameTheDialedPort() {
        for host in ["AliYun.COM.", "aliyun.com:80", "ALIYUN.com.:80"] {
            XCTAssertEqual(decide(.http(host: host), "106.11.249.99", 80).action, .forward(.resolve(host: "aliyun.com", port: 80)), host)
        }
        // Istio's route domains for port 80 are `aliyun.com` and `aliyun.com:80`: a Host naming
        // 8080 on a connection to 80 is not routed to outbound|80||aliyun.com.
        let other = decide(.http(host: "aliyun.com:8080"), "106.11.249.99", 80)
        XCTAssertTrue(other.isDenied)
        XCTAssertEqual(other.denial, .httpStatus(502))
        XCTAssertTrue(other.reason.contains("the Host names another port than the 80 it was sent to"), other.reason)
        XCTAssertTrue(decide(.http(host: "aliyun.com:80"), "106.11.249.99", 8080).isDenied)
    }

    func testHTTPToAPortDeclaredHTTPSDoesNotMatch() {
        let decision = decide(.http(host: "aliyun.com"), "106.11.249.99", 443)
        XCTAssertTrue(decision.isDenied)
        XCTAssertNil(decision.match)
        XCTAssertEqual(decision.reason,
                       "no ServiceEntry registers host aliyun.com on port 443 for HTTP (ServiceEntry default/aliyun (\(docsPath)/01-aliyun.yaml:2) registers host aliyun.com on port 443 (HTTPS), which HTTP traffic does not match); REGISTRY_ONLY blocks it")
    }

    func testUnregisteredHTTPUnderRegistryOnlyIsDenied() {
        let decision = decide(.http(host: "evil.example"), "203.0.113.9", 80)
        XCTAssertEqual(decision, Decision(
            action: .deny, cluster: "BlackHoleCluster", routeName: "block_all", match: nil, denial: .httpStatus(502),
            reason: "no ServiceEntry registers host evil.example on port 80 for HTTP; REGISTRY_ONLY blocks it"))
    }

    func testUnregisteredHTTPUnderAllowAnyPassesThrough() {
        let decision = decide(.http(host: "evil.example"), "203.0.113.9", 80, mode: .allowAny)
        XCTAssertEqual(decision, Decision(
            action: .forward(.originalDestination(ip("203.0.113.9"), 80)), cluster: "PassthroughCluster",
            routeName: "allow_any", match: nil,
            reason: "no ServiceEntry registers host evil.example on port 80 for HTTP; ALLOW_ANY passes it through to 203.0.113.9:80"))
    }

    func testHTTPWildcardEntryResolvesTheConcreteHost() {
        let decision = decide(.http(host: "fr.en.wikipedia.org"), "198.51.100.1", 80)
        XCTAssertEqual(decision.action, .forward(.resolve(host: "fr.en.wikipedia.org", port: 80)))
        XCTAssertEqual(decision.cluster, "outbound|80||*.en.wikipedia.org")
        XCTAssertEqual(decision.routeName, "*.en.wikipedia.org:80")
        XCTAssertEqual(decision.match?.matchedHost, "*.en.wikipedia.org")
    }

    func testHTTPStaticEndpointsUseEndpointPortThenTargetPort() {
        let decision = decide(.http(host: "legacy.internal.example"), "10.99.0.1", 80)
        XCTAssertEqual(decision.action, .forward(.endpoints([
            HostPort(host: "10.10.0.5", port: 8080), HostPort(host: "2001:db8::5", port: 9090),
        ])))
        XCTAssertEqual(decision.cluster, "outbound|80||legacy.internal.example")
        XCTAssertTrue(decision.reason.hasSuffix("resolution STATIC forwards to its endpoints"), decision.reason)
    }

    func testHTTPOnAnOpaquePortMatchesByPortNotByHost() {
        // mysql.example.com declares TCP 3306 without addresses: Istio's 0.0.0.0:3306 TCP
        // listener takes the port on every address, whatever the Host says; `hosts` only name
        // what resolution DNS resolves.
        for host in ["mysql.example.com", "other.example"] {
            let decision = decide(.http(host: host), "192.0.2.50", 3306)
            XCTAssertEqual(decision.match?.matchedBy, .anyAddress, host)
            XCTAssertEqual(decision.action, .forward(.resolve(host: "mysql.example.com", port: 3306)), host)
        }
    }

    func testHTTPWithIPLiteralHostMatchesEntryAddresses() throws {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: vip-http}
            spec:
              hosts: [vip.internal]
              addresses: [10.20.0.0/16]
              ports: [{number: 8080, name: http, protocol: HTTP}]
              resolution: NONE
            """
        let registry = Registry(RegistryLoader.parse(yaml: yaml, path: "vip.yaml").entries)
        let decision = decide(.http(host: "10.20.1.1:8080"), "10.20.1.1", 8080, registry: registry)
        XCTAssertEqual(decision.action, .forward(.originalDestination(ip("10.20.1.1"), 8080)))
        XCTAssertEqual(decision.match?.matchedBy, .address(try XCTUnwrap(CIDR("10.20.0.0/16"))))
        XCTAssertTrue(decide(.http(host: "other.example"), "10.20.1.1", 8080, registry: registry).isDenied,
                      "an HTTP port is matched by Host, not by the address dialed")
    }

    func testHTTPToAnAddressOfAnOpaquePortIsForwardedByAddressWhateverTheHost() {
        let decision = decide(.http(host: "anything.example"), "35.232.232.38", 80)
        XCTAssertEqual(decision.match?.entry.name, "se-httpbin")
        XCTAssertEqual(decision.match?.matchedBy, .address(CIDR(address: ip("35.232.232.38"), prefixLength: 32)!))
    }

    // MARK: TLS

    func testTLSBySNIWithResolutionNoneGoesToTheOriginalDestination() {
        let decision = decide(.tls(serverName: "wikipedia.org"), "198.51.100.7", 443)
        XCTAssertEqual(decision.action, .forward(.originalDestination(ip("198.51.100.7"), 443)))
        XCTAssertEqual(decision.cluster, "outbound|443||wikipedia.org")
        XCTAssertEqual(decision.reason,
                       "ServiceEntry default/external-svc-redirect (\(docsPath)/04-wildcard.yaml:2) registers host wikipedia.org on port 443 (TLS); resolution NONE forwards to the original destination 198.51.100.7:443")
    }

    func testTLSWildcardMostSpecificEntryWins() {
        let en = decide(.tls(serverName: "www.en.wikipedia.org"), "198.51.100.7", 443)
        XCTAssertEqual(en.match?.entry.name, "wikipedia-en")
        XCTAssertEqual(en.action, .forward(.resolve(host: "www.en.wikipedia.org", port: 443)))
        let de = decide(.tls(serverName: "de.wikipedia.org"), "198.51.100.7", 443)
        XCTAssertEqual(de.match?.entry.name, "external-svc-redirect")
        XCTAssertEqual(de.cluster, "outbound|443||*.wikipedia.org")
    }

    func testTLSDNSEndpointsWithPerEndpointPorts() {
        let decision = decide(.tls(serverName: "foo.bar.com"), "192.0.2.1", 443)
        XCTAssertEqual(decision.action, .forward(.endpoints([
            HostPort(host: "us.foo.bar.com", port: 8080), HostPort(host: "uk.foo.bar.com", port: 9080),
            HostPort(host: "in.foo.bar.com", port: 7080),
        ])))
    }

    func testTLSToAnHTTPPortDoesNotMatch() {
        XCTAssertTrue(decide(.tls(serverName: "aliyun.com"), "106.11.249.99", 80).isDenied)
    }

    func testTLSWithoutSNIMatchesByAddress() {
        let decision = decide(.tls(serverName: nil), "192.192.192.40", 27018)
        XCTAssertEqual(decision.match?.entry.name, "external-svc-mongocluster")
        XCTAssertEqual(decision.action, .forward(.endpoints([HostPort(host: "2.2.2.2", port: 27018), HostPort(host: "3.3.3.3", port: 27018)])))
        XCTAssertEqual(decision.cluster, "outbound|27018||mymongodb.somedomain")
    }

    func testTLSWithUnknownSNIFallsBackToAddress() {
        let decision = decide(.tls(serverName: "unknown.example"), "35.232.232.38", 80)
        XCTAssertEqual(decision.match?.entry.name, "se-httpbin")
        XCTAssertEqual(decision.action, .forward(.endpoints([HostPort(host: "35.232.232.38", port: 80)])))
    }

    func testUnregisteredTLSNamesSNIAndAddress() {
        let denied = decide(.tls(serverName: "blocked.example"), "203.0.113.4", 443)
        XCTAssertTrue(denied.isDenied)
        XCTAssertEqual(denied.cluster, "BlackHoleCluster")
        XCTAssertEqual(denied.reason, "no ServiceEntry registers SNI blocked.example or address 203.0.113.4 on port 443 for TLS; REGISTRY_ONLY blocks it")
        let allowed = decide(.tls(serverName: nil), "203.0.113.4", 443, mode: .allowAny)
        XCTAssertEqual(allowed.action, .forward(.originalDestination(ip("203.0.113.4"), 443)))
        XCTAssertEqual(allowed.routeName, "allow_any")
    }

    // MARK: TCP

    func testTCPByVIPGoesToStaticEndpoints() {
        let decision = decide(.tcp, "192.192.192.7", 27018)
        XCTAssertEqual(decision.action, .forward(.endpoints([HostPort(host: "2.2.2.2", port: 27018), HostPort(host: "3.3.3.3", port: 27018)])))
        XCTAssertEqual(decision.routeName, "mymongodb.somedomain:27018")
        XCTAssertEqual(decision.reason,
                       "ServiceEntry default/external-svc-mongocluster (\(docsPath)/05-tcp-addresses.yaml:2) registers address 192.192.192.0/24 on port 27018 (MONGO); resolution STATIC forwards to its endpoints")
    }

    func testTCPByIPv6NetworkAndMappedAddress() {
        XCTAssertEqual(decide(.tcp, "2001:db8:cafe::10", 80).match?.entry.name, "se-httpbin")
        XCTAssertEqual(decide(.tcp, "::ffff:35.232.232.38", 80).match?.entry.name, "se-httpbin")
    }

    func testTCPOnADeclaredPortWithoutAddressesResolvesTheEntryHost() {
        let decision = decide(.tcp, "10.1.1.1", 3306)
        XCTAssertEqual(decision.action, .forward(.resolve(host: "mysql.example.com", port: 3306)))
        XCTAssertEqual(decision.match?.matchedBy, .anyAddress)
        XCTAssertEqual(decision.reason,
                       "ServiceEntry db/mysql (\(docsPath)/05-tcp-addresses.yaml:42) declares port 3306 (TCP) without addresses, which takes that port on every address; resolution DNS resolves mysql.example.com:3306")
    }

    func testUnregisteredTCP() {
        XCTAssertEqual(decide(.tcp, "203.0.113.4", 5432).reason,
                       "no ServiceEntry registers address 203.0.113.4 on port 5432 for TCP; REGISTRY_ONLY blocks it")
        XCTAssertEqual(decide(.tcp, "203.0.113.4", 5432, mode: .allowAny).action,
                       .forward(.originalDestination(ip("203.0.113.4"), 5432)))
    }

    func testWildcardEntryMatchedByAddressHasNoNameToResolve() {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: corp}
            spec:
              hosts: ["*.corp.example"]
              addresses: [10.50.0.1]
              ports: [{number: 5432, name: pg, protocol: TCP}]
              resolution: DNS
            """
        let registry = Registry(RegistryLoader.parse(yaml: yaml, path: "corp.yaml").entries)
        let decision = decide(.tcp, "10.50.0.1", 5432, registry: registry)
        XCTAssertEqual(decision.action, .forward(.originalDestination(ip("10.50.0.1"), 5432)))
        XCTAssertEqual(decision.cluster, "outbound|5432||*.corp.example")
    }

    // MARK: Egress gateway

    private let istioGateway = EgressGatewayConfig(addresses: ["egress.example.internal"], protocol: .istio, httpPort: 8080, tlsPort: 8443)
    private let connectGateway = EgressGatewayConfig(addresses: ["192.0.2.10"], protocol: .connect, connectPort: 3128)

    func testIstioGatewayCarriesHTTPToItsHTTPPort() {
        let decision = decide(.http(host: "edition.cnn.com"), "151.101.1.67", 80, gateway: istioGateway)
        XCTAssertEqual(decision.action, .forward(.gateway(authority: HostPort(host: "edition.cnn.com", port: 80), gatewayPort: 8080, protocol: .istio)))
        XCTAssertEqual(decision.cluster, "outbound|80||edition.cnn.com")
        XCTAssertEqual(decision.reason,
                       "ServiceEntry default/cnn (\(docsPath)/02-cnn-egress-gateway.yaml:3) registers host edition.cnn.com on port 80 (HTTP); egress gateway egress.example.internal routes edition.cnn.com, so it goes via gateway port 8080 (istio) for edition.cnn.com:80")
    }

    func testIstioGatewayCarriesTLSToItsTLSPortWithTheConcreteName() {
        let decision = decide(.tls(serverName: "de.wikipedia.org"), "198.51.100.7", 443, gateway: istioGateway)
        XCTAssertEqual(decision.action, .forward(.gateway(authority: HostPort(host: "de.wikipedia.org", port: 443), gatewayPort: 8443, protocol: .istio)))
    }

    func testIstioGatewayCannotCarryOpaqueTCPSoItGoesDirect() {
        let decision = decide(.tcp, "192.192.192.7", 27018, gateway: istioGateway)
        XCTAssertEqual(decision.action, .forward(.endpoints([HostPort(host: "2.2.2.2", port: 27018), HostPort(host: "3.3.3.3", port: 27018)])))
        XCTAssertTrue(decision.reason.hasSuffix("directly (the istio gateway cannot carry this traffic)"), decision.reason)
        // TLS without SNI cannot be routed by an istio gateway either.
        let noSNI = decide(.tls(serverName: nil), "192.192.192.7", 27018, gateway: istioGateway)
        XCTAssertEqual(noSNI.action, decision.action)
    }

    func testConnectGatewayCarriesEverythingToItsConnectPort() {
        XCTAssertEqual(decide(.tcp, "192.192.192.7", 27018, gateway: connectGateway).action,
                       .forward(.gateway(authority: HostPort(host: "192.192.192.7", port: 27018), gatewayPort: 3128, protocol: .connect)),
                       "CONNECT target is ip:port when only the address matched")
        XCTAssertEqual(decide(.tcp, "2001:db8:cafe::10", 80, gateway: connectGateway).action,
                       .forward(.gateway(authority: HostPort(host: "2001:db8:cafe::10", port: 80), gatewayPort: 3128, protocol: .connect)))
        XCTAssertEqual(decide(.http(host: "aliyun.com"), "106.11.249.99", 80, gateway: connectGateway).action,
                       .forward(.gateway(authority: HostPort(host: "aliyun.com", port: 80), gatewayPort: 3128, protocol: .connect)))
        XCTAssertEqual(decide(.tls(serverName: "api.dropboxapi.com"), "162.125.1.1", 443, gateway: connectGateway).action,
                       .forward(.gateway(authority: HostPort(host: "api.dropboxapi.com", port: 443), gatewayPort: 3128, protocol: .connect)))
    }

    func testGatewayHostsDecideWhichRegisteredHostsUseIt() {
        let gateway = EgressGatewayConfig(addresses: ["192.0.2.10"], protocol: .istio, hosts: ["*.wikipedia.org"])
        XCTAssertEqual(decide(.tls(serverName: "de.wikipedia.org"), "198.51.100.7", 443, gateway: gateway).action,
                       .forward(.gateway(authority: HostPort(host: "de.wikipedia.org", port: 443), gatewayPort: 443, protocol: .istio)))
        let direct = decide(.http(host: "aliyun.com"), "106.11.249.99", 80, gateway: gateway)
        XCTAssertEqual(direct.action, .forward(.resolve(host: "aliyun.com", port: 80)))
        XCTAssertTrue(direct.reason.hasSuffix("directly (not in the gateway's hosts)"), direct.reason)
    }

    func testUnregisteredTrafficNeverUsesTheGateway() {
        XCTAssertEqual(decide(.http(host: "evil.example"), "203.0.113.9", 80, mode: .allowAny, gateway: connectGateway).action,
                       .forward(.originalDestination(ip("203.0.113.9"), 80)))
        XCTAssertTrue(decide(.http(host: "evil.example"), "203.0.113.9", 80, gateway: connectGateway).isDenied)
    }

    // MARK: Values

    func testHostPortDescription() {
        XCTAssertEqual(HostPort(host: "aliyun.com", port: 443).description, "aliyun.com:443")
        XCTAssertEqual(HostPort(host: "10.0.0.1", port: 80).description, "10.0.0.1:80")
        XCTAssertEqual(HostPort(address: ip("2001:DB8::1"), port: 443).description, "[2001:db8::1]:443")
    }

    func testGatewayHostGlobs() {
        let gateway = EgressGatewayConfig(addresses: ["gw"], hosts: ["*.example.com", "exact.org"])
        XCTAssertTrue(gateway.routes(host: "a.example.com"))
        XCTAssertTrue(gateway.routes(host: "a.b.Example.com."))
        XCTAssertFalse(gateway.routes(host: "example.com"))
        XCTAssertFalse(gateway.routes(host: "badexample.com"))
        XCTAssertTrue(gateway.routes(host: "exact.org"))
        XCTAssertFalse(gateway.routes(host: "sub.exact.org"))
        XCTAssertTrue(gateway.routes(host: "*.example.com"), "a wildcard entry host is covered by the same glob")
        XCTAssertTrue(EgressGatewayConfig(addresses: ["gw"]).routes(host: "anything.at.all"))
    }
}

/// CONNECT tunnels at the gateway: a registered host or address on any protocol's port.
final class PolicyTunnelTests: XCTestCase {
    private var policy = Policy(mode: .registryOnly, registry: Registry(), gateway: nil)
    private var docsPath = ""

    override func setUpWithError() throws {
        let loaded = RegistryLoader.load(paths: ["registry/istio-docs"], relativeTo: RegistryFixtures.root)
        policy = Policy(mode: .registryOnly, registry: Registry(loaded.entries), gateway: nil)
        docsPath = RegistryFixtures.path("registry/istio-docs")
    }

    func testTunnelToARegisteredHostOnAnyProtocolPort() {
        XCTAssertEqual(policy.decide(tunnelTo: HostPort(host: "aliyun.com", port: 443)).action,
                       .forward(.resolve(host: "aliyun.com", port: 443)), "HTTPS port")
        XCTAssertEqual(policy.decide(tunnelTo: HostPort(host: "Aliyun.com.", port: 80)).action,
                       .forward(.resolve(host: "aliyun.com", port: 80)), "HTTP port")
        let none = policy.decide(tunnelTo: HostPort(host: "de.wikipedia.org", port: 443))
        XCTAssertEqual(none.action, .forward(.resolve(host: "de.wikipedia.org", port: 443)),
                       "resolution NONE sends a tunnel to its named target")
        XCTAssertEqual(none.cluster, "outbound|443||*.wikipedia.org")
        XCTAssertEqual(none.reason,
                       "ServiceEntry default/external-svc-redirect (\(docsPath)/04-wildcard.yaml:2) registers host *.wikipedia.org on port 443 (TLS); resolution NONE forwards to the original destination de.wikipedia.org:443")
    }

    func testTunnelToAnAddress() throws {
        XCTAssertEqual(policy.decide(tunnelTo: HostPort(host: "192.192.192.9", port: 27018)).action,
                       .forward(.endpoints([HostPort(host: "2.2.2.2", port: 27018), HostPort(host: "3.3.3.3", port: 27018)])))
        XCTAssertEqual(policy.decide(tunnelTo: HostPort(host: "2001:db8:cafe::1", port: 80)).match?.entry.name, "se-httpbin")
    }

    func testUnregisteredTunnels() throws {
        let denied = policy.decide(tunnelTo: HostPort(host: "evil.example", port: 443))
        XCTAssertEqual(denied, Decision(action: .deny, cluster: "BlackHoleCluster", routeName: "block_all", match: nil,
                                        denial: .httpStatus(403), reason: "no ServiceEntry registers host evil.example on port 443 for CONNECT; REGISTRY_ONLY blocks it"))
        XCTAssertTrue(policy.decide(tunnelTo: HostPort(host: "aliyun.com", port: 8443)).isDenied, "the port must be declared")
        // A named target matches by name only: mysql's "TCP 3306 on any address" is about
        // intercepted connections, and must not open the gateway to every name on port 3306.
        XCTAssertTrue(policy.decide(tunnelTo: HostPort(host: "other.example", port: 3306)).isDenied)
        XCTAssertEqual(policy.decide(tunnelTo: HostPort(host: "mysql.example.com", port: 3306)).action,
                       .forward(.resolve(host: "mysql.example.com", port: 3306)))
        let open = Policy(mode: .allowAny, registry: policy.registry, gateway: nil)
        XCTAssertEqual(open.decide(tunnelTo: HostPort(host: "evil.example", port: 443)).action,
                       .forward(.resolve(host: "evil.example", port: 443)), "ALLOW_ANY makes the gateway a dynamic forward proxy")
        XCTAssertEqual(open.decide(tunnelTo: HostPort(host: "203.0.113.1", port: 22)).action,
                       .forward(.originalDestination(try XCTUnwrap(IPAddress("203.0.113.1")), 22)))
    }
}

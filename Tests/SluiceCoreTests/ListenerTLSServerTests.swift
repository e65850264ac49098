import SluiceCore
import XCTest

/// Picking a Gateway server by SNI on a port whose servers differ in TLS, as Envoy matches the
/// filter chains Istio builds per server (`filter_chain_match.server_names`): exact name, then
/// the longest wildcard suffix, then `*`; no SNI reaches only `*`; nothing covers → none.
final class ListenerTLSServerTests: XCTestCase {
    private let simpleA = ListenerTLSServer(hosts: ["api.example.com"], mode: .simple, files: ServerTLSFiles(credentialName: "a"))
    private let wildcard = ListenerTLSServer(hosts: ["*.example.com"], mode: .mutual, files: ServerTLSFiles(credentialName: "w"))
    private let deeper = ListenerTLSServer(hosts: ["*.eu.example.com"], mode: .simple, files: ServerTLSFiles(credentialName: "eu"))
    private let passthrough = ListenerTLSServer(hosts: ["other.org", "*"], mode: .passthrough)

    func testAnExactNameBeatsAWildcardAndTheLongestWildcardWins() {
        let servers = [wildcard, deeper, simpleA, passthrough]
        XCTAssertEqual(ListenerTLSServer.choose(servers, serverName: "api.example.com"), 2)
        XCTAssertEqual(ListenerTLSServer.choose(servers, serverName: "API.Example.com"), 2, "SNI compared without case")
        XCTAssertEqual(ListenerTLSServer.choose(servers, serverName: "www.example.com"), 0)
        XCTAssertEqual(ListenerTLSServer.choose(servers, serverName: "a.b.example.com"), 0, "a wildcard covers several labels")
        XCTAssertEqual(ListenerTLSServer.choose(servers, serverName: "fr.eu.example.com"), 1)
        XCTAssertEqual(ListenerTLSServer.choose(servers, serverName: "other.org"), 3)
        XCTAssertEqual(ListenerTLSServer.choose(servers, serverName: "example.com"), 3, "*.example.com does not cover example.com; * does")
    }

    func testWithoutACatchAllAnUncoveredNameOrNoSNIGetsNoServer() {
        let servers = [simpleA, wildcard]
        XCTAssertNil(ListenerTLSServer.choose(servers, serverName: "evil.test"))
        XCTAssertNil(ListenerTLSServer.choose(servers, serverName: nil))
        XCTAssertEqual(ListenerTLSServer.choose(servers + [passthrough], serverName: nil), 2)
    }

    func testAmongServersWithTheSameHostTheFirstWins() {
        let second = ListenerTLSServer(hosts: ["api.example.com"], mode: .mutual, files: ServerTLSFiles(credentialName: "b"))
        XCTAssertEqual(ListenerTLSServer.choose([simpleA, second], serverName: "api.example.com"), 0)
        XCTAssertEqual(ListenerTLSServer.choose([second, simpleA], serverName: "api.example.com"), 0)
    }

    /// The Gateway reference's multi-host example: two HTTPS servers on 443 with their own
    /// certificates (one SIMPLE, one MUTUAL) make the listener pick by SNI; servers that agree
    /// leave it with one mode, as before.
    func testServersThatDifferInTLSMakeTheListenerPickBySNI() throws {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: my-gateway, namespace: istio-system}
            spec:
              selector: {istio: egressgateway}
              servers:
              - port: {number: 443, name: https-bookinfo, protocol: HTTPS}
                hosts: [bookinfo-namespace/bookinfo.example.com]
                tls: {mode: SIMPLE, credentialName: bookinfo-secret}
              - port: {number: 443, name: https-wildcard, protocol: HTTPS}
                hosts: ["*/*.example.com"]
                tls: {mode: MUTUAL, credentialName: wildcard-secret}
              - port: {number: 8443, name: https-a, protocol: HTTPS}
                hosts: [a.example.com]
                tls: {mode: SIMPLE, credentialName: shared}
              - port: {number: 8443, name: https-b, protocol: HTTPS}
                hosts: [b.example.com]
                tls: {mode: SIMPLE, credentialName: shared}
            """
        let loaded = RegistryLoader.parse(yaml: yaml, path: "/t/gw.yaml")
        XCTAssertFalse(loaded.hasErrors, "\(loaded.diagnostics)")
        let table = RouteTable.compile(
            loaded.routing, role: .gateway, identity: WorkloadIdentity(namespace: "istio-system", labels: ["istio": "egressgateway"]))
        let applied = table.applyingServerTLS(to: [ListenerConfig(port: 443, protocol: .http), ListenerConfig(port: 8443, protocol: .http)])
        let byName = applied.listeners[0]
        XCTAssertTrue(byName.selectsTLSServerByName)
        XCTAssertEqual(byName.tlsServers, [
            ListenerTLSServer(hosts: ["bookinfo.example.com"], mode: .simple, files: ServerTLSFiles(credentialName: "bookinfo-secret")),
            ListenerTLSServer(hosts: ["*.example.com"], mode: .mutual, files: ServerTLSFiles(credentialName: "wildcard-secret")),
        ])
        XCTAssertEqual(byName.tls, .simple, "the first server's mode stands for the listener")
        XCTAssertEqual(ListenerTLSServer.choose(byName.tlsServers, serverName: "bookinfo.example.com"), 0)
        XCTAssertEqual(ListenerTLSServer.choose(byName.tlsServers, serverName: "reviews.example.com"), 1)
        let agreeing = applied.listeners[1]
        XCTAssertFalse(agreeing.selectsTLSServerByName, "same mode and certificate: one TLS set-up for the port")
        XCTAssertEqual(agreeing.serverTLSFiles, ServerTLSFiles(credentialName: "shared"))
        XCTAssertEqual(applied.warnings.count, 2, "\(applied.warnings)")
        XCTAssertFalse(applied.warnings.contains { $0.contains("disagree") }, "differing servers are served, not overruled")
    }
}

/// Istio's ServerTLSSettings fields besides the certificate: `subjectAltNames` (MUTUAL only),
/// the protocol versions and cipher suites are decoded; fields Sluice does not apply get a
/// note; a bad version is the object's error.
extension ListenerTLSServerTests {
    private func decoded(_ tls: String) -> (files: ServerTLSFiles?, diagnostics: [String]) {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw, namespace: istio-system}
            spec:
              selector: {istio: egressgateway}
              servers:
              - port: {number: 443, name: https, protocol: HTTPS}
                hosts: [api.example.com]
                tls: \(tls)
            """
        let loaded = RegistryLoader.parse(yaml: yaml, path: "/t/gw.yaml")
        return (loaded.routing.gateways.first?.servers.first?.tlsFiles, loaded.diagnostics.map(\.description))
    }

    func testServerTLSSettingsAreDecoded() throws {
        let mutual = decoded("""
            {mode: MUTUAL, credentialName: c, subjectAltNames: [spiffe://cluster.local/ns/a/sa/b], minProtocolVersion: TLSV1_3,
             maxProtocolVersion: TLS_AUTO, cipherSuites: [ECDHE-ECDSA-AES128-GCM-SHA256]}
            """)
        XCTAssertEqual(mutual.diagnostics, [])
        let files = try XCTUnwrap(mutual.files)
        XCTAssertEqual(files.subjectAltNames, ["spiffe://cluster.local/ns/a/sa/b"])
        XCTAssertEqual(files.minProtocolVersion, "TLSV1_3")
        XCTAssertNil(files.maxProtocolVersion, "TLS_AUTO keeps the default")
        XCTAssertEqual(files.cipherSuites, ["ECDHE-ECDSA-AES128-GCM-SHA256"])

        let simple = decoded("{mode: SIMPLE, credentialName: c, subjectAltNames: [x.example.com], httpsRedirect: true}")
        XCTAssertEqual(simple.files?.subjectAltNames, [], "no client certificate is asked for under SIMPLE")
        XCTAssertTrue(simple.diagnostics.contains { $0.contains("subjectAltNames") && $0.contains("MUTUAL only") }, "\(simple.diagnostics)")
        XCTAssertTrue(simple.diagnostics.contains { $0.contains("httpsRedirect") && $0.contains("not applied by Sluice") }, "\(simple.diagnostics)")

        let bad = decoded("{mode: SIMPLE, credentialName: c, minProtocolVersion: SSLV3}")
        XCTAssertNil(bad.files)
        XCTAssertTrue(bad.diagnostics.contains { $0.contains("minProtocolVersion") && $0.contains("TLSV1_3") }, "\(bad.diagnostics)")
        let inverted = decoded("{mode: SIMPLE, credentialName: c, minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2}")
        XCTAssertNil(inverted.files)
        XCTAssertTrue(inverted.diagnostics.contains { $0.contains("lower than minProtocolVersion") }, "\(inverted.diagnostics)")
        let unknown = decoded("{mode: SIMPLE, credentialName: c, minimumVersion: TLSV1_3}")
        XCTAssertTrue(unknown.diagnostics.contains { $0.contains("minimumVersion") }, "\(unknown.diagnostics)")
    }
}

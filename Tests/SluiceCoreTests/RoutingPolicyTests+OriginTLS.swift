import SluiceCore
import XCTest

/// DestinationRule `tls` applied per destination: Istio's "Egress TLS Origination" task
/// (fixture 09, SIMPLE at the sidecar), "Egress Gateways with TLS Origination" (fixture 08,
/// ISTIO_MUTUAL to the gateway and SIMPLE at the gateway) and ASM's `httpsUpgrade`.
extension RoutingPolicyTests {
    private var egressGateway: WorkloadIdentity { WorkloadIdentity(namespace: "istio-system", labels: ["istio": "egressgateway"]) }

    func testEgressTLSOriginationTaskOriginatesSIMPLEAtTheSidecarOnTheTargetPort() throws {
        let sidecar = try policy(["09-egress-tls-origination.yaml"])
        XCTAssertNotNil(sidecar.routes, "a DestinationRule with tls is enough to apply the routing objects")
        let decision = http(sidecar, "edition.cnn.com")
        XCTAssertEqual(decision.action, .forward(.resolve(host: "edition.cnn.com", port: 443)))
        XCTAssertEqual(decision.upstreamTLS, .originate(OriginTLS(mode: .simple, sni: "edition.cnn.com", verifyHostname: true)))
        XCTAssertTrue(decision.reason.contains("upstream TLS SIMPLE sni=edition.cnn.com ca=system"), decision.reason)
        // Port 443 has no tls setting: the app's own TLS passes as it is.
        XCTAssertNil(tls(sidecar, "edition.cnn.com").upstreamTLS)
    }

    func testEgressGatewayTLSOriginationTaskIsISTIOMUTUALToTheGatewayThenSIMPLE() throws {
        let sidecar = try policy(["08-egress-gateway-tls-origination.yaml"])
        let toGateway = http(sidecar, "edition.cnn.com")
        XCTAssertEqual(toGateway.action, .forward(.resolve(host: RoutingPolicyTests.gatewayService, port: 443)))
        XCTAssertEqual(toGateway.upstreamTLS, .istioMutual(GatewayClientTLS(sni: "edition.cnn.com")),
                       "the shorthand's setting: Istio's gateway identity, the rule's sni")

        let gateway = try policy(["08-egress-gateway-tls-origination.yaml"], role: .gateway, identity: egressGateway)
        let toOrigin = http(gateway, "edition.cnn.com", port: 443)
        XCTAssertEqual(toOrigin.action, .forward(.resolve(host: "edition.cnn.com", port: 443)))
        XCTAssertEqual(toOrigin.cluster, "outbound|443||edition.cnn.com")
        XCTAssertEqual(toOrigin.upstreamTLS, .originate(OriginTLS(mode: .simple, sni: "edition.cnn.com", verifyHostname: true)))
    }

    func testEgressGatewayShorthandIsTheSameSetting() throws {
        var snapshot = SluiceSnapshot(
            config: SluiceConfig(mode: .registryOnly, egressGateway: EgressGatewayConfig(addresses: ["10.0.0.1"], hosts: ["*"], tls: GatewayClientTLS())),
            entries: RegistryLoader.load(paths: ["registry/istio-routing/01-egress-gateway-http.yaml"], relativeTo: RegistryFixtures.root).entries)
        snapshot.identity = WorkloadIdentity()
        let decision = http(snapshot.policy(role: .sidecar), "edition.cnn.com")
        XCTAssertEqual(decision.upstreamTLS, .istioMutual(GatewayClientTLS()))
    }

    func testASMHTTPSUpgradeOriginatesAtTheGatewayOn443() throws {
        let yaml = """
            apiVersion: istio.alibabacloud.com/v1beta1
            kind: ASMEgressTrafficPolicy
            metadata:
              name: egress-by-egressgateway-a
              namespace: istio-egress
            spec:
              byEgressGateway:
                name: egressgateway-a
              egressRules:
              - from:
                - namespace: mytest
                  workloadSelector:
                    app: sleep-a
                to:
                - name: httpbin-service-http-upgrade
                  hosts:
                  - www.httpbin.org
                  port:
                    name: http
                    number: 80
                    protocol: HTTP
                  byEgressGateway:
                    port: 80
                  httpsUpgrade:
                    enabled: true
                - name: httpbin-service-https
                  hosts:
                  - www.httpbin.org
                  port:
                    name: https
                    number: 443
                    protocol: HTTPS
                  byEgressGateway:
                    port: 443
            """
        let loaded = RegistryLoader.parse(yaml: yaml, path: "asm.yaml")
        XCTAssertFalse(loaded.hasErrors, loaded.diagnostics.map(\.description).joined(separator: "\n"))
        XCTAssertFalse(loaded.diagnostics.contains { $0.message.contains("not yet applied") })
        var snapshot = SluiceSnapshot(config: SluiceConfig(mode: .registryOnly), entries: loaded.entries, namespace: "istio-egress")
        snapshot.routing = loaded.routing
        snapshot.identity = WorkloadIdentity(namespace: "istio-egress", labels: ["istio": "egressgateway-a"])
        let decision = http(snapshot.policy(role: .gateway), "www.httpbin.org")
        XCTAssertEqual(decision.action, .forward(.resolve(host: "www.httpbin.org", port: 443)))
        XCTAssertEqual(decision.cluster, "outbound|443|https-upgrade|www.httpbin.org")
        XCTAssertEqual(decision.upstreamTLS, .originate(OriginTLS(mode: .simple, sni: "www.httpbin.org", verifyHostname: true)))
        // The host's own TLS on 443 (the other to, passed through) is not wrapped again.
        let passthrough = tls(snapshot.policy(role: .gateway), "www.httpbin.org")
        XCTAssertEqual(passthrough.action, .forward(.resolve(host: "www.httpbin.org", port: 443)))
        XCTAssertNil(passthrough.upstreamTLS)
    }

    func testAnalysisNotesASIMPLEWithoutCaCertificatesAsIstioctlDoes() throws {
        let loaded = RegistryLoader.load(paths: ["registry/istio-routing/09-egress-tls-origination.yaml"], relativeTo: RegistryFixtures.root)
        let notes = RoutingAnalysis.analyze(loaded.routing, entries: loaded.entries).map(\.message)
        XCTAssertEqual(notes, ["tls mode SIMPLE for port 80 has no caCertificates: the server of edition.cnn.com is verified against the system roots (istioctl analyze: IST0129)"])
    }

    // MARK: settings → TLS

    func testResolutionFollowsIstiosDefaults() {
        // No sni, no subjectAltNames: SNI is the host, the certificate must name it.
        XCTAssertEqual(UpstreamTLS.resolve(ClientTLSSettings(mode: "SIMPLE"), host: "api.example.com"),
                       .originate(OriginTLS(mode: .simple, sni: "api.example.com", verifyHostname: true)))
        // An explicit sni turns the automatic SAN check off (Istio sets auto_san_validation only without one).
        XCTAssertEqual(UpstreamTLS.resolve(ClientTLSSettings(mode: "SIMPLE", sni: "front.example.com"), host: "api.example.com"),
                       .originate(OriginTLS(mode: .simple, sni: "front.example.com", verifyHostname: false)))
        // The rule's subjectAltNames win over the ServiceEntry's; the entry's apply when the rule has none.
        let ruleSANs = ClientTLSSettings(mode: "SIMPLE", caCertificates: "/etc/ca.pem", subjectAltNames: ["api.example.com"])
        XCTAssertEqual(UpstreamTLS.resolve(ruleSANs, host: "api.example.com", entrySubjectAltNames: ["other.example.com"]),
                       .originate(OriginTLS(mode: .simple, sni: "api.example.com", caCertificates: "/etc/ca.pem",
                                            subjectAltNames: ["api.example.com"], verifyHostname: false)))
        XCTAssertEqual(UpstreamTLS.resolve(ClientTLSSettings(mode: "SIMPLE"), host: "api.example.com", entrySubjectAltNames: ["other.example.com"]),
                       .originate(OriginTLS(mode: .simple, sni: "api.example.com", subjectAltNames: ["other.example.com"], verifyHostname: false)))
        // insecureSkipVerify: nothing checked.
        XCTAssertEqual(UpstreamTLS.resolve(ClientTLSSettings(mode: "SIMPLE", subjectAltNames: ["x"], insecureSkipVerify: true), host: "api.example.com"),
                       .originate(OriginTLS(mode: .simple, sni: "api.example.com", verifyCertificate: false, verifyHostname: false)))
        // An IP address is no SNI.
        XCTAssertEqual(UpstreamTLS.resolve(ClientTLSSettings(mode: "SIMPLE"), host: "203.0.113.7"),
                       .originate(OriginTLS(mode: .simple, sni: nil, verifyHostname: false)))
        // MUTUAL keeps its files; SIMPLE does not present them.
        let mutual = ClientTLSSettings(mode: "MUTUAL", clientCertificate: "/c.pem", privateKey: "/k.pem")
        XCTAssertEqual(UpstreamTLS.resolve(mutual, host: "h.example"),
                       .originate(OriginTLS(mode: .mutual, sni: "h.example", clientCertificate: "/c.pem", privateKey: "/k.pem")))
        var simpleWithFiles = mutual
        simpleWithFiles.mode = "SIMPLE"
        XCTAssertEqual(UpstreamTLS.resolve(simpleWithFiles, host: "h.example"), .originate(OriginTLS(mode: .simple, sni: "h.example")))
        XCTAssertNil(UpstreamTLS.resolve(ClientTLSSettings(mode: "DISABLE"), host: "h.example"))
        XCTAssertNil(UpstreamTLS.resolve(nil, host: "h.example"))
        XCTAssertEqual(UpstreamTLS.resolve(ClientTLSSettings(mode: "ISTIO_MUTUAL", subjectAltNames: ["spiffe://cluster.local/ns/e/sa/gw"]), host: "gw"),
                       .istioMutual(GatewayClientTLS(subjectAltNames: ["spiffe://cluster.local/ns/e/sa/gw"])))
    }

    func testCredentialNameReadsATLSSecretElseAGenericOne() {
        let tlsSecret: Set<String> = ["/creds/client/tls.crt", "/creds/client/tls.key", "/creds/client/ca.crt"]
        let found = OriginTLS.credentialFiles(directory: "/creds", name: "client") { tlsSecret.contains($0) }
        XCTAssertEqual(found.certificate, "/creds/client/tls.crt")
        XCTAssertEqual(found.key, "/creds/client/tls.key")
        XCTAssertEqual(found.ca, "/creds/client/ca.crt")
        let generic: Set<String> = ["/creds/client/cert", "/creds/client/key"]
        let other = OriginTLS.credentialFiles(directory: "/creds/", name: "client") { generic.contains($0) }
        XCTAssertEqual(other.certificate, "/creds/client/cert")
        XCTAssertEqual(other.key, "/creds/client/key")
        XCTAssertNil(other.ca)
    }

    func testSubjectAltNamesMatchAsEnvoysExactMatchers() {
        let origin = OriginTLS(mode: .simple, sni: "api.example.com", subjectAltNames: ["api.example.com", "spiffe://td/ns/a/sa/b"], verifyHostname: false)
        XCTAssertTrue(origin.accepts(dnsNames: ["API.example.com"], uris: [], ipAddresses: []))
        XCTAssertTrue(origin.accepts(dnsNames: ["*.example.com"], uris: [], ipAddresses: []))
        XCTAssertFalse(origin.accepts(dnsNames: ["*.com"], uris: [], ipAddresses: []))
        XCTAssertFalse(origin.accepts(dnsNames: ["*.api.example.com", "wrong.example.org"], uris: [], ipAddresses: []))
        XCTAssertTrue(origin.accepts(dnsNames: [], uris: ["spiffe://td/ns/a/sa/b"], ipAddresses: []))
        XCTAssertTrue(OriginTLS(mode: .simple, sni: nil).accepts(dnsNames: [], uris: [], ipAddresses: []), "no list: no check")
    }

    // MARK: Envoy's failure reason

    func testFailureReasonIsWordedAsEnvoys() {
        // swift-nio-ssl's description of BoringSSL's error for a refused server certificate.
        let described = "Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at /src/ssl/handshake.cc:393"
        let entry = EnvoyTLSFailure.entry(fromBoringSSL: described)
        XCTAssertEqual(entry, EnvoyTLSFailure.certificateVerifyFailed)
        // Envoy's access log for an upstream whose certificate does not verify.
        XCTAssertEqual(EnvoyTLSFailure.reason([EnvoyTLSFailure.certificateVerifyFailed]),
                       "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end")
        XCTAssertEqual(EnvoyTLSFailure.reason(["268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER", "x"]),
                       "TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER|x:TLS_error_end")
        XCTAssertNil(EnvoyTLSFailure.entry(fromBoringSSL: "EOF during handshake"))
    }

    func testDecodingKeepsEveryFieldAndRefusesAMUTUALWithoutACertificate() throws {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: mtls-origin}
            spec:
              host: mymtls.example
              trafficPolicy:
                tls:
                  mode: MUTUAL
                  clientCertificate: /etc/certs/myclientcert.pem
                  privateKey: /etc/certs/client_private_key.pem
                  caCertificates: /etc/certs/rootcacerts.pem
                  subjectAltNames: [mymtls.example]
                  sni: my-nginx.mesh-external.svc.cluster.local
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: no-certificate}
            spec:
              host: other.example
              trafficPolicy:
                tls:
                  mode: MUTUAL
            """
        // The first is the DestinationRule reference's MUTUAL example.
        let loaded = RegistryLoader.parse(yaml: yaml, path: "dr.yaml")
        let rule = try XCTUnwrap(loaded.routing.destinationRules.first { $0.id.name == "mtls-origin" })
        let tls = try XCTUnwrap(rule.policy(subset: nil, port: 443).tls)
        XCTAssertEqual(tls, ClientTLSSettings(
            mode: "MUTUAL", sni: "my-nginx.mesh-external.svc.cluster.local", caCertificates: "/etc/certs/rootcacerts.pem",
            clientCertificate: "/etc/certs/myclientcert.pem", privateKey: "/etc/certs/client_private_key.pem", subjectAltNames: ["mymtls.example"]))
        XCTAssertNil(loaded.routing.destinationRules.first { $0.id.name == "no-certificate" }, "rejected on its own")
        XCTAssertTrue(loaded.diagnostics.contains { $0.isError && $0.message.contains("MUTUAL needs clientCertificate and privateKey, or credentialName") })
    }
}

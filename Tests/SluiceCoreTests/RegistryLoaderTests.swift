import Foundation
@testable import SluiceCore
import XCTest

/// Locates the test fixtures copied into the test bundle.
enum RegistryFixtures {
    static var root: String {
        guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            fatalError("Fixtures missing from the test bundle")
        }
        return url.path
    }

    static func path(_ relative: String) -> String { root + "/" + relative }

    static func text(_ relative: String) throws -> String {
        try String(contentsOfFile: path(relative), encoding: .utf8)
    }
}

final class RegistryLoaderTests: XCTestCase {
    private func parse(_ fixture: String) throws -> RegistryLoadResult {
        RegistryLoader.parse(yaml: try RegistryFixtures.text(fixture), path: fixture)
    }

    // MARK: Istio docs examples

    func testLoadsAliyunExample() throws {
        let result = try parse("registry/istio-docs/01-aliyun.yaml")
        XCTAssertEqual(result.diagnostics, [])
        XCTAssertFalse(result.hasErrors)
        XCTAssertEqual(result.entries, [ServiceEntry(
            name: "aliyun", namespace: "default", hosts: ["aliyun.com"],
            ports: [
                ServicePort(number: 80, name: "http", protocol: .http),
                ServicePort(number: 443, name: "https", protocol: .https),
            ],
            location: .meshExternal, resolution: .dns,
            source: SourceLocation(path: "registry/istio-docs/01-aliyun.yaml", line: 2))])
    }

    func testMultiDocumentFileLoadsRoutingObjectsBesideEntriesWithNotes() throws {
        let result = try parse("registry/istio-docs/02-cnn-egress-gateway.yaml")
        XCTAssertEqual(result.entries.map(\.name), ["cnn"])
        XCTAssertEqual(result.entries.first?.source.line, 3)
        XCTAssertEqual(result.entries.first?.ports.map(\.name), ["http-port", "https"])
        XCTAssertFalse(result.hasErrors, "routing objects load beside the entries")
        XCTAssertEqual(result.diagnostics.map(\.description), [], "both apply: nothing to note")
        XCTAssertEqual(result.routing.gateways.map(\.id.name), ["istio-egressgateway"])
        XCTAssertEqual(result.routing.destinationRules.map(\.id.name), ["egressgateway-for-cnn"])
    }

    func testKindListItemsAndV1beta1() throws {
        let result = try parse("registry/istio-docs/03-list.yaml")
        XCTAssertEqual(result.entries.map { "\($0.namespace)/\($0.name)" }, ["egress/httpbin-ext", "egress/external-svc-https"])
        XCTAssertEqual(result.entries.map(\.source.line), [5, 22])
        XCTAssertEqual(result.entries.last?.hosts, ["api.dropboxapi.com", "www.googleapis.com", "api.facebook.com"])
        XCTAssertEqual(result.entries.last?.ports, [ServicePort(number: 443, name: "https", protocol: .tls)])
        XCTAssertEqual(result.diagnostics.map(\.description), [
            "registry/istio-docs/03-list.yaml:38: note: ConfigMap unrelated: skipped kind ConfigMap",
        ])
    }

    func testWildcardHostsAndLowercaseProtocols() throws {
        let result = try parse("registry/istio-docs/04-wildcard.yaml")
        XCTAssertEqual(result.entries.map(\.hosts), [["wikipedia.org", "*.wikipedia.org"], ["*.en.wikipedia.org"]])
        XCTAssertEqual(result.entries.first?.resolution, ServiceEntry.Resolution.none)
        XCTAssertEqual(result.entries.last?.ports.map(\.protocol), [.tls, .http], "protocol names are case-insensitive")
        XCTAssertEqual(result.diagnostics.map(\.description), [
            "registry/istio-docs/04-wildcard.yaml:24: warning: ServiceEntry default/wikipedia-en: spec.hosts[0]: wildcard host with resolution DNS and no endpoints: Istio rejects this; Sluice resolves each requested name",
        ])
        XCTAssertFalse(result.hasErrors)
    }

    func testAddressesAndStaticEndpoints() throws {
        let result = try parse("registry/istio-docs/05-tcp-addresses.yaml")
        XCTAssertEqual(result.diagnostics.map(\.severity), [.note], "MESH_INTERNAL is accepted, not enforced")
        XCTAssertEqual(result.entries.count, 3)
        let mongo = result.entries[0]
        XCTAssertEqual(mongo.addresses, [CIDR("192.192.192.0/24")].compactMap { $0 })
        XCTAssertEqual(mongo.location, .meshInternal)
        XCTAssertEqual(mongo.resolution, .static)
        XCTAssertEqual(mongo.ports, [ServicePort(number: 27018, name: "mongodb", protocol: .mongo)])
        XCTAssertEqual(mongo.endpoints.map(\.address), ["2.2.2.2", "3.3.3.3"])
        XCTAssertEqual(result.entries[1].addresses.map(\.description), ["35.232.232.38/32", "2001:db8:cafe::/48"])
        XCTAssertEqual(result.entries[2].namespace, "db")
        XCTAssertEqual(result.entries[2].addresses, [])
    }

    func testEndpointPortsTargetPortWeightsAndExportTo() throws {
        let result = try parse("registry/istio-docs/06-endpoints.yaml")
        XCTAssertEqual(result.diagnostics, [])
        let dns = result.entries[0]
        XCTAssertEqual(dns.endpoints.map(\.address), ["us.foo.bar.com", "uk.foo.bar.com", "in.foo.bar.com"])
        XCTAssertEqual(dns.endpoints.map { $0.ports["https"] }, [8080, 9080, 7080])
        let legacy = result.entries[1]
        XCTAssertEqual(legacy.ports.first?.targetPort, 8080)
        XCTAssertEqual(legacy.exportTo, ["."])
        XCTAssertEqual(legacy.endpoints, [
            WorkloadEndpoint(address: "10.10.0.5", labels: ["zone": "a"], weight: 3),
            WorkloadEndpoint(address: "2001:db8::5", ports: ["http": 9090], weight: 1),
        ])
        let port = try XCTUnwrap(legacy.ports.first)
        XCTAssertEqual(legacy.endpoints.map { $0.upstreamPort(for: port) }, [8080, 9090])
    }

    func testJSONFile() throws {
        let result = try parse("registry/istio-docs/07-json.json")
        XCTAssertEqual(result.diagnostics, [])
        XCTAssertEqual(result.entries.first?.hosts, ["json.example.com"])
        XCTAssertEqual(result.entries.first?.ports.first?.protocol, .tls)
    }

    func testLoadsDirectorySortedSkippingHiddenAndOtherFiles() {
        let result = RegistryLoader.load(paths: ["registry/istio-docs/"], relativeTo: RegistryFixtures.root)
        XCTAssertFalse(result.hasErrors, result.diagnostics.map(\.description).joined(separator: "\n"))
        XCTAssertEqual(result.entries.map(\.name), [
            "aliyun", "cnn", "httpbin-ext", "external-svc-https", "external-svc-redirect", "wikipedia-en",
            "external-svc-mongocluster", "se-httpbin", "mysql", "external-svc-dns", "legacy-api", "example-json",
        ])
        XCTAssertEqual(result.entries.first?.source.path, RegistryFixtures.path("registry/istio-docs/01-aliyun.yaml"))
        XCTAssertEqual(result.diagnostics.filter { $0.severity == .note }.count, 2)
    }

    func testLoadsFilesAndReportsMissingPaths() {
        let root = RegistryFixtures.root
        let result = RegistryLoader.load(
            paths: ["registry/istio-docs/01-aliyun.yaml", root + "/registry/istio-docs/07-json.json", "registry/nope.yaml"],
            relativeTo: root)
        XCTAssertEqual(result.entries.map(\.name), ["aliyun", "example-json"])
        XCTAssertTrue(result.hasErrors)
        XCTAssertEqual(result.diagnostics.map(\.description), ["\(root)/registry/nope.yaml: no such file or directory"])
    }

    /// A ConfigMap volume: visible names are symlinks into `..data`, which is itself a symlink
    /// to a timestamped directory. Only the visible names are loaded, once each.
    func testFollowsConfigMapSymlinksAndSkipsDotDotEntries() throws {
        let fm = FileManager.default
        let dir = NSTemporaryDirectory() + "sluice-configmap-\(UUID().uuidString)"
        defer { try? fm.removeItem(atPath: dir) }
        let stamped = dir + "/..2026_11_27_04_00_00.000000001"
        try fm.createDirectory(atPath: stamped, withIntermediateDirectories: true)
        try RegistryFixtures.text("registry/istio-docs/01-aliyun.yaml").write(toFile: stamped + "/aliyun.yaml", atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(atPath: dir + "/..data", withDestinationPath: "..2026_11_27_04_00_00.000000001")
        try fm.createSymbolicLink(atPath: dir + "/aliyun.yaml", withDestinationPath: "..data/aliyun.yaml")
        let result = RegistryLoader.load(paths: [dir], relativeTo: "/")
        XCTAssertEqual(result.diagnostics, [])
        XCTAssertEqual(result.entries.map(\.name), ["aliyun"])
        XCTAssertEqual(result.entries.first?.source.path, dir + "/aliyun.yaml")
    }

    func testEmptyDirectoryIsAWarning() throws {
        let dir = NSTemporaryDirectory() + "sluice-empty-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = RegistryLoader.load(paths: [dir], relativeTo: "/")
        XCTAssertFalse(result.hasErrors)
        XCTAssertEqual(result.diagnostics.map(\.severity), [.warning])
    }

    // MARK: Broken files

    func testBadPortKeepsTheValidEntryInTheSameFile() throws {
        let result = try parse("registry/broken/bad-port.yaml")
        XCTAssertEqual(result.entries.map(\.name), ["good"])
        XCTAssertTrue(result.hasErrors)
        XCTAssertEqual(result.diagnostics.map(\.description), [
            "registry/broken/bad-port.yaml:21: ServiceEntry default/aliyun: spec.ports[0].number: must be 1-65535, not 70000",
        ])
        let diagnostic = try XCTUnwrap(result.diagnostics.first)
        XCTAssertEqual(diagnostic.line, 21)
        XCTAssertEqual(diagnostic.resource, "ServiceEntry default/aliyun")
        XCTAssertEqual(diagnostic.field, "spec.ports[0].number")
    }

    func testUnknownProtocolIsDetectedWithAWarning() throws {
        let result = try parse("registry/broken/unknown-protocol.yaml")
        XCTAssertEqual(result.entries.map(\.name), ["quic"])
        XCTAssertEqual(result.entries.first?.ports.first?.protocol, .detected("HTTP3"))
        XCTAssertEqual(result.entries.first?.ports.first?.protocol.family, .detected)
        XCTAssertEqual(result.diagnostics.map(\.description), [
            "registry/broken/unknown-protocol.yaml:12: warning: ServiceEntry edge/quic: spec.ports[0].protocol: unrecognised protocol \"HTTP3\" (Istio knows HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TLS, TCP, MONGO, MYSQL, REDIS, UDP); the protocol is detected per connection, as for a port without one",
        ])
    }

    func testYAMLSyntaxErrorHasItsLine() throws {
        let result = try parse("registry/broken/syntax.yaml")
        XCTAssertEqual(result.entries, [])
        XCTAssertEqual(result.diagnostics.map(\.description), [
            "registry/broken/syntax.yaml:10: invalid YAML: mapping values are not allowed in this context",
        ])
    }

    func testDocumentsBeforeASyntaxErrorStillLoad() {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: first}
            spec: {hosts: [first.example.com], ports: [{number: 80, name: http, protocol: HTTP}]}
            ---
            apiVersion: [
            """
        let result = RegistryLoader.parse(yaml: yaml, path: "inline.yaml")
        XCTAssertEqual(result.entries.map(\.name), ["first"])
        XCTAssertTrue(result.hasErrors)
        XCTAssertEqual(result.diagnostics.first?.line, 7)
    }

    func testEveryValidationRuleNamesFileLineResourceAndField() throws {
        let result = try parse("registry/broken/invalid-fields.yaml")
        XCTAssertEqual(result.entries.map(\.name), ["dns-wildcard"], "warnings do not stop an entry")
        let file = "registry/broken/invalid-fields.yaml"
        XCTAssertEqual(result.diagnostics.map(\.description), [
            "\(file):8: ServiceEntry ops/everything-wrong: spec.hosts[0]: a bare \"*\" is not allowed in a ServiceEntry; name the domain, e.g. \"*.example.com\"",
            "\(file):9: ServiceEntry ops/everything-wrong: spec.hosts[1]: \"Upper.Example.com\" must be lowercase",
            "\(file):10: ServiceEntry ops/everything-wrong: spec.hosts[2]: \"foo.*.example.com\": a wildcard must be the whole leftmost label, as in \"*.example.com\"",
            "\(file):12: ServiceEntry ops/everything-wrong: spec.addresses[0]: \"10.0.0.0/33\" is not an IP address or CIDR",
            "\(file):17: ServiceEntry ops/everything-wrong: spec.ports[1].number: duplicate port number 80 (also spec.ports[0])",
            "\(file):18: ServiceEntry ops/everything-wrong: spec.ports[1].name: duplicate port name \"http\" (also spec.ports[0])",
            "\(file):20: ServiceEntry ops/everything-wrong: spec.location: must be MESH_EXTERNAL or MESH_INTERNAL, not \"OUTSIDE\"",
            "\(file):23: ServiceEntry ops/everything-wrong: spec.endpoints[0].address: \"not-an-ip.example.com\" must be an IP address with resolution STATIC",
            "\(file):25: ServiceEntry ops/everything-wrong: spec.endpoints[0].ports.grpc: \"grpc\" is not the name of a port in spec.ports",
            "\(file):38: ServiceEntry default/static-without-endpoints: spec.endpoints: resolution STATIC requires endpoints with IP addresses",
            "\(file):45: ServiceEntry default/no-hosts: spec.hosts: at least one host is required",
            "\(file):50: ServiceEntry default/future: apiVersion: unsupported apiVersion \"networking.istio.io/v2\"; expected one of networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3",
            "\(file):68: warning: ServiceEntry default/dns-wildcard: spec.hosts[0]: wildcard host with resolution DNS and no endpoints: Istio rejects this; Sluice resolves each requested name",
            "\(file):73: warning: ServiceEntry default/dns-wildcard: spec.ports[0].extra: unknown field",
        ])
    }

    func testMoreIstioValidationRules() {
        func errors(_ spec: String) -> [String] {
            let yaml = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n" + spec
            return RegistryLoader.parse(yaml: yaml, path: "x.yaml").diagnostics.filter(\.isError).map { "\($0.field ?? ""): \($0.message)" }
        }
        let port = "  ports: [{number: 80, name: http, protocol: HTTP}]\n"
        XCTAssertEqual(errors("  hosts: [a.example.com]\n"), [], "Istio accepts an entry without ports (it registers nothing)")
        XCTAssertEqual(errors("  hosts: []\n" + port), ["spec.hosts: at least one host is required"])
        XCTAssertEqual(errors("  hosts: [a.example.com]\n" + port + "  resolution: dns\n"),
                       ["spec.resolution: must be NONE, STATIC, DNS or DNS_ROUND_ROBIN, not \"dns\""])
        XCTAssertEqual(errors("  hosts: [a.example.com]\n" + port + "  endpoints: [{address: 1.2.3.4}]\n"),
                       ["spec.endpoints: no endpoints may be given with resolution NONE"])
        XCTAssertEqual(errors("  hosts: [a.example.com]\n" + port + "  resolution: DNS\n  addresses: [10.0.0.0/8]\n"),
                       ["spec.addresses[0]: CIDR addresses are allowed only with resolution NONE or STATIC"])
        XCTAssertEqual(errors("  hosts: [a.example.com]\n" + port + "  resolution: DNS_ROUND_ROBIN\n  endpoints: [{address: a.example.net}, {address: b.example.net}]\n"),
                       ["spec.endpoints: resolution DNS_ROUND_ROBIN allows at most one endpoint"])
        XCTAssertEqual(errors("  hosts: [a.example.com]\n" + port + "  resolution: STATIC\n  endpoints: [{address: unix:///var/run/x.sock}]\n"),
                       [], "a unix endpoint loads; a sidecar ignores it")
        XCTAssertEqual(errors("  hosts: [a.example.com]\n  ports: [{number: http, name: http}]\n"),
                       ["spec.ports[0].number: must be a number, not \"http\""])
        XCTAssertEqual(errors("  hosts: [a.example.com]\n  ports: [{number: 80, name: http_1}]\n"),
                       ["spec.ports[0].name: \"http_1\" is not a valid port name (letters, digits and '-')"])
        XCTAssertEqual(errors("  hosts: [a.example.com]\n  ports: [{number: 80}]\n"), ["spec.ports[0].name: required"])
        XCTAssertEqual(errors("  hosts: [a.example.com]\n  ports: [{number: 80, name: h, targetPort: 0}]\n"),
                       ["spec.ports[0].targetPort: must be 1-65535, not 0"])
        XCTAssertEqual(errors("  hosts: [a.example.com.]\n" + port), ["spec.hosts[0]: \"a.example.com.\" is not a valid DNS name"])
        XCTAssertEqual(errors("  hosts: a.example.com\n" + port), ["spec.hosts: must be a list"])
        XCTAssertEqual(errors("  hosts: [a.example.com]\n" + port + "  exportTo: [\"Bad_NS\"]\n"),
                       ["spec.exportTo[0]: \"Bad_NS\" is not \".\", \"*\" or a namespace name"])
        // Accepted: an unset protocol (Istio sniffs), MYSQL as opaque, IP-literal hosts, DNS endpoints.
        XCTAssertEqual(errors("  hosts: [a.example.com, 192.0.2.1]\n  ports: [{number: 3306, name: db}, {number: 3307, name: m, protocol: MYSQL}]\n"), [])
        XCTAssertEqual(errors("  hosts: [a.example.com]\n" + port + "  resolution: DNS\n  endpoints: [{address: backend.example.net}]\n"), [])
    }

    func testResourceShapeErrors() {
        let yaml = """
            kind: ServiceEntry
            metadata: {name: no-version}
            spec: {hosts: [a.example.com], ports: [{number: 80, name: http}]}
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {namespace: team}
            spec: {hosts: [b.example.com], ports: [{number: 80, name: http}]}
            ---
            just a string
            ---
            apiVersion: networking.istio.io/v1
            metadata: {name: kindless}
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: no-spec}
            """
        let result = RegistryLoader.parse(yaml: yaml, path: "shapes.yaml")
        XCTAssertEqual(result.entries, [])
        XCTAssertEqual(result.diagnostics.map(\.description), [
            "shapes.yaml:1: ServiceEntry default/no-version: apiVersion: required",
            "shapes.yaml:7: ServiceEntry team/(unnamed): metadata.name: required",
            "shapes.yaml:10: a resource must be a mapping",
            "shapes.yaml:12: kind: required",
            "shapes.yaml:15: ServiceEntry default/no-spec: spec: required",
        ])
    }

    func testDuplicateNamesAreAWarning() {
        let doc = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: twin}\nspec: {hosts: [a.example.com], ports: [{number: 80, name: http}]}\n"
        let result = RegistryLoader.parse(yaml: doc + "---\n" + doc, path: "twins.yaml")
        XCTAssertEqual(result.entries.count, 2)
        XCTAssertEqual(result.diagnostics.map(\.description), [
            "twins.yaml:6: warning: ServiceEntry default/twin: another ServiceEntry has the same namespace/name (twins.yaml:1); both are loaded and the earlier one wins conflicts",
        ])
    }

    func testYAMLFeaturesRealFilesUse() {
        let head = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        let body = "spec:\n  hosts: [a.example.com]\n  ports: [{number: 80, name: http}]\n"
        func names(_ yaml: String) -> [String] {
            let result = RegistryLoader.parse(yaml: yaml, path: "f.yaml")
            XCTAssertEqual(result.diagnostics, [], yaml)
            return result.entries.map(\.name)
        }
        XCTAssertEqual(names("\u{FEFF}" + head + "metadata: {name: bom}\n" + body), ["bom"], "UTF-8 byte-order mark")
        XCTAssertEqual(names((head + "metadata: {name: crlf}\n" + body).replacingOccurrences(of: "\n", with: "\r\n")), ["crlf"])
        XCTAssertEqual(names(head + "metadata: {name: quoted}\nspec:\n  hosts: [a.example.com]\n  ports: [{number: \"80\", name: http}]\n"), ["quoted"])
        let anchors = head + "metadata: {name: one}\nspec:\n  hosts: &h [a.example.com]\n  ports: &p [{number: 80, name: http}]\n---\n"
            + head + "metadata: {name: two}\nspec: {hosts: *h, ports: *p}\n"
        XCTAssertEqual(names(anchors), ["one", "two"], "anchors and aliases")
        let merge = head + "metadata: {name: merged}\nspec:\n  <<: {hosts: [m.example.com], resolution: DNS}\n  resolution: NONE\n  ports: [{number: 80, name: http}]\n"
        let merged = RegistryLoader.parse(yaml: merge, path: "f.yaml").entries.first
        XCTAssertEqual(merged?.hosts, ["m.example.com"], "merge keys, as kubectl applies them")
        XCTAssertEqual(merged?.resolution, ServiceEntry.Resolution.none, "a key written in the mapping beats a merged one")
    }

    func testMoreSyntaxErrors() {
        func messages(_ yaml: String) -> [String] { RegistryLoader.parse(yaml: yaml, path: "f.yaml").diagnostics.map(\.description) }
        XCTAssertEqual(messages("a: 1\na: 2\n"), ["f.yaml:1: invalid YAML: duplicate key \"a\""])
        XCTAssertEqual(messages("kind: ServiceEntry\nspec:\n\thosts: []\n"),
                       ["f.yaml:3: invalid YAML: found character that cannot start any token (while scanning for the next token at line 3)"])
        XCTAssertEqual(messages("{\"kind\": \"ServiceEntry\",\n \"spec\": {\"hosts\": [\"a\"],}\n"),
                       ["f.yaml:3: invalid YAML: did not find expected ',' or '}' (while parsing a flow mapping at line 1)"])
    }

    func testDiagnosticDescriptionOmitsMissingParts() {
        XCTAssertEqual(ConfigDiagnostic(path: "a.yaml", message: "cannot read file").description, "a.yaml: cannot read file")
        XCTAssertEqual(ConfigDiagnostic(path: "a.yaml", line: 3, field: "registry", message: "must be a list").description,
                       "a.yaml:3: registry: must be a list")
        XCTAssertEqual(ConfigDiagnostic(severity: .note, path: "a.yaml", line: 1, resource: "Gateway gw", message: "skipped kind Gateway").description,
                       "a.yaml:1: note: Gateway gw: skipped kind Gateway")
    }
}

import Foundation
import SluiceCore
import XCTest

final class ConfigTests: XCTestCase {
    private func parse(_ fixture: String) throws -> Result<SluiceConfig, ConfigDiagnostics> {
        SluiceConfig.parse(yaml: try RegistryFixtures.text(fixture), path: fixture)
    }

    private func errors(_ result: Result<SluiceConfig, ConfigDiagnostics>) -> [String] {
        guard case .failure(let diagnostics) = result else { return [] }
        return diagnostics.map(\.description)
    }

    private func errors(yaml: String) -> [String] {
        errors(SluiceConfig.parse(yaml: yaml, path: "sluice.yaml"))
    }

    func testEmptyFileMeansEveryDefault() throws {
        let config = try parse("config/empty.yaml").get()
        XCTAssertEqual(config, SluiceConfig())
        XCTAssertNil(config.mode, "the command picks: sidecar ALLOW_ANY, gateway REGISTRY_ONLY")
        XCTAssertEqual(config.registryPaths, [])
        XCTAssertNil(config.egressGateway)
        XCTAssertEqual(config.listeners, [
            ListenerConfig(port: 80, protocol: .http, address: "0.0.0.0"),
            ListenerConfig(port: 443, protocol: .tls, address: "0.0.0.0"),
            ListenerConfig(port: 15080, protocol: .connect, address: "0.0.0.0"),
        ])
        XCTAssertEqual(config.accessLog, AccessLogConfig(path: "/dev/stdout", format: "json", enabled: true))
        XCTAssertEqual(config.limits, Limits(
            maxRequestHeadBytes: 65536, headerReadTimeout: .seconds(10), detectionTimeout: .seconds(5),
            drainPeriod: .seconds(5), connectTimeout: .seconds(1), idleTimeout: .seconds(3600)))
        XCTAssertEqual(try SluiceConfig.parse(yaml: "# only a comment\n", path: "c.yaml").get(), SluiceConfig())
    }

    func testDesignDocumentExample() throws {
        let path = RegistryFixtures.path("config/sidecar.yaml")
        let config = try SluiceConfig.load(path: path).get()
        XCTAssertEqual(config.mode, .registryOnly)
        XCTAssertEqual(config.registryPaths, [RegistryFixtures.path("registry/istio-docs")], "resolved against the config's directory")
        XCTAssertEqual(config.egressGateway, EgressGatewayConfig(
            addresses: ["egress.example.internal"], protocol: .istio, httpPort: 80, tlsPort: 443, connectPort: 15080,
            hosts: ["*"], connectTimeout: .seconds(1)))
        XCTAssertEqual(config.listeners, ListenerConfig.defaults)
        XCTAssertEqual(config.accessLog, AccessLogConfig())
    }

    func testEverySettingExplicitly() throws {
        let config = try parse("config/gateway.yaml").get()
        XCTAssertNil(config.mode)
        XCTAssertEqual(config.registryPaths, ["registry/istio-docs/01-aliyun.yaml"], "one string is a list of one; relative config path stays relative")
        XCTAssertEqual(config.egressGateway, EgressGatewayConfig(
            addresses: ["192.0.2.10", "egress-b.example.internal"], protocol: .connect, httpPort: 80, tlsPort: 443,
            connectPort: 3128, hosts: ["*.wikipedia.org", "aliyun.com"], connectTimeout: .milliseconds(250)))
        XCTAssertEqual(config.listeners, [
            ListenerConfig(port: 8080, protocol: .http, address: "127.0.0.1"),
            ListenerConfig(port: 8443, protocol: .tls, address: "::1"),
        ])
        XCTAssertEqual(config.accessLog, AccessLogConfig(path: "/var/log/sluice/access.log", format: "text", enabled: false))
        XCTAssertEqual(config.limits, Limits(
            maxRequestHeadBytes: 32768, headerReadTimeout: .seconds(2), detectionTimeout: .milliseconds(1500),
            drainPeriod: .zero, connectTimeout: .milliseconds(500), idleTimeout: .seconds(5400)))
    }

    func testTyposAreErrorsWithLineAndSuggestion() throws {
        XCTAssertEqual(errors(try parse("config/broken/typo.yaml")), [
            "config/broken/typo.yaml:3: registy: unknown field; did you mean \"registry\"?",
            "config/broken/typo.yaml:7: accessLog.fromat: unknown field; did you mean \"format\"?",
        ])
        XCTAssertEqual(errors(yaml: "egressGateway:\n  address: gw\n  ports: {https: 443}\n"),
                       ["sluice.yaml:3: egressGateway.ports.https: unknown field; did you mean \"http\"?"])
        XCTAssertEqual(errors(yaml: "listeners:\n- {port: 80, protocol: HTTP, bind: 0.0.0.0}\n"),
                       ["sluice.yaml:2: listeners[0].bind: unknown field"])
    }

    func testBadValuesEachHavePathLineAndField() throws {
        XCTAssertEqual(errors(try parse("config/broken/bad-values.yaml")), [
            "config/broken/bad-values.yaml:2: outboundTrafficPolicy.mode: must be ALLOW_ANY or REGISTRY_ONLY, not \"BLOCK\"",
            "config/broken/bad-values.yaml:4: egressGateway.address: required: the gateway's IP address or DNS name (or a list of them)",
            "config/broken/bad-values.yaml:4: egressGateway.protocol: must be istio or connect, not \"socks\"",
            "config/broken/bad-values.yaml:6: egressGateway.ports.http: must be 1-65535, not 0",
            "config/broken/bad-values.yaml:8: listeners[0].protocol: must be HTTP, TLS or CONNECT, not \"UDP\"",
            "config/broken/bad-values.yaml:10: listeners[2].port: port 443 on 0.0.0.0 is already used by listeners[1]",
            "config/broken/bad-values.yaml:12: accessLog.format: must be json or text, not \"xml\"",
            "config/broken/bad-values.yaml:14: limits.headerReadTimeout: \"10\" is not a duration; write it with a unit, e.g. \"500ms\", \"1s\" or \"1m\"",
            "config/broken/bad-values.yaml:15: limits.detectionTimeout: must be greater than zero",
            "config/broken/bad-values.yaml:16: limits.idleTimeout: \"forever\" is not a duration; write it with a unit, e.g. \"500ms\", \"1s\" or \"1m\"",
        ])
    }

    func testSyntaxErrorHasALine() throws {
        XCTAssertEqual(errors(try parse("config/broken/syntax.yaml")), [
            "config/broken/syntax.yaml:3: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 2)",
        ])
    }

    func testShapeErrors() {
        XCTAssertEqual(errors(yaml: "- a\n- b\n"), ["sluice.yaml:1: the config must be a mapping of settings"])
        XCTAssertEqual(errors(yaml: "registry: []\n---\nregistry: []\n"), ["sluice.yaml:3: expected one YAML document, found 2"])
        XCTAssertEqual(errors(yaml: "registry: {a: b}\n"), ["sluice.yaml:1: registry: must be a list"])
        XCTAssertEqual(errors(yaml: "registry: [\"\"]\n"), ["sluice.yaml:1: registry[0]: must not be empty"])
        XCTAssertEqual(errors(yaml: "limits:\n  maxRequestHeadBytes: 12\n"),
                       ["sluice.yaml:2: limits.maxRequestHeadBytes: must be 1024-16777216 bytes, not 12"])
        XCTAssertEqual(errors(yaml: "accessLog: {enabled: maybe}\n"), ["sluice.yaml:1: accessLog.enabled: must be true or false, not \"maybe\""])
        XCTAssertEqual(errors(yaml: "egressGateway: {address: [gw, \"bad host\"]}\n"),
                       ["sluice.yaml:1: egressGateway.address[1]: \"bad host\" is not an IP address or DNS name"])
        XCTAssertEqual(errors(yaml: "egressGateway: {address: gw, hosts: [\"a.*\"]}\n"),
                       ["sluice.yaml:1: egressGateway.hosts[0]: \"a.*\" is not \"*\", \"*.domain\" or a host name"])
        XCTAssertEqual(errors(yaml: "listeners:\n- {port: 80, protocol: HTTP, address: localhost}\n- {protocol: TLS}\n"), [
            "sluice.yaml:2: listeners[0].address: \"localhost\" is not an IP address",
            "sluice.yaml:3: listeners[1].port: required",
        ])
    }

    func testListenersMayBeEmptyAndProtocolsAreCaseInsensitive() throws {
        XCTAssertEqual(try SluiceConfig.parse(yaml: "listeners: []\n", path: "c.yaml").get().listeners, [])
        XCTAssertEqual(try SluiceConfig.parse(yaml: "listeners: [{port: 3128, protocol: connect}]\n", path: "c.yaml").get().listeners,
                       [ListenerConfig(port: 3128, protocol: .connect)])
    }

    func testRegistryPathsResolveAgainstTheConfigDirectory() throws {
        let config = try SluiceConfig.parse(yaml: "registry: [reg/, ./a.yaml, ../shared/b.yaml, /abs/c.yaml]\n", path: "/etc/sluice/sluice.yaml").get()
        XCTAssertEqual(config.registryPaths, ["/etc/sluice/reg", "/etc/sluice/a.yaml", "/etc/shared/b.yaml", "/abs/c.yaml"])
    }

    func testLoadMissingFile() {
        XCTAssertEqual(errors(SluiceConfig.load(path: "/nonexistent/sluice.yaml")), ["/nonexistent/sluice.yaml: no such file"])
    }

    func testDurations() {
        let cases: [(String, Duration?)] = [
            ("1s", .seconds(1)), ("500ms", .milliseconds(500)), ("1m", .seconds(60)), ("1h", .seconds(3600)),
            ("1.5s", .milliseconds(1500)), ("1m30s", .seconds(90)), ("250us", .microseconds(250)), ("250µs", .microseconds(250)),
            ("10ns", .nanoseconds(10)), (".5s", .milliseconds(500)), ("0s", .zero), ("2h45m", .seconds(9900)),
            ("", nil), ("10", nil), ("s", nil), ("1d", nil), ("-1s", nil), ("1 s", nil), ("1.s5", nil), ("1ss", nil),
            ("99999999999999999999h", nil),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(DurationText.parse(text), expected, text)
        }
        XCTAssertEqual(DurationText.format(.seconds(1)), "1s")
        XCTAssertEqual(DurationText.format(.milliseconds(250)), "250ms")
        XCTAssertEqual(DurationText.format(.seconds(5400)), "1h30m")
        XCTAssertEqual(DurationText.format(.milliseconds(1500)), "1.5s")
        XCTAssertEqual(DurationText.format(.milliseconds(90_250)), "1m30.25s")
        XCTAssertEqual(DurationText.format(.zero), "0s")
    }

    // MARK: Snapshot

    func testSnapshotLoadsConfigThenRegistry() throws {
        let snapshot = try SluiceSnapshot.load(configPath: RegistryFixtures.path("config/sidecar.yaml")).get()
        XCTAssertEqual(snapshot.config.mode, .registryOnly)
        XCTAssertEqual(snapshot.entries.count, 12)
        XCTAssertEqual(snapshot.registry.entries.count, 11, "one entry is exported to its own namespace only")
        XCTAssertEqual(snapshot.registry.lookup(host: "aliyun.com", port: 443)?.entry.name, "aliyun")
        XCTAssertFalse(snapshot.diagnostics.contains(where: \.isError))
        XCTAssertEqual(snapshot.diagnostics.filter { $0.severity == .note }.count, 2,
                       "skipped ConfigMap; MESH_INTERNAL not enforced (the Gateway and DestinationRule apply)")
        let docs = RegistryFixtures.path("registry/istio-docs")
        XCTAssertEqual(snapshot.watchedPaths, [
            RegistryFixtures.path("config/sidecar.yaml"), docs,
            docs + "/01-aliyun.yaml", docs + "/02-cnn-egress-gateway.yaml", docs + "/03-list.yaml", docs + "/04-wildcard.yaml",
            docs + "/05-tcp-addresses.yaml", docs + "/06-endpoints.yaml", docs + "/07-json.json",
        ])
        let policy = Policy(mode: snapshot.config.mode ?? .allowAny, registry: snapshot.registry, gateway: snapshot.config.egressGateway)
        let decision = policy.decide(ConnectionFacts(kind: .http(host: "aliyun.com"), destination: .v4(0x6A0B_F963), port: 80))
        XCTAssertEqual(decision.action, .forward(.gateway(authority: HostPort(host: "aliyun.com", port: 80), gatewayPort: 80, protocol: .istio)))
    }

    func testSnapshotFailsOnRegistryErrors() {
        let root = RegistryFixtures.root
        guard case .failure(let diagnostics) = SluiceSnapshot.load(configPath: root + "/config/broken/bad-registry.yaml") else {
            return XCTFail("a registry error must fail the snapshot")
        }
        XCTAssertEqual(diagnostics.map(\.description), [
            "\(root)/registry/broken/bad-port.yaml:21: ServiceEntry default/aliyun: spec.ports[0].number: must be 1-65535, not 70000",
            "\(root)/registry/does-not-exist: no such file or directory",
        ])
        XCTAssertEqual(diagnostics.errors.count, 2)
    }

    func testSnapshotFailsOnConfigErrors() {
        guard case .failure(let diagnostics) = SluiceSnapshot.load(configPath: RegistryFixtures.path("config/broken/typo.yaml")) else {
            return XCTFail("a config error must fail the snapshot")
        }
        XCTAssertEqual(diagnostics.count, 2)
    }
}

import Foundation
@testable import SluiceCore
import XCTest

/// From logged traffic to ServiceEntry YAML: the entries and their ports, folding, --min-count,
/// merging into an existing registry, and the property that matters — the YAML loads cleanly
/// and allows every line it was learned from.
final class LearnRegistryTests: XCTestCase {
    /// A mixed log: HTTP, TLS, opaque TCP (v4 and v6), an IP Host, a tunnel, a denied line,
    /// noise, and one host used as HTTP and TLS on the same port.
    static let mixedLog = [
        LearnFixtures.http("aliyun.com", dst: "192.0.2.30:80"),
        LearnFixtures.http("aliyun.com", dst: "192.0.2.30:80", at: LearnFixtures.base + 5_000),
        LearnFixtures.tls("aliyun.com", dst: "192.0.2.30:443", at: LearnFixtures.base + 1_000),
        LearnFixtures.tls("www.aliyun.com", dst: "192.0.2.30:443"),
        LearnFixtures.http("odd.example.com", dst: "198.51.100.7:8443"),
        LearnFixtures.tls("odd.example.com", dst: "198.51.100.7:8443"),
        LearnFixtures.tcp(dst: "192.0.2.33:7000"),
        LearnFixtures.tcp(dst: "[2001:db8::30]:5432"),
        LearnFixtures.http("192.0.2.31", dst: "192.0.2.31:80"),
        LearnFixtures.tls(nil, dst: "192.0.2.31:80"),
        LearnFixtures.connect("git.example.com:22", dst: "192.0.2.40:3128"),
        LearnFixtures.connect("198.51.100.9:8080", dst: "192.0.2.40:3128"),
        LearnFixtures.http("unregistered.test", dst: "192.0.2.31:80", cluster: "BlackHoleCluster", route: "block_all", code: 502),
        LearnFixtures.envoyTLS + "\n",
        "sluice: listening on 127.0.0.1:15001\n",
        #"{"level":"info","msg":"other tool"}"# + "\n",
    ].joined(separator: "")

    private func learn(_ log: String, registry: Registry? = nil, options: LearnedRegistry.Options = .init())
        -> (learner: AccessLogLearner, learned: LearnedRegistry)
    {
        var learner = AccessLogLearner(registry: registry)
        learner.read(log: log)
        return (learner, LearnedRegistry(learner.traffic, options: options))
    }

    /// Every connection the log holds, read back.
    private func connections(_ log: String) -> [LoggedConnection] {
        let reader = AccessLogLineReader()
        return log.split(separator: "\n").compactMap { line in
            guard case .success(let connection)? = reader.read(String(line)) else { return nil }
            return connection
        }
    }

    /// Loads YAML the way `sluice check` does, asserting no error and no warning but the one
    /// the registry gives for a host used as HTTP and as TLS on one port (two entries, one per
    /// protocol family, which both match: `Registry` reports any second entry for a host and
    /// port, whatever its family).
    private func load(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> Registry {
        let result = RegistryLoader.parse(yaml: yaml, path: "learned.yaml")
        XCTAssertEqual(result.diagnostics.filter { $0.severity != .note }, [], file: file, line: line)
        let registry = Registry(result.entries)
        XCTAssertEqual(registry.conflicts.filter { $0.severity != .note }, [], "a host seen as HTTP and TLS on one port is a note, not a conflict",
                       file: file, line: line)
        return registry
    }

    // MARK: The property

    func testLearnedYAMLLoadsCleanlyAndAllowsEveryLoggedConnection() {
        let (learner, learned) = learn(Self.mixedLog)
        XCTAssertEqual(learner.traffic.learnedLines, 14)
        let registry = load(learned.yaml(header: ["test"]))
        XCTAssertEqual(registry.entries.count, learned.entries.count)
        for connection in connections(Self.mixedLog) {
            XCTAssertTrue(registry.allows(connection), "not allowed: \(connection)")
        }
        // And nothing else on those hosts' other ports, nor other hosts.
        XCTAssertFalse(registry.allows(LoggedConnection(traffic: .http(host: "aliyun.com"), destination: IPAddress("192.0.2.30"), port: 8080)))
        XCTAssertFalse(registry.allows(LoggedConnection(traffic: .http(host: "other.test"), destination: IPAddress("192.0.2.30"), port: 80)))
        XCTAssertFalse(registry.allows(LoggedConnection(traffic: .tcp, destination: IPAddress("192.0.2.34"), port: 7000)),
                       "a TCP port is learned for its address only, not for every address")
    }

    /// The sidecar's own log from IntegrationTests/cases/75-learn.sh (ALLOW_ANY traffic, then the
    /// REGISTRY_ONLY run with its 502 and closed denials), as the e2e suite wrote it.
    func testRealSidecarLogFromTheEndToEndSuite() throws {
        let log = try RegistryFixtures.text("learn/e2e-sidecar-access.log")
        let (learner, learned) = learn(log)
        XCTAssertEqual(learner.lines, 20)
        XCTAssertEqual(learner.traffic.learnedLines, 20)
        XCTAssertEqual(learner.traffic.deniedLines, 4)
        XCTAssertEqual(learned.entries.map(\.name), [
            "aliyun.com", "www.aliyun.com", "v6.aliyun.test", "spoof-target.test", "static-backend.test",
            "unregistered.test", "ip-192-0-2-31", "ip-192-0-2-33", "ip-192-0-2-34", "ip-2001-db8--30",
        ])
        let registry = load(learned.yaml())
        let all = connections(log)
        XCTAssertEqual(all.count, 20)
        for connection in all { XCTAssertTrue(registry.allows(connection), "\(connection)") }
    }

    func testWhatEachKindOfTrafficBecomes() throws {
        let learned = learn(Self.mixedLog).learned
        func entry(_ name: String) throws -> LearnedRegistry.Entry {
            try XCTUnwrap(learned.entries.first { $0.name == name }, "no entry \(name) in \(learned.entries.map(\.name))")
        }
        let aliyun = try entry("aliyun.com")
        XCTAssertEqual(aliyun.hosts, ["aliyun.com"])
        XCTAssertEqual(aliyun.resolution, .dns)
        XCTAssertEqual(aliyun.ports.map(\.name), ["http-80", "tls-443"])
        XCTAssertEqual(aliyun.ports.map(\.protocol), [.http, .tls])
        XCTAssertEqual(aliyun.ports[0].usage.count, 2)
        XCTAssertEqual(aliyun.ports[0].usage.firstSeen, LearnFixtures.base)
        XCTAssertEqual(aliyun.ports[0].usage.lastSeen, LearnFixtures.base + 5_000)

        // HTTP and TLS on one port: two entries, not a TCP port (which would open every address).
        XCTAssertEqual(try entry("odd.example.com").ports.map(\.protocol), [.http])
        XCTAssertEqual(try entry("odd.example.com-tls").ports.map(\.protocol), [.tls])

        let tcp = try entry("ip-192-0-2-33")
        XCTAssertEqual(tcp.addresses, [CIDR("192.0.2.33/32")].compactMap { $0 })
        XCTAssertEqual(tcp.resolution, .none)
        XCTAssertEqual(tcp.ports.map(\.name), ["tcp-7000"])
        XCTAssertEqual(try entry("ip-2001-db8--30").addresses, [CIDR("2001:db8::30/128")].compactMap { $0 })
        // 192.0.2.31:80 saw HTTP by IP and TLS without SNI: TCP, for that address only.
        XCTAssertEqual(try entry("ip-192-0-2-31").ports.map(\.protocol), [.tcp])
        // Tunnels: to a name, a TLS port on the host; to an IP, TCP on the address.
        XCTAssertEqual(try entry("git.example.com").ports.map(\.name), ["tls-22"])
        XCTAssertEqual(try entry("ip-198-51-100-9").ports.map(\.name), ["tcp-8080"])
        XCTAssertEqual(try entry("unregistered.test").ports.first?.usage.denied, 1)
        XCTAssertEqual(try entry("www.example.com").ports.map(\.name), ["tls-443"], "from Envoy's own log line")
    }

    func testOutputIsSortedAndDoesNotDependOnLineOrder() {
        let lines = Self.mixedLog.split(separator: "\n").map { $0 + "\n" }
        let yaml = learn(lines.joined()).learned.yaml()
        var generator = SeededGenerator(seed: 23)
        for _ in 0..<5 {
            XCTAssertEqual(learn(lines.shuffled(using: &generator).joined()).learned.yaml(), yaml)
        }
        // Several logs (pods, rotations) give what their concatenation gives.
        var learner = AccessLogLearner()
        let half = lines.count / 2
        learner.read(log: lines[..<half].joined())
        learner.read(log: lines[half...].joined())
        XCTAssertEqual(LearnedRegistry(learner.traffic).yaml(), yaml)
        XCTAssertEqual(learner.streams, 2)

        let names = learn(Self.mixedLog).learned.entries.map(\.name)
        XCTAssertEqual(names, [
            "aliyun.com", "www.aliyun.com", "git.example.com", "odd.example.com", "odd.example.com-tls",
            "www.example.com", "unregistered.test",
            "ip-192-0-2-31", "ip-192-0-2-33", "ip-198-51-100-9", "ip-2001-db8--30",
        ], "names grouped by domain read from the right, then addresses in numeric order")
    }

    func testYAMLCarriesCountsAndTimesAsComments() {
        let yaml = learn(Self.mixedLog).learned.yaml(header: ["Written by a test."])
        XCTAssertTrue(yaml.hasPrefix("# Written by a test.\n---\n# aliyun.com: 3 seen, 2026-12-01T00:00:00.000Z to 2026-12-01T00:00:05.000Z\n"), yaml)
        XCTAssertTrue(yaml.contains("""
              - number: 80
                name: http-80
                protocol: HTTP  # 2 seen, 2026-12-01T00:00:00.000Z to 2026-12-01T00:00:05.000Z
            """), yaml)
        XCTAssertTrue(yaml.contains("# unregistered.test: 1 seen (1 denied)"), yaml)
        XCTAssertTrue(yaml.contains("  location: MESH_EXTERNAL\n"))
    }

    func testHeaderLinesCannotStartYAML() {
        let yaml = learn(Self.mixedLog).learned.yaml(header: ["from evil\napiVersion: v1\rkind: Secret"])
        XCTAssertTrue(yaml.hasPrefix("# from evil apiVersion: v1 kind: Secret\n---\n"), yaml)
    }

    // MARK: --since and --min-count

    func testSinceLeavesOutOlderLines() {
        var learner = AccessLogLearner(since: LearnFixtures.base + 1_000)
        learner.read(log: Self.mixedLog)
        XCTAssertEqual(learner.traffic.learnedLines, 3, "the second aliyun.com request, the TLS one, and Envoy's line")
        XCTAssertEqual(learner.beforeSince, 11)
    }

    func testMinCountDropsRarePortsAndEmptyEntries() {
        let learned = learn(Self.mixedLog, options: .init(minCount: 2)).learned
        XCTAssertEqual(learned.entries.map(\.name), ["aliyun.com", "ip-192-0-2-31"])
        XCTAssertEqual(learned.entries.first?.ports.map(\.name), ["http-80"])
        XCTAssertEqual(learned.entries.last?.ports.map(\.name), ["tcp-80"], "HTTP by IP and TLS without SNI add up")
        XCTAssertEqual(learned.portsBelowMinCount, 10)
    }

    // MARK: Folding

    func testFoldsMoreThanNHostsUnderTheirMostSpecificParent() {
        let cdn = (0..<4).map { "a\($0).cdn.example.com" }
        let api = (0..<4).map { "b\($0).api.example.com" }
        XCTAssertEqual(HostFolding.wildcards(for: Set(cdn), threshold: 4), [:], "4 hosts are not more than 4")
        // example.com has 8 hosts below it too, but each host has a more specific parent with 4.
        let two = HostFolding.wildcards(for: Set(cdn + api + ["solo.other.org"]), threshold: 3)
        XCTAssertEqual(two, Dictionary(uniqueKeysWithValues: cdn.map { ($0, "*.cdn.example.com") } + api.map { ($0, "*.api.example.com") }))
        // A host straight under example.com has no more specific parent: example.com's wildcard
        // takes it and covers the two narrower ones.
        let broad = HostFolding.wildcards(for: Set(cdn + api + ["www.example.com"]), threshold: 3)
        XCTAssertEqual(Set(broad.values), ["*.example.com"])
        XCTAssertEqual(broad.count, 9)
    }

    func testAParentHostStaysBesideItsWildcard() {
        let hosts = Set((0..<4).map { "a\($0).cdn.example.com" } + ["cdn.example.com"])
        let folded = HostFolding.wildcards(for: hosts, threshold: 3)
        XCTAssertEqual(Set(folded.values), ["*.cdn.example.com"])
        XCTAssertNil(folded["cdn.example.com"], "*.cdn.example.com does not match cdn.example.com; it is not counted towards *.example.com")
    }

    func testNeverFoldsIntoATopLevelDomainOrPublicSuffix() {
        let hosts: Set<String> = ["a.com", "b.com", "c.com", "x.co.uk", "y.co.uk", "z.co.uk", "shop.x.co.uk"]
        XCTAssertEqual(HostFolding.wildcards(for: hosts, threshold: 1), [:])
    }

    func testFoldedEntriesAreWildcardsWithResolutionNone() throws {
        var log = Self.mixedLog
        for n in 0..<5 { log += LearnFixtures.tls("edge-\(n).cdn.example.net", dst: "203.0.113.\(n + 1):443") }
        log += LearnFixtures.http("edge-9.cdn.example.net", dst: "203.0.113.9:80")
        let learned = learn(log, options: .init(foldThreshold: 4)).learned
        let wildcard = try XCTUnwrap(learned.entries.first { $0.hosts == ["*.cdn.example.net"] })
        XCTAssertEqual(wildcard.name, "wildcard.cdn.example.net")
        XCTAssertEqual(wildcard.resolution, .none, "Istio rejects a DNS wildcard without endpoints")
        XCTAssertEqual(wildcard.ports.map(\.name), ["http-80", "tls-443"])
        XCTAssertEqual(wildcard.ports.map(\.usage.count), [1, 5])
        XCTAssertEqual(wildcard.foldedHosts, (0..<5).map { "edge-\($0).cdn.example.net" } + ["edge-9.cdn.example.net"])
        let yaml = learned.yaml()
        XCTAssertTrue(yaml.contains("  - \"*.cdn.example.net\"\n"), "quoted: a bare * starts a YAML alias")
        XCTAssertTrue(yaml.contains("# stands for 6 hosts seen:\n#   edge-0.cdn.example.net\n"))
        let registry = load(yaml)
        for connection in connections(log) { XCTAssertTrue(registry.allows(connection), "\(connection)") }
        XCTAssertTrue(registry.allows(LoggedConnection(traffic: .tls(serverName: "new.cdn.example.net"), destination: nil, port: 443)))
    }

    // MARK: Merging into an existing registry

    static let existing = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: aliyun.com
        spec:
          hosts: [aliyun.com]
          ports:
          - {number: 80, name: http, protocol: HTTP}
          resolution: DNS
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: wildcard-example
        spec:
          hosts: ["*.example.com"]
          ports:
          - {number: 8443, name: tls, protocol: TLS}
          resolution: NONE
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: tcp-echo
        spec:
          hosts: [tcp-echo.test]
          addresses: [192.0.2.32/30]
          ports:
          - {number: 7000, name: tcp, protocol: TCP}
          resolution: NONE
        """

    func testMergingLeavesOutWhatTheRegistryAlreadyAllows() throws {
        let loaded = RegistryLoader.parse(yaml: Self.existing, path: "existing.yaml")
        XCTAssertFalse(loaded.hasErrors)
        let existing = Registry(loaded.entries)
        let taken = Set(loaded.entries.map(\.name))
        let (learner, learned) = learn(Self.mixedLog, registry: existing, options: .init(takenNames: taken))
        // aliyun.com:80 (2 requests), odd.example.com TLS on 8443, 192.0.2.33:7000.
        XCTAssertEqual(learner.alreadyAllowed, 4)
        let aliyun = try XCTUnwrap(learned.entries.first { $0.hosts == ["aliyun.com"] })
        XCTAssertEqual(aliyun.ports.map(\.name), ["tls-443"], "port 80 is registered already; 443 is not")
        XCTAssertEqual(aliyun.name, "aliyun.com-2", "the registry's name is not reused")
        XCTAssertEqual(learned.entries.filter { $0.hosts == ["odd.example.com"] }.flatMap { $0.ports.map(\.name) }, ["http-8443"])
        XCTAssertNil(learned.entries.first { $0.name == "ip-192-0-2-33" }, "inside 192.0.2.32/30 on 7000")

        // Together they allow everything, and loading both gives no conflict.
        let both = RegistryLoader.parse(yaml: Self.existing + "\n---\n" + learned.yaml(), path: "both.yaml")
        XCTAssertEqual(both.diagnostics.filter { $0.severity != .note }, [])
        let registry = Registry(both.entries)
        XCTAssertEqual(registry.conflicts, [])
        for connection in connections(Self.mixedLog) { XCTAssertTrue(registry.allows(connection), "\(connection)") }
    }

    func testAllowsFollowsTheSidecarsMatching() {
        let registry = load(Self.existing)
        // HTTP may match an address's TCP port; TLS by SNI needs a TLS port; tunnels match any protocol.
        XCTAssertTrue(registry.allows(LoggedConnection(traffic: .http(host: "x.test"), destination: IPAddress("192.0.2.33"), port: 7000)))
        XCTAssertFalse(registry.allows(LoggedConnection(traffic: .tls(serverName: "aliyun.com"), destination: IPAddress("192.0.2.30"), port: 80)))
        XCTAssertTrue(registry.allows(LoggedConnection(traffic: .tunnel(host: "aliyun.com"), destination: nil, port: 80)))
        XCTAssertTrue(registry.allows(LoggedConnection(traffic: .tunnel(host: "192.0.2.34"), destination: IPAddress("192.0.2.34"), port: 7000)))
        XCTAssertFalse(registry.allows(LoggedConnection(traffic: .tcp, destination: IPAddress("192.0.2.30"), port: 80)))
    }
}

/// A small deterministic generator, so shuffles are the same on every run.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        // SplitMix64.
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

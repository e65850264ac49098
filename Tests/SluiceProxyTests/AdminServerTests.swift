import Foundation
import Logging
import NIOCore
import NIOPosix
import SluiceCore
import XCTest

@testable import SluiceProxy

/// A sample HTTP record for the server tests.
enum AccessLogRecordFixture {
    static let http = AccessLogRecord(method: "GET", path: "/", protocol: "HTTP/1.1", responseCode: 200, bytesSent: 10, duration: 3)
}

/// The admin port: config dump, stats, run-time log level, the index, loopback only.
final class AdminServerTests: XCTestCase {
    private static let registryYAML = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: aliyun, namespace: egress}
        spec:
          hosts: [aliyun.com, "*.aliyun.com"]
          addresses: [203.0.113.0/24]
          ports:
          - {number: 80, name: http, protocol: HTTP}
          - {number: 443, name: tls, protocol: TLS, targetPort: 8443}
          resolution: STATIC
          endpoints: [{address: 127.0.0.1, ports: {http: 8080}, labels: {app: origin}}]
        """

    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-admin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func snapshot() throws -> SluiceSnapshot {
        try Self.registryYAML.write(to: directory.appendingPathComponent("aliyun.yaml"), atomically: true, encoding: .utf8)
        let config = directory.appendingPathComponent("sluice.yaml")
        try """
            outboundTrafficPolicy: {mode: REGISTRY_ONLY}
            registry: [aliyun.yaml]
            egressGateway: {address: [10.0.0.1, egress.test], protocol: connect}
            accessLog: {enabled: false}
            """.write(to: config, atomically: true, encoding: .utf8)
        switch SluiceSnapshot.load(configPath: config.path) {
        case .success(let snapshot): return snapshot
        case .failure(let diagnostics): throw diagnostics
        }
    }

    private struct Server {
        let group: MultiThreadedEventLoopGroup
        let channel: any Channel
        let address: SocketAddress
        let metrics: ProxyMetrics
        let levels: LogLevelBox

        func get(_ path: String, method: String = "GET") async throws -> AdminTestClient.Answer {
            try await AdminTestClient.get(path, method: method, from: address, group: group)
        }

        func stop() async throws {
            try await channel.close()
            try await group.shutdownGracefully()
        }
    }

    private func startAdmin(role: ProxyRole = .sidecar) async throws -> Server {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let metrics = ProxyMetrics(role: role)
        let levels = LogLevelBox(.info)
        let snapshot = try self.snapshot()
        let channel = try await AdminServer.bind(
            port: 0, group: group, role: role, metrics: metrics, logLevel: levels, snapshot: { snapshot })
        return Server(group: group, channel: channel, address: try XCTUnwrap(channel.localAddress), metrics: metrics, levels: levels)
    }

    func testConfigDumpIsJSONNamingEveryEntry() async throws {
        let server = try await startAdmin()
        let answer = try await server.get("/config_dump")
        try await server.stop()

        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.headers["content-type"], "application/json")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
        XCTAssertEqual(json["role"] as? String, "sidecar")
        let config = try XCTUnwrap(json["config"] as? [String: Any])
        XCTAssertEqual((config["outboundTrafficPolicy"] as? [String: String])?["mode"], "REGISTRY_ONLY")
        let gateway = try XCTUnwrap(config["egressGateway"] as? [String: Any])
        XCTAssertEqual(gateway["address"] as? [String], ["10.0.0.1", "egress.test"])
        XCTAssertEqual(gateway["protocol"] as? String, "connect")
        let limits = try XCTUnwrap(config["limits"] as? [String: Any])
        XCTAssertEqual(limits["headerReadTimeout"] as? String, "10s")
        XCTAssertEqual(limits["maxRequestHeadBytes"] as? Int, 65536)

        let registry = try XCTUnwrap(json["registry"] as? [String: Any])
        XCTAssertEqual(registry["count"] as? Int, 1)
        let entry = try XCTUnwrap((registry["serviceEntries"] as? [[String: Any]])?.first)
        XCTAssertEqual(entry["name"] as? String, "aliyun")
        XCTAssertEqual(entry["namespace"] as? String, "egress")
        XCTAssertEqual(entry["hosts"] as? [String], ["aliyun.com", "*.aliyun.com"])
        XCTAssertEqual(entry["addresses"] as? [String], ["203.0.113.0/24"])
        XCTAssertEqual(entry["resolution"] as? String, "STATIC")
        XCTAssertTrue((entry["source"] as? String)?.hasSuffix("aliyun.yaml:1") ?? false, "\(entry["source"] ?? "nil")")
        let ports = try XCTUnwrap(entry["ports"] as? [[String: Any]])
        XCTAssertEqual(ports.count, 2)
        XCTAssertTrue(ports[0]["targetPort"] is NSNull, "\(ports[0])")
        XCTAssertEqual(ports[1]["targetPort"] as? Int, 8443)
        XCTAssertEqual(ports[1]["protocol"] as? String, "TLS")
        let endpoint = try XCTUnwrap((entry["endpoints"] as? [[String: Any]])?.first)
        XCTAssertEqual(endpoint["address"] as? String, "127.0.0.1")
        XCTAssertEqual(endpoint["ports"] as? [String: Int], ["http": 8080])
        XCTAssertEqual(endpoint["labels"] as? [String: String], ["app": "origin"])
    }

    func testConfigDumpShowsTheRoleDefaultMode() throws {
        func config(_ role: ProxyRole) throws -> [String: Any] {
            let json = ConfigDump(snapshot: SluiceSnapshot(config: SluiceConfig(), registry: Registry()), role: role).json()
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            return try XCTUnwrap(object["config"] as? [String: Any])
        }
        let sidecar = try config(.sidecar)
        XCTAssertEqual((sidecar["outboundTrafficPolicy"] as? [String: String])?["mode"], "ALLOW_ANY")
        // null, not missing: "registered hosts go direct" is said explicitly.
        XCTAssertTrue(sidecar["egressGateway"] is NSNull, "\(sidecar)")
        XCTAssertEqual((sidecar["listeners"] as? [Any])?.count, 0)
        let gateway = try config(.gateway)
        XCTAssertEqual((gateway["outboundTrafficPolicy"] as? [String: String])?["mode"], "REGISTRY_ONLY")
        XCTAssertEqual((gateway["listeners"] as? [[String: Any]])?.compactMap { $0["protocol"] as? String }, ["HTTP", "TLS", "CONNECT"])
    }

    func testLoggingChangesTheLevelAtRunTime() async throws {
        let server = try await startAdmin()

        var answer = try await server.get("/logging")
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.body, "level: info\n")

        answer = try await server.get("/logging?level=debug", method: "POST")
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.body, "level: debug\n")
        XCTAssertEqual(server.levels.level, .debug)

        answer = try await server.get("/logging?level=WARN")
        XCTAssertEqual(answer.body, "level: warning\n")
        XCTAssertEqual(server.levels.level, .warning)

        answer = try await server.get("/logging?level=loud", method: "POST")
        XCTAssertEqual(answer.status, 400)
        XCTAssertEqual(server.levels.level, .warning)

        answer = try await server.get("/logging", method: "POST")
        XCTAssertEqual(answer.status, 400)

        answer = try await server.get("/logging", method: "PUT")
        XCTAssertEqual(answer.status, 405)
        try await server.stop()
    }

    func testStatsIndexAndUnknownPaths() async throws {
        let server = try await startAdmin(role: .gateway)
        server.metrics.denied(.connect)
        var record = AccessLogRecordFixture.http
        record.upstreamCluster = "outbound|80||aliyun.com"
        server.metrics.requestCompleted(record)

        let stats = try await server.get("/stats")
        XCTAssertEqual(stats.status, 200)
        XCTAssertTrue(stats.body.contains("sluice_denied_total{protocol=\"connect\"}: 1\n"), stats.body)
        XCTAssertTrue(stats.body.contains("istio_requests_total{reporter=\"gateway\",destination_service=\"aliyun.com\""), stats.body)

        let prometheus = try await server.get("/stats/prometheus")
        XCTAssertEqual(prometheus.status, 200)
        XCTAssertTrue(prometheus.body.contains("sluice_denied_total{protocol=\"connect\"} 1\n"), prometheus.body)

        let index = try await server.get("/")
        XCTAssertEqual(index.status, 200)
        for path in ["/config_dump", "/stats", "/stats/prometheus", "/logging"] {
            XCTAssertTrue(index.body.contains("  \(path): "), index.body)
        }
        let missing = try await server.get("/quitquitquit", method: "POST")
        XCTAssertEqual(missing.status, 404)
        try await server.stop()
    }

    func testAdminRefusesNonLoopbackAddresses() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let snapshot = SluiceSnapshot(config: SluiceConfig(), registry: Registry())
        for host in ["0.0.0.0", "10.1.2.3", "::", "not-an-ip"] {
            do {
                let channel = try await AdminServer.bind(
                    host: host, port: 0, group: group, role: .sidecar, metrics: ProxyMetrics(role: .sidecar),
                    logLevel: LogLevelBox(.info), snapshot: { snapshot })
                try await channel.close()
                XCTFail("bound admin on \(host)")
            } catch let error as AdminServerError {
                XCTAssertEqual(error.host, host)
            }
        }
        XCTAssertTrue(AdminServer.isLoopback(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        XCTAssertTrue(AdminServer.isLoopback(try SocketAddress(ipAddress: "127.9.0.1", port: 1)))
        XCTAssertTrue(AdminServer.isLoopback(try SocketAddress(ipAddress: "::1", port: 1)))
        try await group.shutdownGracefully()
    }

    func testDynamicLogHandlerFollowsTheBox() {
        let box = LogLevelBox(.info)
        var logger = Logger(label: "test") { DynamicLogHandler(label: $0, levelBox: box) }
        XCTAssertEqual(logger.logLevel, .info)
        box.level = .trace
        XCTAssertEqual(logger.logLevel, .trace)
        // A copy of the logger shares the level: it is process-wide, as the admin sets it.
        let copy = logger
        logger.logLevel = .error
        XCTAssertEqual(copy.logLevel, .error)
        XCTAssertEqual(box.level, .error)
        logger[metadataKey: "k"] = "v"
        XCTAssertEqual(logger[metadataKey: "k"], "v")
        XCTAssertNil(copy[metadataKey: "k"])
    }

    func testLevelNames() {
        XCTAssertEqual(LogLevelBox.parse("Debug"), .debug)
        XCTAssertEqual(LogLevelBox.parse("warn"), .warning)
        XCTAssertEqual(LogLevelBox.parse("critical"), .critical)
        XCTAssertNil(LogLevelBox.parse("off"))
        XCTAssertNil(LogLevelBox.parse(""))
    }
}


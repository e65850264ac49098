import Foundation
@testable import SluiceCore
import XCTest

/// Access-log lines exactly as the proxy writes them: `AccessLogRecord.jsonLine()`, the
/// writer the sidecar and gateway use, with the fields their handlers set for each kind of
/// traffic (HTTPProxyHandler for requests, TCPForwarder for TLS and TCP connections).
enum LearnFixtures {
    /// 2026-12-01T00:00:00.000Z.
    static let base: Int64 = 1_796_083_200_000

    static func http(
        _ host: String?, dst: String, at time: Int64 = base, cluster: String = "PassthroughCluster",
        route: String = "allow_any", code: Int = 200, flags: ResponseFlags = [], version: String = "HTTP/1.1"
    ) -> String {
        AccessLogRecord(
            startTime: time, method: "GET", path: "/", protocol: version, responseCode: code, responseFlags: flags,
            bytesSent: 12, duration: 3, upstreamServiceTime: 2, userAgent: "curl/7.88.1",
            requestId: "f65db206-d2a0-4d75-bde9-c60d457e33e4", authority: host, upstreamHost: dst,
            upstreamCluster: cluster, upstreamLocalAddress: "10.0.0.5:41234", downstreamLocalAddress: dst,
            downstreamRemoteAddress: "10.0.0.7:53512", routeName: route
        ).jsonLine()
    }

    static func tls(_ serverName: String?, dst: String, at time: Int64 = base, cluster: String = "PassthroughCluster",
                    route: String = "allow_any", flags: ResponseFlags = []) -> String {
        AccessLogRecord(
            startTime: time, responseFlags: flags, bytesReceived: 517, bytesSent: 4096, duration: 9,
            upstreamHost: dst, upstreamCluster: cluster, upstreamLocalAddress: "10.0.0.5:41236",
            downstreamLocalAddress: dst, downstreamRemoteAddress: "10.0.0.7:53514",
            requestedServerName: serverName, routeName: route
        ).jsonLine()
    }

    static func tcp(dst: String, at time: Int64 = base, cluster: String = "PassthroughCluster", route: String = "allow_any",
                    flags: ResponseFlags = []) -> String {
        tls(nil, dst: dst, at: time, cluster: cluster, route: route, flags: flags)
    }

    /// A `CONNECT target` the app sent to a proxy it dialled at `dst`.
    static func connect(_ target: String, dst: String, at time: Int64 = base) -> String {
        AccessLogRecord(
            startTime: time, method: "CONNECT", path: target, protocol: "HTTP/1.1", responseCode: 200,
            authority: target, upstreamCluster: "PassthroughCluster", downstreamLocalAddress: dst,
            downstreamRemoteAddress: "10.0.0.7:53516", routeName: "allow_any"
        ).jsonLine()
    }

    /// An Istio/Envoy sidecar's JSON access-log line for a TLS passthrough connection, in the
    /// field set and order of Istio's `accessLogEncoding: JSON` default (other keys than
    /// Sluice's, `"-"` for the absent authority).
    static let envoyTLS = """
        {"authority":"-","bytes_received":1018,"bytes_sent":4185,"connection_termination_details":null,\
        "downstream_local_address":"203.0.113.17:443","downstream_remote_address":"10.244.0.14:53960",\
        "duration":303,"method":null,"path":null,"protocol":null,"request_id":null,\
        "requested_server_name":"www.example.com","response_code":0,"response_code_details":null,\
        "response_flags":"-","route_name":null,"start_time":"2026-12-01T08:15:02.117Z",\
        "upstream_cluster":"PassthroughCluster","upstream_host":"203.0.113.17:443",\
        "upstream_local_address":"10.244.0.14:53962","upstream_service_time":null,\
        "upstream_transport_failure_reason":null,"user_agent":null,"x_forwarded_for":null}
        """

    /// The same sidecar's line for a plain HTTP request to an external host.
    static let envoyHTTP = """
        {"authority":"api.example.com","bytes_received":0,"bytes_sent":612,"downstream_local_address":"203.0.113.18:80",\
        "downstream_remote_address":"10.244.0.14:41000","duration":21,"method":"GET","path":"/v1/status",\
        "protocol":"HTTP/1.1","request_id":"8a0e8a4f-1b1d-4a36-9a4e-6cfd2b5c0f11","requested_server_name":null,\
        "response_code":200,"response_flags":"-","route_name":"allow_any","start_time":"2026-12-01T08:15:03.001Z",\
        "upstream_cluster":"PassthroughCluster","upstream_host":"203.0.113.18:80","upstream_local_address":"10.244.0.14:41002",\
        "upstream_service_time":"20","upstream_transport_failure_reason":null,"user_agent":"curl/8.5.0","x_forwarded_for":null}
        """
}

/// Reading access-log lines back: each kind of traffic the proxy logs, other programs' lines,
/// truncated lines, prefixes, and streaming through the line splitter.
final class LearnLogReadingTests: XCTestCase {
    private let reader = AccessLogLineReader()

    private func read(_ line: String, file: StaticString = #filePath, line number: UInt = #line) -> LoggedConnection? {
        guard let result = reader.read(line) else {
            XCTFail("blank line", file: file, line: number)
            return nil
        }
        switch result {
        case .success(let connection): return connection
        case .failure(let reason):
            XCTFail("skipped: \(reason.rawValue): \(line)", file: file, line: number)
            return nil
        }
    }

    private func skipReason(_ line: String) -> SkippedLogLine? {
        guard case .failure(let reason)? = reader.read(line) else { return nil }
        return reason
    }

    // MARK: What the sidecar writes

    func testHTTPRequestIsLearnedByHostOnTheDialledPort() {
        let connection = read(LearnFixtures.http("Api.Example.COM:8080", dst: "192.0.2.30:80"))
        XCTAssertEqual(connection?.traffic, .http(host: "api.example.com"))
        XCTAssertEqual(connection?.port, 80, "the registry matches the port dialled, not the one in Host")
        XCTAssertEqual(connection?.destination, IPAddress("192.0.2.30"))
        XCTAssertEqual(connection?.startTime, LearnFixtures.base)
        XCTAssertEqual(connection?.wasDenied, false)
    }

    func testHTTP10AndTrailingDotHost() {
        let connection = read(LearnFixtures.http("aliyun.com.", dst: "192.0.2.30:80", version: "HTTP/1.0"))
        XCTAssertEqual(connection?.traffic, .http(host: "aliyun.com"))
    }

    func testTLSConnectionIsLearnedBySNI() {
        let connection = read(LearnFixtures.tls("www.aliyun.com", dst: "192.0.2.30:443"))
        XCTAssertEqual(connection?.traffic, .tls(serverName: "www.aliyun.com"))
        XCTAssertEqual(connection?.port, 443)
    }

    func testTCPConnectionIsLearnedByAddressV4AndV6() {
        let v4 = read(LearnFixtures.tcp(dst: "192.0.2.33:7000"))
        XCTAssertEqual(v4?.traffic, .tcp)
        XCTAssertEqual(v4?.destination, IPAddress("192.0.2.33"))
        XCTAssertEqual(v4?.port, 7000)
        let v6 = read(LearnFixtures.tcp(dst: "[2001:db8::30]:5432"))
        XCTAssertEqual(v6?.destination, IPAddress("2001:db8::30"))
        XCTAssertEqual(v6?.port, 5432)
        let mapped = read(LearnFixtures.tcp(dst: "[::ffff:192.0.2.33]:7000"))
        XCTAssertEqual(mapped?.destination, IPAddress("192.0.2.33"), "a v4-mapped address is the v4 address")
    }

    func testHostThatIsAnIPGoesTheAddressWay() {
        let http = read(LearnFixtures.http("192.0.2.31", dst: "192.0.2.31:80"))
        XCTAssertEqual(http?.traffic, .http(host: "192.0.2.31"))
        XCTAssertNil(http?.hostName)
        let v6 = read(LearnFixtures.http("[2001:db8::30]:8080", dst: "[2001:db8::30]:8080"))
        XCTAssertEqual(v6?.traffic, .http(host: "2001:db8::30"))
        // An IP in the SNI: the sidecar matches such a connection by its address.
        let tls = read(LearnFixtures.tls("192.0.2.31", dst: "192.0.2.31:443"))
        XCTAssertEqual(tls?.traffic, .tcp)
        XCTAssertEqual(tls?.destination, IPAddress("192.0.2.31"))
    }

    func testConnectTunnelIsLearnedByItsTarget() {
        let named = read(LearnFixtures.connect("api.example.com:8443", dst: "192.0.2.40:3128"))
        XCTAssertEqual(named?.traffic, .tunnel(host: "api.example.com"))
        XCTAssertEqual(named?.port, 8443, "the tunnel's port, not the proxy's")
        let address = read(LearnFixtures.connect("[2001:db8::7]:22", dst: "192.0.2.40:3128"))
        XCTAssertEqual(address?.traffic, .tunnel(host: "2001:db8::7"))
        XCTAssertEqual(address?.destination, IPAddress("2001:db8::7"))
    }

    func testDeniedLinesAreLearnedAndMarked() {
        // Audit mode's whole point: what REGISTRY_ONLY would deny is what the registry lacks.
        let http = read(LearnFixtures.http("unregistered.test", dst: "192.0.2.31:80", cluster: "BlackHoleCluster",
                                           route: "block_all", code: 502))
        XCTAssertEqual(http?.wasDenied, true)
        let tls = read(LearnFixtures.tls("unregistered.test", dst: "192.0.2.31:443", cluster: "BlackHoleCluster",
                                         route: "block_all", flags: [.noRouteFound]))
        XCTAssertEqual(tls?.wasDenied, true)
        XCTAssertEqual(tls?.traffic, .tls(serverName: "unregistered.test"))
    }

    func testLinesWithoutADestinationAreSkipped() {
        XCTAssertEqual(skipReason(LearnFixtures.http(nil, dst: "192.0.2.30:80", code: 400, flags: [.downstreamProtocolError])),
                       .noDestination, "a request without Host")
        XCTAssertEqual(skipReason(#"{"start_time":"2026-12-01T00:00:00.000Z","protocol":null,"downstream_local_address":"nonsense","upstream_cluster":"PassthroughCluster"}"#),
                       .noDestination)
        XCTAssertEqual(skipReason(#"{"start_time":"2026-12-01T00:00:00.000Z","protocol":null,"downstream_local_address":"192.0.2.1:0","upstream_cluster":"PassthroughCluster"}"#),
                       .noDestination, "port 0")
        XCTAssertEqual(skipReason(LearnFixtures.connect("no-port.example.com", dst: "192.0.2.40:3128")), .noDestination)
    }

    func testHostsNoServiceEntryCanHoldAreSkipped() {
        XCTAssertEqual(skipReason(LearnFixtures.http("bad_name.example.com", dst: "192.0.2.30:80")), .invalidHost)
        XCTAssertEqual(skipReason(LearnFixtures.http("*.example.com", dst: "192.0.2.30:80")), .invalidHost)
        XCTAssertEqual(skipReason(LearnFixtures.tls("\u{00E9}xample.com", dst: "192.0.2.30:443")), .invalidHost)
    }

    // MARK: Envoy's and other tools' lines

    func testIstioEnvoyJSONLines() {
        let tls = read(LearnFixtures.envoyTLS)
        XCTAssertEqual(tls?.traffic, .tls(serverName: "www.example.com"))
        XCTAssertEqual(tls?.port, 443)
        XCTAssertEqual(tls?.startTime, RFC3339.epochMilliseconds(parsing: "2026-12-01T08:15:02.117Z"))
        let http = read(LearnFixtures.envoyHTTP)
        XCTAssertEqual(http?.traffic, .http(host: "api.example.com"))
        XCTAssertEqual(http?.port, 80)
    }

    func testOtherProgramsLinesAreCountedNotFatal() {
        XCTAssertEqual(skipReason("[2026-12-01 04:00:00.000][info] sluice: config reloaded"), .notJSON)
        XCTAssertEqual(skipReason(#"{"level":"info","msg":"listening","ts":1796000000}"#), .notAccessLog)
        XCTAssertEqual(skipReason(#"{"start_time":5,"downstream_local_address":"192.0.2.1:80"}"#), .notAccessLog,
                       "a field of another type")
        XCTAssertEqual(skipReason("[1, 2, 3]"), .notJSON)
        XCTAssertEqual(skipReason(#"{"a": [1, {"b": 2}]}"#), .notAccessLog)
        XCTAssertNil(reader.read("   "), "blank lines are not lines")
        XCTAssertNil(reader.read(""))
    }

    func testEveryPrefixOfARealLineIsTruncatedNeverACrash() {
        for line in [LearnFixtures.http("aliyun.com", dst: "192.0.2.30:80"), LearnFixtures.envoyTLS] {
            let whole = line.hasSuffix("\n") ? String(line.dropLast()) : line
            let bytes = Array(whole.utf8)
            for cut in 1..<bytes.count {
                let prefix = bytes[0..<cut].withUnsafeBytes { reader.read($0) }
                guard case .failure(let reason)? = prefix else {
                    XCTFail("prefix of \(cut) bytes was read as \(String(describing: prefix))")
                    continue
                }
                XCTAssertEqual(reason, .truncatedJSON, "prefix of \(cut) bytes")
            }
        }
    }

    func testPrefixesThatKubectlAndTheCRIWriteAreIgnored() {
        let line = String(LearnFixtures.http("aliyun.com", dst: "192.0.2.30:80").dropLast())
        for prefix in ["2026-12-01T00:00:00.123456789Z ", "2026-12-01T00:00:00.123456789Z stdout F ", "[pod/web-7d9/sluice] "] {
            XCTAssertEqual(read(prefix + line)?.traffic, .http(host: "aliyun.com"), prefix)
        }
        XCTAssertEqual(read(line + "\r")?.traffic, .http(host: "aliyun.com"), "CRLF")
    }

    // MARK: Streams

    func testSplitterGivesTheSameLinesWhateverTheChunks() {
        let text = "one\ntwo\r\n\nthree-is-longer\nlast-without-newline"
        func lines(chunkSize: Int) -> [String] {
            var splitter = LogLineSplitter()
            var out: [String] = []
            let bytes = Array(text.utf8)
            var start = 0
            while start < bytes.count {
                let end = min(start + chunkSize, bytes.count)
                bytes[start..<end].withUnsafeBytes { splitter.feed($0) { out.append(String(decoding: $0, as: UTF8.self)) } }
                start = end
            }
            splitter.finish { out.append(String(decoding: $0, as: UTF8.self)) }
            return out
        }
        let expected = ["one", "two", "", "three-is-longer", "last-without-newline"]
        for size in [1, 2, 3, 5, 7, 64] { XCTAssertEqual(lines(chunkSize: size), expected, "chunks of \(size)") }
    }

    func testOverlongLinesAreSkippedWithoutBeingHeld() {
        var splitter = LogLineSplitter(maxLineBytes: 16)
        var out: [String] = []
        let huge = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
        splitter.feed(UnsafeRawBufferPointer(start: nil, count: 0)) { _ in XCTFail("no line in nothing") }
        "short\nabc".utf8.withContiguousStorageIfAvailable { splitter.feed(UnsafeRawBufferPointer($0)) { out.append(String(decoding: $0, as: UTF8.self)) } }
        // The rest of the "abc…" line arrives in 64 KiB pieces: a megabyte without a newline.
        for start in stride(from: 0, to: huge.count, by: 65_536) {
            huge[start..<start + 65_536].withUnsafeBytes { splitter.feed($0) { out.append(String(decoding: $0, as: UTF8.self)) } }
            XCTAssertLessThanOrEqual(splitter.heldBytes, 16, "memory for one line stays within the limit")
        }
        "\n0123456789abcdef\n0123456789abcdefg\nok".utf8.withContiguousStorageIfAvailable {
            splitter.feed(UnsafeRawBufferPointer($0)) { out.append(String(decoding: $0, as: UTF8.self)) }
        }
        splitter.finish { out.append(String(decoding: $0, as: UTF8.self)) }
        XCTAssertEqual(out, ["short", "0123456789abcdef", "ok"])
        XCTAssertEqual(splitter.overlongLines, 2)
    }

    /// 40,000 lines (20 MB) over 40 hosts and 10 addresses, fed in odd-sized chunks the way a file
    /// is read: the tally holds 50 destinations, whatever the number of lines. (Peak RSS for
    /// a million lines is measured by Benchmarks/scripts/learn.)
    func testLargeStreamIsTalliedByDestinationNotByLine() {
        var log: [UInt8] = []
        let lines = 40_000
        var learner = AccessLogLearner()
        var fed = 0
        func flush(force: Bool) {
            guard force || log.count > 1_000_003 else { return }
            log.withUnsafeBytes { learner.feed($0) }
            XCTAssertLessThanOrEqual(learner.heldLineBytes, 1 << 20)
            fed += log.count
            log.removeAll(keepingCapacity: true)
        }
        for n in 0..<lines {
            let line: String
            switch n % 4 {
            case 0: line = LearnFixtures.http("host-\(n / 4 % 40).example.com", dst: "192.0.2.30:80", at: LearnFixtures.base + Int64(n))
            case 1: line = LearnFixtures.tls("host-\(n / 4 % 40).example.com", dst: "192.0.2.30:443", at: LearnFixtures.base + Int64(n))
            case 2: line = LearnFixtures.tcp(dst: "198.51.100.\(n / 4 % 10 + 1):5432", at: LearnFixtures.base + Int64(n))
            default: line = n % 1000 == 3 ? "{\"start_time\":\"2026-12-01T00:0" : "plain text from the proxy"
            }
            log.append(contentsOf: line.utf8)
            if line.last != "\n" { log.append(UInt8(ascii: "\n")) }
            flush(force: false)
        }
        flush(force: true)
        learner.endOfStream()
        XCTAssertEqual(learner.lines, lines)
        XCTAssertGreaterThan(fed, 19_000_000, "tens of megabytes, held a megabyte at a time")
        XCTAssertEqual(learner.traffic.learnedLines, 30_000)
        XCTAssertEqual(learner.traffic.destinations.count, 50)
        XCTAssertEqual(learner.skippedLines[.truncatedJSON], 40)
        XCTAssertEqual(learner.skippedLines[.notJSON], 9_960)
        XCTAssertEqual(learner.traffic.firstSeen, LearnFixtures.base)
        XCTAssertEqual(learner.traffic.lastSeen, LearnFixtures.base + Int64(lines - 2))
    }

    func testAHugeLineWithoutNewlineIsSkippedAndTheNextLineLearned() {
        var learner = AccessLogLearner(maxLineBytes: 64 * 1024)
        var chunk = [UInt8](repeating: UInt8(ascii: "{"), count: 1 << 20)
        for _ in 0..<64 {  // 64 MiB of one line
            chunk.withUnsafeBytes { learner.feed($0) }
            XCTAssertLessThanOrEqual(learner.heldLineBytes, 64 * 1024)
        }
        chunk = Array(("\n" + LearnFixtures.tls("after.example.com", dst: "192.0.2.30:443")).utf8)
        chunk.withUnsafeBytes { learner.feed($0) }
        learner.endOfStream()
        XCTAssertEqual(learner.skippedLines, [.overlong: 1])
        XCTAssertEqual(learner.traffic.destinations.keys.first, .host("after.example.com"))
    }

    // MARK: Time

    func testRFC3339ReadsWhatTheWriterWrites() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let ms = Int64.random(in: 0...RFC3339.maxEpochMilliseconds, using: &generator)
            XCTAssertEqual(RFC3339.epochMilliseconds(parsing: RFC3339.string(epochMilliseconds: ms)), ms)
        }
        XCTAssertEqual(RFC3339.epochMilliseconds(parsing: "2026-12-01T01:00:00+01:00"), LearnFixtures.base)
        XCTAssertEqual(RFC3339.epochMilliseconds(parsing: "2026-11-30T19:00:00.000000-05:00"), LearnFixtures.base)
        XCTAssertEqual(RFC3339.epochMilliseconds(parsing: "2026-12-01"), LearnFixtures.base)
        XCTAssertEqual(RFC3339.epochMilliseconds(parsing: "2026-12-01 00:00:00.5Z"), LearnFixtures.base + 500)
        for bad in ["", "2026-13-01", "2026-02-30T00:00:00Z", "2026-12-01T24:00:00Z", "2026-12-01T00:00:00", "2026-12-01T00:00:00.Z",
                    "2026-12-01T00:00:00Zjunk", "yesterday"] {
            XCTAssertNil(RFC3339.epochMilliseconds(parsing: bad), bad)
        }
    }

    func testSinceTakesATimeADateOrAnAge() {
        let now = LearnFixtures.base + 86_400_000
        XCTAssertEqual(LearnSince.parse("2026-12-01T00:00:00Z", now: now), LearnFixtures.base)
        XCTAssertEqual(LearnSince.parse("2026-12-01", now: now), LearnFixtures.base)
        XCTAssertEqual(LearnSince.parse("24h", now: now), LearnFixtures.base)
        XCTAssertEqual(LearnSince.parse("1d", now: now), LearnFixtures.base)
        XCTAssertEqual(LearnSince.parse("23h60m", now: now), LearnFixtures.base)
        XCTAssertNil(LearnSince.parse("24", now: now))
        XCTAssertNil(LearnSince.parse("soon", now: now))
    }
}

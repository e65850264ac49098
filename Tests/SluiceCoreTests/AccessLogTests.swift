import Foundation
import NIOCore
import SluiceCore
import XCTest

/// The access-log record: field set and types of the JSON line, escaping, Envoy's text format,
/// response flags and RFC 3339 timestamps.
final class AccessLogTests: XCTestCase {
    static let stringKeys = [
        "start_time", "method", "path", "protocol", "response_flags", "response_code_details", "upstream_service_time",
        "x_forwarded_for", "user_agent", "request_id", "authority", "upstream_host", "upstream_cluster",
        "upstream_local_address", "downstream_local_address", "downstream_remote_address",
        "requested_server_name", "route_name", "upstream_transport_failure_reason", "trace_id",
        "istio_policy_status", "downstream_peer_uri_san",
    ]
    static let numberKeys = ["response_code", "bytes_received", "bytes_sent", "duration"]

    /// An HTTP request through the gateway with every field set.
    static let full: AccessLogRecord = {
        var record = AccessLogRecord(
        startTime: 1_795_752_616_123,  // 2026-11-27T04:10:16.123Z
        method: "GET",
        path: "/index.html?q=1",
        protocol: "HTTP/1.1",
        responseCode: 200,
        responseFlags: [],
        bytesReceived: 12,
        bytesSent: 5_120,
        duration: 37,
        upstreamServiceTime: 35,
        xForwardedFor: "10.1.2.3",
        userAgent: "curl/7.88.1",
        requestId: "2f0c1a9e-6b7a-4e4c-9a51-1f7a3c2f9e10",
        authority: "aliyun.com",
        upstreamHost: "106.11.172.9:80",
        upstreamCluster: "outbound|80||aliyun.com",
        upstreamLocalAddress: "10.0.0.5:41234",
        downstreamLocalAddress: "106.11.172.9:80",
        downstreamRemoteAddress: "10.0.0.7:53512",
        requestedServerName: "aliyun.com",
        routeName: "allow_any",
        upstreamTransportFailureReason: "none",
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        istioPolicyStatus: "ok"
        )
        record.responseCodeDetails = "via_upstream"
        record.downstreamPeerURISAN = "spiffe://cluster.local/ns/default/sa/sleep"
        return record
    }()

    private func parseJSON(_ line: String, file: StaticString = #filePath, line lineNumber: UInt = #line) throws -> [String: Any] {
        XCTAssertTrue(line.hasSuffix("\n"), "line must end in a newline", file: file, line: lineNumber)
        XCTAssertEqual(line.filter { $0 == "\n" }.count, 1, "exactly one newline", file: file, line: lineNumber)
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try XCTUnwrap(object as? [String: Any], file: file, line: lineNumber)
    }

    // MARK: JSON

    func testJSONHasEveryKeyWithTheRightType() throws {
        let json = try parseJSON(Self.full.jsonLine())
        XCTAssertEqual(Set(json.keys), Set(Self.stringKeys + Self.numberKeys))
        for key in Self.stringKeys {
            XCTAssertTrue(json[key] is String, "\(key) should be a string, is \(String(describing: json[key]))")
        }
        for key in Self.numberKeys {
            XCTAssertTrue(json[key] is NSNumber && !(json[key] is String), "\(key) should be a number")
        }
        XCTAssertEqual(json["start_time"] as? String, "2026-11-27T04:10:16.123Z")
        XCTAssertEqual(json["method"] as? String, "GET")
        XCTAssertEqual(json["path"] as? String, "/index.html?q=1")
        XCTAssertEqual(json["protocol"] as? String, "HTTP/1.1")
        XCTAssertEqual(json["response_code"] as? Int, 200)
        XCTAssertEqual(json["response_flags"] as? String, "-")
        XCTAssertEqual(json["bytes_received"] as? Int, 12)
        XCTAssertEqual(json["bytes_sent"] as? Int, 5_120)
        XCTAssertEqual(json["duration"] as? Int, 37)
        XCTAssertEqual(json["upstream_service_time"] as? String, "35")
        XCTAssertEqual(json["upstream_cluster"] as? String, "outbound|80||aliyun.com")
        XCTAssertEqual(json["downstream_remote_address"] as? String, "10.0.0.7:53512")
        XCTAssertEqual(json["istio_policy_status"] as? String, "ok")
        XCTAssertEqual(json["downstream_peer_uri_san"] as? String, "spiffe://cluster.local/ns/default/sa/sleep")
    }

    func testJSONKeysAreInDesignOrder() {
        let line = Self.full.jsonLine()
        let order = [
            "start_time", "method", "path", "protocol", "response_code", "response_flags", "response_code_details",
            "bytes_received",
            "bytes_sent", "duration", "upstream_service_time", "x_forwarded_for", "user_agent", "request_id",
            "authority", "upstream_host", "upstream_cluster", "upstream_local_address", "downstream_local_address",
            "downstream_remote_address", "requested_server_name", "route_name", "upstream_transport_failure_reason",
            "trace_id", "istio_policy_status", "downstream_peer_uri_san",
        ]
        let positions = order.compactMap { line.range(of: "\"\($0)\":")?.lowerBound }
        XCTAssertEqual(positions.count, order.count)
        XCTAssertEqual(positions, positions.sorted())
    }

    func testDeniedTLSConnectionHasNullsAndZeroes() throws {
        // What the sidecar logs when REGISTRY_ONLY closes a TLS connection.
        let denied = AccessLogRecord(
            startTime: 0,
            responseFlags: .noRouteFound,
            upstreamCluster: "BlackHoleCluster",
            downstreamLocalAddress: "[2001:db8::1]:443",
            downstreamRemoteAddress: "[::1]:40000",
            requestedServerName: "blocked.test",
            routeName: "block_all"
        )
        let line = denied.jsonLine()
        let json = try parseJSON(line)
        XCTAssertEqual(Set(json.keys), Set(Self.stringKeys + Self.numberKeys))
        for key in ["method", "path", "protocol", "upstream_service_time", "x_forwarded_for", "user_agent",
                    "request_id", "authority", "upstream_host", "upstream_local_address",
                    "upstream_transport_failure_reason", "trace_id", "istio_policy_status", "response_code_details",
                    "downstream_peer_uri_san"] {
            XCTAssertTrue(json[key] is NSNull, "\(key) should be null")
        }
        XCTAssertEqual(json["response_code"] as? Int, 0)
        XCTAssertEqual(json["response_flags"] as? String, "NR")
        XCTAssertEqual(json["start_time"] as? String, "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(json["requested_server_name"] as? String, "blocked.test")
        XCTAssertEqual(json["downstream_local_address"] as? String, "[2001:db8::1]:443")
        XCTAssertTrue(line.contains("\"method\":null,"))
        XCTAssertTrue(line.contains("\"upstream_service_time\":null,"))
    }

    func testDefaultRecordIsAllAbsent() throws {
        let json = try parseJSON(AccessLogRecord().jsonLine())
        XCTAssertEqual(json.count, 26)
        XCTAssertEqual(json.values.filter { $0 is NSNull }.count, 26 - 6)  // all but start_time, flags, 4 numbers
    }

    func testHostileStringsAreEscaped() throws {
        let hostile: [String] = [
            "quote\" backslash\\ slash/",
            "line\nbreak\r\nand\ttab",
            "nul\u{0}bell\u{7}esc\u{1B}del\u{7F}",
            "\u{8}\u{C}\u{1F}",
            "\",\"response_code\":999,\"x\":\"",
            "ünïcødé 中文 🚀",
            "separators\u{2028}\u{2029}",
            String(decoding: [0x61, 0xFF, 0xFE, 0xC3, 0x28, 0x62], as: UTF8.self),  // invalid UTF-8 input
            "",
            String(repeating: "\\\"", count: 1000),
        ]
        for value in hostile {
            var record = AccessLogRecord(responseCode: 200)
            record.userAgent = value
            record.path = value
            let line = record.jsonLine()
            XCTAssertFalse(line.dropLast().contains("\n"), "raw newline in \(value.debugDescription)")
            XCTAssertTrue(line.utf8.dropLast().allSatisfy { $0 >= 0x20 && $0 != 0x7F }, "raw control byte")
            let json = try parseJSON(line)
            XCTAssertEqual(json["user_agent"] as? String, value, value.debugDescription)
            XCTAssertEqual(json["path"] as? String, value)
            XCTAssertEqual(json["response_code"] as? Int, 200, "a value must not inject fields")
        }
    }

    func testEscapeSpellings() {
        var record = AccessLogRecord()
        record.method = "a\"b\\c\nd\re\tf\u{8}g\u{C}h\u{0}i\u{1F}j\u{7F}k\u{2028}"
        XCTAssertTrue(
            record.jsonLine().contains(#""method":"a\"b\\c\nd\re\tf\bg\fh\u0000i\u001fj\u007fk\u2028","#),
            record.jsonLine()
        )
    }

    func testNumbersAtTheirLimits() throws {
        let record = AccessLogRecord(
            startTime: -1,
            responseCode: 503,
            bytesReceived: UInt64.max,
            bytesSent: 0,
            duration: Int64.min,
            upstreamServiceTime: 0
        )
        let line = record.jsonLine()
        XCTAssertTrue(line.contains("\"bytes_received\":18446744073709551615,"))
        XCTAssertTrue(line.contains("\"duration\":-9223372036854775808,"))
        XCTAssertTrue(line.contains("\"upstream_service_time\":\"0\","))
        XCTAssertTrue(line.contains("\"start_time\":\"1969-12-31T23:59:59.999Z\""))
        _ = try parseJSON(line)
    }

    func testWorstCaseRecordIsWrittenWhole() throws {
        // Every string at maximal escaping, every number at its widest: the encoders reserve a
        // worst-case bound up front, and a debug build asserts if a line would not fit.
        let worst = String(repeating: "\u{1}", count: 100)
        var record = AccessLogRecord(
            startTime: .min, method: worst, path: worst, protocol: worst, responseCode: .min,
            responseFlags: ResponseFlags(rawValue: .max), bytesReceived: .max, bytesSent: .max,
            duration: .min, upstreamServiceTime: .min, xForwardedFor: worst, userAgent: worst,
            requestId: worst, authority: worst, upstreamHost: worst, upstreamCluster: worst,
            upstreamLocalAddress: worst, downstreamLocalAddress: worst, downstreamRemoteAddress: worst,
            requestedServerName: worst, routeName: worst, upstreamTransportFailureReason: worst,
            traceId: worst, istioPolicyStatus: worst
        )
        record.responseCodeDetails = worst
        record.downstreamPeerURISAN = worst
        let json = try parseJSON(record.jsonLine())
        XCTAssertEqual(json["istio_policy_status"] as? String, worst)
        XCTAssertEqual(json["downstream_peer_uri_san"] as? String, worst)
        XCTAssertEqual(json["response_flags"] as? String, ResponseFlag.allCases.map(\.shortCode).joined(separator: ","))
        let e = String(repeating: #"\u0001"#, count: 100)
        let flags = ResponseFlag.allCases.map(\.shortCode).joined(separator: ",")
        let min = "-9223372036854775808"
        let max = "18446744073709551615"
        XCTAssertEqual(
            record.textLine(),
            "[0000-01-01T00:00:00.000Z] \"\(e) \(e) \(e)\" \(min) \(flags) \(max) \(max) \(min) \(min) "
                + "\"\(e)\" \"\(e)\" \"\(e)\" \"\(e)\" \"\(e)\"\n"
        )
    }

    func testAppendJSONWritesAfterExistingBytes() throws {
        var buffer = ByteBuffer(string: "prefix ")
        Self.full.appendJSON(to: &buffer)
        let text = String(buffer: buffer)
        XCTAssertTrue(text.hasPrefix("prefix {\"start_time\":"))
        XCTAssertTrue(text.hasSuffix("}"))
        XCTAssertEqual(Self.full.line(format: .json), Self.full.jsonLine())
    }

    // MARK: Text

    func testTextGoldenLine() {
        XCTAssertEqual(
            Self.full.textLine(),
            #"[2026-11-27T04:10:16.123Z] "GET /index.html?q=1 HTTP/1.1" 200 - 12 5120 37 35 "10.1.2.3" "curl/7.88.1" "2f0c1a9e-6b7a-4e4c-9a51-1f7a3c2f9e10" "aliyun.com" "106.11.172.9:80""#
                + "\n"
        )
    }

    func testTextGoldenLineForDeniedConnection() {
        let denied = AccessLogRecord(
            startTime: 951_782_400_000,  // 2000-02-29T00:00:00.000Z
            responseFlags: [.noRouteFound, .upstreamConnectionFailure],
            userAgent: ""
        )
        XCTAssertEqual(
            denied.textLine(),
            #"[2000-02-29T00:00:00.000Z] "- - -" 0 UF,NR 0 0 0 - "-" "-" "-" "-" "-""# + "\n"
        )
        XCTAssertEqual(denied.line(format: .text), denied.textLine())
    }

    func testTextEscapesHostileValues() {
        var record = AccessLogRecord()
        record.userAgent = "evil\" \"x\nnext line"
        let line = record.textLine()
        XCTAssertEqual(line.filter { $0 == "\n" }.count, 1)
        XCTAssertTrue(line.contains(#""evil\" \"x\nnext line""#), line)
    }

    // MARK: Response flags

    func testResponseFlagsRenderInEnvoyOrder() {
        XCTAssertEqual(ResponseFlags().envoyString, "-")
        XCTAssertEqual(ResponseFlags.noRouteFound.envoyString, "NR")
        let flags: ResponseFlags = [.dnsResolutionFailed, .upstreamRetryLimitExceeded, .upstreamConnectionFailure, .noHealthyUpstream]
        XCTAssertEqual(flags.envoyString, "UH,UF,URX,DF")
        XCTAssertEqual(flags.flags, [.noHealthyUpstream, .upstreamConnectionFailure, .upstreamRetryLimitExceeded, .dnsResolutionFailed])
        XCTAssertEqual(ResponseFlags(rawValue: UInt32.max).envoyString, ResponseFlag.allCases.map(\.shortCode).joined(separator: ","))
        XCTAssertEqual(ResponseFlags(rawValue: 1 << 31).envoyString, "-")  // a bit with no Envoy code
        XCTAssertEqual("\(ResponseFlags([.downstreamConnectionTermination, .upstreamConnectionTermination]))", "UC,DC")
    }

    func testResponseFlagCodes() {
        let expected = [
            "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC", "URX",
            "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO", "DR",
        ]
        XCTAssertEqual(ResponseFlag.allCases.map(\.shortCode), expected)
        for flag in ResponseFlag.allCases {
            XCTAssertEqual(ResponseFlag(shortCode: flag.shortCode), flag)
            XCTAssertTrue(ResponseFlags(flag).contains(ResponseFlags(flag)))
        }
        XCTAssertNil(ResponseFlag(shortCode: "XX"))
    }

    // MARK: RFC 3339

    func testRFC3339KnownInstants() {
        let cases: [(Int64, String)] = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (86_399_999, "1970-01-01T23:59:59.999Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (-86_400_000, "1969-12-31T00:00:00.000Z"),
            (946_684_800_000, "2000-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),  // 2000 is a leap year (divisible by 400)
            (951_868_800_000, "2000-03-01T00:00:00.000Z"),
            (1_078_012_800_000, "2004-02-29T00:00:00.000Z"),
            (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
            (1_735_689_599_999, "2024-12-31T23:59:59.999Z"),  // 366th day of a leap year
            (1_795_752_616_123, "2026-11-27T04:10:16.123Z"),
            (2_147_483_647_000, "2038-01-19T03:14:07.000Z"),  // 32-bit time_t limit
            (2_147_483_648_000, "2038-01-19T03:14:08.000Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),  // 2100 is not a leap year: Feb 28 → Mar 1
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
            (4_102_444_800_000, "2100-01-01T00:00:00.000Z"),
            (-2_208_988_800_000, "1900-01-01T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
        ]
        for (ms, expected) in cases {
            XCTAssertEqual(RFC3339.string(epochMilliseconds: ms), expected, "\(ms)")
        }
    }

    func testRFC3339ClampsOutOfRange() {
        XCTAssertEqual(RFC3339.string(epochMilliseconds: .max), "9999-12-31T23:59:59.999Z")
        XCTAssertEqual(RFC3339.string(epochMilliseconds: .min), "0000-01-01T00:00:00.000Z")
    }

    func testLinesWrittenWithOneSecondCacheMatchFreshOnes() {
        // A writer's cache of the formatted second must never leak into a line of another
        // second: same second, next second, backwards, before 1970, clamped, and back again.
        let instants: [Int64] = [
            1_795_000_000_123, 1_795_000_000_999, 1_795_000_001_000, 1_795_000_000_001, -1, -1_000, -1_001, 0,
            .max, .min, RFC3339.maxEpochMilliseconds, 1_795_000_000_500, 951_782_400_000, 951_782_399_999,
        ]
        for format in AccessLogFormat.allCases {
            var cache = RFC3339.SecondCache()
            for ms in instants {
                let record = AccessLogRecord(startTime: ms, method: "GET", responseCode: 200)
                var cached = ByteBufferAllocator().buffer(capacity: 0)
                record.appendLine(format: format, to: &cached, timestamps: &cache)
                XCTAssertEqual(String(buffer: cached), record.line(format: format), "\(format) \(ms)")
                XCTAssertTrue(String(buffer: cached).contains(RFC3339.string(epochMilliseconds: ms)), "\(format) \(ms)")
            }
        }
    }

    func testRFC3339AgreesWithFoundationOverManyDays() {
        // Cross-check the arithmetic against Foundation's calendar for one instant per ~5 days
        // from 1900 to 2200, at an odd time of day.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var ms: Int64 = -2_208_988_800_000 + 45_296_789  // 1900-01-01T12:34:56.789Z
        while ms < 7_258_118_400_000 {
            let date = Date(timeIntervalSince1970: Double(ms) / 1000)
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
            let expected = RFC3339.Components(
                year: c.year!, month: c.month!, day: c.day!, hour: c.hour!, minute: c.minute!, second: c.second!,
                millisecond: Int(((ms % 1000) + 1000) % 1000)
            )
            XCTAssertEqual(RFC3339.components(epochMilliseconds: ms), expected, "\(ms)")
            ms += 5 * 86_400_000 + 3_600_001
        }
    }

    func testAccessLogFormatRawValues() {
        XCTAssertEqual(AccessLogFormat(rawValue: "json"), .json)
        XCTAssertEqual(AccessLogFormat(rawValue: "text"), .text)
        XCTAssertNil(AccessLogFormat(rawValue: "xml"))
    }
}

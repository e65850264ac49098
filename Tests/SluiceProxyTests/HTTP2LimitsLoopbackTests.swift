import NIOCore
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// Hostile HTTP/2 clients against the sidecar, with hand-built frames (RFC 9113 §4.1 layout):
/// each flood ends in GOAWAY and a closed connection, and nothing reaches an origin.
final class HTTP2LimitsLoopbackTests: XCTestCase {
    private let registryOnly = "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"

    /// One frame: 24-bit length, type, flags, 31-bit stream id, payload.
    private func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), type, flags]
            + [UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    private let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private var settings: [UInt8] { frame(type: 0x4) }

    /// HPACK: :method GET, :scheme http, :path / (static indices 2, 6, 4) and a literal
    /// :authority (static name index 1, not indexed).
    private func requestBlock(authority: String) -> [UInt8] {
        [0x82, 0x86, 0x84, 0x01, UInt8(authority.utf8.count)] + Array(authority.utf8)
    }

    /// The error code of the GOAWAY in `reply` (the server's frames), if there is one.
    private func goAwayCode(_ reply: [UInt8]) -> UInt32? {
        var index = 0
        while index + 9 <= reply.count {
            let length = Int(reply[index]) << 16 | Int(reply[index + 1]) << 8 | Int(reply[index + 2])
            let type = reply[index + 3]
            let payload = index + 9
            if type == 0x7, payload + 8 <= reply.count {
                return reply[(payload + 4)..<(payload + 8)].reduce(0) { $0 << 8 | UInt32($1) }
            }
            index = payload + length
        }
        return nil
    }

    private func sidecar(_ net: Loopback) throws -> SocketAddress {
        let origin = try net.startHTTP2Origin()
        return try net.startSidecar(config: registryOnly, registry: "", originalDestination: origin)
    }

    private let enhanceYourCalm: UInt32 = 0xb

    func testRapidResetIsAnsweredWithEnhanceYourCalm() throws {
        let net = Loopback()
        let proxy = try sidecar(net)
        var bytes = preface + settings
        for i in 0..<300 {
            let stream = UInt32(2 * i + 1)
            bytes += frame(type: 0x1, flags: 0x4, stream: stream, requestBlock(authority: "evil.test"))  // HEADERS, END_HEADERS
            bytes += frame(type: 0x3, stream: stream, [0, 0, 0, 0x8])  // RST_STREAM CANCEL
        }
        let reply = try net.exchange(bytes, with: proxy)
        XCTAssertEqual(goAwayCode(reply), enhanceYourCalm)
    }

    func testPingFloodIsAnsweredWithEnhanceYourCalm() throws {
        let net = Loopback()
        let proxy = try sidecar(net)
        var bytes = preface + settings
        for i in 0..<400 { bytes += frame(type: 0x6, [0, 0, 0, 0, 0, 0, UInt8(i >> 8), UInt8(i & 0xff)]) }
        XCTAssertEqual(goAwayCode(try net.exchange(bytes, with: proxy)), enhanceYourCalm)
    }

    func testSettingsFloodIsAnsweredWithEnhanceYourCalm() throws {
        let net = Loopback()
        let proxy = try sidecar(net)
        var bytes = preface
        for _ in 0..<400 { bytes += settings }
        XCTAssertEqual(goAwayCode(try net.exchange(bytes, with: proxy)), enhanceYourCalm)
    }

    func testContinuationFloodClosesTheConnection() throws {
        let net = Loopback()
        let proxy = try sidecar(net)
        var bytes = preface + settings + frame(type: 0x1, stream: 1, requestBlock(authority: "evil.test"))  // no END_HEADERS
        // Each CONTINUATION adds one small literal header, never ending the block.
        for _ in 0..<50 { bytes += frame(type: 0x9, stream: 1, [0x00, 0x01, 0x61, 0x01, 0x62]) }
        let reply = try net.exchange(bytes, with: proxy)
        XCTAssertNotNil(goAwayCode(reply), "GOAWAY before the header block ever ends")
    }

    func testEmptyDataFloodClosesTheConnection() throws {
        let net = Loopback()
        let proxy = try sidecar(net)
        var bytes = preface + settings
        bytes += frame(type: 0x1, flags: 0x4, stream: 1, requestBlock(authority: "evil.test"))
        for _ in 0..<50 { bytes += frame(type: 0x0, stream: 1) }  // empty DATA, no END_STREAM
        XCTAssertNotNil(goAwayCode(try net.exchange(bytes, with: proxy)))
    }

    func testWindowOverflowIsAFlowControlError() throws {
        let net = Loopback()
        let proxy = try sidecar(net)
        let increment: [UInt8] = [0x7f, 0xff, 0xff, 0xff]
        let bytes = preface + settings + frame(type: 0x8, increment) + frame(type: 0x8, increment)
        XCTAssertEqual(goAwayCode(try net.exchange(bytes, with: proxy)), 0x3)  // FLOW_CONTROL_ERROR
    }

    private func registeredSidecar(_ net: Loopback) throws -> (proxy: SocketAddress, authority: String) {
        let origin = try net.startHTTP2Origin()
        let registry = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: api}
            spec:
              hosts: [api.example.test]
              ports: [{number: \(origin.port!), name: h2, protocol: HTTP2}]
              resolution: STATIC
              endpoints: [{address: 127.0.0.1}]
            """
        let proxy = try net.startSidecar(config: registryOnly, registry: registry, originalDestination: origin)
        return (proxy, "api.example.test:\(origin.port!)")
    }

    func testHeaderListOverTheHeadLimitIsRefusedAndSmallerOnesPass() throws {
        let net = Loopback()
        let (proxy, authority) = try registeredSidecar(net)
        let client = try net.h2Client(to: proxy)
        // One ordinary request first (the client has then acknowledged our SETTINGS, RFC 9113
        // §6.5.3; Sluice's decoder holds the 64 KiB bound from the start either way).
        XCTAssertEqual(try client.request(authority: authority).status, 200)
        // The test client (NIOHTTP2) sends no CONTINUATION, so a block must fit one 16 KiB
        // frame: one 3000-byte value repeated is indexed by HPACK and costs a byte a repeat on
        // the wire, while the decoded list (name + value + 32 per field, RFC 9113 §6.5.2) grows by 3037.
        let value = String(repeating: "v", count: 3000)
        let fits = try client.request(authority: authority, extra: Array(repeating: ("x-big", value), count: 16))  // ≈ 48 KiB
        XCTAssertEqual(fits.status, 200, "\(fits)")
        let tooBig = client.start(authority: authority, extra: Array(repeating: ("x-big", value), count: 30))  // ≈ 89 KiB
        let response = try? tooBig.wait()
        XCTAssertNil(response?.status, "no response to a header list over 64 KiB")
    }

    func testConcurrentStreamsAreBoundedBySettings() throws {
        let net = Loopback()
        let (proxy, authority) = try registeredSidecar(net)
        // HEADERS without END_STREAM keep each stream open (the origin answers at the end
        // of the request): past 100 the server refuses.
        var bytes = preface + settings
        for i in 0..<120 {
            let block = [0x83, 0x86, 0x84, 0x01, UInt8(authority.utf8.count)] + Array(authority.utf8)  // POST
            bytes += frame(type: 0x1, flags: 0x4, stream: UInt32(2 * i + 1), block)
        }
        let reply = try net.exchange(bytes, with: proxy, timeout: .seconds(1))
        // Count the refusals: RST_STREAM REFUSED_STREAM (7), or a GOAWAY.
        var refused = 0
        var index = 0
        while index + 9 <= reply.count {
            let length = Int(reply[index]) << 16 | Int(reply[index + 1]) << 8 | Int(reply[index + 2])
            if reply[index + 3] == 0x3, index + 13 <= reply.count, reply[index + 12] == 0x7 { refused += 1 }
            index += 9 + length
        }
        XCTAssertTrue(refused >= 20 || goAwayCode(reply) != nil, "\(refused) streams past the limit refused")
    }
}

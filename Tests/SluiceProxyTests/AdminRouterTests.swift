import NIOCore
import NIOHTTP1
import NIOPosix
import XCTest

@testable import SluiceProxy

/// The shared router and HTTP plumbing of the admin, stats and health servers.
final class AdminRouterTests: XCTestCase {
    private let router = AdminRouter([
        AdminRoute("/a", summary: "route a") { _ in .text("a") },
        AdminRoute("/b", methods: [.POST], summary: "route b") { _ in .text("b") },
    ])

    private func status(_ method: HTTPMethod, _ uri: String) -> HTTPResponseStatus? {
        switch router.resolve(AdminRequest(method: method, uri: uri)) {
        case .respond(let response): return response.status
        case .route(let route): return route.handler(AdminRequest(method: method, uri: uri)).status
        }
    }

    func testRoutesByExactPathAndMethod() {
        XCTAssertEqual(status(.GET, "/a"), .ok)
        XCTAssertEqual(status(.HEAD, "/a"), .ok)
        XCTAssertEqual(status(.GET, "/a?x=1"), .ok)
        XCTAssertEqual(status(.POST, "/b"), .ok)
        XCTAssertEqual(status(.GET, "/b"), .methodNotAllowed)
        XCTAssertEqual(status(.POST, "/a"), .methodNotAllowed)
        XCTAssertEqual(status(.GET, "/a/"), .notFound)
        XCTAssertEqual(status(.GET, "/nope"), .notFound)
        XCTAssertEqual(status(.DELETE, "/a"), .methodNotAllowed)
        XCTAssertEqual(status(.RAW(value: "BREW"), "/nope"), .methodNotAllowed)
    }

    func testMethodNotAllowedSaysWhatIs() {
        guard case .respond(let response) = router.resolve(AdminRequest(method: .POST, uri: "/a")) else {
            return XCTFail("expected an immediate answer")
        }
        XCTAssertEqual(response.headers.first { $0.0 == "Allow" }?.1, "GET, HEAD")
    }

    func testQueryParsing() {
        let request = AdminRequest(method: .GET, uri: "/logging?level=debug&x=a%20b+c&flag&level=info")
        XCTAssertEqual(request.path, "/logging")
        XCTAssertEqual(request.query["level"], "info")
        XCTAssertEqual(request.query["x"], "a b c")
        XCTAssertEqual(request.query["flag"], "")
        XCTAssertEqual(AdminRequest(method: .GET, uri: "/p?bad=%zz").query["bad"], "%zz")
        XCTAssertEqual(AdminRequest(method: .GET, uri: "/p?").query, [:])
    }

    func testListingNamesEveryRoute() {
        XCTAssertEqual(router.listing(), "admin commands are:\n  /a: route a\n  /b: route b\n")
    }

    func testServerAnswersAndClosesAndBoundsBodies() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await AdminHTTPServer.bind("admin", host: "127.0.0.1", port: 0, group: group, router: router)
        let address = try XCTUnwrap(channel.localAddress)

        let ok = try await AdminTestClient.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n", to: address, group: group)
        XCTAssertEqual(ok.status, 200)
        XCTAssertEqual(ok.body, "a\n")
        XCTAssertEqual(ok.headers["connection"], "close")
        XCTAssertEqual(ok.headers["content-length"], "2")

        let head = try await AdminTestClient.send("HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n", to: address, group: group)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.body, "")

        let large = String(repeating: "x", count: AdminHTTPServer.maxBodyBytes + 1)
        let tooLarge = try await AdminTestClient.send(
            "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: \(large.utf8.count)\r\n\r\n\(large)", to: address, group: group)
        XCTAssertEqual(tooLarge.status, 413)

        let garbage = try await AdminTestClient.send("NOT HTTP\r\n\r\n", to: address, group: group)
        XCTAssertEqual(garbage.status, 400)

        // Only one answer per connection, even when two requests arrive together.
        let pipelined = try await AdminTestClient.send(
            "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n", to: address, group: group)
        XCTAssertEqual(pipelined.raw.components(separatedBy: "HTTP/1.1 200").count, 2, pipelined.raw)

        try await channel.close()
        try await group.shutdownGracefully()
    }

    func testSilentConnectionsAreClosedAtTheDeadline() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await AdminHTTPServer.bind(
            "admin", host: "127.0.0.1", port: 0, group: group, router: router, connectionDeadline: .milliseconds(100))
        let started = ContinuousClock.now
        // Half a request and then nothing: the server gives up and closes, no answer.
        let answer = try await AdminTestClient.send("GET /a HTTP/1.1\r\n", to: try XCTUnwrap(channel.localAddress), group: group)
        XCTAssertEqual(answer.raw, "")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(4))
        try await channel.close()
        try await group.shutdownGracefully()
    }

    func testOffloadedRoutesAnswerToo() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let slow = AdminRouter([AdminRoute("/slow", summary: "off the loop", offload: true) { _ in .text("done") }])
        let channel = try await AdminHTTPServer.bind("admin", host: "127.0.0.1", port: 0, group: group, router: slow)
        let answer = try await AdminTestClient.send("GET /slow HTTP/1.0\r\n\r\n", to: try XCTUnwrap(channel.localAddress), group: group)
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.body, "done\n")
        XCTAssertTrue(answer.raw.hasPrefix("HTTP/1.0 200"), answer.raw)
        try await channel.close()
        try await group.shutdownGracefully()
    }
}

/// A raw HTTP client for these tests: sends bytes, reads until the server closes.
enum AdminTestClient {
    /// A parsed answer.
    struct Answer {
        var raw: String
        var status: Int
        /// Lower-cased names.
        var headers: [String: String]
        var body: String
    }

    static func get(_ path: String, method: String = "GET", from address: SocketAddress, group: any EventLoopGroup) async throws -> Answer {
        try await send("\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n", to: address, group: group)
    }

    static func send(_ request: String, to address: SocketAddress, group: any EventLoopGroup) async throws -> Answer {
        let loop = group.next()
        let done = loop.makePromise(of: ByteBuffer.self)
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(done: done))
                }
            }
            .connect(to: address)
            .get()
        let timeout = loop.scheduleTask(in: .seconds(5)) {
            done.fail(ChannelError.connectTimeout(.seconds(5)))
            channel.close(promise: nil)
        }
        try await channel.writeAndFlush(channel.allocator.buffer(string: request))
        let bytes = try await done.futureResult.get()
        timeout.cancel()
        let raw = String(buffer: bytes)
        let parts = raw.components(separatedBy: "\r\n\r\n")
        let lines = parts[0].components(separatedBy: "\r\n")
        let status = lines.first.flatMap { line in line.split(separator: " ").dropFirst().first.flatMap { Int($0) } } ?? -1
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Answer(raw: raw, status: status, headers: headers, body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private let done: EventLoopPromise<ByteBuffer>
        private var received = ByteBuffer()

        init(done: EventLoopPromise<ByteBuffer>) {
            self.done = done
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var chunk = unwrapInboundIn(data)
            received.writeBuffer(&chunk)
        }

        func channelInactive(context: ChannelHandlerContext) {
            done.succeed(received)
        }
    }
}

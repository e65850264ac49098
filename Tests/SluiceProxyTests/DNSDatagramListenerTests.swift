import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceCore
import XCTest

@testable import SluiceProxy

/// The DNS proxy's UDP listener over loopback: its hit thread answers from the cache, misses
/// go through the forwarder's long-lived upstream socket to a resolver in this process
/// (TestResolver), and stop() returns with queries in flight.
final class DNSDatagramListenerTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup?
    private var listeners: [DNSDatagramListener] = []
    private var resolver: TestResolver?

    override func tearDown() {
        for listener in listeners { listener.stop() }
        try? resolver?.channel.close().wait()
        try? group?.syncShutdownGracefully()
        for listener in listeners { listener.close() }
        listeners = []
        super.tearDown()
    }

    /// A started listener on 127.0.0.1 (an ephemeral port), forwarding to a TestResolver.
    private func start(mode: String = "ALLOW_ANY", registry: String = "", timeout: TimeAmount = .seconds(2)) throws -> (DNSDatagramListener, TestResolver, DNSResponder) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        let resolver = try TestResolver(group: group)
        self.resolver = resolver
        let loaded = RegistryLoader.parse(yaml: registry, path: "/test/registry.yaml")
        let snapshot = SluiceSnapshot(
            config: try SluiceConfig.parse(yaml: "outboundTrafficPolicy: {mode: \(mode)}\n", path: "/t/s.yaml").get(),
            entries: loaded.entries)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let runtime = ProxyRuntime(role: .sidecar, config: ActiveConfig(snapshot: snapshot, role: .sidecar), accessLog: nil, logger: logger)
        let responder = DNSResponder(
            runtime: runtime, book: LearnedAddressBook(), upstreams: [try XCTUnwrap(IPAddress("127.0.0.1"))],
            upstreamPort: resolver.port, timeout: timeout)
        let listener = try DNSDatagramListener(host: "127.0.0.1", port: 0, responder: responder, loop: group.next(), logger: logger)
        listeners.append(listener)
        listener.start()
        return (listener, resolver, responder)
    }

    func testAMissIsForwardedAndTheSameQueryIsThenAHit() throws {
        let (listener, resolver, _) = try start()
        let client = try TestDNSClient(to: listener.address)
        defer { client.close() }
        for id in [UInt16(0x1111), 0x2222] {
            try client.send(try query("api.example.com", id: id))
            let reply = try DNSMessage.parse(try client.receive())
            XCTAssertEqual(reply.id, id)
            XCTAssertEqual(reply.answers.map(\.data), [.address(try XCTUnwrap(IPAddress("192.0.2.10")))])
        }
        XCTAssertEqual(resolver.queriesSeen, 1, "the second answer came from the cache")
    }

    func testHitsAreAnsweredWhileTheForwarderWaits() throws {
        let (listener, resolver, _) = try start()
        let client = try TestDNSClient(to: listener.address)
        defer { client.close() }
        try client.send(try query("cached.example.com", id: 1))
        _ = try client.receive()
        resolver.hold(true)
        try client.send(try query("slow.example.com", id: 2))
        resolver.waitForHeld(1)
        try client.send(try query("cached.example.com", id: 3))
        XCTAssertEqual(try DNSMessage.parse(try client.receive()).id, 3, "the hit, while the miss is still upstream")
        resolver.hold(false)
        let late = try DNSMessage.parse(try client.receive())
        XCTAssertEqual(late.id, 2)
        XCTAssertEqual(late.questions.first?.name, "slow.example.com")
    }

    func testASpoofedAnswerIsDroppedAndTheRealOneTaken() throws {
        let (listener, resolver, _) = try start()
        resolver.spoofFirst(true)
        let client = try TestDNSClient(to: listener.address)
        defer { client.close() }
        try client.send(try query("api.example.com", id: 7))
        let reply = try DNSMessage.parse(try client.receive())
        XCTAssertEqual(reply.id, 7)
        XCTAssertEqual(reply.answers.map(\.data), [.address(try XCTUnwrap(IPAddress("192.0.2.10")))], "not the spoofed 203.0.113.66")
    }

    func testRegistryOnlyStillRefusesOnTheUDPPath() throws {
        let registry = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: api}
            spec:
              hosts: [api.example.com]
              ports: [{number: 443, name: tls, protocol: TLS}]
              resolution: DNS
            """
        let (listener, resolver, _) = try start(mode: "REGISTRY_ONLY", registry: registry)
        let client = try TestDNSClient(to: listener.address)
        defer { client.close() }
        try client.send(try query("exfil.attacker.test", id: 9))
        XCTAssertEqual(try DNSMessage.parse(try client.receive()).rcode, .nameError)
        try client.send(try query("api.example.com", id: 10))
        XCTAssertEqual(try DNSMessage.parse(try client.receive()).rcode, .noError)
        XCTAssertEqual(resolver.queriesSeen, 1, "only the registered name went upstream")
    }

    func testStopReturnsWithQueriesInFlightAndWithoutEverStarting() throws {
        let (listener, resolver, responder) = try start()
        resolver.hold(true)
        let client = try TestDNSClient(to: listener.address)
        defer { client.close() }
        try client.send(try query("slow.example.com", id: 1))
        resolver.waitForHeld(1)
        let stopped = expectation(description: "stop() returned")
        DispatchQueue.global().async {
            listener.stop()
            stopped.fulfill()
        }
        // Generous: stop() either returns at once or never (a reader left blocked).
        wait(for: [stopped], timeout: 30)

        let idle = try DNSDatagramListener(
            host: "127.0.0.1", port: 0, responder: responder, loop: try XCTUnwrap(group).next(), logger: Logger(label: "test"))
        idle.stop()
        idle.close()
    }

    private func query(_ name: String, id: UInt16) throws -> [UInt8] {
        try DNSMessage(id: id, flags: 0x0100, questions: [DNSQuestion(name: name, type: .a)]).serialized()
    }
}

/// A resolver on 127.0.0.1: answers every A query with 192.0.2.10 (TTL 60); can hold its
/// answers until released, and send two forged answers (203.0.113.66: one with another id,
/// one with the query's id and another question) before each.
final class TestResolver: @unchecked Sendable {
    let channel: any Channel
    let port: Int
    private let state = NIOLockedValueBox((seen: 0, hold: false, spoof: false, held: [AddressedEnvelope<ByteBuffer>](), ports: [Int]()))
    private let heldCount = ConditionLock<Int>(value: 0)

    init(group: any EventLoopGroup) throws {
        let box = NIOLockedValueBox<TestResolver?>(nil)
        channel = try DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Handler(box)) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress?.port ?? 0
        box.withLockedValue { $0 = self }
    }

    var queriesSeen: Int { state.withLockedValue { $0.seen } }

    /// The source port of every query seen, in order.
    var sourcePorts: [Int] { state.withLockedValue { $0.ports } }

    func spoofFirst(_ on: Bool) { state.withLockedValue { $0.spoof = on } }

    /// Holds answers from now on, or sends those held.
    func hold(_ on: Bool) {
        let release = state.withLockedValue { state -> [AddressedEnvelope<ByteBuffer>] in
            state.hold = on
            defer { if !on { state.held = [] } }
            return on ? [] : state.held
        }
        for query in release { answer(query) }
    }

    /// Waits until `count` queries are held.
    func waitForHeld(_ count: Int) {
        heldCount.lock(whenValue: count)
        heldCount.unlock()
    }

    fileprivate func received(_ envelope: AddressedEnvelope<ByteBuffer>) {
        let holding = state.withLockedValue { state -> Int? in
            state.seen += 1
            state.ports.append(envelope.remoteAddress.port ?? 0)
            guard state.hold else { return nil }
            state.held.append(envelope)
            return state.held.count
        }
        if let holding {
            heldCount.lock()
            heldCount.unlock(withValue: holding)
            return
        }
        answer(envelope)
    }

    private func answer(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard let query = try? DNSMessage.parse(Array(envelope.data.readableBytesView)),
              let real = IPAddress("192.0.2.10"), let fake = IPAddress("203.0.113.66")
        else { return }
        let name = query.questions.first?.name ?? ""
        if state.withLockedValue({ $0.spoof }) {
            // A guessed id, then the right id with another question: both must be dropped.
            var spoofed = query.response(rcode: .noError, answers: [DNSRecord(name: name, ttl: 60, data: .address(fake))])
            spoofed.id &+= 1
            send(spoofed, to: envelope.remoteAddress)
            let other = DNSMessage(id: query.id, flags: query.flags, questions: [DNSQuestion(name: "evil.example.com", type: .a)])
            send(other.response(rcode: .noError, answers: [DNSRecord(name: "evil.example.com", ttl: 60, data: .address(fake))]), to: envelope.remoteAddress)
        }
        send(query.response(rcode: .noError, answers: [DNSRecord(name: name, ttl: 60, data: .address(real))]), to: envelope.remoteAddress)
    }

    private func send(_ message: DNSMessage, to address: SocketAddress) {
        guard let bytes = try? message.serialized() else { return }
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: bytes)), promise: nil)
    }

    private final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let resolver: NIOLockedValueBox<TestResolver?>
        init(_ resolver: NIOLockedValueBox<TestResolver?>) { self.resolver = resolver }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            resolver.withLockedValue { $0 }?.received(unwrapInboundIn(data))
        }
    }
}

/// A blocking UDP client socket (5 s receive timeout: a lost answer fails the test, not hangs it).
final class TestDNSClient {
    let fd: Int32
    let server: SocketAddress

    init(to server: SocketAddress) throws {
        self.server = server
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw DNSSocketError(call: "socket", errno: errno) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ bytes: [UInt8]) throws {
        let sent = bytes.withUnsafeBytes { raw in server.withSockAddr { sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t($1)) } }
        guard sent == bytes.count else { throw DNSSocketError(call: "sendto", errno: errno) }
    }

    func receive() throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { throw DNSSocketError(call: "recv", errno: errno) }
        return Array(buffer.prefix(count))
    }

    func close() { _ = Glibc.close(fd) }
}

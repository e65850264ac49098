import Foundation
import NIOCore
import NIOPosix
import SluiceCore
import XCTest

@testable import SluiceProxy

/// The forwarder's socket to one resolver over loopback (TestResolver): a source port carries
/// a bounded number of queries, a retired socket still takes the answers to its queries, and
/// its close later does not touch the socket in use.
final class DNSUpstreamSocketTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup?
    private var resolver: TestResolver?

    override func tearDown() {
        try? resolver?.channel.close().wait()
        try? group?.syncShutdownGracefully()
        super.tearDown()
    }

    private func start(queriesPerPort: Int, timeout: TimeAmount) throws -> (DNSUpstreamSocket, TestResolver) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        let resolver = try TestResolver(group: group)
        self.resolver = resolver
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: resolver.port)
        let socket = DNSUpstreamSocket(to: address, timeout: timeout, on: group.next(), metrics: nil, queriesPerPort: queriesPerPort)
        return (socket, resolver)
    }

    /// The socket is loop-bound; the test hands it to its loop.
    private struct UncheckedBox: @unchecked Sendable {
        let value: DNSUpstreamSocket
        init(_ value: DNSUpstreamSocket) { self.value = value }
    }

    private func send(_ socket: DNSUpstreamSocket, id: UInt16) throws -> EventLoopFuture<[UInt8]> {
        let query = try DNSMessage(id: id, flags: 0x0100, questions: [DNSQuestion(name: "api.example.com", type: .a)]).serialized()
        let box = UncheckedBox(socket)
        return socket.loop.flatSubmit { box.value.send(query) }
    }

    func testEachSourcePortCarriesABoundedNumberOfQueries() throws {
        let (socket, resolver) = try start(queriesPerPort: 4, timeout: .seconds(2))
        for id in UInt16(1)...12 {
            let answer = try DNSMessage.parse(try send(socket, id: id).wait())
            XCTAssertEqual(answer.id, id, "the app's id is put back")
        }
        let ports = resolver.sourcePorts
        XCTAssertEqual(ports.count, 12)
        for start in stride(from: 0, to: 12, by: 4) {
            XCTAssertEqual(Set(ports[start..<start + 4]).count, 1, "queries \(start + 1)–\(start + 4) share a socket: \(ports)")
        }
        XCTAssertEqual(Set([ports[0], ports[4], ports[8]]).count, 3, "every fourth query takes a new port: \(ports)")
    }

    func testARetiredSocketStillTakesItsAnswersAndItsCloseLeavesTheNewOne() throws {
        let (socket, resolver) = try start(queriesPerPort: 2, timeout: .milliseconds(300))
        resolver.hold(true)
        let held = try (UInt16(1)...3).map { try send(socket, id: $0) }
        resolver.waitForHeld(3)
        resolver.hold(false)
        for (index, future) in held.enumerated() {
            XCTAssertEqual(try DNSMessage.parse(try future.wait()).id, UInt16(index + 1))
        }
        var ports = resolver.sourcePorts
        XCTAssertEqual(ports[0], ports[1])
        XCTAssertNotEqual(ports[1], ports[2], "the third query left on a new socket")
        // The retired socket closes one timeout after the rotation; the socket in use stays.
        Thread.sleep(forTimeInterval: 0.6)
        XCTAssertEqual(try DNSMessage.parse(try send(socket, id: 4).wait()).id, 4)
        ports = resolver.sourcePorts
        XCTAssertEqual(ports[3], ports[2], "the retired socket's close did not drop the socket in use: \(ports)")
    }
}

import NIOCore
import NIOPosix
import XCTest

@testable import SluiceProxy

/// A port that cannot be bound is reported with the listener's name and address, so the
/// operator knows which port is taken.
final class ListenerBindErrorTests: XCTestCase {
    func testATakenPortIsNamedWithItsListenerAndTheSystemsReason() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let holder = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = try XCTUnwrap(holder.localAddress?.port)
        do {
            _ = try await ListenerBindError.naming("outbound", host: "127.0.0.1", port: port) {
                try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: port).get()
            }
            XCTFail("binding a taken port succeeded")
        } catch let error as ListenerBindError {
            XCTAssertEqual(error.description, "cannot listen on 127.0.0.1:\(port) (outbound): Address already in use")
        }
        try await holder.close()
        try await group.shutdownGracefully()
    }

    func testTheHealthListenerNamesItselfWhenItsPortIsTaken() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let holder = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = try XCTUnwrap(holder.localAddress?.port)
        do {
            _ = try await HealthServer.bind(host: "127.0.0.1", port: port, group: group, readiness: Readiness())
            XCTFail("binding a taken port succeeded")
        } catch let error as ListenerBindError {
            XCTAssertEqual(error.description, "cannot listen on 127.0.0.1:\(port) (health): Address already in use")
        }
        try await holder.close()
        try await group.shutdownGracefully()
    }

    func testAnIPv6HostIsBracketedAndOtherErrorsKeepTheirText() {
        struct Odd: Error, CustomStringConvertible { var description: String { "odd failure" } }
        let error = ListenerBindError(listener: "gateway TLS", host: "::1", port: 443, error: Odd())
        XCTAssertEqual(error.description, "cannot listen on [::1]:443 (gateway TLS): odd failure")
    }
}

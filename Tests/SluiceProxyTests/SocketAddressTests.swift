import NIOCore
import SluiceCore
import XCTest

@testable import SluiceProxy

/// Socket addresses as the policy and the access log see them.
final class SocketAddressTests: XCTestCase {
    func testRegistryAddressIsReadFromTheSocketAddressBytes() throws {
        for text in ["192.0.2.1", "127.0.0.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::1", "::ffff:192.0.2.1", "fe80::1:2:3:4"] {
            let address = try SocketAddress(ipAddress: text, port: 80)
            XCTAssertEqual(address.sluiceIPAddress, IPAddress(text), text)
        }
        XCTAssertEqual(try SocketAddress(ipAddress: "192.0.2.1", port: 80).sluiceIPAddress, .v4(0xC000_0201))
    }

    func testLogDescriptionBracketsIPv6() throws {
        XCTAssertEqual(try SocketAddress(ipAddress: "192.0.2.1", port: 8080).logDescription, "192.0.2.1:8080")
        XCTAssertEqual(try SocketAddress(ipAddress: "2001:db8::1", port: 443).logDescription, "[2001:db8::1]:443")
    }

    /// The text is formatted from the bytes, not by glibc's `inet_ntop` (NIO's `ipAddress`):
    /// both must read the same for every form an accepted connection's address can take.
    func testLogDescriptionReadsAsInetNtop() throws {
        for text in [
            "10.1.2.3", "0.0.0.0", "255.255.255.255", "127.0.0.6", "::", "::1", "2001:db8::1",
            "2001:db8:0:0:1:0:0:1", "2001:db8:0:1:1:1:1:1", "fe80::abc", "1::", "::ffff:10.0.0.1",
            "2001:db8:85a3::8a2e:370:7334", "1:0:0:2:0:0:0:3",
        ] {
            for port in [0, 80, 15001, 65535] {
                let address = try SocketAddress(ipAddress: text, port: port)
                let ntop = try XCTUnwrap(address.ipAddress)
                let expected = text.contains(":") ? "[\(ntop)]:\(port)" : "\(ntop):\(port)"
                XCTAssertEqual(address.logDescription, expected, text)
            }
        }
        XCTAssertEqual(try SocketAddress(unixDomainSocketPath: "/tmp/sluice.sock").logDescription, "-")
    }

    func testHostPortDescription() {
        XCTAssertEqual(HostPort(host: "2001:db8::1", port: 443).description, "[2001:db8::1]:443")
        XCTAssertEqual(HostPort(host: "aliyun.com", port: 80).description, "aliyun.com:80")
    }
}

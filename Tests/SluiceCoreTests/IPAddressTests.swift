import SluiceCore
import XCTest

final class IPAddressTests: XCTestCase {
    func testParsesDottedQuad() {
        XCTAssertEqual(IPAddress("192.0.2.1"), .v4(0xC000_0201))
        XCTAssertEqual(IPAddress("0.0.0.0"), .v4(0))
        XCTAssertEqual(IPAddress("255.255.255.255"), .v4(.max))
        XCTAssertEqual(IPAddress("10.0.0.1")?.description, "10.0.0.1")
    }

    func testRejectsAmbiguousOrMalformedIPv4() {
        for text in [
            "", "1", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.-4", "01.2.3.4", "1.2.3.04", "00.0.0.0",
            "1..2.3", ".1.2.3", "1.2.3.", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4/32", "0x1.2.3.4", "1.2.3.1000", "١.٢.٣.٤",
        ] {
            XCTAssertNil(IPAddress(text), "\(text) must be rejected")
        }
    }

    func testParsesIPv6Forms() {
        XCTAssertEqual(IPAddress("::"), .v6(0, 0))
        XCTAssertEqual(IPAddress("::1"), .v6(0, 1))
        XCTAssertEqual(IPAddress("2001:db8::1"), .v6(0x2001_0DB8_0000_0000, 1))
        XCTAssertEqual(IPAddress("2001:DB8:0:0:0:0:0:1"), .v6(0x2001_0DB8_0000_0000, 1))
        XCTAssertEqual(IPAddress("1::"), .v6(0x0001_0000_0000_0000, 0))
        XCTAssertEqual(IPAddress("1:2:3:4:5:6:7:8"), .v6(0x0001_0002_0003_0004, 0x0005_0006_0007_0008))
        XCTAssertEqual(IPAddress("1:2:3:4:5:6::8"), .v6(0x0001_0002_0003_0004, 0x0005_0006_0000_0008))
        XCTAssertEqual(IPAddress("::ffff:192.0.2.1"), .v6(0, 0x0000_FFFF_C000_0201))
        XCTAssertEqual(IPAddress("64:ff9b::192.0.2.33"), .v6(0x0064_FF9B_0000_0000, 0xC000_0221))
        XCTAssertEqual(IPAddress("1:2:3:4:5:6:1.2.3.4"), .v6(0x0001_0002_0003_0004, 0x0005_0006_0102_0304))
    }

    func testRejectsMalformedIPv6() {
        for text in [
            ":", ":::", "1:::2", "::1::", "1::2::3", ":1::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::",
            "g::1", "fe80::1%eth0", "[::1]", "::1:", "1:2:3:4:5:6:7:8::", "::ffff:1.2.3", "::ffff:01.2.3.4",
            "::1.2.3.4:5", "1:2:3:4:5:6:7:1.2.3.4", "::ffff:1.2.3.4.5",
        ] {
            XCTAssertNil(IPAddress(text), "\(text) must be rejected")
        }
    }

    func testFormatsIPv6PerRFC5952() {
        let cases: [(String, String)] = [
            ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),      // first of two equal runs
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),   // a single zero group stays
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),            // the longest run wins
            ("0:0:0:0:0:0:0:0", "::"),
            ("0:0:0:0:0:0:0:1", "::1"),
            ("1:0:0:0:0:0:0:0", "1::"),
            ("::ffff:c000:0201", "::ffff:192.0.2.1"),
            ("fe80::0abc", "fe80::abc"),
        ]
        for (input, expected) in cases {
            XCTAssertEqual(IPAddress(input)?.description, expected, input)
        }
    }

    /// Endpoints as Envoy's access log writes them (`%DOWNSTREAM_REMOTE_ADDRESS%`:
    /// `10.0.0.1:443`, `[::1]:80`).
    func testEndpointText() {
        let cases: [(String, Int, String)] = [
            ("192.0.2.1", 8080, "192.0.2.1:8080"),
            ("0.0.0.0", 0, "0.0.0.0:0"),
            ("255.255.255.255", 65535, "255.255.255.255:65535"),
            ("10.0.100.9", 15001, "10.0.100.9:15001"),
            ("::1", 80, "[::1]:80"),
            ("::", 443, "[::]:443"),
            ("2001:db8::1", 443, "[2001:db8::1]:443"),
            ("2001:db8:0:0:1:0:0:1", 1, "[2001:db8::1:0:0:1]:1"),
            ("2001:db8:0:1:1:1:1:1", 9, "[2001:db8:0:1:1:1:1:1]:9"),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
            ("::ffff:192.0.2.1", 10, "[::ffff:192.0.2.1]:10"),
            ("1::", 100, "[1::]:100"),
        ]
        for (address, port, expected) in cases {
            XCTAssertEqual(IPAddress(address)?.endpointText(port: port), expected, address)
        }
    }

    func testUnmapsIPv4MappedAddresses() {
        XCTAssertEqual(IPAddress("::ffff:10.1.2.3")?.unmappedIPv4, IPAddress("10.1.2.3"))
        XCTAssertEqual(IPAddress("::1")?.unmappedIPv4, IPAddress("::1"))
        XCTAssertEqual(IPAddress("10.1.2.3")?.unmappedIPv4, IPAddress("10.1.2.3"))
        // IPv4-compatible (deprecated ::a.b.c.d) is not mapped.
        XCTAssertEqual(IPAddress("::10.1.2.3")?.unmappedIPv4, IPAddress("::a01:203"))
    }

    func testBytesRoundTrip() {
        for text in ["192.0.2.1", "2001:db8::8:800:200c:417a", "::ffff:1.2.3.4"] {
            let address = IPAddress(text)
            XCTAssertEqual(address.flatMap { IPAddress(bytes: $0.bytes) }, address)
        }
        XCTAssertEqual(IPAddress(bytes: [127, 0, 0, 1]), IPAddress("127.0.0.1"))
        XCTAssertNil(IPAddress(bytes: [1, 2, 3]))
    }

    func testCIDRParsingAndNormalisation() {
        XCTAssertEqual(CIDR("10.0.0.0/8")?.description, "10.0.0.0/8")
        XCTAssertEqual(CIDR("10.1.2.3/8"), CIDR("10.0.0.0/8"), "host bits are cleared")
        XCTAssertEqual(CIDR("10.1.2.3")?.description, "10.1.2.3/32")
        XCTAssertEqual(CIDR("2001:db8::/32")?.description, "2001:db8::/32")
        XCTAssertEqual(CIDR("2001:db8:ffff::1/33")?.description, "2001:db8:8000::/33")
        XCTAssertEqual(CIDR("2001:db8::1")?.prefixLength, 128)
        XCTAssertEqual(CIDR("0.0.0.0/0")?.description, "0.0.0.0/0")
        XCTAssertEqual(CIDR("::/0")?.description, "::/0")
        XCTAssertEqual(CIDR("1::1/70")?.description, "1::/70")
        XCTAssertEqual(CIDR("::ffff:10.0.0.0/104"), CIDR("10.0.0.0/8"), "mapped networks are stored as IPv4")
        XCTAssertEqual(CIDR("::ffff:10.1.2.3"), CIDR("10.1.2.3/32"))
        for text in ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/08", "10.0.0.0/8/8", "::/129", "/8", "host/8", "10.0.0.0/ 8"] {
            XCTAssertNil(CIDR(text), "\(text) must be rejected")
        }
    }

    func testCIDRContains() throws {
        let net8 = try XCTUnwrap(CIDR("10.0.0.0/8"))
        XCTAssertTrue(net8.contains(try XCTUnwrap(IPAddress("10.255.0.1"))))
        XCTAssertFalse(net8.contains(try XCTUnwrap(IPAddress("11.0.0.1"))))
        XCTAssertTrue(net8.contains(try XCTUnwrap(IPAddress("::ffff:10.9.9.9"))), "mapped v6 matches a v4 network")
        XCTAssertFalse(net8.contains(try XCTUnwrap(IPAddress("::a00:1"))))
        let v6 = try XCTUnwrap(CIDR("2001:db8::/32"))
        XCTAssertTrue(v6.contains(try XCTUnwrap(IPAddress("2001:db8:1234::1"))))
        XCTAssertFalse(v6.contains(try XCTUnwrap(IPAddress("2001:db9::1"))))
        XCTAssertFalse(v6.contains(try XCTUnwrap(IPAddress("10.0.0.1"))))
        XCTAssertTrue(try XCTUnwrap(CIDR("0.0.0.0/0")).contains(try XCTUnwrap(IPAddress("203.0.113.7"))))
        XCTAssertTrue(try XCTUnwrap(CIDR("::/0")).contains(try XCTUnwrap(IPAddress("2001:db8::1"))))
        let host = try XCTUnwrap(CIDR("192.0.2.1"))
        XCTAssertTrue(host.contains(try XCTUnwrap(IPAddress("192.0.2.1"))))
        XCTAssertFalse(host.contains(try XCTUnwrap(IPAddress("192.0.2.2"))))
        let odd = try XCTUnwrap(CIDR("2001:db8::/65"))
        XCTAssertTrue(odd.contains(try XCTUnwrap(IPAddress("2001:db8::7fff:ffff:ffff:ffff"))))
        XCTAssertFalse(odd.contains(try XCTUnwrap(IPAddress("2001:db8::8000:0:0:0"))))
    }
}

import SluiceCore
import XCTest

final class RegistryTests: XCTestCase {
    private func entry(
        _ name: String, hosts: [String], addresses: [String] = [], ports: [ServicePort],
        resolution: ServiceEntry.Resolution = .none, line: Int = 1
    ) -> ServiceEntry {
        ServiceEntry(
            name: name, hosts: hosts, addresses: addresses.compactMap { CIDR($0) }, ports: ports, resolution: resolution,
            source: SourceLocation(path: "mem.yaml", line: line))
    }

    private let http80 = ServicePort(number: 80, name: "http", protocol: .http)
    private let tls443 = ServicePort(number: 443, name: "tls", protocol: .tls)
    private let tcp5432 = ServicePort(number: 5432, name: "pg", protocol: .tcp)

    private func ip(_ text: String) throws -> IPAddress { try XCTUnwrap(IPAddress(text)) }

    func testExactHostAndPortMustBothMatch() {
        let registry = Registry([entry("a", hosts: ["api.example.com"], ports: [http80, tls443])])
        XCTAssertEqual(registry.lookup(host: "api.example.com", port: 80)?.port, http80)
        XCTAssertEqual(registry.lookup(host: "api.example.com", port: 443)?.port, tls443)
        XCTAssertNil(registry.lookup(host: "api.example.com", port: 8080), "an undeclared port is not registered")
        XCTAssertNil(registry.lookup(host: "example.com", port: 80))
        XCTAssertNil(registry.lookup(host: "x.api.example.com", port: 80))
        XCTAssertEqual(registry.lookup(host: "api.example.com", port: 80)?.matchedBy, .exactHost)
    }

    func testHostsAreLookedUpInAuthorityNormalForm() throws {
        let registry = Registry([entry("a", hosts: ["api.example.com"], ports: [http80])])
        for host in ["API.Example.COM", "api.example.com.", "api.example.com:8080", "Api.Example.Com.:80"] {
            let name = try XCTUnwrap(Authority(host)).host
            XCTAssertEqual(registry.lookup(host: name, port: 80)?.entry.name, "a", host)
        }
        XCTAssertNil(registry.lookup(host: "", port: 80))
        XCTAssertEqual(Authority("[2001:DB8::1]:443")?.host, "2001:db8::1")
        XCTAssertEqual(Authority("2001:db8::1")?.host, "2001:db8::1", "a bare IPv6 address keeps its colons")
    }

    func testWildcardsMostSpecificWinsAndExactBeatsWildcard() {
        let registry = Registry([
            entry("broad", hosts: ["*.example.com"], ports: [tls443]),
            entry("narrow", hosts: ["*.eu.example.com"], ports: [tls443]),
            entry("exact", hosts: ["www.eu.example.com"], ports: [tls443]),
        ])
        XCTAssertEqual(registry.lookup(host: "www.eu.example.com", port: 443)?.entry.name, "exact")
        let narrow = registry.lookup(host: "api.eu.example.com", port: 443)
        XCTAssertEqual(narrow?.entry.name, "narrow")
        XCTAssertEqual(narrow?.matchedHost, "*.eu.example.com")
        XCTAssertEqual(narrow?.matchedBy, .wildcardHost)
        XCTAssertEqual(registry.lookup(host: "a.b.c.eu.example.com", port: 443)?.entry.name, "narrow")
        XCTAssertEqual(registry.lookup(host: "eu.example.com", port: 443)?.entry.name, "broad")
        XCTAssertEqual(registry.lookup(host: "deep.sub.example.com", port: 443)?.entry.name, "broad")
        XCTAssertNil(registry.lookup(host: "example.com", port: 443), "*.example.com does not cover example.com")
        XCTAssertNil(registry.lookup(host: "notexample.com", port: 443))
    }

    func testMoreSpecificWildcardOnAnotherPortFallsBackToBroaderOne() {
        let registry = Registry([
            entry("broad", hosts: ["*.example.com"], ports: [http80]),
            entry("narrow", hosts: ["*.eu.example.com"], ports: [tls443]),
        ])
        XCTAssertEqual(registry.lookup(host: "api.eu.example.com", port: 80)?.entry.name, "broad")
    }

    func testFirstLoadedWinsConflictsAndTheyAreReported() {
        let registry = Registry([
            entry("first", hosts: ["dup.example.com"], ports: [http80], line: 1),
            entry("second", hosts: ["dup.example.com"], ports: [http80], line: 9),
        ])
        XCTAssertEqual(registry.lookup(host: "dup.example.com", port: 80)?.entry.name, "first")
        XCTAssertEqual(registry.conflicts.map(\.description), [
            "mem.yaml:9: warning: ServiceEntry default/second: host dup.example.com port 80 is already registered by ServiceEntry default/first (mem.yaml:1), which was loaded first and wins",
        ])
    }

    func testFamiliesFilterKeepsTheFirstEntryOfEachProtocolFamily() {
        let registry = Registry([
            entry("tls", hosts: ["mixed.example.com"], ports: [ServicePort(number: 8443, name: "tls", protocol: .tls)]),
            entry("http", hosts: ["mixed.example.com"], ports: [ServicePort(number: 8443, name: "http", protocol: .http)]),
        ])
        XCTAssertEqual(registry.lookup(host: "mixed.example.com", port: 8443)?.entry.name, "tls")
        XCTAssertEqual(registry.lookup(host: "mixed.example.com", port: 8443, families: .http)?.entry.name, "http")
        XCTAssertNil(registry.lookup(host: "mixed.example.com", port: 8443, families: .opaque))
        XCTAssertEqual(registry.conflicts.map(\.severity), [.note], "another protocol does not shadow: a note, not a warning")
    }

    func testAddressLookupLongestPrefixWins() throws {
        let registry = Registry([
            entry("wide", hosts: ["wide.internal"], addresses: ["10.0.0.0/8"], ports: [tcp5432]),
            entry("narrow", hosts: ["narrow.internal", "alias.internal"], addresses: ["10.1.0.0/16"], ports: [tcp5432]),
            entry("host", hosts: ["one.internal"], addresses: ["10.1.2.3"], ports: [tcp5432]),
        ])
        XCTAssertEqual(registry.lookup(address: try ip("10.1.2.3"), port: 5432)?.entry.name, "host")
        let narrow = registry.lookup(address: try ip("10.1.9.9"), port: 5432)
        XCTAssertEqual(narrow?.entry.name, "narrow")
        XCTAssertEqual(narrow?.matchedHost, "narrow.internal", "an address match reports the entry's first host")
        XCTAssertEqual(narrow?.matchedBy, .address(try XCTUnwrap(CIDR("10.1.0.0/16"))))
        XCTAssertEqual(registry.lookup(address: try ip("10.200.0.1"), port: 5432)?.entry.name, "wide")
        XCTAssertNil(registry.lookup(address: try ip("11.0.0.1"), port: 5432))
        XCTAssertNil(registry.lookup(address: try ip("10.1.2.3"), port: 5433))
        XCTAssertEqual(registry.lookup(address: try ip("::ffff:10.1.2.3"), port: 5432)?.entry.name, "host",
                       "IPv4-mapped destinations match IPv4 networks")
    }

    func testIPv6Networks() throws {
        let registry = Registry([
            entry("v6-wide", hosts: ["a.internal"], addresses: ["2001:db8::/32"], ports: [tls443]),
            entry("v6-narrow", hosts: ["b.internal"], addresses: ["2001:db8:cafe::/48"], ports: [tls443]),
        ])
        XCTAssertEqual(registry.lookup(address: try ip("2001:db8:cafe::1"), port: 443)?.entry.name, "v6-narrow")
        XCTAssertEqual(registry.lookup(address: try ip("2001:db8:beef::1"), port: 443)?.entry.name, "v6-wide")
        XCTAssertNil(registry.lookup(address: try ip("2001:db9::1"), port: 443))
        XCTAssertNil(registry.lookup(address: try ip("10.0.0.1"), port: 443))
    }

    func testOpaquePortWithoutAddressesCatchesThePortOnAnyAddressAsLastResort() throws {
        let registry = Registry([
            entry("with-vip", hosts: ["pg.internal"], addresses: ["10.9.0.0/16"], ports: [tcp5432]),
            entry("any-ip", hosts: ["pg.example.com", "pg2.example.com"], ports: [tcp5432]),
            entry("http-only", hosts: ["web.example.com"], ports: [http80]),
            entry("tls-only", hosts: ["tls.example.com"], ports: [tls443]),
        ])
        XCTAssertEqual(registry.lookup(address: try ip("10.9.1.1"), port: 5432)?.entry.name, "with-vip", "a CIDR beats the fallback")
        let fallback = registry.lookup(address: try ip("203.0.113.5"), port: 5432)
        XCTAssertEqual(fallback?.entry.name, "any-ip")
        XCTAssertEqual(fallback?.matchedBy, .anyAddress)
        XCTAssertEqual(fallback?.matchedHost, "pg.example.com")
        XCTAssertEqual(registry.lookup(address: try ip("2001:db8::1"), port: 5432)?.entry.name, "any-ip")
        XCTAssertNil(registry.lookup(address: try ip("203.0.113.5"), port: 80), "HTTP ports never catch every address")
        XCTAssertNil(registry.lookup(address: try ip("203.0.113.5"), port: 443), "TLS ports never catch every address")
        XCTAssertNil(registry.lookup(address: try ip("203.0.113.5"), port: 5432, families: [.http, .tls]))
    }

    func testUnsetProtocolIsOpaque() throws {
        let registry = Registry([entry("sniffed", hosts: ["db.example.com"], ports: [ServicePort(number: 9000, name: "db", protocol: .detected(""))])])
        XCTAssertEqual(registry.lookup(address: try ip("198.51.100.1"), port: 9000)?.entry.name, "sniffed")
    }

    func testEmptyRegistry() throws {
        let registry = Registry()
        XCTAssertNil(registry.lookup(host: "a.example.com", port: 80))
        XCTAssertNil(registry.lookup(address: try ip("10.0.0.1"), port: 80))
        XCTAssertEqual(registry.entries, [])
    }

    /// Ten thousand entries of every shape: lookups stay correct (the index, not a scan, finds them).
    func testTenThousandEntries() throws {
        var entries: [ServiceEntry] = []
        for i in 0..<10_000 {
            let port = ServicePort(number: 1000 + i % 50, name: "p", protocol: i % 3 == 0 ? .tcp : (i % 3 == 1 ? .http : .tls))
            switch i % 4 {
            case 0:
                entries.append(entry("exact-\(i)", hosts: ["svc-\(i).example.com"], ports: [port]))
            case 1:
                entries.append(entry("wild-\(i)", hosts: ["*.zone-\(i).example.net"], ports: [port]))
            case 2:
                let a = (i >> 8) & 0xFF, b = i & 0xFF
                entries.append(entry("v4-\(i)", hosts: ["v4-\(i).internal"], addresses: ["10.\(a).\(b).0/24"], ports: [port]))
            default:
                entries.append(entry("v6-\(i)", hosts: ["v6-\(i).internal"], addresses: ["2001:db8:\(String(i, radix: 16))::/48"], ports: [port]))
            }
        }
        let registry = Registry(entries)
        XCTAssertEqual(registry.entries.count, 10_000)
        // Host-only entries sharing a TCP port compete for "that port on any address", and
        // only the first can have it; that is the only kind of conflict this set has.
        XCTAssertFalse(registry.conflicts.isEmpty)
        XCTAssertTrue(registry.conflicts.allSatisfy { $0.message.contains("on any address") })
        for i in stride(from: 0, to: 10_000, by: 7) {
            let port = 1000 + i % 50
            switch i % 4 {
            case 0:
                XCTAssertEqual(registry.lookup(host: "svc-\(i).example.com", port: port)?.entry.name, "exact-\(i)")
                XCTAssertNil(registry.lookup(host: "svc-\(i).example.com", port: port + 1))
            case 1:
                XCTAssertEqual(registry.lookup(host: "a.b.zone-\(i).example.net", port: port)?.entry.name, "wild-\(i)")
                XCTAssertNil(registry.lookup(host: "zone-\(i).example.net", port: port))
            case 2:
                let a = (i >> 8) & 0xFF, b = i & 0xFF
                XCTAssertEqual(registry.lookup(address: try ip("10.\(a).\(b).77"), port: port)?.entry.name, "v4-\(i)")
            default:
                XCTAssertEqual(registry.lookup(address: try ip("2001:db8:\(String(i, radix: 16)):1::9"), port: port)?.entry.name, "v6-\(i)")
            }
        }
        XCTAssertNil(registry.lookup(host: "svc-10001.example.com", port: 1001))
        // Port 1000 (i % 50 == 0, i % 3 == 0 → TCP) on exact-host entries makes the any-address
        // fallback catch an unregistered IP: the first loaded such entry (i = 0) wins.
        XCTAssertEqual(registry.lookup(address: try ip("192.0.2.1"), port: 1000)?.entry.name, "exact-0")
    }
}

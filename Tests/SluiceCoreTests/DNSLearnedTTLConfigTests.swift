import SluiceCore
import XCTest

/// `dns.learnedTTLFloor` and `dns.learnedTTLCap`: how long the learned-address table keeps
/// what the pod resolved (durations in Istio's syntax, whole seconds, at most a day), and the
/// table holding an answer's TTL between them.
final class DNSLearnedTTLConfigTests: XCTestCase {
    private func dns(_ yaml: String) throws -> DNSConfig {
        try SluiceConfig.parse(yaml: yaml, path: "sluice.yaml").get().dns
    }

    private func errors(_ yaml: String) -> String? {
        guard case .failure(let errors) = SluiceConfig.parse(yaml: yaml, path: "sluice.yaml") else { return nil }
        return "\(errors)"
    }

    func testDefaultsAreThirtySecondsAndOneHour() throws {
        let config = try dns("dns: {proxy: true}\n")
        XCTAssertEqual(config.learnedTTLFloor, 30)
        XCTAssertEqual(config.learnedTTLCap, 3600)
        let table = LearnedAddresses(config)
        XCTAssertEqual(table.minimumTTL, 30)
        XCTAssertEqual(table.maximumTTL, 3600)
    }

    func testKeysDecodeAsDurations() throws {
        let config = try dns("dns: {proxy: true, learnedTTLFloor: 5s, learnedTTLCap: 10m}\n")
        XCTAssertEqual(config.learnedTTLFloor, 5)
        XCTAssertEqual(config.learnedTTLCap, 600)
        XCTAssertEqual(try dns("dns: {learnedTTLFloor: 0s}\n").learnedTTLFloor, 0, "no floor: an answer's own TTL")
        XCTAssertEqual(try dns("dns: {learnedTTLCap: 1h30m}\n").learnedTTLCap, 5400)
    }

    func testBadValuesAreErrorsNamingTheKeyAndLine() throws {
        let fraction = try XCTUnwrap(errors("outboundTrafficPolicy: {mode: REGISTRY_ONLY}\ndns:\n  learnedTTLFloor: 1500ms\n"))
        XCTAssertTrue(fraction.contains("dns.learnedTTLFloor") && fraction.contains("whole seconds"), fraction)
        XCTAssertTrue(fraction.contains(":3"), "the line of the value: \(fraction)")
        let long = try XCTUnwrap(errors("dns: {learnedTTLCap: 48h}\n"))
        XCTAssertTrue(long.contains("dns.learnedTTLCap") && long.contains("24h"), long)
        let bare = try XCTUnwrap(errors("dns: {learnedTTLCap: 60}\n"))
        XCTAssertTrue(bare.contains("dns.learnedTTLCap") && bare.contains("not a duration"), bare)
        let zeroCap = try XCTUnwrap(errors("dns: {learnedTTLCap: 0s}\n"))
        XCTAssertTrue(zeroCap.contains("dns.learnedTTLCap") && zeroCap.contains("greater than zero"), zeroCap)
        let inverted = try XCTUnwrap(errors("dns: {learnedTTLFloor: 10m, learnedTTLCap: 1m}\n"))
        XCTAssertTrue(inverted.contains("dns.learnedTTLCap") && inverted.contains("at least dns.learnedTTLFloor (600s)"), inverted)
        let aboveDefaultCap = try XCTUnwrap(errors("dns: {learnedTTLFloor: 2h}\n"))
        XCTAssertTrue(aboveDefaultCap.contains("dns.learnedTTLFloor") && aboveDefaultCap.contains("3600s"), aboveDefaultCap)
        let typo = try XCTUnwrap(errors("dns: {learnedTTLfloor: 5s}\n"))
        XCTAssertTrue(typo.contains("learnedTTLFloor"), "an unknown key, with the suggestion: \(typo)")
    }

    func testTheTableHoldsTTLsBetweenTheConfiguredBounds() throws {
        var table = LearnedAddresses(try dns("dns: {learnedTTLFloor: 5s, learnedTTLCap: 2m}\n"))
        let brief = try XCTUnwrap(IPAddress("192.0.2.38"))
        let long = try XCTUnwrap(IPAddress("192.0.2.36"))
        table.learn(brief, hostname: "brief.test", ttl: 1, now: 100)
        table.learn(long, hostname: "game.test", ttl: 86_400, now: 100)
        XCTAssertEqual(table.hostname(for: brief, now: 104), "brief.test", "TTL 1 held at the 5 s floor")
        XCTAssertNil(table.hostname(for: brief, now: 105))
        XCTAssertEqual(table.hostname(for: long, now: 219), "game.test")
        XCTAssertNil(table.hostname(for: long, now: 220), "a day's TTL capped at 2 minutes")
    }

    func testNewBoundsApplyToWhatIsLearnedAfterwards() throws {
        var table = LearnedAddresses()
        let first = try XCTUnwrap(IPAddress("192.0.2.1"))
        let second = try XCTUnwrap(IPAddress("192.0.2.2"))
        table.learn(first, hostname: "a.test", ttl: 0, now: 0)
        table.setTTLBounds(try dns("dns: {learnedTTLFloor: 2s, learnedTTLCap: 4s}\n"))
        table.learn(second, hostname: "b.test", ttl: 0, now: 0)
        XCTAssertEqual(table.hostname(for: first, now: 29), "a.test", "learned under the old 30 s floor, kept")
        XCTAssertEqual(table.hostname(for: second, now: 1), "b.test")
        XCTAssertNil(table.hostname(for: second, now: 2), "learned under the new 2 s floor")
        table.learn(second, hostname: "b.test", ttl: 60, now: 10)
        XCTAssertNil(table.hostname(for: second, now: 14), "and the new 4 s cap")
    }
}

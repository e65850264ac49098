import NIOConcurrencyHelpers
public import SluiceCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process's address → hostname table (LearnedAddresses), shared by the DNS proxy that
/// fills it, the UDP guard that decides with it, and config_dump that shows it.
public final class LearnedAddressBook: Sendable {
    private let table: NIOLockedValueBox<LearnedAddresses>

    /// Creates an empty book.
    public init(_ table: LearnedAddresses = LearnedAddresses()) {
        self.table = NIOLockedValueBox(table)
    }

    /// Seconds on the monotonic clock: the time base of the table.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec)
    }

    /// A copy of the table (cheap: copy on write), for one decision.
    var current: LearnedAddresses { table.withLockedValue { $0 } }

    /// The name `address` was resolved from, if still valid.
    public func hostname(for address: IPAddress) -> String? {
        let now = Self.now()
        return table.withLockedValue { $0.hostname(for: address, now: now) }
    }

    /// The same for an access-log address (`ip:port`, `[ip]:port`); nil while nothing is learned.
    func hostname(forLogAddress text: String?) -> String? {
        guard let text, !isEmpty, let colon = text.lastIndex(of: ":") else { return nil }
        var host = text[..<colon]
        if host.first == "[", host.last == "]" { host = host.dropFirst().dropLast() }
        return IPAddress(String(host)).flatMap { hostname(for: $0) }
    }

    /// True while the table holds nothing (a cheap check before parsing an address).
    var isEmpty: Bool { table.withLockedValue { $0.count == 0 } }

    /// Takes a reloaded config's `dns.learnedTTLFloor` and `dns.learnedTTLCap` for what is
    /// learned from now on.
    func setTTLBounds(_ config: DNSConfig) {
        table.withLockedValue { $0.setTTLBounds(config) }
    }

    /// Learns the addresses of a cached answer, their TTLs capped at what it has left.
    func learn(_ learnable: DNSLearnable, cappedAt cap: UInt32, now: UInt64) {
        guard !learnable.addresses.isEmpty else { return }
        table.withLockedValue { $0.learn(learnable, cappedAt: cap, now: now) }
    }

    /// Learns the addresses of a response to the pod.
    func learn(from response: DNSMessage) {
        let now = Self.now()
        table.withLockedValue { _ = $0.learn(from: response, now: now) }
    }

    /// The live entries with the seconds each has left, sorted by address.
    public func entries() -> [(address: IPAddress, hostname: String, secondsLeft: UInt64)] {
        let now = Self.now()
        return table.withLockedValue { $0.snapshot(now: now) }.map { ($0.address, $0.entry.hostname, $0.entry.expiresAt - now) }
    }
}

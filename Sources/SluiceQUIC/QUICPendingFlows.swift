/// The QUIC flows whose ClientHello is spread over several Initial datagrams (large
/// post-quantum key shares make Chrome's ClientHello span two), while the rest of it is
/// awaited: their datagrams' verdicts wait (NFQUEUE lets a verdict wait) until the SNI is
/// known. Pure: the caller gives each packet's id and the time, and carries out the steps.
///
/// Bounded in every direction: at most `Limits.packets` datagrams and `Limits.wait` per flow,
/// at most `Limits.flows` flows waiting (a new one past that is decided at once, without
/// SNI), and each flow's sniffer keeps at most `QUICInitialSniffer.maxCryptoBytes`.
public struct QUICPendingFlows<Flow: Hashable & Sendable>: Sendable {
    /// How much waiting is allowed.
    public struct Limits: Sendable, Equatable {
        /// Datagrams per flow: the one that reaches this count is decided whatever it says.
        public var packets: Int
        /// Milliseconds from a flow's first datagram until it is decided without SNI.
        public var wait: UInt64
        /// Flows waiting at once.
        public var flows: Int

        /// 4 datagrams, 250 ms, 256 flows (at most 256 × 16 KiB of CRYPTO data).
        public init(packets: Int = 4, wait: UInt64 = 250, flows: Int = 256) {
            self.packets = max(1, packets)
            self.wait = wait
            self.flows = max(0, flows)
        }
    }

    /// What to do with a datagram.
    public enum Step: Equatable, Sendable {
        /// Hold this packet's verdict: the ClientHello goes on in a later datagram.
        case hold
        /// Decide with `result` (never `.incomplete`) for `packets`: those held before, then this one.
        case decide(QUICClientHelloResult, packets: [UInt32])
    }

    private struct Pending: Sendable {
        var sniffer = QUICInitialSniffer()
        var packets: [UInt32] = []
        let deadline: UInt64
    }

    /// The limits in force.
    public let limits: Limits
    private var pending: [Flow: Pending] = [:]

    /// An empty table.
    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Flows waiting now.
    public var count: Int { pending.count }

    /// Packets held now.
    public var heldPackets: Int { pending.values.reduce(0) { $0 + $1.packets.count } }

    /// Reads `payload` (the UDP payload of packet `id` of `flow`) at `now` (milliseconds).
    public mutating func datagram<Bytes: Collection<UInt8>>(
        _ payload: Bytes, packet id: UInt32, flow: Flow, now: UInt64
    ) -> Step {
        var entry = pending.removeValue(forKey: flow) ?? Pending(deadline: now &+ limits.wait)
        let result = entry.sniffer.feed(datagram: payload)
        entry.packets.append(id)
        guard result == .incomplete else { return .decide(result, packets: entry.packets) }
        if entry.packets.count >= limits.packets || now >= entry.deadline || pending.count >= limits.flows {
            return .decide(.undecodable(.incompleteClientHello), packets: entry.packets)
        }
        pending[flow] = entry
        return .hold
    }

    /// The flows whose time ran out by `now`, removed, with their held packets: decide them
    /// without SNI.
    public mutating func expire(now: UInt64) -> [(flow: Flow, packets: [UInt32])] {
        guard !pending.isEmpty else { return [] }
        var expired: [(flow: Flow, packets: [UInt32])] = []
        for (flow, entry) in pending where entry.deadline <= now {
            expired.append((flow, entry.packets))
        }
        for item in expired { pending[item.flow] = nil }
        return expired
    }

    /// Every flow, removed (the queue is closing): their held packets.
    public mutating func removeAll() -> [(flow: Flow, packets: [UInt32])] {
        defer { pending = [:] }
        return pending.map { ($0.key, $0.value.packets) }
    }
}

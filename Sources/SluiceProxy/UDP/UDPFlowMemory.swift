import SluiceCore

/// A UDP flow's identity.
struct FlowKey: Hashable, Sendable {
    let source: IPAddress
    let sourcePort: Int
    let destination: IPAddress
    let destinationPort: Int

    init(_ datagram: UDPDatagram) {
        source = datagram.source
        sourcePort = datagram.sourcePort
        destination = datagram.destination
        destinationPort = datagram.destinationPort
    }

    /// The flow's addresses as a datagram without payload (for its log line).
    var datagram: UDPDatagram {
        UDPDatagram(source: source, sourcePort: sourcePort, destination: destination, destinationPort: destinationPort)
    }
}

/// The flows seen lately (bounded; a flow idle for 60 s counts as new again), and the verdict
/// of each QUIC flow decided by its ClientHello: the flow's later datagrams (the kernel queues
/// them until the server answers) carry no ClientHello of their own and keep that verdict.
struct FlowMemory {
    static let capacity = 16384
    static let idle: UInt64 = 60

    private struct Entry {
        var lastSeen: UInt64
        /// A QUIC flow's verdict, once its ClientHello decided it.
        var quicAllowed: Bool?
    }

    private var flows: [FlowKey: Entry] = [:]

    /// Records a packet of `key`; true when the flow is new (or was idle for `idle` seconds).
    mutating func firstSeen(_ key: FlowKey, now: UInt64) -> Bool {
        let previous = flows[key]
        let isNew = previous.map { now - $0.lastSeen >= FlowMemory.idle } ?? true
        store(key, Entry(lastSeen: now, quicAllowed: isNew ? nil : previous?.quicAllowed), now: now)
        return isNew
    }

    /// The verdict of the live QUIC flow `key`, if its ClientHello was decided; refreshes it.
    mutating func quicVerdict(_ key: FlowKey, now: UInt64) -> Bool? {
        guard let entry = flows[key], let allowed = entry.quicAllowed, now - entry.lastSeen < FlowMemory.idle else { return nil }
        flows[key]?.lastSeen = now
        return allowed
    }

    /// Remembers a QUIC flow's verdict.
    mutating func decidedQUIC(_ key: FlowKey, allowed: Bool, now: UInt64) {
        store(key, Entry(lastSeen: now, quicAllowed: allowed), now: now)
    }

    private mutating func store(_ key: FlowKey, _ entry: Entry, now: UInt64) {
        flows[key] = entry
        if flows.count > FlowMemory.capacity {
            flows = flows.filter { now - $0.value.lastSeen < FlowMemory.idle }
            if flows.count > FlowMemory.capacity { flows = [key: entry] }
        }
    }
}

package import NIOCore
import SluiceCore

/// What we know about an accepted connection before reading a byte of it.
package struct DownstreamConnection: Sendable {
    /// Where the app meant to go (`downstream_local_address` in the log), recovered from the
    /// kernel on the sidecar, the listener's own address on the gateway.
    let originalDestination: SocketAddress
    /// The app's address (`downstream_remote_address`).
    let remote: SocketAddress?
    /// Wall-clock start, for `start_time`.
    let startMillis: Int64
    /// Monotonic start, for `duration`.
    let start: NIODeadline
    /// The original destination as the registry's types, for policy decisions.
    let destinationIP: IPAddress?
    let destinationPort: Int?
    /// `ip:port` texts for the access log. Worked out once per connection: every request on
    /// a keep-alive connection logs them, and formatting an address is not free.
    let destinationText: String
    let remoteText: String?
    /// The caller's SPIFFE ID, from its verified client certificate, on a listener that
    /// terminates ISTIO_MUTUAL (what AuthorizationPolicy's `principals` match); else nil.
    private(set) var peerIdentity: SPIFFEID?
    /// The same as text (`spiffe://…`), for `downstream_peer_uri_san` and `source_principal`:
    /// made once per connection, not per request.
    private(set) var peerURISAN: String?
    /// The connection is mutual TLS (`connection_security_policy="mutual_tls"`).
    private(set) var mutualTLS = false

    package init(originalDestination: SocketAddress, remote: SocketAddress?) {
        self.originalDestination = originalDestination
        self.remote = remote
        self.startMillis = wallClockMillis()
        self.start = .now()
        self.destinationIP = originalDestination.sluiceIPAddress
        self.destinationPort = originalDestination.port
        self.destinationText = originalDestination.logDescription
        self.remoteText = remote?.logDescription
    }
}

extension DownstreamConnection {
    /// Records that the connection's TLS handshake verified the caller's client certificate,
    /// whose SPIFFE ID is `identity` (nil when it has none) and whose URI SANs read `uriSAN`
    /// as the log writes them (by default the SPIFFE ID: an ISTIO_MUTUAL peer has one URI SAN).
    mutating func authenticated(as identity: SPIFFEID?, uriSAN: String? = nil) {
        self.mutualTLS = true
        self.peerIdentity = identity
        self.peerURISAN = uriSAN ?? identity?.description
    }

    /// Starts `record` for traffic on this connection: where it started, where the client was
    /// going and who it is. A connection's record starts with the connection (`startMillis`);
    /// an HTTP request's with the request (pass `wallClockMillis()`). Filled in place: a
    /// returned record is copied field by field on the per-request path (callgrind).
    func start(_ record: inout AccessLogRecord, at startTime: Int64? = nil) {
        record.startTime = startTime ?? self.startMillis
        record.downstreamLocalAddress = self.destinationText
        record.downstreamRemoteAddress = self.remoteText
        record.downstreamPeerURISAN = self.peerURISAN
        record.downstreamMutualTLS = self.mutualTLS
    }
}

extension NIODeadline {
    /// Whole milliseconds since `self`.
    var millisecondsElapsed: Int64 {
        (NIODeadline.now() - self).nanoseconds / 1_000_000
    }
}

extension ProxyMetrics {
    /// A TCP connection was accepted for `cluster` from `connection`'s caller.
    func tcpOpened(cluster: String, connection: DownstreamConnection) {
        self.tcpOpened(cluster: cluster, peerURISAN: connection.peerURISAN, mutualTLS: connection.mutualTLS)
    }
}

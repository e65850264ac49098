/// What protocol detection concluded for a captured connection; the `outcome` label of
/// `sluice_sniff_total`.
public enum SniffOutcome: String, Sendable, CaseIterable {
    /// A TLS ClientHello (with or without SNI).
    case tls
    /// An HTTP/1.x request head.
    case http
    /// The HTTP/2 connection preface (h2c prior knowledge).
    case http2
    /// Neither: forwarded as opaque TCP.
    case opaque
    /// Nothing decisive arrived before the detection timeout: forwarded as opaque TCP.
    case timeout
}

/// What kind of traffic a denial refused; the `protocol` label of `sluice_denied_total`.
public enum DeniedProtocol: String, Sendable, CaseIterable {
    /// An HTTP request (sidecar 502, gateway 404 NR).
    case http
    /// A TLS connection closed for its SNI.
    case tls
    /// An opaque TCP connection closed.
    case tcp
    /// A CONNECT tunnel refused (gateway 403).
    case connect
}

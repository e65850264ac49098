/// Istio's file-mounted certificate names (the `istio-certs` volume, and what
/// `ISTIO_META_TLS_CLIENT_CERT_CHAIN` and friends default to), and the root CA pair that
/// Istio's `tools/certs` Makefile writes.
public enum IstioCertificateFiles {
    /// The workload certificate, then any intermediates.
    public static let certificateChain = "cert-chain.pem"
    /// The workload's private key.
    public static let privateKey = "key.pem"
    /// The mesh root(s) peers are verified against.
    public static let root = "root-cert.pem"
    /// The root CA's private key (only in a CA directory, never mounted into workloads).
    public static let rootKey = "root-key.pem"
}

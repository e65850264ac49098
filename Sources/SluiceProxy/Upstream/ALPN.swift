/// ALPN protocol lists, as Istio configures Envoy (`pilot/pkg/networking/common/common.go`
/// in istio/istio).
enum ALPN {
    /// `ALPNInMeshH2`: a sidecar's HTTP/2 connection to an in-mesh peer (the egress gateway)
    /// under ISTIO_MUTUAL; `istio` marks in-mesh traffic.
    static let inMeshHTTP2 = ["istio", "h2"]
    /// `ALPNH2Only`: an HTTP/2 connection to a server outside the mesh (TLS origination).
    static let http2Only = ["h2"]
    /// What a server terminating TLS for HTTP listeners accepts (`ALPNDownstream`).
    static let serverHTTP = ["h2", "http/1.1"]
}

import SluiceCore

/// What an idle upstream HTTP/1.1 connection can be reused for: the target it was dialled to
/// and the TLS it was opened with (nil: plaintext). Both, so that after a reload that changes
/// a DestinationRule's `tls` (DISABLE → SIMPLE, another `sni`, CA or client certificate, an
/// ISTIO_MUTUAL `subjectAltNames` list) no request goes over an idle connection made under the
/// old setting — Envoy gets the same from a cluster whose transport socket changed being a new
/// cluster with connection pools of its own.
struct UpstreamPoolKey: Hashable {
    let target: UpstreamTarget
    let tls: UpstreamTLS?

    /// The target alone: keys that differ only in TLS share a bucket and are told apart by
    /// `==`. Hashing an ISTIO_MUTUAL setting would run SipHash over its SAN texts on every
    /// take and put (each new app connection through the egress gateway), where comparing
    /// them is a pointer check: they come from the same decision.
    func hash(into hasher: inout Hasher) {
        hasher.combine(self.target)
    }
}

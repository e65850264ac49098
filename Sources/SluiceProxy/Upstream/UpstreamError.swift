import NIOCore
import SluiceCore

/// Why an upstream could not be reached, with the Envoy response flag it is logged with.
enum UpstreamError: Error, CustomStringConvertible {
    /// The name had no address (Envoy `DF`).
    case resolution(String)
    /// Every address refused or failed (Envoy `UF`).
    case connectFailed(String)
    /// The connect did not finish in time (Envoy `UF` with a timeout reason).
    case connectTimeout(String)
    /// A CONNECT gateway answered something other than 2xx.
    case tunnelRefused(status: Int, gateway: String)
    /// The mTLS handshake with an ISTIO_MUTUAL gateway failed (Envoy `UF`): `entries` are
    /// Envoy's failure-reason entries (`EnvoyTLSFailure`), `detail` says why in our words.
    case tlsFailed(entries: [String], detail: String)
    /// TLS origination (DestinationRule SIMPLE / MUTUAL) failed: `entries` are Envoy's
    /// failure-reason entries (`EnvoyTLSFailure`), `detail` says why in our words (Envoy `UF`).
    case originTLSFailed(entries: [String], detail: String)
    /// There was nothing to dial (an empty endpoint list or gateway list).
    case noHealthyUpstream
    /// A DestinationRule `connectionPool` limit was reached (Envoy `UO`).
    case overflow

    var description: String {
        switch self {
        case .resolution(let why): return "DNS resolution failed: \(why)"
        case .connectFailed(let why): return "connection failure: \(why)"
        case .connectTimeout(let why): return "connection timeout: \(why)"
        case .tunnelRefused(let status, let gateway): return "gateway \(gateway) refused CONNECT with \(status)"
        case .tlsFailed(_, let detail): return "TLS handshake with the gateway failed: \(detail)"
        case .originTLSFailed(_, let detail): return "TLS origination failed: \(detail)"
        case .noHealthyUpstream: return "no healthy upstream"
        case .overflow: return "upstream overflow"
        }
    }

    /// The Envoy response flag for this failure.
    var responseFlag: ResponseFlags {
        switch self {
        case .resolution: return .dnsResolutionFailed
        case .connectFailed, .connectTimeout, .tunnelRefused, .tlsFailed, .originTLSFailed: return .upstreamConnectionFailure
        case .noHealthyUpstream: return .noHealthyUpstream
        case .overflow: return .upstreamOverflow
        }
    }

    /// Envoy's `upstream_transport_failure_reason`-style text.
    var transportFailureReason: String {
        switch self {
        case .resolution(let why): return "dns_resolution_failure: \(why)"
        case .connectFailed(let why): return "connection_failure: \(why)"
        case .connectTimeout(let why): return "connection_timeout: \(why)"
        case .tunnelRefused(let status, _): return "connect_tunnel_refused: \(status)"
        case .tlsFailed(let entries, _), .originTLSFailed(let entries, _): return EnvoyTLSFailure.reason(entries)
        case .noHealthyUpstream: return "no_healthy_upstream"
        case .overflow: return "overflow"
        }
    }

    /// The body of Envoy's local 503 for this failure (HTTP/1 and HTTP/2 alike).
    var localReplyBody: String {
        switch self {
        case .resolution: return HTTP1LocalReply.dnsFailureBody
        case .noHealthyUpstream: return HTTP1LocalReply.noHealthyUpstreamBody
        case .tlsFailed, .originTLSFailed:
            // Envoy: "… reset reason: connection failure, transport failure reason: TLS_error:|…".
            return HTTP1LocalReply.resetBody(reason: "connection failure, transport failure reason: \(self.transportFailureReason)")
        case .overflow: return HTTP1LocalReply.resetBody(reason: "overflow")
        default: return HTTP1LocalReply.resetBody(reason: "connection failure")
        }
    }
}

import Yams

/// How a gateway listener treats TLS from its clients, in Istio's `ServerTLSSettings.mode`
/// words. A value the gateway can get from `listeners[].tls` in `sluice.yaml` or from an
/// Istio `Gateway` server's `tls`.
public enum ServerTLSMode: String, Sendable, Equatable {
    /// The listener does not terminate TLS (Istio's PASSTHROUGH): TLS is routed by SNI as it is.
    case passthrough = "PASSTHROUGH"
    /// The listener terminates mutual TLS with the mesh's certificates (`--certs`): a client
    /// certificate chaining to `root-cert.pem` is required, and its SPIFFE ID is the caller's
    /// identity. Inside, HTTP is routed by Host and the app's own TLS by its SNI.
    case istioMutual = "ISTIO_MUTUAL"
    /// Istio's SIMPLE: the listener terminates TLS with the server certificate of its Gateway
    /// server (`ServerTLSFiles`); no client certificate is asked for. Only from a Gateway object.
    case simple = "SIMPLE"
    /// Istio's MUTUAL: as SIMPLE, and a client certificate chaining to the server's
    /// `caCertificates` is required. Only from a Gateway object.
    case mutual = "MUTUAL"

    /// SIMPLE or MUTUAL: terminated with the Gateway server's own certificate files.
    public var usesServerFiles: Bool { self == .simple || self == .mutual }
}

/// A Gateway server's certificate for SIMPLE / MUTUAL (Istio's `ServerTLSSettings`):
/// `serverCertificate`, `privateKey`, `caCertificates` files, or a `credentialName` read
/// from `--credentials-dir/<name>/` (`tls.crt`, `tls.key`, `ca.crt`); and the settings that go
/// with it: `subjectAltNames` (MUTUAL), `minProtocolVersion`, `maxProtocolVersion`,
/// `cipherSuites`.
public struct ServerTLSFiles: Sendable, Hashable {
    public var serverCertificate: String?
    public var privateKey: String?
    public var caCertificates: String?
    public var credentialName: String?
    /// MUTUAL: a client certificate must carry one of these names (DNS, URI, email or IP SAN).
    public var subjectAltNames: [String] = []
    /// `TLSV1_0` … `TLSV1_3`; nil (or `TLS_AUTO`) keeps the defaults (TLS 1.2 to 1.3).
    public var minProtocolVersion: String?
    public var maxProtocolVersion: String?
    /// TLS 1.2 cipher suites by their BoringSSL/Envoy names; empty keeps BoringSSL's defaults.
    public var cipherSuites: [String] = []

    /// Istio's `TLSProtocol` names, without TLS_AUTO.
    public static let protocolVersions = ["TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"]

    public init(serverCertificate: String? = nil, privateKey: String? = nil, caCertificates: String? = nil, credentialName: String? = nil) {
        self.serverCertificate = serverCertificate
        self.privateKey = privateKey
        self.caCertificates = caCertificates
        self.credentialName = credentialName
    }
}

/// How the sidecar talks TLS to the egress gateway (Istio's `ClientTLSSettings` for the
/// gateway's cluster): `egressGateway.tls` in `sluice.yaml`, or a DestinationRule for the
/// gateway with `tls.mode: ISTIO_MUTUAL`.
public struct GatewayClientTLS: Sendable, Hashable {
    /// Istio's default identity of the egress gateway (the `istio-egressgateway` chart's
    /// service account in `istio-system`).
    public static let defaultGatewayIdentity = "spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account"

    /// The SNI sent to the gateway (`tls.sni`); nil sends the host the app asked for.
    public let sni: String?
    /// The SPIFFE IDs the gateway's certificate may carry (`tls.subjectAltNames`).
    public let subjectAltNames: [String]

    /// ISTIO_MUTUAL to a gateway with Istio's default identity unless told otherwise.
    public init(sni: String? = nil, subjectAltNames: [String] = [GatewayClientTLS.defaultGatewayIdentity]) {
        self.sni = sni
        self.subjectAltNames = subjectAltNames
    }
}

extension SluiceConfig {
    /// `listeners[].tls`: `{mode: ISTIO_MUTUAL}` or `{mode: PASSTHROUGH}`.
    static func decodeServerTLS(_ node: Node, _ field: String, _ reader: inout YAMLReader) -> ServerTLSMode? {
        guard let mapping = reader.mapping(node, field) else { return nil }
        reader.checkKeys(mapping, allowed: ["mode"], prefix: field)
        guard let modeNode = YAMLReader.value(mapping, "mode") else {
            reader.error(field + ".mode", at: node, "required (ISTIO_MUTUAL or PASSTHROUGH)")
            return nil
        }
        guard let text = reader.string(modeNode, field + ".mode") else { return nil }
        guard let mode = ServerTLSMode(rawValue: text.uppercased()), !mode.usesServerFiles else {
            reader.error(field + ".mode", at: modeNode,
                         "must be ISTIO_MUTUAL or PASSTHROUGH, not \"\(text)\" (SIMPLE and MUTUAL come from an Istio Gateway server with its certificate; OPTIONAL_MUTUAL is not supported)")
            return nil
        }
        return mode
    }

    /// `egressGateway.tls`: `{mode: ISTIO_MUTUAL, sni: NAME, subjectAltNames: [spiffe://…]}`;
    /// `mode: DISABLE` (nil) keeps plaintext to the gateway.
    static func decodeGatewayClientTLS(_ node: Node, _ field: String, _ reader: inout YAMLReader) -> GatewayClientTLS? {
        guard let mapping = reader.mapping(node, field) else { return nil }
        reader.checkKeys(mapping, allowed: ["mode", "sni", "subjectAltNames"], prefix: field)
        guard let modeNode = YAMLReader.value(mapping, "mode"), let mode = reader.string(modeNode, field + ".mode") else {
            reader.error(field + ".mode", at: node, "required (ISTIO_MUTUAL or DISABLE)")
            return nil
        }
        switch mode.uppercased() {
        case "DISABLE":
            return nil
        case "ISTIO_MUTUAL":
            break
        default:
            reader.error(field + ".mode", at: modeNode, "must be ISTIO_MUTUAL or DISABLE, not \"\(mode)\"")
            return nil
        }
        var sni: String?
        if let sniNode = YAMLReader.value(mapping, "sni"), let text = reader.string(sniNode, field + ".sni") {
            if ServiceEntry.isDNSName(Substring(text)) {
                sni = text
            } else {
                reader.error(field + ".sni", at: sniNode, "\"\(text)\" is not a host name")
            }
        }
        var names = [GatewayClientTLS.defaultGatewayIdentity]
        if let sanNode = YAMLReader.value(mapping, "subjectAltNames"),
            let list = reader.stringList(sanNode, field + ".subjectAltNames", allowSingle: true)
        {
            for (index, name) in list.enumerated() {
                do {
                    _ = try SPIFFEID(parsing: name)
                } catch {
                    reader.error("\(field).subjectAltNames[\(index)]", at: sanNode.sequence?[index] ?? sanNode,
                                 "\"\(name)\" is not a SPIFFE ID: \(error)")
                }
            }
            if list.isEmpty {
                reader.error(field + ".subjectAltNames", at: sanNode, "must name at least one SPIFFE ID")
            }
            names = list
        }
        return GatewayClientTLS(sni: sni, subjectAltNames: names)
    }
}

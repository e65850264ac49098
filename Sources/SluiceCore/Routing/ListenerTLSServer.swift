/// One Gateway server's TLS on a gateway listener: the host names (SNI) it answers and how it
/// treats their TLS. Where the servers on one port differ (another mode or another
/// certificate), the gateway picks one per connection by the ClientHello's SNI, as Envoy picks
/// the filter chain Istio builds for each server (`filter_chain_match.server_names` = the
/// server's hosts).
public struct ListenerTLSServer: Sendable, Equatable {
    /// The server's host patterns without their namespace part (`*`, `*.example.com`, a name), lower-cased.
    public var hosts: [String]
    /// The server's `tls.mode`.
    public var mode: ServerTLSMode
    /// SIMPLE / MUTUAL: the certificate files.
    public var files: ServerTLSFiles?

    public init(hosts: [String], mode: ServerTLSMode, files: ServerTLSFiles? = nil) {
        self.hosts = hosts.map { $0.lowercased() }
        self.mode = mode
        self.files = files
    }

    /// The server for a connection whose ClientHello names `serverName`: an exact host first,
    /// then the longest wildcard suffix (`*.b.example.com` before `*.example.com`), then a
    /// server for every name (`*`), which is also the only one a ClientHello without SNI
    /// reaches; among equals the first server. Nil when none covers the name: Envoy finds no
    /// filter chain and closes the connection.
    public static func choose(_ servers: [ListenerTLSServer], serverName: String?) -> Int? {
        let name = serverName.map { $0.lowercased() }
        var best: (index: Int, specificity: Int)?
        for (index, server) in servers.enumerated() {
            for pattern in server.hosts {
                let covers = name.map { HostPattern.matches(pattern, $0) } ?? (pattern == "*")
                guard covers else { continue }
                let specificity = HostPattern.specificity(pattern)
                if best.map({ specificity > $0.specificity }) ?? true { best = (index, specificity) }
            }
        }
        return best?.index
    }
}

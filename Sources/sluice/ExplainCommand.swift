import ArgumentParser
import SluiceCore

/// `sluice explain`: shows the decision for a destination without sending traffic.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show what the sidecar would do with a destination, and why.",
        discussion: """
            URL forms: http://host[:port]/path, tls://host:port, tcp://ip:port. \
            For http and tls the destination IP is taken from --ip (default 0.0.0.0: unknown).
            """
    )

    @Option(name: .long, help: ArgumentHelp("Config file. Also from SLUICE_CONFIG.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: "Original destination IP the app dialled (for http/tls).")
    var ip: String = "0.0.0.0"

    @Option(name: .long, help: "Decide as the sidecar or the gateway.")
    var role: String = "sidecar"

    @Argument(help: "http://host[:port]/path, tls://host:port or tcp://ip:port")
    var url: String

    func run() throws {
        let path = try resolveConfigPath(config)
        guard let destinationIP = IPAddress(ip) else { throw ValidationError("--ip: not an IP address: \(ip)") }
        let target = try ExplainTarget.parse(url, defaultIP: destinationIP)
        let snapshot: SluiceSnapshot
        switch SluiceSnapshot.load(configPath: path) {
        case .success(let loaded): snapshot = loaded
        case .failure(let diagnostics):
            for diagnostic in diagnostics { printError("\(diagnostic)") }
            throw ExitCode(1)
        }
        let isGateway = role == "gateway"
        let mode = snapshot.config.mode ?? (isGateway ? .registryOnly : .allowAny)
        let policy = Policy(mode: mode, registry: snapshot.registry, gateway: isGateway ? nil : snapshot.config.egressGateway)
        let decision = policy.decide(target.facts)
        print(ExplainTarget.render(decision: decision, facts: target.facts, mode: mode, isGateway: isGateway))
    }
}

/// Parses explain's URL argument into the facts a connection would present.
struct ExplainTarget {
    let facts: ConnectionFacts

    static func parse(_ url: String, defaultIP: IPAddress) throws -> ExplainTarget {
        guard let schemeEnd = url.range(of: "://") else {
            throw ValidationError("expected http://host[:port]/path, tls://host:port or tcp://ip:port, got \(url)")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        let rest = url[schemeEnd.upperBound...]
        let authority = String(rest.prefix { $0 != "/" && $0 != "?" })
        let (host, port) = try splitHostPort(authority, defaultPort: scheme == "http" ? 80 : nil)
        switch scheme {
        case "http":
            return ExplainTarget(facts: ConnectionFacts(kind: .http(host: host), destination: IPAddress(host) ?? defaultIP, port: port))
        case "tls":
            return ExplainTarget(facts: ConnectionFacts(kind: .tls(serverName: host), destination: IPAddress(host) ?? defaultIP, port: port))
        case "tcp":
            guard let ip = IPAddress(host) else { throw ValidationError("tcp:// needs an IP address, got \(host)") }
            return ExplainTarget(facts: ConnectionFacts(kind: .tcp, destination: ip, port: port))
        default:
            throw ValidationError("unknown scheme \(scheme): use http, tls or tcp")
        }
    }

    static func splitHostPort(_ authority: String, defaultPort: Int?) throws -> (String, Int) {
        var host = Substring(authority)
        var port = defaultPort
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if after.hasPrefix(":") { port = Int(after.dropFirst()) }
        } else if let colon = host.lastIndex(of: ":") {
            port = Int(host[host.index(after: colon)...])
            host = host[..<colon]
        }
        guard !host.isEmpty else { throw ValidationError("missing host in \(authority)") }
        guard let port, (1...65535).contains(port) else { throw ValidationError("missing or bad port in \(authority)") }
        return (host.lowercased(), port)
    }

    static func render(decision: Decision, facts: ConnectionFacts, mode: OutboundTrafficPolicyMode, isGateway: Bool) -> String {
        var lines: [String] = []
        let what: String
        switch facts.kind {
        case .http(let host): what = "http \(host):\(facts.port)"
        case .tls(let name): what = "tls \(name ?? "(no SNI)"):\(facts.port)"
        case .tcp: what = "tcp \(facts.destination):\(facts.port)"
        }
        lines.append("destination: \(what)")
        lines.append("mode:        \(mode.rawValue)")
        switch decision.action {
        case .deny:
            let answer: String
            switch facts.kind {
            case .http: answer = isGateway ? "404 Not Found (NR)" : "502 Bad Gateway"
            case .tls, .tcp: answer = "connection closed without a byte"
            }
            lines.append("decision:    deny: \(answer)")
        case .forward(let target):
            lines.append("decision:    allow: \(describe(target))")
        }
        if let match = decision.match {
            lines.append("entry:       ServiceEntry \(match.entry.namespace)/\(match.entry.name) (\(match.entry.source.path):\(match.entry.source.line)), host \(match.matchedHost), port \(match.port.number) \(match.port.name)")
        }
        lines.append("cluster:     \(decision.cluster)")
        lines.append("route:       \(decision.routeName)")
        lines.append("why:         \(decision.reason)")
        return lines.joined(separator: "\n")
    }

    static func describe(_ target: UpstreamTarget) -> String {
        switch target {
        case .originalDestination(let ip, let port): return "to the original destination \(HostPort(host: ip.description, port: port))"
        case .resolve(let host, let port): return "direct, resolving \(host) (DNS) and dialling port \(port)"
        case .endpoints(let list): return "direct to endpoints \(list.map(\.description).joined(separator: ", "))"
        case .gateway(let authority, let gatewayPort, let proto):
            return "via the egress gateway (\(proto.rawValue), gateway port \(gatewayPort)) for \(authority)"
        }
    }
}

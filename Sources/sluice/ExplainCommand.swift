import ArgumentParser
import Foundation
import SluiceCore

/// `sluice explain`: shows the decision for a destination without sending traffic.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show what the sidecar would do with a destination, and why.",
        discussion: """
            URL forms: http://host[:port]/path, tls://host:port, tcp://ip:port, quic://host[:port] \
            (a UDP flow whose QUIC ClientHello names host; port 443 by default). \
            For http, tls and quic the destination IP is taken from --ip (default 0.0.0.0: unknown). \
            tls://host:443 also prints a quic: line, the same name over HTTP/3. \
            With --log LINE, explains one JSON access-log line instead: what this config does \
            with the traffic it records, and whether that differs from what happened.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Config file. Also from SLUICE_CONFIG.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: "Original destination IP the app dialled (for http/tls).")
    var ip: String = "0.0.0.0"

    @Option(name: .long, help: "Decide as the sidecar or the gateway.")
    var role: String = "sidecar"

    @OptionGroup var workload: WorkloadOptions

    @Option(name: .long, help: ArgumentHelp(
        "Explain one access-log line (JSON, as the sidecar writes it) instead of a URL.", valueName: "line"))
    var log: String?

    @Option(name: .long, help: "HTTP method, for VirtualService method matches (default GET).")
    var method: String = "GET"

    @Option(name: .long, help: "HTTP path, for VirtualService uri matches (default: the URL's path, else /).")
    var path: String?

    @Option(name: .customShort("H"), help: ArgumentHelp("A request header, 'Name: value', for VirtualService header matches; repeatable.", valueName: "header"))
    var header: [String] = []

    @Option(name: .long, help: ArgumentHelp(
        "An address the pod resolved through the DNS proxy, 'IP=HOST'; repeatable. Decides as a sidecar whose DNS proxy is on (also when the config sets dns.proxy): a TCP port of an entry without addresses matches only at such addresses (and at dns.autoAllocate's).",
        valueName: "ip=host"))
    var resolved: [String] = []

    @Argument(help: "http://host[:port]/path, tls://host:port, tcp://ip:port or quic://host[:port]")
    var url: String?

    func validate() throws {
        guard ProxyRole(rawValue: role) != nil else { throw ValidationError("--role must be sidecar or gateway, got \(role)") }
        if (url == nil) == (log == nil) { throw ValidationError("give a URL or --log LINE, not both") }
        for line in header where !line.contains(":") { throw ValidationError("-H: expected 'Name: value', got \(line)") }
        _ = try resolvedTable()
    }

    /// `--resolved IP=HOST` pairs as a table.
    func resolvedTable() throws -> [IPAddress: String] {
        var table: [IPAddress: String] = [:]
        for pair in resolved {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let address = IPAddress(parts[0]), !parts[1].isEmpty else {
                throw ValidationError("--resolved: expected IP=HOST, got \(pair)")
            }
            table[address.unmappedIPv4] = parts[1].lowercased()
        }
        return table
    }

    func run() throws {
        let path = try resolveConfigPath(config)
        guard let destinationIP = IPAddress(ip) else { throw ValidationError("--ip: not an IP address: \(ip)") }
        let snapshot = try loadSnapshot(configPath: path, namespace: workload.resolvedNamespace, identity: try workload.resolvedIdentity())
        for diagnostic in snapshot.diagnostics where diagnostic.isError { printError("\(diagnostic)") }
        // The very decision stage the running proxy calls, built the way it builds it.
        var policy = snapshot.policy(role: ProxyRole(rawValue: role) ?? .sidecar)
        let table = try resolvedTable()
        if policy.role == .sidecar, snapshot.config.dns.proxy || !table.isEmpty {
            policy.resolveNames(autoAllocate: snapshot.config.dns.autoAllocate) { table[$0.unmappedIPv4] }
        }
        if let log {
            print(try ExplainTarget.explain(logLine: log, policy: policy))
            return
        }
        if let quic = try ExplainQUIC.parse(url ?? "") {
            print(ExplainQUIC.explain(
                serverName: quic.serverName, destination: destinationIP, port: quic.port, policy: policy, dns: snapshot.config.dns,
                resolved: table))
            return
        }
        var target = try ExplainTarget.parse(url ?? "", defaultIP: destinationIP)
        if case .http = target.facts.kind {
            let headers = header.map { line -> (String, String) in
                let colon = line.firstIndex(of: ":") ?? line.endIndex
                return (String(line[..<colon]).trimmingCharacters(in: .whitespaces),
                        String(line[line.index(colon, offsetBy: colon == line.endIndex ? 0 : 1)...]).trimmingCharacters(in: .whitespaces))
            }
            target.facts.request = HTTPRequestView(method: method, path: self.path ?? target.path, headers: headers)
        }
        print(ExplainTarget.explain(target, policy: policy))
        if case .tls(let serverName?) = target.facts.kind, target.facts.port == ExplainQUIC.port, policy.role == .sidecar {
            print(ExplainQUIC.line(serverName: serverName, destination: target.facts.destination, policy: policy, dns: snapshot.config.dns, resolved: table))
        }
        if let gateway = policy.gateway, policy.role == .sidecar {
            print("shorthand:   egressGateway: expands to")
            for line in ShorthandRoutes.describe(gateway) { print("             \(line)") }
        }
    }
}

/// Parses explain's URL argument into the facts a connection would present.
struct ExplainTarget {
    var facts: ConnectionFacts
    /// The URL's path (`/` when it has none).
    var path: String = "/"

    static func parse(_ url: String, defaultIP: IPAddress) throws -> ExplainTarget {
        guard let schemeEnd = url.range(of: "://") else {
            throw ValidationError("expected http://host[:port]/path, tls://host:port, tcp://ip:port or quic://host[:port], got \(url)")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        let rest = url[schemeEnd.upperBound...]
        let text = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let authority: Authority
        switch Authority.parse(text, as: scheme == "http" ? .hostAndOptionalPort : .hostAndPort) {
        case .success(let parsed): authority = parsed
        case .failure(let error): throw ValidationError("\(text): \(error)")
        }
        let port = authority.port ?? 80
        switch scheme {
        case "http":
            let rest = rest.dropFirst(text.count)
            return ExplainTarget(
                facts: ConnectionFacts(kind: .http(authority), destination: authority.address ?? defaultIP, port: port),
                path: rest.isEmpty ? "/" : String(rest))
        case "tls":
            return ExplainTarget(facts: ConnectionFacts(
                kind: .tls(serverName: authority.address == nil ? authority.host : nil), destination: authority.address ?? defaultIP, port: port))
        case "tcp":
            guard let ip = authority.address else { throw ValidationError("tcp:// needs an IP address, got \(authority.host)") }
            return ExplainTarget(facts: ConnectionFacts(kind: .tcp, destination: ip, port: port))
        default:
            throw ValidationError("unknown scheme \(scheme): use http, tls, tcp or quic")
        }
    }

    /// What the proxy does with `target`, through the same calls the data path makes: the
    /// listener's decision before reading, then the decision on the first bytes.
    static func explain(_ target: ExplainTarget, policy: Policy) -> String {
        let facts = target.facts
        if let early = policy.decideBeforeReading(destination: facts.destination, port: facts.port) {
            return render(decision: early, facts: facts, policy: policy, note: "decided at accept, before reading a byte: the port is opaque, so whatever is sent is forwarded as TCP")
        }
        return render(decision: policy.decide(facts), facts: facts, policy: policy, note: nil)
    }

    /// What the current config does with the traffic one access-log line records, beside what
    /// the log says happened: a registry change tested against yesterday's traffic.
    static func explain(logLine: String, policy: Policy) throws -> String {
        let logged: LoggedConnection
        switch AccessLogLineReader().read(logLine) {
        case .success(let connection): logged = connection
        case .failure(let reason): throw ValidationError("--log: not a usable access-log line: \(reason.rawValue)")
        case nil: throw ValidationError("--log: the line is empty")
        }
        guard let decision = policy.decide(logged) else {
            throw ValidationError("--log: the line has no original destination (downstream_local_address) to decide on")
        }
        let happened = logged.wasDenied ? "denied" : "let through"
        return render(decision: decision, what: ReplaySummary.destination(logged), policy: policy, note: nil)
            + "\nlogged:      \(happened)" + (logged.destination.map { " (original destination \($0))" } ?? "")
            + ((!logged.wasDenied && decision.isDenied) ? "; this config would now deny it" : "")
            + ((logged.wasDenied && !decision.isDenied) ? "; this config would now allow it" : "")
    }

    static func render(decision: Decision, facts: ConnectionFacts, policy: Policy, note: String?) -> String {
        let what: String
        switch facts.kind {
        case .http(let authority): what = "http \(authority.host):\(facts.port)" + (authority.port.map { $0 == facts.port ? "" : " (Host names port \($0))" } ?? "")
        case .tls(let name): what = "tls \(name ?? "(no SNI)"):\(facts.port)"
        case .tcp: what = "tcp \(HostPort(address: facts.destination, port: facts.port))"
        }
        return render(decision: decision, what: what, policy: policy, note: note)
    }

    static func render(decision: Decision, what: String, policy: Policy, note: String?) -> String {
        var lines: [String] = []
        lines.append("destination: \(what)")
        lines.append("role:        \(policy.role.rawValue)")
        lines.append("mode:        \(policy.mode.rawValue)\(policy.audit ? " (audit)" : "")")
        switch decision.action {
        case .deny:
            lines.append("decision:    deny: \(decision.denial)")
        case .forward(let target) where decision.audited:
            lines.append("decision:    allow (audit mode; REGISTRY_ONLY would deny: \(decision.denial)): \(describe(target))")
        case .forward(let target):
            lines.append("decision:    allow: \(describe(target))")
        }
        if let match = decision.match {
            lines.append("entry:       ServiceEntry \(match.entry.namespace)/\(match.entry.name) (\(match.entry.source.path):\(match.entry.source.line)), host \(match.matchedHost), port \(match.port.number) \(match.port.name)")
        }
        if let route = decision.route {
            let owner = route.virtualService.map { "\($0)" } ?? "Sidecar egressProxy"
            lines.append("routed by:   \(owner) (\(route.source.map(\.description) ?? "?")) \(route.position)")
            lines.append("destination: \(route.destination.host)\(route.destination.port.map { ":\($0)" } ?? "")\(route.destination.subset.map { " subset \($0)" } ?? "")\(route.destination.weight > 0 ? " weight \(route.destination.weight)" : "")")
            for line in describe(behaviour: route.behaviour) { lines.append("behaviour:   \(line)") }
            if let policy = route.trafficPolicy, let rule = route.destinationRule {
                lines.append("trafficPolicy: \(rule): \(describe(policy: policy))")
            }
            if !decision.dependsOnlyOnAuthority { lines.append("note:        this decision depends on the request (path, method, headers, weights or fault), not only on its authority") }
        } else if let own = decision.clusterPolicy {
            lines.append("trafficPolicy: \(own.rule): \(describe(policy: own.policy))")
        }
        if let tls = decision.upstreamTLS { lines.append("upstream tls: \(tls)") }
        lines.append("cluster:     \(decision.cluster)")
        lines.append("route:       \(decision.routeName.isEmpty ? "(unnamed route)" : decision.routeName)")
        lines.append("why:         \(decision.reason)")
        if let note { lines.append("note:        \(note)") }
        return lines.joined(separator: "\n")
    }

    static func describe(behaviour: HTTPRouteBehaviour) -> [String] {
        var lines: [String] = []
        if let timeout = behaviour.timeout { lines.append("timeout \(RoutingDurations.format(timeout))") }
        if let retries = behaviour.retries {
            lines.append("retries \(retries.attempts) on \(retries.retryOn.joined(separator: ","))" + (retries.perTryTimeout.map { ", perTryTimeout \(RoutingDurations.format($0))" } ?? ""))
        }
        for (name, ops) in [("request", behaviour.requestHeaders), ("response", behaviour.responseHeaders)] where !ops.isEmpty {
            lines.append("\(name) headers: set \(ops.setPairs.map { "\($0.name)=\($0.value)" }), add \(ops.addPairs.map { "\($0.name)=\($0.value)" }), remove \(ops.remove)")
        }
        if let rewrite = behaviour.rewrite { lines.append("rewrite uri \(rewrite.uri ?? "-") authority \(rewrite.authority ?? "-")") }
        if let redirect = behaviour.redirect { lines.append("redirect \(redirect.code) to \(redirect.scheme ?? "")://\(redirect.authority ?? "(same host)")\(redirect.uri ?? "")") }
        if let fault = behaviour.fault {
            if let abort = fault.abort { lines.append("fault abort \(abort.status) for \(abort.percent)%") }
            if let delay = fault.delay { lines.append("fault delay \(RoutingDurations.format(delay.duration)) for \(delay.percent)%") }
        }
        return lines
    }

    static func describe(policy: TrafficPolicy) -> String {
        var parts: [String] = []
        if let pool = policy.connectionPool {
            let limits = ClusterLimits(pool)
            func shown(_ value: Int) -> String { value == ClusterLimits.unlimited ? "-" : String(value) }
            var fields = [
                "maxConnections \(shown(limits.maxConnections))", "http1MaxPendingRequests \(shown(limits.maxPendingRequests))",
                "http2MaxRequests \(shown(limits.maxRequests))", "maxRetries \(shown(limits.maxRetries))",
            ]
            if let perConnection = limits.maxRequestsPerConnection { fields.append("maxRequestsPerConnection \(perConnection)") }
            if let connect = limits.connectTimeout { fields.append("connectTimeout \(RoutingDurations.format(connect))") }
            if let idle = limits.idleTimeout { fields.append("idleTimeout \(RoutingDurations.format(idle))") }
            parts.append("connectionPool(\(fields.joined(separator: ", ")))")
        }
        if let outlier = policy.outlierDetection {
            let settings = OutlierDetector.Settings(outlier)
            parts.append(
                "outlierDetection(consecutive5xxErrors \(settings.consecutive5xx), consecutiveGatewayErrors \(settings.consecutiveGateway), "
                    + "interval \(RoutingDurations.format(settings.interval)), baseEjectionTime \(RoutingDurations.format(settings.baseEjectionTime)), "
                    + "maxEjectionPercent \(settings.maxEjectionPercent))")
        }
        if policy.connectionPool != nil || policy.outlierDetection != nil || policy.loadBalancer != nil {
            parts.append("loadBalancer \(LoadBalancerPolicy(policy.loadBalancer).rawValue)")
        }
        if let tls = policy.tls { parts.append("tls \(tls.mode)") }
        return parts.joined(separator: ", ")
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

/// Cross-references between routing objects and the registry, checked the way `istioctl
/// analyze` checks them: each problem a warning at the referring object's `path:line`, so one
/// mistake never stops the rest from loading.
public enum RoutingAnalysis {
    /// Every problem found in `routing` against itself and `entries`.
    public static func analyze(_ routing: RoutingObjects, entries: [ServiceEntry]) -> [ConfigDiagnostic] {
        var diagnostics: [ConfigDiagnostic] = []
        let gateways = Set(routing.gateways.map { "\($0.id.namespace)/\($0.id.name)" })
        for service in routing.virtualServices {
            func warn(_ message: String) {
                diagnostics.append(ConfigDiagnostic(
                    severity: .warning, path: service.source.path, line: service.source.line,
                    resource: service.id.description, message: message))
            }
            for gateway in Set(service.gateways + service.routes.flatMap(\.matchGateways)).sorted() where gateway != "mesh" {
                let qualified = gateway.contains("/") ? gateway : "\(service.id.namespace)/\(gateway)"
                if !gateways.contains(qualified) {
                    warn("references gateway \(qualified), which no Gateway defines (istioctl analyze: IST0101 ReferencedResourceNotFound)")
                }
            }
            for destination in service.routes.flatMap(\.destinations) {
                let known = isRegistered(destination.host, entries: entries) || isKubernetesService(destination.host)
                if !known {
                    warn("routes to \(destination.host), which is neither registered by a ServiceEntry nor a Kubernetes service name (IST0101)")
                }
                if let subset = destination.subset, !subsetDefined(subset, host: destination.host, in: routing.destinationRules) {
                    warn("routes to subset \(subset) of \(destination.host), which no DestinationRule for that host defines (IST0101)")
                }
            }
            // Istio's egress gateway task: a host with resolution NONE sent through a gateway is
            // forwarded by the gateway to the address it was dialled at — the gateway itself.
            if service.gateways.contains(where: { $0 != "mesh" }) {
                for host in service.hosts {
                    if let entry = entries.first(where: { $0.resolution == .none && $0.hosts.contains(host) }) {
                        warn("routes \(host) through a gateway, but \(entry.resourceName) (\(entry.source)) has resolution NONE: the gateway would forward to the address it was dialled at, itself (a loop); use resolution DNS")
                    }
                }
            }
        }
        diagnostics += pendingDataPath(routing)
        for sidecar in routing.sidecars {
            if let proxy = sidecar.egressProxy, !isRegistered(proxy.host, entries: entries), !isKubernetesService(proxy.host) {
                diagnostics.append(ConfigDiagnostic(
                    severity: .warning, path: sidecar.source.path, line: sidecar.source.line, resource: sidecar.id.description,
                    message: "egressProxy \(proxy.host) is neither registered by a ServiceEntry nor a Kubernetes service name (IST0101)"))
            }
        }
        for rule in routing.destinationRules where !isRegistered(rule.host, entries: entries) && !isKubernetesService(rule.host) {
            diagnostics.append(ConfigDiagnostic(
                severity: .warning, path: rule.source.path, line: rule.source.line, resource: rule.id.description,
                message: "host \(rule.host) is neither registered by a ServiceEntry nor a Kubernetes service name (IST0101)"))
        }
        diagnostics += serverVerification(routing)
        return diagnostics
    }

    /// istioctl analyze's IST0128 / IST0129 (SIMPLE or MUTUAL without `caCertificates`), as a
    /// note: Sluice, like Istio since 1.20, then verifies the server against the system roots;
    /// `insecureSkipVerify` (no verification at all) is a warning.
    static func serverVerification(_ routing: RoutingObjects) -> [ConfigDiagnostic] {
        var diagnostics: [ConfigDiagnostic] = []
        for rule in routing.destinationRules {
            let policies = [rule.trafficPolicy].compactMap { $0 } + rule.subsetDetails.compactMap(\.trafficPolicy)
            var levels: [(where: String, tls: ClientTLSSettings)] = []
            for policy in policies {
                if let tls = policy.tls { levels.append(("", tls)) }
                for (port, level) in policy.portLevel.sorted(by: { $0.key < $1.key }) {
                    if let tls = level.tls { levels.append((" for port \(port)", tls)) }
                }
            }
            for (place, tls) in levels where tls.mode == "SIMPLE" || tls.mode == "MUTUAL" {
                let code = place.isEmpty ? "IST0128" : "IST0129"
                if tls.insecureSkipVerify {
                    diagnostics.append(ConfigDiagnostic(
                        severity: .warning, path: rule.source.path, line: rule.source.line, resource: rule.id.description,
                        message: "tls mode \(tls.mode)\(place) has insecureSkipVerify: the server of \(rule.host) is not verified at all"))
                } else if tls.caCertificates == nil, tls.credentialName == nil {
                    diagnostics.append(ConfigDiagnostic(
                        severity: .note, path: rule.source.path, line: rule.source.line, resource: rule.id.description,
                        message: "tls mode \(tls.mode)\(place) has no caCertificates: the server of \(rule.host) is verified against the system roots (istioctl analyze: \(code))"))
                }
            }
        }
        return diagnostics
    }

    /// Notes for what the decision hands the data path that it does not apply yet (see
    /// docs/configuration.md and docs/http2.md): of DestinationRule traffic policies,
    /// `loadBalancer: PASSTHROUGH` (balanced as ROUND_ROBIN), CONNECT tunnels, which apply
    /// none, and `h2UpgradePolicy: UPGRADE` for HTTP/1 clients. The rest — connectionPool,
    /// outlierDetection, loadBalancer, a retry's perTryTimeout — is applied to HTTP/1
    /// requests, HTTP/2 streams and opaque connections.
    static func pendingDataPath(_ routing: RoutingObjects) -> [ConfigDiagnostic] {
        var diagnostics: [ConfigDiagnostic] = []
        for rule in routing.destinationRules {
            let policies = [rule.trafficPolicy].compactMap { $0 } + rule.subsetDetails.compactMap(\.trafficPolicy)
            var fields: Set<String> = []
            var passthrough = false
            var upgrade = false
            for policy in policies + policies.flatMap({ Array($0.portLevel.values) }) {
                if policy.connectionPool?.h2UpgradePolicy == .upgrade { upgrade = true }
                if policy.connectionPool != nil { fields.insert("connectionPool") }
                if policy.outlierDetection != nil { fields.insert("outlierDetection") }
                if policy.loadBalancer != nil { fields.insert("loadBalancer") }
                if LoadBalancerPolicy(policy.loadBalancer) == .passthrough { passthrough = true }
            }
            guard !fields.isEmpty else { continue }
            var message = "\(fields.sorted().joined(separator: ", ")) applied to HTTP/1 requests, HTTP/2 streams and TCP/TLS connections; "
                + "to CONNECT tunnels: pending"
            if upgrade { message += "; h2UpgradePolicy UPGRADE applies to HTTP/2 clients' streams (HTTP/1 clients are not upgraded: pending)" }
            if passthrough { message += "; loadBalancer PASSTHROUGH balances as ROUND_ROBIN (the original destination: pending)" }
            diagnostics.append(ConfigDiagnostic(
                severity: .note, path: rule.source.path, line: rule.source.line, resource: rule.id.description, message: message))
        }
        return diagnostics
    }

    /// Some entry registers `host` (exactly, or under one of its wildcards).
    static func isRegistered(_ host: String, entries: [ServiceEntry]) -> Bool {
        entries.contains { entry in
            entry.hosts.contains { registered in
                if registered == host { return true }
                if registered.hasPrefix("*") { return host.hasSuffix(registered.dropFirst()) && host.count > registered.count - 1 }
                return false
            }
        }
    }

    /// A Kubernetes service name: a short name, `name.namespace`, or one under `.svc`.
    static func isKubernetesService(_ host: String) -> Bool {
        let labels = host.split(separator: ".")
        return labels.count <= 2 || host.contains(".svc.") || host.hasSuffix(".svc")
    }

    private static func subsetDefined(_ subset: String, host: String, in rules: [DestinationRule]) -> Bool {
        let short = host.split(separator: ".").first.map(String.init) ?? host
        return rules.contains { rule in
            (rule.host == host || rule.host == short || host.hasPrefix(rule.host + ".")) && rule.subsets.contains(subset)
        }
    }
}

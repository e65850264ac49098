import SluiceCore
import XCTest

/// VirtualService, Gateway, DestinationRule, Sidecar and ASMEgressTrafficPolicy applied by
/// `Policy` through the `RouteTable`, on the fixtures of Istio's "Egress Gateways" task (HTTP and
/// HTTPS passthrough, verbatim), the VirtualService / DestinationRule / Sidecar reference pages'
/// examples and ASM's ASMEgressTrafficPolicy Example 1.
final class RoutingPolicyTests: XCTestCase {
    static let gatewayService = "istio-egressgateway.istio-system.svc.cluster.local"
    static let anyIP = IPAddress("10.0.0.9")!

    /// The decision stage a proxy builds from `fixture` for `role` and `identity`.
    func policy(
        _ fixtures: [String], role: ProxyRole = .sidecar, identity: WorkloadIdentity = WorkloadIdentity(),
        mode: OutboundTrafficPolicyMode? = .registryOnly
    ) throws -> Policy {
        let loaded = RegistryLoader.load(paths: fixtures.map { "registry/istio-routing/\($0)" }, relativeTo: RegistryFixtures.root)
        XCTAssertFalse(loaded.hasErrors, loaded.diagnostics.filter(\.isError).map(\.description).joined(separator: "\n"))
        var snapshot = SluiceSnapshot(config: SluiceConfig(mode: mode), entries: loaded.entries, namespace: identity.namespace)
        snapshot.routing = loaded.routing
        snapshot.identity = identity
        return snapshot.policy(role: role)
    }

    func http(_ policy: Policy, _ host: String, port: Int = 80, method: String = "GET", path: String = "/", headers: [(String, String)] = [],
              withRequest: Bool = true) -> Decision {
        policy.decide(ConnectionFacts(
            kind: .http(host: host), destination: Self.anyIP, port: port,
            request: withRequest ? HTTPRequestView(method: method, path: path, headers: headers) : nil))
    }

    func tls(_ policy: Policy, _ sni: String?, port: Int = 443) -> Decision {
        policy.decide(ConnectionFacts(kind: .tls(serverName: sni), destination: Self.anyIP, port: port))
    }

    // MARK: Istio's Egress Gateways task, HTTP

    func testTaskHTTPAtTheSidecarGoesToTheGatewayServiceWithItsSubsetCluster() throws {
        let sidecar = try policy(["01-egress-gateway-http.yaml"])
        let decision = http(sidecar, "edition.cnn.com")
        XCTAssertEqual(decision.action, .forward(.resolve(host: Self.gatewayService, port: 80)))
        XCTAssertEqual(decision.cluster, "outbound|80|cnn|\(Self.gatewayService)")
        XCTAssertEqual(decision.route?.virtualService?.name, "direct-cnn-through-egress-gateway")
        XCTAssertEqual(decision.route?.position, "http[0] match[0]")
        XCTAssertTrue(decision.dependsOnlyOnAuthority)
        XCTAssertTrue(decision.reason.contains("Kubernetes Service"), decision.reason)
        // Another port: the task's routes name port 80 only, so the registry decides as before
        // (443 is the entry's HTTPS port; plain HTTP there is not by Host).
        XCTAssertNil(http(sidecar, "edition.cnn.com:443", port: 443).route)
    }

    func testTaskHTTPAtTheGatewayRoutesToTheHostAndByTheHostsPort() throws {
        let labels = WorkloadIdentity(namespace: "istio-system", labels: ["istio": "egressgateway", "app": "istio-egressgateway"])
        let gateway = try policy(["01-egress-gateway-http.yaml"], role: .gateway, identity: labels)
        let decision = http(gateway, "edition.cnn.com")
        XCTAssertEqual(decision.action, .forward(.resolve(host: "edition.cnn.com", port: 80)))
        XCTAssertEqual(decision.cluster, "outbound|80||edition.cnn.com")
        XCTAssertEqual(decision.route?.position, "http[1] match[0]")
        // A Host naming another port still matches the gateway's virtual host (host:*).
        let otherPort = http(gateway, "edition.cnn.com:8080")
        XCTAssertEqual(otherPort.action, .forward(.resolve(host: "edition.cnn.com", port: 80)))
        // A host no bound VirtualService has: Envoy's 404 NR.
        let unknown = http(gateway, "example.org")
        XCTAssertEqual(unknown.action, .deny)
        XCTAssertEqual(unknown.denial, .httpStatus(404))
    }

    func testAGatewayWhoseLabelsNoGatewaySelectsKeepsTodaysBehaviour() throws {
        let unlabelled = try policy(["01-egress-gateway-http.yaml"], role: .gateway)
        XCTAssertNil(unlabelled.routes, "nothing binds: the table is empty and Policy decides as before")
        let decision = http(unlabelled, "edition.cnn.com")
        XCTAssertEqual(decision.routeName, "edition.cnn.com:80")
        XCTAssertEqual(decision.action, .forward(.resolve(host: "edition.cnn.com", port: 80)))
    }

    func testWithoutRoutingObjectsTheDecisionIsUnchanged() throws {
        let loaded = RegistryLoader.load(paths: ["registry/istio-routing/01-egress-gateway-http.yaml"], relativeTo: RegistryFixtures.root)
        let plain = Policy(mode: .registryOnly, registry: Registry(loaded.entries), gateway: nil)
        var snapshot = SluiceSnapshot(config: SluiceConfig(mode: .registryOnly), entries: loaded.entries)
        XCTAssertNil(snapshot.policy(role: .sidecar).routes)
        snapshot.routing = RoutingObjects()
        for host in ["edition.cnn.com", "example.org", "edition.cnn.com:8080"] {
            XCTAssertEqual(http(plain, host), http(snapshot.policy(role: .sidecar), host), host)
        }
    }

    // MARK: Istio's Egress Gateways task, HTTPS passthrough

    func testTaskHTTPSPassthroughAtBothRoles() throws {
        let sidecar = try policy(["03-egress-gateway-https-passthrough.yaml"])
        let atSidecar = tls(sidecar, "edition.cnn.com")
        XCTAssertEqual(atSidecar.action, .forward(.resolve(host: Self.gatewayService, port: 443)))
        XCTAssertEqual(atSidecar.cluster, "outbound|443|cnn|\(Self.gatewayService)")
        XCTAssertEqual(atSidecar.route?.position, "tls[0] match[0]")

        let gateway = try policy(["03-egress-gateway-https-passthrough.yaml"], role: .gateway,
                                 identity: WorkloadIdentity(namespace: "istio-system", labels: ["istio": "egressgateway"]))
        let atGateway = tls(gateway, "edition.cnn.com")
        XCTAssertEqual(atGateway.action, .forward(.resolve(host: "edition.cnn.com", port: 443)))
        XCTAssertEqual(atGateway.cluster, "outbound|443||edition.cnn.com")
        let other = tls(gateway, "example.org")
        XCTAssertEqual(other.action, .deny)
        XCTAssertEqual(other.denial, .close)
    }

    // MARK: http matches and behaviours

    func testHTTPMatchesLookAtTheRequestAndCarryTheirBehaviours() throws {
        let sidecar = try policy(["05-http-routes.yaml"])
        let catalog = http(sidecar, "api.example.com", path: "/consumercatalog/items?page=2")
        XCTAssertEqual(catalog.routeName, "reviews-v2-routes")
        XCTAssertEqual(catalog.route?.position, "http[0] match[1]")
        XCTAssertEqual(catalog.action, .forward(.endpoints([HostPort(host: "192.0.2.102", port: 80)])), "subset v2 keeps the v2 endpoint")
        XCTAssertEqual(catalog.cluster, "outbound|80|v2|api.example.com")
        XCTAssertEqual(catalog.route?.behaviour.rewrite, HTTPRewrite(uri: "/newcatalog", authority: "api-v2.example.com"))
        XCTAssertEqual(catalog.route?.trafficPolicy?.loadBalancer, "ROUND_ROBIN", "port-level settings win over the subset's RANDOM")
        XCTAssertEqual(catalog.route?.trafficPolicy?.connectionPool?.maxConnections, 100)
        XCTAssertFalse(catalog.dependsOnlyOnAuthority)

        let redirect = http(sidecar, "api.example.com", path: "/v1/getProductRatings")
        XCTAssertEqual(redirect.routeName, "old-path")
        XCTAssertEqual(redirect.route?.behaviour.redirect,
                       HTTPRedirect(uri: "/v1/bookRatings", authority: "newratings.default.svc.cluster.local", code: 308))

        let jason = http(sidecar, "api.example.com", method: "POST", path: "/x", headers: [("End-User", "jason")])
        XCTAssertEqual(jason.routeName, "admin-post")
        XCTAssertEqual(jason.route?.behaviour.fault?.abort?.status, 400)
        XCTAssertEqual(jason.route?.behaviour.fault?.abort?.percent, 0.1)
        XCTAssertEqual(jason.route?.behaviour.fault?.delay?.duration, .seconds(5))

        let other = http(sidecar, "api.example.com", method: "POST", path: "/x", headers: [("end-user", "bob")])
        XCTAssertEqual(other.routeName, "default")
        XCTAssertEqual(other.action, .forward(.endpoints([HostPort(host: "192.0.2.101", port: 80)])))
        let behaviour = try XCTUnwrap(other.route?.behaviour)
        XCTAssertEqual(behaviour.timeout, .seconds(10))
        XCTAssertEqual(behaviour.retries, RetryPolicy(attempts: 3, perTryTimeout: .seconds(2), retryOn: ["gateway-error", "connect-failure", "refused-stream"]))
        XCTAssertEqual(behaviour.requestHeaders.setPairs, [.init(name: "test", value: "true")])
        XCTAssertEqual(behaviour.responseHeaders.addPairs, [.init(name: "foo", value: "bar")])
        XCTAssertEqual(behaviour.responseHeaders.remove, ["baz"])
        XCTAssertEqual(other.route?.trafficPolicy?.outlierDetection?.baseEjectionTime, .seconds(900))

        // Without a request view (today's call site), uri/method/header matches cannot match.
        XCTAssertEqual(http(sidecar, "api.example.com", path: "/wpcatalog", withRequest: false).routeName, "default")
    }

    /// The VirtualService reference's HTTPMatchRequest: conditions inside one item are ANDed,
    /// items are ORed, `uri` reads the path without its query, header names are case-blind.
    func testMatchConditionsAreAndedWithinAnItemAndOredAcrossItems() throws {
        let sidecar = try policy(["05-http-routes.yaml"])
        // method POST without the header, or the header with GET: admin-post's item is not whole.
        XCTAssertEqual(http(sidecar, "api.example.com", method: "GET", path: "/x", headers: [("end-user", "jason")]).routeName, "default")
        XCTAssertEqual(http(sidecar, "api.example.com", method: "POST", path: "/x").routeName, "default")
        XCTAssertEqual(http(sidecar, "api.example.com", method: "POST", path: "/x", headers: [("END-USER", "jane")]).routeName, "admin-post")
        // The regex is a whole match (Envoy's safe_regex): "xjason" is not "jason|ja.*".
        XCTAssertEqual(http(sidecar, "api.example.com", method: "POST", path: "/x", headers: [("end-user", "xjason")]).routeName, "default")
        // Either item of reviews-v2-routes; a prefix, not a path segment.
        XCTAssertEqual(http(sidecar, "api.example.com", path: "/wpcatalogue").route?.position, "http[0] match[0]")
        XCTAssertEqual(http(sidecar, "api.example.com", path: "/consumercatalog").route?.position, "http[0] match[1]")
        // exact compares the path without the query, and only it.
        XCTAssertEqual(http(sidecar, "api.example.com", path: "/v1/getProductRatings?id=7").routeName, "old-path")
        XCTAssertEqual(http(sidecar, "api.example.com", path: "/v1/getProductRatings/7").routeName, "default")
    }

    func testWeightedSplitUsesTheInjectedPicker() throws {
        var sidecar = try policy(["05-http-routes.yaml"])
        sidecar.weightPicker = { _ in 74 }
        let first = http(sidecar, "split.example.com")
        XCTAssertEqual(first.cluster, "outbound|80||egress-a.istio-system.svc.cluster.local")
        XCTAssertFalse(first.dependsOnlyOnAuthority, "a weighted choice is made per request")
        sidecar.weightPicker = { _ in 75 }
        XCTAssertEqual(http(sidecar, "split.example.com").cluster, "outbound|80||egress-b.istio-system.svc.cluster.local")
        var counts: [String: Int] = [:]
        sidecar.weightPicker = { Int.random(in: 0..<$0) }
        for _ in 0..<400 { counts[http(sidecar, "split.example.com").cluster, default: 0] += 1 }
        XCTAssertEqual(counts.count, 2)
    }

    func testAPreviousDecisionIsReusedOnlyForTheSameRouteAndDestination() throws {
        var sidecar = try policy(["05-http-routes.yaml"])
        func decide(_ path: String, previous: Decision?) -> Decision {
            sidecar.decide(ConnectionFacts(
                kind: .http(host: "api.example.com"), destination: Self.anyIP, port: 80,
                request: HTTPRequestView(method: "GET", path: path, headers: []), previous: previous))
        }
        let catalog = decide("/consumercatalog/items", previous: nil)
        XCTAssertNotNil(catalog.routeKey)
        // Marked so that a reused decision is told apart from one built again.
        var marked = catalog
        marked.reason = "the previous one"
        XCTAssertEqual(decide("/consumercatalog/other?x=1", previous: marked).reason, "the previous one", "same route, same match")
        let other = decide("/elsewhere", previous: marked)
        XCTAssertEqual(other.routeName, "default")
        XCTAssertNotEqual(other.reason, "the previous one", "another route is decided afresh")
        XCTAssertNotEqual(other.routeKey, catalog.routeKey)

        // A weighted route: the destination picked is part of the key.
        sidecar.weightPicker = { _ in 74 }
        func split(previous: Decision?) -> Decision {
            sidecar.decide(ConnectionFacts(kind: .http(host: "split.example.com"), destination: Self.anyIP, port: 80,
                                           request: HTTPRequestView(method: "GET", path: "/"), previous: previous))
        }
        var first = split(previous: nil)
        first.reason = "the previous one"
        XCTAssertEqual(split(previous: first).reason, "the previous one")
        sidecar.weightPicker = { _ in 75 }
        let second = split(previous: first)
        XCTAssertEqual(second.cluster, "outbound|80||egress-b.istio-system.svc.cluster.local")
        XCTAssertNotEqual(second.reason, "the previous one")
    }

    // MARK: Retries as Envoy retries

    func testRetryOnlyWhereARequestMayBeSentAgain() {
        let policy = RetryPolicy(attempts: 2, retryOn: ["5xx", "reset", "connect-failure"])
        XCTAssertTrue(policy.shouldRetry(after: .reset, attempt: 1, method: "GET", bodyAlreadySent: false))
        XCTAssertFalse(policy.shouldRetry(after: .reset, attempt: 1, method: "POST", bodyAlreadySent: false), "a POST may have been acted on")
        XCTAssertTrue(policy.shouldRetry(after: .connectFailure, attempt: 1, method: "POST", bodyAlreadySent: false), "never reached the server")
        XCTAssertFalse(policy.shouldRetry(after: .status(503), attempt: 1, method: "PUT", bodyAlreadySent: true), "the body is gone")
        XCTAssertTrue(policy.shouldRetry(after: .status(503), attempt: 2, method: "GET", bodyAlreadySent: false))
        XCTAssertFalse(policy.shouldRetry(after: .status(503), attempt: 3, method: "GET", bodyAlreadySent: false), "attempts spent")
        XCTAssertFalse(policy.shouldRetry(after: .status(404), attempt: 1, method: "GET", bodyAlreadySent: false))
        let gatewayErrors = RetryPolicy(attempts: 1, retryOn: ["gateway-error"])
        XCTAssertTrue(gatewayErrors.shouldRetry(after: .status(504), attempt: 1, method: "GET", bodyAlreadySent: false))
        XCTAssertTrue(gatewayErrors.shouldRetry(after: .reset, attempt: 1, method: "GET", bodyAlreadySent: false))
        XCTAssertTrue(RetryPolicy(attempts: 1, retryOn: ["503"]).shouldRetry(after: .status(503), attempt: 1, method: "GET", bodyAlreadySent: false),
                      "Istio's bare status codes")
        XCTAssertFalse(gatewayErrors.shouldRetry(after: .status(500), attempt: 1, method: "GET", bodyAlreadySent: false))
    }

    // MARK: ASM

    func testASMExampleRoutesTheNamedWorkloadAndBlocksTheOthers() throws {
        let sleepA = try policy(["04-asm-egress-traffic-policy.yaml"], identity: WorkloadIdentity(namespace: "mytest", labels: ["app": "sleep-a"]),
                                mode: .allowAny)
        let routed = http(sleepA, "www.httpbin.org")
        XCTAssertEqual(routed.action, .forward(.resolve(host: "egressgateway-a.istio-egress.svc.cluster.local", port: 80)))
        XCTAssertEqual(routed.routeName, "httpbin-service-http")

        let sleepB = try policy(["04-asm-egress-traffic-policy.yaml"], identity: WorkloadIdentity(namespace: "mytest", labels: ["app": "sleep-b"]),
                                mode: .allowAny)
        let blocked = http(sleepB, "httpbin.org")
        XCTAssertEqual(blocked.action, .deny)
        XCTAssertEqual(blocked.cluster, Decision.blackHoleCluster)
        XCTAssertEqual(http(sleepB, "example.org").cluster, Decision.passthroughCluster, "other hosts keep the mode")

        let gateway = try policy(["04-asm-egress-traffic-policy.yaml"], role: .gateway,
                                 identity: WorkloadIdentity(namespace: "istio-egress", labels: ["istio": "egressgateway-a"]))
        let atGateway = http(gateway, "httpbin.org")
        XCTAssertEqual(atGateway.action, .forward(.resolve(host: "httpbin.org", port: 80)))
        XCTAssertEqual(atGateway.cluster, "outbound|80||httpbin.org")
    }

    // MARK: Sidecar resources

    func testSidecarSelectionVisibilityModeAndEgressProxy() throws {
        // Root namespace default: REGISTRY_ONLY over the file's ALLOW_ANY, everything imported.
        let elsewhere = try policy(["06-sidecars.yaml"], identity: WorkloadIdentity(namespace: "shop"), mode: .allowAny)
        XCTAssertEqual(elsewhere.mode, .registryOnly)
        XCTAssertNil(elsewhere.routes, "a Sidecar without routes or egressProxy leaves the hot path as it was")
        XCTAssertEqual(http(elsewhere, "api.example.com").action, .forward(.resolve(host: "api.example.com", port: 80)))

        // The namespace's own Sidecar hides api.example.com (namespace default).
        let restricted = try policy(["06-sidecars.yaml"], identity: WorkloadIdentity(namespace: "restricted"), mode: .registryOnly)
        XCTAssertEqual(restricted.registry.entries.count, 0, "api.example.com is not imported")
        XCTAssertEqual(http(restricted, "api.example.com").action, .deny)

        // The selected Sidecar: ALLOW_ANY with an egressProxy for unregistered traffic.
        let ratings = try policy(["06-sidecars.yaml"], identity: WorkloadIdentity(namespace: "restricted", labels: ["app": "ratings"]))
        XCTAssertEqual(ratings.routes?.sidecar?.id.name, "ratings")
        XCTAssertEqual(ratings.mode, .allowAny)
        let proxied = http(ratings, "unregistered.example.net")
        XCTAssertEqual(proxied.action, .forward(.resolve(host: "squid.egress.svc.cluster.local", port: 3128)))
        XCTAssertEqual(proxied.cluster, "outbound|3128||squid.egress.svc.cluster.local")
        XCTAssertEqual(proxied.routeName, Decision.allowAnyRoute)
        XCTAssertEqual(http(ratings, "api.example.com").action, .forward(.resolve(host: "api.example.com", port: 80)), "registered hosts are not proxied")
    }

    func testSidecarSelectionOrder() {
        let source = SourceLocation(path: "s.yaml", line: 1)
        func sidecar(_ ns: String, _ name: String, _ selector: [String: String]?) -> SidecarResource {
            SidecarResource(id: RoutingObjectID(kind: "Sidecar", namespace: ns, name: name), workloadSelector: selector, egressHosts: [],
                            outboundMode: nil, egressProxyHost: nil, source: source)
        }
        let all = [sidecar("istio-system", "root", nil), sidecar("prod", "default", nil), sidecar("prod", "web", ["app": "web"])]
        XCTAssertEqual(SidecarScope.select(all, for: WorkloadIdentity(namespace: "prod", labels: ["app": "web"]))?.id.name, "web")
        XCTAssertEqual(SidecarScope.select(all, for: WorkloadIdentity(namespace: "prod", labels: ["app": "db"]))?.id.name, "default")
        XCTAssertEqual(SidecarScope.select(all, for: WorkloadIdentity(namespace: "dev"))?.id.name, "root")
        XCTAssertNil(SidecarScope.select([sidecar("prod", "default", nil)], for: WorkloadIdentity(namespace: "dev")))
    }

    func testAnEgressListenerWithAPortImportsItsHostsOnThatPortOnly() throws {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: api, namespace: default}
            spec:
              hosts: [api.example.com]
              ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: tls, protocol: TLS}]
              resolution: DNS
            ---
            apiVersion: networking.istio.io/v1
            kind: Sidecar
            metadata: {name: default, namespace: default}
            spec:
              egress:
              - port: {number: 80, protocol: HTTP, name: http}
                hosts: ["*/api.example.com"]
            """
        let loaded = RegistryLoader.parse(yaml: yaml, path: "sidecar-port.yaml")
        XCTAssertFalse(loaded.hasErrors, loaded.diagnostics.map(\.description).joined(separator: "\n"))
        var snapshot = SluiceSnapshot(config: SluiceConfig(mode: .registryOnly), entries: loaded.entries)
        snapshot.routing = loaded.routing
        let policy = snapshot.policy(role: .sidecar)
        XCTAssertEqual(policy.registry.entries.first?.ports.map(\.number), [80])
        XCTAssertEqual(http(policy, "api.example.com").action, .forward(.resolve(host: "api.example.com", port: 80)))
        XCTAssertEqual(tls(policy, "api.example.com").action, .deny, "443 is not imported")
    }

    // MARK: TCP routes

    func testTCPRouteByDestinationSubnet() throws {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: db}
            spec:
              hosts: [db.example.com]
              tcp:
              - match:
                - port: 5432
                  destinationSubnets: [192.0.2.0/24]
                route:
                - destination: {host: db-proxy.egress.svc.cluster.local, port: {number: 6432}}
            """
        let loaded = RegistryLoader.parse(yaml: yaml, path: "db.yaml")
        XCTAssertFalse(loaded.hasErrors, loaded.diagnostics.map(\.description).joined(separator: "\n"))
        var policy = Policy(mode: .registryOnly, registry: Registry(), gateway: nil)
        policy.routes = RouteTable.compile(loaded.routing, role: .sidecar, identity: WorkloadIdentity())
        let early = policy.decideBeforeReading(destination: IPAddress("192.0.2.7")!, port: 5432)
        XCTAssertEqual(early?.action, .forward(.resolve(host: "db-proxy.egress.svc.cluster.local", port: 6432)))
        XCTAssertEqual(early?.cluster, "outbound|6432||db-proxy.egress.svc.cluster.local")
        XCTAssertNil(policy.decideBeforeReading(destination: IPAddress("198.51.100.7")!, port: 5432))
    }

    // MARK: egressGateway shorthand

    func testTheShorthandExpandsToMeshRoutesWithoutChangingTheDecision() {
        let gateway = EgressGatewayConfig(addresses: ["192.0.2.20"], hosts: ["*.example.com"])
        let service = ShorthandRoutes.expand(gateway)
        XCTAssertEqual(service.gateways, ["mesh"])
        XCTAssertEqual(service.routes.map(\.kind), [.http, .tls])
        XCTAssertEqual(service.routes.first?.destinations.first, RouteDestination(host: "192.0.2.20", port: 80, weight: 100))
        XCTAssertEqual(ShorthandRoutes.describe(gateway).count, 2)
    }
}

/// A DestinationRule with no VirtualService routing its host (Istio's "Circuit Breaking" task):
/// the decision carries the rule's policy for the port, for the data path to apply per cluster.
extension RoutingPolicyTests {
    func testADestinationRuleAppliesWithoutAVirtualService() throws {
        let policy = try self.policy(["08-circuit-breaking.yaml"])
        let decision = policy.decide(ConnectionFacts(kind: .http(host: "httpbin.org:8000"), destination: RoutingPolicyTests.anyIP, port: 8000))
        XCTAssertEqual(decision.action, .forward(.resolve(host: "httpbin.org", port: 8000)))
        XCTAssertNil(decision.route, "no VirtualService")
        let own = try XCTUnwrap(decision.clusterPolicy)
        XCTAssertEqual(own.rule.name, "httpbin")
        XCTAssertTrue(own.appliesInDataPath)
        let limits = ClusterLimits(own.policy.connectionPool)
        XCTAssertEqual([limits.maxConnections, limits.maxPendingRequests, limits.maxRequestsPerConnection], [1, 1, 1])
        XCTAssertEqual(OutlierDetector.Settings(try XCTUnwrap(own.policy.outlierDetection)).baseEjectionTime, .seconds(180))
        let unruled = policy.decide(ConnectionFacts(kind: .http(host: "unruled.example.com"), destination: RoutingPolicyTests.anyIP, port: 80))
        XCTAssertNil(unruled.clusterPolicy)
    }
}

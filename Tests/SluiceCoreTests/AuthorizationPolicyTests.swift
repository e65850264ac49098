import SluiceCore
import XCTest

/// AuthorizationPolicy decoding and Envoy-RBAC evaluation. Policies are the examples of
/// Istio's AuthorizationPolicy reference (istio.io/latest/docs/reference/config/security/
/// authorization-policy/) and of its tasks "Explicit Deny", "TCP Traffic" and "Dry Run".
final class AuthorizationPolicyTests: XCTestCase {
    private func policies(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> [AuthorizationPolicy] {
        let loaded = RegistryLoader.parse(yaml: yaml, path: "/test/authz.yaml")
        XCTAssertFalse(loaded.hasErrors, "\(loaded.diagnostics)", file: file, line: line)
        return loaded.authorizationPolicies
    }

    private func evaluator(_ yaml: String, namespace: String = "foo", labels: [String: String] = ["app": "httpbin"]) -> AuthorizationEvaluator {
        AuthorizationEvaluator(policies: policies(yaml), namespace: namespace, labels: labels)
    }

    private let sleep = "cluster.local/ns/default/sa/sleep"

    private func http(_ method: String, _ path: String, principal: String? = nil, host: String = "httpbin.foo", port: Int = 8000,
                      headers: [String: String] = [:]) -> AuthorizationRequest {
        AuthorizationRequest(
            principal: principal, sourceIP: IPAddress("10.0.0.5"), destinationPort: port,
            http: .init(host: host, method: method, path: path, headers: headers))
    }

    /// The reference's first example: ALLOW from the sleep service account (or namespace
    /// test) GET on /info*, POST on /data.
    func testReferenceAllowExample() {
        let authz = evaluator("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: httpbin, namespace: foo}
            spec:
              action: ALLOW
              rules:
              - from:
                - source:
                    principals: ["cluster.local/ns/default/sa/sleep"]
                - source:
                    namespaces: ["test"]
                to:
                - operation:
                    methods: ["GET"]
                    paths: ["/info*"]
                - operation:
                    methods: ["POST"]
                    paths: ["/data"]
            """)
        XCTAssertEqual(authz.authorize(http("GET", "/info/x?y=1", principal: sleep)).matchedPolicy, "ns[foo]-policy[httpbin]-rule[0]")
        XCTAssertTrue(authz.authorize(http("POST", "/data", principal: "cluster.local/ns/test/sa/any")).allowed)
        let denied = authz.authorize(http("DELETE", "/info", principal: sleep))
        XCTAssertFalse(denied.allowed)
        XCTAssertEqual(denied.responseCodeDetails, "rbac_access_denied_matched_policy[none]")
        XCTAssertFalse(authz.authorize(http("GET", "/info", principal: "cluster.local/ns/other/sa/x")).allowed)
        XCTAssertFalse(authz.authorize(http("GET", "/info", principal: nil)).allowed, "plaintext has no principal")
    }

    /// DENY before ALLOW: "Explicit Deny" (deny GET from outside namespace foo... and a path).
    func testDenyWinsOverAllowAndNotForms() {
        let authz = evaluator("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-admin, namespace: foo}
            spec:
              action: DENY
              rules:
              - from: [{source: {notNamespaces: ["foo"]}}]
                to: [{operation: {paths: ["/admin*"], notMethods: ["OPTIONS"]}}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow-all, namespace: foo}
            spec:
              rules: [{}]
            """)
        let denied = authz.authorize(http("GET", "/admin/users", principal: sleep))
        XCTAssertFalse(denied.allowed)
        XCTAssertEqual(denied.responseCodeDetails, "rbac_access_denied_matched_policy[ns[foo]-policy[deny-admin]-rule[0]]")
        XCTAssertTrue(authz.authorize(http("OPTIONS", "/admin", principal: sleep)).allowed)
        XCTAssertTrue(authz.authorize(http("GET", "/admin", principal: "cluster.local/ns/foo/sa/x")).allowed)
        XCTAssertTrue(authz.authorize(http("GET", "/status", principal: sleep)).allowed)
    }

    /// `spec: {}` allows nothing; `rules: [{}]` with DENY denies everything; none: allowed.
    func testAllowNothingDenyAllAndNoPolicy() {
        XCTAssertFalse(evaluator("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow-nothing, namespace: foo}
            spec: {}
            """).authorize(http("GET", "/")).allowed)
        XCTAssertFalse(evaluator("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-all, namespace: foo}
            spec: {action: DENY, rules: [{}]}
            """).authorize(AuthorizationRequest(destinationPort: 443)).allowed)
        let none = AuthorizationEvaluator(policies: [], namespace: "foo", labels: [:])
        XCTAssertTrue(none.isEmpty)
        XCTAssertTrue(none.authorize(http("GET", "/")).allowed)
    }

    /// Selector and namespace scoping; the root namespace applies mesh-wide.
    func testSelectorAndRootNamespace() {
        let yaml = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: only-egress, namespace: istio-system}
            spec:
              selector: {matchLabels: {istio: egressgateway}}
              action: DENY
              rules: [{to: [{operation: {ports: ["443"]}}]}]
            ---
            apiVersion: security.istio.io/v1beta1
            kind: AuthorizationPolicy
            metadata: {name: elsewhere, namespace: bar}
            spec: {}
            """
        let gateway = evaluator(yaml, namespace: "istio-system", labels: ["istio": "egressgateway"])
        XCTAssertEqual(gateway.policies.map(\.name), ["only-egress"])
        XCTAssertFalse(gateway.authorize(AuthorizationRequest(destinationPort: 443)).allowed)
        XCTAssertTrue(gateway.authorize(AuthorizationRequest(destinationPort: 80)).allowed)
        XCTAssertTrue(evaluator(yaml, namespace: "istio-system", labels: ["app": "other"]).isEmpty)
        XCTAssertTrue(evaluator(yaml, namespace: "foo").isEmpty)
    }

    /// "TCP Traffic": an ALLOW rule with HTTP-only fields never matches TCP (so the port is
    /// denied by default); a DENY rule's HTTP-only fields are dropped (so it denies more).
    func testHTTPOnlyFieldsOnTCP() {
        let allowGET = evaluator("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: tcp-policy, namespace: foo}
            spec:
              action: ALLOW
              rules:
              - to: [{operation: {methods: ["GET"], ports: ["9000"]}}]
            """)
        XCTAssertFalse(allowGET.authorize(AuthorizationRequest(destinationPort: 9000)).allowed)
        let denyGET = evaluator("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: tcp-policy, namespace: foo}
            spec:
              action: DENY
              rules:
              - to: [{operation: {methods: ["GET"], ports: ["9000"]}}]
            """)
        XCTAssertFalse(denyGET.authorize(AuthorizationRequest(destinationPort: 9000)).allowed)
        XCTAssertTrue(denyGET.authorize(AuthorizationRequest(destinationPort: 9001)).allowed)
        XCTAssertTrue(denyGET.authorize(http("POST", "/", port: 9000)).allowed, "HTTP: the method decides")
    }

    /// Dry run and AUDIT are evaluated and reported, never enforced.
    func testDryRunAndAudit() {
        let authz = evaluator("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: deny-path-headers
              namespace: foo
              annotations: {"istio.io/dry-run": "true"}
            spec:
              action: DENY
              rules: [{to: [{operation: {paths: ["/headers"]}}]}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: audit-all, namespace: foo}
            spec: {action: AUDIT, rules: [{}]}
            """)
        let decision = authz.authorize(http("GET", "/headers"))
        XCTAssertTrue(decision.allowed)
        XCTAssertEqual(decision.shadowDenied, ["ns[foo]-policy[deny-path-headers]-rule[0]"])
        XCTAssertEqual(decision.audited, ["ns[foo]-policy[audit-all]-rule[0]"])
    }

    /// Connection attributes the gateway can see: principal, source and remote IP blocks,
    /// port, SNI; and the string forms (prefix, suffix, presence).
    func testConnectionConditions() {
        let authz = evaluator("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: payments-to-stripe, namespace: foo}
            spec:
              rules:
              - from:
                - source:
                    principals: ["*/sa/payments"]
                    ipBlocks: ["10.0.0.0/8"]
                    notRemoteIpBlocks: ["10.9.0.0/16"]
                when:
                - {key: connection.sni, values: ["*.stripe.com", "stripe.com"]}
                - {key: destination.port, values: ["443"]}
                - {key: source.namespace, notValues: ["sandbox*"]}
            """)
        func request(principal: String?, ip: String = "10.0.0.5", sni: String = "api.stripe.com", port: Int = 443) -> AuthorizationRequest {
            AuthorizationRequest(principal: principal, sourceIP: IPAddress(ip), destinationPort: port, sni: sni)
        }
        let payments = "cluster.local/ns/shop/sa/payments"
        XCTAssertTrue(authz.authorize(request(principal: payments)).allowed)
        XCTAssertFalse(authz.authorize(request(principal: sleep)).allowed)
        XCTAssertFalse(authz.authorize(request(principal: nil)).allowed)
        XCTAssertFalse(authz.authorize(request(principal: payments, ip: "192.168.1.1")).allowed)
        XCTAssertFalse(authz.authorize(request(principal: payments, ip: "10.9.1.1")).allowed)
        XCTAssertFalse(authz.authorize(request(principal: payments, sni: "evil.com")).allowed)
        XCTAssertFalse(authz.authorize(request(principal: payments, port: 8443)).allowed)
        XCTAssertFalse(authz.authorize(request(principal: "cluster.local/ns/sandbox-1/sa/payments")).allowed)
        XCTAssertTrue(AuthorizationMatch("*").matches(""))
        XCTAssertTrue(AuthorizationMatch("/api/*").matches("/api/v1"))
        XCTAssertTrue(AuthorizationMatch("Example.COM").matches("example.com", caseInsensitive: true))
    }

    /// Headers and hosts on HTTP (hosts ignore the port and case).
    func testHeadersAndHosts() {
        let authz = evaluator("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: hdr, namespace: foo}
            spec:
              rules:
              - to: [{operation: {hosts: ["*.aliyun.com", "aliyun.com"]}}]
                when: [{key: "request.headers[x-token]", values: ["admin"]}]
            """)
        XCTAssertTrue(authz.authorize(http("GET", "/", host: "WWW.aliyun.com:80", headers: ["x-token": "admin"])).allowed)
        XCTAssertFalse(authz.authorize(http("GET", "/", host: "aliyun.com", headers: ["x-token": "user"])).allowed)
        XCTAssertFalse(authz.authorize(http("GET", "/", host: "evil.com", headers: ["x-token": "admin"])).allowed)
    }

    /// Every `not` form, `remoteIpBlocks` with a bare address (Istio's "Ingress gateway"
    /// IP allow-list task writes `remoteIpBlocks: ["1.2.3.4", "5.6.7.0/24"]`), and the `when`
    /// keys source.principal and request.headers with notValues.
    func testNotFormsAndRemoteIPBlocks() {
        let authz = evaluator("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: ip-allowlist, namespace: foo}
            spec:
              action: ALLOW
              rules:
              - from: [{source: {remoteIpBlocks: ["1.2.3.4", "5.6.7.0/24"], notIpBlocks: ["5.6.7.128/25"]}}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-not, namespace: foo}
            spec:
              action: DENY
              rules:
              - from: [{source: {notPrincipals: ["cluster.local/ns/default/*"]}}]
                to: [{operation: {notHosts: ["*.aliyun.com"], notPorts: ["8443"], notPaths: ["/public/*"]}}]
              - when:
                - {key: source.principal, values: ["*/sa/legacy"]}
                - {key: "request.headers[x-env]", notValues: ["prod"]}
            """)
        func request(_ ip: String, principal: String? = "cluster.local/ns/default/sa/sleep", host: String = "www.aliyun.com",
                     port: Int = 443, path: String = "/", headers: [String: String] = [:]) -> AuthorizationRequest {
            AuthorizationRequest(
                principal: principal, sourceIP: IPAddress(ip), destinationPort: port,
                http: .init(host: host, method: "GET", path: path, headers: headers))
        }
        XCTAssertTrue(authz.authorize(request("1.2.3.4")).allowed)
        XCTAssertTrue(authz.authorize(request("5.6.7.9")).allowed)
        XCTAssertFalse(authz.authorize(request("5.6.7.200")).allowed, "notIpBlocks")
        XCTAssertFalse(authz.authorize(request("1.2.3.5")).allowed, "not in remoteIpBlocks")
        // DENY rule 0: a principal outside default/, to a host, port and path outside the not lists.
        let outsider = "cluster.local/ns/other/sa/x"
        XCTAssertEqual(
            authz.authorize(request("1.2.3.4", principal: outsider, host: "evil.com")).matchedPolicy,
            "ns[foo]-policy[deny-not]-rule[0]")
        XCTAssertTrue(authz.authorize(request("1.2.3.4", principal: outsider, host: "api.aliyun.com")).allowed, "notHosts")
        XCTAssertTrue(authz.authorize(request("1.2.3.4", principal: outsider, host: "evil.com", port: 8443)).allowed, "notPorts")
        XCTAssertTrue(authz.authorize(request("1.2.3.4", principal: outsider, host: "evil.com", path: "/public/a")).allowed, "notPaths")
        XCTAssertFalse(authz.authorize(request("1.2.3.4", principal: nil, host: "evil.com")).allowed,
                       "no principal is outside every principal list: notPrincipals matches")
        // DENY rule 1: the legacy service account, unless the request says x-env: prod.
        let legacy = "cluster.local/ns/default/sa/legacy"
        XCTAssertEqual(authz.authorize(request("1.2.3.4", principal: legacy)).matchedPolicy, "ns[foo]-policy[deny-not]-rule[1]")
        XCTAssertTrue(authz.authorize(request("1.2.3.4", principal: legacy, headers: ["x-env": "prod"])).allowed)
    }

    /// A CONNECT has no path (Envoy's RBAC sees no `:path`): `paths`, even `*`, never match it,
    /// and `notPaths` never exclude it; its host is the authority's, port ignored.
    func testConnectHasNoPath() {
        let authz = evaluator("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: any-path, namespace: foo}
            spec:
              rules:
              - to: [{operation: {paths: ["*"]}}]
              - to: [{operation: {hosts: ["db.internal.test"], methods: ["CONNECT"], notPaths: ["/admin*"]}}]
            """)
        let connect = { (host: String) in
            AuthorizationRequest(sourceIP: IPAddress("10.0.0.5"), destinationPort: 15080, http: .init(host: host, method: "CONNECT", path: ""))
        }
        XCTAssertFalse(authz.authorize(connect("aliyun.com:443")).allowed, "paths: [*] needs a path")
        XCTAssertEqual(authz.authorize(connect("db.internal.test:5432")).matchedPolicy, "ns[foo]-policy[any-path]-rule[1]")
        XCTAssertTrue(authz.authorize(http("GET", "/x")).allowed)
    }

    /// Dry-run ALLOW policies are evaluated together, as Istio's one shadow engine of all
    /// their rules: a request none of them admits is shadow-denied (by the default deny,
    /// `none`), one any of them admits is not; nothing is enforced.
    func testDryRunAllowIsNotEnforced() {
        let authz = evaluator("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: allow-get
              namespace: foo
              annotations: {"istio.io/dry-run": "true"}
            spec:
              action: ALLOW
              rules: [{to: [{operation: {methods: ["GET"]}}]}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: allow-head
              namespace: foo
              annotations: {"istio.io/dry-run": "true"}
            spec:
              action: ALLOW
              rules: [{to: [{operation: {methods: ["HEAD"]}}]}]
            """)
        let post = authz.authorize(http("POST", "/"))
        XCTAssertTrue(post.allowed)
        XCTAssertNil(post.matchedPolicy)
        XCTAssertEqual(post.shadowDenied, ["none"])
        XCTAssertEqual(authz.authorize(http("GET", "/")).shadowDenied, [])
        XCTAssertEqual(authz.authorize(http("HEAD", "/")).shadowDenied, [], "the other dry-run ALLOW admits it")
    }

    /// What Sluice cannot enforce is refused object by object, with path:line; the rest loads.
    func testUnsupportedAndInvalidAreRejectedOnTheirOwn() {
        let loaded = RegistryLoader.parse(yaml: """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: ext-authz, namespace: foo}
            spec:
              action: CUSTOM
              provider: {name: my-ext-authz}
              rules: [{}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: jwt, namespace: foo}
            spec:
              rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: bad, namespace: foo}
            spec:
              rules:
              - to: [{operation: {ports: ["http"]}}]
                when: [{key: "request.auth.claims[iss]", values: ["x"]}]
              - from: [{source: {ipBlocks: ["300.0.0.1"]}}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: good, namespace: foo}
            spec: {action: DENY, rules: [{to: [{operation: {ports: ["22"]}}]}]}
            """, path: "/test/authz.yaml")
        XCTAssertEqual(loaded.authorizationPolicies.map(\.name), ["good"])
        XCTAssertEqual(loaded.rejectedAuthorizationPolicies, ["foo/ext-authz", "foo/jwt", "foo/bad"])
        let text = loaded.diagnostics.map(\.description).joined(separator: "\n")
        for expected in [
            "/test/authz.yaml:5", "CUSTOM", "requestPrincipals", "spec.rules[0].to[0].operation.ports[0]",
            "spec.rules[0].when[0].key", "spec.rules[1].from[0].source.ipBlocks[0]",
        ] {
            XCTAssertTrue(text.contains(expected), "\(expected) not in:\n\(text)")
        }
    }
}

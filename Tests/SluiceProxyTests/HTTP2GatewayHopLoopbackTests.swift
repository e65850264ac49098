import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// The sidecar → egress gateway hop for HTTP/2 clients (issue 24 item 3), on loopback: the
/// streams of several client connections travel over one HTTP/2 connection to an `istio`
/// gateway (h2c, or ISTIO_MUTUAL with ALPN `istio`/`h2`), which decides each stream by its
/// `:authority` and its AuthorizationPolicies; DestinationRule limits apply per stream.
final class HTTP2GatewayHopLoopbackTests: XCTestCase {
    private let grpcHeaders = [("content-type", "application/grpc"), ("te", "trailers")]

    private func entry(
        port: Int, protocol name: String, resolution: String = "STATIC", host: String = "api.example.test", endpoints: [String] = ["127.0.0.1"]
    ) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: \(host.prefix { $0 != "." })}
        spec:
          hosts: [\(host)]
          ports: [{number: \(port), name: p, protocol: \(name)}]
          resolution: \(resolution)
          endpoints: [\(endpoints.map { "{address: \($0)}" }.joined(separator: ", "))]
        """
    }

    /// A sidecar for api.example.test (HTTP2, at `endpoints`) on the origin's port under a
    /// DestinationRule whose trafficPolicy is `policy` (YAML flow), logging to `log`.
    private func sidecar(
        _ net: Loopback, origin: SocketAddress, policy: String, log: AccessLogCapture, endpoints: [String] = ["127.0.0.1"]
    ) throws -> SocketAddress {
        let rule = """
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: api}
            spec:
              host: api.example.test
              trafficPolicy: \(policy)
            """
        return try net.startSidecar(
            config: "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n",
            registry: entry(port: origin.port!, protocol: "HTTP2", endpoints: endpoints) + "\n" + rule,
            originalDestination: origin, accessLog: log.writer)
    }

    /// A gateway HTTP listener on 127.0.0.2 at `port` (the origin's, so that Host ports match).
    private func startGateway(
        _ net: Loopback, registry: String, port: Int, accessLog: AccessLogWriter?, certificates: CertificateStore? = nil
    ) throws -> SocketAddress {
        let runtime = try Loopback.runtime(
            config: "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n", registry: registry, role: .gateway, accessLog: accessLog,
            certificates: certificates)
        let listener = ListenerConfig(port: port, protocol: .http, address: "127.0.0.2", tls: certificates == nil ? .passthrough : .istioMutual)
        let channel = try net.group.next().makeFutureWithTask {
            try await GatewayListener.bind(listener, group: net.group, runtime: runtime)
        }.wait()
        net.adopt(channel)
        return channel.localAddress!
    }

    func testStreamsOfManyClientConnectionsShareOneConnectionToTheGateway() throws {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let port = origin.port!
        let gatewayLog = try AccessLogCapture()
        _ = try startGateway(net, registry: entry(port: port, protocol: "HTTP2"), port: port, accessLog: gatewayLog.writer)
        let config = """
            outboundTrafficPolicy: {mode: REGISTRY_ONLY}
            egressGateway: {address: [127.0.0.2], protocol: istio, ports: {http: \(port)}}
            """
        // other.example.test: registered at the sidecar, not at the gateway.
        let sidecarRegistry = entry(port: port, protocol: "HTTP2", resolution: "DNS") + "\n---\n"
            + entry(port: port, protocol: "HTTP2", resolution: "DNS", host: "other.example.test")
        let sidecar = try net.startSidecar(config: config, registry: sidecarRegistry, originalDestination: origin)
        let clients = try (0..<3).map { _ in try net.h2Client(to: sidecar) }
        var futures: [EventLoopFuture<H2Response>] = []
        for (c, client) in clients.enumerated() {
            for i in 0..<10 {
                futures.append(client.start(authority: "api.example.test:\(port)", path: "/c\(c)/\(i)", method: "POST", extra: grpcHeaders, body: [0, 0, 0, 0, 1, UInt8(i)]))
            }
        }
        for future in futures {
            let response = try future.wait()
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.trailers?.first(name: "grpc-status"), "0", "trailers cross both hops")
        }
        // A name the gateway does not serve: its 404 NR, gRPC-shaped (UNIMPLEMENTED).
        let unserved = try clients[0].request(authority: "other.example.test:\(port)", path: "/x.Svc/Call", method: "POST", extra: grpcHeaders)
        XCTAssertEqual(unserved.trailers?.first(name: "grpc-status"), "12")
        let lines = try gatewayLog.records()
        XCTAssertEqual(lines.count, 31, "one gateway access-log line per stream")
        XCTAssertTrue(lines.allSatisfy { $0["protocol"] as? String == "HTTP/2" })
        XCTAssertEqual(
            Set(lines.compactMap { $0["downstream_remote_address"] as? String }).count, 1,
            "the 3 client connections' 31 streams came over one sidecar → gateway connection")
    }

    func testISTIOMUTUALHopCarriesHTTP2WithTheCallersIdentity() throws {
        let net = Loopback()
        let mesh = try MeshTLSLoopbackTests.Mesh()
        let origin = try net.startHTTPOrigin()
        let port = origin.port!
        let gatewayLog = try AccessLogCapture()
        let gatewayStore = try CertificateStore(directory: mesh.issue(MeshTLSLoopbackTests.gatewayID, into: "gateway").path)
        _ = try startGateway(net, registry: entry(port: port, protocol: "HTTP"), port: port, accessLog: gatewayLog.writer, certificates: gatewayStore)
        let sidecarStore = try CertificateStore(directory: mesh.issue(MeshTLSLoopbackTests.sleepID, into: "sleep").path)
        let config = """
            outboundTrafficPolicy: {mode: REGISTRY_ONLY}
            egressGateway:
              address: [127.0.0.2]
              ports: {http: \(port)}
              tls: {mode: ISTIO_MUTUAL, sni: api.example.test, subjectAltNames: ["\(MeshTLSLoopbackTests.gatewayID)"]}
            """
        let sidecar = try net.startSidecar(
            config: config, registry: entry(port: port, protocol: "HTTP", resolution: "DNS"), originalDestination: origin,
            certificates: sidecarStore)
        let clients = try (0..<2).map { _ in try net.h2Client(to: sidecar) }
        let futures = clients.flatMap { client in (0..<5).map { i in client.start(authority: "api.example.test:\(port)", path: "/m/\(i)") } }
        for future in futures {
            XCTAssertEqual(try future.wait().status, 200, "the HTTP/1.1 origin's answer, through the gateway")
        }
        let lines = try gatewayLog.records()
        XCTAssertEqual(lines.count, 10)
        XCTAssertTrue(lines.allSatisfy { $0["protocol"] as? String == "HTTP/2" }, "the hop is HTTP/2 although the port says HTTP")
        XCTAssertTrue(lines.allSatisfy { $0["downstream_peer_uri_san"] as? String == MeshTLSLoopbackTests.sleepID.description })
        XCTAssertEqual(Set(lines.compactMap { $0["downstream_remote_address"] as? String }).count, 1, "one mTLS connection")
    }

    func testGatewayAuthorizationPolicyAnswersStreams403() throws {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let port = origin.port!
        let policy = """
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: no-admin, namespace: istio-system}
            spec:
              action: DENY
              rules:
              - to: [{operation: {paths: ["/admin*"]}}]
            """
        let gatewayLog = try AccessLogCapture()
        let gateway = try startGateway(net, registry: entry(port: port, protocol: "HTTP2") + "\n" + policy, port: port, accessLog: gatewayLog.writer)
        let client = try net.h2Client(to: gateway)
        let denied = try client.request(authority: "api.example.test:\(port)", path: "/admin/users")
        XCTAssertEqual(denied.status, 403)
        XCTAssertEqual(denied.text, HTTP1LocalReply.rbacDeniedBody)
        let grpc = try client.request(authority: "api.example.test:\(port)", path: "/admin.Svc/Call", method: "POST", extra: grpcHeaders)
        XCTAssertEqual(grpc.status, 200)
        XCTAssertEqual(grpc.trailers?.first(name: "grpc-status"), "7", "PERMISSION_DENIED, Envoy's mapping of 403")
        XCTAssertEqual(try client.request(authority: "api.example.test:\(port)", path: "/public").status, 200, "other streams pass")
        let lines = try gatewayLog.records()
        XCTAssertEqual(lines.filter { $0["response_code"] as? Int == 403 }.count, 1)
        XCTAssertTrue(lines.contains {
            ($0["response_code_details"] as? String)?.hasPrefix("rbac_access_denied_matched_policy[") == true
        })
    }

    func testHTTP2MaxRequestsOverflowsTheNextStream503UO() throws {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let port = origin.port!
        let log = try AccessLogCapture()
        let sidecar = try sidecar(net, origin: origin, policy: "{connectionPool: {http: {http2MaxRequests: 1}}}", log: log)
        let client = try net.h2Client(to: sidecar)
        // The first stream's request never ends: it holds the cluster's only request slot.
        _ = client.start(authority: "api.example.test:\(port)", path: "/held", method: "POST", holdOpen: true)
        let refused = try client.request(authority: "api.example.test:\(port)", path: "/second")
        XCTAssertEqual(refused.status, 503)
        XCTAssertTrue(refused.text.contains("reset reason: overflow"), refused.text)
        let grpc = try client.request(authority: "api.example.test:\(port)", path: "/x.Svc/Call", method: "POST", extra: grpcHeaders)
        XCTAssertEqual(grpc.trailers?.first(name: "grpc-status"), "14", "UNAVAILABLE for gRPC")
        let lines = try log.records()
        let second = try XCTUnwrap(lines.first { $0["path"] as? String == "/second" })
        XCTAssertEqual(second["response_flags"] as? String, "UO")
        XCTAssertEqual(second["response_code_details"] as? String, "upstream_reset_before_response_started{overflow}")
    }

    func testRoundRobinSpreadsStreamsOverEndpointConnections() throws {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let port = origin.port!
        _ = try net.startHTTP2Origin(host: "127.0.0.5", port: port)
        let log = try AccessLogCapture()
        let sidecar = try sidecar(
            net, origin: origin, policy: "{loadBalancer: {simple: ROUND_ROBIN}}", log: log, endpoints: ["127.0.0.1", "127.0.0.5"])
        let client = try net.h2Client(to: sidecar)
        for i in 0..<6 {
            XCTAssertEqual(try client.request(authority: "api.example.test:\(port)", path: "/rr/\(i)").status, 200)
        }
        let hosts = try log.records().compactMap { $0["upstream_host"] as? String }
        XCTAssertEqual(hosts.filter { $0 == "127.0.0.1:\(port)" }.count, 3, "\(hosts)")
        XCTAssertEqual(hosts.filter { $0 == "127.0.0.5:\(port)" }.count, 3, "each stream goes to the balancer's endpoint: \(hosts)")
    }

    /// DestinationRule `tls.mode: SIMPLE` on an HTTP/2 upstream: TLS with ALPN `h2` (the
    /// origin speaks HTTP/2 only once ALPN said `h2`, else closes).
    func testTLSOriginationToAnHTTP2OriginNegotiatesH2() throws {
        let net = Loopback()
        let mesh = try MeshTLSLoopbackTests.Mesh()
        let files = try mesh.issue(MeshTLSLoopbackTests.gatewayID, into: "origin").path
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(files + "/cert-chain.pem").map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: files + "/key.pem", format: .pem)))
        configuration.applicationProtocols = ["h2"]
        let context = try NIOSSLContext(configuration: configuration)
        let server = try ServerBootstrap(group: net.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([NIOSSLServerHandler(context: context), H2OnlyAfterALPN()])
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        net.adopt(server)
        let origin = server.localAddress!
        let log = try AccessLogCapture()
        let sidecar = try sidecar(net, origin: origin, policy: "{tls: {mode: SIMPLE, insecureSkipVerify: true}}", log: log)
        let client = try net.h2Client(to: sidecar)
        let response = try client.request(authority: "api.example.test:\(origin.port!)", path: "/tls")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, "authority=api.example.test:\(origin.port!) path=/tls\n")
    }

    func testMaxRequestsPerConnectionOpensAnotherConnection() throws {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let port = origin.port!
        let log = try AccessLogCapture()
        let sidecar = try sidecar(net, origin: origin, policy: "{connectionPool: {http: {maxRequestsPerConnection: 2}}}", log: log)
        let client = try net.h2Client(to: sidecar)
        for i in 0..<6 {
            XCTAssertEqual(try client.request(authority: "api.example.test:\(port)", path: "/r/\(i)").status, 200)
        }
        let locals = try log.records().compactMap { $0["upstream_local_address"] as? String }
        XCTAssertEqual(locals.count, 6)
        XCTAssertEqual(Set(locals).count, 3, "two streams per upstream connection: \(locals)")
    }
}

/// An origin's TLS connection becomes HTTP/2 when the handshake negotiated ALPN `h2`; any
/// other outcome closes it.
private final class H2OnlyAfterALPN: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case TLSUserEvent.handshakeCompleted(let negotiated) = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard negotiated == "h2" else {
            context.close(promise: nil)
            return
        }
        do {
            _ = try context.pipeline.syncOperations.configureHTTP2Pipeline(
                mode: .server, connectionConfiguration: .init(), streamConfiguration: .init(), position: .last
            ) { stream in
                stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(H2OriginStreamHandler()) }
            }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }
}

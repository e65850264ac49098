import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SluiceCore
import SluiceIdentity
import X509
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// ISTIO_MUTUAL on loopback: the sidecar opens mTLS to the gateway with its workload
/// certificate, the gateway terminates it, takes the caller's SPIFFE ID and routes the HTTP
/// inside by Host; clients without a certificate or from another mesh are refused, counted
/// by reason; rotated files are used by the next connection.
final class MeshTLSLoopbackTests: XCTestCase {
    static let gatewayID = SPIFFEID(namespace: "istio-system", serviceAccount: "istio-egressgateway-service-account")
    static let sleepID = SPIFFEID(namespace: "default", serviceAccount: "sleep")

    /// A mesh: a root and directories of issued certificates, under a temporary directory.
    final class Mesh {
        let directory: String
        let root: IssuedCertificate
        let rootKey: Certificate.PrivateKey

        init() throws {
            self.directory = NSTemporaryDirectory() + "sluice-mesh-\(UUID().uuidString)"
            self.root = try MeshCertificateAuthority.makeRoot(trustDomain: "cluster.local", now: Date(), days: 1)
            self.rootKey = try Certificate.PrivateKey(pemEncoded: root.privateKeyPEM)
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }

        /// Issues `id` into `<directory>/<name>` and returns that directory.
        @discardableResult
        func issue(_ id: SPIFFEID, into name: String, days: Int = 1) throws -> (path: String, certificate: IssuedCertificate) {
            let path = directory + "/" + name
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            let leaf = try MeshCertificateAuthority.issue(identity: id, root: root.certificate, rootKey: rootKey, now: Date(), days: days)
            try leaf.privateKeyPEM.write(toFile: path + "/key.pem", atomically: true, encoding: .utf8)
            try leaf.certificatePEM.write(toFile: path + "/cert-chain.pem", atomically: true, encoding: .utf8)
            try root.certificatePEM.write(toFile: path + "/root-cert.pem", atomically: true, encoding: .utf8)
            return (path, leaf)
        }
    }

    private func registry(port: Int) -> String {
        ServiceEntryYAML.http("aliyun", host: "aliyun.com", port: port).yaml
    }

    /// aliyun.com registered for TLS on `port`, forwarded to the echo origin.
    private func tlsEntry(port: Int, echo: SocketAddress) -> String {
        ServiceEntryYAML.tls("aliyun", host: "aliyun.com", port: port, targetPort: echo.port!).yaml
    }

    /// A gateway HTTP listener with ISTIO_MUTUAL on 127.0.0.2 at the origin's port.
    private func startGateway(_ net: Loopback, mesh: Mesh, origin: SocketAddress) throws -> (SocketAddress, ProxyRuntime) {
        let store = try CertificateStore(directory: mesh.issue(Self.gatewayID, into: "gateway").path)
        let runtime = try Loopback.runtime(
            config: "accessLog: {enabled: false}\n", registry: registry(port: origin.port!), role: .gateway, certificates: store)
        let listener = ListenerConfig(port: origin.port!, protocol: .http, address: "127.0.0.2", tls: .istioMutual)
        let channel = try net.group.next().makeFutureWithTask {
            try await GatewayListener.bind(listener, group: net.group, runtime: runtime)
        }.wait()
        net.adopt(channel)
        return (channel.localAddress!, runtime)
    }

    private func startSidecar(_ net: Loopback, mesh: Mesh, origin: SocketAddress, gatewaySAN: String) throws -> SocketAddress {
        let store = try CertificateStore(directory: mesh.issue(Self.sleepID, into: "sleep").path)
        let config = """
            outboundTrafficPolicy: {mode: REGISTRY_ONLY}
            egressGateway:
              address: [127.0.0.2]
              ports: {http: \(origin.port!)}
              tls: {mode: ISTIO_MUTUAL, sni: aliyun.com, subjectAltNames: ["\(gatewaySAN)"]}
            """
        let sidecarRegistry = registry(port: origin.port!).replacingOccurrences(of: "resolution: STATIC", with: "resolution: DNS")
        return try net.startSidecar(config: config, registry: sidecarRegistry, originalDestination: origin, certificates: store)
    }

    func testSidecarReachesTheOriginThroughAnISTIOMUTUALGateway() throws {
        let net = Loopback()
        let mesh = try Mesh()
        let origin = try net.startHTTPOrigin()
        let (_, gateway) = try startGateway(net, mesh: mesh, origin: origin)
        let sidecar = try startSidecar(net, mesh: mesh, origin: origin, gatewaySAN: Self.gatewayID.description)
        for _ in 0..<2 {
            let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: aliyun.com\r\nConnection: close\r\n\r\n".utf8), with: sidecar).text
            XCTAssertTrue(reply.hasPrefix("HTTP/1.1 301"), reply)
        }
        XCTAssertTrue(gateway.metrics.prometheusText().contains(#"sluice_tls_handshake_failures_total{reason="handshake"} 0"#))
    }

    /// The app's own TLS travels inside the mTLS session; the gateway's TLS listener routes it
    /// by the inner SNI (the echo origin returns the ClientHello unchanged).
    func testAppTLSPassesThroughInsideMTLSAndIsRoutedByItsSNI() throws {
        let net = Loopback()
        let mesh = try Mesh()
        let echo = try net.startEchoOrigin()
        let entry = tlsEntry(port: 18443, echo: echo)
        let gatewayStore = try CertificateStore(directory: mesh.issue(Self.gatewayID, into: "gateway").path)
        let gateway = try Loopback.runtime(config: "accessLog: {enabled: false}\n", registry: entry, role: .gateway, certificates: gatewayStore)
        let channel = try net.group.next().makeFutureWithTask {
            try await GatewayListener.bind(
                ListenerConfig(port: 18443, protocol: .tls, address: "127.0.0.2", tls: .istioMutual), group: net.group, runtime: gateway)
        }.wait()
        net.adopt(channel)
        let sidecarStore = try CertificateStore(directory: mesh.issue(Self.sleepID, into: "sleep").path)
        let config = """
            outboundTrafficPolicy: {mode: REGISTRY_ONLY}
            egressGateway:
              address: [127.0.0.2]
              ports: {tls: 18443}
              tls: {mode: ISTIO_MUTUAL}
            """
        let sidecar = try net.startSidecar(
            config: config, registry: entry.replacingOccurrences(of: "resolution: STATIC", with: "resolution: DNS"),
            originalDestination: try SocketAddress(ipAddress: "127.0.0.1", port: 18443), certificates: sidecarStore)
        let hello = clientHello(serverName: "aliyun.com")
        let direct = try tlsRequest(
            to: channel.localAddress!, mesh: mesh, clientDirectory: mesh.issue(Self.sleepID, into: "direct").path,
            bytes: String(decoding: hello, as: UTF8.self), halfClose: true)
        XCTAssertEqual(direct.utf8.count, hello.count)
        XCTAssertEqual(try net.exchange(hello, with: sidecar, timeout: .seconds(1)), hello)
        XCTAssertEqual(try net.exchange(hello, with: sidecar, halfClose: true), hello)
        XCTAssertEqual(try net.exchange(clientHello(serverName: "evil.test"), with: sidecar, halfClose: true), [])
    }

    /// AuthorizationPolicy at the gateway, on the caller's SPIFFE ID and the inner SNI: the
    /// DENY matches the sleep service account, so its connection is closed; payments passes.
    func testAuthorizationPolicyDeniesByPrincipalAndSNI() throws {
        let net = Loopback()
        let mesh = try Mesh()
        let echo = try net.startEchoOrigin()
        let entry = tlsEntry(port: 18444, echo: echo)
        let loaded = RegistryLoader.parse(yaml: entry + """

            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: no-sleep-to-aliyun, namespace: istio-system}
            spec:
              action: DENY
              rules:
              - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
                when: [{key: connection.sni, values: ["aliyun.com"]}]
            """, path: "/test/registry.yaml")
        XCTAssertFalse(loaded.hasErrors, "\(loaded.diagnostics)")
        var snapshot = SluiceSnapshot(config: try SluiceConfig.parse(yaml: "accessLog: {enabled: false}\n", path: "/t/s.yaml").get(), entries: loaded.entries, namespace: "istio-system")
        snapshot.authorizationPolicies = loaded.authorizationPolicies
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let gateway = ProxyRuntime(
            role: .gateway, config: ActiveConfig(snapshot: snapshot, role: .gateway), accessLog: nil, logger: logger,
            certificates: try CertificateStore(directory: mesh.issue(Self.gatewayID, into: "gateway").path))
        let channel = try net.group.next().makeFutureWithTask {
            try await GatewayListener.bind(
                ListenerConfig(port: 18444, protocol: .tls, address: "127.0.0.2", tls: .istioMutual), group: net.group, runtime: gateway)
        }.wait()
        net.adopt(channel)
        let hello = clientHello(serverName: "aliyun.com")
        func send(as id: SPIFFEID, name: String) throws -> [UInt8] {
            try tlsRequest(
                to: channel.localAddress!, mesh: mesh, clientDirectory: mesh.issue(id, into: name).path,
                bytes: String(decoding: hello, as: UTF8.self), halfClose: true
            ).utf8.map { $0 }
        }
        XCTAssertEqual(try send(as: SPIFFEID(namespace: "shop", serviceAccount: "payments"), name: "payments"), hello)
        XCTAssertThrowsError(try send(as: Self.sleepID, name: "sleep"), "closed without a byte")
        let text = gateway.metrics.prometheusText()
        XCTAssertTrue(text.contains(#"sluice_rbac_decisions_total{decision="denied",policy="ns[istio-system]-policy[no-sleep-to-aliyun]-rule[0]"} 1"#), text)
        XCTAssertTrue(text.contains(#"sluice_rbac_decisions_total{decision="allowed",policy="none"} 1"#), text)
    }

    /// A rotation does not cut open connections (they keep their session) and the next
    /// connection is served with the new certificate.
    func testRotationKeepsOpenConnectionsAndServesTheNewCertificateToNewOnes() throws {
        let net = Loopback()
        let mesh = try Mesh()
        let echo = try net.startEchoOrigin()
        let gatewayDirectory = try mesh.issue(Self.gatewayID, into: "gateway").path
        let store = try CertificateStore(directory: gatewayDirectory)
        let runtime = try Loopback.runtime(
            config: "accessLog: {enabled: false}\n", registry: tlsEntry(port: 18445, echo: echo), role: .gateway, certificates: store)
        let listener = try net.group.next().makeFutureWithTask {
            try await GatewayListener.bind(
                ListenerConfig(port: 18445, protocol: .tls, address: "127.0.0.2", tls: .istioMutual), group: net.group, runtime: runtime)
        }.wait()
        net.adopt(listener)
        let client = try mesh.issue(Self.sleepID, into: "sleep").path
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(client + "/cert-chain.pem").map { .certificate($0) }
        configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: client + "/key.pem", format: .pem))
        let context = try NIOSSLContext(configuration: configuration)
        let received = NIOLockedValueBox<[UInt8]>([])
        func open() throws -> any Channel {
            try ClientBootstrap(group: net.group).channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        try NIOSSLClientHandler(context: context, serverHostname: "aliyun.com"), Accumulator(into: received),
                    ])
                }
            }.connect(to: listener.localAddress!).wait()
        }
        func waitFor(_ expected: [UInt8]) {
            for _ in 0..<100 where received.withLockedValue({ $0 }) != expected { usleep(20_000) }
            XCTAssertEqual(received.withLockedValue { $0 }, expected)
        }
        func serial(of channel: any Channel) throws -> String? {
            let der = try channel.eventLoop.submit {
                try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate.map { try $0.toDERBytes() }
            }.wait()
            return try der.map { WorkloadCertificate.hex(try Certificate(derEncoded: $0).serialNumber) }
        }
        let hello = clientHello(serverName: "aliyun.com")
        let first = try open()
        try first.writeAndFlush(ByteBuffer(bytes: hello)).wait()
        waitFor(hello)
        let before = try serial(of: first)
        XCTAssertEqual(before, store.credentials.identity.serialHex)

        let rotated = try mesh.issue(Self.gatewayID, into: "gateway")
        var settled: [String]?
        _ = store.reloadIfChanged(settled: &settled, now: Date())
        guard case .rotated = store.reloadIfChanged(settled: &settled, now: Date()) else { return XCTFail("not rotated") }

        try first.writeAndFlush(ByteBuffer(string: "still-open")).wait()
        waitFor(hello + Array("still-open".utf8))
        XCTAssertTrue(first.isActive)
        let second = try open()
        try second.writeAndFlush(ByteBuffer(bytes: hello)).wait()
        waitFor(hello + Array("still-open".utf8) + hello)
        XCTAssertEqual(try serial(of: second), WorkloadCertificate.hex(rotated.certificate.certificate.serialNumber))
        XCTAssertNotEqual(try serial(of: second), before)
        first.close(promise: nil)
        second.close(promise: nil)
    }

    func testSidecarRefusesAGatewayWithAnotherIdentity() throws {
        let net = Loopback()
        let mesh = try Mesh()
        let origin = try net.startHTTPOrigin()
        _ = try startGateway(net, mesh: mesh, origin: origin)
        let sidecar = try startSidecar(net, mesh: mesh, origin: origin, gatewaySAN: "spiffe://cluster.local/ns/other/sa/impostor")
        let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: aliyun.com\r\nConnection: close\r\n\r\n".utf8), with: sidecar).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 503"), reply)
        // Envoy's words for a gateway certificate its SAN matcher refuses.
        XCTAssertTrue(reply.hasSuffix(
            "transport failure reason: TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end\n"), reply)
    }

    func testGatewayRefusesPlaintextNoCertificateAndAnotherRootWithReasons() throws {
        let net = Loopback()
        let mesh = try Mesh()
        let origin = try net.startHTTPOrigin()
        let (gateway, runtime) = try startGateway(net, mesh: mesh, origin: origin)
        // Plain HTTP at an mTLS port: closed without an HTTP answer (at most a TLS alert).
        let plain = try net.exchange(Array("GET / HTTP/1.1\r\nHost: aliyun.com\r\n\r\n".utf8), with: gateway).text
        XCTAssertFalse(plain.contains("HTTP/1.1"), plain)
        // TLS without a client certificate, then with one from another mesh's root.
        XCTAssertThrowsError(try tlsRequest(to: gateway, mesh: mesh, clientDirectory: nil))
        let other = try Mesh()
        XCTAssertThrowsError(try tlsRequest(to: gateway, mesh: mesh, clientDirectory: other.issue(Self.sleepID, into: "sleep").path))
        // An expired certificate from the right root.
        XCTAssertThrowsError(try tlsRequest(to: gateway, mesh: mesh, clientDirectory: mesh.issue(Self.sleepID, into: "old", days: -1).path))
        // And a good one gets through.
        let reply = try tlsRequest(to: gateway, mesh: mesh, clientDirectory: mesh.issue(Self.sleepID, into: "sleep").path)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 301"), reply)
        let text = runtime.metrics.prometheusText()
        for reason in ["handshake", "no_certificate", "unknown_ca", "expired"] {
            XCTAssertTrue(text.contains("sluice_tls_handshake_failures_total{reason=\"\(reason)\"} 1"), "\(reason): \(text)")
        }
    }

    func testRotationIsUsedByTheNextConnectionAndBadFilesKeepTheOld() throws {
        let mesh = try Mesh()
        let first = try mesh.issue(Self.gatewayID, into: "gateway")
        let store = try CertificateStore(directory: first.path)
        var settled: [String]?
        guard case .unchanged = store.reloadIfChanged(settled: &settled, now: Date()) else { return XCTFail("no change yet") }
        let second = try mesh.issue(Self.gatewayID, into: "gateway")
        // The first look sees the change, the second (files unchanged since) applies it.
        guard case .unchanged = store.reloadIfChanged(settled: &settled, now: Date()) else { return XCTFail("not settled yet") }
        guard case .rotated(let old, let new) = store.reloadIfChanged(settled: &settled, now: Date()) else { return XCTFail("not rotated") }
        XCTAssertEqual(old.identity.serialHex, WorkloadCertificate.hex(first.certificate.certificate.serialNumber))
        XCTAssertEqual(new.identity.serialHex, WorkloadCertificate.hex(second.certificate.certificate.serialNumber))
        XCTAssertEqual(store.credentials.identity.serialHex, new.identity.serialHex)
        // A key that does not belong to the certificate: rejected once, the rotated one stays.
        try MeshCertificateAuthority.issue(identity: Self.gatewayID, root: mesh.root.certificate, rootKey: mesh.rootKey, now: Date(), days: 1)
            .privateKeyPEM.write(toFile: first.path + "/key.pem", atomically: true, encoding: .utf8)
        _ = store.reloadIfChanged(settled: &settled, now: Date())
        guard case .rejected(let kept, let reason) = store.reloadIfChanged(settled: &settled, now: Date()) else { return XCTFail("not rejected") }
        XCTAssertEqual(kept.identity.serialHex, new.identity.serialHex)
        XCTAssertTrue(reason.contains("does not belong"), reason)
        guard case .unchanged = store.reloadIfChanged(settled: &settled, now: Date()) else { return XCTFail("reported twice") }
    }

    /// One HTTP request over TLS to `address`, as `clientDirectory`'s workload (none: no
    /// client certificate); the reply's text, or the handshake's error.
    private func tlsRequest(
        to address: SocketAddress, mesh: Mesh, clientDirectory: String?,
        bytes: String = "GET / HTTP/1.1\r\nHost: aliyun.com\r\nConnection: close\r\n\r\n", halfClose: Bool = false
    ) throws -> String {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        if let clientDirectory {
            // Read as they are: an expired certificate must reach the gateway.
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(clientDirectory + "/cert-chain.pem").map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientDirectory + "/key.pem", format: .pem))
        }
        let context = try NIOSSLContext(configuration: configuration)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let reply = group.next().makePromise(of: String.self)
        let channel = try ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        try NIOSSLClientHandler(context: context, serverHostname: "aliyun.com"), ReplyCollector(promise: reply),
                    ])
                }
            }
            .connect(to: address).wait()
        channel.writeAndFlush(ByteBuffer(string: bytes), promise: nil)
        if halfClose { channel.close(mode: .output, promise: nil) }
        let timer = channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
        defer { timer.cancel() }
        return try reply.futureResult.wait()
    }
}

/// Appends what a connection reads to a shared buffer.
private final class Accumulator: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let into: NIOLockedValueBox<[UInt8]>
    init(into: NIOLockedValueBox<[UInt8]>) { self.into = into }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(buffer: self.unwrapInboundIn(data))
        self.into.withLockedValue { $0 += bytes }
    }
}

/// Collects a TLS client's plaintext until close; fails on a TLS error.
private final class ReplyCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<String>
    var text = ""
    var error: (any Error)?
    init(promise: EventLoopPromise<String>) { self.promise = promise }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.text += String(buffer: self.unwrapInboundIn(data))
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The server's close_notify: the reply is complete.
        if let event = event as? ChannelEvent, case .inputClosed = event { context.close(promise: nil) }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.error = self.error ?? error
        context.close(promise: nil)
    }
    func channelInactive(context: ChannelHandlerContext) {
        if let error = self.error ?? (self.text.isEmpty ? ChannelError.eof : nil) {
            self.promise.fail(error)
        } else {
            self.promise.succeed(self.text)
        }
    }
}

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import SluiceCore
import SluiceIdentity
import SluiceTestSupport
import X509
import XCTest

@testable import SluiceProxy

/// A gateway listener whose Gateway servers differ in certificate: each BoringSSL client is
/// answered with the certificate of the server its SNI names; a name no server covers is
/// closed before any handshake. And a MUTUAL server's `subjectAltNames` and protocol versions.
final class GatewayTLSByNameLoopbackTests: XCTestCase {
    private let directory = NSTemporaryDirectory() + "sluice-gateway-sni-\(UUID().uuidString)"
    private var root: (certificate: Certificate, key: Certificate.PrivateKey, pem: String)?

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
        super.tearDown()
    }

    /// The test's root (made on first use), and its PEM file.
    private func testRoot() throws -> (certificate: Certificate, key: Certificate.PrivateKey, pem: String) {
        if let root { return root }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let made = try MeshCertificateAuthority.makeRoot(trustDomain: "gateway.test", now: Date(), days: 1)
        let path = directory + "/root.pem"
        try made.certificatePEM.write(toFile: path, atomically: true, encoding: .utf8)
        let root = (made.certificate, try Certificate.PrivateKey(pemEncoded: made.privateKeyPEM), path)
        self.root = root
        return root
    }

    /// A certificate for DNS name `name` (URI SAN spiffe://gateway.test/ns/istio-system/sa/NAME)
    /// from the test's root, as PEM files: (certificate, key) paths.
    private func issue(_ name: String) throws -> (certificate: String, key: String) {
        let root = try testRoot()
        let issued = try MeshCertificateAuthority.issue(
            identity: SPIFFEID(trustDomain: "gateway.test", namespace: "istio-system", serviceAccount: name), dnsNames: [name],
            root: root.certificate, rootKey: root.key, now: Date(), days: 1)
        let files = (certificate: directory + "/\(name).pem", key: directory + "/\(name).key")
        try issued.certificatePEM.write(toFile: files.certificate, atomically: true, encoding: .utf8)
        try issued.privateKeyPEM.write(toFile: files.key, atomically: true, encoding: .utf8)
        return files
    }

    /// Connects a BoringSSL client to `address` with `serverName` (and `client`'s certificate,
    /// at most `maximumVersion`), and waits for what `recorder`'s handler reports.
    private func connect<Outcome: Sendable>(
        _ net: Loopback, at address: SocketAddress, serverName: String, client: (certificate: String, key: String)? = nil,
        maximumVersion: TLSVersion? = nil, recorder: @escaping @Sendable (EventLoopPromise<Outcome>) -> any ChannelHandler
    ) throws -> Outcome {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        if let client {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(client.certificate).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: client.key, format: .pem))
        }
        if let maximumVersion { configuration.maximumTLSVersion = maximumVersion }
        let context = try NIOSSLContext(configuration: configuration)
        let outcome = net.group.next().makePromise(of: Outcome.self)
        let channel = try ClientBootstrap(group: net.group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        try NIOSSLClientHandler(context: context, serverHostname: serverName), recorder(outcome),
                    ])
                }
            }
            .connect(to: address).wait()
        defer { channel.close(promise: nil) }
        return try outcome.futureResult.wait()
    }

    /// The certificate the server presented to a client naming `serverName`, or nil when the
    /// connection closed before the handshake completed.
    private func presented(
        _ net: Loopback, at address: SocketAddress, serverName: String, client: (certificate: String, key: String)? = nil,
        maximumVersion: TLSVersion? = nil
    ) throws -> NIOSSLCertificate? {
        try connect(net, at: address, serverName: serverName, client: client, maximumVersion: maximumVersion) { PeerCertificateRecorder($0) }
    }

    func testEachSNIGetsItsServersCertificateAndAnUncoveredOneIsClosed() throws {
        let net = Loopback()
        let first = try issue("api.example.com")
        let second = try issue("www.example.org")
        let runtime = try Loopback.runtime(config: "accessLog: {enabled: false}\n", registry: "", role: .gateway)
        var listener = ListenerConfig(port: 0, protocol: .http, address: "127.0.0.1", tls: .simple)
        listener.tlsServers = [
            ListenerTLSServer(hosts: ["api.example.com"], mode: .simple, files: ServerTLSFiles(serverCertificate: first.certificate, privateKey: first.key)),
            ListenerTLSServer(hosts: ["*.example.org"], mode: .simple, files: ServerTLSFiles(serverCertificate: second.certificate, privateKey: second.key)),
        ]
        let bound = listener
        let channel = try net.group.next().makeFutureWithTask {
            try await GatewayListener.bind(bound, group: net.group, runtime: runtime)
        }.wait()
        net.adopt(channel)
        let address = try XCTUnwrap(channel.localAddress)

        let firstCertificate = try NIOSSLCertificate.fromPEMFile(first.certificate)[0]
        let secondCertificate = try NIOSSLCertificate.fromPEMFile(second.certificate)[0]
        XCTAssertEqual(try presented(net, at: address, serverName: "api.example.com"), firstCertificate)
        XCTAssertEqual(try presented(net, at: address, serverName: "www.example.org"), secondCertificate)
        XCTAssertEqual(try presented(net, at: address, serverName: "a.b.example.org"), secondCertificate)
        XCTAssertNil(try presented(net, at: address, serverName: "evil.test"), "no server for the name: closed, as Envoy without a filter chain")
        XCTAssertEqual(try presented(net, at: address, serverName: "api.example.com"), firstCertificate, "the listener goes on serving")
    }
}

extension GatewayTLSByNameLoopbackTests {
    /// Sends a request once the handshake is done and reports whether any answer came back
    /// (a server that refuses the client after the handshake closes without one).
    private func answered(_ net: Loopback, at address: SocketAddress, client: (certificate: String, key: String)) throws -> Bool {
        try connect(net, at: address, serverName: "api.example.com", client: client) { AnswerRecorder($0) }
    }

    /// Istio's ServerTLSSettings on a MUTUAL server: a client certificate from the server's CA
    /// without one of `subjectAltNames` is closed after the handshake (no request answered,
    /// counted as san_mismatch), one with it is served; `minProtocolVersion: TLSV1_3` refuses
    /// a TLS 1.2 client.
    func testMUTUALSubjectAltNamesAndMinimumProtocolVersion() throws {
        let net = Loopback()
        let server = try issue("api.example.com")
        let allowed = try issue("allowed-client")
        let other = try issue("other-client")
        let root = try testRoot()
        let runtime = try Loopback.runtime(config: "accessLog: {enabled: false}\n", registry: "", role: .gateway)
        var files = ServerTLSFiles(serverCertificate: server.certificate, privateKey: server.key, caCertificates: root.pem)
        files.subjectAltNames = ["spiffe://gateway.test/ns/istio-system/sa/allowed-client"]
        files.minProtocolVersion = "TLSV1_3"
        var listener = ListenerConfig(port: 0, protocol: .http, address: "127.0.0.1", tls: .mutual)
        listener.serverTLSFiles = files
        let bound = listener
        let channel = try net.group.next().makeFutureWithTask {
            try await GatewayListener.bind(bound, group: net.group, runtime: runtime)
        }.wait()
        net.adopt(channel)
        let address = try XCTUnwrap(channel.localAddress)

        XCTAssertTrue(try answered(net, at: address, client: allowed), "a listed SAN: the request is answered")
        XCTAssertFalse(try answered(net, at: address, client: other), "a certificate from the CA without a listed SAN: closed")
        XCTAssertNil(try presented(net, at: address, serverName: "api.example.com", client: allowed, maximumVersion: .tlsv12),
                     "minProtocolVersion TLSV1_3: a TLS 1.2 client gets no handshake")
    }
}

/// Completes `reply` with true when response bytes arrive after a request sent once the TLS
/// handshake is done, false when the connection closes (or fails) first.
private final class AnswerRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let reply: EventLoopPromise<Bool>

    init(_ reply: EventLoopPromise<Bool>) { self.reply = reply }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            let request = context.channel.allocator.buffer(string: "GET / HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n")
            context.writeAndFlush(self.wrapOutboundOut(request), promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { self.reply.succeed(true) }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.reply.succeed(false)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.reply.succeed(false)
        context.fireChannelInactive()
    }
}

/// Completes `outcome` with the server's certificate at the end of the handshake, or nil when
/// the connection closes (or fails) before.
private final class PeerCertificateRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let outcome: EventLoopPromise<NIOSSLCertificate?>

    init(_ outcome: EventLoopPromise<NIOSSLCertificate?>) { self.outcome = outcome }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            self.outcome.succeed(try? context.pipeline.syncOperations.nioSSL_peerCertificate())
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.outcome.succeed(nil)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.outcome.succeed(nil)
        context.fireChannelInactive()
    }
}

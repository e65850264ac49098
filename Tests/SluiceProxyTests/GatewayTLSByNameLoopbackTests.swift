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
/// closed before any handshake.
final class GatewayTLSByNameLoopbackTests: XCTestCase {
    private let directory = NSTemporaryDirectory() + "sluice-gateway-sni-\(UUID().uuidString)"

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
        super.tearDown()
    }

    /// A certificate for `name` from a fresh root, as PEM files: (certificate, key) paths.
    private func issue(_ name: String) throws -> (certificate: String, key: String) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let root = try MeshCertificateAuthority.makeRoot(trustDomain: "gateway.test", now: Date(), days: 1)
        let issued = try MeshCertificateAuthority.issue(
            identity: SPIFFEID(trustDomain: "gateway.test", namespace: "istio-system", serviceAccount: name), dnsNames: [name],
            root: root.certificate, rootKey: try Certificate.PrivateKey(pemEncoded: root.privateKeyPEM), now: Date(), days: 1)
        let files = (certificate: directory + "/\(name).pem", key: directory + "/\(name).key")
        try issued.certificatePEM.write(toFile: files.certificate, atomically: true, encoding: .utf8)
        try issued.privateKeyPEM.write(toFile: files.key, atomically: true, encoding: .utf8)
        return files
    }

    /// Completes a TLS handshake with `serverName` and returns the certificate presented, or
    /// nil when the connection closed first.
    private func presented(_ net: Loopback, at address: SocketAddress, serverName: String) throws -> NIOSSLCertificate? {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        let context = try NIOSSLContext(configuration: configuration)
        let outcome = net.group.next().makePromise(of: NIOSSLCertificate?.self)
        let channel = try ClientBootstrap(group: net.group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        try NIOSSLClientHandler(context: context, serverHostname: serverName), PeerCertificateRecorder(outcome),
                    ])
                }
            }
            .connect(to: address).wait()
        defer { channel.close(promise: nil) }
        return try outcome.futureResult.wait()
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

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

/// TLS origination on loopback through the connector's one dial site: a real BoringSSL
/// origin, settings → TLS configuration, and a refusal worded as Envoy's
/// `upstream_transport_failure_reason`.
final class OriginTLSLoopbackTests: XCTestCase {
    /// A CA, another CA, the origin's certificate (DNS SAN origin.test) and a client's, as PEM files.
    final class PKI {
        let directory = NSTemporaryDirectory() + "sluice-origin-tls-\(UUID().uuidString)"
        var ca: String { directory + "/ca.pem" }
        var otherCA: String { directory + "/other-ca.pem" }
        var serverCertificate: String { directory + "/server.pem" }
        var serverKey: String { directory + "/server.key" }
        var clientCertificate: String { directory + "/client.pem" }
        var clientKey: String { directory + "/client.key" }

        init() throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let root = try MeshCertificateAuthority.makeRoot(trustDomain: "origin.test", now: Date(), days: 1)
            let rootKey = try Certificate.PrivateKey(pemEncoded: root.privateKeyPEM)
            let other = try MeshCertificateAuthority.makeRoot(trustDomain: "other.test", now: Date(), days: 1)
            let server = try MeshCertificateAuthority.issue(
                identity: SPIFFEID(trustDomain: "origin.test", namespace: "ext", serviceAccount: "origin"), dnsNames: ["origin.test"],
                root: root.certificate, rootKey: rootKey, now: Date(), days: 1)
            let client = try MeshCertificateAuthority.issue(
                identity: SPIFFEID(trustDomain: "origin.test", namespace: "default", serviceAccount: "sleep"),
                root: root.certificate, rootKey: rootKey, now: Date(), days: 1)
            for (text, path) in [
                (root.certificatePEM, ca), (other.certificatePEM, otherCA), (server.certificatePEM, serverCertificate),
                (server.privateKeyPEM, serverKey), (client.certificatePEM, clientCertificate), (client.privateKeyPEM, clientKey),
            ] {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
            }
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Records whether the origin's peer presented a certificate, once the handshake is done.
    final class HandshakeRecorder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let sawClientCertificate = NIOLockedValueBox<Bool?>(nil)

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted = event as? TLSUserEvent {
                let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
                self.sawClientCertificate.withLockedValue { $0 = certificate != nil }
            }
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// A TLS origin on 127.0.0.1 with the PKI's server certificate; `requireClient` asks for a
    /// client certificate from the CA.
    private func startOrigin(_ net: Loopback, pki: PKI, requireClient: Bool = false) throws -> (SocketAddress, HandshakeRecorder) {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(pki.serverCertificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: pki.serverKey, format: .pem)))
        if requireClient {
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .file(pki.ca)
        }
        let context = try NIOSSLContext(configuration: configuration)
        let recorder = HandshakeRecorder()
        let channel = try ServerBootstrap(group: net.group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([NIOSSLServerHandler(context: context), recorder])
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        net.adopt(channel)
        return (try XCTUnwrap(channel.localAddress), recorder)
    }

    /// Dials `address` with `origin` through the runtime's connector: "connected", or the
    /// failure's transport failure reason and description.
    private func dial(
        _ net: Loopback, _ address: SocketAddress, _ origin: OriginTLS, connector: UpstreamConnector? = nil,
        connectTimeout: TimeAmount = .seconds(5)
    ) throws -> (connected: Bool, error: UpstreamError?) {
        let runtime = try Loopback.runtime(config: "accessLog: {enabled: false}\n", registry: "")
        defer { runtime.shutdown() }
        let connector = connector ?? runtime.connector
        let loop = net.group.next()
        let target = UpstreamTarget.endpoints([HostPort(host: "127.0.0.1", port: address.port ?? 0)])
        let outcome = NIOLockedValueBox<UpstreamError?>(nil)
        try loop.flatSubmit {
            let promise = loop.makePromise(of: Void.self)
            connector.connect(target: target, gateway: nil, tls: .originate(origin), eventLoop: loop, connectTimeout: connectTimeout) { result in
                switch result {
                case .success(let connection): connection.channel.close(promise: nil)
                case .failure(let error): outcome.withLockedValue { $0 = error }
                }
                promise.succeed(())
            }
            return promise.futureResult
        }.wait()
        let error = outcome.withLockedValue { $0 }
        return (error == nil, error)
    }

    /// A server that accepts TCP and never says a word (nor closes): the TLS handshake is
    /// bounded by the connect timeout, as Envoy's connect_timeout covers the handshake, so the
    /// dial fails as a connection timeout (UF) instead of waiting forever.
    func testAServerThatNeverAnswersTheHandshakeTimesOut() throws {
        let net = Loopback()
        let pki = try PKI()
        let silent = try ServerBootstrap(group: net.group)
            .childChannelOption(.autoRead, value: false)
            .bind(host: "127.0.0.1", port: 0).wait()
        net.adopt(silent)
        let address = try XCTUnwrap(silent.localAddress)
        let origin = OriginTLS(mode: .simple, sni: "origin.test", caCertificates: pki.ca, verifyHostname: true)
        let error = try XCTUnwrap(try dial(net, address, origin, connectTimeout: .milliseconds(300)).error)
        guard case .connectTimeout(let why) = error else { return XCTFail("\(error)") }
        XCTAssertTrue(why.contains("TLS handshake"), why)
        XCTAssertEqual(error.responseFlag, .upstreamConnectionFailure)
    }

    private static let envoyVerifyFailed = "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end"

    func testAnOriginNamedAndSignedAsTheSettingSaysIsReached() throws {
        let net = Loopback()
        let pki = try PKI()
        let (address, _) = try startOrigin(net, pki: pki)
        let origin = OriginTLS(mode: .simple, sni: "origin.test", caCertificates: pki.ca, verifyHostname: true)
        XCTAssertTrue(try dial(net, address, origin).connected)
        let listed = OriginTLS(mode: .simple, sni: "x.test", caCertificates: pki.ca, subjectAltNames: ["origin.test"], verifyHostname: false)
        XCTAssertTrue(try dial(net, address, listed).connected, "the SAN list, not the SNI, decides")
    }

    func testARefusedCertificateIsEnvoysCertificateVerifyFailed() throws {
        let net = Loopback()
        let pki = try PKI()
        let (address, _) = try startOrigin(net, pki: pki)
        let refusals = [
            "another CA": OriginTLS(mode: .simple, sni: "origin.test", caCertificates: pki.otherCA, verifyHostname: true),
            "the system roots": OriginTLS(mode: .simple, sni: "origin.test", verifyHostname: true),
            "a name outside subjectAltNames": OriginTLS(
                mode: .simple, sni: "origin.test", caCertificates: pki.ca, subjectAltNames: ["else.test"], verifyHostname: false),
            "an SNI the certificate does not name": OriginTLS(mode: .simple, sni: "wrong.test", caCertificates: pki.ca, verifyHostname: true),
        ]
        for (what, origin) in refusals {
            let error = try XCTUnwrap(try dial(net, address, origin).error, what)
            XCTAssertEqual(error.transportFailureReason, Self.envoyVerifyFailed, "\(what): \(error)")
            XCTAssertEqual(error.responseFlag, .upstreamConnectionFailure, what)
            XCTAssertEqual(
                error.localReplyBody,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: \(Self.envoyVerifyFailed)\n",
                what)
        }
        // insecureSkipVerify accepts even another CA's view of it.
        let skip = OriginTLS(mode: .simple, sni: "origin.test", caCertificates: pki.otherCA, verifyCertificate: false, verifyHostname: false)
        XCTAssertTrue(try dial(net, address, skip).connected)
    }

    func testMUTUALPresentsTheCredentialFromTheCredentialsDirectory() throws {
        let net = Loopback()
        let pki = try PKI()
        let (address, recorder) = try startOrigin(net, pki: pki, requireClient: true)
        let credential = pki.directory + "/credentials/client-credential"
        try FileManager.default.createDirectory(atPath: credential, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: pki.clientCertificate, toPath: credential + "/tls.crt")
        try FileManager.default.copyItem(atPath: pki.clientKey, toPath: credential + "/tls.key")
        try FileManager.default.copyItem(atPath: pki.ca, toPath: credential + "/ca.crt")
        let runtime = try Loopback.runtime(config: "accessLog: {enabled: false}\n", registry: "")
        defer { runtime.shutdown() }
        var connector = runtime.connector
        connector.fileContexts = FileTLSContexts(credentialsDirectory: pki.directory + "/credentials")
        let origin = OriginTLS(mode: .mutual, sni: "origin.test", verifyHostname: true, credentialName: "client-credential")
        XCTAssertTrue(try dial(net, address, origin, connector: connector).connected)
        XCTAssertTrue(wait(for: { recorder.sawClientCertificate.withLockedValue { $0 } == true }), "the origin saw the credential's tls.crt")

        let missing = OriginTLS(mode: .mutual, sni: "origin.test", credentialName: "client-credential")
        let error = try XCTUnwrap(try dial(net, address, missing).error, "no --credentials-dir")
        XCTAssertTrue(error.transportFailureReason.contains("credentialName client-credential needs --credentials-dir"), "\(error)")
        XCTAssertEqual(error.responseFlag, .upstreamConnectionFailure)
    }

    func testSettingsMapToBoringSSLVerification() throws {
        func describe(_ origin: OriginTLS, ca: String? = nil) throws -> String {
            let configuration = try FileTLSContexts.clientConfiguration(origin, files: .init(ca: ca))
            return "\(configuration.certificateVerification) \(configuration.trustRoots.map { "\($0)" } ?? "default")"
        }
        let pki = try PKI()
        XCTAssertEqual(try describe(OriginTLS(mode: .simple, sni: "h", verifyHostname: true)), "fullVerification default")
        XCTAssertEqual(try describe(OriginTLS(mode: .simple, sni: "h", subjectAltNames: ["h"], verifyHostname: false)), "noHostnameVerification default")
        XCTAssertTrue(try describe(OriginTLS(mode: .simple, sni: "h", caCertificates: pki.ca), ca: pki.ca).hasPrefix("fullVerification certificates("))
        XCTAssertTrue(try describe(OriginTLS(mode: .simple, sni: "h", verifyCertificate: false, verifyHostname: false)).hasPrefix("none"))
        XCTAssertThrowsError(try FileTLSContexts.clientConfiguration(OriginTLS(mode: .simple, sni: "h"), files: .init(ca: pki.directory + "/missing.pem")))
    }

    /// Polls `condition` for up to 2 s (the origin's handshake event trails the client's).
    private func wait(for condition: () -> Bool) -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }
}

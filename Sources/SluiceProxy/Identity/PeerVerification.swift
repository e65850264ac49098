import Foundation
import NIOCore
import NIOSSL
import SluiceCore
import SluiceIdentity
import X509

/// What the custom verification callback found about one connection's peer: its SPIFFE
/// ID, or why it was refused. Lives on the connection's event loop.
final class PeerVerification {
    var identity: SPIFFEID?
    var failure: PeerVerificationFailure?

    /// The NIOSSL callback that runs `verifier` on the peer's certificates at the current time.
    func callback(_ verifier: PeerChainVerifier) -> NIOSSLCustomVerificationCallback {
        { [self] presented, promise in
            let chain: [Certificate]
            do {
                chain = try presented.map { try Certificate(derEncoded: $0.toDERBytes()) }
            } catch {
                self.failure = .malformed
                promise.succeed(.failed)
                return
            }
            switch verifier.verify(chain: chain, now: Date()) {
            case .success(let identity):
                self.identity = identity
                promise.succeed(.certificateVerified)
            case .failure(let failure):
                self.failure = failure
                promise.succeed(.failed)
            }
        }
    }

    /// After a handshake BoringSSL verified (a Gateway server's MUTUAL, certificate files):
    /// the client certificate it accepted, read from the TLS handler in `pipeline`; nil when
    /// the client presented none (SIMPLE asks for none).
    static func peerCertificate(in pipeline: ChannelPipeline.SynchronousOperations) -> Certificate? {
        guard let presented = try? pipeline.nioSSL_peerCertificate() else { return nil }
        return try? Certificate(derEncoded: presented.toDERBytes())
    }

    /// The `reason` label for a handshake that failed with `error`.
    func reason(for error: any Error) -> String {
        if let failure { return failure.rawValue }
        // BoringSSL refuses a missing client certificate before our callback runs.
        if "\(error)".contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") { return PeerVerificationFailure.noCertificate.rawValue }
        return "handshake"
    }
}

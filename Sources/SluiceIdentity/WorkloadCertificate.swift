public import Foundation
public import SluiceCore
public import X509
import SwiftASN1

/// The contents of a `--certs` directory, checked: the certificate chain, the key that
/// belongs to it, the mesh roots, and the SPIFFE ID the workload certificate names.
public struct WorkloadCertificate: Sendable {
    /// `cert-chain.pem`: the workload certificate first.
    public let chain: [Certificate]
    /// `key.pem`.
    public let privateKey: Certificate.PrivateKey
    /// `root-cert.pem`.
    public let roots: [Certificate]
    /// The SPIFFE ID in the workload certificate's URI SAN.
    public let spiffeID: SPIFFEID
    /// The PEM texts as read, for the TLS library.
    public let chainPEM: String
    public let privateKeyPEM: String
    public let rootPEM: String

    /// Why a directory's files are not a usable identity (the old one is kept).
    public enum LoadError: Error, Equatable, CustomStringConvertible {
        case unreadable(file: String, reason: String)
        case noCertificate(file: String)
        case keyMismatch
        case chain(PeerVerificationFailure)

        public var description: String {
            switch self {
            case .unreadable(let file, let reason): "\(file): \(reason)"
            case .noCertificate(let file): "\(file): no certificate in it"
            case .keyMismatch: "\(IstioCertificateFiles.privateKey) does not belong to the certificate in \(IstioCertificateFiles.certificateChain)"
            case .chain(let failure): "\(IstioCertificateFiles.certificateChain) does not verify against \(IstioCertificateFiles.root): \(failure.rawValue)"
            }
        }
    }

    /// Parses and checks the three PEM texts at `now`. Any SPIFFE trust domain is accepted
    /// here: the workload's own trust domain is what its certificate says.
    public init(chainPEM: String, privateKeyPEM: String, rootPEM: String, now: Date) throws(LoadError) {
        let chain = try Self.certificates(chainPEM, file: IstioCertificateFiles.certificateChain)
        let roots = try Self.certificates(rootPEM, file: IstioCertificateFiles.root)
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: privateKeyPEM)
        } catch {
            throw .unreadable(file: IstioCertificateFiles.privateKey, reason: "\(error)")
        }
        guard let leaf = chain.first else { throw .noCertificate(file: IstioCertificateFiles.certificateChain) }
        guard key.publicKey == leaf.publicKey else { throw .keyMismatch }
        guard let id = PeerChainVerifier.spiffeID(of: leaf) else { throw .chain(.badSAN) }
        switch PeerChainVerifier(roots: roots, trustDomain: id.trustDomain).verify(chain: chain, now: now) {
        case .success: break
        case .failure(let failure): throw .chain(failure)
        }
        self.chain = chain
        self.privateKey = key
        self.roots = roots
        self.spiffeID = id
        self.chainPEM = chainPEM
        self.privateKeyPEM = privateKeyPEM
        self.rootPEM = rootPEM
    }

    /// The workload certificate.
    public var leaf: Certificate { chain[0] }

    /// The workload certificate's serial number, upper-case hex as `openssl x509 -serial` prints it.
    public var serialHex: String { Self.hex(leaf.serialNumber) }

    /// Upper-case hex of a serial number, without separators.
    public static func hex(_ serial: Certificate.SerialNumber) -> String {
        serial.bytes.map { byte in
            let digits = Array("0123456789ABCDEF")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
        }.joined()
    }

    /// Every certificate in a PEM text (non-certificate blocks are an error).
    public static func certificates(_ pem: String, file: String) throws(LoadError) -> [Certificate] {
        do {
            let certificates = try PEMDocument.parseMultiple(pemString: pem).map { try Certificate(pemDocument: $0) }
            guard !certificates.isEmpty else { throw LoadError.noCertificate(file: file) }
            return certificates
        } catch let error as LoadError {
            throw error
        } catch {
            throw .unreadable(file: file, reason: "\(error)")
        }
    }
}

import Crypto
import _CryptoExtras

/// The keys that protect a client's Initial packets, derived from the Destination Connection
/// ID of its first Initial (RFC 9001 §5.2). Anyone on the path can derive them: Initial
/// protection hides nothing from an observer, which is what lets the sidecar read the SNI.
///
/// ```
/// initial_salt = 0x38762cf7f55934b34d179ae6a4c80cadccbb7f0a
/// initial_secret = HKDF-Extract(initial_salt, client_dst_connection_id)
/// client_initial_secret = HKDF-Expand-Label(initial_secret, "client in", "", 32)
/// key = HKDF-Expand-Label(client_initial_secret, "quic key", "", 16)
/// iv  = HKDF-Expand-Label(client_initial_secret, "quic iv", "", 12)
/// hp  = HKDF-Expand-Label(client_initial_secret, "quic hp", "", 16)
/// ```
struct QUICInitialKeys: Sendable {
    /// QUIC version 1's Initial salt (RFC 9001 §5.2).
    static let saltV1: [UInt8] = [
        0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
        0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
    ]

    /// AEAD_AES_128_GCM key (16 bytes). Kept as bytes: swift-crypto 3's `SymmetricKey` is
    /// not `Sendable`.
    let keyBytes: [UInt8]
    /// The 12-byte IV the packet number is XORed into.
    let iv: [UInt8]
    /// The AES-128 header protection key (16 bytes).
    let headerProtectionBytes: [UInt8]

    var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    /// The client's Initial keys for a first Initial sent to `destinationConnectionID`.
    init<Bytes: Collection<UInt8>>(destinationConnectionID: Bytes) {
        let initialSecret = HKDF<SHA256>.extract(
            inputKeyMaterial: SymmetricKey(data: Array(destinationConnectionID)), salt: QUICInitialKeys.saltV1)
        let clientSecret = QUICInitialKeys.expandLabel(initialSecret.withUnsafeBytes { Array($0) }, "client in", length: 32)
        keyBytes = QUICInitialKeys.expandLabel(clientSecret, "quic key", length: 16)
        iv = QUICInitialKeys.expandLabel(clientSecret, "quic iv", length: 12)
        headerProtectionBytes = QUICInitialKeys.expandLabel(clientSecret, "quic hp", length: 16)
    }

    /// TLS 1.3's HKDF-Expand-Label with an empty context (RFC 8446 §7.1):
    ///
    /// ```
    /// struct {
    ///     uint16 length = Length;
    ///     opaque label<7..255> = "tls13 " + Label;
    ///     opaque context<0..255> = Context;
    /// } HkdfLabel;
    /// ```
    static func expandLabel(_ secret: [UInt8], _ label: String, length: Int) -> [UInt8] {
        let fullLabel = Array("tls13 \(label)".utf8)
        var info: [UInt8] = [UInt8(length >> 8), UInt8(length & 0xFF), UInt8(fullLabel.count)]
        info += fullLabel
        info.append(0)
        return HKDF<SHA256>.expand(pseudoRandomKey: secret, info: info, outputByteCount: length).withUnsafeBytes { Array($0) }
    }

    /// The header protection mask: AES-ECB of the 16-byte sample (RFC 9001 §5.4.3). Nil when
    /// the sample is not 16 bytes.
    func mask(sample: ArraySlice<UInt8>) -> [UInt8]? {
        var block = Array(sample)
        guard block.count == 16, (try? AES.permute(&block, key: SymmetricKey(data: headerProtectionBytes))) != nil else { return nil }
        return block
    }
}

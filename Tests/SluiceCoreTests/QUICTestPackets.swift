import Foundation
import SluiceCore
import SluiceQUIC

/// QUIC client Initials for the tests: the fixtures in Fixtures/quic (RFC 9001 Appendix A.2's
/// packet; aioquic 1.7.2's first flights, written by make-aioquic-fixtures.py there), and
/// RFC 9001 A.2's values.
enum QUICTestPackets {
    static func fixture(_ name: String) throws -> [UInt8] {
        guard let url = Bundle.module.url(forResource: name, withExtension: "bin", subdirectory: "Fixtures/quic") else {
            throw CocoaError(.fileNoSuchFile)
        }
        return Array(try Data(contentsOf: url))
    }

    static func hex(_ text: String) -> [UInt8] {
        let digits = Array(text.filter { !$0.isWhitespace })
        return stride(from: 0, to: digits.count - 1, by: 2).compactMap { UInt8(String(digits[$0...$0 + 1]), radix: 16) }
    }

    /// RFC 9001 A.1: the Destination Connection ID of the example.
    static let rfcConnectionID = hex("8394c8f03e515708")

    /// RFC 9001 A.2: the client Initial's CRYPTO frame (a ClientHello for example.com); the
    /// packet's payload is this, then PADDING up to 1162 bytes.
    static let rfcCryptoFrame = hex("""
        060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
        04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
        616d706c652e636f6dff01000100000a00080006001d00170018001000070005
        04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
        baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
        0d0010000e0403050306030203080408050806002d00020101001c0002400100
        3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
        75300901100f088394c8f03e51570806048000ffff
        """)

    /// RFC 9001 A.2: the unprotected header (packet number 2, in 4 bytes).
    static let rfcHeader = hex("c300000001088394c8f03e5157080000449e00000002")

    /// A client Initial (QUICClientInitial, checked against A.2) carrying `frames`.
    static func initial(_ frames: [UInt8], packetNumber: UInt16 = 0, connectionID: [UInt8] = rfcConnectionID, minimumSize: Int = 1200) -> [UInt8] {
        QUICClientInitial.make(frames: frames, connectionID: connectionID, packetNumber: packetNumber, minimumSize: minimumSize)
    }
}

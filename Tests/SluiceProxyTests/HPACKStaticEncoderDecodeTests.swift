import NIOCore
import NIOHPACK
import SluiceCore
import XCTest

/// What `HPACKStaticEncoder` writes, read back by NIOHPACK's decoder (the one Sluice's
/// connections decode with): every field comes back, in order, and the decoder's dynamic
/// table stays empty however many blocks it reads.
final class HPACKStaticEncoderDecodeTests: XCTestCase {
    func testNIOHPACKDecodesEveryFieldBack() throws {
        let fields: [(String, String)] = [
            (":status", "200"), (":status", "201"), (":method", "POST"), (":path", "/index.html"), (":path", "/helloworld.Greeter/SayHello"),
            (":authority", "origin.example:50051"), ("content-type", "application/grpc"), ("te", "trailers"),
            ("grpc-status", "0"), ("x-request-id", "6f1c0e2a-0000-4000-8000-00000000000f"), ("accept-encoding", "gzip, deflate"),
            ("www-authenticate", String(repeating: "b", count: 300)), ("empty", ""),
        ]
        var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        for _ in 0..<3 {
            var block = ByteBuffer()
            for (name, value) in fields { HPACKStaticEncoder.append(name: name, value: value, to: &block) }
            let decoded = try decoder.decodeHeaders(from: &block)
            XCTAssertEqual(decoded.map { "\($0.name): \($0.value)" }, fields.map { "\($0.0): \($0.1)" })
            XCTAssertEqual(block.readableBytes, 0)
        }
        // Index 62, the first dynamic-table entry, names nothing: no block added one.
        var firstDynamic = ByteBuffer(bytes: [0xbe])
        XCTAssertThrowsError(try decoder.decodeHeaders(from: &firstDynamic))
    }
}

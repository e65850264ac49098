import SluiceCore
import XCTest

/// The one parser for Host, absolute-form authorities, SNI, CONNECT targets and explain URLs.
final class AuthorityTests: XCTestCase {
    func testNormalForm() throws {
        let cases: [(String, String, Int?)] = [
            ("Api.Example.COM", "api.example.com", nil),
            ("api.example.com.", "api.example.com", nil),
            ("api.example.com:8080", "api.example.com", 8080),
            ("api.example.com.:80", "api.example.com", 80),
            ("api.example.com:", "api.example.com", nil),
            ("[2001:DB8::1]:443", "2001:db8::1", 443),
            ("[::1]", "::1", nil),
            ("2001:db8::1", "2001:db8::1", nil),
            ("192.0.2.1:80", "192.0.2.1", 80),
            ("xn--bcher-kva.example", "xn--bcher-kva.example", nil),
            ("under_score.example", "under_score.example", nil),
        ]
        for (text, host, port) in cases {
            let authority = try Authority.parse(text).get()
            XCTAssertEqual(authority.host, host, text)
            XCTAssertEqual(authority.port, port, text)
        }
        XCTAssertEqual(Authority("192.0.2.1")?.address, IPAddress("192.0.2.1"))
        XCTAssertNil(Authority("api.example.com")?.address)
        XCTAssertEqual(Authority("[2001:db8::1]:443")?.description, "[2001:db8::1]:443")
    }

    func testRefusals() {
        let cases: [(String, Authority.Form, Authority.ParseError)] = [
            ("", .hostAndOptionalPort, .empty),
            ("user@api.example.com", .hostAndOptionalPort, .userinfo),
            ("api example.com", .hostAndOptionalPort, .badCharacter(0x20)),
            ("api.example.com\r", .hostAndOptionalPort, .badCharacter(0x0d)),
            ("bücher.example", .hostAndOptionalPort, .nonASCII),
            ("api..example.com", .hostAndOptionalPort, .emptyLabel),
            (".example.com", .hostAndOptionalPort, .emptyLabel),
            ("example.com..", .hostAndOptionalPort, .emptyLabel),
            ("api.example.com:0", .hostAndOptionalPort, .badPort),
            ("api.example.com:65536", .hostAndOptionalPort, .badPort),
            ("api.example.com:+80", .hostAndOptionalPort, .badPort),
            ("api.example.com:080080", .hostAndOptionalPort, .badPort),
            ("[2001:db8::1", .hostAndOptionalPort, .badIPv6Literal),
            ("[2001:db8::1]x", .hostAndOptionalPort, .badIPv6Literal),
            ("[not-v6]:80", .hostAndOptionalPort, .badIPv6Literal),
            ("1:2:3", .hostAndOptionalPort, .badIPv6Literal),
            ("api.example.com", .hostAndPort, .portRequired),
            ("api.example.com:443", .hostOnly, .portNotAllowed),
            (String(repeating: "a", count: 64) + ".example", .hostAndOptionalPort, .labelTooLong),
            (Array(repeating: "abcdefghi", count: 26).joined(separator: "."), .hostAndOptionalPort, .nameTooLong),
        ]
        for (text, form, error) in cases {
            XCTAssertEqual(Authority.parse(text, as: form), .failure(error), text)
        }
    }

    func testEveryPrefixOfAValidAuthorityParsesOrFailsCleanly() {
        // Not a proof, a smoke test of the byte loop's edges; the fuzzer does the rest.
        let text = "[2001:db8::1]:8443"
        for end in text.indices {
            _ = Authority.parse(text[..<end])
        }
    }
}

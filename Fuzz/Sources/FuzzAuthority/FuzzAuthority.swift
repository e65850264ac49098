import FuzzSupport
import SluiceCore

/// Fuzzes the one authority parser (Host, absolute-form authority, SNI, CONNECT target).
/// Beyond "never traps", it checks that:
/// - an accepted host is its own normal form: 1–253 bytes of `[a-z0-9._-]`, or an IP address
///   in canonical text; the port, when there is one, is 1…65535;
/// - printing and parsing again gives the same authority (the normal form is a fixed point);
/// - the forms agree: `host:port` accepts exactly what the optional form accepts with a port,
///   and a bare name accepts exactly what it accepts without a port.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAuthority(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    let text = String(decoding: input, as: UTF8.self)

    let optional = Authority.parse(text, as: .hostAndOptionalPort)
    let required = Authority.parse(text, as: .hostAndPort)
    let bare = Authority.parse(text, as: .hostOnly)

    if case .success(let authority) = optional {
        let host = Array(authority.host.utf8)
        invariant(!host.isEmpty && host.count <= 253 || authority.address != nil, "host length \(host.count)")
        if let address = authority.address {
            invariant(authority.host == address.description, "IP host \(authority.host) is not canonical \(address)")
        } else {
            invariant(host.allSatisfy(isHostByte), "host \(authority.host) has a byte outside [a-z0-9._-]")
            invariant(host.first != UInt8(ascii: ".") && host.last != UInt8(ascii: "."), "host \(authority.host) has an outer dot")
        }
        if let port = authority.port { invariant((1...65535).contains(port), "port \(port)") }
        let again = Authority.parse(authority.description, as: .hostAndOptionalPort)
        invariant(again == .success(authority), "\(authority) reparsed as \(again)")
        switch required {
        case .success(let withPort): invariant(authority.port != nil && withPort == authority, "host:port disagrees")
        case .failure: invariant(authority.port == nil, "host:port refused \(authority)")
        }
    } else {
        invariant((try? required.get()) == nil, "host:port accepted what the optional form refused")
        invariant((try? bare.get()) == nil, "a bare name accepted what the optional form refused")
    }
    if case .success(let name) = bare {
        invariant(name.port == nil, "a bare name has a port")
        invariant(optional == .success(name), "bare and optional forms disagree on \(name)")
    }
    return 0
}

private func isHostByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
        UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
        return true
    default:
        return false
    }
}

/// The entry point SwiftPM's link line names (see `runLibFuzzer`).
@_cdecl("FuzzAuthority_main")
public func fuzzAuthorityMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzAuthority)
}

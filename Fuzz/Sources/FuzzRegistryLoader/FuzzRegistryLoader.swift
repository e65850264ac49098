import FuzzSupport
import SluiceCore

/// Fuzzes the ServiceEntry loader on arbitrary text. Checks that every entry it returns is one
/// the registry can use safely, re-deriving Istio's rules here rather than calling the loader's
/// own validators: a name, at least one valid host, at least one port, every port number and
/// targetPort in 1–65535 and unique, endpoints only where the resolution allows them. Also that
/// an input the loader calls clean yields no entries it would have had to reject, and that
/// diagnostics point into the file (line ≥ 1).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRegistryLoader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    let path = "/fuzz/registry/entries.yaml"
    let result = RegistryLoader.parse(yaml: String(decoding: input, as: UTF8.self), path: path)

    for diagnostic in result.diagnostics {
        invariant(diagnostic.path == path, "diagnostic for another file: \(diagnostic)")
        if let line = diagnostic.line { invariant(line >= 1, "diagnostic at line \(line): \(diagnostic)") }
        invariant(!diagnostic.message.isEmpty, "diagnostic without a message")
    }
    for entry in result.entries {
        let what = entry.resourceName
        invariant(!entry.name.isEmpty && !entry.namespace.isEmpty, "\(what): empty name or namespace")
        invariant(entry.source.path == path && entry.source.line >= 1, "\(what): source \(entry.source)")
        invariant(!entry.hosts.isEmpty, "\(what): no hosts")
        for host in entry.hosts {
            invariant(isValidHost(host), "\(what): invalid host \(Array(host.utf8))")
        }
        // An entry without ports is valid Istio (it registers nothing).
        invariant(Set(entry.ports.map(\.number)).count == entry.ports.count, "\(what): duplicate port numbers")
        for port in entry.ports {
            invariant((1...65535).contains(port.number), "\(what): port number \(port.number)")
            if let target = port.targetPort { invariant((1...65535).contains(target), "\(what): targetPort \(target)") }
            invariant(!port.name.isEmpty, "\(what): port \(port.number) has no name")
        }
        switch entry.resolution {
        case .none:
            invariant(entry.endpoints.isEmpty, "\(what): endpoints with resolution NONE")
        case .static:
            invariant(!entry.endpoints.isEmpty || entry.selectsWorkloads, "\(what): STATIC without endpoints or workloadSelector")
            for endpoint in entry.endpoints {
                invariant(IPAddress(endpoint.address) != nil || endpoint.address.hasPrefix("unix://"),
                          "\(what): STATIC endpoint \(endpoint.address) is neither an IP nor a unix socket")
            }
        case .dns, .dnsRoundRobin:
            break
        }
        for endpoint in entry.endpoints {
            invariant(!endpoint.address.isEmpty, "\(what): empty endpoint address")
            for (name, number) in endpoint.ports {
                invariant((1...65535).contains(number), "\(what): endpoint port \(name)=\(number)")
            }
        }
    }
    return 0
}

/// Istio's ServiceEntry host rule: a lower-case DNS name of at most 255 bytes, whose leftmost
/// label may be `*` or a partial wildcard (`*x`, `*-x`), with labels of 1–63 letters, digits
/// and inner hyphens.
private func isValidHost(_ host: String) -> Bool {
    var bytes = Array(host.utf8)
    guard !bytes.isEmpty, bytes.count <= 255 else { return false }
    if bytes.first == UInt8(ascii: "*"), bytes.count >= 2, bytes[1] != UInt8(ascii: ".") {
        // A partial wildcard: what follows the `*` (and an optional `-`) must be a name.
        bytes.removeFirst()
        if bytes.first == UInt8(ascii: "-") { bytes.removeFirst() }
    }
    var labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
    if labels.first.map(Array.init) == [UInt8(ascii: "*")] {
        guard labels.count >= 2 else { return false }
        labels.removeFirst()
    }
    return labels.allSatisfy { label in
        guard !label.isEmpty, label.count <= 63, label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-") else {
            return false
        }
        return label.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-")
        }
    }
}

/// The entry point SwiftPM's link line names (see `runLibFuzzer`).
@_cdecl("FuzzRegistryLoader_main")
public func fuzzRegistryLoaderMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzRegistryLoader)
}

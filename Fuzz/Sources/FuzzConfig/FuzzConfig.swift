import FuzzSupport
import SluiceCore

/// Fuzzes `SluiceConfig.parse` on arbitrary text. A config it accepts must be one the proxy can
/// start with: ports in 1–65535, listener addresses that are IPs, registry paths resolved to
/// clean absolute paths, a gateway with at least one address, positive timeouts and limits in
/// their documented ranges. A config it refuses must say why with at least one error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    let path = "/etc/sluice/sluice.yaml"
    switch SluiceConfig.parse(yaml: String(decoding: input, as: UTF8.self), path: path) {
    case .failure(let diagnostics):
        invariant(!diagnostics.errors.isEmpty, "refused without an error: \(diagnostics)")
        for diagnostic in diagnostics {
            invariant(diagnostic.path == path, "diagnostic for another file: \(diagnostic)")
            if let line = diagnostic.line { invariant(line >= 1, "diagnostic at line \(line)") }
        }
    case .success(let config):
        for listener in config.listeners {
            invariant((1...65535).contains(listener.port), "listener port \(listener.port)")
            invariant(IPAddress(listener.address) != nil, "listener address \(listener.address)")
        }
        for registryPath in config.registryPaths {
            invariant(registryPath.hasPrefix("/"), "registry path \(registryPath) is not absolute")
            let parts = registryPath.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            invariant(registryPath == "/" || !parts.contains { $0.isEmpty || $0 == "." || $0 == ".." },
                      "registry path \(registryPath) is not normalised")
        }
        if let gateway = config.egressGateway {
            invariant(!gateway.addresses.isEmpty, "gateway without addresses")
            invariant(gateway.addresses.allSatisfy { !$0.isEmpty }, "empty gateway address")
            for port in [gateway.httpPort, gateway.tlsPort, gateway.connectPort] {
                invariant((1...65535).contains(port), "gateway port \(port)")
            }
            invariant(gateway.connectTimeout > .zero, "gateway connectTimeout \(gateway.connectTimeout)")
        }
        invariant(!config.accessLog.path.isEmpty, "empty access log path")
        invariant(AccessLogConfig.formats.contains(config.accessLog.format), "access log format \(config.accessLog.format)")
        let limits = config.limits
        invariant((1024...(16 << 20)).contains(limits.maxRequestHeadBytes), "maxRequestHeadBytes \(limits.maxRequestHeadBytes)")
        invariant((1...10_000).contains(limits.maxRequestHeaders), "maxRequestHeaders \(limits.maxRequestHeaders)")
        invariant((1...1_000_000).contains(limits.maxConnections), "maxConnections \(limits.maxConnections)")
        for (name, value) in [
            ("headerReadTimeout", limits.headerReadTimeout), ("detectionTimeout", limits.detectionTimeout),
            ("connectTimeout", limits.connectTimeout), ("idleTimeout", limits.idleTimeout),
            ("upstreamTimeout", limits.upstreamTimeout),
        ] {
            invariant(value > .zero, "\(name) \(value) is not positive")
        }
        invariant(limits.drainPeriod >= .zero, "drainPeriod \(limits.drainPeriod) is negative")
    }
    return 0
}

/// The entry point SwiftPM's link line names (see `runLibFuzzer`).
@_cdecl("FuzzConfig_main")
public func fuzzConfigMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzConfig)
}

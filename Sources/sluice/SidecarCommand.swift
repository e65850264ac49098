import ArgumentParser
import SluiceProxy

/// `sluice sidecar`: the per-pod outbound interceptor.
struct SidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sidecar",
        abstract: "Run the per-pod outbound interceptor (capture listener on 127.0.0.1 and [::1]).",
        discussion: """
            Accepts connections redirected by scripts/sluice-init, recovers each original \
            destination (SO_ORIGINAL_DST), sniffs TLS SNI / HTTP Host, and applies the registry \
            and outbound traffic policy. Run it as the uid sluice-init excludes (1337).

            With `dns: {proxy: true}` it also serves DNS on 127.0.0.1:15053 (UDP and TCP;             sluice-init --capture-dns sends port 53 there): registered names are answered or             resolved, others get `dns.unregistered` (NXDOMAIN) under REGISTRY_ONLY. With             `udp: {capture: true}` it reads NFQUEUE `udp.queue` (15100; sluice-init             --capture-udp) and decides each UDP flow; that needs CAP_NET_ADMIN. See docs/udp-dns.md.
            """
    )

    @OptionGroup var options: ProxyOptions

    func run() async throws {
        try await runProxy(role: .sidecar, options: options)
    }
}

/// `sluice gateway`: the egress gateway.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Run the egress gateway (HTTP by Host, TLS by SNI, HTTP CONNECT tunnels).",
        discussion: "Listeners come from the config's `listeners`; the default mode is REGISTRY_ONLY."
    )

    @OptionGroup var options: ProxyOptions

    func run() async throws {
        try await runProxy(role: .gateway, options: options)
    }
}

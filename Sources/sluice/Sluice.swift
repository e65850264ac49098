import ArgumentParser

/// `sluice`: an egress-control sidecar and egress gateway for Kubernetes pods.
@main
struct Sluice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Egress control for Kubernetes pods: an Istio-compatible outbound sidecar and egress gateway.",
        discussion: """
            Configured with Istio ServiceEntry YAML and an outbound traffic policy \
            (ALLOW_ANY or REGISTRY_ONLY). See README.md.
            """,
        subcommands: [SidecarCommand.self, GatewayCommand.self, CheckCommand.self, ExplainCommand.self]
    )
}

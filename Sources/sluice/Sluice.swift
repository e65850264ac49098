import ArgumentParser
import Dispatch

/// `sluice`: an egress-control sidecar and egress gateway for Kubernetes pods.
struct Sluice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Egress control for Kubernetes pods: an Istio-compatible outbound sidecar and egress gateway.",
        discussion: """
            Configured with Istio YAML (ServiceEntry, Gateway, VirtualService, \
            DestinationRule, Sidecar, AuthorizationPolicy; ASM's ASMEgressTrafficPolicy) and \
            an outbound traffic policy (ALLOW_ANY or REGISTRY_ONLY). See README.md.
            """,
        subcommands: [
            SidecarCommand.self, GatewayCommand.self, CheckCommand.self, ExplainCommand.self, LearnCommand.self,
            ReplayCommand.self, InjectCommand.self, InjectorCommand.self, CertsCommand.self,
        ]
    )
}

/// The process entry point, synchronous on purpose: with an `async` main the main thread
/// ends in `dispatch_main()`, which leaves it with `pthread_exit` — a forced unwind of its
/// stack that loads libgcc_s and reads the binary's unwind tables, ~0.8 MiB of an idle
/// sidecar's resident memory for nothing. Here the main thread just waits for the command,
/// which runs on the concurrency pool as before: detached, since this function is on the
/// main actor, whose queue the waiting thread never serves (nothing in Sluice uses it). A
/// command that fails exits from inside `Sluice.main()` with its exit code.
@main
enum SluiceEntryPoint {
    static func main() {
        let finished = DispatchSemaphore(value: 0)
        Task.detached {
            await Sluice.main()
            finished.signal()
        }
        finished.wait()
    }
}

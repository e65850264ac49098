import ArgumentParser
import Logging
import NIOCore
import SluiceInject
import SluiceInjector

/// `sluice injector`: the sidecar-injection webhook (a Kubernetes mutating admission webhook).
struct InjectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "injector",
        abstract: "Run the sidecar-injection webhook: AdmissionReviews in over HTTPS, JSONPatches out.",
        discussion: """
            Serves POST /inject (AdmissionReview admission.k8s.io/v1) and GET /healthz/ready \
            over HTTPS with cert-chain.pem and key.pem from --certs. Pods get exactly what \
            `sluice inject` adds. deploy/kubernetes/injector.yaml registers it \
            (MutatingWebhookConfiguration, failurePolicy: Fail) for namespaces labelled \
            sluice-injection=enabled and pods labelled sluice.io/inject=true.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Directory with cert-chain.pem and key.pem. Also from SLUICE_CERTS_DIR.", valueName: "dir"))
    var certs: String?

    @Option(name: .long, help: "HTTPS port.")
    var port: Int = 15017

    @Option(name: .long, help: "Address to listen on.")
    var address: String = "0.0.0.0"

    @OptionGroup var template: TemplateOptions

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1-65535, got \(port)") }
    }

    func run() async throws {
        let directory = certs ?? ProcessEnvironment.value("SLUICE_CERTS_DIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/etc/certs"
        let logger = Logger(label: "sluice.injector")
        let tls = try loadTLS(directory)
        let responder = AdmissionReviewResponder(injection: ManifestInjection(template: template.sidecarTemplate))
        let channel: any Channel
        do {
            channel = try await InjectorServer.bind(
                host: address, port: port, tls: tls, responder: responder, log: { logger.info("\($0)") })
        } catch {
            printError("sluice injector: cannot listen on \(address):\(port): \(error)")
            throw ExitCode(1)
        }
        logger.info("listening on https://\(address):\(port)\(InjectorServer.injectPath) (image \(template.sidecarTemplate.image))")
        try await channel.closeFuture.get()
    }

    /// The TLS context, or the one-line reason and exit 1.
    private func loadTLS(_ directory: String) throws -> InjectorServer.TLSContext {
        do {
            return try InjectorServer.tlsContext(certsDirectory: directory)
        } catch {
            printError("sluice injector: \(error)")
            throw ExitCode(1)
        }
    }
}

public import NIOCore

/// Istio's readiness port (0.0.0.0:15021): `GET /healthz/ready` answers 200 `ready` while the
/// proxy serves and 503 while it starts or drains, so the kubelet only routes to a pod whose
/// egress works.
public enum HealthServer {
    /// The readiness path Istio's sidecar injector configures probes for.
    public static let readyPath = "/healthz/ready"

    /// Binds the health listener.
    public static func bind(
        host: String = "0.0.0.0",
        port: Int,
        group: any EventLoopGroup,
        readiness: Readiness
    ) async throws -> any Channel {
        try await AdminHTTPServer.bind("health", host: host, port: port, group: group, router: Self.router(readiness: readiness))
    }

    /// The health endpoints.
    static func router(readiness: Readiness) -> AdminRouter {
        AdminRouter([
            AdminRoute(Self.readyPath, summary: "200 when serving, 503 while starting or draining") { _ in
                let state = readiness.state
                return .text(state.rawValue, status: state == .ready ? .ok : .serviceUnavailable)
            }
        ])
    }
}

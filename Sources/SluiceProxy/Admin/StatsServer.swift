public import NIOCore

/// Istio's Prometheus port (0.0.0.0:15090): `GET /stats/prometheus` is the scrape target that
/// Istio's pod annotations and scrape configs already point at.
public enum StatsServer {
    /// The scrape path.
    public static let prometheusPath = "/stats/prometheus"
    /// The text exposition format's content type.
    public static let prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Binds the stats listener.
    public static func bind(
        host: String = "0.0.0.0",
        port: Int,
        group: any EventLoopGroup,
        metrics: ProxyMetrics
    ) async throws -> any Channel {
        try await AdminHTTPServer.bind("stats", host: host, port: port, group: group, router: AdminRouter([Self.prometheusRoute(metrics)]))
    }

    /// `/stats/prometheus`, shared with the admin server (Envoy serves it there too).
    static func prometheusRoute(_ metrics: ProxyMetrics) -> AdminRoute {
        AdminRoute(Self.prometheusPath, summary: "every metric in the Prometheus text format", offload: true) { _ in
            AdminResponse(status: .ok, contentType: Self.prometheusContentType, body: metrics.prometheusText())
        }
    }
}

public import NIOCore
public import SluiceCore

/// Why the admin server would not start.
public struct AdminServerError: Error, CustomStringConvertible, Sendable {
    /// The host it was asked to bind.
    public let host: String

    /// One line for the user.
    public var description: String {
        "admin server must listen on a loopback address (127.0.0.1 or ::1), not \(host): it can change the log level"
    }
}

/// Envoy's admin port (127.0.0.1:15000), loopback only: `/config_dump`, `/stats`,
/// `/stats/prometheus`, `/logging`, and `/` listing them.
public enum AdminServer {
    /// Binds the admin listener. Throws `AdminServerError` for a non-loopback `host`: anyone who
    /// reaches this port can read the whole registry and change the log level.
    ///
    /// - Parameter snapshot: the configuration in force, read on each `/config_dump`.
    public static func bind(
        host: String = "127.0.0.1",
        port: Int,
        group: any EventLoopGroup,
        role: ProxyRole,
        metrics: ProxyMetrics,
        logLevel: LogLevelBox,
        learned: LearnedAddressBook? = nil,
        allocations: @escaping @Sendable () -> DNSAllocations = { DNSAllocations() },
        snapshot: @escaping @Sendable () -> SluiceSnapshot
    ) async throws -> any Channel {
        guard let address = try? SocketAddress(ipAddress: host, port: 0), Self.isLoopback(address) else {
            throw AdminServerError(host: host)
        }
        let router = Self.router(
            role: role, metrics: metrics, logLevel: logLevel, learned: learned, allocations: allocations, snapshot: snapshot)
        return try await AdminHTTPServer.bind("admin", host: host, port: port, group: group, router: router)
    }

    static func isLoopback(_ address: SocketAddress) -> Bool {
        switch address {
        case .v4(let v4):
            // 127.0.0.0/8, in network byte order.
            return UInt32(bigEndian: v4.address.sin_addr.s_addr) >> 24 == 127
        case .v6:
            return address.ipAddress == "::1"
        case .unixDomainSocket:
            return false
        }
    }

    /// The admin endpoints.
    static func router(
        role: ProxyRole,
        metrics: ProxyMetrics,
        logLevel: LogLevelBox,
        learned: LearnedAddressBook? = nil,
        allocations: @escaping @Sendable () -> DNSAllocations = { DNSAllocations() },
        snapshot: @escaping @Sendable () -> SluiceSnapshot
    ) -> AdminRouter {
        // `/` lists the routes, so it is built from the router it belongs to.
        let routes = [
            AdminRoute("/config_dump", summary: "the configuration in force and every ServiceEntry, as JSON", offload: true) { _ in
                AdminResponse(
                    status: .ok,
                    contentType: "application/json",
                    body: ConfigDump(snapshot: snapshot(), role: role, learned: learned, allocations: allocations()).json())
            },
            AdminRoute("/stats", summary: "every metric as `name{labels}: value` lines", offload: true) { _ in
                AdminResponse(status: .ok, body: metrics.plainText())
            },
            StatsServer.prometheusRoute(metrics),
            AdminRoute(
                "/logging", methods: [.GET, .POST],
                summary: "show the log level; ?level=trace|debug|info|notice|warning|error|critical changes it"
            ) { request in
                Self.logging(request, box: logLevel)
            },
        ]
        let listing = AdminRouter(routes).listing()
        let index = AdminRoute("/", summary: "this list") { _ in .text(listing) }
        return AdminRouter([index] + routes)
    }

    /// `/logging`: with `level`, sets it (POST, or GET for convenience as Envoy allows) and
    /// answers the level now in force; without, only answers it (GET) or refuses (POST).
    static func logging(_ request: AdminRequest, box: LogLevelBox) -> AdminResponse {
        guard let text = request.query["level"] else {
            if request.method == .POST {
                return .text("usage: POST /logging?level=<trace|debug|info|notice|warning|error|critical>", status: .badRequest)
            }
            return .text("level: \(box.level)")
        }
        guard let level = LogLevelBox.parse(text) else {
            return .text("unknown level \"\(text)\": use trace, debug, info, notice, warning, error or critical", status: .badRequest)
        }
        box.level = level
        return .text("level: \(level)")
    }
}

import Logging
import NIOCore
import NIOPosix
public import ServiceLifecycle
import SluiceCore

/// Ports a sidecar or gateway listens on (Istio's defaults).
public struct ProxyPorts: Sendable {
    /// The capture listener (sidecar only).
    public var outbound: Int = 15001
    /// Admin (127.0.0.1 only).
    public var admin: Int = 15000
    /// Prometheus scrape port.
    public var stats: Int = 15090
    /// Readiness port.
    public var health: Int = 15021

    /// Istio's defaults.
    public init() {}
}

/// Runs a sidecar or gateway until a graceful shutdown: binds the listeners, serves, and on
/// SIGTERM stops accepting, lets connections in flight drain, then returns.
public final class ProxyServer: Service, Sendable {
    private let runtime: ProxyRuntime
    private let ports: ProxyPorts
    private let group: MultiThreadedEventLoopGroup

    /// - Parameter concurrency: event-loop threads (default: one per core).
    public init(runtime: ProxyRuntime, ports: ProxyPorts, concurrency: Int) {
        self.runtime = runtime
        self.ports = ports
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, concurrency))
    }

    /// The traffic listeners (closed first when draining) and the operational ones
    /// (health, stats, admin: kept until the end, so probes see 503 while draining).
    struct Listeners {
        var traffic: [any Channel] = []
        var operational: [any Channel] = []
    }

    /// Binds the role's listeners; throws if a required one cannot be bound.
    func bindListeners() async throws -> Listeners {
        var bound = Listeners()
        do {
            try await self.bindTraffic(into: &bound)
            try await self.bindOperational(into: &bound)
        } catch {
            for channel in bound.traffic + bound.operational { try? await channel.close() }
            throw error
        }
        // Once per address: a per-loop listener is several sockets on one address.
        var logged: [String] = []
        for channel in bound.traffic + bound.operational {
            let address = channel.localAddress?.logDescription ?? "-"
            if logged.contains(address) { continue }
            logged.append(address)
            self.runtime.logger.info("listening on \(address)")
        }
        return bound
    }

    private func bindTraffic(into bound: inout Listeners) async throws {
        switch self.runtime.role {
        case .sidecar:
            let port = self.ports.outbound
            bound.traffic.append(
                contentsOf: try await OutboundListener.bind(host: "127.0.0.1", port: port, group: self.group, runtime: self.runtime))
            do {
                bound.traffic.append(
                    contentsOf: try await OutboundListener.bind(host: "::1", port: port, group: self.group, runtime: self.runtime))
            } catch {
                // A pod without IPv6 is normal; say so once and carry on.
                self.runtime.logger.notice("IPv6 outbound listener skipped (\(error))")
            }
        case .gateway:
            // Istio Gateway servers with tls.mode ISTIO_MUTUAL, SIMPLE or MUTUAL switch termination on for
            // the listener on their port (read at start; RouteTable+ServerTLS).
            let config = self.runtime.config
            let listeners = config.snapshot.config.listeners
            let applied = config.policy.routes?.applyingServerTLS(to: listeners) ?? (listeners: listeners, warnings: [])
            for warning in applied.warnings { self.runtime.logger.warning("\(warning)") }
            if self.runtime.certificates == nil, applied.listeners.contains(where: { $0.tls == .istioMutual || $0.tlsServers.contains { $0.mode == .istioMutual } }) {
                self.runtime.logger.error("a listener terminates ISTIO_MUTUAL but no mesh certificate is loaded (--certs): its connections are refused")
            }
            for listener in applied.listeners {
                bound.traffic.append(try await GatewayListener.bind(listener, group: self.group, runtime: self.runtime))
            }
        }
    }

    private func bindOperational(into bound: inout Listeners) async throws {
        let runtime = self.runtime
        bound.operational.append(
            try await HealthServer.bind(port: self.ports.health, group: self.group, readiness: runtime.readiness))
        bound.operational.append(
            try await StatsServer.bind(port: self.ports.stats, group: self.group, metrics: runtime.metrics))
        bound.operational.append(
            try await AdminServer.bind(
                port: self.ports.admin,
                group: self.group,
                role: runtime.role,
                metrics: runtime.metrics,
                logLevel: runtime.logLevel,
                learned: runtime.learned,
                allocations: { runtime.config.policy.resolvedNames?.allocations ?? DNSAllocations() },
                snapshot: { runtime.config.snapshot }
            )
        )
    }

    /// Envoy's drain: stop accepting, let HTTP connections finish their exchange in flight
    /// (idle ones close now), give tunnels the drain period, then close what is left.
    private func drain(_ listeners: Listeners) async {
        let period = self.runtime.config.limits.drainPeriod
        let open = self.runtime.connections.count
        self.runtime.logger.notice("draining: no longer accepting connections; \(open) open, drain period \(period)")
        for channel in listeners.traffic {
            try? await channel.close()
        }
        self.runtime.connections.broadcastDrain()
        let left = await self.runtime.connections.waitUntilClosed(deadline: .now + period)
        if left > 0 {
            self.runtime.logger.warning("drain period over: closing \(left) connections still open")
        }
        for channel in listeners.operational {
            try? await channel.close()
        }
    }

    /// Serves until graceful shutdown is requested.
    public func run() async throws {
        let listeners: Listeners
        do {
            listeners = try await self.bindListeners()
        } catch {
            try? await self.group.shutdownGracefully()
            throw error
        }
        self.runtime.readiness.markReady()
        try? await gracefulShutdown()
        self.runtime.readiness.markDraining()
        await self.drain(listeners)
        try? await self.group.shutdownGracefully()
        self.runtime.shutdown()
    }
}

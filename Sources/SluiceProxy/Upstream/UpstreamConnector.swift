import Logging
import NIOCore
import NIOPosix
import SluiceCore

/// The addresses a DestinationRule's load balancer put in order (already resolved), and who
/// hears of each one that refused or timed out (outlier detection).
struct EndpointChoice: Sendable {
    let ordered: [SocketAddress]
    let failed: @Sendable (SocketAddress) -> Void
}

/// A connected upstream: the channel and the address it reached.
struct UpstreamConnection {
    let channel: any Channel
    /// The ip:port actually dialled (`upstream_host` in the access log).
    let remote: SocketAddress
}

/// Turns a decision's `UpstreamTarget` into a connected channel: resolves names, tries the
/// addresses in order (a refused or timed-out address moves on to the next, and is logged),
/// and opens a CONNECT tunnel when the target is a `connect` gateway.
///
/// The upstream channel lives on the downstream channel's event loop, so the data path
/// never hops threads. It starts with `autoRead` off: the caller installs its handlers and
/// then turns reading on, so no byte from a server that speaks first is lost.
struct UpstreamConnector: Sendable {
    let resolver: DNSResolver
    let logger: Logger
    let metrics: ProxyMetrics
    /// The workload certificates, for an `istio` gateway with `tls: {mode: ISTIO_MUTUAL}`.
    var certificates: CertificateStore?
    /// Contexts from certificate files: TLS origination, Gateway SIMPLE / MUTUAL servers.
    var fileContexts = FileTLSContexts(credentialsDirectory: nil)

    /// Resolves the addresses to try, in order.
    func addresses(
        for target: UpstreamTarget,
        gateway: EgressGatewayConfig?,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<[SocketAddress]> {
        switch target {
        case .originalDestination(let ip, let port):
            guard let address = SocketAddress.from(ip, port: port) else {
                return eventLoop.makeFailedFuture(UpstreamError.connectFailed("bad address \(ip)"))
            }
            return eventLoop.makeSucceededFuture([address])
        case .resolve(let host, let port):
            return self.resolveAll([HostPort(host: host, port: port)], on: eventLoop)
        case .endpoints(let endpoints):
            return self.resolveAll(endpoints, on: eventLoop)
        case .gateway(_, let gatewayPort, _):
            guard let gateway, !gateway.addresses.isEmpty else {
                return eventLoop.makeFailedFuture(UpstreamError.noHealthyUpstream)
            }
            return self.resolveAll(gateway.addresses.map { HostPort(host: $0, port: gatewayPort) }, on: eventLoop)
        }
    }

    /// Resolves each host:port and concatenates the answers; fails only if none resolved.
    private func resolveAll(_ list: [HostPort], on eventLoop: any EventLoop) -> EventLoopFuture<[SocketAddress]> {
        guard !list.isEmpty else { return eventLoop.makeFailedFuture(UpstreamError.noHealthyUpstream) }
        let futures = list.map { hp in
            self.resolver.resolve(host: hp.host, port: hp.port, on: eventLoop)
                .map { Result<[SocketAddress], any Error>.success($0) }
                .recover { Result<[SocketAddress], any Error>.failure($0) }
        }
        return EventLoopFuture.whenAllComplete(futures, on: eventLoop).flatMapThrowing { results in
            var all: [SocketAddress] = []
            var lastError: (any Error)?
            for case .success(let outer) in results {
                switch outer {
                case .success(let addresses): all.append(contentsOf: addresses)
                case .failure(let error): lastError = error
                }
            }
            if all.isEmpty {
                throw UpstreamError.resolution(lastError.map { "\($0)" } ?? "no address")
            }
            return all
        }
    }

    /// The one way every path dials upstream: connects to the first address that accepts,
    /// then opens `tls` (the decision's `upstreamTLS`; the `egressGateway.tls` shorthand for
    /// an `istio` gateway when nil) or, for a `connect` gateway, the tunnel to `authority`,
    /// and reports the outcome
    /// on `eventLoop` with every failure as an `UpstreamError` (what the access log's flags
    /// and the local reply are made from). `completion` runs on the loop, so a handler may
    /// touch its own state from it. `http2`: the connection will carry HTTP/2, so TLS offers
    /// ALPN `h2` (Istio's `istio`, `h2` towards the gateway; `h2` to an origin).
    func connect(
        target: UpstreamTarget,
        gateway: EgressGatewayConfig?,
        tls: UpstreamTLS? = nil,
        http2: Bool = false,
        eventLoop: any EventLoop,
        connectTimeout: TimeAmount,
        endpoints: EndpointChoice? = nil,
        completion: @escaping (Result<UpstreamConnection, UpstreamError>) -> Void
    ) {
        self.dial(target: target, gateway: gateway, tls: tls, http2: http2, eventLoop: eventLoop, connectTimeout: connectTimeout, endpoints: endpoints)
            .assumeIsolated().whenComplete { result in
                completion(result.mapError { $0 as? UpstreamError ?? .connectFailed("\($0)") })
            }
    }

    private func dial(
        target: UpstreamTarget,
        gateway: EgressGatewayConfig?,
        tls: UpstreamTLS?,
        http2: Bool,
        eventLoop: any EventLoop,
        connectTimeout: TimeAmount,
        endpoints: EndpointChoice?
    ) -> EventLoopFuture<UpstreamConnection> {
        let addresses = endpoints.map { eventLoop.makeSucceededFuture($0.ordered) }
            ?? self.addresses(for: target, gateway: gateway, on: eventLoop)
        return addresses.flatMap { addresses in
            self.connectInOrder(addresses[...], eventLoop: eventLoop, connectTimeout: connectTimeout, lastError: nil,
                                failed: endpoints?.failed)
        }.flatMap { connection in
            switch tls ?? Self.shorthandTLS(target, gateway: gateway) {
            case .istioMutual(let settings):
                return self.openMeshTLS(
                    connection, settings: settings, serverName: Self.serverName(target), http2: http2, timeout: connectTimeout, eventLoop: eventLoop)
            case .originate(let origin):
                return self.openOriginTLS(connection, origin: origin, http2: http2, timeout: connectTimeout, eventLoop: eventLoop)
            case nil:
                break
            }
            guard case .gateway(let authority, _, .connect) = target else {
                return eventLoop.makeSucceededFuture(connection)
            }
            let promise = eventLoop.makePromise(of: Void.self)
            let handshake = ConnectTunnelHandshake(
                authority: authority.description,
                gateway: connection.remote.logDescription,
                promise: promise
            )
            do {
                try connection.channel.pipeline.syncOperations.addHandler(handshake, position: .first)
            } catch {
                connection.channel.close(promise: nil)
                return eventLoop.makeFailedFuture(error)
            }
            return promise.futureResult.map { connection }
        }
    }

    /// ISTIO_MUTUAL to the gateway on a fresh connection (a pooled HTTP connection keeps its
    /// TLS session, so the handshake is paid once per connection, not per request).
    private func openMeshTLS(
        _ connection: UpstreamConnection,
        settings: GatewayClientTLS,
        serverName: String,
        http2: Bool,
        timeout: TimeAmount,
        eventLoop: any EventLoop
    ) -> EventLoopFuture<UpstreamConnection> {
        guard let certificates = self.certificates else {
            connection.channel.close(promise: nil)
            return eventLoop.makeFailedFuture(UpstreamError.tlsFailed(entries: ["no workload certificate (--certs)"], detail: "no workload certificate (--certs)"))
        }
        return MeshTLSClient.handshake(
            on: connection.channel, credentials: certificates.credentials, settings: settings, serverName: serverName, http2: http2,
            timeout: timeout
        ).map { connection }.flatMapErrorThrowing { error in
            connection.channel.close(promise: nil)
            self.logger.warning(
                "mTLS to the egress gateway failed",
                metadata: ["gateway": "\(connection.remote.logDescription)", "error": "\(error)"])
            throw error
        }
    }

    /// TLS origination on a fresh connection (SIMPLE / MUTUAL); pooled like any connection.
    private func openOriginTLS(
        _ connection: UpstreamConnection, origin: OriginTLS, http2: Bool, timeout: TimeAmount, eventLoop: any EventLoop
    ) -> EventLoopFuture<UpstreamConnection> {
        OriginTLSClient.handshake(on: connection.channel, origin: origin, contexts: self.fileContexts, http2: http2, timeout: timeout)
            .map { connection }.flatMapErrorThrowing { error in
                connection.channel.close(promise: nil)
                self.logger.warning(
                    "TLS origination failed",
                    metadata: ["upstream": "\(connection.remote.logDescription)", "sni": "\(origin.sni ?? "-")", "error": "\(error)"])
                throw error
            }
    }

    /// The `egressGateway.tls` shorthand: ISTIO_MUTUAL to an `istio` gateway.
    static func shorthandTLS(_ target: UpstreamTarget, gateway: EgressGatewayConfig?) -> UpstreamTLS? {
        guard case .gateway(_, _, .istio) = target, let tls = gateway?.tls else { return nil }
        return .istioMutual(tls)
    }

    /// The name a target's TLS defaults its SNI to: the host the gateway routes, or the one resolved.
    static func serverName(_ target: UpstreamTarget) -> String {
        switch target {
        case .gateway(let authority, _, _): return authority.host
        case .resolve(let host, _): return host
        case .endpoints(let list): return list.first?.host ?? ""
        case .originalDestination(let address, _): return address.description
        }
    }

    private func connectInOrder(
        _ addresses: ArraySlice<SocketAddress>,
        eventLoop: any EventLoop,
        connectTimeout: TimeAmount,
        lastError: UpstreamError?,
        failed: (@Sendable (SocketAddress) -> Void)? = nil
    ) -> EventLoopFuture<UpstreamConnection> {
        guard let address = addresses.first else {
            return eventLoop.makeFailedFuture(lastError ?? UpstreamError.noHealthyUpstream)
        }
        let rest = addresses.dropFirst()
        let started = NIODeadline.now()
        let metrics = self.metrics
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.autoRead, value: false)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(to: address)
            .map { channel in
                metrics.upstreamConnected(milliseconds: Double((NIODeadline.now() - started).nanoseconds) / 1_000_000)
                return UpstreamConnection(channel: channel, remote: address)
            }
            .flatMapError { error in
                let failure: UpstreamError
                if case ChannelError.connectTimeout = error {
                    failure = .connectTimeout("\(address.logDescription) after \(connectTimeout.nanoseconds / 1_000_000)ms")
                } else {
                    failure = .connectFailed("\(address.logDescription): \(error)")
                }
                failed?(address)
                if !rest.isEmpty {
                    self.logger.warning(
                        "upstream address failed, trying next",
                        metadata: ["address": "\(address.logDescription)", "error": "\(failure)"]
                    )
                }
                return self.connectInOrder(rest, eventLoop: eventLoop, connectTimeout: connectTimeout, lastError: failure, failed: failed)
            }
    }
}

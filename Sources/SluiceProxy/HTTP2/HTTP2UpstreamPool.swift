import NIOCore
import NIOHTTP2
import NIOPosix
import SluiceCore

/// The HTTP/2 upstream connections of one event loop, shared by every client connection on
/// it, as Envoy's per-worker HTTP/2 connection pools: one connection per target (per
/// endpoint, under a DestinationRule load balancer) multiplexes every stream to it. The hop to
/// an `istio` egress gateway is one connection whatever the streams' authorities: the gateway
/// decides each stream by its `:authority`. A connection that carries no stream for
/// `idleTimeout`, or that has drained (GOAWAY, `maxRequestsPerConnection`) and carries none,
/// is closed. Confined to its event loop (the connector dials on it too).
final class HTTP2UpstreamPool {
    typealias Waiter = (Result<HTTP2UpstreamRelay, UpstreamError>) -> Void

    /// What a pooled connection is for: the target (an `istio` gateway's without the
    /// authority), the TLS it opened, and the endpoint a cluster's load balancer chose.
    struct Key: Hashable {
        var target: UpstreamTarget
        var tls: UpstreamTLS?
        var endpoint: SocketAddress?

        init(target: UpstreamTarget, tls: UpstreamTLS?, endpoint: SocketAddress?) {
            if case .gateway(_, let port, .istio) = target {
                self.target = .gateway(authority: HostPort(host: "", port: 0), gatewayPort: port, protocol: .istio)
            } else {
                self.target = target
            }
            self.tls = tls
            self.endpoint = endpoint
        }
    }

    private enum Entry {
        case connecting([Waiter])
        case ready(HTTP2UpstreamRelay)
    }

    /// A connection without streams for this long is closed (as `UpstreamPool.maxIdle`).
    static let idleTimeout = TimeAmount.seconds(20)
    private static let sweepInterval = TimeAmount.seconds(5)

    private let runtime: ProxyRuntime
    private let eventLoop: any EventLoop
    private var entries: [Key: Entry] = [:]
    /// Connections that take no new stream and still carry some: closed when the last ends.
    private var draining: [HTTP2UpstreamRelay] = []
    private var sweep: RepeatedTask?

    init(runtime: ProxyRuntime, eventLoop: any EventLoop) {
        self.runtime = runtime
        self.eventLoop = eventLoop
    }

    /// The connection to `target` with `tls` if it is up and may take a new stream (no cluster:
    /// a DestinationRule's load balancer picks an endpoint per stream instead).
    func usableConnection(to target: UpstreamTarget, tls: UpstreamTLS?) -> HTTP2UpstreamRelay? {
        if case .ready(let relay) = self.entries[Key(target: target, tls: tls, endpoint: nil)], relay.isUsable { return relay }
        return nil
    }

    /// Calls `completion` on the loop with a usable connection for a stream to `target`,
    /// dialling one if needed: under `cluster`, to the endpoint its load balancer picks,
    /// counted against its connection limit (`UpstreamError.overflow` past it).
    func connection(
        to target: UpstreamTarget, tls: UpstreamTLS?, cluster: ClusterState?, config: ActiveConfig, window: Int,
        completion: @escaping Waiter
    ) {
        guard let cluster else {
            self.connection(Key(target: target, tls: tls, endpoint: nil), target: target, config: config, window: window,
                            dial: nil, completion: completion)
            return
        }
        self.runtime.connector.clusterEndpoints(for: target, gateway: config.gateway, cluster: cluster, eventLoop: self.eventLoop) { result in
            switch result {
            case .failure(let error):
                completion(.failure(error))
            case .success(let ordered):
                self.connection(Key(target: target, tls: tls, endpoint: ordered.first), target: target, config: config, window: window,
                                dial: (cluster, ordered), completion: completion)
            }
        }
    }

    private func connection(
        _ key: Key, target: UpstreamTarget, config: ActiveConfig, window: Int,
        dial counted: (cluster: ClusterState, ordered: [SocketAddress])?, completion: @escaping Waiter
    ) {
        switch self.entries[key] {
        case .ready(let relay) where relay.isUsable:
            completion(.success(relay))
            return
        case .ready(let relay):
            if relay.connection.channel.isActive { self.draining.append(relay) }
        case .connecting(var waiters):
            waiters.append(completion)
            self.entries[key] = .connecting(waiters)
            return
        case nil:
            break
        }
        self.entries[key] = .connecting([completion])
        self.startSweeping()
        let connector = self.runtime.connector
        let maxStreams = counted?.cluster.limits.maxRequestsPerConnection
        let dialled = { (result: Result<UpstreamConnection, UpstreamError>) in
            self.connected(key, result: result, window: window, maxStreams: maxStreams)
        }
        if let counted {
            connector.connectCounted(
                target: target, gateway: config.gateway, tls: key.tls, http2: true, cluster: counted.cluster, ordered: counted.ordered,
                defaultTimeout: config.limits.connectTimeout, eventLoop: self.eventLoop, completion: dialled)
        } else {
            connector.connect(
                target: target, gateway: config.gateway, tls: key.tls, http2: true, eventLoop: self.eventLoop,
                connectTimeout: .init(config.limits.connectTimeout), completion: dialled)
        }
    }

    private func connected(_ key: Key, result: Result<UpstreamConnection, UpstreamError>, window: Int, maxStreams: Int?) {
        guard case .connecting(let waiters) = self.entries[key] else {
            if case .success(let connection) = result { connection.channel.close(promise: nil) }
            return
        }
        let outcome: Result<HTTP2UpstreamRelay, UpstreamError>
        switch result {
        case .failure(let error):
            self.entries[key] = nil
            outcome = .failure(error)
        case .success(let connection):
            do {
                // The peer may have closed right after the handshake (an origin refusing our ALPN).
                guard connection.channel.isActive else { throw UpstreamError.connectFailed("closed by \(connection.remote.logDescription) before use") }
                let relay = try Self.configureClient(connection, window: window, maxStreams: maxStreams)
                self.entries[key] = .ready(relay)
                let loopBound = NIOLoopBound(self, eventLoop: self.eventLoop)
                let relayID = ObjectIdentifier(relay)
                connection.channel.closeFuture.whenComplete { _ in
                    let pool = loopBound.value
                    if case .ready(let current) = pool.entries[key], ObjectIdentifier(current) == relayID {
                        pool.entries[key] = nil
                    }
                    pool.draining.removeAll { ObjectIdentifier($0) == relayID }
                }
                outcome = .success(relay)
            } catch {
                connection.channel.close(promise: nil)
                self.entries[key] = nil
                outcome = .failure(error as? UpstreamError ?? .connectFailed("\(error)"))
            }
        }
        for waiter in waiters { waiter(outcome) }
    }

    /// The HTTP/2 client side on a freshly dialled channel, relayed frame by frame (no stream
    /// channels). The connector leaves reads off; HTTP/2 flow control (windows per stream,
    /// reopened by the relay as the client drains) is the backpressure from here on.
    private static func configureClient(_ connection: UpstreamConnection, window: Int, maxStreams: Int?) throws -> HTTP2UpstreamRelay {
        // Each header block is checked once, as it arrives: a response's or trailers' here (an
        // invalid one resets the origin's stream and is answered as Envoy answers an upstream
        // protocol error), a request's on the client's connection. Nothing is checked again on
        // the way out.
        var limits = HTTP2Limits()
        limits.initialWindowSize = window
        let channel = connection.channel
        let relay = HTTP2UpstreamRelay(connection: connection, window: window, maxStreams: maxStreams)
        let sync = channel.pipeline.syncOperations
        let http2 = HTTP2WireHandler(mode: .client, limits: limits)
        http2.events = relay
        try sync.addHandler(http2)
        try sync.addHandler(relay)
        try channel.syncOptions?.setOption(.autoRead, value: true)
        channel.read()
        return relay
    }

    // MARK: idle connections

    private func startSweeping() {
        guard self.sweep == nil else { return }
        let loopBound = NIOLoopBound(self, eventLoop: self.eventLoop)
        self.sweep = self.eventLoop.scheduleRepeatedTask(initialDelay: Self.sweepInterval, delay: Self.sweepInterval) { task in
            loopBound.value.closeIdle(now: .now(), task: task)
        }
    }

    /// Closes connections without streams that drained or were idle for `idleTimeout`;
    /// stops sweeping when the pool is empty.
    private func closeIdle(now: NIODeadline, task: RepeatedTask) {
        for relay in self.draining { relay.closeIfIdle() }
        for case .ready(let relay) in self.entries.values where now - relay.lastOpened >= Self.idleTimeout || relay.isDraining {
            relay.closeIfIdle()
        }
        if self.entries.isEmpty, self.draining.isEmpty {
            task.cancel()
            self.sweep = nil
        }
    }
}

extension HTTP2UpstreamPool {
    /// The pools of one event-loop thread, one per runtime (tests run several in a process).
    private final class PerThread: @unchecked Sendable {
        // @unchecked: an instance is reachable only from its own thread's variable.
        var pools: [ObjectIdentifier: HTTP2UpstreamPool] = [:]
    }

    private static let perThread = ThreadSpecificVariable<PerThread>()

    /// The pool of the calling event-loop thread for `runtime`.
    static func current(runtime: ProxyRuntime, eventLoop: any EventLoop) -> HTTP2UpstreamPool {
        let pools: PerThread
        if let existing = perThread.currentValue {
            pools = existing
        } else {
            pools = PerThread()
            perThread.currentValue = pools
        }
        if let pool = pools.pools[ObjectIdentifier(runtime)] { return pool }
        let pool = HTTP2UpstreamPool(runtime: runtime, eventLoop: eventLoop)
        pools.pools[ObjectIdentifier(runtime)] = pool
        return pool
    }
}

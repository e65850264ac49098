import NIOCore
import NIOHTTP2
import SluiceCore

/// The HTTP/2 client connections one downstream HTTP/2 connection relays its streams over:
/// one per upstream target, multiplexing every stream to that target (h2c, prior knowledge).
/// Confined to the downstream connection's event loop (the connector dials on it too).
final class HTTP2UpstreamPool {
    typealias Waiter = (Result<HTTP2UpstreamRelay, UpstreamError>) -> Void

    private enum Entry {
        case connecting([Waiter])
        case ready(HTTP2UpstreamRelay)
    }

    private let runtime: ProxyRuntime
    private let eventLoop: any EventLoop
    private var entries: [UpstreamTarget: Entry] = [:]
    private var closed = false

    init(runtime: ProxyRuntime, eventLoop: any EventLoop) {
        self.runtime = runtime
        self.eventLoop = eventLoop
    }

    /// The connection to `target` if it is up and may take a new stream.
    func usableConnection(to target: UpstreamTarget) -> HTTP2UpstreamRelay? {
        if case .ready(let relay) = self.entries[target], relay.isUsable { return relay }
        return nil
    }

    /// Calls `completion` on the loop with a usable connection to `target`, dialling one if needed.
    func connection(
        to target: UpstreamTarget, config: ActiveConfig, downstream: HTTP2DownstreamRelay,
        completion: @escaping Waiter
    ) {
        switch self.entries[target] {
        case .ready(let relay) where relay.isUsable:
            completion(.success(relay))
            return
        case .connecting(var waiters):
            waiters.append(completion)
            self.entries[target] = .connecting(waiters)
            return
        default:
            break
        }
        self.entries[target] = .connecting([completion])
        self.runtime.connector.connect(
            target: target,
            gateway: config.gateway,
            eventLoop: self.eventLoop,
            connectTimeout: .init(config.limits.connectTimeout)
        ) { result in
            self.connected(target: target, result: result, downstream: downstream)
        }
    }

    private func connected(
        target: UpstreamTarget, result: Result<UpstreamConnection, UpstreamError>, downstream: HTTP2DownstreamRelay
    ) {
        guard case .connecting(let waiters) = self.entries[target] else {
            if case .success(let connection) = result { connection.channel.close(promise: nil) }
            return
        }
        let outcome: Result<HTTP2UpstreamRelay, UpstreamError>
        switch result {
        case .failure(let error):
            self.entries[target] = nil
            outcome = .failure(error)
        case .success(let connection):
            if self.closed {
                connection.channel.close(promise: nil)
                outcome = .failure(.connectFailed("downstream closed"))
            } else {
                do {
                    let relay = try Self.configureClient(connection, downstream: downstream)
                    self.entries[target] = .ready(relay)
                    let loopBound = NIOLoopBound(self, eventLoop: self.eventLoop)
                    let relayID = ObjectIdentifier(relay)
                    connection.channel.closeFuture.whenComplete { _ in
                        let pool = loopBound.value
                        if case .ready(let current) = pool.entries[target], ObjectIdentifier(current) == relayID {
                            pool.entries[target] = nil
                        }
                    }
                    outcome = .success(relay)
                } catch {
                    connection.channel.close(promise: nil)
                    self.entries[target] = nil
                    outcome = .failure(.connectFailed("\(error)"))
                }
            }
        }
        for waiter in waiters { waiter(outcome) }
    }

    /// The HTTP/2 client side on a freshly dialled channel, relayed frame by frame (no stream
    /// channels). The connector leaves reads off; HTTP/2 flow control (windows per stream,
    /// reopened by the relay as the client drains) is the backpressure from here on.
    private static func configureClient(
        _ connection: UpstreamConnection, downstream: HTTP2DownstreamRelay
    ) throws -> HTTP2UpstreamRelay {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = [
            HTTP2Setting(parameter: .enablePush, value: 0),
            HTTP2Setting(parameter: .initialWindowSize, value: downstream.window),
        ]
        // Each header block is validated once, on the client's connection: a request's when it
        // arrives there (before it is decided), a response's or trailers' when it is written
        // there (`HTTP2DownstreamRelay.relayResponse` answers a refused one as Envoy answers an
        // upstream protocol error). Validating here as well would check every block twice.
        // Content lengths are still checked here: a response body longer or shorter than its
        // content-length ends the origin's stream like any stream error.
        configuration.headerBlockValidation = .disabled
        let channel = connection.channel
        let relay = HTTP2UpstreamRelay(downstream: downstream, connection: connection)
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(NIOHTTP2Handler(mode: .client, connectionConfiguration: configuration))
        try sync.addHandler(relay)
        try channel.syncOptions?.setOption(.autoRead, value: true)
        channel.read()
        return relay
    }

    /// Closes every upstream connection (the downstream connection went away).
    func closeAll() {
        self.closed = true
        let entries = self.entries
        self.entries = [:]
        for entry in entries.values {
            if case .ready(let relay) = entry { relay.connection.channel.close(promise: nil) }
        }
    }
}

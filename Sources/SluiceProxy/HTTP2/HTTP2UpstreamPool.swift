import NIOCore
import NIOHTTP2
import SluiceCore

/// The HTTP/2 client connections one downstream HTTP/2 connection forwards its streams over:
/// one per upstream target, multiplexing every stream to that target (h2c, prior knowledge).
/// Confined to the downstream connection's event loop (the connector dials on it too).
final class HTTP2UpstreamPool {
    typealias Ready = (multiplexer: NIOHTTP2Handler.StreamMultiplexer, connection: UpstreamConnection)
    typealias Waiter = (Result<Ready, UpstreamError>) -> Void

    private enum Entry {
        case connecting([Waiter])
        case ready(Ready)
    }

    private let runtime: ProxyRuntime
    private let eventLoop: any EventLoop
    private var entries: [UpstreamTarget: Entry] = [:]
    private var closed = false

    init(runtime: ProxyRuntime, eventLoop: any EventLoop) {
        self.runtime = runtime
        self.eventLoop = eventLoop
    }

    /// Calls `completion` on the loop with a live connection to `target`, dialling one if needed.
    func connection(to target: UpstreamTarget, config: ActiveConfig, completion: @escaping Waiter) {
        switch self.entries[target] {
        case .ready(let ready) where ready.connection.channel.isActive:
            completion(.success(ready))
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
            self.connected(target: target, result: result)
        }
    }

    private func connected(target: UpstreamTarget, result: Result<UpstreamConnection, UpstreamError>) {
        guard case .connecting(let waiters) = self.entries[target] else {
            if case .success(let connection) = result { connection.channel.close(promise: nil) }
            return
        }
        let outcome: Result<Ready, UpstreamError>
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
                    let multiplexer = try Self.configureClient(connection.channel)
                    let ready: Ready = (multiplexer, connection)
                    self.entries[target] = .ready(ready)
                    let loopBound = NIOLoopBound(self, eventLoop: self.eventLoop)
                    connection.channel.closeFuture.whenComplete { _ in
                        let pool = loopBound.value
                        if case .ready(let current) = pool.entries[target], current.connection.channel === connection.channel {
                            pool.entries[target] = nil
                        }
                    }
                    outcome = .success(ready)
                } catch {
                    connection.channel.close(promise: nil)
                    self.entries[target] = nil
                    outcome = .failure(.connectFailed("\(error)"))
                }
            }
        }
        for waiter in waiters { waiter(outcome) }
    }

    /// The HTTP/2 client side on a freshly dialled channel. The connector leaves reads off;
    /// HTTP/2 flow control (windows per stream) is the backpressure from here on.
    private static func configureClient(_ channel: any Channel) throws -> NIOHTTP2Handler.StreamMultiplexer {
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [HTTP2Setting(parameter: .enablePush, value: 0)]
        let multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .client,
            connectionConfiguration: connection,
            streamConfiguration: .init(),
            inboundStreamInitializer: { channel in
                // Servers may not open streams to us (push is off): refuse any.
                channel.close()
            }
        )
        try channel.syncOptions?.setOption(.autoRead, value: true)
        channel.read()
        return multiplexer
    }

    /// Closes every upstream connection (the downstream connection went away).
    func closeAll() {
        self.closed = true
        for entry in self.entries.values {
            if case .ready(let ready) = entry { ready.connection.channel.close(promise: nil) }
        }
        self.entries = [:]
    }
}

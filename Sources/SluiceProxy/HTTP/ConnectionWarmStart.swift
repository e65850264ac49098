import NIOCore
import NIOPosix
import SluiceCore

/// What the last HTTP/1 connection on this event loop learnt, for the next one to start
/// with: its decision (authority, configuration and original destination) and the metric
/// series its last request was counted in. An app that opens a connection per request asks
/// for the same host again and again; without this every connection decides from scratch
/// and looks its series up by label hashing (the new-connection profile).
///
/// Both are only hints, checked on use as a keep-alive connection checks its own: the
/// decision against the request's authority and the configuration in force, the series
/// against the request's labels. A decision is handed on only to a connection with the same
/// original destination (the policy decides by it too), and nothing to another runtime's
/// connections (tests run several in one process).
///
/// One per event-loop thread (a thread-specific variable, as `UpstreamPool`), touched only
/// from that thread.
final class ConnectionWarmStart: @unchecked Sendable {
    // @unchecked: an instance is reachable only from its own thread's variable.
    private static let perThread = ThreadSpecificVariable<ConnectionWarmStart>()

    private weak var runtime: ProxyRuntime?
    private var destination: IPAddress?
    private var port: Int?
    private var decision: CachedDecision?
    private var series = RequestSeriesMemo()

    /// The calling event-loop thread's.
    static var current: ConnectionWarmStart {
        if let warm = perThread.currentValue { return warm }
        let warm = ConnectionWarmStart()
        perThread.currentValue = warm
        return warm
    }

    /// The hints for a new connection of `runtime` to `destination`:`port`.
    func hints(
        for runtime: ProxyRuntime, destination: IPAddress?, port: Int?
    ) -> (decision: CachedDecision?, series: RequestSeriesMemo)? {
        guard self.runtime === runtime else { return nil }
        let sameDestination = destination != nil && destination == self.destination && port == self.port
        return (sameDestination ? self.decision : nil, self.series)
    }

    /// Keeps a finished connection's last decision and series for the next connection.
    func remember(
        runtime: ProxyRuntime, destination: IPAddress?, port: Int?, decision: CachedDecision?, series: RequestSeriesMemo
    ) {
        self.runtime = runtime
        self.destination = destination
        self.port = port
        self.decision = decision
        self.series = series
    }
}

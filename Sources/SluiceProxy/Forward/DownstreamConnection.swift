import NIOCore

/// What we know about an accepted connection before reading a byte of it.
struct DownstreamConnection: Sendable {
    /// Where the app meant to go (`downstream_local_address` in the log), recovered from the
    /// kernel on the sidecar, the listener's own address on the gateway.
    let originalDestination: SocketAddress
    /// The app's address (`downstream_remote_address`).
    let remote: SocketAddress?
    /// Wall-clock start, for `start_time`.
    let startMillis: Int64
    /// Monotonic start, for `duration`.
    let start: NIODeadline

    init(originalDestination: SocketAddress, remote: SocketAddress?) {
        self.originalDestination = originalDestination
        self.remote = remote
        self.startMillis = wallClockMillis()
        self.start = .now()
    }
}

extension NIODeadline {
    /// Whole milliseconds since `self`.
    var millisecondsElapsed: Int64 {
        (NIODeadline.now() - self).nanoseconds / 1_000_000
    }
}

/// When a relay reopens an HTTP/2 receive window it announced, and by how much.
///
/// A relay that decodes frames itself (no NIOHTTP2 stream channels) owns every WINDOW_UPDATE
/// it sends. Two rules, both those of NIOHTTP2's own `InboundWindowManager` (and Envoy's
/// "update once half the window is consumed"):
///
/// - A stream's window is reopened only for bytes the relay has handed on (written to the
///   other side), so a slow reader on one side holds the writer on the other at its window.
///   Credit accumulates and is sent once it reaches half the window, not per frame.
/// - The connection window is reopened as frames arrive: streams bound memory, the connection
///   window only needs to stay open. When the peer's view of it falls to half the target or
///   below, it is topped back up to the target.
public struct HTTP2WindowCredit: Sendable, Equatable {
    /// The window announced (SETTINGS_INITIAL_WINDOW_SIZE for a stream, the target for the connection).
    public let window: Int
    /// Bytes handed on and not yet returned to the peer.
    public private(set) var owed = 0

    public init(window: Int) {
        self.window = max(window, 1)
    }

    /// `bytes` (flow-controlled: data plus padding) were handed on. Returns the WINDOW_UPDATE
    /// increment to send now, if the owed credit reached half the window.
    public mutating func handedOn(_ bytes: Int) -> Int? {
        guard bytes > 0 else { return nil }
        self.owed += bytes
        guard self.owed * 2 >= self.window else { return nil }
        defer { self.owed = 0 }
        return self.owed
    }

    /// The increment that tops a connection window the peer now sees as `remaining` back up to
    /// `target`, once it has fallen to half or below (nil while it is above half).
    public static func connectionIncrement(remaining: Int, target: Int) -> Int? {
        guard remaining < target else { return nil }
        if remaining < 0 {
            return min(target - remaining, Int(Int32.max))
        }
        let increment = target - remaining
        return increment >= remaining ? increment : nil
    }

    /// The flow-controlled length of a DATA frame (RFC 9113 §6.1: the padding and its length
    /// octet count against the window too).
    public static func flowControlledLength(dataBytes: Int, paddingBytes: Int?) -> Int {
        guard let paddingBytes else { return dataBytes }
        return dataBytes + paddingBytes + 1
    }
}

import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A listener that could not be bound: which one, on which address, and why.
///
/// NIO's own error names the system call, not the address
/// (`bind(descriptor:ptr:bytes:): Address already in use) (errno: 98)`), which leaves an
/// operator guessing which of the proxy's ports is taken. This one reads
/// `cannot listen on 127.0.0.1:15001 (outbound): Address already in use`.
public struct ListenerBindError: Error, CustomStringConvertible, Sendable {
    /// What the listener is for: `outbound`, `health`, `stats`, `admin`, `gateway HTTP`…
    public let listener: String
    /// `host:port`, an IPv6 host in brackets.
    public let address: String
    /// The system's reason (`strerror`) for an I/O error, else the error's own text.
    public let reason: String

    public init(listener: String, host: String, port: Int, error: any Error) {
        self.listener = listener
        self.address = host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)"
        if let io = error as? IOError {
            self.reason = String(cString: strerror(io.errnoCode))
        } else {
            self.reason = "\(error)"
        }
    }

    public var description: String {
        "cannot listen on \(address) (\(listener)): \(reason)"
    }

    /// Runs `bind`, turning its failure into a `ListenerBindError` for `listener` at
    /// `host:port`. Errors that are already about the configuration pass through unchanged.
    static func naming<T>(
        _ listener: String,
        host: String,
        port: Int,
        _ bind: () async throws -> T
    ) async throws -> T {
        do {
            return try await bind()
        } catch let error as IOError {
            throw ListenerBindError(listener: listener, host: host, port: port, error: error)
        }
    }
}

extension ServerBootstrap {
    /// `bind(host:port:)`, whose failure is a `ListenerBindError` naming `listener` and the
    /// address: every listener of the proxy binds through this.
    func bind(_ listener: String, host: String, port: Int) async throws -> any Channel {
        try await ListenerBindError.naming(listener, host: host, port: port) {
            try await self.bind(host: host, port: port).get()
        }
    }
}

public import Logging
import NIOConcurrencyHelpers

/// The process's log level, changeable at run time (`POST /logging?level=debug`): every logger
/// made with `DynamicLogHandler` reads it on each log call.
public final class LogLevelBox: Sendable {
    private let box: NIOLockedValueBox<Logger.Level>

    /// Starts at `level`.
    public init(_ level: Logger.Level) {
        self.box = NIOLockedValueBox(level)
    }

    /// The level in force.
    public var level: Logger.Level {
        get { self.box.withLockedValue { $0 } }
        set { self.box.withLockedValue { $0 = newValue } }
    }

    /// Parses a level as swift-log or Envoy spells it (`warn` is Envoy's `warning`),
    /// case-insensitively; nil for anything else.
    public static func parse(_ text: String) -> Logger.Level? {
        let name = text.lowercased()
        return name == "warn" ? .warning : Logger.Level(rawValue: name)
    }
}

/// A `LogHandler` that writes like `StreamLogHandler.standardError` but takes its level from a
/// shared `LogLevelBox`, so one admin call changes the level of every logger at once.
///
/// Setting `logLevel` on any logger sets the box: the level is process-wide, as Envoy's is.
public struct DynamicLogHandler: LogHandler {
    private var inner: StreamLogHandler
    /// The shared level.
    public let levelBox: LogLevelBox

    /// A handler for `label` writing to standard error at `levelBox`'s level.
    public init(label: String, levelBox: LogLevelBox) {
        self.inner = StreamLogHandler.standardError(label: label)
        self.levelBox = levelBox
    }

    /// Reads and writes the shared box.
    public var logLevel: Logger.Level {
        get { self.levelBox.level }
        set { self.levelBox.level = newValue }
    }

    /// This logger's own metadata.
    public var metadata: Logger.Metadata {
        get { self.inner.metadata }
        set { self.inner.metadata = newValue }
    }

    /// This logger's metadata provider.
    public var metadataProvider: Logger.MetadataProvider? {
        get { self.inner.metadataProvider }
        set { self.inner.metadataProvider = newValue }
    }

    /// One metadata value.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.inner[metadataKey: key] }
        set { self.inner[metadataKey: key] = newValue }
    }

    /// Writes the event; `Logger` has already checked its level against the box.
    public func log(event: LogEvent) {
        self.inner.log(event: event)
    }
}

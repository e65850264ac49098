public import Foundation
public import SluiceCore
public import SluiceProxy

/// An access log written to a file of its own in a fresh temporary directory, read back as
/// JSON records; the directory is removed when the capture goes away (or by `remove()`), so
/// a test leaves nothing behind.
public final class AccessLogCapture: @unchecked Sendable {  // used from one test thread
    public let directory: URL
    public let path: String
    public let writer: AccessLogWriter

    public init(format: AccessLogFormat = .json) throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        self.path = self.directory.appendingPathComponent("access.log").path
        do {
            self.writer = try AccessLogWriter(path: self.path, format: format)
        } catch {
            try? FileManager.default.removeItem(at: self.directory)
            throw error
        }
    }

    deinit {
        self.writer.shutdown()
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// Everything written so far, once the writer has drained (it stops: call once, at the end).
    public func text() throws -> String {
        self.writer.shutdown()
        return (try? String(contentsOfFile: self.path, encoding: .utf8)) ?? ""
    }

    /// The records written, as JSON objects (for the JSON format).
    public func records() throws -> [[String: Any]] {
        try self.text().split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw CaptureError.notAnObject(String(line))
            }
            return object
        }
    }

    public enum CaptureError: Error {
        case notAnObject(String)
    }
}

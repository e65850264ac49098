import Foundation
import SluiceCore
import SluiceProxy
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The access-log writer: every line queued before shutdown lands, a stalled output drops
/// lines instead of blocking, and open errors are clear.
final class AccessLogWriterTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-accesslog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private static func record(_ i: Int) -> AccessLogRecord {
        AccessLogRecord(
            startTime: 1_795_752_616_123 + Int64(i),
            method: "GET",
            path: "/item/\(i)",
            protocol: "HTTP/1.1",
            responseCode: 200,
            bytesSent: UInt64(i),
            duration: 1,
            userAgent: "test \"agent\"\n",
            requestId: "req-\(i)",
            authority: "aliyun.com",
            upstreamCluster: "outbound|80||aliyun.com"
        )
    }

    private func lines(of path: String) throws -> [Substring] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.isEmpty || text.hasSuffix("\n"))
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
    }

    func testEveryLineWrittenBeforeShutdownIsValidJSON() throws {
        let path = directory.appendingPathComponent("access.log").path
        let writer = try AccessLogWriter(path: path, format: .json)
        let count = 20_000
        // Four concurrent writers, as from several event loops.
        DispatchQueue.concurrentPerform(iterations: 4) { part in
            for i in stride(from: part, to: count, by: 4) {
                writer.write(Self.record(i))
            }
        }
        writer.shutdown()
        XCTAssertEqual(writer.droppedLines, 0)

        let lines = try lines(of: path)
        XCTAssertEqual(lines.count, count)
        var seen = Set<String>()
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let json = try XCTUnwrap(object)
            XCTAssertEqual(json.count, 26)
            XCTAssertEqual(json["user_agent"] as? String, "test \"agent\"\n")
            seen.insert(try XCTUnwrap(json["request_id"] as? String))
        }
        XCTAssertEqual(seen.count, count, "every record exactly once")
    }

    func testTextFormatLines() throws {
        let path = directory.appendingPathComponent("access.txt").path
        let writer = try AccessLogWriter(path: path, format: .text)
        for i in 0..<3 { writer.write(Self.record(i)) }
        writer.shutdown()
        XCTAssertEqual(try lines(of: path).map { $0 + "\n" }, (0..<3).map { Self.record($0).textLine() })
    }

    func testAppendsToAnExistingFileAndCreatesWithMode0644() throws {
        let path = directory.appendingPathComponent("existing.log").path
        let fresh = directory.appendingPathComponent("fresh.log").path
        try "earlier line\n".write(toFile: path, atomically: false, encoding: .utf8)

        let writer = try AccessLogWriter(path: path, format: .json)
        writer.write(Self.record(1))
        writer.shutdown()
        let lines = try lines(of: path)
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(lines.first, "earlier line")

        let oldMask = umask(0o022)
        defer { umask(oldMask) }
        let second = try AccessLogWriter(path: fresh, format: .json)
        second.shutdown()
        let attributes = try FileManager.default.attributesOfItem(atPath: fresh)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o644)
    }

    func testUnopenablePathThrowsAClearError() {
        let path = directory.appendingPathComponent("no/such/dir/access.log").path
        XCTAssertThrowsError(try AccessLogWriter(path: path, format: .json)) { error in
            let writerError = error as? AccessLogWriterError
            XCTAssertEqual(writerError?.path, path)
            XCTAssertEqual(writerError?.errno, ENOENT)
            XCTAssertEqual("\(error)", "cannot open access log \(path): No such file or directory")
        }
    }

    func testWritesAfterShutdownAreDroppedAndShutdownIsIdempotent() throws {
        let path = directory.appendingPathComponent("late.log").path
        let writer = try AccessLogWriter(path: path, format: .json)
        writer.write(Self.record(0))
        writer.shutdown()
        writer.write(Self.record(1))
        writer.shutdown()
        XCTAssertEqual(writer.droppedLines, 1)
        XCTAssertEqual(try lines(of: path).count, 1)
    }

    func testStandardStreamsAreUsedAsGivenAndNotClosed() throws {
        for path in ["/dev/stdout", "/dev/stderr"] {
            let writer = try AccessLogWriter(path: path, format: .json)
            writer.shutdown()
        }
        XCTAssertNotEqual(fcntl(STDOUT_FILENO, F_GETFD), -1, "stdout must stay open")
        XCTAssertNotEqual(fcntl(STDERR_FILENO, F_GETFD), -1, "stderr must stay open")
    }

    func testStalledOutputDropsLinesInsteadOfBlocking() throws {
        // A pipe nobody reads yet: once its 64 KiB kernel buffer is full the writer thread is
        // stuck in write(2), and callers must still return at once.
        var fds: [CInt] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        let writer = try AccessLogWriter(path: "/proc/self/fd/\(writeEnd)", format: .json, maxPendingBytes: 64 << 10)
        close(writeEnd)  // the writer holds its own descriptor for the pipe

        let count = 5_000  // ~1.5 MB of lines: far more than pipe + queue can hold
        let started = Date()
        for i in 0..<count { writer.write(Self.record(i)) }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "write() must not wait for the reader")
        let dropped = writer.droppedLines
        XCTAssertGreaterThan(dropped, 0)

        // Now drain the pipe while shutdown flushes what was queued.
        let reader = PipeReader(fd: readEnd)
        let done = DispatchSemaphore(value: 0)
        Thread {
            reader.readToEnd()
            done.signal()
        }.start()
        writer.shutdown()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        close(readEnd)

        XCTAssertEqual(writer.droppedLines, dropped, "nothing queued before shutdown is lost")
        XCTAssertEqual(UInt64(reader.newlines) + dropped, UInt64(count))
        XCTAssertGreaterThan(reader.newlines, 0)
    }
}

/// Reads a pipe to EOF on its own thread and counts lines.
private final class PipeReader: @unchecked Sendable {
    private let fd: CInt
    /// Written by the reading thread, read after it signalled completion.
    private(set) var newlines = 0

    init(fd: CInt) { self.fd = fd }

    func readToEnd() {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            newlines += chunk[0..<n].reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
        }
    }
}

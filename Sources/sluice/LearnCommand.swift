import ArgumentParser
import Foundation
import SluiceCore

/// `sluice learn`: writes the ServiceEntries that would have allowed the traffic in access logs.
struct LearnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "learn",
        abstract: "Write the ServiceEntry YAML that would have allowed what the access logs show.",
        discussion: """
            Reads JSON access logs (the sidecar's, Envoy's or ASM's; several pods' and rotated \
            files at once, *.gz through gzip -dc, - for stdin) written under ALLOW_ANY or audit \
            mode, and prints one ServiceEntry per host (HTTP by Host, TLS by SNI, resolution \
            DNS) and per address (opaque TCP, resolution NONE), sorted, with counts and \
            first/last seen as comments. Lines it cannot use are counted on stderr. Review \
            the output before applying it: every entry allows traffic.
            """
    )

    @Option(name: .long, help: ArgumentHelp(
        "Write *.parent instead of the hosts when more than N distinct hosts share the parent domain.", valueName: "N"))
    var fold: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Only lines from T on: an RFC 3339 time, a date (UTC) or an age (90m, 24h, 7d).", valueName: "T"))
    var since: String?

    @Option(name: .customLong("min-count"), help: ArgumentHelp(
        "Leave out ports seen fewer than N times (counted after --fold).", valueName: "N"))
    var minCount: Int = 1

    @Option(name: .long, help: ArgumentHelp(
        "An existing registry file or directory (repeatable): leave out what it already allows.", valueName: "path"))
    var registry: [String] = []

    @Argument(help: ArgumentHelp("Access-log files; - reads stdin.", valueName: "log"))
    var logs: [String] = []

    func validate() throws {
        if logs.isEmpty { throw ValidationError("name at least one access-log file, or - for stdin") }
        if let fold, fold < 1 { throw ValidationError("--fold must be at least 1, got \(fold)") }
        if minCount < 1 { throw ValidationError("--min-count must be at least 1, got \(minCount)") }
        if logs.filter({ $0 == "-" }).count > 1 { throw ValidationError("- (stdin) can be named once") }
    }

    func run() throws {
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        var sinceTime: Int64?
        if let since {
            guard let parsed = LearnSince.parse(since, now: now) else {
                throw ValidationError("--since: \"\(since)\" is not an RFC 3339 time, a date or an age such as 24h or 7d")
            }
            sinceTime = parsed
        }
        var existing: Registry?
        var takenNames: Set<String> = []
        if !registry.isEmpty {
            let loaded = RegistryLoader.load(paths: registry, relativeTo: FileManager.default.currentDirectoryPath)
            if loaded.hasErrors {
                for diagnostic in loaded.diagnostics where diagnostic.isError { printError("\(diagnostic)") }
                printError("sluice learn: the registry has errors; fix them (sluice check) before merging into it")
                throw ExitCode(1)
            }
            existing = Registry(loaded.entries)
            takenNames = Set(loaded.entries.filter { $0.namespace == "default" }.map(\.name))
        }

        var learner = AccessLogLearner(since: sinceTime, registry: existing)
        for path in logs {
            do {
                try LogInput.read(path) { learner.feed($0) }
            } catch {
                printError("sluice learn: \(error)")
                throw ExitCode(1)
            }
            learner.endOfStream()
        }

        let learned = LearnedRegistry(
            learner.traffic,
            options: .init(foldThreshold: fold, minCount: minCount, takenNames: takenNames))
        let sources = logs.map { $0 == "-" ? "stdin" : $0 }.joined(separator: " ")
        var header = ["Written by `sluice learn` from \(sources): review before applying, every entry allows traffic."]
        if let first = learner.traffic.firstSeen, let last = learner.traffic.lastSeen {
            header.append("Traffic seen from \(RFC3339.string(epochMilliseconds: first)) to \(RFC3339.string(epochMilliseconds: last)).")
        }
        writeAll(learned.yaml(header: header), to: 1)
        for line in learner.summary(entries: learned) { printError("sluice learn: \(line)") }
    }
}

/// One LOG argument read to its end in chunks: a file, stdin (`-`), or a `*.gz` rotation
/// decompressed by `gzip -dc` (no zlib binding in the build; gzip is on every system that
/// rotates logs with it).
enum LogInput {
    /// What went wrong reading a log, for the user.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let chunkSize = 1 << 20

    static func read(_ path: String, chunk: (UnsafeRawBufferPointer) -> Void) throws {
        if path == "-" {
            try drain(fd: 0, name: "stdin", chunk: chunk)
            return
        }
        if path.hasSuffix(".gz") {
            try readGzip(path, chunk: chunk)
            return
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try drain(fd: fd, name: path, chunk: chunk)
    }

    private static func readGzip(_ path: String, chunk: (UnsafeRawBufferPointer) -> Void) throws {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw Failure(description: "cannot open \(path): no such file or not readable")
        }
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gzip.arguments = ["gzip", "-dc", "--", path]
        let pipe = Pipe()
        gzip.standardOutput = pipe
        do {
            try gzip.run()
        } catch {
            throw Failure(description: "\(path): cannot run gzip -dc to decompress it: \(error)")
        }
        let fd = pipe.fileHandleForReading.fileDescriptor
        let drained = Result { try drain(fd: fd, name: path, chunk: chunk) }
        gzip.waitUntilExit()
        try drained.get()
        // A rotation cut short (a full disk, a copy in progress) still holds lines worth
        // learning: say so and go on, as for a truncated last line.
        if gzip.terminationStatus != 0 {
            printError("sluice learn: warning: \(path): gzip -dc failed (exit \(gzip.terminationStatus)); learned from the lines before the failure")
        }
    }

    private static func drain(fd: Int32, name: String, chunk: (UnsafeRawBufferPointer) -> Void) throws {
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let count = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "cannot read \(name): \(String(cString: strerror(errno)))")
            }
            if count == 0 { return }
            buffer.withUnsafeBytes { chunk(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
    }
}

/// Writes all of `text` to `fd`, however many writes it takes.
func writeAll(_ text: String, to fd: Int32) {
    var copy = text
    copy.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}

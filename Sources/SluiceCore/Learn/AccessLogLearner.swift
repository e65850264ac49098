/// `sluice learn` without the files: reads access-log streams chunk by chunk and tallies what
/// they show, counting every line it cannot use and why.
///
/// Feed each log (a file, stdin, a decompressed rotation) with `feed(_:)` and end it with
/// `endOfStream()`; lines never span two logs. Memory is the tally (bounded by the distinct
/// destinations) plus at most one line (`LogLineSplitter`).
public struct AccessLogLearner {
    /// Lines before this `start_time` (epoch ms) are left out; nil learns from all lines.
    public let since: Int64?
    /// Traffic this registry already allows is left out (`--registry`).
    public let registry: Registry?

    /// What was learned so far.
    public private(set) var traffic = ObservedTraffic()
    /// Lines read, blank lines not counted.
    public private(set) var lines = 0
    /// Lines skipped, by reason.
    public private(set) var skipped: [SkippedLogLine: Int] = [:]
    /// Lines older than `since` (or without a `start_time` when `since` is set).
    public private(set) var beforeSince = 0
    /// Lines whose traffic `registry` already allows.
    public private(set) var alreadyAllowed = 0
    /// Logs read to their end.
    public private(set) var streams = 0

    private let reader = AccessLogLineReader()
    private var splitter: LogLineSplitter

    /// A learner; `maxLineBytes` bounds the memory one line may take.
    public init(since: Int64? = nil, registry: Registry? = nil, maxLineBytes: Int = 1 << 20) {
        self.since = since
        self.registry = registry
        self.splitter = LogLineSplitter(maxLineBytes: maxLineBytes)
    }

    /// Reads the next bytes of the current log.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer) {
        // The splitter is taken out while it calls back into self: no overlapping access,
        // and no copy of the tally.
        var splitter = self.splitter
        splitter.feed(chunk) { self.learn(line: $0) }
        self.splitter = splitter
    }

    /// Ends the current log: its last line, if it had no newline, is read as it is.
    public mutating func endOfStream() {
        var splitter = self.splitter
        splitter.finish { self.learn(line: $0) }
        self.splitter = splitter
        streams += 1
    }

    /// Reads one whole log held in memory (tests, small inputs).
    public mutating func read(log text: String) {
        var copy = text
        copy.withUTF8 { feed(UnsafeRawBufferPointer($0)) }
        endOfStream()
    }

    /// Lines skipped for being longer than the line limit.
    public var overlongLines: Int { splitter.overlongLines }

    /// Bytes of an unfinished line held between chunks (at most the line limit).
    public var heldLineBytes: Int { splitter.heldBytes }

    /// Every skip reason with its count, the overlong lines included.
    public var skippedLines: [SkippedLogLine: Int] {
        var all = skipped
        if overlongLines > 0 { all[.overlong] = overlongLines }
        return all
    }

    private mutating func learn(line: UnsafeRawBufferPointer) {
        guard let result = reader.read(line) else { return }
        lines += 1
        switch result {
        case .failure(let reason):
            skipped[reason, default: 0] += 1
        case .success(let connection):
            if let since {
                guard let time = connection.startTime, time >= since else {
                    beforeSince += 1
                    return
                }
            }
            if let registry, registry.allows(connection) {
                alreadyAllowed += 1
                return
            }
            traffic.record(connection)
        }
    }

    /// The stderr summary: what was read, what was skipped and why, what was learned.
    public func summary(entries: LearnedRegistry) -> [String] {
        let skippedLines = self.skippedLines
        let skippedTotal = skippedLines.values.reduce(0, +)
        var read = "\(lines + overlongLines) lines read from \(streams) log\(streams == 1 ? "" : "s"): \(traffic.learnedLines) learned"
        if traffic.deniedLines > 0 { read += " (\(traffic.deniedLines) of them denied when logged)" }
        if alreadyAllowed > 0 { read += ", \(alreadyAllowed) already allowed by the registry" }
        if beforeSince > 0 { read += ", \(beforeSince) before --since (or undated)" }
        read += ", \(skippedTotal) skipped"
        if skippedTotal > 0 {
            let reasons = SkippedLogLine.allCases.compactMap { reason in
                skippedLines[reason].map { "\($0) \(reason.rawValue)" }
            }
            read += " (" + reasons.joined(separator: ", ") + ")"
        }
        var hosts = 0
        var addresses = 0
        for destination in traffic.destinations.keys {
            if case .host = destination { hosts += 1 } else { addresses += 1 }
        }
        let wildcards = entries.entries.filter { !$0.foldedHosts.isEmpty }
        var wrote = "\(hosts) host\(hosts == 1 ? "" : "s") and \(addresses) address\(addresses == 1 ? "" : "es") seen; \(entries.entries.count) ServiceEntr\(entries.entries.count == 1 ? "y" : "ies") written"
        if !wildcards.isEmpty {
            let folded = Set(wildcards.flatMap(\.foldedHosts)).count
            wrote += " (\(Set(wildcards.flatMap(\.hosts)).count) wildcard\(wildcards.count == 1 ? "" : "s") for \(folded) hosts)"
        }
        if entries.portsBelowMinCount > 0 { wrote += "; \(entries.portsBelowMinCount) port\(entries.portsBelowMinCount == 1 ? "" : "s") below --min-count left out" }
        return [read, wrote]
    }
}

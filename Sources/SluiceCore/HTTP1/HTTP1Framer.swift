public import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Cuts a byte stream into HTTP/1.x messages without copying: a parsed head, then the body as
/// slices of the input exactly as it arrived (chunk framing included), then the end.
///
/// Pure logic, no I/O. The framer only ever consumes the bytes of the current message, so after
/// `.end` whatever remains in the buffer is the next pipelined message or, after CONNECT or a
/// 101, the tunnel's first bytes.
///
/// Framing follows RFC 9112 §6.3, strictly, as llhttp and Envoy do in their strict modes:
/// - Requests: `CONNECT` has no body (the caller tunnels what follows); Transfer-Encoding must end
///   in `chunked`, and is refused on HTTP/1.0; Content-Length gives a fixed length; neither means no body.
/// - Responses: to HEAD (see `expectResponse(toHEAD:toCONNECT:)`), 1xx, 204 and 304 have no body,
///   nor does a 2xx to CONNECT; a final coding of `chunked` means chunked; any other
///   Transfer-Encoding, or no framing field at all, means the body runs until the connection closes.
/// - Transfer-Encoding together with Content-Length is refused for both kinds (a desync vector;
///   llhttp does the same unless made lenient).
/// - Up to `maxLeadingEmptyLines` CRLFs before a request line are skipped (RFC 9112 §2.2 allows it;
///   old clients send one after a POST body); responses get no such leniency.
public struct HTTP1Framer: Sendable {
    /// What `next(_:)` produced.
    public enum Event: Sendable {
        /// A complete head; its bytes were consumed from the buffer.
        case head(HTTP1Head)
        /// The next raw body bytes (chunk framing included unless `stripChunkFraming`): a slice
        /// of the input, never empty.
        case body(ByteBuffer)
        /// The message is complete; the framer is ready for the next message's head.
        case end
        /// Nothing more can be produced from what is buffered.
        case needMore
    }

    /// How the current message's body is delimited (decided when its head is framed).
    public enum BodyFraming: Sendable, Equatable {
        case none
        case contentLength(Int64)
        case chunked
        case closeDelimited
    }

    /// CRLFs tolerated before a request line.
    public static let maxLeadingEmptyLines = 4

    public let kind: HTTP1MessageKind
    /// Settable between calls (config reload); applies from the next head or trailer section.
    public var limits: HTTP1Limits
    /// Relaying a chunked message to an HTTP/1.0 peer: when set before the body starts, `.body`
    /// slices carry only chunk payload (sizes, extensions, CRLFs and trailers are validated and dropped).
    public var stripChunkFraming = false
    /// The current (or last) message's body framing.
    public private(set) var bodyFraming: BodyFraming = .none

    private enum State: Sendable {
        case head
        case fixed
        case chunked
        case closeDelimited
        case endPending
    }

    private var state: State = .head
    /// Bytes of body left for `.fixed`.
    private var remaining: Int64 = 0
    private var chunked = HTTP1ChunkedDecoder()
    /// Bytes from the readerIndex already searched for the end of the head: a head arriving one
    /// byte at a time is scanned once, not once per byte.
    private var headScanned = 0
    private var skippedEmptyLines = 0
    /// Part of a head was buffered when `.needMore` was last returned.
    private var headPending = false
    private var responseToHEAD = false
    private var responseToCONNECT = false

    public init(kind: HTTP1MessageKind, limits: HTTP1Limits) {
        self.kind = kind
        self.limits = limits
    }

    /// True when the current message's body is delimited by connection close (a response without
    /// Content-Length or a chunked Transfer-Encoding).
    public var isCloseDelimited: Bool {
        if case .closeDelimited = state { return true }
        return false
    }

    /// Responses only: call before the response to each request is framed. `toHEAD`: the request
    /// was HEAD, so the response has no body whatever its fields say. `toCONNECT`: the request was
    /// CONNECT, so a 2xx has no body (the tunnel follows). Both hold through 1xx interim responses
    /// until the final response's head is framed.
    public mutating func expectResponse(toHEAD: Bool, toCONNECT: Bool = false) {
        responseToHEAD = toHEAD
        responseToCONNECT = toCONNECT
    }

    /// The peer closed its side. True when this ends the message cleanly: a close-delimited
    /// response body, or no message in progress and nothing buffered. False means the message
    /// was cut short (the caller treats it as `.truncated`).
    public mutating func inputClosed() -> Bool {
        switch state {
        case .closeDelimited:
            finishMessage()
            return true
        case .head:
            return !headPending
        case .endPending:
            return true
        case .fixed, .chunked:
            return false
        }
    }

    /// Consumes from `buffer` (from its readerIndex). Call repeatedly until `.needMore`; pass the
    /// same buffer each time with new bytes appended (discarding read bytes is fine). Never
    /// consumes past the end of the current message.
    public mutating func next(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> Event {
        switch state {
        case .head:
            return try nextHead(&buffer)
        case .fixed:
            let readable = buffer.readableBytes
            guard readable > 0 else { return .needMore }
            let length = remaining < Int64(readable) ? Int(remaining) : readable
            guard let slice = buffer.readSlice(length: length) else { return .needMore }
            remaining -= Int64(length)
            if remaining == 0 { state = .endPending }
            return .body(slice)
        case .chunked:
            return try nextChunked(&buffer)
        case .closeDelimited:
            guard buffer.readableBytes > 0, let slice = buffer.readSlice(length: buffer.readableBytes) else {
                return .needMore
            }
            return .body(slice)
        case .endPending:
            finishMessage()
            return .end
        }
    }

    private mutating func finishMessage() {
        state = .head
        headScanned = 0
        skippedEmptyLines = 0
        headPending = false
    }

    // MARK: Head

    private mutating func nextHead(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> Event {
        if kind == .request, headScanned == 0, try !skipEmptyLines(&buffer) {
            headPending = true
            return .needMore
        }
        let limit = limits.maxHeadBytes
        let from = headScanned
        let scan = buffer.withUnsafeReadableBytes { raw in Self.scanForHeadEnd(raw, from: from, limit: limit) }
        switch scan {
        case .bareLF:
            throw .malformed("bare LF")
        case .incomplete(let scanned):
            // Nothing within the first `limit` bytes ends the head: it cannot fit.
            if buffer.readableBytes >= limit { throw .headTooLarge }
            headScanned = scanned
            headPending = buffer.readableBytes > 0
            return .needMore
        case .found(let length):
            guard let bytes = buffer.getSlice(at: buffer.readerIndex, length: length) else { return .needMore }
            let head = try HTTP1Head(parsing: bytes, kind: kind, limits: limits)
            buffer.moveReaderIndex(forwardBy: length)
            headScanned = 0
            headPending = false
            startBody(head)
            return .head(head)
        }
    }

    /// Drops CRLFs before a request line (at most `maxLeadingEmptyLines`). False when the buffer
    /// ends in a CR whose LF has not arrived yet.
    private mutating func skipEmptyLines(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> Bool {
        while let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), first == HTTP1Bytes.cr {
            guard let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return false }
            guard second == HTTP1Bytes.lf else { throw .malformed("CR without LF") }
            guard skippedEmptyLines < Self.maxLeadingEmptyLines else { throw .malformed("empty lines before request line") }
            skippedEmptyLines += 1
            buffer.moveReaderIndex(forwardBy: 2)
        }
        return true
    }

    private enum HeadScan {
        case found(length: Int)
        case incomplete(scanned: Int)
        case bareLF
    }

    /// Looks for CRLF CRLF within the first `limit` bytes, starting at `from`, checking on the way
    /// that every LF follows a CR (the rest of the syntax is checked once the head is complete).
    private static func scanForHeadEnd(_ raw: UnsafeRawBufferPointer, from: Int, limit: Int) -> HeadScan {
        let end = min(raw.count, limit)
        guard from < end, let base = raw.baseAddress else { return .incomplete(scanned: max(from, 0)) }
        var i = from
        while i < end {
            guard let hit = memchr(base + i, Int32(HTTP1Bytes.lf), end - i) else { break }
            i = base.distance(to: UnsafeRawPointer(hit))
            guard i > 0, raw[i - 1] == HTTP1Bytes.cr else { return .bareLF }
            if i >= 3, raw[i - 2] == HTTP1Bytes.lf, raw[i - 3] == HTTP1Bytes.cr {
                return .found(length: i + 1)
            }
            i += 1
        }
        return .incomplete(scanned: end)
    }

    private mutating func startBody(_ head: HTTP1Head) {
        let framing: BodyFraming
        switch kind {
        case .request:
            // The head parser refused Transfer-Encoding that is not chunked-final, and TE + CL.
            if head.knownMethod == .connect {
                framing = .none
            } else if head.hasTransferEncoding {
                framing = .chunked
            } else if let length = head.contentLength, length > 0 {
                framing = .contentLength(length)
            } else {
                framing = .none
            }
        case .response:
            let status = head.status
            if status < 200 {
                framing = .none  // interim: the final response follows, expectations still hold
            } else {
                if responseToHEAD || status == 204 || status == 304 || (responseToCONNECT && status < 300) {
                    framing = .none
                } else if head.hasTransferEncoding {
                    framing = head.transferEncodingChunked ? .chunked : .closeDelimited
                } else if let length = head.contentLength {
                    framing = length > 0 ? .contentLength(length) : .none
                } else {
                    framing = .closeDelimited
                }
                responseToHEAD = false
                responseToCONNECT = false
            }
        }
        bodyFraming = framing
        switch framing {
        case .none:
            state = .endPending
        case .contentLength(let length):
            remaining = length
            state = .fixed
        case .chunked:
            chunked = HTTP1ChunkedDecoder()
            state = .chunked
        case .closeDelimited:
            state = .closeDelimited
        }
    }

    // MARK: Chunked body

    private mutating func nextChunked(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> Event {
        var decoder = chunked
        let limits = self.limits
        let strip = stripChunkFraming
        let outcome = buffer.withUnsafeReadableBytes { raw in
            decoder.advance(raw, limits: limits, stopAtData: strip)
        }
        chunked = decoder
        if let error = outcome.error { throw error }
        if !strip {
            guard outcome.consumed > 0, let slice = buffer.readSlice(length: outcome.consumed) else {
                // The last chunk's final LF is consumed in the call that finishes, so this is "no bytes".
                if outcome.finished { finishMessage(); return .end }
                return .needMore
            }
            if outcome.finished { state = .endPending }
            return .body(slice)
        }
        // Stripping: the framing walked over was validated and is dropped; return payload only.
        buffer.moveReaderIndex(forwardBy: outcome.consumed)
        if outcome.finished {
            finishMessage()
            return .end
        }
        let readable = buffer.readableBytes
        guard chunked.step == .data, readable > 0 else { return .needMore }
        let length = chunked.remaining < UInt64(readable) ? Int(chunked.remaining) : readable
        guard let slice = buffer.readSlice(length: length) else { return .needMore }
        chunked.consumedData(length)
        return .body(slice)
    }
}

/// The chunked transfer coding (RFC 9112 §7.1), validated byte by byte across calls:
///
///     chunked-body   = *chunk last-chunk trailer-section CRLF
///     chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
///     chunk-size     = 1*HEXDIG
///     last-chunk     = 1*("0") [ chunk-ext ] CRLF
///     chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
///     trailer-section = *( field-line CRLF )
///
/// Chunk data is skipped in one step, so a run of chunks costs a few comparisons per framing byte.
struct HTTP1ChunkedDecoder: Sendable {
    /// At most 15 hex digits: the size fits in 60 bits.
    static let maxSizeDigits = 15
    /// A size line (size, extensions, CRLF) longer than this is refused.
    static let maxSizeLineBytes = 4096

    enum Step: UInt8, Sendable {
        case size, sizeWhitespace, chunkExtension, sizeLF
        case data, dataCR, dataLF
        case trailerLineStart, trailerName, trailerValue, trailerLF, finalLF
        case done
    }

    struct Outcome {
        /// Bytes walked over (all validated and folded into the state).
        var consumed: Int
        var finished: Bool
        var error: HTTP1ParseError?
    }

    private(set) var step: Step = .size
    /// The chunk size while reading the size line, then the chunk data bytes left.
    private(set) var remaining: UInt64 = 0
    private var digits = 0
    private var lineBytes = 0
    private var trailerBytes = 0
    private var trailerFields = 0

    /// The caller took `count` data bytes (≤ `remaining`) itself.
    mutating func consumedData(_ count: Int) {
        remaining -= UInt64(count)
        if remaining == 0 { step = .dataCR }
    }

    /// Walks `raw` from its start. Stops at the end of the input, at the end of the message, on an
    /// error, or, with `stopAtData`, where chunk data begins.
    mutating func advance(_ raw: UnsafeRawBufferPointer, limits: HTTP1Limits, stopAtData: Bool) -> Outcome {
        typealias B = HTTP1Bytes
        let n = raw.count
        var i = 0
        while i < n {
            if step == .data {
                if stopAtData { return Outcome(consumed: i, finished: false) }
                let available = UInt64(n - i)
                let take = remaining < available ? remaining : available
                i += Int(take)
                remaining -= take
                if remaining == 0 { step = .dataCR }
                continue
            }
            let byte = raw[i]
            i += 1
            switch step {
            case .size, .sizeWhitespace, .chunkExtension, .sizeLF:
                lineBytes += 1
                if lineBytes > Self.maxSizeLineBytes { return fail(i, "chunk size line too long") }
            case .trailerLineStart, .trailerName, .trailerValue, .trailerLF, .finalLF:
                trailerBytes += 1
                if trailerBytes > limits.maxHeadBytes { return Outcome(consumed: i, finished: false, error: .headTooLarge) }
            case .data, .dataCR, .dataLF, .done:
                break
            }
            switch step {
            case .size:
                if let value = B.hexValue(byte) {
                    digits += 1
                    if digits > Self.maxSizeDigits { return fail(i, "chunk size overflow") }
                    remaining = remaining << 4 | value
                } else if digits == 0 {
                    return fail(i, "invalid chunk size")
                } else if byte == B.cr {
                    step = .sizeLF
                } else if byte == B.semicolon {
                    step = .chunkExtension
                } else if B.isWhitespace(byte) {
                    step = .sizeWhitespace
                } else {
                    return fail(i, "invalid chunk size")
                }
            case .sizeWhitespace:
                if byte == B.semicolon {
                    step = .chunkExtension
                } else if !B.isWhitespace(byte) {
                    return fail(i, "invalid chunk extension")
                }
            case .chunkExtension:
                // Names, values and quoted strings are not interpreted, only kept to visible bytes.
                if byte == B.cr {
                    step = .sizeLF
                } else if !B.isFieldContent(byte) {
                    return fail(i, "invalid chunk extension")
                }
            case .sizeLF:
                guard byte == B.lf else { return fail(i, "CR without LF in chunk size line") }
                digits = 0
                lineBytes = 0
                step = remaining == 0 ? .trailerLineStart : .data
            case .dataCR:
                guard byte == B.cr else { return fail(i, "missing CRLF after chunk data") }
                step = .dataLF
            case .dataLF:
                guard byte == B.lf else { return fail(i, "missing CRLF after chunk data") }
                step = .size
            case .trailerLineStart:
                if byte == B.cr {
                    step = .finalLF
                } else if B.isTchar(byte) {
                    trailerFields += 1
                    if trailerFields > limits.maxFields {
                        return Outcome(consumed: i, finished: false, error: .tooManyFields)
                    }
                    step = .trailerName
                } else if B.isWhitespace(byte) {
                    return fail(i, "obs-fold")
                } else {
                    return fail(i, byte == B.colon ? "empty field name" : "invalid field name")
                }
            case .trailerName:
                if byte == B.colon {
                    step = .trailerValue
                } else if !B.isTchar(byte) {
                    return fail(i, B.isWhitespace(byte) ? "whitespace before colon" : "invalid field name")
                }
            case .trailerValue:
                if byte == B.cr {
                    step = .trailerLF
                } else if !B.isFieldContent(byte) {
                    return fail(i, "invalid character in field value")
                }
            case .trailerLF:
                guard byte == B.lf else { return fail(i, "CR without LF") }
                step = .trailerLineStart
            case .finalLF:
                guard byte == B.lf else { return fail(i, "CR without LF") }
                step = .done
                return Outcome(consumed: i, finished: true)
            case .data, .done:
                return fail(i, "chunked body already complete")
            }
        }
        return Outcome(consumed: n, finished: false)
    }

    private func fail(_ consumed: Int, _ reason: String) -> Outcome {
        Outcome(consumed: consumed, finished: false, error: .malformed(reason))
    }
}

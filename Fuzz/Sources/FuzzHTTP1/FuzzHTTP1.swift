import FuzzSupport
import NIOCore
import SluiceCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fuzzes the HTTP/1 data path: `HTTP1Framer` (and through it `HTTP1Head` and the chunked
/// decoder) on a byte stream that arrives in pieces, and `HTTP1Rewrite` on every head it frames.
///
/// Input: 4 control bytes, then the stream (so a corpus file is 4 bytes + real traffic):
/// - byte 0, flags: bit 0 response (else request); bit 1 `stripChunkFraming`; bits 2–3 limits
///   (default, 256 B / 8 fields, 40 B / 1 field, 1 KiB / 0 fields); bit 4 discard read bytes
///   after each append; bit 5 gateway (`x-forwarded-for` edit) / a service time on responses;
///   bit 6 the app speaks HTTP/1.0 (responses); bit 7 `Connection: close` on responses.
/// - byte 1 / byte 2: bit i = the i-th exchange's response answers a HEAD / a CONNECT.
/// - byte 3: how the stream is cut: bits 0–1 mode (two pieces, one byte at a time, pieces of
///   1…(bits 2–7)+1 bytes, a few large pieces), sizes drawn from a hash of the input.
///
/// Properties (any failure aborts through `invariant`, which libFuzzer reports as a crash):
/// 1. Accounting: the framer never consumes more than it was given, and the skipped CRLFs
///    (requests, ≤ 4 pairs), heads and body slices, in order, are exactly the consumed prefix of
///    the stream (body slices are the stream's bytes; with stripping, each is a sub-range of what
///    that call consumed). Bytes are consumed without an event only for skipped CRLFs and
///    stripped chunk framing.
/// 2. Heads: every head's bytes re-parse (at another readerIndex) to an identical head; the head
///    is well formed (CRLF CRLF, limits, start line, field ranges tile the head, names are tokens,
///    values trimmed) and its framing fields agree with a naive model (Content-Length values,
///    Transfer-Encoding presence, Host, Connection options); the body framing the framer chose
///    follows RFC 9112 §6.3 from those fields and the HEAD/CONNECT expectations.
/// 3. Bodies: a Content-Length body is exactly that many bytes before `.end`; a raw chunked body
///    is one complete chunked body (a reference decoder ends exactly at its last byte); a no-body
///    message has no body; a close-delimited body ends only at `inputClosed()`, which is true
///    exactly when nothing is cut short.
/// 4. After an error, nothing more is required (the run stops).
/// 5. Rewrite: `writeUpstreamRequest` / `writeDownstreamResponse` output, with the edits the proxy
///    would make, for the head and for the head with a `Connection` option naming one of its
///    fields (`nominatingVariant`), re-parses as a head of the same kind; it frames the body exactly as the parsed
///    head did (same Content-Length and Transfer-Encoding, except a de-chunking drop) and keeps
///    Host; it holds no hop-by-hop field but those the edits add; its fields are exactly the
///    original's end-to-end fields, byte for byte, then the added ones.
/// 6. Whole vs split: the stream fed in one piece gives the same messages (heads, bodies, ends)
///    and outcome as fed in pieces, modulo slice boundaries (and, on an error inside a chunked
///    body, how much of that last body was handed out before it).
/// 7. Stripping: for responses, stripped chunked bodies are the reference decoding of the raw ones.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP1(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    var header: [UInt8] = Array(input.prefix(4))
    while header.count < 4 { header.append(0) }
    let stream = Array(input.dropFirst(4))
    let options = Options(header: header, seed: seed(of: input))

    let pieces = pieceSizes(count: stream.count, control: header[3], seed: options.seed)
    let split = frame(stream, pieces: pieces, options, strip: options.strip, checkHeads: true)
    let whole = frame(stream, pieces: stream.isEmpty ? [] : [stream.count], options, strip: options.strip, checkHeads: false)
    compareWholeAndSplit(whole: whole, split: split)
    if traceEnabled {
        print("\(options.kind) strip \(options.strip) pieces \(pieces.count): \(whole.outcome)")
        for message in whole.messages {
            print("  \(message.head.count)-byte head, status \(message.status), \(message.framing), \(message.body.count) body bytes, ended \(message.ended)")
        }
    }

    if options.kind == .response, whole.messages.contains(where: { $0.framing == .chunked }) {
        let other = frame(stream, pieces: stream.isEmpty ? [] : [stream.count], options, strip: !options.strip, checkHeads: false)
        compareStripping(raw: options.strip ? other : whole, stripped: options.strip ? whole : other)
    }
    return 0
}

/// The entry point SwiftPM's link line names (see `runLibFuzzer`).
@_cdecl("FuzzHTTP1_main")
public func fuzzHTTP1Main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzHTTP1)
}

/// `FUZZ_HTTP1_TRACE=1 Fuzz/.build/debug/FuzzHTTP1 <file>` prints what the framer made of an input.
private let traceEnabled = getenv("FUZZ_HTTP1_TRACE") != nil

// MARK: - Options

private struct Options {
    var kind: HTTP1MessageKind
    var strip: Bool
    var limits: HTTP1Limits
    var discardReadBytes: Bool
    var gateway: Bool
    var appVersionMinor: Int
    var closeEdit: Bool
    var headMask: UInt8
    var connectMask: UInt8
    var seed: UInt64

    init(header: [UInt8], seed: UInt64) {
        let flags = header[0]
        kind = flags & 1 == 0 ? .request : .response
        strip = flags & 2 != 0
        switch flags >> 2 & 3 {
        case 0: limits = HTTP1Limits()
        case 1: limits = HTTP1Limits(maxHeadBytes: 256, maxFields: 8)
        case 2: limits = HTTP1Limits(maxHeadBytes: 40, maxFields: 1)
        default: limits = HTTP1Limits(maxHeadBytes: 1024, maxFields: 0)
        }
        discardReadBytes = flags & 0x10 != 0
        gateway = flags & 0x20 != 0
        appVersionMinor = flags & 0x40 != 0 ? 0 : 1
        closeEdit = flags & 0x80 != 0
        headMask = header[1]
        connectMask = header[2]
        self.seed = seed
    }

    /// Whether exchange `index`'s response answers a HEAD (`mask` = headMask) or a CONNECT.
    func bit(_ mask: UInt8, _ index: Int) -> Bool {
        index < 8 && (mask >> UInt8(index)) & 1 == 1
    }
}

/// Sizes of the pieces the stream is fed in (they add up to `count`).
private func pieceSizes(count: Int, control: UInt8, seed: UInt64) -> [Int] {
    guard count > 0 else { return [] }
    var state = seed | 1
    func draw(_ bound: Int) -> Int {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Int(state % UInt64(max(bound, 1)))
    }
    var sizes: [Int] = []
    var left = count
    switch control & 3 {
    case 0:
        let cut = Int(control >> 2) * count / 63
        sizes = [cut, count - cut].filter { $0 > 0 }
        left = 0
    case 1:
        sizes = Array(repeating: 1, count: count)
        left = 0
    case 2:
        let most = Int(control >> 2) + 1
        while left > 0 {
            let size = min(left, 1 + draw(most))
            sizes.append(size)
            left -= size
        }
    default:
        while left > 0 {
            let size = min(left, 1 + draw(count / 3 + 1))
            sizes.append(size)
            left -= size
        }
    }
    return sizes
}

// MARK: - Driving the framer

/// One message as the framer handed it out.
private struct Message: Equatable {
    var head: [UInt8]
    var status: Int
    var framing: HTTP1Framer.BodyFraming
    var body: [UInt8] = []
    var ended = false
}

private enum Outcome: Equatable {
    case failed(HTTP1ParseError)
    case closed(clean: Bool)
}

private struct Run {
    var messages: [Message]
    var outcome: Outcome
}

private let allocator = ByteBufferAllocator()
private let crlf: [UInt8] = [0x0D, 0x0A]

private func frame(_ stream: [UInt8], pieces: [Int], _ options: Options, strip: Bool, checkHeads: Bool) -> Run {
    var framer = HTTP1Framer(kind: options.kind, limits: options.limits)
    framer.stripChunkFraming = strip
    var exchange = 0
    if options.kind == .response {
        framer.expectResponse(toHEAD: options.bit(options.headMask, 0), toCONNECT: options.bit(options.connectMask, 0))
    }
    var buffer = allocator.buffer(capacity: 0)
    var fed = 0
    var consumed = 0
    var accounted = 0  // stream bytes attributed to skipped CRLFs, heads, body slices, stripped framing
    var messages: [Message] = []
    var inMessage = false
    var stripping: Bool { strip && inMessage && messages.last?.framing == .chunked }

    for size in pieces {
        stream.withUnsafeBytes { raw in  // not the generic Sequence path: debug NIO is slow there
            _ = buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[fed..<(fed + size)]))
        }
        fed += size
        if options.discardReadBytes { buffer.discardReadBytes() }
        while true {
            let before = buffer.readableBytes
            let event: HTTP1Framer.Event
            do {
                event = try framer.next(&buffer)
            } catch {
                return Run(messages: messages, outcome: .failed(error))
            }
            let used = before - buffer.readableBytes
            invariant(used >= 0, "next() un-consumed \(-used) bytes")
            consumed += used
            invariant(consumed <= fed, "consumed \(consumed) bytes of the \(fed) given")
            invariant(buffer.readableBytes == fed - consumed, "buffer holds \(buffer.readableBytes), expected \(fed - consumed)")

            switch event {
            case .needMore:
                if used > 0 {
                    if inMessage {
                        invariant(stripping, "consumed \(used) bytes of \(messages.last!.framing) body without an event")
                        accounted = consumed
                    } else {
                        invariant(options.kind == .request, "consumed \(used) bytes before a response head")
                        checkSkippedEmptyLines(stream[accounted..<consumed])
                        // still attributed to the coming head: keep `accounted`
                    }
                }
                if !inMessage, !(options.kind == .request) {
                    invariant(accounted == consumed, "response bytes consumed without a head")
                }

            case .head(let head):
                invariant(!inMessage, "a head inside a message")
                let bytes = Array(head.bytes.readableBytesView)
                invariant(used >= bytes.count, "head of \(bytes.count) bytes from \(used) consumed")
                let headStart = consumed - bytes.count
                invariant(headStart >= accounted, "head overlaps earlier bytes")
                invariant(options.kind == .request || headStart == accounted, "skipped bytes before a response head")
                checkSkippedEmptyLines(stream[accounted..<headStart])
                invariant(Array(stream[headStart..<consumed]) == bytes, "head bytes are not the stream's bytes at \(headStart)")
                invariant(head.kind == options.kind, "head kind \(head.kind)")
                accounted = consumed
                let toHEAD = options.kind == .response && options.bit(options.headMask, exchange)
                let toCONNECT = options.kind == .response && options.bit(options.connectMask, exchange)
                checkFramingDecision(head, framer.bodyFraming, toHEAD: toHEAD, toCONNECT: toCONNECT)
                if checkHeads {
                    checkHead(head, options.limits)
                    for variant in [head] + nominatingVariant(head, options) {
                        switch options.kind {
                        case .request: checkRequestRewrite(variant, options)
                        case .response: checkResponseRewrite(variant, options)
                        }
                    }
                }
                messages.append(Message(head: bytes, status: head.status, framing: framer.bodyFraming))
                inMessage = true

            case .body(let slice):
                invariant(inMessage, "body outside a message")
                let bytes = Array(slice.readableBytesView)
                invariant(!bytes.isEmpty, "empty body slice")
                invariant(bytes.count <= used, "body slice of \(bytes.count) bytes from \(used) consumed")
                invariant(Array(stream[(consumed - bytes.count)..<consumed]) == bytes, "body slice is not the stream's last consumed bytes")
                if !stripping {
                    invariant(consumed - bytes.count == accounted, "body slice does not follow the bytes before it")
                }
                accounted = consumed
                messages[messages.count - 1].body += bytes
                if case .contentLength(let length) = messages[messages.count - 1].framing {
                    invariant(Int64(messages[messages.count - 1].body.count) <= length, "more than Content-Length \(length) body bytes")
                }

            case .end:
                invariant(inMessage, ".end outside a message")
                invariant(used == 0 || stripping, ".end consumed \(used) bytes")
                accounted = consumed
                let message = messages[messages.count - 1]
                switch message.framing {
                case .none:
                    invariant(message.body.isEmpty, "\(message.body.count) body bytes in a message without a body")
                case .contentLength(let length):
                    invariant(Int64(message.body.count) == length, "\(message.body.count) body bytes for Content-Length \(length)")
                case .chunked:
                    if !strip {
                        invariant(dechunk(message.body) != nil, "raw chunked body is not one complete chunked body: \(message.body)")
                    }
                case .closeDelimited:
                    invariant(false, ".end of a close-delimited body before the input closed")
                }
                messages[messages.count - 1].ended = true
                inMessage = false
                if options.kind == .response, message.status >= 200 {
                    exchange += 1
                    framer.expectResponse(
                        toHEAD: options.bit(options.headMask, exchange),
                        toCONNECT: options.bit(options.connectMask, exchange))
                }
            }
            if case .needMore = event { break }
            if !stripping {
                invariant(accounted == consumed || (!inMessage && options.kind == .request),
                          "consumed bytes not handed out: \(accounted) < \(consumed)")
            }
        }
    }

    let clean = framer.inputClosed()
    let expected = inMessage ? messages.last!.framing == .closeDelimited : buffer.readableBytes == 0
    invariant(clean == expected, "inputClosed() = \(clean) with \(buffer.readableBytes) bytes buffered, in message: \(inMessage) (\(messages.last.map { "\($0.framing)" } ?? "-"))")
    if inMessage, clean { messages[messages.count - 1].ended = true }
    return Run(messages: messages, outcome: .closed(clean: clean))
}

/// Bytes the framer skipped before a request line: CRLF pairs, at most `maxLeadingEmptyLines`.
private func checkSkippedEmptyLines(_ skipped: ArraySlice<UInt8>) {
    invariant(skipped.count % 2 == 0 && skipped.count <= 2 * HTTP1Framer.maxLeadingEmptyLines, "skipped \(skipped.count) bytes before a head")
    var i = skipped.startIndex
    while i < skipped.endIndex {
        invariant(skipped[i] == 0x0D && skipped[i + 1] == 0x0A, "skipped non-CRLF bytes \(Array(skipped)) before a head")
        i += 2
    }
}

/// RFC 9112 §6.3, from the naive model of the head's fields.
private func checkFramingDecision(_ head: HTTP1Head, _ framing: HTTP1Framer.BodyFraming, toHEAD: Bool, toCONNECT: Bool) {
    let model = NaiveFields(head)
    let expected: HTTP1Framer.BodyFraming
    switch head.kind {
    case .request:
        if model.method == Array("CONNECT".utf8) {
            expected = .none
        } else if model.hasTransferEncoding {
            expected = .chunked
        } else if let length = model.contentLength, length > 0 {
            expected = .contentLength(length)
        } else {
            expected = .none
        }
    case .response:
        if head.status < 200 || toHEAD || head.status == 204 || head.status == 304 || (toCONNECT && head.status < 300) {
            expected = .none
        } else if model.hasTransferEncoding {
            expected = model.finalCodingChunked ? .chunked : .closeDelimited
        } else if let length = model.contentLength {
            expected = length > 0 ? .contentLength(length) : .none
        } else {
            expected = .closeDelimited
        }
    }
    invariant(framing == expected, "framing \(framing), expected \(expected) (status \(head.status), HEAD \(toHEAD), CONNECT \(toCONNECT)) for \(Array(head.bytes.readableBytesView))")
}

// MARK: - Heads

/// A naive, String-based reading of a head's fields, to check the parser's one-pass flags against.
private struct NaiveFields {
    var names: [String] = []  // lower-cased
    var values: [[UInt8]] = []
    var method: [UInt8] = []
    var contentLength: Int64?
    var contentLengthValid = true
    var hasTransferEncoding = false
    var finalCodingChunked = false
    var hostCount = 0
    var connectionOptions: [String] = []  // lower-cased, trimmed, non-empty

    init(_ head: HTTP1Head) {
        let bytes = Array(head.bytes.readableBytesView)
        method = Array(bytes[head.method])
        var lengths: [Int64] = []
        for field in head.fields {
            let name = lower(bytes[field.name])
            let value = Array(bytes[field.value])
            names.append(name)
            values.append(value)
            switch name {
            case "content-length":
                if !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                    lengths.append(Int64(String(decoding: value, as: UTF8.self))!)
                } else {
                    contentLengthValid = false
                }
            case "transfer-encoding":
                hasTransferEncoding = true
                let codings = listElements(value)
                if let last = codings.last { finalCodingChunked = lower(last[...]) == "chunked" }
            case "host":
                hostCount += 1
            case "connection":
                connectionOptions += listElements(value).map { lower($0[...]) }
            default:
                break
            }
        }
        if let first = lengths.first, lengths.allSatisfy({ $0 == first }) { contentLength = first }
        if lengths.isEmpty { contentLength = nil }
        if Set(lengths).count > 1 { contentLengthValid = false }
    }
}

private func lower(_ bytes: ArraySlice<UInt8>) -> String {
    String(decoding: bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
}

private func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

/// The non-empty, OWS-trimmed elements of a comma-separated list.
private func listElements(_ value: [UInt8]) -> [[UInt8]] {
    value.split(separator: 0x2C, omittingEmptySubsequences: false).compactMap { element in
        var element = element
        while let first = element.first, isWhitespace(first) { element = element.dropFirst() }
        while let last = element.last, isWhitespace(last) { element = element.dropLast() }
        return element.isEmpty ? nil : Array(element)
    }
}

private func isTchar(_ byte: UInt8) -> Bool {
    switch byte {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
    default: return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
    }
}

/// Every property of two heads the proxy reads.
private func sameHead(_ a: HTTP1Head, _ b: HTTP1Head) -> Bool {
    a.kind == b.kind && a.versionMinor == b.versionMinor && a.method == b.method && a.target == b.target
        && a.status == b.status && a.reason == b.reason && a.fields == b.fields && a.host == b.host
        && a.contentLength == b.contentLength && a.transferEncodingChunked == b.transferEncodingChunked
        && a.hasTransferEncoding == b.hasTransferEncoding && a.connectionClose == b.connectionClose
        && a.connectionKeepAlive == b.connectionKeepAlive && a.connectionUpgrade == b.connectionUpgrade
        && a.upgrade == b.upgrade && a.expectContinue == b.expectContinue && a.hasRequestID == b.hasRequestID
        && a.userAgent == b.userAgent && a.forwardedFor == b.forwardedFor && a.isKeepAlive == b.isKeepAlive
        && a.bytes == b.bytes  // ByteBuffer's == compares the readable bytes
}

private func checkHead(_ head: HTTP1Head, _ limits: HTTP1Limits) {
    let bytes = Array(head.bytes.readableBytesView)
    let n = bytes.count
    invariant(n >= 4 && Array(bytes.suffix(4)) == crlf + crlf, "head does not end in CRLF CRLF: \(bytes)")
    invariant(n <= limits.maxHeadBytes, "head of \(n) bytes over the \(limits.maxHeadBytes) limit")
    invariant(head.fields.count <= limits.maxFields, "\(head.fields.count) fields over the \(limits.maxFields) limit")
    for i in 0..<n {
        if bytes[i] == 0x0A { invariant(i > 0 && bytes[i - 1] == 0x0D, "bare LF at \(i) in \(bytes)") }
        if bytes[i] == 0x0D { invariant(i + 1 < n && bytes[i + 1] == 0x0A, "CR without LF at \(i) in \(bytes)") }
    }

    // The same bytes, at another readerIndex, parse to the same head.
    var copy = allocator.buffer(capacity: n + 7)
    copy.writeString("GARBAGE")
    copy.writeBytes(bytes)
    copy.moveReaderIndex(forwardBy: 7)
    do {
        let again = try HTTP1Head(parsing: copy, kind: head.kind, limits: limits)
        invariant(sameHead(head, again), "head re-parses differently: \(bytes)")
        let slice = try HTTP1Head(parsing: head.bytes, kind: head.kind, limits: limits)
        invariant(sameHead(head, slice), "head re-parses differently from its own slice: \(bytes)")
    } catch {
        invariant(false, "framed head does not re-parse: \(error): \(bytes)")
    }

    // The start line.
    var fieldsStart: Int
    switch head.kind {
    case .request:
        let method = bytes[head.method]
        let target = bytes[head.target]
        invariant(head.method.lowerBound == 0 && !method.isEmpty && method.allSatisfy(isTchar), "method \(head.method)")
        invariant(head.target.lowerBound == head.method.upperBound + 1 && bytes[head.method.upperBound] == 0x20, "target \(head.target)")
        invariant(!target.isEmpty && target.allSatisfy { $0 >= 0x21 && $0 <= 0x7E }, "target bytes \(Array(target))")
        let version = Array("HTTP/1.\(head.versionMinor)\r\n".utf8)
        let at = head.target.upperBound + 1
        invariant(bytes[head.target.upperBound] == 0x20 && Array(bytes[at..<min(n, at + 10)]) == version, "request line of \(bytes)")
        invariant(head.versionMinor == 0 || head.versionMinor == 1, "version \(head.versionMinor)")
        invariant(head.status == 0 && head.reason.isEmpty, "request with a status")
        fieldsStart = at + 10
    case .response:
        let prefix = Array("HTTP/1.\(head.versionMinor) \(head.status)".utf8)
        invariant((100...999).contains(head.status) && Array(bytes.prefix(12)) == prefix, "status line of \(bytes)")
        invariant(head.method.isEmpty && head.target.isEmpty && head.host == nil, "response with request parts")
        let reason = bytes[head.reason]
        invariant(reason.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }, "reason bytes")
        invariant(head.reason.isEmpty || head.reason.lowerBound == 13, "reason at \(head.reason)")
        fieldsStart = max(12, head.reason.upperBound)
        invariant(Array(bytes[fieldsStart..<(fieldsStart + 2)]) == crlf, "status line not ended by CRLF")
        fieldsStart += 2
    }

    // Field lines tile the rest of the head: each line is name ":" OWS value OWS, then CRLF.
    for field in head.fields {
        invariant(field.line.lowerBound == fieldsStart, "field line at \(field.line), expected \(fieldsStart)")
        invariant(field.name.lowerBound == field.line.lowerBound && !field.name.isEmpty && bytes[field.name].allSatisfy(isTchar), "field name \(field.name)")
        invariant(bytes[field.name.upperBound] == 0x3A, "no colon after the name")
        invariant(field.value.lowerBound > field.name.upperBound && field.value.upperBound <= field.line.upperBound, "value \(field.value) outside line \(field.line)")
        invariant(bytes[(field.name.upperBound + 1)..<field.value.lowerBound].allSatisfy(isWhitespace), "non-OWS before the value")
        invariant(bytes[field.value.upperBound..<field.line.upperBound].allSatisfy(isWhitespace), "non-OWS after the value")
        let value = bytes[field.value]
        invariant(value.first.map { !isWhitespace($0) } ?? true && value.last.map { !isWhitespace($0) } ?? true, "value not trimmed")
        invariant(value.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }, "value bytes \(Array(value))")
        invariant(Array(bytes[field.line.upperBound..<(field.line.upperBound + 2)]) == crlf, "field line not ended by CRLF")
        fieldsStart = field.line.upperBound + 2
    }
    invariant(fieldsStart == n - 2, "fields end at \(fieldsStart), head at \(n)")

    // The one-pass flags against the naive model.
    let model = NaiveFields(head)
    invariant(model.contentLengthValid, "accepted Content-Length values \(model.values) ")
    invariant(model.contentLength == head.contentLength, "contentLength \(String(describing: head.contentLength)), fields say \(String(describing: model.contentLength))")
    invariant(model.hasTransferEncoding == head.hasTransferEncoding, "hasTransferEncoding \(head.hasTransferEncoding)")
    invariant(!head.hasTransferEncoding || head.transferEncodingChunked == model.finalCodingChunked, "transferEncodingChunked \(head.transferEncodingChunked)")
    invariant(!head.hasTransferEncoding || head.contentLength == nil, "Transfer-Encoding and Content-Length accepted together")
    invariant(model.connectionOptions.contains("close") == head.connectionClose, "connectionClose \(head.connectionClose), options \(model.connectionOptions)")
    invariant(model.connectionOptions.contains("keep-alive") == head.connectionKeepAlive, "connectionKeepAlive")
    invariant(model.connectionOptions.contains("upgrade") == head.connectionUpgrade, "connectionUpgrade")
    if head.kind == .request {
        invariant(!head.hasTransferEncoding || (head.transferEncodingChunked && head.versionMinor == 1), "request Transfer-Encoding accepted")
        invariant(model.hostCount <= 1, "\(model.hostCount) Host fields accepted")
        let hostValue = model.names.firstIndex(of: "host").map { head.fields[$0].value }
        invariant(head.host == hostValue, "host \(String(describing: head.host)), field \(String(describing: hostValue))")
    }
}

// MARK: - Rewrite

private let hopByHop: Set<String> = ["connection", "keep-alive", "proxy-connection", "te", "upgrade", "proxy-authorization"]
private let rewriteLimits = HTTP1Limits(maxHeadBytes: 1 << 20, maxFields: 100_000)

/// The field lines of a head, as bytes.
private func lines(_ head: HTTP1Head) -> [[UInt8]] {
    let bytes = Array(head.bytes.readableBytesView)
    return head.fields.map { Array(bytes[$0.line]) }
}

/// The original's field lines the naive model says go on: not hop-by-hop, not named by a
/// Connection option, and not replaced by an edit.
private func keptLines(_ head: HTTP1Head, dropping extra: (String) -> Bool) -> [[UInt8]] {
    let model = NaiveFields(head)
    // `close` is not treated as naming a field (HTTP1Rewrite.connectionListed); keep-alive and
    // upgrade are hop-by-hop anyway; the framing fields and Host are never dropped for being listed.
    let listed = Set(model.connectionOptions).subtracting(["close", "content-length", "transfer-encoding", "host"])
    let all = lines(head)
    return zip(model.names, all).compactMap { name, line in
        hopByHop.contains(name) || listed.contains(name) || extra(name) ? nil : line
    }
}

/// The head with `Connection: <name>` added, naming one of its own fields (which one: from the
/// input's hash). Random mutation rarely makes a connection option that is exactly another
/// field's name, yet that is where hop-by-hop handling goes wrong; this puts every field of
/// every input in reach of the rewrite checks.
private func nominatingVariant(_ head: HTTP1Head, _ options: Options) -> [HTTP1Head] {
    guard !head.fields.isEmpty else { return [] }
    let field = head.fields[Int((options.seed >> 8) % UInt64(head.fields.count))]
    let bytes = Array(head.bytes.readableBytesView)
    var variant = allocator.buffer(capacity: bytes.count + 16 + field.name.count)
    variant.writeBytes(bytes.dropLast(2))
    variant.writeString("Connection: ")
    variant.writeBytes(bytes[field.name])
    variant.writeString("\r\n\r\n")
    return (try? HTTP1Head(parsing: variant, kind: head.kind, limits: rewriteLimits)).map { [$0] } ?? []
}

private func checkRequestRewrite(_ head: HTTP1Head, _ options: Options) {
    // The edits HTTPProxyHandler makes.
    let upgrade: String? = head.connectionUpgrade && !head.methodIs("CONNECT") ? head.upgrade.map(head.string) : nil
    var edits = HTTP1Rewrite.RequestEdits(upgrade: upgrade, requestID: head.hasRequestID ? nil : GeneratedRequestID(random: 0x6f1c_0e2a, 0x0f), dropExpect: head.expectContinue)
    if options.gateway {
        let existing = head.fields.filter { head.nameEquals($0, "x-forwarded-for") }.map { head.string($0.value) }.joined(separator: ", ")
        edits.forwardedFor = existing.isEmpty ? "192.0.2.7" : "\(existing), 192.0.2.7"
    }
    var out = allocator.buffer(capacity: 0)
    HTTP1Rewrite.writeUpstreamRequest(head, edits: edits, to: &out)
    let written = Array(out.readableBytesView)
    let forwarded: HTTP1Head
    do {
        forwarded = try HTTP1Head(parsing: out, kind: .request, limits: rewriteLimits)
    } catch {
        invariant(false, "forwarded request does not parse: \(error): \(written) from \(Array(head.bytes.readableBytesView))")
        return
    }
    let original = Array(head.bytes.readableBytesView)
    invariant(Array(written[forwarded.method]) == Array(original[head.method]), "forwarded method differs")
    invariant(Array(written[forwarded.target]) == Array(original[head.target]), "forwarded target differs")
    invariant(forwarded.versionMinor == 1, "forwarded as HTTP/1.\(forwarded.versionMinor)")
    // What we send must frame the body exactly as we framed it, and keep the Host we decided on.
    invariant(forwarded.contentLength == head.contentLength && forwarded.hasTransferEncoding == head.hasTransferEncoding
              && forwarded.transferEncodingChunked == head.transferEncodingChunked,
              "forwarded request frames its body differently (CL \(String(describing: forwarded.contentLength)) vs \(String(describing: head.contentLength)), TE \(forwarded.hasTransferEncoding) vs \(head.hasTransferEncoding)): \(String(decoding: written, as: UTF8.self).debugDescription) from \(String(decoding: original, as: UTF8.self).debugDescription)")
    invariant(forwarded.host.map { Array(written[$0]) } == head.host.map { Array(original[$0]) },
              "forwarded Host differs: \(String(decoding: written, as: UTF8.self).debugDescription) from \(String(decoding: original, as: UTF8.self).debugDescription)")
    // No hop-by-hop field but the two an upgrade adds.
    let names = NaiveFields(forwarded).names
    let hop = names.filter { hopByHop.contains($0) }
    invariant(hop == (upgrade == nil ? [] : ["connection", "upgrade"]), "forwarded hop-by-hop fields \(hop): \(String(decoding: written, as: UTF8.self).debugDescription)")
    // Exactly the end-to-end fields, as read, then the added ones.
    var expected = keptLines(head) { name in
        (name == "expect" && edits.dropExpect) || (name == "x-forwarded-for" && edits.forwardedFor != nil)
    }
    if let upgrade { expected += [Array("connection: upgrade".utf8), Array("upgrade: \(upgrade)".utf8)] }
    if let id = edits.requestID { expected.append(Array("x-request-id: \(id.text)".utf8)) }
    if let xff = edits.forwardedFor { expected.append(Array("x-forwarded-for: \(xff)".utf8)) }
    let actual = lines(forwarded)
    invariant(actual == expected, "forwarded fields \(actual.map { String(decoding: $0, as: UTF8.self) }), expected \(expected.map { String(decoding: $0, as: UTF8.self) }) from \(String(decoding: original, as: UTF8.self).debugDescription)")
}

private func checkResponseRewrite(_ head: HTTP1Head, _ options: Options) {
    // The edits HTTPProxyHandler makes (it relays 101 and final responses; the checks hold for any).
    var edits = HTTP1Rewrite.ResponseEdits(versionMinor: options.appVersionMinor)
    if options.gateway { edits.serviceTimeMs = Int64(options.seed % 100_000) }
    if options.appVersionMinor == 0 && head.transferEncodingChunked { edits.dropTransferEncoding = true }
    let upgrade = head.status == 101 ? head.upgrade.map(head.string) ?? "websocket" : nil
    if let upgrade {
        edits.connection = .upgrade(upgrade)
    } else if options.closeEdit || edits.dropTransferEncoding {
        edits.connection = .close
    } else if options.appVersionMinor == 0 {
        edits.connection = .keepAlive
    }
    var out = allocator.buffer(capacity: 0)
    HTTP1Rewrite.writeDownstreamResponse(head, edits: edits, to: &out)
    let written = Array(out.readableBytesView)
    let relayed: HTTP1Head
    do {
        relayed = try HTTP1Head(parsing: out, kind: .response, limits: rewriteLimits)
    } catch {
        invariant(false, "relayed response does not parse: \(error): \(written) from \(Array(head.bytes.readableBytesView))")
        return
    }
    let original = Array(head.bytes.readableBytesView)
    let text = String(decoding: written, as: UTF8.self).debugDescription + " from " + String(decoding: original, as: UTF8.self).debugDescription
    invariant(relayed.status == head.status && relayed.versionMinor == options.appVersionMinor, "relayed status line: \(text)")
    invariant(Array(written[relayed.reason]) == Array(original[head.reason]), "relayed reason differs: \(text)")
    let dropTE = edits.dropTransferEncoding
    invariant(relayed.contentLength == head.contentLength && relayed.hasTransferEncoding == (head.hasTransferEncoding && !dropTE)
              && (dropTE || relayed.transferEncodingChunked == head.transferEncodingChunked),
              "relayed response frames its body differently: \(text)")
    let names = NaiveFields(relayed).names
    let hop = names.filter { hopByHop.contains($0) }
    let allowedHop: [String]
    switch edits.connection {
    case .none: allowedHop = []
    case .close, .keepAlive: allowedHop = ["connection"]
    case .upgrade: allowedHop = ["connection", "upgrade"]
    }
    invariant(hop == allowedHop, "relayed hop-by-hop fields \(hop): \(text)")
    if let ms = edits.serviceTimeMs {
        invariant(names.filter({ $0 == "x-envoy-upstream-service-time" }).count == 1, "service time fields: \(text)")
        invariant(lines(relayed).contains(Array("x-envoy-upstream-service-time: \(ms)".utf8)), "service time value: \(text)")
    }
    var expected = keptLines(head) { name in
        (name == "x-envoy-upstream-service-time" && edits.serviceTimeMs != nil) || (name == "transfer-encoding" && dropTE)
    }
    if let ms = edits.serviceTimeMs { expected.append(Array("x-envoy-upstream-service-time: \(ms)".utf8)) }
    switch edits.connection {
    case .none: break
    case .close: expected.append(Array("connection: close".utf8))
    case .keepAlive: expected.append(Array("connection: keep-alive".utf8))
    case .upgrade(let value): expected += [Array("connection: upgrade".utf8), Array("upgrade: \(value)".utf8)]
    }
    let actual = lines(relayed)
    invariant(actual == expected, "relayed fields \(actual.map { String(decoding: $0, as: UTF8.self) }), expected \(expected.map { String(decoding: $0, as: UTF8.self) }): \(text)")
}

// MARK: - Comparing runs

private func compareWholeAndSplit(whole: Run, split: Run) {
    invariant(whole.outcome == split.outcome, "whole: \(whole.outcome), split: \(split.outcome)")
    invariant(whole.messages.count == split.messages.count, "whole: \(whole.messages.count) messages, split: \(split.messages.count)")
    if case .closed = whole.outcome {
        for (i, (a, b)) in zip(whole.messages, split.messages).enumerated() {
            invariant(a == b, "message \(i) differs whole vs split: \(a) vs \(b)")
        }
        return
    }
    // An error inside a chunked body: whole, none of it was handed out; split, what arrived
    // before the bad byte was. Everything else is the same.
    for (i, (a, b)) in zip(whole.messages, split.messages).enumerated() {
        if i == whole.messages.count - 1, !a.ended, !b.ended, a.framing == .chunked {
            invariant(a.head == b.head && a.framing == b.framing, "last head differs whole vs split")
            invariant(b.body.starts(with: a.body) || a.body.starts(with: b.body), "last body differs whole vs split")
        } else {
            invariant(a == b, "message \(i) differs whole vs split: \(a) vs \(b)")
        }
    }
}

private func compareStripping(raw: Run, stripped: Run) {
    invariant(raw.outcome == stripped.outcome, "raw: \(raw.outcome), stripped: \(stripped.outcome)")
    invariant(raw.messages.count == stripped.messages.count, "raw: \(raw.messages.count) messages, stripped: \(stripped.messages.count)")
    for (i, (a, b)) in zip(raw.messages, stripped.messages).enumerated() {
        invariant(a.head == b.head && a.framing == b.framing && a.ended == b.ended, "message \(i) head/framing/end differ raw vs stripped")
        guard a.ended else { continue }
        if a.framing == .chunked {
            let decoded = dechunk(a.body)
            invariant(decoded == b.body, "stripped body \(b.body) is not the decoded raw body \(String(describing: decoded))")
        } else {
            invariant(a.body == b.body, "message \(i) body differs raw vs stripped")
        }
    }
}

/// A reference decoder for a complete chunked body (RFC 9112 §7.1): the payload, or nil unless
/// `body` is exactly one chunked body, last chunk and trailer section and final CRLF included.
private func dechunk(_ body: [UInt8]) -> [UInt8]? {
    func lineEnd(from i: Int) -> Int? {
        var j = i
        while j + 1 < body.count {
            if body[j] == 0x0D && body[j + 1] == 0x0A { return j }
            j += 1
        }
        return nil
    }
    var payload: [UInt8] = []
    var i = 0
    while true {
        guard let end = lineEnd(from: i) else { return nil }
        let hex = body[i..<end].prefix { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }
        guard !hex.isEmpty, hex.count <= 15, let size = Int(String(decoding: hex, as: UTF8.self), radix: 16) else { return nil }
        i = end + 2
        if size == 0 { break }
        guard size <= body.count - i - 2, body[i + size] == 0x0D, body[i + size + 1] == 0x0A else { return nil }
        payload += body[i..<(i + size)]
        i += size + 2
    }
    while true {
        guard let end = lineEnd(from: i) else { return nil }
        if end == i {
            i += 2
            break
        }
        guard body[i..<end].contains(0x3A) else { return nil }
        i = end + 2
    }
    return i == body.count ? payload : nil
}

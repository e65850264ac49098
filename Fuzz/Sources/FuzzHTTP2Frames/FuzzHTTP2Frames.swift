import FuzzSupport
import NIOCore
import SluiceCore

/// Fuzzes the HTTP/2 wire codec: `HTTP2FrameReader` on a frame stream that arrives in pieces,
/// `HTTP2FrameWriter` on every frame it reads, and `HTTP2StreamTable` / `HTTP2FlowWindow` (a
/// server connection) on the frames in order.
///
/// Input: 1 control byte, then the frames (after the preface, as on the wire):
/// - bits 0–1: SETTINGS_MAX_FRAME_SIZE we announce (16 KiB, 16 KiB + 1, 64 KiB, 16 MiB - 1);
/// - bits 2–4: CONTINUATION frames allowed per field block (0…7);
/// - bits 5–7: how the stream is cut (one piece, one byte at a time, pieces from a hash).
///
/// Properties (any failure aborts through `invariant`):
/// 1. Accounting: `next` consumes nothing when it returns nil without an open field block, and
///    never more than it was given; what is left unread is short of a whole frame.
/// 2. Whole vs split: the same frames and the same error, however the bytes arrive.
/// 3. Frames: padding removed never exceeds the frame (`flowControlledLength` ≥ data), SETTINGS
///    values are in their RFC ranges, WINDOW_UPDATE increments are 1…2^31-1, no frame breaks
///    the announced frame size.
/// 4. Round trip: every frame written back by `HTTP2FrameWriter` reads back as itself.
/// 5. Streams: the table never counts more active peer streams than announced, windows never
///    exceed 2^31-1, and after a connection error nothing more is read.
/// 6. Sending: each stream's DATA echoed through `HTTP2OutboundData` under the peer's windows
///    and SETTINGS never leaves in frames over its frame size, never past the connection
///    window, and every byte is either sent, waiting or dropped with its stream.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP2Frames(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    guard let control = input.first else { return 0 }
    let stream = Array(input.dropFirst())
    let maxFrameSizes = [16_384, 16_385, 65_536, 16_777_215]
    let reader = HTTP2FrameReader(
        maxFrameSize: maxFrameSizes[Int(control & 3)], maxContinuationFrames: Int(control >> 2 & 7), maxFieldBlockBytes: 4096)
    let whole = read(stream, pieces: stream.isEmpty ? [] : [stream.count], reader: reader)
    let pieces = pieceSizes(count: stream.count, mode: control >> 5, seed: seed(of: input))
    let split = read(stream, pieces: pieces, reader: reader)
    invariant(whole.frames == split.frames, "whole: \(whole.frames.count) frames, split: \(split.frames.count)")
    invariant(whole.errors == split.errors, "whole: \(whole.errors), split: \(split.errors)")
    for frame in whole.frames { roundTrip(frame, reader: reader) }
    drive(whole.frames)
    return 0
}

/// The entry point SwiftPM's link line names (see `runLibFuzzer`).
@_cdecl("FuzzHTTP2Frames_main")
public func fuzzHTTP2FramesMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzHTTP2Frames)
}

private struct Run {
    var frames: [HTTP2WireFrame] = []
    /// Stream errors (reading went on) and the connection error that ended it, in order.
    var errors: [HTTP2WireError] = []
}

private func pieceSizes(count: Int, mode: UInt8, seed: UInt64) -> [Int] {
    guard count > 0 else { return [] }
    switch mode {
    case 0, 1: return [count]
    case 2: return Array(repeating: 1, count: count)
    default:
        var sizes: [Int] = []
        var state = seed | 1
        var left = count
        while left > 0 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            let size = min(left, 1 + Int(state % UInt64(Int(mode) * 8)))
            sizes.append(size)
            left -= size
        }
        return sizes
    }
}

private func read(_ stream: [UInt8], pieces: [Int], reader initial: HTTP2FrameReader) -> Run {
    var reader = initial
    var run = Run()
    var buffer = ByteBuffer()
    var fed = 0
    for size in pieces {
        stream.withUnsafeBytes { raw in
            _ = buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[fed..<(fed + size)]))
        }
        fed += size
        while true {
            let before = buffer.readableBytes
            let frame: HTTP2WireFrame?
            do {
                frame = try reader.next(&buffer)
            } catch {
                run.errors.append(error)
                if error.isConnectionError { return run }
                invariant(buffer.readableBytes < before, "a stream error consumed nothing")
                continue
            }
            invariant(buffer.readableBytes <= before, "next() un-consumed bytes")
            guard let frame else {
                let left = buffer.readableBytes
                if left >= 9, let b0 = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                   let b12 = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt16.self) {
                    invariant(left < 9 + (Int(b0) << 16 | Int(b12)), "a whole frame left unread")
                }
                break
            }
            check(frame, reader: initial)
            run.frames.append(frame)
        }
    }
    return run
}

private func check(_ frame: HTTP2WireFrame, reader: HTTP2FrameReader) {
    switch frame {
    case .data(let streamID, let data, _, let flowControlled):
        invariant(streamID != 0, "DATA on stream 0")
        invariant(flowControlled >= data.readableBytes && flowControlled <= reader.maxFrameSize, "DATA lengths \(data.readableBytes)/\(flowControlled)")
    case .headers(let streamID, let block, _, let priority):
        invariant(streamID != 0, "HEADERS on stream 0")
        invariant(block.readableBytes <= reader.maxFieldBlockBytes, "field block of \(block.readableBytes)")
        invariant(priority?.dependency != streamID, "self-dependency passed")
    case .settings(let ack, let settings):
        invariant(!ack || settings.isEmpty, "SETTINGS ACK with parameters")
        for setting in settings {
            switch setting.id {
            case HTTP2SettingID.enablePush: invariant(setting.value <= 1, "ENABLE_PUSH \(setting.value)")
            case HTTP2SettingID.initialWindowSize: invariant(setting.value <= 0x7FFF_FFFF, "INITIAL_WINDOW_SIZE \(setting.value)")
            case HTTP2SettingID.maxFrameSize: invariant(setting.value >= 16_384 && setting.value <= 16_777_215, "MAX_FRAME_SIZE \(setting.value)")
            default: invariant((1...6).contains(setting.id), "unknown setting \(setting.id) kept")
            }
        }
    case .windowUpdate(_, let increment):
        invariant(increment >= 1 && increment <= 0x7FFF_FFFF, "increment \(increment)")
    case .rstStream(let streamID, _), .priority(let streamID, _):
        invariant(streamID != 0, "stream frame on 0")
    case .ping, .goAway, .unknown:
        break
    }
}

private func roundTrip(_ frame: HTTP2WireFrame, reader: HTTP2FrameReader) {
    var out = ByteBuffer()
    var expected = frame
    switch frame {
    case .data(let streamID, let data, let endStream, _):
        HTTP2FrameWriter.writeData(streamID: streamID, data: data, endStream: endStream, to: &out)
        expected = .data(streamID: streamID, data: data, endStream: endStream, flowControlledLength: data.readableBytes)
    case .headers(let streamID, let block, let endStream, _):
        // Written without priority fields, cut to 16 KiB frames.
        HTTP2FrameWriter.writeHeaders(streamID: streamID, block: block, endStream: endStream, maxFrameSize: 16_384, to: &out)
        expected = .headers(streamID: streamID, block: block, endStream: endStream, priority: nil)
    case .rstStream(let streamID, let code):
        HTTP2FrameWriter.writeRSTStream(streamID: streamID, code: code, to: &out)
    case .settings(let ack, let settings):
        if ack { HTTP2FrameWriter.writeSettingsAck(to: &out) } else { HTTP2FrameWriter.writeSettings(settings, to: &out) }
    case .ping(let ack, let opaque):
        HTTP2FrameWriter.writePing(opaque: opaque, ack: ack, to: &out)
    case .goAway(let last, let code, let debugData):
        HTTP2FrameWriter.writeGoAway(lastStreamID: last, code: code, debugData: debugData, to: &out)
    case .windowUpdate(let streamID, let increment):
        HTTP2FrameWriter.writeWindowUpdate(streamID: streamID, increment: increment, to: &out)
    case .priority, .unknown:
        return
    }
    var again = HTTP2FrameReader(maxFrameSize: 16_777_215, maxContinuationFrames: 1024, maxFieldBlockBytes: reader.maxFieldBlockBytes)
    do {
        let read = try again.next(&out)
        invariant(read == expected, "written frame reads back as \(String(describing: read)), not \(expected)")
        invariant(out.readableBytes == 0, "written frame left \(out.readableBytes) bytes")
    } catch {
        invariant(false, "written frame does not read back: \(error)")
    }
}

/// The frames through a server connection's stream table and windows, as the codec's
/// connection applies them.
private func drive(_ frames: [HTTP2WireFrame]) {
    var table = HTTP2StreamTable(isServer: true, maxConcurrentRemote: 4, recentResetCapacity: 4)
    var connection = HTTP2FlowWindow(size: 65_535, streamID: 0)
    var windows: [UInt32: HTTP2FlowWindow] = [:]
    // Each stream's DATA echoed back through the outbound queue, under the peer's windows.
    var out = HTTP2OutboundData()
    var queued = 0
    for frame in frames {
        do {
            switch frame {
            case .headers(let streamID, _, let endStream, _):
                switch try table.receivedHeaders(streamID: streamID, endStream: endStream) {
                case .opened:
                    windows[streamID] = HTTP2FlowWindow(size: 65_535, streamID: streamID)
                    out.open(streamID: streamID)
                case .refused: table.sentReset(streamID: streamID)
                case .onOpenStream, .ignored: break
                }
            case .data(let streamID, _, let endStream, let length):
                try connection.received(length)
                if try table.receivedData(streamID: streamID, endStream: endStream) {
                    try windows[streamID]?.received(length)
                    if case .data(_, let data, _, _) = frame, out.window(of: streamID) != nil, data.readableBytes > 0 || endStream {
                        out.enqueue(streamID: streamID, data: data, endStream: endStream)
                        queued += data.readableBytes
                    }
                }
                try connection.increase(by: length)
            case .rstStream(let streamID, _):
                if try table.receivedReset(streamID: streamID) { windows[streamID] = nil }
                queued -= out.close(streamID: streamID)
            case .windowUpdate(let streamID, let increment):
                try out.windowUpdate(streamID: streamID, increment: increment)
                if streamID == 0 {
                    try connection.increase(by: increment)
                } else if try table.receivedStreamControl(streamID: streamID, frame: "WINDOW_UPDATE") {
                    try windows[streamID]?.increase(by: increment)
                }
            case .settings(false, let settings):
                for setting in settings where setting.id == HTTP2SettingID.initialWindowSize {
                    try out.setInitialWindowSize(Int(setting.value))
                }
                for setting in settings where setting.id == HTTP2SettingID.maxFrameSize { out.maxFrameSize = Int(setting.value) }
            default:
                break
            }
            for sent in out.nextFrames() {
                invariant(sent.data.readableBytes <= out.maxFrameSize, "\(sent.data.readableBytes)-byte DATA over \(out.maxFrameSize)")
                invariant(sent.data.readableBytes > 0 || sent.endStream, "an empty DATA frame without END_STREAM")
                queued -= sent.data.readableBytes
            }
            invariant(out.connection.size >= 0, "sent past the connection window: \(out.connection.size)")
            invariant(out.bufferedBytes == queued, "\(out.bufferedBytes) bytes buffered, \(queued) queued and unsent")
        } catch {
            if error.isConnectionError { return }
            table.sentReset(streamID: error.streamID)
            windows[error.streamID] = nil
            queued -= out.close(streamID: error.streamID)
        }
        invariant(table.remoteActive <= table.maxConcurrentRemote, "\(table.remoteActive) active streams")
        invariant(connection.size <= 0x7FFF_FFFF, "connection window \(connection.size)")
        windows = windows.filter { table.state(of: $0.key) != nil }
        invariant(windows.count <= table.remoteActive, "\(windows.count) windows for \(table.remoteActive) streams")
    }
}

import NIOCore
import NIOHPACK
import NIOHTTP2
import SluiceCore

/// The peer's frames (RFC 9113 §6), each checked against the connection's state and limits.
extension HTTP2WireHandler {
    func handle(_ frame: HTTP2WireFrame, _ context: ChannelHandlerContext) throws(HTTP2WireError) {
        // §3.4: the peer's connection preface ends with its SETTINGS.
        if !peerSettingsReceived {
            guard case .settings(ack: false, _) = frame else { throw HTTP2WireError(.protocolError, "first frame is not SETTINGS") }
        }
        if case .data(_, let data, let endStream, _) = frame, data.readableBytes == 0, !endStream {
            emptyDataRun += 1
            guard emptyDataRun <= limits.maxSequentialEmptyDataFrames else {
                throw HTTP2WireError(.enhanceYourCalm, "\(emptyDataRun) empty DATA frames in a row")
            }
        } else {
            emptyDataRun = 0
        }
        switch frame {
        case .data(let streamID, let data, let endStream, let length):
            try receivedData(streamID, data, endStream: endStream, length: length, context)
        case .headers(let streamID, let block, let endStream, _):
            try receivedHeaders(streamID, block, endStream: endStream, context)
        case .priority(let streamID, _):
            try controlFrame()
            _ = try table.receivedStreamControl(streamID: streamID, frame: "PRIORITY")
        case .rstStream(let streamID, let code):
            if mode == .server, resets.record(now: NIODeadline.now().uptimeNanoseconds.asInt64) {
                throw HTTP2WireError(.enhanceYourCalm, "more than \(limits.maxResetsPerWindow) streams reset")
            }
            guard try table.receivedReset(streamID: streamID) else { return }
            let code = HTTP2ErrorCode(networkCode: Int(code.rawValue))
            fire(streamID, .rstStream(code), context)
            dropStream(streamID, reason: code)
        case .settings(let ack, let settings):
            try controlFrame()
            try receivedSettings(ack: ack, settings, context)
        case .ping(let ack, let opaque):
            try controlFrame()
            guard !ack else { return }
            HTTP2FrameWriter.writePing(opaque: opaque, ack: true, to: &pendingOut)
            queuedControlFrame(context)
        case .goAway(let lastStreamID, let code, let debugData):
            receivedGoAway(lastStreamID: lastStreamID, code: code, debugData: debugData, context)
        case .windowUpdate(let streamID, let increment):
            if streamID == 0 {
                try outbound.windowUpdate(streamID: 0, increment: increment)
            } else {
                guard try table.receivedStreamControl(streamID: streamID, frame: "WINDOW_UPDATE") else { return }
                try outbound.windowUpdate(streamID: streamID, increment: increment)
            }
            sendQueuedData()
        case .unknown:
            break
        }
    }

    private func controlFrame() throws(HTTP2WireError) {
        if controlFrames.record(now: NIODeadline.now().uptimeNanoseconds.asInt64) {
            throw HTTP2WireError(.enhanceYourCalm, "more than \(limits.maxControlFramesPerWindow) control frames")
        }
    }

    private func receivedData(
        _ streamID: UInt32, _ data: ByteBuffer, endStream: Bool, length: Int, _ context: ChannelHandlerContext
    ) throws(HTTP2WireError) {
        try connectionInbound.received(length)
        defer {
            // The relay tops the connection window up once it is down to half the window it
            // announced (HTTP2WindowCredit): only then is it told.
            if connectionInbound.size * 2 <= limits.initialWindowSize {
                events?.connectionWindowLow(remaining: connectionInbound.size)
            }
        }
        guard try table.receivedData(streamID: streamID, endStream: endStream), var stream = streams[streamID] else { return }
        try stream.inbound.received(length)
        if let expected = stream.contentLength {
            let left = expected - data.readableBytes
            guard left >= 0, !endStream || left == 0 else {
                throw HTTP2WireError(.protocolError, streamID: streamID, "body length differs from content-length \(expected)")
            }
            stream.contentLength = left
        }
        streams[streamID] = stream
        let padding = length > data.readableBytes ? length - data.readableBytes - 1 : nil
        fire(streamID, .data(.init(data: .byteBuffer(data), endStream: endStream, paddingBytes: padding)), context)
        if endStream { closeIfDone(streamID) }
    }

    private func receivedHeaders(_ streamID: UInt32, _ block: ByteBuffer, endStream: Bool, _ context: ChannelHandlerContext) throws(HTTP2WireError) {
        // The block is decoded whatever becomes of the stream: the HPACK state is the connection's.
        var block = block
        let headers: HPACKHeaders
        let opened: HTTP2StreamTable.InboundHeaders
        do {
            opened = try table.receivedHeaders(streamID: streamID, endStream: endStream)
        } catch {
            _ = try decode(&block)
            throw error
        }
        headers = try decode(&block)
        switch opened {
        case .refused:
            HTTP2FrameWriter.writeRSTStream(streamID: streamID, code: .refusedStream, to: &pendingOut)
            return
        case .ignored:
            return
        case .opened:
            streams[streamID] = Stream(inbound: HTTP2FlowWindow(size: localInitialWindow, streamID: streamID), headReceived: true)
            outbound.open(streamID: streamID)
        case .onOpenStream:
            break
        }
        guard var stream = streams[streamID] else { return }
        let kind: HTTP2HeaderBlockCheck.Kind =
            opened == .opened ? .request : (stream.headReceived ? .trailers : .response)
        var check = HTTP2HeaderBlockCheck(kind: kind)
        do {
            for (name, value, _) in headers { try check.field(name: name, value: value) }
            try check.finish()
        } catch {
            throw HTTP2WireError(error.code, streamID: streamID, error.reason)
        }
        switch kind {
        case .trailers:
            guard endStream else { throw HTTP2WireError(.protocolError, streamID: streamID, "trailers without END_STREAM") }
            if let left = stream.contentLength, left != 0 {
                throw HTTP2WireError(.protocolError, streamID: streamID, "body shorter than its content-length")
            }
        case .response:
            let status = check.statusCode ?? 0
            if status >= 200 {
                stream.headReceived = true
                // No body follows a response to HEAD, a 204 or a 304 (RFC 9110 §6.4.1).
                stream.contentLength = stream.isHeadRequest || status == 204 || status == 304 ? nil : check.contentLength
            } else if endStream {
                throw HTTP2WireError(.protocolError, streamID: streamID, "informational response with END_STREAM")
            }
        case .request:
            stream.contentLength = check.contentLength
        }
        if endStream, let left = stream.contentLength, left != 0, kind != .trailers {
            throw HTTP2WireError(.protocolError, streamID: streamID, "END_STREAM before content-length \(left) bytes")
        }
        streams[streamID] = stream
        fire(streamID, .headers(.init(headers: headers, endStream: endStream)), context)
        if endStream { closeIfDone(streamID) }
    }

    /// HPACK-decodes a field block; failing (a list over SETTINGS_MAX_HEADER_LIST_SIZE
    /// included) loses the decoder's state, so it is a connection error (§4.3).
    private func decode(_ block: inout ByteBuffer) throws(HTTP2WireError) -> HPACKHeaders {
        do {
            return try decoder.decodeHeaders(from: &block)
        } catch {
            throw HTTP2WireError(.compressionError, "field block: \(error)")
        }
    }

    private func receivedSettings(ack: Bool, _ settings: [HTTP2WireSetting], _ context: ChannelHandlerContext) throws(HTTP2WireError) {
        guard !ack else {
            ourSettingsAcked = true
            return
        }
        peerSettingsReceived = true
        for setting in settings {
            switch setting.id {
            case HTTP2SettingID.maxConcurrentStreams:
                table.maxConcurrentLocal = Int(setting.value)
            case HTTP2SettingID.initialWindowSize:
                try outbound.setInitialWindowSize(Int(setting.value))
            case HTTP2SettingID.maxFrameSize:
                peerMaxFrameSize = Int(setting.value)
                outbound.maxFrameSize = Int(setting.value)
            default:
                break  // the static encoder uses no dynamic table; header-list size is the peer's to enforce
            }
        }
        HTTP2FrameWriter.writeSettingsAck(to: &pendingOut)
        queuedControlFrame(context)
        sendQueuedData()
        if mode == .client { releaseHeld() }
    }

    /// §6.8: no new stream goes to a peer that sent GOAWAY; ours above its last stream were
    /// not processed and are closed (refused: safe to retry).
    private func receivedGoAway(lastStreamID: UInt32, code: HTTP2WireErrorCode, debugData: ByteBuffer, _ context: ChannelHandlerContext) {
        goAwayReceived = true
        fire(0, .goAway(lastStreamID: HTTP2StreamID(Int32(truncatingIfNeeded: lastStreamID)),
                        errorCode: HTTP2ErrorCode(networkCode: Int(code.rawValue)), opaqueData: debugData), context)
        for streamID in table.localStreams(above: lastStreamID) {
            table.sentReset(streamID: streamID)
            dropStream(streamID, reason: .refusedStream)
        }
        let waiting = heldOrder
        heldOrder = []
        for streamID in waiting {
            let frames = held.removeValue(forKey: streamID) ?? []
            let error = NIOHTTP2Errors.streamClosed(streamID: HTTP2StreamID(Int32(truncatingIfNeeded: streamID)), errorCode: .refusedStream)
            for (_, promise) in frames { promise?.fail(error) }
            events?.streamClosed(HTTP2StreamID(Int32(truncatingIfNeeded: streamID)), reason: .refusedStream)
        }
    }
}

extension UInt64 {
    /// Monotonic nanoseconds as the event rates count them.
    var asInt64: Int64 { Int64(truncatingIfNeeded: self) }
}

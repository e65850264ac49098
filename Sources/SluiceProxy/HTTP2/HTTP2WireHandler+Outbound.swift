import NIOCore
import NIOHPACK
import NIOHTTP2
import SluiceCore

/// The relay's frames, encoded (no validation: the relay writes only blocks that were checked
/// on arrival or that Sluice built). DATA waits for the peer's windows; a write's promise
/// completes once its bytes went to the channel.
extension HTTP2WireHandler {
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        guard !closed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let streamID = UInt32(truncatingIfNeeded: Int32(frame.streamID))
        if mode == .client, streamID != 0, hold(frame, streamID: streamID, promise: promise) { return }
        send(frame, streamID: streamID, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        flushPending(context)
    }

    private func send(_ frame: HTTP2Frame, streamID: UInt32, promise: EventLoopPromise<Void>?) {
        switch frame.payload {
        case .headers(let headers):
            sendHeaders(headers.headers, streamID: streamID, endStream: headers.endStream, promise: promise)
        case .data(let data):
            guard case .byteBuffer(let bytes) = data.data else {
                promise?.fail(ChannelError.operationUnsupported)
                return
            }
            sendData(bytes, streamID: streamID, endStream: data.endStream, promise: promise)
        case .windowUpdate(let increment):
            if streamID == 0 {
                try? connectionInbound.increase(by: increment)
            } else {
                guard streams[streamID] != nil else {
                    promise?.succeed()
                    return
                }
                try? streams[streamID]?.inbound.increase(by: increment)
            }
            HTTP2FrameWriter.writeWindowUpdate(streamID: streamID, increment: increment, to: &pendingOut)
            complete(promise)
        case .rstStream(let code):
            let wasActive = streams[streamID] != nil
            table.sentReset(streamID: streamID)
            HTTP2FrameWriter.writeRSTStream(streamID: streamID, code: HTTP2WireErrorCode(rawValue: UInt32(http2ErrorCode: code)), to: &pendingOut)
            complete(promise)
            if wasActive { dropStream(streamID, reason: code) }
        case .goAway(let lastStreamID, let code, let opaqueData):
            HTTP2FrameWriter.writeGoAway(
                lastStreamID: UInt32(truncatingIfNeeded: Int32(lastStreamID)), code: HTTP2WireErrorCode(rawValue: UInt32(http2ErrorCode: code)),
                debugData: opaqueData, to: &pendingOut)
            complete(promise)
        default:
            // PING, SETTINGS and the rest are the codec's own business: the relays send none.
            promise?.fail(ChannelError.operationUnsupported)
        }
    }

    private func complete(_ promise: EventLoopPromise<Void>?) {
        if let promise { pendingPromises.append(promise) }
    }

    // MARK: HEADERS

    private func sendHeaders(_ headers: HPACKHeaders, streamID: UInt32, endStream: Bool, promise: EventLoopPromise<Void>?) {
        let isNew = table.state(of: streamID) == nil
        if isNew {
            guard mode == .client, streamID > table.lastLocalStreamID, !goAwayReceived else {
                // The stream is gone (reset, or ended): nothing to answer on.
                promise?.fail(NIOHTTP2Errors.streamClosed(streamID: HTTP2StreamID(Int32(truncatingIfNeeded: streamID)), errorCode: .streamClosed))
                return
            }
        } else if outbound.isWaiting(streamID) {
            // Trailers after DATA that waits for window: they follow it (§8.1).
            var block = ByteBufferAllocator().buffer(capacity: 256)
            for (name, value, _) in headers { HPACKStaticEncoder.append(name: name, value: value, to: &block) }
            streams[streamID]?.trailers = (block, promise)
            return
        }
        let isHead = writeHeaders(headers, streamID: streamID, endStream: endStream)
        complete(promise)
        table.sentHeaders(streamID: streamID, endStream: endStream)
        if isNew {
            var stream = Stream(inbound: HTTP2FlowWindow(size: localInitialWindow, streamID: streamID), headReceived: false)
            stream.isHeadRequest = isHead
            streams[streamID] = stream
            outbound.open(streamID: streamID)
        }
        if endStream { closeIfDone(streamID) }
    }

    /// Encodes one field block straight into the output (HEADERS, then CONTINUATION frames if
    /// it is longer than the peer's SETTINGS_MAX_FRAME_SIZE). True for a HEAD request.
    private func writeHeaders(_ headers: HPACKHeaders, streamID: UInt32, endStream: Bool) -> Bool {
        // Encoded in a local copy (the handler's property is not re-entered for every field),
        // the frame header reserved first and filled in once the block's length is known.
        var out = pendingOut
        pendingOut = emptyBuffer
        defer { pendingOut = out }
        let start = out.writerIndex
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: HTTP2WireConstants.frameHeaderLength) { _ in
            HTTP2WireConstants.frameHeaderLength
        }
        var isHead = false
        for (name, value, _) in headers {
            HPACKStaticEncoder.append(name: name, value: value, to: &out)
            if mode == .client, name == ":method", value == "HEAD" { isHead = true }
        }
        let length = out.writerIndex - start - HTTP2WireConstants.frameHeaderLength
        if length <= peerMaxFrameSize {
            let flags = HTTP2FrameFlag.endHeaders | (endStream ? HTTP2FrameFlag.endStream : 0)
            let offset = start - out.readerIndex
            _ = out.withUnsafeMutableReadableBytes { bytes in
                HTTP2FrameWriter.setHeader(
                    length: length, type: .headers, flags: flags, streamID: streamID,
                    in: UnsafeMutableRawBufferPointer(rebasing: bytes[offset...]))
            }
        } else {
            let block = out.getSlice(at: start + HTTP2WireConstants.frameHeaderLength, length: length) ?? ByteBuffer()
            var copy = ByteBufferAllocator().buffer(capacity: length)
            copy.writeImmutableBuffer(block)
            out.moveWriterIndex(to: start)
            HTTP2FrameWriter.writeHeaders(streamID: streamID, block: copy, endStream: endStream, maxFrameSize: peerMaxFrameSize, to: &out)
        }
        return isHead
    }

    // MARK: DATA

    private func sendData(_ bytes: ByteBuffer, streamID: UInt32, endStream: Bool, promise: EventLoopPromise<Void>?) {
        guard var stream = streams[streamID], let state = table.state(of: streamID), state != .halfClosedLocal else {
            promise?.fail(NIOHTTP2Errors.streamClosed(streamID: HTTP2StreamID(Int32(truncatingIfNeeded: streamID)), errorCode: .streamClosed))
            return
        }
        guard bytes.readableBytes > 0 || endStream else {
            promise?.succeed()
            return
        }
        stream.queued += bytes.readableBytes
        if let promise { stream.promises.append((stream.queued, promise)) }
        streams[streamID] = stream
        outbound.enqueue(streamID: streamID, data: bytes, endStream: endStream)
        sendQueuedData()
    }

    /// Writes the DATA frames the peer's windows allow now, and trailers that waited for them.
    func sendQueuedData() {
        for frame in outbound.nextFrames() {
            let streamID = frame.streamID
            HTTP2FrameWriter.writeData(streamID: streamID, data: frame.data, endStream: frame.endStream, to: &pendingOut)
            if var stream = streams[streamID] {
                stream.written += frame.data.readableBytes
                while let first = stream.promises.first, first.end <= stream.written {
                    pendingPromises.append(first.promise)
                    stream.promises.removeFirst()
                }
                let trailers = outbound.isWaiting(streamID) ? nil : stream.trailers
                if trailers != nil { stream.trailers = nil }
                streams[streamID] = stream
                if let trailers {
                    HTTP2FrameWriter.writeHeaders(streamID: streamID, block: trailers.block, endStream: true, maxFrameSize: peerMaxFrameSize, to: &pendingOut)
                    complete(trailers.promise)
                    table.sentHeaders(streamID: streamID, endStream: true)
                    closeIfDone(streamID)
                    continue
                }
            }
            if frame.endStream {
                table.sentData(streamID: streamID, endStream: true)
                closeIfDone(streamID)
            }
        }
    }

    // MARK: streams past the peer's concurrency limit (client side)

    /// Keeps a frame of a stream that may not open yet; true when kept.
    private func hold(_ frame: HTTP2Frame, streamID: UInt32, promise: EventLoopPromise<Void>?) -> Bool {
        if held[streamID] != nil {
            if case .rstStream = frame.payload {
                // Reset before it opened: it never will.
                let frames = held.removeValue(forKey: streamID) ?? []
                heldOrder.removeAll { $0 == streamID }
                let error = NIOHTTP2Errors.streamClosed(streamID: frame.streamID, errorCode: .cancel)
                for (_, waiting) in frames { waiting?.fail(error) }
                promise?.succeed()
                return true
            }
            held[streamID]?.append((frame, promise))
            return true
        }
        guard streamID > table.lastLocalStreamID, table.state(of: streamID) == nil, case .headers = frame.payload,
            !heldOrder.isEmpty || table.localActive >= table.maxConcurrentLocal
        else { return false }
        held[streamID] = [(frame, promise)]
        heldOrder.append(streamID)
        return true
    }

    /// Opens held streams while the peer's limit allows.
    func releaseHeld() {
        while let streamID = heldOrder.first, table.localActive < table.maxConcurrentLocal, !closed {
            heldOrder.removeFirst()
            for (frame, promise) in held.removeValue(forKey: streamID) ?? [] {
                send(frame, streamID: streamID, promise: promise)
            }
        }
    }
}

public import NIOCore

extension AccessLogRecord {
    /// Appends the record as one JSON object (no trailing newline) with the ASM/Envoy default
    /// field names, in the order docs/operations.md (Access log) lists them; absent values are `null`.
    ///
    /// Hand-written rather than `JSONEncoder`: this runs once per request on an event loop, and
    /// writing straight into the caller's buffer costs no allocation beyond the buffer's own
    /// growth. `upstream_service_time` is a JSON string of milliseconds, because Envoy's
    /// `%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%` is a header value.
    public func appendJSON(to buffer: inout ByteBuffer) {
        var timestamps = RFC3339.SecondCache()
        buffer.writeBounded(jsonBound) { writeJSON(to: &$0, timestamps: &timestamps) }
    }

    /// Appends the JSON object and its `\n` in one reservation of the buffer, for the log.
    func appendJSONLine(to buffer: inout ByteBuffer, timestamps: inout RFC3339.SecondCache) {
        buffer.writeBounded(jsonBound + 1) { w in
            writeJSON(to: &w, timestamps: &timestamps)
            w.write(UInt8(ascii: "\n"))
        }
    }

    /// The JSON object, written through a line writer with at least `jsonBound` bytes free.
    private func writeJSON(to w: inout BoundedWriter, timestamps: inout RFC3339.SecondCache) {
        w.write("{\"start_time\":\"")
        RFC3339.write(epochMilliseconds: startTime, to: &w, cache: &timestamps)
        w.write("\",\"method\":")
        w.writeJSONValue(method)
        w.write(",\"path\":")
        w.writeJSONValue(path)
        w.write(",\"protocol\":")
        w.writeJSONValue(self.protocol)
        w.write(",\"response_code\":")
        w.writeDecimal(Int64(responseCode))
        w.write(",\"response_flags\":\"")
        responseFlags.write(to: &w)
        w.write("\",\"response_code_details\":")
        w.writeJSONValue(responseCodeDetails)
        w.write(",\"bytes_received\":")
        w.writeDecimal(bytesReceived)
        w.write(",\"bytes_sent\":")
        w.writeDecimal(bytesSent)
        w.write(",\"duration\":")
        w.writeDecimal(duration)
        w.write(",\"upstream_service_time\":")
        if let upstreamServiceTime {
            w.write(UInt8(ascii: "\""))
            w.writeDecimal(upstreamServiceTime)
            w.write(UInt8(ascii: "\""))
        } else {
            w.write("null")
        }
        w.write(",\"x_forwarded_for\":")
        w.writeJSONValue(xForwardedFor)
        w.write(",\"user_agent\":")
        w.writeJSONValue(userAgent)
        w.write(",\"request_id\":")
        w.writeJSONValue(requestID)
        w.write(",\"authority\":")
        w.writeJSONValue(authority)
        w.write(",\"upstream_host\":")
        w.writeJSONValue(upstreamHost)
        w.write(",\"upstream_cluster\":")
        w.writeJSONValue(upstreamCluster)
        w.write(",\"upstream_local_address\":")
        w.writeJSONValue(upstreamLocalAddress)
        w.write(",\"downstream_local_address\":")
        w.writeJSONValue(downstreamLocalAddress)
        w.write(",\"downstream_remote_address\":")
        w.writeJSONValue(downstreamRemoteAddress)
        w.write(",\"requested_server_name\":")
        w.writeJSONValue(requestedServerName)
        w.write(",\"route_name\":")
        w.writeJSONValue(routeName)
        w.write(",\"upstream_transport_failure_reason\":")
        w.writeJSONValue(upstreamTransportFailureReason)
        w.write(",\"trace_id\":")
        w.writeJSONValue(traceId)
        w.write(",\"istio_policy_status\":")
        w.writeJSONValue(istioPolicyStatus)
        w.write(",\"downstream_peer_uri_san\":")
        w.writeJSONValue(downstreamPeerURISAN)
        w.write(UInt8(ascii: "}"))
    }

    /// The record as one JSON line, ending in `\n`.
    public func jsonLine() -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: jsonBound + 1)
        appendLine(format: .json, to: &buffer)
        return String(buffer: buffer)
    }

    /// Most bytes `appendJSON` can write: the keys and punctuation (under 650 bytes), numbers
    /// (20 digits each), the timestamp, the flags, and every string escaped at worst.
    private var jsonBound: Int {
        func b(_ value: String?) -> Int { BoundedWriter.escapedBound(value) }
        return 1024 + ResponseFlags.maxRenderedLength
            + b(method) + b(path) + b(self.protocol)
            + b(xForwardedFor) + b(userAgent) + BoundedWriter.escapedBound(requestID)
            + b(authority) + b(upstreamHost) + b(upstreamCluster)
            + b(upstreamLocalAddress) + b(downstreamLocalAddress)
            + b(downstreamRemoteAddress) + b(requestedServerName)
            + b(routeName) + b(upstreamTransportFailureReason) + b(responseCodeDetails)
            + b(traceId) + b(istioPolicyStatus) + b(downstreamPeerURISAN)
    }
}

public import NIOCore

extension AccessLogRecord {
    /// Appends the record as one JSON object (no trailing newline) with the ASM/Envoy default
    /// field names; absent values are `null`.
    ///
    /// Hand-written rather than `JSONEncoder`: this runs once per request on an event loop, and
    /// writing straight into the caller's buffer costs no intermediate allocations.
    /// `upstream_service_time` is a JSON string of milliseconds, as Envoy's
    /// `%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%` is a header value.
    public func appendJSON(to buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"start_time\":\"")
        RFC3339.append(epochMilliseconds: startTime, to: &buffer)
        buffer.writeStaticString("\",\"method\":")
        buffer.writeJSONValue(method)
        buffer.writeStaticString(",\"path\":")
        buffer.writeJSONValue(path)
        buffer.writeStaticString(",\"protocol\":")
        buffer.writeJSONValue(self.protocol)
        buffer.writeStaticString(",\"response_code\":")
        buffer.writeDecimal(Int64(responseCode))
        buffer.writeStaticString(",\"response_flags\":\"")
        responseFlags.appendEnvoyString(to: &buffer)
        buffer.writeStaticString("\",\"bytes_received\":")
        buffer.writeDecimal(bytesReceived)
        buffer.writeStaticString(",\"bytes_sent\":")
        buffer.writeDecimal(bytesSent)
        buffer.writeStaticString(",\"duration\":")
        buffer.writeDecimal(duration)
        buffer.writeStaticString(",\"upstream_service_time\":")
        if let upstreamServiceTime {
            buffer.writeInteger(UInt8(ascii: "\""))
            buffer.writeDecimal(upstreamServiceTime)
            buffer.writeInteger(UInt8(ascii: "\""))
        } else {
            buffer.writeStaticString("null")
        }
        buffer.writeStaticString(",\"x_forwarded_for\":")
        buffer.writeJSONValue(xForwardedFor)
        buffer.writeStaticString(",\"user_agent\":")
        buffer.writeJSONValue(userAgent)
        buffer.writeStaticString(",\"request_id\":")
        buffer.writeJSONValue(requestId)
        buffer.writeStaticString(",\"authority\":")
        buffer.writeJSONValue(authority)
        buffer.writeStaticString(",\"upstream_host\":")
        buffer.writeJSONValue(upstreamHost)
        buffer.writeStaticString(",\"upstream_cluster\":")
        buffer.writeJSONValue(upstreamCluster)
        buffer.writeStaticString(",\"upstream_local_address\":")
        buffer.writeJSONValue(upstreamLocalAddress)
        buffer.writeStaticString(",\"downstream_local_address\":")
        buffer.writeJSONValue(downstreamLocalAddress)
        buffer.writeStaticString(",\"downstream_remote_address\":")
        buffer.writeJSONValue(downstreamRemoteAddress)
        buffer.writeStaticString(",\"requested_server_name\":")
        buffer.writeJSONValue(requestedServerName)
        buffer.writeStaticString(",\"route_name\":")
        buffer.writeJSONValue(routeName)
        buffer.writeStaticString(",\"upstream_transport_failure_reason\":")
        buffer.writeJSONValue(upstreamTransportFailureReason)
        buffer.writeStaticString(",\"trace_id\":")
        buffer.writeJSONValue(traceId)
        buffer.writeStaticString(",\"istio_policy_status\":")
        buffer.writeJSONValue(istioPolicyStatus)
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// The record as one JSON line, ending in `\n`.
    public func jsonLine() -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: 768)
        appendLine(format: .json, to: &buffer)
        return String(buffer: buffer)
    }
}

extension ByteBuffer {
    /// Writes a quoted, escaped JSON string, or `null` for nil.
    mutating func writeJSONValue(_ value: String?) {
        guard let value else {
            writeStaticString("null")
            return
        }
        writeInteger(UInt8(ascii: "\""))
        writeJSONEscaped(value)
        writeInteger(UInt8(ascii: "\""))
    }
}

public import NIOCore

extension AccessLogRecord {
    /// Appends the record in Envoy's default text format, ending in `\n`:
    ///
    /// ```
    /// [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
    /// %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%
    /// "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%"
    /// "%UPSTREAM_HOST%"\n
    /// ```
    /// (one line; wrapped here). Like Envoy, absent or empty values print as `-`.
    /// Unlike Envoy, which copies header values raw, values are escaped as in JSON strings
    /// (`\"`, `\\`, `\n`, `\u00XX`) so that a hostile header can neither split the line nor
    /// forge a field.
    public func appendText(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "["))
        RFC3339.append(epochMilliseconds: startTime, to: &buffer)
        buffer.writeStaticString("] \"")
        buffer.writeTextValue(method)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeTextValue(path)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeTextValue(self.protocol)
        buffer.writeStaticString("\" ")
        buffer.writeDecimal(Int64(responseCode))
        buffer.writeInteger(UInt8(ascii: " "))
        responseFlags.appendEnvoyString(to: &buffer)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeDecimal(bytesReceived)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeDecimal(bytesSent)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeDecimal(duration)
        buffer.writeInteger(UInt8(ascii: " "))
        if let upstreamServiceTime {
            buffer.writeDecimal(upstreamServiceTime)
        } else {
            buffer.writeInteger(UInt8(ascii: "-"))
        }
        buffer.writeStaticString(" \"")
        buffer.writeTextValue(xForwardedFor)
        buffer.writeStaticString("\" \"")
        buffer.writeTextValue(userAgent)
        buffer.writeStaticString("\" \"")
        buffer.writeTextValue(requestId)
        buffer.writeStaticString("\" \"")
        buffer.writeTextValue(authority)
        buffer.writeStaticString("\" \"")
        buffer.writeTextValue(upstreamHost)
        buffer.writeStaticString("\"\n")
    }

    /// The record in Envoy's default text format, ending in `\n`.
    public func textLine() -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: 512)
        appendText(to: &buffer)
        return String(buffer: buffer)
    }
}

extension ByteBuffer {
    /// Writes an escaped value, or Envoy's `-` for a nil or empty one.
    mutating func writeTextValue(_ value: String?) {
        guard let value, !value.isEmpty else {
            writeInteger(UInt8(ascii: "-"))
            return
        }
        writeJSONEscaped(value)
    }
}

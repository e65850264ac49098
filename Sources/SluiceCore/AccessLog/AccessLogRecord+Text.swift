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
        var timestamps = RFC3339.SecondCache()
        appendText(to: &buffer, timestamps: &timestamps)
    }

    /// The same, for a writer of many lines: `timestamps` keeps the formatted second.
    public func appendText(to buffer: inout ByteBuffer, timestamps: inout RFC3339.SecondCache) {
        buffer.writeBounded(textBound) { w in
            w.write(UInt8(ascii: "["))
            RFC3339.write(epochMilliseconds: startTime, to: &w, cache: &timestamps)
            w.write("] \"")
            w.writeTextValue(method)
            w.write(UInt8(ascii: " "))
            w.writeTextValue(path)
            w.write(UInt8(ascii: " "))
            w.writeTextValue(self.protocol)
            w.write("\" ")
            w.writeDecimal(Int64(responseCode))
            w.write(UInt8(ascii: " "))
            responseFlags.write(to: &w)
            w.write(UInt8(ascii: " "))
            w.writeDecimal(bytesReceived)
            w.write(UInt8(ascii: " "))
            w.writeDecimal(bytesSent)
            w.write(UInt8(ascii: " "))
            w.writeDecimal(duration)
            w.write(UInt8(ascii: " "))
            if let upstreamServiceTime {
                w.writeDecimal(upstreamServiceTime)
            } else {
                w.write(UInt8(ascii: "-"))
            }
            w.write(" \"")
            w.writeTextValue(xForwardedFor)
            w.write("\" \"")
            w.writeTextValue(userAgent)
            w.write("\" \"")
            w.writeTextValue(requestID)
            w.write("\" \"")
            w.writeTextValue(authority)
            w.write("\" \"")
            w.writeTextValue(upstreamHost)
            w.write("\"\n")
        }
    }

    /// The record in Envoy's default text format, ending in `\n`.
    public func textLine() -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: textBound)
        appendText(to: &buffer)
        return String(buffer: buffer)
    }

    /// Most bytes `appendText` can write: punctuation, numbers and timestamp (under 256 bytes),
    /// the flags, and the eight strings escaped at worst.
    private var textBound: Int {
        func b(_ value: String?) -> Int { BoundedWriter.escapedBound(value) }
        return 256 + ResponseFlags.maxRenderedLength
            + b(method) + b(path) + b(self.protocol)
            + b(xForwardedFor) + b(userAgent) + BoundedWriter.escapedBound(requestID)
            + b(authority) + b(upstreamHost)
    }
}

/// What the proxy asks of a request head beyond its framing.
extension HTTP1Head {
    /// The protocol a request asks to switch to (`Connection: upgrade` + `Upgrade: X`); never
    /// for a CONNECT, whose target is the tunnel. `h2c` is not one: as Envoy does by default,
    /// the request goes on as HTTP/1.1 with `Upgrade` and `HTTP2-Settings` dropped (hop by
    /// hop), so no upgraded connection escapes the per-stream decisions (docs/http2.md).
    public var requestedUpgrade: String? {
        guard self.connectionUpgrade, let upgrade = self.upgrade, self.knownMethod != .connect else { return nil }
        let text = self.string(upgrade)
        return text.lowercased() == "h2c" ? nil : text
    }

    /// Every `x-forwarded-for` value the request carries, joined as one list.
    public var allForwardedFor: String {
        var values: [String] = []
        for field in self.fields where self.nameEquals(field, "x-forwarded-for") {
            values.append(self.string(field.value))
        }
        return values.joined(separator: ", ")
    }

    /// The request will send a body (or waits for `100-continue` before it does).
    public var announcesBody: Bool {
        self.expectContinue || self.hasTransferEncoding || (self.contentLength ?? 0) > 0
    }
}

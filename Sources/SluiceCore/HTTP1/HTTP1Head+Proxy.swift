/// What the proxy asks of a request head beyond its framing.
extension HTTP1Head {
    /// The protocol a request asks to switch to (`Connection: upgrade` + `Upgrade: X`); never
    /// for a CONNECT, whose target is the tunnel.
    public var requestedUpgrade: String? {
        guard self.connectionUpgrade, let upgrade = self.upgrade, self.knownMethod != .connect else { return nil }
        return self.string(upgrade)
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

extension HTTP1Head {
    /// The request as VirtualService http matches read it: the method, the path in origin
    /// form (an absolute-form target `http://host/p?q` gives `/p?q`) and header values by
    /// lower-cased name, looked up in the head's own bytes only when a match asks.
    public var requestView: HTTPRequestView {
        let head = self
        return HTTPRequestView(method: methodString, path: Self.originPath(string(target))) { name in
            var name = name
            return name.withUTF8 { wanted in
                head.bytes.withUnsafeReadableBytes { raw -> String? in
                    for field in head.fields where field.name.count == wanted.count {
                        var same = true
                        for offset in 0..<wanted.count {
                            let actual = raw[field.name.lowerBound + offset]
                            let lowered = (actual >= 0x41 && actual <= 0x5A) ? actual | 0x20 : actual
                            if lowered != wanted[offset] { same = false; break }
                        }
                        if same { return head.string(field.value) }
                    }
                    return nil
                }
            }
        }
    }

    /// The origin-form path of a request target: `*` and origin forms as they are, an
    /// absolute form without its scheme and authority (`/` when it has no path).
    public static func originPath(_ target: String) -> String {
        guard !target.hasPrefix("/"), let schemeEnd = target.range(of: "://") else { return target }
        let rest = target[schemeEnd.upperBound...]
        guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
        return rest[slash] == "?" ? "/" + rest[slash...] : String(rest[slash...])
    }
}

extension HTTP1Head {
    /// The request's fields as Envoy's RBAC filter presents `request.headers`: names
    /// lower-case, a repeated field's values joined with "," in the order sent. Built only
    /// when an AuthorizationPolicy is evaluated (it allocates a dictionary and its strings).
    public var lowercasedHeaders: [String: String] {
        var headers: [String: String] = [:]
        headers.reserveCapacity(fields.count)
        for field in fields {
            let name = string(field.name).lowercased()
            let value = string(field.value)
            if let existing = headers[name] {
                headers[name] = existing + "," + value
            } else {
                headers[name] = value
            }
        }
        return headers
    }
}

/// The per-route HTTP behaviours of a VirtualService `http` route, as plain values: what the
/// decision hands the data path (docs/configuration.md says which ones the HTTP path applies).

/// Istio's `StringMatch`: exact, prefix or RE2 regex (Swift's `Regex`, whole-string match as
/// Envoy's `safe_regex` does).
public enum StringMatch: Sendable, Equatable, CustomStringConvertible {
    case exact(String)
    case prefix(String)
    case regex(CompiledRegex)

    /// A regex match of `pattern`; nil when it does not compile.
    public static func regex(_ pattern: String) -> StringMatch? {
        CompiledRegex(pattern).map { .regex($0) }
    }

    /// Whether `value` matches.
    public func matches(_ value: String) -> Bool { matches(value[...]) }

    /// Whether `value` matches.
    public func matches(_ value: Substring) -> Bool {
        switch self {
        // Bytes, as Envoy compares them (String's == and hasPrefix compare canonically
        // equivalent Unicode as equal, and walk grapheme clusters to do it).
        case .exact(let text): return Self.compare(value, text, prefixOnly: false)
        case .prefix(let text): return Self.compare(value, text, prefixOnly: true)
        case .regex(let compiled): return compiled.wholeMatches(value)
        }
    }

    /// `value` equals `text`, or starts with it, byte for byte over contiguous UTF-8 (the
    /// generic `starts(with:)` over a Substring's UTF-8 view cost ~300 instructions a check).
    private static func compare(_ value: Substring, _ text: String, prefixOnly: Bool) -> Bool {
        var value = value
        var text = text
        return text.withUTF8 { wanted in
            value.withUTF8 { have in
                guard prefixOnly ? have.count >= wanted.count : have.count == wanted.count else { return false }
                return UnsafeBufferPointer(rebasing: have[..<wanted.count]).elementsEqual(wanted)
            }
        }
    }

    /// `exact: /a`, `prefix: /a`, `regex: /a.*`.
    public var description: String {
        switch self {
        case .exact(let text): return "exact: \(text)"
        case .prefix(let text): return "prefix: \(text)"
        case .regex(let compiled): return "regex: \(compiled.pattern)"
        }
    }
}

/// A regular expression compiled once, when the object is loaded (not per request).
///
/// The `Regex` lives in a class box: `Regex` comes from a resilient module, so held inline it
/// would give `StringMatch` (and every match struct holding one) a layout known only at run
/// time, and each copy or `if let` of a match would go through the runtime's value witnesses —
/// with 50 routes, most of a request's routing cost (Benchmarks/results/callgrind-keepalive-routes.txt).
public struct CompiledRegex: Sendable, Equatable {
    /// `@unchecked Sendable`: `Regex` is Sendable when its output is; `AnyRegexOutput` is not
    /// only because it can carry arbitrary captures, and this box never exposes them — it holds
    /// one immutable `Regex` and only asks whether a string matches.
    private final class Box: @unchecked Sendable {
        let regex: Regex<AnyRegexOutput>
        init(_ regex: Regex<AnyRegexOutput>) { self.regex = regex }
    }

    /// The pattern as written.
    public let pattern: String
    private let box: Box

    /// Compiles `pattern`; nil when it is not a valid expression.
    public init?(_ pattern: String) {
        guard let regex = try? Regex(pattern) else { return nil }
        self.pattern = pattern
        self.box = Box(regex)
    }

    /// Whether the whole of `value` matches (Envoy's `safe_regex` is a full match).
    public func wholeMatches(_ value: Substring) -> Bool {
        (try? box.regex.wholeMatch(in: value)) != nil
    }

    public static func == (lhs: CompiledRegex, rhs: CompiledRegex) -> Bool { lhs.pattern == rhs.pattern }
}

/// One `match` item of an http route. Conditions inside one item are ANDed; the items of a
/// route are ORed (VirtualService reference, HTTPMatchRequest).
public struct HTTPMatchRequest: Sendable, Equatable {
    /// `name`.
    public var name: String?
    /// `uri`.
    public var uri: StringMatch?
    /// `method`.
    public var method: StringMatch?
    /// `authority`.
    public var authority: StringMatch?
    /// `headers`, by lower-cased name.
    public var headers: [String: StringMatch] = [:]
    /// `port`.
    public var port: Int?
    /// `sourceLabels`: the client workload's labels must include these.
    public var sourceLabels: [String: String] = [:]
    /// `gateways`: overrides the VirtualService's `gateways` for this match.
    public var gateways: [String] = []
    /// `sourceNamespace`.
    public var sourceNamespace: String?

    /// Creates a match.
    public init(name: String? = nil, uri: StringMatch? = nil, method: StringMatch? = nil, authority: StringMatch? = nil,
                headers: [String: StringMatch] = [:], port: Int? = nil, sourceLabels: [String: String] = [:],
                gateways: [String] = [], sourceNamespace: String? = nil) {
        self.name = name
        self.uri = uri
        self.method = method
        self.authority = authority
        self.headers = headers
        self.port = port
        self.sourceLabels = sourceLabels
        self.gateways = gateways
        self.sourceNamespace = sourceNamespace
    }

    /// True when it looks at the request beyond its authority: the decision then depends on
    /// the request and cannot be cached per authority.
    public var dependsOnRequest: Bool { uri != nil || method != nil || !headers.isEmpty }
}

/// `retries` of an http route, with Envoy's meaning of `retryOn`.
public struct RetryPolicy: Sendable, Equatable {
    /// `attempts`: retries after the first try (Istio's default when unset is 2).
    public var attempts: Int
    /// `perTryTimeout`.
    public var perTryTimeout: Duration?
    /// `retryOn`, split at commas: Envoy's `x-envoy-retry-on` conditions (`5xx`,
    /// `gateway-error`, `reset`, `connect-failure`, `retriable-4xx`, `refused-stream`,
    /// `retriable-status-codes`) and bare status codes.
    public var retryOn: [String]

    /// Istio's default policy (pilot's `retry.DefaultPolicy()`), for a route without `retries`
    /// and for a registered host without a VirtualService (`BuildDefaultHTTPOutboundRoute`):
    /// 2 attempts on `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`
    /// with no retriable status code (pilot's EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY, true by
    /// default, leaves 503 out), so of what an HTTP/1 upstream can do only a connect failure
    /// is retried.
    public static let istioDefault = RetryPolicy(
        attempts: 2, perTryTimeout: nil,
        retryOn: ["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"])

    /// Creates a policy.
    public init(attempts: Int, perTryTimeout: Duration? = nil, retryOn: [String]) {
        self.attempts = attempts
        self.perTryTimeout = perTryTimeout
        self.retryOn = retryOn
    }

    /// What went wrong with one try.
    public enum Outcome: Sendable, Equatable {
        /// The upstream answered with this status.
        case status(Int)
        /// The connection could not be made.
        case connectFailure
        /// The connection was reset (or closed) before a response head arrived.
        case reset
    }

    /// Whether to retry after `outcome`, on try number `attempt` (1 = the first): within
    /// `attempts`, for a condition `retryOn` names as Envoy reads it (`5xx`: any 5xx, a reset
    /// or a connect failure; `gateway-error`: 502/503/504, a reset or a connect failure;
    /// `reset`; `connect-failure`; `retriable-4xx`: 409; a bare code), and only when the
    /// request may be sent again: not once its body has been (partly) streamed upstream (Envoy
    /// retries only what it still holds), and after a reset only for an idempotent method —
    /// Sluice's rule, since the server may have acted on it. A connect failure never reached
    /// the server, so any method may be retried.
    public func shouldRetry(after outcome: Outcome, attempt: Int, method: String, bodyAlreadySent: Bool) -> Bool {
        guard attempt <= attempts, !bodyAlreadySent else { return false }
        let on = Set(retryOn)
        switch outcome {
        case .connectFailure:
            return on.contains("connect-failure") || on.contains("5xx") || on.contains("gateway-error") || on.contains("reset")
        case .reset:
            guard Self.idempotentMethods.contains(method.uppercased()) else { return false }
            return on.contains("reset") || on.contains("5xx") || on.contains("gateway-error")
        case .status(let code):
            // Istio turns bare codes in retryOn into Envoy's retriable_status_codes.
            if on.contains(String(code)) { return true }
            if on.contains("5xx"), (500...599).contains(code) { return true }
            if on.contains("gateway-error"), [502, 503, 504].contains(code) { return true }
            if on.contains("retriable-4xx"), code == 409 { return true }
            return false
        }
    }

    /// True when a try that reached the server may be sent again (a reset or a status is
    /// among the conditions): only then are the request's bytes worth keeping. Istio's default
    /// retries connect failures alone, which resend nothing (the request is still queued).
    public var resendsSentRequests: Bool {
        retryOn.contains { condition in
            ["5xx", "gateway-error", "reset", "retriable-4xx"].contains(condition) || Int(condition) != nil
        }
    }

    /// RFC 9110 §9.2.2's idempotent methods.
    public static let idempotentMethods: Set<String> = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]
}

/// `headers.request` or `headers.response`: set, add, remove.
public struct HeaderOperations: Sendable, Equatable {
    /// `remove`: header names.
    public var remove: [String]

    /// A name and value.
    public struct Pair: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// `set`, in file order.
    public var setPairs: [Pair]
    /// `add`, in file order.
    public var addPairs: [Pair]

    /// Creates operations.
    public init(set: [Pair] = [], add: [Pair] = [], remove: [String] = []) {
        self.setPairs = set
        self.addPairs = add
        self.remove = remove
    }

    /// True when there is nothing to do.
    public var isEmpty: Bool { setPairs.isEmpty && addPairs.isEmpty && remove.isEmpty }
}

/// `rewrite`.
public struct HTTPRewrite: Sendable, Equatable {
    /// `uri`: replaces the matched prefix (or the whole path for an exact/regex match).
    public var uri: String?
    /// `authority`: the Host sent upstream.
    public var authority: String?

    public init(uri: String? = nil, authority: String? = nil) {
        self.uri = uri
        self.authority = authority
    }
}

/// `redirect`: answered locally with a Location.
public struct HTTPRedirect: Sendable, Equatable {
    public var uri: String?
    public var authority: String?
    public var port: Int?
    public var scheme: String?
    /// `redirectCode` (301 when unset).
    public var code: Int

    public init(uri: String? = nil, authority: String? = nil, port: Int? = nil, scheme: String? = nil, code: Int = 301) {
        self.uri = uri
        self.authority = authority
        self.port = port
        self.scheme = scheme
        self.code = code
    }
}

/// `fault`: delay and abort, each for a percentage of requests.
public struct HTTPFault: Sendable, Equatable {
    /// `delay.fixedDelay` and `delay.percentage.value` (100 when unset).
    public var delay: (duration: Duration, percent: Double)? {
        delayDuration.map { ($0, delayPercent) }
    }
    /// `abort.httpStatus` and `abort.percentage.value` (100 when unset).
    public var abort: (status: Int, percent: Double)? {
        abortStatus.map { ($0, abortPercent) }
    }

    public var delayDuration: Duration?
    public var delayPercent: Double
    public var abortStatus: Int?
    public var abortPercent: Double

    public init(delayDuration: Duration? = nil, delayPercent: Double = 100, abortStatus: Int? = nil, abortPercent: Double = 100) {
        self.delayDuration = delayDuration
        self.delayPercent = delayPercent
        self.abortStatus = abortStatus
        self.abortPercent = abortPercent
    }
}

/// Everything an http route asks of the data path besides where to go.
public struct HTTPRouteBehaviour: Sendable, Equatable {
    /// `timeout`: the whole request, retries included (Envoy's route timeout; Istio's default
    /// is none).
    public var timeout: Duration?
    /// `retries`; nil: Istio's default (`RetryPolicy.istioDefault`).
    public var retries: RetryPolicy?
    /// `headers.request`.
    public var requestHeaders = HeaderOperations()
    /// `headers.response`.
    public var responseHeaders = HeaderOperations()
    /// `rewrite`.
    public var rewrite: HTTPRewrite?
    /// `redirect`.
    public var redirect: HTTPRedirect?
    /// `fault`.
    public var fault: HTTPFault?

    public init() {}

    /// True when nothing is set.
    public var isEmpty: Bool { self == HTTPRouteBehaviour() }
}

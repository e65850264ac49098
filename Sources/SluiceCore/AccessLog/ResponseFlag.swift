import NIOCore

/// One of Envoy's response flags: what went wrong (or was special) about a request or connection.
///
/// The raw value is Envoy's bit position, so `allCases` is in Envoy's rendering order and
/// `%RESPONSE_FLAGS%` comes out exactly as an Envoy/ASM log reader expects.
public enum ResponseFlag: Int, CaseIterable, Sendable, Hashable {
    /// `LH`: the local service failed its health check.
    case failedLocalHealthCheck = 0
    /// `UH`: no healthy upstream host in the cluster.
    case noHealthyUpstream = 1
    /// `UT`: the upstream request timed out.
    case upstreamRequestTimeout = 2
    /// `LR`: the connection was reset locally.
    case localReset = 3
    /// `UR`: the upstream reset the connection.
    case upstreamRemoteReset = 4
    /// `UF`: connecting to the upstream failed.
    case upstreamConnectionFailure = 5
    /// `UC`: the upstream connection was terminated.
    case upstreamConnectionTermination = 6
    /// `UO`: upstream overflow (circuit breaking).
    case upstreamOverflow = 7
    /// `NR`: no route / not in the registry: the request was denied.
    case noRouteFound = 8
    /// `DI`: delayed by fault injection.
    case delayInjected = 9
    /// `FI`: aborted by fault injection.
    case faultInjected = 10
    /// `RL`: rate limited locally.
    case rateLimited = 11
    /// `UAEX`: denied by an external authorization service.
    case unauthorizedExternalService = 12
    /// `RLSE`: the rate limit service failed.
    case rateLimitServiceError = 13
    /// `DC`: the downstream connection was terminated.
    case downstreamConnectionTermination = 14
    /// `URX`: the retry limit (HTTP) or max connect attempts (TCP) was exceeded.
    case upstreamRetryLimitExceeded = 15
    /// `SI`: the stream idle timeout fired.
    case streamIdleTimeout = 16
    /// `IH`: invalid `x-envoy-*` request headers.
    case invalidEnvoyRequestHeaders = 17
    /// `DPE`: the downstream request had a protocol error (e.g. a bad HTTP head).
    case downstreamProtocolError = 18
    /// `UMSDR`: the upstream request reached its max stream duration.
    case upstreamMaxStreamDurationReached = 19
    /// `RFCF`: the response came from a cache filter.
    case responseFromCacheFilter = 20
    /// `NFCF`: no filter config was found in time.
    case noFilterConfigFound = 21
    /// `DT`: the request or connection exceeded its duration timeout.
    case durationTimeout = 22
    /// `UPE`: the upstream response had a protocol error.
    case upstreamProtocolError = 23
    /// `NC`: no cluster was found for the request.
    case noClusterFound = 24
    /// `OM`: the overload manager terminated the stream.
    case overloadManager = 25
    /// `DF`: DNS resolution of the upstream host failed.
    case dnsResolutionFailed = 26
    /// `DO`: dropped by overload drop policy.
    case dropOverload = 27
    /// `DR`: the downstream reset the stream.
    case downstreamRemoteReset = 28

    /// Envoy's short code for the flag, as `%RESPONSE_FLAGS%` prints it.
    public var shortCode: String { code.description }

    /// The short code as static bytes, for the encoders.
    var code: StaticString {
        switch self {
        case .failedLocalHealthCheck: "LH"
        case .noHealthyUpstream: "UH"
        case .upstreamRequestTimeout: "UT"
        case .localReset: "LR"
        case .upstreamRemoteReset: "UR"
        case .upstreamConnectionFailure: "UF"
        case .upstreamConnectionTermination: "UC"
        case .upstreamOverflow: "UO"
        case .noRouteFound: "NR"
        case .delayInjected: "DI"
        case .faultInjected: "FI"
        case .rateLimited: "RL"
        case .unauthorizedExternalService: "UAEX"
        case .rateLimitServiceError: "RLSE"
        case .downstreamConnectionTermination: "DC"
        case .upstreamRetryLimitExceeded: "URX"
        case .streamIdleTimeout: "SI"
        case .invalidEnvoyRequestHeaders: "IH"
        case .downstreamProtocolError: "DPE"
        case .upstreamMaxStreamDurationReached: "UMSDR"
        case .responseFromCacheFilter: "RFCF"
        case .noFilterConfigFound: "NFCF"
        case .durationTimeout: "DT"
        case .upstreamProtocolError: "UPE"
        case .noClusterFound: "NC"
        case .overloadManager: "OM"
        case .dnsResolutionFailed: "DF"
        case .dropOverload: "DO"
        case .downstreamRemoteReset: "DR"
        }
    }

    /// The flag with this Envoy short code (`"NR"` → `.noRouteFound`), or nil.
    public init?(shortCode: some StringProtocol) {
        guard let flag = Self.allCases.first(where: { $0.shortCode == shortCode }) else { return nil }
        self = flag
    }
}

/// The set of response flags on one access-log record; renders like Envoy's `%RESPONSE_FLAGS%`.
public struct ResponseFlags: OptionSet, Sendable, Hashable {
    /// One bit per `ResponseFlag`, at Envoy's bit position.
    public let rawValue: UInt32

    /// Wraps raw bits (Envoy's layout).
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The set holding just `flag`.
    public init(_ flag: ResponseFlag) { self.rawValue = 1 << UInt32(flag.rawValue) }

    /// `LH`: the local service failed its health check.
    public static let failedLocalHealthCheck = Self(.failedLocalHealthCheck)
    /// `UH`: no healthy upstream host in the cluster.
    public static let noHealthyUpstream = Self(.noHealthyUpstream)
    /// `UT`: the upstream request timed out.
    public static let upstreamRequestTimeout = Self(.upstreamRequestTimeout)
    /// `LR`: the connection was reset locally.
    public static let localReset = Self(.localReset)
    /// `UR`: the upstream reset the connection.
    public static let upstreamRemoteReset = Self(.upstreamRemoteReset)
    /// `UF`: connecting to the upstream failed.
    public static let upstreamConnectionFailure = Self(.upstreamConnectionFailure)
    /// `UC`: the upstream connection was terminated.
    public static let upstreamConnectionTermination = Self(.upstreamConnectionTermination)
    /// `UO`: upstream overflow (circuit breaking).
    public static let upstreamOverflow = Self(.upstreamOverflow)
    /// `NR`: no route / not in the registry: the request was denied.
    public static let noRouteFound = Self(.noRouteFound)
    /// `DI`: delayed by fault injection.
    public static let delayInjected = Self(.delayInjected)
    /// `FI`: aborted by fault injection.
    public static let faultInjected = Self(.faultInjected)
    /// `RL`: rate limited locally.
    public static let rateLimited = Self(.rateLimited)
    /// `UAEX`: denied by an external authorization service.
    public static let unauthorizedExternalService = Self(.unauthorizedExternalService)
    /// `RLSE`: the rate limit service failed.
    public static let rateLimitServiceError = Self(.rateLimitServiceError)
    /// `DC`: the downstream connection was terminated.
    public static let downstreamConnectionTermination = Self(.downstreamConnectionTermination)
    /// `URX`: the retry limit (HTTP) or max connect attempts (TCP) was exceeded.
    public static let upstreamRetryLimitExceeded = Self(.upstreamRetryLimitExceeded)
    /// `SI`: the stream idle timeout fired.
    public static let streamIdleTimeout = Self(.streamIdleTimeout)
    /// `IH`: invalid `x-envoy-*` request headers.
    public static let invalidEnvoyRequestHeaders = Self(.invalidEnvoyRequestHeaders)
    /// `DPE`: the downstream request had a protocol error.
    public static let downstreamProtocolError = Self(.downstreamProtocolError)
    /// `UMSDR`: the upstream request reached its max stream duration.
    public static let upstreamMaxStreamDurationReached = Self(.upstreamMaxStreamDurationReached)
    /// `RFCF`: the response came from a cache filter.
    public static let responseFromCacheFilter = Self(.responseFromCacheFilter)
    /// `NFCF`: no filter config was found in time.
    public static let noFilterConfigFound = Self(.noFilterConfigFound)
    /// `DT`: the request or connection exceeded its duration timeout.
    public static let durationTimeout = Self(.durationTimeout)
    /// `UPE`: the upstream response had a protocol error.
    public static let upstreamProtocolError = Self(.upstreamProtocolError)
    /// `NC`: no cluster was found for the request.
    public static let noClusterFound = Self(.noClusterFound)
    /// `OM`: the overload manager terminated the stream.
    public static let overloadManager = Self(.overloadManager)
    /// `DF`: DNS resolution of the upstream host failed.
    public static let dnsResolutionFailed = Self(.dnsResolutionFailed)
    /// `DO`: dropped by overload drop policy.
    public static let dropOverload = Self(.dropOverload)
    /// `DR`: the downstream reset the stream.
    public static let downstreamRemoteReset = Self(.downstreamRemoteReset)

    /// The flags in the set, in Envoy's order.
    public var flags: [ResponseFlag] {
        ResponseFlag.allCases.filter { rawValue & (1 << UInt32($0.rawValue)) != 0 }
    }

    /// Envoy's rendering: `-` when empty, else the short codes comma-joined in Envoy's order (`UF,URX`).
    public var envoyString: String {
        var buffer = ByteBufferAllocator().buffer(capacity: Self.maxRenderedLength)
        buffer.writeBounded(Self.maxRenderedLength) { write(to: &$0) }
        return String(buffer: buffer)
    }

    /// Longest rendering: every code (at most 5 bytes) and a comma after each.
    static let maxRenderedLength = ResponseFlag.allCases.count * 6

    /// Writes `envoyString` without building a String; used on the per-request log path.
    func write(to writer: inout BoundedWriter) {
        var first = true
        var bits = rawValue
        while bits != 0 {
            let position = bits.trailingZeroBitCount
            bits &= bits - 1
            // Bits past Envoy's known flags (from `init(rawValue:)`) have no code: skip them.
            guard let flag = ResponseFlag(rawValue: position) else { continue }
            if !first { writer.write(UInt8(ascii: ",")) }
            first = false
            writer.write(flag.code)
        }
        // Empty, or only unknown bits: Envoy's "no flags".
        if first { writer.write(UInt8(ascii: "-")) }
    }
}

extension ResponseFlags: CustomStringConvertible {
    /// Same as `envoyString`.
    public var description: String { envoyString }
}

/// The wait before each retry, as Envoy's router waits (Envoy "x-envoy-retry-on" / route
/// RetryPolicy `retry_back_off`, defaults Istio keeps: base 25 ms, max 250 ms): a fully
/// jittered exponential back-off — Envoy's JitteredExponentialBackOffStrategy draws the wait
/// uniformly below an interval that starts at the base and doubles after each retry, never
/// past the maximum.
public struct RetryBackOff: Sendable, Equatable {
    public static let envoyBase = Duration.milliseconds(25)
    public static let envoyMax = Duration.milliseconds(250)

    public let base: Duration
    public let maximum: Duration
    /// The bound of the next draw.
    public private(set) var interval: Duration

    public init(base: Duration = Self.envoyBase, maximum: Duration = Self.envoyMax) {
        self.base = base
        self.maximum = maximum
        self.interval = base
    }

    /// The wait before the next retry, given `sample` uniform in `0..<1`.
    public mutating func next(sample: Double) -> Duration {
        let bound = self.interval
        self.interval = self.interval > self.maximum / 2 ? self.maximum : self.interval * 2
        let clamped = min(max(sample, 0), 0.999_999)
        return min(bound * clamped, self.maximum)
    }
}

public import CoreMetrics
import Prometheus

extension ProxyMetrics {
    /// A swift-metrics factory that reports into this object's registry, so libraries that
    /// speak swift-metrics show up on `/stats/prometheus` too. Pass it to their metrics, or
    /// bootstrap the global `MetricsSystem` with it once in the executable (never in tests: a
    /// process can be bootstrapped only once, and tests build many runtimes).
    public var metricsFactory: any MetricsFactory {
        PrometheusMetricsFactory(registry: self.registry)
    }
}

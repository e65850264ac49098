/// The metric names Sluice exports. The `istio_*` ones are Istio's standard metrics, named and
/// labelled as Istio names them, so existing Istio / ASM dashboards and alerts work unchanged.
public enum MetricName {
    /// Counter: HTTP requests completed.
    public static let requestsTotal = "istio_requests_total"
    /// Histogram: HTTP request duration in milliseconds.
    public static let requestDuration = "istio_request_duration_milliseconds"
    /// Histogram: HTTP request body bytes received from downstream.
    public static let requestBytes = "istio_request_bytes"
    /// Histogram: HTTP response body bytes sent downstream.
    public static let responseBytes = "istio_response_bytes"
    /// Counter: TCP (TLS and opaque) connections opened.
    public static let tcpConnectionsOpened = "istio_tcp_connections_opened_total"
    /// Counter: TCP connections closed.
    public static let tcpConnectionsClosed = "istio_tcp_connections_closed_total"
    /// Counter: bytes sent downstream on TCP connections.
    public static let tcpSentBytes = "istio_tcp_sent_bytes_total"
    /// Counter: bytes received from downstream on TCP connections.
    public static let tcpReceivedBytes = "istio_tcp_received_bytes_total"

    /// Gauge: ServiceEntries in the registry in force.
    public static let registryServiceEntries = "sluice_registry_service_entries"
    /// Counter: config reloads, by `result` (`success` / `failure`).
    public static let configReloads = "sluice_config_reloads_total"
    /// Counter: registry objects rejected by a load (invalid, or in a file that did not parse);
    /// each keeps its last good version where it had one.
    public static let registryRejectedObjects = "sluice_registry_rejected_objects_total"
    /// Counter: would-be denials that audit mode let through, by `protocol` and `host` (the
    /// Host, SNI or address tried; capped, the rest `other`).
    public static let auditDenials = "sluice_audit_denials_total"
    /// Counter: requests a route's retry policy sent again, by `cluster` (Envoy's
    /// `cluster.<name>.upstream_rq_retry`).
    public static let upstreamRetries = "sluice_upstream_retries_total"
    /// Counter: protocol detection outcomes, by `outcome`.
    public static let sniff = "sluice_sniff_total"
    /// Counter: denied requests and connections, by `protocol`.
    public static let denied = "sluice_denied_total"
    /// Histogram: time to establish an upstream connection, in milliseconds.
    public static let upstreamConnectDuration = "sluice_upstream_connect_duration_milliseconds"
    /// Gauge: access-log lines dropped because the output could not keep up.
    public static let accessLogDroppedLines = "sluice_access_log_dropped_lines"
}

/// Histogram bucket bounds, Istio's defaults, so `histogram_quantile` over Sluice and Envoy
/// series can be combined.
public enum MetricBuckets {
    /// Istio's duration buckets, in milliseconds.
    public static let milliseconds: [Double] = [
        0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
        300_000, 600_000, 1_800_000, 3_600_000,
    ]
    /// Istio's byte-size buckets (powers of ten up to 1 GB).
    public static let bytes: [Double] = [1, 10, 100, 1000, 10000, 100_000, 1e6, 1e7, 1e8, 1e9]
}

/// Label names, as Istio spells them.
public enum MetricLabel {
    /// Envoy's cluster name (`outbound|80||aliyun.com`).
    public static let cluster = "cluster"
    /// `source` on the sidecar, `gateway` on the gateway.
    public static let reporter = "reporter"
    /// The destination's host as registered (`aliyun.com`), or the fixed cluster name.
    public static let destinationService = "destination_service"
    /// Same value as `destination_service`: a ServiceEntry host has no shorter name.
    public static let destinationServiceName = "destination_service_name"
    /// `http` or `tcp`.
    public static let requestProtocol = "request_protocol"
    /// The HTTP status sent downstream (`0` when none was).
    public static let responseCode = "response_code"
    /// Envoy's response flags (`-`, `NR`, `UF,URX`).
    public static let responseFlags = "response_flags"
    /// `success` / `failure` on `sluice_config_reloads_total`.
    public static let result = "result"
    /// The detected protocol on `sluice_sniff_total`.
    public static let outcome = "outcome"
    /// What was denied, on `sluice_denied_total`.
    public static let `protocol` = "protocol"
    /// The Host, SNI or address a would-be denial tried, on `sluice_audit_denials_total`.
    public static let host = "host"
    /// Gateway only: the caller's SPIFFE ID from its verified client certificate, or `unknown`.
    public static let sourcePrincipal = "source_principal"
    /// Gateway only: the namespace in the caller's SPIFFE ID (`ns/<namespace>/sa/...`), or `unknown`.
    public static let sourceWorkloadNamespace = "source_workload_namespace"
    /// Gateway only: `mutual_tls` when the caller presented a verified certificate, else `none`.
    public static let connectionSecurityPolicy = "connection_security_policy"
}

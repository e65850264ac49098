# shellcheck shell=bash
# DestinationRule traffic policy in the data path (issue 20, items 3 and 8), and a route's
# perTryTimeout: what Envoy applies per cluster, seen from the app and in the logs.
#
#  - connectionPool (Istio's "Circuit Breaking" task, no VirtualService: maxConnections 1,
#    http1MaxPendingRequests 1): of 4 parallel slow requests one is forwarded, one waits for
#    its connection, the others get Envoy's 503 UO with its body and response_code_details;
#  - loadBalancer ROUND_ROBIN over two STATIC endpoints: sequential requests alternate;
#  - outlierDetection: of two endpoints, the one answering 503 is ejected after
#    consecutive5xxErrors, after which every request goes to the healthy one; counted;
#  - retries.perTryTimeout: a try slower than it is abandoned and tried again; when the last
#    try is slow too, 504 UT;
#  - Istio's default retry policy on a registered host no VirtualService routes: a connect
#    failure is tried 3 times (2 retries), then 503 UF,URX; counted.
#
# The .test names exist only in the app namespace's hosts file; the endpoints are the
# origins' own addresses in sl-ext.

traffic_policy_hosts() {
	{
		echo "$UNREG_V4 limited.test balanced.test outlier.test slow.test refused.test"
		echo "$ALIYUN_V4 origin-a.ext.svc.cluster.local"
	} >>"/etc/netns/$NS_APP/hosts"
}

tp_record() { last_json_record "$ACCESS_LOG" "$1" "$2"; }
tp_field() { jq -r --arg f "$2" '.[$f] | if . == null then "null" else tostring end' <<<"$1"; }

connection_pool_overflows_with_uo() {
	local access i out=$E2E_TMP/overflow ok=0 uo=0 other=0 rec pids=()
	access=$(access_mark)
	# Four at once, each held 1.5 s by the origin: one connection, one pending, two overflow.
	# (Waited for by pid: a bare `wait` would wait for the origins too.)
	for i in 1 2 3 4; do
		ip netns exec "$NS_APP" curl -s -o "$out.$i.body" -w '%{http_code}' --max-time 10 \
			"http://limited.test/delay/1500" >"$out.$i.code" 2>/dev/null 9>&- &
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in 1 2 3 4; do
		case $(cat "$out.$i.code") in
		200) ok=$((ok + 1)) ;;
		503)
			uo=$((uo + 1))
			check_eq "overflow: Envoy's body" "upstream connect error or disconnect/reset before headers. reset reason: overflow" \
				"$(cat "$out.$i.body")"
			;;
		*) other=$((other + 1)) ;;
		esac
	done
	check "connectionPool 1/1: 4 parallel requests, the first and the pending one answered (got $ok 200, $uo 503, $other other)" \
		test "$ok" -eq 2 -a "$uo" -eq 2 -a "$other" -eq 0
	rec=$(tp_record "$access" '.authority == "limited.test" and .response_code == 503')
	check_eq "overflow: logged 503 UO with response_code_details" "503 UO upstream_reset_before_response_started{overflow}" \
		"$(tp_field "$rec" response_code) $(tp_field "$rec" response_flags) $(tp_field "$rec" response_code_details)"
	check_eq "overflow: upstream_cluster" "outbound|80||limited.test" "$(tp_field "$rec" upstream_cluster)"
	check_metric_reaches "overflow: counted in sluice_upstream_overflow_total{limit=pending}" sidecar 2 \
		sluice_upstream_overflow_total "cluster=outbound|80||limited.test" limit=pending
	# maxRequestsPerConnection 1: each request had its own upstream connection.
	check_eq "after the burst, a lone request is forwarded" 200 "$(app_status http://limited.test/ok)"
}

round_robin_alternates_between_endpoints() {
	local i body a=0 b=0 other=0
	for ((i = 0; i < 10; i++)); do
		body=$(app_curl http://balanced.test/)
		case $body in
		"origin=$ALIYUN_V4 host=balanced.test") a=$((a + 1)) ;;
		"origin=$STATIC_V4 host=balanced.test") b=$((b + 1)) ;;
		*) other=$((other + 1)) ;;
		esac
	done
	check_eq "ROUND_ROBIN: 10 sequential requests alternate, 5 to each endpoint (got $a and $b, $other other)" "5 5 0" "$a $b $other"
}

outlier_detection_ejects_the_failing_endpoint() {
	local access i body tail_ok=0 rec
	access=$(access_mark)
	# Round robin sends every other request to the failing endpoint: its second consecutive
	# 503 ejects it (consecutive5xxErrors 2), by the 4th request at the latest.
	for ((i = 0; i < 4; i++)); do
		app_curl -o /dev/null "http://outlier.test/fail-at/$STATIC_V4"
	done
	for ((i = 0; i < 6; i++)); do
		body=$(app_curl "http://outlier.test/fail-at/$STATIC_V4")
		[[ $body == "origin=$ALIYUN_V4 host=outlier.test" ]] && tail_ok=$((tail_ok + 1))
	done
	check_eq "outlierDetection: after the ejection all 6 requests go to the healthy endpoint" 6 "$tail_ok"
	rec=$(tp_record "$access" '.authority == "outlier.test" and .response_code == 503')
	check_eq "outlierDetection: the 503s came from the failing endpoint" "$STATIC_V4:80" "$(tp_field "$rec" upstream_host)"
	check_metric_reaches "outlierDetection: sluice_outlier_ejections_total{cluster=outbound|80||outlier.test}" sidecar 1 \
		sluice_outlier_ejections_total "cluster=outbound|80||outlier.test"
	check "outlierDetection: the ejection is logged" grep -qE 'endpoint=192.0.2.34:80 type=consecutive_5xx .*outlier endpoint ejected' "$SIDECAR_LOG"
}

per_try_timeout_retries_a_slow_try() {
	local access key=$RANDOM$RANDOM rec
	access=$(access_mark)
	check_eq "perTryTimeout 500ms: the 3 s first try is abandoned, the retry answers" \
		"slow-once=$key seen=2" "$(app_curl "http://slow.test/slow-once/$key")"
	rec=$(tp_record "$access" ".path == \"/slow-once/$key\"")
	check_eq "perTryTimeout: logged 200, route retried" "200 retried" \
		"$(tp_field "$rec" response_code) $(tp_field "$rec" route_name)"
	check_eq "perTryTimeout: when every try is slow, 504" 504 "$(app_status http://slow.test/delay/2000)"
	rec=$(tp_record "$access" '.path == "/delay/2000"')
	check "perTryTimeout: logged with flag UT (got $(tp_field "$rec" response_flags))" \
		grep -q UT <<<"$(tp_field "$rec" response_flags)"
}

default_route_retries_connect_failures() {
	local access rec
	access=$(access_mark)
	check_eq "default retries: a registered host without a VirtualService whose endpoint refuses answers 503" \
		503 "$(app_status http://refused.test/)"
	rec=$(tp_record "$access" '.authority == "refused.test"')
	check_eq "default retries: logged 503 UF,URX (Istio's default policy retried the connect failure until used up)" \
		"503 UF,URX" "$(tp_field "$rec" response_code) $(tp_field "$rec" response_flags)"
	check_metric_reaches "default retries: 2 retries in sluice_upstream_retries_total{cluster=outbound|80||refused.test}" sidecar 2 \
		sluice_upstream_retries_total "cluster=outbound|80||refused.test"
}

explain_and_check_show_the_applied_policy() {
	local config=$E2E_CONFIGS/traffic-policy/sidecar.yaml
	check_explain "explain: the policy of a destination no VirtualService routes, with Istio's defaults filled in" \
		'^trafficPolicy: DestinationRule default/limited: connectionPool\(maxConnections 1, http1MaxPendingRequests 1, .*maxRequestsPerConnection 1\), loadBalancer ROUND_ROBIN$' \
		"$config" http://limited.test/
	check_explain "explain: outlierDetection with its defaults" \
		'outlierDetection\(consecutive5xxErrors 2, consecutiveGatewayErrors 0, interval 1s, baseEjectionTime 180s, maxEjectionPercent 10\)' \
		"$config" http://outlier.test/
	local out
	out=$("$SLUICE_BIN" check --config "$config" 2>&1)
	check "check: the DestinationRules' note says connectionPool is applied to HTTP/1 requests and HTTP/2 streams" \
		grep -qE 'limited.yaml:[0-9]+: .*connectionPool applied to HTTP/1 requests, HTTP/2 streams and TCP/TLS connections' <<<"$out"
}

traffic_policy_cases() {
	run_case explain_and_check_show_the_applied_policy
	wants connection_pool_overflows_with_uo round_robin_alternates_between_endpoints \
		outlier_detection_ejects_the_failing_endpoint per_try_timeout_retries_a_slow_try \
		default_route_retries_connect_failures || return 0
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	traffic_policy_hosts
	scenario traffic-policy/sidecar.yaml \
		connection_pool_overflows_with_uo \
		round_robin_alternates_between_endpoints \
		outlier_detection_ejects_the_failing_endpoint \
		per_try_timeout_retries_a_slow_try \
		default_route_retries_connect_failures
}

traffic_policy_cases

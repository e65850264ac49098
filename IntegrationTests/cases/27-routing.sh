# shellcheck shell=bash disable=SC2034  # SCENARIO_GATEWAY_CONFIG is read by scenario (lib/cases.sh)
# Istio's routing objects applied end to end (issue 20): the YAML of Istio's "Egress
# Gateways" task, as the task applies it, with no egressGateway: block anywhere.
#
#  - the sidecar routes edition.cnn.com by the task's VirtualService (bound to mesh) to the
#    Kubernetes Service istio-egressgateway.istio-system.svc.cluster.local, which the app's
#    hosts file maps to the gateway (192.0.2.20), as the pod's DNS would;
#  - the gateway, started with --labels-file (istio=egressgateway), is selected by the task's
#    Gateway, and routes by the same VirtualService's gateway-bound route to edition.cnn.com,
#    which its hosts file maps to an origin;
#  - the same for the task's HTTPS passthrough variant (routed by SNI at both hops);
#  - a Sidecar resource's egressProxy takes unregistered traffic (ALLOW_ANY) to that proxy;
#  - a Sidecar resource hides a registered host from one namespace (--namespace restricted);
#  - a weighted split across two Services, chosen per connection;
#  - route behaviours chosen per request on one host: a redirect, a fault abort, the route
#    timeout (504 UT), 404 NR for a path no route matches, uri and authority rewrites, a
#    response header set, a retry after a reset of a GET and none for a POST;
#  - ASM's ASMEgressTrafficPolicy Example 1: sleep-a in mytest reaches www.httpbin.org through
#    egressgateway-a (its labels from --labels-file); another workload is blocked.
#
# edition.cnn.com exists only in these hosts files: nothing is resolved outside the test
# network. The origin answers 200 "origin=... host=..." (the real site would answer 301).

CNN_V4=$UNREG_V4 # the origin standing in for edition.cnn.com
EGRESS_SERVICE=istio-egressgateway.istio-system.svc.cluster.local
ASM_GATEWAY_SERVICE=egressgateway-a.istio-egress.svc.cluster.local

# routing_hosts: the names of the task, in the namespaces' hosts files (before any process
# starts: `ip netns exec` mounts them at exec).
routing_hosts() {
	{
		echo "$GW_V4 $EGRESS_SERVICE"
		echo "$CNN_V4 edition.cnn.com"
		echo "$GW_V4 $ASM_GATEWAY_SERVICE"
		echo "$CNN_V4 www.httpbin.org httpbin.org"
		echo "$UNREG_V4 split.test"
		echo "$UNREG_V4 behaviour.test"
		echo "$ALIYUN_V4 origin-a.ext.svc.cluster.local"
		echo "$STATIC_V4 origin-b.ext.svc.cluster.local"
	} >>"/etc/netns/$NS_APP/hosts"
	{
		echo "$CNN_V4 edition.cnn.com"
		echo "$CNN_V4 www.httpbin.org httpbin.org"
	} >>"/etc/netns/$NS_GW/hosts"
}

# routing_gateway CONFIG LABELS: the gateway with its labels, kept by `scenario --gateway CONFIG`.
routing_gateway() {
	local config
	config=$(config_path "$1")
	if ! start_gateway "$config" --labels-file "$E2E_CONFIGS/routing/$2" 2>"$E2E_TMP/start.err"; then
		fail "routing: sluice gateway started with $(config_name "$config") --labels-file $2" "$(cat "$E2E_TMP/start.err")"
		return 1
	fi
	SCENARIO_GATEWAY_CONFIG=$config
}

routing_sidecar_record() { last_json_record "$ACCESS_LOG" "$1" "$2"; }
routing_gateway_record() { last_json_record "$GATEWAY_ACCESS_LOG" "$1" "$2"; }
routing_field() { jq -r --arg f "$2" '.[$f] | if . == null then "null" else tostring end' <<<"$1"; }

task_http_leaves_through_the_gateway() {
	local mark access gw_access rec side body
	mark=$(origin_mark)
	access=$(access_mark)
	gw_access=$(gateway_access_mark)
	body=$(app_curl http://edition.cnn.com/politics)
	check_eq "Istio task (HTTP): curl http://edition.cnn.com/politics reaches the origin with its Host" \
		"origin=$CNN_V4 host=edition.cnn.com" "$body"
	rec=$(routing_gateway_record "$gw_access" '.authority == "edition.cnn.com" and .path == "/politics"')
	check_origin_reached_via "Istio task (HTTP): the origin was reached from the gateway ($GW_V4), not from the app" \
		"$mark" "$CNN_V4" 80 "$GW_V4" "$(routing_field "$rec" upstream_local_address)"
	check_eq "gateway log: upstream_cluster is the task's route to the host" "outbound|80||edition.cnn.com" \
		"$(routing_field "$rec" upstream_cluster)"
	check_eq "gateway log: route_name is the VirtualService route's (the task leaves it unnamed)" "" \
		"$(routing_field "$rec" route_name | sed 's/^-$//; s/^null$//')"
	check_eq "gateway log: response_code" 200 "$(routing_field "$rec" response_code)"
	side=$(routing_sidecar_record "$access" '.authority == "edition.cnn.com" and .path == "/politics"')
	check_eq "sidecar log: upstream_cluster names the gateway Service and the task's subset" \
		"outbound|80|cnn|$EGRESS_SERVICE" "$(routing_field "$side" upstream_cluster)"
	check_eq "sidecar log: upstream_host is the gateway" "$GW_V4:80" "$(routing_field "$side" upstream_host)"
}

task_gateway_routes_a_host_naming_another_port() {
	local mark
	mark=$(origin_mark)
	check_eq "Istio task (HTTP): Host: edition.cnn.com:8080 sent to the gateway's :80 is routed by the VirtualService (host:*)" \
		"origin=$CNN_V4 host=edition.cnn.com" \
		"$(ext curl -sS --max-time 5 -H 'Host: edition.cnn.com:8080' "http://$GW_V4/")"
	# (origin.py prints the Host without its port.)
	check_origin_peer "Istio task (HTTP): that request reached the origin's :80 from the gateway" "$mark" "$CNN_V4" 80 "$GW_V4"
}

task_unrouted_host_is_refused() {
	check_eq "Istio task (HTTP): an unregistered host is still 502 at the sidecar (REGISTRY_ONLY)" 502 \
		"$(app_status http://unregistered.test/)"
	check_eq "Istio task (HTTP): the gateway answers 404 (NR) for a host its Gateway's routes do not have" 404 \
		"$(ext curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: unregistered.test' "http://$GW_V4/")"
}

task_https_passes_through_by_sni() {
	local mark gw_access rec
	mark=$(origin_mark)
	gw_access=$(gateway_access_mark)
	# -k: the origin's test certificate does not name edition.cnn.com; routing is what is tested.
	check_eq "Istio task (HTTPS passthrough): curl -k https://edition.cnn.com/ reaches the origin" \
		"origin=$CNN_V4 host=edition.cnn.com" "$(app_curl -k https://edition.cnn.com/)"
	check_origin_peer "Istio task (HTTPS passthrough): the origin's :443 was reached from the gateway only" \
		"$mark" "$CNN_V4" 443 "$GW_V4"
	rec=$(routing_gateway_record "$gw_access" '.requested_server_name == "edition.cnn.com"')
	check_eq "gateway log: upstream_cluster is the task's tls route to the host" "outbound|443||edition.cnn.com" \
		"$(routing_field "$rec" upstream_cluster)"
}

egress_proxy_takes_unregistered_traffic() {
	local access gw_access side rec
	access=$(access_mark)
	gw_access=$(gateway_access_mark)
	# The proxy is the gateway, which has no route for unregistered.test: its 404 proves the
	# request went to the proxy, not to the original destination (which would answer 200).
	check_eq "egressProxy: curl http://unregistered.test/ goes to the Sidecar's egressProxy (the gateway answers 404 NR)" 404 \
		"$(app_status http://unregistered.test/)"
	side=$(routing_sidecar_record "$access" '.authority == "unregistered.test"')
	check_eq "sidecar log: upstream_cluster is the egressProxy's" "outbound|80||$EGRESS_SERVICE" "$(routing_field "$side" upstream_cluster)"
	check_eq "sidecar log: route_name is Istio's catch-all allow_any" allow_any "$(routing_field "$side" route_name)"
	rec=$(routing_gateway_record "$gw_access" '.authority == "unregistered.test"')
	check_eq "gateway log: the proxied request arrived with its Host and got NR" "404 NR" \
		"$(routing_field "$rec" response_code) $(routing_field "$rec" response_flags)"
}

sidecar_resource_hides_a_host_from_its_namespace() {
	check_eq "Sidecar: from namespace restricted, aliyun.com (registered in default, not imported) is 502" 502 \
		"$(app_status http://aliyun.com/)"
}

registered_host_visible_elsewhere() {
	check_eq "Sidecar: from namespace default, the same registry lets aliyun.com through (301)" 301 \
		"$(app_status -I http://aliyun.com/)"
}

asm_sleep_a_reaches_httpbin_through_the_gateway() {
	local mark access side
	mark=$(origin_mark)
	access=$(access_mark)
	check_eq "ASM: sleep-a (mytest) gets http://www.httpbin.org/ from the origin" \
		"origin=$CNN_V4 host=www.httpbin.org" "$(app_curl http://www.httpbin.org/)"
	check_origin_peer "ASM: the origin was reached from egressgateway-a ($GW_V4), not from the app" "$mark" "$CNN_V4" 80 "$GW_V4"
	side=$(routing_sidecar_record "$access" '.authority == "www.httpbin.org"')
	check_eq "ASM: sidecar log: upstream_cluster is the gateway Service on byEgressGateway.port" \
		"outbound|80||$ASM_GATEWAY_SERVICE" "$(routing_field "$side" upstream_cluster)"
	check_eq "ASM: sidecar log: route_name is the to[] name" httpbin-service-http "$(routing_field "$side" route_name)"
}

asm_other_workload_is_blocked() {
	check_eq "ASM: a workload of mytest that no egressRules.from selects gets 502 for httpbin.org (BlackHoleCluster)" 502 \
		"$(app_status http://httpbin.org/)"
}

weighted_split_reaches_both_services() {
	local i body a=0 b=0 other=0
	# Each curl is a new connection, and so a new decision (the HTTP path caches one per
	# authority on a connection). 60 tries at 50/50: fewer than 10 on a side is ~1e-8.
	for ((i = 0; i < 60; i++)); do
		body=$(app_curl http://split.test/)
		case $body in
		"origin=$ALIYUN_V4 host=split.test") a=$((a + 1)) ;;
		"origin=$STATIC_V4 host=split.test") b=$((b + 1)) ;;
		*) other=$((other + 1)) ;;
		esac
	done
	check_eq "weighted split: 60 requests for split.test all reach one of the two Services" 0 "$other"
	check "weighted split: each 50% destination got at least 10 of 60 (got $a and $b)" test "$a" -ge 10 -a "$b" -ge 10
}

route_behaviours_apply_per_request() {
	local access rec headers
	access=$(access_mark)
	headers=$(app_curl -s -o /dev/null -D - "http://behaviour.test/v1/items?q=1" | tr -d '\r')
	check "redirect: 301 with Envoy's Location (authority and path replaced, query kept)" \
		grep -qix 'location: http://new.behaviour.test/v2/?q=1' <<<"$headers"
	check "redirect: the status is 301" grep -q '^HTTP/1.1 301 ' <<<"$headers"
	check_eq "fault abort: Envoy's body" "fault filter abort" "$(app_curl http://behaviour.test/broken)"
	rec=$(routing_sidecar_record "$access" '.path == "/broken"')
	check_eq "fault abort: logged as 418 with flag FI and the route's name" "418 FI broken" \
		"$(routing_field "$rec" response_code) $(routing_field "$rec" response_flags) $(routing_field "$rec" route_name)"
	check_eq "route timeout 500ms: /delay/3000 gets 504" 504 "$(app_status http://behaviour.test/delay/3000)"
	rec=$(routing_sidecar_record "$access" '.path == "/delay/3000"')
	check_eq "route timeout: logged with flag UT" UT "$(routing_field "$rec" response_flags)"
	check_eq "a request within the route timeout is forwarded" "delayed=10" "$(app_curl http://behaviour.test/delay/10)"
	check_eq "a path no route matches gets 404 (NR)" 404 "$(app_status http://behaviour.test/nowhere)"
	check_eq "the /ok route forwards" 200 "$(app_status http://behaviour.test/ok)"
	local key=$RANDOM$RANDOM
	check_eq "retries (reset): a GET the origin resets once is sent again and answered" \
		"reset-once=get-$key seen=2" "$(app_curl "http://behaviour.test/reset-once/get-$key")"
	check_metric_reaches "retries: counted in sluice_upstream_retries_total{cluster=outbound|80||origin-a...}" sidecar 1 \
		sluice_upstream_retries_total "cluster=outbound|80||origin-a.ext.svc.cluster.local"
	check_eq "retries: a POST whose bytes reached the origin is not sent again (503)" 503 \
		"$(app_status -X POST --data hi "http://behaviour.test/reset-once/post-$key")"
	check_eq "retries: the origin saw that POST once" "reset-once=post-$key seen=2" \
		"$(app_curl "http://behaviour.test/reset-once/post-$key")"
	check_eq "rewrite: the origin gets / with Host renamed.test" "origin=$ALIYUN_V4 host=renamed.test" \
		"$(app_curl http://behaviour.test/renamed)"
	check "headers.response.set: the app gets x-route: renamed" \
		grep -qix 'x-route: renamed' <<<"$(app_curl -s -o /dev/null -D - http://behaviour.test/renamed | tr -d '\r')"
}

# routing_explain_says DESC PATTERN CONFIG ARGS...: `sluice explain --config CONFIG ARGS` prints
# a line matching PATTERN.
routing_explain_says() { # DESC PATTERN CONFIG EXPLAIN_ARGS...: check_explain on routing/CONFIG
	check_explain "$1" "$2" "$E2E_CONFIGS/routing/$3" "${@:4}"
}

explain_shows_the_route_and_why() {
	routing_explain_says "explain: the sidecar's route is the task's VirtualService, http[0] match[0]" \
		'^routed by: +VirtualService default/direct-cnn-through-egress-gateway \(.*egress-gateway-http.yaml:[0-9]+\) http\[0\] match\[0\]$' \
		sidecar-http.yaml http://edition.cnn.com/politics
	routing_explain_says "explain: the sidecar's cluster names the gateway Service and subset" \
		"^cluster: +outbound\\|80\\|cnn\\|$EGRESS_SERVICE\$" sidecar-http.yaml http://edition.cnn.com/
	routing_explain_says "explain --role gateway --labels-file: the gateway's route is http[1]" \
		'^routed by: .* http\[1\] match\[0\]$' gateway-http.yaml --role gateway \
		--labels-file "$E2E_CONFIGS/routing/gateway-labels" http://edition.cnn.com/
	routing_explain_says "explain --role gateway without the labels: no Gateway selects it, the registry decides" \
		'^route: +edition.cnn.com:80$' gateway-http.yaml --role gateway http://edition.cnn.com/
}

routing_cases() {
	run_case explain_shows_the_route_and_why
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	routing_hosts
	local config variant
	for variant in http https; do
		config=$(config_path "routing/gateway-$variant.yaml")
		if [[ $variant == http ]]; then
			wants task_http_leaves_through_the_gateway task_gateway_routes_a_host_naming_another_port \
				task_unrouted_host_is_refused egress_proxy_takes_unregistered_traffic || continue
		else
			wants task_https_passes_through_by_sni || continue
		fi
		# The gateway needs its labels: started here with --labels-file, and kept by
		# `scenario --gateway` with the same config.
		routing_gateway "routing/gateway-$variant.yaml" gateway-labels || continue
		if [[ $variant == http ]]; then
			scenario --gateway "$config" "routing/sidecar-http.yaml" \
				task_http_leaves_through_the_gateway \
				task_gateway_routes_a_host_naming_another_port \
				task_unrouted_host_is_refused
			scenario --gateway "$config" "routing/sidecar-egress-proxy.yaml" \
				egress_proxy_takes_unregistered_traffic
		else
			scenario --gateway "$config" "routing/sidecar-https.yaml" \
				task_https_passes_through_by_sni
		fi
	done
	# Who the pod is comes from POD_NAMESPACE here (the --namespace flag's variable).
	export POD_NAMESPACE=restricted
	scenario routing/sidecar-hidden.yaml sidecar_resource_hides_a_host_from_its_namespace
	unset POD_NAMESPACE
	scenario routing/sidecar-hidden.yaml registered_host_visible_elsewhere

	scenario routing/sidecar-weighted.yaml weighted_split_reaches_both_services
	scenario routing/sidecar-behaviour.yaml route_behaviours_apply_per_request

	# ASM: the pod's namespace and labels from POD_NAMESPACE / POD_LABELS_FILE.
	if wants asm_sleep_a_reaches_httpbin_through_the_gateway asm_other_workload_is_blocked &&
		routing_gateway routing/gateway-asm.yaml gateway-asm-labels; then
		export POD_NAMESPACE=mytest POD_LABELS_FILE=$E2E_CONFIGS/routing/sleep-a-labels
		scenario --gateway routing/gateway-asm.yaml routing/sidecar-asm.yaml asm_sleep_a_reaches_httpbin_through_the_gateway
		unset POD_LABELS_FILE
		scenario --gateway routing/gateway-asm.yaml routing/sidecar-asm.yaml asm_other_workload_is_blocked
		unset POD_NAMESPACE
	fi
}

routing_cases

# shellcheck shell=bash
# Operating Sluice end to end: what an operator sees of a running sidecar and
# gateway — readiness, Prometheus metrics, the admin port, hot reload (file
# change, ConfigMap symlink swap, SIGHUP, an invalid change), graceful drain on
# SIGTERM, and `sluice check` / `sluice explain`.
#
# Sourced by scripts/e2e after IntegrationTests/lib.sh, on a fresh test network.
# The sidecar runs on a scratch copy of IntegrationTests/configs/ops/ (the cases edit
# its registry while it runs); the copy lives outside $E2E_TMP because the
# sidecar runs as uid 1337 and $E2E_TMP is root's alone. Every case is a
# function named after what the operator sees; they run in order against one
# sidecar, because the reload cases build on each other's registry.

OPS_CONFIGS=$E2E_CONFIGS/ops
OPS_DIR= # the scratch copy; see ops_setup
OPS_BIG=536870912 # 512 MiB, downloaded while the registry changes
OPS_RATE=100M     # curl --limit-rate for it: about 5 s, so the reload happens mid-download
DENIED_N=5
RANDOM_HOSTS=50

ops_pid_gone() { ! pid_running "$1"; }

sidecar_log_mark() { wc -l <"$SIDECAR_LOG"; }
sidecar_log_since() { tail -n +"$(($1 + 1))" "$SIDECAR_LOG"; }
_sidecar_logged() { sidecar_log_since "$1" | grep -qF -- "$2"; }

# ready_status NS [ADDRESS]: the status code of GET /healthz/ready on :15021,
# asked from inside NS ("000" when nothing answered).
ready_status() {
	ip netns exec "$1" curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://${2:-127.0.0.1}:15021/healthz/ready"
}

# admin ARGS...: curl to the sidecar's admin port from inside the pod.
admin() { app curl -sS --max-time 5 "$@"; }

# destination_services: the distinct destination_service values of
# istio_requests_total in the sidecar's scrape, one a line.
destination_services() {
	sidecar_scrape | grep '^istio_requests_total{' | grep -o 'destination_service="[^"]*"' | sort -u
}

# ops_setup: the scratch copy, with configmap/ laid out as kubelet mounts a
# ConfigMap: the data in ..2026_a/, ..data -> ..2026_a, static.yaml -> ..data/static.yaml.
ops_setup() {
	OPS_DIR=$(mktemp -d /tmp/sluice-e2e-ops.XXXXXX) || return 1
	cp -r "$OPS_CONFIGS/." "$OPS_DIR/" &&
		mkdir "$OPS_DIR/configmap" "$OPS_DIR/configmap/..2026_a" &&
		cp "$OPS_CONFIGS/configmap-data/a/static.yaml" "$OPS_DIR/configmap/..2026_a/" &&
		ln -s ..2026_a "$OPS_DIR/configmap/..data" &&
		ln -s ..data/static.yaml "$OPS_DIR/configmap/static.yaml" &&
		chown -R "$PROXY_UID:$PROXY_UID" "$OPS_DIR" && chmod 755 "$OPS_DIR"
}

ops_teardown() {
	[[ -n $OPS_DIR && -d $OPS_DIR ]] && rm -rf "$OPS_DIR"
	OPS_DIR=
}

# ops_put SOURCE DEST: place a registry file the way a deployment tool does,
# atomically (written next to it under another directory, then renamed), so the
# watcher never sees half a file.
ops_put() {
	cp "$1" "$OPS_DIR/later/.incoming" && chown "$PROXY_UID:$PROXY_UID" "$OPS_DIR/later/.incoming" &&
		mv -f "$OPS_DIR/later/.incoming" "$2"
}

# --- readiness -------------------------------------------------------------------

readiness_ready_once_listening() {
	check_eq "readiness: GET /healthz/ready inside the pod answers 200" 200 "$(ready_status "$NS_APP")"
	check_eq "readiness: its body is 'ready'" ready \
		"$(app curl -s --max-time 2 http://127.0.0.1:15021/healthz/ready)"
	check_eq "readiness: the kubelet's probe from outside the pod ($APP_V4:15021) answers 200" 200 \
		"$(ready_status "$NS_EXT" "$APP_V4")"
}

# --- metrics -------------------------------------------------------------------

# Labelled metrics appear with their first sample: this runs after the
# requests of the cases before it.
metrics_endpoint_lists_istio_and_sluice_metrics() {
	local text name missing=
	text=$(sidecar_scrape)
	for name in istio_requests_total istio_request_duration_milliseconds istio_request_bytes \
		istio_response_bytes sluice_registry_service_entries sluice_config_reloads_total \
		sluice_sniff_total sluice_denied_total sluice_upstream_connect_duration_milliseconds \
		sluice_access_log_dropped_lines; do
		grep -q "^# TYPE $name " <<<"$text" || missing+=" $name"
	done
	if [[ -z $missing ]]; then
		pass "metrics: /stats/prometheus declares Istio's request metrics and Sluice's own"
	else
		fail "metrics: /stats/prometheus declares Istio's request metrics and Sluice's own" "missing:$missing"
		indent "$(grep '^# TYPE' <<<"$text")"
	fi
	check_eq "metrics: sluice_registry_service_entries is 3 (aliyun-http, tcp-echo, the ConfigMap's static-backend)" 3 \
		"$(metric_value sluice_registry_service_entries <<<"$text")"
	check_eq "metrics: a scraper outside the pod ($APP_V4:15090) gets the same endpoint" 200 \
		"$(ext curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$APP_V4:15090/stats/prometheus")"
}

metrics_count_denied_requests() {
	local before_req before_denied i codes=
	before_req=$(sidecar_metric istio_requests_total response_code=502 destination_service=BlackHoleCluster)
	before_denied=$(sidecar_metric sluice_denied_total protocol=http)
	for ((i = 0; i < DENIED_N; i++)); do
		codes+="$(app_status -I http://unregistered.test/) "
	done
	check_eq "metrics: $DENIED_N requests to unregistered.test are denied with 502" \
		"$(printf '502 %.0s' $(seq "$DENIED_N"))" "$codes"
	check_metric_reaches "metrics: istio_requests_total{destination_service=\"BlackHoleCluster\",response_code=\"502\"} grew by $DENIED_N" \
		sidecar $((${before_req:-0} + DENIED_N)) istio_requests_total \
		reporter=source destination_service=BlackHoleCluster response_code=502 request_protocol=http
	check_metric_reaches "metrics: sluice_denied_total{protocol=\"http\"} grew by $DENIED_N" \
		sidecar $((${before_denied:-0} + DENIED_N)) sluice_denied_total protocol=http
}

metrics_registered_host_series() {
	local before
	before=$(sidecar_metric istio_requests_total destination_service=aliyun.com response_code=301)
	check_eq "metrics: curl -sI http://aliyun.com answers 301" 301 "$(app_status -I http://aliyun.com/)"
	check_metric_reaches "metrics: istio_requests_total{reporter=\"source\",destination_service=\"aliyun.com\",response_code=\"301\"} counts it" \
		sidecar $((${before:-0} + 1)) istio_requests_total reporter=source destination_service=aliyun.com \
		destination_service_name=aliyun.com request_protocol=http response_code=301
	check_metric_reaches "metrics: istio_request_duration_milliseconds has a sample for it" \
		sidecar 1 istio_request_duration_milliseconds_count destination_service=aliyun.com response_code=301
}

metrics_random_hosts_do_not_grow_labels() {
	local before after i codes
	before=$(destination_services)
	for ((i = 0; i < RANDOM_HOSTS; i++)); do
		app curl -s -o /dev/null --max-time 5 -H "Host: r$RANDOM$i.example.test" "http://$UNREG_V4/"
	done
	# The last request must be counted before the labels are compared.
	sleep 0.5
	after=$(destination_services)
	codes=$(($(wc -l <<<"$after") - $(wc -l <<<"$before")))
	if ((codes <= 1)); then
		pass "metrics: $RANDOM_HOSTS random Host names add at most 1 destination_service value (added $codes)"
	else
		fail "metrics: $RANDOM_HOSTS random Host names add at most 1 destination_service value" \
			"added $codes; before: $(paste -sd' ' <<<"$before"); after:"
		indent "$after"
	fi
	if grep -q 'example\.test' <<<"$(sidecar_scrape)"; then
		fail "metrics: no label anywhere carries a client-sent Host" \
			"$(sidecar_scrape | grep 'example\.test' | head -n 5)"
	else
		pass "metrics: no label anywhere carries a client-sent Host"
	fi
}

# --- admin -----------------------------------------------------------------------

admin_not_reachable_from_outside() {
	local out rc
	out=$(ext curl -sS --max-time 5 "http://$APP_V4:15000/" 2>&1)
	rc=$?
	if ((rc == 7)); then
		pass "admin: curl http://$APP_V4:15000/ from $NS_EXT is refused (curl exit 7)"
	else
		fail "admin: curl http://$APP_V4:15000/ from $NS_EXT is refused (curl exit 7)" "exit $rc: $out"
	fi
	check "admin: inside the pod, / lists the admin commands" \
		bash -c "ip netns exec $NS_APP curl -sS --max-time 5 http://127.0.0.1:15000/ | grep -q config_dump"
}

admin_config_dump_is_json() {
	local dump
	dump=$(admin http://127.0.0.1:15000/config_dump)
	check "admin: /config_dump is JSON that jq parses" jq -e 'type == "object"' <<<"$dump"
	check_eq "admin: /config_dump names the ServiceEntries in force" "aliyun-http static-backend tcp-echo" \
		"$(jq -r '[.registry.serviceEntries[].name] | sort | join(" ")' <<<"$dump" 2>&1)"
	check_eq "admin: /config_dump shows the mode" REGISTRY_ONLY \
		"$(jq -r '.config.outboundTrafficPolicy.mode' <<<"$dump" 2>&1)"
	check "admin: /config_dump gives each entry's source file:line" \
		jq -e '[.registry.serviceEntries[] | select(.name == "aliyun-http") | .source][0] | test("registry/aliyun-http.yaml:[0-9]+$")' <<<"$dump"
}

admin_stats_plain_text() {
	local stats
	stats=$(admin http://127.0.0.1:15000/stats)
	check "admin: /stats has 'sluice_denied_total{protocol=\"http\"}: N' lines" \
		grep -qE '^sluice_denied_total\{protocol="http"\}: [0-9]+$' <<<"$stats"
}

admin_logging_level_changes() {
	local mark
	check_eq "admin: POST /logging?level=debug answers the new level" "level: debug" \
		"$(admin -X POST 'http://127.0.0.1:15000/logging?level=debug')"
	check_eq "admin: GET /logging then shows debug" "level: debug" "$(admin http://127.0.0.1:15000/logging)"
	# A level above info hides the "denied" info line; back at info it is there.
	check_eq "admin: GET /logging?level=warning answers the new level" "level: warning" \
		"$(admin 'http://127.0.0.1:15000/logging?level=warning')"
	mark=$(sidecar_log_mark)
	app_status -I http://unregistered.test/ >/dev/null
	sleep 0.3
	if _sidecar_logged "$mark" "denied http unregistered.test"; then
		fail "admin: at level warning a denied request logs no info line" "$(sidecar_log_since "$mark")"
	else
		pass "admin: at level warning a denied request logs no info line"
	fi
	check_eq "admin: /logging?level=info sets it back" "level: info" \
		"$(admin -X POST 'http://127.0.0.1:15000/logging?level=info')"
	mark=$(sidecar_log_mark)
	app_status -I http://unregistered.test/ >/dev/null
	if wait_until 2 _sidecar_logged "$mark" "denied http unregistered.test"; then
		pass "admin: at level info the denied request is logged again"
	else
		fail "admin: at level info the denied request is logged again" "$(sidecar_log_since "$mark")"
	fi
}

# --- hot reload --------------------------------------------------------------------

_unregistered_allowed() { [[ $(app_status http://unregistered.test/) == 200 ]]; }

hot_reload_during_large_download() {
	local before after dl_pid start_ms took_ms still_running=no want rc
	before=$(sidecar_metric sluice_config_reloads_total result=success)
	want=$(python3 "$E2E_DIR/client.py" pattern-sha256 "$OPS_BIG")
	check_eq "hot reload: before the change, http://unregistered.test is denied (502)" 502 \
		"$(app_status http://unregistered.test/)"
	# The download: ip netns exec directly so $! is the process to wait for.
	# shellcheck disable=SC2016 # expanded by that inner bash
	ip netns exec "$NS_APP" bash -c 'curl -sS --max-time 60 --limit-rate "$1" "$2" | sha256sum >"$3.sha"
		echo "${PIPESTATUS[0]}" >"$3.rc"' _ "$OPS_RATE" "http://aliyun.com/bytes/$OPS_BIG" "$E2E_TMP/ops-download" \
		2>"$E2E_TMP/ops-download.err" 9>&- &
	dl_pid=$!
	record_pid "$dl_pid"
	sleep 1
	start_ms=$(date +%s%3N)
	ops_put "$OPS_DIR/later/unregistered.yaml" "$OPS_DIR/registry/unregistered.yaml"
	if wait_until 2 _unregistered_allowed; then
		took_ms=$(($(date +%s%3N) - start_ms))
		pid_running "$dl_pid" && still_running=yes
		pass "hot reload: a ServiceEntry file added to registry/ lets http://unregistered.test through within 2 s (${took_ms} ms)"
	else
		fail "hot reload: a ServiceEntry file added to registry/ lets http://unregistered.test through within 2 s" \
			"still $(app_status http://unregistered.test/); stderr:"
		indent "$(tail -n 5 "$SIDECAR_LOG")"
	fi
	check_eq "hot reload: the 512 MiB download was still in flight when the new host worked" yes "$still_running"
	wait_until 70 ops_pid_gone "$dl_pid"
	kill_pid "$dl_pid"
	rc=$(cat "$E2E_TMP/ops-download.rc" 2>/dev/null)
	check_eq "hot reload: the download through the reload ends with curl exit 0" 0 "$rc"
	check_eq "hot reload: the download has the origin's sha256 (512 MiB, not a byte lost)" "$want" \
		"$(cut -d' ' -f1 "$E2E_TMP/ops-download.sha" 2>/dev/null)"
	[[ $rc == 0 ]] || indent "$(cat "$E2E_TMP/ops-download.err")"
	after=$(sidecar_metric sluice_config_reloads_total result=success)
	if [[ -n $after ]] && ((after > ${before:-0})); then
		pass "hot reload: sluice_config_reloads_total{result=\"success\"} increased ($before → $after)"
	else
		fail "hot reload: sluice_config_reloads_total{result=\"success\"} increased" "$before → $after"
	fi
	check "hot reload: the log says 'config reloaded (file change)'" \
		grep -qF "config reloaded (file change)" "$SIDECAR_LOG"
}

_static_served_by() { [[ $(app_curl --resolve "static.test:80:$UNREG_V4" http://static.test/) == "origin=$1 host=static.test" ]]; }

configmap_symlink_swap_applies() {
	local cm=$OPS_DIR/configmap
	check "ConfigMap: static.test is served by its endpoint $STATIC_V4 (version a)" _static_served_by "$STATIC_V4"
	# What kubelet does: the new version in a new timestamped directory, then
	# ..data swapped to it in one rename; static.yaml itself never changes.
	mkdir "$cm/..2026_b" && cp "$OPS_CONFIGS/configmap-data/b/static.yaml" "$cm/..2026_b/" &&
		chown -R "$PROXY_UID:$PROXY_UID" "$cm/..2026_b" &&
		ln -sfn ..2026_b "$cm/..data_tmp" && chown -h "$PROXY_UID:$PROXY_UID" "$cm/..data_tmp" &&
		mv -T "$cm/..data_tmp" "$cm/..data" && rm -rf "$cm/..2026_a"
	if wait_until 2 _static_served_by "$TCP_V4"; then
		pass "ConfigMap: after the ..data swap, static.test goes to the new endpoint $TCP_V4 within 2 s"
	else
		fail "ConfigMap: after the ..data swap, static.test goes to the new endpoint $TCP_V4 within 2 s" \
			"got: $(app_curl --resolve "static.test:80:$UNREG_V4" http://static.test/ 2>&1)"
		indent "$(ls -la "$cm"; tail -n 5 "$SIDECAR_LOG")"
	fi
	check_eq "ConfigMap: /config_dump shows the new endpoint" "$TCP_V4" \
		"$(admin http://127.0.0.1:15000/config_dump | jq -r '.registry.serviceEntries[] | select(.name == "static-backend") | .endpoints[0].address' 2>&1)"
}

invalid_change_keeps_last_good() {
	local mark before_rejected broken=$OPS_DIR/registry/spoof-target.yaml aliyun=$OPS_DIR/registry/aliyun-http.yaml out rc
	mark=$(sidecar_log_mark)
	before_rejected=$(sidecar_metric sluice_registry_rejected_objects_total)
	ops_put "$OPS_DIR/later/spoof-target-broken.yaml" "$broken"
	if wait_until 3 _sidecar_logged "$mark" "$broken:15:"; then
		pass "invalid object: stderr names the file and line ($broken:15)"
	else
		fail "invalid object: stderr names the file and line ($broken:15)" "$(sidecar_log_since "$mark")"
	fi
	check "invalid object: stderr says it was rejected while the rest applied" \
		_sidecar_logged "$mark" "1 rejected"
	check_metric_reaches "invalid object: sluice_registry_rejected_objects_total increased" \
		sidecar $((${before_rejected:-0} + 1)) sluice_registry_rejected_objects_total
	check_eq "invalid object: the previously allowed http://aliyun.com still answers 301" 301 \
		"$(app_status -I http://aliyun.com/)"
	check_eq "invalid object: the entry added before it still works (unregistered.test 200)" 200 \
		"$(app_status http://unregistered.test/)"
	check_eq "invalid object: the broken file's host spoof-target.test is not added (502)" 502 \
		"$(app_status http://spoof-target.test/)"
	check "sidecar still running after the invalid object" sidecar_alive
	out=$("$SLUICE_BIN" check --config "$OPS_DIR/sidecar.yaml" 2>&1)
	rc=$?
	check_eq "sluice check: exits 1 on the same config" 1 "$rc"
	if grep -qF "$broken:15: " <<<"$out"; then
		pass "sluice check: names the path and line ($broken:15)"
	else
		fail "sluice check: names the path and line ($broken:15)" "$out"
	fi
	# An object that was valid keeps its last good version when an update breaks it.
	mark=$(sidecar_log_mark)
	sed 's/number: 80/number: 0/' "$aliyun" >"$OPS_DIR/aliyun-broken.yaml"
	ops_put "$OPS_DIR/aliyun-broken.yaml" "$aliyun"
	if wait_until 3 _sidecar_logged "$mark" "keeping its last good version"; then
		pass "invalid update: stderr says aliyun-http keeps its last good version"
	else
		fail "invalid update: stderr says aliyun-http keeps its last good version" "$(sidecar_log_since "$mark")"
	fi
	check_eq "invalid update: http://aliyun.com still answers 301 through its last good version" 301 \
		"$(app_status -I http://aliyun.com/)"
	mark=$(sidecar_log_mark)
	ops_put "$OPS_CONFIGS/registry/aliyun-http.yaml" "$aliyun"
	ops_put "$OPS_DIR/later/spoof-target.yaml" "$broken"
	if wait_until 3 _sidecar_logged "$mark" "config reloaded"; then
		pass "invalid object: fixing the files is picked up (config reloaded)"
	else
		fail "invalid object: fixing the files is picked up (config reloaded)" "$(sidecar_log_since "$mark")"
	fi
	check_eq "invalid object: after the fix, http://spoof-target.test is registered (200)" 200 \
		"$(app_status http://spoof-target.test/)"
	check_eq "sluice check: exits 0 once the files are fixed" 0 \
		"$("$SLUICE_BIN" check --config "$OPS_DIR/sidecar.yaml" >/dev/null 2>&1; echo $?)"
}

# A registry rewritten ten times a second never settles: it is applied anyway, at
# most 10 s after the first change (Istio's debounce bound), not only at the end.
ever_changing_registry_applied_within_bound() {
	local file=$OPS_DIR/registry/churn.yaml start_ms took_ms writer i
	start_ms=$(date +%s%3N)
	(
		for ((i = 0; i < 150; i++)); do
			printf '# rewrite %d\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: churn}\nspec: {hosts: [static-backend.test], ports: [{number: 80, name: http, protocol: HTTP}], resolution: NONE}\n' \
				"$i" >"$file.tmp" && chown "$PROXY_UID:$PROXY_UID" "$file.tmp" && mv -f "$file.tmp" "$file"
			sleep 0.1
		done
	) &
	writer=$!
	record_pid "$writer"
	if wait_until 12 bash -c "[[ \$(ip netns exec $NS_APP curl -s -o /dev/null -w '%{http_code}' --max-time 2 --resolve static-backend.test:80:$STATIC_V4 http://static-backend.test/) == 200 ]]"; then
		took_ms=$(($(date +%s%3N) - start_ms))
		pass "ever-changing registry: applied while still changing, ${took_ms} ms after the first change (bound 10 s + one poll)"
	else
		fail "ever-changing registry: applied within 10 s while still changing" "$(tail -n 5 "$SIDECAR_LOG")"
	fi
	check "ever-changing registry: the writer was still rewriting when it applied" pid_running "$writer"
	kill_pid "$writer"
	rm -f "$file"
}

sighup_reloads_at_once() {
	local mark before start_ms took_ms
	mark=$(sidecar_log_mark)
	before=$(sidecar_metric sluice_config_reloads_total result=success)
	start_ms=$(date +%s%3N)
	kill -HUP "$SIDECAR_PID"
	if wait_until 1 _sidecar_logged "$mark" "config reloaded (SIGHUP)"; then
		took_ms=$(($(date +%s%3N) - start_ms))
		pass "SIGHUP: the log says 'config reloaded (SIGHUP)' within 1 s (${took_ms} ms)"
	else
		fail "SIGHUP: the log says 'config reloaded (SIGHUP)' within 1 s" "$(sidecar_log_since "$mark")"
	fi
	check_metric_reaches "SIGHUP: sluice_config_reloads_total{result=\"success\"} counts it" \
		sidecar $((${before:-0} + 1)) sluice_config_reloads_total result=success
	check "SIGHUP: the sidecar keeps running" sidecar_alive
	check_eq "SIGHUP: http://aliyun.com still answers 301" 301 "$(app_status -I http://aliyun.com/)"
}

# --- sluice explain ------------------------------------------------------------------

explain() { "$SLUICE_BIN" explain --config "$E2E_CONFIGS/registry-only.yaml" "$@" 2>&1; }

# check_lines DESC TEXT REGEX...: every REGEX matches some line of TEXT.
check_lines() {
	local desc=$1 text=$2 re missing=
	shift 2
	for re in "$@"; do
		grep -qE -- "$re" <<<"$text" || missing+=" /$re/"
	done
	if [[ -z $missing ]]; then
		pass "$desc"
	else
		fail "$desc" "no line matches$missing in:"
		indent "$text"
	fi
}

explain_shows_decisions() {
	check_lines "explain http://aliyun.com/: allow, entry aliyun-http, cluster outbound|80||aliyun.com" \
		"$(explain http://aliyun.com/)" \
		'^decision: +allow' '^entry: +ServiceEntry default/aliyun-http \(.*registry/aliyun-http\.yaml:[0-9]+\)' \
		'^cluster: +outbound\|80\|\|aliyun\.com$' '^route: +aliyun\.com:80$' '^why: .*registers host aliyun\.com on port 80'
	check_lines "explain http://unregistered.test/: deny 502, BlackHoleCluster, block_all" \
		"$(explain http://unregistered.test/)" \
		'^decision: +deny: 502 Bad Gateway$' '^cluster: +BlackHoleCluster$' '^route: +block_all$' \
		'^why: .*no ServiceEntry registers host unregistered\.test'
	check_lines "explain tls://aliyun.com:443: allow by SNI, entry aliyun-tls" \
		"$(explain tls://aliyun.com:443)" \
		'^destination: +tls aliyun\.com:443$' '^decision: +allow' '^entry: +ServiceEntry default/aliyun-tls' \
		'^cluster: +outbound\|443\|\|aliyun\.com$'
	check_lines "explain tls://unregistered.test:443: closed without a byte" \
		"$(explain tls://unregistered.test:443)" \
		'^decision: +deny: connection closed without a byte$' '^cluster: +BlackHoleCluster$'
	check_lines "explain tcp://$TCP_V4:7000: allow to the original destination, entry tcp-echo" \
		"$(explain "tcp://$TCP_V4:7000")" \
		"^decision: +allow: to the original destination $TCP_V4:7000\$" '^entry: +ServiceEntry default/tcp-echo' \
		'^cluster: +outbound\|7000\|\|tcp-echo\.test$'
	check_lines "explain tcp://$UNREG_V4:7000: closed without a byte" \
		"$(explain "tcp://$UNREG_V4:7000")" \
		'^decision: +deny: connection closed without a byte$' "^why: .*$UNREG_V4"
}

# --- graceful drain ----------------------------------------------------------------------

# TUNNEL_HOLDER: a client that opens a TCP connection to tcp-echo.test:7000
# through the sidecar, proves it with one echoed byte, says "open", then waits
# for the proxy to close it and says after how many seconds ("eof after 5.01").
TUNNEL_HOLDER='
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7000), timeout=5)
s.sendall(b"x")
assert s.recv(1) == b"x"
print("open", flush=True)
t0 = time.time()
s.settimeout(20)
try:
    d = s.recv(1)
    print("eof" if d == b"" else "data", "after %.2f" % (time.time() - t0), flush=True)
except OSError as e:
    print("error", e, "after %.2f" % (time.time() - t0), flush=True)
'

_tunnel_open() { grep -qx open "$E2E_TMP/ops-tunnel.out"; }

sigterm_drains_slow_request() {
	local req_pid tun_pid pid=$SIDECAR_PID rc=none during=() code body i new_code start_ms exit_ms=none closed_after
	# An open TCP tunnel: it keeps the sidecar draining for drainPeriod (5 s).
	ip netns exec "$NS_APP" python3 -c "$TUNNEL_HOLDER" "$TCP_V4" >"$E2E_TMP/ops-tunnel.out" 2>&1 9>&- &
	tun_pid=$!
	record_pid "$tun_pid"
	wait_until 3 _tunnel_open
	# The slow request: the origin answers after 3 s; SIGTERM comes 0.5 s in,
	# which leaves time to look at the draining sidecar.
	ip netns exec "$NS_APP" curl -sS --max-time 10 -D "$E2E_TMP/ops-slow.head" -o "$E2E_TMP/ops-slow.body" \
		-w '%{http_code}' http://aliyun.com/delay/3000 >"$E2E_TMP/ops-slow.code" 2>"$E2E_TMP/ops-slow.err" 9>&- &
	req_pid=$!
	record_pid "$req_pid"
	sleep 0.5
	start_ms=$(date +%s%3N)
	kill -TERM "$pid"
	sleep 0.2
	new_code=$(CURL_MAX_TIME=2 app_status -I http://aliyun.com/)
	for ((i = 0; i < 3; i++)); do
		during+=("$(ready_status "$NS_APP")")
		sleep 0.1
	done
	wait_until 10 ops_pid_gone "$req_pid"
	kill_pid "$req_pid"
	if wait_until 10 ops_pid_gone "$pid"; then
		exit_ms=$(($(date +%s%3N) - start_ms))
		wait "$pid" 2>/dev/null
		rc=$?
	fi
	forget_pid "$pid"
	[[ $rc == none ]] && kill_pid "$pid"
	SIDECAR_PID=
	wait_until 3 ops_pid_gone "$tun_pid"
	kill_pid "$tun_pid"
	closed_after=$(sed -n 's/^eof after \([0-9.]*\)$/\1/p' "$E2E_TMP/ops-tunnel.out")
	code=$(cat "$E2E_TMP/ops-slow.code" 2>/dev/null)
	body=$(cat "$E2E_TMP/ops-slow.body" 2>/dev/null)
	check_eq "drain: readiness answers 503 while the slow request drains" "503 503 503" "${during[*]}"
	check_eq "drain: a new request during the drain is not accepted (no HTTP answer)" 000 "$new_code"
	check_eq "drain: the slow request (/delay/3000) in flight at SIGTERM completes with 200" 200 "$code"
	check_eq "drain: its body is complete" "delayed=3000" "$body"
	[[ $code == 200 ]] || indent "$(cat "$E2E_TMP/ops-slow.err")"
	check "drain: that last response says Connection: close" grep -qi '^connection: *close' "$E2E_TMP/ops-slow.head"
	if [[ -n $closed_after ]] && awk -v s="$closed_after" 'BEGIN { exit !(s >= 4.5 && s <= 8) }'; then
		pass "drain: the open TCP tunnel is closed when the 5 s drain period ends (after ${closed_after} s)"
	else
		fail "drain: the open TCP tunnel is closed when the 5 s drain period ends" \
			"tunnel client: $(cat "$E2E_TMP/ops-tunnel.out")"
	fi
	check_eq "drain: the sidecar exits 0 after the drain (within 10 s)" 0 "$rc"
	if [[ $exit_ms != none ]] && ((exit_ms >= 4500)); then
		pass "drain: it stayed up for the drain period (exited ${exit_ms} ms after SIGTERM)"
	else
		fail "drain: it stayed up for the drain period (>= 4.5 s)" "exited ${exit_ms} ms after SIGTERM"
	fi
	check "drain: the log says it is draining" grep -qF "draining: no longer accepting connections" "$SIDECAR_LOG"
}

sigterm_idle_exits_at_once() {
	# scenario has started a new sidecar after the drain case's one exited.
	local pid=$SIDECAR_PID rc=none start_ms took_ms
	check_eq "drain: the restarted sidecar answers http://aliyun.com with 301" 301 "$(app_status -I http://aliyun.com/)"
	sleep 0.3 # let that connection close
	start_ms=$(date +%s%3N)
	kill -TERM "$pid"
	if wait_until 5 ops_pid_gone "$pid"; then
		took_ms=$(($(date +%s%3N) - start_ms))
		wait "$pid" 2>/dev/null
		rc=$?
	fi
	forget_pid "$pid"
	[[ $rc == none ]] && kill_pid "$pid"
	SIDECAR_PID=
	check_eq "drain: with no open connection, SIGTERM ends the sidecar with exit 0" 0 "$rc"
	if [[ -n ${took_ms:-} ]] && ((took_ms < 1000)); then
		pass "drain: ... and at once (${took_ms} ms)"
	else
		fail "drain: ... and at once (< 1 s)" "took ${took_ms:-more than 5000} ms"
	fi
}

# --- the gateway ------------------------------------------------------------------------

gateway_ready_and_admin_local_only() {
	local out rc
	check_eq "gateway readiness: GET /healthz/ready inside sl-gw answers 200" 200 "$(ready_status "$NS_GW")"
	check_eq "gateway readiness: from outside ($GW_V4:15021) too" 200 "$(ready_status "$NS_EXT" "$GW_V4")"
	out=$(ext curl -sS --max-time 5 "http://$GW_V4:15000/" 2>&1)
	rc=$?
	check_eq "gateway admin: curl http://$GW_V4:15000/ from $NS_EXT is refused (curl exit 7)" 7 "$rc"
	check "gateway admin: inside sl-gw /config_dump is JSON with role gateway" \
		bash -c "ip netns exec $NS_GW curl -sS --max-time 5 http://127.0.0.1:15000/config_dump | jq -e '.role == \"gateway\"'"
}

gateway_counts_requests_and_denials() {
	local before before_denied
	before=$(gateway_metric istio_requests_total reporter=gateway destination_service=aliyun.com response_code=301)
	check_eq "gateway walkthrough: curl -sI http://aliyun.com from the app answers 301 via the gateway" 301 \
		"$(app_status -I http://aliyun.com/)"
	check_metric_reaches "gateway metrics: istio_requests_total{reporter=\"gateway\",destination_service=\"aliyun.com\",response_code=\"301\"} counts it" \
		gateway $((${before:-0} + 1)) istio_requests_total reporter=gateway destination_service=aliyun.com \
		destination_service_name=aliyun.com request_protocol=http response_code=301
	check_metric_reaches "gateway metrics: the sidecar counted the same request as reporter=\"source\"" \
		sidecar 1 istio_requests_total reporter=source destination_service=aliyun.com response_code=301
	before_denied=$(gateway_metric sluice_denied_total protocol=http)
	check_eq "gateway: Host nope.test sent to the gateway is refused with 404" 404 \
		"$(ext curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: nope.test' "http://$GW_V4/")"
	check_metric_reaches "gateway metrics: 404 NR counted under BlackHoleCluster, not under the sent Host" \
		gateway 1 istio_requests_total reporter=gateway destination_service=BlackHoleCluster response_code=404 response_flags=NR
	check_metric_reaches "gateway metrics: sluice_denied_total{protocol=\"http\"} counts it" \
		gateway $((${before_denied:-0} + 1)) sluice_denied_total protocol=http
}

# The stop is what it checks: it signals the gateway itself (and clears GATEWAY_PID).
gateway_sigterm_exits_at_once() {
	local rc=none pid=$GATEWAY_PID
	kill -TERM "$pid"
	if wait_until 5 ops_pid_gone "$pid"; then
		wait "$pid" 2>/dev/null
		rc=$?
	fi
	forget_pid "$pid"
	[[ $rc == none ]] && kill_pid "$pid"
	GATEWAY_PID=
	check_eq "gateway: SIGTERM with nothing open ends it with exit 0" 0 "$rc"
}

# --- running them -----------------------------------------------------------------------

sluice_check_accepts_the_config() {
	check_eq "sluice check: exits 0 on the copy of configs/ops/sidecar.yaml" 0 \
		"$("$SLUICE_BIN" check --config "$OPS_DIR/sidecar.yaml" >/dev/null 2>&1; echo $?)"
}

# What the cases build on when one runs alone (scripts/e2e 40-operations:CASE): labelled
# metrics appear with their first sample, and the reload cases edit one registry in turn.
E2E_NEEDS[metrics_endpoint_lists_istio_and_sluice_metrics]="metrics_count_denied_requests metrics_registered_host_series"
E2E_NEEDS[admin_stats_plain_text]="metrics_count_denied_requests"
E2E_NEEDS[invalid_change_keeps_last_good]="hot_reload_during_large_download"

operations_cases() {
	local -a sidecar_cases=(
		readiness_ready_once_listening
		metrics_count_denied_requests
		metrics_registered_host_series
		metrics_endpoint_lists_istio_and_sluice_metrics
		metrics_random_hosts_do_not_grow_labels
		admin_not_reachable_from_outside
		admin_config_dump_is_json
		admin_stats_plain_text
		admin_logging_level_changes
		hot_reload_during_large_download
		configmap_symlink_swap_applies
		invalid_change_keeps_last_good
		ever_changing_registry_applied_within_bound
		sighup_reloads_at_once
		sigterm_drains_slow_request
		sigterm_idle_exits_at_once
	)
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	wants explain_shows_decisions && section "sluice explain"
	run_case explain_shows_decisions

	# One sidecar, on a scratch copy of configs/ops (the cases edit its registry), for
	# cases that run in order: the reload cases build on each other's registry.
	if wants sluice_check_accepts_the_config "${sidecar_cases[@]}"; then
		if ops_setup; then
			run_case sluice_check_accepts_the_config
			scenario "$OPS_DIR/sidecar.yaml" "${sidecar_cases[@]}"
		else
			fail "operations: the scratch copy of configs/ops could not be made"
		fi
		ops_teardown
	fi

	scenario --gateway gateway/gateway.yaml none gateway_ready_and_admin_local_only
	scenario --gateway gateway/gateway.yaml gateway/sidecar-istio.yaml gateway_counts_requests_and_denials
	scenario --gateway gateway/gateway.yaml none gateway_sigterm_exits_at_once
}

operations_cases

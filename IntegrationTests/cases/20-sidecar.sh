# shellcheck shell=bash
# The sidecar end to end: what an app in the pod sees when its outbound traffic
# is captured by sluice-init and decided by `sluice sidecar`.
#
# Sourced by scripts/e2e after IntegrationTests/lib.sh, on a fresh test network.
# First the harness proves itself without any sidecar (origins reachable,
# clients working), so that a sidecar failure below is the sidecar's.
# Every case is a function named after what the user sees; a scenario (lib/cases.sh) runs a
# list of them against one sidecar config.

BIG_DOWNLOAD=268435456 # 256 MiB: far more than any buffer, so it must stream
BIG_UPLOAD=67108864    # 64 MiB, sent chunked

pid_gone() { ! pid_running "$1"; }

# status_codes: "301 502" from client.py's status lines on stdin.
status_codes() { awk '{ print $2 }' | paste -sd' '; }

# --- the harness alone (no sidecar, no capture rules) -----------------------

harness_network_is_closed() {
	check_eq "harness: the app namespace has no IPv4 default route" "" "$(ip -n "$NS_APP" route show default)"
	check_eq "harness: the app namespace has no IPv6 default route" "" "$(ip -n "$NS_APP" -6 route show default)"
	check_eq "harness: aliyun.com resolves to $ALIYUN_V4 inside the app namespace" \
		"$ALIYUN_V4" "$(app getent ahostsv4 aliyun.com | awk 'NR == 1 { print $1 }')"
	check_eq "harness: the app namespace's resolver is loopback only" \
		"nameserver 127.0.0.1" "$(app grep -v '^#' /etc/resolv.conf)"
	# grep -q's 1: iptables-save worked (pipefail) and found no REDIRECT.
	check_exit "harness: no capture rules yet in the app namespace" 1 capture_installed
}

harness_origins_answer_directly() {
	local mark out
	mark=$(origin_mark)
	check_eq "harness: curl -sI http://aliyun.com answers 301 without a sidecar" 301 "$(app_status -I http://aliyun.com/)"
	check_origin_saw "harness: the origin log records the connection to $ALIYUN_V4" "$mark" "$ALIYUN_V4" 80
	out=$(app_curl -I http://aliyun.com/ | tr -d '\r' | grep -i '^location:')
	check_eq "harness: the 301 points to https://www.aliyun.com/" "location: https://www.aliyun.com/" "${out,,}"
	check_eq "harness: http://unregistered.test is served by $UNREG_V4" \
		"origin=$UNREG_V4 host=unregistered.test" "$(app_curl http://unregistered.test/)"
	check_eq "harness: https://aliyun.com answers 301 with the suite's CA" 301 "$(app_status -I https://aliyun.com/)"
	check_eq "harness: https://unregistered.test answers 200" 200 "$(app_status https://unregistered.test/)"
	mark=$(origin_mark)
	check_eq "harness: curl -6 http://v6.aliyun.test answers 301" 301 "$(app_status -6 -I http://v6.aliyun.test/)"
	check_origin_saw "harness: the v6 origin $EXT_V6 saw the connection" "$mark" "$EXT_V6" 80
	check_eq "harness: static-backend.test is served by $STATIC_V4" \
		"origin=$STATIC_V4 host=static-backend.test" "$(app_curl http://static-backend.test/)"
	check "harness: TCP echo on $TCP_V4:7000 round-trips" client echo "$TCP_V4" 7000 --keep-open
	check "harness: TCP echo on $TCP_V4:7000 completes after the client half-closes" client echo "$TCP_V4" 7000
	check "harness: the banner on $TCP_V4:7001 arrives within 2 s" client banner "$TCP_V4" 7001 --timeout 2
	check_eq "harness: client.py keepalive sees both answers on one connection" "301 200" \
		"$(client keepalive "$ALIYUN_V4" 80 aliyun.com unregistered.test | status_codes)"
	check_exit "harness: client.py expect-closed notices a peer that answers (its exit 3)" 3 \
		client expect-closed "$TCP_V4" 7000
}

harness_bodies_stream() {
	check_eq "harness: /bytes/$BIG_DOWNLOAD arrives intact without a sidecar" "$BIG_SHA" \
		"$(app curl -s --max-time 60 "http://aliyun.com/bytes/$BIG_DOWNLOAD" | sha256sum | cut -d' ' -f1)"
	check_eq "harness: POST /sha256 hashes a 64 MiB chunked upload" "$UPLOAD_SHA" \
		"$(app curl -s --max-time 60 -H 'Transfer-Encoding: chunked' --data-binary @"$UPLOAD_FILE" \
			http://aliyun.com/sha256)"
}

# --- ALLOW_ANY ---------------------------------------------------------------

allow_any_http_reaches_original_destination() {
	local mark access
	mark=$(origin_mark)
	access=$(access_mark)
	check_eq "allow_any: curl -sI http://aliyun.com answers 301" 301 "$(app_status -I http://aliyun.com/)"
	check_origin_saw "allow_any: the request went to $ALIYUN_V4 (its original destination)" "$mark" "$ALIYUN_V4" 80
	check_access_log "allow_any: the access log has a JSON record for aliyun.com with 301" "$access" \
		'.authority == "aliyun.com" and .response_code == 301'
}

allow_any_unregistered_tls_passes() {
	check_eq "allow_any: https://unregistered.test passes through (served by $UNREG_V4)" \
		"origin=$UNREG_V4 host=unregistered.test" "$(app_curl https://unregistered.test/)"
}

allow_any_unregistered_tcp_passes() {
	check "allow_any: 1 MiB TCP echo to unregistered $TCP_V4:7000 round-trips" \
		client echo "$TCP_V4" 7000 --keep-open
	check "allow_any: the echo completes after the client half-closes (EOF reaches the origin and back)" \
		client echo "$TCP_V4" 7000
}

# A direct connection to the proxy port has itself as original destination;
# dialling it would loop until file descriptors run out.
allow_any_loop_to_proxy_port_refused() {
	local code
	code=$(CURL_MAX_TIME=5 app_status "http://127.0.0.1:$OUTBOUND_PORT/")
	if [[ $code == 000 || $code == 5* ]]; then
		pass "loop guard: curl http://127.0.0.1:$OUTBOUND_PORT/ from the app fails (got $code)"
	else
		fail "loop guard: curl http://127.0.0.1:$OUTBOUND_PORT/ from the app fails" "got HTTP $code"
	fi
	check "loop guard: the sidecar is still running" sidecar_alive
	check_eq "loop guard: the next request still works (curl -sI http://aliyun.com → 301)" 301 \
		"$(app_status -I http://aliyun.com/)"
}

# --- REGISTRY_ONLY, nothing registered ----------------------------------------

registry_only_empty_http_is_502() {
	local mark access
	mark=$(origin_mark)
	access=$(access_mark)
	check_eq "registry_only, no entry: curl -sI http://aliyun.com answers 502" 502 "$(app_status -I http://aliyun.com/)"
	check_origin_never "registry_only, no entry: $ALIYUN_V4 saw no connection" "$mark" "$ALIYUN_V4"
	check_access_log "registry_only, no entry: access log says 502 block_all BlackHoleCluster for aliyun.com" "$access" \
		'.response_code == 502 and .route_name == "block_all" and .upstream_cluster == "BlackHoleCluster" and .authority == "aliyun.com"'
}

registry_only_empty_tls_closed() {
	local mark
	mark=$(origin_mark)
	# curl 35: the TLS handshake failed (the connection closed after the ClientHello).
	check_exit "registry_only, no entry: curl https://aliyun.com fails in the TLS handshake (curl exit 35)" 35 \
		app_curl -I https://aliyun.com/
	check "registry_only, no entry: a ClientHello for aliyun.com is closed without a byte" \
		client expect-closed "$ALIYUN_V4" 443 --tls-sni aliyun.com
	check_origin_never "registry_only, no entry: $ALIYUN_V4:443 saw no connection" "$mark" "$ALIYUN_V4" 443
}

# --- REGISTRY_ONLY + aliyun.com:80 -------------------------------------------

service_entry_allows_http() {
	local mark
	mark=$(origin_mark)
	check_eq "service entry: curl -sI http://aliyun.com answers 301" 301 "$(app_status -I http://aliyun.com/)"
	check_origin_saw "service entry: the request reached $ALIYUN_V4" "$mark" "$ALIYUN_V4" 80
}

unregistered_host_is_502() {
	local mark
	mark=$(origin_mark)
	check_eq "unregistered host: curl -sI http://unregistered.test answers 502" 502 \
		"$(app_status -I http://unregistered.test/)"
	check_origin_never "unregistered host: $UNREG_V4 saw no connection" "$mark" "$UNREG_V4"
}

keepalive_second_host_decided_per_request() {
	check_eq "keep-alive: aliyun.com then unregistered.test on one connection → 301 then 502" "301 502" \
		"$(client keepalive "$ALIYUN_V4" 80 aliyun.com unregistered.test | status_codes)"
}

# Where the request went is read from the access log, not from the origin's log of new
# connections: the sidecar may send it on a pooled connection to aliyun.com an earlier case
# opened (the pool is per event loop, and which loop accepts a connection is the kernel's pick).
host_spoofing_goes_to_registered_address() {
	local mark access
	mark=$(origin_mark)
	access=$(access_mark)
	check_eq "Host spoofing: curl -H 'Host: aliyun.com' http://$SPOOF_V4/ answers 301" 301 \
		"$(app_status -I -H 'Host: aliyun.com' "http://$SPOOF_V4/")"
	check_access_log "Host spoofing: the request went to aliyun.com's address $ALIYUN_V4" "$access" \
		".downstream_local_address == \"$SPOOF_V4:80\" and .upstream_host == \"$ALIYUN_V4:80\" and .response_code == 301"
	check_origin_never "Host spoofing: the dialled address $SPOOF_V4 saw no connection" "$mark" "$SPOOF_V4"
}

registered_host_other_port_denied() {
	local mark
	mark=$(origin_mark)
	check_exit "registered host, unregistered port: curl https://aliyun.com (only :80 registered) fails in the TLS handshake (curl exit 35)" 35 \
		app_curl -I https://aliyun.com/
	check_origin_never "registered host, unregistered port: $ALIYUN_V4:443 saw no connection" "$mark" "$ALIYUN_V4" 443
}

large_download_streams_intact() {
	check_eq "large body: /bytes/$BIG_DOWNLOAD through the sidecar has the origin's sha256" "$BIG_SHA" \
		"$(app curl -s --max-time 180 "http://aliyun.com/bytes/$BIG_DOWNLOAD" | sha256sum | cut -d' ' -f1)"
}

chunked_upload_arrives_intact() {
	check_eq "large upload: POST /sha256 with 64 MiB chunked through the sidecar hashes the same" "$UPLOAD_SHA" \
		"$(app curl -s --max-time 120 -H 'Transfer-Encoding: chunked' --data-binary @"$UPLOAD_FILE" \
			http://aliyun.com/sha256)"
}

garbage_does_not_affect_other_connections() {
	local garbage_pid
	# Garbage on one connection for ~2 s while a good request runs next to it.
	# (ip netns exec directly, so $! is the client itself.)
	ip netns exec "$NS_APP" python3 "$E2E_DIR/client.py" garbage "$ALIYUN_V4" 80 --seconds 2 --timeout 5 \
		>"$E2E_TMP/garbage.out" 2>&1 9>&- &
	garbage_pid=$!
	record_pid "$garbage_pid"
	sleep 0.5
	check_eq "garbage: a concurrent curl -sI http://aliyun.com still answers 301" 301 "$(app_status -I http://aliyun.com/)"
	wait_until 8 pid_gone "$garbage_pid" # the client ends by itself within ~7 s
	kill_pid "$garbage_pid"
	printf '# garbage client: %s\n' "$(cat "$E2E_TMP/garbage.out")"
	check "garbage: the sidecar is still running" sidecar_alive
}

# --- REGISTRY_ONLY + the whole registry ----------------------------------------

tls_registered_sni_allowed() {
	check_eq "TLS by SNI: curl --cacert ca https://aliyun.com answers 301" 301 "$(app_status -I https://aliyun.com/)"
}

tls_unregistered_sni_denied() {
	local mark
	mark=$(origin_mark)
	check_exit "TLS by SNI: curl https://unregistered.test fails in the TLS handshake (curl exit 35)" 35 \
		app_curl https://unregistered.test/
	check "TLS by SNI: a ClientHello for unregistered.test is closed without a byte" \
		client expect-closed "$UNREG_V4" 443 --tls-sni unregistered.test
	check_origin_never "TLS by SNI: $UNREG_V4:443 saw no connection" "$mark" "$UNREG_V4" 443
}

tls_sni_spoofing_goes_to_registered_address() {
	local mark
	mark=$(origin_mark)
	check_eq "SNI spoofing: https://aliyun.com dialled at $SPOOF_V4 answers 301" 301 \
		"$(app_status -I --resolve "aliyun.com:443:$SPOOF_V4" https://aliyun.com/)"
	check_origin_saw "SNI spoofing: the connection went to $ALIYUN_V4" "$mark" "$ALIYUN_V4" 443
	check_origin_never "SNI spoofing: $SPOOF_V4 saw no connection" "$mark" "$SPOOF_V4"
}

tcp_registered_address_port_echoes() {
	check "opaque TCP: 1 MiB echo via $TCP_V4:7000 (registered address+port) round-trips" \
		client echo "$TCP_V4" 7000 --keep-open
	check "opaque TCP: the echo completes after the client half-closes (EOF reaches the origin and back)" \
		client echo "$TCP_V4" 7000
	check "opaque TCP: a small echo with an immediate half-close completes" \
		client echo "$TCP_V4" 7000 --size 1000
}

tcp_unregistered_address_closed() {
	local mark
	mark=$(origin_mark)
	check "opaque TCP: unregistered $UNREG_V4:7000 is closed without a byte" client expect-closed "$UNREG_V4" 7000
	check_origin_never "opaque TCP: $UNREG_V4:7000 saw no connection" "$mark" "$UNREG_V4" 7000
}

tcp_server_first_banner_arrives() {
	check "server-first TCP: the banner from $TCP_V4:7001 arrives within 2 s" client banner "$TCP_V4" 7001 --timeout 2
}

ipv6_registered_host() {
	local mark
	mark=$(origin_mark)
	check_eq "IPv6: curl -6 http://v6.aliyun.test answers 301" 301 "$(app_status -6 -I http://v6.aliyun.test/)"
	check_origin_saw "IPv6: the request reached $EXT_V6" "$mark" "$EXT_V6" 80
}

static_endpoints_used() {
	local mark
	mark=$(origin_mark)
	# The app dials $UNREG_V4; the STATIC endpoint, not that address, must serve it.
	check_eq "STATIC endpoints: http://static.test is served by $STATIC_V4" \
		"origin=$STATIC_V4 host=static.test" \
		"$(app_curl --resolve "static.test:80:$UNREG_V4" http://static.test/)"
	check_origin_never "STATIC endpoints: the dialled $UNREG_V4 saw no connection" "$mark" "$UNREG_V4"
}

# --- a bad registry ---------------------------------------------------------

# refuses_config DESC CONFIG WORD...: `sluice sidecar` exits non-zero within
# 5 s and its stderr contains every WORD. Other ports: a running sidecar's
# "address in use" must not pass for a config error.
refuses_config() {
	local desc=$1 config=$2 rc start elapsed_ms word missing=
	shift 2
	stop_sidecar
	start=$(date +%s%N)
	# ip netns exec directly: timeout cannot run a shell function.
	timeout 10 ip netns exec "$NS_APP" setpriv --reuid "$PROXY_UID" --regid "$PROXY_UID" --clear-groups \
		"$SLUICE_BIN" sidecar --config "$config" --outbound-port 15101 \
		--admin-port 15100 --stats-port 15190 --health-port 15121 \
		>"$E2E_TMP/refused.out" 2>"$E2E_TMP/refused.err"
	rc=$?
	elapsed_ms=$((($(date +%s%N) - start) / 1000000))
	for word in "$@"; do
		grep -qF -- "$word" "$E2E_TMP/refused.err" || missing+=" '$word'"
	done
	if ((rc != 0 && rc != 124 && elapsed_ms < 5000)) && [[ -z $missing ]]; then
		pass "$desc"
	else
		fail "$desc" "exit $rc after ${elapsed_ms} ms${missing:+; stderr does not mention$missing}; stderr:"
		indent "$(cat "$E2E_TMP/refused.err")"
	fi
}

# A bad registry object is rejected on its own (as an admission webhook refuses
# one kubectl apply): the sidecar starts, names the file, resource and field,
# and serves the rest of the registry; `sluice check` exits 1 on it.
malformed_registry_serves_the_rest() {
	local desc=$1 config=$2 word missing= err_mark
	shift 2
	err_mark=$(wc -l <"$SIDECAR_LOG" 2>/dev/null || echo 0)
	if ! start_sidecar "$config" 2>"$E2E_TMP/start.err"; then
		fail "$desc: the sidecar starts" "$(cat "$E2E_TMP/start.err")"
		return
	fi
	for word in "$@"; do
		tail -n +"$((err_mark + 1))" "$SIDECAR_LOG" | grep -qF -- "$word" || missing+=" '$word'"
	done
	if [[ -z $missing ]]; then
		pass "$desc: the sidecar starts and its log names$(printf " '%s'" "$@")"
	else
		fail "$desc: the sidecar starts and its log names$(printf " '%s'" "$@")" "missing$missing"
		indent "$(tail -n +"$((err_mark + 1))" "$SIDECAR_LOG")"
	fi
	check_eq "$desc: the valid entry beside it applies (http://aliyun.com 301)" 301 "$(app_status -I http://aliyun.com/)"
	check_eq "$desc: an unregistered host is still denied (502)" 502 "$(app_status -I http://unregistered.test/)"
	check_exit "$desc: sluice check exits 1" 1 "$SLUICE_BIN" check --config "$config"
	stop_sidecar
}

malformed_registry_rejected_alone() {
	malformed_registry_serves_the_rest "bad registry: a file that is not YAML" \
		"$E2E_CONFIGS/malformed-yaml.yaml" not-yaml.yaml "invalid YAML" "rejected=1"
	malformed_registry_serves_the_rest "bad registry: an invalid ServiceEntry" \
		"$E2E_CONFIGS/malformed-entry.yaml" bad-resolution.yaml:13 sometimes-resolved spec.resolution "rejected=1"
}

# A port someone else holds: sluice exits at once and says which address (NIO's
# own error names only the system call).
taken_port_named() {
	local holder
	# ip netns exec directly (not the app function): $! must be python's own pid.
	ip netns exec "$NS_APP" python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 15101)); s.listen(); time.sleep(30)' &
	holder=$!
	record_pid "$holder"
	if wait_until 5 bash -c "ip netns exec $NS_APP ss -Hltn 'sport = :15101' | grep -q ."; then
		refuses_config "taken port: sluice sidecar exits naming the outbound address in use" \
			"$E2E_CONFIGS/allow-any.yaml" "cannot listen on 127.0.0.1:15101 (outbound)" "Address already in use"
	else
		fail "taken port: the test's own listener on 127.0.0.1:15101 did not start"
	fi
	kill_pid "$holder"
}

# --- running them --------------------------------------------------------------

sidecar_cases() {
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	UPLOAD_FILE=$E2E_TMP/upload.bin
	if wants harness_bodies_stream large_download_streams_intact chunked_upload_arrives_intact; then
		BIG_SHA=$(python3 "$E2E_DIR/client.py" pattern-sha256 "$BIG_DOWNLOAD")
		head -c "$BIG_UPLOAD" /dev/urandom >"$UPLOAD_FILE"
		UPLOAD_SHA=$(sha256sum "$UPLOAD_FILE" | cut -d' ' -f1)
	fi

	wants harness_network_is_closed harness_origins_answer_directly harness_bodies_stream &&
		section "harness (no sidecar)"
	run_case harness_network_is_closed
	run_case harness_origins_answer_directly
	run_case harness_bodies_stream

	scenario allow-any.yaml \
		allow_any_http_reaches_original_destination \
		allow_any_unregistered_tls_passes \
		allow_any_unregistered_tcp_passes \
		allow_any_loop_to_proxy_port_refused
	scenario registry-only-empty.yaml \
		registry_only_empty_http_is_502 \
		registry_only_empty_tls_closed
	scenario registry-only-http.yaml \
		service_entry_allows_http \
		unregistered_host_is_502 \
		keepalive_second_host_decided_per_request \
		host_spoofing_goes_to_registered_address \
		registered_host_other_port_denied \
		large_download_streams_intact \
		chunked_upload_arrives_intact \
		garbage_does_not_affect_other_connections
	scenario registry-only.yaml \
		tls_registered_sni_allowed \
		tls_unregistered_sni_denied \
		tls_sni_spoofing_goes_to_registered_address \
		tcp_registered_address_port_echoes \
		tcp_unregistered_address_closed \
		tcp_server_first_banner_arrives \
		ipv6_registered_host \
		static_endpoints_used

	# These start the sidecar themselves: the start is what they check.
	wants malformed_registry_rejected_alone taken_port_named && section "sidecar with a bad registry"
	run_case malformed_registry_rejected_alone
	run_case taken_port_named
	rm -f "$UPLOAD_FILE"
}

sidecar_cases

# shellcheck shell=bash
# Faults the pod must survive without a restart: the egress gateway dying mid-stream, a
# multi-GiB transfer through sidecar and gateway, and the sidecar running out of file
# descriptors. Sourced by scripts/e2e after lib.sh.

FAULT_CONFIGS=$E2E_CONFIGS/gateway

# integrity_through_gateway: 2 GiB via sidecar + gateway (istio mode) arrive byte-exact.
integrity_through_gateway() {
	local size=2147483648 expected got
	expected=$(python3 "$E2E_DIR/client.py" pattern-sha256 "$size")
	got=$(app curl -s --max-time 180 "http://aliyun.com/bytes/$size" | sha256sum | cut -d' ' -f1)
	check_eq "integrity: 2 GiB through the sidecar and the egress gateway has the origin's sha256" "$expected" "$got"
}

# gateway_dies_mid_stream: SIGKILL the gateway while a download is flowing through it. The app
# sees a truncated transfer (not a hang), the sidecar logs UC and keeps serving, and once the
# gateway is back the next request goes through.
gateway_dies_mid_stream() {
	local pid rc out access size=268435456
	access=$(access_mark)
	app curl -s -o /dev/null --max-time 60 --limit-rate 20M -w '%{size_download}' \
		"http://aliyun.com/bytes/$size" >"$E2E_TMP/midstream.out" 2>/dev/null &
	pid=$!
	record_pid "$pid"
	sleep 2
	kill -KILL "$GATEWAY_PID" 2>/dev/null
	stop_gateway
	wait "$pid"
	rc=$?
	forget_pid "$pid"
	out=$(cat "$E2E_TMP/midstream.out")
	if ((rc != 0)) && ((${out:-0} < size)); then
		pass "gateway killed mid-stream: the app sees a truncated transfer (curl exit $rc after ${out:-0} bytes), not a hang"
	else
		fail "gateway killed mid-stream: the app sees a truncated transfer" "curl exit $rc, $out bytes"
	fi
	check_access_log "gateway killed mid-stream: the sidecar logs the request with UC" "$access" \
		'.authority == "aliyun.com" and (.response_flags | contains("UC"))'
	check "gateway killed mid-stream: the sidecar is still running" sidecar_alive
	if start_gateway "$FAULT_CONFIGS/gateway.yaml" 2>"$E2E_TMP/start.err"; then
		check_eq "gateway back: curl -sI http://aliyun.com answers 301 again" 301 "$(app_status -I http://aliyun.com/)"
	else
		fail "gateway back: it restarts" "$(cat "$E2E_TMP/start.err")"
	fi
}

# out_of_file_descriptors: a sidecar started with `ulimit -n 64` gets 120 idle app
# connections; it says in its log that its listener is out of file descriptors, sheds, and
# serves again once they go — without a restart.
out_of_file_descriptors() {
	local log_mark holder soft
	soft=$(ulimit -S -n)
	ulimit -S -n 64
	start_sidecar "$FAULT_CONFIGS/sidecar-istio.yaml" 2>"$E2E_TMP/start.err"
	local started=$?
	ulimit -S -n "$soft"
	if ((started != 0)); then
		fail "fd exhaustion: the sidecar starts with ulimit -n 64" "$(cat "$E2E_TMP/start.err")"
		return
	fi
	log_mark=$(wc -l <"$SIDECAR_LOG")
	app python3 -c '
import socket, time
held = []
for _ in range(120):
    try:
        s = socket.create_connection(("192.0.2.30", 80), timeout=1)
        held.append(s)
    except OSError:
        pass
time.sleep(3)
' &
	holder=$!
	record_pid "$holder"
	sleep 1.5
	wait "$holder"
	forget_pid "$holder"
	check "fd exhaustion: the sidecar is still running" sidecar_alive
	if wait_until 3 _sidecar_log_mentions_since "$log_mark" "shedding new connections"; then
		pass "fd exhaustion: the sidecar logs that its listener is out of file descriptors"
	else
		fail "fd exhaustion: the sidecar logs that its listener is out of file descriptors" "$(tail -n +"$((log_mark + 1))" "$SIDECAR_LOG" | tail -5)"
	fi
	sleep 1.5 # NIO's accept back-off
	check_eq "fd exhaustion: once the connections are gone, curl -sI http://aliyun.com answers 301" 301 \
		"$(app_status -I http://aliyun.com/)"
}

_sidecar_log_mentions_since() { tail -n +"$(($1 + 1))" "$SIDECAR_LOG" | grep -qF -- "$2"; }

faults_cases() {
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	# gateway_dies_mid_stream kills and restarts the gateway, out_of_file_descriptors starts
	# its own sidecar under ulimit -n 64: the fault is what they check.
	scenario --gateway gateway/gateway.yaml gateway/sidecar-istio.yaml \
		integrity_through_gateway \
		gateway_dies_mid_stream \
		out_of_file_descriptors
}

faults_cases

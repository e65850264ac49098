# shellcheck shell=bash
# Helpers for IntegrationTests/cases/50-hostile.sh and scripts/soak, on top of lib.sh
# (sourced after it, in the same shell).
#
#   hostile ARGS...            IntegrationTests/hostile_client.py from the app namespace
#   raw_codes ADDR PORT TEXT   the status codes of the responses to TEXT, space-separated
#   smuggled_requests MARK     /smuggled... requests the origins served since MARK
#   sidecar_rss_kb             the sidecar's VmRSS
#   hostile_scenario CONFIG CASE...   one sidecar for a list of cases

HOSTILE_CONFIGS=$E2E_CONFIGS/hostile

hostile() {
	app python3 "$E2E_DIR/hostile_client.py" "$@"
}

# raw_codes ADDR PORT TEXT [ARGS...]: "400" or "301 200" or "" for what came back.
raw_codes() {
	local addr=$1 port=$2 text=$3
	shift 3
	hostile raw "$addr" "$port" --send "$text" "$@" | awk '$1 ~ /^[0-9][0-9][0-9]$/ { print $1 }' | paste -sd' '
}

# smuggled_requests MARK: the origin's {"request": ...} records since MARK.
smuggled_requests() {
	tail -n +"$(($1 + 1))" "$ORIGIN_LOG" | jq -c 'select(.request != null)' | wc -l
}

sidecar_rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$SIDECAR_PID/status" 2>/dev/null
}

sidecar_ready() {
	[[ $(app curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://127.0.0.1:15021/healthz/ready) == 200 ]]
}

# hostile_scenario CONFIG CASE...: like 20-sidecar's scenario: a case that cannot
# run is reported as failed; after each case the sidecar must still be running.
hostile_scenario() {
	local config=$1 case_fn why
	shift
	section "sidecar with configs/hostile/$(basename "$config")"
	if ! start_sidecar "$config" 2>"$E2E_TMP/start.err"; then
		why="not run: the sidecar did not start with $(basename "$config")"
		for case_fn in "$@"; do
			fail "$case_fn: $why" "$(cat "$E2E_TMP/start.err")"
		done
		return
	fi
	for case_fn in "$@"; do
		if ! sidecar_alive && ! start_sidecar "$config" 2>"$E2E_TMP/start.err"; then
			fail "$case_fn: not run: the sidecar died and did not restart" "$(cat "$E2E_TMP/start.err")"
			continue
		fi
		"$case_fn"
		if sidecar_alive; then
			pass "$case_fn: the sidecar is still alive"
		else
			fail "$case_fn: the sidecar is still alive" "$(tail -n 15 "$SIDECAR_LOG")"
		fi
	done
	stop_sidecar
}

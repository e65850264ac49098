# shellcheck shell=bash
# Helpers for IntegrationTests/cases/50-hostile.sh and scripts/soak, on top of lib.sh
# (sourced after it, in the same shell).
#
#   hostile ARGS...            IntegrationTests/hostile_client.py from the app namespace
#   raw_codes ADDR PORT TEXT   the status codes of the responses to TEXT, space-separated
#   smuggled_requests MARK     /smuggled... requests the origins served since MARK
#   sidecar_rss_kb             the sidecar's VmRSS
#   hostile_scenario CONFIG CASE...   scenario, counting that the sidecar survives each case

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

# hostile_scenario CONFIG CASE...: scenario (lib/cases.sh) that also counts, after each case,
# that the sidecar survived it: here surviving is half of what each case checks.
hostile_scenario() { scenario --alive-check "$@"; }

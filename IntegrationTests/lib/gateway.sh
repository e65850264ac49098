# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# The egress gateway: `sluice gateway` in sl-gw and its access log.

GATEWAY_PID=
GATEWAY_LOG=$E2E_TMP/gateway.log
GATEWAY_ACCESS_LOG=$E2E_TMP/gateway.access.log
GATEWAY_PORTS=(80 443 15080) # the listeners of IntegrationTests/configs/gateway/gateway.yaml

gw() { ip netns exec "$NS_GW" "$@"; }

gateway_alive() {
	[[ -n $GATEWAY_PID ]] && pid_running "$GATEWAY_PID"
}

gateway_listening() {
	local port
	for port in "${GATEWAY_PORTS[@]}"; do
		[[ -n $(gw ss -Hltn "sport = :$port") ]] || return 1
	done
}

# start_gateway CONFIG [FLAGS...]: `sluice gateway` in sl-gw (as root: it is not
# captured); returns when every port in GATEWAY_PORTS listens, fails after ~10 s
# or if it exits. Access log (stdout) and stderr go to files of their own.
start_gateway() {
	local config=$1 err_mark out_mark i
	shift
	stop_gateway
	if [[ ! -x $SLUICE_BIN ]]; then
		echo "start_gateway: no binary at $SLUICE_BIN" >&2
		return 1
	fi
	touch "$GATEWAY_ACCESS_LOG" "$GATEWAY_LOG"
	err_mark=$(wc -l <"$GATEWAY_LOG")
	out_mark=$(gateway_access_mark)
	# ip netns exec directly, fd 9 closed: see start_origins.
	ip netns exec "$NS_GW" "$SLUICE_BIN" gateway --config "$config" "$@" \
		>>"$GATEWAY_ACCESS_LOG" 2>>"$GATEWAY_LOG" 9>&- &
	GATEWAY_PID=$!
	record_pid "$GATEWAY_PID"
	for ((i = 0; i < 100; i++)); do
		gateway_listening && return 0
		if ! gateway_alive; then
			wait "$GATEWAY_PID" 2>/dev/null
			echo "start_gateway: sluice gateway exited (status $?) before listening on ${GATEWAY_PORTS[*]}" >&2
			break
		fi
		sleep 0.1
	done
	((i < 100)) || echo "start_gateway: not listening on all of ${GATEWAY_PORTS[*]} after 10 s" >&2
	{
		echo "--- its stderr:"
		tail -n +"$((err_mark + 1))" "$GATEWAY_LOG" | tail -n 15
		echo "--- its stdout:"
		tail -n +"$((out_mark + 1))" "$GATEWAY_ACCESS_LOG" | tail -n 5
	} >&2
	stop_gateway
	return 1
}

stop_gateway() {
	[[ -n $GATEWAY_PID ]] && pid_recorded "$GATEWAY_PID" && kill_pid "$GATEWAY_PID"
	GATEWAY_PID=
}

gateway_access_mark() { wc -l <"$GATEWAY_ACCESS_LOG"; }
gateway_access_records() { json_records "$GATEWAY_ACCESS_LOG" "$1"; }

# check_gateway_access_log DESC MARK JQ_CONDITION: like check_access_log, for
# the gateway's access log.
check_gateway_access_log() {
	if wait_until 3 _json_record_has "$GATEWAY_ACCESS_LOG" "$2" "$3"; then
		pass "$1"
	else
		fail "$1" "no gateway access-log record since line $2 with $3; got:"
		indent "$(tail -n +"$(($2 + 1))" "$GATEWAY_ACCESS_LOG")"
	fi
}

# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# The sidecar: the capture rules (scripts/sluice-init in sl-app) and `sluice sidecar` as the
# proxy uid, its stderr log and its JSON access log.

SIDECAR_PID=
SIDECAR_LOG=$E2E_TMP/sidecar.log
ACCESS_LOG=$E2E_TMP/sidecar.access.log

capture_installed() {
	app iptables-save -t nat 2>/dev/null | grep -q -- "--to-ports $OUTBOUND_PORT"
}

# install_capture: sluice-init in the app namespace, as the init container would.
install_capture() {
	local out
	if [[ ! -x $SLUICE_INIT ]]; then
		echo "install_capture: $SLUICE_INIT is missing or not executable" >&2
		return 1
	fi
	if ! out=$(app "$SLUICE_INIT" 2>&1); then
		echo "install_capture: sluice-init failed:" >&2
		printf '%s\n' "$out" >&2
		return 1
	fi
	if ! capture_installed; then
		echo "install_capture: sluice-init succeeded but no REDIRECT to :$OUTBOUND_PORT is in sl-app's nat table" >&2
		return 1
	fi
}

sidecar_listening() {
	[[ -n $(app ss -Hltn "sport = :$OUTBOUND_PORT") ]]
}

sidecar_alive() {
	[[ -n $SIDECAR_PID ]] && pid_running "$SIDECAR_PID"
}

# start_sidecar CONFIG [FLAGS...]: capture rules (once), then the sidecar in the
# background; returns when :15001 listens, fails after ~10 s or if it exits.
start_sidecar() {
	local config=$1
	shift
	stop_sidecar
	if [[ ! -x $SLUICE_BIN ]]; then
		echo "start_sidecar: no sidecar binary at $SLUICE_BIN" >&2
		return 1
	fi
	capture_installed || install_capture || return 1
	# The proxy uid writes these through /dev/stdout and /dev/stderr, which
	# reopen the file: it must be allowed to open them itself.
	touch "$ACCESS_LOG" "$SIDECAR_LOG"
	chown "$PROXY_UID:$PROXY_UID" "$ACCESS_LOG" "$SIDECAR_LOG"
	local err_mark out_mark
	err_mark=$(wc -l <"$SIDECAR_LOG")
	out_mark=$(access_mark)
	# Not via run_as_proxy: see start_origins on backgrounded functions.
	ip netns exec "$NS_APP" setpriv --reuid "$PROXY_UID" --regid "$PROXY_UID" --clear-groups \
		"$SLUICE_BIN" sidecar --config "$config" "$@" >>"$ACCESS_LOG" 2>>"$SIDECAR_LOG" 9>&- &
	SIDECAR_PID=$!
	record_pid "$SIDECAR_PID"
	local i
	for ((i = 0; i < 100; i++)); do
		sidecar_listening && return 0
		if ! sidecar_alive; then
			wait "$SIDECAR_PID" 2>/dev/null
			echo "start_sidecar: sluice exited (status $?) before listening on :$OUTBOUND_PORT" >&2
			break
		fi
		sleep 0.1
	done
	((i < 100)) || echo "start_sidecar: not listening on :$OUTBOUND_PORT after 10 s" >&2
	{
		echo "--- its stderr:"
		tail -n +"$((err_mark + 1))" "$SIDECAR_LOG" | tail -n 15
		echo "--- its stdout:"
		tail -n +"$((out_mark + 1))" "$ACCESS_LOG" | tail -n 5
	} >&2
	stop_sidecar
	return 1
}

stop_sidecar() {
	[[ -n $SIDECAR_PID ]] && kill_pid "$SIDECAR_PID"
	SIDECAR_PID=
}

# start_udp_sidecar CONFIG [UDP_PORT...]: the sidecar with CONFIG (udp.capture) as uid 1337
# with CAP_NET_ADMIN (ambient), which binding an NFQUEUE needs; returns once it listens on
# :15001 and on each UDP_PORT (15053: the DNS proxy) and reads the queue, fails after 10 s.
start_udp_sidecar() {
	local config=$1
	shift
	stop_sidecar
	touch "$ACCESS_LOG" "$SIDECAR_LOG"
	chown "$PROXY_UID:$PROXY_UID" "$ACCESS_LOG" "$SIDECAR_LOG"
	ip netns exec "$NS_APP" setpriv --reuid "$PROXY_UID" --regid "$PROXY_UID" --clear-groups \
		--inh-caps +net_admin --ambient-caps +net_admin \
		"$SLUICE_BIN" sidecar --config "$config" >>"$ACCESS_LOG" 2>>"$SIDECAR_LOG" 9>&- &
	SIDECAR_PID=$!
	record_pid "$SIDECAR_PID"
	wait_until 10 _udp_sidecar_ready "$@"
}

_udp_sidecar_ready() {
	local port
	[[ -n $(app ss -Hltn "sport = :$OUTBOUND_PORT") ]] && grep -q 'reading NFQUEUE' "$SIDECAR_LOG" || return 1
	for port in "$@"; do
		[[ -n $(app ss -Hlun "sport = :$port") ]] || return 1
	done
}

# access_mark / access_records MARK: the access-log lines written since MARK
# that are JSON objects (human text on stdout would be a bug of its own).
access_mark() { wc -l <"$ACCESS_LOG"; }
access_records() {
	tail -n +"$(($1 + 1))" "$ACCESS_LOG" | jq -R -c 'fromjson? | select(type == "object")' 
}

_access_has() { access_records "$1" | jq -e --slurp "any(.[]; $2)" >/dev/null; }

# check_access_log DESC MARK JQ_CONDITION: some access-log record written since
# MARK satisfies the condition (records may trail the response: wait up to 3 s).
check_access_log() {
	if wait_until 3 _access_has "$2" "$3"; then
		pass "$1"
	else
		fail "$1" "no access-log record since line $2 with $3; got:"
		indent "$(tail -n +"$(($2 + 1))" "$ACCESS_LOG")"
	fi
}

# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# Squid as the egress gateway, in sl-gw.

SQUID_PID=
SQUID_PORT=3128
SQUID_CONF=${SQUID_CONF:-$E2E_DIR/squid/squid.conf}
SQUID_ACCESS_LOG=$E2E_TMP/squid.access.log
SQUID_LOG=$E2E_TMP/squid.cache.log

squid_alive() {
	[[ -n $SQUID_PID ]] && pid_running "$SQUID_PID"
}

squid_listening() {
	[[ -n $(gw ss -Hltn "sport = :$SQUID_PORT") ]]
}

# start_squid: Debian's squid in the foreground (-N: one process, no daemon)
# in sl-gw with IntegrationTests/squid/squid.conf; returns when :3128 listens, fails
# after ~10 s or if it exits. Its access log is its stdout, cache.log its stderr.
start_squid() {
	local i out_mark err_mark
	stop_squid
	if ! command -v squid >/dev/null; then
		echo "start_squid: squid is not installed (scripts/setup installs it)" >&2
		return 1
	fi
	# Squid reopens /dev/stdout and /dev/stderr as the proxy user (see squid.conf).
	touch "$SQUID_ACCESS_LOG" "$SQUID_LOG"
	chown proxy:proxy "$SQUID_ACCESS_LOG" "$SQUID_LOG"
	out_mark=$(squid_access_mark)
	err_mark=$(wc -l <"$SQUID_LOG")
	ip netns exec "$NS_GW" squid -N -f "$SQUID_CONF" >>"$SQUID_ACCESS_LOG" 2>>"$SQUID_LOG" 9>&- &
	SQUID_PID=$!
	record_pid "$SQUID_PID"
	for ((i = 0; i < 100; i++)); do
		squid_listening && return 0
		if ! squid_alive; then
			wait "$SQUID_PID" 2>/dev/null
			echo "start_squid: squid exited (status $?) before listening on :$SQUID_PORT" >&2
			break
		fi
		sleep 0.1
	done
	((i < 100)) || echo "start_squid: not listening on :$SQUID_PORT after 10 s" >&2
	{
		echo "--- its cache.log (stderr):"
		tail -n +"$((err_mark + 1))" "$SQUID_LOG" | tail -n 15
		echo "--- its access.log (stdout):"
		tail -n +"$((out_mark + 1))" "$SQUID_ACCESS_LOG" | tail -n 5
	} >&2
	stop_squid
	return 1
}

stop_squid() {
	[[ -n $SQUID_PID ]] && pid_recorded "$SQUID_PID" && kill_pid "$SQUID_PID"
	SQUID_PID=
}

# squid_access_mark / squid_access_lines MARK: Squid's access.log (its native
# format: time elapsed client code/status bytes method URL ...) since MARK.
squid_access_mark() { wc -l <"$SQUID_ACCESS_LOG"; }
squid_access_lines() { tail -n +"$(($1 + 1))" "$SQUID_ACCESS_LOG"; }

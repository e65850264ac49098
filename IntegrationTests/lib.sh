# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# Helpers for the end-to-end suite; sourced by scripts/e2e, then by each
# IntegrationTests/cases/*.sh in the same shell.
#
#   results   check, check_eq, check_not, pass, fail   -> "ok - ..." / "FAIL - ..."
#   network   topo_up, topo_down, app, ext, wait_until
#   processes start_origins/stop_origins, start_sidecar/stop_sidecar, kill_recorded
#   evidence  origin_mark/origin_conns (which addresses the origins saw),
#             access_mark/access_records (the sidecar's JSON access log)
#   gateway   gw, start_gateway/stop_gateway, gateway_access_mark/_records,
#             check_gateway_access_log, start_squid/stop_squid, squid_access_lines,
#             origin_peers/check_origin_peer (who dialled the origin), last_json_record
#
# The test network lives only in namespaces this file creates (prefix sl-) and
# uses documentation addresses (192.0.2.0/24, 2001:db8::/64) with no default
# route, so nothing the suite sends can leave the machine.

SLUICE_ROOT=${SLUICE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
SLUICE_BIN=${SLUICE_BIN:-$SLUICE_ROOT/.build/debug/sluice}
SLUICE_INIT=${SLUICE_INIT:-$SLUICE_ROOT/scripts/sluice-init}
E2E_DIR=$SLUICE_ROOT/IntegrationTests
E2E_CONFIGS=$E2E_DIR/configs
: "${E2E_TMP:?E2E_TMP must be set (scripts/e2e makes it)}"

# --- the test network ------------------------------------------------------

NS_NET=sl-net # holds only the bridge, so the root namespace gets nothing
NS_APP=sl-app # the pod: app (root) + sidecar (uid 1337) + capture rules
NS_GW=sl-gw   # egress gateway (later tests)
NS_EXT=sl-ext # origins standing in for external services
E2E_NAMESPACES=("$NS_APP" "$NS_GW" "$NS_EXT" "$NS_NET")

APP_V4=192.0.2.10
APP_V6=2001:db8::10
GW_V4=192.0.2.20
GW_V6=2001:db8::20
ALIYUN_V4=192.0.2.30 # aliyun.com
UNREG_V4=192.0.2.31  # unregistered.test
SPOOF_V4=192.0.2.32  # spoof-target.test
TCP_V4=192.0.2.33    # tcp-echo.test
STATIC_V4=192.0.2.34 # static-backend.test (STATIC endpoint of static.test)
EXT_V4S=("$ALIYUN_V4" "$UNREG_V4" "$SPOOF_V4" "$TCP_V4" "$STATIC_V4")
EXT_V6=2001:db8::30  # v6.aliyun.test

PROXY_UID=1337
OUTBOUND_PORT=15001

# --- results -----------------------------------------------------------------

E2E_PASSED=0
E2E_FAILED=0
E2E_FAILURES=()

# indent TEXT: print TEXT four spaces in, at most 40 lines, so a failure shows
# its evidence without drowning the report.
indent() {
	[[ -n ${1:-} ]] || return 0
	local lines
	lines=$(printf '%s\n' "$1" | wc -l)
	printf '%s\n' "$1" | head -n 40 | sed 's/^/    /'
	if ((lines > 40)); then
		printf '    ... (%d more lines)\n' $((lines - 40))
	fi
}

pass() {
	E2E_PASSED=$((E2E_PASSED + 1))
	printf 'ok - %s\n' "$1"
}

# fail DESC [WHY]
fail() {
	E2E_FAILED=$((E2E_FAILED + 1))
	E2E_FAILURES+=("$1")
	printf 'FAIL - %s\n' "$1"
	indent "${2:-}"
}

# check DESC CMD...: pass if CMD exits 0; otherwise show what it printed.
check() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if ((rc == 0)); then
		pass "$desc"
	else
		fail "$desc" "exit $rc: $*"
		indent "$out"
	fi
}

# check_not DESC CMD...: pass if CMD fails (for "curl must not get through").
check_not() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if ((rc != 0)); then
		pass "$desc"
	else
		fail "$desc" "expected failure, but it succeeded: $*"
		indent "$out"
	fi
}

# check_exit DESC CODE CMD...: pass only if CMD exits with exactly CODE (curl's 52,
# "empty reply", is not its 7 or 28, nor a typo's 127).
check_exit() {
	local desc=$1 want=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	if ((rc == want)); then
		pass "$desc"
	else
		fail "$desc" "expected exit $want, got $rc: $*"
		indent "$out"
	fi
}

# check_eq DESC EXPECTED ACTUAL
check_eq() {
	if [[ $2 == "$3" ]]; then
		pass "$1"
	else
		fail "$1" "expected '$2', got '$3'"
	fi
}

# section TITLE: a comment line in the report between groups of checks.
section() {
	printf '# %s\n' "$1"
}

# wait_until SECONDS CMD...: poll CMD every 0.1 s until it succeeds; bounded
# both by wall time and by an iteration count (in case CMD itself is slow).
wait_until() {
	local seconds=$1 tries deadline
	shift
	tries=$((seconds * 10))
	deadline=$((SECONDS + seconds))
	while ((tries-- > 0 && SECONDS <= deadline)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# --- namespaces --------------------------------------------------------------

app() { ip netns exec "$NS_APP" "$@"; }
ext() { ip netns exec "$NS_EXT" "$@"; }

ns_exists() { [[ -e /run/netns/$1 ]]; }

# The names every namespace of the test network sees. aliyun.com exists only
# here: it must never be resolved by a real resolver.
hosts_file() {
	cat <<EOF
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
$APP_V4 app.test
$APP_V6 app.test
$GW_V4 gw.test
$GW_V6 gw.test
$ALIYUN_V4 aliyun.com www.aliyun.com
$UNREG_V4 unregistered.test
$SPOOF_V4 spoof-target.test
$TCP_V4 tcp-echo.test
$STATIC_V4 static-backend.test
$EXT_V6 v6.aliyun.test
EOF
}

topo_is_up() {
	local ns
	for ns in "${E2E_NAMESPACES[@]}"; do
		ns_exists "$ns" || return 1
	done
	[[ -f $E2E_TMP/topo.up && -f /etc/netns/$NS_APP/hosts ]]
}

# Build the network; meant to run under `set -e` in a subshell (see topo_up).
_topo_build() {
	local ns name
	ip netns add "$NS_NET"
	ip -n "$NS_NET" link set lo up
	ip -n "$NS_NET" link add br0 type bridge
	ip -n "$NS_NET" link set br0 up
	for ns in "$NS_APP" "$NS_GW" "$NS_EXT"; do
		name=${ns#sl-}
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		# Both veth ends are created inside namespaces: the root namespace never
		# holds a link of the suite, not even for a moment.
		ip -n "$NS_NET" link add "v-$name" type veth peer name eth0 netns "$ns"
		ip -n "$NS_NET" link set "v-$name" master br0 up
		ip -n "$ns" link set eth0 up
	done
	# nodad: v6 addresses are usable at once instead of "tentative" for ~2 s.
	ip -n "$NS_APP" addr add "$APP_V4/24" dev eth0
	ip -n "$NS_APP" addr add "$APP_V6/64" dev eth0 nodad
	ip -n "$NS_GW" addr add "$GW_V4/24" dev eth0
	ip -n "$NS_GW" addr add "$GW_V6/64" dev eth0 nodad
	for name in "${EXT_V4S[@]}"; do
		ip -n "$NS_EXT" addr add "$name/24" dev eth0
	done
	ip -n "$NS_EXT" addr add "$EXT_V6/64" dev eth0 nodad

	if [[ ! -d /etc/netns ]]; then
		mkdir /etc/netns
		touch "$E2E_TMP/etc-netns.created"
	fi
	for ns in "$NS_APP" "$NS_GW" "$NS_EXT"; do
		mkdir -p "/etc/netns/$ns"
		hosts_file >"/etc/netns/$ns/hosts"
		# A resolver on loopback where nothing listens: an unknown name fails
		# fast inside the namespace instead of reaching a real DNS server.
		echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"
	done
	touch "$E2E_TMP/topo.up"
}

# topo_up: create the test network; a no-op when it is already up.
topo_up() {
	topo_is_up && return 0
	topo_down # leftovers of a partial setup would make `ip netns add` fail
	local rc
	# set -e in a subshell: any failed step stops the build (set -e would be
	# ignored if this were an `if` condition, hence the plain statement).
	(
		set -e
		_topo_build
	)
	rc=$?
	if ((rc != 0)); then
		echo "topo_up: building the test network failed (exit $rc)" >&2
		topo_down
		return 1
	fi
}

# topo_down: remove everything topo_up may have created; safe after a partial
# setup and when nothing exists.
topo_down() {
	local ns
	for ns in "${E2E_NAMESPACES[@]}"; do
		if ns_exists "$ns"; then
			ip netns del "$ns" || echo "topo_down: cannot delete namespace $ns" >&2
		fi
		rm -rf "/etc/netns/$ns"
	done
	# Only remove /etc/netns if this run created it (rmdir refuses if not empty).
	if [[ -f $E2E_TMP/etc-netns.created ]]; then
		rmdir /etc/netns 2>/dev/null && rm -f "$E2E_TMP/etc-netns.created"
	fi
	rm -f "$E2E_TMP/topo.up"
}

# --- processes ---------------------------------------------------------------

# Every background process the suite starts is recorded here, so cleanup kills
# exactly those pids and nothing else.
E2E_PIDS=()

record_pid() { E2E_PIDS+=("$1"); }

forget_pid() {
	local pid kept=()
	for pid in "${E2E_PIDS[@]}"; do
		[[ $pid == "$1" ]] || kept+=("$pid")
	done
	E2E_PIDS=("${kept[@]}")
}

# pid_running PID: alive and not a zombie (kill -0 also succeeds on a zombie,
# which would make every stop wait for its timeout).
pid_running() {
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]
}

# kill_pid PID: TERM, up to 5 s to exit, then KILL; reaps it.
kill_pid() {
	local pid=$1 i
	if pid_running "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			pid_running "$pid" || break
			sleep 0.1
		done
		pid_running "$pid" && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	forget_pid "$pid"
}

kill_recorded() {
	local pid
	for pid in "${E2E_PIDS[@]}"; do
		kill_pid "$pid"
	done
}

# --- origins -----------------------------------------------------------------

ORIGIN_PID=
ORIGIN_LOG=$E2E_TMP/origin.conns.jsonl
CA_CERT=$E2E_TMP/ca.crt

# make_certs: a CA of our own and one certificate for every origin name. The
# .test names are listed one by one because OpenSSL ignores a "*.test" wildcard
# (a wildcard needs two labels to its right).
make_certs() {
	[[ -f $E2E_TMP/origin.crt ]] && return 0
	local dir=$E2E_TMP
	{
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$dir/ca.key" -out "$dir/ca.crt" -days 2 -subj "/CN=sluice e2e CA" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
			openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
				-keyout "$dir/origin.key" -out "$dir/origin.csr" -subj "/CN=aliyun.com" &&
			printf '%s\n' \
				"subjectAltName=DNS:aliyun.com,DNS:www.aliyun.com,DNS:*.aliyun.test,DNS:*.test,DNS:unregistered.test,DNS:spoof-target.test,DNS:tcp-echo.test,DNS:static.test,DNS:static-backend.test" \
				"extendedKeyUsage=serverAuth" "basicConstraints=CA:FALSE" >"$dir/origin.ext" &&
			openssl x509 -req -in "$dir/origin.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
				-CAcreateserial -days 2 -extfile "$dir/origin.ext" -out "$dir/origin.crt"
	} >"$dir/openssl.log" 2>&1 || {
		echo "make_certs: openssl failed:" >&2
		cat "$dir/openssl.log" >&2
		return 1
	}
}

origins_listening() {
	local n
	n=$(ext ss -Hltn '( sport = :80 or sport = :443 or sport = :7000 or sport = :7001 )' | wc -l)
	((n >= 4))
}

# start_origins: the origin process in sl-ext; a no-op when it already runs.
# Background starts call `ip netns exec` directly, never through a function:
# a backgrounded function is a bash subshell, and its pid is not the process
# that must be stopped. They close fd 9, the runner's lock, so that a process
# left behind by a killed run does not keep the next run locked out.
start_origins() {
	if [[ -n $ORIGIN_PID ]] && pid_running "$ORIGIN_PID"; then
		return 0
	fi
	make_certs || return 1
	touch "$ORIGIN_LOG"
	ip netns exec "$NS_EXT" python3 -u "$E2E_DIR/origin.py" --conn-log "$ORIGIN_LOG" \
		--cert "$E2E_TMP/origin.crt" --key "$E2E_TMP/origin.key" \
		>>"$E2E_TMP/origin.out" 2>&1 9>&- &
	ORIGIN_PID=$!
	record_pid "$ORIGIN_PID"
	if ! wait_until 10 origins_listening; then
		echo "start_origins: origins not listening after 10 s:" >&2
		tail -n 20 "$E2E_TMP/origin.out" >&2
		stop_origins
		return 1
	fi
}

stop_origins() {
	[[ -n $ORIGIN_PID ]] && kill_pid "$ORIGIN_PID"
	ORIGIN_PID=
}

# origin_mark: the current end of the connection log; pass it to origin_conns
# to look only at connections made after this point.
origin_mark() { wc -l <"$ORIGIN_LOG"; }

# origin_conns MARK LOCAL_IP [LISTENER]: how many connections the origins
# accepted on LOCAL_IP (and LISTENER port) since MARK.
origin_conns() {
	local mark=$1 local_ip=$2 listener=${3:-}
	tail -n +"$((mark + 1))" "$ORIGIN_LOG" |
		jq -c --arg ip "$local_ip" --arg port "$listener" \
			'select(.local == $ip and ($port == "" or (.listener | tostring) == $port))' |
		wc -l
}

# origin_settle: the origin logs on accept, which can trail the client's answer
# by a moment; wait that moment before asserting that something did NOT happen.
origin_settle() { sleep 0.5; }

_origin_saw() { (($(origin_conns "$@") > 0)); }

# check_origin_saw DESC MARK IP [PORT]: some connection reached IP since MARK.
check_origin_saw() {
	local desc=$1
	shift
	if wait_until 2 _origin_saw "$@"; then
		pass "$desc"
	else
		fail "$desc" "no connection to $2${3:+ port $3} in the origin log since line $1"
		indent "$(tail -n +"$(($1 + 1))" "$ORIGIN_LOG")"
	fi
}

# check_origin_never DESC MARK IP [PORT]: no connection reached IP since MARK.
check_origin_never() {
	local desc=$1 n
	shift
	origin_settle
	n=$(origin_conns "$@")
	if ((n == 0)); then
		pass "$desc"
	else
		fail "$desc" "$n connection(s) to $2${3:+ port $3} in the origin log:"
		indent "$(tail -n +"$(($1 + 1))" "$ORIGIN_LOG")"
	fi
}

# --- the sidecar -------------------------------------------------------------

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

# --- clients (run in the app namespace, as root: captured traffic) ----------

CURL_MAX_TIME=${CURL_MAX_TIME:-10}

# app_curl ARGS...: curl from the app, bounded, with the suite's CA.
app_curl() {
	app curl -sS --max-time "$CURL_MAX_TIME" --cacert "$CA_CERT" "$@"
}

# app_status ARGS...: the HTTP status code ("000" when there was no response).
app_status() {
	app curl -s -o /dev/null -w '%{http_code}' --max-time "$CURL_MAX_TIME" --cacert "$CA_CERT" "$@"
}

# client ARGS...: IntegrationTests/client.py from the app namespace.
client() {
	app python3 "$E2E_DIR/client.py" "$@"
}

# --- whole-run lifecycle -----------------------------------------------------

# e2e_reset: back to "nothing running, no network" between case files.
e2e_reset() {
	stop_sidecar
	stop_origins
	kill_recorded
	topo_down
}

# --- the egress gateway (sl-gw) ------------------------------------------------

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

# pid_recorded PID: PID is still in E2E_PIDS (kill_recorded may have stopped and
# forgotten it already; a pid no longer ours must not be signalled).
pid_recorded() {
	local pid
	for pid in "${E2E_PIDS[@]}"; do
		[[ $pid == "$1" ]] && return 0
	done
	return 1
}

stop_gateway() {
	[[ -n $GATEWAY_PID ]] && pid_recorded "$GATEWAY_PID" && kill_pid "$GATEWAY_PID"
	GATEWAY_PID=
}

# json_records FILE MARK: the lines of FILE after line MARK that are JSON objects.
json_records() {
	tail -n +"$(($2 + 1))" "$1" | jq -R -c 'fromjson? | select(type == "object")'
}

# _json_record_has FILE MARK JQ_CONDITION: some record since MARK satisfies it.
_json_record_has() { json_records "$1" "$2" | jq -e --slurp "any(.[]; $3)" >/dev/null; }

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

# --- Squid as the egress gateway (sl-gw) ---------------------------------------

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

# --- evidence across hops (gateway cases) ---------------------------------------

# origin_peers MARK LOCAL_IP [LISTENER]: the distinct peer addresses of the
# connections the origins accepted on LOCAL_IP (and LISTENER) since MARK, sorted
# and space-separated: who actually dialled the origin.
origin_peers() {
	local mark=$1 local_ip=$2 listener=${3:-}
	tail -n +"$((mark + 1))" "$ORIGIN_LOG" |
		jq -r --arg ip "$local_ip" --arg port "$listener" \
			'select(.local == $ip and ($port == "" or (.listener | tostring) == $port)) | .peer' |
		sort -u | paste -sd' '
}

# check_origin_reached_via DESC MARK IP PORT PEER UPSTREAM_LOCAL: the request
# reached IP:PORT from PEER. Either the origin saw new connections since MARK, all
# from PEER, or it saw none because the proxy reused a pooled connection — then
# the proxy's own log line must show that connection's local end on PEER
# (UPSTREAM_LOCAL is its upstream_local_address).
check_origin_reached_via() {
	local desc=$1 mark=$2 ip=$3 port=$4 peer=$5 local_addr=$6 peers
	origin_settle
	peers=$(origin_peers "$mark" "$ip" "$port")
	if [[ $peers == "$peer" ]]; then
		pass "$desc"
	elif [[ -z $peers && $local_addr == "$peer:"* ]]; then
		pass "$desc (a pooled connection from $local_addr)"
	else
		fail "$desc" "new connections to $ip:$port came from '${peers:-nobody}' and the proxy's upstream_local_address is '$local_addr'; expected $peer; origin log:"
		indent "$(tail -n +"$((mark + 1))" "$ORIGIN_LOG")"
	fi
}

# check_origin_peer DESC MARK IP PORT PEER: IP:PORT was reached since MARK, and
# only ever from PEER.
check_origin_peer() {
	local desc=$1 mark=$2 ip=$3 port=$4 peer=$5 peers
	wait_until 2 _origin_saw "$mark" "$ip" "$port"
	origin_settle
	peers=$(origin_peers "$mark" "$ip" "$port")
	if [[ $peers == "$peer" ]]; then
		pass "$desc"
	else
		fail "$desc" "connections to $ip:$port came from '${peers:-nobody}', expected only $peer; origin log:"
		indent "$(tail -n +"$((mark + 1))" "$ORIGIN_LOG")"
	fi
}

# last_json_record FILE MARK JQ_CONDITION: the last JSON record of FILE written
# since MARK that satisfies the condition, waiting up to 3 s for it (records may
# trail the response); empty output and status 1 if none came.
last_json_record() {
	wait_until 3 _json_record_has "$@" || return 1
	json_records "$1" "$2" | jq -c "select($3)" | tail -n 1
}

# --- metrics, health and admin (operations cases) --------------------------------

# sidecar_scrape / gateway_scrape: the Prometheus text of the sidecar in sl-app /
# the gateway in sl-gw, as a scraper on the pod's own network would get it.
sidecar_scrape() { app curl -sS --max-time 5 http://127.0.0.1:15090/stats/prometheus; }
gateway_scrape() { gw curl -sS --max-time 5 http://127.0.0.1:15090/stats/prometheus; }

# metric_value NAME [LABEL=VALUE...] < SCRAPE: the sum of the samples of NAME
# whose labels include every LABEL="VALUE" (0 when there is none), as an integer.
metric_value() {
	local name=$1
	shift
	awk -v name="$name" -v want="$*" '
		/^#/ || NF < 2 { next }
		{
			series = $0; sub(/ [^ ]+$/, "", series)
			labels = ""; metric = series
			if ((i = index(series, "{")) > 0) {
				metric = substr(series, 1, i - 1)
				labels = "," substr(series, i + 1, length(series) - i - 1)
			}
			if (metric != name) next
			n = split(want, pairs, " ")
			for (j = 1; j <= n; j++) {
				eq = index(pairs[j], "=")
				needle = "," substr(pairs[j], 1, eq - 1) "=\"" substr(pairs[j], eq + 1) "\""
				if (index(labels, needle) == 0) next
			}
			sum += $NF
		}
		END { printf "%.0f\n", sum }'
}

# sidecar_metric / gateway_metric NAME [LABEL=VALUE...]: metric_value on a fresh
# scrape ("" when the scrape failed, so a dead endpoint never reads as 0).
sidecar_metric() {
	local text
	text=$(sidecar_scrape) || return 1
	metric_value "$@" <<<"$text"
}
gateway_metric() {
	local text
	text=$(gateway_scrape) || return 1
	metric_value "$@" <<<"$text"
}

# _metric_reaches SCOPE MIN NAME [LABEL=VALUE...]: SCOPE's metric is >= MIN
# (SCOPE is sidecar or gateway). Metrics may trail the response by a moment.
_metric_reaches() {
	local scope=$1 min=$2 value
	shift 2
	value=$("${scope}_metric" "$@") && [[ -n $value ]] && ((value >= min))
}

# check_metric_reaches DESC SCOPE MIN NAME [LABEL=VALUE...]: waits up to 3 s for
# the metric to reach MIN; on failure shows the matching lines of the scrape.
check_metric_reaches() {
	local desc=$1 scope=$2 min=$3
	shift 3
	if wait_until 3 _metric_reaches "$scope" "$min" "$@"; then
		pass "$desc"
	else
		fail "$desc" "$1{${*:2}} is '$("${scope}_metric" "$@")', expected >= $min; the scrape has:"
		indent "$("${scope}_scrape" 2>&1 | grep -F -- "$1")"
	fi
}

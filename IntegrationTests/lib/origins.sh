# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# The origins: origin.py in sl-ext stands in for every external service (HTTP, TLS, TCP
# echo, a banner) and logs each connection it accepts, which is the evidence of who dialled
# what: origin_mark / origin_conns / origin_peers and the check_origin_* assertions.

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

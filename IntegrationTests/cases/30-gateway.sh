# shellcheck shell=bash
# The egress gateway end to end: registered traffic leaves the pod through
# `sluice gateway` in sl-gw (192.0.2.20), or through Squid there, and the origin
# sees the gateway, never the app.
#
# Sourced by scripts/e2e after IntegrationTests/lib.sh, on a fresh test network.
# Configs are in IntegrationTests/configs/gateway/: gateway.yaml for the gateway, one
# sidecar-*.yaml per way of reaching it. unregistered.test is registered at the
# sidecar only, so what the app gets for it is the gateway's refusal.
# Every case is a function named after what the user sees; a scenario (lib/cases.sh) runs a
# list of them against one sidecar config while the gateway keeps running.

GW_ABSENT_V4=192.0.2.21 # a gateway address nobody on the test network has

# Every field of the access log (docs/operations.md, Access log), in its order.
ACCESS_LOG_FIELDS='["start_time","method","path","protocol","response_code","response_flags",
	"bytes_received","bytes_sent","duration","upstream_service_time","x_forwarded_for",
	"user_agent","request_id","authority","upstream_host","upstream_cluster",
	"upstream_local_address","downstream_local_address","downstream_remote_address",
	"requested_server_name","route_name","upstream_transport_failure_reason","trace_id",
	"istio_policy_status","downstream_peer_uri_san"]'

# json_field RECORD FIELD: one field of a JSON record, as jq -r prints it.
json_field() { jq -r --arg f "$2" '.[$f] | if . == null then "null" else tostring end' <<<"$1"; }

# missing_fields RECORD: the access-log fields the record lacks (JSON null counts as present).
missing_fields() {
	jq -r --argjson want "$ACCESS_LOG_FIELDS" '. as $r | [$want[] as $f | select($r | has($f) | not) | $f] | join(" ")' <<<"$1"
}

# gateway_record MARK JQ_CONDITION / sidecar_record MARK JQ_CONDITION: the last
# matching access-log record since MARK (empty if none came within 3 s).
gateway_record() { last_json_record "$GATEWAY_ACCESS_LOG" "$1" "$2"; }
sidecar_record() { last_json_record "$ACCESS_LOG" "$1" "$2"; }

# check_record DESC RECORD JQ_CONDITION [LOG]: the record satisfies the condition.
check_record() {
	if [[ -z $2 ]]; then
		fail "$1" "no record to check $3 against${4:+; the end of $4:}"
		[[ -n ${4:-} ]] && indent "$(tail -n 5 "$4")"
	elif jq -e "$3" <<<"$2" >/dev/null 2>&1; then
		pass "$1"
	else
		fail "$1" "record does not satisfy $3: $2"
	fi
}

# check_has_all_fields DESC RECORD: every access-log field is a key of the record.
check_has_all_fields() {
	local missing
	if [[ -z $2 ]]; then
		fail "$1" "no record"
		return
	fi
	if ! missing=$(missing_fields "$2" 2>&1); then
		fail "$1" "jq: $missing"
	elif [[ -z $missing ]]; then
		pass "$1"
	else
		fail "$1" "missing: $missing; record: $2"
	fi
}

# proxy_client_curl ARGS...: curl in the app namespace as the proxy uid, which
# the capture rules let through: a client that talks to the gateway itself.
proxy_client_curl() {
	app setpriv --reuid "$PROXY_UID" --regid "$PROXY_UID" --clear-groups \
		curl -sS --max-time "$CURL_MAX_TIME" "$@"
}

# sidecar_log_mark / sidecar_log_mentions MARK TEXT: the sidecar's stderr since
# MARK contains TEXT.
sidecar_log_mark() { wc -l <"$SIDECAR_LOG"; }
sidecar_log_mentions() { tail -n +"$(($1 + 1))" "$SIDECAR_LOG" | grep -qF -- "$2"; }

# squid_logged MARK REGEX: a line of Squid's access.log since MARK matches REGEX.
squid_logged() { squid_access_lines "$1" | grep -Eq -- "$2"; }

# check_squid_logged DESC MARK REGEX: waits up to 2 s for such a line.
check_squid_logged() {
	if wait_until 2 squid_logged "$2" "$3"; then
		pass "$1"
	else
		fail "$1" "no line matching /$3/ in Squid's access.log since line $2; got:"
		indent "$(squid_access_lines "$2")"
	fi
}

# --- the harness alone: the gateway answers clients on the test network ----

harness_gateway_routes_by_host() {
	local mark
	mark=$(origin_mark)
	check_eq "harness: the gateway answers Host: aliyun.com on 192.0.2.20:80 with 301" 301 \
		"$(ext curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: aliyun.com' "http://$GW_V4/")"
	check_origin_peer "harness: the origin saw that request come from the gateway ($GW_V4)" \
		"$mark" "$ALIYUN_V4" 80 "$GW_V4"
	check_eq "harness: no sidecar yet: the app's own curl -sI http://aliyun.com reaches the origin (301)" 301 \
		"$(app_status -I http://aliyun.com/)"
}

# A client that has finished and closed must not leave the gateway holding its
# socket: CLOSE-WAIT a second later means the gateway ignored the client's FIN
# (and keeps the upstream connection of that client too).
gateway_closes_finished_client_connections() {
	local i waiting
	for ((i = 0; i < 3; i++)); do
		ext curl -s -o /dev/null --max-time 5 -H 'Host: aliyun.com' "http://$GW_V4/"
	done
	sleep 1
	waiting=$(gw ss -Htn state close-wait "( sport = :80 )")
	if [[ -z $waiting ]]; then
		pass "gateway: 3 finished curl requests leave no client connection half-open (CLOSE-WAIT) on :80"
	else
		fail "gateway: 3 finished curl requests leave no client connection half-open (CLOSE-WAIT) on :80" \
			"$(wc -l <<<"$waiting") socket(s) still in CLOSE-WAIT; the gateway's sockets:"
		indent "$(gw ss -Htan | grep -v LISTEN)"
	fi
}

# --- protocol: istio (HTTP to the gateway's :80, TLS to its :443) -----------

istio_http_leaves_through_gateway() {
	local mark access gw_access rec side
	mark=$(origin_mark)
	access=$(access_mark)
	gw_access=$(gateway_access_mark)
	check_eq "via gateway: curl -sI http://aliyun.com answers 301" 301 "$(app_status -I http://aliyun.com/)"
	rec=$(gateway_record "$gw_access" '.authority == "aliyun.com" and .method == "HEAD"')
	check_origin_reached_via "via gateway: the origin was reached from the gateway ($GW_V4), not from the app" \
		"$mark" "$ALIYUN_V4" 80 "$GW_V4" "$(json_field "$rec" upstream_local_address)"

	check_eq "via gateway: the gateway wrote exactly one JSON access-log line for the request" 1 \
		"$(gateway_access_records "$gw_access" | jq -c --arg id "$(json_field "$rec" request_id)" 'select(.request_id == $id)' | wc -l)"
	check_eq "gateway log: authority" aliyun.com "$(json_field "$rec" authority)"
	check_eq "gateway log: response_code" 301 "$(json_field "$rec" response_code)"
	check_eq "gateway log: response_flags" - "$(json_field "$rec" response_flags)"
	check_eq "gateway log: upstream_cluster" "outbound|80||aliyun.com" "$(json_field "$rec" upstream_cluster)"
	check_eq "gateway log: upstream_host is the origin it dialled" "$ALIYUN_V4:80" "$(json_field "$rec" upstream_host)"
	check_eq "gateway log: downstream_local_address is its HTTP listener" "$GW_V4:80" \
		"$(json_field "$rec" downstream_local_address)"
	check_record "gateway log: downstream_remote_address is the app ($APP_V4:port)" "$rec" \
		'.downstream_remote_address | test("^192\\.0\\.2\\.10:[0-9]+$")'
	check_record "gateway log: x_forwarded_for contains the app's address" "$rec" \
		'.x_forwarded_for | split(",") | map(gsub(" "; "")) | any(. == "192.0.2.10")'
	check_record "gateway log: start_time is RFC 3339 UTC with milliseconds (…T…:…:….mmmZ)" "$rec" \
		'.start_time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")'
	check_record "gateway log: method HEAD, path /, protocol HTTP/1.1, user_agent curl" "$rec" \
		'.method == "HEAD" and .path == "/" and .protocol == "HTTP/1.1" and (.user_agent | startswith("curl/"))'
	check_record "gateway log: numbers are numbers (bytes, duration), upstream_service_time a string" "$rec" \
		'(.bytes_received | type) == "number" and (.bytes_sent | type) == "number" and (.duration | type) == "number" and (.upstream_service_time | type) == "string"'
	check_has_all_fields "gateway log: every access-log field is present" "$rec"
	check_record "gateway log: absent values are JSON null (requested_server_name, trace_id, transport failure)" "$rec" \
		'.requested_server_name == null and .trace_id == null and .upstream_transport_failure_reason == null'

	side=$(sidecar_record "$access" '.authority == "aliyun.com" and .method == "HEAD"')
	check_record "sidecar log: the same request went to the gateway (upstream_host $GW_V4:80, outbound|80||aliyun.com)" \
		"$side" '.upstream_host == "192.0.2.20:80" and .upstream_cluster == "outbound|80||aliyun.com" and .response_code == 301' \
		"$ACCESS_LOG"
	check_eq "via gateway: sidecar and gateway log the same request_id" \
		"$(json_field "$side" request_id)" "$(json_field "$rec" request_id)"
}

istio_tls_passes_through_gateway() {
	local mark gw_access rec
	mark=$(origin_mark)
	gw_access=$(gateway_access_mark)
	check_eq "TLS via gateway: curl --cacert ca https://aliyun.com answers 301" 301 "$(app_status -I https://aliyun.com/)"
	check_origin_peer "TLS via gateway: the origin's :443 saw the connection from the gateway ($GW_V4)" \
		"$mark" "$ALIYUN_V4" 443 "$GW_V4"
	rec=$(gateway_record "$gw_access" '.requested_server_name == "aliyun.com"')
	check_record "TLS via gateway: gateway log has requested_server_name aliyun.com, outbound|443||aliyun.com, $ALIYUN_V4:443" \
		"$rec" '.upstream_cluster == "outbound|443||aliyun.com" and .upstream_host == "192.0.2.30:443" and .downstream_local_address == "192.0.2.20:443"' \
		"$GATEWAY_ACCESS_LOG"
	check_has_all_fields "TLS via gateway: the TLS record has every access-log field too" "$rec"
}

gateway_unregistered_http_is_404() {
	local mark gw_access
	mark=$(origin_mark)
	gw_access=$(gateway_access_mark)
	check_eq "gateway refuses: curl -sI http://unregistered.test (registered only at the sidecar) answers 404" 404 \
		"$(app_status -I http://unregistered.test/)"
	check_gateway_access_log "gateway refuses: its log says 404 NR for unregistered.test" "$gw_access" \
		'.authority == "unregistered.test" and .response_code == 404 and .response_flags == "NR"'
	check_origin_never "gateway refuses: $UNREG_V4 saw no connection" "$mark" "$UNREG_V4"
}

gateway_unregistered_tls_closed() {
	local mark gw_access
	mark=$(origin_mark)
	gw_access=$(gateway_access_mark)
	check_exit "gateway refuses: curl https://unregistered.test fails in the TLS handshake (curl exit 35)" 35 \
		app_curl -I https://unregistered.test/
	check "gateway refuses: a ClientHello for unregistered.test is closed without a byte" \
		client expect-closed "$UNREG_V4" 443 --tls-sni unregistered.test
	check_gateway_access_log "gateway refuses: its log says NR for SNI unregistered.test" "$gw_access" \
		'.requested_server_name == "unregistered.test" and .response_flags == "NR" and .upstream_cluster == "BlackHoleCluster"'
	check_origin_never "gateway refuses: $UNREG_V4:443 saw no connection" "$mark" "$UNREG_V4" 443
}

# gateway_connect_keeps_bytes_sent_with_head: a client that sends the CONNECT head,
# its first tunnel bytes and a FIN in one write (what `printf ... | nc -N` does) gets
# those bytes echoed: the gateway keeps the bytes and the EOF while it dials, and
# replays the EOF behind the bytes once the tunnel is spliced.
gateway_connect_keeps_bytes_sent_with_head() {
	local gw_access out
	gw_access=$(gateway_access_mark)
	# shellcheck disable=SC2016 # the Python program is single-quoted on purpose
	out=$(app setpriv --reuid "$PROXY_UID" --regid "$PROXY_UID" --clear-groups \
		timeout 10 python3 -c '
import socket, sys
gw, target = sys.argv[1], sys.argv[2]
sock = socket.create_connection((gw, 15080), timeout=5)
sock.sendall(b"CONNECT " + target.encode() + b" HTTP/1.1\r\nHost: " + target.encode() + b"\r\n\r\nsent-with-the-head")
sock.shutdown(socket.SHUT_WR)
got = b""
while True:
    piece = sock.recv(65536)
    if not piece:
        break
    got += piece
head, _, body = got.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode("latin-1"), "|", body.decode("latin-1"))
' "$GW_V4" "$TCP_V4:7000" 2>&1)
	check_eq "gateway CONNECT: tunnel bytes sent in the CONNECT head's write, then a FIN, are echoed back (then EOF)" \
		"HTTP/1.1 200 OK | sent-with-the-head" "$out"
	check_gateway_access_log "gateway CONNECT: its log counts those 18 bytes each way" "$gw_access" \
		'.method == "CONNECT" and .authority == "192.0.2.33:7000" and .response_code == 200 and .bytes_received == 18 and .bytes_sent == 18'
}

gateway_connect_unregistered_is_403() {
	local mark gw_access
	mark=$(origin_mark)
	gw_access=$(gateway_access_mark)
	check_eq "gateway CONNECT: curl -p -x http://$GW_V4:15080 http://aliyun.com gets 200 from the proxy, then 301" \
		"200 301" "$(proxy_client_curl -o /dev/null -w '%{http_connect} %{http_code}' -p -x "http://$GW_V4:15080" http://aliyun.com/)"
	check_eq "gateway CONNECT: curl -p -x http://$GW_V4:15080 http://unregistered.test gets 403" \
		403 "$(proxy_client_curl -o /dev/null -w '%{http_connect}' -p -x "http://$GW_V4:15080" http://unregistered.test/ 2>/dev/null)"
	check_gateway_access_log "gateway CONNECT: its log says CONNECT unregistered.test:80 403 NR" "$gw_access" \
		'.method == "CONNECT" and .authority == "unregistered.test:80" and .response_code == 403 and .response_flags == "NR"'
	check_origin_never "gateway CONNECT: $UNREG_V4 saw no connection" "$mark" "$UNREG_V4"
}

sidecar_denial_logged_as_blackhole() {
	local mark access gw_access rec
	mark=$(origin_mark)
	access=$(access_mark)
	gw_access=$(gateway_access_mark)
	check_eq "sidecar refuses: curl -sI http://spoof-target.test (registered nowhere) answers 502" 502 \
		"$(app_status -I http://spoof-target.test/)"
	rec=$(sidecar_record "$access" '.authority == "spoof-target.test"')
	check_record "sidecar log: 502, route_name block_all, upstream_cluster BlackHoleCluster, no upstream_host" "$rec" \
		'.response_code == 502 and .route_name == "block_all" and .upstream_cluster == "BlackHoleCluster" and .upstream_host == null' \
		"$ACCESS_LOG"
	check_has_all_fields "sidecar log: the 502 record has every access-log field" "$rec"
	origin_settle
	check_eq "sidecar refuses: the gateway never saw spoof-target.test" "" \
		"$(gateway_access_records "$gw_access" | jq -c 'select(.authority == "spoof-target.test")')"
	check_origin_never "sidecar refuses: $SPOOF_V4 saw no connection" "$mark" "$SPOOF_V4"
}

istio_opaque_tcp_goes_direct() {
	local mark
	mark=$(origin_mark)
	check "istio mode: 1 MiB TCP echo to registered $TCP_V4:7000 round-trips" client echo "$TCP_V4" 7000 --keep-open
	check_origin_peer "istio mode: opaque TCP cannot be routed by the gateway and goes direct (origin saw the app)" \
		"$mark" "$TCP_V4" 7000 "$APP_V4"
}

dns_failure_at_gateway_is_503_df() {
	local mark gw_access
	mark=$(origin_mark)
	gw_access=$(gateway_access_mark)
	check_eq "gateway DNS failure: curl http://nowhere.test (no address anywhere) answers 503" 503 \
		"$(app_status --resolve "nowhere.test:80:$UNREG_V4" http://nowhere.test/)"
	check_gateway_access_log "gateway DNS failure: its log says 503 DF for nowhere.test" "$gw_access" \
		'.authority == "nowhere.test" and .response_code == 503 and .response_flags == "DF"'
	check_origin_never "gateway DNS failure: $UNREG_V4 saw no connection" "$mark" "$UNREG_V4"
}

refused_at_gateway_is_503_uf() {
	local gw_access
	gw_access=$(gateway_access_mark)
	check_eq "gateway connect refused: curl http://closed.test (endpoint $ALIYUN_V4:8080, nothing listens) answers 503" 503 \
		"$(app_status --resolve "closed.test:80:$UNREG_V4" http://closed.test/)"
	# UF,URX: Istio's default retry policy retried the connect failure twice (docs/configuration.md).
	check_gateway_access_log "gateway connect refused: its log says 503 UF,URX for closed.test" "$gw_access" \
		'.authority == "closed.test" and .response_code == 503 and .response_flags == "UF,URX"'
}

# --- protocol: connect, to the sluice gateway's CONNECT listener -------------

connect_http_tunnels_through_gateway() {
	local mark
	mark=$(origin_mark)
	check_eq "CONNECT mode: curl -sI http://aliyun.com answers 301" 301 "$(app_status -I http://aliyun.com/)"
	check_origin_peer "CONNECT mode: the origin saw the gateway ($GW_V4)" "$mark" "$ALIYUN_V4" 80 "$GW_V4"
}

# gateway_tunnels_from_app: established connections from the app to the
# gateway's CONNECT port, as the gateway's namespace sees them.
gateway_tunnels_from_app() {
	gw ss -Htn state established "( sport = :15080 )" | grep -c " $APP_V4:" || true
}

connect_tunnels_do_not_pile_up() {
	local i open loops
	# The sidecar keeps idle upstream connections (here: tunnels) for reuse, one pool per
	# event loop, so sequential requests need at most one tunnel per loop.
	loops=$(nproc)
	for ((i = 0; i < 5; i++)); do
		app_status -I http://aliyun.com/ >/dev/null
	done
	sleep 1
	open=$(gateway_tunnels_from_app)
	if ((open <= loops)); then
		pass "CONNECT mode: after 5 finished curl requests the gateway holds at most $loops tunnels from the app ($open)"
	else
		fail "CONNECT mode: after 5 finished curl requests the gateway holds at most $loops tunnels from the app" \
			"$open tunnels still open; the app's connections are closed, the sidecar's upstream ones are not:"
		indent "$(gw ss -Htn state established "( sport = :15080 )")"
	fi
}

# connect_tunnels_logged MARK: after the connect scenario (the sidecar has
# stopped, so every tunnel is closed), the gateway has logged the HTTP tunnel.
# A tunnel is logged when it closes; checked here so that a sidecar that keeps
# its upstream connection open does not hide what the gateway logs.
connect_tunnels_logged() {
	check_gateway_access_log "CONNECT mode: gateway log has CONNECT aliyun.com:80 200 from the app, outbound|80||aliyun.com" "$1" \
		'.method == "CONNECT" and .authority == "aliyun.com:80" and .response_code == 200 and .upstream_cluster == "outbound|80||aliyun.com" and (.downstream_remote_address | startswith("192.0.2.10:"))'
}

connect_tls_tunnels_through_gateway() {
	local mark gw_access
	mark=$(origin_mark)
	gw_access=$(gateway_access_mark)
	check_eq "CONNECT mode: curl --cacert ca https://aliyun.com answers 301" 301 "$(app_status -I https://aliyun.com/)"
	check_origin_peer "CONNECT mode: the origin's :443 saw the gateway ($GW_V4)" "$mark" "$ALIYUN_V4" 443 "$GW_V4"
	check_gateway_access_log "CONNECT mode: gateway log has CONNECT aliyun.com:443 200" "$gw_access" \
		'.method == "CONNECT" and .authority == "aliyun.com:443" and .response_code == 200'
}

connect_opaque_tcp_tunnels_through_gateway() {
	local mark gw_access
	mark=$(origin_mark)
	gw_access=$(gateway_access_mark)
	check "CONNECT mode: 1 MiB TCP echo to $TCP_V4:7000 round-trips through the gateway" \
		client echo "$TCP_V4" 7000 --keep-open
	check "CONNECT mode: the echo completes after the client half-closes (EOF crosses the tunnel both ways)" \
		client echo "$TCP_V4" 7000
	check_origin_peer "CONNECT mode: the TCP origin saw the gateway ($GW_V4), not the app" "$mark" "$TCP_V4" 7000 "$GW_V4"
	check_gateway_access_log "CONNECT mode: the tunnel target is ip:port for an address-matched connection (CONNECT $TCP_V4:7000, 200)" \
		"$gw_access" '.method == "CONNECT" and .authority == "192.0.2.33:7000" and .response_code == 200 and .bytes_received >= 1048576'
}

connect_upstream_failures_at_gateway() {
	local gw_access code
	gw_access=$(gateway_access_mark)
	code=$(app_status --resolve "closed.test:80:$UNREG_V4" http://closed.test/)
	check_eq "CONNECT mode: curl http://closed.test (nothing listens behind the gateway) answers 503" 503 "$code"
	check_gateway_access_log "CONNECT mode: gateway log says CONNECT closed.test:80 503 UF" "$gw_access" \
		'.method == "CONNECT" and .authority == "closed.test:80" and .response_code == 503 and .response_flags == "UF"'
	code=$(app_status --resolve "nowhere.test:80:$UNREG_V4" http://nowhere.test/)
	check_eq "CONNECT mode: curl http://nowhere.test (no address) answers 503" 503 "$code"
	check_gateway_access_log "CONNECT mode: gateway log says CONNECT nowhere.test:80 503 DF" "$gw_access" \
		'.method == "CONNECT" and .authority == "nowhere.test:80" and .response_code == 503 and .response_flags == "DF"'
}

# --- Squid as the gateway (protocol: connect, ports.connect 3128) ------------

harness_squid_tunnels() {
	local squid_mark
	squid_mark=$(squid_access_mark)
	check_eq "harness: Squid tunnels curl -p -x http://$GW_V4:3128 http://aliyun.com (200, then 301)" "200 301" \
		"$(proxy_client_curl -o /dev/null -w '%{http_connect} %{http_code}' -p -x "http://$GW_V4:$SQUID_PORT" http://aliyun.com/)"
	check_eq "harness: Squid refuses CONNECT to a port other than 80/443 (403)" 403 \
		"$(proxy_client_curl -o /dev/null -w '%{http_connect}' -p -x "http://$GW_V4:$SQUID_PORT" "http://tcp-echo.test:7000/" 2>/dev/null)"
	# curl -f's 22: Squid answered the CONNECT with an error status (its 500 once the lookup
	# failed), not 28: a timeout would say nothing about resolving (squid.conf's dns_timeout).
	check_exit "harness: Squid cannot resolve a name outside the hosts file (nowhere.test; no DNS server): it answers the CONNECT with an error (curl -f exit 22)" 22 \
		proxy_client_curl -o /dev/null -f -p -x "http://$GW_V4:$SQUID_PORT" http://nowhere.test/
	check_squid_logged "harness: Squid's access.log records the tunnel" "$squid_mark" \
		'TCP_TUNNEL/200 [0-9]+ CONNECT aliyun\.com:80 '
}

squid_http_via_connect() {
	local mark squid_mark
	mark=$(origin_mark)
	squid_mark=$(squid_access_mark)
	check_eq "Squid gateway: curl -sI http://aliyun.com answers 301" 301 "$(app_status -I http://aliyun.com/)"
	check_origin_peer "Squid gateway: the origin saw Squid's address ($GW_V4)" "$mark" "$ALIYUN_V4" 80 "$GW_V4"
}

# squid_http_tunnel_logged MARK: Squid logs a tunnel when it closes, and the
# sidecar keeps its HTTP tunnel pooled until it stops; checked after that.
squid_http_tunnel_logged() {
	check_squid_logged "Squid gateway: Squid's access.log shows CONNECT aliyun.com:80 from $APP_V4" "$1" \
		" $APP_V4 TCP_TUNNEL/200 [0-9]+ CONNECT aliyun\.com:80 "
}

squid_https_via_connect() {
	local mark squid_mark
	mark=$(origin_mark)
	squid_mark=$(squid_access_mark)
	check_eq "Squid gateway: curl --cacert ca https://aliyun.com answers 301" 301 "$(app_status -I https://aliyun.com/)"
	check_origin_peer "Squid gateway: the origin's :443 saw Squid's address ($GW_V4)" "$mark" "$ALIYUN_V4" 443 "$GW_V4"
	check_squid_logged "Squid gateway: Squid's access.log shows CONNECT aliyun.com:443 from $APP_V4" "$squid_mark" \
		" $APP_V4 TCP_TUNNEL/200 [0-9]+ CONNECT aliyun\.com:443 "
}

# --- failover between gateway addresses ---------------------------------------

failover_to_second_gateway() {
	local mark gw_access log_mark start_ms elapsed_ms code
	mark=$(origin_mark)
	gw_access=$(gateway_access_mark)
	log_mark=$(sidecar_log_mark)
	start_ms=$(date +%s%3N)
	code=$(app_status -I http://aliyun.com/)
	elapsed_ms=$(($(date +%s%3N) - start_ms))
	check_eq "failover: with address [$GW_ABSENT_V4, $GW_V4], curl -sI http://aliyun.com still answers 301 (${elapsed_ms} ms)" \
		301 "$code"
	check_gateway_access_log "failover: the gateway at $GW_V4 logged it" "$gw_access" \
		'.authority == "aliyun.com" and .response_code == 301'
	check_origin_reached_via "failover: the request left through the gateway at $GW_V4" "$mark" "$ALIYUN_V4" 80 "$GW_V4" \
		"$(json_field "$(gateway_record "$gw_access" '.authority == "aliyun.com" and .response_code == 301')" upstream_local_address)"
	wait_until 2 sidecar_log_mentions "$log_mark" "$GW_ABSENT_V4"
	check "failover: the sidecar's stderr names the address that failed ($GW_ABSENT_V4)" \
		sidecar_log_mentions "$log_mark" "$GW_ABSENT_V4"
	check_eq "failover: TLS too: curl https://aliyun.com answers 301" 301 "$(app_status -I https://aliyun.com/)"
}

# --- upstream failures at the sidecar itself (no gateway) -------------------

refused_upstream_is_503_uf() {
	local access
	access=$(access_mark)
	check_eq "direct, connect refused: curl http://closed.test (endpoint $ALIYUN_V4:8080, nothing listens) answers 503" 503 \
		"$(app_status --resolve "closed.test:80:$UNREG_V4" http://closed.test/)"
	# UF,URX: a registered host without a VirtualService gets Istio's default retry policy,
	# which retried the connect failure twice (docs/configuration.md).
	check_access_log "direct, connect refused: sidecar log says 503 UF,URX, outbound|80||closed.test" "$access" \
		'.authority == "closed.test" and .response_code == 503 and .response_flags == "UF,URX" and .upstream_cluster == "outbound|80||closed.test"'
}

unresolvable_upstream_is_503_df() {
	local mark access
	mark=$(origin_mark)
	access=$(access_mark)
	check_eq "direct, no DNS answer: curl http://nowhere.test answers 503" 503 \
		"$(app_status --resolve "nowhere.test:80:$UNREG_V4" http://nowhere.test/)"
	check_access_log "direct, no DNS answer: sidecar log says 503 DF for nowhere.test" "$access" \
		'.authority == "nowhere.test" and .response_code == 503 and .response_flags == "DF"'
	check_origin_never "direct, no DNS answer: the dialled $UNREG_V4 saw no connection" "$mark" "$UNREG_V4"
}

# --- running them ----------------------------------------------------------------

gateway_cases() {
	local gw_access=0 squid_mark=0
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi

	# One gateway (configs/gateway/gateway.yaml) for these scenarios: a scenario leaves it
	# running for the next one that asks for the same.
	scenario --gateway gateway/gateway.yaml none \
		harness_gateway_routes_by_host \
		gateway_closes_finished_client_connections \
		gateway_connect_keeps_bytes_sent_with_head
	scenario --gateway gateway/gateway.yaml gateway/sidecar-istio.yaml \
		istio_http_leaves_through_gateway \
		istio_tls_passes_through_gateway \
		gateway_unregistered_http_is_404 \
		gateway_unregistered_tls_closed \
		gateway_connect_unregistered_is_403 \
		sidecar_denial_logged_as_blackhole \
		istio_opaque_tcp_goes_direct \
		dns_failure_at_gateway_is_503_df \
		refused_at_gateway_is_503_uf
	# The log may not exist yet (a filter skipped the gateway so far): then all of it is new.
	[[ -f $GATEWAY_ACCESS_LOG ]] && gw_access=$(gateway_access_mark)
	scenario --gateway gateway/gateway.yaml gateway/sidecar-connect.yaml \
		connect_http_tunnels_through_gateway \
		connect_tls_tunnels_through_gateway \
		connect_opaque_tcp_tunnels_through_gateway \
		connect_upstream_failures_at_gateway \
		connect_tunnels_do_not_pile_up
	# The sidecar has stopped, so its tunnels to aliyun.com:80 are closed, and logged.
	wants connect_http_tunnels_through_gateway connect_tunnels_do_not_pile_up &&
		connect_tunnels_logged "$gw_access"
	scenario --gateway gateway/gateway.yaml gateway/sidecar-failover.yaml \
		failover_to_second_gateway
	# GATEWAY_PID is empty only if it never started (then every case above failed already).
	if [[ -n $GATEWAY_PID ]]; then
		check "the gateway is still running after every scenario" gateway_alive
	fi

	scenario --squid none \
		harness_squid_tunnels
	[[ -f $SQUID_ACCESS_LOG ]] && squid_mark=$(squid_access_mark)
	scenario --squid gateway/sidecar-squid.yaml \
		squid_http_via_connect \
		squid_https_via_connect
	# Squid logs the HTTP tunnel once the sidecar, which pooled it, has stopped.
	wants squid_http_via_connect && squid_http_tunnel_logged "$squid_mark"

	scenario gateway/sidecar-direct.yaml \
		refused_upstream_is_503_uf \
		unresolvable_upstream_is_503_df
}

gateway_cases

# shellcheck shell=bash
# Hostile input and faults: what a misbehaving app (or an attacker inside the
# pod) sees when it pushes the sidecar's limits, HTTP parser, Host/SNI
# handling, policy and data path; and what the app sees when an upstream dies
# mid-body. One REGISTRY_ONLY sidecar (configs/hostile/sidecar.yaml:
# aliyun.com:80 HTTP and :443 TLS registered, limits set low).
#
# Sourced by scripts/e2e after IntegrationTests/lib.sh, on a fresh test network.

# shellcheck source=../hostile-lib.sh
source "$E2E_DIR/hostile-lib.sh"

H_GET='GET / HTTP/1.1\r\nHost: aliyun.com\r\n\r\n'

# --- limits ------------------------------------------------------------------

head_too_big_is_431() {
	check_eq "limits: a 70 KB request head (> maxRequestHeadBytes 65536) answers 431" 431 \
		"$(raw_codes "$ALIYUN_V4" 80 "$H_GET" --pad-header 70000)"
	check_eq "limits: a 60 KB head (under the limit) still answers 301" 301 \
		"$(raw_codes "$ALIYUN_V4" 80 "$H_GET" --pad-header 60000)"
}

too_many_headers_is_431() {
	check_eq "limits: 40 header fields (> maxRequestHeaders 30) answers 431" 431 \
		"$(raw_codes "$ALIYUN_V4" 80 "$H_GET" --extra-headers 40)"
	check_eq "limits: 20 header fields answers 301" 301 \
		"$(raw_codes "$ALIYUN_V4" 80 "$H_GET" --extra-headers 20)"
}

slowloris_gets_408() {
	local out secs
	out=$(hostile slowloris "$ALIYUN_V4" 80 --interval 0.2 --timeout 6)
	secs=$(awk '$1 == 408 { print int($3) }' <<<"$out")
	if [[ -n $secs ]] && ((secs <= 3)); then
		pass "limits: a head dripped one byte per 0.2 s gets 408 after headerReadTimeout 1s ($out)"
	else
		fail "limits: a head dripped one byte per 0.2 s gets 408 after headerReadTimeout 1s" "$out"
	fi
}

connection_limit_closes_the_excess() {
	local out open closed
	out=$(hostile conn-limit "$ALIYUN_V4" 80 --count 40 --wait 0.5)
	open=$(sed -n 's/^open=\([0-9]*\) .*/\1/p' <<<"$out")
	closed=$(sed -n 's/.* closed=\([0-9]*\)$/\1/p' <<<"$out")
	if [[ -n $open ]] && ((open <= 20 && open >= 15 && closed >= 20)); then
		pass "limits: 40 idle connections with maxConnections 20: the excess is closed ($out)"
	else
		fail "limits: 40 idle connections with maxConnections 20: the excess is closed" "$out"
	fi
	grep -q 'maxConnections (20) reached' "$SIDECAR_LOG" &&
		pass "limits: the sidecar logs 'limits.maxConnections (20) reached'" ||
		fail "limits: the sidecar logs 'limits.maxConnections (20) reached'" "$(tail -n 5 "$SIDECAR_LOG")"
	if wait_until 5 bash -c "[[ \$(ip netns exec $NS_APP curl -s -o /dev/null -w '%{http_code}' --max-time 3 -I http://aliyun.com/) == 301 ]]"; then
		pass "limits: once they are gone, curl -sI http://aliyun.com answers 301"
	else
		fail "limits: once they are gone, curl -sI http://aliyun.com answers 301"
	fi
}

# --- request smuggling shapes ---------------------------------------------------

# smuggle DESC TEXT EXPECTED_CODES: send TEXT; the first response must be
# EXPECTED and the origin must never serve a /smuggled request.
smuggle() {
	local desc=$1 text=$2 expected=$3 mark codes
	mark=$(origin_mark)
	codes=$(raw_codes "$ALIYUN_V4" 80 "$text" --responses 2 --timeout 3)
	if [[ ${codes%% *} =~ ^($expected)$ ]]; then
		pass "smuggling: $desc → ${codes%% *}"
	else
		fail "smuggling: $desc → $expected" "got '${codes:-no response}'"
	fi
	origin_settle
	check_eq "smuggling: $desc: the origin served no smuggled request" 0 "$(smuggled_requests "$mark")"
}

request_smuggling_rejected() {
	local tail='GET /smuggled HTTP/1.1\r\nHost: aliyun.com\r\n\r\n'
	smuggle "Content-Length + Transfer-Encoding: chunked" \
		"POST /sha256 HTTP/1.1\r\nHost: aliyun.com\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$tail" 400
	smuggle "two different Content-Length headers" \
		"POST /sha256 HTTP/1.1\r\nHost: aliyun.com\r\nContent-Length: 0\r\nContent-Length: 46\r\n\r\n$tail" 400
	smuggle "Content-Length: 0, 46 in one header" \
		"POST /sha256 HTTP/1.1\r\nHost: aliyun.com\r\nContent-Length: 0, 46\r\n\r\n$tail" 400
	smuggle "Transfer-Encoding: xchunked" \
		"POST /sha256 HTTP/1.1\r\nHost: aliyun.com\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n$tail" "400|501"
	# Envoy rejects obsolete line folding with 400 (RFC 9112 §5.2 allows either).
	smuggle "an obs-fold header line (as Envoy: 400)" \
		"GET / HTTP/1.1\r\nHost: aliyun.com\r\nX-Folded: a\r\n b\r\n\r\n" 400
	smuggle "a folded Transfer-Encoding" \
		"POST /sha256 HTTP/1.1\r\nHost: aliyun.com\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n$tail" 400
}

bare_lf_handled_safely() {
	local mark out
	mark=$(origin_mark)
	out=$(hostile raw "$ALIYUN_V4" 80 --responses 3 --timeout 3 --show-body \
		--send 'GET /a HTTP/1.1\nHost: aliyun.com\n\nGET /smuggled HTTP/1.1\nHost: unregistered.test\n\n')
	printf '# bare LF: %s\n' "$(paste -sd';' <<<"$out")"
	case "$(awk 'NR == 1 { print $1 }' <<<"$out")" in
	400) pass "smuggling: bare-LF line endings answer 400" ;;
	200) pass "smuggling: bare-LF line endings are parsed as two requests (handled)" ;;
	*) fail "smuggling: bare-LF line endings answer 400 or are handled" "$out" ;;
	esac
	origin_settle
	check_eq "smuggling: bare LF: the second request (Host unregistered.test) never reached the origin" 0 \
		"$(smuggled_requests "$mark")"
}

# --- Host hostility -------------------------------------------------------------

host_with_control_chars_is_400() {
	local name text mark
	mark=$(origin_mark)
	for name in 'CR:aliyun\r.com' 'NUL:aliyun.com\x00' 'space:aliyun .com' 'LF:aliyun\n.com' 'tab:aliyun\t.com'; do
		text="GET /smuggled HTTP/1.1\r\nHost: ${name#*:}\r\n\r\n"
		check_eq "Host: ${name%%:*} inside the Host value answers 400" 400 "$(raw_codes "$ALIYUN_V4" 80 "$text")"
	done
	check_eq "Host: raw UTF-8 (IDN) host answers 400" 400 \
		"$(raw_codes "$ALIYUN_V4" 80 'GET /smuggled HTTP/1.1\r\nHost: \xd0\xb0\xd0\xbb\xd0\xb8.com\r\n\r\n')"
	check_eq "Host: userinfo (user@aliyun.com) answers 400" 400 \
		"$(raw_codes "$ALIYUN_V4" 80 'GET /smuggled HTTP/1.1\r\nHost: user@aliyun.com\r\n\r\n')"
	check_eq "Host: no Host header on HTTP/1.1 answers 400" 400 \
		"$(raw_codes "$ALIYUN_V4" 80 'GET /smuggled HTTP/1.1\r\nUser-Agent: x\r\n\r\n')"
	origin_settle
	check_eq "Host: none of the malformed Hosts reached the origin" 0 "$(smuggled_requests "$mark")"
}

# RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to
# any HTTP/1.1 request message that lacks a Host header field and to any request
# message that contains more than one Host header field". Envoy does. With two,
# the proxy and the upstream (or a gateway behind it) may each pick another one.
duplicate_host_is_400() {
	local mark order out
	for order in 'aliyun.com,unregistered.test' 'unregistered.test,aliyun.com'; do
		mark=$(origin_mark)
		out=$(hostile raw "$ALIYUN_V4" 80 --show-body \
			--send "GET /smuggled HTTP/1.1\r\nHost: ${order%,*}\r\nHost: ${order#*,}\r\n\r\n")
		printf '# two Hosts (%s): %s\n' "$order" "$(paste -sd';' <<<"$out")"
		check_eq "Host: two Host headers ($order) answer 400" 400 "$(awk 'NR == 1 { print $1 }' <<<"$out")"
		origin_settle
		check_eq "Host: two Host headers ($order): the request never reached the origin" 0 "$(smuggled_requests "$mark")"
	done
}

# The origin answers 301 only for exactly "aliyun.com" on "/", so these ask for
# /x: the sidecar must treat each spelling as aliyun.com and the request must be
# served by aliyun.com's origin (200 "origin=192.0.2.30 ..."), never 502.
host_spellings_of_registered_host_allowed() {
	local host
	for host in 'ALIYUN.COM' 'aliyun.com:80'; do
		check_eq "Host: '$host' is aliyun.com: curl -sI answers 301" 301 \
			"$(app_status -I -H "Host: $host" "http://$ALIYUN_V4/")"
	done
	for host in 'aliyun.com.' 'AliYun.Com.:80'; do
		check_eq "Host: '$host' (trailing dot) is aliyun.com: served by $ALIYUN_V4 (not 502)" "origin=$ALIYUN_V4" \
			"$(app_curl -H "Host: $host" "http://$SPOOF_V4/x" | cut -d' ' -f1)"
	done
}

# Istio's route domains for port 80 are `aliyun.com` and `aliyun.com:80`: a Host
# naming another port matches no route there (502), and nothing is dialled.
host_other_port_is_not_the_registered_route() {
	local mark access
	mark=$(origin_mark)
	access=$(access_mark)
	check_eq "Host: 'aliyun.com:8080' on a connection to :80 is not aliyun.com:80's route (502)" 502 \
		"$(app_status -H 'Host: aliyun.com:8080' "http://$ALIYUN_V4/x8080")"
	check_access_log "Host: 'aliyun.com:8080': logged as block_all / BlackHoleCluster with the Host sent" "$access" \
		'.path == "/x8080" and .authority == "aliyun.com:8080" and .route_name == "block_all" and .upstream_cluster == "BlackHoleCluster"'
	check_eq "Host: 'aliyun.com:8080': nothing was dialled" 0 \
		"$(tail -n +"$((mark + 1))" "$ORIGIN_LOG" | wc -l)"
}

absolute_uri_wins_over_host() {
	local mark
	mark=$(origin_mark)
	check_eq "Host: 'GET http://evil.test/' with Host aliyun.com answers 502 (the absolute URI wins)" 502 \
		"$(raw_codes "$ALIYUN_V4" 80 'GET http://evil.test/smuggled HTTP/1.1\r\nHost: aliyun.com\r\n\r\n')"
	check_eq "Host: 'GET http://aliyun.com/x' with Host evil.test answers 200 (the absolute URI wins)" 200 \
		"$(raw_codes "$ALIYUN_V4" 80 'GET http://aliyun.com/x HTTP/1.1\r\nHost: evil.test\r\n\r\n')"
	origin_settle
	check_eq "Host: the absolute-form request for evil.test never reached the origin" 0 "$(smuggled_requests "$mark")"
}

# --- TLS hostility -----------------------------------------------------------------

tls_hello_in_one_byte_segments_routed() {
	local mark
	mark=$(origin_mark)
	check_eq "TLS: a ClientHello in 1-byte TCP segments is still routed by SNI (dialled $SPOOF_V4)" \
		"HTTP/1.1 301 Moved Permanently" \
		"$(hostile tls "$SPOOF_V4" 443 --sni aliyun.com --cafile "$CA_CERT" --split bytes)"
	check_origin_saw "TLS: 1-byte segments: the connection went to $ALIYUN_V4:443" "$mark" "$ALIYUN_V4" 443
}

tls_hello_in_several_records_routed() {
	local mark
	mark=$(origin_mark)
	check_eq "TLS: a ClientHello spread over several TLS records is routed by SNI (dialled $SPOOF_V4)" \
		"HTTP/1.1 301 Moved Permanently" \
		"$(hostile tls "$SPOOF_V4" 443 --sni aliyun.com --cafile "$CA_CERT" --split records)"
	check_origin_saw "TLS: several records: the connection went to $ALIYUN_V4:443" "$mark" "$ALIYUN_V4" 443
	check_origin_never "TLS: the dialled $SPOOF_V4 saw no connection" "$mark" "$SPOOF_V4"
}

tls_malformed_hellos_closed() {
	local kind mark
	mark=$(origin_mark)
	for kind in sslv2 record16; do
		check "TLS: a '$kind' first flight to $UNREG_V4:443 is opaque TCP: closed without a byte" \
			hostile hello "$UNREG_V4" 443 --kind "$kind" --timeout 8
	done
	check "TLS: a 0x16 record header that never completes is closed without a byte (after detectionTimeout)" \
		hostile hello "$UNREG_V4" 443 --kind short16 --timeout 8
	check "TLS: a ClientHello without SNI to unregistered $UNREG_V4:443 is closed without a byte" \
		hostile hello "$UNREG_V4" 443 --kind nosni --timeout 8
	check_origin_never "TLS: $UNREG_V4 saw none of them" "$mark" "$UNREG_V4"
}

# --- pipelining -------------------------------------------------------------------

pipelined_requests_keep_order() {
	local out
	out=$(hostile raw "$ALIYUN_V4" 80 --responses 3 --timeout 5 \
		--send 'GET /bytes/10 HTTP/1.1\r\nHost: aliyun.com\r\n\r\nGET /bytes/2000 HTTP/1.1\r\nHost: aliyun.com\r\n\r\nGET /bytes/30 HTTP/1.1\r\nHost: aliyun.com\r\n\r\n')
	check_eq "pipelining: 3 GETs (/bytes/10, /bytes/2000, /bytes/30) in one write get 3 responses in order" \
		"200 10;200 2000;200 30" "$(head -n 3 <<<"$out" | paste -sd';')"
	out=$(hostile raw "$ALIYUN_V4" 80 --responses 3 --timeout 5 \
		--send 'GET /bytes/10 HTTP/1.1\r\nHost: aliyun.com\r\n\r\nGET / HTTP/1.1\r\nHost: unregistered.test\r\n\r\nGET /bytes/30 HTTP/1.1\r\nHost: aliyun.com\r\n\r\n')
	check_eq "pipelining: allowed, denied, allowed in one write → 200, 502, 200 in order" \
		"200 502 200" "$(head -n 3 <<<"$out" | awk '{ print $1 }' | paste -sd' ')"
}

# An app's "Connection: close" reaches the origin, which closes after answering.
# That upstream connection must not go back to the pool: a request that picks it
# up next would hang until upstreamTimeout (504 UT). Found by scripts/soak.
no_reuse_after_connection_close() {
	local i codes bad=0 out=""
	for ((i = 0; i < 20; i++)); do
		codes=$(app curl -s -o /dev/null -o /dev/null -w '%{http_code} ' --max-time 20 \
			-H 'Connection: close' http://aliyun.com/bytes/1048576 http://aliyun.com/bytes/1024)
		[[ $codes == "200 200 " ]] || { bad=$((bad + 1)); out+="try $i: $codes"$'\n'; }
	done
	check_eq "pooling: 20 × two requests with 'Connection: close' (the origin closes after each) all answer 200" 0 "$bad"
	[[ -n $out ]] && indent "$out"
}

# --- policy bypass attempts ------------------------------------------------------------

own_port_refused() {
	local addr code
	for addr in "127.0.0.1" "[::1]"; do
		code=$(CURL_MAX_TIME=5 app_status -g "http://$addr:$OUTBOUND_PORT/")
		if [[ $code == 000 || $code == 5* ]]; then
			pass "bypass: curl http://$addr:$OUTBOUND_PORT/ (the sidecar's own port) is refused (got $code)"
		else
			fail "bypass: curl http://$addr:$OUTBOUND_PORT/ (the sidecar's own port) is refused" "got HTTP $code"
		fi
	done
	check_eq "bypass: afterwards curl -sI http://aliyun.com still answers 301" 301 "$(app_status -I http://aliyun.com/)"
}

v4_mapped_v6_denied() {
	local mark code
	mark=$(origin_mark)
	code=$(CURL_MAX_TIME=5 app_status -g "http://[::ffff:$UNREG_V4]/")
	if [[ $code == 502 || $code == 000 ]]; then
		pass "bypass: curl -g 'http://[::ffff:$UNREG_V4]/' (v4-mapped v6, unregistered) is refused (got $code)"
	else
		fail "bypass: curl -g 'http://[::ffff:$UNREG_V4]/' (v4-mapped v6, unregistered) is refused" "got HTTP $code"
	fi
	check_origin_never "bypass: $UNREG_V4 saw nothing from the v4-mapped address" "$mark" "$UNREG_V4"
}

# Documents the trust boundary (docs/security.md): the
# proxy uid is never captured, so anything running as 1337 goes straight out.
proxy_uid_is_not_captured() {
	local mark access
	mark=$(origin_mark)
	access=$(access_mark)
	check_eq "trust boundary: curl as uid 1337 reaches unregistered $UNREG_V4 directly (not captured, by design)" \
		"origin=$UNREG_V4 host=$UNREG_V4" \
		"$(app setpriv --reuid "$PROXY_UID" --regid "$PROXY_UID" --clear-groups curl -sS --max-time 5 "http://$UNREG_V4/")"
	check_origin_peer "trust boundary: $UNREG_V4 saw the app's own address $APP_V4" "$mark" "$UNREG_V4" 80 "$APP_V4"
	sleep 0.5
	check_eq "trust boundary: the sidecar logged nothing for it" 0 \
		"$(access_records "$access" | jq -c "select(.downstream_local_address == \"$UNREG_V4:80\")" | wc -l)"
}

# --- data integrity ------------------------------------------------------------------

download_1gib_intact() {
	local start got
	start=$SECONDS
	got=$(app curl -s --max-time 120 "http://aliyun.com/bytes/$GIB" | sha256sum | cut -d' ' -f1)
	check_eq "integrity: 1 GiB /bytes/$GIB through the sidecar has the origin's sha256 ($((SECONDS - start)) s)" "$GIB_SHA" "$got"
}

upload_256mib_intact() {
	local start got
	start=$SECONDS
	got=$(app curl -s --max-time 90 -X POST -H 'Transfer-Encoding: chunked' -T "$UPLOAD_FILE" \
		http://aliyun.com/sha256)
	check_eq "integrity: a 256 MiB chunked POST /sha256: the origin's digest matches ($((SECONDS - start)) s)" \
		"$UPLOAD_SHA" "$got"
}

slow_reader_intact() {
	local start got
	start=$SECONDS
	got=$(app curl -s --max-time 30 --limit-rate 20M "http://aliyun.com/bytes/$SLOW_SIZE" | sha256sum | cut -d' ' -f1)
	check_eq "integrity: 64 MiB read at 20 MB/s (curl --limit-rate) arrives intact ($((SECONDS - start)) s)" \
		"$SLOW_SHA" "$got"
}

# --- faults ---------------------------------------------------------------------------

upstream_closes_mid_body() {
	local access rc
	access=$(access_mark)
	app curl -s -o /dev/null --max-time 10 "http://aliyun.com/truncate/1000000"
	rc=$?
	check_eq "faults: the upstream closing after half of a 1 MB body: curl exits 18 (partial file)" 18 "$rc"
	check_access_log "faults: the access log has flag UC for /truncate/1000000" "$access" \
		'.path == "/truncate/1000000" and (.response_flags | tostring | test("UC"))'
	check_eq "faults: the sidecar keeps serving (curl -sI http://aliyun.com → 301)" 301 "$(app_status -I http://aliyun.com/)"
}

# --- running ----------------------------------------------------------------------

# connect_from_app_decided_then_tunnelled: an app that sends CONNECT to a forward proxy it
# dials (here an address nobody owns, 192.0.2.31:3128) gets its tunnel decided on the CONNECT
# target: a registered one (aliyun.com:443) is dialled by the sidecar itself, an unregistered
# one gets 403, and the proxy address it dialled sees nothing.
connect_from_app_decided_then_tunnelled() {
	local mark
	mark=$(origin_mark)
	check_eq "CONNECT from the app: curl -p -x http://$UNREG_V4:3128 https://aliyun.com answers 301 through the tunnel" 301 \
		"$(app_status -I -p -x "http://$UNREG_V4:3128" https://aliyun.com/)"
	check_origin_saw "CONNECT from the app: the tunnel reached aliyun.com's :443 ($ALIYUN_V4)" "$mark" "$ALIYUN_V4" 443
	check_eq "CONNECT from the app: an unregistered target gets 403" 403 \
		"$(app curl -s -o /dev/null -w '%{http_connect}' --max-time "$CURL_MAX_TIME" -p -x "http://$UNREG_V4:3128" https://unregistered.test/ 2>/dev/null || true)"
	check_origin_never "CONNECT from the app: the proxy address the app dialled saw nothing" "$mark" "$UNREG_V4" 3128
}

hostile_cases() {
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	GIB=1073741824
	SLOW_SIZE=67108864
	UPLOAD_FILE=$E2E_TMP/upload-256m.bin
	wants download_1gib_intact && GIB_SHA=$(python3 "$E2E_DIR/client.py" pattern-sha256 "$GIB")
	wants slow_reader_intact && SLOW_SHA=$(python3 "$E2E_DIR/client.py" pattern-sha256 "$SLOW_SIZE")
	if wants upload_256mib_intact; then
		head -c 268435456 /dev/urandom >"$UPLOAD_FILE"
		UPLOAD_SHA=$(sha256sum "$UPLOAD_FILE" | cut -d' ' -f1)
	fi

	hostile_scenario "$HOSTILE_CONFIGS/sidecar.yaml" \
		head_too_big_is_431 \
		too_many_headers_is_431 \
		slowloris_gets_408 \
		connection_limit_closes_the_excess \
		request_smuggling_rejected \
		bare_lf_handled_safely \
		host_with_control_chars_is_400 \
		duplicate_host_is_400 \
		host_spellings_of_registered_host_allowed \
		host_other_port_is_not_the_registered_route \
		absolute_uri_wins_over_host \
		tls_hello_in_one_byte_segments_routed \
		tls_hello_in_several_records_routed \
		tls_malformed_hellos_closed \
		pipelined_requests_keep_order \
		no_reuse_after_connection_close \
		connect_from_app_decided_then_tunnelled \
		own_port_refused \
		v4_mapped_v6_denied \
		proxy_uid_is_not_captured \
		download_1gib_intact \
		upload_256mib_intact \
		slow_reader_intact \
		upstream_closes_mid_body
	rm -f "$UPLOAD_FILE"
}

hostile_cases

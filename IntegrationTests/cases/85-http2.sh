# shellcheck shell=bash
# HTTP/2 and gRPC (issue 24): the sidecar terminates h2c (prior knowledge), decides every
# stream by :authority, answers denied streams as Envoy does (502; gRPC UNAVAILABLE as a
# trailers-only response) and relays allowed ones to the origin over HTTP/2, trailers and
# all, or over HTTP/1.1 when the port is declared HTTP (aliyun.com:80, origin.py). A grpcio server (IntegrationTests/grpc_echo.py) in sl-ext is the origin on 50051
# and 50052; every .test name and aliyun.com resolve to sl-ext addresses. A VirtualService's
# fault, redirect, rewrite and response headers apply to HTTP/2 streams as to HTTP/1 requests.

# One gRPC message (5-byte prefix: uncompressed, length 2) carrying "hi".
GRPC_FRAME='\x00\x00\x00\x00\x02hi'

h2_curl_status() {
	app curl -s -o /dev/null -w '%{http_version} %{http_code}' --max-time "$CURL_MAX_TIME" --http2-prior-knowledge "$@"
}

prior_knowledge_is_decided_by_authority() {
	local access
	access=$(access_mark)
	check_eq "h2c: curl --http2-prior-knowledge to registered aliyun.com:50052 gets the origin's 200 over HTTP/2" "2 200" \
		"$(printf "$GRPC_FRAME" | h2_curl_status -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @- http://aliyun.com:50052/e2e.Echo/Unary)"
	check_eq "h2c: curl --http2-prior-knowledge to unregistered.test:50052 gets 502 over HTTP/2" "2 502" \
		"$(h2_curl_status http://unregistered.test:50052/)"
	check_access_log "h2c: the allowed stream is logged with protocol HTTP/2, its authority and cluster" "$access" \
		'.protocol == "HTTP/2" and .authority == "aliyun.com:50052" and .response_code == 200 and .upstream_cluster == "outbound|50052||aliyun.com" and .path == "/e2e.Echo/Unary"'
	check_access_log "h2c: the denied stream is logged 502 with BlackHoleCluster" "$access" \
		'.protocol == "HTTP/2" and .authority == "unregistered.test:50052" and .response_code == 502 and .upstream_cluster == "BlackHoleCluster"'
	check_metric_reaches "h2c: istio_requests_total counts the allowed stream" \
		sidecar 1 istio_requests_total response_code=200 destination_service=aliyun.com
}

# h2up_lines MARK: access-log records of /h2up/* since MARK.
h2up_lines() { access_records "$1" | jq -s '[.[] | select(.path | startswith("/h2up/"))] | length'; }
_h2up_lines_reach() { (($(h2up_lines "$1") >= $2)); }

http1_port_is_reached_over_http1() {
	# aliyun.com:80 is registered with protocol HTTP and origin.py speaks only HTTP/1.1 there:
	# Envoy's cluster follows the port, so the stream is converted to HTTP/1.1 upstream.
	local access body upload want got
	access=$(access_mark)
	body=$(app curl -s --max-time "$CURL_MAX_TIME" --http2-prior-knowledge -w '%{http_version} %{http_code}' http://aliyun.com/h2up/get | tr '\n' ' ')
	check "h2c to an HTTP port: GET gets the HTTP/1.1 origin's 200 and body over HTTP/2 ($body)" \
		grep -qE '^origin=[0-9a-f.:]+ host=aliyun.com 2 200$' <<<"$body"
	if wait_until 3 _h2up_lines_reach "$access" 1 && [[ $(h2up_lines "$access") == 1 ]]; then
		pass "h2c to an HTTP port: one access-log line for the stream"
	else
		fail "h2c to an HTTP port: one access-log line for the stream" "got $(h2up_lines "$access")"
	fi
	check_access_log "h2c to an HTTP port: logged with protocol HTTP/2, 200 and the HTTP cluster" "$access" \
		'.protocol == "HTTP/2" and .path == "/h2up/get" and .response_code == 200 and .upstream_cluster == "outbound|80||aliyun.com"'
	upload="$E2E_TMP/h2up-upload.bin"
	head -c 3000000 /dev/urandom >"$upload"
	want=$(sha256sum "$upload" | cut -d' ' -f1)
	# From stdin curl sends no content-length: the body goes to the origin chunked.
	check_eq "h2c to an HTTP port: a 3 MB POST of unknown length round-trips (sha256, chunked upstream)" "$want" \
		"$(app curl -s --max-time "$CURL_MAX_TIME" --http2-prior-knowledge --data-binary @- http://aliyun.com/sha256 <"$upload")"
	check_eq "h2c to an HTTP port: a 3 MB POST with content-length round-trips (sha256)" "$want" \
		"$(app curl -s --max-time "$CURL_MAX_TIME" --http2-prior-knowledge --data-binary "@$upload" http://aliyun.com/sha256)"
	want=$(python3 "$E2E_DIR/origin.py" --print-sha256 8388608)
	got=$(app curl -s --max-time "$CURL_MAX_TIME" --http2-prior-knowledge http://aliyun.com/bytes/8388608 | sha256sum | cut -d' ' -f1)
	check_eq "h2c to an HTTP port: 8 MiB streamed from the HTTP/1.1 origin arrive intact (sha256)" "$want" "$got"
	rm -f "$upload"
}

h2c_upgrade_is_answered_as_http1() {
	# Envoy does not upgrade to h2c by default: it strips `Upgrade: h2c` and answers HTTP/1.1.
	check_eq "h2c upgrade: curl --http2 http://aliyun.com/ is answered over HTTP/1.1 (301)" "1.1 301" \
		"$(app curl -s -o /dev/null -w '%{http_version} %{http_code}' --max-time "$CURL_MAX_TIME" --http2 http://aliyun.com/)"
}

grpc_registered_calls_keep_status_and_trailers() {
	check_eq "grpc: a unary call to aliyun.com:50051 succeeds with its trailer" "status=OK reply=hi trailer=kept" \
		"$(grpc_client aliyun.com:50051 unary hi)"
	check_eq "grpc: a bidi streaming call echoes every message" "status=OK replies=a,b,c,d" \
		"$(grpc_client aliyun.com:50051 chat a,b,c,d)"
	check_eq "grpc: the origin's own error status arrives (NOT_FOUND)" "status=NOT_FOUND message=no such thing" \
		"$(grpc_client aliyun.com:50051 fail)"
}

grpc_unregistered_is_unavailable() {
	local access out
	access=$(access_mark)
	out=$(grpc_client unregistered.test:50051 unary hi)
	check "grpc: a call to unregistered.test:50051 fails UNAVAILABLE (14) ($out)" grep -q '^status=UNAVAILABLE' <<<"$out"
	check_access_log "grpc: the denied call is logged" "$access" \
		'.protocol == "HTTP/2" and .authority == "unregistered.test:50051" and .upstream_cluster == "BlackHoleCluster"'
}

large_bodies_both_ways_keep_their_sha256() {
	check_eq "grpc: 8 MiB streamed to the origin arrive intact (sha256)" "status=OK sha256=match" \
		"$(grpc_client aliyun.com:50051 sum 8388608)"
	check_eq "grpc: 8 MiB streamed from the origin arrive intact (sha256)" "status=OK bytes=8388608 sha256=match" \
		"$(grpc_client aliyun.com:50051 blob 8388608)"
}

many_streams_share_one_connection() {
	local access
	access=$(access_mark)
	check_eq "grpc: 50 concurrent calls on one channel all succeed" "status=OK calls=50" \
		"$(grpc_client aliyun.com:50051 many 50)"
	# Lines trail the responses (the writer is asynchronous): wait up to 3 s for all 50.
	if wait_until 3 _unary_lines_reach "$access" 50; then
		pass "grpc: every call has its own access-log line (50)"
	else
		fail "grpc: every call has its own access-log line (50)" "got $(unary_lines "$access")"
	fi
}

# unary_lines MARK: access-log records of /e2e.Echo/Unary since MARK.
unary_lines() { access_records "$1" | jq -s '[.[] | select(.path == "/e2e.Echo/Unary")] | length'; }
_unary_lines_reach() { (($(unary_lines "$1") >= $2)); }

client_reset_mid_body_is_logged_DR() {
	local access
	access=$(access_mark)
	check_eq "grpc: the client cancels a server stream after its first message" "status=CANCELLED" \
		"$(grpc_client aliyun.com:50051 cancel 67108864)"
	check_access_log "grpc: the cancelled stream is logged with DR" "$access" \
		'.path == "/e2e.Echo/Blob" and (.response_flags | test("DR"))'
}

h2_streams_follow_their_routes() {
	local access out
	access=$(access_mark)
	check_eq "h2c routes: a fault abort (100%) answers the stream 418 over HTTP/2" "2 418" \
		"$(h2_curl_status http://aliyun.com/h2route/abort)"
	check_access_log "h2c routes: the aborted stream is logged FI" "$access" \
		'.protocol == "HTTP/2" and .path == "/h2route/abort" and .response_code == 418 and .response_flags == "FI"'
	check_eq "h2c routes: a redirect route answers 301 with its Location" "301 http://www.aliyun.com/elsewhere" \
		"$(app curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --max-time "$CURL_MAX_TIME" --http2-prior-knowledge http://aliyun.com/h2route/moved)"
	out=$(app curl -s -D - --max-time "$CURL_MAX_TIME" --http2-prior-knowledge http://aliyun.com/h2route/rewrite | tr -d '\r')
	check "h2c routes: rewrite.authority reaches the HTTP/1.1 origin as its Host" grep -qE '^origin=[0-9a-f.:]+ host=www.aliyun.com$' <<<"$out"
	check "h2c routes: headers.response.set is on the response" grep -qx 'x-route: h2-rewrite' <<<"$out"
	check_access_log "h2c routes: the rewritten stream is logged with the rewritten authority and 200" "$access" \
		'.protocol == "HTTP/2" and .path == "/h2route/rewrite" and .authority == "www.aliyun.com" and .response_code == 200'
}

http2_cases() {
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	if ! start_grpc_origin; then
		fail "grpc origins started in $NS_EXT" "$(tail -n 5 "$E2E_TMP/grpc.out")"
		return
	fi
	scenario http2/sidecar.yaml \
		prior_knowledge_is_decided_by_authority \
		http1_port_is_reached_over_http1 \
		h2c_upgrade_is_answered_as_http1 \
		grpc_registered_calls_keep_status_and_trailers \
		grpc_unregistered_is_unavailable \
		large_bodies_both_ways_keep_their_sha256 \
		many_streams_share_one_connection \
		client_reset_mid_body_is_logged_DR
	scenario http2/sidecar-routes.yaml h2_streams_follow_their_routes
	stop_grpc_origin
}

http2_cases

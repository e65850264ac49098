# shellcheck shell=bash
# HTTP/2 through the egress gateway (issue 24 item 3): the sidecar sends HTTP/2 clients'
# streams to the `istio` gateway as HTTP/2 streams over one shared connection (h2c, or
# ISTIO_MUTUAL with ALPN istio/h2), the gateway decides each stream by :authority and its
# AuthorizationPolicies and logs it with the caller's identity; a client that stops reading
# a large download holds the origin at its window, not the sidecar's memory.
#
# Sourced by scripts/e2e after IntegrationTests/lib.sh, on a fresh test network.

H2GW_MESH= # scratch for ISTIO_MUTUAL: ca/, gateway/, sleep/, authz/, gateway.yaml

# h2_get URL: one curl --http2-prior-knowledge from the app (its own connection); prints
# "http_version code". (One URL a curl: curl 7.88 sends no second request on a reused
# prior-knowledge connection.)
h2_get() {
	app curl -s -o /dev/null -w '%{http_version} %{http_code}' --max-time "$CURL_MAX_TIME" --http2-prior-knowledge "$1"
}

# gw_conns_from_sidecar: established TCP connections at the gateway's :80 from the app's pod.
gw_conns_from_sidecar() { gw ss -Htn state established "( sport = :80 and dst $APP_V4 )" | wc -l; }

# restart_sidecar_one_loop CONFIG: the sidecar again with one event loop, so that every
# client connection shares the loop's connection to the gateway (with N loops: N at most).
restart_sidecar_one_loop() {
	start_sidecar "$(config_path "$1")" --concurrency 1 2>"$E2E_TMP/start.err" && return 0
	fail "the sidecar restarted with $1 --concurrency 1" "$(cat "$E2E_TMP/start.err")"
	return 1
}

# h2gw_lines MARK PREFIX: gateway access-log records since MARK whose path starts with PREFIX
# and whose protocol is HTTP/2.
h2gw_lines() {
	gateway_access_records "$1" | jq -s --arg p "$2" '[.[] | select(.protocol == "HTTP/2" and (.path | startswith($p)))] | length'
}
_h2gw_lines_reach() { (($(h2gw_lines "$1" "$2") >= $3)); }

# check_streams_share_one_connection DESC MARK PREFIX N: N HTTP/2 lines at the gateway and
# one connection from the sidecar carried them.
check_streams_share_one_connection() {
	local desc=$1 mark=$2 prefix=$3 n=$4
	if wait_until 3 _h2gw_lines_reach "$mark" "$prefix" "$n"; then
		pass "$desc: the gateway logged all $n streams with protocol HTTP/2"
	else
		fail "$desc: the gateway logged all $n streams with protocol HTTP/2" "got $(h2gw_lines "$mark" "$prefix")"
	fi
	check_eq "$desc: they came over one sidecar → gateway TCP connection (ss in $NS_GW)" 1 "$(gw_conns_from_sidecar)"
	check_eq "$desc: one downstream_remote_address at the gateway" 1 \
		"$(gateway_access_records "$mark" | jq -s --arg p "$prefix" '[.[] | select(.path | startswith($p)) | .downstream_remote_address] | unique | length')"
}

h2c_streams_of_many_clients_share_one_gateway_connection() {
	local mark smark out
	restart_sidecar_one_loop http2/sidecar-gateway.yaml || return
	mark=$(gateway_access_mark)
	smark=$(access_mark)
	out="$(h2_get http://aliyun.com/bytes/100), $(h2_get http://aliyun.com/bytes/101), "
	out+=$(app h2load -n 20 -c 4 -m 5 -t 1 http://aliyun.com/bytes/105 2>&1 | grep -o '20 succeeded' || true)
	check_eq "h2c via gateway: 2 curl --http2-prior-knowledge connections and h2load (4 connections x 5 streams) all get 200" \
		"2 200, 2 200, 20 succeeded" "$out"
	check_streams_share_one_connection "h2c via gateway" "$mark" /bytes/ 22
	check_gateway_access_log "h2c via gateway: the origin's status, HTTP/1.1 from the gateway to aliyun.com:80" "$mark" \
		'.protocol == "HTTP/2" and .path == "/bytes/100" and .response_code == 200 and .upstream_cluster == "outbound|80||aliyun.com"'
	check_access_log "h2c via gateway: the sidecar logged the stream to the gateway's cluster" "$smark" \
		'.protocol == "HTTP/2" and .path == "/bytes/100" and .response_code == 200 and (.upstream_host | startswith("192.0.2.20:80"))'
}

grpc_through_the_gateway_is_decided_there() {
	local mark out
	mark=$(gateway_access_mark)
	check_eq "gRPC via gateway: a call to aliyun.com:50051 (registered at the sidecar, not served by the gateway) fails UNIMPLEMENTED" \
		"status=UNIMPLEMENTED" "$(grpc_client aliyun.com:50051 unary hi | cut -d' ' -f1)"
	check_gateway_access_log "gRPC via gateway: the gateway logged the stream as HTTP/2, NR" "$mark" \
		'.protocol == "HTTP/2" and .authority == "aliyun.com:50051" and (.response_flags | test("NR"))'
	out=$(h2_get http://aliyun.com/bytes/200)
	check_eq "gRPC via gateway: the shared connection still carries other streams" "2 200" "$out"
}

slow_reader_holds_the_origin_not_the_sidecar() {
	local before after reader_pid out
	before=$(ps -o rss= -p "$SIDECAR_PID" | tr -d ' ')
	# 256 MiB asked for, nothing read for 6 s: without end-to-end flow control the sidecar
	# would pull the origin's bytes into its own memory.
	app python3 "$E2E_DIR/h2_slow_reader.py" "$ALIYUN_V4" 80 aliyun.com /bytes/268435456 6 >"$E2E_TMP/slow-reader.out" 2>&1 &
	reader_pid=$!
	record_pid "$reader_pid"
	sleep 3
	out=$(h2_get http://aliyun.com/bytes/300)
	check_eq "slow reader: another client's stream through the same gateway connection gets 200 meanwhile" "2 200" "$out"
	after=$(ps -o rss= -p "$SIDECAR_PID" | tr -d ' ')
	if [[ -n $before && -n $after ]] && ((after - before < 32768)); then
		pass "slow reader: the sidecar's RSS grew by less than 32 MiB (${before} → ${after} KiB) while 256 MiB were asked for"
	else
		fail "slow reader: the sidecar's RSS grew by less than 32 MiB" "${before:-?} → ${after:-?} KiB"
	fi
	wait "$reader_pid" 2>/dev/null
	forget_pid "$reader_pid"
	check_eq "slow reader: the client held its connection to the end" held "$(cat "$E2E_TMP/slow-reader.out")"
	check "slow reader: the sidecar is still the same process" sidecar_alive
}

# issue_h2gw_mesh: a mesh root, the gateway's and the app's certificates (`sluice certs`),
# and a gateway config whose registry also reads authz/ (a DENY on /h2deny*).
issue_h2gw_mesh() {
	local out
	H2GW_MESH=$(mktemp -d /tmp/sluice-e2e-h2gw.XXXXXX)
	chmod 755 "$H2GW_MESH"
	if ! out=$("$SLUICE_BIN" certs root --out "$H2GW_MESH/ca" 2>&1 &&
		"$SLUICE_BIN" certs issue --root "$H2GW_MESH/ca" --namespace istio-system \
			--service-account istio-egressgateway-service-account --dns gw.test --out "$H2GW_MESH/gateway" 2>&1 &&
		"$SLUICE_BIN" certs issue --root "$H2GW_MESH/ca" --namespace default --service-account sleep \
			--out "$H2GW_MESH/sleep" 2>&1); then
		fail "sluice certs: a root, the gateway's and the app's certificates" "$out"
		return 1
	fi
	chown -R "$PROXY_UID:$PROXY_UID" "$H2GW_MESH/sleep"
	mkdir -p "$H2GW_MESH/authz"
	cat >"$H2GW_MESH/authz/deny.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-h2deny, namespace: istio-system}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/h2deny*"]}}]
YAML
	sed -e "s|  - ../gateway/gateway-registry/|  - $E2E_CONFIGS/gateway/gateway-registry/\n  - authz/|" \
		"$E2E_CONFIGS/identity/gateway.yaml" >"$H2GW_MESH/gateway.yaml"
}

mtls_hop_carries_http2_with_the_callers_identity() {
	local mark out
	restart_sidecar_one_loop identity/sidecar.yaml || return
	mark=$(gateway_access_mark)
	out="$(h2_get http://aliyun.com/bytes/400), $(h2_get http://aliyun.com/bytes/401), "
	out+=$(app h2load -n 20 -c 4 -m 5 -t 1 http://aliyun.com/bytes/402 2>&1 | grep -o '20 succeeded' || true)
	check_eq "ISTIO_MUTUAL: 2 curl --http2-prior-knowledge connections and h2load (4 x 5 streams) get 200 through the gateway" \
		"2 200, 2 200, 20 succeeded" "$out"
	check_streams_share_one_connection "ISTIO_MUTUAL" "$mark" /bytes/4 22
	check_gateway_access_log "ISTIO_MUTUAL: the gateway logged HTTP/2 with the caller's SPIFFE ID" "$mark" \
		'.protocol == "HTTP/2" and .path == "/bytes/400" and .downstream_peer_uri_san == "spiffe://cluster.local/ns/default/sa/sleep"'
	check_metric_reaches "ISTIO_MUTUAL: istio_requests_total at the gateway counts the streams as mutual_tls from the app" \
		gateway 22 istio_requests_total connection_security_policy=mutual_tls source_principal=spiffe://cluster.local/ns/default/sa/sleep
}

mtls_http2_stream_denied_by_authorization_policy() {
	local mark body
	mark=$(gateway_access_mark)
	body=$(app curl -s --max-time "$CURL_MAX_TIME" --http2-prior-knowledge -w ' %{http_version} %{http_code}' http://aliyun.com/h2deny/x)
	check_eq "AuthorizationPolicy: an HTTP/2 stream to /h2deny/x gets 403 RBAC: access denied from the gateway" \
		"RBAC: access denied 2 403" "$body"
	check_gateway_access_log "AuthorizationPolicy: logged with the matched policy" "$mark" \
		'.protocol == "HTTP/2" and .response_code == 403 and (.response_code_details | startswith("rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-h2deny]"))'
	check_eq "AuthorizationPolicy: another stream on the same hop passes" "2 200" "$(h2_get http://aliyun.com/bytes/500)"
}

http2_gateway_cases() {
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	if wants grpc_through_the_gateway_is_decided_there && ! start_grpc_origin; then
		fail "grpc origins started in $NS_EXT" "$(tail -n 5 "$E2E_TMP/grpc.out")"
		return
	fi
	scenario --gateway gateway/gateway.yaml http2/sidecar-gateway.yaml \
		h2c_streams_of_many_clients_share_one_gateway_connection \
		grpc_through_the_gateway_is_decided_there \
		slow_reader_holds_the_origin_not_the_sidecar
	stop_grpc_origin

	if wants mtls_hop_carries_http2_with_the_callers_identity mtls_http2_stream_denied_by_authorization_policy; then
		issue_h2gw_mesh || return
		if start_gateway "$H2GW_MESH/gateway.yaml" --certs "$H2GW_MESH/gateway" --namespace istio-system 2>"$E2E_TMP/start.err"; then
			SCENARIO_GATEWAY_CONFIG=$H2GW_MESH/gateway.yaml
		else
			fail "sluice gateway --certs started with identity/gateway.yaml" "$(cat "$E2E_TMP/start.err")"
		fi
		SLUICE_CERTS_DIR=$H2GW_MESH/sleep
		export SLUICE_CERTS_DIR
		scenario --gateway "$H2GW_MESH/gateway.yaml" identity/sidecar.yaml \
			mtls_hop_carries_http2_with_the_callers_identity \
			mtls_http2_stream_denied_by_authorization_policy
		unset SLUICE_CERTS_DIR
		stop_gateway
		rm -rf "$H2GW_MESH"
	fi
}

http2_gateway_cases

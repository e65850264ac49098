# shellcheck shell=bash
# QUIC by SNI (issue 22 item 7), with a real HTTP/3 client and server (aioquic,
# IntegrationTests/quic_h3.py), in the test namespaces.
#
# Sourced by scripts/e2e after IntegrationTests/lib.sh, on a fresh test network. sl-ext gets
# two more addresses, $QUIC_API_V4 (api.quic.test, registered HTTPS 443) and $QUIC_OTHER_V4
# (other.quic.test, not registered), one aioquic HTTP/3 server on UDP 443 of each, with a
# certificate for both names from a CA of this file's own. The app namespace maps both names
# in its hosts file (so the app resolves them without DNS, and the sidecar's own resolver
# finds the same addresses) and gets `sluice-init --capture-udp`; the sidecar runs as uid
# 1337 with CAP_NET_ADMIN (ambient), which binding an NFQUEUE needs.
#   1. HTTP/3 to the registered host answers; the flow is logged with its SNI
#   2. a ClientHello too large for one datagram (two Initials) is held, then allowed
#   3. HTTP/3 to an unregistered SNI gets no answer (the client times out), logged and counted
#   4. the registered SNI sent to an address that name does not resolve to gets no answer
#   4b. `sluice explain quic://…` prints the same decisions (and `tls://…:443` a quic: line)
#   5. ALLOW_ANY: the unregistered SNI answers
#   6. --cleanup leaves no UDP rule behind

QUIC_API_V4=192.0.2.40
QUIC_OTHER_V4=192.0.2.41
QUIC_PY=$E2E_DIR/quic_h3.py
QUIC_DIR=
QUIC_HOSTS_SAVED=

# quic_certs DIR: a CA and a server certificate for api.quic.test and other.quic.test.
quic_certs() {
	local dir=$1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$dir/ca.key" -out "$dir/ca.crt" -days 2 -subj "/CN=sluice e2e QUIC CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$dir/server.key" -out "$dir/server.csr" -subj "/CN=api.quic.test" &&
		printf '%s\n' "subjectAltName=DNS:api.quic.test,DNS:other.quic.test" "extendedKeyUsage=serverAuth" \
			"basicConstraints=CA:FALSE" >"$dir/server.ext" &&
		openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
			-CAcreateserial -days 2 -extfile "$dir/server.ext" -out "$dir/server.crt"
}

quic_setup() {
	local addr
	for addr in "$QUIC_API_V4" "$QUIC_OTHER_V4"; do
		ip -n "$NS_EXT" addr add "$addr/24" dev eth0 || return 1
	done
	QUIC_DIR=$(mktemp -d /tmp/sluice-e2e-quic.XXXXXX) || return 1
	quic_certs "$QUIC_DIR" >"$E2E_TMP/quic-openssl.log" 2>&1 || return 1
	mkdir -p "$QUIC_DIR/registry"
	cat >"$QUIC_DIR/registry/api.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api-quic, namespace: default}
spec:
  hosts: [api.quic.test]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  location: MESH_EXTERNAL
  resolution: DNS
YAML
	for mode in REGISTRY_ONLY ALLOW_ANY; do
		printf 'outboundTrafficPolicy: {mode: %s}\nregistry: [registry]\nudp: {capture: true}\n' \
			"$mode" >"$QUIC_DIR/${mode,,}.yaml"
	done
	chown -R "$PROXY_UID:$PROXY_UID" "$QUIC_DIR"
	QUIC_HOSTS_SAVED=$(cat "/etc/netns/$NS_APP/hosts")
	printf '%s api.quic.test\n%s other.quic.test\n' "$QUIC_API_V4" "$QUIC_OTHER_V4" >>"/etc/netns/$NS_APP/hosts"
	# ip netns exec directly (its pid is the server's), fd 9 closed: the servers must not hold
	# the suite's lock (see start_origins).
	for addr in "$QUIC_API_V4" "$QUIC_OTHER_V4"; do
		ip netns exec "$NS_EXT" python3 "$QUIC_PY" server "$addr:443" --cert "$QUIC_DIR/server.crt" \
			--key "$QUIC_DIR/server.key" --lifetime 240 >"$E2E_TMP/quic-$addr.out" 2>&1 9>&- &
		record_pid "$!"
	done
	wait_until 15 grep -q ready "$E2E_TMP/quic-$QUIC_API_V4.out" && wait_until 5 grep -q ready "$E2E_TMP/quic-$QUIC_OTHER_V4.out"
}

quic_teardown() {
	stop_sidecar
	[[ -n $QUIC_HOSTS_SAVED ]] && printf '%s\n' "$QUIC_HOSTS_SAVED" >"/etc/netns/$NS_APP/hosts"
	[[ -n $QUIC_DIR ]] && rm -rf "$QUIC_DIR"
}

quic_init() { app "$SLUICE_INIT" "$@" >"$E2E_TMP/quic-init.out" 2>&1; }

# quic_get URL [ARGS...]: one HTTP/3 GET from the app namespace (captured): "200 body" or
# "timeout" (3 s without an answer).
quic_get() { app python3 "$QUIC_PY" get "$1" --ca "$QUIC_DIR/ca.crt" --timeout 3 "${@:2}"; }

http3_to_the_registered_host_answers() {
	local mark
	mark=$(access_mark)
	check_eq "quic: HTTP/3 GET https://api.quic.test/ answers" "200 h3 api.quic.test/" "$(quic_get https://api.quic.test/)"
	check "quic: the flow is logged with its SNI (resolved by the sidecar to $QUIC_API_V4)" last_json_record "$ACCESS_LOG" "$mark" \
		'.protocol == "UDP" and .authority == "api.quic.test" and .requested_server_name == "api.quic.test" and .upstream_host == "'"$QUIC_API_V4"':443" and .route_name == "quic sni resolved" and .upstream_cluster == "outbound|443||api.quic.test"'
}

a_client_hello_over_two_datagrams_is_held_then_allowed() {
	local mark
	mark=$(access_mark)
	check_eq "quic: a 1.6 KB ClientHello (two Initial datagrams) gets its answer" "200 h3 api.quic.test/big" \
		"$(quic_get https://api.quic.test/big --big-client-hello)"
	check "quic: one log line for the flow, with the SNI" last_json_record "$ACCESS_LOG" "$mark" \
		'.protocol == "UDP" and .requested_server_name == "api.quic.test" and .route_name == "quic sni resolved"'
	check "quic: its first datagram waited for the second (sluice_udp_held_packets_total{reason=\"client_hello\"})" bash -c \
		"ip netns exec $NS_APP curl -s --max-time 2 http://127.0.0.1:15090/stats/prometheus | grep -q 'sluice_udp_held_packets_total{reason=\"client_hello\"} [1-9]'"
}

http3_to_an_unregistered_sni_is_dropped() {
	local mark
	mark=$(access_mark)
	check_eq "quic: HTTP/3 to other.quic.test (not registered) gets no answer" timeout "$(quic_get https://other.quic.test/)"
	check "quic: the drop is logged (SNI other.quic.test, BlackHoleCluster, NR)" last_json_record "$ACCESS_LOG" "$mark" \
		'.protocol == "UDP" and .requested_server_name == "other.quic.test" and .route_name == "quic sni unregistered" and .upstream_cluster == "BlackHoleCluster" and .response_flags == "NR"'
	check "quic: sluice_udp_flows_total counts the drop" bash -c \
		"ip netns exec $NS_APP curl -s --max-time 2 http://127.0.0.1:15090/stats/prometheus | grep -q 'sluice_udp_flows_total{verdict=\"drop\"} [1-9]'"
}

the_registered_sni_to_another_address_is_dropped() {
	local mark
	mark=$(access_mark)
	check_eq "quic: SNI api.quic.test sent to $QUIC_OTHER_V4 (not its address) gets no answer" timeout \
		"$(quic_get https://api.quic.test/ --connect "$QUIC_OTHER_V4")"
	check "quic: logged as an address mismatch" last_json_record "$ACCESS_LOG" "$mark" \
		'.protocol == "UDP" and .requested_server_name == "api.quic.test" and .upstream_host == "'"$QUIC_OTHER_V4"':443" and .route_name == "quic sni address mismatch" and .response_flags == "NR"'
}

# `sluice explain quic://SNI --ip A`: the decision the UDP guard makes, without traffic.
explain_prints_the_quic_decision() {
	local config=$QUIC_DIR/registry_only.yaml
	check_explain "explain: quic://api.quic.test to $QUIC_API_V4, resolved from it by the pod: allowed (quic sni)" \
		'^route: +quic sni$' "$config" --ip "$QUIC_API_V4" --resolved "$QUIC_API_V4=api.quic.test" quic://api.quic.test
	check_explain "explain: not resolved by the pod: depends on the sidecar resolving the SNI" \
		'^decision: +depends on DNS' "$config" --ip "$QUIC_API_V4" quic://api.quic.test
	check_explain "explain: an unregistered SNI is dropped (quic sni unregistered)" \
		'^decision: +drop$' "$config" --ip "$QUIC_OTHER_V4" quic://other.quic.test
	check_explain "explain: tls://api.quic.test:443 adds the HTTP/3 line" \
		"^quic: +UDP 443 with SNI api.quic.test to $QUIC_API_V4: allow: " "$config" --ip "$QUIC_API_V4" \
		--resolved "$QUIC_API_V4=api.quic.test" tls://api.quic.test:443
	check_explain "explain: ALLOW_ANY lets the unregistered SNI through" \
		'^why: +ALLOW_ANY' "$QUIC_DIR/allow_any.yaml" --ip "$QUIC_OTHER_V4" quic://other.quic.test
}

allow_any_lets_an_unregistered_sni_through() {
	start_udp_sidecar "$QUIC_DIR/allow_any.yaml" || { fail "sidecar with allow_any.yaml" "$(tail -n 5 "$SIDECAR_LOG")"; return; }
	check_eq "ALLOW_ANY: HTTP/3 to other.quic.test answers" "200 h3 other.quic.test/" "$(quic_get https://other.quic.test/)"
}

quic_cleanup_removes_the_rules() {
	stop_sidecar
	quic_init --cleanup
	check "cleanup: no SLUICE_UDP rule is left" bash -c \
		"! { ip netns exec $NS_APP iptables-save; ip netns exec $NS_APP ip6tables-save; } | grep -q SLUICE_UDP"
}

quic_cases() {
	section "QUIC by SNI: sluice-init --capture-udp, aioquic HTTP/3 client and servers"
	if ! python3 -c 'import aioquic' 2>/dev/null; then
		fail "quic: python3 cannot import aioquic" "scripts/setup installs it from PyPI"
		return
	fi
	if ! quic_setup; then
		fail "quic: HTTP/3 servers in $NS_EXT" "$(cat "$E2E_TMP/quic-openssl.log" "$E2E_TMP"/quic-192.0.2.4*.out 2>/dev/null)"
		quic_teardown
		return
	fi
	if ! quic_init --capture-udp; then
		fail "quic: sluice-init --capture-udp" "$(cat "$E2E_TMP/quic-init.out")"
		quic_teardown
		return
	fi
	if ! start_udp_sidecar "$QUIC_DIR/registry_only.yaml"; then
		fail "quic: sidecar with udp.capture" "$(tail -n 10 "$SIDECAR_LOG")"
		quic_teardown
		return
	fi
	run_case http3_to_the_registered_host_answers
	run_case a_client_hello_over_two_datagrams_is_held_then_allowed
	run_case http3_to_an_unregistered_sni_is_dropped
	run_case the_registered_sni_to_another_address_is_dropped
	run_case explain_prints_the_quic_decision
	run_case allow_any_lets_an_unregistered_sni_through
	run_case quic_cleanup_removes_the_rules
	quic_teardown
}

quic_cases

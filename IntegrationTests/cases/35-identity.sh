# shellcheck shell=bash
# Workload identity (issue 21): `sluice certs` issues a mesh root and SPIFFE
# certificates; the sidecar reaches the gateway over ISTIO_MUTUAL; the gateway
# refuses clients without a certificate or from another root (handshake failure,
# logged and counted by reason) and picks up a rotated certificate without restart.
#
# Sourced by scripts/e2e after IntegrationTests/lib.sh, on a fresh test network.

MESH_DIR=           # scratch: ca/, other-ca/, gateway/, sleep/, stranger/
GATEWAY_IDENTITY_CONFIG= # $MESH_DIR/gateway.yaml: identity/gateway.yaml plus a policy directory

# gw_tls ARGS...: openssl s_client from sl-ext to the gateway, bounded in time.
gw_tls() {
	ext timeout 5 openssl s_client -connect "$GW_V4:80" -servername aliyun.com "$@" </dev/null 2>/dev/null
}

# gateway_serial: the serial of the certificate the gateway presents now.
gateway_serial() {
	gw_tls -cert "$MESH_DIR/sleep/cert-chain.pem" -key "$MESH_DIR/sleep/key.pem" |
		openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//'
}

# gateway_log_mentions MARK TEXT: the gateway's stderr since line MARK contains TEXT.
gateway_log_mentions() { tail -n +"$(($1 + 1))" "$GATEWAY_LOG" | grep -qF -- "$2"; }

issue_mesh_certificates() {
	local out
	MESH_DIR=$(mktemp -d /tmp/sluice-e2e-mesh.XXXXXX)
	chmod 755 "$MESH_DIR" # the sidecar (proxy uid) reads sleep/ below it
	if out=$("$SLUICE_BIN" certs root --out "$MESH_DIR/ca" 2>&1) &&
		out+=$("$SLUICE_BIN" certs issue --root "$MESH_DIR/ca" --namespace istio-system \
			--service-account istio-egressgateway-service-account --dns gw.test --out "$MESH_DIR/gateway" 2>&1) &&
		out+=$("$SLUICE_BIN" certs issue --root "$MESH_DIR/ca" --namespace default --service-account sleep \
			--out "$MESH_DIR/sleep" 2>&1) &&
		out+=$("$SLUICE_BIN" certs issue --root "$MESH_DIR/ca" --namespace default --service-account sleep \
			--days=-1 --out "$MESH_DIR/expired" 2>&1) &&
		out+=$("$SLUICE_BIN" certs issue --root "$MESH_DIR/ca" --trust-domain example.org --namespace default \
			--service-account sleep --out "$MESH_DIR/foreign-domain" 2>&1) &&
		out+=$("$SLUICE_BIN" certs root --out "$MESH_DIR/other-ca" 2>&1) &&
		out+=$("$SLUICE_BIN" certs issue --root "$MESH_DIR/other-ca" --namespace default --service-account sleep \
			--out "$MESH_DIR/stranger" 2>&1); then
		pass "sluice certs: a root, the gateway's and the app's certificates, and another mesh's"
	else
		fail "sluice certs: a root, the gateway's and the app's certificates, and another mesh's" "$out"
		return 1
	fi
	check_eq "sluice certs: the app's certificate names spiffe://cluster.local/ns/default/sa/sleep" \
		"URI:spiffe://cluster.local/ns/default/sa/sleep" \
		"$(openssl x509 -in "$MESH_DIR/sleep/cert-chain.pem" -noout -ext subjectAltName | tail -n 1 | tr -d ' ')"
	check_eq "sluice certs: openssl verifies the gateway's certificate against root-cert.pem" \
		"$MESH_DIR/gateway/cert-chain.pem: OK" \
		"$(openssl verify -CAfile "$MESH_DIR/gateway/root-cert.pem" "$MESH_DIR/gateway/cert-chain.pem" 2>&1)"
	# The sidecar runs as the proxy uid: its certificate directory is its own.
	chown -R "$PROXY_UID:$PROXY_UID" "$MESH_DIR/sleep"
	# A scratch copy of the gateway's config whose registry also reads authz/, where
	# authorization_policy_denies_tls_at_gateway puts an AuthorizationPolicy while it runs.
	mkdir -p "$MESH_DIR/authz"
	GATEWAY_IDENTITY_CONFIG=$MESH_DIR/gateway.yaml
	sed -e "s|  - ../gateway/gateway-registry/|  - $E2E_CONFIGS/gateway/gateway-registry/\n  - authz/|" \
		"$E2E_CONFIGS/identity/gateway.yaml" >"$GATEWAY_IDENTITY_CONFIG"
}

mtls_http_leaves_through_gateway() {
	local mark gw_access
	mark=$(origin_mark)
	gw_access=$(gateway_access_mark)
	check_eq "ISTIO_MUTUAL: curl -sI http://aliyun.com answers 301 through the gateway" 301 \
		"$(app_status -I http://aliyun.com/)"
	check_gateway_access_log "ISTIO_MUTUAL: the gateway logged the request it took out of mTLS" "$gw_access" \
		'.authority == "aliyun.com" and .response_code == 301'
	check_origin_peer "ISTIO_MUTUAL: the origin saw the gateway ($GW_V4)" "$mark" "$ALIYUN_V4" 80 "$GW_V4"
}

mtls_tls_passes_through_inside_mtls() {
	check_eq "ISTIO_MUTUAL: curl -sI https://aliyun.com (the app's TLS inside mTLS) answers 301" 301 \
		"$(app_status -I https://aliyun.com/)"
}

plain_client_fails_the_handshake() {
	local code
	code=$(ext curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: aliyun.com' "http://$GW_V4/")
	check_eq "gateway: a plain HTTP client at :80 gets no HTTP answer" 000 "$code"
	check_metric_reaches "gateway: counted in sluice_tls_handshake_failures_total{reason=\"handshake\"}" \
		gateway 1 sluice_tls_handshake_failures_total reason=handshake
}

client_without_certificate_is_refused() {
	local mark
	mark=$(wc -l <"$GATEWAY_LOG")
	check_eq "gateway: curl over TLS without a client certificate gets no answer" 000 \
		"$(ext curl -sk -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: aliyun.com' "https://$GW_V4:80/")"
	check_metric_reaches "gateway: counted in sluice_tls_handshake_failures_total{reason=\"no_certificate\"}" \
		gateway 1 sluice_tls_handshake_failures_total reason=no_certificate
	wait_until 2 gateway_log_mentions "$mark" "reason=no_certificate"
	check "gateway: its log says mTLS handshake failed with reason=no_certificate" \
		gateway_log_mentions "$mark" "reason=no_certificate"
}

# mtls_status DIR: the status curl from sl-ext gets from the gateway's :80 over TLS with
# the certificate in $MESH_DIR/DIR (000: no HTTP answer).
mtls_status() {
	ext curl -sk -o /dev/null -w '%{http_code}' --max-time 5 --cert "$MESH_DIR/$1/cert-chain.pem" \
		--key "$MESH_DIR/$1/key.pem" -H 'Host: aliyun.com' "https://$GW_V4:80/"
}

# Another root, an expired certificate, a SPIFFE ID of another trust domain: each refused
# with its own reason; the mesh's own certificate passes.
client_from_another_root_is_refused() {
	local dir reason what
	for dir in stranger:unknown_ca:"a certificate from another mesh's root" \
		expired:expired:"an expired certificate from the mesh's root" \
		foreign-domain:bad_san:"a SPIFFE ID of another trust domain (example.org)"; do
		IFS=: read -r dir reason what <<<"$dir"
		check_eq "gateway: curl with $what gets no answer" 000 "$(mtls_status "$dir")"
		check_metric_reaches "gateway: counted in sluice_tls_handshake_failures_total{reason=\"$reason\"}" \
			gateway 1 sluice_tls_handshake_failures_total reason="$reason"
	done
	check_eq "gateway: the same curl with the mesh's certificate gets 301" 301 "$(mtls_status sleep)"
}

gateway_certificate_rotates_live() {
	local before after expected mark
	before=$(gateway_serial)
	if [[ -z $before ]]; then
		fail "rotation: the gateway presents a certificate (openssl s_client)" "no serial read"
		return
	fi
	mark=$(wc -l <"$GATEWAY_LOG")
	expected=$("$SLUICE_BIN" certs issue --root "$MESH_DIR/ca" --namespace istio-system \
		--service-account istio-egressgateway-service-account --dns gw.test --out "$MESH_DIR/gateway" | awk '{print $3}')
	if wait_until 3 bash -c "[[ \$(ip netns exec $NS_EXT timeout 5 openssl s_client -connect $GW_V4:80 -cert $MESH_DIR/sleep/cert-chain.pem -key $MESH_DIR/sleep/key.pem </dev/null 2>/dev/null | openssl x509 -noout -serial | sed 's/^serial=//') == $expected ]]"; then
		pass "rotation: within 3 s a new connection gets the new certificate (serial $before → $expected), no restart"
	else
		after=$(gateway_serial)
		fail "rotation: within 3 s a new connection gets the new certificate" "expected $expected, still $after"
	fi
	check "rotation: the gateway logged it" gateway_log_mentions "$mark" "certificate rotated"
	check_metric_reaches "rotation: sluice_certificate_rotations_total{result=\"success\"} counts it" \
		gateway 1 sluice_certificate_rotations_total result=success
	check_eq "rotation: the app still gets 301 through the gateway" 301 "$(app_status -I http://aliyun.com/)"
	check "rotation: the gateway is still the same process" gateway_alive
}

# A DENY for the app's SPIFFE ID on SNI aliyun.com, applied by a file edit (hot reload):
# the app's TLS through the gateway is closed, its HTTP (another listener, not TLS) still
# passes; removing the policy opens TLS again.
authorization_policy_denies_tls_at_gateway() {
	cat >"$MESH_DIR/authz/deny-sleep.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-sleep-aliyun, namespace: istio-system}
spec:
  action: DENY
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
    when: [{key: connection.sni, values: ["aliyun.com"]}]
YAML
	if wait_until 3 bash -c "[[ \$(ip netns exec $NS_APP curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert $CA_CERT -I https://aliyun.com/) == 000 ]]"; then
		pass "AuthorizationPolicy: a DENY on principal cluster.local/ns/default/sa/sleep + SNI aliyun.com closes the app's https://aliyun.com within 3 s"
	else
		fail "AuthorizationPolicy: a DENY on the app's principal closes its https://aliyun.com" "$(tail -n 5 "$GATEWAY_LOG")"
	fi
	check_metric_reaches "AuthorizationPolicy: sluice_rbac_decisions_total{decision=\"denied\"} counts it" \
		gateway 1 sluice_rbac_decisions_total decision=denied "policy=ns[istio-system]-policy[deny-sleep-aliyun]-rule[0]"
	check "AuthorizationPolicy: the gateway's log says RBAC: access denied" \
		grep -qF "rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-sleep-aliyun]-rule[0]]" "$GATEWAY_LOG"
	check_eq "AuthorizationPolicy: http://aliyun.com (the HTTP listener) still answers 301" 301 "$(app_status -I http://aliyun.com/)"
	rm -f "$MESH_DIR/authz/deny-sleep.yaml"
	if wait_until 3 bash -c "[[ \$(ip netns exec $NS_APP curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert $CA_CERT -I https://aliyun.com/) == 301 ]]"; then
		pass "AuthorizationPolicy: with the policy removed, https://aliyun.com answers 301 again"
	else
		fail "AuthorizationPolicy: with the policy removed, https://aliyun.com answers 301 again" "$(tail -n 5 "$GATEWAY_LOG")"
	fi
}

# AuthorizationPolicy on HTTP requests at the gateway (Envoy's RBAC HTTP filter): an ALLOW
# for the app's SPIFFE ID on paths /allowed* and a DENY on method DELETE, applied by a file
# edit. The allowed path passes, another path and a DELETE get 403 "RBAC: access denied"
# with the deciding policy in response_code_details; removing the policies opens "/" again.
authorization_policy_checks_http_at_gateway() {
	local gw_access body
	cat >"$MESH_DIR/authz/http.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-sleep-allowed, namespace: istio-system}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
    to: [{operation: {paths: ["/allowed*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-delete, namespace: istio-system}
spec:
  action: DENY
  rules:
  - to: [{operation: {methods: ["DELETE"]}}]
YAML
	gw_access=$(gateway_access_mark)
	if wait_until 3 bash -c "[[ \$(ip netns exec $NS_APP curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://aliyun.com/) == 403 ]]"; then
		pass "AuthorizationPolicy (HTTP): with an ALLOW on /allowed* for the app's principal, http://aliyun.com/ gets 403 within 3 s"
	else
		fail "AuthorizationPolicy (HTTP): http://aliyun.com/ gets 403 under an ALLOW on /allowed*" "$(tail -n 5 "$GATEWAY_LOG")"
	fi
	body=$(app curl -s --max-time "$CURL_MAX_TIME" http://aliyun.com/other)
	check_eq "AuthorizationPolicy (HTTP): the 403's body is Envoy's RBAC: access denied" "RBAC: access denied" "$body"
	check_eq "AuthorizationPolicy (HTTP): GET http://aliyun.com/allowed/page (ALLOW matches) answers 200" 200 \
		"$(app_status http://aliyun.com/allowed/page)"
	check_eq "AuthorizationPolicy (HTTP): DELETE http://aliyun.com/allowed/page (the DENY on DELETE) answers 403" 403 \
		"$(app_status -X DELETE http://aliyun.com/allowed/page)"
	check_gateway_access_log "AuthorizationPolicy (HTTP): the access log has response_code_details for the DENY" "$gw_access" \
		'.method == "DELETE" and .response_code == 403 and .response_code_details == "rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-delete]-rule[0]]"'
	check_gateway_access_log "AuthorizationPolicy (HTTP): the access log has response_code_details [none] for the default deny" "$gw_access" \
		'.path == "/other" and .response_code == 403 and .response_code_details == "rbac_access_denied_matched_policy[none]"'
	check_metric_reaches "AuthorizationPolicy (HTTP): sluice_rbac_decisions_total{decision=\"allowed\"} counts the ALLOW" \
		gateway 1 sluice_rbac_decisions_total decision=allowed "policy=ns[istio-system]-policy[allow-sleep-allowed]-rule[0]"
	check_metric_reaches "AuthorizationPolicy (HTTP): sluice_rbac_decisions_total{decision=\"denied\"} counts the DENY" \
		gateway 1 sluice_rbac_decisions_total decision=denied "policy=ns[istio-system]-policy[deny-delete]-rule[0]"
	rm -f "$MESH_DIR/authz/http.yaml"
	if wait_until 3 bash -c "[[ \$(ip netns exec $NS_APP curl -s -o /dev/null -w '%{http_code}' --max-time 2 -I http://aliyun.com/) == 301 ]]"; then
		pass "AuthorizationPolicy (HTTP): with the policies removed, http://aliyun.com/ answers 301 again"
	else
		fail "AuthorizationPolicy (HTTP): with the policies removed, http://aliyun.com/ answers 301 again" "$(tail -n 5 "$GATEWAY_LOG")"
	fi
}

identity_cases() {
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	issue_mesh_certificates || return
	# The gateway needs --certs, which `scenario` does not pass: start it here; the
	# scenario keeps a running gateway that has its config.
	if wants mtls_http_leaves_through_gateway mtls_tls_passes_through_inside_mtls plain_client_fails_the_handshake \
		client_without_certificate_is_refused client_from_another_root_is_refused gateway_certificate_rotates_live \
		authorization_policy_denies_tls_at_gateway authorization_policy_checks_http_at_gateway; then
		if start_gateway "$GATEWAY_IDENTITY_CONFIG" --certs "$MESH_DIR/gateway" --namespace istio-system 2>"$E2E_TMP/start.err"; then
			SCENARIO_GATEWAY_CONFIG=$GATEWAY_IDENTITY_CONFIG
		else
			fail "sluice gateway --certs started with identity/gateway.yaml" "$(cat "$E2E_TMP/start.err")"
		fi
	fi
	SLUICE_CERTS_DIR=$MESH_DIR/sleep
	export SLUICE_CERTS_DIR
	scenario --gateway "$GATEWAY_IDENTITY_CONFIG" identity/sidecar.yaml \
		mtls_http_leaves_through_gateway \
		mtls_tls_passes_through_inside_mtls \
		plain_client_fails_the_handshake \
		client_without_certificate_is_refused \
		client_from_another_root_is_refused \
		gateway_certificate_rotates_live \
		authorization_policy_denies_tls_at_gateway \
		authorization_policy_checks_http_at_gateway
	unset SLUICE_CERTS_DIR
	stop_gateway
	rm -rf "$MESH_DIR"
}

identity_cases

# shellcheck shell=bash
# TLS origination (issue 21 item 5): DestinationRule `tls` SIMPLE and MUTUAL applied per
# destination. The app sends plain http://edition.cnn.com; an HTTPS-only origin
# (IntegrationTests/tls_origin.py in sl-ext, certificates from a test CA of this file) must
# answer it, which proves TLS was spoken:
#  - at the sidecar with Istio's "Egress TLS Origination" objects verbatim;
#  - through the gateway with Istio's "Egress Gateways with TLS Origination" objects verbatim
#    (sidecar → gateway ISTIO_MUTUAL, the gateway originates SIMPLE);
#  - a server certificate outside the rule's subjectAltNames, or from another CA, gets
#    Envoy's 503 UF with upstream_transport_failure_reason in the log;
#  - MUTUAL with credentialName (--credentials-dir) to an origin that requires a client
#    certificate, and SIMPLE to the same origin refused by it;
#  - Gateway servers with tls.mode SIMPLE (certificate files) and MUTUAL (credentialName)
#    terminate TLS from a client outside the mesh and route the HTTP inside by Host; MUTUAL
#    logs the client certificate's URI SAN as downstream_peer_uri_san, SIMPLE none;
#  - Gateway servers on one port that differ (SIMPLE for edition.cnn.com, MUTUAL for
#    *.cnn.test, each its own certificate): each connection gets the server its SNI names,
#    a name neither covers is closed.
# The task's names exist only in the namespaces' hosts files; the test CA is the "system
# roots" of sl-app and sl-gw only (an /etc/netns/NS/ssl that `ip netns exec` mounts over
# /etc/ssl), so the task's rule without caCertificates verifies as it would in a cluster.
#
# Sourced by scripts/e2e after IntegrationTests/lib.sh, on a fresh test network.

TLSO_DIR=             # scratch: ca/, other-ca/, origin certificates, credentials/, registry/, mesh/
TLSO_LOG=             # the origin's request log (JSON lines)
TLSO_PID=
CNN_TLS_V4=192.0.2.40 # edition.cnn.com, wrong-san.test, other-ca.test: TLS only
MTLS_V4=192.0.2.41    # my-nginx.mesh-external.svc.cluster.local: requires a client certificate
EGRESS_SERVICE=istio-egressgateway.istio-system.svc.cluster.local
MTLS_HOST=my-nginx.mesh-external.svc.cluster.local

# tlso_issue NAME CA SUBJECT_CN SAN: a certificate and key NAME.{crt,key} in $TLSO_DIR, signed by CA.
tlso_issue() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$TLSO_DIR/$1.key" -out "$TLSO_DIR/$1.csr" -subj "/CN=$3" &&
		printf '%s\n' "subjectAltName=$4" "basicConstraints=CA:FALSE" >"$TLSO_DIR/$1.ext" &&
		openssl x509 -req -in "$TLSO_DIR/$1.csr" -CA "$TLSO_DIR/$2.crt" -CAkey "$TLSO_DIR/$2.key" \
			-CAcreateserial -days 2 -extfile "$TLSO_DIR/$1.ext" -out "$TLSO_DIR/$1.crt"
}

# tlso_ca NAME: a self-signed CA NAME.{crt,key}.
tlso_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$TLSO_DIR/$1.key" -out "$TLSO_DIR/$1.crt" -days 2 -subj "/CN=sluice e2e $1" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

tlso_origin_listening() {
	(($(ext ss -Hltn "( sport = :443 )" | wc -l) >= 2))
}

# tls_origination_setup: the CAs and certificates, the origin's addresses and process, the
# names in the hosts files, the test CA as the system roots of sl-app and sl-gw, the mesh
# certificates for the gateway hop, and the scratch registry of the failure and MUTUAL cases.
tls_origination_setup() {
	TLSO_DIR=$(mktemp -d /tmp/sluice-e2e-tlso.XXXXXX)
	chmod 755 "$TLSO_DIR" # the sidecar (proxy uid) reads registry/ and credentials/
	TLSO_LOG=$TLSO_DIR/origin.jsonl
	touch "$TLSO_LOG"
	if ! {
		tlso_ca ca && tlso_ca other-ca &&
			tlso_issue origin ca edition.cnn.com "DNS:edition.cnn.com,DNS:wrong-san.test,DNS:other-ca.test" &&
			tlso_issue nginx ca "$MTLS_HOST" "DNS:$MTLS_HOST,DNS:mtls-nocert.test" &&
			tlso_issue client ca sleep-client "DNS:client.test,URI:spiffe://example.org/ns/ext/sa/sleep-client" &&
			tlso_issue gw-server ca edition.cnn.com "DNS:edition.cnn.com" &&
			tlso_issue gw-other ca api.cnn.test "DNS:api.cnn.test"
	} >"$TLSO_DIR/openssl.log" 2>&1; then
		fail "test CA and origin certificates (openssl)" "$(cat "$TLSO_DIR/openssl.log")"
		return 1
	fi
	# credentialName client-credential: a kubernetes.io/tls Secret as mounted.
	mkdir -p "$TLSO_DIR/credentials/client-credential"
	cp "$TLSO_DIR/client.crt" "$TLSO_DIR/credentials/client-credential/tls.crt"
	cp "$TLSO_DIR/client.key" "$TLSO_DIR/credentials/client-credential/tls.key"
	cp "$TLSO_DIR/ca.crt" "$TLSO_DIR/credentials/client-credential/ca.crt"
	# The gateway's MUTUAL server: credentialName gateway-credential.
	mkdir -p "$TLSO_DIR/credentials/gateway-credential"
	cp "$TLSO_DIR/gw-server.crt" "$TLSO_DIR/credentials/gateway-credential/tls.crt"
	cp "$TLSO_DIR/gw-server.key" "$TLSO_DIR/credentials/gateway-credential/tls.key"
	cp "$TLSO_DIR/ca.crt" "$TLSO_DIR/credentials/gateway-credential/ca.crt"
	# The :8445 MUTUAL server for *.cnn.test: credentialName gateway-other-credential.
	mkdir -p "$TLSO_DIR/credentials/gateway-other-credential"
	cp "$TLSO_DIR/gw-other.crt" "$TLSO_DIR/credentials/gateway-other-credential/tls.crt"
	cp "$TLSO_DIR/gw-other.key" "$TLSO_DIR/credentials/gateway-other-credential/tls.key"
	cp "$TLSO_DIR/ca.crt" "$TLSO_DIR/credentials/gateway-other-credential/ca.crt"
	chown -R "$PROXY_UID:$PROXY_UID" "$TLSO_DIR/credentials"

	ip -n "$NS_EXT" addr add "$CNN_TLS_V4/24" dev eth0
	ip -n "$NS_EXT" addr add "$MTLS_V4/24" dev eth0
	{
		echo "$GW_V4 $EGRESS_SERVICE"
		echo "$CNN_TLS_V4 edition.cnn.com wrong-san.test other-ca.test reload-tls.test"
		echo "$MTLS_V4 $MTLS_HOST mtls-nocert.test"
	} >>"/etc/netns/$NS_APP/hosts"
	echo "$CNN_TLS_V4 edition.cnn.com" >>"/etc/netns/$NS_GW/hosts"
	local ns
	for ns in "$NS_APP" "$NS_GW"; do
		mkdir -p "/etc/netns/$ns/ssl/certs"
		cp "$TLSO_DIR/ca.crt" "/etc/netns/$ns/ssl/certs/ca-certificates.crt"
		chmod -R a+rX "/etc/netns/$ns/ssl"
	done

	ip netns exec "$NS_EXT" python3 -u "$E2E_DIR/tls_origin.py" --log "$TLSO_LOG" \
		--listen "$CNN_TLS_V4:443:$TLSO_DIR/origin.crt:$TLSO_DIR/origin.key" \
		--listen "$MTLS_V4:443:$TLSO_DIR/nginx.crt:$TLSO_DIR/nginx.key:$TLSO_DIR/ca.crt" \
		>>"$TLSO_DIR/origin.out" 2>&1 9>&- &
	TLSO_PID=$!
	record_pid "$TLSO_PID"
	if ! wait_until 10 tlso_origin_listening; then
		fail "tls_origin.py listening on $CNN_TLS_V4:443 and $MTLS_V4:443" "$(cat "$TLSO_DIR/origin.out")"
		return 1
	fi

	# The failure and MUTUAL cases: one ServiceEntry + DestinationRule per host, port 80
	# targeting 443 as in the task.
	mkdir -p "$TLSO_DIR/registry"
	local host tls
	for host in wrong-san.test other-ca.test "$MTLS_HOST" mtls-nocert.test; do
		case $host in
		wrong-san.test) tls="{mode: SIMPLE, subjectAltNames: [api.example.org]}" ;;
		other-ca.test) tls="{mode: SIMPLE, caCertificates: $TLSO_DIR/other-ca.crt}" ;;
		mtls-nocert.test) tls="{mode: SIMPLE}" ;;
		*) tls="{mode: MUTUAL, credentialName: client-credential, sni: $MTLS_HOST}" ;;
		esac
		tlso_entry "$host" "$tls" >>"$TLSO_DIR/registry/cases.yaml"
		echo --- >>"$TLSO_DIR/registry/cases.yaml"
	done
	tlso_entry reload-tls.test "{mode: SIMPLE, sni: edition.cnn.com}" >"$TLSO_DIR/registry/reload-tls.yaml"
	sed -e "s|  - sidecar-task/|  - $E2E_CONFIGS/tls-origination/sidecar-task/\n  - $TLSO_DIR/registry/|" \
		"$E2E_CONFIGS/tls-origination/sidecar.yaml" >"$TLSO_DIR/sidecar.yaml"

	# A gateway of its own for the SIMPLE / MUTUAL servers (:8443 files, :8444 credentialName,
	# :8445 both, picked by SNI), routing to edition.cnn.com:443 with TLS origination.
	mkdir -p "$TLSO_DIR/gateway-registry"
	cat >"$TLSO_DIR/gateway-registry/servers.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cnn}
spec:
  hosts: [edition.cnn.com]
  ports:
  - {number: 443, name: https, protocol: HTTPS}
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress-terminating}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 8443, name: https-simple, protocol: HTTPS}
    hosts: [edition.cnn.com]
    tls: {mode: SIMPLE, serverCertificate: $TLSO_DIR/gw-server.crt, privateKey: $TLSO_DIR/gw-server.key}
  - port: {number: 8444, name: https-mutual, protocol: HTTPS}
    hosts: [edition.cnn.com]
    tls: {mode: MUTUAL, credentialName: gateway-credential}
  - port: {number: 8445, name: https-by-sni-cnn, protocol: HTTPS}
    hosts: [edition.cnn.com]
    tls: {mode: SIMPLE, serverCertificate: $TLSO_DIR/gw-server.crt, privateKey: $TLSO_DIR/gw-server.key}
  - port: {number: 8445, name: https-by-sni-test, protocol: HTTPS}
    hosts: ["*.cnn.test"]
    tls: {mode: MUTUAL, credentialName: gateway-other-credential}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: terminated-to-cnn}
spec:
  hosts: [edition.cnn.com, api.cnn.test]
  gateways: [egress-terminating]
  http:
  - route:
    - destination: {host: edition.cnn.com, port: {number: 443}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: originate-tls-for-edition-cnn-com}
spec:
  host: edition.cnn.com
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE, caCertificates: $TLSO_DIR/ca.crt}
YAML
	cat >"$TLSO_DIR/gateway-terminating.yaml" <<YAML
outboundTrafficPolicy: {mode: REGISTRY_ONLY}
registry: [$TLSO_DIR/gateway-registry/]
listeners:
  - {port: 80, protocol: HTTP}
  - {port: 443, protocol: TLS}
  - {port: 8443, protocol: HTTP}
  - {port: 8444, protocol: HTTP}
  - {port: 8445, protocol: HTTP}
  - {port: 15080, protocol: CONNECT}
accessLog: {path: /dev/stdout, format: json}
YAML

	# The gateway hop: the mesh root, the gateway's and the app's workload certificates.
	local out
	if ! out=$("$SLUICE_BIN" certs root --out "$TLSO_DIR/mesh/ca" 2>&1 &&
		"$SLUICE_BIN" certs issue --root "$TLSO_DIR/mesh/ca" --namespace istio-system \
			--service-account istio-egressgateway-service-account --dns "$EGRESS_SERVICE" --out "$TLSO_DIR/mesh/gateway" 2>&1 &&
		"$SLUICE_BIN" certs issue --root "$TLSO_DIR/mesh/ca" --namespace default --service-account sleep \
			--out "$TLSO_DIR/mesh/sleep" 2>&1); then
		fail "sluice certs: the mesh root, the gateway's and the app's certificates" "$out"
		return 1
	fi
	chmod 755 "$TLSO_DIR/mesh"
	chown -R "$PROXY_UID:$PROXY_UID" "$TLSO_DIR/mesh/sleep"
}

tls_origination_teardown() {
	[[ -n $TLSO_PID ]] && kill_pid "$TLSO_PID"
	TLSO_PID=
	ip -n "$NS_EXT" addr del "$CNN_TLS_V4/24" dev eth0 2>/dev/null
	ip -n "$NS_EXT" addr del "$MTLS_V4/24" dev eth0 2>/dev/null
	rm -rf "/etc/netns/$NS_APP/ssl" "/etc/netns/$NS_GW/ssl"
	hosts_file >"/etc/netns/$NS_APP/hosts"
	hosts_file >"/etc/netns/$NS_GW/hosts"
	[[ -n $TLSO_DIR ]] && rm -rf "$TLSO_DIR"
}

tlso_mark() { wc -l <"$TLSO_LOG"; }

# check_origin_request DESC MARK JQ_CONDITION: the origin logged a request since MARK that
# satisfies the condition.
check_origin_request() {
	if wait_until 2 _json_record_has "$TLSO_LOG" "$2" "$3"; then
		pass "$1"
	else
		fail "$1" "no request matching $3 in the origin's log since line $2:"
		indent "$(tail -n +"$(($2 + 1))" "$TLSO_LOG")"
	fi
}

sidecar_originates_tls_for_plain_http() {
	local mark access rec
	mark=$(tlso_mark)
	access=$(access_mark)
	check_eq "Egress TLS Origination: curl http://edition.cnn.com/politics gets the HTTPS-only origin's answer" \
		"tls-origin local=$CNN_TLS_V4 host=edition.cnn.com sni=edition.cnn.com client=-" \
		"$(app_curl http://edition.cnn.com/politics)"
	check_origin_request "Egress TLS Origination: the origin saw TLS on :443 with SNI edition.cnn.com, from the app's pod" "$mark" \
		'.path == "/politics" and .sni == "edition.cnn.com" and (.tls | startswith("TLS")) and .peer == "'"$APP_V4"'"'
	rec=$(last_json_record "$ACCESS_LOG" "$access" '.authority == "edition.cnn.com" and .path == "/politics"')
	check_eq "sidecar log: upstream_host is the origin's :443 (the entry's targetPort)" "$CNN_TLS_V4:443" \
		"$(jq -r '.upstream_host' <<<"$rec")"
	check_eq "sidecar log: upstream_cluster is the task's port 80" "outbound|80||edition.cnn.com" \
		"$(jq -r '.upstream_cluster' <<<"$rec")"
	check_explain "explain: the decision originates SIMPLE with the host as SNI, verified against the system roots" \
		'^upstream tls: SIMPLE sni=edition.cnn.com ca=system san=\[edition.cnn.com\]$' "$TLSO_DIR/sidecar.yaml" http://edition.cnn.com/
	check_not "check: no \"not yet applied\" for the task's DestinationRule" \
		bash -c "'$SLUICE_BIN' check --config '$TLSO_DIR/sidecar.yaml' 2>&1 | grep -q 'not yet applied'"
}

# wrong SAN / another CA: Envoy's 503 UF with its failure reason, in the body and the log.
failed_verification_is_503_uf() {
	local access rec host what body
	for host in wrong-san.test:"a certificate outside the rule's subjectAltNames" \
		other-ca.test:"a certificate from another CA than caCertificates"; do
		what=${host#*:}
		host=${host%%:*}
		access=$(access_mark)
		body=$(app curl -s --max-time "$CURL_MAX_TIME" -w ' %{http_code}' "http://$host/")
		check_eq "$host ($what): 503 with Envoy's body and the transport failure reason" \
			"upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end 503" \
			"$(tr -d '\n' <<<"$body")"
		rec=$(last_json_record "$ACCESS_LOG" "$access" ".authority == \"$host\"")
		# URX: the failed handshake is a connect failure, which Istio's default retry policy
		# (docs/configuration.md) retried twice.
		check_eq "$host: the access log has UF,URX and Envoy's upstream_transport_failure_reason" \
			"503 UF,URX TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end" \
			"$(jq -r '"\(.response_code) \(.response_flags) \(.upstream_transport_failure_reason)"' <<<"$rec")"
	done
}

# tlso_entry HOST TLS: a ServiceEntry for HOST (port 80 targeting 443, resolution DNS) and a
# DestinationRule whose port-80 tls is TLS.
tlso_entry() {
	cat <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: $1}
spec:
  hosts: [$1]
  ports:
  - {number: 80, name: http-port, protocol: HTTP, targetPort: 443}
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: $1}
spec:
  host: $1
  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
      tls: $2
YAML
}

tlso_reloads_above() { (($(sidecar_metric sluice_config_reloads_total result=success) > $1)); }

# Pooled upstream connections are kept per TLS setting: requests under SIMPLE leave idle TLS
# connections to the origin behind; a reload that adds subjectAltNames the origin's
# certificate lacks must make the next request verify afresh (503 UF,URX), not reuse one of them.
reload_of_tls_setting_skips_idle_connections() {
	local i codes="" before access rec
	for i in 1 2 3 4; do # sequential connections: every event loop's pool gets an idle one
		codes+="$(app_status http://reload-tls.test/) "
	done
	check_eq "reload-tls.test under SIMPLE (sni edition.cnn.com, the test CA): 200 on four connections" \
		"200 200 200 200 " "$codes"
	before=$(sidecar_metric sluice_config_reloads_total result=success)
	tlso_entry reload-tls.test "{mode: SIMPLE, sni: edition.cnn.com, subjectAltNames: [api.example.org]}" \
		>"$TLSO_DIR/reload-tls.yaml.new"
	chmod 644 "$TLSO_DIR/reload-tls.yaml.new"
	mv "$TLSO_DIR/reload-tls.yaml.new" "$TLSO_DIR/registry/reload-tls.yaml"
	if ! wait_until 10 tlso_reloads_above "${before:-0}"; then
		fail "reload-tls.test: the changed DestinationRule was reloaded within 10 s" "reloads: $before"
		return
	fi
	access=$(access_mark)
	check_eq "after the reload (subjectAltNames [api.example.org]): the idle SIMPLE connections are not reused, 503" \
		503 "$(app_status http://reload-tls.test/)"
	rec=$(last_json_record "$ACCESS_LOG" "$access" '.authority == "reload-tls.test"')
	check_eq "after the reload: a new connection failed verification (503 UF, retried: URX)" "503 UF,URX" \
		"$(jq -r '"\(.response_code) \(.response_flags)"' <<<"$rec")"
}

mutual_presents_the_credential() {
	local mark access rec
	mark=$(tlso_mark)
	check_eq "MUTUAL (credentialName client-credential): the origin that requires a client certificate answers" \
		"tls-origin local=$MTLS_V4 host=$MTLS_HOST sni=$MTLS_HOST client=sleep-client" \
		"$(app_curl "http://$MTLS_HOST/")"
	check_origin_request "MUTUAL: the origin saw the client certificate from --credentials-dir/client-credential/tls.crt" "$mark" \
		'.client == "sleep-client" and .sni == "'"$MTLS_HOST"'"'
	access=$(access_mark)
	check_eq "SIMPLE to the same origin (no client certificate): 503" 503 "$(app_status http://mtls-nocert.test/)"
	rec=$(last_json_record "$ACCESS_LOG" "$access" '.authority == "mtls-nocert.test"')
	# TLS 1.3: the client's handshake is complete before the server reads its (empty)
	# certificate; the server's certificate_required alert then ends the connection before
	# any response — an upstream reset, as for any origin closing before its answer.
	check_eq "SIMPLE to the same origin: the origin's refusal after the TLS 1.3 handshake is a reset (UC)" \
		"503 UC" "$(jq -r '"\(.response_code) \(.response_flags)"' <<<"$rec")"
}

gateway_originates_tls_after_istio_mutual() {
	local mark access gw_access rec
	mark=$(tlso_mark)
	access=$(access_mark)
	gw_access=$(gateway_access_mark)
	check_eq "Egress Gateways with TLS Origination: curl http://edition.cnn.com/politics gets the origin's answer" \
		"tls-origin local=$CNN_TLS_V4 host=edition.cnn.com sni=edition.cnn.com client=-" \
		"$(app_curl http://edition.cnn.com/politics)"
	check_origin_request "Egress Gateways with TLS Origination: the origin saw TLS from the gateway ($GW_V4)" "$mark" \
		'.path == "/politics" and .sni == "edition.cnn.com" and .peer == "'"$GW_V4"'"'
	rec=$(last_json_record "$ACCESS_LOG" "$access" '.authority == "edition.cnn.com" and .path == "/politics"')
	check_eq "sidecar log: to the gateway's :443 on the task's subset cluster" \
		"$GW_V4:443 outbound|443|cnn|$EGRESS_SERVICE" "$(jq -r '"\(.upstream_host) \(.upstream_cluster)"' <<<"$rec")"
	rec=$(last_json_record "$GATEWAY_ACCESS_LOG" "$gw_access" '.authority == "edition.cnn.com" and .path == "/politics"')
	check_eq "gateway log: the request came out of ISTIO_MUTUAL and went to the origin's :443" \
		"200 $CNN_TLS_V4:443 outbound|443||edition.cnn.com" \
		"$(jq -r '"\(.response_code) \(.upstream_host) \(.upstream_cluster)"' <<<"$rec")"
	check_eq "gateway: a plain HTTP client at :443 gets no answer (the task's server is ISTIO_MUTUAL)" 000 \
		"$(ext curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: edition.cnn.com' "http://$GW_V4:443/")"
}

# tlso_client_status PORT [CURL_ARGS...]: the status curl from sl-ext gets from the gateway's
# PORT over TLS for https://edition.cnn.com (000: no HTTP answer).
tlso_client_status() {
	local port=$1
	shift
	ext curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TLSO_DIR/ca.crt" \
		--resolve "edition.cnn.com:$port:$GW_V4" "$@" "https://edition.cnn.com:$port/terminated"
}

gateway_terminates_simple_and_mutual() {
	local mark gw_access rec
	mark=$(tlso_mark)
	gw_access=$(gateway_access_mark)
	check_eq "Gateway server SIMPLE (:8443, certificate files): https://edition.cnn.com:8443 verified by the test CA gets 200" 200 \
		"$(tlso_client_status 8443)"
	check_origin_request "Gateway server SIMPLE: routed by Host and originated to the origin's :443 from the gateway" "$mark" \
		'.path == "/terminated" and .peer == "'"$GW_V4"'" and .sni == "edition.cnn.com"'
	rec=$(last_json_record "$GATEWAY_ACCESS_LOG" "$gw_access" '.path == "/terminated"')
	check_eq "Gateway server SIMPLE: the caller presented no certificate (downstream_peer_uri_san null)" \
		"200 null" "$(jq -r '"\(.response_code) \(.downstream_peer_uri_san)"' <<<"$rec")"
	gw_access=$(gateway_access_mark)
	check_eq "Gateway server SIMPLE: an HTTP/2 client negotiates h2 (ALPN) and gets 200 over HTTP/2" "200 2" \
		"$(tlso_client_status 8443 --http2 -w '%{http_code} %{http_version}')"
	rec=$(last_json_record "$GATEWAY_ACCESS_LOG" "$gw_access" '.path == "/terminated" and .protocol == "HTTP/2"')
	check_eq "Gateway server SIMPLE: the HTTP/2 stream went to the origin over HTTP/1.1 with TLS (Istio's cluster protocol for an HTTPS port)" \
		"200 $CNN_TLS_V4:443" "$(jq -r '"\(.response_code) \(.upstream_host)"' <<<"$rec")"
	check_eq "Gateway server MUTUAL (:8444, credentialName): without a client certificate, no answer" 000 \
		"$(tlso_client_status 8444)"
	gw_access=$(gateway_access_mark)
	check_eq "Gateway server MUTUAL: with a client certificate from the credential's ca.crt, 200" 200 \
		"$(tlso_client_status 8444 --cert "$TLSO_DIR/client.crt" --key "$TLSO_DIR/client.key")"
	rec=$(last_json_record "$GATEWAY_ACCESS_LOG" "$gw_access" '.path == "/terminated" and .authority == "edition.cnn.com:8444"')
	check_eq "Gateway server MUTUAL: the client certificate's URI SAN is downstream_peer_uri_san" \
		"200 spiffe://example.org/ns/ext/sa/sleep-client" "$(jq -r '"\(.response_code) \(.downstream_peer_uri_san)"' <<<"$rec")"
	check_eq "Gateway server MUTUAL: with a certificate from another CA, no answer" 000 \
		"$(tlso_client_status 8444 --cert "$TLSO_DIR/other-ca.crt" --key "$TLSO_DIR/other-ca.key")"
}

# tlso_sni_status HOST [CURL_ARGS...]: the status curl from sl-ext gets from the gateway's
# :8445 over TLS for https://HOST:8445 (000: no HTTP answer), the certificate verified for HOST.
tlso_sni_status() {
	local host=$1
	shift
	ext curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TLSO_DIR/ca.crt" \
		--resolve "$host:8445:$GW_V4" "$@" "https://$host:8445/by-sni"
}

gateway_picks_the_server_by_sni() {
	local gw_access rec
	gw_access=$(gateway_access_mark)
	check_eq "Gateway servers on one port (:8445): SNI edition.cnn.com gets its SIMPLE server's certificate (verified for that name), 200" \
		200 "$(tlso_sni_status edition.cnn.com)"
	rec=$(last_json_record "$GATEWAY_ACCESS_LOG" "$gw_access" '.path == "/by-sni"')
	check_eq "Gateway servers by SNI: the SIMPLE server asked for no client certificate" \
		"200 edition.cnn.com:8445 null" "$(jq -r '"\(.response_code) \(.authority) \(.downstream_peer_uri_san)"' <<<"$rec")"
	check_eq "Gateway servers by SNI: api.cnn.test reaches the *.cnn.test MUTUAL server, which wants a client certificate" \
		000 "$(tlso_sni_status api.cnn.test)"
	gw_access=$(gateway_access_mark)
	check_eq "Gateway servers by SNI: api.cnn.test with a client certificate, its own certificate verified for api.cnn.test, 200" \
		200 "$(tlso_sni_status api.cnn.test --cert "$TLSO_DIR/client.crt" --key "$TLSO_DIR/client.key")"
	rec=$(last_json_record "$GATEWAY_ACCESS_LOG" "$gw_access" '.path == "/by-sni"')
	check_eq "Gateway servers by SNI: the MUTUAL server took the caller's identity" \
		"200 api.cnn.test:8445 spiffe://example.org/ns/ext/sa/sleep-client" \
		"$(jq -r '"\(.response_code) \(.authority) \(.downstream_peer_uri_san)"' <<<"$rec")"
	check_eq "Gateway servers by SNI: a name no server covers is closed (Envoy: no filter chain)" \
		000 "$(tlso_sni_status other.example --insecure)"
	check_eq "Gateway servers by SNI: the port goes on serving after it" 200 "$(tlso_sni_status edition.cnn.com)"
}

tls_origination_cases() {
	tls_origination_setup || {
		tls_origination_teardown
		return
	}
	SLUICE_CREDENTIALS_DIR=$TLSO_DIR/credentials
	export SLUICE_CREDENTIALS_DIR
	scenario "$TLSO_DIR/sidecar.yaml" \
		sidecar_originates_tls_for_plain_http \
		failed_verification_is_503_uf \
		mutual_presents_the_credential \
		reload_of_tls_setting_skips_idle_connections
	unset SLUICE_CREDENTIALS_DIR

	if wants gateway_originates_tls_after_istio_mutual; then
		if start_gateway "$E2E_CONFIGS/tls-origination/gateway.yaml" --certs "$TLSO_DIR/mesh/gateway" \
			--labels-file "$E2E_CONFIGS/routing/gateway-labels" 2>"$E2E_TMP/start.err"; then
			SCENARIO_GATEWAY_CONFIG=$E2E_CONFIGS/tls-origination/gateway.yaml
		else
			fail "sluice gateway --certs started with tls-origination/gateway.yaml" "$(cat "$E2E_TMP/start.err")"
		fi
	fi
	SLUICE_CERTS_DIR=$TLSO_DIR/mesh/sleep
	export SLUICE_CERTS_DIR
	scenario --gateway "$E2E_CONFIGS/tls-origination/gateway.yaml" tls-origination/sidecar-gateway.yaml \
		gateway_originates_tls_after_istio_mutual
	unset SLUICE_CERTS_DIR

	if wants gateway_terminates_simple_and_mutual || wants gateway_picks_the_server_by_sni; then
		if SLUICE_CREDENTIALS_DIR=$TLSO_DIR/credentials start_gateway "$TLSO_DIR/gateway-terminating.yaml" \
			--labels-file "$E2E_CONFIGS/routing/gateway-labels" 2>"$E2E_TMP/start.err"; then
			SCENARIO_GATEWAY_CONFIG=$TLSO_DIR/gateway-terminating.yaml
		else
			fail "sluice gateway started with the SIMPLE / MUTUAL servers" "$(cat "$E2E_TMP/start.err")"
		fi
	fi
	scenario --gateway "$TLSO_DIR/gateway-terminating.yaml" none gateway_terminates_simple_and_mutual gateway_picks_the_server_by_sni
	stop_gateway
	tls_origination_teardown
}

tls_origination_cases

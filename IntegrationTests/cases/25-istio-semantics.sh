# shellcheck shell=bash
# Istio's ServiceEntry semantics through iptables (issue 17): what a registry
# entry lets through is what Istio's listeners for it would, no more.
#
#  1. a TCP port of an entry with addresses is matched by address only: its
#     hosts open nothing, whatever Host or SNI the app sends;
#  2. a port's protocol decides what flows on it: HTTP or opaque bytes on a
#     TLS-only port are refused;
#  3. a port without a protocol is detected: HTTP is routed by Host, so an
#     unregistered Host on it gets 502.

# 1 --------------------------------------------------------------------------

tcp_entry_hosts_open_no_other_address() {
	local mark access denied_before
	mark=$(origin_mark)
	access=$(access_mark)
	denied_before=$(sidecar_metric sluice_denied_total protocol=tcp)
	# curl exit 52: "empty reply from server", the connection closed without a byte.
	check_exit "TCP entry: curl -H 'Host: my-company-proxy.com' http://$UNREG_V4:7000/ is closed without a byte" 52 \
		app_curl -H 'Host: my-company-proxy.com' "http://$UNREG_V4:7000/"
	check_origin_never "TCP entry: $UNREG_V4:7000 saw no connection" "$mark" "$UNREG_V4" 7000
	check_access_log "TCP entry: the denial is logged with the Host tried, code 0, NR, BlackHoleCluster" "$access" \
		'.authority == "my-company-proxy.com" and .response_code == 0 and .response_flags == "NR" and .upstream_cluster == "BlackHoleCluster" and .downstream_local_address == "'"$UNREG_V4"':7000"'
	check_metric_reaches "TCP entry: sluice_denied_total{protocol=\"tcp\"} counts it" sidecar "$((${denied_before:-0} + 1))" \
		sluice_denied_total protocol=tcp
	check "TCP entry: a TLS ClientHello with SNI my-company-proxy.com to $UNREG_V4:7000 is closed without a byte" \
		client expect-closed "$UNREG_V4" 7000 --tls-sni my-company-proxy.com
	check_origin_never "TCP entry: still no connection to $UNREG_V4:7000" "$mark" "$UNREG_V4" 7000
	check "TCP entry: the registered address $TCP_V4:7000 still echoes" client echo "$TCP_V4" 7000
}

# 2 --------------------------------------------------------------------------

tls_port_carries_only_tls() {
	local mark
	mark=$(origin_mark)
	check_eq "TLS port: curl -sI https://aliyun.com answers 301" 301 "$(app_status -I https://aliyun.com/)"
	check_origin_saw "TLS port: it reached $ALIYUN_V4:443" "$mark" "$ALIYUN_V4" 443
	mark=$(origin_mark)
	check_exit "TLS port: plain HTTP to http://aliyun.com:443/ is closed without a byte" 52 \
		app_curl -H 'Host: aliyun.com' "http://aliyun.com:443/"
	check "TLS port: opaque bytes to $ALIYUN_V4:443 are closed without a byte" client expect-closed "$ALIYUN_V4" 443
	check_origin_never "TLS port: $ALIYUN_V4:443 saw neither" "$mark" "$ALIYUN_V4" 443
}

# 3 --------------------------------------------------------------------------

detected_port_routes_http_by_host() {
	local mark
	mark=$(origin_mark)
	check_eq "detected port: curl -sI http://aliyun.com answers 301" 301 "$(app_status -I http://aliyun.com/)"
	check_eq "detected port: curl -sI http://unregistered.test answers 502" 502 "$(app_status -I http://unregistered.test/)"
	check_eq "detected port: Host: unregistered.test to aliyun.com's own address answers 502" 502 \
		"$(app_status -I -H 'Host: unregistered.test' "http://$ALIYUN_V4/")"
	check_origin_never "detected port: $UNREG_V4 saw no connection" "$mark" "$UNREG_V4"
	check_eq "detected port: Host: aliyun.com:8080 on port 80 is not aliyun.com:80's route (502)" 502 \
		"$(app_status -I -H 'Host: aliyun.com:8080' "http://$ALIYUN_V4/")"
}

# 7 --------------------------------------------------------------------------

# explain_says DESC PATTERN ARGS...: `sluice explain ARGS` prints a line matching PATTERN.
explain_says() { # DESC PATTERN EXPLAIN_ARGS...: check_explain on semantics.yaml
	check_explain "$1" "$2" "$E2E_CONFIGS/semantics.yaml" "${@:3}"
}

explain_prints_what_the_runtime_does() {
	explain_says "explain: the Host of a TCP entry to another address is closed, as the sidecar did above" \
		'^decision: +deny: connection closed without a byte$' --ip "$UNREG_V4" http://my-company-proxy.com:7000/
	explain_says "explain: the TCP entry's own address is decided at accept, before a byte" \
		'^note: +decided at accept' tcp://"$TCP_V4":7000
	explain_says "explain: resolution NONE at the sidecar goes to the address dialled" \
		"^decision: +allow: to the original destination $ALIYUN_V4:80\$" --ip "$ALIYUN_V4" http://aliyun.com/
	explain_says "explain --role gateway: resolution NONE at the gateway resolves the name" \
		'^decision: +allow: direct, resolving aliyun.com \(DNS\) and dialling port 80$' --role gateway http://aliyun.com/
	explain_says "explain --role gateway: an unregistered host is 404 NR" \
		'^decision: +deny: 404 Not Found \(NR\)$' --role gateway http://unregistered.test/
}

semantics_cases() {
	run_case explain_prints_what_the_runtime_does
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	scenario semantics.yaml \
		tcp_entry_hosts_open_no_other_address \
		tls_port_carries_only_tls \
		detected_port_routes_http_by_host
}

semantics_cases

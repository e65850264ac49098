# shellcheck shell=bash
# Audit mode (issue 23): REGISTRY_ONLY decides, but would-be denials pass, each
# logged with what a denial logs plus istio_policy_status "audit_denied" and
# counted in sluice_audit_denials_total; switching audit off is a hot reload.

AUDIT_DIR=

audit_lets_would_be_denials_through() {
	local mark access
	mark=$(origin_mark)
	access=$(access_mark)
	check_eq "audit: http://unregistered.test is let through (200), where REGISTRY_ONLY gives 502" \
		"origin=$UNREG_V4 host=unregistered.test" "$(app_curl http://unregistered.test/)"
	check_origin_saw "audit: $UNREG_V4 served it" "$mark" "$UNREG_V4" 80
	check_access_log "audit: logged as a denial (block_all, BlackHoleCluster, Host) marked audit_denied" "$access" \
		'.authority == "unregistered.test" and .route_name == "block_all" and .upstream_cluster == "BlackHoleCluster" and .istio_policy_status == "audit_denied" and .response_code == 200'
	check_metric_reaches "audit: sluice_audit_denials_total{protocol=\"http\",host=\"unregistered.test\"} counts it" \
		sidecar 1 sluice_audit_denials_total protocol=http host=unregistered.test
	check_eq "audit: the sidecar denied nothing (sluice_denied_total{protocol=\"http\"} 0)" 0 \
		"$(sidecar_metric sluice_denied_total protocol=http)"
	check_eq "audit: https://unregistered.test (TLS, unregistered SNI) is let through (200)" 200 \
		"$(app_status https://unregistered.test/)"
	check_access_log "audit: the TLS connection is logged with its SNI, marked audit_denied" "$access" \
		'.requested_server_name == "unregistered.test" and .istio_policy_status == "audit_denied"'
	check "audit: opaque TCP to the unregistered $UNREG_V4:7000 is let through (echo)" client echo "$UNREG_V4" 7000
	check_eq "audit: registered http://aliyun.com is not marked" 301 "$(app_status -I http://aliyun.com/)"
	check_access_log "audit: aliyun.com's line has no audit marker" "$access" \
		'.authority == "aliyun.com" and .istio_policy_status == null and .route_name == "aliyun.com:80"'
}

audit_off_is_a_hot_reload() {
	sed -i 's/audit: true/audit: false/' "$AUDIT_DIR/audit.yaml"
	if wait_until 3 bash -c "[[ \$(ip netns exec $NS_APP curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://unregistered.test/) == 502 ]]"; then
		pass "audit off: after the config edit, http://unregistered.test gets 502 within 3 s (no restart)"
	else
		fail "audit off: after the config edit, http://unregistered.test gets 502 within 3 s" "$(tail -n 5 "$SIDECAR_LOG")"
	fi
	check "audit off: the sidecar kept running" sidecar_alive
}

# --audit (SLUICE_AUDIT=1, set from a pod's annotation) keeps audit on whatever the file says.
audit_flag_overrides_the_config() {
	section "sidecar with configs/registry-only-empty.yaml --audit"
	if ! start_sidecar "$E2E_CONFIGS/registry-only-empty.yaml" --audit 2>"$E2E_TMP/start.err"; then
		fail "--audit: the sidecar started" "$(cat "$E2E_TMP/start.err")"
		return
	fi
	check_eq "--audit: http://unregistered.test is let through on a REGISTRY_ONLY config (200)" 200 \
		"$(app_status http://unregistered.test/)"
	stop_sidecar
}

audit_cases() {
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	wants audit_lets_would_be_denials_through audit_off_is_a_hot_reload || return 0
	# A scratch copy: audit_off_is_a_hot_reload edits it while the sidecar runs.
	AUDIT_DIR=$(mktemp -d /tmp/sluice-e2e-audit.XXXXXX)
	cp "$E2E_CONFIGS/audit.yaml" "$AUDIT_DIR/" && cp -r "$E2E_CONFIGS/registry" "$AUDIT_DIR/" &&
		chown -R "$PROXY_UID:$PROXY_UID" "$AUDIT_DIR"
	scenario "$AUDIT_DIR/audit.yaml" \
		audit_lets_would_be_denials_through \
		audit_off_is_a_hot_reload
	rm -rf "$AUDIT_DIR"
	audit_flag_overrides_the_config
}

audit_cases

# shellcheck shell=bash
# `sluice learn` end to end: the migration to REGISTRY_ONLY without an outage
# (audit mode, learn, replay, switch).
#
# Sourced by scripts/e2e after IntegrationTests/lib.sh, on a fresh test network.
# 1. Under REGISTRY_ONLY in audit mode, with nothing registered, the app makes
#    mixed traffic: HTTP by Host (v4 and v6, and one request whose Host is an
#    IP), TLS by SNI, opaque TCP (v4 and v6); all of it passes, logged as
#    would-be denials.
# 2. `sluice learn` reads the sidecar's access log (split like a rotated log,
#    the older half gzipped) and writes ServiceEntries; `sluice check` loads them.
# 3. `sluice replay` says the learned registry would deny none of it (and the
#    empty one, enforced, would deny it all); `explain --log` agrees on a line.
# 4. Under REGISTRY_ONLY with only the learned registry the same traffic passes,
#    and traffic the log never saw is denied (HTTP 502, TLS/TCP closed).

# A directory of its own, readable by the sidecar's uid ($E2E_TMP is root's
# alone); copied into $E2E_TMP/learn for the kept logs and removed at the end.
LEARN_DIR=

# learn_traffic PHASE: the app's traffic; each step is a check, so both phases
# prove the same list.
learn_traffic() {
	local phase=$1
	check_eq "$phase: curl -sI http://aliyun.com answers 301" 301 "$(app_status -I http://aliyun.com/)"
	check_eq "$phase: http://static-backend.test is served by $STATIC_V4" \
		"origin=$STATIC_V4 host=static-backend.test" "$(app_curl http://static-backend.test/)"
	check_eq "$phase: curl -6 http://v6.aliyun.test answers 301" 301 "$(app_status -6 -I http://v6.aliyun.test/)"
	check_eq "$phase: http://$UNREG_V4/ (a Host that is an IP) is served" \
		"origin=$UNREG_V4 host=$UNREG_V4" "$(app_curl "http://$UNREG_V4/")"
	check_eq "$phase: https://www.aliyun.com answers 200 (TLS by SNI)" 200 "$(app_status https://www.aliyun.com/)"
	check_eq "$phase: https://spoof-target.test answers 200 (TLS by SNI)" 200 "$(app_status https://spoof-target.test/)"
	check "$phase: 1 MiB TCP echo to $TCP_V4:7000 round-trips" client echo "$TCP_V4" 7000 --keep-open
	check "$phase: 1 MiB TCP echo to [$EXT_V6]:7000 round-trips" client echo "$EXT_V6" 7000 --keep-open
}

learn_from_audit() {
	local mark lines
	LEARN_DIR=$(mktemp -d /tmp/sluice-e2e-learn.XXXXXX) || return 1
	mkdir -p "$LEARN_DIR/registry"
	section "REGISTRY_ONLY in audit mode: the traffic to learn from"
	if ! start_sidecar "$E2E_CONFIGS/audit-empty.yaml" 2>"$E2E_TMP/start.err"; then
		fail "sidecar started with configs/audit-empty.yaml" "$(cat "$E2E_TMP/start.err")"
		return 1
	fi
	mark=$(access_mark)
	learn_traffic audit
	# Every record written (the last may trail the answer by a moment).
	wait_until 3 _access_has "$mark" '.downstream_local_address == "['"$EXT_V6"']:7000"'
	stop_sidecar
	tail -n +"$((mark + 1))" "$ACCESS_LOG" >"$LEARN_DIR/access.log"
	lines=$(wc -l <"$LEARN_DIR/access.log")
	check "audit: the access log holds the traffic ($lines lines)" test "$lines" -ge 8
	check_eq "audit: every line is a would-be denial (istio_policy_status audit_denied)" "$lines" \
		"$(jq -c 'select(.istio_policy_status == "audit_denied")' "$LEARN_DIR/access.log" | wc -l)"

	# As a rotated log: the older half gzipped, plus a line cut short and the
	# proxy's own text, which learn must count and skip.
	head -n $((lines / 2)) "$LEARN_DIR/access.log" | gzip >"$LEARN_DIR/access.log.1.gz"
	{
		tail -n +$((lines / 2 + 1)) "$LEARN_DIR/access.log"
		echo "sluice: some text on stdout"
		printf '{"start_time":"2026-12-01T00:00:00.000Z","method":"GET","authority":"cut.test'
	} >"$LEARN_DIR/access.log.0"
}

learn_writes_a_registry() {
	section "sluice learn"
	local out=$LEARN_DIR/registry/learned.yaml err=$LEARN_DIR/learn.err
	if "$SLUICE_BIN" learn "$LEARN_DIR/access.log.1.gz" "$LEARN_DIR/access.log.0" >"$out" 2>"$err"; then
		pass "sluice learn access.log.1.gz access.log.0 exits 0"
	else
		fail "sluice learn access.log.1.gz access.log.0 exits 0" "$(cat "$err")"
		return 1
	fi
	indent "$(cat "$err")"
	check "learn: the summary counts the cut line and the text line as skipped" \
		grep -q '2 skipped (1 not JSON, 1 invalid or truncated JSON)' "$err"
	check "learn: aliyun.com HTTP on 80 and www.aliyun.com TLS on 443, resolution DNS" \
		python3 - "$out" <<'EOF'
import sys
text = open(sys.argv[1]).read()
docs = [d for d in text.split("\n---\n") if "kind: ServiceEntry" in d]
def doc(host):
    return next(d for d in docs if f'  - "{host}"\n' in d)
assert "protocol: HTTP" in doc("aliyun.com") and "number: 80" in doc("aliyun.com")
assert "protocol: TLS" in doc("www.aliyun.com") and "number: 443" in doc("www.aliyun.com")
assert "resolution: DNS" in doc("aliyun.com")
EOF
	check "learn: $TCP_V4 and $EXT_V6 as addresses with TCP 7000, resolution NONE" \
		python3 - "$out" "$TCP_V4" "$EXT_V6" <<'EOF'
import sys
text = open(sys.argv[1]).read()
docs = [d for d in text.split("\n---\n") if "kind: ServiceEntry" in d]
for address, width in ((sys.argv[2], 32), (sys.argv[3], 128)):
    d = next(d for d in docs if f'  - "{address}/{width}"\n' in d)
    assert "protocol: TCP" in d and "number: 7000" in d and "resolution: NONE" in d, d
EOF
	check_eq "learn: the same logs give the same YAML (stable for review)" "" \
		"$("$SLUICE_BIN" learn "$LEARN_DIR/access.log.1.gz" "$LEARN_DIR/access.log.0" 2>/dev/null | diff - "$out")"
	cat >"$LEARN_DIR/sluice.yaml" <<EOF
outboundTrafficPolicy:
  mode: REGISTRY_ONLY
registry:
  - registry/
accessLog: {path: /dev/stdout, format: json}
EOF
	chown -R "$PROXY_UID:$PROXY_UID" "$LEARN_DIR" && chmod 755 "$LEARN_DIR"
	check "learn: sluice check loads the learned registry" "$SLUICE_BIN" check --config "$LEARN_DIR/sluice.yaml"
	check_eq "learn: merging into the learned registry adds nothing" "" \
		"$("$SLUICE_BIN" learn --registry "$LEARN_DIR/registry" "$LEARN_DIR/access.log" 2>/dev/null | grep 'kind: ServiceEntry')"
}

# sluice replay / explain --log: the audit log against a candidate config, before switching.
replay_before_switching() {
	local out
	section "sluice replay"
	out=$("$SLUICE_BIN" replay --config "$LEARN_DIR/sluice.yaml" "$LEARN_DIR/access.log" 2>&1)
	if grep -qx "newly denied: 0 (let through in the log, denied by this configuration)" <<<"$out"; then
		pass "replay: the learned registry would deny none of the audited traffic"
	else
		fail "replay: the learned registry would deny none of the audited traffic" "$out"
	fi
	out=$("$SLUICE_BIN" replay --config "$E2E_CONFIGS/audit-empty.yaml" --enforce "$LEARN_DIR/access.log" 2>&1)
	if grep -q "^  [0-9]*	http aliyun.com:80$" <<<"$out" && grep -q "^  [0-9]*	tls www.aliyun.com:443$" <<<"$out"; then
		pass "replay --enforce: switching audit off on the empty registry would newly deny aliyun.com:80 and www.aliyun.com:443"
	else
		fail "replay --enforce: switching audit off on the empty registry would newly deny aliyun.com:80 and www.aliyun.com:443" "$out"
	fi
	out=$("$SLUICE_BIN" explain --config "$LEARN_DIR/sluice.yaml" --log "$(grep -m1 '"authority":"aliyun.com"' "$LEARN_DIR/access.log")" 2>&1)
	if grep -q "^decision: *allow" <<<"$out" && grep -q "^logged: *let through" <<<"$out"; then
		pass "explain --log: an audited aliyun.com line is allowed by the learned registry"
	else
		fail "explain --log: an audited aliyun.com line is allowed by the learned registry" "$out"
	fi
}

learned_registry_enforced() {
	local mark
	section "REGISTRY_ONLY with only the learned registry"
	if ! start_sidecar "$LEARN_DIR/sluice.yaml" 2>"$E2E_TMP/start.err"; then
		fail "sidecar started with the learned registry" "$(cat "$E2E_TMP/start.err")"
		return 1
	fi
	learn_traffic registry_only
	mark=$(origin_mark)
	check_eq "registry_only: http://unregistered.test (never seen) answers 502" 502 "$(app_status http://unregistered.test/)"
	check_origin_never "registry_only: $UNREG_V4 saw no connection for unregistered.test" "$mark" "$UNREG_V4"
	check "registry_only: TLS to unregistered.test (never seen) is closed without a byte" \
		client expect-closed "$UNREG_V4" 443 --tls-sni unregistered.test
	check "registry_only: TCP to $STATIC_V4:7000 (never seen) is closed without a byte" \
		client expect-closed "$STATIC_V4" 7000
	check_eq "registry_only: http://aliyun.com:8080 (a port never seen) answers 502" 502 \
		"$(app_status http://aliyun.com:8080/)"
	stop_sidecar
}

learn_cases() {
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	learn_from_audit && learn_writes_a_registry && replay_before_switching && learned_registry_enforced
	if [[ -n $LEARN_DIR && -d $LEARN_DIR ]]; then
		cp -r "$LEARN_DIR" "$E2E_TMP/learn"
		rm -rf "$LEARN_DIR"
	fi
	LEARN_DIR=
}

learn_cases

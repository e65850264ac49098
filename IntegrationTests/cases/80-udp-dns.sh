# shellcheck shell=bash
# UDP and DNS egress control (issue 22), in the test namespaces.
#
# Sourced by scripts/e2e after IntegrationTests/lib.sh, on a fresh test network. sl-ext gets
# four more addresses: a DNS server (stdlib python, IntegrationTests/udp_dns.py) on
# $UDP_DNS_V4, which the pod's resolv.conf names while this file runs, and UDP echo origins
# on $UDP_GAME_V4 (game.test, registered for UDP 9000), $UDP_OTHER_V4 (other.test, not
# registered) and $UDP_BRIEF_V4 (brief.test, registered for UDP 9000, answered with TTL 1 s). The pod gets `sluice-init --capture-udp --capture-dns`; the sidecar runs as
# uid 1337 with CAP_NET_ADMIN (ambient), which binding an NFQUEUE needs.
#   1. a query for an unregistered name is answered NXDOMAIN by the sidecar, and logged; also
#      from a source port the proxy's own upstream query just used (conntrack zones)
#   2. a registered name resolves through the pod's resolver (UDP and TCP; a TCP query for a
#      cached name is answered on the cache-hit path, as on UDP)
#   3. UDP to the learned address of a registered name, on its UDP port, passes and is logged
#   4. UDP to another address is dropped under REGISTRY_ONLY, passes under ALLOW_ANY
#   4b. an expiring name: brief.test's address is learned for the table's floor (its TTL is
#      1 s; dns.learnedTTLFloor set to $UDP_LEARNED_FLOOR s here, 30 s by default), then
#      forgotten: UDP to it is dropped, /config_dump no longer lists it, and a new query
#      learns it again
#   4c. a bounded UDP flood (200k datagrams or 10 s) to registered and unregistered
#      destinations: the sidecar lives, its RSS grows by less than $UDP_FLOOD_RSS_KIB KiB, and a DNS
#      query and an allowed UDP echo still work during and after it
#   5. opaque TCP to a resolved address is logged with the name; /config_dump shows it; the
#      TCP entry without addresses is matched only there: another address on its port is refused
#   6. dns.autoAllocate: tcp-echo.test resolves to Istio's 240.240.x.y (and 2001:2::…), and a
#      TCP connection to it reaches the origin, logged with the host and its real address;
#      SLUICE_DNS_AUTO_ALLOCATE=true (injection's ISTIO_META_DNS_AUTO_ALLOCATE) does the same
#      with a config that does not ask
#   6b. the forwarder: a cache hit is answered while a forwarded query waits for a slow
#      resolver (slow.test, held $UDP_SLOW_SECONDS s); a forged answer with another id,
#      sent before the real one (spoof.test), is dropped and counted; the sidecar stops
#      promptly (SIGTERM, no SIGKILL) with a query in flight
#   7. sidecar stopped: fail-closed drops, --udp-fail-open passes
#   8. --cleanup leaves no UDP/DNS rule behind

UDP_DNS_V4=192.0.2.35
UDP_GAME_V4=192.0.2.36
UDP_OTHER_V4=192.0.2.37
UDP_BRIEF_V4=192.0.2.38
# The learned table's TTL floor in this file's REGISTRY_ONLY config (dns.learnedTTLFloor;
# 30 s by default), so that the expiring-name case waits seconds, not half a minute.
UDP_LEARNED_FLOOR=5
# How long the test resolver holds its answers for slow.test (TTL 0: never cached, so every
# query for it is forwarded): under the forwarder's 2 s timeout, long enough that a cache hit
# sent after the slow query is answered first.
UDP_SLOW_SECONDS=1.5
# The flood case's bound on the sidecar's resident memory growth (16 MiB).
UDP_FLOOD_RSS_KIB=16384
UDP_PY=$E2E_DIR/udp_dns.py
UDP_DIR=
UDP_SLOW_PID=
UDP_SLOW_HELD=0
UDP_RESOLV_SAVED=

udp_setup() {
	local addr pid
	for addr in "$UDP_DNS_V4" "$UDP_GAME_V4" "$UDP_OTHER_V4" "$UDP_BRIEF_V4"; do
		ip -n "$NS_EXT" addr add "$addr/24" dev eth0 || return 1
	done
	UDP_DIR=$(mktemp -d /tmp/sluice-e2e-udp.XXXXXX) || return 1
	mkdir -p "$UDP_DIR/registry"
	cat >"$UDP_DIR/registry/game.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: game, namespace: default}
spec:
  hosts: [game.test]
  ports: [{number: 9000, name: game, protocol: UDP}]
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: brief, namespace: default}
spec:
  hosts: [brief.test]
  ports: [{number: 9000, name: brief, protocol: UDP}]
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: tcp-echo, namespace: default}
spec:
  hosts: [tcp-echo.test]
  ports: [{number: 7000, name: tcp, protocol: TCP}]
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: forwarder-cases, namespace: default}
spec:
  hosts: [slow.test, spoof.test]
  ports: [{number: 9000, name: udp, protocol: UDP}]
  location: MESH_EXTERNAL
  resolution: DNS
YAML
	printf 'outboundTrafficPolicy: {mode: REGISTRY_ONLY}\nregistry: [registry]\ndns: {proxy: true, learnedTTLFloor: %ss}\nudp: {capture: true}\n' \
		"$UDP_LEARNED_FLOOR" >"$UDP_DIR/registry_only.yaml"
	printf 'outboundTrafficPolicy: {mode: ALLOW_ANY}\nregistry: [registry]\ndns: {proxy: true}\nudp: {capture: true}\n' >"$UDP_DIR/allow_any.yaml"
	printf 'outboundTrafficPolicy: {mode: REGISTRY_ONLY}\nregistry: [registry]\ndns: {proxy: true, autoAllocate: true}\nudp: {capture: true}\n' \
		>"$UDP_DIR/alloc.yaml"
	# The allocated ranges need a route for connect() to get as far as the capture rules (a
	# pod has a default route; this network has none). Nothing is sent there: the nat rule
	# redirects it to the sidecar.
	ip -n "$NS_APP" route add 240.240.0.0/16 dev eth0 || return 1
	ip -n "$NS_APP" -6 route add 2001:2::/48 dev eth0 || return 1
	chown -R "$PROXY_UID:$PROXY_UID" "$UDP_DIR"
	# The pod's resolver while this file runs (restored at the end).
	UDP_RESOLV_SAVED=$(cat "/etc/netns/$NS_APP/resolv.conf")
	echo "nameserver $UDP_DNS_V4" >"/etc/netns/$NS_APP/resolv.conf"
	# ip netns exec directly (not the ext function, whose subshell would be the recorded pid and
	# outlive nothing), fd 9 closed: the servers must not hold the suite's lock (see start_origins).
	ip netns exec "$NS_EXT" python3 "$UDP_PY" dns-server "$UDP_DNS_V4" "game.test=$UDP_GAME_V4" "other.test=$UDP_OTHER_V4" \
		"tcp-echo.test=$TCP_V4" "brief.test=$UDP_BRIEF_V4/1" "slow.test=$UDP_OTHER_V4/0" "spoof.test=$UDP_GAME_V4" \
		--slow "slow.test=$UDP_SLOW_SECONDS" --spoof spoof.test --lifetime 300 >"$E2E_TMP/udp-dns.out" 2>&1 9>&- &
	pid=$!
	record_pid "$pid"
	ip netns exec "$NS_EXT" python3 "$UDP_PY" udp-echo "$UDP_GAME_V4:9000" "$UDP_OTHER_V4:9000" "$UDP_BRIEF_V4:9000" "[$EXT_V6]:9000" \
		--lifetime 300 >"$E2E_TMP/udp-echo.out" 2>&1 9>&- &
	record_pid "$!"
	wait_until 5 grep -q ready "$E2E_TMP/udp-dns.out" && wait_until 5 grep -q ready "$E2E_TMP/udp-echo.out"
}

udp_teardown() {
	stop_sidecar
	ip -n "$NS_APP" route del 240.240.0.0/16 dev eth0 2>/dev/null
	ip -n "$NS_APP" -6 route del 2001:2::/48 dev eth0 2>/dev/null
	[[ -n $UDP_RESOLV_SAVED ]] && printf '%s\n' "$UDP_RESOLV_SAVED" >"/etc/netns/$NS_APP/resolv.conf"
	[[ -n $UDP_DIR ]] && rm -rf "$UDP_DIR"
}

udp_init() { app "$SLUICE_INIT" "$@" >"$E2E_TMP/udp-init.out" 2>&1; }

# The sidecar with CONFIG, as uid 1337 with CAP_NET_ADMIN; ready once it listens on 15001
# and 15053.
udp_start_sidecar() { start_udp_sidecar "$1" 15053; }

udp_query() { app python3 "$UDP_PY" query "$UDP_DNS_V4" "$@"; }
udp_send() { app python3 "$UDP_PY" send "$@"; }

unregistered_name_is_nxdomain() {
	local mark
	mark=$(access_mark)
	check_eq "dns: other.test (not registered) is answered NXDOMAIN" NXDOMAIN "$(udp_query other.test)"
	check_eq "dns: over TCP too" NXDOMAIN "$(udp_query other.test --tcp)"
	check "dns: the refusal is logged (protocol DNS, route dns_NXDOMAIN, flag NR)" last_json_record "$ACCESS_LOG" "$mark" \
		'.protocol == "DNS" and .authority == "other.test" and .route_name == "dns_NXDOMAIN" and .response_flags == "NR"'
}

# The flake seen once in 7 runs, made certain: the DNS proxy's own query (uid 1337, not
# redirected) leaves a conntrack entry pod:PORT -> resolver:53. An app query from that same
# port must still be redirected to the proxy; without sluice-init's conntrack zones it matched
# the proxy's entry, skipped the nat table and went straight to the resolver.
app_query_from_a_port_the_proxy_used_reaches_the_proxy() {
	local port=35353
	check_eq "dns: a query as uid $PROXY_UID from port $port reaches the resolver itself" "NOERROR $UDP_OTHER_V4" \
		"$(udp_query other.test --source-port "$port" --uid "$PROXY_UID")"
	check_eq "dns: the app's query from the same port still reaches the proxy (NXDOMAIN)" NXDOMAIN \
		"$(udp_query other.test --source-port "$port")"
}

registered_name_resolves() {
	check_eq "dns: game.test resolves through the pod's resolver" "NOERROR $UDP_GAME_V4" "$(udp_query game.test)"
	check_eq "dns: game.test over TCP" "NOERROR $UDP_GAME_V4" "$(udp_query game.test --tcp)"
	check_eq "dns: game.test again, from the cache (its bytes patched)" "NOERROR $UDP_GAME_V4" "$(udp_query game.test)"
	check "dns: sluice_dns_queries_total counts cache answers" bash -c \
		"ip netns exec $NS_APP curl -s --max-time 2 http://127.0.0.1:15090/stats/prometheus | grep -q 'sluice_dns_queries_total{answer=\"cache\"} [1-9]'"
	local before after
	before=$(dns_cache_answers)
	check_eq "dns: game.test over TCP again, from the cache (patched bytes behind their length)" "NOERROR $UDP_GAME_V4" \
		"$(udp_query game.test --tcp)"
	check_eq "dns: and AAAA over TCP, not cached: no IPv6 address (not mixed up with the cached A)" "NOERROR" \
		"$(udp_query game.test --tcp --type AAAA)"
	after=$(dns_cache_answers)
	check "dns: the TCP query was a cache answer ($before -> $after)" test "$((after - before))" -ge 1
}

# sluice_dns_queries_total{answer="cache"} on the pod's sidecar (0 when absent).
dns_cache_answers() {
	ip netns exec "$NS_APP" curl -s --max-time 2 http://127.0.0.1:15090/stats/prometheus |
		awk '/^sluice_dns_queries_total\{answer="cache"\}/ { n = $2 } END { print n + 0 }'
}

# udp_slow_query_start: slow.test's query as the app in the background (pid in UDP_SLOW_PID,
# output in $E2E_TMP/udp-slow.out); then `udp_slow_query_held` says when the resolver holds it.
udp_slow_query_start() {
	UDP_SLOW_HELD=$(grep -c '^held slow.test' "$E2E_TMP/udp-dns.out")
	: >"$E2E_TMP/udp-slow.out"
	app python3 "$UDP_PY" query "$UDP_DNS_V4" slow.test --timeout 5 >"$E2E_TMP/udp-slow.out" 2>&1 &
	UDP_SLOW_PID=$!
	record_pid "$UDP_SLOW_PID"
}
udp_slow_query_held() { (($(grep -c '^held slow.test' "$E2E_TMP/udp-dns.out") > UDP_SLOW_HELD)); }
udp_slow_query_reap() {
	wait "$UDP_SLOW_PID" 2>/dev/null
	forget_pid "$UDP_SLOW_PID"
}
pid_gone() { ! pid_running "$1"; }

# The hit thread answers a cached name while the forwarder waits for a slow resolver: an
# ordering (the hit's answer exists before the slow one does), not a timing.
hits_are_answered_while_the_forwarder_waits() {
	check_eq "dns: game.test resolves (cached from here on)" "NOERROR $UDP_GAME_V4" "$(udp_query game.test)"
	udp_slow_query_start
	check "dns: slow.test's query reaches the resolver, which holds it $UDP_SLOW_SECONDS s" wait_until 5 udp_slow_query_held
	check_eq "dns: meanwhile game.test is answered from the cache" "NOERROR $UDP_GAME_V4" "$(udp_query game.test)"
	check "dns: ... before slow.test's answer came back" test ! -s "$E2E_TMP/udp-slow.out"
	udp_slow_query_reap
	check_eq "dns: then slow.test's answer arrives, forwarded" "NOERROR $UDP_OTHER_V4" "$(cat "$E2E_TMP/udp-slow.out")"
}

# sluice_dns_upstream_answers_dropped_total on the pod's sidecar (0 when absent).
dns_dropped_answers() {
	ip netns exec "$NS_APP" curl -s --max-time 2 http://127.0.0.1:15090/stats/prometheus |
		awk '/^sluice_dns_upstream_answers_dropped_total/ { n = $2 } END { print n + 0 }'
}

# The resolver sends a forged answer (another id, address 203.0.113.66) before the real one.
a_spoofed_answer_is_dropped() {
	local before after
	before=$(dns_dropped_answers)
	check_eq "dns: spoof.test gets the real answer, not the forged one sent first" "NOERROR $UDP_GAME_V4" "$(udp_query spoof.test)"
	after=$(dns_dropped_answers)
	check "dns: the forged answer is counted in sluice_dns_upstream_answers_dropped_total ($before -> $after)" \
		test "$((after - before))" -ge 1
}

# SIGTERM with a forwarded query in flight: the sidecar exits by itself (its hit threads
# woken and joined), within kill_pid's 5 s, without the KILL that follows them.
sidecar_stops_with_queries_in_flight() {
	local pid=$SIDECAR_PID
	udp_slow_query_start
	check "dns: slow.test's query is in flight" wait_until 5 udp_slow_query_held
	kill -TERM "$pid"
	check "stop: the sidecar exits on SIGTERM with the query in flight" wait_until 5 pid_gone "$pid"
	stop_sidecar
	udp_slow_query_reap
	udp_start_sidecar "$UDP_DIR/registry_only.yaml" || fail "sidecar restarted with registry_only.yaml" "$(tail -n 5 "$SIDECAR_LOG")"
}

udp_to_learned_address_passes() {
	local mark
	mark=$(access_mark)
	udp_query game.test >/dev/null
	check_eq "udp: a datagram to $UDP_GAME_V4:9000 (game.test, UDP 9000) is echoed" "echo ping" "$(udp_send "$UDP_GAME_V4" 9000)"
	check "udp: the flow is logged with protocol UDP and the name game.test" last_json_record "$ACCESS_LOG" "$mark" \
		'.protocol == "UDP" and .authority == "game.test" and .upstream_host == "'"$UDP_GAME_V4"':9000" and .upstream_cluster == "outbound|9000||game.test"'
}

udp_elsewhere_is_dropped() {
	local mark
	mark=$(access_mark)
	check_eq "udp: a datagram to $UDP_OTHER_V4:9000 (not registered) gets no answer" timeout "$(udp_send "$UDP_OTHER_V4" 9000)"
	check_eq "udp: game.test's address on another port gets no answer" timeout "$(udp_send "$UDP_GAME_V4" 9001)"
	check_eq "udp: IPv6, a datagram to [$EXT_V6]:9000 gets no answer" timeout "$(udp_send "$EXT_V6" 9000)"
	check "udp: the drop is logged (BlackHoleCluster, NR)" last_json_record "$ACCESS_LOG" "$mark" \
		'.protocol == "UDP" and .upstream_host == "'"$UDP_OTHER_V4"':9000" and .upstream_cluster == "BlackHoleCluster" and .response_flags == "NR"'
	check "udp: sluice_udp_flows_total counts drops" bash -c \
		"ip netns exec $NS_APP curl -s --max-time 2 http://127.0.0.1:15090/stats/prometheus | grep -q 'sluice_udp_flows_total{verdict=\"drop\"} [1-9]'"
}

# learned_in_config_dump true|false ADDRESS HOST: /config_dump answers, and its learned
# addresses do (true) or do not (false) include ADDRESS learned from HOST.
learned_in_config_dump() {
	ip netns exec "$NS_APP" curl -s --max-time 2 http://127.0.0.1:15000/config_dump |
		jq -e --argjson want "$1" --arg a "$2" --arg h "$3" \
			'(.learnedAddresses | any(.address == $a and .hostname == $h)) == $want' >/dev/null
}

# Issue 22 point 8, "expiring names": brief.test is answered with TTL 1 s, so its address is
# held for the learned table's floor and then forgotten; the wait is bounded by the floor
# plus a few seconds.
expiring_name_is_forgotten_and_relearned() {
	check_eq "dns: brief.test (upstream TTL 1 s) resolves" "NOERROR $UDP_BRIEF_V4" "$(udp_query brief.test)"
	check_eq "udp: a datagram to $UDP_BRIEF_V4:9000 (brief.test, just learned) is echoed" "echo ping" "$(udp_send "$UDP_BRIEF_V4" 9000)"
	check "admin: /config_dump lists $UDP_BRIEF_V4 learned from brief.test" learned_in_config_dump true "$UDP_BRIEF_V4" brief.test
	check "admin: within ${UDP_LEARNED_FLOOR} s + 5 s the entry expires: /config_dump no longer lists $UDP_BRIEF_V4" \
		wait_until $((UDP_LEARNED_FLOOR + 5)) learned_in_config_dump false "$UDP_BRIEF_V4" brief.test
	check_eq "udp: after expiry, a datagram to $UDP_BRIEF_V4:9000 gets no answer" timeout "$(udp_send "$UDP_BRIEF_V4" 9000)"
	check_eq "dns: a new query for brief.test resolves (not from the expired cache)" "NOERROR $UDP_BRIEF_V4" "$(udp_query brief.test)"
	check "admin: /config_dump lists $UDP_BRIEF_V4 again" learned_in_config_dump true "$UDP_BRIEF_V4" brief.test
	check_eq "udp: re-learned, a datagram to $UDP_BRIEF_V4:9000 is echoed again" "echo ping" "$(udp_send "$UDP_BRIEF_V4" 9000)"
}

# The sidecar's resident set in KiB (VmRSS; SIDECAR_PID is sluice itself: ip netns exec and
# setpriv exec it).
sidecar_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$SIDECAR_PID/status"; }

# Issue 22 point 8, "a UDP flood (memory bounded)": one flow each to an unregistered address,
# game.test's address on an unregistered port (both dropped: every datagram waits for a
# verdict) and game.test:9000 (allowed). Bounded by count and time; the latency of a verdict
# under load is measured by Benchmarks/scripts/udp-dns, not here.
udp_flood_keeps_memory_bounded() {
	local before after flood out
	udp_query game.test >/dev/null
	before=$(sidecar_rss_kib)
	app python3 "$UDP_PY" flood "$UDP_OTHER_V4:9000" "$UDP_GAME_V4:9001" "$UDP_GAME_V4:9000" \
		--count 200000 --seconds 10 >"$E2E_TMP/udp-flood.out" 2>&1 &
	flood=$!
	record_pid "$flood"
	check "flood: during it, game.test still resolves" wait_until 5 udp_resolves_game
	check "flood: during it, a new flow to $UDP_GAME_V4:9000 is still echoed" wait_until 5 udp_game_echoes
	wait "$flood"
	# Reaped: off the kill list (forget_pid touches E2E_PIDS only; SIDECAR_PID stays).
	forget_pid "$flood"
	out=$(cat "$E2E_TMP/udp-flood.out")
	check "flood: the sender sent datagrams ($out)" grep -qE '^sent [1-9][0-9]* ' <<<"$out"
	check "flood: the sidecar is still running" sidecar_alive
	after=$(sidecar_rss_kib)
	check "flood: the sidecar's RSS grew by less than $UDP_FLOOD_RSS_KIB KiB (${before:-?} -> ${after:-?} KiB)" \
		test -n "$before" -a -n "$after" -a "$((${after:-0} - ${before:-0}))" -lt "$UDP_FLOOD_RSS_KIB"
	check_eq "flood: after it, game.test resolves" "NOERROR $UDP_GAME_V4" "$(udp_query game.test)"
	check_eq "flood: after it, a datagram to $UDP_GAME_V4:9000 is echoed" "echo ping" "$(udp_send "$UDP_GAME_V4" 9000)"
	check_eq "flood: after it, a datagram to $UDP_OTHER_V4:9000 is still dropped" timeout "$(udp_send "$UDP_OTHER_V4" 9000)"
}

udp_resolves_game() { [[ $(udp_query game.test) == "NOERROR $UDP_GAME_V4" ]]; }
udp_game_echoes() { [[ $(udp_send "$UDP_GAME_V4" 9000) == "echo ping" ]]; }

# Issue 22 point 4: an opaque TCP connection is logged with the name the pod resolved, and
# /config_dump lists what was learned.
opaque_tcp_is_logged_with_the_resolved_name() {
	local mark
	check_eq "dns: tcp-echo.test (registered TCP 7000) resolves" "NOERROR $TCP_V4" "$(udp_query tcp-echo.test)"
	mark=$(access_mark)
	check "tcp: an echo to $TCP_V4:7000 round-trips" client echo "$TCP_V4" 7000 --keep-open
	check "tcp: the connection is logged with authority tcp-echo.test" last_json_record "$ACCESS_LOG" "$mark" \
		'.downstream_local_address == "'"$TCP_V4"':7000" and .authority == "tcp-echo.test"'
	check "admin: /config_dump lists $TCP_V4 learned from tcp-echo.test" bash -c \
		"ip netns exec $NS_APP curl -s --max-time 2 http://127.0.0.1:15000/config_dump | jq -e '.learnedAddresses | any(.address == \"$TCP_V4\" and .hostname == \"tcp-echo.test\")' >/dev/null"
}

# Issue 22 point 4: with the DNS proxy on, tcp-echo.test's TCP 7000 (no addresses) is matched
# only at addresses the pod resolved from it; $UNREG_V4 also listens on 7000 and is refused.
opaque_tcp_elsewhere_on_its_port_is_refused() {
	local mark
	mark=$(access_mark)
	check_not "tcp: $UNREG_V4:7000 (tcp-echo.test's port, an address it did not resolve to) gets no echo" \
		client echo "$UNREG_V4" 7000 --size 64 --keep-open
	check "tcp: the refusal is logged (BlackHoleCluster)" last_json_record "$ACCESS_LOG" "$mark" \
		'.downstream_local_address == "'"$UNREG_V4"':7000" and .upstream_cluster == "BlackHoleCluster"'
	check_explain "explain: a learned address matches the entry by the resolved name" \
		"the pod resolved $TCP_V4 from tcp-echo.test through the DNS proxy" "$UDP_DIR/registry_only.yaml" \
		--resolved "$TCP_V4=tcp-echo.test" "tcp://$TCP_V4:7000"
	check_explain "explain: another address on the port is unregistered" \
		"only at addresses the pod resolved from tcp-echo.test" "$UDP_DIR/registry_only.yaml" "tcp://$UNREG_V4:7000"
}

# Issue 22 point 5: Istio's DNS auto-allocation.
auto_allocated_address_reaches_the_host() {
	local answer vip vip6 mark
	udp_start_sidecar "$UDP_DIR/alloc.yaml" || { fail "sidecar with alloc.yaml" "$(tail -n 5 "$SIDECAR_LOG")"; return; }
	answer=$(udp_query tcp-echo.test)
	vip=${answer#NOERROR }
	check "dns: tcp-echo.test resolves to an address in 240.240.0.0/16 ($answer)" grep -qE '^NOERROR 240\.240\.[0-9]+\.[0-9]+$' <<<"$answer"
	vip6=$(udp_query tcp-echo.test --type AAAA)
	check "dns: and its AAAA to one in 2001:2::/48 ($vip6)" grep -qE '^NOERROR 2001:2::f0f0:[0-9a-f]+$' <<<"$vip6"
	mark=$(access_mark)
	check "tcp: an echo to $vip:7000 (allocated) reaches tcp-echo.test" client echo "$vip" 7000 --size 64 --keep-open
	check "tcp: logged with authority tcp-echo.test and upstream_host its real address" last_json_record "$ACCESS_LOG" "$mark" \
		'.downstream_local_address == "'"$vip"':7000" and .authority == "tcp-echo.test" and .upstream_host == "'"$TCP_V4"':7000" and .upstream_cluster == "outbound|7000||tcp-echo.test"'
	check "tcp: IPv6, an echo to [${vip6#NOERROR }]:7000 reaches it too" client echo "${vip6#NOERROR }" 7000 --size 64 --keep-open
	check "admin: /config_dump lists the allocation" bash -c \
		"ip netns exec $NS_APP curl -s --max-time 2 http://127.0.0.1:15000/config_dump | jq -e '.dnsAllocations | any(.host == \"tcp-echo.test\" and .ipv4 == \"$vip\")' >/dev/null"
	check_explain "explain: the allocated address maps back to the host" \
		"the address the DNS proxy allocated to tcp-echo.test" "$UDP_DIR/alloc.yaml" "tcp://$vip:7000"
}

# What `sluice inject` sets for a pod whose proxy.istio.io/config has proxyMetadata
# ISTIO_META_DNS_AUTO_ALLOCATE "true": the sidecar allocates whatever sluice.yaml says.
injected_auto_allocate_env_allocates() {
	local answer
	SLUICE_DNS_AUTO_ALLOCATE=true udp_start_sidecar "$UDP_DIR/registry_only.yaml" ||
		{ fail "sidecar with SLUICE_DNS_AUTO_ALLOCATE=true" "$(tail -n 5 "$SIDECAR_LOG")"; return; }
	answer=$(udp_query tcp-echo.test)
	check "dns: SLUICE_DNS_AUTO_ALLOCATE=true (config without autoAllocate): tcp-echo.test resolves into 240.240.0.0/16 ($answer)" \
		grep -qE '^NOERROR 240\.240\.[0-9]+\.[0-9]+$' <<<"$answer"
	check "tcp: an echo to ${answer#NOERROR }:7000 reaches tcp-echo.test" client echo "${answer#NOERROR }" 7000 --size 64 --keep-open
	udp_start_sidecar "$UDP_DIR/registry_only.yaml" || { fail "sidecar with registry_only.yaml" "$(tail -n 5 "$SIDECAR_LOG")"; return; }
	check_eq "dns: without it, the same config answers tcp-echo.test with its real address" "NOERROR $TCP_V4" "$(udp_query tcp-echo.test)"
}

allow_any_lets_udp_through() {
	udp_start_sidecar "$UDP_DIR/allow_any.yaml" || { fail "sidecar with allow_any.yaml" "$(tail -n 5 "$SIDECAR_LOG")"; return; }
	check_eq "ALLOW_ANY: a datagram to $UDP_OTHER_V4:9000 is echoed" "echo ping" "$(udp_send "$UDP_OTHER_V4" 9000)"
	check_eq "ALLOW_ANY: IPv6, a datagram to [$EXT_V6]:9000 is echoed" "echo ping" "$(udp_send "$EXT_V6" 9000)"
	check_eq "ALLOW_ANY: other.test resolves" "NOERROR $UDP_OTHER_V4" "$(udp_query other.test)"
}

sidecar_stopped_fails_closed_or_open() {
	stop_sidecar
	check_eq "fail-closed: with the sidecar stopped, a new UDP flow gets no answer" timeout "$(udp_send "$UDP_GAME_V4" 9000)"
	udp_init --capture-udp --capture-dns --udp-fail-open
	check_eq "fail-open (--udp-fail-open): with the sidecar stopped, UDP passes" "echo ping" "$(udp_send "$UDP_OTHER_V4" 9000)"
}

cleanup_removes_the_rules() {
	udp_init --cleanup
	check "cleanup: no SLUICE_UDP or SLUICE_DNS rule is left" bash -c \
		"! { ip netns exec $NS_APP iptables-save; ip netns exec $NS_APP ip6tables-save; } | grep -q 'SLUICE_UDP\|SLUICE_DNS'"
}

udp_dns_cases() {
	section "UDP and DNS: sluice-init --capture-udp --capture-dns, sidecar with dns.proxy and udp.capture"
	if ! start_origins; then
		fail "origins started in $NS_EXT" "see $E2E_TMP/origin.out"
		return
	fi
	if ! udp_setup; then
		fail "udp/dns: test servers in $NS_EXT" "$(cat "$E2E_TMP/udp-dns.out" "$E2E_TMP/udp-echo.out" 2>/dev/null)"
		udp_teardown
		return
	fi
	if ! udp_init --capture-udp --capture-dns; then
		fail "udp/dns: sluice-init --capture-udp --capture-dns" "$(cat "$E2E_TMP/udp-init.out")"
		udp_teardown
		return
	fi
	if ! udp_start_sidecar "$UDP_DIR/registry_only.yaml"; then
		fail "udp/dns: sidecar with dns.proxy and udp.capture" "$(tail -n 10 "$SIDECAR_LOG")"
		udp_teardown
		return
	fi
	run_case unregistered_name_is_nxdomain
	run_case app_query_from_a_port_the_proxy_used_reaches_the_proxy
	run_case registered_name_resolves
	run_case hits_are_answered_while_the_forwarder_waits
	run_case a_spoofed_answer_is_dropped
	run_case sidecar_stops_with_queries_in_flight
	run_case udp_to_learned_address_passes
	run_case udp_elsewhere_is_dropped
	run_case expiring_name_is_forgotten_and_relearned
	run_case udp_flood_keeps_memory_bounded
	run_case opaque_tcp_is_logged_with_the_resolved_name
	run_case opaque_tcp_elsewhere_on_its_port_is_refused
	run_case auto_allocated_address_reaches_the_host
	run_case injected_auto_allocate_env_allocates
	run_case allow_any_lets_udp_through
	run_case sidecar_stopped_fails_closed_or_open
	run_case cleanup_removes_the_rules
	udp_teardown
}

udp_dns_cases

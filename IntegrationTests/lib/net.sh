# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# The test network: namespaces sl-net (the bridge), sl-app (the pod), sl-gw (the egress
# gateway), sl-ext (the origins), the documentation addresses they hold, and the names every
# namespace resolves through its own hosts file. No default route anywhere: nothing the
# suite sends can leave the machine.

NS_NET=sl-net # holds only the bridge, so the root namespace gets nothing
NS_APP=sl-app # the pod: app (root) + sidecar (uid 1337) + capture rules
NS_GW=sl-gw   # egress gateway (later tests)
NS_EXT=sl-ext # origins standing in for external services
E2E_NAMESPACES=("$NS_APP" "$NS_GW" "$NS_EXT" "$NS_NET")

APP_V4=192.0.2.10
APP_V6=2001:db8::10
GW_V4=192.0.2.20
GW_V6=2001:db8::20
ALIYUN_V4=192.0.2.30 # aliyun.com
UNREG_V4=192.0.2.31  # unregistered.test
SPOOF_V4=192.0.2.32  # spoof-target.test
TCP_V4=192.0.2.33    # tcp-echo.test
STATIC_V4=192.0.2.34 # static-backend.test (STATIC endpoint of static.test)
EXT_V4S=("$ALIYUN_V4" "$UNREG_V4" "$SPOOF_V4" "$TCP_V4" "$STATIC_V4")
EXT_V6=2001:db8::30  # v6.aliyun.test

PROXY_UID=1337
OUTBOUND_PORT=15001

app() { ip netns exec "$NS_APP" "$@"; }
ext() { ip netns exec "$NS_EXT" "$@"; }

ns_exists() { [[ -e /run/netns/$1 ]]; }

# The names every namespace of the test network sees. aliyun.com exists only
# here: it must never be resolved by a real resolver.
hosts_file() {
	cat <<EOF
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
$APP_V4 app.test
$APP_V6 app.test
$GW_V4 gw.test
$GW_V6 gw.test
$ALIYUN_V4 aliyun.com www.aliyun.com
$UNREG_V4 unregistered.test
$SPOOF_V4 spoof-target.test
$TCP_V4 tcp-echo.test
$STATIC_V4 static-backend.test
$EXT_V6 v6.aliyun.test
EOF
}

topo_is_up() {
	local ns
	for ns in "${E2E_NAMESPACES[@]}"; do
		ns_exists "$ns" || return 1
	done
	[[ -f $E2E_TMP/topo.up && -f /etc/netns/$NS_APP/hosts ]]
}

# Build the network; meant to run under `set -e` in a subshell (see topo_up).
_topo_build() {
	local ns name
	ip netns add "$NS_NET"
	ip -n "$NS_NET" link set lo up
	ip -n "$NS_NET" link add br0 type bridge
	ip -n "$NS_NET" link set br0 up
	for ns in "$NS_APP" "$NS_GW" "$NS_EXT"; do
		name=${ns#sl-}
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		# Both veth ends are created inside namespaces: the root namespace never
		# holds a link of the suite, not even for a moment.
		ip -n "$NS_NET" link add "v-$name" type veth peer name eth0 netns "$ns"
		ip -n "$NS_NET" link set "v-$name" master br0 up
		ip -n "$ns" link set eth0 up
	done
	# nodad: v6 addresses are usable at once instead of "tentative" for ~2 s.
	ip -n "$NS_APP" addr add "$APP_V4/24" dev eth0
	ip -n "$NS_APP" addr add "$APP_V6/64" dev eth0 nodad
	ip -n "$NS_GW" addr add "$GW_V4/24" dev eth0
	ip -n "$NS_GW" addr add "$GW_V6/64" dev eth0 nodad
	for name in "${EXT_V4S[@]}"; do
		ip -n "$NS_EXT" addr add "$name/24" dev eth0
	done
	ip -n "$NS_EXT" addr add "$EXT_V6/64" dev eth0 nodad

	if [[ ! -d /etc/netns ]]; then
		mkdir /etc/netns
		touch "$E2E_TMP/etc-netns.created"
	fi
	for ns in "$NS_APP" "$NS_GW" "$NS_EXT"; do
		mkdir -p "/etc/netns/$ns"
		hosts_file >"/etc/netns/$ns/hosts"
		# A resolver on loopback where nothing listens: an unknown name fails
		# fast inside the namespace instead of reaching a real DNS server.
		echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"
	done
	touch "$E2E_TMP/topo.up"
}

# topo_up: create the test network; a no-op when it is already up.
topo_up() {
	topo_is_up && return 0
	topo_down # leftovers of a partial setup would make `ip netns add` fail
	local rc
	# set -e in a subshell: any failed step stops the build (set -e would be
	# ignored if this were an `if` condition, hence the plain statement).
	(
		set -e
		_topo_build
	)
	rc=$?
	if ((rc != 0)); then
		echo "topo_up: building the test network failed (exit $rc)" >&2
		topo_down
		return 1
	fi
}

# topo_down: remove everything topo_up may have created; safe after a partial
# setup and when nothing exists.
topo_down() {
	local ns
	for ns in "${E2E_NAMESPACES[@]}"; do
		if ns_exists "$ns"; then
			ip netns del "$ns" || echo "topo_down: cannot delete namespace $ns" >&2
		fi
		rm -rf "/etc/netns/$ns"
	done
	# Only remove /etc/netns if this run created it (rmdir refuses if not empty).
	if [[ -f $E2E_TMP/etc-netns.created ]]; then
		rmdir /etc/netns 2>/dev/null && rm -f "$E2E_TMP/etc-netns.created"
	fi
	rm -f "$E2E_TMP/topo.up"
}

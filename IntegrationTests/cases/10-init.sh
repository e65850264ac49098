# shellcheck shell=bash
# End-to-end tests of scripts/sluice-init, sourced by scripts/e2e after IntegrationTests/lib.sh
# (check / pass / fail, $SLUICE_ROOT). Each init_case_* runs through run_case
# (IntegrationTests/lib/cases.sh), so one runs alone as `scripts/e2e 10-init:init_case_errors`.
#
# Everything happens in network namespaces created here and removed at the end, also on
# failure; they are named sl-init-<pid of this shell>-*, so that two runs never share one.
# Traffic goes only to loopback and to addresses assigned here, inside them:
#   …-app  the "pod": lo, and veth sl-init-a 198.51.100.1/24, 2001:db8:51::1/64, with default
#          routes via …-ext (a pod always has one; the kernel routes a connection before
#          nat OUTPUT can redirect it)
#   …-ext  a stand-in remote host: veth sl-init-b 198.51.100.2/24, 2001:db8:51::2/64, no
#          forwarding, so a packet for any other address dies there
#   …-no6  a namespace with IPv6 disabled
#   …-leg  the same checks with the iptables-legacy backend
# Only init_* functions and top-level code, as the runner asks.

INIT_BIN=$SLUICE_ROOT/scripts/sluice-init
INIT_APP=sl-init-$$-app
INIT_EXT=sl-init-$$-ext
INIT_NO6=sl-init-$$-no6
INIT_LEG=sl-init-$$-leg
INIT_NAMESPACES=()
INIT_PIDS=()
INIT_TMP=$(mktemp -d /tmp/sl-init-e2e.XXXXXX)
# The clients run as other uids: use the system python, which they can read.
INIT_PY=/usr/bin/python3
[[ -x $INIT_PY ]] || INIT_PY=$(command -v python3 || echo python3)

# --- housekeeping -----------------------------------------------------------------------------

# Stops the listeners this file started, by pid.
init_stop_reporters() {
    local pid
    for pid in "${INIT_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    INIT_PIDS=()
}

# Stops what this file started (by pid) and removes its namespaces and files. Idempotent.
init_cleanup() {
    local pid ns
    init_stop_reporters
    for ns in "${INIT_NAMESPACES[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    INIT_NAMESPACES=()
    rm -rf -- "$INIT_TMP" || true
}

# The command the runner has trapped for SIGNAL, so that ours can run it too.
init_trap_command() { # SIGNAL
    local spec
    spec=$(trap -p "$1")
    [[ -n $spec ]] || return 0
    eval "set -- $spec"
    printf '%s' "$3"
}

INIT_PREV_EXIT=$(init_trap_command EXIT)
INIT_PREV_INT=$(init_trap_command INT)
INIT_PREV_TERM=$(init_trap_command TERM)
# shellcheck disable=SC2064 # expanded now on purpose: the runner's own handlers
trap "init_cleanup; $INIT_PREV_EXIT" EXIT
# shellcheck disable=SC2064
trap "init_cleanup; ${INIT_PREV_INT:-exit 130}" INT
# shellcheck disable=SC2064
trap "init_cleanup; ${INIT_PREV_TERM:-exit 143}" TERM

init_restore_traps() {
    local signal command
    for signal in EXIT INT TERM; do
        case $signal in
            EXIT) command=$INIT_PREV_EXIT ;;
            INT) command=$INIT_PREV_INT ;;
            TERM) command=$INIT_PREV_TERM ;;
        esac
        if [[ -n $command ]]; then
            # shellcheck disable=SC2064
            trap "$command" "$signal"
        else
            trap - "$signal"
        fi
    done
}

# Namespaces of runs that were killed before their cleanup: their shell is gone. (What still
# runs inside them exits by itself; see the reporter.)
init_remove_stale() {
    local ns pid
    while read -r ns _; do
        [[ $ns =~ ^sl-init-([0-9]+)- ]] || continue
        pid=${BASH_REMATCH[1]}
        kill -0 "$pid" 2>/dev/null || ip netns del "$ns" 2>/dev/null || true
    done < <(ip netns list 2>/dev/null)
}

init_netns_add() { # NAME
    ip netns add "$1" || return 1
    INIT_NAMESPACES+=("$1")
    ip -n "$1" link set lo up
}

# The pod and its stand-in remote host, joined by a veth pair.
init_make_network() {
    init_netns_add "$INIT_APP" &&
        init_netns_add "$INIT_EXT" &&
        ip -n "$INIT_APP" link add sl-init-a type veth peer name sl-init-b netns "$INIT_EXT" &&
        ip -n "$INIT_APP" addr add 198.51.100.1/24 dev sl-init-a &&
        ip -n "$INIT_APP" -6 addr add 2001:db8:51::1/64 dev sl-init-a nodad &&
        ip -n "$INIT_APP" link set sl-init-a up &&
        ip -n "$INIT_EXT" addr add 198.51.100.2/24 dev sl-init-b &&
        ip -n "$INIT_EXT" -6 addr add 2001:db8:51::2/64 dev sl-init-b nodad &&
        ip -n "$INIT_EXT" link set sl-init-b up &&
        ip -n "$INIT_APP" route add default via 198.51.100.2 &&
        ip -n "$INIT_APP" -6 route add default via 2001:db8:51::2
}

# Runs sluice-init in NS; keeps stdout, stderr and the exit code in INIT_OUT/ERR/RC.
init_run() { # NS [ENV=VALUE...] -- ARGS...
    local ns=$1
    shift
    local -a env=()
    while (($# > 0)) && [[ $1 != -- ]]; do env+=("$1"); shift; done
    shift
    INIT_RC=0
    ip netns exec "$ns" env "${env[@]}" "$INIT_BIN" "$@" >"$INIT_TMP/out" 2>"$INIT_TMP/err" || INIT_RC=$?
    INIT_OUT=$(<"$INIT_TMP/out")
    INIT_ERR=$(<"$INIT_TMP/err")
}

# iptables-save of NS for FAMILY (4 or 6) and BACKEND (nft or legacy), without its
# timestamp comments and with the packet counters zeroed: the rules, and only them.
init_save() { # NS FAMILY [BACKEND]
    local bin=iptables
    [[ $2 == 6 ]] && bin=ip6tables
    [[ ${3:-nft} == legacy ]] && bin=$bin-legacy
    ip netns exec "$1" "$bin-save" | { grep -v '^#' || true; } | sed -E 's/\[[0-9]+:[0-9]+\]/[0:0]/'
}

# --- small assertions (each prints why when it fails) -------------------------------------------

init_same() { # DESCRIPTION_OF_A A B
    [[ $2 == "$3" ]] && return 0
    echo "$1 differ:"
    diff <(printf '%s\n' "$2") <(printf '%s\n' "$3")
    return 1
}

init_contains() { # HAYSTACK NEEDLE...
    local haystack=$1 needle
    shift
    for needle in "$@"; do
        if ! grep -qF -- "$needle" <<<"$haystack"; then
            printf 'missing %q in:\n%s\n' "$needle" "$haystack"
            return 1
        fi
    done
}

init_count() { # HAYSTACK NEEDLE EXPECTED
    local n
    n=$(grep -cxF -- "$2" <<<"$1" || true)
    [[ $n == "$3" ]] || { echo "expected $3 x '$2', found $n"; return 1; }
}

# No line of HAYSTACK contains any NEEDLE.
init_lacks() { # HAYSTACK NEEDLE...
    local haystack=$1 needle
    shift
    for needle in "$@"; do
        if grep -qF -- "$needle" <<<"$haystack"; then
            echo "unexpected '$needle' in:"
            printf '%s\n' "$haystack"
            return 1
        fi
    done
}

# The last init_run failed with exactly one line on stderr, starting with "sluice-init: "
# and containing TEXT, and printed nothing on stdout.
init_one_line_error() { # TEXT
    [[ $INIT_RC != 0 ]] || { echo "exit code 0"; return 1; }
    [[ -z $INIT_OUT ]] || { echo "stdout not empty: $INIT_OUT"; return 1; }
    [[ $(wc -l <<<"$INIT_ERR") == 1 && $INIT_ERR == "sluice-init: "* ]] ||
        { echo "stderr is not one sluice-init line: $INIT_ERR"; return 1; }
    init_contains "$INIT_ERR" "$1"
}

init_ok() { [[ $INIT_RC == 0 ]] || { echo "exit $INIT_RC: $INIT_ERR"; return 1; }; }

# Nothing left running in NS and nothing listening there.
init_ns_idle() { # NS
    local pids listening
    pids=$(ip netns pids "$1")
    listening=$(ip netns exec "$1" ss -Hltn)
    [[ -z $pids && -z $listening ]] || { echo "left behind: pids [$pids] listeners [$listening]"; return 1; }
}

# --- a listener that says where a connection arrived --------------------------------------------

# Listens on each HOST:PORT given and answers every connection with one line:
# "redirected <original destination>" when SO_ORIGINAL_DST differs from where it arrived,
# else "direct <address it arrived at>". Exits by itself after 120 s.
init_write_reporter() {
    cat >"$INIT_TMP/reporter.py" <<'PY'
import selectors, signal, socket, struct, sys
signal.alarm(120)
sel = selectors.DefaultSelector()
for spec in sys.argv[1:]:
    host, port = spec.rsplit(":", 1)
    host = host.strip("[]")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(16)
    sel.register(s, selectors.EVENT_READ)
def show(h, p):
    return f"[{h}]:{p}" if ":" in h else f"{h}:{p}"
while True:
    for key, _ in sel.select():
        conn, _ = key.fileobj.accept()
        with conn:
            here = conn.getsockname()[:2]
            try:
                if conn.family == socket.AF_INET6:
                    raw = conn.getsockopt(41, 80, 28)
                    orig = (socket.inet_ntop(socket.AF_INET6, raw[8:24]), struct.unpack("!H", raw[2:4])[0])
                else:
                    raw = conn.getsockopt(socket.SOL_IP, 80, 16)
                    orig = (socket.inet_ntop(socket.AF_INET, raw[4:8]), struct.unpack("!H", raw[2:4])[0])
            except OSError:
                orig = here
            line = f"redirected {show(*orig)}" if orig != here else f"direct {show(*here)}"
            conn.sendall(line.encode() + b"\n")
PY
    cat >"$INIT_TMP/client.py" <<'PY'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
with socket.socket(fam, socket.SOCK_STREAM) as s:
    s.settimeout(3)
    s.connect((host, port))
    print(s.makefile().readline().strip())
PY
    chmod 755 "$INIT_TMP" && chmod 644 "$INIT_TMP"/*.py
}

init_start_reporter() { # NS HOST:PORT...
    local ns=$1 port i
    shift
    # fd 9 is the runner's lock: a listener must not hold it.
    ip netns exec "$ns" "$INIT_PY" "$INIT_TMP/reporter.py" "$@" 9>&- &
    INIT_PIDS+=($!)
    for ((i = 0; i < 50; i++)); do # up to 5 s for every port to listen
        local missing=0
        for port in "$@"; do
            ip netns exec "$ns" ss -Hltn "sport = :${port##*:}" | grep -q . || missing=1
        done
        ((missing)) || return 0
        sleep 0.1
    done
    echo "reporter did not start in $ns"
    return 1
}

# From the pod, as UID:GID, connect to HOST PORT and expect the reporter's line EXPECTED.
init_connect() { # UID:GID HOST PORT EXPECTED
    local uid=${1%%:*} gid=${1##*:} got
    got=$(ip netns exec "$INIT_APP" setpriv --reuid "$uid" --regid "$gid" --clear-groups \
        "$INIT_PY" "$INIT_TMP/client.py" "$2" "$3" 2>&1) || true
    [[ $got == "$4" ]] || { echo "uid $uid gid $gid -> $2 port $3: expected '$4', got '$got'"; return 1; }
}

# --- the cases ---------------------------------------------------------------------------------

init_case_lifecycle() {
    local before4 before6 first4 first6
    before4=$(init_save "$INIT_APP" 4)
    before6=$(init_save "$INIT_APP" 6)

    init_run "$INIT_APP" -- --dry-run
    check "dry-run prints the rules" init_contains "$INIT_OUT" '*nat' ':SLUICE_OUTPUT - [0:0]' \
        '-A OUTPUT -p tcp -j SLUICE_OUTPUT' '-A SLUICE_REDIRECT -p tcp -j REDIRECT --to-ports 15001' \
        '-A SLUICE_OUTPUT -m owner --uid-owner 1337 -j RETURN' '-A SLUICE_OUTPUT -d ::1/128 -j RETURN' COMMIT
    check "dry-run changes no IPv4 rule" init_same "iptables-save" "$before4" "$(init_save "$INIT_APP" 4)"
    check "dry-run changes no IPv6 rule" init_same "ip6tables-save" "$before6" "$(init_save "$INIT_APP" 6)"

    init_run "$INIT_APP" SLUICE_DRY_RUN=1 SLUICE_PROXY_PORT=15123 SLUICE_EXCLUDE_CIDRS=10.0.0.0/8 --
    check "flags come from SLUICE_* variables" init_contains "$INIT_OUT" \
        '--to-ports 15123' '-A SLUICE_OUTPUT -d 10.0.0.0/8 -j RETURN'
    check "SLUICE_DRY_RUN=1 changes nothing" init_same "iptables-save" "$before4" "$(init_save "$INIT_APP" 4)"

    init_run "$INIT_APP" --
    check "install succeeds" init_ok
    first4=$(init_save "$INIT_APP" 4)
    first6=$(init_save "$INIT_APP" 6)
    check "install: iptables-save has the SLUICE chains and the OUTPUT jump" init_contains "$first4" \
        ':SLUICE_OUTPUT - [0:0]' ':SLUICE_REDIRECT - [0:0]' '-A OUTPUT -p tcp -j SLUICE_OUTPUT' \
        '-A SLUICE_REDIRECT -p tcp -j REDIRECT --to-ports 15001' '-A SLUICE_OUTPUT -d 127.0.0.1/32 -j RETURN'
    check "install: ip6tables-save has the SLUICE chains and the OUTPUT jump" init_contains "$first6" \
        ':SLUICE_OUTPUT - [0:0]' ':SLUICE_REDIRECT - [0:0]' '-A OUTPUT -p tcp -j SLUICE_OUTPUT' \
        '-A SLUICE_OUTPUT -d ::1/128 -j RETURN'

    init_run "$INIT_APP" --
    check "re-run succeeds" init_ok
    check "re-run leaves iptables-save identical" init_same "iptables-save" "$first4" "$(init_save "$INIT_APP" 4)"
    check "re-run leaves ip6tables-save identical" init_same "ip6tables-save" "$first6" "$(init_save "$INIT_APP" 6)"
    check "re-run keeps one OUTPUT jump" init_count "$(init_save "$INIT_APP" 4)" '-A OUTPUT -p tcp -j SLUICE_OUTPUT' 1

    init_run "$INIT_APP" -- --validate
    check "--validate passes in a fresh netns" init_ok
    check "--validate reports the original destination (IPv4)" init_contains "$INIT_OUT" \
        'validate: ok original destination 192.0.2.1:18080 reached 127.0.0.1:15001'
    check "--validate reports the original destination (IPv6)" init_contains "$INIT_OUT" \
        'validate: ok original destination [2001:db8::1]:18080 reached [::1]:15001'
    check "--validate leaves nothing running" init_ns_idle "$INIT_APP"

    init_case_redirection

    init_run "$INIT_APP" -- --cleanup
    check "cleanup succeeds" init_ok
    check "cleanup restores iptables-save exactly" init_same "iptables-save" "$before4" "$(init_save "$INIT_APP" 4)"
    check "cleanup restores ip6tables-save exactly" init_same "ip6tables-save" "$before6" "$(init_save "$INIT_APP" 6)"
    init_run "$INIT_APP" -- --cleanup
    check "cleanup with nothing installed is a no-op" init_ok

    init_run "$INIT_APP" -- --validate
    check "--validate without rules fails in one line" init_one_line_error "not installed"

    init_run "$INIT_APP" -- --ipv6 off
    check "--ipv6 off installs IPv4" init_contains "$(init_save "$INIT_APP" 4)" '-A OUTPUT -p tcp -j SLUICE_OUTPUT'
    check "--ipv6 off leaves ip6tables untouched" init_same "ip6tables-save" "$before6" "$(init_save "$INIT_APP" 6)"
    init_run "$INIT_APP" -- --ipv6 off --cleanup
    check "--ipv6 off cleanup restores iptables-save" init_same "iptables-save" "$before4" "$(init_save "$INIT_APP" 4)"
}

# Who is redirected and who is not, seen by a listener on the proxy port and one on the
# stand-in remote host. Re-installs with other flags, which also exercises replacement.
init_case_redirection() {
    local redirected='redirected 198.51.100.2:18080' direct='direct 198.51.100.2:18080'
    init_start_reporter "$INIT_APP" 127.0.0.1:15001 '[::1]:15001' 198.51.100.1:18090 || {
        fail "reporter in $INIT_APP" "did not start"
        return
    }
    init_start_reporter "$INIT_EXT" 198.51.100.2:18080 198.51.100.2:18081 '[2001:db8:51::2]:18080' || {
        fail "reporter in $INIT_EXT" "did not start"
        return
    }
    check "uid 0 is redirected, original destination intact" init_connect 0:0 198.51.100.2 18080 "$redirected"
    check "uid 1000 is redirected" init_connect 1000:1000 198.51.100.2 18080 "$redirected"
    check "proxy uid 1337 is not redirected" init_connect 1337:1000 198.51.100.2 18080 "$direct"
    check "proxy gid 1337 is not redirected" init_connect 1000:1337 198.51.100.2 18080 "$direct"
    check "IPv6: uid 0 is redirected" init_connect 0:0 2001:db8:51::2 18080 'redirected [2001:db8:51::2]:18080'
    check "IPv6: proxy uid 1337 is not redirected" init_connect 1337:1337 2001:db8:51::2 18080 'direct [2001:db8:51::2]:18080'
    check "the pod's own address (over lo) is not redirected" init_connect 0:0 198.51.100.1 18090 'direct 198.51.100.1:18090'

    init_run "$INIT_APP" -- --exclude-ports 18081,20000:20010
    check "exclude-ports: excluded port not redirected" init_connect 0:0 198.51.100.2 18081 'direct 198.51.100.2:18081'
    check "exclude-ports: other port still redirected" init_connect 0:0 198.51.100.2 18080 "$redirected"

    init_run "$INIT_APP" -- --exclude-cidrs 198.51.100.2/32,2001:db8:51::/64
    check "exclude-cidrs: IPv4 range not redirected" init_connect 0:0 198.51.100.2 18080 "$direct"
    check "exclude-cidrs: IPv6 range not redirected" init_connect 0:0 2001:db8:51::2 18080 'direct [2001:db8:51::2]:18080'

    init_run "$INIT_APP" -- --include-ports 18081
    check "include-ports: listed port redirected" init_connect 0:0 198.51.100.2 18081 'redirected 198.51.100.2:18081'
    check "include-ports: other port not redirected" init_connect 0:0 198.51.100.2 18080 "$direct"

    init_run "$INIT_APP" -- --include-cidrs 198.51.100.0/24
    check "include-cidrs: listed range redirected" init_connect 0:0 198.51.100.2 18080 "$redirected"
    check "include-cidrs: no IPv6 range listed, IPv6 not redirected" \
        init_connect 0:0 2001:db8:51::2 18080 'direct [2001:db8:51::2]:18080'
    init_run "$INIT_APP" -- --include-cidrs 203.0.113.0/24
    check "include-cidrs: other range not redirected" init_connect 0:0 198.51.100.2 18080 "$direct"

    init_run "$INIT_APP" --
    check "back to the defaults: redirected again" init_connect 0:0 198.51.100.2 18080 "$redirected"
    init_stop_reporters
}

init_case_errors() {
    local before4 no_iptables_path dir
    before4=$(init_save "$INIT_APP" 4)
    init_run "$INIT_APP" -- --exclude-cidrs 10.0.0.0/33
    check "bad CIDR: one-line error" init_one_line_error "bad CIDR '10.0.0.0/33' in --exclude-cidrs"
    init_run "$INIT_APP" -- --include-cidrs 10.1.2.3/8
    check "CIDR with host bits: one-line error" init_one_line_error "host bits are set"
    init_run "$INIT_APP" -- --exclude-cidrs 2001:db8::zz/64
    check "bad IPv6 CIDR: one-line error" init_one_line_error "bad CIDR"
    init_run "$INIT_APP" -- --exclude-ports 70000
    check "bad port: one-line error" init_one_line_error "bad port '70000' in --exclude-ports"
    init_run "$INIT_APP" -- --include-ports 90:80
    check "bad port range: one-line error" init_one_line_error "bad port '90:80'"
    init_run "$INIT_APP" -- --proxy-port 0
    check "bad proxy port: one-line error" init_one_line_error "--proxy-port"
    init_run "$INIT_APP" -- --proxy-uid istio
    check "bad uid: one-line error" init_one_line_error "bad uid 'istio'"
    init_run "$INIT_APP" SLUICE_PROXY_GID=x --
    check "bad gid from SLUICE_PROXY_GID: one-line error" init_one_line_error "bad gid 'x'"
    init_run "$INIT_APP" -- --ipv6 maybe
    check "bad --ipv6: one-line error" init_one_line_error "--ipv6"

    # A PATH without the directories that hold iptables.
    no_iptables_path=
    while IFS= read -r dir; do
        [[ -n $dir && ! -e $dir/iptables ]] && no_iptables_path+=${no_iptables_path:+:}$dir
    done < <(tr ':' '\n' <<<"$PATH")
    init_run "$INIT_APP" PATH="$no_iptables_path" --
    check "missing iptables: one-line error" \
        init_one_line_error "sluice-init: iptables not found (install the iptables package)"

    INIT_RC=0
    ip netns exec "$INIT_APP" setpriv --bounding-set -net_admin --inh-caps -net_admin \
        "$INIT_BIN" >"$INIT_TMP/out" 2>"$INIT_TMP/err" || INIT_RC=$?
    INIT_OUT=$(<"$INIT_TMP/out") INIT_ERR=$(<"$INIT_TMP/err")
    check "no NET_ADMIN: one-line error" init_one_line_error "CAP_NET_ADMIN"
    check "errors change nothing" init_same "iptables-save" "$before4" "$(init_save "$INIT_APP" 4)"
}

init_case_ipv6_disabled() {
    local before6 skips
    if ! init_netns_add "$INIT_NO6" ||
        ! ip netns exec "$INIT_NO6" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; then
        fail "namespace without IPv6" "could not create $INIT_NO6"
        return 0
    fi
    before6=$(init_save "$INIT_NO6" 6)
    init_run "$INIT_NO6" -- --ipv6 auto
    check "--ipv6 auto without IPv6 installs IPv4" init_ok
    skips=$(grep -ci ipv6 <<<"$INIT_ERR" || true)
    check "--ipv6 auto without IPv6 says so in one log line" init_same "IPv6 log lines" 1 "$skips"
    check "--ipv6 auto without IPv6 leaves ip6tables untouched" init_same "ip6tables-save" "$before6" "$(init_save "$INIT_NO6" 6)"
    init_run "$INIT_NO6" -- --ipv6 on
    check "--ipv6 on without IPv6 is a one-line error" init_one_line_error "--ipv6 on"
    init_run "$INIT_NO6" -- --cleanup
    check "cleanup without IPv6 succeeds" init_ok
}

init_case_legacy() {
    local before4 before6 first4
    if ! command -v iptables-legacy >/dev/null; then
        pass "iptables-legacy backend (skipped: not installed)"
        return
    fi
    # A veth pair inside the namespace, only to give it default routes for --validate (what
    # it would send out goes to the other end, in the same namespace, and is dropped there).
    # Legacy tables come into being when first read and can never be removed, so read them
    # before taking the "before" picture.
    if ! { init_netns_add "$INIT_LEG" &&
        ip -n "$INIT_LEG" link add sl-init-la type veth peer name sl-init-lb &&
        ip -n "$INIT_LEG" addr add 198.51.100.1/24 dev sl-init-la &&
        ip -n "$INIT_LEG" -6 addr add 2001:db8:51::1/64 dev sl-init-la nodad &&
        ip -n "$INIT_LEG" link set sl-init-la up &&
        ip -n "$INIT_LEG" link set sl-init-lb up &&
        ip -n "$INIT_LEG" route add default dev sl-init-la &&
        ip -n "$INIT_LEG" -6 route add default dev sl-init-la &&
        ip netns exec "$INIT_LEG" iptables-legacy -t nat -S >/dev/null &&
        ip netns exec "$INIT_LEG" ip6tables-legacy -t nat -S >/dev/null; }; then
        fail "legacy backend" "could not set up $INIT_LEG"
        return 0
    fi
    before4=$(init_save "$INIT_LEG" 4 legacy)
    before6=$(init_save "$INIT_LEG" 6 legacy)

    init_run "$INIT_LEG" -- --iptables-backend legacy
    check "legacy: install succeeds" init_ok
    first4=$(init_save "$INIT_LEG" 4 legacy)
    check "legacy: iptables-legacy-save has the SLUICE chains" init_contains "$first4" \
        ':SLUICE_OUTPUT - [0:0]' '-A OUTPUT -p tcp -j SLUICE_OUTPUT'
    init_run "$INIT_LEG" -- --iptables-backend legacy
    check "legacy: re-run is idempotent" init_same "iptables-legacy-save" "$first4" "$(init_save "$INIT_LEG" 4 legacy)"
    init_run "$INIT_LEG" -- --iptables-backend legacy --validate
    check "legacy: --validate passes" init_contains "$INIT_OUT" \
        'validate: ok original destination 192.0.2.1:18080 reached 127.0.0.1:15001' \
        'validate: ok original destination [2001:db8::1]:18080 reached [::1]:15001'
    init_run "$INIT_LEG" -- --iptables-backend legacy --cleanup
    check "legacy: cleanup restores iptables-legacy-save" init_same "iptables-legacy-save" "$before4" "$(init_save "$INIT_LEG" 4 legacy)"
    check "legacy: cleanup restores ip6tables-legacy-save" init_same "ip6tables-legacy-save" "$before6" "$(init_save "$INIT_LEG" 6 legacy)"
}

# The sidecar's ports in net.ipv4.ip_local_reserved_ports: merged with what is reserved,
# recorded, honoured by the kernel, idempotent, given back (only ours) by --cleanup.
init_case_reserved_ports() {
    local sysctl=/proc/sys/net/ipv4/ip_local_reserved_ports marker before4 first4 got
    marker='-A SLUICE_OUTPUT -m comment --comment "sluice-init reserved local ports 15000-15001,15021"'
    init_reserved() { ip netns exec "$INIT_APP" cat "$sysctl"; }
    # Someone else (the pod spec, an admin) reserved 8000 and 15090 already.
    ip netns exec "$INIT_APP" sh -c "echo 8000,15090 >$sysctl"
    before4=$(init_save "$INIT_APP" 4)

    init_run "$INIT_APP" -- --dry-run
    check "reserved ports: dry-run shows the merged value" init_contains "$INIT_OUT" \
        '# net.ipv4.ip_local_reserved_ports: "8000,15090" -> "8000,15000-15001,15021,15090"'
    check "reserved ports: dry-run changes nothing" init_same "reserved ports" "8000,15090" "$(init_reserved)"

    init_run "$INIT_APP" --
    check "reserved ports: install succeeds" init_ok
    check "reserved ports: merged with what was reserved" init_same "reserved ports" \
        "8000,15000-15001,15021,15090" "$(init_reserved)"
    first4=$(init_save "$INIT_APP" 4)
    check "reserved ports: the rules record only the ports sluice-init added" init_count "$first4" "$marker" 1
    init_run "$INIT_APP" --
    check "reserved ports: re-run changes neither the sysctl nor the rules" init_same "reserved ports + rules" \
        "8000,15000-15001,15021,15090"$'\n'"$first4" "$(init_reserved)"$'\n'"$(init_save "$INIT_APP" 4)"

    # With an ephemeral range of 15000-15021, the kernel must hand out none of the reserved
    # ports; an explicit bind (what the sidecar does, with SO_REUSEADDR as any listener: the
    # connections redirected earlier left TIME_WAITs on 15001) still gets one.
    got=$(ip netns exec "$INIT_APP" sh -c 'echo "15000 15021" >/proc/sys/net/ipv4/ip_local_port_range &&
        python3 -I -c "
import socket
seen = set()
for _ in range(40):
    s = socket.socket(); s.bind((\"127.0.0.1\", 0)); seen.add(s.getsockname()[1]); s.close()
explicit = socket.socket(); explicit.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); explicit.bind((\"127.0.0.1\", 15001))
print(sorted(seen & {15000, 15001, 15021}), explicit.getsockname()[1])
"' 2>&1)
    check "reserved ports: the kernel hands out none of them, an explicit bind still works" \
        init_same "ephemeral ports taken from the reserved ones" "[] 15001" "$got"
    ip netns exec "$INIT_APP" sh -c 'echo "32768 60999" >/proc/sys/net/ipv4/ip_local_port_range'

    init_run "$INIT_APP" -- --cleanup
    check "reserved ports: cleanup succeeds" init_ok
    check "reserved ports: cleanup gives back only sluice-init's ports" init_same "reserved ports" \
        "8000,15090" "$(init_reserved)"
    check "reserved ports: cleanup restores iptables-save" init_same "iptables-save" "$before4" "$(init_save "$INIT_APP" 4)"

    init_run "$INIT_APP" -- --reserve-ports ''
    check "reserved ports: --reserve-ports '' reserves none" init_same "reserved ports" "8000,15090" "$(init_reserved)"
    check "reserved ports: and records none" init_count "$(init_save "$INIT_APP" 4)" "$marker" 0
    init_run "$INIT_APP" -- --cleanup

    # /proc/sys read-only, as in an unprivileged container: the rules still go in, one line
    # says how to reserve the ports instead, and nothing is recorded.
    INIT_RC=0
    # shellcheck disable=SC2016 # $0 is the inner shell's, on purpose
    ip netns exec "$INIT_APP" unshare -m --propagation private sh -c \
        'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$0"' "$INIT_BIN" \
        >"$INIT_TMP/out" 2>"$INIT_TMP/err" || INIT_RC=$?
    INIT_OUT=$(<"$INIT_TMP/out") INIT_ERR=$(<"$INIT_TMP/err")
    check "reserved ports: read-only /proc/sys still installs the rules" init_ok
    check "reserved ports: read-only /proc/sys is one log line naming the pod sysctl" \
        init_contains "$INIT_ERR" "could not set net.ipv4.ip_local_reserved_ports" "securityContext.sysctls"
    check "reserved ports: read-only /proc/sys records nothing" init_count "$(init_save "$INIT_APP" 4)" "$marker" 0
    init_run "$INIT_APP" -- --cleanup
    check "reserved ports: after all that, as the other owner left them" init_same "reserved ports" \
        "8000,15090" "$(init_reserved)"
    check "reserved ports: and iptables-save as before" init_same "iptables-save" "$before4" "$(init_save "$INIT_APP" 4)"
    ip netns exec "$INIT_APP" sh -c "echo >$sysctl"
}

# --capture-udp / --capture-dns (issue 22): dry-run, install, re-run, validate, switching them
# off again, and cleanup back to the exact iptables-save of before.
init_case_udp_dns() {
    local before4 before6 first4 first6
    before4=$(init_save "$INIT_APP" 4)
    before6=$(init_save "$INIT_APP" 6)
    init_run "$INIT_APP" -- --dry-run --capture-udp --capture-dns --udp-queue 15123 --exclude-ports 5353
    check "udp/dns: dry-run shows the queue and DNS rules" init_contains "$INIT_OUT" '*filter' \
        ':SLUICE_UDP - [0:0]' '-A OUTPUT -p udp -j SLUICE_UDP' '-A SLUICE_UDP -j NFQUEUE --queue-num 15123' \
        '-A SLUICE_UDP -p udp --dport 5353 -j RETURN' '-A SLUICE_UDP -m owner --uid-owner 1337 -j RETURN' \
        '-I OUTPUT 1 -p udp --dport 53 -j SLUICE_DNS' '-A SLUICE_DNS -p tcp -j REDIRECT --to-ports 15053'
    check "udp/dns: dry-run shows the DNS conntrack zones (raw table)" init_contains "$INIT_OUT" '*raw' \
        '-A PREROUTING -p udp -j SLUICE_DNS_ZONE_IN' '-A OUTPUT -p udp -j SLUICE_DNS_ZONE_OUT' \
        '-A SLUICE_DNS_ZONE_OUT -p udp --sport 15053 -m owner --uid-owner 1337 -j CT --zone 2' \
        '-A SLUICE_DNS_ZONE_OUT -p udp --dport 5353 -j RETURN' \
        '-A SLUICE_DNS_ZONE_OUT -p udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1' \
        '-A SLUICE_DNS_ZONE_OUT -p udp --dport 53 -m owner --gid-owner 1337 -j CT --zone 1' \
        '-A SLUICE_DNS_ZONE_OUT -p udp --dport 53 -j CT --zone 2' '-A SLUICE_DNS_ZONE_IN -p udp --sport 53 -j CT --zone 1'
    check "udp/dns: fail-closed by default (no --queue-bypass)" init_lacks "$INIT_OUT" '--queue-bypass'
    init_run "$INIT_APP" -- --dry-run --capture-udp
    check "udp/dns: no conntrack zones without --capture-dns" init_lacks "$INIT_OUT" '*raw' SLUICE_DNS_ZONE
    check "udp/dns: dry-run changes nothing" init_same "iptables-save" "$before4" "$(init_save "$INIT_APP" 4)"
    init_run "$INIT_APP" -- --dry-run --capture-udp --udp-fail-open
    check "udp/dns: --udp-fail-open adds --queue-bypass" init_contains "$INIT_OUT" \
        '-A SLUICE_UDP -j NFQUEUE --queue-num 15100 --queue-bypass'
    init_run "$INIT_APP" SLUICE_UDP_QUEUE=70000 -- --capture-udp
    check "udp/dns: bad queue number is a one-line error" init_one_line_error "bad queue number '70000'"

    init_run "$INIT_APP" SLUICE_CAPTURE_UDP=1 -- --capture-dns
    check "udp/dns: install succeeds" init_ok
    first4=$(init_save "$INIT_APP" 4)
    first6=$(init_save "$INIT_APP" 6)
    check "udp/dns: iptables-save has both captures" init_contains "$first4" '-A OUTPUT -p udp -j SLUICE_UDP' \
        '-A SLUICE_UDP -j NFQUEUE --queue-num 15100' '-A OUTPUT -p udp -m udp --dport 53 -j SLUICE_DNS' \
        '-A OUTPUT -p tcp -m tcp --dport 53 -j SLUICE_DNS' '-A SLUICE_DNS -p udp -j REDIRECT --to-ports 15053'
    check "udp/dns: ip6tables-save has both captures" init_contains "$first6" '-A OUTPUT -p udp -j SLUICE_UDP' \
        '-A SLUICE_DNS -p udp -j REDIRECT --to-ports 15053'
    check "udp/dns: iptables-save has the conntrack zones" init_contains "$first4" \
        '-A PREROUTING -p udp -j SLUICE_DNS_ZONE_IN' '-A OUTPUT -p udp -j SLUICE_DNS_ZONE_OUT' \
        '-A SLUICE_DNS_ZONE_OUT -p udp -m udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1' \
        '-A SLUICE_DNS_ZONE_OUT -p udp -m udp --dport 53 -j CT --zone 2' '-A SLUICE_DNS_ZONE_IN -p udp -m udp --sport 53 -j CT --zone 1'
    check "udp/dns: ip6tables-save has the conntrack zones" init_contains "$first6" \
        '-A SLUICE_DNS_ZONE_OUT -p udp -m udp --sport 15053 -m owner --uid-owner 1337 -j CT --zone 2' \
        '-A SLUICE_DNS_ZONE_IN -p udp -m udp --sport 53 -j CT --zone 1'
    check "udp/dns: 15053 is reserved" init_contains \
        "$(ip netns exec "$INIT_APP" cat /proc/sys/net/ipv4/ip_local_reserved_ports)" 15053
    init_run "$INIT_APP" SLUICE_CAPTURE_UDP=1 -- --capture-dns
    check "udp/dns: re-run leaves iptables-save identical" init_same "iptables-save" "$first4" "$(init_save "$INIT_APP" 4)"
    check "udp/dns: re-run leaves ip6tables-save identical" init_same "ip6tables-save" "$first6" "$(init_save "$INIT_APP" 6)"
    init_run "$INIT_APP" -- --validate --capture-udp --capture-dns
    check "udp/dns: --validate passes" init_ok
    check "udp/dns: --validate saw a datagram reach the queue" init_contains "$INIT_OUT" \
        'validate: ok a datagram to 192.0.2.1:9 went to NFQUEUE 15100' 'validate: ok UDP and TCP port 53 go to port 15053' \
        "validate: ok the DNS proxy's own queries are in conntrack zone 1, the redirected ones in zone 2"

    init_run "$INIT_APP" --
    check "udp/dns: re-run without the flags removes both" init_lacks "$(init_save "$INIT_APP" 4)" SLUICE_UDP SLUICE_DNS
    check "udp/dns: ... and the IPv6 conntrack zones" init_lacks "$(init_save "$INIT_APP" 6)" SLUICE_DNS_ZONE
    init_run "$INIT_APP" -- --capture-udp --capture-dns
    init_run "$INIT_APP" -- --cleanup
    check "udp/dns: cleanup succeeds" init_ok
    check "udp/dns: cleanup restores iptables-save exactly" init_same "iptables-save" "$before4" "$(init_save "$INIT_APP" 4)"
    check "udp/dns: cleanup restores ip6tables-save exactly" init_same "ip6tables-save" "$before6" "$(init_save "$INIT_APP" 6)"
}

# --- run ---------------------------------------------------------------------------------------

if ! command -v ip >/dev/null || ! command -v iptables >/dev/null; then
    fail "sluice-init e2e" "ip or iptables not installed (run scripts/setup)"
elif ! init_remove_stale || ! init_make_network; then
    fail "sluice-init e2e" "could not create the test namespaces"
else
    init_write_reporter
    # Each case saves the rules it starts from and checks that it leaves them so: none needs
    # another to have run first.
    run_case init_case_lifecycle
    run_case init_case_errors
    run_case init_case_reserved_ports
    run_case init_case_ipv6_disabled
    run_case init_case_legacy
    run_case init_case_udp_dns
fi
init_cleanup
init_restore_traps

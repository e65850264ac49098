# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# Results: every check ends in pass or fail, which print "ok - ..." / "FAIL - ..." and
# count; scripts/e2e prints the totals as its last line.

E2E_PASSED=0
E2E_FAILED=0
E2E_FAILURES=()

# indent TEXT: print TEXT four spaces in, at most 40 lines, so a failure shows
# its evidence without drowning the report.
indent() {
	[[ -n ${1:-} ]] || return 0
	local lines
	lines=$(printf '%s\n' "$1" | wc -l)
	printf '%s\n' "$1" | head -n 40 | sed 's/^/    /'
	if ((lines > 40)); then
		printf '    ... (%d more lines)\n' $((lines - 40))
	fi
}

pass() {
	E2E_PASSED=$((E2E_PASSED + 1))
	printf 'ok - %s\n' "$1"
}

# fail DESC [WHY]
fail() {
	E2E_FAILED=$((E2E_FAILED + 1))
	E2E_FAILURES+=("$1")
	printf 'FAIL - %s\n' "$1"
	indent "${2:-}"
}

# check DESC CMD...: pass if CMD exits 0; otherwise show what it printed.
check() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if ((rc == 0)); then
		pass "$desc"
	else
		fail "$desc" "exit $rc: $*"
		indent "$out"
	fi
}

# check_not DESC CMD...: pass if CMD fails in any way, for a command whose every failure
# means the same (a grep that finds nothing). Not for curl and friends: their failures differ
# (7 refused, 28 timeout, 35 TLS, 52 empty reply, 56 reset), and "any" also passes on a
# typo's 127, so check_exit names the one expected; check_not refuses them, and counts a
# command that could not run (126, 127) as a failure.
check_not() {
	local desc=$1 out rc
	shift
	case ${1:-} in
	*curl* | app_status)
		fail "$desc" "check_not cannot judge $1 (any failure passes): use check_exit DESC CODE $*"
		return
		;;
	esac
	out=$("$@" 2>&1)
	rc=$?
	if ((rc == 126 || rc == 127)); then
		fail "$desc" "could not run (exit $rc): $*"
		indent "$out"
	elif ((rc != 0)); then
		pass "$desc"
	else
		fail "$desc" "expected failure, but it succeeded: $*"
		indent "$out"
	fi
}

# check_exit DESC CODE CMD...: pass only if CMD exits with exactly CODE (curl's 52,
# "empty reply", is not its 7 or 28, nor a typo's 127).
check_exit() {
	local desc=$1 want=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	if ((rc == want)); then
		pass "$desc"
	else
		fail "$desc" "expected exit $want, got $rc: $*"
		indent "$out"
	fi
}

# check_eq DESC EXPECTED ACTUAL
check_eq() {
	if [[ $2 == "$3" ]]; then
		pass "$1"
	else
		fail "$1" "expected '$2', got '$3'"
	fi
}

# check_explain DESC PATTERN CONFIG [EXPLAIN_ARGS...]: `sluice explain --config CONFIG ARGS`
# prints a line matching the extended regex PATTERN (all of its output shown when not).
check_explain() {
	local desc=$1 pattern=$2 config=$3 out
	shift 3
	out=$("$SLUICE_BIN" explain --config "$config" "$@" 2>&1)
	if grep -qE -- "$pattern" <<<"$out"; then
		pass "$desc"
	else
		fail "$desc" "no line matches '$pattern' in:"
		indent "$out"
	fi
}

# section TITLE: a comment line in the report between groups of checks.
section() {
	printf '# %s\n' "$1"
}

# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# Cases and scenarios: how a case file runs what it defines.
#
# A case is a function named after what a user sees. A case file defines its cases, then one
# function that runs them: each through `scenario` (the processes it needs: a sidecar, a
# gateway, Squid) or `run_case` (a case that needs none of them, or starts on purpose what
# it checks). `scripts/e2e FILE:CASE` sets E2E_ONLY=CASE: both then skip every other case and
# the processes only those needed, so `scripts/e2e 20-sidecar:unregistered_host_is_502`
# starts the origins and one sidecar with registry-only-http.yaml and runs that one function.
# A check that follows up on a case's traffic later (what a gateway logs once a tunnel
# closes) runs when that case did: `wants CASE && ...`. A case that builds on what earlier
# cases did lists them in E2E_NEEDS, and they run before it when it is asked for alone.

E2E_ONLY=${E2E_ONLY:-} # the one case to run; empty: all of them
E2E_CASES_RUN=0        # cases run (or reported as not run) since the last reset
# E2E_NEEDS[CASE]: the cases CASE builds on (listed before it), which run first when CASE
# runs alone; a case file sets its entries. -g: global even if this is sourced in a function.
declare -gA E2E_NEEDS=()

# wants CASE...: some CASE is to run (the one asked for, or one it builds on).
wants() {
	local case_fn
	[[ -z $E2E_ONLY ]] && return 0
	for case_fn in "$@"; do
		[[ $case_fn == "$E2E_ONLY" || " ${E2E_NEEDS[$E2E_ONLY]:-} " == *" $case_fn "* ]] && return 0
	done
	return 1
}

# run_case CASE [ARGS...]: CASE (with ARGS) unless a filter leaves it out.
run_case() {
	wants "$1" || return 0
	E2E_CASES_RUN=$((E2E_CASES_RUN + 1))
	"$@"
}

# config_path CONFIG: CONFIG as given if absolute, else under configs/.
config_path() {
	if [[ $1 == /* ]]; then
		printf '%s\n' "$1"
	else
		printf '%s\n' "$E2E_CONFIGS/$1"
	fi
}

# config_name PATH: how the report names a config ("configs/gateway/gateway.yaml").
config_name() { printf '%s\n' "${1#"$E2E_DIR"/}"; }

SCENARIO_GATEWAY_CONFIG= # the config the running gateway was started with

# _scenario_not_run WHY DETAILS CASE...: every CASE fails as not run; the first shows DETAILS.
_scenario_not_run() {
	local why=$1 details=$2 case_fn
	shift 2
	for case_fn in "$@"; do
		fail "$case_fn: not run: $why" "$details"
		details=
	done
}

# scenario [--gateway CONFIG] [--squid] [--alive-check] SIDECAR_CONFIG|none CASE...
#
# The processes CASEs need, then each CASE in order. Configs are paths under configs/ (or
# absolute). A gateway or Squid asked for is started unless it already runs (the gateway
# with the same config), and stays up for the next scenario; one not asked for is stopped.
# The sidecar (none: no sidecar) is started for this scenario, restarted before a case if
# the one before killed it, and stopped at the end. A case that cannot run is reported as
# failed, so the summary always counts every case. After each case the sidecar must still
# run, unless the case stopped it on purpose (and cleared SIDECAR_PID): a death is reported
# as a failure; with --alive-check a survival also counts as a pass ("CASE: the sidecar is
# still alive").
scenario() {
	local gateway='' squid=0 alive_check=0 config case_fn title
	local -a cases=()
	while (($#)); do
		case $1 in
		--gateway)
			gateway=$(config_path "$2")
			shift 2
			;;
		--squid)
			squid=1
			shift
			;;
		--alive-check)
			alive_check=1
			shift
			;;
		*) break ;;
		esac
	done
	config=$1
	shift
	for case_fn in "$@"; do
		wants "$case_fn" && cases+=("$case_fn")
	done
	((${#cases[@]} > 0)) || return 0
	E2E_CASES_RUN=$((E2E_CASES_RUN + ${#cases[@]}))
	[[ $config == none ]] || config=$(config_path "$config")

	title=
	[[ -n $gateway ]] && title+="gateway with $(config_name "$gateway"), "
	((squid)) && title+="Squid as the gateway (squid -N -f $(config_name "$SQUID_CONF") in $NS_GW), "
	if [[ $config == none ]]; then
		title+="no sidecar"
	else
		title+="sidecar with $(config_name "$config")"
	fi
	section "$title"

	stop_sidecar
	if [[ -z $gateway ]]; then
		stop_gateway
	elif ! gateway_alive || [[ $SCENARIO_GATEWAY_CONFIG != "$gateway" ]]; then
		SCENARIO_GATEWAY_CONFIG=$gateway
		if ! start_gateway "$gateway" 2>"$E2E_TMP/start.err"; then
			_scenario_not_run "sluice gateway did not start with $(config_name "$gateway")" \
				"$(cat "$E2E_TMP/start.err")" "${cases[@]}"
			return
		fi
	fi
	if ((!squid)); then
		stop_squid
	elif ! squid_alive && ! start_squid 2>"$E2E_TMP/start.err"; then
		_scenario_not_run "squid did not start" "$(cat "$E2E_TMP/start.err")" "${cases[@]}"
		return
	fi
	if [[ $config != none ]] && ! start_sidecar "$config" 2>"$E2E_TMP/start.err"; then
		_scenario_not_run "the sidecar did not start with $(config_name "$config")" \
			"$(cat "$E2E_TMP/start.err")" "${cases[@]}"
		return
	fi

	for case_fn in "${cases[@]}"; do
		if [[ $config != none ]] && ! sidecar_alive && ! start_sidecar "$config" 2>"$E2E_TMP/start.err"; then
			fail "$case_fn: not run: the sidecar died and did not restart" "$(cat "$E2E_TMP/start.err")"
			continue
		fi
		"$case_fn"
		[[ $config == none || -z $SIDECAR_PID ]] && continue
		if sidecar_alive; then
			((alive_check)) && pass "$case_fn: the sidecar is still alive"
		else
			fail "$case_fn: the sidecar is still alive" "$(tail -n 15 "$SIDECAR_LOG")"
		fi
	done
	[[ $config == none ]] || stop_sidecar
}

# e2e_reset: back to "nothing running, no network" between case files.
e2e_reset() {
	stop_sidecar
	stop_gateway
	stop_squid
	SCENARIO_GATEWAY_CONFIG=
	stop_origins
	kill_recorded
	topo_down
}

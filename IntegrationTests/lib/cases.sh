# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# The whole run's lifecycle.

# e2e_reset: back to "nothing running, no network" between case files.
e2e_reset() {
	stop_sidecar
	stop_origins
	kill_recorded
	topo_down
}

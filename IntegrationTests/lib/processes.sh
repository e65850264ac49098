# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# Processes: every background process the suite starts is recorded by pid, and only those
# pids are ever signalled; wait_until is the suite's one bounded poll.

# wait_until SECONDS CMD...: poll CMD every 0.1 s until it succeeds; bounded
# both by wall time and by an iteration count (in case CMD itself is slow).
wait_until() {
	local seconds=$1 tries deadline
	shift
	tries=$((seconds * 10))
	deadline=$((SECONDS + seconds))
	while ((tries-- > 0 && SECONDS <= deadline)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# Every background process the suite starts is recorded here, so cleanup kills
# exactly those pids and nothing else.
E2E_PIDS=()

record_pid() { E2E_PIDS+=("$1"); }

forget_pid() {
	local pid kept=()
	for pid in "${E2E_PIDS[@]}"; do
		[[ $pid == "$1" ]] || kept+=("$pid")
	done
	E2E_PIDS=("${kept[@]}")
}

# pid_running PID: alive and not a zombie (kill -0 also succeeds on a zombie,
# which would make every stop wait for its timeout).
pid_running() {
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]
}

# kill_pid PID: TERM, up to 5 s to exit, then KILL; reaps it.
kill_pid() {
	local pid=$1 i
	if pid_running "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			pid_running "$pid" || break
			sleep 0.1
		done
		pid_running "$pid" && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	forget_pid "$pid"
}

kill_recorded() {
	local pid
	for pid in "${E2E_PIDS[@]}"; do
		kill_pid "$pid"
	done
}

# pid_recorded PID: PID is still in E2E_PIDS (kill_recorded may have stopped and
# forgotten it already; a pid no longer ours must not be signalled).
pid_recorded() {
	local pid
	for pid in "${E2E_PIDS[@]}"; do
		[[ $pid == "$1" ]] && return 0
	done
	return 1
}

# shellcheck shell=bash
# The gRPC origins: IntegrationTests/grpc_echo.py servers in sl-ext on 50051 (registered GRPC)
# and 50052 (HTTP2), and its client from the app namespace (85-http2.sh, 86-http2-gateway.sh).

GRPC_PID=

grpc_listening() { [[ $(ext ss -Hltn '( sport = :50051 or sport = :50052 )' | wc -l) -ge 2 ]]; }

start_grpc_origin() {
	[[ -n $GRPC_PID ]] && pid_running "$GRPC_PID" && return 0
	# Two servers: 50051 (GRPC) and 50052 (HTTP2). See start_origins on `9>&-`.
	ip netns exec "$NS_EXT" python3 -u "$E2E_DIR/grpc_echo.py" server --port 50051 >>"$E2E_TMP/grpc.out" 2>&1 9>&- &
	GRPC_PID=$!
	record_pid "$GRPC_PID"
	ip netns exec "$NS_EXT" python3 -u "$E2E_DIR/grpc_echo.py" server --port 50052 >>"$E2E_TMP/grpc.out" 2>&1 9>&- &
	GRPC_PID2=$!
	record_pid "$GRPC_PID2"
	wait_until 10 grpc_listening
}

stop_grpc_origin() {
	[[ -n $GRPC_PID ]] && kill_pid "$GRPC_PID"
	[[ -n ${GRPC_PID2:-} ]] && kill_pid "$GRPC_PID2"
	GRPC_PID= GRPC_PID2=
}

grpc_client() { app python3 "$E2E_DIR/grpc_echo.py" client "$@"; }


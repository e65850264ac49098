# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# The end-to-end suite's library; sourced by scripts/e2e (and scripts/demo, scripts/soak),
# then each IntegrationTests/cases/*.sh runs in the same shell. One file a concern, in lib/:
#
#   results    check, check_eq, check_exit, check_not, pass, fail, section -> "ok - ..." / "FAIL - ..."
#   net        the namespaces and addresses, topo_up, topo_down, app, ext
#   processes  record_pid, kill_pid, kill_recorded (by pid only), wait_until
#   origins    start_origins/stop_origins; origin_mark/origin_conns/origin_peers (which
#              addresses the origins saw), check_origin_saw/_never/_peer/_reached_via
#   grpc       start_grpc_origin/stop_grpc_origin (grpc_echo.py in sl-ext), grpc_client
#   logs       json_records, last_json_record (JSON access-log records since a mark)
#   sidecar    install_capture, start_sidecar/stop_sidecar, start_udp_sidecar (NFQUEUE),
#              access_mark/access_records, check_access_log
#   clients    app_curl, app_status, client (from the app namespace: captured)
#   gateway    gw, start_gateway/stop_gateway, gateway_access_mark/_records, check_gateway_access_log
#   squid      start_squid/stop_squid, squid_access_mark/squid_access_lines
#   metrics    sidecar_scrape/gateway_scrape, metric_value, check_metric_reaches
#   cases      scenario, run_case, wants (one case at a time: scripts/e2e FILE:CASE), e2e_reset
#
# The test network lives only in namespaces this library creates (prefix sl-) and uses
# documentation addresses (192.0.2.0/24, 2001:db8::/64) with no default route, so nothing
# the suite sends can leave the machine.

SLUICE_ROOT=${SLUICE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
SLUICE_BIN=${SLUICE_BIN:-$SLUICE_ROOT/.build/debug/sluice}
SLUICE_INIT=${SLUICE_INIT:-$SLUICE_ROOT/scripts/sluice-init}
E2E_DIR=$SLUICE_ROOT/IntegrationTests
E2E_CONFIGS=$E2E_DIR/configs
: "${E2E_TMP:?E2E_TMP must be set (scripts/e2e makes it)}"

# Order matters only for the variables set while sourcing (paths under $E2E_TMP).
for _e2e_lib in results net processes origins grpc logs sidecar clients gateway squid metrics cases; do
	# shellcheck source=/dev/null
	source "$E2E_DIR/lib/$_e2e_lib.sh"
done
unset _e2e_lib

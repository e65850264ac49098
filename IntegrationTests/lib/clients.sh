# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# Clients in the app namespace, as root: their traffic is captured.

CURL_MAX_TIME=${CURL_MAX_TIME:-10}

# app_curl ARGS...: curl from the app, bounded, with the suite's CA.
app_curl() {
	app curl -sS --max-time "$CURL_MAX_TIME" --cacert "$CA_CERT" "$@"
}

# app_status ARGS...: the HTTP status code ("000" when there was no response).
app_status() {
	app curl -s -o /dev/null -w '%{http_code}' --max-time "$CURL_MAX_TIME" --cacert "$CA_CERT" "$@"
}

# client ARGS...: IntegrationTests/client.py from the app namespace.
client() {
	app python3 "$E2E_DIR/client.py" "$@"
}

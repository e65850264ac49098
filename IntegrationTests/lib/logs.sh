# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# JSON access-log records (the sidecar's and the gateway's), read from a line mark on.

# json_records FILE MARK: the lines of FILE after line MARK that are JSON objects.
json_records() {
	tail -n +"$(($2 + 1))" "$1" | jq -R -c 'fromjson? | select(type == "object")'
}

# _json_record_has FILE MARK JQ_CONDITION: some record since MARK satisfies it.
_json_record_has() { json_records "$1" "$2" | jq -e --slurp "any(.[]; $3)" >/dev/null; }

# last_json_record FILE MARK JQ_CONDITION: the last JSON record of FILE written
# since MARK that satisfies the condition, waiting up to 3 s for it (records may
# trail the response); empty output and status 1 if none came.
last_json_record() {
	wait_until 3 _json_record_has "$@" || return 1
	json_records "$1" "$2" | jq -c "select($3)" | tail -n 1
}

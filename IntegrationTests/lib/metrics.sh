# shellcheck shell=bash disable=SC2034  # the variables here are used by the case files
# Metrics, health and admin: Prometheus scrapes of the sidecar and the gateway.

# sidecar_scrape / gateway_scrape: the Prometheus text of the sidecar in sl-app /
# the gateway in sl-gw, as a scraper on the pod's own network would get it.
sidecar_scrape() { app curl -sS --max-time 5 http://127.0.0.1:15090/stats/prometheus; }
gateway_scrape() { gw curl -sS --max-time 5 http://127.0.0.1:15090/stats/prometheus; }

# metric_value NAME [LABEL=VALUE...] < SCRAPE: the sum of the samples of NAME
# whose labels include every LABEL="VALUE" (0 when there is none), as an integer.
metric_value() {
	local name=$1
	shift
	awk -v name="$name" -v want="$*" '
		/^#/ || NF < 2 { next }
		{
			series = $0; sub(/ [^ ]+$/, "", series)
			labels = ""; metric = series
			if ((i = index(series, "{")) > 0) {
				metric = substr(series, 1, i - 1)
				labels = "," substr(series, i + 1, length(series) - i - 1)
			}
			if (metric != name) next
			n = split(want, pairs, " ")
			for (j = 1; j <= n; j++) {
				eq = index(pairs[j], "=")
				needle = "," substr(pairs[j], 1, eq - 1) "=\"" substr(pairs[j], eq + 1) "\""
				if (index(labels, needle) == 0) next
			}
			sum += $NF
		}
		END { printf "%.0f\n", sum }'
}

# sidecar_metric / gateway_metric NAME [LABEL=VALUE...]: metric_value on a fresh
# scrape ("" when the scrape failed, so a dead endpoint never reads as 0).
sidecar_metric() {
	local text
	text=$(sidecar_scrape) || return 1
	metric_value "$@" <<<"$text"
}
gateway_metric() {
	local text
	text=$(gateway_scrape) || return 1
	metric_value "$@" <<<"$text"
}

# _metric_reaches SCOPE MIN NAME [LABEL=VALUE...]: SCOPE's metric is >= MIN
# (SCOPE is sidecar or gateway). Metrics may trail the response by a moment.
_metric_reaches() {
	local scope=$1 min=$2 value
	shift 2
	value=$("${scope}_metric" "$@") && [[ -n $value ]] && ((value >= min))
}

# check_metric_reaches DESC SCOPE MIN NAME [LABEL=VALUE...]: waits up to 3 s for
# the metric to reach MIN; on failure shows the matching lines of the scrape.
check_metric_reaches() {
	local desc=$1 scope=$2 min=$3
	shift 3
	if wait_until 3 _metric_reaches "$scope" "$min" "$@"; then
		pass "$desc"
	else
		fail "$desc" "$1{${*:2}} is '$("${scope}_metric" "$@")', expected >= $min; the scrape has:"
		indent "$("${scope}_scrape" 2>&1 | grep -F -- "$1")"
	fi
}

#!/usr/bin/env bash
# bench/dnsperf-services.sh: queries/s for a geo-routed service name with
# EDNS Client Subnet from many subnets: geodnsd's query path (the
# bench/servicesd harness: zones + geo + dnsserver, as the node assembles
# them) and gdnsd's geoip plugin (metafo failover underneath) on the same
# MaxMind database, one after the other on 127.0.0.1. See bench/README.md.
#
# Environment (all optional): SERVERS ("geodnsd gdnsd"), DURATION (10),
# WARMUP (2), ROUNDS (3), CLIENTS (16), THREADS (1), OUTSTANDING (1000),
# CORES (nproc), QUERIES (20000), CITY (testdata/geoip/GeoIP2-City-Test.mmdb),
# RESULTS (also write the table to this file).
# Exit status: 0 when every server ran and answered as expected, 1 otherwise.
set -euo pipefail

SERVERS=${SERVERS:-"geodnsd gdnsd"}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-16}
THREADS=${THREADS:-1}
OUTSTANDING=${OUTSTANDING:-1000}
CORES=${CORES:-$(nproc)}
NQUERIES=${QUERIES:-20000}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CITY=$(realpath "${CITY:-$ROOT/testdata/geoip/GeoIP2-City-Test.mmdb}")

die() { echo "dnsperf-services.sh: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
need dnsperf dnsperf
need dig bind9-dnsutils
need go golang
for s in $SERVERS; do
	case $s in
	geodnsd) ;;
	gdnsd) need gdnsd gdnsd ;;
	*) die "unknown server $s (geodnsd, gdnsd)" ;;
	esac
done
export PATH=$PATH:/usr/sbin:/sbin

WORK=$(mktemp -d /tmp/geodnsd-bench-svc.XXXXXX)
PGIDS=()
cleanup() {
	local pg
	for pg in "${PGIDS[@]}"; do stop_group "$pg"; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the zone, the harness and the queries ----------------------------------

(cd "$ROOT" && go build -o "$WORK/servicesd" ./bench/servicesd) || die "go build ./bench/servicesd failed"
# Queries: A (3/4) and AAAA (1/4) of www.example.com, each with ECS from a
# /24 (/48) of one of the database's networks, or one in five from a random
# public /24: thousands of distinct subnets, most located, Europe and not.
"$WORK/servicesd" -gen "$WORK/queries.bin" -city "$CITY" -n "$NQUERIES" || die "query generation failed"

zone_head() {
	echo '$ORIGIN example.com.'
	echo '$TTL 3600'
	echo '@ IN SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300'
	echo '@ IN NS ns1.example.com.'
	echo 'ns1 IN A 192.0.2.53'
}

start_geodnsd() { # PORT DIR
	local port=$1 dir=$2
	mkdir -p "$dir/zones"
	zone_head >"$dir/zones/example.com.zone" # www is the service
	start_bg "$dir/server.log" "$WORK/servicesd" -listen "127.0.0.1:$port" -zones "$dir/zones" \
		-city "$CITY" -sockets "$CORES"
}

start_gdnsd() { # PORT DIR
	local port=$1 dir=$2
	mkdir -p "$dir/zones" "$dir/run" "$dir/state"
	{
		zone_head
		echo 'www 30 DYNA geoip!www'
	} >"$dir/zones/example.com"
	cat >"$dir/config" <<EOF
options => {
  listen => [ 127.0.0.1 ]
  dns_port => $port
  udp_threads => $CORES
  tcp_threads => $CORES
  run_dir => "$dir/run"
  state_dir => "$dir/state"
  nsid_ascii => "bench"
  max_edns_response => 1232
}
plugins => {
  geoip => {
    maps => {
      svc => {
        geoip2_db => "$CITY"
        datacenters => [ dallas, london ]
        map => { EU => [ london, dallas ] }
      }
    }
    resources => {
      www => {
        map => svc
        dcmap => {
          dallas => { addrs_v4 => [ 192.0.2.10 ], addrs_v6 => [ "2001:db8::10" ] }
          london => { addrs_v4 => [ 203.0.113.10 ], addrs_v6 => [ "2001:db8::20" ] }
        }
      }
    }
  }
}
EOF
	gdnsd -c "$dir" checkconf >"$dir/checkconf.log" 2>&1 || { cat "$dir/checkconf.log" >&2; die "gdnsd checkconf failed"; }
	start_bg "$dir/server.log" gdnsd -c "$dir" start
}

# check_answers SERVER PORT: both servers give the same answers.
check_answers() {
	local s=$1 port=$2 got want sub
	for sub in "2.2.3.0/24 203.0.113.10" "81.2.69.142/32 203.0.113.10" "216.160.83.0/24 192.0.2.10" \
		"175.16.199.0/24 192.0.2.10" "2a02:ff80::/48 203.0.113.10" "8.8.8.0/24 192.0.2.10"; do
		set -- $sub
		got=$(dig +short +norec +subnet="$1" -p "$port" @127.0.0.1 www.example.com A)
		want=$2
		echo "$s www A ECS $1: $got $(dig +norec +subnet="$1" -p "$port" @127.0.0.1 www.example.com A | grep -o 'CLIENT-SUBNET: [^ ]*')" >>"$WORK/sanity.txt"
		[[ $got == "$want" ]] || die "$s: www.example.com A with ECS $1 answered '$got', want $want"
	done
}

run_dnsperf() { # PORT SECONDS OUT
	dnsperf -B -s 127.0.0.1 -p "$1" -d "$WORK/queries.bin" -l "$2" -c "$CLIENTS" -T "$THREADS" -q "$OUTSTANDING" >"$3" 2>&1 ||
		{ cat "$3" >&2; die "dnsperf failed"; }
}

declare -A RUNS LAT LOST NOERR
bench_one() { # SERVER ROUND
	local s=$1 round=$2 dir port pid qps
	dir=$WORK/$s-$round
	mkdir -p "$dir"
	port=$(free_port)
	"start_$s" "$port" "$dir"
	pid=$STARTED
	wait_ready "$s" "$pid" "$port" "$dir/server.log"
	if ((round == 1)); then check_answers "$s" "$port"; fi
	if ((WARMUP > 0)); then run_dnsperf "$port" "$WARMUP" "$dir/warmup.txt"; fi
	run_dnsperf "$port" "$DURATION" "$dir/dnsperf.txt"
	qps=$(awk '/Queries per second:/ {print $4}' "$dir/dnsperf.txt")
	[[ -n $qps ]] || { cat "$dir/dnsperf.txt" >&2; die "$s: no queries/s in dnsperf output"; }
	RUNS[$s]="${RUNS[$s]:-} $qps"
	LAT[$s]=$(awk '/Average Latency/ {gsub(/[(),]/, ""); printf "%.3f / %.3f", $4 * 1000, $8 * 1000}' "$dir/dnsperf.txt")
	LOST[$s]=$(awk '/Queries lost:/ {gsub(/[()]/, ""); print $4}' "$dir/dnsperf.txt")
	NOERR[$s]=$(awk '/Response codes:/ {gsub(/[(),]/, ""); for (i = 1; i < NF; i++) if ($i == "NOERROR") print $(i + 2)}' "$dir/dnsperf.txt")
	printf 'round %d %-8s %12.0f queries/s\n' "$round" "$s" "$qps" >&2
	stop_group "$pid"
	rm -rf "$dir"
}

echo "dnsperf-services.sh: $(nproc) cores; each server: $CORES threads/sockets; dnsperf -B -c $CLIENTS -T $THREADS -q $OUTSTANDING -l $DURATION; $NQUERIES queries (service name, ECS from many subnets); db $(basename "$CITY"); warm-up ${WARMUP}s; $ROUNDS round(s), servers interleaved"
for ((round = 1; round <= ROUNDS; round++)); do
	for s in $SERVERS; do bench_one "$s" "$round"; done
done

declare -A MED
{
	echo
	sed 's/^/  answers: /' "$WORK/sanity.txt"
	echo
	printf '%-8s %12s %21s %22s %7s %8s\n' server "queries/s" "(min-max of rounds)" "latency avg/max (ms)" lost NOERROR
	for s in $SERVERS; do
		# shellcheck disable=SC2086
		MED[$s]=$(median ${RUNS[$s]})
		range=$(printf '%s\n' ${RUNS[$s]} | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "(%.0f-%.0f)", lo, hi}')
		printf '%-8s %12.0f %21s %22s %7s %8s\n' "$s" "${MED[$s]}" "$range" "${LAT[$s]}" "${LOST[$s]}" "${NOERR[$s]}"
	done
	if [[ -n ${MED[geodnsd]:-} && -n ${MED[gdnsd]:-} ]]; then
		awk -v a="${MED[geodnsd]}" -v b="${MED[gdnsd]}" 'BEGIN { printf "ratio geodnsd/gdnsd = %.2f\n", a / b }'
	fi
} | tee ${RESULTS:+"$RESULTS"}

#!/usr/bin/env bash
# bench/dnsperf.sh: queries/s and CPU per query of geodnsd, gdnsd and NSD
# serving the same zone on loopback. Every server is started once; then in
# each round each is measured with dnsperf in turn. See bench/README.md.
#
# Environment (all optional):
#   SERVERS   servers to run, in order            (default: "geodnsd gdnsd nsd";
#             also "base", a second geodnsd build, and "floor", bench/udpfloor)
#   DURATION  seconds of measurement per server and round (default: 5)
#   WARMUP    seconds of unmeasured load first    (default: 2)
#   ROUNDS    rounds; servers interleaved; the median is reported (default: 5)
#   CLIENTS   dnsperf -c                          (default: 16)
#   THREADS   dnsperf -T                          (default: 1)
#   OUTSTANDING dnsperf -q                        (default: 1000)
#   EDNS      1: dnsperf -e (EDNS0 on every query) (default: 1)
#   CORES     threads/sockets of every server     (default: nproc; 1 with PIN=1)
#   PIN       1: server on CPU 0, dnsperf on CPU 1 (taskset) (default: 0)
#   GEODNSD_BIN  use this geodnsd binary instead of building ./cmd/geodnsd
#   FLOOR_IO  floor's -io: poller (geodnsd's design, the default) or block (gdnsd's)
#   GEODNSD_BASE a second geodnsd binary, run as server "base" (SERVERS="geodnsd base")
#   RESULTS   also write the table to this file
#   KEEP      keep each server's full dnsperf output in this directory
#   SYSCALLS  1: count the server's system calls during the measured run
#             with perf stat (tracepoints; needs perf: apt-get install -y linux-perf)
# Exit status: 0 when every server ran, 1 otherwise.
set -euo pipefail

SERVERS=${SERVERS:-"geodnsd gdnsd nsd"}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-5}
CLIENTS=${CLIENTS:-16}
THREADS=${THREADS:-1}
OUTSTANDING=${OUTSTANDING:-1000}
EDNS=${EDNS:-1}
PIN=${PIN:-0}
if [[ $PIN == 1 ]]; then
	CORES=${CORES:-1}
	SERVER_PIN=(taskset -c 0)
	CLIENT_PIN=(taskset -c 1)
else
	CORES=${CORES:-$(nproc)}
	SERVER_PIN=()
	CLIENT_PIN=()
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "dnsperf.sh: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

for v in ROUNDS DURATION WARMUP CLIENTS THREADS OUTSTANDING CORES; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v}: want a whole number"
done
for v in ROUNDS DURATION CLIENTS THREADS OUTSTANDING CORES; do
	((${!v} >= 1)) || die "$v=${!v}: want at least 1"
done
[[ " $SERVERS " == *" base "* || -z ${GEODNSD_BASE:-} ]] || echo "dnsperf.sh: GEODNSD_BASE is set but SERVERS has no base: it is not run" >&2
[[ " $SERVERS " == *" geodnsd "* ]] || echo "dnsperf.sh: SERVERS has no geodnsd: no ratios are printed" >&2
[[ -z ${FLOOR_IO:-} || $FLOOR_IO == poller || $FLOOR_IO == block ]] || die "FLOOR_IO=$FLOOR_IO: want poller or block"
[[ " $SERVERS " == *" floor "* || -z ${FLOOR_IO:-} ]] || echo "dnsperf.sh: FLOOR_IO is set but SERVERS has no floor: it is not run" >&2

need dnsperf dnsperf
if [[ $PIN == 1 ]]; then
	need taskset util-linux
	(($(nproc) >= 2)) || die "PIN=1 needs 2 CPUs"
fi
need dig bind9-dnsutils
SYSCALLS=${SYSCALLS:-0}
[[ $SYSCALLS == 1 ]] && need perf linux-perf
CLK_TCK=$(getconf CLK_TCK)
for s in $SERVERS; do
	case $s in
	geodnsd) [[ -n ${GEODNSD_BIN:-} ]] || need go golang ;;
	base) [[ -x ${GEODNSD_BASE:-} ]] || die "server base needs GEODNSD_BASE=path of a geodnsd binary" ;;
	floor) need go golang ;;
	gdnsd) need gdnsd gdnsd ;;
	nsd) need nsd nsd ;;
	*) die "unknown server $s (geodnsd, base, floor, gdnsd, nsd)" ;;
	esac
done
export PATH=$PATH:/usr/sbin:/sbin

WORK=$(mktemp -d /tmp/geodnsd-bench.XXXXXX)
PGIDS=()

cleanup() {
	local pg
	for pg in "${PGIDS[@]}"; do
		stop_group "$pg"
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the zone and the queries ------------------------------------------------

HOSTS=500
ZONE=$WORK/example.com.zone
{
	echo '$ORIGIN example.com.'
	echo '$TTL 3600'
	echo '@ IN SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300'
	echo '@ IN NS ns1.example.com.'
	echo '@ IN NS ns2.example.com.'
	echo '@ IN MX 10 mail.example.com.'
	echo '@ IN MX 20 mail2.example.com.'
	echo '@ IN A 192.0.2.1'
	echo '@ IN AAAA 2001:db8::1'
	echo 'ns1 IN A 192.0.2.53'
	echo 'ns2 IN A 192.0.2.54'
	echo 'mail IN A 192.0.2.25'
	echo 'mail2 IN A 192.0.2.26'
	echo 'www 300 IN A 192.0.2.10'
	echo 'www 300 IN AAAA 2001:db8::10'
	echo 'alias IN CNAME www'
	for ((i = 0; i < HOSTS; i++)); do
		printf 'host%d IN A 198.51.%d.%d\n' "$i" $((i / 250)) $((i % 250 + 1))
		printf 'host%d IN AAAA 2001:db8:1::%x\n' "$i" "$i"
	done
} >"$ZONE"

# Query mix, per 20 queries (the file repeats it 1000 times, 20000 lines):
#   8 A of an existing name      (www, hostN)
#   4 AAAA of an existing name   (www, hostN)
#   2 MX at the apex
#   3 A of a name that does not exist (NXDOMAIN)
#   2 A of the in-zone CNAME alias -> www
#   1 SOA at the apex
# and every name in 0x20 mixed case in one query out of four.
QUERIES=$WORK/queries.txt
awk -v hosts="$HOSTS" 'BEGIN {
	srand(20240101)
	for (r = 0; r < 1000; r++) {
		for (k = 0; k < 20; k++) {
			h = "host" int(rand() * hosts) ".example.com."
			if (k < 8)       { n = (k == 0 ? "www.example.com." : h); t = "A" }
			else if (k < 12) { n = (k == 8 ? "www.example.com." : h); t = "AAAA" }
			else if (k < 14) { n = "example.com."; t = "MX" }
			else if (k < 17) { n = "nx" int(rand() * 100000) ".example.com."; t = "A" }
			else if (k < 19) { n = "alias.example.com."; t = "A" }
			else             { n = "example.com."; t = "SOA" }
			if (rand() < 0.25) {
				m = ""
				for (i = 1; i <= length(n); i++) {
					c = substr(n, i, 1)
					m = m (rand() < 0.5 ? toupper(c) : c)
				}
				n = m
			}
			print n, t
		}
	}
}' >"$QUERIES"

# --- servers -------------------------------------------------------------------

start_geodnsd() { # PORT DIR
	local port=$1 dir=$2 bin=${GEODNSD_BIN:-}
	if [[ -z $bin ]]; then
		bin=$WORK/bin/geodnsd
		(cd "$ROOT" && mkdir -p "$WORK/bin" && go build -o "$bin" ./cmd/geodnsd) || die "go build ./cmd/geodnsd failed"
	fi
	mkdir -p "$dir/zones"
	cp "$ZONE" "$dir/zones/example.com.zone"
	cat >"$dir/geodnsd.toml" <<EOF
[node]
id = "bench"
[dns]
listen = ["127.0.0.1:$port"]
sockets_per_address = $CORES
[zones]
dir = "zones"
[http]
listen = "127.0.0.1:$(free_port)"
EOF
	"$bin" -check-config -config "$dir/geodnsd.toml" >"$dir/checkconf.log" 2>&1 ||
		{ cat "$dir/checkconf.log" >&2; die "geodnsd -check-config failed"; }
	start_bg "$dir/server.log" "$bin" -config "$dir/geodnsd.toml"
}

# base: another geodnsd binary (GEODNSD_BASE), to compare two builds side by side.
start_base() { # PORT DIR
	GEODNSD_BIN=$GEODNSD_BASE start_geodnsd "$@"
}

# floor: bench/udpfloor, geodnsd's UDP I/O answering every query with one
# fixed record and no DNS work (UDP only): what the I/O costs.
start_floor() { # PORT DIR
	local port=$1 dir=$2 bin=$WORK/bin/udpfloor
	(cd "$ROOT" && mkdir -p "$WORK/bin" && go build -o "$bin" ./bench/udpfloor) || die "go build ./bench/udpfloor failed"
	start_bg "$dir/server.log" "$bin" -listen "127.0.0.1:$port" -sockets "$CORES" ${FLOOR_IO:+-io "$FLOOR_IO"}
}

start_gdnsd() { # PORT DIR
	local port=$1 dir=$2
	mkdir -p "$dir/zones" "$dir/run" "$dir/state"
	cp "$ZONE" "$dir/zones/example.com" # gdnsd: the file name is the zone name
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
  experimental_no_chain => false
}
EOF
	gdnsd -c "$dir" checkconf >"$dir/checkconf.log" 2>&1 || { cat "$dir/checkconf.log" >&2; die "gdnsd checkconf failed"; }
	start_bg "$dir/server.log" gdnsd -c "$dir" start
}

start_nsd() { # PORT DIR
	local port=$1 dir=$2
	mkdir -p "$dir/zones"
	cp "$ZONE" "$dir/zones/example.com.zone"
	cat >"$dir/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1
  do-ip6: no
  port: $port
  server-count: $CORES
  reuseport: yes
  username: ""
  chroot: ""
  zonesdir: "$dir/zones"
  database: ""
  zonelistfile: "$dir/zone.list"
  xfrdfile: "$dir/xfrd.state"
  xfrdir: "$dir"
  pidfile: "$dir/nsd.pid"
  logfile: "$dir/server.log"
  verbosity: 0
  hide-version: yes
  identity: "bench"
  minimal-responses: yes
  refuse-any: no
  round-robin: no
  ipv4-edns-size: 1232
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  zonefiles-write: 0
remote-control:
  control-enable: no
zone:
  name: example.com
  zonefile: example.com.zone
EOF
	nsd-checkconf "$dir/nsd.conf" >"$dir/checkconf.log" 2>&1 ||
		{ cat "$dir/checkconf.log" >&2; die "nsd-checkconf failed"; }
	start_bg "$dir/server.log" nsd -d -c "$dir/nsd.conf"
}

# cpu_ticks PGID: user + system CPU time, in clock ticks, of every process
# in the group (/proc/PID/stat fields utime and stime, all threads). cat, not
# awk, opens the files: a process may end between the glob and the open, and
# mawk stops at a file it cannot open (and cat's status is ignored: pipefail).
cpu_ticks() {
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pg="$1" '{ sub(/^[0-9]+ \(.*\) /, ""); if ($3 == pg) t += $12 + $13 } END { print t + 0 }'
}

# group_pids PGID: the processes of the group, comma-separated (for perf -p).
group_pids() {
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pg="$1" '{ pid = $1; sub(/^[0-9]+ \(.*\) /, ""); if ($3 == pg) printf "%s%s", (n++ ? "," : ""), pid }'
}

# The system calls counted with SYSCALLS=1: the datagram calls of both
# servers' designs (batched and single), the poller's and the futex.
SYSCALL_EVENTS=(recvmmsg sendmmsg recvmsg sendmsg recvfrom sendto epoll_wait epoll_pwait futex nanosleep)

# run_dnsperf PORT SECONDS OUT
run_dnsperf() {
	local args=(-s 127.0.0.1 -p "$1" -d "$QUERIES" -l "$2" -c "$CLIENTS" -T "$THREADS" -q "$OUTSTANDING")
	[[ $EDNS == 1 ]] && args+=(-e)
	${CLIENT_PIN[@]+"${CLIENT_PIN[@]}"} dnsperf "${args[@]}" >"$3" 2>&1 || { cat "$3" >&2; die "dnsperf failed"; }
}

KEEP=${KEEP:-} # a directory: keep each server's dnsperf output there
declare -A RUNS LAT LOST NOERR NXD CPU CALLS

declare -A PORT PID

# start_one SERVER: start it, check its answers, warm it up. Every server
# runs from here to the end, idle while another is measured.
start_one() {
	local s=$1 dir port
	dir=$WORK/$s
	mkdir -p "$dir"
	port=$(free_port)
	"start_$s" "$port" "$dir"
	PORT[$s]=$port
	PID[$s]=$STARTED
	wait_ready "$s" "$STARTED" "$port" "$dir/server.log"
	for q in "www.example.com A" "alias.example.com A" "example.com MX" "nx1.example.com A"; do # the answers to the mix, for the record
		echo "$s $q: $(dig +short +norec -p "$port" @127.0.0.1 $q | tr '\n' ' ')$(dig +norec -p "$port" @127.0.0.1 $q | grep -o 'status: [A-Z]*')" >>"$WORK/sanity.txt"
	done
	if ((WARMUP > 0)); then
		run_dnsperf "$port" "$WARMUP" "$dir/warmup.txt"
	fi
}

# measure_one SERVER ROUND: one measured run against the running server.
measure_one() {
	local s=$1 round=$2 qps dir=$WORK/$1 port=${PORT[$1]} pid=${PID[$1]}
	local perfpid="" t0 t1 done
	if [[ $SYSCALLS == 1 ]]; then
		local ev=() e
		for e in "${SYSCALL_EVENTS[@]}"; do ev+=(-e "syscalls:sys_enter_$e"); done
		ev+=(-e raw_syscalls:sys_enter)
		perf stat -x, "${ev[@]}" -p "$(group_pids "$pid")" -o "$dir/perf.txt" -- sleep "$((DURATION + 1))" >/dev/null 2>&1 &
		perfpid=$!
	fi
	t0=$(cpu_ticks "$pid")
	run_dnsperf "$port" "$DURATION" "$dir/dnsperf.txt"
	t1=$(cpu_ticks "$pid")
	qps=$(awk '/Queries per second:/ {print $4}' "$dir/dnsperf.txt")
	[[ -n $qps ]] || { cat "$dir/dnsperf.txt" >&2; die "$s: no queries/s in dnsperf output"; }
	done=$(awk '/Queries completed:/ {print $3}' "$dir/dnsperf.txt")
	RUNS[$s]="${RUNS[$s]:-} $qps"
	# CPU per answered query, in microseconds: the server's CPU time over
	# the measured run divided by the queries dnsperf saw answered.
	CPU[$s]="${CPU[$s]:-} $(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$done" 'BEGIN { printf "%.3f", (n > 0 ? t / hz * 1e6 / n : 0) }')"
	if [[ -n $perfpid ]]; then
		wait "$perfpid" || true
		# perf stat -x, lines: count,,event,...; per query.
		CALLS[$s]=$(awk -F, -v n="$done" '$3 ~ /sys_enter/ { e = $3; sub(/.*sys_enter_?/, "", e); if (e == "") e = "all"; if ($1 + 0 > 0) printf "%s%s %.3f", (k++ ? ", " : ""), e, $1 / n }' "$dir/perf.txt")
		echo "round $round $s system calls per answered query: ${CALLS[$s]}" >&2
	fi
	LAT[$s]=$(awk '/Average Latency/ {gsub(/[(),]/, ""); printf "%.3f / %.3f", $4 * 1000, $8 * 1000}' "$dir/dnsperf.txt")
	LOST[$s]=$(awk '/Queries lost:/ {gsub(/[()]/, ""); print $4}' "$dir/dnsperf.txt")
	NOERR[$s]=$(awk '/Response codes:/ {gsub(/[(),]/, ""); for (i = 1; i < NF; i++) if ($i == "NOERROR") print $(i + 2)}' "$dir/dnsperf.txt")
	NXD[$s]=$(awk '/Response codes:/ {gsub(/[(),]/, ""); for (i = 1; i < NF; i++) if ($i == "NXDOMAIN") print $(i + 2)}' "$dir/dnsperf.txt")
	if [[ -n $KEEP ]]; then
		mkdir -p "$KEEP"
		cp "$dir/dnsperf.txt" "$KEEP/dnsperf-$s-$round.txt"
	fi
	printf 'round %d %-8s %12.0f queries/s %8.3f µs CPU/query\n' "$round" "$s" "$qps" "${CPU[$s]##* }" >&2
}

echo "dnsperf.sh: $(nproc) cores$([[ $PIN == 1 ]] && echo ", server pinned to CPU 0, dnsperf to CPU 1"); each server: $CORES thread(s)/socket(s)$([[ " $SERVERS " == *" floor "* ]] && echo ", floor's I/O ${FLOOR_IO:-poller}"); dnsperf -c $CLIENTS -T $THREADS -q $OUTSTANDING -l $DURATION$([[ $EDNS == 1 ]] && echo " -e"); warm-up ${WARMUP}s; $ROUNDS round(s), servers interleaved"
for s in $SERVERS; do
	start_one "$s"
done
for ((round = 1; round <= ROUNDS; round++)); do
	for s in $SERVERS; do
		measure_one "$s" "$round"
	done
done

declare -A MED
{
	echo
	sed 's/^/  answers: /' "$WORK/sanity.txt"
	echo
	printf '%-8s %12s %21s %14s %22s %7s %8s %9s\n' server "queries/s" "(min-max of rounds)" "µs CPU/query" "latency avg/max (ms)" lost NOERROR NXDOMAIN
	declare -A CMED
	for s in $SERVERS; do
		# shellcheck disable=SC2086
		MED[$s]=$(median ${RUNS[$s]})
		# shellcheck disable=SC2086
		CMED[$s]=$(median ${CPU[$s]})
		range=$(printf '%s\n' ${RUNS[$s]} | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "(%.0f-%.0f)", lo, hi}')
		printf '%-8s %12.0f %21s %14.3f %22s %7s %8s %9s\n' "$s" "${MED[$s]}" "$range" "${CMED[$s]}" "${LAT[$s]}" "${LOST[$s]}" "${NOERR[$s]}" "${NXD[$s]}"
	done
	if [[ $SYSCALLS == 1 ]]; then
		echo
		echo "system calls per answered query (last round; all = every system call):"
		for s in $SERVERS; do
			printf '  %-8s %s\n' "$s" "${CALLS[$s]}"
		done
	fi
	if [[ -n ${MED[geodnsd]:-} ]]; then
		for peer in base floor gdnsd nsd; do
			if [[ -n ${MED[$peer]:-} ]]; then
				awk -v a="${MED[geodnsd]}" -v b="${MED[$peer]}" -v p="$peer" 'BEGIN { printf "ratio geodnsd/%s = %.2f queries/s\n", p, a / b }'
				# shellcheck disable=SC2086
				awk -v a="${CMED[geodnsd]}" -v b="${CMED[$peer]}" -v p="$peer" 'BEGIN { if (a > 0) printf "ratio %s/geodnsd = %.2f CPU per query (above 1: geodnsd uses less)\n", p, b / a }'
				# per-round ratios: the servers ran one after the other in
				# each round, so a ratio compares like with like on a machine
				# whose speed drifts; their median is the figure to quote.
				# shellcheck disable=SC2086
				r=$(paste -d' ' <(printf '%s\n' ${RUNS[geodnsd]}) <(printf '%s\n' ${RUNS[$peer]}) | awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 / $2 }')
				# shellcheck disable=SC2086
				c=$(paste -d' ' <(printf '%s\n' ${CPU[$peer]}) <(printf '%s\n' ${CPU[geodnsd]}) | awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), ($2 > 0 ? $1 / $2 : 0) }')
				# shellcheck disable=SC2086
				echo "  per round geodnsd/$peer queries/s: $r (median $(median $r))"
				# shellcheck disable=SC2086
				echo "  per round $peer/geodnsd CPU per query: $c (median $(median $c))"
			fi
		done
	fi
	if [[ -n ${MED[gdnsd]:-} && -n ${MED[nsd]:-} ]]; then
		awk -v a="${MED[gdnsd]}" -v b="${MED[nsd]}" 'BEGIN { printf "ratio gdnsd/nsd = %.2f\n", a / b }'
	fi
} | tee ${RESULTS:+"$RESULTS"}

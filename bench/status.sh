#!/usr/bin/env bash
# bench/status.sh: is the public status JSON cheap to poll? (issue 11 part 6)
#
# Starts one geodnsd node (the demo configuration deploy/examples/demo/
# geodnsd.toml: services cas and www over two sites, probing its own
# listeners) on free ports of 127.0.0.1, with the public rate limit OFF
# (status_rate = 0: with the default 10 requests/s per client address, wrk
# would measure 429s), and in one run measures:
#
#   1. wrk on /status.json, every reply 200 (no If-None-Match): requests/s;
#   2. wrk on /status.json with If-None-Match set to the last ETag seen
#      (each wrk thread tracks it, so a state change costs one 200): 304s/s;
#   3. dnsperf alone: DNS queries/s;
#   4. dnsperf while wrk polls /status.json (200s) as hard as it can;
#   5. dnsperf while wrk polls with If-None-Match (304s) as hard as it can;
#   6. the control: dnsperf while wrk polls /healthz (a few bytes, no
#      document) as hard as it can: what any HTTP load costs the DNS side on
#      this machine, so that 4 and 5 can be told apart from plain CPU sharing.
#
# and prints a table: requests/s (with the count of 200, 304 and other
# replies), queries/s, and the ratio of 4, 5 and 6 to 3. Everything runs on the
# same machine: wrk, dnsperf and geodnsd share the CPUs, as they would on a
# nameserver that serves its own status page.
#
# Environment (all optional): DURATION (10, seconds per phase), WRK_THREADS
# (2), WRK_CONNS (32), DNS_CLIENTS (8), OUTSTANDING (200), GEODNSD_BIN
# (default: go build ./cmd/geodnsd), RESULTS (also write the table to this
# file), KEEP (keep the work directory: logs, wrk and dnsperf output).
# Needs: apt-get install -y wrk dnsperf curl bind9-dnsutils.
# Exit status: 0 when every phase ran and answered as expected, 1 otherwise.
set -euo pipefail

DURATION=${DURATION:-10}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
DNS_CLIENTS=${DNS_CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-200}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "status.sh: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: apt-get install -y $2"; }
need wrk wrk
need dnsperf dnsperf
need curl curl
need dig bind9-dnsutils

WORK=$(mktemp -d /tmp/geodnsd-bench-status.XXXXXX)
PGID=
cleanup() {
	if [[ -n $PGID ]]; then stop_group "$PGID"; fi
	if [[ -n ${KEEP:-} ]]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the node -----------------------------------------------------------------

if [[ -n ${GEODNSD_BIN:-} ]]; then
	BIN=$GEODNSD_BIN
else
	(cd "$ROOT" && go build -o "$WORK/geodnsd" ./cmd/geodnsd) || die "go build ./cmd/geodnsd failed"
	BIN=$WORK/geodnsd
fi
DNS_PORT=$(free_port)
HTTP_PORT=$(free_port)
while [[ $HTTP_PORT == "$DNS_PORT" ]]; do HTTP_PORT=$(free_port); done
mkdir -p "$WORK/node"
cp -r "$ROOT/deploy/examples/demo/zones" "$WORK/node/"
# The demo's ports (its probes aim at them too), and the public limit off.
sed -e "s/127\.0\.0\.1:5353/127.0.0.1:$DNS_PORT/g" \
	-e "s/127\.0\.0\.1:8053/127.0.0.1:$HTTP_PORT/g" \
	-e 's/^\[http\]$/[http]\nstatus_rate = 0                 # bench\/status.sh: no public rate limit/' \
	"$ROOT/deploy/examples/demo/geodnsd.toml" >"$WORK/node/geodnsd.toml"
grep -q '^status_rate = 0' "$WORK/node/geodnsd.toml" || die "could not turn status_rate off in the demo config"
"$BIN" -check-config -config "$WORK/node/geodnsd.toml" >/dev/null || die "the edited demo config does not validate"

setsid "$BIN" -config "$WORK/node/geodnsd.toml" >"$WORK/geodnsd.log" 2>&1 &
PGID=$!
URL=http://127.0.0.1:$HTTP_PORT/status.json
ready=
for ((i = 0; i < 300; i++)); do
	kill -0 "$PGID" 2>/dev/null || { cat "$WORK/geodnsd.log" >&2; die "geodnsd exited"; }
	if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz") == 200 ]] &&
		curl -s "$URL" | grep -q '"quorum": *true' &&
		dig +short +norecurse +time=1 +tries=1 -p "$DNS_PORT" @127.0.0.1 cas.example.com A | grep -q '^192\.0\.2\.'; then
		ready=1
		break
	fi
	sleep 0.1
done
[[ -n $ready ]] || { tail -20 "$WORK/geodnsd.log" >&2; die "geodnsd not ready after 30 s"; }
# The status document must be the real one (schema 1, services) and 304 must work.
body=$(curl -s "$URL")
grep -q '"schema": *1,' <<<"$body" && grep -q '"name": *"cas"' <<<"$body" || die "status.json is not the expected document: ${body:0:200}"
etag=$(curl -s -D - -o /dev/null "$URL" | awk 'tolower($1) == "etag:" {sub(/\r$/, "", $2); print $2}')
[[ -n $etag ]] || die "no ETag on status.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$URL")
[[ $code == 304 ]] || echo "status.sh: note: If-None-Match with the current ETag gave $code (the state changed in between?)" >&2

# --- the loads ------------------------------------------------------------------

cat >"$WORK/status.lua" <<'EOF'
-- wrk script: mode "200" sends plain GETs; mode "304" sends If-None-Match
-- with the last ETag this thread saw. Counts replies by status.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  mode = args[1] or "200"
  c200, c304, cother = 0, 0, 0
  etag = nil
end
function request()
  if mode == "304" and etag then
    return wrk.format("GET", nil, {["If-None-Match"] = etag})
  end
  return wrk.format("GET")
end
function response(status, headers, body)
  if status == 200 then
    c200 = c200 + 1
    etag = headers["Etag"] or headers["ETag"] or headers["etag"] or etag
  elseif status == 304 then
    c304 = c304 + 1
  else
    cother = cother + 1
  end
end
function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("c200"); b = b + t:get("c304"); c = c + t:get("cother")
  end
  io.write(string.format("replies: 200=%d 304=%d other=%d\n", a, b, c))
end
EOF

# Queries: the service names (answered from the routing state) and static data.
for ((i = 0; i < 100; i++)); do
	printf '%s\n' "cas.example.com A" "www.example.com A" "owa.example.com A" "autodiscover.example.com A" \
		"mail.example.com A" "example.com MX" "example.com SOA" "ns1.example.com A" "x$i.apps.example.com A" "nx$i.example.com A"
done >"$WORK/queries.txt"

run_wrk() { # MODE SECONDS OUT [URL]
	wrk -t "$WRK_THREADS" -c "$WRK_CONNS" -d "${2}s" --latency -s "$WORK/status.lua" "${4:-$URL}" -- "$1" >"$3" 2>&1 ||
		{ cat "$3" >&2; die "wrk failed"; }
}
run_dnsperf() { # OUT
	dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/queries.txt" -l "$DURATION" -c "$DNS_CLIENTS" -q "$OUTSTANDING" >"$1" 2>&1 ||
		{ cat "$1" >&2; die "dnsperf failed"; }
}
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
replies() { awk '/^replies:/ {print $2, $3, $4}' "$1"; }
qps() { awk '/Queries per second:/ {print $4}' "$1"; }
lost() { awk '/Queries lost:/ {gsub(/[()]/, ""); print $4}' "$1"; }

echo "geodnsd on 127.0.0.1 (dns :$DNS_PORT, http :$HTTP_PORT), status_rate = 0; $DURATION s per phase; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "1/6 wrk 200" >&2
run_wrk 200 "$DURATION" "$WORK/wrk200.txt"
echo "2/6 wrk 304" >&2
run_wrk 304 "$DURATION" "$WORK/wrk304.txt"
echo "3/6 dnsperf alone" >&2
run_dnsperf "$WORK/dns-alone.txt"
for m in 200 304 healthz; do
	case $m in
	200) echo "4/6 dnsperf while wrk polls status.json (200)" >&2 ;;
	304) echo "5/6 dnsperf while wrk polls status.json (304)" >&2 ;;
	healthz) echo "6/6 dnsperf while wrk polls /healthz (control)" >&2 ;;
	esac
	if [[ $m == healthz ]]; then
		run_wrk 200 $((DURATION + 2)) "$WORK/wrk-during-$m.txt" "http://127.0.0.1:$HTTP_PORT/healthz" &
	else
		run_wrk "$m" $((DURATION + 2)) "$WORK/wrk-during-$m.txt" &
	fi
	wpid=$!
	sleep 1 # wrk at full load before dnsperf starts
	run_dnsperf "$WORK/dns-with-$m.txt"
	wait "$wpid" || die "wrk (during dnsperf) failed"
done

# --- the table --------------------------------------------------------------------

q0=$(qps "$WORK/dns-alone.txt")
[[ -n $q0 ]] || { cat "$WORK/dns-alone.txt" >&2; die "no queries/s in dnsperf output"; }
ok=0
{
	echo "geodnsd status.json and DNS under load — $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "wrk -t$WRK_THREADS -c$WRK_CONNS, dnsperf -c$DNS_CLIENTS -q$OUTSTANDING, ${DURATION}s each, status_rate = 0 (public rate limit off)"
	echo
	printf '%-42s %14s  %s\n' "phase" "per second" "detail"
	printf '%-42s %14s  %s\n' "status.json 200 (wrk)" "$(rps "$WORK/wrk200.txt")" "$(replies "$WORK/wrk200.txt")"
	printf '%-42s %14s  %s\n' "status.json 304 If-None-Match (wrk)" "$(rps "$WORK/wrk304.txt")" "$(replies "$WORK/wrk304.txt")"
	printf '%-42s %14s  %s\n' "DNS alone (dnsperf)" "$q0" "lost $(lost "$WORK/dns-alone.txt")"
	for m in 200 304 healthz; do
		q=$(qps "$WORK/dns-with-$m.txt")
		label="DNS while wrk polls status.json ($m)"
		[[ $m == healthz ]] && label="DNS while wrk polls /healthz (control)"
		printf '%-42s %14s  %s\n' "$label" "$q" \
			"lost $(lost "$WORK/dns-with-$m.txt"), $(awk -v a="$q" -v b="$q0" 'BEGIN {printf "%.2f", a / b}') × alone; wrk meanwhile $(rps "$WORK/wrk-during-$m.txt")/s ($(replies "$WORK/wrk-during-$m.txt"))"
	done
} | tee ${RESULTS:+"$RESULTS"}
for f in "$WORK"/wrk*.txt; do
	if ! grep -q '^replies: 200=[0-9]* 304=[0-9]* other=0$' "$f"; then
		echo "status.sh: $(basename "$f"): replies other than 200/304: $(replies "$f")" >&2
		ok=1
	fi
done
exit $ok

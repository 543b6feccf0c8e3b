# bench/lib.sh: helpers shared by the bench scripts (sourced, not run).
# The sourcing script defines die MESSAGE (print and exit 1) first, and
# the array PGIDS before it calls start_bg.

# stop_group PGID: SIGTERM to a process group we started, then SIGKILL
# after 10 s. Only our own groups, by id.
stop_group() {
	local pg=$1 i
	kill -TERM -- "-$pg" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 -- "-$pg" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL -- "-$pg" 2>/dev/null || true
}

# free_port: a port that no UDP or TCP socket uses (checked with ss), below
# the kernel's ephemeral range so that no client connection takes it later.
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((15000 + RANDOM % 17000))
		if [[ -z $(ss -Hanut "sport = :$p" 2>/dev/null) ]]; then
			echo "$p"
			return 0
		fi
	done
	die "no free port"
}

# need BIN PACKAGE: BIN is on PATH or in /usr/sbin, else die naming PACKAGE.
need() {
	command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 ]] || die "$1 not found: apt-get install -y $2"
}

# start_bg LOG CMD...: starts CMD (under SERVER_PIN when the script sets it)
# in its own session/process group (setsid without job control execs in
# place: $! is the pgid), sets STARTED to it and adds it to PGIDS.
start_bg() {
	local log=$1
	shift
	setsid ${SERVER_PIN[@]+"${SERVER_PIN[@]}"} "$@" >"$log" 2>&1 </dev/null &
	STARTED=$!
	PGIDS+=("$STARTED")
}

# wait_ready NAME PID PORT LOG: polls the SOA of example.com until it is
# answered, 30 s at most; dies with LOG's tail when PID exits first.
wait_ready() {
	local name=$1 pid=$2 port=$3 log=$4 i
	for ((i = 0; i < 300; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -20 "$log" >&2
			die "$name exited before answering"
		fi
		# the SOA, or bench/udpfloor's one answer to everything
		if dig +short +norec +time=1 +tries=1 -p "$port" @127.0.0.1 example.com SOA 2>/dev/null | grep -qE 'hostmaster|^192\.0\.2\.10$'; then
			return 0
		fi
		sleep 0.1
	done
	tail -20 "$log" >&2
	die "$name not answering on 127.0.0.1:$port after 30 s"
}

# median of the numbers given
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }

# bench/lib.sh: helpers shared by the bench scripts (sourced, not run).
# The sourcing script defines die MESSAGE (print and exit 1) first.

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

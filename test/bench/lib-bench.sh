# lib-bench.sh: what test/bench/bench.sh and test/bench/measure-cache.sh share: the
# processes they start (recorded in PIDS, stopped by PID), CPU pinning, and
# readings of a process and of test/bench/benchup.  Sourced after TMP is set;
# installs the EXIT cleanup.
#
# benchup and dnsperf run on CPU 0, the server under test on CPU 1, when
# there are 2 CPUs and taskset; ON_CLIENT and ON_SERVER are the prefixes.

PIDS=()

# ==== Processes ===============================================================

# alive PID: true while PID exists and is not a zombie.
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# forget PID: drop a reaped PID from PIDS, so it is never signalled again.
forget() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# stop PID: TERM, up to 5 s, then KILL; reap; forget it.
stop() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 50); do
		alive "$pid" || break
		sleep 0.1
	done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	forget "$pid"
}

cleanup() {
	local p
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do
		stop "$p"
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ] && command -v taskset >/dev/null
then
	ON_CLIENT=(taskset -c 0)
	ON_SERVER=(taskset -c 1)
	PINNING="benchup and dnsperf pinned to CPU 0, the server to CPU 1"
else
	ON_CLIENT=()
	ON_SERVER=()
	PINNING="no CPU pinning (fewer than 2 CPUs or no taskset)"
fi

# spawn LOG CMD...: start CMD in the background, stdout and stderr to LOG;
# its PID is left in SPAWNED.
spawn() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 </dev/null &
	SPAWNED=$!
	PIDS+=("$SPAWNED")
}

# listen_port PID LOG NAME: wait up to 5 s for "NAME: listening on
# 127.0.0.1:PORT" in LOG and print PORT.
listen_port() {
	local pid=$1 log=$2 name=$3 i port
	for i in $(seq 50); do
		port=$(sed -n "s/^$name: listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p" \
		    "$log" | head -n 1)
		if [ -n "$port" ]; then
			echo "$port"
			return 0
		fi
		alive "$pid" || return 1
		sleep 0.1
	done
	return 1
}

# free_port: a port free for both UDP and TCP on 127.0.0.1.
free_port() {
	python3 "$ROOT/test/free-port.py"
}

# answers PID PORT: true once a query through 127.0.0.1:PORT gets NOERROR
# and benchup's 192.0.2.1; tries for up to about 10 s.  On failure the last
# status is left in LAST_STATUS.
answers() {
	local pid=$1 port=$2 i out=
	LAST_STATUS=
	for i in $(seq 20); do
		if ! alive "$pid"; then
			LAST_STATUS="exited"
			return 1
		fi
		out=$(dig @127.0.0.1 -p "$port" "check$i.bench.test" A \
		    +time=1 +tries=1 +noall +comments +answer 2>&1)
		case $out in
		*"status: NOERROR"*192.0.2.1*)
			return 0 ;;
		esac
		sleep 0.25
	done
	LAST_STATUS=$(echo "$out" | sed -n 's/.*\(status: [A-Z]*\).*/\1/p')
	: "${LAST_STATUS:=no reply}"
	return 1
}

# need_tools SCRIPT TOOL...: exit 1, saying which, if a TOOL is missing.
need_tools() {
	local script=$1 tool
	shift
	for tool in "$@"; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "$script: $tool missing" >&2
			exit 1
		fi
	done
}

# usr1_wait PID LOG PATTERN: SIGUSR1 to PID, then wait up to 5 s for one
# more line matching PATTERN in LOG (dnsfwd's counters).
usr1_wait() {
	local pid=$1 log=$2 pat=$3 before i
	before=$(grep -c "$pat" "$log")
	kill -USR1 "$pid"
	for ((i = 0; i < 50; i++)); do
		[ "$(grep -c "$pat" "$log")" -gt "$before" ] && return 0
		sleep 0.1
	done
	return 1
}

# ==== Peers ==================================================================
#
# start_dnsmasq, start_unbound: the peer on a free port (FWD_PORT, FWD_PID),
# forwarding everything to benchup (UPPORT), on the server CPU.  dnsmasq's
# cache is DNSMASQ_CACHE entries (bench.sh runs it at 0 and 10000);
# unbound's caches are its defaults.

start_dnsmasq() {
	FWD_PORT=$(free_port) && [ -n "$FWD_PORT" ] || return 1
	# -C /dev/null: no /etc/dnsmasq.conf; no DHCP is configured.
	spawn "$TMP/dnsmasq.log" "${ON_SERVER[@]}" dnsmasq -k -C /dev/null \
	    --no-resolv --no-hosts --no-poll -u root -8 /dev/null \
	    -x "$TMP/dnsmasq.pid" --listen-address=127.0.0.1 \
	    --bind-interfaces -p "$FWD_PORT" -c "$DNSMASQ_CACHE" \
	    -S "127.0.0.1#$UPPORT"
	FWD_PID=$SPAWNED
}

start_unbound() {
	FWD_PORT=$(free_port) && [ -n "$FWD_PORT" ] || return 1
	cat >"$TMP/unbound.conf" <<EOF
server:
	interface: 127.0.0.1@$FWD_PORT
	port: $FWD_PORT
	do-ip6: no
	num-threads: 1
	so-reuseport: no
	chroot: ""
	username: ""
	directory: "$TMP"
	pidfile: ""
	do-daemonize: no
	use-syslog: no
	logfile: ""
	verbosity: 0
	module-config: "iterator"
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
	# test. is an RFC 6761 name unbound answers NXDOMAIN itself by default.
	local-zone: "test." nodefault
remote-control:
	control-enable: no
forward-zone:
	name: "."
	forward-addr: 127.0.0.1@$UPPORT
EOF
	if command -v unbound-checkconf >/dev/null &&
	    ! unbound-checkconf "$TMP/unbound.conf" >"$TMP/unbound.log" 2>&1
	then
		return 1
	fi
	spawn "$TMP/unbound.log" "${ON_SERVER[@]}" unbound -d -p \
	    -c "$TMP/unbound.conf"
	FWD_PID=$SPAWNED
}

# ==== Readings ================================================================

# cpu_ticks PID: utime + stime of all its threads, in clock ticks.
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# kib PID FIELD: a /proc/PID/status field (VmRSS, VmHWM) in KiB.
kib() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# upstream_count: queries benchup (BENCHUP_PID, log $TMP/benchup.log) has
# answered so far, asked by SIGUSR1; empty if it does not say in 5 s.
upstream_count() {
	local before i n
	before=$(grep -c 'queries answered' "$TMP/benchup.log")
	kill -USR1 "$BENCHUP_PID"
	for i in $(seq 50); do
		n=$(grep -c 'queries answered' "$TMP/benchup.log")
		if [ "$n" -gt "$before" ]; then
			sed -n 's/^benchup: \([0-9]*\) queries answered$/\1/p' \
			    "$TMP/benchup.log" | tail -n 1
			return 0
		fi
		sleep 0.1
	done
	echo ""
}

#!/usr/bin/env bash
# t-fault-tcp.sh: TCP clients that connect and never send, or send half a
# message and stop.  While they hang on, dnsfwd must serve UDP and other
# TCP clients with the right answer, not spin, and close them once they
# have been idle for its TCP idle timeout (10 s, RFC 7766 6.2.3), so its
# fds come back.  Two rounds; the second must not grow the RSS by more
# than 2 MiB.  Then the --max-tcp cap: when idle clients hold every slot a
# new TCP client is answered (the idlest is closed for it, counted), UDP
# goes on, and a freed slot is usable at once.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-fault.sh
. "$(dirname "$0")/lib-fault.sh"
need dig bind9-dnsutils

IDLE=20		# connect, send nothing
HALF=20		# half a message: 10 with 2 of 29 bytes, 10 with 1 length byte
IDLE_S=10	# dnsfwd's TCP_IDLE_MS

start_fakeup up '* answer 192.0.2.1'
# --max-tcp 100: the 40 hanging clients of one source are within its
# share (half the table; the shares are t-tcp-fair.sh's)
start_dnsfwd -R -q -s "127.0.0.1#$up_port" --max-tcp 100
q warm.fault.test +tcp
eq "setup: TCP answer" "$ANSWER" 192.0.2.1
q warm-udp.fault.test	# and the UDP socket pool's first socket, kept
base=$(nfds "$DNSFWD_PID")

FDS=()

# hang_on N HOW: N connections to dnsfwd from this shell, kept in FDS;
# HOW: idle, half (length 29, then 2 bytes), len1 (one length byte).
hang_on()
{
	local i fd

	for ((i = 0; i < $1; i++)); do
		exec {fd}<>"/dev/tcp/$DNSFWD_ADDR/$DNSFWD_PORT" || return 1
		case $2 in
		half) printf '\000\035\022\064' >&"$fd" ;;
		len1) printf '\000' >&"$fd" ;;
		esac
		FDS+=("$fd")
	done
}

# closed_by_peer: how many of FDS read end-of-file (or a reset) now.
closed_by_peer()
{
	local fd n=0 _x

	for fd in "${FDS[@]}"; do
		read -r -t 0.05 -N 1 -u "$fd" _x 2>/dev/null
		[ $? -eq 1 ] && n=$((n + 1))
	done
	echo "$n"
}

drop_all()
{
	local fd

	for fd in "${FDS[@]}"; do
		exec {fd}>&-
	done
	FDS=()
}

tcp_round()
{
	local r=$1 t0 t1 c0 c1 n=$((IDLE + HALF))

	hang_on "$IDLE" idle
	hang_on $((HALF / 2)) half
	hang_on $((HALF / 2)) len1
	eq "round $r: $n hanging clients connected" "${#FDS[@]}" "$n"
	t0=$(date +%s)
	wait_for 10 fds_are $((base + n))
	eq "round $r: dnsfwd accepted them all (fds)" \
	    "$(nfds "$DNSFWD_PID")" $((base + n))

	q "u$r.fault.test"
	eq "round $r: UDP answered meanwhile" "$ANSWER" 192.0.2.1
	q "t$r.fault.test" +tcp
	eq "round $r: a new TCP client answered meanwhile" "$ANSWER" 192.0.2.1
	lt "round $r: ... at once (ms)" "$MS" 1000
	if [ -x "$ROOT/test/dnsq" ]; then
		out=$("$ROOT/test/dnsq" -t -w 3000 "$DNSFWD_ADDR" \
		    "$DNSFWD_PORT" "$("$ROOT/test/dnsq" -m 1 "p1-$r.fault.test")" \
		    "$("$ROOT/test/dnsq" -m 2 "p2-$r.fault.test")" \
		    "$("$ROOT/test/dnsq" -m 3 "p3-$r.fault.test")")
		eq "round $r: three pipelined TCP queries answered" \
		    "$(grep -c '^rcode=NOERROR .* an=1 ' <<<"$out")" 3 ||
		    diag "$out"
	else
		skip "pipelined TCP queries: test/dnsq missing" "make test/dnsq"
	fi
	c0=$(cpu_ticks "$DNSFWD_PID")
	sleep 1		# the measurement window
	c1=$(cpu_ticks "$DNSFWD_PID")
	lt "round $r: no spinning while they hang on (CPU ticks in 1 s)" \
	    $((c1 - c0)) 5

	# Bounded: the idle timeout plus 5 s.
	wait_for $((IDLE_S + 20)) fds_are "$base"
	t1=$(date +%s)
	eq "round $r: dnsfwd closed them all (its fds back to $base)" \
	    "$(nfds "$DNSFWD_PID")" "$base"
	ge "round $r: ... not before the idle timeout (s)" $((t1 - t0)) \
	    $((IDLE_S - 1))
	eq "round $r: every hanging client saw the close" \
	    "$(closed_by_peer)" "$n"
	drop_all
	q "after$r.fault.test" +tcp
	eq "round $r: TCP answers afterwards" "$ANSWER" 192.0.2.1
	ok "round $r: dnsfwd alive" _alive "$DNSFWD_PID"
}

tcp_round 1
rss1=$(rss "$DNSFWD_PID")
tcp_round 2
rss_flat "hanging TCP clients" "$rss1" "$(rss "$DNSFWD_PID")"
stop_dnsfwd
eq "SIGTERM: exit status 0" "$DNSFWD_STATUS" 0

# ---- the --max-tcp cap ------------------------------------------------------

start_dnsfwd -R -q -s "127.0.0.1#$up_port" --max-tcp 8
base=$(nfds "$DNSFWD_PID")
# eight sources (one may hold half the table), idle for up to 30 s
idlers=()
for i in 2 3 4 5 6 7 8 9; do
	"$ROOT/test/dnsq" -t -w 30000 -b "127.0.0.$i" "$DNSFWD_ADDR" \
	    "$DNSFWD_PORT" '' >/dev/null 2>&1 &
	idlers+=("$!")
	track_pid "$!"
done
wait_for 10 fds_are $((base + 8))
eq "max-tcp 8: eight idle clients hold every slot" "$(nfds "$DNSFWD_PID")" \
	$((base + 8))
q full.fault.test +tcp +time=2
eq "max-tcp 8: a ninth TCP client is answered (the idlest is closed)" \
	"$RCODE $ANSWER" "NOERROR 192.0.2.1"
lt "max-tcp 8: ... within a second (ms)" "$MS" 1000
lt "max-tcp 8: still at most eight clients held (fds)" \
	"$(nfds "$DNSFWD_PID")" $((base + 9))
q full.fault.test
eq "max-tcp 8: UDP still answered" "$ANSWER" 192.0.2.1
counters
ge "max-tcp 8: the eviction is counted" "$(counter 'tcp evicted')" 1 ||
	diag "$COUNTERS"
for p in "${idlers[@]}"; do
	kill -TERM "$p" 2>/dev/null
	wait "$p" 2>/dev/null
done
wait_for 10 fds_are "$base"
q free.fault.test +tcp
eq "max-tcp 8: once clients leave, TCP answers at once" "$ANSWER" 192.0.2.1
stop_dnsfwd
eq "max-tcp 8: SIGTERM: exit status 0" "$DNSFWD_STATUS" 0

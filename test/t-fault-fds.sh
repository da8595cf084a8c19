#!/usr/bin/env bash
# t-fault-fds.sh: fd exhaustion.  dnsfwd runs under a low "ulimit -n"
# (through DNSFWD_WRAP), following a resolv file that names 127.0.41.1
# (answers 192.0.2.1); 127.0.41.2 answers 192.0.2.2.  Then more TCP clients
# connect than it has fds left.  While it is out of fds:
#  - it stays alive; UDP queries get the right answer (the upstream sockets
#    are open); the clients it cannot take are counted;
#  - it says so once, not every 100 ms, and does not spin (CPU over 1 s);
#  - a query on a TCP connection it did accept gets an answer or SERVFAIL
#    (there may be no fd for the upstream connection), not silence;
#  - the resolv file is rewritten (to 127.0.41.2, then back).
# Once the clients leave: a TCP client that waited in the backlog is
# answered or closed (not left to time out), the fds come back, and the
# rewrite is honoured: it must not be lost because the file could not be
# opened when it changed.  Two limits: 64 with the default --max-tcp (the
# issue's case), and 256 with --max-tcp 1024, where the fds, not the
# connection cap, run out first.  Two rounds each; the second must not
# grow the RSS by more than 2 MiB.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-fault.sh
. "$(dirname "$0")/lib-fault.sh"
need dig bind9-dnsutils
need python3 python3
fault_net 127.0.41
if [ ! -x "$ROOT/test/dnsq" ]; then
	skip "$SCRIPT: test/dnsq missing" "make test/dnsq"
	exit 0
fi

EXTRA=16	# clients beyond the fds left

fakeup_at a1 127.0.41.1:53 '* answer 192.0.2.1'
fakeup_at a2 127.0.41.2:53 '* answer 192.0.2.2'

FDS=()
HOLDER=
# close_fds: this shell's connections closed (a subshell: its copies)
close_fds()
{
	local fd

	for fd in "${FDS[@]}"; do
		exec {fd}>&-
	done
	FDS=()
}
drop_all()
{
	close_fds
	if [ -n "$HOLDER" ]; then
		kill -TERM "$HOLDER" 2>/dev/null
		wait "$HOLDER" 2>/dev/null
		_untrack_pid "$HOLDER"
		HOLDER=
	fi
}

# hold_from N: N connections to dnsfwd held open by a helper, spread over
# the sources 127.0.0.2-5 (one source may hold only half the TCP table),
# until drop_all; its pid in HOLDER.
hold_from()
{
	: >"$T/holder.out"	# not the last round's "open" (a race)
	python3 - "$DNSFWD_ADDR" "$DNSFWD_PORT" "$1" >"$T/holder.out" 2>&1 <<'PY' &
import socket, sys, time
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(n):
    try:
        socks.append(socket.create_connection((addr, port), timeout=5,
                     source_address=("127.0.0.%d" % (2 + i % 4), 0)))
        print("connected", len(socks), flush=True)
    except OSError:
        pass
print("open", len(socks), flush=True)
time.sleep(60)
PY
	HOLDER=$!
	track_pid "$HOLDER"
	wait_for 60 grep -q '^open' "$T/holder.out"
}

# fds_full: dnsfwd's fds stopped growing (or it died).
fds_full()
{
	local a

	_alive "$DNSFWD_PID" || return 0
	a=$(nfds "$DNSFWD_PID")
	sleep 0.2	# the same count 0.2 s apart: it stopped growing
	[ "$(nfds "$DNSFWD_PID")" -eq "$a" ] && [ "$a" -gt "$base" ]
}

# hex2bin HEX: the bytes, as printf escapes.
hex2bin()
{
	sed 's/[^0-9a-fA-F]//g; s/../\\x&/g' <<<"$1"
}

# tcp_ask FD ID NAME: one query on an open connection; RCODE of the reply
# in TCP_RCODE (TIMEOUT when none within 3 s).
tcp_ask()
{
	local fd=$1 hex len out

	hex=$("$ROOT/test/dnsq" -m "$2" "$3" | tr -d ' :.')
	len=$((${#hex} / 2))
	# shellcheck disable=SC2059  # the format is the message
	printf "\\x00\\x$(printf %02x "$len")$(hex2bin "$hex")" >&"$fd"
	out=$(timeout 3 dd bs=4096 count=1 <&"$fd" 2>/dev/null | od -An -tx1 |
	    tr -d ' \n')
	case ${out:11:1} in
	'') TCP_RCODE=TIMEOUT ;;
	0) TCP_RCODE=NOERROR ;;
	2) TCP_RCODE=SERVFAIL ;;
	*) TCP_RCODE=rcode${out:11:1} ;;
	esac
}

fds_round()
{
	local r=$1 new=$2 oldip=$3 newip=$4 i fd n c0 c1 pq lines

	n=$((LIMIT - base + EXTRA))
	lines=$(grep -c 'accept: ' "$DNSFWD_ERR")
	# half from four other sources first, the newest from this shell's
	hold_from $((n / 2))
	for ((i = n / 2; i < n; i++)); do
		exec {fd}<>"/dev/tcp/$DNSFWD_ADDR/$DNSFWD_PORT" || break
		FDS+=("$fd")
	done
	eq "round $r: $n TCP clients connected" \
	    $((${#FDS[@]} + $(sed -n 's/^open //p' "$T/holder.out" |
	    grep . || echo 0))) "$n" || diag "holder: $(tail -n 3 "$T/holder.out" | tr "\n" " ")"
	wait_for 10 fds_full
	ok "round $r: dnsfwd alive with more clients than fds" \
	    _alive "$DNSFWD_PID" || { drop_all; return 1; }
	ge "round $r: dnsfwd took clients until it ran out" \
	    "$(nfds "$DNSFWD_PID")" $((base + 8))
	diag "dnsfwd holds $(nfds "$DNSFWD_PID") fds of $LIMIT"
	counters
	ge "round $r: the clients it could not take are counted (refused, evicted, over a share)" \
	    $(($(counter 'refused (tcp full)') + $(counter 'tcp evicted') +
	    $(counter 'tcp over share'))) 1 ||
	    diag "$COUNTERS"

	q "u$r.fault.test"
	eq "round $r: out of fds: UDP still answered" "$ANSWER" "$oldip"
	c0=$(cpu_ticks "$DNSFWD_PID")
	sleep 1		# the measurement window
	c1=$(cpu_ticks "$DNSFWD_PID")
	lt "round $r: out of fds: no spinning (CPU ticks in 1 s)" \
	    $((c1 - c0)) 10
	# this shell's first: the other sources' (older) were closed to
	# admit it, and this source's newest are over its share
	tcp_ask "${FDS[0]}" 7 "t$r.fault.test"
	match "round $r: out of fds: TCP query on an accepted connection: answer or SERVFAIL, not silence" \
	    "$TCP_RCODE" '^(NOERROR|SERVFAIL)$'
	lt "round $r: out of fds: said once, not every 100 ms (lines)" \
	    $(($(grep -c 'accept: ' "$DNSFWD_ERR") - lines)) 2

	# A client in the listen backlog, and the rewrite, while out of fds.
	# (It must not inherit FDS: they would stay open after drop_all.)
	(
		close_fds
		exec "$ROOT/test/dnsq" -t -w 8000 "$DNSFWD_ADDR" \
		    "$DNSFWD_PORT" "$("$ROOT/test/dnsq" -m 9 "b$r.fault.test")"
	) >"$T/backlog.out" 2>&1 &
	pq=$!
	track_pid "$pq"
	printf 'nameserver %s\n' "$new" >"$T/resolv.tmp"
	mv -f "$T/resolv.tmp" "$T/resolv.conf"
	sleep 0.5	# the scenario: the rewrite is seen while out of fds
	q "m$r.fault.test"
	diag "while out of fds, after the rewrite: $ANSWER ($RCODE)"
	eq "round $r: out of fds: UDP still answered after the rewrite" \
	    "$RCODE" NOERROR

	drop_all
	wait_for 20 fds_are "$base"
	eq "round $r: the clients gone, dnsfwd's fds back to $base" \
	    "$(nfds "$DNSFWD_PID")" "$base" ||
	    diag "$(find "/proc/$DNSFWD_PID/fd" -mindepth 1 -printf '%f %l\n' \
	    2>/dev/null | sort -n | tail -n 4)" \
	    "$(ss -tanp 2>/dev/null | grep "pid=$DNSFWD_PID," |
	    grep -v LISTEN | head -n 5)"
	wait "$pq"
	_untrack_pid "$pq"
	match "round $r: the TCP client from the backlog: answered or closed, not left to time out" \
	    "$(cat "$T/backlog.out")" '^(rcode=NOERROR .* an=1 |closed)'
	ok "round $r: the rewrite made while out of fds is honoured" \
	    wait_for 10 answers "after$r.fault.test" "$newip"
	q "tcp$r.fault.test" +tcp
	eq "round $r: TCP answers again" "$RCODE" NOERROR
	ok "round $r: dnsfwd alive" _alive "$DNSFWD_PID"
}

# under_limit LIMIT [DNSFWD-ARGS...]: start dnsfwd under ulimit -n LIMIT,
# run two rounds, stop it.
under_limit()
{
	LIMIT=$1
	shift
	printf 'nameserver 127.0.41.1\n' >"$T/resolv.conf"
	printf 'ulimit -n %d || exit 1\nexec "$@"\n' "$LIMIT" >"$T/limit.sh"
	DNSFWD_WRAP="bash $T/limit.sh ${DNSFWD_WRAP:-}" \
	    start_dnsfwd -q -r "$T/resolv.conf" -t 500 "$@"
	eq "limit $LIMIT: dnsfwd runs with an fd limit of $LIMIT" \
	    "$(awk '/^Max open files/ { print $4 }' \
	    "/proc/$DNSFWD_PID/limits")" "$LIMIT"
	q "warm$LIMIT.fault.test"
	eq "limit $LIMIT: answer from 127.0.41.1" "$ANSWER" 192.0.2.1
	base=$(nfds "$DNSFWD_PID")
	diag "dnsfwd holds $base fds at rest"
	w0=$(wakeups "$DNSFWD_PID")
	sleep 2		# the measurement window
	lt "limit $LIMIT: idle, dnsfwd sleeps (wakeups in 2 s)" \
	    $(($(wakeups "$DNSFWD_PID") - w0)) 10

	if ! fds_round "$LIMIT.1" 127.0.41.2 192.0.2.1 192.0.2.2; then
		stop_dnsfwd
		diag "$(tail -n 3 "$DNSFWD_ERR")" "exit status $DNSFWD_STATUS"
		return 1
	fi
	rss1=$(rss "$DNSFWD_PID")
	# Round 2 starts from 127.0.41.2 even if round 1's rewrite was
	# lost, so that its own rewrite back is what is measured.
	kill -HUP "$DNSFWD_PID"
	wait_for 10 answers "hup$LIMIT.fault.test" 192.0.2.2
	fds_round "$LIMIT.2" 127.0.41.1 192.0.2.2 192.0.2.1
	rss_flat "limit $LIMIT" "$rss1" "$(rss "$DNSFWD_PID")"
	stop_dnsfwd
	eq "limit $LIMIT: SIGTERM: exit status 0" "$DNSFWD_STATUS" 0
}

under_limit 64
under_limit 256 --max-tcp 1024

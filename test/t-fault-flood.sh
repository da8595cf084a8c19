#!/usr/bin/env bash
# t-fault-flood.sh: a 20,000-query flood from one source at a black-hole
# upstream (one that never answers).  The source may hold half the
# in-flight table (--max-queries, 4096); beyond its share new queries must
# get REFUSED at once, and those in the table SERVFAIL when the upstream's
# -t runs out: every one of the 20,000 gets an answer (dnsperf: zero lost),
# SERVFAIL or REFUSED.  Meanwhile a cached name is still answered and
# queries from another source routed to a healthy upstream get the answer
# or SERVFAIL, never silence.  Afterwards the table drains (in flight 0) and
# the upstream, once it answers again, is used at once.  Two rounds: the
# second must not grow the RSS by more than 2 MiB.
#
# It measures what dnsfwd still serves with the machine's CPUs busy with
# the flood itself, so it runs with no other script beside it:
# test: alone
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-fault.sh
. "$(dirname "$0")/lib-fault.sh"
need dnsperf dnsperf
need perl perl-base
need ss iproute2

N=20000
QPS=10000

start_fakeup bh '* drop'
start_fakeup good '* answer 192.0.2.1'
start_dnsfwd -R -q -s "127.0.0.1#$bh_port" -s "/ok.test/127.0.0.1#$good_port"

q cached.ok.test
eq "setup: a name cached from the healthy upstream" "$ANSWER" 192.0.2.1
# A busy machine can deschedule dnsfwd for tens of ms: at 10,000 qps the
# kernel's default receive queue (about 300 queries) overflowed and queries
# were lost before dnsfwd saw them.  The listener asks for 1 MiB.
rb=$(ss -Hnuml "sport = :$DNSFWD_PORT" 2>/dev/null |
    sed -n 's/.*skmem:(r[0-9]*,rb\([0-9]*\),.*/\1/p' | head -n 1)
ge "setup: the UDP listener's receive buffer holds 1 MiB of queries" \
    "${rb:-0}" 1048576

flood_round()
{
	local r=$1 pf t0 t1

	set_rules bh '* drop'
	names "$T/names.$r" "$N" "bh$r"
	# The healthy route, at a modest rate, during the whole flood.
	perl "$T/flood.pl" -b 127.0.0.2 -d 3500 -r 200 -t 3000 \
	    -f "r$r-%d.ok.test" \
	    "$DNSFWD_ADDR" "$DNSFWD_PORT" >"$T/ok.out" 2>&1 &
	pf=$!
	track_pid "$pf"
	t0=$(date +%s%N)
	P_OUT=$T/perf.$r.out
	PERF_LIMIT=60 perf "$DNSFWD_PORT" "$T/names.$r" -n 1 -q "$N" \
	    -Q "$QPS" -t 5 -c 8 &
	local pp=$!
	track_pid "$pp"
	# the flood is on once the black hole has been asked a hundred
	wait_for 30 eval "[ \"\$(grep -c ' bh$r-' \"\$T/bh.log\")\" -ge 100 ]"
	q cached.ok.test
	eq "round $r: a cached name is answered during the flood" \
	    "$ANSWER" 192.0.2.1
	wait "$pp"
	_untrack_pid "$pp"
	t1=$(date +%s%N)
	perf_parse	# perf ran in a subshell
	eq "round $r: dnsperf sent all $N" "${P_SENT:-0}" "$N" || perf_diag
	eq "round $r: zero lost (every query answered within 5 s)" \
	    "${P_LOST:-?}" 0 || perf_diag
	eq "round $r: every answer SERVFAIL or REFUSED (over its share)" \
	    "$(rcodes_sum SERVFAIL REFUSED)" "$N" || perf_diag
	ge "round $r: most REFUSED: one source holds half the table at most" \
	    "$(rcodes_sum REFUSED)" $((N / 2)) || perf_diag
	lt "round $r: the flood took less than 15 s" \
	    "$(((t1 - t0) / 1000000000))" 15
	wait "$pf"
	_untrack_pid "$pf"
	flood_result "$(cat "$T/ok.out")"
	flood_clean "round $r: healthy route during the flood" 1
	ge "round $r: the other source was served (percent answered)" \
	    $((${F_OK:-0} * 100 / (${F_SENT:-0} + 1))) 90 || diag "$FLOOD"
	ok "round $r: dnsfwd alive" _alive "$DNSFWD_PID"
	counters
	eq "round $r: in-flight table drained" "$(counter 'in flight')" 0 ||
	    diag "$COUNTERS"
	ge "round $r: the source's share taken, refused (counted)" \
	    "$(counter 'over share')" 1 || diag "$COUNTERS"
	set_rules bh '* answer 192.0.2.1'
	q "after$r.fault.test"
	eq "round $r: the upstream answers again: answer" "$ANSWER" 192.0.2.1
	lt "round $r: ... at once, though it is in backoff (ms)" "$MS" 1000
}


# rcodes_sum RCODE...: how many of dnsperf's answers had one of them.
rcodes_sum()
{
	local n=0 rc c

	for rc in "$@"; do
		c=$(sed -n "s/.*$rc \([0-9]*\) .*/\1/p" <<<"$P_RCODES")
		n=$((n + ${c:-0}))
	done
	echo "$n"
}

flood_init
flood_round 1
rss1=$(rss "$DNSFWD_PID")
flood_round 2
rss_flat "black-hole flood" "$rss1" "$(rss "$DNSFWD_PID")"

stop_dnsfwd
eq "SIGTERM: exit status 0" "$DNSFWD_STATUS" 0

#!/usr/bin/env bash
# t-fault-upstream.sh: upstreams that fail under load.  Each case runs
# twice with a checking client (flood: every reply's ID, question and
# answer checked): the first round warms dnsfwd's tables up, the second
# must not grow its RSS by more than 2 MiB.
#
# Setup: dnsfwd -s sick -s good (the sequential policy: sick first), and
# a split route /solo.test/ to sick alone.  good and sick answer the same
# 192.0.2.1 whenever they answer, so any other answer is wrong.
#  1. sick dies (SIGKILL) with queries in flight, then comes back: the
#     default list answers everything from good; solo.test gets the answer
#     or SERVFAIL, never silence.
#  2. sick answers garbage (a reply that does not parse, with the query's
#     ID), then a wrong ID, then a wrong question: the same.
#  3. sick flaps every 100 ms: killed and restarted on its port, then
#     switching between answering and dropping: the same.
#  4. ICMP errors from a dead upstream, while queries that timed out at
#     another are sent on to a healthy one: those must all get the answer
#     (an error pending on the shared socket is not the healthy one's).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-fault.sh
. "$(dirname "$0")/lib-fault.sh"
need perl perl-base

RATE=400		# qps per client
TMO=400			# dnsfwd -t
CLIENT_TMO=3000		# flood -t: far above TMO x 2 upstreams

# sick is restarted on its port: an address of this script's own (lib.sh)
fault_net 127.0.45
SICK=127.0.45.1
fakeup_at good 127.0.0.1:0 '* answer 192.0.2.1'
fakeup_at sick "$SICK:53" '* delay 200 answer 192.0.2.1'
start_dnsfwd -R -q -t "$TMO" -s "$SICK" \
	-s "127.0.0.1#$good_port" -s "/solo.test/$SICK"

q first.fault.test
eq "setup: dnsfwd answers" "$ANSWER" 192.0.2.1

# both_floods DESC MS: flood the default list and solo.test for MS ms at
# once; the default list must answer everything, solo.test may SERVFAIL.
both_floods()
{
	local desc=$1 ms=$2 solo

	perl "$T/flood.pl" -d "$ms" -r "$RATE" -t "$CLIENT_TMO" \
	    -f "s$RANDOM-%d.solo.test" "$DNSFWD_ADDR" "$DNSFWD_PORT" \
	    >"$T/solo.out" 2>&1 &
	solo=$!
	track_pid "$solo"
	flood "$DNSFWD_PORT" -d "$ms" -r "$RATE" -t "$CLIENT_TMO"
	flood_clean "$desc, default list" 0
	wait "$solo"
	_untrack_pid "$solo"
	flood_result "$(cat "$T/solo.out")"
	flood_clean "$desc, sick alone (solo.test)" 1
	ok "$desc: dnsfwd alive" _alive "$DNSFWD_PID"
}


flood_init

# ---- 1. death with queries in flight ----------------------------------------

death_round()
{
	local r=$1 killer

	# Kill sick 600 ms into a 1.5 s flood: ~120 queries are waiting on
	# its 200 ms delay.
	( sleep 0.6; kill -KILL "$sick_pid" ) &
	killer=$!
	both_floods "death $r" 1500
	{ wait "$killer"; wait "$sick_pid"; } 2>/dev/null	# no "Killed"
	_untrack_pid "$sick_pid"
	ge "death $r: sick was asked before it died" "$(asked sick)" 1
	# The dead port refuses (ICMP): a network error must not cost the
	# timeout, so queries are answered by good quickly.
	flood "$DNSFWD_PORT" -n 200 -r "$RATE" -t "$CLIENT_TMO"
	flood_clean "death $r: sick dead, default list" 0
	lt "death $r: sick dead costs no timeout (max ms)" "${F_MAXMS:-9999}" \
	    "$TMO"
	flood "$DNSFWD_PORT" -n 50 -r "$RATE" -t "$CLIENT_TMO" \
	    -f "d$RANDOM-%d.solo.test"
	eq "death $r: sick dead, solo.test: SERVFAIL" "$F_SERVFAIL" 50 ||
	    diag "$FLOOD"
	fakeup_at sick "$SICK:53"
	q "back$r.solo.test"
	eq "death $r: sick back: solo.test answered again" "$ANSWER" 192.0.2.1
}

death_round 1
rss1=$(rss "$DNSFWD_PID")
death_round 2
rss_flat "death" "$rss1" "$(rss "$DNSFWD_PID")"

# ---- 2. garbage ---------------------------------------------------------------

garbage_round()
{
	local r=$1 kind

	for kind in garbage badid badq; do
		case $kind in
		garbage) set_rules sick '* garbage' ;;
		*) set_rules sick "* $kind answer 192.0.2.66" ;;
		esac
		both_floods "$kind $r" 1000
	done
	set_rules sick '* delay 200 answer 192.0.2.1'
	q "back$r.solo.test"
	eq "garbage $r: sick sane again: solo.test answered" "$ANSWER" \
	    192.0.2.1
}

garbage_round 1
counters
ge "garbage: malformed or foreign replies counted" \
	"$(counter 'unmatched replies')" 1 || diag "$COUNTERS"
rss1=$(rss "$DNSFWD_PID")
garbage_round 2
rss_flat "garbage" "$rss1" "$(rss "$DNSFWD_PID")"

# ---- 3. flapping every 100 ms ---------------------------------------------

# flap_kill SECONDS: kill sick and start it again on its port, 100 ms
# down, 100 ms up, for SECONDS and at least 10 cycles (a busy machine
# restarts fakeup more slowly; 10 s more at most).  Runs in this shell (it
# owns the PIDs), while the floods run in the background.
flap_kill()
{
	local end=$((SECONDS + $1)) n=0

	while { [ "$SECONDS" -lt "$end" ] || [ "$n" -lt 10 ]; } &&
	    [ "$SECONDS" -lt $((end + 10)) ] && [ "$n" -lt 100 ]; do
		kill_fakeup sick
		sleep 0.1
		fakeup_at sick "$SICK:53"
		sleep 0.1
		n=$((n + 1))
	done
	FLAPS=$n
}

# flap_rules SECONDS: sick answers for 100 ms, drops for 100 ms (cycles
# as flap_kill).
flap_rules()
{
	local end=$((SECONDS + $1)) n=0

	while { [ "$SECONDS" -lt "$end" ] || [ "$n" -lt 10 ]; } &&
	    [ "$SECONDS" -lt $((end + 10)) ] && [ "$n" -lt 100 ]; do
		set_rules sick '* drop'
		sleep 0.1
		set_rules sick '* answer 192.0.2.1'
		sleep 0.1
		n=$((n + 1))
	done
	FLAPS=$n
}

flap_round()
{
	local r=$1 how pf ps

	for how in kill rules; do
		perl "$T/flood.pl" -d 4000 -r "$RATE" -t "$CLIENT_TMO" \
		    "$DNSFWD_ADDR" "$DNSFWD_PORT" >"$T/def.out" 2>&1 &
		pf=$!
		perl "$T/flood.pl" -d 4000 -r "$RATE" -t "$CLIENT_TMO" \
		    -f "f$RANDOM-%d.solo.test" "$DNSFWD_ADDR" \
		    "$DNSFWD_PORT" >"$T/solo.out" 2>&1 &
		ps=$!
		track_pid "$pf"
		track_pid "$ps"
		"flap_$how" 4
		wait "$pf" "$ps"
		_untrack_pid "$pf"
		_untrack_pid "$ps"
		ge "flap $how $r: sick flapped (cycles)" "$FLAPS" 10
		flood_result "$(cat "$T/def.out")"
		flood_clean "flap $how $r, default list" 0
		flood_result "$(cat "$T/solo.out")"
		flood_clean "flap $how $r, sick alone (solo.test)" 1
		ok "flap $how $r: dnsfwd alive" _alive "$DNSFWD_PID"
	done
	set_rules sick '* delay 200 answer 192.0.2.1'
	# A flapping upstream may be in backoff; it is still tried when
	# it is the only one.
	q "back$r.solo.test"
	eq "flap $r: sick steady again: solo.test answered" "$ANSWER" \
	    192.0.2.1
}

flap_round 1
rss1=$(rss "$DNSFWD_PID")
flap_round 2
rss_flat "flap" "$rss1" "$(rss "$DNSFWD_PID")"

counters
diag "$COUNTERS"
q last.fault.test
eq "dnsfwd still answers at the end" "$ANSWER" 192.0.2.1
eq "dnsfwd: no SERVFAIL from the table being full" \
	"$(counter 'refused (table full)')" 0
stop_dnsfwd
eq "SIGTERM: exit status 0" "$DNSFWD_STATUS" 0

# ---- 4. one upstream's ICMP errors must not fail another's queries ----------
#
# dead.test goes to a closed port (ICMP port unreachable, queued on the
# shared upstream sockets with IP_RECVERR), 3000 qps.  The default list is
# black, which drops everything, then good: each time black's backoff runs
# out, the queries of the next 200 ms time out together and are sent on to
# good from the timer path, in bursts.  Every one must get good's answer:
# an ICMP error pending for dead.test's port is not good's failure.

fakeup_at black 127.0.0.1:0 '* drop'
fakeup_at dead 127.0.0.1:0
kill_fakeup dead
start_dnsfwd -R -q -t 200 -s "127.0.0.1#$black_port" \
	-s "127.0.0.1#$good_port" -s "/dead.test/127.0.0.1#$dead_port"
perl "$T/flood.pl" -d 4000 -r 3000 -f "x$RANDOM-%d.dead.test" \
    "$DNSFWD_ADDR" "$DNSFWD_PORT" >"$T/dead.out" 2>&1 &
pd=$!
track_pid "$pd"
flood "$DNSFWD_PORT" -d 4000 -r 1000 -t "$CLIENT_TMO"
flood_clean "icmp: timed-out queries sent on to good" 0
wait "$pd"
_untrack_pid "$pd"
flood_result "$(cat "$T/dead.out")"
eq "icmp: the dead port's queries: SERVFAIL" "${F_SERVFAIL:-?}" \
    "${F_SENT:-0}" || diag "$FLOOD"
lt "icmp: ... at once (max ms)" "${F_MAXMS:-9999}" 150 || diag "$FLOOD"
counters
ge "icmp: black timed out (bursts sent on)" \
	"$(sed -n "s/.*upstream 127\\.0\\.0\\.1#$black_port: .*timeouts \\([0-9]*\\).*/\\1/p" \
	<<<"$COUNTERS")" 100 || diag "$COUNTERS"
eq "icmp: no network error charged to good" \
	"$(sed -n "s/.*upstream 127\\.0\\.0\\.1#$good_port: .*errors \\([0-9]*\\).*/\\1/p" \
	<<<"$COUNTERS")" 0 || diag "$COUNTERS"

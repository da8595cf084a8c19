#!/usr/bin/env bash
# t-policy.sh: the sequential policy of the contract, "Choosing the answer": the
# first positive answer wins, negatives fall through and the best one is
# returned (NODATA over NXDOMAIN, else the last), failures move on at once,
# a network error costs no timeout, a timed-out upstream is marked down
# and never waited on again while others answer, only probed; and
# --parallel, which gives the same answers.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils

# Each name has its own scenario; up1 is asked first, up2 second.  Answers
# from up1 are 192.0.2.1x, from up2 192.0.2.2x.
start_fakeup up1 \
	'pos.test answer 192.0.2.11' \
	'nx-pos.test nxdomain' \
	'nd-pos.test nodata' \
	'nx-nd.test nxdomain ttl=11 min=11' \
	'nd-nx.test nodata ttl=11 min=11' \
	'nx-nx.test nxdomain ttl=11 min=11' \
	'nx-sf.test nxdomain ttl=11 min=11' \
	'sf.test servfail' \
	'rf.test refused' \
	'fe.test formerr' \
	'ni.test notimp' \
	'junk.test garbage' \
	'sf-rf.test servfail' \
	'rf-junk.test refused'
start_fakeup up2 \
	'pos.test answer 192.0.2.21' \
	'nx-pos.test answer 192.0.2.22' \
	'nd-pos.test answer 192.0.2.23' \
	'nx-nd.test nodata ttl=22 min=22' \
	'nd-nx.test nxdomain ttl=22 min=22' \
	'nx-nx.test nxdomain ttl=22 min=22' \
	'nx-sf.test servfail' \
	'sf.test answer 192.0.2.24' \
	'rf.test answer 192.0.2.25' \
	'fe.test answer 192.0.2.26' \
	'ni.test answer 192.0.2.27' \
	'junk.test answer 192.0.2.28' \
	'sf-rf.test refused' \
	'rf-junk.test garbage' \
	'dsf.test servfail'

start_dnsfwd -R -c 0 -t 1500 -s "127.0.0.1#$up1_port" -s "127.0.0.1#$up2_port"

# 1. positive from the first: returned, the second not asked.
q pos.test
eq "positive first: NOERROR" "$RCODE" NOERROR
eq "positive first: up1's answer" "$ANSWER" 192.0.2.11
eq "positive first: up1 asked once" "$(asked up1 pos.test)" 1
eq "positive first: up2 not asked" "$(asked up2 pos.test)" 0

# 2. negative then positive: the positive, both asked.
q nx-pos.test
eq "NXDOMAIN then positive: NOERROR" "$RCODE" NOERROR
eq "NXDOMAIN then positive: up2's answer" "$ANSWER" 192.0.2.22
eq "NXDOMAIN then positive: up1 asked" "$(asked up1 nx-pos.test)" 1
eq "NXDOMAIN then positive: up2 asked" "$(asked up2 nx-pos.test)" 1
q nd-pos.test
eq "NODATA then positive: up2's answer" "$ANSWER" 192.0.2.23
eq "NODATA then positive: both asked" \
	"$(asked up1 nd-pos.test) $(asked up2 nd-pos.test)" "1 1"

# 3. negatives only: NODATA over NXDOMAIN (the name exists somewhere),
# else the last.
q nx-nd.test
eq "NXDOMAIN then NODATA: NOERROR (the last, NODATA)" "$RCODE" NOERROR
eq "NXDOMAIN then NODATA: no answer" "$ANSWER" ""
eq "NXDOMAIN then NODATA: SOA in authority" "$AUTHORITY" SOA
eq "NXDOMAIN then NODATA: up2's SOA (ttl 22)" "$TTL" 22
q nd-nx.test
eq "NODATA then NXDOMAIN: NOERROR (NODATA outranks NXDOMAIN)" "$RCODE" \
	NOERROR
eq "NODATA then NXDOMAIN: up1's SOA (ttl 11)" "$TTL" 11
eq "NODATA then NXDOMAIN: both asked" \
	"$(asked up1 nd-nx.test) $(asked up2 nd-nx.test)" "1 1"
q nx-nx.test
eq "NXDOMAIN twice: NXDOMAIN" "$RCODE" NXDOMAIN
eq "NXDOMAIN twice: the last one's SOA (ttl 22)" "$TTL" 22
eq "NXDOMAIN twice: both asked" \
	"$(asked up1 nx-nx.test) $(asked up2 nx-nx.test)" "1 1"
q nx-sf.test
eq "NXDOMAIN then SERVFAIL: the negative is kept" "$RCODE" NXDOMAIN
eq "NXDOMAIN then SERVFAIL: up1's SOA (ttl 11)" "$TTL" 11

# 4. a failure from the first: the next is asked at once.
for f in sf:SERVFAIL:24 rf:REFUSED:25 fe:FORMERR:26 ni:NOTIMP:27 \
    junk:garbage:28; do
	IFS=: read -r name what last <<<"$f"
	q "$name.test"
	eq "$what from up1: up2's answer" "$ANSWER" "192.0.2.$last"
	eq "$what from up1: both asked" \
		"$(asked up1 "$name.test") $(asked up2 "$name.test")" "1 1"
	lt "$what from up1: no timeout waited (ms)" "$MS" 700
done

# 5. every upstream fails: SERVFAIL, at once.
q sf-rf.test
eq "SERVFAIL then REFUSED: SERVFAIL" "$RCODE" SERVFAIL
lt "SERVFAIL then REFUSED: at once (ms)" "$MS" 700
q rf-junk.test
eq "REFUSED then garbage: SERVFAIL" "$RCODE" SERVFAIL
eq "REFUSED then garbage: both asked" \
	"$(asked up1 rf-junk.test) $(asked up2 rf-junk.test)" "1 1"
stop_dnsfwd

# 6. a dead upstream (nothing on its port: ICMP port unreachable) costs far
# less than the timeout, every time.
start_fakeup dead
dead=$dead_port
stop_fakeup dead
start_dnsfwd -R -c 0 -t 3000 -s "127.0.0.1#$dead" -s "127.0.0.1#$up2_port"
q pos.test +time=5
eq "dead first upstream: up2's answer" "$ANSWER" 192.0.2.21
lt "dead first upstream: far less than -t 3000 (ms)" "$MS" 1000
q nx-pos.test +time=5
eq "dead first upstream, again: up2's answer" "$ANSWER" 192.0.2.22
lt "dead first upstream, again: far less than -t 3000 (ms)" "$MS" 1000
stop_dnsfwd
start_dnsfwd -R -c 0 -t 3000 -s "127.0.0.1#$dead"
q pos.test +time=5
eq "only upstream dead: SERVFAIL" "$RCODE" SERVFAIL
lt "only upstream dead: far less than -t 3000 (ms)" "$MS" 1000
stop_dnsfwd

# 7. a dropping first upstream costs the timeout once, then is down: it is
# not waited on again while up2 answers, positive or negative, only probed
# in the background once per backoff (1 s, then 2 s...).  The exact
# backoff and probe times are test/unit's (a fake clock, to the ms); here
# the fakeups' ms= stamps show what reached the dropping one and when, so
# a busy machine can only make the gaps longer, never fail them.
start_fakeup drop '* drop'
set_rules up2 \
	'*.pos.test answer 192.0.2.21' \
	'*.nx.test nxdomain' \
	'*.nd.test nodata' \
	'pos.test answer 192.0.2.21' \
	'dsf.test servfail'
start_dnsfwd -R -c 0 -t 2000 -s "127.0.0.1#$drop_port" \
	-s "127.0.0.1#$up2_port"
q first.pos.test
eq "dropping first: up2's answer" "$ANSWER" 192.0.2.21
ge "dropping first: costs the timeout (ms)" "$MS" 1900
eq "dropping first: each asked once" \
	"$(asked drop first.pos.test) $(asked up2 first.pos.test)" "1 1"
a0=$(sed -n 's/^udp first\.pos\.test .* ms=\([0-9]*\)$/\1/p' "$T/drop.log")

# drop_stamps: the ms= of every query the dropping one got after pos.test.
drop_stamps()
{
	sed -n '2,$ s/.* ms=\([0-9]*\)$/\1/p' "$T/drop.log"
}

# Queries every 0.1 s, round the three kinds of answer, until the dropping
# one has had its first probe and then 4 s more (its next backoff is 2 s,
# from when the probe failed 2 s later): at most 300 of them.
n=0 slow=0 wrong=0 probe=
until [ "$n" -ge 300 ]; do
	case $((n % 3)) in
	0) q "q$n.pos.test"; want=NOERROR/192.0.2.21 ;;
	1) q "q$n.nx.test"; want=NXDOMAIN/ ;;
	2) q "q$n.nd.test"; want=NOERROR/ ;;
	esac
	[ "$RCODE/$ANSWER" = "$want" ] || wrong=$((wrong + 1))
	[ "$MS" -lt 1000 ] || slow=$((slow + 1))
	n=$((n + 1))
	[ -n "$probe" ] || probe=$(drop_stamps | head -n 1)
	[ -n "$probe" ] && [ "$(now_ms)" -ge $((probe + 4000)) ] && break
	sleep 0.1	# pacing: a query every 0.1 s or so
done
ok "marked down: a probe came (within $n queries)" test -n "$probe"
eq "marked down: every query got up2's answer, positive or negative" \
	"$wrong" 0
eq "marked down: no query waited on the down one (none took 1 s)" \
	"$slow" 0
ge "marked down: the first probe no sooner than timeout + backoff after \
pos.test (ms; exact in test/unit)" "$((${probe:-0} - ${a0:-0}))" 2500
eq "marked down: one probe, then none for its next backoff" \
	"$(drop_stamps | awk -v p="${probe:-0}" '$1 < p + 3500' | wc -l)" 1
match "marked down: the probe is a copy of a real query" \
	"$(sed -n 2p "$T/drop.log")" '^udp q[0-9]+\.(pos|nx|nd)\.test A '
# Down, but asked when every live one fails.
q dsf.test
eq "marked down, up2 fails: SERVFAIL" "$RCODE" SERVFAIL
# (its probe may fall due with this query too: then it is asked twice)
ge "marked down, up2 fails: the down one is asked then" \
	"$(asked drop dsf.test)" 1
eq "marked down, up2 fails: up2 asked first" "$(asked up2 dsf.test)" 1
ge "marked down, up2 fails: the timeout is paid (ms)" "$MS" 1900
counters
ge "SIGUSR1: the probes counted" "$(counter probes)" 1
stop_dnsfwd

# 7b. the dead one comes back: the next probe finds it, and from then on it
# is asked first again.
start_dnsfwd -R -c 0 -t 500 -s "127.0.0.1#$drop_port" \
	-s "127.0.0.1#$up2_port"
q pos.test
eq "recovery: the first query times out on it" "$ANSWER" 192.0.2.21
set_rules drop '* answer 192.0.2.99'
# queries (answered by up2, or by drop once it is back) until one probes it
n=0
until [ "$n" -ge 100 ] ||
    grep -q "127.0.0.1#$drop_port: answers again" "$DNSFWD_ERR"; do
	q "r$n.pos.test"
	n=$((n + 1))
	sleep 0.1	# pacing: a query every 0.1 s or so
done
ok "recovery: the probe's answer brings it back (logged)" \
	wait_for 10 grep -q "127.0.0.1#$drop_port: answers again" \
	"$DNSFWD_ERR"
q again.pos.test
eq "recovery: asked first again" "$ANSWER" 192.0.2.99
counters
ge "SIGUSR1: revived counted" "$(counter revived)" 1
stop_dnsfwd

# 8. --parallel: the answer the sequential policy would give: a positive
# wins even if slower than a negative, but it waits while an upstream before
# it in the list is still pending (that one's verdict would win: README
# "What dnsfwd will not do to your answers"); with negatives only, NODATA
# over NXDOMAIN, else the last in list order, whichever arrives first.
set_rules up1 \
	'nx-nd.test nxdomain ttl=11 min=11' \
	'nd-nx.test nodata ttl=11 min=11' \
	'nx-nx.test nxdomain ttl=11 min=11' \
	'slow-pos.test delay 300 answer 192.0.2.11' \
	'slow-nx.test delay 300 nxdomain' \
	'nd-slownx.test nodata' \
	'pos-drop.test drop' \
	'pos-drop2.test drop' \
	'sf-all.test servfail'
set_rules up2 \
	'nx-nd.test delay 100 nodata ttl=22 min=22' \
	'nd-nx.test nxdomain ttl=22 min=22' \
	'nx-nx.test delay 100 nxdomain ttl=22 min=22' \
	'slow-pos.test nxdomain' \
	'slow-nx.test nodata' \
	'nd-slownx.test delay 200 nxdomain' \
	'pos-drop.test answer 192.0.2.29' \
	'pos-drop2.test answer 192.0.2.29' \
	'sf-all.test refused'
start_dnsfwd -R -c 0 -t 1500 --parallel -s "127.0.0.1#$up1_port" \
	-s "127.0.0.1#$up2_port"
q slow-pos.test
eq "parallel: slow positive beats fast negative" "$ANSWER" 192.0.2.11
eq "parallel: slow positive: NOERROR" "$RCODE" NOERROR
eq "parallel: both asked" \
	"$(asked up1 slow-pos.test) $(asked up2 slow-pos.test)" "1 1"
ge "parallel: waited for the positive (ms)" "$MS" 250
q slow-nx.test
eq "parallel, slow NXDOMAIN at up1, NODATA at up2: NODATA" "$RCODE" NOERROR
ge "parallel, slow NXDOMAIN, NODATA: waited for both (ms)" "$MS" 250
q nd-slownx.test
eq "parallel, NODATA at up1, slow NXDOMAIN at up2: NODATA" "$RCODE" NOERROR
eq "parallel, up1 NODATA: no answer" "$ANSWER" ""
for n in nx-nd nd-nx nx-nx; do
	q "$n.test"
	par="$RCODE $TTL"
	eq "parallel, $n: the same as sequential" "$par" "$(
		case $n in nx-nd) echo NOERROR 22 ;; nd-nx) echo NOERROR 11 ;;
		nx-nx) echo NXDOMAIN 22 ;; esac)"
done
q pos-drop.test
eq "parallel: a positive behind a dropping upstream: the positive" \
	"$ANSWER" 192.0.2.29
ge "parallel: ... once the first one timed out (ms)" "$MS" 1400
q pos-drop2.test
eq "parallel: the dropping one is down now: the positive" "$ANSWER" \
	192.0.2.29
lt "parallel: ... at once (ms)" "$MS" 700
q sf-all.test
eq "parallel, all fail: SERVFAIL" "$RCODE" SERVFAIL
lt "parallel, all fail: at once (ms)" "$MS" 700
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

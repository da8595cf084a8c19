#!/usr/bin/env bash
# t-stale.sh: stale answers (RFC 8767, --stale).  An answer is kept past its
# expiry; when every upstream fails, or 1.8 s pass with no answer while one
# is kept, the client gets it with TTL 30 at most (its own if smaller) and
# Extended DNS Error 3, and the query goes on and refreshes the entry.  A
# change of the upstream list expires the cache instead of dropping it, an
# answer served stale only while its upstream is on the list; SIGHUP drops
# it.  Addresses: 127.0.44.x (the list change follows a file).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils

start_fakeup up 'short.test answer 192.0.2.1 ttl=2' \
	'long.test answer 192.0.2.3 ttl=3600' '* answer 192.0.2.9 ttl=2'

# ---- every upstream fails: the stale answer at once -------------------------
start_dnsfwd -R -t 500 -s "127.0.0.1#$up_port"
q short.test
eq "setup: short.test cached (TTL 2)" "$RCODE $ANSWER $TTL" \
	"NOERROR 192.0.2.1 2"
q short.test +noedns
q long.test
sleep 2.1	# short.test's TTL of 2 s runs out
set_rules up '* servfail'
q short.test
eq "expired, the upstream fails: the stale answer" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.1"
eq "stale: its original TTL, under 30" "$TTL" 2
match "stale: Extended DNS Error 3 (Stale Answer)" "$QOUT" \
	'EDE: 3 \(Stale Answer\)'
lt "stale: at once, the failure is not waited out (ms)" "$MS" 500
eq "stale: the upstream was asked first" "$(asked up short.test)" 3
q short.test +noedns
eq "stale, a client without EDNS: the answer, no OPT" \
	"$RCODE $ANSWER $(grep -c 'OPT PSEUDOSECTION' <<<"$QOUT")" \
	"NOERROR 192.0.2.1 0"
eq "stale, without EDNS: no EDE either" "$(grep -c 'EDE:' <<<"$QOUT")" 0
q nosuch.test
eq "no stale answer kept: SERVFAIL" "$RCODE" SERVFAIL
counters
ge "SIGUSR1: stale answers counted" "$(counter 'stale answers')" 2
stop_dnsfwd

_fresh()
{
	q short.test
	[ "$ANSWER" = "$1" ] && ! grep -q 'EDE: 3' <<<"$QOUT"
}

# ---- a silent upstream: the stale answer after 1.8 s, and a refresh ---------
set_rules up 'short.test answer 192.0.2.1 ttl=1' '* answer 192.0.2.9 ttl=1'
# The late answer comes 6 s after the query: the stale one is due at 1.8 s
# (exact in test/unit), so a busy machine has 4 s to hand it out first.
start_dnsfwd -R -t 8000 -s "127.0.0.1#$up_port"
q short.test
sleep 1.1	# its TTL of 1 s runs out
set_rules up 'short.test delay 6000 answer 192.0.2.2 ttl=300'
q short.test +time=9
eq "silent upstream: the stale answer" "$RCODE $ANSWER" "NOERROR 192.0.2.1"
ge "silent upstream: after the 1.8 s client response timer (ms)" "$MS" 1700
lt "silent upstream: ... before the late answer (ms)" "$MS" 6000
diag "time to the stale answer with a silent upstream: $MS ms"
match "silent upstream: EDE 3" "$QOUT" 'EDE: 3 \(Stale Answer\)'
ok "the late answer arrives and refreshes the entry" \
	wait_for 10 _fresh 192.0.2.2
n0=$(asked up short.test)
q short.test
eq "refreshed: a fresh cache hit, the upstream not asked again" \
	"$RCODE $ANSWER $(asked up short.test)" "NOERROR 192.0.2.2 $n0"
stop_dnsfwd


# ---- --stale 0, SIGHUP ------------------------------------------------------
set_rules up '* answer 192.0.2.9 ttl=1'
start_dnsfwd -R -t 500 --stale 0 -s "127.0.0.1#$up_port"
q off.test
sleep 1.1	# its TTL of 1 s runs out
set_rules up '* servfail'
q off.test
eq "--stale 0: SERVFAIL" "$RCODE" SERVFAIL
stop_dnsfwd
set_rules up '* answer 192.0.2.9 ttl=1'
start_dnsfwd -R -t 500 -s "127.0.0.1#$up_port"
q hup.test
hup
sleep 1.1	# past its TTL: it would be served stale had it been kept
set_rules up '* servfail'
q hup.test
eq "SIGHUP drops the cache, stale answers too: SERVFAIL" "$RCODE" SERVFAIL
stop_dnsfwd

# ---- the list changes: entries expire; stale only from an upstream kept ----
# An answer is served stale only while the upstream that gave it is on the
# list: a laptop that moved to another network (a hostile hotspot's
# resolver, say) never gets the last network's answers back, stale or not.
follow_init 127.0.44
start_fakeup_at a 127.0.44.1 '* answer 192.0.2.11 ttl=3600'
start_fakeup_at b 127.0.44.2 '* drop'
RC=$T/resolv.conf
printf 'nameserver 127.0.44.1\n' >"$RC"
start_dnsfwd -t 500 -r "$RC"
q switch.test
eq "list change: cached from a" "$RCODE $ANSWER" "NOERROR 192.0.2.11"
q kept.test
eq "list change: kept.test cached from a" "$ANSWER" 192.0.2.11
put "$RC" 'nameserver 127.0.44.2'
ok "list change: the new list is in use" wait_for 10 \
	grep -q 'upstreams: 127.0.44.2#53$' "$DNSFWD_ERR"
q switch.test +dnssec
eq "list change: the new list is asked at once (not the cache)" \
	"$(asked b switch.test)" 1
eq "another network, its upstream silent: no answer of the last one" \
	"$RCODE $ANSWER" "SERVFAIL "
match "... SERVFAIL says why: EDE 22 (No Reachable Authority)" "$QOUT" \
	'EDE: 22'
# back to a network with a on it, a silent now: a's answer, stale
set_rules a '* drop'
put "$RC" 'nameserver 127.0.44.2' 'nameserver 127.0.44.1'
ok "list change: a is on the list again" wait_for 10 \
	grep -q 'upstreams: 127.0.44.2#53 127.0.44.1#53$' "$DNSFWD_ERR"
q kept.test +time=5
eq "its upstream on the list again, every one silent: the stale answer" \
	"$RCODE $ANSWER" "NOERROR 192.0.2.11"
eq "list change, stale: TTL 30" "$TTL" 30
stop_dnsfwd

#!/usr/bin/env bash
# t-trust.sh: what dnsfwd will not do to an answer (README "What dnsfwd will
# not do to your answers"), each tried the way a careless network or an
# attacker would: a validator's or a filter's verdict (an Extended DNS
# Error) ends the walk, fresh or cached, sequential or --parallel, UDP or
# TCP; the asker's RD and CD key what is shared and cached (an RD=0 guest
# racing an RD=1 guest, a CD=1 filler), its own RD and CD come back and AD
# only to an AD or DO asker; a validated denial keeps its AD; junk after an
# upstream's last record never reaches the client; a burst of timeouts
# counts once; other opcodes get NOTIMP; special-use names are answered
# here; dnsfwd's own failures say why.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
DNSQ=$ROOT/test/dnsq

# ede_of: the EDE INFO-CODEs of the last answer, sorted, one line.
ede_of()
{
	sed -n 's/^; EDE: \([0-9]*\).*/\1/p' <<<"$QOUT" | sort -n | paste -sd ' ' -
}

start_fakeup v1 \
	'bogus.test ede 6 servfail' \
	'blocked.test ede 15 nxdomain ttl=60 min=60' \
	'filtered.test ede 17 answer 0.0.0.0' \
	'nra.test ede 22 servfail' \
	'vneg.test ad nxdomain ttl=11 min=11' \
	'vnd.test nodata ttl=11 min=11' \
	'ad.test ad answer 192.0.2.8' \
	'junk.test junk 7 answer 192.0.2.9' \
	'race.test rd0refused delay 300 answer 192.0.2.7' \
	'cd.test answer 192.0.2.10' \
	'* answer 192.0.2.1'
start_fakeup v2 \
	'bogus.test answer 6.6.6.6' \
	'blocked.test answer 6.6.6.7' \
	'nra.test answer 192.0.2.22' \
	'vneg.test nxdomain ttl=22 min=22' \
	'vnd.test ad nodata ttl=22 min=22' \
	'* answer 192.0.2.2'

for mode in sequential parallel; do
	opt=
	[ "$mode" = parallel ] && opt=--parallel
	start_dnsfwd -R $opt -t 1000 -s "127.0.0.1#$v1_port" \
	    -s "127.0.0.1#$v2_port"
	: >"$T/v1.log"
	: >"$T/v2.log"

	# 1. verdicts end the walk: the forged or blocked data never comes
	q bogus.test
	eq "$mode: bogus: the validator's SERVFAIL" "$RCODE $ANSWER" \
	    "SERVFAIL "
	eq "$mode: bogus: its EDE 6 (DNSSEC Bogus) passed on" "$(ede_of)" 6
	[ "$mode" = sequential ] && eq "$mode: bogus: the second upstream \
not asked" "$(asked v2 bogus.test)" 0
	q bogus.test +tcp
	eq "$mode: bogus over TCP: SERVFAIL, EDE 6" "$RCODE $(ede_of)" \
	    "SERVFAIL 6"
	q blocked.test
	eq "$mode: blocked: the filter's NXDOMAIN, EDE 15" \
	    "$RCODE $(ede_of)" "NXDOMAIN 15"
	q blocked.test
	eq "$mode: blocked, cached: still NXDOMAIN with EDE 15" \
	    "$RCODE $(ede_of)" "NXDOMAIN 15"
	eq "$mode: blocked, cached: asked once" "$(asked v1 blocked.test)" 1
	q filtered.test +noedns
	eq "$mode: a client without EDNS: the answer, no OPT" \
	    "$ANSWER $(grep -c 'OPT PSEUDO' <<<"$QOUT")" "0.0.0.0 0"
	q nra.test
	eq "$mode: EDE 22 is no verdict: the next upstream's answer" \
	    "$ANSWER" 192.0.2.22
	# 5. a validated denial keeps its AD, whoever said no after it
	q vneg.test +adflag
	eq "$mode: NXDOMAIN with AD, then without: the validated one" \
	    "$RCODE $TTL" "NXDOMAIN 11"
	match "$mode: ... with its AD" "$FLAGS" ' ad( |$)'
	q vnd.test +dnssec
	eq "$mode: NODATA, then NODATA with AD: the validated one" \
	    "$RCODE $TTL" "NOERROR 22"
	stop_dnsfwd
done

# 3. RD keys sharing and the cache: an RD=0 guest racing an RD=1 guest, at
# a recursor that refuses non-recursive queries (one upstream: its REFUSED
# is the RD=0 guest's SERVFAIL)
start_dnsfwd -R -t 1000 -s "127.0.0.1#$v1_port"
(q race.test +norecurse; printf '%s %s\n' "$RCODE" "$ANSWER" \
    >"$T/rd0.res") &
p0=$!
track_pid "$p0"
wait_for 10 grep -q ' race\.test .* rd=0 ' "$T/v1.log"
q race.test
eq "RD=0 guest first, RD=1 guest meanwhile: the RD=1 guest's answer" \
	"$RCODE $ANSWER" "NOERROR 192.0.2.7"
wait "$p0"
_untrack_pid "$p0"
eq "... the RD=0 guest got no answer: the recursor refused it" \
	"$(cat "$T/rd0.res")" "SERVFAIL "
eq "... two upstream queries, one of each" \
	"$(grep -c ' race\.test .* rd=0 ' "$T/v1.log") $(grep -c \
	' race\.test .* rd=1 ' "$T/v1.log")" "1 1"
q race.test
eq "RD=1 again: the answer, from the cache" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.7"
eq "... the upstream not asked again" "$(asked v1 race.test)" 2
match "... RD echoed" "$FLAGS" ' rd( |$)'
q race.test +norecurse
eq "RD=0 asker after it: not the RD=1 entry" "$RCODE" SERVFAIL
nomatch()
{
	if [[ $2 =~ $3 ]]; then
		fail "$1" "got:      '$2'" "expected not to match: $3"
	else
		pass "$1"
	fi
}
nomatch "... its own RD (clear) echoed" "$FLAGS" ' rd( |$)'
# CD: a CD=1 filler does not fill for a CD=0 asker
q cd.test +cdflag
q cd.test
eq "CD=1 filler, then a CD=0 asker: asked again" \
	"$(grep -c ' cd\.test .* cd=1 ' "$T/v1.log") $(grep -c \
	' cd\.test .* cd=0 ' "$T/v1.log")" "1 1"
nomatch "... CD not echoed to the CD=0 asker" "$FLAGS" ' cd( |$)'

# 4. AD only to an AD or DO asker, fresh and cached; AD asked upstream
q ad.test +noadflag
nomatch "AD=0, DO=0 asker (fills the cache): no AD" "$FLAGS" ' ad( |$)'
q ad.test +adflag
match "AD asker, cached: the upstream's AD" "$FLAGS" ' ad( |$)'
q ad.test +noadflag +dnssec
match "DO asker, cached: the upstream's AD" "$FLAGS" ' ad( |$)'
q ad.test +noadflag
nomatch "AD=0, DO=0 asker, cached: no AD" "$FLAGS" ' ad( |$)'
eq "AD asked upstream for every query" \
	"$(grep -c ' ad=0 ' "$T/v1.log")" 0

# 6. junk after the last record never reaches a client, nor the cache
q junk.test
eq "junk after the records: the answer" "$RCODE $ANSWER" "NOERROR 192.0.2.9"
match "... with its OPT, readable" "$QOUT" 'OPT PSEUDOSECTION'
nomatch "... no warning from dig" "$QOUT" 'trailing|Warning|extra'
q junk.test
match "... and from the cache: the same" "$RCODE $ANSWER $QOUT" \
	'^NOERROR 192\.0\.2\.9 .*OPT PSEUDOSECTION'

# 9. other opcodes: NOTIMP, with an OPT for an EDNS query, never forwarded
if [ -x "$DNSQ" ]; then
	out=$("$DNSQ" 127.0.0.1 "$DNSFWD_PORT" "1234 7800 0000 0000 0000 0000")
	match "opcode 15, no question: NOTIMP" "$out" \
	    '^rcode=NOTIMP id=4660 .* len=12$'
	out=$("$DNSQ" 127.0.0.1 "$DNSFWD_PORT" \
	    "1234 7800 0000 0000 0000 0001 00 0029 1000 00000000 0000")
	match "opcode 15, EDNS: NOTIMP with an OPT" "$out" \
	    '^rcode=NOTIMP id=4660 .* len=23$'
	out=$("$DNSQ" 127.0.0.1 "$DNSFWD_PORT" \
	    "1234 2000 0001 0000 0000 0000 04 7a6f6e65 04 74657374 00 0006 0001")
	match "NOTIFY: NOTIMP" "$out" '^rcode=NOTIMP id=4660 '
	eq "... none forwarded" "$(asked v1 zone.test)" 0
else
	skip "opcodes: test/dnsq missing" "make test/dnsq"
fi

# 10. special-use names: answered here, never forwarded
q localhost
eq "localhost: 127.0.0.1" "$RCODE $ANSWER" "NOERROR 127.0.0.1"
q db.localhost AAAA
eq "db.localhost AAAA: ::1" "$RCODE $ANSWER" "NOERROR ::1"
q x.invalid
eq "x.invalid: NXDOMAIN" "$RCODE" NXDOMAIN
q hidden.onion
eq "hidden.onion: NXDOMAIN" "$RCODE" NXDOMAIN
q _dns.resolver.arpa TYPE64
eq "_dns.resolver.arpa SVCB (DDR): NODATA" "$RCODE $ANSWER" "NOERROR "
eq "special-use names: none forwarded" \
	"$(($(asked v1 localhost) + $(asked v1 db.localhost) + \
	$(asked v1 x.invalid) + $(asked v1 hidden.onion) + \
	$(asked v1 _dns.resolver.arpa)))" 0
stop_dnsfwd
start_dnsfwd -R -s "/onion/127.0.0.1#$v2_port" -s "127.0.0.1#$v1_port"
q hidden.onion
eq "-s /onion/ADDR names it: forwarded" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.2"
stop_dnsfwd

# 11. dnsfwd's own failures say why
start_fakeup dead
dead=$dead_port
stop_fakeup dead
start_fakeup drop '* drop'
start_dnsfwd -R -t 300 -s "127.0.0.1#$dead"
q down.test
eq "every upstream unreachable: SERVFAIL, EDE 23 (Network Error)" \
	"$RCODE $(ede_of)" "SERVFAIL 23"
stop_dnsfwd
start_dnsfwd -R -t 300 -s "127.0.0.1#$drop_port"
q silent.test
eq "every upstream silent: SERVFAIL, EDE 22 (No Reachable Authority)" \
	"$RCODE $(ede_of)" "SERVFAIL 22"
# a second client asking the same name meanwhile shares the exchange: it
# is told the same reason (it had EDE 14, Not Ready)
(q shared.test; echo "$RCODE $(ede_of)" >"$T/shared1.res") &
bg=$!
track_pid "$bg"
q shared.test -b 127.0.0.2
wait "$bg"
_untrack_pid "$bg"
eq "two clients, one silent exchange: both SERVFAIL, EDE 22" \
	"$RCODE $(ede_of) / $(cat "$T/shared1.res")" "SERVFAIL 22 / SERVFAIL 22"
stop_dnsfwd
start_dnsfwd -r "$T/no-such-resolv.conf"
q held.test +time=9
eq "no upstream known in the 5 s hold: SERVFAIL, EDE 14 (Not Ready)" \
	"$RCODE $(ede_of)" "SERVFAIL 14"
stop_dnsfwd

# 8. a burst of timeouts counts once: back within seconds, not a minute
set_rules drop '* drop'
start_dnsfwd -R -t 500 -s "127.0.0.1#$drop_port" -s "127.0.0.1#$v2_port"
pids=()
for i in $(seq 1 20); do
	q "burst$i.test" >/dev/null &
	pids+=("$!")
done
for p in "${pids[@]}"; do
	wait "$p"
done
set_rules drop '* answer 192.0.2.99'
_back()
{
	q "back$RANDOM.test"
	grep -q "127.0.0.1#$drop_port: answers again" "$DNSFWD_ERR"
}
t0=$(now_ms)
ok "20 timeouts at once: the upstream is probed and back within 10 s \
(a doubling per timeout would be a minute)" wait_for 10 _back
diag "back after $(($(now_ms) - t0)) ms"
stop_dnsfwd

#!/usr/bin/env bash
# t-cache.sh: the answer cache (-c N).  A hit is answered without asking the
# upstream, with the client's ID and spelling of the name and TTLs lowered
# by the time spent in the cache; entries expire; negative answers are kept
# per RFC 2308 only with an SOA and only when no upstream attempt failed;
# SERVFAIL, TC, TTL 0 and answers over 1232 bytes are never kept; the key
# holds EDNS, DO and CD; a cached answer too large for a UDP client is sent
# truncated and in full over TCP; the cache is flushed when the upstream
# list changes and on SIGHUP; -c 0 turns it off; -c N evicts the least
# recently used entry; SIGUSR1 prints the cache counters.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils

# asked_eq DESC UP QNAME N: fakeup UP was asked for QNAME N times so far.
asked_eq()
{
	eq "$1" "$(asked "$2" "$3")" "$4"
}

# sleep_until MS: sleep until now_ms reaches MS (at most 10 s).
sleep_until()
{
	local left=$(($1 - $(now_ms)))

	[ "$left" -gt 10000 ] && left=10000
	[ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) \
	    $((left % 1000)))"
	return 0
}

# qsection SECTION: the first record line of SECTION in QOUT.
qsection()
{
	printf '%s\n' "$QOUT" |
	    awk -v s=";; $1 SECTION:" '$0 == s { f = 1; next }
		f && /^$/ { exit } f { print; exit }'
}

# hdr_id: the ID in dig's header line of QOUT.
hdr_id()
{
	printf '%s\n' "$QOUT" |
	    sed -n 's/.*status: [A-Z]*, id: \([0-9]*\)$/\1/p' | tail -n 1
}

# count_ge N CMD...: CMD's output (a number) is at least N; for wait_for,
# which runs it again on every poll.
count_ge()
{
	local n=$1

	shift
	[ "$("$@")" -ge "$n" ]
}

# lines FILE REGEX: how many lines of FILE match REGEX.
lines()
{
	grep -cE -- "$2" "$1"
}

# usr1_line: send SIGUSR1 to dnsfwd and print its new "cache:" line.
usr1_line()
{
	local before

	before=$(grep -c '^dnsfwd: cache: ' "$DNSFWD_ERR")
	kill -USR1 "$DNSFWD_PID"
	wait_for 10 count_ge $((before + 1)) lines "$DNSFWD_ERR" \
	    '^dnsfwd: cache: '
	grep '^dnsfwd: cache: ' "$DNSFWD_ERR" | tail -n 1 |
	    sed 's/, longest chain [0-9]*$//'
}

# port53_free ADDR: nothing listens on ADDR:53 (UDP or TCP).
port53_free()
{
	! ss -Hlntu 2>/dev/null | awk '{ print $5 }' |
	    grep -qxF -e "$1:53" -e "0.0.0.0:53" -e "*:53"
}

start_fakeup up \
	'mixed.test answer 192.0.2.1 ttl=300' \
	'hit.test answer 192.0.2.2 ttl=300' \
	'id.test answer 192.0.2.3 ttl=300' \
	'cd.test answer 192.0.2.4 ttl=5' \
	'negmin.test nxdomain ttl=60 min=4' \
	'negttl.test nodata ttl=1 min=60' \
	'nx.test nxdomain ttl=60 min=60' \
	'nxnosoa.test nxdomain nosoa' \
	'nd.test nodata ttl=60 min=60' \
	'ndnosoa.test nodata nosoa' \
	'sf.test servfail' \
	'ref.test refused' \
	'tc.test tc 192.0.2.5' \
	'zero.test answer 192.0.2.6 ttl=0' \
	'long.test answer 192.0.2.7 ttl=100000' \
	'neglong.test nxdomain ttl=100000 min=100000' \
	'dnssec.test answer 192.0.2.8' \
	'big.test large 60' \
	'huge.test large 100' \
	'*.bytes.test large 60' \
	'hup.test answer 192.0.2.9' \
	'* answer 192.0.2.200'
UP=127.0.0.1#$up_port

start_dnsfwd -R -s "$UP" -t 500 -v

# ---- a hit does not ask the upstream -----------------------------------------
q hit.test
eq "first query: answered" "$ANSWER" 192.0.2.2
asked_eq "first query: upstream asked once" up hit.test 1
q hit.test
eq "hit: same answer" "$ANSWER" 192.0.2.2
eq "hit: NOERROR" "$RCODE" NOERROR
eq "hit: flags qr rd ra" "$FLAGS" "qr rd ra"
asked_eq "hit: upstream not asked again" up hit.test 1
lt "hit: answered within 500 ms" "$MS" 500
ok "-v logs the hit as \"cache\"" grep -qE \
	'^dnsfwd: .* hit\.test A: cache NOERROR [0-9]+ ms$' "$DNSFWD_ERR"
q HIT.TEST
eq "hit: a name in another case is the same entry" "$ANSWER" 192.0.2.2
asked_eq "hit: ... upstream still asked once" up hit.test 1

# ---- the client's ID and 0x20 spelling --------------------------------------
q MiXeD.TeSt
eq "0x20: first answer" "$ANSWER" 192.0.2.1
q mIxEd.tEsT
eq "0x20: hit answered" "$ANSWER" 192.0.2.1
asked_eq "0x20: upstream asked once for both spellings" up mixed.test 1
match "0x20: hit's question in the client's spelling" "$(qsection QUESTION)" \
	'^;mIxEd\.tEsT\.[[:space:]]+IN[[:space:]]+A$'
match "0x20: hit's answer owner in the client's spelling" \
	"$(qsection ANSWER)" '^mIxEd\.tEsT\.[[:space:]]'
eq "0x20: dig saw no ID or question mismatch" \
	"$(grep -ciE 'mismatch' <<<"$QOUT")" 0

DNSQ=
if [ -x "$ROOT/test/dnsq" ]; then
	DNSQ=$ROOT/test/dnsq
	out1=$("$DNSQ" 127.0.0.1 "$DNSFWD_PORT" \
	    "$("$DNSQ" -m 0x1234 id.test)" 2>&1)
	out2=$("$DNSQ" 127.0.0.1 "$DNSFWD_PORT" \
	    "$("$DNSQ" -m 0xbeef id.test)" 2>&1)
	match "ID: first reply carries ID 0x1234" "$out1" \
	    '^rcode=NOERROR id=4660 .* an=1 '
	match "ID: cached reply carries the second ID 0xbeef" "$out2" \
	    '^rcode=NOERROR id=48879 .* an=1 '
	asked_eq "ID: upstream asked once" up id.test 1
else
	skip "explicit query IDs with test/dnsq" "make test/dnsq"
fi

# ---- TTL countdown and expiry (real seconds) --------------------------------
# An answer is stored between t0 and t1 (when the queries were sent and
# answered) and served again between ta and tb, so its age in whole
# seconds lies between (ta - t1) / 1000 and (tb - t0) / 1000: the TTL
# checks take that window, however slowly a busy machine got there (the
# exact ageing is test/unit's, with a fake clock).
# ttl_in DESC TTL ORIGINAL: TTL is ORIGINAL less an age in that window.
ttl_in()
{
	local lo=$(($3 - (tb - t0) / 1000)) hi=$(($3 - (ta - t1) / 1000))

	if _is_int "$2" && [ "$2" -ge "$lo" ] && [ "$2" -le "$hi" ]; then
		pass "$1"
	else
		fail "$1" "got:      '$2'" "expected: $lo..$hi ($3 less the age)"
	fi
}
t0=$(now_ms)
q cd.test
eq "countdown: fresh answer" "$ANSWER" 192.0.2.4
eq "countdown: fresh TTL 5" "$TTL" 5
q negmin.test
eq "negative, min 4 < SOA ttl 60: NXDOMAIN" "$RCODE" NXDOMAIN
q negttl.test
eq "negative, SOA ttl 1 < min 60: NODATA" "$RCODE/$ANSWER" NOERROR/
t1=$(now_ms)
sleep_until $((t1 + 2200))
ta=$(now_ms)
q cd.test
cd_out=$QOUT
q negmin.test
tb=$(now_ms)
lt "countdown: both looked at again within 4 s of the first (ms; the \
negative's minimum TTL)" $((tb - t0)) 4000
eq "negative min 4: after 2.2 s still NXDOMAIN" "$RCODE" NXDOMAIN
asked_eq "negative min 4: after 2.2 s from the cache" up negmin.test 1
ttl_in "negative min 4: SOA TTL counted down from 60" "$TTL" 60
QOUT=$cd_out
_parse
eq "countdown: after 2.2 s, a hit" "$ANSWER" 192.0.2.4
asked_eq "countdown: after 2.2 s, upstream not asked" up cd.test 1
ttl_in "countdown: after 2.2 s, the TTL counted down" "$TTL" 5
q negttl.test
asked_eq "negative SOA ttl 1: expired after 2.2 s, upstream asked again" \
	up negttl.test 2
sleep_until $((t1 + 5600))
q cd.test
eq "expiry: after 5.6 s, answered" "$ANSWER" 192.0.2.4
asked_eq "expiry: after 5.6 s (ttl 5), upstream asked again" up cd.test 2
eq "expiry: TTL fresh again" "$TTL" 5
q negmin.test
asked_eq "negative min 4: expired after 5.6 s, upstream asked again" \
	up negmin.test 2

# ---- negative caching ----------------------------------------------------------
q nx.test
eq "NXDOMAIN with SOA: NXDOMAIN" "$RCODE" NXDOMAIN
q nx.test
eq "NXDOMAIN with SOA: cached NXDOMAIN" "$RCODE" NXDOMAIN
eq "NXDOMAIN with SOA: cached SOA" "$AUTHORITY" SOA
asked_eq "NXDOMAIN with SOA: upstream asked once for two queries" \
	up nx.test 1

q nxnosoa.test
eq "NXDOMAIN without SOA: NXDOMAIN" "$RCODE" NXDOMAIN
q nxnosoa.test
eq "NXDOMAIN without SOA: NXDOMAIN again" "$RCODE" NXDOMAIN
asked_eq "NXDOMAIN without SOA: not cached, upstream asked twice" \
	up nxnosoa.test 2

q nd.test
q nd.test
eq "NODATA with SOA: NOERROR, no answer" "$RCODE/$ANSWER" NOERROR/
eq "NODATA with SOA: cached SOA" "$AUTHORITY" SOA
asked_eq "NODATA with SOA: upstream asked once for two queries" up nd.test 1

q ndnosoa.test
q ndnosoa.test
eq "NODATA without SOA: NOERROR, no answer" "$RCODE/$ANSWER" NOERROR/
asked_eq "NODATA without SOA: not cached, upstream asked twice" \
	up ndnosoa.test 2

q neglong.test
q neglong.test
asked_eq "negative TTL 100000: cached" up neglong.test 1
match "negative TTL 100000: served SOA TTL at most 10800" "$TTL" \
	'^([0-9]{1,4}|10[0-7][0-9]{2}|10800)$'

# ---- never cached ------------------------------------------------------------
q sf.test
eq "SERVFAIL: SERVFAIL" "$RCODE" SERVFAIL
q sf.test
eq "SERVFAIL: SERVFAIL again" "$RCODE" SERVFAIL
q sf.test
asked_eq "SERVFAIL: upstream asked each time (3)" up sf.test 3
if [ -n "${DNSQ:-}" ]; then
	out1=$("$DNSQ" 127.0.0.1 "$DNSFWD_PORT" \
	    "$("$DNSQ" -m 0x1234 sf.test)" 2>&1)
	match "SERVFAIL: the reply carries the client's ID 0x1234" "$out1" \
	    '^rcode=SERVFAIL id=4660 '
	asked_eq "SERVFAIL: upstream asked again (4)" up sf.test 4
fi

q ref.test
q ref.test
asked_eq "REFUSED: not cached, upstream asked twice" up ref.test 2

q tc.test +ignore
match "TC from upstream: TC passed on" "$FLAGS" '(^| )tc( |$)'
n=$(asked up tc.test)
q tc.test +ignore
match "TC again: TC" "$FLAGS" '(^| )tc( |$)'
eq "TC: not cached, upstream asked again" "$(asked up tc.test)" $((n + 1))

q zero.test
q zero.test
eq "TTL 0: answered" "$ANSWER" 192.0.2.6
asked_eq "TTL 0: not cached, upstream asked twice" up zero.test 2

q huge.test +tcp
eq "1626-byte answer over TCP: 100 records" "$(wc -w <<<"$ANSWER")" 100
q huge.test +tcp
eq "1626-byte answer again: 100 records" "$(wc -w <<<"$ANSWER")" 100
asked_eq "answer over 1232 bytes: not cached, upstream asked twice" \
	up huge.test 2

q long.test
q long.test
asked_eq "TTL 100000: cached" up long.test 1
match "TTL 100000: served TTL at most 86400 (the cap)" "$TTL" \
	'^([0-9]{1,4}|[0-7][0-9]{4}|8[0-5][0-9]{3}|86[0-3][0-9]{2}|86400)$'

# ---- EDNS, DO and CD are part of the key ------------------------------------
q dnssec.test
asked_eq "key: plain query asks the upstream" up dnssec.test 1
q dnssec.test +dnssec
asked_eq "key: +dnssec (DO) is not served the plain answer" up dnssec.test 2
match "key: the DO answer echoes DO" "$QOUT" 'flags: do;'
q dnssec.test +dnssec
asked_eq "key: a second +dnssec query is a hit" up dnssec.test 2
match "key: the cached DO answer echoes DO" "$QOUT" 'flags: do;'
q dnssec.test +cdflag
asked_eq "key: +cdflag (CD) is not served the plain answer" up dnssec.test 3
q dnssec.test +cdflag
asked_eq "key: a second +cdflag query is a hit" up dnssec.test 3
q dnssec.test +noedns
asked_eq "key: no EDNS is not served the EDNS answer" up dnssec.test 4
ok "key: ... and its reply has no OPT" test "$(grep -c 'OPT PSEUDOSECTION' \
	<<<"$QOUT")" -eq 0
q dnssec.test
asked_eq "key: the plain query is still a hit" up dnssec.test 4
eq "key: ... without DO" "$(grep -c 'flags: do;' <<<"$QOUT")" 0

# ---- a cached answer too large for a UDP client ------------------------------
q big.test +tcp +noedns
eq "large 60 over TCP, no EDNS: 60 records" "$(wc -w <<<"$ANSWER")" 60
asked_eq "large 60: upstream asked once" up big.test 1
q big.test +noedns +ignore
match "large 60 cached, asked over UDP without EDNS: TC set" "$FLAGS" \
	'(^| )tc( |$)'
lt "large 60 over UDP: fewer than 60 records" "$(wc -w <<<"$ANSWER")" 60
asked_eq "large 60 over UDP: from the cache, upstream not asked" \
	up big.test 1
q big.test +noedns
eq "large 60: dig's TCP retry gets all 60 records" \
	"$(wc -w <<<"$ANSWER")" 60
ok "large 60: dig did retry over TCP" grep -q 'Truncated, retrying in TCP' \
	<<<"$QOUT"
asked_eq "large 60: the TCP retry from the cache, upstream not asked" \
	up big.test 1

# ---- SIGHUP flushes ------------------------------------------------------------
q hup.test
q hup.test
asked_eq "SIGHUP: before, a hit" up hup.test 1
kill -HUP "$DNSFWD_PID"
ok "SIGHUP: logged" wait_for 10 grep -q 'SIGHUP: .*flushing the cache' \
	"$DNSFWD_ERR"
q hup.test
eq "SIGHUP: answered" "$ANSWER" 192.0.2.9
asked_eq "SIGHUP: flushed, upstream asked again" up hup.test 2
q hit.test
asked_eq "SIGHUP: every entry flushed" up hit.test 2
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

# ---- a negative after a failed attempt is not kept ---------------------------
start_fakeup f1 \
	'sfneg.test servfail' \
	'dropneg.test drop' \
	'* nxdomain'
start_fakeup f2 '* nxdomain'
start_dnsfwd -R -s "127.0.0.1#$f1_port" -s "127.0.0.1#$f2_port" -t 300

both()
{
	echo $(($(asked f1 "$1") + $(asked f2 "$1")))
}

q okneg.test
eq "two upstreams both NXDOMAIN: NXDOMAIN" "$RCODE" NXDOMAIN
n=$(both okneg.test)
q okneg.test
eq "two upstreams both NXDOMAIN: cached NXDOMAIN" "$RCODE" NXDOMAIN
eq "two upstreams both NXDOMAIN: cached, nobody asked again" \
	"$(both okneg.test)" "$n"

q sfneg.test
eq "SERVFAIL then NXDOMAIN: NXDOMAIN" "$RCODE" NXDOMAIN
n=$(both sfneg.test)
q sfneg.test
eq "SERVFAIL then NXDOMAIN: NXDOMAIN again" "$RCODE" NXDOMAIN
ge "SERVFAIL then NXDOMAIN: not cached, an upstream asked again" \
	"$(both sfneg.test)" $((n + 1))

# Sequentially, the second upstream is asked when the first times out.
q dropneg.test +time=4
eq "sequential, timeout then NXDOMAIN: the second upstream's NXDOMAIN" \
	"$RCODE" NXDOMAIN
stop_dnsfwd

# In parallel: f1 times out, f2 says NXDOMAIN; the NXDOMAIN is sent, not kept.
start_dnsfwd -R -s "127.0.0.1#$f1_port" -s "127.0.0.1#$f2_port" -t 300 \
	--parallel
: >"$T/f1.log"
: >"$T/f2.log"
q dropneg.test
eq "parallel, timeout and NXDOMAIN: NXDOMAIN" "$RCODE" NXDOMAIN
eq "parallel: both upstreams asked" "$(asked f1 dropneg.test)/$(asked f2 \
	dropneg.test)" 1/1
q dropneg.test
eq "parallel, timeout and NXDOMAIN: NXDOMAIN again" "$RCODE" NXDOMAIN
eq "parallel, timeout and NXDOMAIN: not cached, f2 asked again" \
	"$(asked f2 dropneg.test)" 2
stop_dnsfwd

# ---- -c 0: no cache ------------------------------------------------------------
start_dnsfwd -R -s "$UP" -c 0
: >"$T/up.log"
for i in 1 2 3; do
	q hit.test
done
eq "-c 0: answered" "$ANSWER" 192.0.2.2
asked_eq "-c 0: upstream asked every time (3)" up hit.test 3
q nx.test
q nx.test
asked_eq "-c 0: negatives not kept either" up nx.test 2
eq "-c 0: SIGUSR1 cache line" "$(usr1_line)" \
	"dnsfwd: cache: size 0 of 0, hits 0, misses 0, evictions 0, inserts 0"
stop_dnsfwd

# ---- --cache-bytes: the arena bounds the bytes, -c the entries ---------------
# An answer of 60 A records takes 18 blocks of 64 bytes: three fit in 4 KiB.

# mem_line: the SIGUSR1 "cache memory:" line that usr1_line just asked for.
mem_line()
{
	local n

	n=$(grep -c '^dnsfwd: cache: ' "$DNSFWD_ERR")
	wait_for 10 count_ge "$n" lines "$DNSFWD_ERR" '^dnsfwd: cache memory: '
	grep '^dnsfwd: cache memory: ' "$DNSFWD_ERR" | tail -n 1
}

start_dnsfwd -R -s "$UP" -c 100 --cache-bytes 4k
: >"$T/up.log"
for i in 1 2 3; do
	q b$i.bytes.test +tcp
done
eq "--cache-bytes 4k: 60 records answered" "$(wc -w <<<"$ANSWER")" 60
eq "--cache-bytes 4k: three large answers kept" "$(usr1_line)" \
	"dnsfwd: cache: size 3 of 100, hits 0, misses 3, evictions 0, inserts 3"
eq "--cache-bytes 4k: their bytes, the arena's" "$(mem_line)" \
	"dnsfwd: cache memory: answers 3456 of 4096 arena bytes, 9664 bytes in all"
q b4.bytes.test +tcp
eq "--cache-bytes 4k: a fourth evicts one, 3 of 100 entries kept" \
	"$(usr1_line)" \
	"dnsfwd: cache: size 3 of 100, hits 0, misses 4, evictions 1, inserts 4"
q b4.bytes.test +tcp
asked_eq "--cache-bytes 4k: the fourth is a hit" up b4.bytes.test 1
q b1.bytes.test +tcp
asked_eq "--cache-bytes 4k: the first, least recently used, was evicted" \
	up b1.bytes.test 2
q b3.bytes.test +tcp
asked_eq "--cache-bytes 4k: the third kept" up b3.bytes.test 1
stop_dnsfwd

start_dnsfwd -R -s "$UP" -c 10 --cache-bytes 1m
usr1_line >/dev/null
eq "--cache-bytes 1m: a 1 MiB arena" "$(mem_line)" \
	"dnsfwd: cache memory: answers 0 of 1048576 arena bytes, 1114656 bytes in all"
stop_dnsfwd

# ---- -c 2: LRU eviction and the SIGUSR1 counters ----------------------------
start_dnsfwd -R -s "$UP" -c 2
: >"$T/up.log"
q e1.test	# miss: [e1]
q e2.test	# miss: [e2 e1]
q e1.test	# hit: [e1 e2]
asked_eq "-c 2: e1 a hit" up e1.test 1
q e3.test	# miss, evicts e2, the least recently used: [e3 e1]
q e1.test	# hit: [e1 e3]
asked_eq "-c 2: e1, used more recently than e2, survives e3's insert" \
	up e1.test 1
q e3.test	# hit: [e3 e1]
asked_eq "-c 2: e3 is a hit" up e3.test 1
q e2.test	# miss, evicts e1: [e2 e3]
eq "-c 2: e2 answered" "$ANSWER" 192.0.2.200
asked_eq "-c 2: e2, the least recently used, was evicted and re-fetched" \
	up e2.test 2
eq "-c 2: SIGUSR1 cache line" "$(usr1_line)" \
	"dnsfwd: cache: size 2 of 2, hits 3, misses 4, evictions 2, inserts 4"
q e3.test	# hit: [e3 e2]
asked_eq "-c 2: e3 still cached" up e3.test 1
q e1.test	# miss, evicts e2: [e1 e3]
asked_eq "-c 2: e1 evicted by e2's re-insert" up e1.test 2
eq "-c 2: SIGUSR1 counts again" "$(usr1_line)" \
	"dnsfwd: cache: size 2 of 2, hits 4, misses 5, evictions 3, inserts 5"
kill -HUP "$DNSFWD_PID"
wait_for 10 grep -q 'SIGHUP: .*flushing the cache' "$DNSFWD_ERR"
eq "-c 2: after SIGHUP size 0, counters kept" "$(usr1_line)" \
	"dnsfwd: cache: size 0 of 2, hits 4, misses 5, evictions 3, inserts 5"
stop_dnsfwd

# ---- flush when the followed file changes the upstream list -----------------
# fakeups A and B on port 53 of two loopback addresses of our own.
A_ADDR=''
B_ADDR=''
for n in 1 3 5 7 9 11 13 15 17 19; do
	a=127.0.61.$n b=127.0.61.$((n + 1))
	if ! port53_free "$a" || ! port53_free "$b"; then
		continue
	fi
	fakeup_try fa "$a:53" 'slow.test delay 1500 answer 192.0.2.101' \
	    '* answer 192.0.2.101' || continue
	if ! fakeup_try fb "$b:53" '* answer 192.0.2.102'; then
		_reap "$fa_pid"
		continue
	fi
	A_ADDR=$a B_ADDR=$b
	break
done
if [ -z "$A_ADDR" ]; then
	skip "reload flush: port 53 busy on 127.0.61.1-20" "nothing; free it"
else
	RESOLV=$T/resolv.conf
	echo "nameserver $A_ADDR" >"$RESOLV"
	start_dnsfwd -r "$RESOLV" -t 3000 -v
	ok "reload: upstream A in use" wait_for 10 grep -q \
	    "upstreams: $A_ADDR#53\$" "$DNSFWD_ERR"
	q vpn.test
	eq "reload: answer from A" "$ANSWER" 192.0.2.101
	q vpn.test
	eq "reload: cached answer from A" "$ANSWER" 192.0.2.101
	asked_eq "reload: A asked once" fa vpn.test 1
	echo "nameserver $B_ADDR" >"$RESOLV.tmp"
	mv -f "$RESOLV.tmp" "$RESOLV"
	ok "reload: dnsfwd switched to B" wait_for 10 grep -q \
	    "upstreams: $B_ADDR#53\$" "$DNSFWD_ERR"
	q vpn.test
	eq "reload: after the change, B's answer (not the cache's)" \
	    "$ANSWER" 192.0.2.102
	asked_eq "reload: B asked" fb vpn.test 1
	asked_eq "reload: A not asked again" fa vpn.test 1

	# An answer from the old list that arrives after the flush must not
	# be kept: A answers slow.test 1.5 s late, after the switch to B.
	echo "nameserver $A_ADDR" >"$RESOLV.tmp"
	mv -f "$RESOLV.tmp" "$RESOLV"
	wait_for 10 count_ge 2 lines "$DNSFWD_ERR" "upstreams: $A_ADDR#53\$"
	dig @127.0.0.1 -p "$DNSFWD_PORT" slow.test +tries=1 +time=4 \
	    +nocookie >"$T/slow.out" 2>&1 &
	bg=$!
	track_pid "$bg"
	wait_for 10 count_ge 1 asked fa slow.test
	echo "nameserver $B_ADDR" >"$RESOLV.tmp"
	mv -f "$RESOLV.tmp" "$RESOLV"
	ok "reload race: switched to B while A's answer is pending" \
	    wait_for 10 count_ge 2 lines "$DNSFWD_ERR" \
	    "upstreams: $B_ADDR#53\$"
	eq "reload race: ... A's answer still pending" \
	    "$(grep -c 'slow.test A: ' "$DNSFWD_ERR")" 0
	wait "$bg"
	_untrack_pid "$bg"
	match "reload race: the in-flight query got A's late answer" \
	    "$(cat "$T/slow.out")" '192\.0\.2\.101'
	q slow.test
	eq "reload race: the next query gets B's answer, not A's late one" \
	    "$ANSWER" 192.0.2.102
	asked_eq "reload race: B asked" fb slow.test 1
	stop_dnsfwd
fi

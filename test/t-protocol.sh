#!/usr/bin/env bash
# t-protocol.sh: the contract, "Protocol": the client's ID and spelling of the name
# come back, EDNS is passed upstream, big answers are truncated to what the
# client can take (TC) and TCP gets them whole, queries over TCP go out over
# TCP, several queries on one TCP connection are answered as they complete,
# and an idle TCP client does not hold up UDP.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need_dnsq

start_fakeup up \
	'flip.test caseflip answer 192.0.2.4' \
	'tc.test tc 192.0.2.5' \
	'big.test large 100' \
	'slow.test delay 600 answer 192.0.2.6' \
	'* answer 192.0.2.1'
start_dnsfwd -R -c 0 -s "127.0.0.1#$up_port"

# nomatch DESC STRING REGEX: STRING does not match REGEX.
nomatch()
{
	if [[ $2 =~ $3 ]]; then
		fail "$1" "got:      '$2'" "expected not to match: $3"
		return 1
	fi
	pass "$1"
}

# msgsize: the size of the (last) reply dig received, from QOUT.
msgsize()
{
	sed -n 's/^;; MSG SIZE  rcvd: \([0-9]*\)$/\1/p' <<<"$QOUT" | tail -n 1
}

# last_log NAME: the last line of fakeup NAME's log.
last_log()
{
	tail -n 1 "$T/$1.log"
}

# ---- the client's ID and name ------------------------------------------------

out=$("$DNSQ" -w 3000 127.0.0.1 "$DNSFWD_PORT" "$("$DNSQ" -m 0xbeef a.test)")
match "dnsq: the client's ID (0xbeef = 48879) comes back" "$out" \
	"^rcode=NOERROR id=48879 "
out=$("$DNSQ" -w 3000 127.0.0.1 "$DNSFWD_PORT" "$("$DNSQ" -m 0 b.test)")
match "dnsq: ID 0 comes back" "$out" "^rcode=NOERROR id=0 "

q MiXeD.CaSe.TeSt
eq "0x20 name: answered" "$ANSWER" 192.0.2.1
match "0x20 name: the question in the client's spelling" "$QOUT" \
	$'\n;MiXeD\\.CaSe\\.TeSt\\.[[:space:]]+IN[[:space:]]+A'
nomatch "0x20 name: dig saw no mismatch" "$QOUT" "mismatch"

q FlIp.TeSt
eq "caseflip upstream: its answer accepted" "$ANSWER" 192.0.2.4
match "caseflip upstream: the question in the client's spelling" "$QOUT" \
	$'\n;FlIp\\.TeSt\\.[[:space:]]+IN[[:space:]]+A'
q flip.test +tcp
eq "caseflip upstream over tcp: its answer accepted" "$ANSWER" 192.0.2.4
match "caseflip upstream over tcp: the client's spelling" "$QOUT" \
	$'\n;flip\\.test\\.[[:space:]]+IN[[:space:]]+A'

# ---- EDNS ----------------------------------------------------------------------

q e1.test +bufsize=1400
eq "EDNS 1400: answered" "$ANSWER" 192.0.2.1
match "EDNS 1400: the OPT went upstream with its size" "$(last_log up)" \
	"^udp e1\\.test A id=[0-9]+ edns=1400 do=0 rd=1 cd=0 ad=1 ms=[0-9]+$"
match "EDNS: the client gets an OPT back" "$QOUT" "OPT PSEUDOSECTION"
q e2.test +dnssec
match "EDNS DO bit: passed upstream" "$(last_log up)" \
	"^udp e2\\.test A id=[0-9]+ edns=[0-9]+ do=1 rd=1 cd=0 ad=1 ms=[0-9]+$"
q e3.test +noedns
eq "no EDNS: answered" "$ANSWER" 192.0.2.1
match "no EDNS: none upstream" "$(last_log up)" \
	"^udp e3\\.test A id=[0-9]+ edns=none do=0 rd=1 cd=0 ad=1 ms=[0-9]+$"
nomatch "no EDNS: no OPT in the answer" "$QOUT" "OPT PSEUDOSECTION"
q e4.test +norecurse
match "RD clear: passed upstream clear" "$(last_log up)" \
	"^udp e4\\.test A .* rd=0 cd=0 ad=1 ms=[0-9]+$"

# ---- truncation ----------------------------------------------------------------

q big.test +noedns +ignore
eq "100 records, no EDNS: NOERROR" "$RCODE" NOERROR
match "100 records, no EDNS: TC set" "$FLAGS" "(^| )tc( |$)"
n=$(msgsize)
lt "100 records, no EDNS: at most 512 bytes" "${n:-99999}" 513
ge "100 records, no EDNS: not empty" "${n:-0}" 12

q big.test +bufsize=1232 +ignore
match "100 records, EDNS 1232: TC set" "$FLAGS" "(^| )tc( |$)"
n=$(msgsize)
lt "100 records, EDNS 1232: at most 1232 bytes" "${n:-99999}" 1233

q big.test +bufsize=4096 +ignore
eq "100 records, EDNS 4096: all of them over UDP" "$(wc -w <<<"$ANSWER")" 100
nomatch "100 records, EDNS 4096: no TC" "$FLAGS" "(^| )tc( |$)"

: >"$T/up.log"
q big.test +noedns
eq "100 records: dig retries over TCP and gets all" \
	"$(wc -w <<<"$ANSWER")" 100
match "100 records: the TCP retry" "$QOUT" "Truncated, retrying in TCP mode"
eq "100 records: forwarded over TCP" "$(grep -c '^tcp big\.test ' \
	"$T/up.log")" 1

: >"$T/up.log"
q tc.test +ignore
match "upstream TC: returned with TC" "$FLAGS" "(^| )tc( |$)"
eq "upstream TC: no answer in it" "$ANSWER" ""
q tc.test
eq "upstream TC: the client's TCP retry gets the answer" "$ANSWER" 192.0.2.5
eq "upstream TC: the retry went upstream over TCP" \
	"$(grep -c '^tcp tc\.test ' "$T/up.log")" 1
q tc2.test +tcp
match "query over TCP: forwarded over TCP" "$(last_log up)" "^tcp tc2\\.test A"
eq "query over TCP: answered" "$ANSWER" 192.0.2.1

# ---- TCP: several queries on one connection -------------------------------------

m1=$("$DNSQ" -m 101 p1.test)
m2=$("$DNSQ" -m 102 p2.test)
m3=$("$DNSQ" -m 103 p3.test AAAA)
out=$("$DNSQ" -t -w 3000 127.0.0.1 "$DNSFWD_PORT" "$m1" "$m2" "$m3")
rc=$?
eq "pipelining: three queries on one connection, three answers" "$rc" 0
eq "pipelining: each ID answered once" \
	"$(grep -o 'id=[0-9]*' <<<"$out" | sort | paste -sd ' ' -)" \
	"id=101 id=102 id=103"
eq "pipelining: all NOERROR" "$(grep -c '^rcode=NOERROR' <<<"$out")" 3

ms=$("$DNSQ" -m 201 slow.test)
mf=$("$DNSQ" -m 202 fast.test)
start=$(date +%s%N)
out=$("$DNSQ" -t -w 3000 127.0.0.1 "$DNSFWD_PORT" "$ms" "$mf")
rc=$?
ms_total=$((($(date +%s%N) - start) / 1000000))
eq "out of order: both answered" "$rc" 0
match "out of order: the fast one first" "$(head -n 1 <<<"$out")" \
	"^rcode=NOERROR id=202 .* an=1 "
match "out of order: then the delayed one" "$(sed -n 2p <<<"$out")" \
	"^rcode=NOERROR id=201 .* an=1 "
ge "out of order: the delayed one took its delay (ms)" "$ms_total" 550
lt "out of order: ... and not much more (ms)" "$ms_total" 2000

if command -v kdig >/dev/null 2>&1; then
	out=$(kdig @127.0.0.1 -p "$DNSFWD_PORT" +tcp +keepopen +retry=0 \
	    +timeout=3 k1.test k2.test k3.test 2>&1)
	eq "kdig +keepopen: three answers" \
		"$(grep -c 'status: NOERROR' <<<"$out")" 3
else
	skip "kdig pipelining" knot-dnsutils
fi

# ---- idle and half-sent TCP clients do not hold up UDP ---------------------------

"$DNSQ" -t -w 4000 127.0.0.1 "$DNSFWD_PORT" '' >"$T/idle.out" 2>&1 &
idle=$!
track_pid "$idle"
"$DNSQ" -t -r -w 4000 127.0.0.1 "$DNSFWD_PORT" '00' >"$T/half.out" 2>&1 &
half=$!
track_pid "$half"
"$DNSQ" -t -r -w 4000 127.0.0.1 "$DNSFWD_PORT" "0040${m1:0:20}" \
	>"$T/part.out" 2>&1 &
part=$!
track_pid "$part"
_tcp_open()
{
	[ "$(ss -Htn state established "( sport = :$DNSFWD_PORT )" |
	    wc -l)" -ge "$1" ]
}
ok "three TCP clients connected, idle or half-sent" wait_for 10 _tcp_open 3
q i1.test
eq "idle TCP clients open: UDP answered" "$ANSWER" 192.0.2.1
lt "idle TCP clients open: UDP at once (ms)" "$MS" 500
q i2.test +tcp
eq "idle TCP clients open: another TCP client answered" "$ANSWER" 192.0.2.1
lt "idle TCP clients open: ... at once (ms)" "$MS" 500
ok "idle TCP clients: dnsfwd still running" kill -0 "$DNSFWD_PID"
# RFC 7766 6.2.3: a client that sends nothing is closed after 10 s
start=$(date +%s%N)
"$DNSQ" -t -w 15000 127.0.0.1 "$DNSFWD_PORT" "" >"$T/idle10.out" 2>&1
ms=$((($(date +%s%N) - start) / 1000000))
eq "TCP idle timeout: a silent client is closed" "$(cat "$T/idle10.out")" \
	closed
ge "TCP idle timeout: not before 10 s (ms)" "$ms" 9500
lt "TCP idle timeout: nor long after (ms)" "$ms" 14000
stop_dnsfwd
eq "SIGTERM with idle TCP clients: exit 0" "$DNSFWD_STATUS" 0
for p in "$idle" "$half" "$part"; do
	wait "$p" 2>/dev/null
	_untrack_pid "$p"
done

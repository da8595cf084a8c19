#!/usr/bin/env bash
# t-fakeup.sh: fakeup itself, asked directly with dig (no dnsfwd), so that
# a failure in the other scenarios can be trusted to be dnsfwd's.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils

start_fakeup up \
	'# rules may carry comments' \
	'a.test answer 192.0.2.1 192.0.2.2 ttl=42' \
	'v6.test answer 2001:db8::1' \
	'c.test cname t.example.test 192.0.2.9' \
	'sf.test servfail' \
	'rf.test refused' \
	'nd.test nodata ttl=30 min=20' \
	'ns.test nxdomain nosoa' \
	'slow.test delay 300 answer 192.0.2.3' \
	'id.test badid answer 192.0.2.4' \
	'port.test badport answer 192.0.2.4' \
	'q.test badq answer 192.0.2.4' \
	'flip.test caseflip answer 192.0.2.4' \
	'tc.test tc 192.0.2.5' \
	'big.test large 100' \
	'junk.test garbage' \
	'drop.test drop' \
	'close.test close' \
	'*.w.test refused' \
	'* answer 192.0.2.200' \
	'* answer 192.0.2.201'

# q asks DNSFWD_ADDR:DNSFWD_PORT; point it at fakeup.
DNSFWD_PORT=$up_port

q a.test
eq "answer: rcode" "$RCODE" NOERROR
eq "answer: two A records" "$ANSWER" "192.0.2.1 192.0.2.2"
eq "answer: ttl=42" "$TTL" 42
eq "answer: flags qr rd ra" "$FLAGS" "qr rd ra"
match "answer: OPT with size 4096" "$QOUT" "udp: 4096"

q v6.test AAAA
eq "answer: IPv6 address gives AAAA" "$ANSWER" "2001:db8::1"

q c.test
eq "cname: CNAME then A" "$ANSWER" "192.0.2.9 t.example.test."

q zz.test
eq "first matching rule wins" "$ANSWER" "192.0.2.200"

start_fakeup none
DNSFWD_PORT=$none_port
q nx.example.test
eq "no rule matches: NXDOMAIN" "$RCODE" NXDOMAIN
eq "nxdomain: SOA in authority" "$AUTHORITY" SOA
soa='example\.test\.[[:space:]]+60[[:space:]]+IN[[:space:]]+SOA[[:space:]]+'
soa+='ns\.example\.test\. hostmaster\.example\.test\. 1 3600 600 86400 60'
match "nxdomain: SOA owner is the last two labels, minimum 60" "$QOUT" "$soa"
DNSFWD_PORT=$up_port

q nd.test
eq "nodata: NOERROR" "$RCODE" NOERROR
eq "nodata: no answer" "$ANSWER" ""
eq "nodata: SOA ttl=30" "$TTL" 30
match "nodata: SOA min=20" "$QOUT" "86400 20"

q ns.test
eq "nxdomain nosoa: NXDOMAIN" "$RCODE" NXDOMAIN
eq "nxdomain nosoa: no authority" "$AUTHORITY" ""

q sf.test
eq "servfail" "$RCODE" SERVFAIL
q rf.test
eq "refused" "$RCODE" REFUSED
q x.y.w.test
eq "*.w.test matches a subdomain" "$RCODE" REFUSED
q w.test
eq "*.w.test does not match w.test itself" "$ANSWER" "192.0.2.200"

q slow.test
eq "delay 300: answered" "$ANSWER" "192.0.2.3"
ge "delay 300: took at least 300 ms" "$MS" 300
lt "delay 300: took less than 1500 ms" "$MS" 1500

# fakeup keeps serving while a delayed reply is pending.
dig @127.0.0.1 -p "$up_port" slow.test +tries=1 +time=3 +nocookie \
	>"$T/slow.out" 2>&1 &
bg=$!
track_pid "$bg"
wait_for 10 grep -q slow.test "$T/up.log"
q a.test
eq "delay: other queries served meanwhile" "$ANSWER" "192.0.2.1 192.0.2.2"
lt "delay: ... without waiting for it" "$MS" 250
wait "$bg"
match "delay: the delayed query still answered" "$(cat "$T/slow.out")" \
	"192\\.0\\.2\\.3"

q id.test +time=1
eq "badid: no usable answer" "$RCODE" TIMEOUT
match "badid: dig saw the wrong ID" "$QOUT" "ID mismatch"

q port.test +time=1
eq "badport: no usable answer" "$RCODE" TIMEOUT

q q.test +time=1
eq "badq: no usable answer" "$RCODE" TIMEOUT
match "badq: dig saw another question" "$QOUT" "mismatch: got r\\.test"

q flip.test
match "caseflip: question case flipped" "$QOUT" "FLIP\\.TEST\\."

q junk.test +time=1
eq "garbage: dig saw a malformed reply" "$RCODE" MALFORMED

q drop.test +time=1
eq "drop: no reply" "$RCODE" TIMEOUT
q close.test +tcp +time=1
eq "close over tcp: no reply" "$RCODE" TIMEOUT

q tc.test +ignore
match "tc over udp: TC set" "$FLAGS" "(^| )tc( |$)"
eq "tc over udp: no answer" "$ANSWER" ""
q tc.test +tcp
eq "tc over tcp: the answer" "$ANSWER" "192.0.2.5"
eq "tc over tcp: no TC" "$FLAGS" "qr rd ra"
q tc.test
eq "tc: dig retries over tcp" "$ANSWER" "192.0.2.5"

q big.test +tcp
eq "large 100 over tcp: 100 records" "$(wc -w <<<"$ANSWER")" 100
match "large 100: 10.0.x.y addresses" "$ANSWER" \
	"^10\\.0\\.0\\.1 10\\.0\\.0\\.10 "

# The log: one line per query, the name as received.
: >"$T/up.log"
q MiXeD.a.test
id=$(sed -n 's/.*status: [A-Z]*, id: \([0-9]*\)$/\1/p' <<<"$QOUT")
match "log: udp line format" "$(cat "$T/up.log")" \
	"^udp MiXeD\\.a\\.test A id=$id edns=1232 do=0 rd=1 cd=0 ad=[01] ms=[0-9]{13}\$"
eq "asked: case-insensitive" "$(asked up mixed.a.test.)" 1
: >"$T/up.log"
q a.test MX +tcp +dnssec +norecurse +bufsize=1400
id=$(sed -n 's/.*status: [A-Z]*, id: \([0-9]*\)$/\1/p' <<<"$QOUT")
match "log: tcp, DO, no RD" "$(cat "$T/up.log")" \
	"^tcp a\\.test MX id=$id edns=1400 do=1 rd=0 cd=0 ad=[01] ms=[0-9]{13}\$"
match "reply echoes DO" "$QOUT" "flags: do;"
: >"$T/up.log"
q . TYPE65534 +noedns
eq "log: root, unknown type, no EDNS" "$(cut -d' ' -f1-3,5 "$T/up.log")" \
	"udp . TYPE65534 edns=none"
eq "asked: total" "$(asked up)" 1

# The rule file is re-read when it changes, atomically or in place.
set_rules up 'a.test answer 192.0.2.77'
q a.test
eq "reload: atomic rewrite takes effect" "$ANSWER" "192.0.2.77"
printf '%s\n' 'a.test answer 192.0.2.78' >"$T/up.rules"
q a.test
eq "reload: in-place rewrite of the same size takes effect" "$ANSWER" \
	"192.0.2.78"
set_rules up
q a.test
eq "reload: empty rule file means NXDOMAIN" "$RCODE" NXDOMAIN
set_rules up 'a.test bogus' 'b.test answer 192.0.2.79'
q b.test
eq "reload: a bad line is skipped, the rest used" "$ANSWER" "192.0.2.79"
ok "reload: the bad line is reported" grep -q "up.rules:1: .*bogus" \
	"$T/up.err"

if command -v kdig >/dev/null 2>&1; then
	kq b.test
	eq "kdig: answer" "$ANSWER" "192.0.2.79"
	kq b.test +tcp
	eq "kdig over tcp: answer" "$ANSWER" "192.0.2.79"
else
	skip "kdig queries" knot-dnsutils
fi

if ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128'; then
	FAKEUP_ADDR='[::1]' start_fakeup up6 '* answer 192.0.2.6'
	ok "ipv6: listens on [::1]" grep -q '^fakeup: listening on \[::1\]:' \
		"$T/up6.err"
	DNSFWD_ADDR=::1 DNSFWD_PORT=$up6_port q a.test +tcp
	eq "ipv6: answer over tcp" "$ANSWER" "192.0.2.6"
else
	skip "ipv6 listener: no ::1 on lo" iproute2
fi

stop_fakeup up
eq "SIGTERM: exit status 0" "$up_status" 0

#!/usr/bin/env bash
# t-nxall.sh: "dnsfwd -R -a /#/", the replacement for a netcat NXDOMAIN
# server: every query gets NXDOMAIN with qr aa rd ra and its own question
# back, over UDP and TCP, for any type; then 10,000 quick queries with
# dnsperf are all answered and dnsfwd keeps running.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils

start_dnsfwd -R -a '/#/'
ok "no 'no upstream' warning: -a /#/ answers everything" \
	bash -c "! grep -q 'no upstream' '$DNSFWD_ERR'"

# question_re NAME TYPE: the question line dig prints.
question_re()
{
	local n=${1//./\\.}

	printf '\n;%s\\.?[[:space:]]+IN[[:space:]]+%s\n' "$n" "$2"
}

for proto in udp tcp; do
	opt=+notcp
	[ "$proto" = tcp ] && opt=+tcp
	for type in A AAAA MX TXT; do
		name=Some-Name.$type.$proto.example.COM
		q "$name" "$type" "$opt"
		eq "$proto $type: NXDOMAIN" "$RCODE" NXDOMAIN
		eq "$proto $type: flags qr aa rd ra" "$FLAGS" "qr aa rd ra"
		eq "$proto $type: no answer" "$ANSWER" ""
		match "$proto $type: QUERY: 1, the question echoed as asked" \
			"$QOUT" "QUERY: 1, ANSWER: 0, AUTHORITY: 0,.*$(
			question_re "$name" "$type")"
		match "$proto $type: the EDNS OPT answered" "$QOUT" \
			"; EDNS: version: 0"
	done
done

q plain.example +noedns
eq "no EDNS: NXDOMAIN" "$RCODE" NXDOMAIN
match "no EDNS: no OPT in the reply, ADDITIONAL: 0" "$QOUT" \
	"ADDITIONAL: 0"
q norec.example +norecurse
eq "no RD in the query: flags qr aa ra" "$FLAGS" "qr aa ra"
q . SOA
eq "the root: NXDOMAIN" "$RCODE" NXDOMAIN
match "the root: question echoed" "$QOUT" "$(question_re "" SOA)"
q x.example TYPE65280
eq "an unknown type: NXDOMAIN" "$RCODE" NXDOMAIN
if command -v kdig >/dev/null 2>&1; then
	kq kdig.example AAAA
	eq "kdig: NXDOMAIN" "$RCODE" NXDOMAIN
	kq kdig.example MX +tcp
	eq "kdig over TCP: NXDOMAIN" "$RCODE" NXDOMAIN
else
	skip "kdig queries" knot-dnsutils
fi

# Several queries on one TCP connection (dig +keepopen).
QOUT=$(dig @"$DNSFWD_ADDR" -p "$DNSFWD_PORT" +tcp +keepopen +tries=1 \
	+time=3 +nocookie one.example A two.example MX three.example TXT 2>&1)
eq "three queries on one TCP connection: three NXDOMAIN" \
	"$(grep -c 'status: NXDOMAIN' <<<"$QOUT")" 3

# ---- 10,000 quick queries ---------------------------------------------------
if ! command -v dnsperf >/dev/null 2>&1; then
	skip "10,000 queries with dnsperf" dnsperf
	exit 0
fi
types=(A AAAA MX TXT)
for ((i = 0; i < 10000; i++)); do
	printf 'n%d.perf.example %s\n' "$i" "${types[i % 4]}"
done >"$T/perf.txt"
timeout 60 dnsperf -s "$DNSFWD_ADDR" -p "$DNSFWD_PORT" -d "$T/perf.txt" \
	-n 1 -c 4 -q 100 -t 5 >"$T/perf.out" 2>&1
rc=$?
perf=$(cat "$T/perf.out")
eq "dnsperf: exit 0" "$rc" 0
sent=$(sed -n 's/^ *Queries sent: *\([0-9]*\).*/\1/p' "$T/perf.out")
done_=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$T/perf.out")
lost=$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' "$T/perf.out")
nx=$(sed -n 's/^ *Response codes: .*NXDOMAIN \([0-9]*\).*/\1/p' \
	"$T/perf.out")
eq "dnsperf: 10,000 sent" "$sent" 10000
eq "dnsperf: 10,000 completed" "$done_" 10000 || diag "$perf"
eq "dnsperf: 0 lost" "$lost" 0
eq "dnsperf: 10,000 NXDOMAIN" "$nx" 10000
qps=$(sed -n 's/^ *Queries per second: *\([0-9.]*\).*/\1/p' "$T/perf.out")
echo "# dnsperf: ${qps:-?} queries per second"

ok "dnsfwd still running after 10,000 queries" _alive "$DNSFWD_PID"
q after.example MX
eq "dnsfwd still answers: NXDOMAIN" "$RCODE" NXDOMAIN
eq "dnsfwd still answers: qr aa rd ra" "$FLAGS" "qr aa rd ra"
q after.example +tcp
eq "dnsfwd still answers over TCP" "$RCODE" NXDOMAIN

stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

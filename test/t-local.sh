#!/usr/bin/env bash
# t-local.sh: -a /DOMAIN/IP answers A or AAAA locally (the other family
# NODATA), for the domain and its subdomains, TTL 0 and AA set; -a /DOMAIN/
# answers NXDOMAIN; other names are still forwarded.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils

# local_is DESC NAME TYPE RCODE ANSWER [DIG-ARGS...]: one query; the
# answer, RCODE, AA and TTL 0 as one assertion each.
local_is()
{
	local desc=$1 name=$2 type=$3 rcode=$4 answer=$5

	shift 5
	q "$name" "$type" "$@"
	eq "$desc: $rcode" "$RCODE" "$rcode"
	eq "$desc: answer '$answer'" "$ANSWER" "$answer"
	eq "$desc: flags qr aa rd ra" "$FLAGS" "qr aa rd ra"
	if [ -n "$answer" ]; then
		eq "$desc: TTL 0" "$TTL" 0
	fi
}

start_fakeup up '* answer 192.0.2.1'

start_dnsfwd -R -s "127.0.0.1#$up_port" \
	-a /v4.test/10.1.2.3 -a /v6.test/fd00::1 \
	-a /both.test/10.0.0.1 -a /both.test/fd00::2 -a /gone.test/ \
	-a /m1.test/m2.test/10.9.9.9

local_is "v4.test A" v4.test A NOERROR 10.1.2.3
local_is "v4.test AAAA: NODATA" v4.test AAAA NOERROR ""
local_is "v4.test MX: NODATA" v4.test MX NOERROR ""
local_is "www.v4.test A: a subdomain" www.v4.test A NOERROR 10.1.2.3
local_is "a.b.c.v4.test A: a deep subdomain" a.b.c.v4.test A NOERROR \
	10.1.2.3
local_is "V4.TeSt A: any case" V4.TeSt A NOERROR 10.1.2.3
match "V4.TeSt: the answer owner is the name as asked" "$QOUT" \
	$'\nV4\\.TeSt\\.[[:space:]]+0[[:space:]]+IN[[:space:]]+A[[:space:]]+10\\.1\\.2\\.3'
local_is "v4.test A over TCP" v4.test A NOERROR 10.1.2.3 +tcp
local_is "v4.test A without EDNS" v4.test A NOERROR 10.1.2.3 +noedns

local_is "v6.test AAAA" v6.test AAAA NOERROR fd00::1
local_is "v6.test A: NODATA" v6.test A NOERROR ""
local_is "x.v6.test AAAA: a subdomain" x.v6.test AAAA NOERROR fd00::1
local_is "v6.test AAAA over TCP" v6.test AAAA NOERROR fd00::1 +tcp

local_is "both.test A" both.test A NOERROR 10.0.0.1
local_is "both.test AAAA" both.test AAAA NOERROR fd00::2
local_is "both.test TXT: NODATA" both.test TXT NOERROR ""
local_is "sub.both.test A" sub.both.test A NOERROR 10.0.0.1
local_is "sub.both.test AAAA" sub.both.test AAAA NOERROR fd00::2

local_is "gone.test A: NXDOMAIN" gone.test A NXDOMAIN ""
local_is "gone.test AAAA: NXDOMAIN" gone.test AAAA NXDOMAIN ""
local_is "www.gone.test: NXDOMAIN" www.gone.test A NXDOMAIN ""
local_is "gone.test over TCP: NXDOMAIN" gone.test MX NXDOMAIN "" +tcp

local_is "/m1.test/m2.test/IP: m1.test" m1.test A NOERROR 10.9.9.9
local_is "/m1.test/m2.test/IP: x.m2.test" x.m2.test A NOERROR 10.9.9.9

eq "local names: the upstream was never asked" "$(asked up)" 0

# Names next to the rules are forwarded.
for name in test xv4.test v4.test.example v6.test.example gone-test \
	notgone.test; do
	q "$name"
	eq "$name: forwarded (the upstream's answer)" "$ANSWER" 192.0.2.1
	eq "$name: not authoritative" "$FLAGS" "qr rd ra"
done
eq "forwarded names: the upstream asked six times" "$(asked up)" 6
stop_dnsfwd

# -a /#/IP answers every name; a longer rule still wins.
start_dnsfwd -R -a '/#/10.7.7.7' -a /v4.test/10.1.2.3 -a /gone.test/
local_is "-a /#/IP: any name" anything.example A NOERROR 10.7.7.7
local_is "-a /#/IP: AAAA NODATA" anything.example AAAA NOERROR ""
local_is "-a /#/IP: v4.test still its own" v4.test A NOERROR 10.1.2.3
local_is "-a /#/IP: gone.test still NXDOMAIN" gone.test A NXDOMAIN ""
stop_dnsfwd

# Bad values are usage errors (exit 1, the option named).
for bad in /x.test/not-an-address /x.test/10.1.2.300 x.test/10.1.2.3 \
	'/bad..name/10.1.2.3'; do
	# shellcheck disable=SC2086  # DNSFWD_WRAP is a command prefix
	timeout 5 ${DNSFWD_WRAP:-} "$DNSFWD" -l 127.0.0.1:0 -R -a "$bad" \
		>"$T/bad.out" 2>&1
	rc=$?
	eq "-a $bad: exit 1" "$rc" 1
	match "-a $bad: the message names -a" "$(cat "$T/bad.out")" \
		"(^|[^a-z])-a([^a-z]|$)"
done

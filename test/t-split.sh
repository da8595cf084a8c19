#!/usr/bin/env bash
# t-split.sh: split DNS with -s /DOMAIN/ADDR: a domain and its subdomains
# go to their own upstreams (the sequential policy among them), everything
# else to the default list; label boundaries, case, the longest suffix
# across -s and -a, and "-s /DOMAIN/#" (the default list).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils

# nomatch DESC STRING REGEX: STRING does not match (lib.sh has only match).
nomatch()
{
	if [[ $2 =~ $3 ]]; then
		fail "$1" "got:      '${BASH_REMATCH[0]}'" \
		    "expected no match for: $3"
		return 1
	fi
	pass "$1"
}

# clear_logs: forget what the fakeups were asked so far.
clear_logs()
{
	local n

	for n in up1 up2 up3; do
		: >"$T/$n.log"
	done
}

start_fakeup up1 \
	'neg.corp.example nxdomain' \
	'nodata.corp.example nodata' \
	'bothneg.corp.example nxdomain' \
	'fail.corp.example servfail' \
	'refused.corp.example refused' \
	'drop.corp.example drop' \
	'* answer 192.0.2.1'
start_fakeup up2 \
	'bothneg.corp.example nxdomain' \
	'* answer 192.0.2.2'
start_fakeup up3 '* answer 192.0.2.3'
UP1=127.0.0.1#$up1_port
UP2=127.0.0.1#$up2_port
UP3=127.0.0.1#$up3_port

# ---- -s /corp.example/UP1 -s /corp.example/UP2 -s UP3 ----------------------
start_dnsfwd -R -t 400 -s "/corp.example/$UP1" -s "/corp.example/$UP2" \
	-s "$UP3"

q corp.example
eq "corp.example: answered by UP1" "$ANSWER" 192.0.2.1
eq "corp.example: NOERROR" "$RCODE" NOERROR
eq "corp.example: flags qr rd ra (not authoritative)" "$FLAGS" "qr rd ra"
routed "corp.example: only UP1 asked" corp.example "up1=1 up2=0 up3=0"

q www.corp.example
eq "subdomain: answered by UP1" "$ANSWER" 192.0.2.1
routed "subdomain: only UP1 asked" www.corp.example "up1=1 up2=0 up3=0"

q a.b.c.corp.example
eq "deep subdomain: answered by UP1" "$ANSWER" 192.0.2.1
routed "deep subdomain: only UP1 asked" a.b.c.corp.example \
	"up1=1 up2=0 up3=0"

q neg.corp.example
eq "UP1 NXDOMAIN: UP2 asked next, its positive answer wins" "$ANSWER" \
	192.0.2.2
routed "UP1 NXDOMAIN: UP1 then UP2, not UP3" neg.corp.example \
	"up1=1 up2=1 up3=0"

q nodata.corp.example
eq "UP1 NODATA: UP2's answer" "$ANSWER" 192.0.2.2
routed "UP1 NODATA: UP1 then UP2" nodata.corp.example "up1=1 up2=1 up3=0"

q fail.corp.example
eq "UP1 SERVFAIL: UP2's answer" "$ANSWER" 192.0.2.2
routed "UP1 SERVFAIL: UP1 then UP2" fail.corp.example "up1=1 up2=1 up3=0"

q refused.corp.example
eq "UP1 REFUSED: UP2's answer" "$ANSWER" 192.0.2.2

q bothneg.corp.example
eq "both negative: NXDOMAIN" "$RCODE" NXDOMAIN
routed "both negative: the default list (UP3) is not asked" \
	bothneg.corp.example "up1=1 up2=1 up3=0"

q www.example.org
eq "other name: answered by UP3" "$ANSWER" 192.0.2.3
routed "other name: only UP3 asked" www.example.org "up1=0 up2=0 up3=1"

q example
eq "the parent of corp.example: UP3" "$ANSWER" 192.0.2.3
routed "the parent: only UP3 asked" example "up1=0 up2=0 up3=1"

# Label boundary: the rule matches whole labels, not a string suffix.
q evilcorp.example
eq "evilcorp.example: UP3, not UP1" "$ANSWER" 192.0.2.3
routed "evilcorp.example: only UP3 asked" evilcorp.example \
	"up1=0 up2=0 up3=1"
q www.evilcorp.example
eq "www.evilcorp.example: UP3" "$ANSWER" 192.0.2.3
q corp.example.evil.test
eq "corp.example as a prefix (corp.example.evil.test): UP3" "$ANSWER" \
	192.0.2.3
q corp-example
eq "corp-example: UP3" "$ANSWER" 192.0.2.3

# Case: the rule matches any case, and the client gets its question back.
q CoRp.ExAmPlE
eq "CoRp.ExAmPlE: UP1's answer" "$ANSWER" 192.0.2.1
match "CoRp.ExAmPlE: the question keeps its case" "$QOUT" \
	$'\n;CoRp\\.ExAmPlE\\.[[:space:]]+IN[[:space:]]+A'
q CaSe.CoRp.ExAmPlE
eq "CaSe.CoRp.ExAmPlE: UP1" "$ANSWER" 192.0.2.1
routed "CaSe.CoRp.ExAmPlE: only UP1 asked" case.corp.example \
	"up1=1 up2=0 up3=0"
q WWW.CORP.EXAMPLE. MX
eq "WWW.CORP.EXAMPLE. MX: UP1" "$ANSWER" 192.0.2.1
routed "WWW.CORP.EXAMPLE. MX: only UP1 asked" www.corp.example \
	"up1=2 up2=0 up3=0"

q tcp.corp.example +tcp
eq "over TCP: UP1" "$ANSWER" 192.0.2.1
ok "over TCP: forwarded over TCP" grep -q '^tcp tcp.corp.example ' \
	"$T/up1.log"

# A dead UP1 (timeout): UP2 answers after the 400 ms timeout.
q drop.corp.example
eq "UP1 silent: UP2 answers" "$ANSWER" 192.0.2.2
ge "UP1 silent: after the 400 ms timeout" "$MS" 400
lt "UP1 silent: without a second timeout" "$MS" 1500
routed "UP1 silent: UP1 then UP2" drop.corp.example "up1=1 up2=1 up3=0"
nomatch "UP1 silent: no reply with a wrong ID seen by the client" "$QOUT" \
	"ID mismatch"
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

# Both silent: SERVFAIL after the timeouts, with the client's ID.
start_fakeup silent1 '* drop'
start_fakeup silent2 '* drop'
start_dnsfwd -R -t 300 -s "/quiet.example/127.0.0.1#$silent1_port" \
	-s "/quiet.example/127.0.0.1#$silent2_port"
q x.quiet.example
eq "both upstreams silent: SERVFAIL" "$RCODE" SERVFAIL
nomatch "both upstreams silent: no reply with a wrong ID" "$QOUT" \
	"ID mismatch"
lt "both upstreams silent: within two timeouts and some" "$MS" 1500
stop_dnsfwd

# A closed port as UP1 (ECONNREFUSED): UP2 at once, no timeout paid.
start_fakeup dead
dead_port_=$dead_port
stop_fakeup dead
start_dnsfwd -R -t 1500 -s "/corp.example/127.0.0.1#$dead_port_" \
	-s "/corp.example/$UP2" -s "$UP3"
q refused2.corp.example
eq "UP1 port closed: UP2 answers" "$ANSWER" 192.0.2.2
lt "UP1 port closed: without the 1500 ms timeout" "$MS" 1000
routed "UP1 port closed: UP2 asked, UP3 not" refused2.corp.example \
	"up2=1 up3=0"
stop_dnsfwd

# ---- longest suffix wins -------------------------------------------------
clear_logs
for order in parent-first child-first; do
	if [ $order = parent-first ]; then
		start_dnsfwd -R -s "/example/$UP3" -s "/a.example/$UP1"
	else
		start_dnsfwd -R -s "/a.example/$UP1" -s "/example/$UP3"
	fi
	q "x.a.example"
	eq "$order: x.a.example goes to /a.example/ (UP1)" "$ANSWER" \
		192.0.2.1
	q "a.example"
	eq "$order: a.example goes to UP1" "$ANSWER" 192.0.2.1
	q "x.b.example"
	eq "$order: x.b.example goes to /example/ (UP3)" "$ANSWER" \
		192.0.2.3
	q "aa.example"
	eq "$order: aa.example goes to UP3" "$ANSWER" 192.0.2.3
	q "other.test"
	eq "$order: no rule and no default list: SERVFAIL" "$RCODE" SERVFAIL
	stop_dnsfwd
done
routed "longest suffix: x.a.example asked of UP1 only" x.a.example \
	"up1=2 up2=0 up3=0"
routed "longest suffix: x.b.example asked of UP3 only" x.b.example \
	"up1=0 up2=0 up3=2"

# -a beats -s when longer, -s beats -a when longer.
start_dnsfwd -R -s "/a.example/$UP1" -a /b.a.example/
q b.a.example
eq "-a /b.a.example/ beats -s /a.example/: NXDOMAIN" "$RCODE" NXDOMAIN
eq "-a /b.a.example/: authoritative" "$FLAGS" "qr aa rd ra"
q deep.b.a.example
eq "-a /b.a.example/: its subdomains too" "$RCODE" NXDOMAIN
routed "-a /b.a.example/: UP1 never asked" b.a.example "up1=0"
routed "-a /b.a.example/: UP1 never asked for a subdomain" \
	deep.b.a.example "up1=0"
q c.a.example
eq "-a /b.a.example/: c.a.example still forwarded to UP1" "$ANSWER" \
	192.0.2.1
stop_dnsfwd

start_dnsfwd -R -a /a2.example/ -s "/b.a2.example/$UP1"
q x.b.a2.example
eq "-s /b.a2.example/ beats -a /a2.example/: forwarded" "$ANSWER" \
	192.0.2.1
q x.a2.example
eq "-a /a2.example/: the rest NXDOMAIN" "$RCODE" NXDOMAIN
stop_dnsfwd

# The same domain in -s and -a: the local rule wins, whatever the order.
for order in s-first a-first; do
	if [ $order = s-first ]; then
		start_dnsfwd -R -s "/same.example/$UP1" -a /same.example/
	else
		start_dnsfwd -R -a /same.example/ -s "/same.example/$UP1"
	fi
	q www.same.example
	eq "$order: -a and -s for one domain: -a wins (NXDOMAIN)" \
		"$RCODE" NXDOMAIN
	eq "$order: ... authoritative" "$FLAGS" "qr aa rd ra"
	stop_dnsfwd
done
routed "same domain: UP1 never asked" www.same.example "up1=0"

# ---- -s /corp.example/# : the default list --------------------------------
clear_logs
start_dnsfwd -R -s "/example/$UP1" -s "/corp.example/#" -s "$UP3"
q www.corp.example.
eq "-s /corp.example/#: the default list (UP3), not /example/" "$ANSWER" \
	192.0.2.3
routed "-s /corp.example/#: UP1 not asked" www.corp.example. \
	"up1=0 up3=1"
q x.example
eq "-s /corp.example/#: x.example still goes to /example/ (UP1)" \
	"$ANSWER" 192.0.2.1
q other.test
eq "-s /corp.example/#: other names to the default list" "$ANSWER" \
	192.0.2.3
stop_dnsfwd

# "#" follows the default list as it is built from the resolv file too.
printf 'nameserver 127.0.0.1\n' >"$T/resolv.conf"
start_dnsfwd -r "$T/resolv.conf" -s "/example/$UP1" -s "/corp.example/#" \
	-s "$UP2"
q hash.corp.example
eq "-s /corp.example/# with -r: the default list's first server (UP2)" \
	"$ANSWER" 192.0.2.2
stop_dnsfwd

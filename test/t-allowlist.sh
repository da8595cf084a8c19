#!/usr/bin/env bash
# t-allowlist.sh: "-R -a /#/ -s /allowed.example/UPSTREAM" is an allowlist:
# allowed names and their subdomains are forwarded, every other name gets
# NXDOMAIN from dnsfwd itself (AA set) and never reaches the upstream;
# special-use names (localhost) keep their meaning.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils

start_fakeup up \
	'nx.allowed.example nxdomain' \
	'* answer 192.0.2.1 ttl=60'
UP=127.0.0.1#$up_port

start_dnsfwd -R -a '/#/' -s "/allowed.example/$UP" \
	-s "/also.example/second.example/$UP" -a /ads.allowed.example/

# ---- allowed: forwarded ----------------------------------------------------
q allowed.example
eq "allowed.example: the upstream's answer" "$ANSWER" 192.0.2.1
eq "allowed.example: NOERROR" "$RCODE" NOERROR
eq "allowed.example: not authoritative (forwarded)" "$FLAGS" "qr rd ra"
eq "allowed.example: the upstream's TTL" "$TTL" 60
eq "allowed.example: upstream asked once" "$(asked up allowed.example)" 1

q www.allowed.example
eq "www.allowed.example: forwarded" "$ANSWER" 192.0.2.1
eq "www.allowed.example: upstream asked" "$(asked up www.allowed.example)" 1

q a.b.c.allowed.example AAAA
eq "a.b.c.allowed.example AAAA: forwarded (NOERROR)" "$RCODE" NOERROR
eq "a.b.c.allowed.example AAAA: upstream asked" \
	"$(asked up a.b.c.allowed.example)" 1

q WwW.AlLoWeD.ExAmPlE MX
eq "WwW.AlLoWeD.ExAmPlE MX: forwarded, any case" "$ANSWER" 192.0.2.1
eq "WwW.AlLoWeD.ExAmPlE MX: upstream asked" \
	"$(asked up www.allowed.example)" 2

q tcp.allowed.example +tcp
eq "over TCP: forwarded" "$ANSWER" 192.0.2.1

q nx.allowed.example
eq "the upstream's NXDOMAIN is passed on" "$RCODE" NXDOMAIN
eq "... not authoritative: it came from the upstream" "$FLAGS" "qr rd ra"
eq "... with the upstream's SOA" "$AUTHORITY" SOA
eq "... upstream asked" "$(asked up nx.allowed.example)" 1

q x.also.example
eq "/also.example/second.example/UP: also.example forwarded" "$ANSWER" \
	192.0.2.1
q second.example TXT
eq "/also.example/second.example/UP: second.example forwarded" \
	"$ANSWER" 192.0.2.1

# ---- everything else: NXDOMAIN here ------------------------------------------
: >"$T/up.log"
n=0
for name in example.com www.example.org notallowed.example \
	evilallowed.example allowed.example.evil.test example \
	allowed-example x.y.z.test ads.allowed.example \
	tracker.ads.allowed.example ALLOWED.EXAMPLE.COM; do
	for type in A AAAA MX TXT; do
		q "$name" "$type"
		n=$((n + 1))
		if [ "$RCODE" != NXDOMAIN ] || [ "$FLAGS" != "qr aa rd ra" ] ||
		    [ -n "$ANSWER" ]; then
			eq "$name $type: NXDOMAIN, AA, no answer" \
				"$RCODE / $FLAGS / $ANSWER" \
				"NXDOMAIN / qr aa rd ra / "
			n=-1000
		fi
	done
done
ge "44 blocked queries (A, AAAA, MX, TXT): all NXDOMAIN, aa, no answer" \
	"$n" 44
eq "blocked queries: the upstream was never asked" "$(asked up)" 0
# special-use names keep their meaning (RFC 6761): /#/ names none of them
q localhost
eq "localhost under /#/: 127.0.0.1, from dnsfwd itself" \
	"$RCODE $ANSWER $(asked up localhost)" "NOERROR 127.0.0.1 0"

q blocked.example.net +tcp
eq "blocked over TCP: NXDOMAIN" "$RCODE" NXDOMAIN
eq "blocked over TCP: AA" "$FLAGS" "qr aa rd ra"
q . NS
eq "the root: NXDOMAIN" "$RCODE" NXDOMAIN
q www.example.com +norecurse
eq "blocked without RD: NXDOMAIN, no rd in the reply" "$RCODE $FLAGS" \
	"NXDOMAIN qr aa ra"
eq "blocked over TCP, root, no RD: upstream never asked" "$(asked up)" 0

q ads.allowed.example
eq "-a /ads.allowed.example/ inside the allowed domain: NXDOMAIN" \
	"$RCODE" NXDOMAIN
eq "... upstream not asked" "$(asked up ads.allowed.example)" 0

# Allowed names are still forwarded after all that.
q after.allowed.example
eq "allowed again: forwarded" "$ANSWER" 192.0.2.1
eq "allowed again: upstream asked" "$(asked up after.allowed.example)" 1

#!/usr/bin/env bash
# t-dnsmasq-opts.sh: the options people bring from dnsmasq, each over UDP
# and TCP, fresh and from the cache, in both policies:
#  - --filter-aaaa: AAAA questions get NODATA (an NXDOMAIN stays), A
#    answers lose nothing, a hosts-file AAAA goes too; HTTPS records from
#    a real dnsmasq (--dns-rr) lose their ipv6hint, keep the rest;
#  - --min-cache-ttl / --max-cache-ttl: what is kept and what TTL is handed
#    out (counting down from the clamp), forwarded answers capped;
#  - --no-negcache: a negative answer is asked again, a positive is not;
#  - --bogus-priv: private reverse names never leave; a -s rule for one
#    and the hosts file take precedence; public ones are forwarded;
#  - --domain-needed: single-label names never leave; a rule and the
#    hosts file still answer them.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils

start_fakeup up \
	'nx.test nxdomain' \
	'v6only.test/AAAA answer 2001:db8::6' \
	'v6only.test nodata' \
	'dual.test/AAAA answer 2001:db8::1 ttl=600' \
	'dual.test answer 192.0.2.1 ttl=600' \
	'short.test answer 192.0.2.5 ttl=5' \
	'long.test answer 192.0.2.7 ttl=86400' \
	'*.in-addr.arpa nxdomain' \
	'*.ip6.arpa nxdomain' \
	'* answer 192.0.2.9'
start_fakeup rev '*.168.192.in-addr.arpa nxdomain'
printf '192.0.2.50 printer\n2001:db8::50 printer\n10.1.2.3 nas\n' \
	>"$T/hosts"

for pol in sequential parallel; do
	popt=()
	[ "$pol" = parallel ] && popt=(--parallel)
	: >"$T/up.log"

	# ---- --filter-aaaa ----------------------------------------------------
	start_dnsfwd -R -s "127.0.0.1#$up_port" -H "$T/hosts" --filter-aaaa \
	    "${popt[@]}"
	for tr in udp tcp; do
		t=()
		[ "$tr" = tcp ] && t=(+tcp)
		for pass in fresh cached; do
			q dual.test AAAA "${t[@]}"
			eq "$pol $tr $pass: filter-aaaa: AAAA question: NODATA" \
			    "$RCODE [$ANSWER]" "NOERROR []"
			q dual.test A "${t[@]}"
			eq "$pol $tr $pass: filter-aaaa: A untouched" \
			    "$ANSWER" 192.0.2.1
		done
	done
	eq "$pol: filter-aaaa: the upstream was asked (for an NXDOMAIN)" \
	    "$(asked up dual.test)" 2
	q nx.test AAAA
	eq "$pol: filter-aaaa: the upstream's NXDOMAIN stays" "$RCODE" NXDOMAIN
	q printer AAAA
	eq "$pol: filter-aaaa: a hosts AAAA: NODATA too" "$RCODE [$ANSWER]" \
	    "NOERROR []"
	q printer A
	eq "$pol: filter-aaaa: a hosts A still" "$ANSWER" 192.0.2.50
	q localhost AAAA
	eq "$pol: filter-aaaa: localhost's ::1 too" "[$ANSWER]" "[]"
	stop_dnsfwd

	# ---- TTL clamps ------------------------------------------------------
	: >"$T/up.log"
	start_dnsfwd -R -s "127.0.0.1#$up_port" --min-cache-ttl 300 \
	    --max-cache-ttl 3600 "${popt[@]}"
	q short.test
	eq "$pol: min 300: forwarded with the upstream's TTL (as dnsmasq)" \
	    "$TTL" 5
	q short.test +tcp
	le_ttl=$TTL
	ok "$pol: min 300: cached, handed out counting down from 300 ($le_ttl)" \
	    test "$le_ttl" -le 300 -a "$le_ttl" -ge 250
	eq "$pol: min 300: the upstream asked once" "$(asked up short.test)" 1
	q long.test
	eq "$pol: max 3600: forwarded capped at 3600" "$TTL" 3600
	q long.test +tcp
	ok "$pol: max 3600: cached, at most 3600 ($TTL)" test "$TTL" -le 3600
	stop_dnsfwd

	# ---- --no-negcache ---------------------------------------------------
	: >"$T/up.log"
	start_dnsfwd -R -s "127.0.0.1#$up_port" --no-negcache "${popt[@]}"
	q nx.test
	q nx.test +tcp
	eq "$pol: no-negcache: NXDOMAIN asked again each time" \
	    "$(asked up nx.test)" 2
	q v6only.test A
	q v6only.test A
	eq "$pol: no-negcache: NODATA asked again too" \
	    "$(asked up v6only.test)" 2
	q dual.test
	q dual.test +tcp
	eq "$pol: no-negcache: a positive still cached" "$(asked up dual.test)" 1
	stop_dnsfwd

	# ---- --bogus-priv ----------------------------------------------------
	: >"$T/up.log"
	: >"$T/rev.log"
	start_dnsfwd -R -s "127.0.0.1#$up_port" --bogus-priv -H "$T/hosts" \
	    -s "/168.192.in-addr.arpa/127.0.0.1#$rev_port" "${popt[@]}"
	for n in 4.3.2.10.in-addr.arpa 10.in-addr.arpa \
	    1.0.17.172.in-addr.arpa 1.1.254.169.in-addr.arpa \
	    9.9.100.100.in-addr.arpa \
	    1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa \
	    b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.a.2.d.f.ip6.arpa \
	    8.e.f.ip6.arpa; do
		q "$n" PTR
		eq "$pol: bogus-priv: $n: NXDOMAIN here" "$RCODE" NXDOMAIN
		q "$n" PTR +tcp
		eq "$pol: bogus-priv: $n (tcp): NXDOMAIN here" "$RCODE" NXDOMAIN
	done
	eq "$pol: bogus-priv: none of them left" "$(asked up)" 0
	q 4.3.2.1.168.192.in-addr.arpa PTR
	eq "$pol: bogus-priv: a -s rule for 168.192 wins: its server asked" \
	    "$(asked rev 4.3.2.1.168.192.in-addr.arpa)" 1
	q 3.2.1.10.in-addr.arpa PTR
	eq "$pol: bogus-priv: the hosts file wins (nas)" "$ANSWER" nas.
	q 8.8.8.8.in-addr.arpa PTR
	eq "$pol: bogus-priv: a public address is forwarded" \
	    "$(asked up 8.8.8.8.in-addr.arpa)" 1
	q 172.in-addr.arpa SOA
	eq "$pol: bogus-priv: a name above the zones is forwarded" \
	    "$(asked up 172.in-addr.arpa)" 1
	stop_dnsfwd

	# ---- --domain-needed -------------------------------------------------
	: >"$T/up.log"
	start_dnsfwd -R -s "127.0.0.1#$up_port" --domain-needed -H "$T/hosts" \
	    -a /wpad/192.0.2.66 "${popt[@]}"
	for n in fileserver intranet; do
		q "$n"
		eq "$pol: domain-needed: $n: NXDOMAIN here" "$RCODE" NXDOMAIN
		q "$n" AAAA +tcp
		eq "$pol: domain-needed: $n AAAA (tcp): NXDOMAIN here" "$RCODE" \
		    NXDOMAIN
	done
	eq "$pol: domain-needed: single labels never left" "$(asked up)" 0
	q printer
	eq "$pol: domain-needed: the hosts file answers" "$ANSWER" 192.0.2.50
	q wpad
	eq "$pol: domain-needed: a rule answers" "$ANSWER" 192.0.2.66
	q www.example.org
	eq "$pol: domain-needed: a dotted name is forwarded" "$ANSWER" 192.0.2.9
	q org DNSKEY
	eq "$pol: domain-needed: a TLD's DNSKEY is forwarded (validators)" \
	    "$(asked up org)" 1
	stop_dnsfwd
done

# ---- --filter-aaaa on HTTPS records, from a real dnsmasq --------------------
if command -v dnsmasq >/dev/null; then
	PY=/usr/bin/python3
	DMPORT=$(free_port)
	# HTTPS 1 . alpn=h2 port=443 ipv4hint=192.0.2.1 ech=fe0daabbcc
	# ipv6hint=2001:db8::1
	hx="0001 00 0001 0003 026832 0003 0002 01bb 0004 0004 c0000201"
	hx="$hx 0005 0005 fe0daabbcc 0006 0010 20010db8000000000000000000000001"
	kept="0001 00 0001 0003 026832 0003 0002 01bb 0004 0004 c0000201"
	kept="$kept 0005 0005 fe0daabbcc"
	dnsmasq -k --port="$DMPORT" --listen-address=127.0.0.1 \
	    --bind-interfaces --no-resolv --no-hosts \
	    --dns-rr="svc.test,65,${hx// /}" \
	    --pid-file="$T/dm.pid" --log-facility="$T/dm.log" \
	    -u "$(id -un)" 2>"$T/dm.err" &
	track_pid $!
	# dnsmasq is up when it answers (a CHAOS question: nothing forwarded)
	wait_for 10 bash -c "dig +tries=1 +time=1 -p $DMPORT @127.0.0.1 \
	    CH TXT version.bind | grep -q 'status: NOERROR'" ||
	    fail "dnsmasq up on port $DMPORT" "$(cat "$T/dm.err")"
	start_dnsfwd -R -s "127.0.0.1#$DMPORT" --filter-aaaa
	for tr in udp tcp; do
		t=()
		[ "$tr" = tcp ] && t=(+tcp)
		for pass in fresh cached; do
			got=$(dig +short +unknownformat +tries=1 +time=3 \
			    -p "$DNSFWD_PORT" @127.0.0.1 svc.test TYPE65 \
			    "${t[@]}" | awk '{ $1 = $2 = ""; print }' |
			    tr -d ' ' | tr 'A-F' 'a-f')
			eq "HTTPS from dnsmasq, $tr, $pass: ipv6hint gone, the rest byte for byte" \
			    "$got" "${kept// /}"
		done
	done
	got=$(dig +short +unknownformat +tries=1 +time=3 -p "$DMPORT" \
	    @127.0.0.1 svc.test TYPE65 | awk '{ $1 = $2 = ""; print }' |
	    tr -d ' ' | tr 'A-F' 'a-f')
	eq "... (dnsmasq itself hands out the ipv6hint)" "$got" "${hx// /}"
	stop_dnsfwd
	kill "$(cat "$T/dm.pid")" 2>/dev/null
else
	fail "dnsmasq (apt-get install dnsmasq)"
fi

#!/usr/bin/env bash
# t-realclients.sh: the main scenarios as real clients see them, asked with
# both dig (BIND) and kdig (Knot): a positive answer, NXDOMAIN falling
# through to the next upstream, negatives only, SERVFAIL, AAAA, and TCP.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils

start_fakeup up1 \
	'pos.test answer 192.0.2.11' \
	'fall.test nxdomain' \
	'neg.test nodata' \
	'fail.test servfail' \
	'v6.test answer 2001:db8::11'
start_fakeup up2 \
	'pos.test answer 192.0.2.21' \
	'fall.test answer 192.0.2.22' \
	'neg.test nxdomain' \
	'fail.test refused' \
	'v6.test answer 2001:db8::21'
start_dnsfwd -R -c 0 -s "127.0.0.1#$up1_port" -s "127.0.0.1#$up2_port"

tools=(q)
if command -v kdig >/dev/null 2>&1; then
	tools+=(kq)
else
	skip "kdig scenarios" knot-dnsutils
fi

for t in "${tools[@]}"; do
	[ "$t" = q ] && c=dig || c=kdig
	for proto in udp tcp; do
		[ "$proto" = tcp ] && x=+tcp || x=
		w="$c $proto"
		: >"$T/up1.log"
		: >"$T/up2.log"
		# shellcheck disable=SC2086  # x is empty or one word
		$t pos.test $x
		eq "$w: positive: NOERROR" "$RCODE" NOERROR
		eq "$w: positive: the first upstream's answer" "$ANSWER" \
			192.0.2.11
		eq "$w: positive: the second not asked" "$(asked up2 pos.test)" 0
		# shellcheck disable=SC2086
		$t fall.test $x
		eq "$w: NXDOMAIN falls through: NOERROR" "$RCODE" NOERROR
		eq "$w: NXDOMAIN falls through: the second's answer" "$ANSWER" \
			192.0.2.22
		# shellcheck disable=SC2086
		$t neg.test $x
		eq "$w: NODATA then NXDOMAIN: NODATA (NOERROR, no answer)" \
			"$RCODE $ANSWER" "NOERROR "
		eq "$w: NODATA then NXDOMAIN: SOA" "$AUTHORITY" SOA
		# shellcheck disable=SC2086
		$t fail.test $x
		eq "$w: SERVFAIL then REFUSED: SERVFAIL" "$RCODE" SERVFAIL
		lt "$w: SERVFAIL then REFUSED: at once (ms)" "$MS" 1000
		# shellcheck disable=SC2086
		$t v6.test AAAA $x
		eq "$w: AAAA" "$ANSWER" 2001:db8::11
		if [ "$proto" = tcp ]; then
			eq "$w: forwarded over TCP" \
				"$(grep -c '^udp ' "$T/up1.log" "$T/up2.log" |
				awk -F: '{ n += $2 } END { print n }')" 0
		fi
	done
done
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

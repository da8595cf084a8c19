#!/usr/bin/env bash
# t-dns64.sh: --dns64 (RFC 6147), side by side with unbound's dns64 module
# (module-config "dns64 iterator", forward-zone to the same fake upstream):
# the same AAAA set for the same names, UDP and TCP, fresh and cached.
#  - a name with A only: AAAA made from each A, TTL bounded by the SOA
#    minimum of the AAAA NODATA;
#  - with AAAA: untouched; with only ::ffff:0:0/96 AAAA (excluded):
#    synthesised; a CNAME chain kept; NXDOMAIN passed on;
#  - every RFC 6052 prefix length (32, 40, 48, 56, 64, 96) with its u
#    octet, checked against python's ipaddress arithmetic;
#  - PTR under the prefix: a CNAME into in-addr.arpa;
#  - an IPv6-only namespace: glibc and musl getaddrinfo get the
#    synthesised address.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
PY=/usr/bin/python3

rules=('v4only.test/AAAA nodata min=120'
	'v4only.test answer 192.0.2.33 192.0.2.34 ttl=900'
	'dual.test/AAAA answer 2001:db8::5'
	'dual.test answer 192.0.2.5'
	'mapped.test/AAAA answer ::ffff:192.0.2.7'
	'mapped.test answer 192.0.2.7'
	'nx.test nxdomain'
	'noa.test nodata')
start_fakeup up "${rules[@]}" \
	'www.cn.test cname v4only.test 192.0.2.33 192.0.2.34'

# aaaa PORT NAME [DIG-ARGS]: the sorted AAAA addresses, or the RCODE
aaaa()
{
	local out

	out=$(dig +tries=1 +time=3 -p "$1" @127.0.0.1 "$2" AAAA "${@:3}")
	if grep -q 'status: NOERROR' <<<"$out"; then
		awk '$4 == "AAAA" { print $5 }' <<<"$out" | sort | paste -sd ' ' -
	else
		sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out"
	fi
}

start_fakeup up2 "${rules[@]}"
for pol in parallel sequential; do
start_dnsfwd -R -s "127.0.0.1#$up_port" -s "127.0.0.1#$up2_port" \
	--dns64 64:ff9b::/96 $([ "$pol" = parallel ] && echo --parallel)
for tr in udp tcp; do
	t=()
	[ "$tr" = tcp ] && t=(+tcp)
	for pass in fresh cached; do
		eq "$pol $tr $pass: A only: AAAA made from each A" \
		    "$(aaaa "$DNSFWD_PORT" v4only.test "${t[@]}")" \
		    "64:ff9b::c000:221 64:ff9b::c000:222"
		eq "$pol $tr $pass: an AAAA of its own: untouched" \
		    "$(aaaa "$DNSFWD_PORT" dual.test "${t[@]}")" "2001:db8::5"
		eq "$pol $tr $pass: only an excluded (::ffff:0:0/96) AAAA: made from A" \
		    "$(aaaa "$DNSFWD_PORT" mapped.test "${t[@]}")" \
		    "64:ff9b::c000:207"
		eq "$pol $tr $pass: NXDOMAIN passed on" \
		    "$(aaaa "$DNSFWD_PORT" nx.test "${t[@]}")" NXDOMAIN
		eq "$pol $tr $pass: no A either: the NODATA" \
		    "$(aaaa "$DNSFWD_PORT" noa.test "${t[@]}")" ""
	done
done
[ "$pol" = parallel ] && stop_dnsfwd
done
q v4only.test AAAA
ok "the TTL: at most the AAAA NODATA's SOA minimum, not the A's 900 ($TTL)" \
	test "$TTL" -le 120
q www.cn.test AAAA
match "a CNAME chain kept: CNAME then the AAAA" "$(awk '$4 == "CNAME" ||
	$4 == "AAAA" { print $4, $5 }' <<<"$QOUT" | paste -sd ' ' -)" \
	'^CNAME v4only\.test\. AAAA 64:ff9b::c000:221 AAAA 64:ff9b::c000:222$'
# parallel: AAAA and A of both (4); sequential: AAAA of both (a NODATA
# walks on), A of the first, which answers (3); the rest from the cache
eq "the upstreams asked AAAA, then A, once per exchange (cached after)" \
	"$(($(asked up v4only.test) + $(asked up2 v4only.test)))" 7
q -x 64:ff9b::c000:221
eq "PTR under the prefix: a CNAME into in-addr.arpa" \
	"$(awk '$4 == "CNAME" { print $5 }' <<<"$QOUT")" \
	"33.2.0.192.in-addr.arpa."
q -x 2001:db8::5
eq "PTR outside the prefix: forwarded" "$(asked up \
	5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa)" 1
q v4only.test AAAA +cd
eq "CD set: not synthesised (RFC 6147 5.5): the NODATA" "[$ANSWER]" "[]"
stop_dnsfwd

# ---- every prefix length -----------------------------------------------------
for p in 2001:db8::/32 2001:db8:100::/40 2001:db8:122::/48 \
    2001:db8:122:300::/56 2001:db8:122:344::/64 2001:db8:122:344::/96; do
	want=$("$PY" - "$p" <<'EOF'
import ipaddress, sys
net = ipaddress.IPv6Network(sys.argv[1])
plen = net.prefixlen
v4 = ipaddress.IPv4Address('192.0.2.33').packed
b = bytearray(net.network_address.packed)
# RFC 6052 2.2: the IPv4 address around the u octet (bits 64-71)
pos = {32: [4, 5, 6, 7], 40: [5, 6, 7, 9], 48: [6, 7, 9, 10],
       56: [7, 9, 10, 11], 64: [9, 10, 11, 12], 96: [12, 13, 14, 15]}[plen]
for i, at in enumerate(pos):
    b[at] = v4[i]
print(ipaddress.IPv6Address(bytes(b)))
EOF
)
	start_dnsfwd -R -s "127.0.0.1#$up_port" --dns64 "$p"
	got=$(aaaa "$DNSFWD_PORT" v4only.test | awk '{ print $1 }')
	eq "prefix $p: 192.0.2.33 embedded as RFC 6052 says" "$got" "$want"
	q -x "$want"
	eq "prefix $p: its PTR, a CNAME to 33.2.0.192.in-addr.arpa" \
	    "$(awk '$4 == "CNAME" { print $5 }' <<<"$QOUT")" \
	    "33.2.0.192.in-addr.arpa."
	stop_dnsfwd
done
for bad in 64:ff9b::/95 10.0.0.0/8 2001:db8:0:0:ff00::/96; do
	${DNSFWD_WRAP:-} "$DNSFWD" -R --dns64 "$bad" 2>"$T/bad.err"
	eq "--dns64 $bad: exit 1" "$?" 1
	match "--dns64 $bad: said" "$(cat "$T/bad.err")" \
	    '^dnsfwd: --dns64: .*(not a NAT64 prefix|is not)'
done

# ---- side by side with unbound's dns64 module ---------------------------------
if command -v unbound >/dev/null; then
	UPORT=$(free_port)
	cat >"$T/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: $UPORT
	do-ip6: no
	do-not-query-localhost: no
	module-config: "dns64 iterator"
	dns64-prefix: 64:ff9b::/96
	username: ""
	chroot: ""
	directory: "$T"
	pidfile: "$T/unbound.pid"
	use-syslog: no
	logfile: "$T/unbound.log"
	verbosity: 0
	access-control: 127.0.0.0/8 allow
	qname-minimisation: no
	local-zone: "test." nodefault
	cache-max-ttl: 0
	cache-max-negative-ttl: 0
forward-zone:
	name: "."
	forward-addr: 127.0.0.1@$up_port
EOF
	unbound -d -c "$T/unbound.conf" 2>"$T/unbound.err" &
	track_pid $!
	wait_for 10 bash -c "dig +tries=1 +time=1 -p $UPORT @127.0.0.1 \
	    dual.test AAAA | grep -q status"
	start_dnsfwd -R -s "127.0.0.1#$up_port" --dns64 64:ff9b::/96
	for n in v4only.test dual.test www.cn.test nx.test noa.test; do
		eq "as unbound's dns64: $n" "$(aaaa "$DNSFWD_PORT" "$n")" \
		    "$(aaaa "$UPORT" "$n")"
	done
	# RFC 6147 5.1.4: an AAAA in ::ffff:0:0/96 counts as none; unbound
	# (no exclusion list by default) hands the mapped address out
	eq "an excluded AAAA: synthesised here" \
	    "$(aaaa "$DNSFWD_PORT" mapped.test)" "64:ff9b::c000:207"
	eq "... where unbound passes the mapped address on" \
	    "$(aaaa "$UPORT" mapped.test)" "::ffff:192.0.2.7"
	stop_dnsfwd
	kill "$(cat "$T/unbound.pid")" 2>/dev/null
else
	fail "unbound (apt-get install unbound)"
fi

# ---- an IPv6-only client: glibc and musl getaddrinfo ----------------------------
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
	NS=dnsfwd-t-$$-v6
	new_netns "$NS"
	ip -n "$NS" addr del 127.0.0.1/8 dev lo 2>/dev/null
	# a global IPv6 address, so getaddrinfo's AI_ADDRCONFIG asks AAAA
	ip -n "$NS" addr add 2001:db8:64::2/128 dev lo
	mkdir -p "/etc/netns/$NS"
	printf 'nameserver ::1\noptions timeout:3 attempts:1\n' \
	    >"/etc/netns/$NS/resolv.conf"
	start_dnsfwd -R -s "127.0.0.1#$up_port" --dns64 64:ff9b::/96 \
	    -N "/run/netns/$NS" -l '[::1]:53'
	eq "IPv6-only, glibc getaddrinfo: the synthesised addresses" \
	    "$(ip netns exec "$NS" getent ahostsv6 v4only.test |
	    awk '{ print $1 }' | sort -u | paste -sd ' ' -)" \
	    "64:ff9b::c000:221 64:ff9b::c000:222"
	if command -v musl-gcc >/dev/null; then
		musl-gcc -static -O2 -o "$T/gai-musl" "$ROOT/test/gai.c"
		eq "IPv6-only, musl getaddrinfo: the synthesised addresses" \
		    "$(ip netns exec "$NS" "$T/gai-musl" v4only.test 6 |
		    sort -u | paste -sd ' ' -)" \
		    "64:ff9b::c000:221 64:ff9b::c000:222"
	fi
	stop_dnsfwd
	rm -rf "/etc/netns/$NS"
fi

#!/usr/bin/env bash
# t-hosts.sh: -H FILE answers A, AAAA and PTR from a hosts-format file
# (several names per line, comments, IPv6), ahead of forwarding and of -a
# and -s rules, and follows the file live (atomic rename, in-place append,
# removal) within 100 ms.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils

# qx ADDR [DIG-ARGS...]: a reverse (PTR) query with dig -x; sets what q
# sets.  (lib.sh's q takes a name; dig -x builds the arpa name itself.)
qx()
{
	local addr=$1

	shift
	_query dig -x "$addr" +tries=1 +time=3 +nocookie "$@"
}

# hosts_is DESC ANSWER: the last query was answered from the hosts file.
hosts_is()
{
	eq "$1: answer '$2'" "$ANSWER" "$2"
	eq "$1: NOERROR, qr aa rd ra" "$RCODE $FLAGS" "NOERROR qr aa rd ra"
	[ -n "$2" ] && eq "$1: TTL 0" "$TTL" 0
}

# took_effect DESC NAME TYPE WANT START_NS: poll NAME every query (at most
# 100 queries, 3 s) until the answer is WANT; assert it is, and that the
# first query that saw it was sent less than 100 ms after START_NS.
took_effect()
{
	local desc=$1 name=$2 type=$3 want=$4 t0=$5 i ts=0 ms

	for ((i = 0; i < 100; i++)); do
		ts=$(date +%s%N)
		q "$name" "$type"
		[ "$ANSWER" = "$want" ] && break
		[ $(((ts - t0) / 1000000)) -gt 3000 ] && break
	done
	ms=$(((ts - t0) / 1000000))
	eq "$desc: answer '$want'" "$ANSWER" "$want"
	lt "$desc: within 100 ms" "$ms" 100
}

start_fakeup up \
	'web.hosts.test answer 192.0.2.99' \
	'*.hosts.test answer 192.0.2.53 ttl=0' \
	'* answer 192.0.2.1 ttl=0'
start_fakeup up2 '* answer 192.0.2.2'

cat >"$T/hosts" <<'EOF'
# hosts for t-hosts.sh
127.0.0.1	localhost
10.1.1.1   web.hosts.test  www.hosts.test	alias   # notaname.hosts.test
10.1.1.2 db.hosts.test
fd00::10 web.hosts.test
fd00::20	v6only.hosts.test
   10.1.1.3	indented.hosts.test
#10.9.9.9 commented.hosts.test
10.1.1.4 multi.hosts.test
10.1.1.5 multi.hosts.test
10.1.1.6 MixedCase.Hosts.Test
10.1.1.9 ok.blocked.test
10.1.1.10 h.routed.test
not-an-address bad.hosts.test

EOF

start_dnsfwd -R -s "127.0.0.1#$up_port" -H "$T/hosts" -a /blocked.test/ \
	-s "/routed.test/127.0.0.1#$up2_port"

q web.hosts.test
hosts_is "web.hosts.test A" 10.1.1.1
q web.hosts.test AAAA
hosts_is "web.hosts.test AAAA (a second line for the name)" fd00::10
q www.hosts.test
hosts_is "www.hosts.test: the second name on the line" 10.1.1.1
q alias
hosts_is "alias: the third name, one label" 10.1.1.1
q db.hosts.test
hosts_is "db.hosts.test" 10.1.1.2
q indented.hosts.test
hosts_is "indented, tab-separated line" 10.1.1.3
q multi.hosts.test
hosts_is "a name on two lines: both addresses" "10.1.1.4 10.1.1.5"
q mixedcase.hosts.test
hosts_is "MixedCase in the file, lower case asked" 10.1.1.6
q WEB.Hosts.TEST
hosts_is "WEB.Hosts.TEST: any case" 10.1.1.1
q web.hosts.test +tcp
hosts_is "web.hosts.test over TCP" 10.1.1.1
q v6only.hosts.test AAAA
hosts_is "v6only.hosts.test AAAA" fd00::20
q v6only.hosts.test A
hosts_is "v6only.hosts.test A: NODATA" ""
q web.hosts.test MX
hosts_is "web.hosts.test MX: NODATA" ""
q db.hosts.test TXT
hosts_is "db.hosts.test TXT: NODATA" ""

qx 10.1.1.1
hosts_is "PTR 10.1.1.1: the first name of the address" web.hosts.test.
qx 10.1.1.2
hosts_is "PTR 10.1.1.2" db.hosts.test.
qx 10.1.1.3 +tcp
hosts_is "PTR 10.1.1.3 over TCP" indented.hosts.test.
qx fd00::10
hosts_is "PTR fd00::10 (ip6.arpa)" web.hosts.test.
qx fd00::20
hosts_is "PTR fd00::20" v6only.hosts.test.
eq "hosts names: the upstream was never asked" "$(asked up)" 0

# Hosts win over forwarding, -a and -s.
eq "web.hosts.test: the upstream (which knows it) not asked" \
	"$(asked up web.hosts.test)" 0
q ok.blocked.test
hosts_is "hosts win over -a /blocked.test/" 10.1.1.9
q other.blocked.test
eq "-a /blocked.test/ still answers other names: NXDOMAIN" "$RCODE" NXDOMAIN
q h.routed.test
hosts_is "hosts win over -s /routed.test/" 10.1.1.10
eq "-s /routed.test/: its upstream not asked" "$(asked up2 h.routed.test)" 0
q x.routed.test
eq "-s /routed.test/ still routes other names" "$ANSWER" 192.0.2.2

# What is not in the file is forwarded.
for name in commented.hosts.test notaname.hosts.test sub.web.hosts.test \
	bad.hosts.test; do
	q "$name"
	eq "$name: forwarded" "$ANSWER" 192.0.2.53
	eq "$name: the upstream asked" "$(asked up "$name")" 1
done
q hosts.test
eq "hosts.test (the parent of names in the file): forwarded" "$ANSWER" \
	192.0.2.1
qx 10.99.99.99
eq "PTR of an address not in the file: forwarded" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.1"
eq "PTR 10.99.99.99: the upstream asked" \
	"$(asked up 99.99.99.10.in-addr.arpa)" 1
q web.hosts.test SOA
hosts_is "a name in the file, SOA: NODATA, not forwarded" ""
eq "... the upstream not asked" "$(asked up web.hosts.test)" 0

# ---- live edits ---------------------------------------------------------------
q new1.hosts.test
eq "new1 before the edit: forwarded" "$ANSWER" 192.0.2.53
cp "$T/hosts" "$T/hosts.tmp"
echo "10.2.2.1 new1.hosts.test" >>"$T/hosts.tmp"
t0=$(date +%s%N)
mv -f "$T/hosts.tmp" "$T/hosts"
took_effect "atomic rename adds new1" new1.hosts.test A 10.2.2.1 "$t0"
eq "new1: authoritative" "$FLAGS" "qr aa rd ra"
q web.hosts.test
hosts_is "after the rename: the old names still there" 10.1.1.1

q new2.hosts.test
eq "new2 before the edit: forwarded" "$ANSWER" 192.0.2.53
t0=$(date +%s%N)
echo "10.2.2.2 new2.hosts.test" >>"$T/hosts"
took_effect "in-place append adds new2" new2.hosts.test A 10.2.2.2 "$t0"
qx 10.2.2.2
hosts_is "in-place append: PTR for new2" new2.hosts.test.

n=$(asked up new1.hosts.test)
grep -v 'new1' "$T/hosts" >"$T/hosts.tmp"
t0=$(date +%s%N)
mv -f "$T/hosts.tmp" "$T/hosts"
took_effect "removing new1 (atomic): forwarded again" new1.hosts.test A \
	192.0.2.53 "$t0"
ge "removing new1: the upstream asked again" \
	"$(asked up new1.hosts.test)" $((n + 1))
q new2.hosts.test
hosts_is "removing new1: new2 stays" 10.2.2.2

# In place, rewritten without new2 (truncate and write).
grep -v 'new2' "$T/hosts" >"$T/hosts.tmp"
t0=$(date +%s%N)
cat "$T/hosts.tmp" >"$T/hosts"
took_effect "removing new2 (in place): forwarded again" new2.hosts.test A \
	192.0.2.53 "$t0"
q web.hosts.test
hosts_is "after the in-place rewrite: web.hosts.test" 10.1.1.1

# Deleted and re-created.
rm -f "$T/hosts"
ok "hosts file deleted: said, and what it gave is kept" wait_for 10 grep -q \
	"$T/hosts: .*; keeping what it gave before" "$DNSFWD_ERR"
ok "dnsfwd survives the hosts file being deleted" _alive "$DNSFWD_PID"
q db.hosts.test
eq "hosts file deleted: queries still answered" "$RCODE" NOERROR
echo "10.3.3.3 back.hosts.test" >"$T/hosts.tmp"
t0=$(date +%s%N)
mv "$T/hosts.tmp" "$T/hosts"
took_effect "hosts file re-created" back.hosts.test A 10.3.3.3 "$t0"

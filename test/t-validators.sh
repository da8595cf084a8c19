#!/usr/bin/env bash
# t-validators.sh: dnsfwd between real validating resolvers and their
# clients.  A zone signed here (dnssec-keygen, dnssec-signzone), one of its
# signatures corrupted, served by Knot as an authoritative; unbound,
# validating with the zone's trust anchor, is dnsfwd's first upstream and
# Knot itself (no validation) its second.  Through dnsfwd a client gets
# SERVFAIL with Extended DNS Error 6 (DNSSEC Bogus) for the forged name -
# never Knot's answer - the signed answer with AD for a good name when it
# asked with DO or AD, and a validated NXDOMAIN with AD.  Then a validating
# resolver as dnsfwd's client (a second unbound, forwarding the zone to a
# dnsfwd whose only upstream is Knot): it validates the good names through
# dnsfwd and rejects the bad one.  Addresses: 127.0.46.x:53 (lib.sh).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need knotd knot
need dnssec-signzone bind9-utils
need unbound unbound
need_port53 127.0.46

KNOT=127.0.46.1
VAL=127.0.46.2		# unbound, validating, dnsfwd's upstream
CLI=127.0.46.3		# unbound, validating, dnsfwd's client
Z=trust.test

# ---- the zone, signed, one signature broken ---------------------------------
mkdir -p "$T/zone" "$T/knot"
cat >"$T/zone/$Z" <<EOF
\$TTL 300
@	IN SOA	ns.$Z. host.$Z. 1 3600 600 86400 300
@	IN NS	ns.$Z.
ns	IN A	$KNOT
good	IN A	192.0.2.50
bad	IN A	192.0.2.51
EOF
(
	cd "$T/zone" || exit 1
	ksk=$(dnssec-keygen -q -a ECDSAP256SHA256 -f KSK "$Z") &&
	zsk=$(dnssec-keygen -q -a ECDSAP256SHA256 "$Z") &&
	cat "$ksk.key" "$zsk.key" >>"$Z" &&
	dnssec-signzone -q -O full -o "$Z" -N keep -S -K . -f "$Z.signed" "$Z" \
	    >/dev/null &&
	echo "$ksk" >ksk.name
) >"$T/sign.out" 2>&1 || {
	fail "the zone is signed" "$(cat "$T/sign.out")"
	exit 1
}
# the trust anchor: the KSK's DNSKEY
anchor=$(grep -v '^;' "$T/zone/$(cat "$T/zone/ksk.name").key")
# corrupt the RRSIG over bad.trust.test A: one character of its signature
cp "$T/zone/$Z.signed" "$T/zone/$Z.good"
perl -pi -e 's/^(bad\.'"$Z"'\.\s+\d+\s+IN\s+RRSIG\s+A\s+(?:\S+\s+){7})(\S)/$1 . ($2 eq "A" ? "B" : "A")/e' \
    "$T/zone/$Z.signed"
eq "one signature corrupted (one line differs)" \
	"$(diff "$T/zone/$Z.good" "$T/zone/$Z.signed" | grep -c '^>')" 1

cat >"$T/knot.conf" <<EOF
server:
    rundir: "$T/knot"
    listen: $KNOT@53
database:
    storage: "$T/knot"
zone:
  - domain: $Z
    file: "$T/zone/$Z.signed"
    storage: "$T/knot"
    zonefile-load: whole
    journal-content: none
    dnssec-signing: off
    semantic-checks: off
log:
  - target: stderr
    any: warning
EOF
knotd -c "$T/knot.conf" >"$T/knot.out" 2>&1 &
knot_pid=$!
track_pid "$knot_pid"
_knot_up()
{
	dig +short +tries=1 +time=1 @"$KNOT" "good.$Z" A 2>/dev/null |
	    grep -q 192.0.2.50
}
ok "Knot serves the signed zone" wait_for 20 _knot_up ||
	{ diag "$(cat "$T/knot.out")"; exit 1; }

# unbound_at ADDR NAME FORWARD: a validating unbound on ADDR:53 that asks
# FORWARD (ADDR@PORT) for the zone, with its trust anchor.
unbound_at()
{
	{ unbound_head "$1@53"; cat <<EOF; } >"$T/$2.conf"
	do-not-query-localhost: no
	module-config: "validator iterator"
	trust-anchor: "$anchor"
	ede: yes
	val-log-level: 2
	cache-max-ttl: 0
	cache-max-negative-ttl: 0
	local-zone: "test." nodefault
forward-zone:
	name: "$Z."
	forward-addr: $3
remote-control:
	control-enable: no
EOF
	unbound -d -c "$T/$2.conf" >"$T/$2.out" 2>&1 &
	printf -v "${2}_pid" '%s' "$!"
	track_pid "$!"
}
_answers_at()	# ADDR NAME IP
{
	dig +short +tries=1 +time=1 @"$1" "$2" A 2>/dev/null | grep -qx "$3"
}

unbound_at "$VAL" val "$KNOT@53"
ok "unbound validates the zone from Knot" \
	wait_for 20 _answers_at "$VAL" "good.$Z" 192.0.2.50 ||
	{ diag "$(cat "$T/val.out")"; exit 1; }

# ---- the validator first, Knot (no validation) second -----------------------
start_dnsfwd -R -c 100 -t 2000 -s "$VAL" -s "$KNOT"
q "bad.$Z" +dnssec
eq "forged signature: SERVFAIL" "$RCODE" SERVFAIL
match "... with EDE 6 (DNSSEC Bogus), the validator's verdict" "$QOUT" \
	'EDE: 6 \(DNSSEC Bogus\)'
eq "... never Knot's (forged) answer" "$ANSWER" ""
q "bad.$Z" +dnssec +tcp
eq "forged signature, over TCP: SERVFAIL too" "$RCODE" SERVFAIL
q "bad.$Z"
eq "forged signature, an EDNS client without DO: SERVFAIL" "$RCODE" \
	SERVFAIL
q "good.$Z" +dnssec
eq "good name, DO: the answer" "$RCODE $(awk '$4 == "A" { print $5 }' \
	<<<"$(sed -n '/ANSWER SECTION/,/^$/p' <<<"$QOUT")")" \
	"NOERROR 192.0.2.50"
match "... with AD" "$FLAGS" ' ad( |$)'
match "... and its RRSIG" "$QOUT" 'RRSIG[[:space:]]+A '
q "good.$Z" +dnssec
match "good name, DO, from the cache: AD kept" "$FLAGS" ' ad( |$)'
q "good.$Z" +adflag
match "good name, AD asker: AD" "$FLAGS" ' ad( |$)'
q "good.$Z" +noadflag
if [[ $FLAGS =~ \ ad(\ |$) ]]; then
	fail "good name, no AD nor DO: no AD (RFC 6840 5.8)" "flags: $FLAGS"
else
	pass "good name, no AD nor DO: no AD (RFC 6840 5.8)"
fi
q "nx.$Z" +dnssec
eq "a name that is not there: NXDOMAIN" "$RCODE" NXDOMAIN
match "... validated: AD" "$FLAGS" ' ad( |$)'
stop_dnsfwd

# ---- a validating resolver as dnsfwd's client -------------------------------
start_dnsfwd -R -c 100 -t 2000 -s "$KNOT"
unbound_at "$CLI" cli "127.0.0.1@$DNSFWD_PORT"
ok "the validating client gets good names through dnsfwd" \
	wait_for 20 _answers_at "$CLI" "good.$Z" 192.0.2.50 ||
	diag "$(cat "$T/cli.out")"
DNSFWD_ADDR=$CLI DNSFWD_PORT=53 q "good.$Z" +dnssec
match "... validated by it: AD" "$FLAGS" ' ad( |$)'
DNSFWD_ADDR=$CLI DNSFWD_PORT=53 q "bad.$Z" +dnssec
eq "... and it rejects the forged one, though dnsfwd's upstream does not \
validate" "$RCODE" SERVFAIL
stop_dnsfwd

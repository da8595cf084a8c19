#!/usr/bin/env bash
# t-malformed.sh: the contract, "Protocol": malformed input (short packets, QR set,
# bad label lengths, compression loops, counts that run past the packet) is
# dropped or answered FORMERR, other opcodes get NOTIMP; nothing of it
# reaches the upstream, crashes dnsfwd or stalls other queries.  Sent with
# test/dnsq, since dig will not send such packets.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need_dnsq

start_fakeup up '* answer 192.0.2.1'
start_dnsfwd -R -c 0 -s "127.0.0.1#$up_port"

# hdr ID FLAGS QD AN NS AR: a DNS header in hex.
hdr()
{
	printf '%04x%04x%04x%04x%04x%04x' "$@"
}

# question NAME [TYPE]: a question (name, type, class IN) in hex.
question()
{
	local m

	m=$("$DNSQ" -m 0 "$@") || return 1
	printf '%s' "${m:24}"
}

# send HEX...: over UDP, wait 400 ms; the reply lines (or "timeout") in OUT.
send()
{
	OUT=$("$DNSQ" -w 400 127.0.0.1 "$DNSFWD_PORT" "$@" 2>&1)
}

# send_tcp HEX...: the same over one TCP connection.
send_tcp()
{
	OUT=$("$DNSQ" -t -w 400 127.0.0.1 "$DNSFWD_PORT" "$@" 2>&1)
}

# tc_bit OUT: 1 if the first reply line in OUT has TC set, else 0.
tc_bit()
{
	local f

	f=$(sed -n '1s/.* flags=\(0x[0-9a-f]*\) .*/\1/p' <<<"$1")
	echo $(((${f:-0} >> 9) & 1))
}

good=$("$DNSQ" -m 0x0aaa m.test)

# ---- short packets: dropped ---------------------------------------------------------

for n in 0 1 2 3 4 5 6 7 8 9 10 11; do
	send "${good:0:$((2 * n))}"
	eq "short packet of $n bytes: dropped" "$OUT" timeout
done
ok "short packets: dnsfwd still running" kill -0 "$DNSFWD_PID"
send "$good"
match "short packets: a good query still answered" "$OUT" \
	"^rcode=NOERROR id=2730 .* an=1 "
: >"$T/up.log"

# ---- QR set: dropped, not forwarded -------------------------------------------------

send "$(hdr 0x0b01 0x8100 1 0 0 0)$(question qr.test)"
eq "QR set: no reply" "$OUT" timeout
send "$(hdr 0x0b02 0x8180 1 1 0 0)$(question qr2.test)c00c000100010000003c0004c0000201"
eq "QR set, a whole answer: no reply" "$OUT" timeout
eq "QR set: the upstream was not asked" "$(asked up)" 0

# ---- FORMERR ------------------------------------------------------------------------

send "$(hdr 0x0c01 0x0100 2 0 0 0)$(question a.test)$(question b.test)"
match "qdcount 2: FORMERR with the client's ID" "$OUT" "^rcode=FORMERR id=3073 "
eq "qdcount 2: FORMERR without TC" "$(tc_bit "$OUT")" 0
send "$(hdr 0x0c02 0x0100 0 0 0 0)"
match "qdcount 0: FORMERR" "$OUT" "^rcode=FORMERR id=3074 "
eq "qdcount 0: FORMERR without TC" "$(tc_bit "$OUT")" 0
send "$(hdr 0x0c03 0x0100 1 0 0 0)"
match "qdcount 1, no question: FORMERR or dropped" "$OUT" \
	"^(rcode=FORMERR id=3075 |timeout$)"

# FORMERR or dropped, each with its reason.
i=0
while IFS='|' read -r what body; do
	i=$((i + 1))
	id=$((0x0d00 + i))
	send "$(hdr "$id" 0x0100 1 0 0 0)$body"
	match "$what: FORMERR or dropped" "$OUT" "^(rcode=FORMERR id=$id |timeout$)"
done <<EOF
label type 0x40|4061626300010001
label type 0x80|8061626300010001
label of 63 running past the end|3f616263
label of 64|40$(printf '61%.0s' $(seq 64))0000010001
name of 256 octets|$(for _ in 1 2 3 4 5; do printf '32%s' "$(printf '61%.0s' $(seq 50))"; done)0500010001
pointer to itself|c00c00010001
pointer loop of two|0161c00c00010001
forward pointer|c01200010001016100
pointer into the header|c00400010001
name without its end|01610474657374
question without type and class|0161047465737400
question without class|01610474657374000001
EOF

while IFS='|' read -r what counts extra; do
	i=$((i + 1))
	id=$((0x0d00 + i))
	# shellcheck disable=SC2086  # counts is "AN NS AR"
	send "$(hdr "$id" 0x0100 1 $counts)$(question cnt.test)$extra"
	match "$what: FORMERR or dropped" "$OUT" "^(rcode=FORMERR id=$id |timeout$)"
done <<EOF
ancount 1, no record|1 0 0|
nscount 65535|0 65535 0|
arcount 65535|0 0 65535|
arcount 2, one OPT|0 0 2|0000291000000000000000
OPT RDLENGTH past the end|0 0 1|00002910000000000000ff
counts 65535 everywhere|65535 65535 65535|
EOF

# One 5000-byte datagram (beyond any query dnsfwd takes).
send "$(hdr 0x0e01 0x0100 1 0 0 1)$(question big.test)00002910000000000013$(printf '00%.0s' $(seq 4950))"
match "a 5000-byte query: FORMERR or dropped" "$OUT" \
	"^(rcode=FORMERR id=3585 |timeout$)"

eq "malformed queries: the upstream was never asked" "$(asked up)" 0

# ---- other opcodes: NOTIMP ---------------------------------------------------------

send "$(hdr 0x0f02 0x1100 1 0 0 0)$(question status.test)"
match "opcode 2 (STATUS): NOTIMP with the client's ID" "$OUT" \
	"^rcode=NOTIMP id=3842 "
send "$(hdr 0x0f05 0x2800 1 0 0 0)$(question update.test SOA)"
match "opcode 5 (UPDATE): NOTIMP" "$OUT" "^rcode=NOTIMP id=3845 "
eq "other opcodes: the upstream was not asked" "$(asked up)" 0

# ---- over TCP ----------------------------------------------------------------------

send_tcp "$(hdr 0x1001 0x0100 2 0 0 0)$(question a.test)$(question b.test)"
match "tcp: qdcount 2: FORMERR" "$OUT" "^rcode=FORMERR id=4097 "
OUT=$("$DNSQ" -t -r -w 400 127.0.0.1 "$DNSFWD_PORT" 0000 2>&1)
match "tcp: a zero-length message: dropped or closed" "$OUT" \
	"^(timeout|closed)$"
OUT=$("$DNSQ" -t -r -w 400 127.0.0.1 "$DNSFWD_PORT" "0005${good:0:10}" 2>&1)
match "tcp: a 5-byte message: dropped or closed" "$OUT" "^(timeout|closed)$"
send_tcp "$(hdr 0x1002 0x8100 1 0 0 0)$(question qr.test)"
match "tcp: QR set: dropped or closed" "$OUT" "^(timeout|closed)$"
send_tcp "$(hdr 0x1003 0x0100 1 0 0 0)c00c00010001" "$good"
match "tcp: a compression loop, then a good query on the same connection" \
	"$OUT" "rcode=NOERROR id=2730 |closed"

# ---- malformed input does not stall other queries ---------------------------------

OUT=$("$DNSQ" -n 2 -w 2000 127.0.0.1 "$DNSFWD_PORT" "" 01 \
	"$(hdr 0x0b03 0x8100 1 0 0 0)$(question qr.test)" \
	"$(hdr 0x0d99 0x0100 1 0 0 0)0161c00c00010001" "$good" 2>&1)
match "a good query among malformed ones: answered" "$OUT" \
	"rcode=NOERROR id=2730 .* an=1 "
q after.test
eq "after all that: dig gets the answer" "$ANSWER" 192.0.2.1
q after.test +tcp
eq "after all that: over TCP too" "$ANSWER" 192.0.2.1
ok "after all that: dnsfwd still running" kill -0 "$DNSFWD_PID"

counters
n=$(counter "malformed")
ge "SIGUSR1: malformed counted (at least the 20 clear cases)" "${n:-0}" 20
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

#!/usr/bin/env bash
# t-spoof.sh: the contract, "Protocol", RFC 5452: a reply is accepted only from the
# address and port the query went to, with its ID and question.  Spoofed
# replies (wrong ID, wrong source port, wrong question) are ignored: the
# client gets the real answer of the next upstream, or SERVFAIL after the
# timeout, never the spoofed data.  Upstream IDs are fresh and random.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need_dnsq

# up1 spoofs (its data is 192.0.2.66), up2 answers for real.
start_fakeup up1 \
	'id.test badid answer 192.0.2.66' \
	'port.test badport answer 192.0.2.66' \
	'q.test badq answer 192.0.2.66' \
	'id-only.test badid answer 192.0.2.66' \
	'port-only.test badport answer 192.0.2.66' \
	'q-only.test badq answer 192.0.2.66' \
	'fo.test servfail' \
	'* answer 192.0.2.11'
start_fakeup up2 \
	'id-only.test badid answer 192.0.2.66' \
	'port-only.test badport answer 192.0.2.66' \
	'q-only.test badq answer 192.0.2.66' \
	'* answer 192.0.2.21'
start_dnsfwd -R -c 0 -t 500 -s "127.0.0.1#$up1_port" -s "127.0.0.1#$up2_port"

# Each spoofing kind; the dnsfwd is restarted so that no upstream is marked
# down by the previous scenario.
for kind in id port q; do
	q "$kind.test"
	eq "bad$kind from up1: up2's real answer" "$ANSWER" 192.0.2.21
	eq "bad$kind from up1: NOERROR" "$RCODE" NOERROR
	eq "bad$kind from up1: both asked" \
		"$(asked up1 "$kind.test") $(asked up2 "$kind.test")" "1 1"
	ge "bad$kind from up1: the spoof was ignored, the timeout waited (ms)" \
		"$MS" 450
	lt "bad$kind from up1: ... once (ms)" "$MS" 1500
	stop_dnsfwd
	start_dnsfwd -R -c 0 -t 500 -s "127.0.0.1#$up1_port" \
		-s "127.0.0.1#$up2_port"
done

for kind in id port q; do
	q "$kind-only.test"
	eq "bad$kind from both: SERVFAIL" "$RCODE" SERVFAIL
	eq "bad$kind from both: no spoofed data" "$ANSWER" ""
	eq "bad$kind from both: both asked" \
		"$(asked up1 "$kind-only.test") $(asked up2 "$kind-only.test")" \
		"1 1"
	ge "bad$kind from both: after the timeouts (ms)" "$MS" 450
	stop_dnsfwd
	start_dnsfwd -R -c 0 -t 500 -s "127.0.0.1#$up1_port" \
		-s "127.0.0.1#$up2_port"
done

# Over TCP (badid and badq apply there too): never the spoofed data.
for kind in id q; do
	q "$kind.test" +tcp
	eq "bad$kind over tcp: up2's real answer" "$ANSWER" 192.0.2.21
	stop_dnsfwd
	start_dnsfwd -R -c 0 -t 500 -s "127.0.0.1#$up1_port" \
		-s "127.0.0.1#$up2_port"
done

# The spoofed replies are counted.
start_fakeup sp 'x.test badid answer 192.0.2.66'
stop_dnsfwd
start_dnsfwd -R -c 0 -t 300 -s "127.0.0.1#$sp_port"
q x.test
eq "badid, one upstream: SERVFAIL" "$RCODE" SERVFAIL
counters
n=$(counter "unmatched replies")
ge "SIGUSR1: the spoofed reply counted as unmatched" "${n:-0}" 1
stop_dnsfwd

# ---- upstream query IDs -----------------------------------------------------------

start_dnsfwd -R -c 0 -t 500 -s "127.0.0.1#$up1_port" -s "127.0.0.1#$up2_port"
: >"$T/up1.log"
for _ in $(seq 1 20); do
	"$DNSQ" -w 2000 127.0.0.1 "$DNSFWD_PORT" "$("$DNSQ" -m 0x1234 same.test)" \
		>>"$T/dnsq.out"
done
eq "20 queries with ID 0x1234: 20 answers with ID 0x1234" \
	"$(grep -c '^rcode=NOERROR id=4660 ' "$T/dnsq.out")" 20
ids=$(sed -n 's/^udp same\.test A id=\([0-9]*\) .*/\1/p' "$T/up1.log")
eq "20 queries: 20 upstream queries" "$(wc -l <<<"$ids")" 20
eq "upstream IDs: none is the client's 4660" "$(grep -cx 4660 <<<"$ids")" 0
ge "upstream IDs: differ between queries (distinct of 20)" \
	"$(sort -u <<<"$ids" | wc -l)" 19

# A failover: the two attempts of one query have different IDs.
: >"$T/up1.log"
: >"$T/up2.log"
out=$("$DNSQ" -w 2000 127.0.0.1 "$DNSFWD_PORT" "$("$DNSQ" -m 0x4321 fo.test)")
match "failover: up2's answer with the client's ID" "$out" \
	"^rcode=NOERROR id=17185 .* an=1 "
id1=$(sed -n 's/^udp fo\.test A id=\([0-9]*\) .*/\1/p' "$T/up1.log")
id2=$(sed -n 's/^udp fo\.test A id=\([0-9]*\) .*/\1/p' "$T/up2.log")
ok "failover: both attempts logged" test -n "$id1" -a -n "$id2"
ok "failover: the two attempts have different IDs ($id1, $id2)" \
	test "$id1" != "$id2"
ok "failover: neither is the client's 17185" \
	test "$id1" != 17185 -a "$id2" != 17185

# ---- forged ICMP: one proves nothing (contract rule 3) ----------------------
# An ICMP "port unreachable" names only the attempt's port, no ID: anyone
# who guesses the port can forge one.  Forged here from a raw socket at the
# port the fake upstream saw: the first makes dnsfwd ask the same upstream
# again from another port (the answer still comes from it, and it is not
# marked down); a second, at the new port, is a failure: the next upstream.
need python3 python3
cat >"$T/icmp.py" <<'PY'
import socket, struct, sys
sport, dport = int(sys.argv[1]), int(sys.argv[2])
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff
lo = socket.inet_aton("127.0.0.1")
udp = struct.pack("!HHHH", sport, dport, 40, 0)
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 40, 1, 0, 64, 17, 0, lo, lo)
body = struct.pack("!BBHI", 3, 3, 0, 0) + ip + udp
icmp = body[:2] + struct.pack("!H", csum(body)) + body[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.sendto(icmp, ("127.0.0.1", 0))
PY
FAKEUP_OPTS=-x start_fakeup vic '* delay 1500 answer 192.0.2.77'
start_fakeup alt '* answer 192.0.2.88'
stop_dnsfwd
start_dnsfwd -R -c 0 -t 5000 -s "127.0.0.1#$vic_port" \
	-s "127.0.0.1#$alt_port"
# port_of NAME N: the source port of the Nth query for NAME vic logged
port_of()
{
	sed -n "s/^udp $1 A .* port=\\([0-9]*\\) .*/\\1/p" "$T/vic.log" |
	    sed -n "$2p"
}
_has_port() { [ -n "$(port_of "$1" "$2")" ]; }
(q icmp1.test +time=9; echo "$ANSWER" >"$T/icmp1.res") &
bg=$!
track_pid "$bg"
ok "forged ICMP: the query reached the upstream" \
	wait_for 10 _has_port icmp1.test 1
python3 "$T/icmp.py" "$(port_of icmp1.test 1)" "$vic_port"
ok "forged ICMP: the same upstream asked again, from another port" \
	wait_for 10 _has_port icmp1.test 2
wait "$bg"
_untrack_pid "$bg"
eq "forged ICMP: the answer still comes from that upstream" \
	"$(cat "$T/icmp1.res")" 192.0.2.77
eq "forged ICMP: the next upstream was never asked" "$(asked alt icmp1.test)" 0
ok "forged ICMP: asked again from another port" \
	test -n "$(port_of icmp1.test 2)" -a \
	"$(port_of icmp1.test 1)" != "$(port_of icmp1.test 2)"
counters
ge "forged ICMP: counted (asked again after a network error)" \
	"$(counter 'asked again after a network error')" 1
eq "forged ICMP: the upstream is not marked down" \
	"$(grep "upstream 127.0.0.1#$vic_port: " <<<"$COUNTERS" |
	grep -c ', down')" 0
# a second one for the same query, at its new port: now a failure
(q icmp2.test +time=9; echo "$ANSWER" >"$T/icmp2.res") &
bg=$!
track_pid "$bg"
wait_for 10 _has_port icmp2.test 1
python3 "$T/icmp.py" "$(port_of icmp2.test 1)" "$vic_port"
wait_for 10 _has_port icmp2.test 2
python3 "$T/icmp.py" "$(port_of icmp2.test 2)" "$vic_port"
wait "$bg"
_untrack_pid "$bg"
eq "two network errors for one query: the next upstream's answer" \
	"$(cat "$T/icmp2.res")" 192.0.2.88
stop_dnsfwd

# ---- a spoofing flood: asked again over TCP ---------------------------------
# Replies forged from a raw socket, from the upstream's address and port
# to the attempt's port (seen by the fake upstream, as a local observer
# would): a few with a wrong ID make dnsfwd ask the question again over
# TCP, where they cannot reach it.  Bounded: 100 forged replies, then one
# sweep of all 65,536 IDs with the attempt's own ID last (before, the
# sweep's last reply was taken: poisoned).
cat >"$T/flood.py" <<'PY'
import socket, struct, sys
dport, sport, name, real = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
count = int(sys.argv[5])
qn = b""
for l in name.split("."):
    qn += bytes([len(l)]) + l.encode()
qn += b"\0"
body = qn + struct.pack(">HH", 1, 1) + b"\xc0\x0c" + \
    struct.pack(">HHIH", 1, 1, 300, 4) + socket.inet_aton("192.0.2.66")
lo = socket.inet_aton("127.0.0.1")
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
ids = [i for i in range(65536) if i != real][:count - 1] + [real] \
    if count == 65536 else [(real + 1 + i) % 65536 for i in range(count)]
for i in ids:
    dns = struct.pack(">HHHHHH", i, 0x8180, 1, 1, 0, 0) + body
    udp = struct.pack(">HHHH", sport, dport, 8 + len(dns), 0) + dns
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17,
                     0, lo, lo)
    try:
        s.sendto(ip + udp, ("127.0.0.1", 0))
    except OSError:
        pass
print("sent", len(ids))
PY
id_of()
{
	sed -n "s/^udp $1 A id=\\([0-9]*\\) .*/\\1/p" "$T/vic.log" | sed -n "$2p"
}
start_dnsfwd -R -c 0 -t 5000 -s "127.0.0.1#$vic_port" \
	-s "127.0.0.1#$alt_port"
for n in 100 65536; do
	name=flood$n.test
	(q "$name" +time=9; echo "$RCODE $ANSWER" >"$T/$name.res") &
	bg=$!
	track_pid "$bg"
	wait_for 10 _has_port "$name" 1
	sent=$(python3 "$T/flood.py" "$(port_of "$name" 1)" "$vic_port" \
	    "$name" "$(id_of "$name" 1)" "$n")
	eq "spoofing flood ($n replies, wrong IDs$([ "$n" = 65536 ] &&
	    echo ', the right one last')): sent" "$sent" "sent $n"
	wait "$bg"
	_untrack_pid "$bg"
	eq "spoofing flood ($n): the real answer" "$(cat "$T/$name.res")" \
		"NOERROR 192.0.2.77"
	eq "spoofing flood ($n): the same upstream asked again over TCP" \
		"$(grep -c "^tcp $name " "$T/vic.log")" 1
	eq "spoofing flood ($n): the next upstream was never asked" \
		"$(asked alt "$name")" 0
done
counters
eq "spoofing floods: counted, one per query" \
	"$(counter 'spoofing floods')" 2 || diag "$COUNTERS"
eq "spoofing floods: said once (a minute)" \
	"$(grep -c 'a spoofing flood? asked again over TCP' "$DNSFWD_ERR")" 1
eq "spoofing floods: the upstream is not marked down" \
	"$(grep "upstream 127.0.0.1#$vic_port: " <<<"$COUNTERS" |
	grep -c ', down')" 0
# the cache holds the real answer
q flood65536.test
eq "spoofing flood: the cache holds the real answer" "$ANSWER" 192.0.2.77
stop_dnsfwd

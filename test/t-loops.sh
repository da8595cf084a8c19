#!/usr/bin/env bash
# t-loops.sh: upstreams that are dnsfwd itself never make a loop.  Inside a
# namespace created here (its own lo, and 10.99.0.1 on lo), so fixed ports
# collide with nothing:
#  - "nameserver 0.0.0.0" and "nameserver ::" with the default-style
#    listener on :53: skipped, said;
#  - a wildcard listener (0.0.0.0:53) and a nameserver that is one of the
#    namespace's own addresses (10.99.0.1): skipped;
#  - "-s" naming one of dnsfwd's listeners: skipped at start, said;
#  - the last line: a NAT dnsfwd cannot see through (a relay that sends
#    each datagram on to dnsfwd from its original address and port, as a
#    DNAT rule would) hands dnsfwd's own query back: it comes from the
#    attempt's own socket, is dropped as a loop, the attempt is asked again
#    from a fresh port (one network error proves nothing), loops again and
#    fails, the upstream is marked down and the next one answers at once;
#    its probes loop too and are caught; the table does not fill;
#  - the ID alone proves nothing: a relay that keeps the ID but sends from
#    its own port is an ordinary client (the upstream times out), and an
#    unprivileged process that sends the question in flight with every
#    one of the 65,536 IDs diverts nothing.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-fault.sh
. "$(dirname "$0")/lib-fault.sh"
need dig bind9-dnsutils
need ip iproute2
need python3 python3
if [ "$(id -u)" -ne 0 ] || ! unshare -n true 2>/dev/null; then
	echo "skip - $SCRIPT: needs root and network namespaces (run as root)"
	exit 0
fi
NS=dnsfwd-loop-$$
new_netns "$NS"
ip -n "$NS" addr add 10.99.0.1/32 dev lo
IN="ip netns exec $NS"
DNSFWD_WRAP="$IN ${DNSFWD_WRAP:-}"
FAKEUP_WRAP=$IN
QWRAP=$IN
start_fakeup up '* answer 192.0.2.1'
# ---- 0.0.0.0 and :: -------------------------------------------------------
printf 'nameserver 0.0.0.0\nnameserver ::\nnameserver 127.0.0.1\n' \
    >"$T/resolv.conf"
start_dnsfwd -l 127.0.0.1:53 -r "$T/resolv.conf" -s "127.0.0.1#$up_port"
eq "nameserver 0.0.0.0: skipped, said" \
	"$(grep -c 'skipping nameserver 0\.0\.0\.0#53: it points back at dnsfwd' \
	"$DNSFWD_ERR")" 1
eq "nameserver :: : skipped, said" \
	"$(grep -c 'skipping nameserver ::#53: it points back' "$DNSFWD_ERR")" 1
eq "nameserver 127.0.0.1 (our listener): skipped, said" \
	"$(grep -c 'skipping nameserver 127\.0\.0\.1#53: it points back' \
	"$DNSFWD_ERR")" 1
q a.test
eq "... and the -s upstream answers" "$RCODE $ANSWER" "NOERROR 192.0.2.1"
lt "... at once (ms)" "$MS" 1000
stop_dnsfwd

# ---- a wildcard listener and one of the namespace's addresses -------------
printf 'nameserver 10.99.0.1\n' >"$T/resolv.conf"
start_dnsfwd -l 0.0.0.0:53 -r "$T/resolv.conf" -s "127.0.0.1#$up_port"
eq "wildcard listener, nameserver 10.99.0.1 (an address of lo): skipped" \
	"$(grep -c 'skipping nameserver 10\.99\.0\.1#53: it points back' \
	"$DNSFWD_ERR")" 1
DNSFWD_ADDR=10.99.0.1
q b.test
eq "... answered through -s" "$RCODE $ANSWER" "NOERROR 192.0.2.1"
DNSFWD_ADDR=127.0.0.1
stop_dnsfwd

# ---- -s naming a listener ----------------------------------------------------
start_dnsfwd -R -l 127.0.0.1:5399 -s 127.0.0.1#5399 -s "127.0.0.1#$up_port"
eq "-s 127.0.0.1#5399 with a listener there: skipped at start, said" \
	"$(grep -c -- '-s 127\.0\.0\.1#5399: skipped: it points back' \
	"$DNSFWD_ERR")" 1
q c.test
eq "... the other -s answers" "$RCODE $ANSWER" "NOERROR 192.0.2.1"
lt "... at once (ms)" "$MS" 1000
stop_dnsfwd

# ---- the last line: a NAT that hands our own query back ---------------------
# The relay listens on 127.0.0.1:5398 and sends every datagram on to
# dnsfwd (127.0.0.1:5397) from the address and port it came from (a raw
# socket: what a DNAT rule does).
$IN python3 - >"$T/relay.out" 2>&1 <<'PY' &
import select, socket, struct
up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
up.bind(("127.0.0.1", 5398))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
print("ready", flush=True)
while True:
    r, _, _ = select.select([up], [], [], 30)
    if not r:
        break
    d, (addr, port) = up.recvfrom(4096)
    udp = struct.pack(">HHHH", port, 5397, 8 + len(d), 0) + d
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64,
                     17, 0, socket.inet_aton(addr),
                     socket.inet_aton("127.0.0.1"))
    raw.sendto(ip + udp, ("127.0.0.1", 0))
PY
rp=$!
track_pid "$rp"
wait_for 10 grep -q ready "$T/relay.out"
start_dnsfwd -R -v -t 1500 -l 127.0.0.1:5397 -s 127.0.0.1#5398 \
	-s "127.0.0.1#$up_port"
for i in 1 2 3; do
	q "loop$i.test"
	eq "loop $i: the next upstream answers" "$RCODE $ANSWER" \
		"NOERROR 192.0.2.1"
	lt "loop $i: at once, not after the 1500 ms timeout (ms)" "$MS" 1000
done
# The first looped attempt is asked again from a fresh port, loops again,
# fails and marks the looping upstream down, so the next queries go
# straight to the one that answers; once its backoff is over (a busy
# machine may get there) a probe of it loops too, and is caught as
# dnsfwd's own: it stays down.
nloop=$(grep -c "loop[0-9]\\.test A: loop: dnsfwd's own query, dropped" \
	"$DNSFWD_ERR")
eq "two -v lines for the first looped query (asked again once); then down" \
	"$nloop" 2
counters
eq "SIGUSR1 counts them, looped probes too" "$(counter loops)" \
	"$(grep -cE "loop[0-9]\\.test A: loop: dnsfwd's own (query|probe)" \
	"$DNSFWD_ERR")" || diag "$COUNTERS"
match "the looping upstream is down" "$COUNTERS" \
	'upstream 127\.0\.0\.1#5398: .*, down'
q loop4.test
eq "down: not asked again, only probed" \
	"$(grep -c "loop4\\.test A: loop: dnsfwd's own query" "$DNSFWD_ERR")" 0
# Past the backoff a query sends a probe, which loops: caught, still down.
_probe_looped()
{
	q "probe$RANDOM.test"
	grep -q "A: loop: dnsfwd's own probe, dropped" "$DNSFWD_ERR"
}
ok "a probe of it that loops back is caught as dnsfwd's own" \
	wait_for 20 _probe_looped
counters
match "... and it stays down" "$COUNTERS" \
	'upstream 127\.0\.0\.1#5398: .*, down'
eq "the table holds nothing afterwards" "$(counter 'in flight')" 0
stop_dnsfwd
kill "$rp" 2>/dev/null
wait "$rp" 2>/dev/null

# ---- the ID alone proves nothing -----------------------------------------------
# A relay that keeps the ID but sends from its own port: an ordinary
# client of dnsfwd, its query joins the one in flight.  The upstream it
# relays for times out; the next one answers.
$IN python3 - >"$T/relay2.out" 2>&1 <<'PY' &
import select, socket
up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
up.bind(("127.0.0.1", 5398))
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
out.connect(("127.0.0.1", 5397))
print("ready", flush=True)
while True:
    r, _, _ = select.select([up, out], [], [], 30)
    if not r:
        break
    for s in r:
        if s is up:
            out.send(up.recv(4096))
        else:
            out.recv(4096)
PY
rp=$!
track_pid "$rp"
wait_for 10 grep -q ready "$T/relay2.out"
start_dnsfwd -R -v -t 1500 -l 127.0.0.1:5397 -s 127.0.0.1#5398 \
	-s "127.0.0.1#$up_port"
q relayed.test
eq "a relay that keeps only the ID: the next upstream answers" \
	"$RCODE $ANSWER" "NOERROR 192.0.2.1"
ge "... after the relayed upstream's timeout: not a loop (ms)" "$MS" 1400
eq "... no loop said" "$(grep -c "loop: dnsfwd's own" "$DNSFWD_ERR")" 0
stop_dnsfwd
kill "$rp" 2>/dev/null
wait "$rp" 2>/dev/null

# An unprivileged process on this host sends the question in flight with
# all 65,536 IDs while it waits for a slow first upstream: the answer
# still comes from the first upstream (before, each ID was tried as the
# attempt's and the right one failed the attempt and marked it down).
start_fakeup slow '* delay 800 answer 192.0.2.7'
start_fakeup fast '* answer 192.0.2.8'
start_dnsfwd -R -t 3000 -l 127.0.0.1:5397 -s "127.0.0.1#$slow_port" \
	-s "127.0.0.1#$fast_port"
sweep()
{
	# the system's python3: one under root's home is not nobody's
	$IN setpriv --reuid 65534 --regid 65534 --clear-groups \
	    /usr/bin/python3 - "$1" <<'PY'
import socket, struct, sys
q = b""
for l in sys.argv[1].split("."):
    q += bytes([len(l)]) + l.encode()
q += b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", 5397))
n = 0
for i in range(65536):
    try:
        s.send(struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + q)
        n += 1
    except OSError:
        pass
print("sent", n)
PY
}
for i in 1 2 3 4; do
	# the victim is another source than the sweeper: the sweep's
	# followers fill only the sweeper's own share of the table
	$IN dig +tries=1 +time=5 -b "127.0.0.$((10 + i))" -p 5397 @127.0.0.1 \
	    "victim$i.test" A >"$T/victim$i.out" 2>&1 &
	vp=$!
	ok "victim $i: its query reached the first upstream" \
	    wait_for 10 grep -q "victim$i\.test" "$T/slow.log"
	sent=$(sweep "victim$i.test" 2>&1)
	wait "$vp"
	match "victim $i: the sweep sent (as uid 65534)" "$sent" '^sent 65536$'

	match "victim $i: answered by the first upstream all the same" \
	    "$(cat "$T/victim$i.out")" 'victim[0-9]\.test\..*IN	A	192\.0\.2\.7'
	eq "victim $i: the name never went to the second upstream" \
	    "$(grep -c "victim$i\\.test" "$T/fast.log")" 0
	# the sweep's queries drained before the next victim asks
	wait_for 60 eval '[ "$(counters; counter "in flight")" = 0 ]'
done
counters
eq "no loop was seen" "$(counter loops)" 0
stop_dnsfwd

#!/usr/bin/env bash
# t-loops.sh: upstreams that are dnsfwd itself never make a loop.  Inside a
# namespace created here (its own lo, and 10.99.0.1 on lo), so fixed ports
# collide with nothing:
#  - "nameserver 0.0.0.0" and "nameserver ::" with the default-style
#    listener on :53: skipped, said;
#  - a wildcard listener (0.0.0.0:53) and a nameserver that is one of the
#    namespace's own addresses (10.99.0.1): skipped;
#  - "-s" naming one of dnsfwd's listeners: skipped at start, said;
#  - the last line: a forwarder dnsfwd cannot see through (a Python relay
#    that keeps the ID) sends dnsfwd's own query back: dropped as a loop,
#    the attempt fails at once and marks that upstream down, the next
#    upstream answers; one -v line per looped query, and the table does
#    not fill.
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

# ---- the last line: a relay that hands our own query back -------------------
# The relay listens on 127.0.0.1:5398 and sends every datagram on to
# dnsfwd (127.0.0.1:5397) unchanged, and the answer back.
$IN python3 - >"$T/relay.out" 2>&1 <<'PY' &
import select, socket
up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
up.bind(("127.0.0.1", 5398))
print("ready", flush=True)
back = {}
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
out.connect(("127.0.0.1", 5397))
while True:
    r, _, _ = select.select([up, out], [], [], 30)
    if not r:
        break
    for s in r:
        if s is up:
            d, a = up.recvfrom(4096)
            back[d[:2]] = a
            out.send(d)
        else:
            d = out.recv(4096)
            if d[:2] in back:
                up.sendto(d, back[d[:2]])
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
# The first looped attempt fails at once and marks the looping upstream
# down, so the next queries go straight to the one that answers; once its
# backoff is over (a busy machine may get there) a probe of it loops too,
# and is caught as dnsfwd's own: it stays down.
nloop=$(grep -c "loop[0-9]\\.test A: loop: dnsfwd's own query, dropped" \
	"$DNSFWD_ERR")
eq "one -v line per looped query: the first; then the loop is down" \
	"$nloop" 1
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

#!/usr/bin/env bash
# t-valgrind.sh: dnsfwd under valgrind memcheck through a representative
# workload, then SIGTERM: 0 errors, and nothing definitely, indirectly or
# possibly lost at exit (tables allocated once and never freed count as
# "still reachable", which is fine).
#
# The workload: UDP and TCP forwarding, cache hits, -a local answers
# (address, other family, NXDOMAIN), -H hosts (A, PTR, a live edit), a
# resolv file reload to another server, upstream timeouts and network
# errors (SERVFAIL), truncation and the TCP retry, malformed queries, a
# burst of a few hundred queries, TCP clients that stop half way, SIGUSR1
# and SIGHUP.  Upstreams named in the resolv file are 127.0.42.1:53 and
# 127.0.42.2:53.  dnsfwd runs --no-sandbox here: valgrind runs its own code
# in the process, which the seccomp filter would stop.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-fault.sh
. "$(dirname "$0")/lib-fault.sh"
need valgrind valgrind
need dig bind9-dnsutils
need perl perl-base
fault_net 127.0.42
if [ -n "${DNSFWD_WRAP:-}" ]; then
	printf '# %s: valgrind cannot run dnsfwd under %s\n' "$SCRIPT" \
	    "$DNSFWD_WRAP"
	exit 0
fi
if grep -q __asan_init "$DNSFWD" 2>/dev/null; then
	printf '# %s: %s is a sanitizer build; valgrind runs the plain one\n' \
	    "$SCRIPT" "$(basename "$DNSFWD")"
	exit 0
fi

VG="valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible"
VG+=" --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99"
VG+=" --track-fds=no --log-file=$T/vg.log"

fakeup_at r1 127.0.42.1:53 'big.test large 60' \
	'* answer 192.0.2.1 ttl=300'
fakeup_at r2 127.0.42.2:53 '* answer 192.0.2.2'
start_fakeup split '*.slow.split.test drop' '* answer 192.0.2.3'
fakeup_at dead 127.0.0.1:0
kill_fakeup dead
printf 'nameserver 127.0.42.1\n' >"$T/resolv.conf"
printf '192.0.2.50 host1.test\n2001:db8::50 host1.test\n' >"$T/hosts"

# answers NAME IP: NAME is answered with IP now.
DNSFWD_WRAP=$VG start_dnsfwd --no-sandbox -r "$T/resolv.conf" -t 300 -c 100 \
	-s "/split.test/127.0.0.1#$split_port" \
	-s "/dead.test/127.0.0.1#$dead_port" \
	-a /local.test/192.0.2.99 -a /nx.test/ -H "$T/hosts"
ok "dnsfwd runs under valgrind" grep -q 'Memcheck' "$T/vg.log"

# 1. forwarding and the cache
q a.fwd.test
eq "udp: answer from the resolv file's server" "$ANSWER" 192.0.2.1
q a.fwd.test
eq "udp again: the same answer" "$ANSWER" 192.0.2.1
eq "cache: the upstream was asked once" "$(asked r1 a.fwd.test)" 1
q b.fwd.test +tcp
eq "tcp: answer" "$ANSWER" 192.0.2.1
q b.fwd.test MX +tcp
eq "tcp: another type, NOERROR" "$RCODE" NOERROR
kq c.fwd.test +tcp
eq "kdig tcp: answer" "$ANSWER" 192.0.2.1

# 2. local answers
q x.local.test
eq "-a: the address" "$ANSWER" 192.0.2.99
q x.local.test AAAA
eq "-a: the other family: NODATA" "$RCODE/$ANSWER" NOERROR/
q y.nx.test
eq "-a without address: NXDOMAIN" "$RCODE" NXDOMAIN

# 3. hosts, and a live edit
q host1.test
eq "-H: A" "$ANSWER" 192.0.2.50
q host1.test AAAA
eq "-H: AAAA" "$ANSWER" 2001:db8::50
q 50.2.0.192.in-addr.arpa PTR
eq "-H: PTR" "$ANSWER" host1.test.
printf '192.0.2.51 host2.test\n' >"$T/hosts.tmp"
mv -f "$T/hosts.tmp" "$T/hosts"
wait_for 10 answers host2.test 192.0.2.51
q host2.test
eq "-H edited: the new name" "$ANSWER" 192.0.2.51

# 4. resolv file reload
printf 'nameserver 127.0.42.2\n' >"$T/resolv.tmp"
mv -f "$T/resolv.tmp" "$T/resolv.conf"
wait_for 10 answers "r$RANDOM.fwd.test" 192.0.2.2
q d.fwd.test
eq "resolv reload: the new server answers" "$ANSWER" 192.0.2.2

# 5. split route, timeouts, network errors
q a.split.test
eq "split: answer" "$ANSWER" 192.0.2.3
q x.slow.split.test
eq "upstream timeout: SERVFAIL" "$RCODE" SERVFAIL
q x.dead.test
eq "network error: SERVFAIL" "$RCODE" SERVFAIL

# 6. truncation: back to r1, which has the large answer
printf 'nameserver 127.0.42.1\n' >"$T/resolv.tmp"
mv -f "$T/resolv.tmp" "$T/resolv.conf"
wait_for 10 answers "s$RANDOM.fwd.test" 192.0.2.1
q big.test +noedns +ignore
match "udp without EDNS: truncated (TC)" "$FLAGS" '(^| )tc( |$)'
q big.test
eq "dig retries over TCP: all 60 records" "$(wc -w <<<"$ANSWER")" 60

# 7. malformed input and half-finished TCP clients
if [ -x "$ROOT/test/dnsq" ]; then
	"$ROOT/test/dnsq" -w 300 "$DNSFWD_ADDR" "$DNSFWD_PORT" '0102' \
	    '000081000001000000000000' >/dev/null 2>&1
	"$ROOT/test/dnsq" -t -r -w 300 -n 0 "$DNSFWD_ADDR" "$DNSFWD_PORT" \
	    '001d1234' >/dev/null 2>&1
	"$ROOT/test/dnsq" -t -w 1000 "$DNSFWD_ADDR" "$DNSFWD_PORT" \
	    "$("$ROOT/test/dnsq" -m 1 p1.fwd.test)" \
	    "$("$ROOT/test/dnsq" -m 2 p2.fwd.test)" >"$T/pipe.out" 2>&1
	eq "tcp: two pipelined queries answered" \
	    "$(grep -c '^rcode=NOERROR' "$T/pipe.out")" 2
else
	skip "malformed and pipelined queries: test/dnsq missing" \
	    "make test/dnsq"
fi
exec {fd}<>"/dev/tcp/$DNSFWD_ADDR/$DNSFWD_PORT"
printf '\000' >&"$fd"
exec {fd}>&-

# 8. a burst (slow under valgrind; the answer or SERVFAIL, no silence)
flood "$DNSFWD_PORT" -n 300 -r 300 -t 5000
flood_clean "burst of 300 under valgrind" 1

# 9. signals
counters
ok "SIGUSR1: counters printed" grep -q 'counters:' <<<"$COUNTERS"
hup
ok "SIGHUP: said" grep -q 'SIGHUP: ' "$DNSFWD_ERR"
q e.fwd.test
eq "after SIGHUP: answer" "$ANSWER" 192.0.2.1
ok "dnsfwd alive under valgrind" _alive "$DNSFWD_PID"

# 10. exit, and the verdict.  valgrind needs a while for the leak check.
kill -TERM "$DNSFWD_PID"
wait_for 60 _gone "$DNSFWD_PID"
stop_dnsfwd
eq "SIGTERM: exit status 0 (99: valgrind found errors or leaks)" \
	"$DNSFWD_STATUS" 0
summary=$(sed -n 's/^==[0-9]*== ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' \
    "$T/vg.log" | tail -n 1)
eq "valgrind: 0 errors" "$summary" 0 ||
	diag "$(grep -v '^==[0-9]*== *$' "$T/vg.log" | head -n 60)"
for kind in definitely indirectly possibly; do
	n=$(sed -n "s/^==[0-9]*== *$kind lost: \\([0-9,]*\\) bytes.*/\\1/p" \
	    "$T/vg.log" | tail -n 1)
	if grep -q 'All heap blocks were freed' "$T/vg.log"; then
		n=0
	fi
	eq "valgrind: $kind lost: 0 bytes" "${n:-?}" 0 ||
	    diag "$(grep -A 12 'lost in loss record' "$T/vg.log" | head -n 60)"
done
diag "$(grep -E 'in use at exit|still reachable|total heap usage' \
    "$T/vg.log")"

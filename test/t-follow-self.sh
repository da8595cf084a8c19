#!/usr/bin/env bash
# t-follow-self.sh: a resolv.conf that lists dnsfwd itself.  dnsfwd listens
# on 127.0.9.1:53 and 127.0.9.3:53; the file names both and one real server
# (up, 127.0.9.2).  The two are skipped (each said on stderr), up is used,
# queries are answered at once, and the counters show one upstream query
# per client query: no loop.  (systemd-resolved's stubs, 127.0.0.53 and .54,
# are upstreams unless dnsfwd listens there: t-follow-systemd.sh.)
# A rewrite that leaves only dnsfwd itself keeps the last good list.
# Addresses: 127.0.9.x (see lib-follow.sh).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
follow_init 127.0.9

start_fakeup_at up 127.0.9.2 \
	'nx.test nxdomain' \
	'* answer 192.0.2.2'
RC=$T/resolv.conf
printf '%s\n' 'nameserver 127.0.9.1' 'nameserver 127.0.9.3' \
	'nameserver 127.0.9.2' >"$RC"
start_dnsfwd -l 127.0.9.1:53 -l 127.0.9.3:53 -r "$RC"
settled
eq "listening on both addresses" "${DNSFWD_LISTEN[*]}" \
	"127.0.9.1:53 127.0.9.3:53"
for a in 127.0.9.1 127.0.9.3; do
	eq "stderr: $a skipped as pointing back at dnsfwd" \
	    "$(errcount "resolv.conf: skipping nameserver ${a//./\\.}#53: it points back at dnsfwd")" 1
done
eq "the list is the real server alone" \
	"$(grep 'upstreams:' "$DNSFWD_ERR" | tail -n 1)" \
	"dnsfwd: upstreams: 127.0.9.2#53"

q a.test
eq "answered by up" "$RCODE $ANSWER" "NOERROR 192.0.2.2"
lt "answered at once (${MS} ms)" "$MS" 500
q nx.test
eq "a negative answer is final (nobody else to ask)" "$RCODE" NXDOMAIN
lt "... and is at once too (${MS} ms)" "$MS" 500
DNSFWD_ADDR=127.0.9.3 q b.test +tcp
eq "the second listener, over TCP: answered by up" "$ANSWER" 192.0.2.2
eq "up asked once per query" \
	"$(asked up a.test) $(asked up nx.test) $(asked up b.test)" "1 1 1"

counters
eq "counters: 3 client queries" "$(counter queries)" 3
eq "counters: 3 forwarded, no storm" "$(counter forwarded)" 3
eq "counters: one upstream, up, with 3 answers" \
	"$(grep -c 'upstream .*: answers' <<<"$COUNTERS") $(sed -n \
	's/.*upstream 127\.0\.9\.2#53: answers \([0-9]*\).*/\1/p' \
	<<<"$COUNTERS")" "1 3"
diag "$COUNTERS"

# A rewrite that lists only dnsfwd itself: the last good list stays.
put "$RC" 'nameserver 127.0.9.1' 'nameserver 127.0.9.3'
wait_for 10 grep -q 'no usable nameserver' "$DNSFWD_ERR"
eq "only itself: no usable nameserver, keeping the list (said once)" \
	"$(errcount 'resolv.conf: no usable nameserver; keeping the previous upstream$')" 1
q c.test
eq "only itself: still answered by up" "$RCODE $ANSWER" "NOERROR 192.0.2.2"
lt "only itself: at once (${MS} ms)" "$MS" 500
counters
eq "only itself: 4 queries, 4 forwarded" \
	"$(counter queries) $(counter forwarded)" "4 4"
ok "dnsfwd still runs" _alive "$DNSFWD_PID"

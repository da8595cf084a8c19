#!/usr/bin/env bash
# t-limits.sh: the contract, "Memory is bounded": beyond --max-queries queries in
# flight new queries are refused (SERVFAIL at once) and counted, and one
# source may not take the table (REFUSED beyond its share); beyond
# --max-tcp connections new ones are closed at once; and dnsfwd keeps
# serving.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need_dnsq

# ---- --max-queries ------------------------------------------------------------------

start_fakeup up 'good.test answer 192.0.2.1' '* drop'
# -t 12000: every check of the full table runs while the first 25 wait,
# which takes about 1.5 s on a quiet machine.
start_dnsfwd -R -c 0 -t 12000 --max-queries 50 -s "127.0.0.1#$up_port"

# Four batches of 50 queries from one source, 200 names.  The upstream
# drops them all.  The source may hold half the table, then no more than
# is still free: the first 25 are forwarded, every later one is REFUSED at
# once (its share is taken), and other sources are still served.
for b in 1 2 3 4; do
	msgs=()
	for i in $(seq 1 50); do
		msgs+=("$("$DNSQ" -m $((b * 100 + i)) "f$b-$i.flood.test")")
	done
	batch[b]="${msgs[*]}"
done
# shellcheck disable=SC2086  # one word per message
"$DNSQ" -w 300 127.0.0.1 "$DNSFWD_PORT" ${batch[1]} >"$T/b1.out"
t_fill=$(date +%s%N)
eq "one source, batch 1: 25 answered at once, half the table waits" \
	"$(grep -c '^rcode=' "$T/b1.out")" 25
eq "one source, batch 1: the other half REFUSED" \
	"$(grep -c '^rcode=REFUSED ' "$T/b1.out")" 25
start=$(date +%s%N)
for b in 2 3 4; do
	# shellcheck disable=SC2086
	"$DNSQ" -w 2000 127.0.0.1 "$DNSFWD_PORT" ${batch[b]} >"$T/b$b.out"
done
ms=$((($(date +%s%N) - start) / 1000000))
cat "$T/b2.out" "$T/b3.out" "$T/b4.out" >"$T/refused.out"
eq "one source, batches 2-4: 150 REFUSED" \
	"$(grep -c '^rcode=REFUSED ' "$T/refused.out")" 150
lt "one source, batches 2-4: refused at once, not after -t 12000 (ms)" \
	"$ms" 6000
eq "one source: the refused ones were not forwarded" \
	"$(grep -c 'f[234]-' "$T/up.log")" 0
eq "one source: 25 forwarded" "$(grep -c 'f1-' "$T/up.log")" 25
ok "one source: answers carry the clients' IDs" \
	grep -q '^rcode=REFUSED id=250 ' "$T/b2.out"
counters
n=$(counter 'over share')
ge "SIGUSR1: the refusals counted as over share" "${n:-0}" 175
q good.test -b 127.0.0.2
eq "another source meanwhile: answered" "$RCODE $ANSWER" "NOERROR 192.0.2.1"

# 30 more sources with one dropped name each, all at once: a source with
# nothing in flight is admitted while there is room, so 25 fill the table
# and 5 find it full (SERVFAIL at once, as dnsmasq does).
pids=()
for i in $(seq 1 30); do
	"$DNSQ" -b "127.0.1.$i" -w 1000 127.0.0.1 "$DNSFWD_PORT" \
	    "$("$DNSQ" -m "$i" "s$i.flood.test")" >"$T/s$i.out" 2>&1 &
	pids+=("$!")
	track_pid "$!"
done
for p in "${pids[@]}"; do
	wait "$p"
	_untrack_pid "$p"
done
lt "30 sources sent while the first 25 were still in flight (ms)" \
	$((($(date +%s%N) - t_fill) / 1000000)) 10000
eq "30 sources: 25 forwarded" "$(grep -c ' s[0-9]*.flood.test ' \
	"$T/up.log")" 25
eq "30 sources: the last 5 SERVFAIL (table full)" \
	"$(cat "$T"/s*.out | grep -c '^rcode=SERVFAIL ')" 5
counters
n=$(counter 'refused (table full)')
ge "SIGUSR1: table full counted" "${n:-0}" 5
counters
n=$(counter 'in flight')
eq "SIGUSR1: in flight at the cap" "${n:-}" 50
ok "flood: dnsfwd still running" kill -0 "$DNSFWD_PID"
q good.test -b 127.0.0.3
eq "table full: a good name gets SERVFAIL" "$RCODE" SERVFAIL
lt "table full: ... at once (ms)" "$MS" 500
# The 50 dropped ones time out after 12 s (SERVFAIL); the table empties.
_table_empty()
{
	counters
	[ "$(counter 'in flight')" = 0 ]
}
ok "after the flood: the table empties once they time out" \
	wait_for 60 _table_empty
ms=$((($(date +%s%N) - start) / 1000000))
ge "after the flood: ... not before the timeout of the queued ones (ms)" \
	"$ms" 11000
q good.test
eq "after the flood: a good name answered, the flooder's too" "$ANSWER" \
	192.0.2.1
lt "after the flood: ... at once (ms)" "$MS" 500
stop_dnsfwd

# ---- --max-tcp ---------------------------------------------------------------------

start_fakeup up2 '* answer 192.0.2.2'
start_dnsfwd -R -c 0 --max-tcp 2 -s "127.0.0.1#$up2_port"
q warm.test	# the upstream socket pool as it will be
fd0=$(nfds "$DNSFWD_PID")
idle=()
# Two sources (one source may hold only half the table: t-tcp-fair.sh).
for i in 1 2; do
	"$DNSQ" -t -w 8000 -b "127.0.0.$((i + 1))" 127.0.0.1 "$DNSFWD_PORT" '' \
	    >"$T/idle$i.out" 2>&1 &
	idle+=("$!")
	track_pid "$!"
done
# Both connected and accepted: dnsfwd holds two more descriptors.
ok "--max-tcp 2: both idle connections accepted" wait_for 30 fds_are $((fd0 + 2))
start=$(date +%s%N)
out=$("$DNSQ" -t -w 3000 127.0.0.1 "$DNSFWD_PORT" "$("$DNSQ" -m 7 t3.test)")
ms=$((($(date +%s%N) - start) / 1000000))
match "--max-tcp 2, two idle open: a third connection is answered" "$out" \
	'^rcode=NOERROR id=7 '
lt "--max-tcp 2: ... at once (ms)" "$ms" 1000
q udp.test
eq "--max-tcp 2 full: UDP still answered" "$ANSWER" 192.0.2.2
counters
n=$(counter 'tcp evicted')
ge "SIGUSR1: the eviction counted" "${n:-0}" 1
for p in "${idle[@]}"; do
	kill -TERM "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	_untrack_pid "$p"
done
eq "the idle connection open longest was closed to admit it, not the other" \
	"$(cat "$T/idle1.out" "$T/idle2.out" | grep -c closed)" 1
ok "after closing them: dnsfwd closed its ends" wait_for 30 fds_are "$fd0"
q tcp.test +tcp
eq "after closing them: TCP answered again" "$ANSWER" 192.0.2.2
out=$("$DNSQ" -t -w 3000 127.0.0.1 "$DNSFWD_PORT" "$("$DNSQ" -m 8 t4.test)" \
	"$("$DNSQ" -m 9 t5.test)")
match "after closing them: two queries on one connection" "$out" \
	"id=8 .*"$'\n'".*id=9 |id=9 .*"$'\n'".*id=8 "
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

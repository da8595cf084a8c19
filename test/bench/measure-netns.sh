#!/usr/bin/env bash
# measure-netns.sh: one dnsfwd serving many network namespaces, as a VM host
# runs it: RSS and descriptors with N namespaces (default 200) matched by
# one -N pattern, idle and after one query in each, and the time from
# "ip netns add" to a served query.  Needs root and ip(8).
#
#	bash test/bench/measure-netns.sh [N] [BINARY]	(default 200, ./dnsfwd)
#
# Build the static binary first for the figure the README gives:
#	make static && bash test/bench/measure-netns.sh
# Every namespace is made here (dnsfwd-m-PID-*) and deleted on exit.

set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-200}
BIN=${2:-$ROOT/dnsfwd}
P=dnsfwd-m-$$
T=$(mktemp -d "${TMPDIR:-/tmp}/dnsfwd-netns.XXXXXX") || exit 1
PIDS=()
made=0

cleanup()
{
	local pid n

	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	for ((n = 1; n <= made; n++)); do
		ip netns del "$P-$n" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

kib() { awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/status"; }
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

"$ROOT/test/fakeup" -l 127.0.0.1:0 '* answer 192.0.2.1' 2>"$T/up.err" &
PIDS+=($!)
for ((i = 0; i < 50; i++)); do
	up=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$T/up.err")
	[ -n "$up" ] && break
	sleep 0.1
done
"$BIN" -R -q -s "127.0.0.1#$up" -l 127.0.0.1:0 -N "/run/netns/$P-*" \
	-l 127.0.0.1:53 2>"$T/dnsfwd.err" &
D=$!
PIDS+=("$D")
sleep 0.5
echo "binary: $BIN ($(file -b "$BIN" | cut -d, -f1-2))"
printf '%-34s %10s %6s\n' "" "RSS KiB" "fds"
printf '%-34s %10s %6s\n' "start, no namespace" "$(kib "$D" VmRSS)" \
	"$(nfds "$D")"
for ((n = 1; n <= N; n++)); do
	ip netns add "$P-$n" && made=$n
	ip -n "$P-$n" link set lo up
done
for ((i = 0; i < 100; i++)); do
	[ "$(grep -c 'listening on 127.0.0.1:53 ' "$T/dnsfwd.err")" -ge "$N" ] &&
	    break
	sleep 0.1
done
printf '%-34s %10s %6s\n' "$N namespaces, idle" "$(kib "$D" VmRSS)" \
	"$(nfds "$D")"
bad=0
for ((n = 1; n <= N; n++)); do
	ip netns exec "$P-$n" dig +short +time=1 +tries=1 @127.0.0.1 \
	    "q$n.test" | grep -q 192.0.2.1 || bad=$((bad + 1))
done
printf '%-34s %10s %6s\n' "$N namespaces, a query in each" \
	"$(kib "$D" VmRSS)" "$(nfds "$D")"
echo "peak RSS: $(kib "$D" VmHWM) KiB; unanswered: $bad of $N"
# the time from ip netns add to a served query, five times
for k in 1 2 3 4 5; do
	name=$P-t$k
	t0=$(date +%s%N)
	ip netns add "$name"
	ip -n "$name" link set lo up
	for ((i = 0; i < 200; i++)); do
		ip netns exec "$name" dig +short +time=1 +tries=1 @127.0.0.1 \
		    t.test 2>/dev/null | grep -q 192.0.2.1 && break
	done
	echo "ip netns add to a served query: $((($(date +%s%N) - t0) / 1000000)) ms"
	ip netns del "$name"
done

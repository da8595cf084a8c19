#!/usr/bin/env bash
#
# measure-cache.sh: what the answer cache costs and gives (not run by
# "make test").
#
# 1. Cache-hit throughput: dnsperf cycles 100 names (h<N>.cache.test A) for
#    MEASURE_SECONDS against dnsfwd -c 10000 and against dnsmasq -c 10000,
#    both forwarding to the same test/bench/benchup, both warmed first (every
#    name asked once), in MEASURE_ROUNDS alternating rounds.  Reported: q/s,
#    lost, server CPU per query, and upstream queries per query (about 0
#    when every answer comes from the cache), then the dnsfwd/dnsmasq q/s
#    ratio.
# 2. dnsfwd's memory with -c 10000: VmRSS and VmHWM from /proc/PID/status
#    when idle (just started), after the 100-name runs, and with the cache
#    full of 10,000 distinct names (checked with SIGUSR1: "size 10000 of
#    10000").
#
# dnsperf and benchup run on CPU 0, the server under test on CPU 1 (when
# there are 2 CPUs and taskset).  Only loopback is used.  Every process
# started here is recorded and stopped by its PID; every wait is bounded.
#
# Knobs: MEASURE_SECONDS (default 10), MEASURE_ROUNDS (default 2).

set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${MEASURE_SECONDS:-10}
ROUNDS=${MEASURE_ROUNDS:-2}
CC=${CC:-cc}
CACHE_N=10000
DNSMASQ_CACHE=$CACHE_N
OUTSTANDING=100
PERF_TIMEOUT=2

for v in "$SECS" "$ROUNDS"; do
	case $v in
	'' | *[!0-9]* | 0)
		echo "measure-cache.sh: \"$v\" is not a positive number" >&2
		exit 1 ;;
	esac
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/dnsfwd-mcache.XXXXXX") || exit 2

# shellcheck source=test/bench/lib-bench.sh
. "$ROOT/test/bench/lib-bench.sh"
need_tools measure-cache.sh dnsperf dig

# ==== Measurements ============================================================

# cache_line: dnsfwd's SIGUSR1 "cache:" line (FWD_PID, log $TMP/dnsfwd.log).
cache_line()
{
	usr1_wait "$FWD_PID" "$TMP/dnsfwd.log" '^dnsfwd: cache: '
	grep '^dnsfwd: cache: ' "$TMP/dnsfwd.log" | tail -n 1
}

# perf PORT FILE SECONDS|-n1 [DNSPERF-OPTIONS]: run dnsperf; set P_QPS,
# P_COMPLETED, P_LOST, P_RCODES.
perf()
{
	local port=$1 file=$2 how=$3 out=$TMP/perf.out lim

	shift 3
	if [ "$how" = -n1 ]; then
		set -- -n 1 "$@"
		lim=120
	else
		set -- -l "$how" "$@"
		lim=$((how + PERF_TIMEOUT + 30))
	fi
	spawn "$out" timeout -k 5 "$lim" "${ON_CLIENT[@]}" dnsperf \
	    -s 127.0.0.1 -p "$port" -d "$file" -c 4 -T 1 \
	    -q "$OUTSTANDING" -t "$PERF_TIMEOUT" "$@"
	wait "$SPAWNED"
	forget "$SPAWNED"
	P_QPS=$(awk '/Queries per second:/ { printf "%d", $4 }' "$out")
	P_COMPLETED=$(awk '/Queries completed:/ { print $3 }' "$out")
	P_LOST=$(awk '/Queries lost:/ { print $3 }' "$out")
	P_RCODES=$(sed -n 's/^ *Response codes: *//p' "$out")
	[ -n "$P_QPS" ] && [ -n "$P_COMPLETED" ]
}

# ==== Workloads and upstream =================================================

for ((i = 0; i < 100; i++)); do
	echo "h$i.cache.test A"
done >"$TMP/hot.txt"
for ((i = 0; i < CACHE_N; i++)); do
	echo "f$i.fill.test A"
done >"$TMP/fill.txt"

if [ ! -x "$ROOT/test/bench/benchup" ] ||
    [ "$ROOT/test/bench/benchup.c" -nt "$ROOT/test/bench/benchup" ]; then
	"$CC" -O2 -o "$ROOT/test/bench/benchup" "$ROOT/test/bench/benchup.c" || exit 2
fi
spawn "$TMP/benchup.log" "${ON_CLIENT[@]}" "$ROOT/test/bench/benchup" \
    -l 127.0.0.1:0
BENCHUP_PID=$SPAWNED
UPPORT=$(listen_port "$BENCHUP_PID" "$TMP/benchup.log" benchup) || {
	echo "measure-cache.sh: benchup did not start" >&2
	cat "$TMP/benchup.log" >&2
	exit 2
}

start_dnsfwd()
{
	spawn "$TMP/dnsfwd.log" "${ON_SERVER[@]}" "$ROOT/dnsfwd" -R \
	    -s "127.0.0.1#$UPPORT" -l 127.0.0.1:0 -c "$CACHE_N"
	FWD_PID=$SPAWNED
	FWD_PORT=$(listen_port "$FWD_PID" "$TMP/dnsfwd.log" dnsfwd)
}

HZ=$(getconf CLK_TCK)
ROWS=$TMP/rows
: >"$ROWS"
NOTES=()

# hot NAME: start NAME, warm its cache, one throughput run; a row to ROWS.
hot()
{
	local name=$1 round=$2 t0 t1 u0 u1 cpu up

	if ! "start_$name" || [ -z "$FWD_PORT" ] || ! answers "$FWD_PID" "$FWD_PORT"; then
		NOTES+=("$name did not start: $(tail -n 1 "$TMP/$name.log")")
		[ -n "${FWD_PID:-}" ] && stop "$FWD_PID"
		return 1
	fi
	perf "$FWD_PORT" "$TMP/hot.txt" -n1 >/dev/null	# warm
	u0=$(upstream_count)
	t0=$(cpu_ticks "$FWD_PID")
	if ! perf "$FWD_PORT" "$TMP/hot.txt" "$SECS"; then
		NOTES+=("$name: dnsperf failed: $(tail -n 1 "$TMP/perf.out")")
		stop "$FWD_PID"
		return 1
	fi
	t1=$(cpu_ticks "$FWD_PID")
	u1=$(upstream_count)
	cpu=$(awk -v t="$((t1 - t0))" -v hz="$HZ" -v n="$P_COMPLETED" \
	    'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }')
	up=$(awk -v d="$((u1 - u0))" -v n="$P_COMPLETED" \
	    'BEGIN { printf "%.4f", n ? d / n : 0 }')
	case $P_RCODES in
	"NOERROR "*\)) ;;
	*) NOTES+=("$name round $round: response codes: $P_RCODES") ;;
	esac
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$P_QPS" "$P_LOST" \
	    "$cpu" "$up" >>"$ROWS"
	echo "measure: $name, round $round: $P_QPS q/s, $P_LOST lost" >&2
	if [ "$name" = dnsfwd ]; then
		HOT_RSS=$(kib "$FWD_PID" VmRSS) HOT_HWM=$(kib "$FWD_PID" VmHWM)
		HOT_CACHE=$(cache_line)
	fi
	stop "$FWD_PID"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BUILD="$("$ROOT/dnsfwd" -V 2>&1 | head -n 1), binary of $(date -r \
    "$ROOT/dnsfwd" '+%F %T'), git $(git -C "$ROOT" rev-parse --short HEAD \
    2>/dev/null || echo '?')"
for ((r = 1; r <= ROUNDS; r++)); do
	hot dnsfwd "$r"
	command -v dnsmasq >/dev/null 2>&1 && hot dnsmasq "$r"
done
command -v dnsmasq >/dev/null 2>&1 || NOTES+=("dnsmasq missing: no peer row")

# ---- memory: idle, then a full cache ----------------------------------------
MEM_OK=0
if start_dnsfwd && [ -n "$FWD_PORT" ]; then
	sleep 0.5
	IDLE_RSS=$(kib "$FWD_PID" VmRSS) IDLE_HWM=$(kib "$FWD_PID" VmHWM)
	for ((pass = 1; pass <= 3; pass++)); do
		perf "$FWD_PORT" "$TMP/fill.txt" -n1 -Q 20000 >/dev/null
		FULL_CACHE=$(cache_line)
		case $FULL_CACHE in
		*"size $CACHE_N of $CACHE_N,"*) MEM_OK=1; break ;;
		esac
	done
	FULL_RSS=$(kib "$FWD_PID" VmRSS) FULL_HWM=$(kib "$FWD_PID" VmHWM)
	FILL_PASSES=$pass
	stop "$FWD_PID"
else
	NOTES+=("dnsfwd did not start for the memory run")
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ==== Report =================================================================

echo
echo "dnsfwd: $BUILD"
echo
echo "## Cache-hit throughput: 100 names, ${SECS} s per run, dnsperf -c 4 -q $OUTSTANDING"
echo "($PINNING; $(nproc) CPUs; load average before $LOAD_BEFORE, after $LOAD_AFTER)"
echo
printf '| %-8s | %5s | %9s | %6s | %11s | %10s |\n' server round "q/s" lost \
    "CPU us/q" "upstream/q"
printf '|%s|%s|%s|%s|%s|%s|\n' ---------- ------- ----------- -------- \
    ------------- ------------
while IFS=$'\t' read -r n r qps lost cpu up; do
	printf '| %-8s | %5s | %9s | %6s | %11s | %10s |\n' "$n" "$r" "$qps" \
	    "$lost" "$cpu" "$up"
done <"$ROWS"
awk -F '\t' '
	{ q[$1] += $3; c[$1] += $5; k[$1]++ }
	END {
		if (k["dnsfwd"] && k["dnsmasq"]) {
			f = q["dnsfwd"] / k["dnsfwd"]
			m = q["dnsmasq"] / k["dnsmasq"]
			printf "\nmean q/s: dnsfwd %d, dnsmasq %d; ratio dnsfwd/dnsmasq %.2f\n", f, m, f / m
			printf "mean CPU us/q: dnsfwd %.2f, dnsmasq %.2f; ratio %.2f\n", c["dnsfwd"] / k["dnsfwd"], c["dnsmasq"] / k["dnsmasq"], (c["dnsfwd"] / k["dnsfwd"]) / (c["dnsmasq"] / k["dnsmasq"])
		}
	}' "$ROWS"
echo
echo "## dnsfwd memory, -c $CACHE_N (KiB)"
echo
printf '| %-38s | %7s | %7s |\n' state VmRSS VmHWM
printf '|%s|%s|%s|\n' ---------------------------------------- --------- \
    ---------
printf '| %-38s | %7s | %7s |\n' "idle (just started)" "${IDLE_RSS:--}" \
    "${IDLE_HWM:--}"
printf '| %-38s | %7s | %7s |\n' "after a 100-name run (last round)" \
    "${HOT_RSS:--}" "${HOT_HWM:--}"
printf '| %-38s | %7s | %7s |\n' "cache full: $CACHE_N names" \
    "${FULL_RSS:--}" "${FULL_HWM:--}"
echo
echo "100-name run: ${HOT_CACHE:-?}"
echo "full cache (after ${FILL_PASSES:-?} fill pass(es)): ${FULL_CACHE:-?}"
[ "$MEM_OK" = 1 ] || NOTES+=("the cache did not reach $CACHE_N entries")
if [ -n "${FULL_RSS:-}" ] && [ -n "${IDLE_RSS:-}" ]; then
	awk -v a="$IDLE_RSS" -v b="$FULL_RSS" -v n="$CACHE_N" 'BEGIN {
		printf "full - idle: %d KiB, %.0f bytes per entry\n",
		    b - a, (b - a) * 1024 / n }'
fi
for n in "${NOTES[@]}"; do
	echo "note: $n"
done

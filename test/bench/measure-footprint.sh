#!/usr/bin/env bash
#
# measure-footprint.sh: the memory the cache takes, dnsfwd beside dnsmasq
# and unbound (not run by "make test").
#
# Each server forwards to test/bench/benchup and is given, by dnsperf, every
# name of a list once:
#   - "20,000 A": 20,000 distinct names (benchup's one A record, TTL 300;
#     about 50 bytes each) through a 10,000-entry cache: dnsfwd -c 10000,
#     dnsmasq -c 10000, unbound with its default caches (4 MiB + 4 MiB);
#   - dnsfwd with its defaults (-c 1000) given 2,000 A names, then 2,000
#     TXT names (benchup's 1,000 bytes of text, asked with EDNS), to show
#     the entry bound and the byte bound.
# Reported: VmRSS from /proc/PID/status, idle (just started and answering),
# warmed (after 2,000 MX names, which benchup answers NODATA without an SOA:
# not cached, but the query table and buffers are touched as by any load),
# and after the list; growth is after - warmed, what the cache took; and
# for dnsfwd its SIGUSR1 cache lines.  dnsfwd is
# the static build (musl-gcc, as `make static`) built here from the tree;
# DNSFWD_BEFORE=PATH adds rows for another dnsfwd binary (an older build).
#
# Only loopback is used.  Every process started here is recorded and stopped
# by its PID; every wait is bounded.

set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-cc}
NAMES=20000
OUTSTANDING=100

TMP=$(mktemp -d "${TMPDIR:-/tmp}/dnsfwd-footprint.XXXXXX") || exit 2

# shellcheck source=test/bench/lib-bench.sh
. "$ROOT/test/bench/lib-bench.sh"
need_tools measure-footprint.sh dnsperf dig musl-gcc

musl-gcc -std=c11 -D_GNU_SOURCE -Os -static -s -o "$TMP/dnsfwd-static" \
    "$ROOT/dnsfwd.c" || exit 2
if [ ! -x "$ROOT/test/bench/benchup" ] ||
    [ "$ROOT/test/bench/benchup.c" -nt "$ROOT/test/bench/benchup" ]; then
	"$CC" -O2 -o "$ROOT/test/bench/benchup" "$ROOT/test/bench/benchup.c" || exit 2
fi
for ((i = 0; i < NAMES; i++)); do
	echo "f$i.fill.test A"
done >"$TMP/a.txt"
head -n 2000 "$TMP/a.txt" >"$TMP/a2000.txt"
for ((i = 0; i < 2000; i++)); do
	echo "t$i.txt.test TXT"
done >"$TMP/txt.txt"
for ((i = 0; i < 2000; i++)); do
	echo "w$i.warm.test MX"
done >"$TMP/warm.txt"

spawn "$TMP/benchup.log" "${ON_CLIENT[@]}" "$ROOT/test/bench/benchup" \
    -l 127.0.0.1:0
BENCHUP_PID=$SPAWNED
UPPORT=$(listen_port "$BENCHUP_PID" "$TMP/benchup.log" benchup) || {
	echo "measure-footprint.sh: benchup did not start" >&2
	exit 2
}

# fill PORT FILE [DNSPERF-OPTIONS]: every name of FILE once; "lost N".
fill() {
	local port=$1 file=$2
	shift 2
	timeout -k 5 300 "${ON_CLIENT[@]}" dnsperf -s 127.0.0.1 -p "$port" \
	    -d "$file" -n 1 -c 4 -T 1 -q "$OUTSTANDING" -t 5 -Q 20000 "$@" \
	    >"$TMP/perf.out" 2>&1
	awk '/Queries lost:/ { printf "lost %s", $3 }' "$TMP/perf.out"
}

# cache_lines: dnsfwd's SIGUSR1 cache lines (FWD_PID, log $TMP/fwd.log).
cache_lines() {
	usr1_wait "$FWD_PID" "$TMP/fwd.log" '^dnsfwd: cache memory: '
	grep '^dnsfwd: cache: ' "$TMP/fwd.log" | tail -n 1 |
	    sed 's/^dnsfwd: cache: //; s/, hits.*inserts/, inserts/'
	grep '^dnsfwd: cache memory: ' "$TMP/fwd.log" | tail -n 1 |
	    sed 's/^dnsfwd: cache memory: //'
}

start_fwd() {	# BINARY ARGS...
	local bin=$1
	shift
	spawn "$TMP/fwd.log" "${ON_SERVER[@]}" "$bin" -R \
	    -s "127.0.0.1#$UPPORT" -l 127.0.0.1:0 "$@"
	FWD_PID=$SPAWNED
	FWD_PORT=$(listen_port "$FWD_PID" "$TMP/fwd.log" dnsfwd)
}

ROWS=()
NOTES=()

# row NAME LIST FILE [DNSPERF-OPTIONS]: the server just started (FWD_PID,
# FWD_PORT): idle RSS, fill from FILE, RSS after; a table row.
row() {
	local name=$1 list=$2 file=$3 idle warm after lost extra=
	shift 3
	if [ -z "${FWD_PORT:-}" ] || ! answers "$FWD_PID" "$FWD_PORT"; then
		NOTES+=("$name did not start")
		stop "$FWD_PID"
		return 1
	fi
	sleep 0.5
	idle=$(kib "$FWD_PID" VmRSS)
	fill "$FWD_PORT" "$TMP/warm.txt" "$@" >/dev/null
	sleep 0.5
	warm=$(kib "$FWD_PID" VmRSS)
	lost=$(fill "$FWD_PORT" "$file" "$@")
	sleep 0.5
	after=$(kib "$FWD_PID" VmRSS)
	case $name in dnsfwd*) extra=$(cache_lines | paste -sd ';') ;; esac
	ROWS+=("$(printf '| %-26s | %-18s | %6s | %6s | %6s | %6s | %s |' \
	    "$name" "$list" "$idle" "$warm" "$after" "$((after - warm))" \
	    "$lost${extra:+; $extra}")")
}

echo "measure: dnsfwd -c 10000" >&2
start_fwd "$TMP/dnsfwd-static" -c 10000
row "dnsfwd -c 10000" "$NAMES A" "$TMP/a.txt"
stop "$FWD_PID"
if [ -n "${DNSFWD_BEFORE:-}" ]; then
	echo "measure: $DNSFWD_BEFORE -c 10000" >&2
	start_fwd "$DNSFWD_BEFORE" -c 10000
	row "dnsfwd (before) -c 10000" "$NAMES A" "$TMP/a.txt"
	stop "$FWD_PID"
fi
if command -v dnsmasq >/dev/null 2>&1; then
	echo "measure: dnsmasq -c 10000" >&2
	DNSMASQ_CACHE=10000
	start_dnsmasq
	row "dnsmasq -c 10000" "$NAMES A" "$TMP/a.txt"
	stop "$FWD_PID"
else
	NOTES+=("dnsmasq missing: no row (install dnsmasq)")
fi
if command -v unbound >/dev/null 2>&1; then
	echo "measure: unbound" >&2
	start_unbound
	row "unbound (default caches)" "$NAMES A" "$TMP/a.txt"
	stop "$FWD_PID"
else
	NOTES+=("unbound missing: no row (install unbound)")
fi
for bin in "$TMP/dnsfwd-static" ${DNSFWD_BEFORE:+"$DNSFWD_BEFORE"}; do
	label="dnsfwd"
	[ "$bin" = "$TMP/dnsfwd-static" ] || label="dnsfwd (before)"
	echo "measure: $label defaults" >&2
	start_fwd "$bin"
	row "$label (defaults)" "2,000 A" "$TMP/a2000.txt"
	stop "$FWD_PID"
	start_fwd "$bin"
	row "$label (defaults)" "2,000 TXT, 1000 B" "$TMP/txt.txt" -e
	stop "$FWD_PID"
done

echo
echo "dnsfwd: $("$TMP/dnsfwd-static" -V), static (musl-gcc -Os), git" \
    "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "${DNSFWD_BEFORE:+; before: $DNSFWD_BEFORE}"
echo "RSS in KiB, from /proc/PID/status; $PINNING"
echo
printf '| %-26s | %-18s | %6s | %6s | %6s | %6s | %s |\n' server \
    "names given" idle warmed after growth "dnsperf; dnsfwd's cache after"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ---------------------------- \
    -------------------- -------- -------- -------- -------- ---
for r in "${ROWS[@]}"; do
	echo "$r"
done
for n in "${NOTES[@]}"; do
	echo "note: $n"
done

#!/usr/bin/env bash
#
# bench.sh: dnsperf against dnsfwd and its peers (dnsmasq, unbound, dnsdist),
# side by side, all forwarding to test/bench/benchup on loopback.  Three ceiling
# rows come first: dnsperf straight at benchup; test/bench/relay, the barest
# ID-rewriting relay; and, on the cache path, "relay -a", which answers
# each query itself with no lookup at all (the cheapest possible answer:
# one recvmmsg and one sendmmsg per batch).  The "x floor" column is each
# row's CPU per query over the floor of its path: the relay's on the
# forward path, relay -a's on the cache path.  "relay -p" is the relay
# with a fresh random source port per query, as RFC 5452 asks: what that
# defence costs at the least, measured rather than guessed.
#
# Paths: "forward" cycles 100,000 distinct names (q<N>.bench.test A);
# "cache" cycles 100 names.  "upstream/q" is queries benchup answered per
# query dnsperf completed: about 1 on a true forward path, about 0 when
# answers come from a cache.  The latency column is a separate run at a
# fixed 1000 qps on names never asked before.
#
# benchup and dnsperf run on CPU 0, the forwarder on CPU 1.  Only loopback
# is used.  Every process started here is recorded and killed by PID.
#
# Knobs: BENCH_SECONDS (per throughput run, default 10),
#        BENCH_ONLY="direct relay relayp answer dnsfwd dnsmasq unbound
#        dnsdist" (a subset; relayp is "relay -p"),
#        BENCH_BEFORE=PATH (another dnsfwd binary, an older build: its
#        rows follow dnsfwd's, as "dnsfwd (before)", in the same run).

set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${BENCH_SECONDS:-10}
ONLY=${BENCH_ONLY:-}
CC=${CC:-cc}
LAT_QPS=1000
LAT_SECS=5
OUTSTANDING=100		# dnsperf -q; below dnsmasq's dns-forward-max of 150
PERF_TIMEOUT=2		# dnsperf -t, seconds before a query counts as lost
UPPORT=
NOTES=()

case $SECS in
''|*[!0-9]*|0)
	echo "bench.sh: BENCH_SECONDS: \"$SECS\" is not a number of seconds" >&2
	exit 1 ;;
esac

TMP=$(mktemp -d "${TMPDIR:-/tmp}/dnsfwd-bench.XXXXXX") || exit 2

# shellcheck source=test/bench/lib-bench.sh
. "$ROOT/test/bench/lib-bench.sh"

# ==== Measurements =========================================================

# perf PORT FILE SECONDS [DNSPERF-OPTIONS]: run dnsperf and set P_QPS,
# P_COMPLETED, P_LOST, P_AVG_MS, P_MAX_MS and P_RCODES.
perf() {
	local port=$1 file=$2 secs=$3 out=$TMP/perf.out
	shift 3
	# In the background so that a signal to this script is handled at
	# once; timeout bounds it and passes TERM on to dnsperf.
	spawn "$out" timeout -k 5 $((secs + PERF_TIMEOUT + 30)) \
	    "${ON_CLIENT[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$file" \
	    -l "$secs" -c 4 -T 1 -q "$OUTSTANDING" -t "$PERF_TIMEOUT" "$@"
	wait "$SPAWNED"
	forget "$SPAWNED"
	P_QPS=$(awk '/Queries per second:/ { printf "%d", $4 }' "$out")
	P_COMPLETED=$(awk '/Queries completed:/ { print $3 }' "$out")
	P_LOST=$(awk '/Queries lost:/ { print $3 }' "$out")
	P_AVG_MS=$(awk '/Average Latency/ { printf "%.3f", $4 * 1000 }' "$out")
	P_MAX_MS=$(awk '/Average Latency/ { sub(/\)/, "", $8);
	    printf "%.2f", $8 * 1000 }' "$out")
	P_RCODES=$(sed -n 's/^ *Response codes: *//p' "$out")
	if [ -z "$P_COMPLETED" ] || [ -z "$P_QPS" ]; then
		NOTES+=("dnsperf failed on port $port: $(tail -n 1 "$out")")
		return 1
	fi
	return 0
}

# ==== Rows =================================================================

ROWS=$TMP/rows

# measure NAME PATH PORT [PID]: one throughput run on PATH (plus, on the
# forward path, the fixed-rate latency run) against 127.0.0.1:PORT, where
# PID is the forwarder or empty for none; appends one row to ROWS.
measure() {
	local name=$1 path=$2 port=$3 pid=${4:-}
	local t0='' t1='' u0 u1 cpu=- rss=- up=- lat=- qps lost avg max n
	u0=$(upstream_count)
	[ -n "$pid" ] && t0=$(cpu_ticks "$pid")
	perf "$port" "$TMP/$path.txt" "$SECS" || return 1
	if [ -n "$pid" ]; then
		if alive "$pid"; then
			t1=$(cpu_ticks "$pid")
		else
			NOTES+=("$name, $path: the forwarder exited during the run")
		fi
	fi
	u1=$(upstream_count)
	qps=$P_QPS lost=$P_LOST avg=$P_AVG_MS max=$P_MAX_MS n=$P_COMPLETED
	case $P_RCODES in
	"NOERROR "*\)) ;;
	*) NOTES+=("$name, $path: response codes: ${P_RCODES:-none}") ;;
	esac
	if [ -n "$t1" ] && [ "$n" -gt 0 ]; then
		cpu=$(awk -v t="$((t1 - t0))" -v hz="$HZ" -v n="$n" \
		    'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
	fi
	if [ -n "$u0" ] && [ -n "$u1" ] && [ "$n" -gt 0 ]; then
		up=$(awk -v d="$((u1 - u0))" -v n="$n" \
		    'BEGIN { printf "%.2f", d / n }')
	fi
	if [ "$path" = forward ] &&
	    perf "$port" "$TMP/latency.txt" "$LAT_SECS" -Q "$LAT_QPS"; then
		lat=$P_AVG_MS
		[ "$P_LOST" = 0 ] ||
		    NOTES+=("$name: $P_LOST lost in the $LAT_QPS qps run")
	fi
	[ -n "$pid" ] && alive "$pid" && rss=$(kib "$pid" VmHWM)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$path" \
	    "$qps" "$lost" "$avg" "$max" "$cpu" "$rss" "$up" "$lat" >>"$ROWS"
	echo "bench: $name, $path: $qps q/s, $lost lost" >&2
}

# ==== Forwarders ===========================================================
#
# start_NAME PATH: start one forwarder configured for PATH, upstream
# benchup; set FWD_PID and FWD_PORT, or return 1 with the reason in the
# last line of $TMP/NAME.log.

start_relay() {
	spawn "$TMP/relay.log" "${ON_SERVER[@]}" "$ROOT/test/bench/relay" \
	    -l 127.0.0.1:0 -u "127.0.0.1:$UPPORT"
	FWD_PID=$SPAWNED
	FWD_PORT=$(listen_port "$FWD_PID" "$TMP/relay.log" relay)
}

# relay -p: the relay with a fresh random source port per query (a pool
# socket connected and disconnected around each), the least that port
# randomisation costs; it is not the floor, it is what the defence adds.
start_relayp() {
	spawn "$TMP/relayp.log" "${ON_SERVER[@]}" "$ROOT/test/bench/relay" \
	    -l 127.0.0.1:0 -u "127.0.0.1:$UPPORT" -p
	FWD_PID=$SPAWNED
	FWD_PORT=$(listen_port "$FWD_PID" "$TMP/relayp.log" relay)
}

# relay -a: the cache path's floor; it has no forward path.
start_answer() {
	spawn "$TMP/answer.log" "${ON_SERVER[@]}" "$ROOT/test/bench/relay" \
	    -l 127.0.0.1:0 -a
	FWD_PID=$SPAWNED
	FWD_PORT=$(listen_port "$FWD_PID" "$TMP/answer.log" relay)
}

start_dnsfwd() {
	spawn "$TMP/dnsfwd.log" "${ON_SERVER[@]}" "${FWD_BIN:-$ROOT/dnsfwd}" \
	    -R -s "127.0.0.1#$UPPORT" -l 127.0.0.1:0 -q
	FWD_PID=$SPAWNED
	FWD_PORT=$(listen_port "$FWD_PID" "$TMP/dnsfwd.log" dnsfwd)
}

# dnsdist runs without a cache on the forward path and with a packet cache
# on the cache path.
start_dnsdist() {
	FWD_PORT=$(free_port) && [ -n "$FWD_PORT" ] || return 1
	{
		echo 'setSecurityPollSuffix("")'
		echo "setLocal(\"127.0.0.1:$FWD_PORT\")"
		echo "newServer({address=\"127.0.0.1:$UPPORT\"})"
		if [ "$1" = cache ]; then
			echo 'pc = newPacketCache(10000)'
			echo 'getPool(""):setCache(pc)'
		fi
	} >"$TMP/dnsdist.conf"
	spawn "$TMP/dnsdist.log" "${ON_SERVER[@]}" dnsdist --supervised \
	    --disable-syslog -C "$TMP/dnsdist.conf"
	FWD_PID=$SPAWNED
}

# ==== Driver ===============================================================

wanted() {
	[ -z "$ONLY" ] && return 0
	case " $ONLY " in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

# run NAME LABEL [PATHS]: NAME's forwarder on each of PATHS (default: both),
# a fresh process for each.
run() {
	local name=$1 label=$2 paths=${3:-forward cache} path why
	for path in $paths; do
		FWD_PID=
		FWD_PORT=
		if ! "start_$name" "$path" || [ -z "$FWD_PORT" ]; then
			why=$(tail -n 1 "$TMP/$name.log" 2>/dev/null)
			SKIPPED+=("skipped: $label (did not start${why:+: $why})")
			[ -n "$FWD_PID" ] && stop "$FWD_PID"
			return 1
		fi
		if ! answers "$FWD_PID" "$FWD_PORT"; then
			why=$(tail -n 1 "$TMP/$name.log" 2>/dev/null)
			if [ "$LAST_STATUS" = exited ]; then
				SKIPPED+=("skipped: $label (exited at start${why:+: $why})")
			else
				SKIPPED+=("skipped: $label (no NOERROR 192.0.2.1 from 127.0.0.1:$FWD_PORT: $LAST_STATUS${why:+; log: $why})")
			fi
			stop "$FWD_PID"
			return 1
		fi
		measure "$label" "$path" "$FWD_PORT" "$FWD_PID"
		stop "$FWD_PID"
	done
}

# The first pass of table and targets over ROWS: each path's floor (the
# relay's CPU per query on the forward path, relay -a's on the cache path)
# into floor[PATH], every row's into cpu[NAME "/" PATH].
FLOORS='
	NR == FNR {
		if ($7 != "-" && $7 > 0 &&
		    (($1 == "relay" && $2 == "forward") ||
		    ($1 == "relay -a" && $2 == "cache")))
			floor[$2] = $7
		cpu[$1 "/" $2] = $7
		next
	}'

# table: ROWS as one aligned, markdown-compatible table.
table() {
	awk -F '\t' "$FLOORS"'
	{
		ratio = "-"
		if ($7 != "-" && ($2 in floor))
			ratio = sprintf("%.2f", $7 / floor[$2])
		n++
		split($1 "\t" $2 "\t" $3 "\t" $4 "\t" $5 "\t" $6 "\t" $7 "\t" \
		    ratio "\t" $8 "\t" $9 "\t" $10, f, "\t")
		for (i = 1; i <= 11; i++)
			cell[n, i] = f[i]
	}
	END {
		split("forwarder|path|queries/s|lost|avg ms|max ms|" \
		    "CPU us/query|x floor|peak RSS KiB|upstream/q|" \
		    "avg ms @1000qps", h, "|")
		for (i = 1; i <= 11; i++) {
			cell[0, i] = h[i]
			w[i] = length(h[i])
			for (r = 1; r <= n; r++)
				if (length(cell[r, i]) > w[i])
					w[i] = length(cell[r, i])
		}
		for (r = 0; r <= n; r++) {
			line = "|"
			for (i = 1; i <= 11; i++)
				line = line sprintf(i <= 2 ? " %-*s |" : " %*s |",
				    w[i], cell[r, i])
			print line
			if (r > 0)
				continue
			line = "|"
			for (i = 1; i <= 11; i++) {
				dash = ""
				for (k = 0; k < w[i]; k++)
					dash = dash "-"
				line = line (i <= 2 ? ":" dash " |" : " " dash ":|")
			}
			print line
		}
	}' "$ROWS" "$ROWS"
}

# targets: dnsfwd's CPU per query over unbound's and the floor's, per path.
targets() {
	awk -F '\t' "$FLOORS"'
	END {
		for (k = 0; k < 4; k++) {
			name = k < 2 ? "dnsfwd" : "dnsfwd (before)"
			path = k % 2 == 0 ? "forward" : "cache"
			d = cpu[name "/" path]
			if (d == "" || d == "-")
				continue
			line = ""
			r = cpu["relay -p/" path]
			if (r != "" && r != "-" && r > 0)
				line = sprintf("%.2fx relay -p\x27s", d / r)
			m = cpu["dnsmasq -c 0/" path]
			if (m != "" && m != "-" && m > 0)
				line = line (line == "" ? "" : ", ") \
				    sprintf("%.2fx dnsmasq -c 0\x27s", d / m)
			u = cpu["unbound/" path]
			if (u != "" && u != "-" && u > 0)
				line = line (line == "" ? "" : ", ") \
				    sprintf("%.2fx unbound\x27s", d / u)
			if (path in floor)
				line = line (line == "" ? "" : ", ") \
				    sprintf("%.2fx the floor\x27s", d / floor[path])
			if (line != "")
				print name ", " path ": CPU per query " line
		}
	}' "$ROWS" "$ROWS"
}

for tool in dnsperf dig python3; do
	if ! command -v "$tool" >/dev/null; then
		case $tool in
		dig) pkg=bind9-dnsutils ;;
		*) pkg=$tool ;;
		esac
		echo "bench.sh: $tool: not found (install $pkg)" >&2
		exit 1
	fi
done
HZ=$(getconf CLK_TCK)

for prog in benchup relay; do
	if [ ! -x "$ROOT/test/bench/$prog" ] ||
	    [ "$ROOT/test/bench/$prog.c" -nt "$ROOT/test/bench/$prog" ] ||
	    [ "$ROOT/test/bench/benchaddr.h" -nt "$ROOT/test/bench/$prog" ]; then
		echo "bench: building test/$prog" >&2
		$CC -O2 -o "$ROOT/test/bench/$prog" "$ROOT/test/bench/$prog.c" || exit 1
	fi
done

seq 0 99999 | awk '{ print "q" $1 ".bench.test A" }' >"$TMP/forward.txt"
seq 0 9999 | awk '{ print "c" $1 % 100 ".bench.test A" }' >"$TMP/cache.txt"
seq 0 99999 | awk '{ print "l" $1 ".bench.test A" }' >"$TMP/latency.txt"

spawn "$TMP/benchup.log" "${ON_CLIENT[@]}" "$ROOT/test/bench/benchup" -l 127.0.0.1:0
BENCHUP_PID=$SPAWNED
if ! UPPORT=$(listen_port "$BENCHUP_PID" "$TMP/benchup.log" benchup); then
	echo "bench.sh: benchup did not start: $(cat "$TMP/benchup.log")" >&2
	exit 1
fi

echo "bench: $PINNING"
echo "bench: dnsperf -c 4 -T 1 -q $OUTSTANDING -t $PERF_TIMEOUT -l $SECS" \
    "on each path; latency at -Q $LAT_QPS -l $LAT_SECS on unseen names"
echo "bench: upstream test/bench/benchup on 127.0.0.1:$UPPORT (udp)"
: >"$ROWS"
SKIPPED=()

if wanted direct; then
	for path in forward cache; do
		measure direct "$path" "$UPPORT"
	done
fi

if wanted relay; then
	run relay relay
fi

if wanted relayp; then
	run relayp "relay -p" forward
fi

if wanted answer; then
	run answer "relay -a" cache
fi

if wanted dnsfwd; then
	if [ -x "$ROOT/dnsfwd" ]; then
		run dnsfwd dnsfwd
		if [ -n "${BENCH_BEFORE:-}" ]; then
			FWD_BIN=$BENCH_BEFORE run dnsfwd "dnsfwd (before)"
		fi
	else
		SKIPPED+=("skipped: dnsfwd (not built; run make)")
	fi
fi

if wanted dnsmasq; then
	if command -v dnsmasq >/dev/null; then
		DNSMASQ_CACHE=0
		run dnsmasq "dnsmasq -c 0"
		DNSMASQ_CACHE=10000
		run dnsmasq "dnsmasq -c 10000"
	else
		SKIPPED+=("skipped: dnsmasq (install dnsmasq)")
	fi
fi

if wanted unbound; then
	if command -v unbound >/dev/null; then
		run unbound unbound
	else
		SKIPPED+=("skipped: unbound (install unbound)")
	fi
fi

if wanted dnsdist; then
	if command -v dnsdist >/dev/null; then
		run dnsdist dnsdist
	else
		SKIPPED+=("skipped: dnsdist (install dnsdist)")
	fi
fi

# pure_bench NAME: build test/bench/NAME.c with dnsfwd.c's pure half and
# run it on the server CPU: its "WHAT<TAB>ns" lines.
pure_bench() {
	if ! $CC -O2 -std=c11 -D_GNU_SOURCE -DDNSFWD_TEST -o \
	    "$ROOT/test/bench/$1" "$ROOT/test/bench/$1.c" "$ROOT/dnsfwd.c"
	then
		echo "note: test/bench/$1 did not build" >&2	# in a pipe
		return 1
	fi
	"${ON_SERVER[@]}" "$ROOT/test/bench/$1"
}

# dnsfwd_cpu PATH: dnsfwd's CPU us per query on PATH in this run, or "-".
dnsfwd_cpu() {
	awk -F '\t' -v p="$1" '$1 == "dnsfwd" && $2 == p { c = $7 }
	    END { print c == "" ? "-" : c }' "$ROWS"
}

# What "who may ask" adds per datagram, and what the cache's store costs
# per call, from the pure functions; each over dnsfwd's CPU per query on
# the path that pays it.
pure_costs() {
	{ pure_bench bench-acl; pure_bench bench-cache; } |
	awk -v fwd="$(dnsfwd_cpu forward)" -v hit="$(dnsfwd_cpu cache)" '
		{ ns[$1] = $2 }
		# share NS CPU: NS over CPU us, in percent; "" without a CPU
		function share(n, cpu, path) {
			if (cpu == "-" || cpu <= 0)
				return ""
			return sprintf(" (%.2f%% of dnsfwd\x27s %s-path CPU per " \
			    "query)", n / 10 / cpu, path)
		}
		END {
			if ("worst" in ns)
				printf "who may ask, per datagram: loopback %s ns, " \
				    "first network %s ns, a stranger against 64 " \
				    "networks %s ns%s\n", ns["loopback"], ns["first"],
				    ns["worst"], share(ns["worst"], fwd, "forward")
			if ("hit" in ns)
				printf "cache store, per call: a put that evicts %s " \
				    "ns, a hit %s ns%s\n", ns["put"], ns["hit"],
				    share(ns["hit"], hit, "cache")
		}'
}

echo
table
echo
echo "forward: 100,000 distinct names; cache: 100 names; dnsdist has a" \
    "packet cache (10000) on the cache path only."
echo "CPU us/query: forwarder user+system time per completed query;" \
    "x floor: that over the relay's (forward) or relay -a's (cache)."
targets
if wanted dnsfwd; then
	pure_costs
fi
for line in "${SKIPPED[@]}"; do
	echo "$line"
done
for line in "${NOTES[@]}"; do
	echo "note: $line"
done

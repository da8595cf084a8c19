#!/usr/bin/env bash
# soak.sh: a long soak at a steady rate; not run by "make test".
#
# dnsperf sends SOAK_QPS queries a second (default 5000) for SOAK_SECONDS
# (default 600) to dnsfwd, which forwards to test/bench/benchup on loopback.  The
# names are 100,000 distinct ones (each a cache miss, forwarded) with one
# line in ten taken from 20 hot names (cache hits), so both paths run the
# whole time.  A 10 s warm-up at the same rate comes first, so that the
# pages dnsfwd touches on first use are counted before the start RSS.
#
# Asserts: zero queries lost (dnsperf -t SOAK_TIMEOUT, default 3 s), every
# response NOERROR, dnsfwd alive and answering afterwards, and VmRSS at the
# end within SOAK_RSS_KIB (default 2048) of VmRSS at the start.  Prints the
# RSS every minute, dnsperf's summary and dnsfwd's SIGUSR1 counters.
#
#	bash test/bench/soak.sh		# 10 minutes
#	SOAK_SECONDS=60 bash test/bench/soak.sh
#
# shellcheck source=../lib.sh disable=SC2154
. "$(dirname "$0")/../lib.sh"
need dnsperf dnsperf
need dig bind9-dnsutils

SECS=${SOAK_SECONDS:-600}
QPS=${SOAK_QPS:-5000}
PTMO=${SOAK_TIMEOUT:-3}
RSS_SLACK=${SOAK_RSS_KIB:-2048}
WARM=10

for v in SECS QPS PTMO RSS_SLACK; do
	if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
		echo "soak.sh: $v: \"${!v}\" is not a positive number" >&2
		exit 1
	fi
done

if [ ! -x "$ROOT/test/bench/benchup" ]; then
	cc -O2 -o "$ROOT/test/bench/benchup" "$ROOT/test/bench/benchup.c" ||
	    { fail "build test/bench/benchup"; exit 1; }
fi

# rss PID: VmRSS in KiB.
rss()
{
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# cpu_ms PID: user + system CPU time in ms.
cpu_ms()
{
	awk -v hz="$(getconf CLK_TCK)" '{
		sub(/.*\) /, "")
		printf "%d", ($12 + $13) * 1000 / hz }' "/proc/$1/stat"
}

"$ROOT/test/bench/benchup" -l 127.0.0.1:0 2>"$T/benchup.err" &
bu_pid=$!
track_pid "$bu_pid"
wait_for 50 grep -q 'listening on' "$T/benchup.err"
bu_port=$(sed -n 's/^benchup: listening on .*:\([0-9]*\)$/\1/p' \
    "$T/benchup.err")
[ -n "$bu_port" ] || { fail "start benchup" "$(cat "$T/benchup.err")"; exit 1; }

start_dnsfwd -R -s "127.0.0.1#$bu_port" -q

awk 'BEGIN {
	for (i = 1; i <= 100000; i++) {
		printf "s%d.soak.test A\n", i
		if (i % 9 == 0)
			printf "hot%d.soak.test A\n", i % 20
	}
}' >"$T/names"

# perf SECONDS OUT: dnsperf at QPS for SECONDS, bounded by timeout.
perf()
{
	timeout -k 5 $(($1 + PTMO + 30)) dnsperf -s 127.0.0.1 \
	    -p "$DNSFWD_PORT" -d "$T/names" -l "$1" -Q "$QPS" -t "$PTMO" \
	    -c 4 -q 200 >"$2" 2>&1
}

perf "$WARM" "$T/warm.out"
warm_lost=$(awk '/Queries lost:/ { print $3 }' "$T/warm.out")
echo "# warm-up: $WARM s at $QPS qps, lost ${warm_lost:-?}"

rss0=$(rss "$DNSFWD_PID")
cpu0=$(cpu_ms "$DNSFWD_PID")
t0=$(date +%s)
echo "# soak: $SECS s at $QPS qps; dnsfwd pid $DNSFWD_PID, RSS $rss0 KiB"
perf "$SECS" "$T/soak.out" &
perf_pid=$!
track_pid "$perf_pid"
rss_max=$rss0
# One sample a minute; bounded by the run's length plus its timeouts.
for ((i = 1; i <= SECS + PTMO + 40; i++)); do
	_alive "$perf_pid" || break
	sleep 1
	r=$(rss "$DNSFWD_PID")
	[ -n "$r" ] || break
	[ "$r" -gt "$rss_max" ] && rss_max=$r
	((i % 60 == 0)) && echo "# t=${i}s RSS $r KiB"
done
wait "$perf_pid"
perf_rc=$?
_untrack_pid "$perf_pid"
t1=$(date +%s)

sed -n '/^Statistics:/,$p' "$T/soak.out" | sed 's/^/#   /'

ok "dnsfwd alive after the soak" _alive "$DNSFWD_PID"
rss1=$(rss "$DNSFWD_PID")
cpu1=$(cpu_ms "$DNSFWD_PID")
eq "dnsperf ran to its time limit" "$perf_rc" 0
sent=$(awk '/Queries sent:/ { print $3 }' "$T/soak.out")
done_=$(awk '/Queries completed:/ { print $3 }' "$T/soak.out")
lost=$(awk '/Queries lost:/ { print $3 }' "$T/soak.out")
rcodes=$(sed -n 's/^ *Response codes: *//p' "$T/soak.out")
ge "soak: sent at least 95% of $QPS qps x $SECS s" "${sent:-0}" \
    $((QPS * SECS * 95 / 100))
eq "soak: zero queries lost" "${lost:-?}" 0
match "soak: every response NOERROR" "$rcodes" '^NOERROR [0-9]+ \(100\.00%\)$'
lt "soak: RSS at end within $RSS_SLACK KiB of start ($rss0 -> ${rss1:-?} KiB)" \
    "$((${rss1:-999999} - rss0))" "$RSS_SLACK"

q after.soak.test
eq "dnsfwd answers after the soak" "$ANSWER" 192.0.2.1

kill -USR1 "$DNSFWD_PID"
wait_for 20 grep -q 'counters' "$DNSFWD_ERR"
sleep 0.2
echo "# counters:"
sed 's/^/#   /' "$DNSFWD_ERR"
echo "# summary: $((t1 - t0)) s, sent ${sent:-?}, completed ${done_:-?}," \
    "lost ${lost:-?}; RSS start $rss0 KiB, end ${rss1:-?} KiB," \
    "max $rss_max KiB; dnsfwd CPU $((cpu1 - cpu0)) ms" \
    "($(awk -v c=$((cpu1 - cpu0)) -v n="${done_:-1}" \
	'BEGIN { printf "%.2f", c * 1000 / n }') us/query)"

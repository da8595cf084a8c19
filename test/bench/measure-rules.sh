#!/usr/bin/env bash
# test/bench/measure-rules.sh: two measurements, printed, not asserted (make test
# does not run this; run it by hand: bash test/bench/measure-rules.sh).
#
# 1. Throughput of "-R -a /#/"-style local NXDOMAIN answering with 10,000
#    extra "-a /blockNNNN.test/" rules versus none, dnsperf for DURATION
#    seconds (default 10) each, in the same run, on the same query file
#    (half the names under a rule, half not) -> a ratio.
# 2. Memory (VmRSS) of one dnsfwd serving 1 versus 11 network namespaces
#    (10 extra "-N /run/netns/NAME -l 127.0.0.1:53" listeners) -> memory
#    per extra namespace; idle, and after one query on each listener.
#    Needs root and ip(8); the namespaces are created and deleted here.
#
# Environment: DURATION (s, default 10), ROUNDS (alternating pairs of
# runs, default 1), RULES (default 10000),
# NSEXTRA (default 10), DNSPERF_ARGS (default "-c 8 -q 200").
# shellcheck source=../lib.sh disable=SC2154
. "$(dirname "$0")/../lib.sh"

DURATION=${DURATION:-10}
RULES=${RULES:-10000}
NSEXTRA=${NSEXTRA:-10}
ROUNDS=${ROUNDS:-1}
read -r -a perfargs <<<"${DNSPERF_ARGS:--c 8 -q 200}"

# rss PID [FIELD]: VmRSS (or FIELD, e.g. RssAnon) in KiB.
rss()
{
	sed -n "s/^${2:-VmRSS}:[[:space:]]*\([0-9]*\) kB/\1/p" \
		"/proc/$1/status"
}

# cputicks PID: user + system CPU time in clock ticks.
cputicks()
{
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# perf KEY LABEL: dnsperf against the running dnsfwd; sets QPS, prints a
# line; the output in $T/perf.KEY.out.
perf()
{
	local out=$T/perf.$1.out c0 c1 lost completed

	shift
	c0=$(cputicks "$DNSFWD_PID")
	timeout $((DURATION + 30)) dnsperf -s "$DNSFWD_ADDR" \
		-p "$DNSFWD_PORT" -d "$T/queries.txt" -l "$DURATION" \
		"${perfargs[@]}" >"$out" 2>&1
	QPS=$(sed -n 's/^ *Queries per second: *\([0-9.]*\).*/\1/p' "$out")
	lost=$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' "$out")
	completed=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$out")
	c1=$(cputicks "$DNSFWD_PID")
	# CPU time of dnsfwd per answered query: less sensitive than qps to
	# other load on the machine.
	CPUQ=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
		-v n="${completed:-0}" \
		'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "?" }')
	printf '# %-28s %9.0f qps, %s us CPU/query (%s completed, %s lost)\n' \
		"$1:" "${QPS:-0}" "$CPUQ" "${completed:-?}" "${lost:-?}"
	if [ -z "$QPS" ]; then
		sed 's/^/#   /' "$out"
	fi
}

# ---- 1. rules ----------------------------------------------------------------
echo "# 1. throughput: $RULES -a rules versus none, ${DURATION} s each"
if ! command -v dnsperf >/dev/null 2>&1; then
	skip "throughput with $RULES rules" dnsperf
else
	rules=()
	for ((i = 0; i < RULES; i++)); do
		rules+=(-a "/block$i.test/")
	done
	argbytes=$(printf '%s\0' "${rules[@]}" | wc -c)
	argmax=$(getconf ARG_MAX)
	echo "# command line: $((${#rules[@]} + 4)) arguments, $argbytes bytes" \
		"of rules (ARG_MAX $argmax)"
	# The same names for both runs: every other one under a rule.
	types=(A AAAA MX TXT)
	for ((i = 0; i < 20000; i++)); do
		if ((i % 2)); then
			printf 'www.block%d.test %s\n' $((i % RULES)) \
				"${types[i % 4]}"
		else
			printf 'www.other%d.example %s\n' "$i" "${types[i % 4]}"
		fi
	done >"$T/queries.txt"

	# The same command line through exec(2) first: E2BIG shows here.
	if ! "$(command -v true)" -R -a '/#/' "${rules[@]}" -q \
		2>"$T/big.start"; then
		echo "# command line too long: $(cat "$T/big.start")"
		exit 1
	fi
	ratios=()
	cpu0=()
	cpu1=()
	sum0=0
	sum1=0
	for ((r = 1; r <= ROUNDS; r++)); do
		start_dnsfwd -R -a '/#/' -q
		q www.block1.test
		[ "$r" = 1 ] &&
			echo "# no rules: www.block1.test -> $RCODE ($FLAGS)"
		rss0=$(rss "$DNSFWD_PID")
		perf "none$r" "round $r, -a /#/ alone"
		qps0=$QPS
		cpu0+=("$CPUQ")
		stop_dnsfwd

		t0=$(date +%s%N)
		start_dnsfwd -R -a '/#/' "${rules[@]}" -q
		t1=$(date +%s%N)
		q www.block1.test
		if [ "$r" = 1 ]; then
			echo "# with rules: www.block1.test -> $RCODE ($FLAGS);" \
				"listening $(((t1 - t0) / 1000000)) ms after start" \
				"(0.1 s polls)"
		fi
		rss1=$(rss "$DNSFWD_PID")
		perf "rules$r" "round $r, + $RULES rules"
		qps1=$QPS
		cpu1+=("$CPUQ")
		stop_dnsfwd
		if [ -n "$qps0" ] && [ -n "$qps1" ]; then
			ratios+=("$(awk -v a="$qps1" -v b="$qps0" \
				'BEGIN { printf "%.3f", a / b }')")
			sum0=$(awk -v a="$sum0" -v b="$qps0" 'BEGIN { print a + b }')
			sum1=$(awk -v a="$sum1" -v b="$qps1" 'BEGIN { print a + b }')
		fi
	done
	echo "# VmRSS after one query: ${rss0} KiB without rules, ${rss1} KiB" \
		"with $RULES rules"
	if [ "${#ratios[@]}" -gt 0 ]; then
		echo "# RATIO with/without $RULES rules: $(awk -v a="$sum1" \
			-v b="$sum0" 'BEGIN { printf "%.3f", a / b }')" \
			"(per round: ${ratios[*]})"
	fi
	echo "# CPU per query: ${cpu0[*]} us without, ${cpu1[*]} us with" \
		"$RULES rules"
fi

# ---- 2. namespaces -----------------------------------------------------------
echo "# 2. memory: one dnsfwd serving 1 versus $((NSEXTRA + 1)) namespaces"
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1 ||
	! unshare -n true 2>/dev/null; then
	echo "skip - namespaces: needs root and ip (install iproute2)"
	exit 0
fi
nsargs=()
for ((i = 0; i < NSEXTRA; i++)); do
	new_netns "dnsfwd-m-$$-$i"
	nsargs+=(-N "/run/netns/dnsfwd-m-$$-$i" -l 127.0.0.1:53)
done
start_fakeup up '* answer 192.0.2.1'

# measure LABEL ARGS...: VmRSS idle, and after one query on each listener.
measure()
{
	local label=$1 l ns

	shift
	start_dnsfwd -R -s "127.0.0.1#$up_port" -l 127.0.0.1:0 "$@" -q
	sleep 0.2
	IDLE=$(rss "$DNSFWD_PID")
	IDLEA=$(rss "$DNSFWD_PID" RssAnon)
	for l in "${DNSFWD_LISTEN[@]}"; do
		if [[ $l == *" in /run/netns/"* ]]; then
			ns=${l##*/}
			QWRAP="ip netns exec $ns" DNSFWD_ADDR=127.0.0.1 \
				DNSFWD_PORT=53 q "x.$ns.test"
		else
			QWRAP="" q "x.host.test"
		fi
		[ "$ANSWER" = 192.0.2.1 ] ||
			echo "# warning: $l answered '$RCODE $ANSWER'"
	done
	USED=$(rss "$DNSFWD_PID")
	USEDA=$(rss "$DNSFWD_PID" RssAnon)
	printf '# %-16s %2d listeners: VmRSS %5d KiB idle, %5d KiB after a query on each; RssAnon %5d / %5d KiB\n' \
		"$label" "${#DNSFWD_LISTEN[@]}" "$IDLE" "$USED" "$IDLEA" "$USEDA"
	stop_dnsfwd
}

measure "1 namespace:"
idle1=$IDLE used1=$USED idlea1=$IDLEA useda1=$USEDA
measure "$((NSEXTRA + 1)) namespaces:" "${nsargs[@]}"
idle11=$IDLE used11=$USED idlea11=$IDLEA useda11=$USEDA

# per A B: (A - B) / NSEXTRA with one decimal.
per()
{
	awk -v a="$1" -v b="$2" -v n="$NSEXTRA" \
		'BEGIN { printf "%.1f", (a - b) / n }'
}
echo "# PER EXTRA NAMESPACE: VmRSS $(per "$idle11" "$idle1") KiB idle," \
	"$(per "$used11" "$used1") KiB after use;" \
	"RssAnon $(per "$idlea11" "$idlea1") KiB idle," \
	"$(per "$useda11" "$useda1") KiB after use" \
	"(plus kernel socket memory, not in RSS: 1 UDP + 1 TCP listening" \
	"socket each)"

#!/usr/bin/env bash
# test/repeat.sh: run the whole suite N times (make test-repeat N=5) and
# print every test that failed at least once, with how often; with BUSY=1
# every core is kept busy meanwhile (one shell loop per core, started and
# stopped here), as a loaded CI machine would be.  Each run's output is
# kept in $TMPDIR/dnsfwd-repeat.*/run-K.log.  Exits 1 if any run failed.
#
#	bash test/repeat.sh [N]		(default 5)

cd "$(dirname "$0")/.." || exit 1
n=${1:-5}
case $n in
'' | *[!0-9]*) echo "usage: test/repeat.sh [N]" >&2; exit 2 ;;
esac
dir=$(mktemp -d "${TMPDIR:-/tmp}/dnsfwd-repeat.XXXXXX") || exit 1
hogs=()
stop_hogs()
{
	local p

	for p in "${hogs[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	hogs=()
}
trap stop_hogs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ "${BUSY:-0}" = 1 ]; then
	for ((c = 0; c < $(nproc); c++)); do
		( while :; do :; done ) &
		hogs+=("$!")
	done
	echo "# $(nproc) busy loops beside the suite"
fi
export BINS=${BINS:-dnsfwd test/dnsfwd-cc test/dnsfwd-san}	# as make test runs it
bad=0
for ((k = 1; k <= n; k++)); do
	t0=$(date +%s)
	bash test/run.sh >"$dir/run-$k.log" 2>&1
	rc=$?
	[ "$rc" -eq 0 ] || bad=$((bad + 1))
	echo "# run $k: $(tail -n 1 "$dir/run-$k.log"), $(($(date +%s) - t0)) s"
done
stop_hogs
echo "# failed at least once (runs: test), logs in $dir:"
grep -h '^not ok - ' "$dir"/run-*.log | sort | uniq -c | sort -rn |
    sed 's/^ *\([0-9]*\) not ok - /\1: /'
echo "$((n - bad)) of $n runs passed"
[ "$bad" -eq 0 ]

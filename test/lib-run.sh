# test/lib-run.sh: what test/run.sh and test/cross.sh share: which scenario
# scripts run, in what order, and the pool that runs several at once.  The
# sourcing script sets tmp (its scratch directory) and all (the file of
# counted result lines) and defines script S, which runs S and writes what
# it printed to $tmp/NAME.out.  Bash (wait -n).

# the scripts that take longest, started first
SLOW="test/t-fault-upstream.sh test/t-fault-resolv.sh test/t-fault-tcp.sh
test/t-chaos.sh test/t-fault-fds.sh test/t-security.sh test/t-cache.sh
test/t-tcp-fair.sh test/t-protocol.sh test/t-stale.sh test/t-limits.sh"

# scripts_list: the scripts TESTS names ("t-foo.sh t-bar.sh"), or every
# test/t-*.sh, the longest first, so that the pool ends together.
scripts_list()
{
	local t s list=

	if [ -n "${TESTS:-}" ]; then
		for t in $TESTS; do
			list="$list test/$(basename "$t")"
		done
	else
		list=$(echo $SLOW)	# one line
		for s in test/t-*.sh; do
			case " $list " in
			*" $s "*) ;;
			*) list="$list $s" ;;
			esac
		done
	fi
	echo "$list"
}

# show: print and count the output of every script that has ended.
show()
{
	local f

	for f in "$tmp"/*.sh.out; do
		[ -e "$f" ] && [ -e "$f.done" ] || continue
		cat "$f"
		cat "$f" >>"$all"
		rm -f "$f" "$f.done"
	done
}

# pool JOBS SCRIPT...: script() for each SCRIPT, JOBS at a time (the
# scenarios mostly wait on timers, and each has its own addresses,
# namespaces and temporary directory); each one's output is shown whole
# when it ends.
pool()
{
	local jobs=$1 running=0 s

	shift
	for s in "$@"; do
		if [ "$running" -ge "$jobs" ]; then
			wait -n
			running=$((running - 1))
			show
		fi
		(script "$s"; : >"$tmp/$(basename "$s").out.done") &
		running=$((running + 1))
	done
	wait
	show
}

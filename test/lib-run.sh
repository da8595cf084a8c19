# test/lib-run.sh: what test/run.sh and test/cross.sh share: which scenario
# scripts run, in what order, and the pool that runs several at once.  The
# sourcing script sets tmp (its scratch directory), all (the file of
# counted result lines) and limit (seconds per script), and defines script S, which runs S and writes what
# it printed to $tmp/NAME.out.  Bash (wait -n).

# say LINE: print a result line and count it.
# run_dir NAME: $tmp, a directory removed at exit, and $all in it, the
# file every result line goes to.
run_dir()
{
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/dnsfwd-$1.XXXXXX") || exit 1
	# shellcheck disable=SC2064  # $tmp now, not at exit
	trap "rm -rf '$tmp'" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	all=$tmp/all
	: >"$all"
}

say()
{
	echo "$1" | tee -a "$all"
}

# run NAME CMD...: show CMD's output and add a "not ok" for a bad exit that
# printed none (124: timed out after $limit s).  With TAG set, each result
# line is tagged "TAG: " (test/cross.sh: the architecture).  The output
# goes to a file, not a pipe, so a process a test leaves behind cannot
# hold the run up.
run()
{
	local name=$1 out=$tmp/out.$BASHPID rc pre=${TAG:+$TAG: }

	shift
	"$@" >"$out" 2>&1 </dev/null
	rc=$?
	sed -E "s/^(ok|not ok|skip) - /\\1 - $pre/" "$out"
	if [ "$rc" -eq 124 ]; then
		echo "not ok - $pre$name: timed out after $limit s"
	elif [ "$rc" -ne 0 ] && ! grep -q '^not ok - ' "$out"; then
		echo "not ok - $pre$name: exited with status $rc"
	fi
	rm -f "$out"
}

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

# scripts_alone / scripts_shared: the scripts of scripts_list that say
# "# test: alone" in their first 20 lines (they need the whole machine),
# and the others.
_alone()
{
	head -n 20 "$1" | grep -qx '# test: alone'
}

scripts_alone()
{
	local s

	for s in $(scripts_list); do
		_alone "$s" && echo "$s"
	done
}

scripts_shared()
{
	local s

	for s in $(scripts_list); do
		_alone "$s" || echo "$s"
	done
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

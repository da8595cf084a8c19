# shellcheck shell=bash
# test/lib.sh: helpers for the integration tests, sourced by test/t-*.sh.
#
# A test starts fake upstreams and dnsfwd on loopback ports picked by the
# kernel, queries dnsfwd with dig or kdig, and asserts what a user sees.
# Every assertion prints one line, "ok - DESC" or "not ok - DESC" (then
# "#   ..." diagnostics); a missing tool prints "skip - ...".  test/run.sh
# counts those lines.  Every process and network namespace a test creates is
# recorded and removed by cleanup on exit, whatever happened.  Every wait is
# for an event (a line, a counter, an answer, a file) with a deadline on
# the wall clock (wait_for), never a sleep that hopes the event happened.
#
# Scripts run several at a time (test/run.sh), so each owns what it binds.
# Ports picked by the kernel (port 0) are everyone's; a server that must be
# found again on a fixed port (named in a resolv.conf, which takes no port,
# or restarted where it was) listens on port 53 of a loopback /24 of its
# script's own, and namespaces carry the script's name or PID:
#
#	127.0.2.x  t-follow-nm		127.0.12.x t-follow-fallback
#	127.0.3.x  t-follow-boot	127.0.13.x t-follow-static
#	127.0.4.x  t-follow-systemd	127.0.14.x t-follow-relative
#	127.0.5.x  t-follow-symlink	127.0.15.x t-follow-fifo
#	127.0.6.x  t-follow-vpn		127.0.20.x measure-follow (bench)
#	127.0.7.x  t-follow-burst	127.0.30.x t-chroot
#	127.0.8.x  t-follow-poll	127.0.40.x t-fault-resolv
#	127.0.9.x  t-follow-self	127.0.41.x t-fault-fds
#	127.0.10.x t-follow-recreate	127.0.42.x t-valgrind
#	127.0.11.x t-follow-sighup	127.0.44.x t-stale
#	127.0.45.x t-fault-upstream	127.0.61.x t-cache
#	127.0.0.1:5397-5399  t-loops (dnsfwd and a relay that loops to it)
#
# Globals set for the test:
#	ROOT T SCRIPT DNSFWD FAKEUP
#	NAME_port NAME_pid NAME_status		start_fakeup / stop_fakeup
#	DNSFWD_ADDR DNSFWD_PORT DNSFWD_PID DNSFWD_LISTEN DNSFWD_ERR
#	DNSFWD_STATUS				start_dnsfwd / stop_dnsfwd
#	RCODE ANSWER FLAGS TTL AUTHORITY MS QOUT	q / kq
#
# Optional environment:
#	FAKEUP_ADDR	address for start_fakeup (default 127.0.0.1; "[::1]")
#	FAKEUP_WRAP	command prefix for fakeup, e.g. "ip netns exec NS"
#	QWRAP		command prefix for dig/kdig, e.g. "ip netns exec NS"
#	DNSFWD_BIN	the binary under test (default $ROOT/dnsfwd)
#	DNSFWD_WRAP	command prefix for it ("qemu-aarch64-static")
#	KEEP_T=1	keep $T for inspection

# shellcheck disable=SC2034  # the globals are for the sourcing test
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DNSFWD=${DNSFWD_BIN:-$ROOT/dnsfwd}
FAKEUP=$ROOT/test/fakeup
SCRIPT=$(basename "$0")
T=$(mktemp -d "${TMPDIR:-/tmp}/dnsfwd-test.XXXXXX") || {
	echo "not ok - $SCRIPT: mktemp failed"
	exit 1
}
DNSFWD_ADDR=127.0.0.1
DNSFWD_PORT=
DNSFWD_PID=
DNSFWD_STATUS=
DNSFWD_LISTEN=()
DNSFWD_ERR=$T/dnsfwd.err

_PIDS=()	# every process started or tracked, until stopped
_NETNS=()	# every network namespace registered
_FAKEUPS=()	# names given to start_fakeup, for diagnostics
_FAILED=0	# "not ok" lines printed
_NSTARTS=0	# earlier dnsfwd stderr files: $DNSFWD_ERR.0, .1, ...

# ---- output -----------------------------------------------------------------

# diag LINE...: diagnostic lines under the last assertion.
diag()
{
	local l

	for l in "$@"; do
		[ -n "$l" ] || continue
		printf '%s\n' "$l" | sed 's/^/#   /'
	done
}

pass()
{
	printf 'ok - %s\n' "$1"
}

# fail DESC [DIAG...]
fail()
{
	printf 'not ok - %s\n' "$1"
	shift
	diag "$@"
	_FAILED=$((_FAILED + 1))
	return 1
}

# skip DESC PACKAGE: one skipped assertion.
skip()
{
	printf 'skip - %s (install %s)\n' "$1" "$2"
}

# need CMD PACKAGE: skip the whole script when CMD is missing.
need()
{
	if ! command -v "$1" >/dev/null 2>&1; then
		printf 'skip - %s: %s missing (install %s)\n' \
		    "$SCRIPT" "$1" "$2"
		exit 0
	fi
}

# need_dnsq: DNSQ names test/dnsq, the raw client (make test/dnsq builds it)
need_dnsq()
{
	DNSQ=$ROOT/test/dnsq
	[ -x "$DNSQ" ] || { fail "test/dnsq built (make test/dnsq)"; exit 1; }
}

# ---- assertions (each returns 0 on pass, 1 on failure) ----------------------

# ok DESC CMD...: pass if CMD succeeds (its output is shown on failure).
ok()
{
	local desc=$1 out rc

	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		pass "$desc"
		return 0
	fi
	fail "$desc" "command: $*" "status: $rc" ${out:+"$out"}
}

# eq DESC ACTUAL EXPECTED: string equality.
eq()
{
	if [ "$2" = "$3" ]; then
		pass "$1"
		return 0
	fi
	fail "$1" "got:      '$2'" "expected: '$3'"
}

_is_int()
{
	[[ $1 =~ ^-?[0-9]+$ ]]
}

# lt DESC ACTUAL LIMIT: ACTUAL < LIMIT, both integers.
lt()
{
	if _is_int "$2" && _is_int "$3" && [ "$2" -lt "$3" ]; then
		pass "$1"
		return 0
	fi
	fail "$1" "got:      '$2'" "expected: < $3"
}

# ge DESC ACTUAL MIN: ACTUAL >= MIN, both integers.
ge()
{
	if _is_int "$2" && _is_int "$3" && [ "$2" -ge "$3" ]; then
		pass "$1"
		return 0
	fi
	fail "$1" "got:      '$2'" "expected: >= $3"
}

# match DESC STRING REGEX: bash extended regex, unanchored.
match()
{
	if [[ $2 =~ $3 ]]; then
		pass "$1"
		return 0
	fi
	fail "$1" "got:      '$2'" "expected to match: $3"
}

# ---- processes --------------------------------------------------------------

track_pid()
{
	_PIDS+=("$1")
}

track_netns()
{
	_NETNS+=("$1")
}

_untrack_pid()
{
	local i

	for i in "${!_PIDS[@]}"; do
		[ "${_PIDS[$i]}" = "$1" ] && unset '_PIDS[i]'
	done
}

# True while PID runs; a zombie counts as gone.
_alive()
{
	local state

	kill -0 "$1" 2>/dev/null || return 1
	state=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' \
	    "/proc/$1/stat" 2>/dev/null)
	[ "$state" != Z ]
}

# now_ms: the wall clock in milliseconds, printed (no fork).
now_ms()
{
	local t=${EPOCHREALTIME//[!0-9]/}

	echo $((t / 1000))
}

# wait_for SECONDS CMD...: poll CMD until it succeeds or SECONDS have
# passed (a deadline on the wall clock, not a count of polls: a busy
# machine polls less often but waits as long); CMD's last status.  The
# deadline is a ceiling for the slowest machine, not a measurement: the
# waiting ends as soon as CMD succeeds.  Timing a duration is the
# benchmark's job (make bench).
wait_for()
{
	local t=${EPOCHREALTIME//[!0-9]/} end

	end=$((t / 1000 + $1 * 1000))
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		t=${EPOCHREALTIME//[!0-9]/}
		[ $((t / 1000)) -lt "$end" ] || break
		sleep 0.05
	done
	"$@" >/dev/null 2>&1
}

_gone()
{
	! _alive "$1"
}

# _reap PID: SIGTERM, up to 10 s, then SIGKILL; the exit status in _STATUS.
_reap()
{
	kill -TERM "$1" 2>/dev/null
	wait_for 10 _gone "$1"
	_alive "$1" && kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	_STATUS=$?
	_untrack_pid "$1"
}

# new_netns NAME: create a network namespace with lo up; tracked.
new_netns()
{
	if ip netns list 2>/dev/null | grep -qw -- "$1"; then
		fail "netns $1 is free" "already exists; not touching it"
		exit 1
	fi
	if ! ip netns add "$1" 2>"$T/netns.err"; then
		fail "netns $1 created" "$(cat "$T/netns.err")"
		exit 1
	fi
	track_netns "$1"
	ip -n "$1" link set lo up
}

# need_netns: skip the script unless it can make network namespaces here
# (ip(8), root, and a kernel that allows them).
need_netns()
{
	need ip iproute2
	if [ "$(id -u)" -ne 0 ]; then
		echo "skip - $SCRIPT: needs root (network namespaces)"
		exit 0
	fi
	if ! unshare -n true 2>/dev/null; then
		echo "skip - $SCRIPT: cannot create network namespaces here"
		exit 0
	fi
}

# ---- fakeup -----------------------------------------------------------------

_write_rules()
{
	local f=$1

	shift
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" >"$f"
	else
		: >"$f"
	fi
}

# start_fakeup NAME [RULE...]: sets NAME_port and NAME_pid; bails out if
# fakeup does not come up.  Log: $T/NAME.log, stderr: $T/NAME.err.
start_fakeup()
{
	local name=$1

	shift
	_write_rules "$T/$name.rules" "$@"
	fakeup_at "$name" "${FAKEUP_ADDR:-127.0.0.1}:0"
}

# _fakeup_up ERR PID: fakeup said its port, or exited.
_fakeup_up()
{
	grep -q '^fakeup: listening on ' "$1" || ! _alive "$2"
}

# fakeup_try NAME ADDR:PORT [RULE...]: start fakeup NAME on ADDR:PORT
# (PORT 0: any; start it again on the port it got to restart it); sets
# NAME_pid and NAME_port.  Without RULEs the rule file of an earlier start
# is kept.  Returns 1, with nothing left running, if it could not listen.
fakeup_try()
{
	local name=$1 where=$2 pid up=

	shift 2
	[ $# -gt 0 ] && _write_rules "$T/$name.rules" "$@"
	[ -f "$T/$name.rules" ] || : >"$T/$name.rules"
	# emptied here, not only by the child's redirection, so that the wait
	# below never reads the line of an earlier fakeup of this name
	: >"$T/$name.err"
	# shellcheck disable=SC2086  # FAKEUP_WRAP is a command prefix
	${FAKEUP_WRAP:-} "$FAKEUP" ${FAKEUP_OPTS:-} -l "$where" -L "$T/$name.log" \
	    -r "$T/$name.rules" 2>"$T/$name.err" &
	pid=$!
	track_pid "$pid"
	wait_for 30 _fakeup_up "$T/$name.err" "$pid"
	up=$(sed -n 's/^fakeup: listening on .*:\([0-9][0-9]*\)$/\1/p' \
	    "$T/$name.err" | head -n 1)
	if [ -z "$up" ]; then
		_reap "$pid"
		return 1
	fi
	_FAKEUPS+=("$name")
	printf -v "${name}_pid" '%s' "$pid"
	printf -v "${name}_port" '%s' "$up"
}

# fakeup_at NAME ADDR:PORT [RULE...]: fakeup_try, or the script fails.
fakeup_at()
{
	fakeup_try "$@" && return 0
	fail "start fakeup $1 on $2" "$(cat "$T/$1.err")"
	exit 1
}

# need_port53 NET: skip the script unless port 53 on NET.x can be bound
# here (root or a low ip_unprivileged_port_start, no wildcard or NET.x :53
# listener): resolv.conf names servers without a port.
need_port53()
{
	need ss iproute2
	if [ "$(id -u)" != 0 ] && [ "$(cat \
	    /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null ||
	    echo 1024)" -gt 53 ]; then
		printf 'skip - %s: binding port 53 needs root\n' "$SCRIPT"
		exit 0
	fi
	if ss -Hlntu 'sport = :53' 2>/dev/null | awk '{ print $5 }' |
	    grep -qE "^(0\\.0\\.0\\.0|\\*|\\[::\\]|${1//./\\.}\\.[0-9]+):53\$"
	then
		printf 'skip - %s: port 53 on %s.x (or a wildcard) is taken\n' \
		    "$SCRIPT" "$1"
		ss -Hlntup 'sport = :53' 2>/dev/null | sed 's/^/#   /'
		exit 0
	fi
}

# set_rules NAME RULE...: replace the rules atomically (fakeup re-reads).
set_rules()
{
	local name=$1

	shift
	_write_rules "$T/$name.rules.tmp" "$@"
	mv -f "$T/$name.rules.tmp" "$T/$name.rules"
}

# stop_fakeup NAME: SIGTERM, wait; exit status in NAME_status.
stop_fakeup()
{
	local pidvar=${1}_pid

	_reap "${!pidvar}"
	printf -v "${1}_status" '%s' "$_STATUS"
}

# asked NAME [QNAME]: log lines of fakeup NAME for QNAME (any case; a
# trailing dot is ignored); all its lines without QNAME.
asked()
{
	local qn=${2-}

	[ "$qn" != . ] && qn=${qn%.}
	[ -f "$T/$1.log" ] || { echo 0; return; }
	awk -v q="$qn" -v all=$# '
		all == 1 || tolower($2) == tolower(q) { n++ }
		END { print n + 0 }' "$T/$1.log"
}

# routed DESC QNAME "up1=N up2=N ...": how often each fakeup was asked
# for QNAME, as one assertion.
routed()
{
	local desc=$1 qn=$2 want=$3 got="" w

	for w in $want; do
		got+=" ${w%%=*}=$(asked "${w%%=*}" "$qn")"
	done
	eq "$desc" "${got# }" "$want"
}

# ---- dnsfwd -----------------------------------------------------------------

# _dnsfwd_up RE N: dnsfwd printed N lines matching RE, or exited.
_dnsfwd_up()
{
	[ "$(grep -cE "$1" "$DNSFWD_ERR")" -ge "$2" ] || ! _alive "$DNSFWD_PID"
}

# start_dnsfwd ARGS...: start $ROOT/dnsfwd (with -l 127.0.0.1:0 unless ARGS
# has -l/--listen), wait for one "listening on" line per -l.  Sets
# DNSFWD_PID, DNSFWD_ADDR and DNSFWD_PORT (first listener) and DNSFWD_LISTEN
# (every "ADDR:PORT[ in NS]").  Bails out if dnsfwd exits or is not ready.
# DNSFWD_WANT=N waits for N lines instead (a -N pattern may match none).
start_dnsfwd()
{
	local a want=0 i n=0 line re dflt=(-l 127.0.0.1:0)

	re='^dnsfwd: listening on (.+):([0-9]+) \(udp\+tcp\)( in .*)?$'
	for a in "$@"; do
		case $a in
		-l | --listen | --listen=* | -l?*)
			want=$((want + 1))
			dflt=()
			;;
		esac
	done
	[ "$want" -eq 0 ] && want=1
	# DNSFWD_LITERAL: the command line as given, dnsfwd's own default -l
	[ -n "${DNSFWD_LITERAL:-}" ] && dflt=()
	want=${DNSFWD_WANT:-$want}	# a -N pattern may match nothing yet
	# An earlier instance keeps writing to its renamed file.
	[ -e "$DNSFWD_ERR" ] && mv "$DNSFWD_ERR" "$DNSFWD_ERR.$((_NSTARTS++))"
	: >"$DNSFWD_ERR"
	# shellcheck disable=SC2086  # DNSFWD_WRAP is a command prefix
	${DNSFWD_WRAP:-} "$DNSFWD" "${dflt[@]}" "$@" 2>"$DNSFWD_ERR" &
	DNSFWD_PID=$!
	track_pid "$DNSFWD_PID"
	wait_for 30 _dnsfwd_up "$re" "$want"
	n=$(grep -cE "$re" "$DNSFWD_ERR")
	if [ "$n" -lt "$want" ]; then
		if _alive "$DNSFWD_PID"; then
			a="not listening after 30 s"
		else
			wait "$DNSFWD_PID"
			a="exited with status $?"
			_untrack_pid "$DNSFWD_PID"
		fi
		fail "start dnsfwd ${dflt[*]} $*" "$a" "$(cat "$DNSFWD_ERR")"
		exit 1
	fi
	DNSFWD_LISTEN=()
	while IFS= read -r line; do
		[[ $line =~ $re ]] || continue
		a=${BASH_REMATCH[1]}:${BASH_REMATCH[2]}
		DNSFWD_LISTEN+=("$a${BASH_REMATCH[3]}")
	done <"$DNSFWD_ERR"
	re='^\[?([^]]*)\]?:([0-9]+)'
	[ "${#DNSFWD_LISTEN[@]}" -gt 0 ] || return 0	# a pattern, no match yet
	[[ ${DNSFWD_LISTEN[0]} =~ $re ]]
	DNSFWD_ADDR=${BASH_REMATCH[1]}
	DNSFWD_PORT=${BASH_REMATCH[2]}
}

# stop_dnsfwd: SIGTERM, wait; exit status in DNSFWD_STATUS.
stop_dnsfwd()
{
	[ -n "$DNSFWD_PID" ] || return 0
	_reap "$DNSFWD_PID"
	DNSFWD_STATUS=$_STATUS
	DNSFWD_PID=
}

# counters: SIGUSR1 to dnsfwd, then wait (up to 30 s) for the whole dump
# ("end of counters" is its last line); COUNTERS is the block it printed
# (the counters, cache, listener and per-upstream lines).
counters()
{
	local before

	before=$(grep -c 'end of counters' "$DNSFWD_ERR")
	kill -USR1 "$DNSFWD_PID"
	wait_for 30 _more_lines 'end of counters' "$before"
	COUNTERS=$(awk -v n="$before" '
		/end of counters/ { e++; on = 0; next }
		e == n && /counters:/ { on = 1 }
		on' "$DNSFWD_ERR" |
	    grep -E 'counters:|cache:|upstream .*: answers|listener .*: queries')
}

# _more_lines RE N: dnsfwd's stderr has more than N lines matching RE.
_more_lines()
{
	[ "$(grep -c "$1" "$DNSFWD_ERR")" -gt "$2" ]
}

# hup: SIGHUP to dnsfwd, then wait (up to 30 s) until it says it re-read
# its files (not with -q, which keeps that quiet).
hup()
{
	local before

	before=$(grep -c 'SIGHUP: ' "$DNSFWD_ERR")
	kill -HUP "$DNSFWD_PID"
	wait_for 30 _more_lines 'SIGHUP: ' "$before"
}

# nfds PID: the descriptors PID holds.
nfds()
{
	find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# fds_are N: dnsfwd holds N descriptors (for wait_for).
fds_are()
{
	[ "$(nfds "$DNSFWD_PID")" -eq "$1" ]
}

# fds_eq DESC N: dnsfwd comes to hold N descriptors (within 10 s).
fds_eq()
{
	wait_for 10 fds_are "$2"
	eq "$1" "$(nfds "$DNSFWD_PID")" "$2"
}

# answers NAME IP: dnsfwd answers NAME with IP alone (for wait_for).
answers()
{
	q "$1"
	[ "$ANSWER" = "$2" ]
}

# counter NAME: one number from COUNTERS ("queries", "servfail", ...).
counter()
{
	sed -n "s/.*[:,] $1 \\([0-9]*\\).*/\\1/p" <<<"$COUNTERS" | head -n 1
}

# ---- queries ----------------------------------------------------------------

# _parse: fill RCODE ANSWER FLAGS TTL AUTHORITY from QOUT (dig or kdig).
_parse()
{
	RCODE=$(printf '%s\n' "$QOUT" |
	    sed -n 's/^;; ->>HEADER<<- .*status: \([A-Z0-9]*\).*/\1/p' |
	    tail -n 1)
	[ -n "$RCODE" ] || RCODE=TIMEOUT
	case $QOUT in
	*"malformed message packet"* | *"Got bad packet"* | \
	    *"failed to parse reply"* | *"malformed reply packet"*)
		RCODE=MALFORMED ;;
	esac
	FLAGS=$(printf '%s\n' "$QOUT" |
	    sed -n 's/^;; [Ff]lags: \([^;]*\);.*/\1/p' | tail -n 1)
	FLAGS=${FLAGS% }
	ANSWER=$(printf '%s\n' "$QOUT" | _section ANSWER rdata |
	    LC_ALL=C sort | paste -sd ' ' -)
	AUTHORITY=$(printf '%s\n' "$QOUT" | _section AUTHORITY type |
	    LC_ALL=C sort | paste -sd ' ' -)
	TTL=$(printf '%s\n' "$QOUT" | _section ANSWER ttl | head -n 1)
	[ -n "$TTL" ] ||
	    TTL=$(printf '%s\n' "$QOUT" | _section AUTHORITY ttl | head -n 1)
}

# _section NAME rdata|type|ttl: one field per record of the last NAME
# section (a later query in the output, e.g. after TC, replaces it).
_section()
{
	awk -v sec=";; $1 SECTION:" -v what="$2" '
		$0 == sec { in_sec = 1; n = 0; delete out; next }
		in_sec && (/^$/ || /^;;/) { in_sec = 0 }
		in_sec && !/^;/ {
			if (what == "ttl")
				v = $2
			else if (what == "type")
				v = $4
			else {
				v = $5
				for (i = 6; i <= NF; i++)
					v = v " " $i
			}
			out[++n] = v
		}
		END { for (i = 1; i <= n; i++) print out[i] }'
}

# _query TOOL NAME TYPE ARGS...
_query()
{
	local tool=$1 start end

	shift
	start=$(date +%s%N)
	# shellcheck disable=SC2086
	QOUT=$(${QWRAP:-} "$tool" @"$DNSFWD_ADDR" -p "$DNSFWD_PORT" "$@" 2>&1)
	end=$(date +%s%N)
	MS=$(((end - start) / 1000000))
	_parse
}

# q NAME [TYPE] [DIG-ARGS...]: ask dnsfwd (DNSFWD_ADDR:DNSFWD_PORT; set those
# to ask something else) with dig: one try, 3 s.  Sets RCODE (NOERROR,
# NXDOMAIN, ...; TIMEOUT when no reply; MALFORMED when the reply did not
# parse),
# ANSWER (sorted RDATA), FLAGS, TTL (first answer, else first authority),
# AUTHORITY (sorted record types), MS (wall time) and QOUT.
q()
{
	_ask dig "+tries=1 +time=3 +nocookie" "$@"
}

# kq NAME [TYPE] [KDIG-ARGS...]: the same with kdig.
kq()
{
	_ask kdig "+retry=0 +timeout=3 +nocookie" "$@"
}

# _ask TOOL "OPTIONS" NAME [TYPE] [ARGS...]: q and kq, TOOL's one try
_ask()
{
	local tool=$1 opts=$2 name=$3 type=A

	shift 3
	if [ $# -gt 0 ] && [[ $1 != [-+@]* ]]; then
		type=$1
		shift
	fi
	# shellcheck disable=SC2086  # OPTIONS is several words
	_query "$tool" "$name" "$type" $opts "$@"
}

# ---- real peers ---------------------------------------------------------------

# unbound_head ADDR@PORT: the server: lines a test's own unbound starts
# with: in the foreground, no chroot or user, logging to stderr, on
# ADDR@PORT, for loopback clients.  The caller adds the rest.
unbound_head()
{
	cat <<EOF
server:
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "$T"
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 1
	interface: $1
	port: ${1##*@}
	do-ip6: no
	access-control: 127.0.0.0/8 allow
EOF
}

# ---- cleanup ----------------------------------------------------------------

# _sanitizer_check FILE WHAT: a failure if FILE holds a sanitizer report.
_sanitizer_check()
{
	[ -f "$1" ] || return 0
	grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1" ||
	    return 0
	fail "$SCRIPT: no sanitizer report from $2" \
	    "$(grep -m 20 -E 'Sanitizer|runtime error:|^    #' "$1")"
}

# cleanup: stop every tracked process, delete every tracked namespace,
# remove $T.  Safe to call twice.
cleanup()
{
	local pid ns name f

	for pid in "${_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${_PIDS[@]}"; do
		_reap "$pid"
	done
	_PIDS=()
	for ns in "${_NETNS[@]}"; do
		ip netns delete "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"	# a resolv.conf for ip netns exec
	done
	_NETNS=()
	[ -d "$T" ] || return 0
	for f in "$DNSFWD_ERR"*; do
		_sanitizer_check "$f" dnsfwd
	done
	for name in "${_FAKEUPS[@]}"; do
		_sanitizer_check "$T/$name.err" "fakeup $name"
	done
	if [ "$_FAILED" -gt 0 ]; then
		if [ -s "$DNSFWD_ERR" ]; then
			echo "# --- dnsfwd stderr (last 30 lines)"
			tail -n 30 "$DNSFWD_ERR" | sed 's/^/#   /'
		fi
	fi
	if [ "${KEEP_T:-0}" = 1 ]; then
		echo "# kept $T"
	else
		rm -rf "$T"
	fi
}

# On exit: clean up; exit non-zero if any assertion failed.
_lib_exit()
{
	local rc=$?

	cleanup
	[ "$rc" -eq 0 ] && [ "$_FAILED" -gt 0 ] && rc=1
	exit "$rc"
}

trap _lib_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# helper_of PID: the PID of the namespace helper PID forked (none: empty).
helper_of()
{
	local f

	for f in /proc/[0-9]*/status; do
		if grep -qx "PPid:[[:space:]]*$1" "$f" 2>/dev/null &&
		    grep -qx 'Name:[[:space:]]*dnsfwd-ns' "$f" 2>/dev/null; then
			f=${f#/proc/}
			echo "${f%/status}"
			return 0
		fi
	done
}

# sandbox_status PID: "CapPrm: X CapEff: X NoNewPrivs: N Seccomp: N " of PID.
sandbox_status()
{
	grep -E '^(NoNewPrivs|Seccomp|CapPrm|CapEff):' "/proc/$1/status" |
		tr -s '\t ' ' ' | tr '\n' ' '
}

# free_port: a port free for both UDP and TCP on 127.0.0.1 (for a peer
# that cannot be given port 0, such as dnsmasq or unbound).
free_port()
{
	/usr/bin/python3 "$ROOT/test/free-port.py"
}

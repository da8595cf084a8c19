#!/usr/bin/env bash
# t-process.sh: the contract, "Process": -h, -V, usage errors (exit 1, the option
# named), signals (SIGTERM and SIGINT exit 0, SIGUSR1 prints counters,
# SIGHUP does not stop it), -v (one line per query) and -q.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils

# run_dnsfwd ARGS...: run dnsfwd in the foreground for at most 5 s; status
# in RC, stdout in OUT, stderr in ERR.
run_dnsfwd()
{
	# shellcheck disable=SC2086  # DNSFWD_WRAP is a command prefix
	timeout -k 2 5 ${DNSFWD_WRAP:-} "$DNSFWD" "$@" >"$T/run.out" \
	    2>"$T/run.err" </dev/null
	RC=$?
	OUT=$(cat "$T/run.out")
	ERR=$(cat "$T/run.err")
}

# ---- -h, -V ------------------------------------------------------------------------

run_dnsfwd -h
eq "-h: exit 0" "$RC" 0
match "-h: a usage line" "$OUT" "^usage: dnsfwd "
for o in -l,--listen -N,--netns -r,--resolv -R,--no-resolv -s,--server \
    -f,--fallback -a,--address -H,--hosts -c,--cache-size -t,--timeout \
    --parallel --max-queries --max-tcp -u,--user -v,--verbose -q,--quiet \
    -h,--help -V,--version; do
	ok "-h: lists ${o/,/, }" grep -qE -- "^ +${o/,/, }( |$)" "$T/run.out"
done
run_dnsfwd --help
eq "--help: exit 0, the same text" "$RC $OUT" "0 $(${DNSFWD_WRAP:-} "$DNSFWD" -h 2>&1)"

run_dnsfwd -V
eq "-V: exit 0" "$RC" 0
match "-V: name and version" "$OUT$ERR" "^dnsfwd [0-9]+\\.[0-9]+"
run_dnsfwd --version
eq "--version: exit 0" "$RC" 0

# ---- usage errors: exit 1, the option named -------------------------------------------

usage_case()
{
	local want=$1

	shift
	run_dnsfwd "$@"
	eq "$*: exit 1" "$RC" 1
	match "$*: the message names $want" "$ERR" "$want"
	eq "$*: no listening" "$(grep -c 'listening on' "$T/run.err")" 0
}

usage_case 'no-such-option' -R --no-such-option
usage_case "-x|'x'" -R -x
usage_case '15O0' -R -t 15O0
usage_case '(^|[^-])-t' -R -t 15O0
usage_case '(^|[^-])-t' -R -t -5
usage_case '(^|[^-])-t' -R -t ''
usage_case 'max-queries' -R --max-queries lots
usage_case '(^|[^-])-l' -R -l bogus
usage_case '(^|[^-])-l' -R -l 127.0.0.1:99999
usage_case '(^|[^-])-s' -R -s not-an-address
usage_case '(^|[^-])-c' -R -c many
usage_case 'cache-bytes.*is not a size' -R --cache-bytes 3k
usage_case 'cache-bytes.*is not a size' -R --cache-bytes 2g
usage_case 'cache-bytes.*is not a size' -R --cache-bytes 10x
usage_case 'cache-bytes.*is not a size' -R --cache-bytes k
usage_case "-t|'t'" -R -t
# an option getopt refuses: one line, the same under glibc and musl
for c in "-x:-x: unknown option" "--no-such=1:--no-such: unknown option" \
    "-t:-t: needs a value" "--timeout:--timeout: needs a value"; do
	run_dnsfwd -R "${c%%:*}"
	eq "${c%%:*}: one line, naming it, pointing at --help" "$ERR" \
		"dnsfwd: ${c#*:} (see dnsfwd --help)"
done
match "-t 15O0: the message in the house form" "$(
	${DNSFWD_WRAP:-} "$DNSFWD" -R -t 15O0 2>&1)" '^dnsfwd: -t: "15O0" '

# ---- signals and counters ------------------------------------------------------------

start_fakeup up 'tmo.test drop' 'nx.test nxdomain' '* answer 192.0.2.1'
start_fakeup dead
dead=$dead_port
stop_fakeup dead
up="127.0.0.1#$up_port"

start_dnsfwd -R -c 0 -t 300 -s "127.0.0.1#$dead" -s "$up"
q a.test
eq "counters setup: a.test answered by up" "$ANSWER" 192.0.2.1
q tmo.test
eq "counters setup: tmo.test times out: SERVFAIL" "$RCODE" SERVFAIL
kill -USR1 "$DNSFWD_PID"
wait_for 10 grep -q "upstream $up: " "$DNSFWD_ERR"
c=$(grep 'counters:' "$DNSFWD_ERR" | tail -n 1)
match "SIGUSR1: queries 2" "$c" "queries 2[ ,]"
n=$(sed -n 's/.*forwarded \([0-9]*\).*/\1/p' <<<"$c")
ge "SIGUSR1: forwarded (at least one per query)" "${n:-0}" 2
match "SIGUSR1: SERVFAIL sent 1" "$c" "servfail 1[ ,]"
match "SIGUSR1: malformed" "$c" "malformed 0[ ,]"
match "SIGUSR1: in flight 0" "$c" "in flight 0[ ,]"
match "SIGUSR1: cache hits" "$(cat "$DNSFWD_ERR")" "hits [0-9]+"
match "SIGUSR1: local answers" "$c" "local 0"
match "SIGUSR1: the dead upstream: 2 errors" "$(cat "$DNSFWD_ERR")" \
	"upstream 127\\.0\\.0\\.1#$dead: answers 0, timeouts 0, errors 2"
match "SIGUSR1: the live one: 1 answer, 1 timeout" "$(cat "$DNSFWD_ERR")" \
	"upstream $up: answers 1, timeouts 1, errors 0"
ok "SIGUSR1: still running" kill -0 "$DNSFWD_PID"
hup
ok "SIGHUP: said" grep -q 'SIGHUP: ' "$DNSFWD_ERR"
ok "SIGHUP: still running" kill -0 "$DNSFWD_PID"
q b.test
eq "SIGHUP: still answering" "$ANSWER" 192.0.2.1
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

start_dnsfwd -R -c 0 -s "$up"
kill -INT "$DNSFWD_PID"
dnsfwd_gone()
{
	! _alive "$DNSFWD_PID"
}
wait_for 10 dnsfwd_gone
if _alive "$DNSFWD_PID"; then
	fail "SIGINT: exits"
	stop_dnsfwd
else
	wait "$DNSFWD_PID"
	eq "SIGINT: exit 0" "$?" 0
	_untrack_pid "$DNSFWD_PID"
	DNSFWD_PID=
fi

# SIGTERM with a query in flight.
set_rules up 'slow.test delay 2000 answer 192.0.2.9' '* answer 192.0.2.1'
start_dnsfwd -R -c 0 -s "$up"
dig @127.0.0.1 -p "$DNSFWD_PORT" slow.test +tries=1 +time=3 >/dev/null 2>&1 &
bg=$!
track_pid "$bg"
wait_for 10 grep -q slow.test "$T/up.log"
start=$(date +%s%N)
stop_dnsfwd
eq "SIGTERM with a query in flight: exit 0" "$DNSFWD_STATUS" 0
lt "SIGTERM with a query in flight: promptly (ms)" \
	$((($(date +%s%N) - start) / 1000000)) 1500
wait "$bg" 2>/dev/null
_untrack_pid "$bg"

# ---- -v ---------------------------------------------------------------------------

set_rules up 'nx.test nxdomain' '* answer 192.0.2.1'
start_dnsfwd -R -c 0 -v -s "$up"
q a.test
q nx.test AAAA
q c.test +tcp
lines=$(grep -E ' (a|nx|c)\.test ' "$DNSFWD_ERR")
eq "-v: one line per query" "$(wc -l <<<"$lines")" 3
# stderr is a file here: each line starts with the time of day.
v='^dnsfwd: [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} 127\.0\.0\.1#[0-9]+ a\.test A: 127\.0\.0\.1#'"$up_port"
match "-v: time, client, name, type, upstream, NOERROR, ms" "$lines" \
	"$v NOERROR [0-9]+ ms"
match "-v: NXDOMAIN and AAAA" "$lines" \
	"nx\\.test AAAA: 127\\.0\\.0\\.1#$up_port NXDOMAIN [0-9]+ ms"
match "-v: a TCP query's line names the client address" \
	"$(grep ' c\.test ' "$DNSFWD_ERR")" \
	"^dnsfwd: .*127\\.0\\.0\\.1[#:][0-9]+.* c\\.test A: .* NOERROR [0-9]+ ms"
stop_dnsfwd
# As systemd does: JOURNAL_STREAM names the device and inode of stderr.
printf '#!/bin/sh\nJOURNAL_STREAM=$(stat -L -c %%d:%%i /proc/self/fd/2)\nexport JOURNAL_STREAM\nexec ${W:-} "$@"\n' \
	>"$T/journal.sh"
chmod +x "$T/journal.sh"
w0=${DNSFWD_WRAP:-}
W=$w0 DNSFWD_WRAP=$T/journal.sh start_dnsfwd -R -c 0 -v -s "$up"
DNSFWD_WRAP=$w0
q a.test
match "-v to the journal (JOURNAL_STREAM names stderr): no time, it stamps" \
	"$(grep ' a\.test ' "$DNSFWD_ERR")" '^dnsfwd: 127\.0\.0\.1#[0-9]+ a\.test A: '
stop_dnsfwd

# ---- -q ---------------------------------------------------------------------------

start_dnsfwd -R -c 0 -s "$up"
normal=$(cat "$DNSFWD_ERR")
stop_dnsfwd
start_dnsfwd -R -c 0 -q -s "$up"
q a.test
eq "-q: answers as usual" "$ANSWER" 192.0.2.1
ge "without -q: informational lines besides 'listening on'" \
	"$(grep -vc 'listening on' <<<"$normal")" 1
eq "-q: only the listening line" "$(grep -vc 'listening on' "$DNSFWD_ERR")" 0
eq "-q: the listening line kept" "$(grep -c 'listening on' "$DNSFWD_ERR")" 1
stop_dnsfwd
eq "-q: SIGTERM exit 0" "$DNSFWD_STATUS" 0
eq "-q: nothing said on exit either" "$(grep -vc 'listening on' \
	"$DNSFWD_ERR")" 0

# ---- the sandbox: no_new_privs once started; --no-sandbox leaves it off ----
start_fakeup sbup '* answer 192.0.2.1'
start_dnsfwd -R -s "127.0.0.1#$sbup_port"
# (under qemu-user the status is qemu's own process: it still applies)
eq "sandbox: NoNewPrivs 1 once started" \
	"$(awk '/^NoNewPrivs/ { print $2 }' "/proc/$DNSFWD_PID/status")" 1
q sandbox.test
eq "sandbox: queries answered in it" "$RCODE $ANSWER" "NOERROR 192.0.2.1"
stop_dnsfwd
start_dnsfwd --no-sandbox -R -s "127.0.0.1#$sbup_port"
eq "--no-sandbox: NoNewPrivs 0" \
	"$(awk '/^NoNewPrivs/ { print $2 }' "/proc/$DNSFWD_PID/status")" 0
stop_dnsfwd

# ---- the sandbox's filter: in place, and a forbidden call is said --------
# (natively only: qemu-user, as make test-cross runs it, refuses filters)
case "${DNSFWD_WRAP:+wrapped}:$(uname -m)" in
:x86_64 | :aarch64) filtered=1 ;;
*) filtered=0 ;;
esac
# a sanitizer build has no filter (its runtime makes calls of its own)
grep -q __asan_init "$DNSFWD" 2>/dev/null && filtered=0
# every process that holds a listener, in each way of starting: no_new_privs,
# the filter, no capability; the namespace helper (with -N) the two it needs
want="CapPrm: 0000000000000000 CapEff: 0000000000000000 NoNewPrivs: 1 Seccomp: 2 "
want_nsh="CapPrm: 0000000000200400 CapEff: 0000000000200400 NoNewPrivs: 1 Seccomp: 2 "
sbns=
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null &&
    ip netns add "dnsfwd-t-$$-sb" 2>/dev/null; then
	sbns=dnsfwd-t-$$-sb
	track_netns "$sbns"
fi
_status_is()
{
	[ "$(sandbox_status "$1")" = "$2" ]
}
if [ "$filtered" = 1 ]; then
	sb_check()
	{
		local how=$1 nsh

		shift
		start_dnsfwd "$@" -R -s "127.0.0.1#$sbup_port"
		# "listening" is said before the sandbox is entered
		wait_for 10 _status_is "$DNSFWD_PID" "$want"
		eq "sandbox ($how): no_new_privs, a seccomp filter, no capability at all" \
		    "$(sandbox_status "$DNSFWD_PID")" "$want"
		nsh=$(helper_of "$DNSFWD_PID")
		[ -z "$nsh" ] || wait_for 10 _status_is "$nsh" "$want_nsh"
		case "$*" in
		*-N*)
			if [ -n "$nsh" ]; then
				eq "sandbox ($how): the namespace helper: its filter, two capabilities" \
				    "$(sandbox_status "$nsh")" "$want_nsh"
			else
				fail "sandbox ($how): a namespace helper runs"
			fi
			;;
		*) eq "sandbox ($how): no namespace helper without -N" "$nsh" "" ;;
		esac
		q "sandbox.$how.test"
		eq "sandbox ($how): queries answered in it" "$RCODE $ANSWER" \
		    "NOERROR 192.0.2.1"
		stop_dnsfwd
		eq "sandbox ($how): SIGTERM inside it: exit 0" "$DNSFWD_STATUS" 0
		[ -z "$nsh" ] || ok "sandbox ($how): the helper ends with it" \
		    wait_for 10 test ! -e "/proc/$nsh"
	}
	sb_check plain -l 127.0.0.1:0
	if [ "$(id -u)" = 0 ]; then
		sb_check u -u 65534:65534 -l 127.0.0.1:0
	fi
	if [ -n "$sbns" ]; then
		sb_check N -l 127.0.0.1:0 -N "/run/netns/$sbns" -l 127.0.0.1:0
		sb_check u-N -u 65534:65534 -l 127.0.0.1:0 \
		    -N "/run/netns/dnsfwd-t-$$-s*" -l 127.0.0.1:0
	fi
	if [ -x "$ROOT/test/dnsfwd-sbtest" ]; then
		DNSFWD_FORBIDDEN_CALL=1 timeout -k 2 10 \
		    "$ROOT/test/dnsfwd-sbtest" -R -l 127.0.0.1:0 \
		    -s "127.0.0.1#$sbup_port" >/dev/null 2>"$T/sb.err"
		eq "a forbidden call: the process exits (70)" "$?" 70
		match "... and says which call" "$(cat "$T/sb.err")" \
		    'dnsfwd: sandbox: system call [0-9]+ is not allowed; exiting'
	else
		fail "test/dnsfwd-sbtest built (make test/dnsfwd-sbtest)"
	fi
	if [ -x "$ROOT/test/dnsfwd-sbtest" ]; then
		# Landlock: what it follows is readable, the rest of the
		# machine not (or, on a kernel without it, -v says so)
		mkdir -p "$T/ll" && echo "nameserver 127.0.0.1" >"$T/ll/resolv.conf"
		echo secret >"$T/ll/other"
		for f in /etc/hostname "$T/ll/other"; do
			DNSFWD_TRY_READ=$f timeout -k 2 5 \
			    "$ROOT/test/dnsfwd-sbtest" -v -r "$T/ll/resolv.conf" \
			    -l 127.0.0.1:0 >/dev/null 2>"$T/ll.err"
			if grep -q 'no Landlock in this kernel' "$T/ll.err"; then
				ok "Landlock: missing from this kernel, said with -v" true
				break
			fi
			case $f in
			/etc/*) want="Permission denied" ;;
			*) want=allowed ;;
			esac
			eq "Landlock: following $T/ll/resolv.conf, reading $f" \
			    "$(sed -n 's/^dnsfwd: sandbox test: reading [^:]*: //p' \
			    "$T/ll.err")" "$want"
		done
	fi
	if [ -x "$ROOT/test/dnsfwd-sbtest" ] && [ -n "$sbns" ]; then
		# the helper makes the forbidden call: it dies saying so; the
		# server goes on, and says so for the namespace that comes next
		DNSFWD_FORBIDDEN_CALL_NSH=1 DNSFWD_WANT=1 \
		    DNSFWD="$ROOT/test/dnsfwd-sbtest" \
		    start_dnsfwd -R -s "127.0.0.1#$sbup_port" -l 127.0.0.1:0 \
		    -N "/run/netns/dnsfwd-t-$$-h*" -l 127.0.0.1:0
		ok "a forbidden call in the namespace helper: said, naming it" \
		    wait_for 10 grep -qE \
		    'dnsfwd: namespace helper: sandbox: system call [0-9]+ is not allowed; exiting' \
		    "$DNSFWD_ERR"
		ip netns add "dnsfwd-t-$$-h1" && track_netns "dnsfwd-t-$$-h1"
		ok "... a namespace that comes next: skipped, and said why" \
		    wait_for 10 grep -qF \
		    "dnsfwd: --netns /run/netns/dnsfwd-t-$$-h1: skipped: the namespace helper has exited" \
		    "$DNSFWD_ERR"
		q helperless.test
		eq "... the server still answers" "$RCODE $ANSWER" \
		    "NOERROR 192.0.2.1"
		stop_dnsfwd
		eq "... and exits 0 on SIGTERM" "$DNSFWD_STATUS" 0
		ip netns del "dnsfwd-t-$$-h1"
	fi
fi

#!/usr/bin/env bash
# test/run.sh: run every test and print "N passed, N failed, N skipped".
#
# 1. test/unit, the C unit tests;
# 2. the golden files: test/unit --resolv X.conf against X.ok, for each
#    test/resolv/*.conf (--servers for test/servers/*.conf), and the fuzz corpus replayed (test/fuzz/replay/*);
# 3. each test/t-*.sh with bash, under a time limit (TEST_TIMEOUT seconds,
#    default 300), or only those named in TESTS="t-foo.sh t-bar.sh", once
#    for each binary in BINS (default: dnsfwd; the sanitizer build runs
#    the SANITIZE list below); TEST_JOBS scripts at once (default: two per
#    CPU, see below), each script's output shown whole when it ends.
#
# Lines starting "ok - ", "not ok - " and "skip - " are counted.  A program
# that exits non-zero without a "not ok" line gets one.  Exits 1 if anything
# failed.  Bash (wait -n): the Makefile runs "bash test/run.sh".

cd "$(dirname "$0")/.." || exit 1
limit=${TEST_TIMEOUT:-300}
# shellcheck source=test/lib-run.sh
. test/lib-run.sh
run_dir run

echo "# warnings (make warnings)"
if ! command -v clang >/dev/null 2>&1; then
	say "skip - warnings: clang -Weverything: clang missing (apt-get install clang)"
elif make -s warnings >"$tmp/warnings" 2>&1; then
	say "ok - warnings: gcc $(echo -Wall -Wextra -Wformat=2) and clang -Weverything (minus the Makefile's list): none"
else
	say "not ok - warnings: gcc and clang -Weverything: $(grep -c 'warning:' "$tmp/warnings") warnings"
	sed 's/^/#   /' "$tmp/warnings" | head -n 20
fi

echo "# test/unit"
if [ -x test/unit ]; then
	run test/unit test/unit | tee -a "$all"
else
	say "not ok - test/unit missing"
fi

for conf in test/resolv/*.conf test/servers/*.conf; do
	[ -e "$conf" ] || continue
	want=${conf%.conf}.ok
	mode=--resolv
	case $conf in test/servers/*) mode=--servers ;; esac
	if [ ! -x test/unit ]; then
		say "not ok - $conf: test/unit missing"
		continue
	fi
	if [ ! -f "$want" ]; then
		say "not ok - $conf: $want missing"
		continue
	fi
	test/unit "$mode" "$conf" >"$tmp/got" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -gt 1 ] || grep -qE 'Sanitizer|runtime error:' "$tmp/err"
	then
		say "not ok - $conf: test/unit exited with status $rc"
		sed 's/^/#   /' "$tmp/err"
	elif diff -u "$want" "$tmp/got" >"$tmp/diff"; then
		say "ok - $conf"
	else
		say "not ok - $conf: differs from $want"
		sed 's/^/#   /' "$tmp/diff"
	fi
done

# the fuzz corpus: every seed and every crasher ever found, replayed by
# test/fuzz/replay/TARGET (test/fuzz/driver.c with test/fuzz/fuzz-TARGET.c)
for src in test/fuzz/fuzz-*.c; do
	[ -e "$src" ] || continue
	t=${src#test/fuzz/fuzz-}
	t=${t%.c}
	echo "# fuzz replay $t"
	if [ ! -x "test/fuzz/replay/$t" ]; then
		say "not ok - fuzz replay $t: test/fuzz/replay/$t missing"
		continue
	fi
	run "fuzz replay $t" "test/fuzz/replay/$t" "test/fuzz/corpus/$t" |
	    tee -a "$all"
done

# script S: run S once per binary in BINS, one after the other (a script's
# fixed addresses are its own, but the same for every binary), into
# $tmp/S.out.  The suite runs once per binary: the build users get, then
# the AddressSanitizer + UndefinedBehaviorSanitizer build, where any report
# aborts dnsfwd and so fails the test that provoked it.
#
# The sanitizer build (a BINS entry ending in -san) runs the scripts in
# SANITIZE only (SANITIZE=all: every one): those that drive the packet
# paths (queries, replies, malformed, forged and junk input), the event
# loop and its timers (TCP clients, floods, dying upstreams, stale
# answers), the limits and the cache, where a memory error would hide.
# The others exercise start-up, the file readers and the surroundings
# (following files, namespaces, privileges, readiness), whose parsers the
# unit tests and the fuzz replays run under the sanitizers already: they
# run with the plain build only, which keeps `make test` within 5 minutes
# on 2 cores.
SANITIZE=${SANITIZE:-"t-allow.sh t-allowlist.sh t-cache.sh t-chaos.sh
t-fault-fds.sh t-fault-flood.sh t-fault-resolv.sh t-fault-tcp.sh
t-fault-upstream.sh t-hosts.sh t-limits.sh t-local.sh t-loops.sh
t-malformed.sh t-nxall.sh t-policy.sh t-protocol.sh t-security.sh
t-split.sh t-spoof.sh t-stale.sh t-tcp-fair.sh t-trust.sh t-validators.sh
t-servers-file.sh t-metrics.sh t-dnsmasq-opts.sh t-dns64.sh"}
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
script()
{
	s=$1
	name=$(basename "$s")
	for bin in ${BINS:-dnsfwd}; do
		case "$bin:$SANITIZE" in
		*-san:all) ;;
		*-san:*)
			case " $(echo $SANITIZE) " in
			*" $name "*) ;;
			*) continue ;;
			esac ;;
		esac
		t0=$(date +%s)
		echo "# $name ($bin)"
		if [ "${bin%-cc}" != "$bin" ] &&
		    ! command -v musl-gcc >/dev/null 2>&1; then
			echo "skip - $name ($bin): ./dnsfwd is the cc build already; the static musl one needs musl-gcc (apt-get install musl-tools)"
		elif [ ! -x "$bin" ]; then
			echo "not ok - $name: $bin not built"
		elif [ ! -f "$s" ]; then
			echo "not ok - $name: no such test"
		else
			DNSFWD_BIN=$PWD/$bin run "$name ($bin)" \
			    timeout -k 10 "$limit" bash "$s"
		fi
		echo "# $name ($bin): $(($(date +%s) - t0)) s"
	done >"$tmp/$name.out" 2>&1
}

# TEST_JOBS scripts at a time, then those that say "# test: alone" (they
# load the machine on purpose and measure what it still serves) one by
# one, with nothing beside them.  The default is what the machine holds:
# two scripts per CPU.  A script mostly waits (on timeouts, backoffs, TTLs,
# the idle TCP timer): four at a time on 2 CPUs keep them about half busy
# (user + system time 3 min 22 s in a 3 min 11 s run), and every wait in a
# script is for an event with a deadline, so a busy CPU makes a script
# slower, never wrong (make test-repeat BUSY=1 proves it beside a busy
# loop per CPU).
ncpu=$(nproc 2>/dev/null || echo 2)
# shellcheck disable=SC2046	# one word per script
pool "${TEST_JOBS:-$((2 * ncpu))}" $(scripts_shared)
# shellcheck disable=SC2046
pool 1 $(scripts_alone)

passed=$(grep -c '^ok - ' "$all")
failed=$(grep -c '^not ok - ' "$all")
skipped=$(grep -c '^skip - ' "$all")
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

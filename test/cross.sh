#!/usr/bin/env bash
# test/cross.sh: the portability run (make test-cross).  For aarch64
# (64-bit, little-endian) and mips (32-bit, big-endian):
#
# 1. build a static dnsfwd and a static test/unit with Debian's cross gcc
#    into test/cross/ (-Werror: 32-bit format mistakes show here first);
# 2. run the unit tests and the resolv.conf golden files under qemu-user;
# 3. run every test/t-*.sh against test/cross/dnsfwd-ARCH, through
#    DNSFWD_BIN and DNSFWD_WRAP=qemu-ARCH-static, with CROSS=ARCH set,
#    TEST_JOBS scripts at a time (default 3), each script for one
#    architecture after the other.  fakeup, dnsq and dig stay native.
#
# Result lines carry the architecture ("ok - mips: ...") and the run ends
# with "N passed, N failed, N skipped", like test/run.sh; exits 1 if
# anything failed.  A missing cross compiler, cross libc or qemu skips that
# architecture with the Debian packages to install.
#
# Environment: ARCHES (default "aarch64 mips"), TESTS (as test/run.sh;
# "none" runs no integration test), TEST_JOBS, TEST_TIMEOUT (seconds per
# script, default 600: qemu is slower), WARN (the Makefile passes its own).

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
limit=${TEST_TIMEOUT:-600}
out=test/cross
# shellcheck source=test/lib-run.sh
. test/lib-run.sh
run_dir cross
if [ -z "${WARN:-}" ]; then
	# shellcheck disable=SC2016  # $(WARN) is make's
	WARN=$(make -s --no-print-directory \
	    --eval='cross-warn: ; @echo $(WARN)' cross-warn) || exit 1
fi

# build ARCH WHAT CC ARGS...: one static cross build; glibc's warning that
# a static getpwnam needs its shared libraries at run time is expected.
build()
{
	local arch=$1 what=$2

	shift 2
	if "$@" >"$tmp/cc" 2>&1; then
		say "ok - $arch: build $what"
		grep -v -e 'in statically linked applications requires' \
		    -e ": in function \`[a-z_]*':\$" "$tmp/cc" |
		    sed 's/^/#   /'
		return 0
	fi
	say "not ok - $arch: build $what"
	tail -n 30 "$tmp/cc" | sed 's/^/#   /'
	return 1
}

# golden ARCH QEMU: test/unit --resolv X.conf against X.ok, as test/run.sh.
golden()
{
	local arch=$1 qemu=$2 conf want rc

	for conf in test/resolv/*.conf; do
		[ -e "$conf" ] || continue
		want=${conf%.conf}.ok
		if [ ! -f "$want" ]; then
			say "not ok - $arch: $conf: $want missing"
			continue
		fi
		"$qemu" "$out/unit-$arch" --resolv "$conf" >"$tmp/got" \
		    2>"$tmp/err"
		rc=$?
		if [ "$rc" -gt 1 ]; then
			say "not ok - $arch: $conf: unit exited with status $rc"
			sed 's/^/#   /' "$tmp/err"
		elif diff -u "$want" "$tmp/got" >"$tmp/diff"; then
			say "ok - $arch: $conf"
		else
			say "not ok - $arch: $conf: differs from $want"
			sed 's/^/#   /' "$tmp/diff"
		fi
	done
}

# script S: S once per architecture built (READY: "ARCH:QEMU" words), one
# after the other (a script's fixed addresses are its own, but the same
# for every architecture), into $tmp/S.out.
script()
{
	local s=$1 name a arch qemu t0

	name=$(basename "$s")
	for a in $READY; do
		arch=${a%%:*}
		qemu=${a#*:}
		t0=$(date +%s)
		echo "# $arch: $name"
		if [ ! -f "$s" ]; then
			echo "not ok - $arch: $name: no such test"
			continue
		fi
		TAG=$arch run "$name" env DNSFWD_BIN="$ROOT/$out/dnsfwd-$arch" \
		    DNSFWD_WRAP="$qemu" CROSS="$arch" \
		    timeout -k 10 "$limit" bash "$s"
		echo "# $arch: $name: $(($(date +%s) - t0)) s"
	done >"$tmp/$name.out" 2>&1
}

# integration: every t-*.sh (or TESTS) against each cross binary,
# TEST_JOBS scripts at a time (default 3: qemu spends more CPU than the
# native suite), as test/run.sh does.
integration()
{
	if [ "${TESTS:-}" = none ] || [ -z "$READY" ]; then
		return
	fi
	# shellcheck disable=SC2046	# one word per script
	pool "${TEST_JOBS:-3}" $(scripts_list)
}

# cross_arch ARCH TRIPLET QEMU PACKAGES
cross_arch()
{
	local arch=$1 cc=$2-gcc qemu=$3 pkgs=$4

	echo "# $arch: build"
	if ! command -v "$cc" >/dev/null 2>&1; then
		say "skip - $arch: $cc missing (install $pkgs)"
		return
	fi
	if [ "$("$cc" -print-file-name=libc.a)" = libc.a ]; then
		say "skip - $arch: no static libc for $cc (install $pkgs)"
		return
	fi
	if ! command -v "$qemu" >/dev/null 2>&1; then
		say "skip - $arch: $qemu missing (install qemu-user-static)"
		return
	fi
	# shellcheck disable=SC2086  # WARN is a list of flags
	build "$arch" "$out/dnsfwd-$arch" "$cc" $WARN -Werror -O2 -g -static \
	    -o "$out/dnsfwd-$arch" dnsfwd.c || return
	# -O1 as make test's; no sanitizers in a static cross build
	# shellcheck disable=SC2086
	build "$arch" "$out/unit-$arch" "$cc" $WARN -Werror -O1 -g -static \
	    -DDNSFWD_TEST -o "$out/unit-$arch" test/unit.c dnsfwd.c || return
	echo "# $arch: test/unit"
	TAG=$arch run test/unit timeout -k 10 "$limit" "$qemu" \
	    "$out/unit-$arch" | tee -a "$all"
	golden "$arch" "$qemu"
	READY="$READY $arch:$qemu"
}

mkdir -p "$out" || exit 1
READY=
if [ ! -x test/fakeup ] || [ ! -x test/dnsq ]; then
	make -s test/fakeup test/dnsq ||
	    say "not ok - native test/fakeup and test/dnsq: make failed"
fi
for a in ${ARCHES:-aarch64 mips}; do
	case $a in
	aarch64)
		cross_arch aarch64 aarch64-linux-gnu qemu-aarch64-static \
		    "gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;;
	mips)
		cross_arch mips mips-linux-gnu qemu-mips-static \
		    "gcc-mips-linux-gnu libc6-dev-mips-cross" ;;
	*)
		say "not ok - $a: unknown architecture (aarch64, mips)" ;;
	esac
done
integration

passed=$(grep -c '^ok - ' "$all")
failed=$(grep -c '^not ok - ' "$all")
skipped=$(grep -c '^skip - ' "$all")
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

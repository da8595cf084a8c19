#!/bin/sh
# test/fuzz/run.sh: build the libFuzzer targets and run each on its corpus
# (`make fuzz`).
#
#	sh test/fuzz/run.sh [TARGET...]		(default: every fuzz-*.c)
#
# Each target runs FUZZ_SECONDS (default 60) on test/fuzz/corpus/TARGET;
# what it finds goes to a scratch directory, so the committed corpus does
# not grow by itself.  A crash, leak, timeout or broken invariant that is
# not in the corpus yet is copied there as crash-*, leak-*, timeout-* or
# oom-*, where `make test` replays it from then on: minimize it
# (-minimize_crash=1), rename it for what it shows, and commit it with the
# fix.  FUZZ_MERGE=1 merges what was found into the corpus (-merge=1,
# edges only, so it stays small).  FUZZ_CC (default clang) must support
# -fsanitize=fuzzer.
#
# Prints "ok - fuzz TARGET: ..." or "not ok - fuzz TARGET: ..." per target,
# and exits 1 if any failed.

cd "$(dirname "$0")/../.." || exit 1
secs=${FUZZ_SECONDS:-60}
cc=${FUZZ_CC:-clang}
warn="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Wshadow \
-Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2 \
-Wimplicit-fallthrough -Wcast-qual -Wwrite-strings -Wundef"
# a UBSan report must stop the run like an ASan one does
san="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
# stack frames of libFuzzer and libc, left out of the report
noise='fuzzer::|__sanitizer_|libc\.so|sysdeps|nptl/|stdlib/|csu/|in _start'
noise="$noise|in main "
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dnsfwd-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ $# -gt 0 ]; then
	targets=$*
else
	targets=
	for src in test/fuzz/fuzz-*.c; do
		src=${src#test/fuzz/fuzz-}
		targets="$targets ${src%.c}"
	done
fi
failed=0
for t in $targets; do
	bin=test/fuzz/fuzz-$t
	corpus=test/fuzz/corpus/$t
	# shellcheck disable=SC2086	# word splitting wanted
	if ! $cc $warn -Werror $san -DDNSFWD_TEST -o "$bin" \
	    "test/fuzz/fuzz-$t.c" dnsfwd.c; then
		echo "not ok - fuzz $t: build failed"
		failed=1
		continue
	fi
	mkdir -p "$corpus" "$tmp/$t" "$tmp/$t.art"
	# new inputs go to the scratch dir (first); the corpus is read only
	"$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
	    -artifact_prefix="$tmp/$t.art/" "$tmp/$t" "$corpus" \
	    >"$tmp/$t.log" 2>&1
	rc=$?
	# "#N DONE cov: C ft: F corp: K/SIZE ..."
	stats=$(grep -a 'DONE' "$tmp/$t.log" | tail -n 1 | awk '{
	    sub(/^#/, "", $1)
	    print $1 " runs, cov " $4 ", ft " $6 ", corpus " $8 }')
	if [ "$rc" -ne 0 ]; then
		echo "not ok - fuzz $t: exit $rc"
		grep -a -m 1 -E 'ERROR|invariant broken|runtime error' \
		    "$tmp/$t.log" | sed 's/^/#   /'
		grep -a -E '^    #[0-9]+ ' "$tmp/$t.log" |
		    grep -v -E "$noise" |
		    head -n 10 | sed 's/^/#   /'
		# keep a new crasher where `make test` replays it
		for a in "$tmp/$t.art"/*; do
			[ -f "$a" ] || continue
			known=
			for f in "$corpus"/*; do
				cmp -s "$a" "$f" && known=$f && break
			done
			if [ -n "$known" ]; then
				echo "#   input: $known (already in the corpus)"
			else
				cp "$a" "$corpus/" &&
				    echo "#   input: $corpus/$(basename "$a") (new)"
			fi
		done
		failed=1
		continue
	fi
	echo "ok - fuzz $t: ${stats:-no stats} in $secs s"
	if [ "${FUZZ_MERGE:-0}" = 1 ]; then
		"$bin" -merge=1 -use_counters=0 "$corpus" "$tmp/$t" \
		    >"$tmp/$t.merge" 2>&1 || {
			echo "not ok - fuzz $t: merge failed"
			failed=1
		}
	fi
done
[ "$failed" -eq 0 ]

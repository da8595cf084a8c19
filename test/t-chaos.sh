#!/usr/bin/env bash
# t-chaos.sh: the randomized stress driver (test/chaos.c) against the
# binary under test for CHAOS_SECONDS (default 15; run.sh runs it once per
# binary, the ASan+UBSan build included).  Random client behaviour (UDP,
# pipelined TCP, half-close, reset, trickling, oversized and empty frames,
# disconnects mid-answer) and upstream behaviour (late, duplicate, dropped,
# garbage, TC, wrong ID or question, over 4096 bytes, TCP closed or reset
# mid-answer); after each round dnsfwd must be alive, idle (no spinning,
# even with a half-closed client's query in flight) and answering.
# "make chaos CHAOS_SECONDS=N" runs it longer.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
CHAOS=$ROOT/test/chaos
[ -x "$CHAOS" ] || { fail "test/chaos built (make test/chaos)"; exit 1; }
# Under qemu-user (make test-cross) a shorter run: the same paths, slower.
secs=${CHAOS_SECONDS:-15}
[ -n "${DNSFWD_WRAP:-}" ] && secs=${CHAOS_SECONDS:-5}
# shellcheck disable=SC2086  # DNSFWD_WRAP is a command prefix
"$CHAOS" -s "$secs" ${DNSFWD_WRAP:-} "$DNSFWD"

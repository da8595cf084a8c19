#!/usr/bin/env bash
# t-syslog.sh: --syslog, received by busybox syslogd (-n -O FILE), which
# listens on /dev/log only: it runs in a private mount namespace whose
# /dev is a directory of the test's, so its socket is $T/devN/log.
#  - lines arrive as "daemon.LEVEL dnsfwd[PID]: ..." (the <PRI> decoded by
#    syslogd): notices, errors, and -v's per-query lines as info; the
#    "listening on" lines still on stderr, the rest not;
#  - a socket missing at start is said on stderr, lines go there, and
#    once syslogd comes they go to it (said there too);
#  - syslogd restarted: lines go to the new one;
#  - syslogd stopped (SIGSTOP: its socket fills): DNS answers go on at
#    once, the lines that do not fit go to stderr.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need busybox busybox-static
need unshare util-linux
if [ "$(id -u)" != 0 ]; then
	echo "skip - $SCRIPT: a private mount namespace needs root"
	exit 0
fi

# syslogd N: busybox syslogd on $T/devN/log, logging to $T/messagesN;
# SYSLOGD_PID.
syslogd()
{
	mkdir -p "$T/dev$1"
	: >>"$T/messages$1"
	unshare -m --propagation private sh -c "mount --bind '$T/dev$1' /dev &&
	    exec busybox syslogd -n -O '$T/messages$1'" 2>"$T/syslogd$1.err" &
	SYSLOGD_PID=$!
	track_pid "$SYSLOGD_PID"
	wait_for 10 test -S "$T/dev$1/log"
}

# logged N REGEX: a line of $T/messagesN matches (for wait_for).
logged()
{
	grep -qE "$2" "$T/messages$1"
}

start_fakeup up '* answer 192.0.2.1'

# ---- lines to syslog, with their levels -------------------------------------------
syslogd 1
start_dnsfwd -R -s "127.0.0.1#$up_port" --syslog="$T/dev1/log" -v
pid=$DNSFWD_PID
ok "a notice: daemon.notice dnsfwd[PID]: upstreams: ..." wait_for 10 logged 1 \
	"daemon\\.notice dnsfwd\\[$pid\\]: upstreams: 127\\.0\\.0\\.1#$up_port\$"
ok "the listening line: in syslog" logged 1 \
	"daemon\\.notice dnsfwd\\[$pid\\]: listening on 127\\.0\\.0\\.1:"
ok "... and on stderr as well" grep -q '^dnsfwd: listening on ' \
	"$DNSFWD_ERR"
eq "stderr: nothing but the listening line" \
	"$(grep -vc '^dnsfwd: listening on ' "$DNSFWD_ERR")" 0
q one.test
ok "-v: a query's line, daemon.info" wait_for 10 logged 1 \
	"daemon\\.info dnsfwd\\[$pid\\]: .*one\\.test"
kill -USR1 "$pid"
ok "SIGUSR1: the counters, daemon.notice" wait_for 10 logged 1 \
	"daemon\\.notice dnsfwd\\[$pid\\]: end of counters"

# ---- syslogd restarted -----------------------------------------------------------
_reap "$SYSLOGD_PID"
rm -f "$T/dev1/log"
q gap.test
syslogd 1
q two.test
_again()
{
	q "again$RANDOM.test"
	logged 1 'again[0-9]+\.test'
}
ok "syslogd restarted: lines reach the new one (within a second or so)" \
	wait_for 10 _again
ok "... said on stderr meanwhile, not silently lost" grep -qF \
	"dnsfwd: --syslog $T/dev1/log: " "$DNSFWD_ERR"

# ---- syslogd stopped: its socket fills, DNS goes on ------------------------------
kill -STOP "$SYSLOGD_PID"
# more lines than its socket queues (net.unix.max_dgram_qlen, 512)
for i in $(seq 1 2000); do
	echo "flood$i.test"
done >"$T/flood.names"
dig +tries=1 +time=2 -p "$DNSFWD_PORT" @127.0.0.1 -f "$T/flood.names" \
	>"$T/flood.out" 2>&1
eq "syslogd stopped: 2000 queries with -v, all answered" \
	"$(grep -c 'status: NOERROR' "$T/flood.out")" 2000
lt "... none slower than 1 s (ms)" "$(sed -n 's/^;; Query time: \([0-9]*\) msec/\1/p' \
	"$T/flood.out" | sort -n | tail -n 1)" 1000
ok "... the lines that did not fit: on stderr" grep -q 'flood[0-9]*\.test' \
	"$DNSFWD_ERR"
kill -CONT "$SYSLOGD_PID"
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0
_reap "$SYSLOGD_PID"

# ---- a socket missing at start ---------------------------------------------------
start_dnsfwd -R -s "127.0.0.1#$up_port" --syslog="$T/dev2/log"
pid=$DNSFWD_PID
ok "missing at start: said on stderr, naming it" grep -qE \
	"^dnsfwd: --syslog $T/dev2/log: No such file or directory; logging to stderr until it answers\$" \
	"$DNSFWD_ERR"
ok "... and the lines go to stderr" grep -q '^dnsfwd: upstreams: ' \
	"$DNSFWD_ERR"
syslogd 2
_hup_logged()
{
	kill -HUP "$pid"
	logged 2 "daemon\\.notice dnsfwd\\[$pid\\]: SIGHUP: "
}
ok "syslogd comes: lines go to it (a SIGHUP's)" wait_for 10 _hup_logged
ok "... and it is said there" logged 2 \
	"dnsfwd\\[$pid\\]: --syslog $T/dev2/log: answering again"
stop_dnsfwd
_reap "$SYSLOGD_PID"

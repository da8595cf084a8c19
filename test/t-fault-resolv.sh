#!/usr/bin/env bash
# t-fault-resolv.sh: 1,000 rewrites of the followed resolv file under load.
# Two upstreams of our own, 127.0.40.1:53 (answers 192.0.2.1) and
# 127.0.40.2:53 (192.0.2.2); the file alternates between them, by atomic
# rename and by rewriting in place (which passes through an empty file),
# a rewrite every 5 ms or so, while dnsperf asks at a steady 2,000 qps.
# Every query must be answered NOERROR (dnsperf: zero lost, no SERVFAIL),
# the final state must be honoured (queries go to the server the file
# names last), and after a second round of 1,000 the RSS must not have
# grown by more than 2 MiB (each change builds a new upstream list).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-fault.sh
. "$(dirname "$0")/lib-fault.sh"
need dnsperf dnsperf
need perl perl-base
need dig bind9-dnsutils
fault_net 127.0.40

REWRITES=1000
QPS=2000

fakeup_at n1 127.0.40.1:53 '* answer 192.0.2.1'
fakeup_at n2 127.0.40.2:53 '* answer 192.0.2.2'
printf 'nameserver 127.0.40.1\n' >"$T/resolv.conf"
start_dnsfwd -q -r "$T/resolv.conf"
q first.fault.test
eq "setup: answer from 127.0.40.1" "$ANSWER" 192.0.2.1

# The rewriter: one perl process, no fork per rewrite.  Odd rewrites name
# 127.0.40.2, even ones 127.0.40.1; every third one is in place (truncate,
# then write), the others write a temporary file and rename it.  It ends
# on FINAL.
cat >"$T/rewrite.pl" <<'EOF'
use strict;
use warnings;
use Time::HiRes qw(sleep);
my ($file, $n, $final) = @ARGV;
for my $i (1 .. $n) {
	my $ns = $i == $n ? $final : $i % 2 ? '127.0.40.2' : '127.0.40.1';
	my $text = "# rewrite $i\nnameserver $ns\n";
	if ($i % 3 == 0) {
		open(my $f, '+<', $file) or die "$file: $!\n";
		truncate($f, 0);
		syswrite($f, $text);
		close($f);
	} else {
		open(my $f, '>', "$file.tmp") or die "$file.tmp: $!\n";
		print $f $text;
		close($f);
		rename("$file.tmp", $file) or die "rename: $!\n";
	}
	sleep(0.005);
}
print "$n\n";
EOF

rewrite_round()
{
	local r=$1 final=$2 finalip=$3 pp secs n

	names "$T/names.$r" 100000 "rw$r"
	# dnsperf runs for the rewrites plus a second on either side.
	P_OUT=$T/perf.$r.out
	PERF_LIMIT=90 perf "$DNSFWD_PORT" "$T/names.$r" -l 12 -Q "$QPS" \
	    -t 3 -c 4 >/dev/null &
	pp=$!
	track_pid "$pp"
	# the load is on once the upstreams have been asked a hundred
	wait_for 30 eval "[ \"\$(cat \"\$T/n1.log\" \"\$T/n2.log\" |
	    grep -c ' rw$r-')\" -ge 100 ]"
	secs=$SECONDS
	n=$(timeout 60 perl "$T/rewrite.pl" "$T/resolv.conf" "$REWRITES" \
	    "$final")
	secs=$((SECONDS - secs))
	eq "round $r: $REWRITES rewrites made" "$n" "$REWRITES"
	diag "the rewrites took about $secs s"
	wait "$pp"
	_untrack_pid "$pp"
	perf_parse	# perf ran in a subshell
	ge "round $r: dnsperf sent a steady $QPS qps" "${P_SENT:-0}" \
	    $((QPS * 12 * 9 / 10)) || perf_diag
	eq "round $r: zero queries lost" "${P_LOST:-?}" 0 || perf_diag
	match "round $r: every answer NOERROR (no SERVFAIL)" "$P_RCODES" \
	    '^NOERROR [0-9]+ \(100\.00%\)$' || perf_diag
	ok "round $r: dnsfwd alive" _alive "$DNSFWD_PID"
	a1=$(grep -c " rw$r-" "$T/n1.log")
	a2=$(grep -c " rw$r-" "$T/n2.log")
	diag "queries during round $r: $a1 to 127.0.40.1, $a2 to 127.0.40.2"
	ge "round $r: the load went to both servers as the file switched" \
	    "$((a1 < a2 ? a1 : a2))" $((QPS / 10))
	# The last rewrite is seen within 100 ms (the contract); allow a second.
	wait_for 10 final_is "$finalip"
	q "final$r.fault.test"
	eq "round $r: the final state is honoured" "$ANSWER" "$finalip"
	eq "round $r: ... and the last server named was asked" \
	    "$(asked "n${final##*.}" "final$r.fault.test")" 1
}

# final_is IP: a fresh name is answered with IP.
final_is()
{
	q "probe$RANDOM.fault.test"
	[ "$ANSWER" = "$1" ]
}

rewrite_round 1 127.0.40.2 192.0.2.2
rss1=$(rss "$DNSFWD_PID")
rewrite_round 2 127.0.40.1 192.0.2.1
rss_flat "$REWRITES rewrites" "$rss1" "$(rss "$DNSFWD_PID")"
counters
eq "no query held or failed for want of an upstream" \
	"$(counter held)/$(counter servfail)" 0/0 || diag "$COUNTERS"
stop_dnsfwd
eq "SIGTERM: exit status 0" "$DNSFWD_STATUS" 0

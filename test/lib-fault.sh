# shellcheck shell=bash
# test/lib-fault.sh: helpers for the t-fault-*.sh scripts and t-valgrind.sh,
# sourced after lib.sh.  Not a test itself.
#
# Fake upstreams named in a resolv.conf must listen on port 53 (the file
# cannot give a port), each script on its own /24 of loopback addresses
# (the table in lib.sh).
#
# The load generators:
#  - flood (a perl client written to $T/flood.pl): paced UDP queries from
#    one socket, every reply checked (ID, question, RCODE, the A records
#    against the one expected answer), so "never a wrong answer, never a
#    hang" is asserted per query, not only counted;
#  - perf: dnsperf, for the big floods and steady rates.

# shellcheck disable=SC2034  # the globals are for the sourcing test

# fault_net NET: the script's upstreams listen on NET.x:53; skip it when
# that cannot be done here.
fault_net()
{
	FNET=$1
	need_port53 "$FNET"
}

# kill_fakeup NAME: SIGKILL (an upstream that dies), reaped.
kill_fakeup()
{
	local pidvar=${1}_pid

	kill -KILL "${!pidvar}" 2>/dev/null
	wait "${!pidvar}" 2>/dev/null
	_untrack_pid "${!pidvar}"
}

# rss PID: VmRSS in KiB (empty when PID is gone).
rss()
{
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# cpu_ticks PID: utime + stime in clock ticks.
cpu_ticks()
{
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}

# wakeups PID: context switches so far (each return from ppoll is one).
wakeups()
{
	awk '/ctxt_switches/ { n += $2 } END { print n + 0 }' \
	    "/proc/$1/status" 2>/dev/null
}

# ---- flood: the checking UDP client -----------------------------------------

# flood PORT [OPTION...]: run flood.pl against DNSFWD_ADDR:PORT; its output
# line in FLOOD, and F_SENT F_OK F_SERVFAIL F_TIMEOUT F_WRONG F_OTHER
# F_MAXMS from it.  Options: -b ADDR source address, -n N queries, -r QPS,
# -d MS (send for MS
# instead of -n), -t MS per-query timeout (default 3000), -e IP the one
# correct A answer (default 192.0.2.1), -f FMT names (%d: query number;
# default "fNNNN-%d.fault.test", unique per run so no cache hit).
flood()
{
	local port=$1

	shift
	flood_init
	flood_result "$(perl "$T/flood.pl" "$@" "$DNSFWD_ADDR" "$port" 2>&1)"
}

# flood_init: write $T/flood.pl, to run it in the background by hand.
flood_init()
{
	[ -f "$T/flood.pl" ] || _write_flood "$T/flood.pl"
}

# flood_result LINE: FLOOD and the F_ fields from one flood.pl line (of a
# run made in the background).
flood_result()
{
	local k

	FLOOD=$1
	for k in SENT OK SERVFAIL TIMEOUT WRONG OTHER MAXMS; do
		printf -v "F_$k" '%s' "$(sed -n \
		    "s/.*\\b${k,,}=\\([0-9]*\\).*/\\1/p" \
		    <<<"$FLOOD")"
	done
}

# flood_clean DESC [MAY_SERVFAIL]: the assertions for one flood: every
# query answered (no TIMEOUT), none wrong, and with MAY_SERVFAIL=0 none
# SERVFAIL either; otherwise each is the right answer or SERVFAIL.
flood_clean()
{
	local desc=$1 sf=${2:-1}

	ge "$desc: queries sent" "${F_SENT:-0}" 1 || diag "$FLOOD"
	eq "$desc: no client left without a reply (timeout)" \
	    "${F_TIMEOUT:-?}" 0 || diag "$FLOOD"
	eq "$desc: no wrong answer" "${F_WRONG:-?}/${F_OTHER:-?}" 0/0 ||
	    diag "$FLOOD"
	if [ "$sf" = 0 ]; then
		eq "$desc: every answer correct, no SERVFAIL" \
		    "${F_OK:-?}" "${F_SENT:-0}" || diag "$FLOOD"
	else
		eq "$desc: every reply the correct answer or SERVFAIL" \
		    "$((${F_OK:-0} + ${F_SERVFAIL:-0}))" "${F_SENT:-0}" ||
		    diag "$FLOOD"
	fi
}

_write_flood()
{
	cat >"$1" <<'EOF'
# flood.pl [-b ADDR] [-n N | -d MS] [-r QPS] [-t MS] [-e IP] [-f FMT] ADDR PORT
# Paced A queries from one UDP socket; prints one line:
#   sent=N ok=N servfail=N timeout=N wrong=N other=N late=N maxms=N [detail]
# ok: NOERROR whose A records are exactly -e; wrong: another answer, or a
# reply whose question is not the one asked; other: any other RCODE.
use strict;
use warnings;
use Getopt::Std;
use IO::Socket::INET;
use Socket;
use Time::HiRes qw(time);

my %o;
getopts('n:d:r:t:e:f:b:', \%o) && @ARGV == 2 or die "usage\n";
my ($addr, $port) = @ARGV;
my $n = $o{n} // 1000;
my $dur = defined $o{d} ? $o{d} / 1000 : undef;
my $rate = $o{r} // 1000;
my $tmo = ($o{t} // 3000) / 1000;
my $want = $o{e} // '192.0.2.1';
my $fmt = $o{f} // sprintf('f%d-%d-%%d.fault.test', $$, int(rand(1e6)));
my @rc = qw(NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED);

my $s = IO::Socket::INET->new(Proto => 'udp', PeerAddr => $addr,
    PeerPort => $port, defined $o{b} ? (LocalAddr => $o{b}) : ())
    or die "socket: $!\n";
setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4 << 20);
$s->blocking(0);

my (%out, @fifo, %c, %detail);
my ($sent, $maxms, $id0) = (0, 0, int(rand(65536)));
$c{$_} = 0 for qw(ok servfail timeout wrong other late);

sub qname { my ($i) = @_; return sprintf($fmt, $i); }

sub wire {
	my ($id, $name) = @_;
	my $q = pack('n6', $id, 0x0100, 1, 0, 0, 0);
	$q .= chr(length $_) . $_ for split /\./, $name;
	return $q . "\0" . pack('n2', 1, 1);
}

sub getname {
	my ($buf, $p) = @_;
	my @l;
	my $hops = 0;
	my $end;
	while ($p < length $buf) {
		my $l = ord(substr($buf, $p, 1));
		if ($l >= 0xc0) {
			$end //= $p + 2;
			return (undef, length $buf) if ++$hops > 20;
			$p = unpack('n', substr($buf, $p, 2)) & 0x3fff;
			next;
		}
		if ($l == 0) {
			$end //= $p + 1;
			return (join('.', @l), $end);
		}
		push @l, substr($buf, $p + 1, $l);
		$p += $l + 1;
	}
	return (undef, length $buf);
}

sub reply {
	my ($buf) = @_;
	return if length $buf < 12;
	my ($id, $fl, $qd, $an) = unpack('n4', $buf);
	my $e = $out{$id};
	if (!defined $e) { $c{late}++; return; }
	delete $out{$id};
	my $ms = int((time - $e->[1]) * 1000 + 0.5);
	$maxms = $ms if $ms > $maxms;
	my ($name, $p) = getname($buf, 12);
	my ($t, $cl) = unpack('n2', substr($buf, $p, 4) . "\0" x 4);
	$p += 4;
	if ($qd != 1 || !defined $name || lc($name) ne lc($e->[0]) ||
	    $t != 1 || $cl != 1) {
		$c{wrong}++;
		$detail{'badq:' . ($name // '?')}++;
		return;
	}
	my $r = $rc[$fl & 15] // 'RCODE' . ($fl & 15);
	if ($r eq 'SERVFAIL') { $c{servfail}++; return; }
	if ($r ne 'NOERROR') { $c{other}++; $detail{$r}++; return; }
	my @ip;
	for (1 .. $an) {
		(undef, $p) = getname($buf, $p);
		last if $p + 10 > length $buf;
		my ($rt, $rc, $ttl, $len) = unpack('n2 N n', substr($buf, $p, 10));
		$p += 10;
		push @ip, inet_ntoa(substr($buf, $p, 4)) if $rt == 1 && $len == 4;
		$p += $len;
	}
	my $k = join(',', sort @ip);
	if ($k eq $want) { $c{ok}++; return; }
	$c{wrong}++;
	$detail{'answer:' . ($k eq '' ? 'NODATA' : $k)}++;
}

my $t0 = time;
my $last_send = $t0;
while (1) {
	my $now = time;
	my $more = defined $dur ? $now - $t0 < $dur : $sent < $n;
	while ($more && $sent < ($now - $t0) * $rate + 1) {
		my $id = ($id0 + $sent) & 0xffff;
		if (exists $out{$id}) { $c{timeout}++; delete $out{$id}; }
		my $name = qname($sent + 1);
		$out{$id} = [$name, $now];
		push @fifo, [$id, $now + $tmo, $name];
		send($s, wire($id, $name), 0);
		$sent++;
		$last_send = $now;
		$more = defined $dur ? $now - $t0 < $dur : $sent < $n;
	}
	while (@fifo && $fifo[0][1] <= $now) {
		my $f = shift @fifo;
		my $e = $out{$f->[0]};
		if (defined $e && $e->[0] eq $f->[2]) {
			delete $out{$f->[0]};
			$c{timeout}++;
		}
	}
	last if !$more && !%out;
	last if !$more && $now - $last_send > $tmo + 1;
	my $rin = '';
	vec($rin, fileno($s), 1) = 1;
	my $wait = $more ? 0.002 : 0.05;
	if (select(my $rout = $rin, undef, undef, $wait) > 0) {
		for (1 .. 256) {
			my $buf;
			defined recv($s, $buf, 65535, 0) or last;
			reply($buf);
		}
	}
}
$c{timeout} += scalar keys %out;
printf "sent=%d %s maxms=%d%s\n", $sent,
    join(' ', map { "$_=$c{$_}" } qw(ok servfail timeout wrong other late)),
    $maxms, join('', map { " $_=$detail{$_}" } sort keys %detail);
EOF
}

# ---- perf: dnsperf ----------------------------------------------------------

# perf PORT FILE [DNSPERF-OPTIONS]: dnsperf at DNSFWD_ADDR:PORT, bounded
# by timeout (PERF_LIMIT seconds, default 60), its output in P_OUT (set it
# first to choose the file, e.g. to run perf in the background and then
# perf_parse); sets P_SENT P_DONE P_LOST P_RCODES (e.g. "NOERROR 1000
# (100.00%)").
perf()
{
	local port=$1 file=$2

	shift 2
	: "${P_OUT:=$T/perf.out}"
	timeout -k 5 "${PERF_LIMIT:-60}" dnsperf -s "$DNSFWD_ADDR" \
	    -p "$port" -d "$file" "$@" >"$P_OUT" 2>&1
	perf_parse
}

# perf_parse: the P_ fields from the dnsperf output in P_OUT.
perf_parse()
{
	P_SENT=$(awk '/Queries sent:/ { print $3 }' "$P_OUT")
	P_DONE=$(awk '/Queries completed:/ { print $3 }' "$P_OUT")
	P_LOST=$(awk '/Queries lost:/ { print $3 }' "$P_OUT")
	P_RCODES=$(sed -n 's/^ *Response codes: *//p' "$P_OUT")
}

# perf_diag: dnsperf's summary, as diagnostics.
perf_diag()
{
	diag "$(sed -n '/Queries sent:/,/Queries per second:/p' "$P_OUT")"
}

# names FILE N TAG: N distinct "TAG-I.fault.test A" lines.
names()
{
	awk -v n="$2" -v t="$3" 'BEGIN {
		for (i = 1; i <= n; i++)
			printf "%s-%d.fault.test A\n", t, i }' >"$1"
}

# rss_flat DESC BEFORE AFTER [SLACK_KIB]: AFTER - BEFORE < SLACK (2048).
# Under AddressSanitizer freed memory waits in a quarantine (up to 256 MiB)
# before reuse, so every reload's few KiB add up: the slack is 16 MiB there,
# and the plain build keeps the real bound.
rss_flat()
{
	local slack=${4:-2048}

	grep -q __asan_init "$DNSFWD" 2>/dev/null && slack=16384

	lt "$1: RSS flat across the second round ($2 -> ${3:-gone} KiB)" \
	    "$((${3:-999999} - $2))" "$slack"
}

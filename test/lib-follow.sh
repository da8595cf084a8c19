# shellcheck shell=bash disable=SC2034,SC2153  # globals for the sourcing test; FAKEUP is lib.sh's
# test/lib-follow.sh: helpers for the t-follow-*.sh scripts (and
# measure-follow.sh), sourced after lib.sh.  Not a test itself.
#
# resolv.conf cannot give a port, so dnsfwd asks every nameserver of the
# followed file on port 53.  Fake upstreams named in a file therefore listen
# on 127.0.X.Y:53, each script on its own /24 of loopback addresses (the
# table in lib.sh), so that scripts can run in parallel.
#
# Servers given with a port (-s, -f) use lib.sh's start_fakeup as usual.
#
# Timing is measured by a small DNS client written to $T/dq.pl (perl, one
# process, no fork per query): it makes the change itself (rename,
# in-place write or signal) at t0 and queries (1 ms apart) until the answer
# it waits for arrives, so the time it reports is change-to-effect as a
# client sees it, with no process start-up in it.

# follow_init NET: NET is the script's /24 ("127.0.2").  Skips the script
# when port 53 cannot be bound here (not root, or a wildcard :53 listener).
follow_init()
{
	FNET=$1
	need perl perl-base
	need_port53 "$FNET"
	_write_dq "$T/dq.pl"
}

# start_fakeup_at NAME ADDR RULE...: like start_fakeup, on ADDR:53.
start_fakeup_at()
{
	local name=$1 addr=$2

	shift 2
	fakeup_at "$name" "$addr:53" "$@"
}

# settled: wait (3 s at most) until dnsfwd has read the followed file at
# start: its stderr has an "upstreams:" line or says it holds queries.  The
# messages about the file come after the "listening on" lines that
# start_dnsfwd waits for.
settled()
{
	wait_for 10 grep -qE '^dnsfwd: (upstreams: |.*no upstream yet)' \
	    "$DNSFWD_ERR"
}

# put FILE LINE...: replace FILE atomically (write a temporary file in the
# same directory, rename it over FILE), as resolvconf and systemd do.
put()
{
	local f=$1 tmp

	shift
	tmp=$(dirname "$f")/.tmp.$$.$RANDOM
	printf '%s\n' "$@" >"$tmp" && mv -f "$tmp" "$f"
}

# stage FILE LINE...: write FILE (a staging file for dq -R / -W).
stage()
{
	local f=$1

	shift
	printf '%s\n' "$@" >"$f"
}

# dq ADDR PORT [OPTION...]: run the perl client (under QWRAP, as q); its one
# output line in DQ,
# the fields in DQ_MS (-1: never happened), DQ_N (queries sent) and DQ_END
# (wall clock in ms when it stopped, as now_ms); returns its status.
# Options: -u KEY stop at the first answer that has KEY (an IPv4 address of
# the answer, or an RCODE / NODATA / TIMEOUT); -d MS run at most MS; -c N
# at most N queries; -t MS wait per query; -i MS pause between queries
# (default 1, so that a long wait is no flood); -n FMT the names (%d: the
# query number).  At t0, one of: -R "SRC DST" rename, -W "DST SRC" write
# SRC's bytes into DST in place, -K "SIG PID" send a signal.
dq()
{
	local a=$1 p=$2 rc

	shift 2
	# shellcheck disable=SC2086  # QWRAP is a command prefix
	DQ=$(${QWRAP:-} perl "$T/dq.pl" "$@" "$a" "$p" 2>&1)
	rc=$?
	DQ_MS=$(sed -n 's/^ms=\(-\{0,1\}[0-9]*\) .*/\1/p' <<<"$DQ")
	DQ_N=$(sed -n 's/.* n=\([0-9]*\).*/\1/p' <<<"$DQ")
	DQ_END=$(sed -n 's/.* end=\([0-9]*\).*/\1/p' <<<"$DQ")
	return "$rc"
}

# within DESC LIMIT: the last dq run saw its -u KEY, in less than LIMIT ms
# times FOLLOW_SLACK (default 5): the contract's 100 ms is typically met in
# about 12 ms, and a loaded 2-core machine must not turn that into a
# failure; the bound is 5x the contract.  test/bench/measure-follow.sh
# reports the real latency.
within()
{
	local bound=$(($2 * ${FOLLOW_SLACK:-5}))

	if [ "${DQ_MS:--1}" -lt 0 ]; then
		fail "$1" "never happened in the time given" "dq: $DQ"
		return 1
	fi
	lt "$1 ($DQ_MS ms; bound $bound ms)" "$DQ_MS" "$bound" ||
	    diag "dq: $DQ"
}

# dq_count KEY: how many answers of the last dq run were KEY.
dq_count()
{
	local w

	for w in $DQ; do
		[ "${w%=*}" = "$1" ] && { echo "${w##*=}"; return; }
	done
	echo 0
}

# dq_keys: the distinct answer keys of the last dq run, sorted.
dq_keys()
{
	local w out=()

	for w in $DQ; do
		case $w in
		ms=* | n=* | end=*) ;;
		*) out+=("${w%=*}") ;;
		esac
	done
	printf '%s\n' "${out[@]}" | LC_ALL=C sort | paste -sd ' ' -
}

# errcount REGEX: lines of dnsfwd's stderr that match.
errcount()
{
	grep -cE -- "$1" "$DNSFWD_ERR"
}

# errlines: how many lines dnsfwd's stderr has now.
errlines()
{
	wc -l <"$DNSFWD_ERR" | tr -d ' '
}

# wakeups PID: context switches so far (each return from ppoll is one).
wakeups()
{
	awk '/ctxt_switches/ { n += $2 } END { print n + 0 }' \
	    "/proc/$1/status" 2>/dev/null
}


_write_dq()
{
	cat >"$1" <<'EOF'
# dq.pl ADDR PORT [options]: see dq() in test/lib-follow.sh.
use strict;
use warnings;
use Getopt::Std;
use IO::Socket::INET;
use Socket;
use Time::HiRes qw(time sleep);

my %o;
getopts('u:d:c:t:i:n:R:W:K:', \%o) && @ARGV == 2 or die "usage\n";
my ($addr, $port) = @ARGV;
my $fmt = $o{n} // "dq$$-%d.test";
my $dur = ($o{d} // 3000) / 1000;
my $max = $o{c} // 1e9;
my $tmo = ($o{t} // 1000) / 1000;
my $ival = ($o{i} // 1) / 1000;
my $until = $o{u};
my @rc = qw(NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED);

my $s = IO::Socket::INET->new(Proto => 'udp', PeerAddr => $addr,
    PeerPort => $port) or die "socket: $!\n";
my $src;
if ($o{W}) {
	my ($dst, $from) = split ' ', $o{W};
	open(my $in, '<', $from) or die "$from: $!\n";
	local $/;
	$src = <$in>;
	close $in;
}

# One query; the key of its answer.
sub ask {
	my ($name) = @_;
	my $id = int(rand(65536));
	my $q = pack('n6', $id, 0x0100, 1, 0, 0, 0);
	$q .= chr(length $_) . $_ for split /\./, $name;
	$q .= "\0" . pack('n2', 1, 1);
	defined $s->send($q) or return 'NETERR';
	my $end = time + $tmo;
	while ((my $left = $end - time) > 0) {
		my $rin = '';
		vec($rin, fileno($s), 1) = 1;
		select(my $rout = $rin, undef, undef, $left) > 0 or last;
		my $buf;
		defined $s->recv($buf, 65535) or return 'NETERR';
		next if length $buf < 12;
		my ($rid, $fl, $qd, $an) = unpack('n4', $buf);
		next if $rid != $id;
		my $r = $rc[$fl & 15] // 'RCODE' . ($fl & 15);
		my $p = 12;
		for (1 .. $qd) { $p = skipname($buf, $p) + 4; }
		my @ip;
		for (1 .. $an) {
			$p = skipname($buf, $p);
			last if $p + 10 > length $buf;
			my ($t, $c, $ttl, $len) = unpack('n2 N n',
			    substr($buf, $p, 10));
			$p += 10;
			push @ip, inet_ntoa(substr($buf, $p, 4))
			    if $t == 1 && $len == 4;
			$p += $len;
		}
		return $r ne 'NOERROR' ? $r : @ip ? join(',', sort @ip) :
		    'NODATA';
	}
	return 'TIMEOUT';
}

sub skipname {
	my ($buf, $p) = @_;
	while ($p < length $buf) {
		my $l = ord(substr($buf, $p, 1));
		return $p + 2 if $l >= 0xc0;
		return $p + 1 if $l == 0;
		$p += $l + 1;
	}
	return $p;
}

my $t0 = time;
if ($o{R}) {
	my ($a, $b) = split ' ', $o{R};
	rename($a, $b) or die "rename $a $b: $!\n";
} elsif ($o{W}) {
	my ($dst) = split ' ', $o{W};
	open(my $out, '+<', $dst) or die "$dst: $!\n";
	truncate($out, 0);
	syswrite($out, $src);
	close $out;
} elsif ($o{K}) {
	my ($sig, $pid) = split ' ', $o{K};
	kill($sig, $pid) or die "kill $sig $pid: $!\n";
}
my (%n, $found);
my $i = 0;
while (time - $t0 < $dur && $i < $max) {
	$i++;
	my $k = ask(sprintf($fmt, $i));
	$n{$k}++;
	if (defined $until && ($k eq $until ||
	    grep { $_ eq $until } split /,/, $k)) {
		$found = int((time - $t0) * 1000 + 0.5);
		last;
	}
	sleep($ival) if $ival > 0;
}
printf "ms=%d n=%d %s end=%d\n", $found // -1, $i,
    join(' ', map { "$_=$n{$_}" } sort keys %n), time * 1000;
exit(defined $until && !defined $found ? 1 : 0);
EOF
}

#!/usr/bin/env bash
# t-follow-burst.sh: 1,000 rapid atomic rewrites of the file (alternating
# up1 and up2, the last one up3), then 300 in-place rewrites (the last one
# up1).  Afterwards queries go to the final upstream, dnsfwd is alive, and
# it logged far fewer than 1,000 list changes (the 10 ms coalescing).
# Between changes dnsfwd sleeps: it does not wake up when nothing happens.
# Addresses: 127.0.7.x (see lib-follow.sh).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
follow_init 127.0.7

# idle DESC: dnsfwd wakes up fewer than 20 times in 2 s of nothing.
idle()
{
	local w0 w1

	w0=$(wakeups "$DNSFWD_PID")
	sleep 2		# the measurement window
	w1=$(wakeups "$DNSFWD_PID")
	lt "$1: fewer than 20 wake-ups in 2 s with nothing to do ($((w1 - w0)))" \
	    "$((w1 - w0))" 20
}

for i in 1 2 3; do
	start_fakeup_at "up$i" "127.0.7.$i" "* answer 192.0.2.$i"
done
RC=$T/resolv.conf
printf '%s\n' 'nameserver 127.0.7.1' >"$RC"
start_dnsfwd -r "$RC"
q a.test
eq "before: up1" "$ANSWER" 192.0.2.1
idle "before the burst"

# burst HOW N LAST: N rewrites of $RC (HOW: atomic, a new file renamed
# over it; inplace, truncated and written), naming 127.0.7.2 and .3 (or
# .1) by turns and 127.0.7.LAST at the end; the milliseconds it took.
burst()
{
	perl -MTime::HiRes=time -e '
	my ($f, $how, $n, $last) = @ARGV;
	my $t0 = time;
	for my $i (1 .. $n) {
		my $x = $i == $n ? $last : $i % 2 ? 2 : $last == 3 ? 1 : 3;
		my $to = $how eq "atomic" ? "$f.tmp" : $f;
		open(my $fh, ">", $to) or die "$to: $!";
		print $fh ($how eq "atomic" ? "# rewrite $i\n" : ""),
		    "nameserver 127.0.7.$x\n";
		close $fh;
		$how eq "atomic" and (rename("$f.tmp", $f) or die "rename: $!");
	}
	printf "%d\n", (time - $t0) * 1000;' "$RC" "$1" "$2" "$3"
}

# after_burst WHAT N IP: N rewrites (WHAT) ended with the upstream that
# answers IP: it answers within 100 ms, dnsfwd lives, and it reloaded
# fewer times than the file was rewritten (reloads: how many, from line
# $from of its log on).
after_burst()
{
	dq 127.0.0.1 "$DNSFWD_PORT" -u "$3" -d 3000
	within "$1 burst: the final upstream answers within 100 ms of it" 100
	ok "$1 burst: dnsfwd is alive" _alive "$DNSFWD_PID"
	reloads=$(tail -n +"$((from + 1))" "$DNSFWD_ERR" | grep -c 'upstreams:')
	echo "# $2 $1 rewrites in $burst_ms ms: dnsfwd logged $reloads list changes"
	lt "$1 burst: fewer list changes than rewrites ($reloads)" \
		"$reloads" "$2"
}

# ---- 1,000 atomic rewrites ---------------------------------------------------
from=$(errlines)
burst_ms=$(burst atomic 1000 3)
after_burst atomic 1000 192.0.2.3
ge "atomic burst: at least one list change" "$reloads" 1
eq "atomic burst: the last list is up3" \
	"$(grep 'upstreams:' "$DNSFWD_ERR" | tail -n 1)" \
	"dnsfwd: upstreams: 127.0.7.3#53"
for n in b c d; do
	q "$n.test"
done
eq "atomic burst: later queries go to up3 only" \
	"$(asked up3 b.test)$(asked up3 c.test)$(asked up3 d.test) $(asked \
	up1 c.test)$(asked up2 c.test)" "111 00"
ok "atomic burst: no error on stderr" \
	test "$(grep -vcE 'upstreams:|listening on|following |sandbox: ' \
	"$DNSFWD_ERR")" -eq 0

# ---- 300 in-place rewrites -----------------------------------------------------
from=$(errlines)
burst_ms=$(burst inplace 300 1)
after_burst in-place 300 192.0.2.1
q e.test
eq "in-place burst: later queries go to up1" \
	"$ANSWER $(asked up1 e.test)$(asked up2 e.test)$(asked up3 e.test)" \
	"192.0.2.1 100"
idle "after the bursts"

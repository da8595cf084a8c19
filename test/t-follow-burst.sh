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

# ---- 1,000 atomic rewrites ---------------------------------------------------
from=$(errlines)
burst_ms=$(perl -MTime::HiRes=time -e '
	my ($f, $n) = @ARGV;
	my $t0 = time;
	for my $i (1 .. $n) {
		my $x = $i == $n ? 3 : $i % 2 ? 2 : 1;
		open(my $fh, ">", "$f.tmp") or die "$f.tmp: $!";
		print $fh "# rewrite $i\nnameserver 127.0.7.$x\n";
		close $fh;
		rename("$f.tmp", $f) or die "rename: $!";
	}
	printf "%d\n", (time - $t0) * 1000;' "$RC" 1000)
dq 127.0.0.1 "$DNSFWD_PORT" -u 192.0.2.3 -d 3000
within "atomic burst: the final upstream answers within 100 ms of it" 100
ok "atomic burst: dnsfwd is alive" _alive "$DNSFWD_PID"
reloads=$(tail -n +"$((from + 1))" "$DNSFWD_ERR" | grep -c 'upstreams:')
echo "# 1000 atomic rewrites in $burst_ms ms: dnsfwd logged $reloads list changes"
lt "atomic burst: far fewer list changes than rewrites ($reloads)" \
	"$reloads" 1000
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
	test "$(grep -vcE 'upstreams:|listening on|following ' \
	"$DNSFWD_ERR")" -eq 0

# ---- 300 in-place rewrites -----------------------------------------------------
from=$(errlines)
burst_ms=$(perl -MTime::HiRes=time -e '
	my ($f, $n) = @ARGV;
	my $t0 = time;
	for my $i (1 .. $n) {
		my $x = $i == $n ? 1 : $i % 2 ? 2 : 3;
		open(my $fh, ">", $f) or die "$f: $!";
		print $fh "nameserver 127.0.7.$x\n";
		close $fh;
	}
	printf "%d\n", (time - $t0) * 1000;' "$RC" 300)
dq 127.0.0.1 "$DNSFWD_PORT" -u 192.0.2.1 -d 3000
within "in-place burst: the final upstream answers within 100 ms of it" 100
ok "in-place burst: dnsfwd is alive" _alive "$DNSFWD_PID"
reloads=$(tail -n +"$((from + 1))" "$DNSFWD_ERR" | grep -c 'upstreams:')
echo "# 300 in-place rewrites in $burst_ms ms: dnsfwd logged $reloads list changes"
lt "in-place burst: fewer list changes than rewrites ($reloads)" \
	"$reloads" 300
q e.test
eq "in-place burst: later queries go to up1" \
	"$ANSWER $(asked up1 e.test)$(asked up2 e.test)$(asked up3 e.test)" \
	"192.0.2.1 100"
idle "after the bursts"

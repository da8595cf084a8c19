#!/usr/bin/env bash
# t-follow-symlink.sh: resolv.conf is a symlink into another directory
# (resolvconf, systemd-resolved and netconfig all do this).  Retargeting the
# link atomically (ln -sfn to a temporary name, then rename over the link)
# takes effect within 100 ms; so do an in-place edit of the new target and an
# atomic rewrite of it; the old target is no longer followed.  Addresses:
# 127.0.5.x (see lib-follow.sh).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
follow_init 127.0.5

for i in 1 2 3 4; do
	start_fakeup_at "up$i" "127.0.5.$i" "* answer 192.0.2.$i"
done
mkdir -p "$T/etc" "$T/run/resolvconf"
printf '%s\n' 'nameserver 127.0.5.1' >"$T/run/resolvconf/a.conf"
printf '%s\n' 'nameserver 127.0.5.2' >"$T/run/resolvconf/b.conf"
ln -s "$T/run/resolvconf/a.conf" "$T/etc/resolv.conf"
RC=$T/etc/resolv.conf
start_dnsfwd -r "$RC"

q a.test
eq "link to a.conf: answered by up1" "$RCODE $ANSWER" "NOERROR 192.0.2.1"

# Retarget the link: a new link under a temporary name, renamed over it
# (what "ln -sfn b.conf tmp && mv -T tmp resolv.conf" does).  Relative,
# this time.
ln -sfn ../run/resolvconf/b.conf "$T/etc/.resolv.conf.tmp"
dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/etc/.resolv.conf.tmp $RC" -u 192.0.2.2 \
	-d 3000
eq "the link now points at b.conf" "$(readlink "$RC")" \
	../run/resolvconf/b.conf
within "link swapped to b.conf: up2 answers within 100 ms" 100
eq "link swap: no SERVFAIL meanwhile" "$(dq_count SERVFAIL)" 0

# Edit the new target in place.
stage "$T/new" 'nameserver 127.0.5.3'
dq 127.0.0.1 "$DNSFWD_PORT" -W "$T/run/resolvconf/b.conf $T/new" \
	-u 192.0.2.3 -d 3000
within "b.conf edited in place: up3 answers within 100 ms" 100

# The old target is not followed any more.
put "$T/run/resolvconf/a.conf" 'nameserver 127.0.5.4'
dq 127.0.0.1 "$DNSFWD_PORT" -d 500 -i 20
eq "a.conf (no longer the target) edited: still up3 only" "$(dq_keys)" \
	192.0.2.3
eq "a.conf edited: up4 never asked" "$(asked up4)" 0

# Replace the new target atomically, as an editor does.
stage "$T/run/resolvconf/.b.tmp" 'nameserver 127.0.5.1'
dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/run/resolvconf/.b.tmp $T/run/resolvconf/b.conf" \
	-u 192.0.2.1 -d 3000
within "b.conf replaced by rename: up1 answers within 100 ms" 100

# Back to a.conf (which now names up4), with mv -T as the issue says.
ln -sfn "$T/run/resolvconf/a.conf" "$T/etc/.resolv.conf.tmp"
mv -T "$T/etc/.resolv.conf.tmp" "$RC"
dq 127.0.0.1 "$DNSFWD_PORT" -u 192.0.2.4 -d 3000
within "ln -sfn + mv -T back to a.conf: up4 answers within 100 ms of mv" 100
q z.test
eq "after all swaps: answered by up4 only" \
	"$ANSWER $(asked up1 z.test) $(asked up2 z.test) $(asked up3 z.test)" \
	"192.0.2.4 0 0 0"
ok "dnsfwd still runs" _alive "$DNSFWD_PID"

#!/usr/bin/env bash
# t-follow-poll.sh: --poll 1 forces polling instead of inotify.  dnsfwd
# says on stderr that it polls; an atomic rewrite, a same-size in-place
# edit and a delete + re-create each take effect within about 1-2 s; a
# deleted file keeps the last good list.  Addresses: 127.0.8.x.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
follow_init 127.0.8

for i in 1 2 3; do
	start_fakeup_at "up$i" "127.0.8.$i" "* answer 192.0.2.$i"
done
RC=$T/resolv.conf
printf '%s\n' 'nameserver 127.0.8.1' >"$RC"
start_dnsfwd -r "$RC" --poll 1
settled
ok "stderr: says it polls the file every 1 s" \
	grep -qE "^dnsfwd: .*poll.*resolv\\.conf.* 1 s|^dnsfwd: .*resolv\\.conf.*poll.* 1 s" \
	"$DNSFWD_ERR"
inotify=$(find "/proc/$DNSFWD_PID/fd" -lname 'anon_inode:inotify' | wc -l)
eq "no inotify instance is used" "$inotify" 0

q a.test
eq "start: up1" "$ANSWER" 192.0.2.1

# Atomic rewrite.
stage "$T/.new" 'nameserver 127.0.8.2'
dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/.new $RC" -u 192.0.2.2 -d 4000 -i 10
within "atomic rewrite: up2 answers within 2 s" 2000
eq "atomic rewrite: no SERVFAIL meanwhile" "$(dq_count SERVFAIL)" 0
echo "# --poll 1: atomic rewrite took effect after $DQ_MS ms"

# In-place edit, same size (only the contents tell it changed).
stage "$T/new" 'nameserver 127.0.8.3'
dq 127.0.0.1 "$DNSFWD_PORT" -W "$RC $T/new" -u 192.0.2.3 -d 4000 -i 10
within "same-size in-place edit: up3 answers within 2 s" 2000
echo "# --poll 1: same-size in-place edit took effect after $DQ_MS ms"

# Deleted: the last good list stays.
rm -f "$RC"
dq 127.0.0.1 "$DNSFWD_PORT" -d 2500 -i 50
eq "deleted: up3 still answers for 2.5 s" "$(dq_keys)" 192.0.2.3
eq "deleted: said once" \
	"$(errcount 'resolv.conf: no such file; keeping what it gave before')" 1

# Re-created.
stage "$T/.new" 'nameserver 127.0.8.1'
dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/.new $RC" -u 192.0.2.1 -d 4000 -i 10
within "re-created: up1 answers within 2 s" 2000
ok "dnsfwd still runs" _alive "$DNSFWD_PID"

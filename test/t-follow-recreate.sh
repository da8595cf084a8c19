#!/usr/bin/env bash
# t-follow-recreate.sh: the followed file is deleted, then created again.
# While it is missing the last good list stays in use (said once on stderr
# per deletion); the re-created file's server takes effect within 100 ms,
# whether it is written in place or renamed into place.  The same when the
# whole directory goes away and comes back.  Addresses: 127.0.10.x.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
follow_init 127.0.10

for i in 1 2 3; do
	start_fakeup_at "up$i" "127.0.10.$i" "* answer 192.0.2.$i"
done
mkdir "$T/etc"
RC=$T/etc/resolv.conf
MISSING='etc/resolv.conf: no such file; keeping what it gave before'
printf '%s\n' 'nameserver 127.0.10.1' >"$RC"
start_dnsfwd -r "$RC"
q a.test
eq "start: up1" "$ANSWER" 192.0.2.1

# ---- deleted ------------------------------------------------------------------
rm "$RC"
dq 127.0.0.1 "$DNSFWD_PORT" -d 1000 -i 20
eq "deleted: up1 still answers, for 1 s" "$(dq_keys)" 192.0.2.1
: >"$T/etc/unrelated"	# more events in the directory
rm "$T/etc/unrelated"
dq 127.0.0.1 "$DNSFWD_PORT" -d 300 -i 20
eq "deleted: still up1 after other changes in the directory" "$(dq_keys)" \
	192.0.2.1
eq "deleted: said once on stderr" "$(errcount "$MISSING")" 1
eq "deleted: up2 not asked" "$(asked up2)" 0

# ---- re-created in place (open, write, close) -------------------------------
stage "$T/new" 'nameserver 127.0.10.2'
printf '' >"$RC"		# created empty, as "cat > file" does first
dq 127.0.0.1 "$DNSFWD_PORT" -W "$RC $T/new" -u 192.0.2.2 -d 3000
within "re-created: up2 answers within 100 ms" 100
eq "re-created: no SERVFAIL meanwhile" "$(dq_count SERVFAIL)" 0

# ---- deleted again, re-created by rename --------------------------------------
rm "$RC"
_said_twice() { [ "$(errcount "$MISSING")" -ge 2 ]; }
wait_for 10 _said_twice
eq "deleted again: said again, once" "$(errcount "$MISSING")" 2
q b.test
eq "deleted again: up2 still answers" "$ANSWER" 192.0.2.2
stage "$T/etc/.new" 'nameserver 127.0.10.3'
dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/etc/.new $RC" -u 192.0.2.3 -d 3000
within "re-created by rename: up3 answers within 100 ms" 100

# ---- the directory goes away and comes back ------------------------------------
rm -r "${T:?}/etc"
dq 127.0.0.1 "$DNSFWD_PORT" -d 500 -i 20
eq "directory deleted: up3 still answers" "$(dq_keys)" 192.0.2.3
mkdir "$T/etc"
stage "$T/new" 'nameserver 127.0.10.1'
: >"$RC"
dq 127.0.0.1 "$DNSFWD_PORT" -W "$RC $T/new" -u 192.0.2.1 -d 3000
within "directory and file re-created: up1 answers within 100 ms" 100
q c.test
eq "finally: up1 only" \
	"$ANSWER $(asked up1 c.test)$(asked up2 c.test)$(asked up3 c.test)" \
	"192.0.2.1 100"
ok "dnsfwd still runs" _alive "$DNSFWD_PID"

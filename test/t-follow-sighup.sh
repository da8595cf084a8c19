#!/usr/bin/env bash
# t-follow-sighup.sh: SIGHUP re-reads the followed file now and flushes the
# cache.  dnsfwd runs with --poll 3600, so nothing but the signal can make it
# notice a change within the test.  Addresses: 127.0.11.x.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
follow_init 127.0.11

start_fakeup_at up1 127.0.11.1 '* answer 192.0.2.1'
start_fakeup_at up2 127.0.11.2 '* answer 192.0.2.2'
RC=$T/resolv.conf
printf '%s\n' 'nameserver 127.0.11.1' >"$RC"
start_dnsfwd -r "$RC" --poll 3600
q a.test
eq "start: up1" "$ANSWER" 192.0.2.1

put "$RC" 'nameserver 127.0.11.2'
dq 127.0.0.1 "$DNSFWD_PORT" -d 500 -i 20
eq "changed, no signal yet: still up1 (polling once an hour)" "$(dq_keys)" \
	192.0.2.1

dq 127.0.0.1 "$DNSFWD_PORT" -K "HUP $DNSFWD_PID" -u 192.0.2.2 -d 3000
within "SIGHUP: up2 answers within 100 ms" 100
eq "SIGHUP: no SERVFAIL meanwhile" "$(dq_count SERVFAIL)" 0
ok "SIGHUP: said on stderr" grep -q '^dnsfwd: SIGHUP: re-reading files' \
	"$DNSFWD_ERR"
q b.test
eq "SIGHUP: later queries to up2 only" \
	"$ANSWER $(asked up1 b.test)$(asked up2 b.test)" "192.0.2.2 01"

# The cache is flushed by SIGHUP even when the file did not change.
set_rules up2 'cached.test answer 192.0.2.22' '* answer 192.0.2.2'
q cached.test
eq "cache: first answer from up2" "$ANSWER" 192.0.2.22
set_rules up2 'cached.test answer 192.0.2.23' '* answer 192.0.2.2'
q cached.test
eq "cache: second answer from the cache" \
	"$ANSWER $(asked up2 cached.test)" "192.0.2.22 1"
kill -HUP "$DNSFWD_PID"
_hup_twice() { [ "$(errcount 'SIGHUP: re-reading')" -ge 2 ]; }
wait_for 10 _hup_twice
q cached.test
eq "cache: after SIGHUP (file unchanged) asked again" \
	"$ANSWER $(asked up2 cached.test)" "192.0.2.23 2"

# Many signals at once: dnsfwd survives and still serves.
for i in 1 2 3 4 5 6 7 8 9 10; do
	kill -HUP "$DNSFWD_PID"
done
q c.test
eq "10 SIGHUPs at once: still served by up2" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.2"
ok "dnsfwd still runs" _alive "$DNSFWD_PID"
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

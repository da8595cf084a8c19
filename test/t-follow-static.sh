#!/usr/bin/env bash
# t-follow-static.sh: -s servers stay first in the default list, ahead of
# the file's, in command-line order, before and after the file changes; and
# they serve at once when the file has no server (or does not exist yet).
# s1 and s2 are the -s servers (with ports: start_fakeup); up1 and up2 the
# file's.  Each answers what tells them apart; "neg*" names make the ones
# before the last say NXDOMAIN, so the sequential policy walks the list.
# Addresses: 127.0.13.x (see lib-follow.sh).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
follow_init 127.0.13

# who QNAME: "s1 s2 up1 up2" as 0/1 asked counts for QNAME.
who()
{
	echo "$(asked s1 "$1") $(asked s2 "$1") $(asked up1 "$1") $(asked up2 "$1")"
}

start_fakeup s1 '*.neg1.test nxdomain' '*.neg2.test nxdomain' \
	'*.neg3.test nxdomain' '* answer 192.0.2.51'
start_fakeup s2 '*.neg2.test nxdomain' '*.neg3.test nxdomain' \
	'* answer 192.0.2.52'
start_fakeup_at up1 127.0.13.1 '*.neg3.test nxdomain' '* answer 192.0.2.1'
start_fakeup_at up2 127.0.13.2 '* answer 192.0.2.2'
S1=127.0.0.1#$s1_port
S2=127.0.0.1#$s2_port

RC=$T/resolv.conf
printf '%s\n' 'nameserver 127.0.13.1' >"$RC"
start_dnsfwd -r "$RC" -s "$S1" -s "$S2"
settled
eq "stderr: -s servers first, in order, then the file's" \
	"$(grep 'upstreams:' "$DNSFWD_ERR" | tail -n 1)" \
	"dnsfwd: upstreams: $S1 $S2 127.0.13.1#53"
q a.test
eq "s1 is asked first" "$ANSWER / $(who a.test)" "192.0.2.51 / 1 0 0 0"
q a.neg1.test
eq "s2 second" "$ANSWER / $(who a.neg1.test)" "192.0.2.52 / 1 1 0 0"
q a.neg2.test
eq "the file's server last" "$ANSWER / $(who a.neg2.test)" \
	"192.0.2.1 / 1 1 1 0"

# The file changes: up2 joins ahead of up1.  s1 and s2 stay first.
stage "$T/.new" 'nameserver 127.0.13.2' 'nameserver 127.0.13.1'
dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/.new $RC" -u 192.0.2.2 -d 3000 \
	-n 'x%d.neg2.test'
within "rewrite: the file's new first server is used within 100 ms" 100
eq "rewrite: -s servers still first" \
	"$(grep 'upstreams:' "$DNSFWD_ERR" | tail -n 1)" \
	"dnsfwd: upstreams: $S1 $S2 127.0.13.2#53 127.0.13.1#53"
q b.test
eq "rewrite: s1 still asked first" "$ANSWER / $(who b.test)" \
	"192.0.2.51 / 1 0 0 0"
q b.neg1.test
eq "rewrite: s2 still second" "$ANSWER / $(who b.neg1.test)" \
	"192.0.2.52 / 1 1 0 0"
q b.neg2.test
eq "rewrite: then up2, the file's first" "$ANSWER / $(who b.neg2.test)" \
	"192.0.2.2 / 1 1 0 1"

# The file loses its servers: the last good list, -s still first.
put "$RC" '# empty now'
dq 127.0.0.1 "$DNSFWD_PORT" -d 300 -i 20 -n 'y%d.neg2.test'
eq "servers gone: the last good list is kept (up2 answers after s1, s2)" \
	"$(dq_keys)" 192.0.2.2
stop_dnsfwd

# ---- the file has no server at start: -s serve at once ---------------------
printf '%s\n' '# nothing yet' >"$RC"
start_dnsfwd -r "$RC" -s "$S1" -s "$S2"
settled
q c.test +time=8
eq "no server in the file: s1 answers" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.51"
lt "no server in the file: at once, not held (${MS} ms)" "$MS" 1000
stop_dnsfwd
start_dnsfwd -r "$T/none/resolv.conf" -s "$S1"
q d.test +time=8
eq "no file: s1 answers" "$RCODE $ANSWER" "NOERROR 192.0.2.51"
lt "no file: at once, not held (${MS} ms)" "$MS" 1000

#!/usr/bin/env bash
# t-follow-fallback.sh: -f FALLBACK is used only while the default list
# would otherwise be empty.  The file has no nameserver at start, so the
# fallback answers (at once, not after the 5 s hold); once the file gives a
# server, that server is asked and the fallback no longer; when the file
# loses its servers again, the last good list stays and the fallback is still
# not asked.  The same with a file that does not exist at start.
# Addresses: 127.0.12.x (the fallback has a port: start_fakeup).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
follow_init 127.0.12

start_fakeup fb '* answer 192.0.2.99'
start_fakeup_at up1 127.0.12.1 '* answer 192.0.2.1'
FB=127.0.0.1#$fb_port

# ---- a file with no nameserver -------------------------------------------------
RC=$T/resolv.conf
printf '%s\n' '# no servers yet' 'search example.test' 'options ndots:1' \
	>"$RC"
start_dnsfwd -r "$RC" -f "$FB"
q a.test +time=8
eq "no servers in the file: the fallback answers" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.99"
lt "no servers in the file: at once, not held (${MS} ms)" "$MS" 1000
eq "no servers in the file: fb asked" "$(asked fb a.test)" 1
ok "stderr: the list is the fallback" \
	grep -qx "dnsfwd: upstreams: $FB" "$DNSFWD_ERR"

stage "$T/.new" 'search example.test' 'nameserver 127.0.12.1'
dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/.new $RC" -u 192.0.2.1 -d 3000
within "the file gets a server: it answers within 100 ms" 100
: >"$T/fb.log"
q b.test
eq "the file's server answers" "$RCODE $ANSWER" "NOERROR 192.0.2.1"
eq "the fallback is no longer asked" "$(asked fb)" 0
eq "stderr: the list is the file's server alone" \
	"$(grep 'upstreams:' "$DNSFWD_ERR" | tail -n 1)" \
	"dnsfwd: upstreams: 127.0.12.1#53"

put "$RC" '# servers gone again'
dq 127.0.0.1 "$DNSFWD_PORT" -d 500 -i 20
eq "servers gone again: the last good list (up1) answers" "$(dq_keys)" \
	192.0.2.1
eq "servers gone again: the fallback is still not asked" "$(asked fb)" 0
stop_dnsfwd

# ---- no file at all at start -------------------------------------------------------
RC=$T/missing/resolv.conf
start_dnsfwd -r "$RC" -f "$FB"
: >"$T/fb.log"
q c.test +time=8
eq "no file: the fallback answers" "$RCODE $ANSWER" "NOERROR 192.0.2.99"
lt "no file: at once, not held (${MS} ms)" "$MS" 1000
mkdir "$T/missing"
stage "$T/.new" 'nameserver 127.0.12.1'
dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/.new $RC" -u 192.0.2.1 -d 3000
within "no file, then the file: its server answers within 100 ms" 100
: >"$T/fb.log"
q d.test
eq "no file, then the file: the fallback is no longer asked" \
	"$ANSWER $(asked fb)" "192.0.2.1 0"

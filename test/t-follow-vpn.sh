#!/usr/bin/env bash
# t-follow-vpn.sh: a VPN comes up and goes down.  The file names the public
# resolver; the VPN client adds its own resolver as the first nameserver.
# The VPN resolver answers the internal names and NXDOMAIN for the rest;
# the public one answers public names and NXDOMAIN for internal ones.  With
# the sequential policy both kinds of names resolve while the VPN is up; when
# it goes down, internal names are NXDOMAIN again.  The answers cached
# before each change do not hide it.  Addresses: 127.0.6.x.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
follow_init 127.0.6

start_fakeup_at pub 127.0.6.1 \
	'*.corp.example nxdomain' \
	'* answer 192.0.2.1'
start_fakeup_at vpn 127.0.6.2 \
	'*.corp.example answer 10.0.0.2' \
	'* nxdomain'
RC=$T/resolv.conf
printf '%s\n' 'nameserver 127.0.6.1' >"$RC"
start_dnsfwd -r "$RC"

# ---- VPN down ----------------------------------------------------------------
q wiki.corp.example
eq "down: internal name is NXDOMAIN" "$RCODE" NXDOMAIN
q www.example.org
eq "down: public name from pub" "$RCODE $ANSWER" "NOERROR 192.0.2.1"
routed "down: only pub asked" wiki.corp.example "pub=1 vpn=0"

# ---- VPN up: a new first nameserver ------------------------------------------
stage "$T/.vpn" '# added by openvpn' 'nameserver 127.0.6.2' \
	'nameserver 127.0.6.1'
dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/.vpn $RC" -u 10.0.0.2 -d 3000 \
	-n 'up%d.corp.example'
within "up: internal names resolve within 100 ms" 100
eq "up: the new list, VPN first" \
	"$(grep 'upstreams:' "$DNSFWD_ERR" | tail -n 1)" \
	"dnsfwd: upstreams: 127.0.6.2#53 127.0.6.1#53"

q wiki.corp.example
eq "up: the NXDOMAIN cached before is gone: 10.0.0.2" \
	"$RCODE $ANSWER" "NOERROR 10.0.0.2"
routed "up: wiki asked of vpn now (of pub only before)" wiki.corp.example \
	"pub=1 vpn=1"
q mail.corp.example
eq "up: another internal name" "$RCODE $ANSWER" "NOERROR 10.0.0.2"
routed "up: ... from vpn, pub not asked" mail.corp.example "pub=0 vpn=1"
q news.example.org
eq "up: public name still resolves" "$RCODE $ANSWER" "NOERROR 192.0.2.1"
routed "up: public name: vpn said NXDOMAIN, then pub answered" \
	news.example.org "pub=1 vpn=1"

# ---- VPN down: the first nameserver removed ----------------------------------
stage "$T/.novpn" 'nameserver 127.0.6.1'
dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/.novpn $RC" -u NXDOMAIN -d 3000 \
	-n 'down%d.corp.example'
within "down again: internal names NXDOMAIN within 100 ms" 100
eq "down again: the list is pub alone" \
	"$(grep 'upstreams:' "$DNSFWD_ERR" | tail -n 1)" \
	"dnsfwd: upstreams: 127.0.6.1#53"
q mail.corp.example
eq "down again: the cached 10.0.0.2 is gone: NXDOMAIN" "$RCODE" NXDOMAIN
routed "down again: asked of pub, not vpn" mail.corp.example "pub=1 vpn=1"
: >"$T/vpn.log"
q intranet.corp.example
eq "down again: a new internal name is NXDOMAIN" "$RCODE" NXDOMAIN
q www2.example.org
eq "down again: public names from pub" "$RCODE $ANSWER" "NOERROR 192.0.2.1"
eq "down again: vpn no longer asked at all" "$(asked vpn)" 0

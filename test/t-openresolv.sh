#!/usr/bin/env bash
# t-openresolv.sh: split DNS driven by the real openresolv, as wg-quick and
# openvpn drive it on a host without systemd-resolved.  Debian's openresolv
# package is extracted (dpkg-deb -x; installing it would take over this
# machine's /etc/resolv.conf) and run, unmodified, in a private mount
# namespace whose /etc/resolvconf.conf, /sbin/resolvconf and
# /lib/resolvconf are the test's own (read-only overlays); its dnsmasq
# subscriber writes the test's files, its reload command is `true`.
# openresolv counts 127/8 nameservers as local and leaves them out, so the
# resolvers live in a network namespace of the test's own, on 10.51.0.1
# (public) and 10.51.0.2 (the VPN's), with dnsfwd and the client beside
# them.  `resolvconf -a wg0` then `resolvconf -d wg0`: intranet names go to
# the VPN's resolver while it is up and nowhere else after, public names to
# the public one throughout, and dnsfwd is never signalled.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need unshare util-linux
need dpkg-deb dpkg
need_netns
deb=${OPENRESOLV_DEB:-$(ls /var/cache/apt/archives/openresolv_*.deb \
	2>/dev/null | tail -n 1)}
if [ ! -f "$deb" ]; then
	echo "skip - $SCRIPT: no openresolv package to extract" \
	    "(apt-get install --download-only openresolv)"
	exit 0
fi

# ---- openresolv, extracted, configured for the test ----------------------------
dpkg-deb -x "$deb" "$T/or" || { fail "dpkg-deb -x $deb"; exit 1; }
mkdir -p "$T/or-etc" "$T/state" "$T/out"
cat >"$T/or-etc/resolvconf.conf" <<EOF
# the test's own: nothing of the machine's is written
resolv_conf=$T/libc-resolv.conf
state_dir=$T/state
# the two lines of the README's recipe
dnsmasq_conf=$T/out/servers.conf
dnsmasq_resolv=$T/out/resolv.conf
# the VPN's server answers for its domains only (wg-quick's split tunnel)
private_interfaces="wg*"
# dnsfwd follows the files: nothing to restart
dnsmasq_restart=true
EOF
cat >"$T/or-run.sh" <<EOF
set -e
mount -t overlay overlay -o lowerdir=$T/or/lib:/usr/lib /usr/lib
mount -t overlay overlay -o lowerdir=$T/or/sbin:/usr/sbin /usr/sbin
mount -t overlay overlay -o lowerdir=$T/or-etc:/etc /etc
[ "\$(readlink -f /sbin/resolvconf)" = /usr/sbin/resolvconf ]
"\$@"
EOF

# resolvconf ARGS... (stdin: the interface's resolv.conf lines): the
# package's script in its private mount namespace.
resolvconf()
{
	timeout -k 2 30 unshare -m --propagation private \
	    sh "$T/or-run.sh" /sbin/resolvconf "$@" 2>>"$T/or.err"
}

NS=dnsfwd-t-$$-or
ip netns add "$NS" && track_netns "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add 10.51.0.1/32 dev lo
ip -n "$NS" addr add 10.51.0.2/32 dev lo
FAKEUP_WRAP="ip netns exec $NS"
start_fakeup_at()
{
	fakeup_at "$1" "$2:53" "${@:3}"
}
start_fakeup_at pub 10.51.0.1 \
	'*.corp.example nxdomain' \
	'* answer 192.0.2.1'
start_fakeup_at vpn 10.51.0.2 \
	'*.corp.example answer 10.0.0.2' \
	'* nxdomain'

# ---- the uplink: eth0's resolver ---------------------------------------------------
printf 'nameserver 10.51.0.1\n' | resolvconf -a eth0
ok "openresolv ran (resolvconf -a eth0)" test -s "$T/out/resolv.conf"
ok "... its dnsmasq subscriber wrote the uplink's server" \
	grep -qx 'nameserver 10.51.0.1' "$T/out/resolv.conf"
[ -s "$T/or.err" ] && diag "openresolv said: $(cat "$T/or.err")"

DNSFWD_WRAP="ip netns exec $NS ${DNSFWD_WRAP:-}" start_dnsfwd -r "$T/out/resolv.conf" \
	--servers-file "$T/out/servers.conf"
QWRAP="ip netns exec $NS"
wait_for 10 grep -q '^dnsfwd: upstreams: 10.51.0.1#53$' "$DNSFWD_ERR"
q wiki.corp.example
eq "VPN down: the intranet name is the public resolver's NXDOMAIN" \
	"$RCODE" NXDOMAIN
q www.example.org
eq "VPN down: public names resolve" "$ANSWER" 192.0.2.1

# ---- wg-quick up: resolvconf -a wg0 (its DNS= and a search domain) -----------
printf 'search corp.example\nnameserver 10.51.0.2\n' | resolvconf -a wg0
ok "wg0 up: openresolv wrote the split-DNS line" \
	grep -qx 'server=/corp.example/10.51.0.2' "$T/out/servers.conf"
ok "wg0 up: intranet names answered by the VPN's resolver" wait_for 10 \
	answers wiki.corp.example 10.0.0.2
routed "wg0 up: ... asked of it (after the cached NXDOMAIN expired)" \
	wiki.corp.example "pub=1 vpn=1"
q mail.corp.example
eq "wg0 up: another intranet name" "$ANSWER" 10.0.0.2
routed "wg0 up: ... never sent to the public resolver (no leak)" \
	mail.corp.example "pub=0 vpn=1"
q news.example.org
eq "wg0 up: public names still from the public resolver" "$ANSWER" \
	192.0.2.1
routed "wg0 up: ... which the VPN's resolver never sees" news.example.org \
	"pub=1 vpn=0"
q mail.corp.example +tcp
eq "wg0 up: TCP too" "$ANSWER" 10.0.0.2

# ---- wg-quick down: resolvconf -d wg0 -------------------------------------------
printf '' | resolvconf -d wg0
ok "wg0 down: openresolv removed the line" bash -c \
	"! grep -q 'server=' '$T/out/servers.conf'"
_nxdomain()
{
	q "$1"
	[ "$RCODE" = NXDOMAIN ]
}
ok "wg0 down: intranet names are the public resolver's NXDOMAIN again" \
	wait_for 10 _nxdomain db.corp.example
q files.corp.example
eq "wg0 down: a new intranet name: NXDOMAIN" "$RCODE" NXDOMAIN
routed "wg0 down: ... not sent to the VPN's resolver" files.corp.example \
	"pub=1 vpn=0"
q www2.example.org
eq "wg0 down: public names as before" "$ANSWER" 192.0.2.1
eq "no signal was sent to dnsfwd (it followed the files)" \
	"$(grep -c 'SIGHUP' "$DNSFWD_ERR")" 0
ok "dnsfwd alive" _alive "$DNSFWD_PID"
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

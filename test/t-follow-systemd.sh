#!/usr/bin/env bash
# t-follow-systemd.sh: the default paths (no -r), in a private mount and
# network namespace, so that the host is not touched and nothing of it is
# asked (a stub of its own on 127.0.0.53 included).
#  1. systemd-resolved's layout: /etc/resolv.conf holds only the stub
#     (nameserver 127.0.0.53) and /run/systemd/resolve/resolv.conf the real
#     servers.  The stub is the upstream, so its routing holds (a
#     split-tunnel name only it knows is answered); the uplink servers are
#     its failover: never asked while the stub answers, negatively, with
#     SERVFAIL or not,
#     asked at once when it stops; systemd-resolved's atomic rewrite of
#     their file is followed.
#  2. No /run/systemd/resolve: dnsfwd follows /etc/resolv.conf, here a
#     bind-mounted file as in a container, also when it is edited in place
#     (as Docker and Podman do to a container's /etc/resolv.conf).
#  3. Neither file at start (early boot): both are watched; a query is held
#     until /etc/resolv.conf appears, naming the stub that has just come
#     up, which answers it; the uplinks join as failover when resolved
#     writes its file.
# Afterwards the host's /etc/resolv.conf and /run are as they were.
# Addresses: 127.0.4.x (see lib-follow.sh).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
need unshare util-linux
need mount mount
need_netns
follow_init 127.0.4
NS=dnsfwd-t-$$-sd
new_netns "$NS"
FAKEUP_WRAP="ip netns exec $NS"
QWRAP="ip netns exec $NS"

SYSD_DIR=/run/systemd/resolve
host_state()
{
	printf '%s\n' "$(sha256sum /etc/resolv.conf 2>&1)" \
	    "$(stat -c '%F %i %s %Y %Z' /etc/resolv.conf 2>&1)" \
	    "$(readlink /etc/resolv.conf)" \
	    "$(stat -c '%F %i' /run/systemd "$SYSD_DIR" 2>&1)"
}
host_before=$(host_state)

# The namespace: tmpfs over /run/systemd (or /run when it is missing), so
# that /run/systemd/resolve can be made without touching the host's /run;
# in "systemd" mode $T/sysd is bind-mounted there.  Then $T/etc.conf is
# bind-mounted over /etc/resolv.conf (over its target when it is a
# symlink; a target missing under the tmpfs is made there first).  In
# "none" mode a tmpfs hides all of /etc instead.  Exit 97: this host's
# layout cannot be faked.
cat >"$T/ns-setup.sh" <<'EOF'
set -eu
mode=$1 real=$2
shift 2
mount --make-rprivate /
hide=/run/systemd
[ -d "$hide" ] || hide=/run
[ -d "$hide" ] || exit 97
mount -t tmpfs -o mode=755 dnsfwd-test "$hide"
if [ "$mode" = systemd ]; then
	mkdir -p /run/systemd/resolve
	mount --bind "$T/sysd" /run/systemd/resolve
elif [ "$mode" = none ]; then
	mount -t tmpfs -o mode=755 dnsfwd-test /etc
	exec ${NS_WRAP:-} "$real" "$@"
fi
target=$(readlink -m /etc/resolv.conf) || exit 97
if [ ! -f "$target" ]; then
	case $target in
	"$hide"/*) mkdir -p "$(dirname "$target")"; : >"$target" ;;
	*) exit 97 ;;
	esac
fi
mount --bind "$T/etc.conf" "$target"
exec ${NS_WRAP:-} "$real" "$@"
EOF
mkdir "$T/sysd"
printf '%s\n' '# This is /run/systemd/resolve/stub-resolv.conf' \
	'nameserver 127.0.0.53' 'options edns0 trust-ad' 'search .' \
	>"$T/sysd/stub-resolv.conf"
printf '%s\n' '# This is /run/systemd/resolve/resolv.conf' \
	'nameserver 127.0.0.53' 'nameserver 127.0.4.1' 'search .' \
	>"$T/sysd/resolv.conf"
# /etc/resolv.conf pointing at the stub, as a plain file.
printf '%s\n' 'nameserver 127.0.0.53' >"$T/etc.conf"
export T
export NS_WRAP=${DNSFWD_WRAP:-}	# the wrapper goes inside the namespace
DNSFWD_WRAP=

# ns_dnsfwd MODE: make DNSFWD a wrapper that starts the real dnsfwd in a
# new mount namespace set up for MODE; the PID stays the same through the
# execs, so lib.sh tracks and stops dnsfwd itself.
REAL_DNSFWD=$DNSFWD
ns_dnsfwd()
{
	printf '#!/bin/sh\nexec ip netns exec %s unshare -m --propagation private /bin/bash %s %s %s "$@"\n' \
	    "$NS" "$T/ns-setup.sh" "$1" "$REAL_DNSFWD" >"$T/dnsfwd-$1"
	chmod +x "$T/dnsfwd-$1"
	DNSFWD=$T/dnsfwd-$1
}

for mode in etc systemd; do
	ns_dnsfwd "$mode"
	for try in 1 2 3; do	# a namespace just made may not be ready
		"$DNSFWD" -V >"$T/probe.out" 2>&1
		st=$?
		[ "$st" -eq 0 ] || [ "$st" -eq 97 ] && break
		sleep 0.2
	done
	[ "$st" -eq 0 ] || break
done
if [ "$st" -eq 97 ]; then
	printf 'skip - %s: cannot fake this host'"'"'s resolv.conf layout\n' \
	    "$SCRIPT"
	exit 0
elif [ "$st" -ne 0 ]; then
	printf 'skip - %s: no private mount namespace here (status %s: %s)\n' \
	    "$SCRIPT" "$st" "$(head -n 1 "$T/probe.out")"
	exit 0
fi

start_fakeup_at up1 127.0.4.1 '* answer 192.0.2.1'
start_fakeup_at up2 127.0.4.2 '* answer 192.0.2.2'
start_fakeup_at up3 127.0.4.3 '* answer 192.0.2.3'

# ---- 1. systemd-resolved ---------------------------------------------------
# The stub knows the VPN's split-tunnel name and the public ones; the
# uplink (up1) only public ones: it must never see a corp name.
fakeup_at stub 127.0.0.53:53 'wiki.corp.example answer 10.0.0.5' \
	'down.corp.example servfail' '*.corp.example nxdomain' \
	'* answer 192.0.2.53'
# shellcheck disable=SC2119  # no options: the default paths
start_dnsfwd
ok "systemd: the start line says what is followed and why" grep -qx \
	'dnsfwd: following /etc/resolv.conf (systemd-resolved stub; failover /run/systemd/resolve/resolv.conf)' \
	"$DNSFWD_ERR"
eq "systemd: the stub first, resolved's uplink its failover" \
	"$(grep 'upstreams:' "$DNSFWD_ERR" | tail -n 1)" \
	"dnsfwd: upstreams: 127.0.0.53#53 127.0.4.1#53 (failover)"
q wiki.corp.example
eq "systemd: a split-tunnel name only the stub knows is answered" \
	"$RCODE $ANSWER" "NOERROR 10.0.0.5"
q sd.test
eq "systemd: public names from the stub too" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.53"
q nosuch.corp.example
eq "systemd: the stub's NXDOMAIN is the answer" "$RCODE" NXDOMAIN
# rule 3b: resolved already tried every server it routes the name to
q down.corp.example
eq "systemd: the stub's SERVFAIL is final too" "$RCODE" SERVFAIL
eq "systemd: the uplink is never asked while the stub answers, SERVFAIL \
included (a VPN name never leaks to it)" "$(asked up1)" 0
stop_fakeup stub
q sd2.test
eq "systemd: the stub stopped: the uplink answers" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.1"
lt "systemd: ... at once (the stub's port is closed) (${MS} ms)" "$MS" 500
q sd3.test
lt "systemd: the stub is down: no wait on it either (${MS} ms)" "$MS" 500

# systemd-resolved rewrites its file with a temporary file and rename(2).
stage "$T/sysd/.#resolv.confAbCdEf" '# This is /run/systemd/resolve/resolv.conf' \
	'nameserver 127.0.4.2' 'search .'
dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/sysd/.#resolv.confAbCdEf $T/sysd/resolv.conf" \
	-u 192.0.2.2 -d 3000
within "systemd: its rewrite is followed, up2 answers within 100 ms" 100
eq "systemd: no SERVFAIL meanwhile" "$(dq_count SERVFAIL)" 0
q sd4.test
eq "systemd: then only up2 is asked" \
	"$(asked up1 sd4.test) $(asked up2 sd4.test)" "0 1"
stop_dnsfwd
eq "systemd: dnsfwd exits 0 on SIGTERM" "$DNSFWD_STATUS" 0

# ---- 2. no /run/systemd/resolve: /etc/resolv.conf ---------------------------
printf '%s\n' 'nameserver 127.0.4.3' >"$T/etc.conf"
ns_dnsfwd etc
# shellcheck disable=SC2119  # no options: the default paths
start_dnsfwd
q etc.test
eq "no systemd: answered by the server of /etc/resolv.conf" \
	"$RCODE $ANSWER" "NOERROR 192.0.2.3"
eq "no systemd: upstreams are up3" \
	"$(grep 'upstreams:' "$DNSFWD_ERR" | tail -n 1)" \
	"dnsfwd: upstreams: 127.0.4.3#53"

# Docker and Podman rewrite a container's bind-mounted /etc/resolv.conf in
# place, from outside (a rename over a mount point is not possible).
stage "$T/new" 'nameserver 127.0.4.1'
dq 127.0.0.1 "$DNSFWD_PORT" -W "$T/etc.conf $T/new" -u 192.0.2.1 -d 3000
within "no systemd: an in-place edit of the bind-mounted file is followed" 100
stop_dnsfwd

# ---- 3. neither file at start ------------------------------------------------
# The test reaches dnsfwd's private /etc and /run through /proc/PID/root.
ns_dnsfwd none
# shellcheck disable=SC2119  # no options: the default paths
start_dnsfwd
settled
NSROOT=/proc/$DNSFWD_PID/root
ok "neither: the namespace has no /etc/resolv.conf" \
	test ! -e "$NSROOT/etc/resolv.conf" -a ! -e "$NSROOT$SYSD_DIR"
ok "neither: stderr says what it waits for" \
	grep -q 'waiting for /etc/resolv.conf to appear' "$DNSFWD_ERR"
(q boot.test +time=9; printf '%s|%s|%s\n' "$RCODE" "$ANSWER" "$MS" \
    >"$T/boot.tmp"; mv "$T/boot.tmp" "$T/boot.res") &
bg=$!
track_pid "$bg"
sleep 1			# the scenario: resolved starts, its stub first ...
fakeup_at stub 127.0.0.53:53 '* answer 192.0.2.53'
printf '%s\n' 'nameserver 127.0.0.53' >"$NSROOT/etc/resolv.conf"
wait_for 10 test -e "$T/boot.res"
IFS='|' read -r rc ans ms <"$T/boot.res" 2>/dev/null
eq "neither: the held query is answered by the stub once it is named" \
	"${rc-} ${ans-}" "NOERROR 192.0.2.53"
lt "neither: ... at about 1 s, before the 5 s hold ends (${ms-} ms)" \
	"${ms-}" 2500
wait "$bg" 2>/dev/null
_untrack_pid "$bg"
mkdir -p "$NSROOT$SYSD_DIR"	# ... then its file of uplinks
printf '%s\n' 'nameserver 127.0.4.2' >"$NSROOT$SYSD_DIR/.tmp"
mv "$NSROOT$SYSD_DIR/.tmp" "$NSROOT$SYSD_DIR/resolv.conf"
ok "neither: resolved's uplinks join as the stub's failover" wait_for 10 \
	grep -q 'upstreams: 127.0.0.53#53 127.0.4.2#53 (failover)$' \
	"$DNSFWD_ERR"
q boot2.test
eq "neither: later queries go to the stub" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.53"
stop_fakeup stub
stop_dnsfwd

# ---- the host ----------------------------------------------------------------
eq "host: /etc/resolv.conf and /run/systemd untouched" "$(host_state)" \
	"$host_before"
eq "host: no mount of ours is visible" \
	"$(grep -c "$T" /proc/self/mountinfo)" 0

#!/usr/bin/env bash
# t-follow-systemd.sh: the default paths (no -r), in a private mount
# namespace so that the host is not touched.
#  1. systemd-resolved's layout: /etc/resolv.conf holds only the stub
#     (nameserver 127.0.0.53) and /run/systemd/resolve/resolv.conf the real
#     servers.  dnsfwd follows the systemd file, uses its server, skips the
#     stub, and follows systemd-resolved's atomic rewrite of it.
#  2. No /run/systemd/resolve: dnsfwd follows /etc/resolv.conf, here a
#     bind-mounted file as in a container, also when it is edited in place
#     (as Docker and Podman do to a container's /etc/resolv.conf).
#  3. Neither file at start (early boot): both are watched; a query is held
#     while /etc/resolv.conf appears with only the stub, and answered from
#     /run/systemd/resolve/resolv.conf once systemd-resolved writes it.
# Afterwards the host's /etc/resolv.conf and /run are as they were.
# Addresses: 127.0.4.x (see lib-follow.sh).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
need unshare util-linux
need mount mount
follow_init 127.0.4

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
	printf '#!/bin/sh\nexec unshare -m --propagation private /bin/bash %s %s %s "$@"\n' \
	    "$T/ns-setup.sh" "$1" "$REAL_DNSFWD" >"$T/dnsfwd-$1"
	chmod +x "$T/dnsfwd-$1"
	DNSFWD=$T/dnsfwd-$1
}

for mode in etc systemd; do
	ns_dnsfwd "$mode"
	"$DNSFWD" -V >"$T/probe.out" 2>&1
	st=$?
	[ "$st" -eq 0 ] || break
done
if [ "$st" -eq 97 ]; then
	printf 'skip - %s: cannot fake this host'"'"'s resolv.conf layout\n' \
	    "$SCRIPT"
	exit 0
elif [ "$st" -ne 0 ]; then
	printf 'skip - %s: no private mount namespace here (%s)\n' \
	    "$SCRIPT" "$(head -n 1 "$T/probe.out")"
	exit 0
fi

start_fakeup_at up1 127.0.4.1 '* answer 192.0.2.1'
start_fakeup_at up2 127.0.4.2 '* answer 192.0.2.2'
start_fakeup_at up3 127.0.4.3 '* answer 192.0.2.3'

# ---- 1. systemd-resolved ---------------------------------------------------
# shellcheck disable=SC2119  # no options: the default paths
start_dnsfwd
q sd.test
eq "systemd: answered by the server of /run/systemd/resolve/resolv.conf" \
	"$RCODE $ANSWER" "NOERROR 192.0.2.1"
eq "systemd: up1 asked" "$(asked up1 sd.test)" 1
lt "systemd: at once, not held (${MS} ms)" "$MS" 500
eq "systemd: upstreams are up1 alone" \
	"$(grep 'upstreams:' "$DNSFWD_ERR" | tail -n 1)" \
	"dnsfwd: upstreams: 127.0.4.1#53"
ok "systemd: the stub 127.0.0.53 skipped, said on stderr" grep -q \
	'^dnsfwd: /run/systemd/resolve/resolv.conf: skipping nameserver 127\.0\.0\.53#53' \
	"$DNSFWD_ERR"
ok "systemd: /etc/resolv.conf not read" \
	test "$(grep -c '/etc/resolv.conf' "$DNSFWD_ERR")" -eq 0

# systemd-resolved rewrites its file with a temporary file and rename(2).
stage "$T/sysd/.#resolv.confAbCdEf" '# This is /run/systemd/resolve/resolv.conf' \
	'nameserver 127.0.4.2' 'search .'
dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/sysd/.#resolv.confAbCdEf $T/sysd/resolv.conf" \
	-u 192.0.2.2 -d 3000
within "systemd: its rewrite is followed, up2 answers within 100 ms" 100
eq "systemd: no SERVFAIL meanwhile" "$(dq_count SERVFAIL)" 0
q sd2.test
eq "systemd: then only up2 is asked" \
	"$(asked up1 sd2.test) $(asked up2 sd2.test)" "0 1"
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
ok "neither: stderr says queries are held" \
	grep -q 'no upstream yet; holding queries' "$DNSFWD_ERR"
(q boot.test +time=9; printf '%s|%s|%s\n' "$RCODE" "$ANSWER" "$MS" \
    >"$T/boot.tmp"; mv "$T/boot.tmp" "$T/boot.res") &
bg=$!
track_pid "$bg"
sleep 0.5		# the scenario: the stub file comes first ...
printf '%s\n' 'nameserver 127.0.0.53' >"$NSROOT/etc/resolv.conf"
sleep 1			# ... and systemd-resolved's file 1 s later
ok "neither: with only the stub in /etc/resolv.conf the query is held" \
	test ! -e "$T/boot.res"
mkdir -p "$NSROOT$SYSD_DIR"
printf '%s\n' 'nameserver 127.0.4.2' >"$NSROOT$SYSD_DIR/.tmp"
mv "$NSROOT$SYSD_DIR/.tmp" "$NSROOT$SYSD_DIR/resolv.conf"
wait_for 50 test -e "$T/boot.res"
IFS='|' read -r rc ans ms <"$T/boot.res" 2>/dev/null
eq "neither: the held query is answered from the systemd file (up2)" \
	"${rc-} ${ans-}" "NOERROR 192.0.2.2"
lt "neither: ... at about 1.5 s, before the 5 s hold ends (${ms-} ms)" \
	"${ms-}" 2500
wait "$bg" 2>/dev/null
_untrack_pid "$bg"
q boot2.test
eq "neither: later queries go to up2" "$RCODE $ANSWER" "NOERROR 192.0.2.2"
stop_dnsfwd

# ---- the host ----------------------------------------------------------------
eq "host: /etc/resolv.conf and /run/systemd untouched" "$(host_state)" \
	"$host_before"
eq "host: no mount of ours is visible" \
	"$(grep -c "$T" /proc/self/mountinfo)" 0

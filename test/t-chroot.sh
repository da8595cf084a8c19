#!/usr/bin/env bash
# t-chroot.sh: the `make static` binary needs nothing but itself and the
# file it follows.  It is built from a copy of the tree, put in an empty
# directory with one resolv.conf, and run there with chroot(8): it starts,
# says where it listens, and forwards over UDP and TCP to the nameserver the
# file names (up1 on the host's loopback; chroot keeps the network
# namespace).  The file is then replaced inside the chroot and up2 answers:
# inotify on the directory needs nothing either.  -u UID:GID needs no
# /etc/passwd; -u NAME does and says so; --netns needs /proc and says so.
# Addresses: 127.0.30.x (see lib-follow.sh).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
# It builds its own binary, so it runs once: in the pass for ./dnsfwd.
if [ -n "${DNSFWD_WRAP:-}" ] || [ "$DNSFWD" != "$ROOT/dnsfwd" ]; then
	printf '# %s: the make static build is tested once, %s\n' \
	    "$SCRIPT" "in the pass for ./dnsfwd"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	printf 'skip - %s: chroot needs root\n' "$SCRIPT"
	exit 0
fi
need musl-gcc musl-tools
need chroot coreutils
need dig bind9-dnsutils
follow_init 127.0.30

# Build `make static` from a copy, so ./dnsfwd is left alone.
mkdir "$T/src" "$T/root"
cp "$ROOT/Makefile" "$ROOT/dnsfwd.c" "$ROOT/dnsfwd.h" "$T/src/"
if ! make -s -C "$T/src" static >"$T/build.log" 2>&1; then
	fail "make static" "$(tail -n 20 "$T/build.log")"
	exit 1
fi
pass "make static"
cp "$T/src/dnsfwd" "$T/root/dnsfwd"
CH=$T/root
printf '%s\n' 'nameserver 127.0.30.1' >"$CH/resolv.conf"
eq "the chroot holds only the binary and resolv.conf" \
	"$(find "$CH" -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
	    paste -sd ' ' -)" "dnsfwd resolv.conf"

start_fakeup_at up1 127.0.30.1 '* answer 192.0.2.1'
start_fakeup_at up2 127.0.30.2 '* answer 192.0.2.2'

# start_dnsfwd runs $DNSFWD_WRAP $DNSFWD; chroot execs, so the PID is
# dnsfwd's own.
# shellcheck disable=SC2034  # read by start_dnsfwd
DNSFWD=/dnsfwd
DNSFWD_WRAP="chroot $CH"
start_dnsfwd -r /resolv.conf
pass "starts in the empty chroot, says where it listens"
eq "reads /resolv.conf inside the chroot" \
	"$(grep 'upstreams:' "$DNSFWD_ERR" | tail -n 1)" \
	"dnsfwd: upstreams: 127.0.30.1#53"
q a.test
eq "UDP: answered through the file's nameserver" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.1"
eq "UDP: up1 was asked" "$(asked up1 a.test)" 1
q b.test +tcp
eq "TCP: answered through the file's nameserver" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.1"

# The file is replaced by rename inside the chroot, as resolvconf does.
put "$CH/resolv.conf" 'nameserver 127.0.30.2'
if wait_for 10 grep -q 'upstreams: 127.0.30.2#53' "$DNSFWD_ERR"; then
	pass "follows the file inside the chroot"
else
	fail "follows the file inside the chroot" "$(cat "$DNSFWD_ERR")"
fi
q c.test
eq "after the change: up2 answers" "$RCODE $ANSWER" "NOERROR 192.0.2.2"
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

start_dnsfwd -r /resolv.conf -u 65534:65534
q d.test
eq "-u 65534:65534 needs no /etc/passwd: answered" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.2"
stop_dnsfwd

# What the empty chroot lacks, said in one line each.
timeout 5 chroot "$CH" /dnsfwd -l 127.0.0.1:0 -r /resolv.conf -u nobody \
	2>"$T/user.err"
rc=$?
eq "-u nobody without /etc/passwd: exit 1" "$rc" 1
eq "-u nobody without /etc/passwd: the reason" \
	"$(tail -n 1 "$T/user.err")" \
	'dnsfwd: -u: no user "nobody"'
timeout 5 chroot "$CH" /dnsfwd -N /netns -l 127.0.0.1:0 -r /resolv.conf \
	2>"$T/netns.err"
rc=$?
eq "--netns without /proc: exit 2" "$rc" 2
eq "--netns without /proc: the reason" "$(tail -n 1 "$T/netns.err")" \
	"dnsfwd: /proc/self/ns/net: No such file or directory"

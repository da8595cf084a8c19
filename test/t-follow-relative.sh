#!/usr/bin/env bash
# t-follow-relative.sh: "-r resolv.conf", a path relative to the directory
# dnsfwd was started in (quick ad-hoc testing: "cd /tmp/x && dnsfwd -r
# resolv.conf").  It is followed like an absolute path: with inotify (no
# polling message), an atomic rewrite and an in-place edit each taking
# effect within 100 ms.  The same for "-r sub/resolv.conf".
# Addresses: 127.0.14.x (see lib-follow.sh).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
follow_init 127.0.14

for i in 1 2 3; do
	start_fakeup_at "up$i" "127.0.14.$i" "* answer 192.0.2.$i"
done
mkdir -p "$T/work/sub"

# relative FILE: start dnsfwd in $T/work with -r FILE; FILE names up1.
relative()
{
	local rel=$1 f=$T/work/$1

	printf '%s\n' 'nameserver 127.0.14.1' >"$f"
	cd "$T/work" || exit 1
	start_dnsfwd -r "$rel"
	cd "$ROOT" || exit 1
	settled
	ok "-r $rel: followed with inotify, not polled" \
	    test "$(errcount 'poll')" -eq 0
	q "a.test"
	eq "-r $rel: up1 answers" "$ANSWER" 192.0.2.1

	stage "$T/work/.new" 'nameserver 127.0.14.2'
	dq 127.0.0.1 "$DNSFWD_PORT" -R "$T/work/.new $f" -u 192.0.2.2 -d 3000
	within "-r $rel: atomic rewrite: up2 answers within 100 ms" 100

	stage "$T/new" 'nameserver 127.0.14.3'
	dq 127.0.0.1 "$DNSFWD_PORT" -W "$f $T/new" -u 192.0.2.3 -d 3000
	within "-r $rel: in-place edit: up3 answers within 100 ms" 100
	stop_dnsfwd
}

relative resolv.conf
relative sub/resolv.conf

#!/usr/bin/env bash
# t-follow-fifo.sh: a followed file replaced by something that is not a
# regular file.  A FIFO (no writer: open or read would block), a directory
# or a socket in place of the resolv file: dnsfwd keeps answering from the
# last good list, says once what the file is, and takes the next regular
# file at once.  A hosts file replaced by a directory or a FIFO keeps its
# names (it is not read as empty).  Addresses: 127.0.15.x.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib-follow.sh
. "$(dirname "$0")/lib-follow.sh"
need dig bind9-dnsutils
need python3 python3
follow_init 127.0.15

start_fakeup_at up1 127.0.15.1 '* answer 192.0.2.1'
start_fakeup_at up2 127.0.15.2 '* answer 192.0.2.2'
RC=$T/resolv.conf
HOSTS=$T/hosts
printf 'nameserver 127.0.15.1\n' >"$RC"
printf '192.0.2.50 box.lan\n' >"$HOSTS"
start_dnsfwd -r "$RC" -H "$HOSTS"
q a.test
eq "start: up1" "$ANSWER" 192.0.2.1

# answers NAME IP: dnsfwd answers NAME with IP (within 2 s).
answers()
{
	wait_for 10 eval "[ \"\$(dig +short +tries=1 +time=1 @127.0.0.1 \
	    -p $DNSFWD_PORT $1)\" = $2 ]"
}

n=1
for kind in FIFO directory socket; do
	rm -f "$RC"
	case $kind in
	FIFO) mkfifo "$RC" ;;
	directory) mkdir "$RC" ;;
	socket) python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$RC" ;;
	esac
	wait_for 10 grep -q "resolv.conf: is a $kind, not a regular file" \
	    "$DNSFWD_ERR"
	eq "resolv file is a $kind: said, naming what it is" \
		"$(errcount "resolv.conf: is a $kind, not a regular file; keeping")" 1
	q "$kind.test"
	eq "resolv file is a $kind: up$n still answers" "$RCODE $ANSWER" \
		"NOERROR 192.0.2.$n"
	lt "resolv file is a $kind: at once (ms)" "$MS" 1000
	ok "resolv file is a $kind: dnsfwd alive" _alive "$DNSFWD_PID"
	# a regular file again, naming the other upstream: used at once
	n=$((3 - n))
	rm -rf "$RC"
	printf 'nameserver 127.0.15.%d\n' "$n" >"$RC.new"
	mv -f "$RC.new" "$RC"
	ok "after the $kind, a regular file naming up$n: used" \
		answers "after-$kind.test" "192.0.2.$n"
done

# the hosts file replaced by a directory, then a FIFO: names kept
for kind in directory FIFO; do
	rm -rf "$HOSTS"
	if [ "$kind" = FIFO ]; then mkfifo "$HOSTS"; else mkdir "$HOSTS"; fi
	wait_for 10 grep -q "hosts: is a $kind, not a regular file" \
	    "$DNSFWD_ERR"
	eq "hosts file is a $kind: said" \
		"$(errcount "hosts: is a $kind, not a regular file")" 1
	# a regular file again before the next kind
	rm -rf "$HOSTS"
	printf '192.0.2.50 box.lan\n' >"$HOSTS.new"
	mv -f "$HOSTS.new" "$HOSTS"
	q box.lan
	eq "hosts file is a $kind: its names kept" "$ANSWER" 192.0.2.50
	eq "hosts file is a $kind: not read as empty (no '0 names')" \
		"$(errcount 'hosts: 0 names')" 0
done
ok "dnsfwd alive at the end" _alive "$DNSFWD_PID"

#!/usr/bin/env bash
# t-user.sh: -u USER and -u UID:GID drop privileges after binding: dnsfwd
# runs as that user (all four uids and gids, no supplementary groups, no
# capabilities), still answers, and still follows its resolv and hosts
# files; -u with an unknown user is a usage error (exit 1).  Root only.
#
# resolv.conf carries no port, so the fake upstreams listen on port 53 of
# two loopback addresses of their own (127.X.Y.1 and .2, X.Y from the PID).
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
if [ "$(id -u)" -ne 0 ]; then
	echo "skip - $SCRIPT: needs root (-u)"
	exit 0
fi

# status_field PID NAME: the tab-separated values of NAME: in
# /proc/PID/status, joined by spaces.
status_field()
{
	sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s '\t ' ' ' |
		sed 's/ $//'
}

# run_dnsfwd ARGS...: run dnsfwd expecting it to exit at once (5 s at most);
# its status in RC, its stderr in ERR.
run_dnsfwd()
{
	# shellcheck disable=SC2086  # DNSFWD_WRAP is a command prefix
	timeout 5 ${DNSFWD_WRAP:-} "$DNSFWD" "$@" >"$T/run.out" 2>&1
	RC=$?
	ERR=$(cat "$T/run.out")
}

# followed DESC NAME WANT START_NS: poll NAME (fresh names NAME-1, -2 ...,
# at most 100 queries, 5 s) until the answer is WANT; assert it is, soon
# after START_NS (the contract's 100 ms at 5x: a busy machine's dig alone
# can take that long; measure-follow.sh has the real figure).
followed()
{
	local desc=$1 name=$2 want=$3 t0=$4 i ts=0

	for ((i = 0; i < 100; i++)); do
		ts=$(date +%s%N)
		q "$i-$name"
		[ "$ANSWER" = "$want" ] && break
		[ $(((ts - t0) / 1000000)) -gt 5000 ] && break
	done
	eq "$desc: answer $want" "$ANSWER" "$want"
	lt "$desc: soon after the change (ms)" "$(((ts - t0) / 1000000))" 500
}

base=
for ((try = 0; try < 5; try++)); do
	cand=127.$(((($$ >> 8) + try * 37) % 200 + 20)).$(($$ % 250 + 1))
	if fakeup_try upa "$cand.1:53" '* answer 192.0.2.1'; then
		if fakeup_try upb "$cand.2:53" '* answer 192.0.2.2'; then
			base=$cand
			break
		fi
		stop_fakeup upa
	fi
done
if [ -z "$base" ]; then
	fail "fake upstreams on 127.X.Y.1:53 and .2:53" "$(cat "$T"/up*.err)"
	exit 1
fi

# Files in directories that the unprivileged user can read.
chmod 711 "$T"
mkdir -m 755 "$T/etc"
printf 'nameserver %s.1\n' "$base" >"$T/etc/resolv.conf"
printf '10.5.5.5 pre.hosts.test\n' >"$T/etc/hosts"
chmod 644 "$T/etc/resolv.conf" "$T/etc/hosts"

# set_resolv ADDR: point the resolv file at ADDR by an atomic rename.
set_resolv()
{
	printf 'nameserver %s\n' "$1" >"$T/etc/resolv.conf.tmp"
	chmod 644 "$T/etc/resolv.conf.tmp"
	mv -f "$T/etc/resolv.conf.tmp" "$T/etc/resolv.conf"
}

n=0
for user in nobody 65534:65534; do
	n=$((n + 1))
	if [ "$user" = nobody ]; then
		if ! getent passwd nobody >/dev/null; then
			skip "-u nobody: no user nobody" passwd
			continue
		fi
		uid=$(id -u nobody)
		gid=$(id -g nobody)
		listen=127.0.0.1:0
	else
		uid=65534
		gid=65534
		listen=$base.3:53	# a privileged port, bound before the drop
	fi
	set_resolv "$base.1"
	start_dnsfwd -l "$listen" -r "$T/etc/resolv.conf" -H "$T/etc/hosts" \
		-u "$user"
	pid=$DNSFWD_PID
	wait_for 10 grep -q "^Uid:[[:space:]]*${uid}[[:space:]]" \
		"/proc/$pid/status"
	eq "-u $user: Uid (real, effective, saved, fs)" \
		"$(status_field "$pid" Uid)" "$uid $uid $uid $uid"
	eq "-u $user: Gid (real, effective, saved, fs)" \
		"$(status_field "$pid" Gid)" "$gid $gid $gid $gid"
	eq "-u $user: no supplementary groups" "$(status_field "$pid" Groups)" ""
	eq "-u $user: no effective capabilities" \
		"$(status_field "$pid" CapEff)" 0000000000000000
	eq "-u $user: no permitted capabilities" \
		"$(status_field "$pid" CapPrm)" 0000000000000000

	q "first$n.user.test"
	eq "-u $user: answers through the resolv file's upstream" "$ANSWER" \
		192.0.2.1
	eq "-u $user: ... which was asked" "$(asked upa "first$n.user.test")" 1
	q "tcp$n.user.test" +tcp
	eq "-u $user: answers over TCP" "$ANSWER" 192.0.2.1
	q pre.hosts.test
	eq "-u $user: answers from the hosts file" "$ANSWER" 10.5.5.5

	t0=$(date +%s%N)
	set_resolv "$base.2"
	followed "-u $user: resolv file renamed over: the new upstream" \
		"renamed$n.user.test" 192.0.2.2 "$t0"
	t0=$(date +%s%N)
	printf 'nameserver %s.1\n' "$base" >"$T/etc/resolv.conf"
	followed "-u $user: resolv file edited in place: followed" \
		"inplace$n.user.test" 192.0.2.1 "$t0"
	t0=$(date +%s%N)
	printf '10.5.5.%d new%d.hosts.test\n' "$n" "$n" >>"$T/etc/hosts"
	for ((i = 0; i < 100; i++)); do
		q "new$n.hosts.test"
		[ "$ANSWER" = "10.5.5.$n" ] && break
		[ $((($(date +%s%N) - t0) / 1000000)) -gt 3000 ] && break
	done
	eq "-u $user: hosts file appended: followed" "$ANSWER" "10.5.5.$n"
	ok "-u $user: still running as uid $uid" grep -q \
		"^Uid:[[:space:]]*${uid}[[:space:]]" "/proc/$pid/status"
	stop_dnsfwd
	eq "-u $user: SIGTERM, exit 0" "$DNSFWD_STATUS" 0
done

# ---- errors -------------------------------------------------------------------
run_dnsfwd -R -l 127.0.0.1:0 -u nosuchuser-$$
eq "-u nosuchuser: exit 1" "$RC" 1
match "-u nosuchuser: the message names -u and the user" "$ERR" \
	"-u.*nosuchuser-$$"
run_dnsfwd -R -l 127.0.0.1:0 -u 12:abc
eq "-u 12:abc: exit 1" "$RC" 1
match "-u 12:abc: the message names -u" "$ERR" "-u.*12:abc"

#!/usr/bin/env bash
# t-readme.sh: a newcomer follows README.md literally.  Each fenced block
# marked "<!-- test: NAME -->" is taken from README.md as it is (so the
# README cannot drift from what works) and run, line by line, in a network
# namespace of this script's own (the "host": its resolv.conf names a fake
# upstream, its own 127.0.0.1 is free), with whatever the recipe assumes
# made there (the servers it names, a guest's address); a `dnsfwd` line is
# started in the background and waited for.  Then a client where the
# recipe's clients would be asks, and gets the answer the recipe promises.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need_netns

# block NAME: the lines of README.md's block marked NAME, comments dropped
block()
{
	awk -v want="<!-- test: $1 " '
		index($0, want) == 1 { found = 1; next }
		found && /^```/ { if (inside) exit; inside = 1; next }
		found && inside { sub(/[ \t]+#.*$/, ""); if ($0 !~ /^#/ && $0 != "") print }
	' "$ROOT/README.md"
}

HOST=dnsfwd-t-$$-rd
new_netns "$HOST"
ip -n "$HOST" addr add 10.0.0.53/32 dev lo
mkdir -p "/etc/netns/$HOST"
printf 'nameserver 10.0.0.53\n' >"/etc/netns/$HOST/resolv.conf"
in_host() { ip netns exec "$HOST" "$@"; }
FAKEUP_WRAP="ip netns exec $HOST"
fakeup_at public 10.0.0.53:53 '*.corp.example nxdomain' \
	'* answer 192.0.2.53'

# run NAME: run the block's lines in the host namespace; a line that starts
# dnsfwd (or ./dnsfwd) is started with start_dnsfwd (its words as given,
# quotes and all), the rest with bash there.
run()
{
	local line

	while IFS= read -r line; do
		line=${line%&}
		case $line in
		dnsfwd\ * | ./dnsfwd\ *)
			eval "set -- ${line#*dnsfwd }"
			# a pattern may match nothing yet: no listening line
			DNSFWD_LITERAL=1 DNSFWD_WANT=$(case $line in
			    *\**) echo 0 ;; *) echo 1 ;; esac) \
			    DNSFWD_WRAP="ip netns exec $HOST ${DNSFWD_WRAP:-}" start_dnsfwd "$@"
			# start-up over (its watches set): the sandbox is on
			wait_for 10 grep -q '^NoNewPrivs:[[:space:]]*1' \
			    "/proc/$DNSFWD_PID/status"
			;;
		dig\ *)
			RUN_OUT=$(in_host bash -c "$line" 2>&1)
			;;
		ip\ netns\ *)	# namespaces are made where all can see them
			bash -c "$line" || fail "README block $1: '$line' failed"
			;;
		*)
			in_host bash -c "$line" ||
			    fail "README block $1: '$line' failed"
			;;
		esac
	done < <(block "$1" | sed -n "${2:-1},${3:-\$}p")
}

ok "README.md has its blocks marked for this test" test \
	"$(grep -c '^<!-- test: ' "$ROOT/README.md")" -ge 8

# ---- Quick start: a first try with two static upstreams -----------------------
fakeup_at s11 127.0.0.11:53 '* answer 192.0.2.11'
fakeup_at s12 127.0.0.12:5353 '* answer 192.0.2.12'
run first-try
match "first try: the dig line is answered by the first upstream" \
	"$RUN_OUT" 'example\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.11'
stop_dnsfwd

# ---- a VM host ----------------------------------------------------------------------
track_netns vm1
run vm-host
ip -n vm1 link set lo up
ip -n vm1 addr add 10.0.1.1/24 dev lo
QWRAP="ip netns exec vm1" DNSFWD_ADDR=10.0.1.1 DNSFWD_PORT=53 \
	q www.example.org
eq "VM host: the guest's gateway answers, from the host's resolv.conf" \
	"$ANSWER" 192.0.2.53
eq "VM host: dnsfwd dropped to nobody" "$(awk '/^Uid:/ { print $2 }' \
	"/proc/$DNSFWD_PID/status")" 65534
stop_dnsfwd
ip netns del vm1

# ---- an allowlist ------------------------------------------------------------------
track_netns runner1
ip netns add runner1
ip -n runner1 link set lo up
ip -n runner1 addr add 10.1.0.1/24 dev lo
run allowlist
QWRAP="ip netns exec runner1" DNSFWD_ADDR=10.1.0.1 DNSFWD_PORT=53 \
	q www.allowed.example
eq "allowlist: the allowed domain is answered by its server" "$ANSWER" \
	192.0.2.53
QWRAP="ip netns exec runner1" DNSFWD_ADDR=10.1.0.1 DNSFWD_PORT=53 \
	q other.example.org
eq "allowlist: any other name: NXDOMAIN" "$RCODE" NXDOMAIN
eq "allowlist: ... never asked upstream" "$(asked public other.example.org)" 0
stop_dnsfwd
ip netns del runner1

# ---- the netcat NXDOMAIN server ------------------------------------------------
# (a namespace with nothing on port 53: it binds 0.0.0.0:53)
MAIN=$HOST
HOST=dnsfwd-t-$$-nc
new_netns "$HOST"
run netcat
QWRAP="in_host" DNSFWD_ADDR=127.0.0.1 DNSFWD_PORT=53 q anything.example
eq "netcat replacement: NXDOMAIN" "$RCODE" NXDOMAIN
QWRAP="in_host" DNSFWD_ADDR=127.0.0.1 DNSFWD_PORT=53 q anything.example +tcp
eq "netcat replacement: over TCP too" "$RCODE" NXDOMAIN
stop_dnsfwd
HOST=$MAIN

# ---- port 53 taken -----------------------------------------------------------------
fakeup_at busy 127.0.0.1:53 '* answer 192.0.2.99'
run port53
eq "port 53 taken: the fallback address bound" "$DNSFWD_ADDR:$DNSFWD_PORT" \
	127.0.0.153:53
QWRAP="in_host" q www.example.org
eq "port 53 taken: answered there" "$ANSWER" 192.0.2.53
stop_dnsfwd
stop_fakeup busy

# ---- split DNS -------------------------------------------------------------------
ip -n "$HOST" addr add 10.8.0.1/32 dev lo
ip -n "$HOST" addr add 10.8.0.2/32 dev lo
fakeup_at vpn 10.8.0.1:53 '* answer 10.8.8.8'
run split
QWRAP="in_host" q wiki.corp.example
eq "split DNS: the corporate name from the VPN resolver" "$ANSWER" 10.8.8.8
QWRAP="in_host" q www.example.org
eq "split DNS: the rest from the resolv.conf's" "$ANSWER" 192.0.2.53
eq "split DNS: the VPN resolver never saw it" "$(asked vpn www.example.org)" 0
stop_dnsfwd

# ---- IPv6-only guests behind NAT64 ----------------------------------------------
track_netns vm-64
ip netns add vm-64
ip -n vm-64 link set lo up
ip -n vm-64 addr add fd00::1/64 dev lo
set_rules public 'v4only.test/AAAA nodata' 'v4only.test answer 192.0.2.33' \
	'* answer 192.0.2.53'
run dns64
QWRAP="ip netns exec vm-64" DNSFWD_ADDR=fd00::1 DNSFWD_PORT=53 \
	q v4only.test AAAA
eq "NAT64 guest: an AAAA made under the prefix" "$ANSWER" 64:ff9b::c000:221
stop_dnsfwd
ip netns del vm-64

# ---- the VM manager's sequence (Supervisors) -----------------------------------
track_netns vm-7
n=$(block vm-manager | wc -l)
run vm-manager 1 $((n - 1))		# all but "ip netns del vm-7"
ip -n vm-7 addr add 10.0.0.9/24 dev eth0
_guest_answered()
{
	QWRAP="ip netns exec vm-7" DNSFWD_ADDR=10.0.0.1 DNSFWD_PORT=53 \
	    q www.example.org -b 10.0.0.9
	[ "$ANSWER" = 192.0.2.53 ]
}
_guest_or_said()
{
	_guest_answered || grep -q 'vm-7: cannot read its addresses' \
	    "$DNSFWD_ERR"
}
wait_for 10 _guest_or_said
if [ -n "${CROSS:-}" ] && grep -q 'vm-7: cannot read its addresses' "$DNSFWD_ERR"; then
	# qemu-user (test-cross, mips) does not translate every netlink
	# attribute of a veth's addresses: dnsfwd cannot know the guest's
	# network, says so, and answers loopback only
	ok "VM manager: under emulation, the unreadable networks said" true
else
	ok "VM manager: the new guest's gateway answers" _guest_answered
fi
run vm-manager "$n" "$n"		# the VM goes
ok "VM manager: its listener closed when its namespace went" \
	wait_for 10 grep -qF "stopped listening on 10.0.0.1:53 in /run/netns/vm-7" \
	"$DNSFWD_ERR"
stop_dnsfwd
rm -rf "/etc/netns/$HOST"

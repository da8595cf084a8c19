#!/usr/bin/env bash
# t-stubs.sh: dnsfwd as real stub resolvers use it, in the main use case:
# a namespace (a VM or container) whose resolv.conf names dnsfwd, served
# by a listener opened inside it (-N) while dnsfwd forwards from the host.
# The clients: glibc getaddrinfo (getent ahosts), a static musl program
# calling getaddrinfo (test/gai.c, musl-gcc), and busybox nslookup.
#
# 1. A VPN resolver first (knows wiki.corp.example, A only: NODATA for
#    AAAA) and a public one second (NXDOMAIN for corp names), and the
#    reverse order.  musl asks A and AAAA at once and fails the whole
#    lookup on one NXDOMAIN; busybox exits 1.  NODATA outranks NXDOMAIN,
#    so both resolve the name.
# 2. A black-holed first upstream: only the first lookup pays its timeout;
#    positive and negative lookups after it take the live one's round trip.
#
# The namespace has only lo and its resolv.conf is bind-mounted by ip netns
# exec (/etc/netns/NS/resolv.conf), so no client can reach anything else.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need getent libc-bin
need_netns
GAI_MUSL=
if command -v musl-gcc >/dev/null 2>&1; then
	GAI_MUSL=$T/gai-musl
	musl-gcc -static -O2 -o "$GAI_MUSL" "$ROOT/test/gai.c" ||
		{ fail "musl-gcc builds test/gai.c"; exit 1; }
else
	skip "musl getaddrinfo" musl-tools
fi
BUSYBOX=
for b in busybox /bin/busybox /usr/bin/busybox; do
	if command -v "$b" >/dev/null 2>&1 &&
	    "$b" nslookup 2>&1 | grep -q 'Usage: nslookup'; then
		BUSYBOX=$(command -v "$b")
		break
	fi
done
[ -n "$BUSYBOX" ] || skip "busybox nslookup" busybox-static

NS=dnsfwd-t-$$-vm
new_netns "$NS"
mkdir -p "/etc/netns/$NS"
printf 'nameserver 127.0.0.1\noptions timeout:3 attempts:1\n' \
	>"/etc/netns/$NS/resolv.conf"
in_vm() { ip netns exec "$NS" "$@"; }
ok "the namespace sees only its own resolv.conf" \
	test "$(in_vm cat /etc/resolv.conf | head -n 1)" = \
	"nameserver 127.0.0.1"

# glibc: getent ahosts prints each address three times (one per socket
# type); the distinct addresses, sorted, on one line.
glibc() { in_vm getent ahosts "$1" | awk '{ print $1 }' | sort -u |
	paste -sd ' ' -; }
musl() { in_vm "$GAI_MUSL" "$1" | sort -u | paste -sd ' ' -; }
bbox() { in_vm "$BUSYBOX" nslookup "$1" 127.0.0.1; }

# timed VAR CMD...: run CMD, its wall time in ms in VAR.
timed()
{
	local var=$1 t0

	shift
	t0=$(date +%s%N)
	"$@" >"$T/timed.out" 2>&1
	printf -v "$var" '%s' $((($(date +%s%N) - t0) / 1000000))
}

start_fakeup vpn 'wiki.corp.example/AAAA nodata' \
	'wiki.corp.example answer 192.0.2.50' \
	'*.corp.example nxdomain' '* nxdomain'
start_fakeup pub '*.corp.example nxdomain' 'www.pub.test answer 192.0.2.60' \
	'* nxdomain'

for order in vpn-first pub-first; do
	if [ "$order" = vpn-first ]; then
		s1=$vpn_port s2=$pub_port
	else
		s1=$pub_port s2=$vpn_port
	fi
	start_dnsfwd -R -c 0 -s "127.0.0.1#$s1" -s "127.0.0.1#$s2" \
		-l 127.0.0.2:0 -N "/run/netns/$NS" -l 127.0.0.1:53
	eq "$order: glibc getaddrinfo resolves the A-only VPN name" \
		"$(glibc wiki.corp.example)" 192.0.2.50
	if [ -n "$GAI_MUSL" ]; then
		out=$(musl wiki.corp.example)
		eq "$order: musl getaddrinfo resolves it (NODATA + NXDOMAIN)" \
			"$out" 192.0.2.50
		match "$order: musl: a public name still resolves" \
			"$(musl www.pub.test)" '^192\.0\.2\.60$'
		match "$order: musl: a name nobody has fails" \
			"$(musl nosuch.corp.example)" '^error: '
	fi
	if [ -n "$BUSYBOX" ]; then
		out=$(bbox wiki.corp.example 2>&1)
		rc=$?
		eq "$order: busybox nslookup exits 0" "$rc" 0 || diag "$out"
		match "$order: busybox nslookup shows the address" "$out" \
			'Address: 192\.0\.2\.50'
	fi
	stop_dnsfwd
done

# ---- a black-holed first upstream -------------------------------------------
start_fakeup hole '* drop'
start_dnsfwd -R -c 0 -t 1500 -s "127.0.0.1#$hole_port" \
	-s "127.0.0.1#$pub_port" -l 127.0.0.2:0 -N "/run/netns/$NS" \
	-l 127.0.0.1:53
timed ms0 in_vm getent ahosts www.pub.test
match "black hole first: the first lookup is answered" \
	"$(cat "$T/timed.out")" '^192\.0\.2\.60 '
ge "black hole first: the first lookup pays the timeout (ms)" "$ms0" 1400
timed ms1 in_vm getent ahosts nosuch1.pub.test
eq "black hole first: a negative lookup fails as it should (glibc)" \
	"$(cat "$T/timed.out")" ""
lt "black hole first: the negative lookup takes no timeout (ms)" "$ms1" 500
timed ms2 in_vm getent ahosts www.pub.test
lt "black hole first: a positive lookup takes no timeout (ms)" "$ms2" 500
if [ -n "$GAI_MUSL" ]; then
	timed ms3 in_vm "$GAI_MUSL" nosuch2.pub.test
	lt "black hole first: musl's negative lookup takes no timeout (ms)" \
		"$ms3" 500
	timed ms4 in_vm "$GAI_MUSL" www.pub.test
	lt "black hole first: musl's positive lookup takes no timeout (ms)" \
		"$ms4" 500
fi
diag "getent: first $ms0 ms, negative $ms1 ms, positive $ms2 ms;" \
	"musl: negative ${ms3:--} ms, positive ${ms4:--} ms"
eq "black hole first: asked once, by the first lookup" \
	"$(asked hole)" 2	# its A and its AAAA
stop_dnsfwd

#!/usr/bin/env bash
# t-netns.sh: -N/--netns PATH opens the listeners after it inside another
# network namespace, while upstream traffic leaves from dnsfwd's own: one
# process serves several namespaces.  Needs root and ip(8); every namespace
# is created here (dnsfwd-t-PID...) and deleted on exit.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need_netns

NS1=dnsfwd-t-$$
NS2=dnsfwd-t-$$-b
NS3=dnsfwd-t-$$-c
new_netns "$NS1"
new_netns "$NS2"
new_netns "$NS3"

# in_ns NS: ask dnsfwd at 127.0.0.1:PORT inside NS from now on.
in_ns()
{
	QWRAP="ip netns exec $1"
	DNSFWD_ADDR=127.0.0.1
	DNSFWD_PORT=$2
}

# in_host: ask dnsfwd's first listener, in this namespace.
in_host()
{
	QWRAP=
	[[ ${DNSFWD_LISTEN[0]} =~ ^([^:]*):([0-9]+) ]]
	DNSFWD_ADDR=${BASH_REMATCH[1]}
	DNSFWD_PORT=${BASH_REMATCH[2]}
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

start_fakeup up '*.blocked.test answer 192.0.2.66' '* answer 192.0.2.1'

# ---- one extra namespace ----------------------------------------------------
start_dnsfwd -R -s "127.0.0.1#$up_port" -l 127.0.0.1:0 \
	-N "/run/netns/$NS1" -l 127.0.0.1:5399
eq "two listeners reported" "${#DNSFWD_LISTEN[@]}" 2
eq "the second listener: in the namespace" "${DNSFWD_LISTEN[1]}" \
	"127.0.0.1:5399 in /run/netns/$NS1"
ok "stderr: 'listening on 127.0.0.1:5399 (udp+tcp) in /run/netns/$NS1'" \
	grep -qxF "dnsfwd: listening on 127.0.0.1:5399 (udp+tcp) in /run/netns/$NS1" \
	"$DNSFWD_ERR"
match "the first listener: no namespace suffix" "${DNSFWD_LISTEN[0]}" \
	'^127\.0\.0\.1:[0-9]+$'
ok "the socket 127.0.0.1:5399 is inside $NS1" bash -c \
	"ip netns exec $NS1 ss -Hlnup | grep -F '127.0.0.1:5399 ' |
	grep -q 'pid=$DNSFWD_PID,'"
ok "no 127.0.0.1:5399 socket of dnsfwd in the host namespace" bash -c \
	"! ss -Hlnup | grep -F '127.0.0.1:5399 ' | grep -q 'pid=$DNSFWD_PID,'"

in_ns "$NS1" 5399
q inside.ns1.test
eq "in $NS1: answered through the host-side fakeup" "$ANSWER" 192.0.2.1
eq "in $NS1: NOERROR, forwarded (qr rd ra)" "$RCODE $FLAGS" \
	"NOERROR qr rd ra"
eq "in $NS1: the fakeup in the host namespace was asked" \
	"$(asked up inside.ns1.test)" 1
q tcp.ns1.test +tcp
eq "in $NS1 over TCP: answered" "$ANSWER" 192.0.2.1
ok "in $NS1 over TCP: forwarded over TCP to the host-side fakeup" \
	grep -q '^tcp tcp.ns1.test ' "$T/up.log"
# The fakeup cannot be reached from inside NS1: the upstream query left
# from dnsfwd's own namespace.
in_ns "$NS1" "$up_port"
q direct.ns1.test +time=1
eq "in $NS1: the fakeup itself is unreachable (no answer)" "$RCODE" TIMEOUT
eq "in $NS1: ... and was not asked" "$(asked up direct.ns1.test)" 0
in_host
q host.side.test
eq "the host-side listener answers too" "$ANSWER" 192.0.2.1
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

# ---- errors ------------------------------------------------------------------
run_dnsfwd -R -l 127.0.0.1:0 -N /nonexistent -l 127.0.0.1:0
eq "-N /nonexistent: exit 2" "$RC" 2
match "-N /nonexistent: the message names the path and the reason" "$ERR" \
	'/nonexistent.*No such file or directory'
nsfile=/etc/hostname
[ -f "$nsfile" ] || { nsfile=$T/plain; echo plain >"$nsfile"; }
run_dnsfwd -R -l 127.0.0.1:0 -N "$nsfile" -l 127.0.0.1:0
eq "-N $nsfile: exit 2" "$RC" 2
match "-N $nsfile: 'not a network namespace'" "$ERR" \
	"$nsfile.*not a network namespace"
run_dnsfwd -R -N /proc/self/ns/uts -l 127.0.0.1:0
eq "-N /proc/self/ns/uts (another kind of namespace): exit 2" "$RC" 2
match "-N /proc/self/ns/uts: 'not a network namespace'" "$ERR" \
	"not a network namespace"
ok "failed starts left no listener in $NS1" bash -c \
	"! ip netns exec $NS1 ss -Hlnu | grep -q ."

# ---- an address that comes after the start ----------------------------------
# A VM manager adds the gateway address after the forwarder started: the
# listener binds anyway (IP_FREEBIND), says so on a line of its own, and
# serves once the address is there.
start_dnsfwd -R -s "127.0.0.1#$up_port" -l 127.0.0.1:0 \
	-N "$NS1" -l 10.77.0.1:5399
eq "late address: the listening line keeps its form" "${DNSFWD_LISTEN[1]}" \
	"10.77.0.1:5399 in /run/netns/$NS1"
ok "late address: a line of its own says it is not there yet" grep -qxF \
	"dnsfwd: 10.77.0.1:5399 is not an address of /run/netns/$NS1 yet: served once it is added" \
	"$DNSFWD_ERR"
ip -n "$NS1" addr add 10.77.0.1/24 dev lo
QWRAP="ip netns exec $NS1" DNSFWD_ADDR=10.77.0.1 DNSFWD_PORT=5399 \
	q late.ns1.test
eq "late address: served once added (-N NAME is /run/netns/NAME)" \
	"$RCODE $ANSWER" "NOERROR 192.0.2.1"
stop_dnsfwd
ip -n "$NS1" addr del 10.77.0.1/24 dev lo

# ---- several namespaces, one process ---------------------------------------
# NS3 is given as /proc/PID/ns/net of a process living in it.
ip netns exec "$NS3" sleep 120 &
holder=$!
track_pid "$holder"
wait_for 10 bash -c "[ \"\$(readlink /proc/$holder/ns/net)\" != \
	\"\$(readlink /proc/self/ns/net)\" ]"
start_dnsfwd -R -s "127.0.0.1#$up_port" -a /blocked.test/ \
	-N "/run/netns/$NS1" -l 127.0.0.1:5399 \
	-N "/run/netns/$NS2" -l 127.0.0.1:5399 \
	-N "/proc/$holder/ns/net" -l 127.0.0.1:53 \
	-N - -l 127.0.0.1:0
eq "four listeners reported" "${#DNSFWD_LISTEN[@]}" 4
eq "listener 1: $NS1" "${DNSFWD_LISTEN[0]}" \
	"127.0.0.1:5399 in /run/netns/$NS1"
eq "listener 2: $NS2, the same address and port" "${DNSFWD_LISTEN[1]}" \
	"127.0.0.1:5399 in /run/netns/$NS2"
eq "listener 3: /proc/PID/ns/net" "${DNSFWD_LISTEN[2]}" \
	"127.0.0.1:53 in /proc/$holder/ns/net"
match "listener 4: after '-N -', dnsfwd's own namespace" \
	"${DNSFWD_LISTEN[3]}" '^127\.0\.0\.1:[0-9]+$'
for ns in "$NS1" "$NS2"; do
	in_ns "$ns" 5399
	q "name.$ns.test"
	eq "in $ns: answered through the host-side fakeup" "$ANSWER" 192.0.2.1
	eq "in $ns: the fakeup asked" "$(asked up "name.$ns.test")" 1
	q x.blocked.test
	eq "in $ns: -a /blocked.test/ applies (NXDOMAIN, aa)" \
		"$RCODE $FLAGS" "NXDOMAIN qr aa rd ra"
done
in_ns "$NS3" 53
q name.ns3.test +tcp
eq "in $NS3 (/proc/PID/ns/net), port 53, TCP: answered" "$ANSWER" 192.0.2.1
eq "in $NS3: the fakeup asked" "$(asked up name.ns3.test)" 1
QWRAP=
DNSFWD_ADDR=127.0.0.1
DNSFWD_PORT=${DNSFWD_LISTEN[3]##*:}
q own.ns.test
eq "after '-N -': the listener in dnsfwd's own namespace answers" \
	"$ANSWER" 192.0.2.1
eq "x.blocked.test never reached the upstream" "$(asked up x.blocked.test)" 0
stop_dnsfwd
eq "several namespaces: SIGTERM, exit 0" "$DNSFWD_STATUS" 0

# ---- a namespace reached over a veth pair (a "VM" namespace) ----------------
# NS1 holds dnsfwd's listener on its veth address; the client sits in NS2 on
# the other end.  The addresses exist only inside these two namespaces.
net=10.200.$(($$ % 250 + 1))
if ip link add "dfa$$" netns "$NS1" type veth peer name "dfb$$" \
	netns "$NS2" 2>"$T/veth.err"; then
	ip -n "$NS1" addr add "$net.1/30" dev "dfa$$"
	ip -n "$NS2" addr add "$net.2/30" dev "dfb$$"
	ip -n "$NS1" link set "dfa$$" up
	ip -n "$NS2" link set "dfb$$" up
	start_dnsfwd -R -s "127.0.0.1#$up_port" -N "/run/netns/$NS1" \
		-l "$net.1:53"
	eq "veth: listening on $net.1:53 in $NS1" "${DNSFWD_LISTEN[0]}" \
		"$net.1:53 in /run/netns/$NS1"
	QWRAP="ip netns exec $NS2"
	DNSFWD_ADDR=$net.1
	DNSFWD_PORT=53
	q vm.veth.test
	eq "veth: the client in $NS2 is answered" "$ANSWER" 192.0.2.1
	eq "veth: through the host-side fakeup" "$(asked up vm.veth.test)" 1
	stop_dnsfwd
else
	skip "veth pair between namespaces: $(cat "$T/veth.err")" iproute2
fi

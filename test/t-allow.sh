#!/usr/bin/env bash
# t-allow.sh: who may ask.  By default a listener answers loopback clients
# and clients on a network of the namespace it listens in; everyone else
# gets REFUSED over UDP and is closed at accept over TCP, counted, and
# logged once a minute per source.  The networks follow address changes;
# --allow replaces them.  Needs root and ip(8): two namespaces made here,
#
#   SRV (dnsfwd, fakeup)  vs0 10.211.0.1/24 fd21:1::1/64 ; lo + 10.213.0.1
#   CLI (the clients)     vc0 10.211.0.2/24 fd21:1::2/64 + 10.212.0.2/32
#                         (a stranger: routed, on no network of SRV)
#                         + fd22:2::2/128 (an IPv6 stranger)
#
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need_netns

SRV=dnsfwd-t-$$-srv
CLI=dnsfwd-t-$$-cli
new_netns "$SRV"
new_netns "$CLI"
ip -n "$SRV" link add vs0 type veth peer name vc0 netns "$CLI"
ip -n "$SRV" addr add 10.211.0.1/24 dev vs0
ip -n "$SRV" addr add fd21:1::1/64 dev vs0 nodad
ip -n "$SRV" addr add 10.213.0.1/32 dev lo
ip -n "$SRV" link set vs0 up
ip -n "$CLI" addr add 10.211.0.2/24 dev vc0
ip -n "$CLI" addr add 10.212.0.2/32 dev vc0
ip -n "$CLI" addr add fd21:1::2/64 dev vc0 nodad
ip -n "$CLI" addr add fd22:2::2/128 dev vc0 nodad
ip -n "$CLI" link set vc0 up
ip -n "$CLI" route add 10.213.0.1/32 via 10.211.0.1
ip -n "$SRV" route add 10.212.0.2/32 via 10.211.0.2
ip -n "$SRV" -6 route add fd22:2::2/128 via fd21:1::2

FAKEUP_WRAP="ip netns exec $SRV"
EMU=${DNSFWD_WRAP:-}	# qemu-user under make test-cross
DNSFWD_WRAP="ip netns exec $SRV $EMU"
start_fakeup up '* answer 192.0.2.1'

# ask FROM ADDR NAME [DIG-ARGS]: from CLI, source FROM, to ADDR:DNSFWD_PORT.
ask()
{
	local from=$1 addr=$2 name=$3

	shift 3
	QWRAP="ip netns exec $CLI"
	DNSFWD_ADDR=$addr
	q "$name" A -b "$from" "$@"
	QWRAP=
}

# port_of N: the port of listener N.
port_of()
{
	[[ ${DNSFWD_LISTEN[$1]} =~ :([0-9]+)( in .*)?$ ]]
	echo "${BASH_REMATCH[1]}"
}

_refused_from()
{
	ask "$1" "$2" "$3"
	[ "$RCODE" = "$4" ]
}

# ---- the default: loopback and the namespace's own networks ----------------
start_dnsfwd -R -s "127.0.0.1#$up_port" -l 10.211.0.1:0 -l '[fd21:1::1]:0' \
	-l 127.0.0.1:0
P4=$(port_of 0)
P6=$(port_of 1)
PLO=$(port_of 2)

DNSFWD_PORT=$P4
ask 10.211.0.2 10.211.0.1 onlink.allow.test
eq "a client on the listener's network is answered" \
	"$RCODE $ANSWER" "NOERROR 192.0.2.1"
n0=$(asked up)
ask 10.212.0.2 10.211.0.1 stranger.allow.test
eq "a client on no network of the namespace gets REFUSED" "$RCODE" REFUSED
match "... saying why: EDE 18 (Prohibited)" "$QOUT" 'EDE: 18'
eq "REFUSED without a question upstream" "$(asked up)" "$n0"
lt "REFUSED at once" "$MS" 1000
ask 10.212.0.2 10.211.0.1 stranger2.allow.test
ask 10.212.0.2 10.211.0.1 stranger3.allow.test
eq "refused every time" "$RCODE" REFUSED
eq "one log line for three refusals from one source" \
	"$(grep -c 'refused 10.212.0.2:' "$DNSFWD_ERR")" 1
match "the line says why and how to admit it" \
	"$(grep 'refused 10.212.0.2:' "$DNSFWD_ERR")" \
	'not on a network of this namespace.*--allow'

ask 10.212.0.2 10.211.0.1 tcp.allow.test +tcp
ok "a TCP stranger gets no answer" [ "$RCODE" != NOERROR ]
lt "and is closed at once, not left to time out" "$MS" 2000
ask 10.211.0.2 10.211.0.1 tcp.allow.test +tcp
eq "an on-link TCP client is answered" "$RCODE $ANSWER" "NOERROR 192.0.2.1"

DNSFWD_PORT=$P6
ask fd21:1::2 fd21:1::1 v6.allow.test
eq "IPv6: a client on the network is answered" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.1"
ask fd22:2::2 fd21:1::1 v6s.allow.test
eq "IPv6: a stranger gets REFUSED" "$RCODE" REFUSED

QWRAP="ip netns exec $SRV"
DNSFWD_ADDR=127.0.0.1
DNSFWD_PORT=$PLO
q lo.allow.test
QWRAP=
eq "loopback in the namespace is answered" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.1"

# ---- the networks follow the namespace -------------------------------------
DNSFWD_PORT=$P4
t0=$(date +%s%N)
ip -n "$SRV" addr add 10.212.0.1/24 dev vs0
ok "an address added later admits its network" \
	wait_for 10 _refused_from 10.212.0.2 10.211.0.1 late.allow.test NOERROR
lt "within a second of the change" $((($(date +%s%N) - t0) / 1000000)) 1000
ip -n "$SRV" addr del 10.212.0.1/24 dev vs0
ok "and removing it refuses that network again" \
	wait_for 10 _refused_from 10.212.0.2 10.211.0.1 gone.allow.test REFUSED

counters
ge "strangers refused, counted" "$(counter 'strangers refused')" 5
ge "strangers closed at accept, counted" "$(counter 'strangers closed')" 1
stop_dnsfwd

# ---- a listener in another namespace uses that namespace's networks --------
# 10.213.0.1 is on SRV's lo, so a network of dnsfwd's own namespace, but
# not of CLI's: the listener in CLI refuses it and answers 10.211.0.1.
start_dnsfwd -R -s "127.0.0.1#$up_port" -l 127.0.0.1:0 \
	-N "/run/netns/$CLI" -l 10.211.0.2:0
DNSFWD_PORT=$(port_of 1)
QWRAP="ip netns exec $SRV"
DNSFWD_ADDR=10.211.0.2
q ns.allow.test -b 10.211.0.1
eq "-N listener: a client on its namespace's network is answered" \
	"$RCODE $ANSWER" "NOERROR 192.0.2.1"
q ns2.allow.test -b 10.213.0.1
eq "-N listener: a network of dnsfwd's own namespace only is REFUSED" \
	"$RCODE" REFUSED
QWRAP=
stop_dnsfwd

# ---- --allow replaces the default -------------------------------------------
start_dnsfwd -R -s "127.0.0.1#$up_port" -l 10.211.0.1:0 -l 127.0.0.1:0 \
	--allow 10.212.0.0/24 --allow fd99::/16
DNSFWD_PORT=$(port_of 0)
ask 10.212.0.2 10.211.0.1 a1.allow.test
eq "--allow: its network is answered" "$RCODE $ANSWER" "NOERROR 192.0.2.1"
ask 10.211.0.2 10.211.0.1 a2.allow.test
eq "--allow: the on-link network is no longer answered" "$RCODE" REFUSED
match "--allow: the log line names --allow" \
	"$(grep 'refused 10.211.0.2:' "$DNSFWD_ERR")" 'not in --allow'
QWRAP="ip netns exec $SRV"
DNSFWD_ADDR=127.0.0.1
DNSFWD_PORT=$(port_of 1)
q a3.allow.test
QWRAP=
eq "--allow: loopback stays answered" "$RCODE $ANSWER" "NOERROR 192.0.2.1"
stop_dnsfwd

start_dnsfwd -R -s "127.0.0.1#$up_port" -l 10.211.0.1:0 -l '[fd21:1::1]:0' \
	--allow 0.0.0.0/0 --allow ::/0
DNSFWD_PORT=$(port_of 0)
ask 10.212.0.2 10.211.0.1 all.allow.test
eq "--allow 0.0.0.0/0: everyone over IPv4" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.1"
DNSFWD_PORT=$(port_of 1)
ask fd22:2::2 fd21:1::1 all6.allow.test
eq "--allow ::/0: everyone over IPv6" "$RCODE $ANSWER" "NOERROR 192.0.2.1"
stop_dnsfwd

for bad in 10.0.0.0/33 fd00::/129 banana 10.0.0.0/ /8; do
	# shellcheck disable=SC2086  # EMU is a command prefix
	out=$($EMU "$DNSFWD" --allow "$bad" -R -s 127.0.0.1 2>&1)
	rc=$?
	eq "--allow $bad: usage error" "$rc" 1
	match "--allow $bad: says what is wrong" "$out" "^dnsfwd: --allow: "
done

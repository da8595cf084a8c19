#!/usr/bin/env bash
# t-realpeers.sh: real resolvers as upstreams: dnsmasq first (it knows
# real.test and says NXDOMAIN for everything else), then unbound (a static
# local zone, unbound.test, and its own real.test).  A name only unbound
# knows is answered after dnsmasq's NXDOMAIN; a name dnsmasq knows comes from
# dnsmasq.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need dnsmasq dnsmasq
need unbound unbound

# free_port: a UDP+TCP port free on 127.0.0.1 (fakeup found it, then left).
free_port()
{
	start_fakeup "probe$1"
	local pv="probe$1_port"

	PORT=${!pv}
	stop_fakeup "probe$1"
}

# ask PORT NAME [ARGS...]: dig straight at a peer; sets RCODE ANSWER ...
ask()
{
	local port=$1

	shift
	DNSFWD_PORT=$port q "$@"
}

# ---- dnsmasq ------------------------------------------------------------------------

dnsmasq_ready()
{
	ask "$dm_port" real.test +time=1
	[ "$ANSWER" = 10.7.7.7 ]
}
# The port was free when fakeup left it; a test running beside this one
# may take it before dnsmasq binds: then dnsmasq exits, and another port
# is tried (three at most).
for try in 1 2 3; do
	free_port "1$try"
	dm_port=$PORT
	dnsmasq -k --no-resolv --no-hosts -C /dev/null -p "$dm_port" \
		--listen-address=127.0.0.1 --bind-interfaces -u root \
		--pid-file="$T/dnsmasq.pid" --log-facility=- \
		--address=/real.test/10.7.7.7 --address=/#/ \
		>"$T/dnsmasq.out" 2>&1 &
	dm_pid=$!
	track_pid "$dm_pid"
	# until it answers, or exits (the port was taken)
	wait_for 10 eval '! _alive "$dm_pid" || dnsmasq_ready'
	dnsmasq_ready && break
	_reap "$dm_pid"
done
if ! dnsmasq_ready; then
	fail "dnsmasq answers real.test" "$(cat "$T/dnsmasq.out")" "$QOUT"
	exit 1
fi
ask "$dm_port" real.test
eq "dnsmasq itself: real.test" "$ANSWER" 10.7.7.7
ask "$dm_port" only.unbound.test
eq "dnsmasq itself: NXDOMAIN for the rest" "$RCODE" NXDOMAIN

# ---- unbound ------------------------------------------------------------------------

# unbound_conf: its configuration, on ub_port.
unbound_conf()
{
	{ unbound_head "127.0.0.1@$ub_port"; cat <<EOF; } >"$T/unbound.conf"
	module-config: "iterator"
	local-zone: "unbound.test." static
	local-data: "only.unbound.test. 300 IN A 10.8.8.8"
	local-data: "unbound.test. 300 IN SOA ns.unbound.test. h.unbound.test. 1 3600 600 86400 60"
	local-zone: "real.test." static
	local-data: "real.test. 300 IN A 10.9.9.9"
remote-control:
	control-enable: no
EOF
}
unbound_ready()
{
	ask "$ub_port" only.unbound.test +time=1
	[ "$ANSWER" = 10.8.8.8 ]
}
for try in 1 2 3; do	# as for dnsmasq: another port if this one went
	free_port "2$try"
	ub_port=$PORT
	unbound_conf
	unbound -d -c "$T/unbound.conf" >"$T/unbound.out" 2>&1 &
	ub_pid=$!
	track_pid "$ub_pid"
	wait_for 10 eval '! _alive "$ub_pid" || unbound_ready'
	unbound_ready && break
	_reap "$ub_pid"
done
if command -v unbound-checkconf >/dev/null 2>&1; then
	ok "unbound config is valid" unbound-checkconf "$T/unbound.conf"
fi
if ! unbound_ready; then
	fail "unbound answers only.unbound.test" "$(cat "$T/unbound.out")" \
		"$QOUT"
	exit 1
fi
ask "$ub_port" only.unbound.test
eq "unbound itself: only.unbound.test" "$ANSWER" 10.8.8.8
ask "$ub_port" real.test
eq "unbound itself: its own real.test" "$ANSWER" 10.9.9.9

# ---- dnsfwd in front of both ---------------------------------------------------------

start_dnsfwd -R -c 0 -s "127.0.0.1#$dm_port" -s "127.0.0.1#$ub_port"
q only.unbound.test
eq "a name only unbound knows: answered" "$ANSWER" 10.8.8.8
eq "a name only unbound knows: NOERROR" "$RCODE" NOERROR
lt "a name only unbound knows: at once (ms)" "$MS" 1000
q real.test
eq "a name dnsmasq knows: dnsmasq's answer (not unbound's)" "$ANSWER" 10.7.7.7
q nx.unbound.test
eq "a name nobody knows: NXDOMAIN" "$RCODE" NXDOMAIN
match "a name nobody knows: unbound's (the last) SOA" "$QOUT" \
	"unbound\\.test\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA"
q only.unbound.test AAAA
eq "AAAA nobody has: NOERROR (unbound's NODATA, the last)" "$RCODE" NOERROR
eq "AAAA nobody has: no answer" "$ANSWER" ""
q only.unbound.test +tcp
eq "over TCP: a name only unbound knows" "$ANSWER" 10.8.8.8
q real.test +tcp
eq "over TCP: a name dnsmasq knows" "$ANSWER" 10.7.7.7
if command -v kdig >/dev/null 2>&1; then
	kq only.unbound.test
	eq "kdig: a name only unbound knows" "$ANSWER" 10.8.8.8
	kq real.test +tcp
	eq "kdig over TCP: a name dnsmasq knows" "$ANSWER" 10.7.7.7
else
	skip "kdig queries" knot-dnsutils
fi

# unbound stopped: the names dnsmasq knows still work, the others fail over
# fast (ICMP port unreachable) to dnsmasq's NXDOMAIN.
_reap "$ub_pid"
q real.test
eq "unbound gone: dnsmasq's name still answered" "$ANSWER" 10.7.7.7
q only.unbound.test
eq "unbound gone: dnsmasq's NXDOMAIN" "$RCODE" NXDOMAIN
lt "unbound gone: at once, no timeout (ms)" "$MS" 1000
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

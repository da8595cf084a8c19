#!/usr/bin/env bash
# t-netns-follow.sh: listeners that follow the namespaces of a VM host.
#  - a namespace deleted and re-created under its name (a VM restart) is
#    served again, its old listeners closed ("stopped listening");
#  - a -N glob: namespaces added after start are served, one deleted has
#    its sockets closed (descriptor count), 100 through one pattern;
#  - all of it after -u dropped privileges: the server keeps no capability,
#    its namespace helper CAP_SYS_ADMIN and CAP_NET_BIND_SERVICE;
#  - SIGUSR1 counts queries per listener.
# Needs root and ip(8); every namespace is made here and deleted on exit.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need_netns

P=dnsfwd-t-$$
start_fakeup up '* answer 192.0.2.1'

# ns_up NAME: create NAME (tracked) with lo up.
ns_up()
{
	ip netns add "$1" && track_netns "$1" && ip -n "$1" link set lo up
}

# served NS [NAME]: a query inside NS to 127.0.0.1:5399 is answered.
served()
{
	QWRAP="ip netns exec $1" DNSFWD_ADDR=127.0.0.1 DNSFWD_PORT=5399 \
	    q "${2:-probe}.$1.test" +time=1
	[ "$RCODE $ANSWER" = "NOERROR 192.0.2.1" ]
}


# ---- a VM restart: the same name, a new namespace ---------------------------
ns_up "$P-vm"
start_dnsfwd -R -s "127.0.0.1#$up_port" -l 127.0.0.1:0 \
	-N "$P-vm" -l 127.0.0.1:5399
ok "restart: served before" served "$P-vm" before
fd0=$(nfds "$DNSFWD_PID")
ip netns del "$P-vm"
ok "restart: its listener closed when the namespace goes (said)" \
	wait_for 10 grep -qxF \
	"dnsfwd: stopped listening on 127.0.0.1:5399 in /run/netns/$P-vm" \
	"$DNSFWD_ERR"
fds_eq "restart: its sockets closed (descriptors)" $((fd0 - 3))
t0=$(date +%s%N)
ns_up "$P-vm"
ok "restart: served again in the new namespace" wait_for 10 served \
	"$P-vm" after
ms=$((($(date +%s%N) - t0) / 1000000))
# measure-netns.sh times this; the bound is for a busy machine
lt "restart: from ip netns add to a served query (ms)" "$ms" 5000
diag "ip netns add to a served query: $ms ms"
eq "restart: two listening lines for it" "$(grep -c \
	"listening on 127.0.0.1:5399 (udp+tcp) in /run/netns/$P-vm$" \
	"$DNSFWD_ERR")" 2
fds_eq "restart: as many descriptors as before" "$fd0"
counters
match "SIGUSR1: queries per listener, with its namespace" "$COUNTERS" \
	"listener 127\\.0\\.0\\.1:5399 in /run/netns/$P-vm: queries [1-9]"
stop_dnsfwd
ip netns del "$P-vm"

# ---- a glob, after -u --------------------------------------------------------
DNSFWD_WANT=1 start_dnsfwd -R -s "127.0.0.1#$up_port" -l 127.0.0.1:0 \
	-u 65534:65534 -N "/run/netns/$P-g*" -l 127.0.0.1:5399
q warm.test	# the first upstream socket, kept for the next queries
fd0=$(nfds "$DNSFWD_PID")
eq "-u with -N: the server has no capability at all (permitted or effective)" \
	"$(sandbox_status "$DNSFWD_PID" | cut -d' ' -f1-4)" \
	"CapPrm: 0000000000000000 CapEff: 0000000000000000"
nsh=$(helper_of "$DNSFWD_PID")
ok "-u with -N: a namespace helper runs beside it" test -n "$nsh"
_helper_caps()
{
	[ "$(sandbox_status "$1" | cut -d' ' -f1-4)" = "$2" ]
}
if [ -n "$nsh" ]; then
	# it drops what it does not keep on its own, beside the server
	wait_for 10 _helper_caps "$nsh" \
	    "CapPrm: 0000000000200400 CapEff: 0000000000200400"
	eq "-u with -N: the helper keeps CAP_SYS_ADMIN and CAP_NET_BIND_SERVICE only" \
	    "$(sandbox_status "$nsh" | cut -d' ' -f1-4)" \
	    "CapPrm: 0000000000200400 CapEff: 0000000000200400"
	eq "-u with -N: the helper is -u's user" \
	    "$(awk '/^Uid:/ { print $2 $3 $4 $5 }' "/proc/$nsh/status")" \
	    65534655346553465534
	eq "-u with -N: the helper holds its socket and stdio, no listener" \
	    "$(nfds "$nsh")" 4
fi
for n in 1 2 3; do
	ns_up "$P-g$n"
done
for n in 1 2 3; do
	ok "glob: $P-g$n, added after start (and after -u), is served" \
	    wait_for 10 served "$P-g$n"
done
fds_eq "glob: three namespaces, three sockets each (udp, tcp, netlink)" \
	$((fd0 + 9))
ip netns del "$P-g2"
ok "glob: one deleted: its listener closed (said)" wait_for 10 grep -qxF \
	"dnsfwd: stopped listening on 127.0.0.1:5399 in /run/netns/$P-g2" \
	"$DNSFWD_ERR"
fds_eq "glob: its sockets closed, so the kernel can free it" \
	$((fd0 + 6))
ok "glob: the others still served" served "$P-g1" again
ok "glob: ... both" served "$P-g3" again
for n in 1 3; do
	ip netns del "$P-g$n"
done
ok "glob: all gone: back to where it started" wait_for 10 fds_are "$fd0"
stop_dnsfwd

# ---- 100 namespaces through one pattern ------------------------------------
DNSFWD_WANT=1 start_dnsfwd -R -s "127.0.0.1#$up_port" -l 127.0.0.1:0 \
	-N "/run/netns/$P-m*" -l 127.0.0.1:5399
q warm.test
fd0=$(nfds "$DNSFWD_PID")
for n in $(seq 1 100); do
	ns_up "$P-m$n"
done
_listening_in_all()
{
	[ "$(grep -c "listening on 127.0.0.1:5399 (udp+tcp) in /run/netns/$P-m" \
	    "$DNSFWD_ERR")" -eq 100 ]
}
ok "100 namespaces: all listening" wait_for 20 _listening_in_all ||
	diag "missing: $(for n in $(seq 1 100); do grep -q "in /run/netns/$P-m$n\$" \
	    "$DNSFWD_ERR" || printf '%s ' "$n"; done)"
bad=0
for n in $(seq 1 100); do
	served "$P-m$n" || bad=$((bad + 1))
done
eq "100 namespaces: each answered a query" "$bad" 0
fds_eq "100 namespaces: 300 descriptors more" $((fd0 + 300))
diag "100 namespaces: RSS $(awk '/^VmRSS/ { print $2 " " $3 }' \
	"/proc/$DNSFWD_PID/status")"
stop_dnsfwd
for n in $(seq 1 100); do
	ip netns del "$P-m$n"
done

# ---- no CAP_SYS_ADMIN: a namespace that cannot be entered ------------------
# dnsfwd started as uid 65534 with no capabilities at all (a container that
# drops them): a matching namespace that appears is said once, naming the
# path and the capability, and skipped; dnsfwd keeps serving (it used to
# exit with status 2: "setns back: Operation not permitted").
DNSFWD_WANT=1 DNSFWD_WRAP="setpriv --reuid 65534 --regid 65534 \
--clear-groups --inh-caps=-all --bounding-set=-all ${DNSFWD_WRAP:-}" \
	start_dnsfwd -R -s "127.0.0.1#$up_port" -l 127.0.0.1:0 \
	-N "/run/netns/$P-nocap*" -l 127.0.0.1:5399
eq "no CAP_SYS_ADMIN: dnsfwd runs with no capability" \
	"$(awk '/^CapEff/ { print $2 }' "/proc/$DNSFWD_PID/status")" \
	0000000000000000
ns_up "$P-nocap1"
ok "no CAP_SYS_ADMIN: the namespace is said, naming it and the capability" \
	wait_for 10 grep -qF -e \
	"--netns /run/netns/$P-nocap1: Operation not permitted (entering a namespace needs CAP_SYS_ADMIN); skipped" \
	"$DNSFWD_ERR"
ns_up "$P-nocap2"
q nocap.test
eq "no CAP_SYS_ADMIN: dnsfwd keeps serving" "$RCODE $ANSWER" \
	"NOERROR 192.0.2.1"
ok "no CAP_SYS_ADMIN: dnsfwd alive" _alive "$DNSFWD_PID"
ok "no CAP_SYS_ADMIN: the second namespace said too (a rescan)" \
	wait_for 10 grep -qF "nocap2: Operation not permitted" "$DNSFWD_ERR"
eq "no CAP_SYS_ADMIN: the first not said again on that rescan" \
	"$(grep -c "nocap1: Operation not permitted" "$DNSFWD_ERR")" 1
stop_dnsfwd
eq "no CAP_SYS_ADMIN: SIGTERM, exit 0" "$DNSFWD_STATUS" 0
ip netns del "$P-nocap1"
ip netns del "$P-nocap2"

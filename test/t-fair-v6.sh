#!/usr/bin/env bash
# t-fair-v6.sh: the contract, "Fairness", for IPv6 neighbours.  A source
# is an address (/128); its /64 has a larger share of its own.  In a
# namespace made here, with two /64s on lo (2001:db8:1::/64, where
# dnsfwd listens and several hosts ask; 2001:db8:2::/64, another site):
#  - --max-queries 40: one host floods never-answered names: it holds
#    half the table (20), the rest is REFUSED; its neighbour in the same
#    /64 is still answered and may hold 10 more (the /64's three
#    quarters), then is REFUSED; a host of the other /64 is answered;
#  - one host with 40 addresses in its /64, one query from each: the /64
#    holds 30, 10 are REFUSED, the other /64 is answered;
#  - --max-tcp 8: one host holds 4 connections (half), its neighbour 2
#    more (the /64's 6), the other /64 still connects and is answered.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need_netns
need_dnsq

NS=dnsfwd-v6-$$
new_netns "$NS"
IN="ip netns exec $NS"
for a in 1::1 1::2 1::3 2::1; do
	ip -n "$NS" addr add "2001:db8:$a/64" dev lo nodad
done
for i in $(seq 100 139); do
	ip -n "$NS" addr add "2001:db8:1::$i/128" dev lo nodad
done
DNSFWD_WRAP="$IN ${DNSFWD_WRAP:-}"
FAKEUP_WRAP=$IN
QWRAP=$IN
start_fakeup up 'good.test answer 192.0.2.1' '* drop'
DNSFWD_ADDR=2001:db8:1::1

# flood FROM TAG N: N never-answered names from address FROM at once;
# the replies (REFUSED at once, or none in 1 s) in $T/TAG.out
flood()
{
	local i msgs=()

	for ((i = 0; i < $3; i++)); do
		msgs+=("$("$DNSQ" -m "$i" "$2-$i.flood.test")")
	done
	$IN "$DNSQ" -w 1000 -b "$1" "$DNSFWD_ADDR" "$DNSFWD_PORT" \
	    "${msgs[@]}" >"$T/$2.out" 2>&1
}
refused() { grep -c '^rcode=REFUSED ' "$T/$1.out"; }
# ask FROM NAME: one query from FROM; its rcode and answer count
ask()
{
	$IN "$DNSQ" -w 3000 -b "$1" "$DNSFWD_ADDR" "$DNSFWD_PORT" \
	    "$("$DNSQ" -m 7 "$2")" | sed -n 's/^rcode=\([A-Z]*\) .* an=\([0-9]*\) .*/\1 \2/p'
}

# ---- the in-flight table --------------------------------------------------
start_dnsfwd -R -c 0 -t 20000 --max-queries 40 -l "[$DNSFWD_ADDR]:5353" \
	-s "127.0.0.1#$up_port"
DNSFWD_PORT=5353
flood 2001:db8:1::2 a 40
eq "one host floods 40 names: 20 REFUSED (it holds half the table)" \
	"$(refused a)" 20
eq "its neighbour in the /64 is answered" \
	"$(ask 2001:db8:1::3 good.test)" "NOERROR 1"
flood 2001:db8:1::3 b 20
eq "the neighbour floods 20: 10 held (the /64's three quarters), 10 REFUSED" \
	"$(refused b)" 10
eq "a host of another /64 is answered" \
	"$(ask 2001:db8:2::1 good.test)" "NOERROR 1"
counters
eq "in flight: 20 + 10" "$(counter 'in flight')" 30
stop_dnsfwd

start_dnsfwd -R -c 0 -t 20000 --max-queries 40 -l "[$DNSFWD_ADDR]:5353" \
	-s "127.0.0.1#$up_port"
for i in $(seq 100 139); do
	$IN "$DNSQ" -w 300 -b "2001:db8:1::$i" "$DNSFWD_ADDR" "$DNSFWD_PORT" \
	    "$("$DNSQ" -m "$i" "m$i.flood.test")" >>"$T/many.out" 2>&1
done
eq "one host, 40 addresses in its /64: 10 REFUSED (the /64 holds 30)" \
	"$(refused many)" 10
eq "... another /64 is answered" \
	"$(ask 2001:db8:2::1 good.test)" "NOERROR 1"
stop_dnsfwd

# ---- the TCP connection table ------------------------------------------------
start_dnsfwd -R -c 0 --max-tcp 8 -l "[$DNSFWD_ADDR]:5353" \
	-s "127.0.0.1#$up_port"
base=$(nfds "$DNSFWD_PID")
idlers=()
# hold FROM N: N idle connections from FROM, for up to 20 s
hold()
{
	local i

	for ((i = 0; i < $2; i++)); do
		$IN "$DNSQ" -t -w 20000 -b "$1" "$DNSFWD_ADDR" "$DNSFWD_PORT" \
		    '' >/dev/null 2>&1 &
		idlers+=("$!")
		track_pid "$!"
	done
}
_over() { counters; [ "$(counter 'tcp over share')" -ge "$1" ]; }
hold 2001:db8:1::2 8
ok "one host opens 8 of 8: 4 closed at once (over its half)" \
	wait_for 10 _over 4
ok "... it holds 4" wait_for 10 fds_are $((base + 4))
hold 2001:db8:1::3 8
ok "its neighbour opens 8: 6 closed (the /64 holds 6 of 8)" \
	wait_for 10 _over 10
ok "... the /64 holds 6" wait_for 10 fds_are $((base + 6))
out=$($IN "$DNSQ" -t -w 3000 -b 2001:db8:2::1 "$DNSFWD_ADDR" "$DNSFWD_PORT" \
    "$("$DNSQ" -m 9 good.test)")
match "another /64 connects and is answered" "$out" '^rcode=NOERROR id=9 .* an=1 '
counters
eq "tcp over share: counted" "$(counter 'tcp over share')" 10
for p in "${idlers[@]}"; do
	kill -TERM "$p" 2>/dev/null
	wait "$p" 2>/dev/null
done
stop_dnsfwd

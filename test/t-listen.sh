#!/usr/bin/env bash
# t-listen.sh: the contract, "Listening": port 0 and the exact "listening on" line,
# IPv6, one listener per -l, the comma fallback chain, and exit status 2
# with the address and the reason when nothing binds.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils

start_fakeup up '* answer 192.0.2.1'
up="127.0.0.1#$up_port"

# run_dnsfwd ARGS...: run dnsfwd in the foreground for at most 5 s; its
# status in RC, its stderr in ERR.
run_dnsfwd()
{
	# shellcheck disable=SC2086  # DNSFWD_WRAP is a command prefix
	timeout -k 2 5 ${DNSFWD_WRAP:-} "$DNSFWD" "$@" 2>"$T/run.err" </dev/null
	RC=$?
	ERR=$(cat "$T/run.err")
}

# ---- port 0, the line -----------------------------------------------------------------

start_dnsfwd -R -c 0 -s "$up"
line=$(grep 'listening on' "$DNSFWD_ERR")
match "port 0: the exact line" "$line" \
	'^dnsfwd: listening on 127\.0\.0\.1:[0-9]+ \(udp\+tcp\)$'
eq "port 0: one line" "$(grep -c 'listening on' "$DNSFWD_ERR")" 1
ok "port 0: a real port" test "$DNSFWD_PORT" -gt 0 -a "$DNSFWD_PORT" -lt 65536
q a.test
eq "port 0: UDP answered on the port given" "$ANSWER" 192.0.2.1
q a.test +tcp
eq "port 0: TCP answered on the same port" "$ANSWER" 192.0.2.1
stop_dnsfwd

# ---- IPv6 -------------------------------------------------------------------------------

if ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128'; then
	start_dnsfwd -R -c 0 -s "$up" -l '[::1]:0'
	match "ipv6: the line" "$(grep 'listening on' "$DNSFWD_ERR")" \
		'^dnsfwd: listening on \[::1\]:[0-9]+ \(udp\+tcp\)$'
	eq "ipv6: the address read from it" "$DNSFWD_ADDR" ::1
	q v6.test
	eq "ipv6: UDP answered" "$ANSWER" 192.0.2.1
	q v6.test +tcp
	eq "ipv6: TCP answered" "$ANSWER" 192.0.2.1
	stop_dnsfwd
else
	skip "ipv6 listener: no ::1 on lo" iproute2
fi

# ---- two -l: two listeners ------------------------------------------------------------

start_dnsfwd -R -c 0 -s "$up" -l 127.0.0.1:0 -l 127.0.0.2:0
eq "two -l: two lines" "$(grep -c 'listening on' "$DNSFWD_ERR")" 2
match "two -l: the second line" "$(grep 'listening on' "$DNSFWD_ERR" |
	sed -n 2p)" '^dnsfwd: listening on 127\.0\.0\.2:[0-9]+ \(udp\+tcp\)$'
for i in 0 1; do
	l=${DNSFWD_LISTEN[$i]}
	DNSFWD_ADDR=${l%:*} DNSFWD_PORT=${l##*:} q two.test
	eq "two -l: listener $((i + 1)) answers UDP" "$ANSWER" 192.0.2.1
	DNSFWD_ADDR=${l%:*} DNSFWD_PORT=${l##*:} q two.test +tcp
	eq "two -l: listener $((i + 1)) answers TCP" "$ANSWER" 192.0.2.1
done
stop_dnsfwd

# ---- the fallback chain ------------------------------------------------------------------

# A fakeup holds 127.0.0.1:P (UDP and TCP).
start_fakeup busy
P=$busy_port
start_dnsfwd -R -c 0 -s "$up" -l "127.0.0.1:$P,127.0.0.153:0"
match "chain: the second address bound, and said" \
	"$(grep 'listening on' "$DNSFWD_ERR")" \
	'^dnsfwd: listening on 127\.0\.0\.153:[0-9]+ \(udp\+tcp\)$'
match "chain: the busy first address named, with the reason" \
	"$(cat "$DNSFWD_ERR")" \
	"127\\.0\\.0\\.1:$P: Address (already )?in use"
eq "chain: DNSFWD_ADDR" "$DNSFWD_ADDR" 127.0.0.153
q chain.test
eq "chain: the second address answers UDP" "$ANSWER" 192.0.2.1
q chain.test +tcp
eq "chain: ... and TCP" "$ANSWER" 192.0.2.1
eq "chain: the busy port's owner got nothing" "$(asked busy)" 0
stop_dnsfwd

# A free first address is used, the rest ignored.
start_dnsfwd -R -c 0 -s "$up" -l "127.0.0.1:0,127.0.0.153:0"
match "chain: a free first address is used" \
	"$(grep 'listening on' "$DNSFWD_ERR")" \
	'^dnsfwd: listening on 127\.0\.0\.1:[0-9]+ \(udp\+tcp\)$'
eq "chain: one line for one chain" "$(grep -c 'listening on' "$DNSFWD_ERR")" 1
stop_dnsfwd

# ---- nothing binds: exit 2 --------------------------------------------------------------

run_dnsfwd -R -s "$up" -l "127.0.0.1:$P"
eq "busy address: exit status 2" "$RC" 2
match "busy address: the message names it and the reason" "$ERR" \
	"^dnsfwd: cannot listen on 127\\.0\\.0\\.1:$P: Address (already )?in use \\(another DNS server listens there: stop it, or give a fallback, -l 127\\.0\\.0\\.1:53,127\\.0\\.0\\.153:53\\)$"
nomatch=$(grep -c 'listening on' "$T/run.err")
eq "busy address: no listening line" "$nomatch" 0

run_dnsfwd -R -s "$up" -l "127.0.0.1:$P,127.0.0.1:$P"
eq "chain all busy: exit status 2" "$RC" 2
match "chain all busy: the message names the address and reason" "$ERR" \
	"dnsfwd: cannot listen on 127\\.0\\.0\\.1:$P: Address (already )?in use \\(each address of the chain is taken\\)$"

# An address not (yet) on this host binds anyway (IP_FREEBIND), said on a
# line of its own: t-netns.sh has it served once it is added.
start_dnsfwd -R -s "$up" -l 198.51.100.77:0
match "address not on this host: listening all the same" \
	"${DNSFWD_LISTEN[0]}" '^198\.51\.100\.77:[0-9]+$'
ok "address not on this host: said on a line of its own" grep -qE \
	'^dnsfwd: 198\.51\.100\.77:[0-9]+ is not an address of this namespace yet' \
	"$DNSFWD_ERR"
stop_dnsfwd

run_dnsfwd -R -s "$up" -l 127.0.0.1:0 -l "127.0.0.1:$P"
eq "second -l busy: exit status 2" "$RC" 2
match "second -l busy: named" "$ERR" "cannot listen on 127\\.0\\.0\\.1:$P: "

# ---- the default --------------------------------------------------------------------------

out=$(${DNSFWD_WRAP:-} "$DNSFWD" -h 2>&1)
match "-h: the default listen address is 127.0.0.1:53" "$out" \
	"default 127\\.0\\.0\\.1:53"

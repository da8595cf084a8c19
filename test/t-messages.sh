#!/usr/bin/env bash
# t-messages.sh: what a newcomer sees, as a table: each mistake of the
# README's first hour, the exact first line dnsfwd says about it, and its
# exit status (or that it keeps running), so no message regresses
# silently.  Each message names what the user typed and, where one
# exists, the fix.  Then the messages that can repeat, repeated: each said
# at most once a minute per cause.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need setpriv util-linux

# run_for ARGS...: dnsfwd for at most 3 s (exit status in RC, stderr in ERR)
run_for()
{
	# shellcheck disable=SC2086  # DNSFWD_WRAP is a command prefix
	timeout -k 2 3 ${DNSFWD_WRAP:-} "$DNSFWD" "$@" >/dev/null \
	    2>"$T/run.err" </dev/null
	RC=$?
	ERR=$(cat "$T/run.err")
}

# line REGEX: the first line of ERR matching REGEX (to name it in a check)
line()
{
	grep -m 1 -E "$1" <<<"$ERR"
}

start_fakeup up '* answer 192.0.2.1'
start_fakeup held 'slow.test drop' '* answer 192.0.2.1'
AS_NOBODY="setpriv --reuid 65534 --regid 65534 --clear-groups \
--inh-caps=-all --bounding-set=-all"

# ---- the table: a mistake, the first line, the exit ----------------------------
# (RC 124: still running after 3 s, as it should)
run_for -R -x
eq "a mistyped short option: one line" "$ERR" \
	"dnsfwd: -x: unknown option (see dnsfwd --help)"
eq "... exit 1" "$RC" 1
run_for -R --listn 127.0.0.1:53
eq "a mistyped long option: one line, not the usage" "$ERR" \
	"dnsfwd: --listn: unknown option (see dnsfwd --help)"
eq "... exit 1" "$RC" 1
run_for -R -t
eq "a value missing: one line" "$ERR" \
	"dnsfwd: -t: needs a value (see dnsfwd --help)"

# a port taken by another server
run_for -R -s "127.0.0.1#$up_port" -l "127.0.0.1:$up_port"
match "a port in use: the address, the reason, the fallback chain" \
	"$(line 'cannot listen')" \
	"^dnsfwd: cannot listen on 127\\.0\\.0\\.1:$up_port: Address (already )?in use \\(another DNS server listens there: stop it, or give a fallback, -l 127\\.0\\.0\\.1:53,127\\.0\\.0\\.153:53\\)\$"
eq "... exit 2" "$RC" 2

# port 53 as a user
if [ "$(id -u)" = 0 ]; then
	DNSFWD_WRAP="$AS_NOBODY ${DNSFWD_WRAP:-}" run_for -R \
	    -s "127.0.0.1#$up_port" -l 127.0.0.1:53
	eq "port 53 without privilege: the capability, root, or a port above 1023" \
	    "$(line 'cannot listen')" \
	    "dnsfwd: cannot listen on 127.0.0.1:53: Permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE; or give a port above 1023)"
	eq "... exit 2" "$RC" 2
fi

# -N NAME as a user (a namespace of the test's own)
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null &&
    ip netns add "dnsfwd-t-$$-msg" 2>/dev/null; then
	track_netns "dnsfwd-t-$$-msg"
	DNSFWD_WRAP="$AS_NOBODY ${DNSFWD_WRAP:-}" run_for -R \
	    -s "127.0.0.1#$up_port" -l 127.0.0.1:0 -N "dnsfwd-t-$$-msg" \
	    -l 127.0.0.1:5399
	eq "-N NAME as a user: the path and the capability, skipped" \
	    "$(line 'netns')" \
	    "dnsfwd: --netns /run/netns/dnsfwd-t-$$-msg: Operation not permitted (entering a namespace needs CAP_SYS_ADMIN); skipped"
	eq "... and it keeps serving (still running)" "$RC" 124
	ok "... no internal step named (setns)" bash -c \
	    "! grep -q setns '$T/run.err'"
fi

# -r with a mistyped file
run_for -r "$T/no/such/resolv.conf" -l 127.0.0.1:0
eq "-r a mistyped file: said at once, naming it" \
	"$(line 'no/such')" \
	"dnsfwd: -r $T/no/such/resolv.conf: no such file yet (check the path); waiting for $T/no/such/resolv.conf to appear"
eq "... still running (it may appear)" "$RC" 124

# the netcat replacement and the allowlist: ready at once, no warning
mkfifo "$T/rfifo"
for args in "-R -a /#/" "-R -a /#/ -s /allowed.example/127.0.0.1#$up_port"; do
	t0=$(now_ms)
	# shellcheck disable=SC2086  # the words are the options
	${DNSFWD_WRAP:-} "$DNSFWD" $args -l 127.0.0.1:0 --ready-fd 3 \
	    3>"$T/rfifo" 2>"$T/ready.err" &
	pid=$!
	track_pid "$pid"
	read -r -t 8 _ <"$T/rfifo"
	ms=$(($(now_ms) - t0))
	lt "$args: ready at once (ms; it was 5019)" "$ms" 2500
	eq "$args: no warning about upstreams" "$(grep -c 'upstream' \
	    "$T/ready.err")" 0
	_reap "$pid"
done
run_for -h
ok "--help: the default follow order, the stub first" bash -c \
	"timeout 3 ${DNSFWD_WRAP:-} '$DNSFWD' -h | tr -s ' \\n' '  ' | grep -q \
	'stub of systemd-resolved.*its uplink servers as failover.*else /run/systemd/resolve/resolv.conf.*else /etc/resolv.conf'"

# an upstream that stops answering: said without -v, once, and its return
start_dnsfwd -R -s "127.0.0.1#$held_port" -t 300
q slow.test +time=4
ok "an upstream not answering: said without -v, naming it" wait_for 10 \
	grep -qx "dnsfwd: upstream 127.0.0.1#$held_port: not answering; asked only when the others fail, and probed until it answers" \
	"$DNSFWD_ERR"
_back()
{
	q "back$RANDOM.test" +time=4
	grep -qx "dnsfwd: upstream 127.0.0.1#$held_port: answering again" \
	    "$DNSFWD_ERR"
}
ok "... and its return" wait_for 15 _back
eq "... each once" "$(grep -c "127.0.0.1#$held_port: not answering" \
	"$DNSFWD_ERR")" 1
stop_dnsfwd

# ---- messages that can repeat, repeated ----------------------------------------
# a resolv.conf that names dnsfwd itself, rewritten 20 times
printf "nameserver 127.0.0.61\\n" >"$T/self.conf"
start_dnsfwd -r "$T/self.conf" -l 127.0.0.61:53 -s "127.0.0.1#$up_port"
for i in $(seq 1 20); do
	printf "nameserver 127.0.0.61\\n# %d\\n" "$i" >"$T/self.new"
	mv -f "$T/self.new" "$T/self.conf"
	hup		# read now: each of the 20 is read
done
q after.test
eq "a self-naming resolv.conf rewritten 20 times: said once" \
	"$(grep -c 'skipping nameserver' "$DNSFWD_ERR")" 1
stop_dnsfwd

# a descriptor limit too low for TCP
if command -v prlimit >/dev/null; then
	DNSFWD_WRAP="prlimit --nofile=16 ${DNSFWD_WRAP:-}" run_for -R \
	    -s "127.0.0.1#$up_port" -l 127.0.0.1:0
	eq "--nofile=16: TCP refused, and said" "$(line 'TCP')" \
	    "dnsfwd: descriptor limit 16: none left for TCP clients, whose connections are refused (raise ulimit -n)"
fi

# refused strangers: 8 clients, 25 queries each, at most a line each
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
	NS=dnsfwd-t-$$-str
	new_netns "$NS"
	for i in $(seq 2 9); do
		ip -n "$NS" addr add "10.62.0.$i/32" dev lo
	done
	ip -n "$NS" addr add 10.62.1.1/32 dev lo
	DNSFWD_WRAP="ip netns exec $NS ${DNSFWD_WRAP:-}" start_dnsfwd -R -a /#/ \
	    -l 10.62.1.1:53 --allow 10.99.0.0/16
	for k in $(seq 1 25); do
		for i in $(seq 2 9); do
			echo "-b 10.62.0.$i s$i-$k.test"
		done
	done >"$T/strangers"
	ip netns exec "$NS" dig +tries=1 +time=1 @10.62.1.1 -f "$T/strangers" \
	    >"$T/strangers.out" 2>&1
	eq "8 strangers: each REFUSED" "$(grep -c 'status: REFUSED' \
	    "$T/strangers.out")" 200
	lines=$(grep -c '^dnsfwd: refused ' "$DNSFWD_ERR")
	ge "8 strangers x 25 queries: said ($lines lines)" "$lines" 1
	ge "... at most a line each, not one per query" 8 "$lines"
	stop_dnsfwd

	# more than 64 networks: each address change reads them again
	DNSFWD_WRAP="ip netns exec $NS ${DNSFWD_WRAP:-}" start_dnsfwd -R -a /#/ \
	    -l 10.62.1.1:53
	for i in $(seq 1 80); do
		ip -n "$NS" addr add "10.70.$i.1/24" dev lo
	done
	ok "more than 64 networks: said" wait_for 10 grep -q \
	    'more than 64 networks' "$DNSFWD_ERR"
	for i in $(seq 1 40); do
		ip -n "$NS" addr del "10.70.$i.1/24" dev lo
		ip -n "$NS" addr add "10.70.$i.1/24" dev lo
		# a query answered: the change was read before it
		QWRAP="ip netns exec $NS" q "c$i.test" >/dev/null
	done
	eq "... once, over 160 more address changes" \
	    "$(grep -c 'more than 64 networks' "$DNSFWD_ERR")" 1
	stop_dnsfwd
fi

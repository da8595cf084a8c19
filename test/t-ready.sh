#!/usr/bin/env bash
# t-ready.sh: readiness for supervisors.  --ready-fd N gets a newline and is
# closed once every listener is bound and the default list has servers (or
# the 5 s start hold ran out, with a warning): silent during the start race.
# NOTIFY_SOCKET (a path, or @abstract) gets READY=1, and STATUS= when the
# list changes.  --pid-file is written once listening and removed on exit.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need python3 python3

start_fakeup up '* answer 192.0.2.1'
RC=$T/resolv.conf

# ---- --ready-fd: silent until the file gives servers ----------------------
: >"$T/ready.out"
exec 3>"$T/ready.out"
start_dnsfwd -r "$RC" --ready-fd 3
exec 3>&-
sleep 0.5	# the observation window: nothing may come in it
eq "ready fd: silent during the start race" "$(wc -c <"$T/ready.out")" 0
ok "ready fd: still open in dnsfwd" test -e "/proc/$DNSFWD_PID/fd/3"
_ready() { [ "$(wc -c <"$T/ready.out")" -eq 1 ]; }
t0=$(date +%s%N)
printf 'nameserver 127.0.0.1\n' >"$RC"	# servers at last (port 53: unused)
ok "ready fd: one newline once the file gives servers" wait_for 10 _ready
lt "ready fd: ... at once (ms)" $((($(date +%s%N) - t0) / 1000000)) 1500
ok "ready fd: then closed" wait_for 10 test ! -e "/proc/$DNSFWD_PID/fd/3"
stop_dnsfwd

# ---- the hold runs out: ready all the same, said --------------------------
rm -f "$RC"
: >"$T/ready.out"
exec 3>"$T/ready.out"
start_dnsfwd -r "$RC" --ready-fd 3
exec 3>&-
ok "no file at all: ready when the 5 s hold runs out" wait_for 20 _ready
ok "no file at all: with a warning" grep -q \
	'ready, but with no upstream after 5 s' "$DNSFWD_ERR"
stop_dnsfwd

# ---- NOTIFY_SOCKET -----------------------------------------------------------
# listen SOCKET OUT: a unix datagram socket (a path, or @name) writing each
# message it gets, one line per field, to OUT.
listen()
{
	python3 - "$1" "$2" <<'PY' &
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + path[1:] if path.startswith("@") else path)
open(out + ".up", "w").close()
s.settimeout(30)
with open(out, "a") as f:
    while True:
        try:
            m = s.recv(4096)
        except socket.timeout:
            break
        f.write(m.decode() + "\n")
        f.flush()
PY
	NOTIFY_PID=$!
	track_pid "$NOTIFY_PID"
	wait_for 10 test -e "$2.up"
}

printf 'nameserver 127.0.0.1\n' >"$RC"
listen "$T/notify.sock" "$T/notify.out"
NOTIFY_SOCKET=$T/notify.sock start_dnsfwd -r "$RC" -l 127.0.0.1:0
ok "NOTIFY_SOCKET: READY=1" wait_for 10 grep -qx 'READY=1' "$T/notify.out"
ok "NOTIFY_SOCKET: STATUS with it" grep -q '^STATUS=serving' \
	"$T/notify.out"
printf 'nameserver 127.0.0.2\n' >"$T/rc.new"
mv "$T/rc.new" "$RC"
ok "NOTIFY_SOCKET: STATUS= when the upstream list changes" wait_for 10 \
	grep -qx 'STATUS=upstreams: 127.0.0.2#53' "$T/notify.out"
stop_dnsfwd

listen "@dnsfwd-t-$$" "$T/abstract.out"
NOTIFY_SOCKET=@dnsfwd-t-$$ start_dnsfwd -R -s "127.0.0.1#$up_port"
ok "NOTIFY_SOCKET=@name (abstract): READY=1" wait_for 10 grep -qx \
	'READY=1' "$T/abstract.out"
stop_dnsfwd

# ---- --pid-file --------------------------------------------------------------
start_dnsfwd -R -s "127.0.0.1#$up_port" --pid-file "$T/dnsfwd.pid"
eq "--pid-file: the process ID, once listening" "$(cat "$T/dnsfwd.pid")" \
	"$DNSFWD_PID"
stop_dnsfwd
ok "--pid-file: removed on exit" test ! -e "$T/dnsfwd.pid"

# shellcheck disable=SC2086  # DNSFWD_WRAP is a command prefix
out=$(${DNSFWD_WRAP:-} "$DNSFWD" -R -s 127.0.0.1 --ready-fd 987 2>&1)
eq "--ready-fd with a closed descriptor: usage error" "$?" 1
match "--ready-fd: says why" "$out" 'not an open descriptor'

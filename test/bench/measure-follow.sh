#!/usr/bin/env bash
# test/bench/measure-follow.sh: how long a change of the resolv file takes to reach
# a client, for dnsfwd (inotify), dnsfwd --poll 1 and dnsmasq
# --resolv-file.  Not part of "make test"; run it by hand:
#
#	bash test/bench/measure-follow.sh [N]		(N rewrites each, default 100)
#
# Each rewrite replaces the file atomically (rename), naming upA and upB in
# turn, after a random pause of 0-1.1 s (so that the change falls at a
# random phase of any periodic check, as a user's would); at the same
# instant a client starts asking, back to back, names
# never asked before (so no cache can answer), until the answer comes from
# the new upstream.  The time from the rename to that answer is one sample,
# in ms; a change not seen within 5 s counts as a miss (sampled as 5000).
# Prints the median, the 90th percentile and the maximum per forwarder.
# Needs root (the upstreams listen on 127.0.20.1:53 and 127.0.20.2:53).
# shellcheck source=../lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=../lib-follow.sh
. "$(dirname "$0")/../lib-follow.sh"
follow_init 127.0.20
N=${1:-100}
LIMIT=5000

start_fakeup_at upA 127.0.20.1 '* answer 192.0.2.1'
start_fakeup_at upB 127.0.20.2 '* answer 192.0.2.2'
RC=$T/etc/resolv.conf
mkdir -p "$T/etc"

# measure LABEL PORT: N rewrites against the forwarder on 127.0.0.1:PORT,
# which follows $RC and starts on upA.
measure()
{
	local label=$1 port=$2 i ip x r ms samples=() miss=0 stats

	# It must answer from upA first.
	dq 127.0.0.1 "$port" -u 192.0.2.1 -d 5000 -t 200 >/dev/null
	if [ "$DQ_MS" -lt 0 ]; then
		echo "# $label: never answered from upA: $DQ"
		return 1
	fi
	for ((i = 1; i <= N; i++)); do
		if ((i % 2)); then
			x=2 ip=192.0.2.2
		else
			x=1 ip=192.0.2.1
		fi
		printf '%s\n' "# rewrite $i" "nameserver 127.0.20.$x" \
		    >"$T/etc/.new"
		# A random phase against any periodic check: 0-1.1 s.
		r=$((RANDOM % 1100))
		sleep "$((r / 1000)).$(printf '%03d' $((r % 1000)))"
		dq 127.0.0.1 "$port" -R "$T/etc/.new $RC" -u "$ip" \
		    -d "$LIMIT" -t 200
		ms=$DQ_MS
		if [ "$ms" -lt 0 ]; then
			miss=$((miss + 1))
			ms=$LIMIT
		fi
		samples+=("$ms")
	done
	stats=$(printf '%s\n' "${samples[@]}" | sort -n | awk '
		{ v[NR] = $1; sum += $1 }
		END {
			med = NR % 2 ? v[(NR + 1) / 2] : \
			    (v[NR / 2] + v[NR / 2 + 1]) / 2
			p90 = v[int(NR * 0.9 + 0.999)]
			printf "median %6.1f ms  p90 %5d ms  max %5d ms  " \
			    "min %4d ms  mean %6.1f ms", med, p90, v[NR], v[1],
			    sum / NR
		}')
	printf '%-22s %s  missed %d/%d\n' "$label" "$stats" "$miss" "$N"
	printf '%s\n' "${samples[@]}" >"$T/$label.samples"
}

# stop_pid PID: as lib.sh's _reap.
stop_pid()
{
	_reap "$1"
}

# _alive_and_answers PID PORT: PID runs and 127.0.0.1:PORT answers.
_alive_and_answers()
{
	_alive "$1" || return 1
	dq 127.0.0.1 "$2" -c 1 -t 200 -d 300
	case $(dq_keys) in
	TIMEOUT | NETERR | "") return 1 ;;
	esac
}

echo "# $N atomic rewrites each; change-to-effect as a client sees it"
echo "# $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

printf '%s\n' 'nameserver 127.0.20.1' >"$RC"
start_dnsfwd -r "$RC"
measure "dnsfwd (inotify)" "$DNSFWD_PORT"
echo "#   dnsfwd logged $(grep -c 'upstreams:' "$DNSFWD_ERR") list changes"
stop_dnsfwd

printf '%s\n' 'nameserver 127.0.20.1' >"$RC"
start_dnsfwd -r "$RC" --poll 1
measure "dnsfwd --poll 1" "$DNSFWD_PORT"
stop_dnsfwd

if command -v dnsmasq >/dev/null 2>&1; then
	printf '%s\n' 'nameserver 127.0.20.1' >"$RC"
	started=
	for ((try = 0; try < 10; try++)); do
		[ -n "$started" ] && break
		port=$((20000 + RANDOM % 40000))
		ss -Hlun "sport = :$port" | grep -q . && continue
		dnsmasq -k --no-hosts -C /dev/null -p "$port" \
		    --listen-address=127.0.0.1 --bind-interfaces -u root \
		    --resolv-file="$RC" 2>"$T/dnsmasq.err" &
		pid=$!
		track_pid "$pid"
		if wait_for 30 _alive_and_answers "$pid" "$port"; then
			started=$port
		else
			stop_pid "$pid"
		fi
	done
	if [ -n "$started" ]; then
		measure "dnsmasq $(dnsmasq --version | awk 'NR == 1 { print $3 }')" \
		    "$started"
		stop_pid "$pid"
	else
		echo "# dnsmasq did not start: $(tail -n 3 "$T/dnsmasq.err")"
	fi
else
	echo "# dnsmasq not installed: skipped"
fi

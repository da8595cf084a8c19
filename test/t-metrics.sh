#!/usr/bin/env bash
# t-metrics.sh: --metrics, read as Prometheus reads it, and the CHAOS
# statistics, read as dnsmasq_exporter reads them.
#  - the body parses with python3-prometheus-client's parser (and
#    promtool check metrics where installed): every name of the contract,
#    its labels, values that match what the test did, counters that only
#    go up, a histogram whose count is the answers;
#  - HTTP/1.0 and 1.1, 404 elsewhere, 400 for garbage;
#  - stalled, trickling and surplus scrapers: closed at their deadline,
#    never delaying a DNS answer meanwhile;
#  - who may scrape: the DNS listeners' rule (a namespace of the test's
#    own with a routed client);
#  - CHAOS TXT: the dnsmasq names side by side with dnsmasq itself, the
#    same number of strings in the same form, NOTIMP for other names,
#    never forwarded.
# shellcheck source=lib.sh disable=SC2154  # NAME_port etc. come from lib.sh
. "$(dirname "$0")/lib.sh"
need dig bind9-dnsutils
need curl curl
PY=/usr/bin/python3
if ! "$PY" -c 'import prometheus_client.parser' 2>/dev/null; then
	echo "skip - $SCRIPT: no prometheus_client for $PY" \
	    "(apt-get install python3-prometheus-client)"
	exit 0
fi

start_fakeup up 'drop.test drop' 'nx.test nxdomain' '* answer 192.0.2.1'
start_fakeup up2 'nx.test nxdomain' '* answer 192.0.2.2'
start_dnsfwd -R -s "127.0.0.1#$up_port" -s "127.0.0.1#$up2_port" -t 300 \
	-a /local.test/192.0.2.9 --metrics 127.0.0.1:0
MPORT=$(sed -n 's/^dnsfwd: metrics on 127\.0\.0\.1:\([0-9]*\)$/\1/p' \
	"$DNSFWD_ERR")
ok "said: metrics on 127.0.0.1:PORT (the real port)" test -n "$MPORT"
MURL=http://127.0.0.1:$MPORT/metrics

q a.test
q a.test			# from the cache
q b.test +tcp
q c.test +tcp
q nx.test
q y.local.test
q drop.test		# up times out; up2 answers
q w.test +tcp

# scrape FILE: the body into FILE; its status line in HTTP_STATUS
scrape()
{
	HTTP_STATUS=$(curl -s -o "$1" -w '%{http_code}' --max-time 10 "$MURL")
}

# the checks, in python: the parser of the client library Prometheus
# publishes, and the values the test expects
cat >"$T/check.py" <<'EOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
fams = {f.name: f for f in text_string_to_metric_families(text)}
def samples(name):
    return [s for f in fams.values() for s in f.samples if s.name == name]
def value(name, **labels):
    v = [s.value for s in samples(name)
         if all(s.labels.get(k) == w for k, w in labels.items())]
    return sum(v) if v else None
for line in sys.argv[2:]:
    what, expr = line.split('=', 1)
    try:
        got = eval(expr)
    except Exception as e:
        got = 'error: %s' % e
    print('%s=%s' % (what, got))
EOF
# pyq FILE NAME=EXPR...: evaluate each EXPR over the parsed FILE
pyq()
{
	"$PY" "$T/check.py" "$@" 2>&1
}

scrape "$T/m1"
eq "GET /metrics: 200" "$HTTP_STATUS" 200
ok "the content type is the text format 0.0.4" bash -c \
	"curl -s -D - -o /dev/null '$MURL' | grep -qi '^content-type: text/plain; version=0.0.4'"
res=$(pyq "$T/m1" \
	'families=len(fams)' \
	'names=",".join(sorted(fams))' \
	"udp=value('dnsfwd_queries_total', proto='udp', listener='127.0.0.1:$DNSFWD_PORT', netns='')" \
	"tcp=value('dnsfwd_queries_total', proto='tcp')" \
	"nx=value('dnsfwd_responses_total', rcode='NXDOMAIN')" \
	"noerror=value('dnsfwd_responses_total', rcode='NOERROR')" \
	"cache=value('dnsfwd_answers_total', source='cache')" \
	"local=value('dnsfwd_answers_total', source='local')" \
	"upstream=value('dnsfwd_answers_total', source='upstream')" \
	"upq=value('dnsfwd_upstream_queries_total', upstream='127.0.0.1#$up_port')" \
	"timeouts=value('dnsfwd_upstream_failures_total', upstream='127.0.0.1#$up_port', reason='timeout')" \
	"up2=value('dnsfwd_upstream_up', upstream='127.0.0.1#$up2_port')" \
	"hcount=value('dnsfwd_upstream_duration_seconds_count')" \
	"hinf=value('dnsfwd_upstream_duration_seconds_bucket', le='+Inf')" \
	"answers_up=value('dnsfwd_upstream_queries_total') - value('dnsfwd_upstream_failures_total')" \
	"entries=value('dnsfwd_cache_entries')" \
	"hits=value('dnsfwd_cache_hits_total')" \
	"inflight=value('dnsfwd_inflight')" \
	"ns=value('dnsfwd_namespaces')")
diag "$(tr '\n' ' ' <<<"$res")"
get() { sed -n "s/^$1=//p" <<<"$res"; }
ok "parsed by prometheus_client: no error" bash -c "! grep -q 'error:' <<<'$res'"
for n in dnsfwd_queries dnsfwd_responses dnsfwd_answers dnsfwd_refused \
    dnsfwd_upstream_queries dnsfwd_upstream_failures dnsfwd_upstream_up \
    dnsfwd_upstream_duration_seconds dnsfwd_cache_entries \
    dnsfwd_cache_bytes dnsfwd_cache_hits dnsfwd_cache_misses \
    dnsfwd_inflight dnsfwd_tcp_connections dnsfwd_namespaces; do
	match "the family $n is there" ",$(get names)," ",$n,"
done
eq "queries, udp, this listener: the 5 UDP queries" "$(get udp)" 5.0
eq "queries, tcp: the 3 TCP queries" "$(get tcp)" 3.0
eq "responses NXDOMAIN: 1" "$(get nx)" 1.0
eq "responses NOERROR: 7" "$(get noerror)" 7.0
eq "answers from the cache: 1" "$(get cache)" 1.0
eq "answers local: 1" "$(get local)" 1.0
eq "answers from upstreams: 6" "$(get upstream)" 6.0
eq "up's timeouts: the dropped query" "$(get timeouts)" 1.0
eq "up2 is up" "$(get up2)" 1.0
eq "histogram: +Inf bucket = count" "$(get hinf)" "$(get hcount)"
eq "histogram: count = attempts answered" "$(get hcount)" \
	"$(get answers_up)"
eq "cache entries: 5 answers, 1 NXDOMAIN" "$(get entries)" 6.0
eq "in flight: none" "$(get inflight)" 0.0
eq "namespaces: none" "$(get ns)" 0.0
# Prometheus itself: Debian's package, downloaded and extracted (dpkg-deb
# -x), never installed: promtool lints the body, and a real server
# scrapes dnsfwd and answers for dnsfwd_queries_total over its API.
deb=${PROMETHEUS_DEB:-$(ls /var/cache/apt/archives/prometheus_*.deb \
	2>/dev/null | tail -n 1)}
if [ -f "$deb" ] && dpkg-deb -x "$deb" "$T/prom"; then
	ok "promtool check metrics: clean" bash -c \
	    "'$T/prom/usr/bin/promtool' check metrics <'$T/m1' \
	    >'$T/promtool.out' 2>&1"
	diag "promtool: $(cat "$T/promtool.out")"
	PPORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1",
0)); print(s.getsockname()[1])')
	printf '%s\n' 'global:' '  scrape_interval: 1s' 'scrape_configs:' \
	    '  - job_name: dnsfwd' '    static_configs:' \
	    "      - targets: ['127.0.0.1:$MPORT']" >"$T/prom.yml"
	"$T/prom/usr/bin/prometheus" --config.file="$T/prom.yml" \
	    --storage.tsdb.path="$T/prom.data" \
	    --web.listen-address="127.0.0.1:$PPORT" >"$T/prom.log" 2>&1 &
	track_pid $!
	_scraped()
	{
		curl -s --max-time 2 "http://127.0.0.1:$PPORT/api/v1/query?query=dnsfwd_queries_total%7Bproto%3D%22udp%22%7D" \
		    >"$T/prom.json" 2>/dev/null &&
		    grep -q '"result":\[{' "$T/prom.json"
	}
	t0=$(now_ms)
	ok "Prometheus scraped dnsfwd: its API has dnsfwd_queries_total" \
	    wait_for 30 _scraped
	diag "Prometheus: $(($(now_ms) - t0)) ms from start to the series"
	match "... with this listener's UDP queries" "$(cat "$T/prom.json")" \
	    "\"listener\":\"127\\.0\\.0\\.1:$DNSFWD_PORT\".*\"value\":\\[[0-9.]+,\"[1-9][0-9]*\"\\]"
	_reap "$!"
else
	fail "Prometheus to check against" \
	    "apt-get install --download-only prometheus (not installed: extracted)"
fi

# ---- counters only go up --------------------------------------------------------
q more.test
q more.test
scrape "$T/m2"
cat >"$T/mono.py" <<'EOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
def load(p):
    out = {}
    for f in text_string_to_metric_families(open(p).read()):
        if f.type in ('counter', 'histogram'):
            for s in f.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
down = [k for k in a if k in b and b[k] < a[k]]
print(len(a), len(down))
EOF
read -r n down < <("$PY" "$T/mono.py" "$T/m1" "$T/m2")
ge "counters and histogram series compared" "${n:-0}" 40
eq "... none went down between two scrapes" "$down" 0

# ---- HTTP ---------------------------------------------------------------------------
# raw ADDR PORT REQUEST: what the server sends back (python: no curl quirks)
raw()
{
	"$PY" - "$1" "$2" "$3" <<'EOF' 2>&1
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(sys.argv[3].encode('latin-1').decode('unicode_escape').encode('latin-1'))
data = b''
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
print(data.decode('latin-1').split('\r\n')[0])
EOF
}
eq "HTTP/1.0: answered in kind" "$(raw 127.0.0.1 "$MPORT" \
	'GET /metrics HTTP/1.0\r\n\r\n')" "HTTP/1.0 200 OK"
eq "HTTP/1.1 with headers, and closed after" "$(raw 127.0.0.1 "$MPORT" \
	'GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n')" \
	"HTTP/1.1 200 OK"
eq "a query string: still /metrics" "$(raw 127.0.0.1 "$MPORT" \
	'GET /metrics?name[]=x HTTP/1.1\r\n\r\n')" "HTTP/1.1 200 OK"
eq "another path: 404" "$(raw 127.0.0.1 "$MPORT" \
	'GET / HTTP/1.1\r\n\r\n')" "HTTP/1.1 404 Not Found"
eq "/metricsX: 404" "$(raw 127.0.0.1 "$MPORT" \
	'GET /metricsX HTTP/1.1\r\n\r\n')" "HTTP/1.1 404 Not Found"
eq "garbage: 400" "$(raw 127.0.0.1 "$MPORT" '\x00\xff garbage\r\n\r\n')" \
	"HTTP/1.0 400 Bad Request"
eq "POST: 400" "$(raw 127.0.0.1 "$MPORT" \
	'POST /metrics HTTP/1.1\r\n\r\n')" "HTTP/1.0 400 Bad Request"

# ---- scrapers that stall, trickle, or come too many ----------------------------
# Four stall (connected, silent), one trickles a byte a second, a sixth
# comes on top: the DNS answers go on at once all the while.
"$PY" - 127.0.0.1 "$MPORT" >"$T/stall.out" 2>&1 <<'EOF' &
import socket, sys, time
addr = (sys.argv[1], int(sys.argv[2]))
held = [socket.create_connection(addr, timeout=30) for _ in range(3)]
t = socket.create_connection(addr, timeout=30)
t0 = time.time()
extra = socket.create_connection(addr, timeout=30)
extra.settimeout(5)
try:
    print('surplus:', 'closed' if extra.recv(10) == b'' else 'answered')
except Exception as e:
    print('surplus:', 'open (%s)' % e)
closed_at = None
for c in b'GET /metrics HTTP/1.1\r\n\r\n':
    try:
        t.send(bytes([c]))
    except OSError:
        closed_at = time.time() - t0
        break
    time.sleep(1)
held[0].settimeout(30)
try:
    held[0].recv(10)
    print('stalled: closed after %.1f s' % (time.time() - t0))
except Exception as e:
    print('stalled: not closed (%s)' % e)
print('trickler: closed after %s s' % ('%.1f' % closed_at if closed_at else 'never'))
EOF
stall=$!
track_pid "$stall"
sleep_until_connected()
{
	[ "$(ss -Htn state established "( dport = :$MPORT )" | wc -l)" -ge 4 ]
}
wait_for 10 sleep_until_connected
slow=0
for i in $(seq 1 20); do
	t0=$(now_ms)
	q "s$i.test"
	[ "$RCODE" = NOERROR ] || slow=$((slow + 100000))
	[ $(($(now_ms) - t0)) -lt 1000 ] || slow=$((slow + 1))
done
eq "stalled scrapers: 20 DNS answers meanwhile, none slower than 1 s" \
	"$slow" 0
wait "$stall"
_untrack_pid "$stall"
diag "$(cat "$T/stall.out")"
ok "a scraper beyond the few: closed at once" grep -qx 'surplus: closed' \
	"$T/stall.out"
ok "a stalled scraper: closed at its deadline" grep -qE \
	'^stalled: closed after ([4-9]|1[0-9])\.' "$T/stall.out"
ok "a trickling scraper: closed at its deadline" grep -qE \
	'^trickler: closed after ([4-9]|1[0-9])\.' "$T/stall.out"
scrape "$T/m3"
eq "after them: scraped again" "$HTTP_STATUS" 200
ok "dnsfwd alive" _alive "$DNSFWD_PID"
stop_dnsfwd
eq "SIGTERM: exit 0" "$DNSFWD_STATUS" 0

# ---- CHAOS: as dnsmasq answers them -----------------------------------------
if command -v dnsmasq >/dev/null; then
	DMPORT=$(free_port)
	dnsmasq -k --port="$DMPORT" --listen-address=127.0.0.1 \
	    --bind-interfaces --no-resolv --no-hosts \
	    --server="127.0.0.1#$up_port" --server="127.0.0.1#$up2_port" \
	    -c 150 --pid-file="$T/dm.pid" --log-facility="$T/dm.log" \
	    -u "$(id -un)" 2>"$T/dm.err" &
	track_pid $!
	# dnsmasq is up when it answers (a CHAOS question: nothing forwarded)
	wait_for 10 bash -c "dig +tries=1 +time=1 -p $DMPORT @127.0.0.1 \
	    CH TXT version.bind | grep -q 'status: NOERROR'" ||
	    fail "dnsmasq up on port $DMPORT" "$(cat "$T/dm.err")"
	start_dnsfwd -R -s "127.0.0.1#$up_port" -s "127.0.0.1#$up2_port" \
	    -c 150
	for n in cachesize insertions evictions misses hits auth servers; do
		want=$(dig +short +tries=2 +time=2 -p "$DMPORT" @127.0.0.1 \
		    CH TXT "$n.bind" | sed 's/[0-9][0-9]*/N/g')
		q "$n.bind" CH TXT
		got=$(dig +short +tries=2 +time=2 -p "$DNSFWD_PORT" \
		    @127.0.0.1 CH TXT "$n.bind" | sed 's/[0-9][0-9]*/N/g')
		eq "CH TXT $n.bind: the form dnsmasq gives ($want)" "$got" \
		    "$want"
		eq "CH TXT $n.bind: NOERROR, aa, one record" \
		    "$RCODE $(grep -c . <<<"$ANSWER") ${FLAGS/*aa*/aa}" \
		    "NOERROR 1 aa"
	done
	q cachesize.bind CH TXT
	eq "cachesize.bind: -c" "$ANSWER" '"150"'
	q servers.bind CH TXT
	match "servers.bind: ADDR#PORT QUERIES FAILED per upstream" \
	    "$ANSWER" "^\"127\\.0\\.0\\.1#$up_port [0-9]+ [0-9]+\" \"127\\.0\\.0\\.1#$up2_port [0-9]+ [0-9]+\"$"
	q version.bind CH TXT
	match "version.bind: dnsfwd VERSION" "$ANSWER" '^"dnsfwd [0-9]+\.'
	for n in id.server hostname.bind foo.bind; do
		want=$(dig -p "$DMPORT" @127.0.0.1 CH TXT "$n" |
		    sed -n 's/.*status: \([A-Z]*\),.*/\1/p')
		q "$n" CH TXT
		eq "CH TXT $n: $want, as dnsmasq" "$RCODE" "$want"
	done
	q version.bind CH A
	eq "CH A version.bind: NOTIMP" "$RCODE" NOTIMP
	eq "no CHAOS question reached an upstream" \
	    "$(grep -ciE 'bind|id\.server' "$T/up.log" "$T/up2.log" |
	    awk -F: '{ n += $2 } END { print n + 0 }')" 0
	stop_dnsfwd
	kill "$(cat "$T/dm.pid")" 2>/dev/null
else
	fail "dnsmasq (apt-get install dnsmasq)"
fi

# ---- who may scrape: the DNS listeners' rule ------------------------------------
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
	NS=dnsfwd-t-$$-m
	ip netns add "$NS" && track_netns "$NS"
	ip -n "$NS" link set lo up
	ip -n "$NS" link add dm0 type veth peer name dm1
	ip -n "$NS" addr add 10.61.0.1/24 dev dm0
	ip -n "$NS" link set dm0 up
	ip -n "$NS" link set dm1 up
	ip -n "$NS" addr add 192.0.2.61/32 dev lo
	DNSFWD_WRAP="ip netns exec $NS ${DNSFWD_WRAP:-}" start_dnsfwd -R -s 127.0.0.1#53 \
	    -l 10.61.0.1:53 --metrics 10.61.0.1:0 --allow 10.61.0.0/24
	MPORT=$(sed -n 's/^dnsfwd: metrics on 10\.61\.0\.1:\([0-9]*\)$/\1/p' \
	    "$DNSFWD_ERR")
	eq "--allow: an allowed scraper is answered" "$(ip netns exec "$NS" \
	    curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
	    --interface 10.61.0.1 "http://10.61.0.1:$MPORT/metrics")" 200
	eq "--allow: a stranger is closed, no metrics" "$(ip netns exec "$NS" \
	    curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
	    --interface 192.0.2.61 "http://10.61.0.1:$MPORT/metrics")" 000
	stop_dnsfwd
fi

#!/usr/bin/env bash
# DNS benchmark: Cairn's DNS interface against NSD serving the same data.
#
# Data set (bench/dns_zone.py): 100 services x 3 instances, one node per
# instance. NSD serves it as a static zone "consul."; Cairn gets the same
# instances through PUT /v1/catalog/register (node address, service port, a
# passing check), so both answer svcNNN.service.consul SRV with 3 SRV records
# (target svcNNN-nK.node.dc1.consul.) plus the 3 target A records, and
# svcNNN.service.consul A with 3 A records, TTL 0.
#
# Measurements, for each query type (SRV, A), REPS times, alternating servers:
#   throughput: dnsperf -c $DP_CLIENTS -T $DP_THREADS -q $DP_OUTSTANDING -l $DUR
#               (closed loop, as many queries as the server answers)
#   latency:    bench/dns_latency.py, $LAT_N sequential queries (1 in flight),
#               p50/p99/p99.9 from per-query round-trip times; once on an idle
#               server and while dnsperf -Q <rate> keeps a fixed background
#               load on it, for each rate in $LAT_BG_QPS
# Recorded with each run: whole-machine CPU busy % (/proc/stat, 100 = all
# cores busy) and the server's own CPU (utime+stime of its processes, % of one
# core).
#
# Needs: dnsperf, nsd, dig, curl, python3; target/release/cairn (cargo build
# --release -p cairn-cli). Everything listens on 127.0.0.1 only; every process
# this script starts is stopped by PID on exit.
#
# env: REPS (3) DUR (15) DP_CLIENTS (4) DP_THREADS (1) DP_OUTSTANDING (200)
#      LAT_N (20000) LAT_BG_QPS ("20000 50000": background rates for the
#      latency runs, besides idle) NSD_THREADS (2)
#      NSD_PORT (15363) CAIRN_DNS_PORT (18653) CAIRN_HTTP_PORT (18553)
#      CAIRN_ROLE (server; "client" measures a client agent following a -dev
#      server on serf CAIRN_SERF_PORT (18301) and RPC CAIRN_RPC_PORT (18300))
#      CAIRN (target/release/cairn) OUT_DIR (a new mktemp -d directory)
#      QUIET_WAIT (900: seconds to wait for other benchmarks/builds to finish)
set -u

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
REPS="${REPS:-3}"
DUR="${DUR:-15}"
DP_CLIENTS="${DP_CLIENTS:-4}"
DP_THREADS="${DP_THREADS:-1}"
DP_OUTSTANDING="${DP_OUTSTANDING:-200}"
LAT_N="${LAT_N:-20000}"
LAT_BG_QPS="${LAT_BG_QPS:-20000 50000}"
NSD_THREADS="${NSD_THREADS:-2}"
NSD_PORT="${NSD_PORT:-15363}"
CAIRN_DNS_PORT="${CAIRN_DNS_PORT:-18653}"
CAIRN_HTTP_PORT="${CAIRN_HTTP_PORT:-18553}"
# server (default) or client: which kind of agent answers the queries
CAIRN_ROLE="${CAIRN_ROLE:-server}"
CAIRN_SERF_PORT="${CAIRN_SERF_PORT:-18301}"
CAIRN_RPC_PORT="${CAIRN_RPC_PORT:-18300}"
CAIRN="${CAIRN:-$ROOT/target/release/cairn}"
OUT_DIR="${OUT_DIR:-$(mktemp -d -t cairn-dns-bench.XXXXXX)}"
QUIET_WAIT="${QUIET_WAIT:-900}"
# Processes of other benchmarks / builds that would disturb the figures.
BUSY_PATTERN="${BUSY_PATTERN:-kvb-cairn|etcd |loadgen|rustc}"

. "$HERE/lib.sh"
bench_init "$OUT_DIR"

for c in dnsperf nsd dig curl python3; do
    command -v "$c" >/dev/null || die "$c not installed (Debian: apt-get install dnsperf nsd bind9-dnsutils curl python3)"
done
[ -x "$CAIRN" ] || die "$CAIRN missing; build it with cargo build --release -p cairn-cli"
require_port_free "$NSD_PORT" "$CAIRN_DNS_PORT" "$CAIRN_HTTP_PORT"

DATA="$OUT_DIR/data"
python3 "$HERE/dns_zone.py" "$DATA" 100 3 10000

# --- NSD -------------------------------------------------------------------
start_nsd() {
    local d="$OUT_DIR/nsd"; mkdir -p "$d"
    cat >"$d/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$NSD_PORT
    port: $NSD_PORT
    do-ip6: no
    server-count: $NSD_THREADS
    reuseport: yes
    username: ""
    chroot: ""
    zonesdir: "$DATA"
    database: ""
    zonelistfile: "$d/zone.list"
    xfrdfile: "$d/xfrd.state"
    xfrdir: "$d"
    pidfile: "$d/nsd.pid"
    logfile: "$d/nsd.log"
    verbosity: 0
    hide-version: yes
    # Debian's NSD rate-limits responses (RRL) by default; a single-source
    # benchmark would trip it.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: consul
    zonefile: "$DATA/consul.zone"
EOF
    start_bg "$d/nsd.stderr" nsd -d -c "$d/nsd.conf"
    NSD_PID="$LAST_PID"
}

# --- Cairn -----------------------------------------------------------------
start_cairn() {
    local d="$OUT_DIR/cairn"; mkdir -p "$d"
    if [ "$CAIRN_ROLE" = client ]; then
        # A server with DNS and HTTP of its own out of the way, and the measured client
        # agent on the benchmark ports: the client answers DNS from its replica of the
        # catalog and forwards the registrations to the server.
        start_bg "$d/server.log" "$CAIRN" agent -dev -node bench-server -http-port 0 \
            -dns-port -1 -serf-lan-port "$CAIRN_SERF_PORT" -server-port "$CAIRN_RPC_PORT" \
            -log-level warn
        SERVER_PID="$LAST_PID"
        start_bg "$d/agent.log" "$CAIRN" agent -node bench-client -bind 127.0.0.1 \
            -http-port "$CAIRN_HTTP_PORT" -dns-port "$CAIRN_DNS_PORT" \
            -serf-lan-port "$((CAIRN_SERF_PORT + 1))" \
            -retry-join "127.0.0.1:$CAIRN_SERF_PORT" -retry-interval 1s -log-level warn
    else
        start_bg "$d/agent.log" "$CAIRN" agent -dev -http-port "$CAIRN_HTTP_PORT" \
            -dns-port "$CAIRN_DNS_PORT" -serf-lan-port 0 -server-port 0 -log-level warn
    fi
    CAIRN_PID="$LAST_PID"
    wait_http "http://127.0.0.1:$CAIRN_HTTP_PORT/v1/status/leader" 30 "$CAIRN_PID" \
        || die "cairn did not come up; see $d/agent.log"
    # a leader must be elected before writes are accepted
    local i
    for i in $(seq 1 100); do
        curl -s "http://127.0.0.1:$CAIRN_HTTP_PORT/v1/status/leader" | grep -q ':' && break
        sleep 0.1
    done
    local t0 t1 bad=0
    t0=$(date +%s.%N)
    while IFS= read -r body; do
        code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data "$body" \
            "http://127.0.0.1:$CAIRN_HTTP_PORT/v1/catalog/register")
        [ "$code" = 200 ] || bad=$((bad + 1))
    done <"$DATA/register.jsonl"
    t1=$(date +%s.%N)
    [ "$bad" = 0 ] || die "$bad catalog registrations failed"
    log "cairn: registered $(wc -l <"$DATA/register.jsonl") instances in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s"
}

wait_dns() { # PORT
    local i
    for i in $(seq 1 100); do
        if dig +time=1 +tries=1 @127.0.0.1 -p "$1" svc099.service.consul SRV 2>/dev/null \
            | grep -q 'ANSWER: 3,'; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

wait_quiet "$BUSY_PATTERN" "$QUIET_WAIT"
start_nsd
start_cairn
wait_dns "$NSD_PORT" || die "nsd did not answer; see $OUT_DIR/nsd/"
wait_dns "$CAIRN_DNS_PORT" || die "cairn DNS did not answer 3 SRV records; see $OUT_DIR/cairn/"

port_of() { case "$1" in nsd) echo "$NSD_PORT" ;; cairn) echo "$CAIRN_DNS_PORT" ;; esac; }
pids_of() { # server -> its PIDs (the nsd we start becomes xfrd; it forks
            # "main", which forks the server processes)
    case "$1" in
        nsd) descendants "$NSD_PID" ;;
        cairn) echo "$CAIRN_PID" ;;
    esac
}

for srv in nsd cairn; do
    p=$(port_of "$srv")
    {
        echo "### $srv: dig @127.0.0.1 -p $p svc007.service.consul SRV / A"
        dig @127.0.0.1 -p "$p" svc007.service.consul SRV +nostats +nocmd
        dig @127.0.0.1 -p "$p" svc007.service.consul A +nostats +nocmd +noquestion
    } >"$OUT_DIR/dns-sample-$srv.txt" 2>&1
done

RES="$OUT_DIR/results.jsonl"
: >"$RES"

# dnsperf_tput SERVER QTYPE REP
dnsperf_tput() {
    local srv="$1" qt="$2" rep="$3" p qf raw c0 c1 s0 s1
    p=$(port_of "$srv"); qf="$DATA/queries-$(echo "$qt" | tr A-Z a-z).txt"
    raw="$OUT_DIR/dnsperf-$srv-$qt-$rep.txt"
    wait_quiet "$BUSY_PATTERN" "$QUIET_WAIT"
    local pids; pids=$(pids_of "$srv")
    c0=$(cpu_snap); s0=$(proc_ticks $pids)
    timeout $((DUR + 30)) dnsperf -s 127.0.0.1 -p "$p" -d "$qf" -l "$DUR" \
        -c "$DP_CLIENTS" -T "$DP_THREADS" -q "$DP_OUTSTANDING" -t 2 >"$raw" 2>&1
    c1=$(cpu_snap); s1=$(proc_ticks $pids)
    python3 "$HERE/dns_parse.py" "$raw" \
        "{\"kind\":\"tput\",\"server\":\"$srv\",\"qtype\":\"$qt\",\"rep\":$rep,\"machine_busy_pct\":$(cpu_busy_pct "$c0" "$c1"),\"server_cpu_pct\":$(ticks_pct "$s0" "$s1")}" \
        >>"$RES" || die "could not parse $raw"
    tail -1 "$RES" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("  %-5s %-3s rep %d: %9.0f qps  avg %.3f ms  max %.3f ms  lost %d  resp %dB  server CPU %.0f%%  machine %.0f%%  %s" % (d["server"], d["qtype"], d["rep"], d["qps"], d["avg_ms"], d["max_ms"], d["lost"], d["resp_bytes"], d["server_cpu_pct"], d["machine_busy_pct"], d["rcodes"]))' >&2
    sleep 1
}

# latency SERVER QTYPE REP BGQPS (0 = idle)
latency() {
    local srv="$1" qt="$2" rep="$3" bg="$4" p qf c0 c1 line bgpid="" t0 t1
    p=$(port_of "$srv"); qf="$DATA/queries-$(echo "$qt" | tr A-Z a-z).txt"
    wait_quiet "$BUSY_PATTERN" "$QUIET_WAIT"
    if [ "$bg" -gt 0 ]; then
        start_bg "$OUT_DIR/dnsperf-bg-$srv-$qt-$rep.txt" timeout 60 dnsperf -s 127.0.0.1 -p "$p" \
            -d "$qf" -l 20 -c 4 -q 200 -Q "$bg" -t 2
        bgpid="$LAST_PID"
        sleep 1
    fi
    c0=$(cpu_snap); t0=$(date +%s.%N)
    line=$(python3 "$HERE/dns_latency.py" 127.0.0.1 "$p" "$qf" "$LAT_N")
    c1=$(cpu_snap); t1=$(date +%s.%N)
    if [ -n "$bgpid" ]; then
        # the sampler must finish while the background load is still running
        kill -0 "$bgpid" 2>/dev/null || log "WARNING: background dnsperf ended before the sampler"
        stop_pid "$bgpid"
    fi
    printf '%s\n' "$line" | python3 -c "import json,sys; d=json.load(sys.stdin); d.update(kind='lat',server='$srv',qtype='$qt',rep=$rep,bg_qps=$bg,machine_busy_pct=$(cpu_busy_pct "$c0" "$c1"),elapsed_s=round($t1-$t0,2)); print(json.dumps(d))" >>"$RES"
    tail -1 "$RES" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("  %-5s %-3s rep %d latency (bg %5d qps): p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms  lost %d  machine %.0f%%" % (d["server"], d["qtype"], d["rep"], d["bg_qps"], d["p50_ms"], d["p99_ms"], d["p999_ms"], d["max_ms"], d["lost"], d["machine_busy_pct"]))' >&2
}

log "== throughput: dnsperf -c $DP_CLIENTS -T $DP_THREADS -q $DP_OUTSTANDING -l $DUR, $REPS reps, servers alternating"
for rep in $(seq 1 "$REPS"); do
    for qt in SRV A; do
        for srv in nsd cairn; do
            dnsperf_tput "$srv" "$qt" "$rep"
        done
    done
done

log "== latency: $LAT_N sequential queries, idle and with $LAT_BG_QPS qps background"
for rep in $(seq 1 "$REPS"); do
    for qt in SRV A; do
        for srv in nsd cairn; do
            latency "$srv" "$qt" "$rep" 0
            for bg in $LAT_BG_QPS; do latency "$srv" "$qt" "$rep" "$bg"; done
        done
    done
done

# Cairn must still be healthy and answering after the load.
kill -0 "$CAIRN_PID" 2>/dev/null || die "cairn exited during the run; see $OUT_DIR/cairn/agent.log"
grep -ci 'panic' "$OUT_DIR/cairn/agent.log" >/dev/null && log "WARNING: panic in cairn log"

python3 "$HERE/dns_report.py" "$RES" | tee "$OUT_DIR/summary.md"
log "raw output and results.jsonl in $OUT_DIR"

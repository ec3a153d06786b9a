#!/usr/bin/env bash
# What security costs: KV GET and PUT on a durable Cairn server with ACLs enforced
# (default deny, a token holding one `key_prefix` rule) over HTTPS, against the same
# server with ACLs off over plain HTTP, in the same run. A benchmark: it prints
# figures and never fails on them.
#
#   bench/acl_tls.sh
#
# What it does:
#   1. builds nothing: it uses CAIRN_BIN (cargo build --release -p cairn-cli first);
#   2. makes a CA and a server certificate with `cairn tls ca create` and
#      `cairn tls cert create -server` in the run directory;
#   3. starts two single-server agents side by side (-server -bootstrap-expect=1, each
#      with its own data dir on the same filesystem):
#        plain:  ACLs off, HTTP only;
#        secure: acl { enabled, default_policy = "deny" }, HTTPS on its own port
#                (the HTTP port is loopback-only and unused by the load);
#      on the secure one it creates a policy `key_prefix "bench/" { policy = "write" }`
#      and a token holding it, and checks that anonymous is refused (403);
#   4. fills KEYS keys on both, then measures with wrk (keep-alive connections, so the
#      TLS handshake is paid once per connection, as a real client pays it) PUT and GET
#      of bench/<random key> at each concurrency in CONCS, REPS times, alternating
#      plain and secure in every repetition so that the machine's drift hits both;
#   5. prints the medians, p50/p99 and the secure/plain ratio per workload.
#
# Environment (defaults in brackets):
#   CAIRN_BIN [<repo>/target/release/cairn]   DUR [10]  REPS [3]  CONCS ["64"]
#   WRK_THREADS [1]  KEYS [1000]  VALUE_SIZE [100]  OUT_DIR [/tmp/cairn-bench-acl-tls-<time>]
#   SPLIT [1]: also measure the secure agent over its plain HTTP port (ACLs without TLS),
#              to tell the cost of ACLs from the cost of TLS
#   PERF [0]: 1 records a CPU profile (perf) of each agent during its first run of each workload
#   WORKLOADS ["put get"]: which of the two to measure
#   SYSCALLS [0]: 1 counts each agent's system calls and context switches per request
#            (perf stat) in every run, printed after the run's figures
#   INSTR [0]: 1 runs both agents under valgrind's callgrind and reports the instructions
#            each executes per request in user space (deterministic, unlike req/s on a
#            shared machine; system calls are counted by SYSCALLS=1 instead). Use a low
#            concurrency and no PIN/CPU_QUOTA with it, e.g. INSTR=1 CONCS=8 DUR=10 REPS=1
#   PIN [0]: 1 runs both agents on CPU 1 and wrk on CPU 0 (taskset), so that the load
#            generator's own TLS work does not take CPU from the agent being measured
#   CPU_QUOTA []: a percentage of one CPU (e.g. 60) that each agent may use at most
#            (a cgroup CPU quota, so root is needed); with PIN=1 the load generator then
#            has a CPU of its own with room to spare and never sets the pace: the ratio is
#            that of the two agents' capacity on the same CPU budget
#   BASE_PORT [18600]: the agents use BASE_PORT..BASE_PORT+7
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
. "$HERE/lib.sh"

CAIRN_BIN="${CAIRN_BIN:-$REPO/target/release/cairn}"
DUR="${DUR:-10}"
REPS="${REPS:-3}"
CONCS="${CONCS:-64}"
WRK_THREADS="${WRK_THREADS:-1}"
KEYS="${KEYS:-1000}"
VALUE_SIZE="${VALUE_SIZE:-100}"
BASE_PORT="${BASE_PORT:-18600}"
SPLIT="${SPLIT:-1}"
PERF="${PERF:-0}"
SYSCALLS="${SYSCALLS:-0}"
WORKLOADS="${WORKLOADS:-put get}"
INSTR="${INSTR:-0}"
STAT_EVENTS="${STAT_EVENTS:-raw_syscalls:sys_enter,context-switches}"
PIN="${PIN:-0}"
CPU_QUOTA="${CPU_QUOTA:-}"
AGENT_PIN=() WRK_PIN=()
if [ "$PIN" = 1 ]; then AGENT_PIN=(taskset -c 1) WRK_PIN=(taskset -c 0); fi
OUT_DIR="${OUT_DIR:-${TMPDIR:-/tmp}/cairn-bench-acl-tls-$(date -u +%Y%m%dT%H%M%S)}"
if [ "$SYSCALLS" = 1 ]; then
    perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1 ||
        die "SYSCALLS=1 needs perf with access to the raw_syscalls tracepoint (apt-get install linux-perf; run as root)"
fi
if [ "$INSTR" = 1 ]; then
    command -v callgrind_control >/dev/null || die "INSTR=1 needs valgrind (apt-get install valgrind)"
    AGENT_PIN+=(valgrind -q --tool=callgrind --dump-instr=no --callgrind-out-file="$OUT_DIR/callgrind.%p")
fi

[ -x "$CAIRN_BIN" ] || die "no Cairn binary at $CAIRN_BIN (cargo build --release -p cairn-cli)"
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
bench_init "$OUT_DIR"

P_HTTP=$BASE_PORT S_HTTP=$((BASE_PORT + 1)) S_HTTPS=$((BASE_PORT + 2))
P_RPC=$((BASE_PORT + 3)) P_SERF=$((BASE_PORT + 4)) S_RPC=$((BASE_PORT + 5)) S_SERF=$((BASE_PORT + 6))
require_port_free $P_HTTP $S_HTTP $S_HTTPS $P_RPC $P_SERF $S_RPC $S_SERF

CERTS="$OUT_DIR/certs"
mkdir -p "$CERTS"
(cd "$CERTS" && "$CAIRN_BIN" tls ca create >/dev/null && "$CAIRN_BIN" tls cert create -server >/dev/null)
MGMT="$(cat /proc/sys/kernel/random/uuid)"

cat >"$OUT_DIR/secure.hcl" <<EOF
acl {
  enabled = true
  default_policy = "deny"
  tokens {
    initial_management = "$MGMT"
    agent = "$MGMT"
  }
}
ports { https = $S_HTTPS }
tls {
  defaults {
    ca_file = "$CERTS/consul-agent-ca.pem"
    cert_file = "$CERTS/dc1-server-consul-0.pem"
    key_file = "$CERTS/dc1-server-consul-0-key.pem"
  }
}
EOF

start_agent() { # NAME HTTP RPC SERF EXTRA...
    local name="$1" http="$2" rpc="$3" serf="$4"; shift 4
    start_bg "$OUT_DIR/$name.log" "${AGENT_PIN[@]}" "$CAIRN_BIN" agent -server -bootstrap-expect=1 \
        -data-dir "$OUT_DIR/data-$name" -node "$name" -client 127.0.0.1 -bind 127.0.0.1 \
        -http-port "$http" -server-port "$rpc" -serf-lan-port "$serf" -dns-port -1 "$@"
}
# cap_cpu NAME PID: holds PID (and the threads it starts) to CPU_QUOTA % of one CPU, in
# 10 ms periods (short, so that a throttled agent waits milliseconds, not tens of them).
CGROUPS=()
cap_cpu() {
    [ -n "$CPU_QUOTA" ] || return 0
    local d
    if [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ]; then # cgroup v1
        d="/sys/fs/cgroup/cpu/cairn-bench-$1-$$"
        mkdir -p "$d" && echo 10000 >"$d/cpu.cfs_period_us" &&
            echo $((CPU_QUOTA * 100)) >"$d/cpu.cfs_quota_us" || die "cannot set a CPU quota in $d"
    elif [ -w /sys/fs/cgroup/cgroup.subtree_control ]; then # cgroup v2
        d="/sys/fs/cgroup/cairn-bench-$1-$$"
        mkdir -p "$d" && echo "$((CPU_QUOTA * 100)) 10000" >"$d/cpu.max" ||
            die "cannot set a CPU quota in $d"
    else
        die "CPU_QUOTA needs a writable cgroup CPU controller (run as root)"
    fi
    echo "$2" >"$d/cgroup.procs" || die "cannot move $1 ($2) into $d"
    CGROUPS+=("$d")
}
trap 'stop_all; for d in "${CGROUPS[@]}"; do rmdir "$d" 2>/dev/null; done' EXIT

start_agent plain $P_HTTP $P_RPC $P_SERF
PLAIN_PID=$LAST_PID
cap_cpu plain "$PLAIN_PID"
start_agent secure $S_HTTP $S_RPC $S_SERF -config-file "$OUT_DIR/secure.hcl"
SECURE_PID=$LAST_PID
cap_cpu secure "$SECURE_PID"

PLAIN="http://127.0.0.1:$P_HTTP"
SECURE="https://127.0.0.1:$S_HTTPS"
CURL_S=(curl -s -m 5 --cacert "$CERTS/consul-agent-ca.pem")
wait_leader() { # URL CURL...
    local url="$1" i; shift
    for i in $(seq 1 $((INSTR == 1 ? 1200 : 300))); do
        case "$("$@" "$url/v1/status/leader" 2>/dev/null || true)" in ""|'""') sleep 0.1 ;; *) return 0 ;; esac
    done
    die "no leader at $url; see $OUT_DIR/*.log"
}
wait_leader "$PLAIN" curl -s -m 1
wait_leader "$SECURE" "${CURL_S[@]}"

# The token the load uses: one key_prefix rule, nothing else.
POLICY_ID=$("${CURL_S[@]}" -X PUT -H "X-Consul-Token: $MGMT" "$SECURE/v1/acl/policy" \
    -d '{"Name":"bench-kv","Rules":"key_prefix \"bench/\" { policy = \"write\" }"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])')
TOKEN=$("${CURL_S[@]}" -X PUT -H "X-Consul-Token: $MGMT" "$SECURE/v1/acl/token" \
    -d "{\"Description\":\"bench\",\"Policies\":[{\"ID\":\"$POLICY_ID\"}]}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["SecretID"])')
code=$("${CURL_S[@]}" -o /dev/null -w '%{http_code}' -X PUT "$SECURE/v1/kv/bench/anon" -d x)
[ "$code" = 403 ] || die "anonymous PUT on the secure agent answered $code, not 403"
code=$("${CURL_S[@]}" -o /dev/null -w '%{http_code}' -H "X-Consul-Token: $TOKEN" "$SECURE/v1/kv/other/x")
[ "$code" = 403 ] || die "a read outside the token's prefix answered $code, not 403"
log "secure agent: anonymous and out-of-prefix requests refused; bench token ${TOKEN:0:8}..."

# wrk scripts: random keys in [0, KEYS), fixed-size value.
cat >"$OUT_DIR/put.lua" <<EOF
local body = string.rep("v", $VALUE_SIZE)
local keys = $KEYS
math.randomseed(os.time())
request = function()
  return wrk.format("PUT", "/v1/kv/bench/" .. math.random(0, keys - 1), nil, body)
end
EOF
cat >"$OUT_DIR/get.lua" <<EOF
local keys = $KEYS
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v1/kv/bench/" .. math.random(0, keys - 1), nil, nil)
end
EOF

fill() { # URL CURL...
    local url="$1" n; shift
    for n in $(seq 0 $((KEYS - 1))); do
        "$@" -o /dev/null -X PUT "$url/v1/kv/bench/$n" --data-binary "$(head -c "$VALUE_SIZE" /dev/zero | tr '\0' v)"
    done
}
log "filling $KEYS keys on each agent"
fill "$PLAIN" curl -s -m 5
fill "$SECURE" "${CURL_S[@]}" -H "X-Consul-Token: $TOKEN"

RESULTS="$OUT_DIR/results.txt"
: >"$RESULTS"
run() { # LABEL WORKLOAD C PID URL [wrk args...]
    local label="$1" work="$2" c="$3" pid="$4" url="$5"; shift 5
    local t0 t1 out rps p50 p99 errs
    t0=$(proc_ticks "$pid")
    local prof=""
    if [ "$PERF" = 1 ] && [ ! -e "$OUT_DIR/perf-$label-$work.data" ]; then
        perf record -q -g -F 999 -p "$pid" -o "$OUT_DIR/perf-$label-$work.data" -- sleep "$DUR" 2>/dev/null &
        prof=$!
    fi
    local stat=""
    if [ "$SYSCALLS" = 1 ]; then
        perf stat -x, -e "$STAT_EVENTS" -p "$pid" -o "$OUT_DIR/stat-$label-$work.txt" -- sleep "$DUR" &
        stat=$!
    fi
    if [ "$INSTR" = 1 ]; then
        callgrind_control -z "$pid" >/dev/null 2>&1 || die "callgrind_control could not zero the counts of $label ($pid)"
    fi
    out=$("${WRK_PIN[@]}" wrk -t "$WRK_THREADS" -c "$c" -d "${DUR}s" --latency -s "$OUT_DIR/$work.lua" "$@" "$url" 2>&1)
    t1=$(proc_ticks "$pid")
    [ -n "$prof" ] && wait "$prof"
    [ -n "$stat" ] && wait "$stat"
    echo "$out" >"$OUT_DIR/wrk-$label-$work-$c-$(date +%s%N).txt"
    rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}')
    [ -n "$rps" ] || die "wrk printed no rate for $label $work: $out"
    echo "$label $work $c $rps $p50 $p99 $errs $(ticks_pct "$t0" "$t1")" | tee -a "$RESULTS" >&2
    if [ "$INSTR" = 1 ]; then
        callgrind_control -d "$label-$work" "$pid" >/dev/null 2>&1 || die "callgrind_control could not dump $label ($pid)"
        local dump reqs ir
        dump=$(grep -l "^desc: Trigger: dump $label-$work\$" "$OUT_DIR"/callgrind."$pid".* 2>/dev/null | sort -V | tail -1 || true)
        [ -n "$dump" ] || die "no callgrind dump for $label $work in $OUT_DIR"
        reqs=$(echo "$out" | awk '/requests in/ {print $1}')
        ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
        awk -v ir="$ir" -v n="$reqs" -v what="$label $work" \
            'BEGIN {printf "  %s: %.0f instructions per request (%d requests)\n", what, ir / n, n}' | tee -a "$OUT_DIR/instructions.txt" >&2
    fi
    if [ -n "$stat" ]; then
        awk -F, -v rps="$rps" -v dur="$DUR" -v what="$label $work" '$3 ~ /sys_enter/ {s = $1} $3 ~ /context-switches/ {cs = $1}
            END {printf "  %s: %.2f system calls and %.2f context switches per request\n", what, s / (rps * dur), cs / (rps * dur)}' \
            "$OUT_DIR/stat-$label-$work.txt" >&2
    fi
}

log "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)${CPU_QUOTA:+; each agent held to $CPU_QUOTA% of a CPU}"
wrk -t 1 -c 8 -d 2s -s "$OUT_DIR/get.lua" "$PLAIN" >/dev/null
wrk -t 1 -c 8 -d 2s -s "$OUT_DIR/get.lua" -H "X-Consul-Token: $TOKEN" "$SECURE" >/dev/null
for rep in $(seq 1 "$REPS"); do
    for c in $CONCS; do
        for work in $WORKLOADS; do
            run plain "$work" "$c" "$PLAIN_PID" "$PLAIN"
            run secure "$work" "$c" "$SECURE_PID" "$SECURE" -H "X-Consul-Token: $TOKEN"
            [ "$SPLIT" = 1 ] && run acl-only "$work" "$c" "$SECURE_PID" "http://127.0.0.1:$S_HTTP" -H "X-Consul-Token: $TOKEN"
        done
    done
done

python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, work, c, rps, p50, p99, errs, cpu = line.split()
    rows.setdefault((work, int(c), label), []).append((float(rps), p50, p99, int(errs), float(cpu)))
print(f"{'workload':8} {'c':>3} {'plain req/s':>12} {'secure req/s':>13} {'ratio':>6}  plain p50/p99      secure p50/p99     errors  server CPU/request plain, secure")
for work, c in sorted({(w, c) for w, c, _ in rows}):
    p, s = rows[(work, c, "plain")], rows[(work, c, "secure")]
    mp, ms = statistics.median(r[0] for r in p), statistics.median(r[0] for r in s)
    def lat(v):
        m = sorted(v, key=lambda r: r[0])[len(v) // 2]
        return f"{m[1]}/{m[2]}"
    errs = sum(r[3] for r in p) + sum(r[3] for r in s)
    # The agent's CPU (% of one core) per request served, median over the runs.
    def us(v):
        return statistics.median(r[4] / 100 / r[0] * 1e6 for r in v)
    print(f"{work:8} {c:>3} {mp:>12.0f} {ms:>13.0f} {ms / mp:>6.2f}  {lat(p):18} {lat(s):18} {errs:<6}  "
          f"{us(p):.1f} us, {us(s):.1f} us (x{us(s) / us(p):.2f})")
    print(f"{'':8} {'':>3} runs plain {[round(r[0]) for r in p]} secure {[round(r[0]) for r in s]}")
    # Each repetition measures plain and secure back to back: their ratio is the steadier
    # comparison when the machine drifts between repetitions.
    paired = sorted(b[0] / a[0] for a, b in zip(p, s))
    print(f"{'':8} {'':>3} paired ratios {[round(x, 2) for x in paired]}, median x{statistics.median(paired):.2f}")
    a = rows.get((work, c, "acl-only"))
    if a:
        ma = statistics.median(r[0] for r in a)
        print(f"{'':8} {'':>3} ACLs without TLS: {ma:.0f} req/s, x{ma / mp:.2f} of plain, p50/p99 {lat(a)}, "
              f"server CPU {us(a):.1f} us/request")
PY
log "raw wrk output and agent logs in $OUT_DIR"

#!/usr/bin/env bash
# The sample portal's discovery cost: GET /stock/AMZN end to end through the
# portal (a DNS SRV query to the agent on every request, then the call to
# stock-price) against calling stock-price directly, at the same concurrency.
# A third target, the portal with a fixed back end (-stock-backend, no DNS),
# separates the cost of the SRV lookup from the cost of the extra HTTP hop.
#
# Usage: bench/portal_vs_direct.sh            (from anywhere)
# Environment: C [16] connections, DUR [10] seconds per run, REPS [3] runs per
#   target (interleaved, the median is reported), WRK_THREADS [1],
#   OUT_DIR [target/bench/portal_vs_direct/<time>], PORTAL_THREADS [tokio's
#   default: one worker per CPU] worker threads of both portals, PERF [unset]: when
#   1, `perf record -g` profiles the SRV portal and the agent during the first
#   portal-srv run (perf-portal.data, perf-agent.data in OUT_DIR; Debian: linux-perf;
#   that run is slowed by the profiling), PORTAL_BIN [target/release/portal] (e.g. an
#   older build, to compare), CAIRN_BIN [target/release/cairn] (likewise, for the agent),
#   SKIP_BUILD [unset] (use the release binaries as they are), QUIET_WAIT [120] seconds
#   to wait, before measuring, until no process matches BUSY_PATTERN [rustc].
# Besides req/s and CPU, each run counts the UDP datagrams the machine received per
# request (/proc/net/snmp): a DNS lookup on loopback is two, so for portal-srv half
# that figure is the SRV lookups per request (below 1 when requests share lookups).
# Needs wrk (Debian package; installed if missing) and builds release binaries
# of cairn, stock-price and portal. Request logs are turned off in every
# process (LOG_REQUESTS=0) so no target pays for log I/O.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/lib.sh

C="${C:-16}"
DUR="${DUR:-10}"
REPS="${REPS:-3}"
WRK_THREADS="${WRK_THREADS:-1}"
PORTAL_ENV=()
[ -n "${PORTAL_THREADS:-}" ] && PORTAL_ENV=(TOKIO_WORKER_THREADS="$PORTAL_THREADS")
OUT_DIR="${OUT_DIR:-$ROOT/target/bench/portal_vs_direct/$(date +%Y%m%d-%H%M%S)}"
bench_init "$OUT_DIR"

if ! command -v wrk >/dev/null; then
    log "installing wrk"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null; } \
        || die "wrk is not installed and could not be installed"
fi

if [ -z "${SKIP_BUILD:-}" ]; then
    log "building release binaries (cairn, stock-price, portal)"
    nice -n 10 cargo build -q --release -p cairn-cli -p stock-price -p portal || die "build failed"
fi
BIN="$ROOT/target/release"
PORTAL_BIN="${PORTAL_BIN:-$BIN/portal}"
CAIRN_BIN="${CAIRN_BIN:-$BIN/cairn}"

# after FILE PATTERN: the first word after PATTERN once it appears (30 s).
after() {
    local i line
    for i in $(seq 1 300); do
        line=$(grep -m1 -o "$2.*" "$1" 2>/dev/null || true)
        if [ -n "$line" ]; then echo "${line#"$2"}" | awk '{print $1}'; return 0; fi
        sleep 0.1
    done
    cat "$1" >&2
    die "no '$2' in $1"
}

start_bg "$OUT_DIR/agent.log" "$CAIRN_BIN" agent -dev -http-port 0 -dns-port 0 -serf-lan-port 0 -server-port 0
AGENT_PID=$LAST_PID
HTTP=$(after "$OUT_DIR/agent.log" "HTTP address: ")
DNS=$(after "$OUT_DIR/agent.log" "DNS address: ")

start_bg "$OUT_DIR/stock-price.log" env PORT=0 BIND=127.0.0.1 LOG_REQUESTS=0 "$BIN/stock-price"
STOCK_PID=$LAST_PID
STOCK=$(after "$OUT_DIR/stock-price.log" "stock-price listening on ")
curl -fsS -X PUT "http://$HTTP/v1/agent/service/register" -d \
    "{\"Name\":\"stock-price\",\"Port\":${STOCK##*:},\"Check\":{\"HTTP\":\"http://$STOCK/health\",\"Interval\":\"10s\"}}" \
    || die "registration failed"
for i in $(seq 1 300); do
    curl -fsS "http://$HTTP/v1/health/service/stock-price?passing" | grep -q ServiceID && break
    [ "$i" = 300 ] && die "stock-price never passed its check"
    sleep 0.1
done

start_bg "$OUT_DIR/portal.log" env "${PORTAL_ENV[@]}" PORT=0 BIND=127.0.0.1 LOG_REQUESTS=0 "$PORTAL_BIN" -dns "$DNS"
PORTAL_PID=$LAST_PID
PORTAL=$(after "$OUT_DIR/portal.log" "portal listening on ")
start_bg "$OUT_DIR/portal-fixed.log" env "${PORTAL_ENV[@]}" PORT=0 BIND=127.0.0.1 LOG_REQUESTS=0 "$PORTAL_BIN" \
    -stock-backend "$STOCK" -weather-backend "$STOCK"
FIXED_PID=$LAST_PID
FIXED=$(after "$OUT_DIR/portal-fixed.log" "portal listening on ")

for url in "http://$STOCK/stock/AMZN" "http://$PORTAL/stock/AMZN" "http://$FIXED/stock/AMZN"; do
    curl -fsS "$url" >/dev/null || die "$url does not answer"
done
curl -fsS "http://$PORTAL/stock/AMZN" | grep -q '"instance"' || die "portal answer has no instance"

# udp_in: UDP datagrams received on this machine so far (/proc/net/snmp). On loopback a
# DNS lookup is two (the query and the answer), so during a portal-srv run the count
# tells how many lookups the portal made per request (other UDP traffic adds noise).
udp_in() { awk '$1 == "Udp:" { if (seen) { print $2; exit } seen = 1 }' /proc/net/snmp 2>/dev/null || echo 0; }

# run TARGET URL PIDS... -> appends "target rps p50_ms p99_ms errors cpu% split dgrams"
# to results, split being each PID's CPU % (comma-separated, in the order given) and
# dgrams the UDP datagrams received per request.
RESULTS="$OUT_DIR/results.txt"
: >"$RESULTS"
run() {
    local target="$1" url="$2"; shift 2
    local t0 t1 u0 u1 out rps p50 p99 errs cpu pid reqs dgrams split=""
    local -a each0=()
    t0=$(proc_ticks "$@")
    u0=$(udp_in)
    for pid in "$@"; do each0+=("$(proc_ticks "$pid")"); done
    local perfs=()
    if [ "${PERF:-}" = 1 ] && [ "$target" = portal-srv ] && [ ! -e "$OUT_DIR/perf-portal.data" ]; then
        perf record -q -g -F 1999 -p "$PORTAL_PID" -o "$OUT_DIR/perf-portal.data" -- sleep "$DUR" 2>/dev/null &
        perfs+=($!)
        perf record -q -g -F 1999 -p "$AGENT_PID" -o "$OUT_DIR/perf-agent.data" -- sleep "$DUR" 2>/dev/null &
        perfs+=($!)
    fi
    out=$(wrk -t "$WRK_THREADS" -c "$C" -d "${DUR}s" --latency "$url" 2>&1)
    t1=$(proc_ticks "$@")
    u1=$(udp_in)
    local i=0
    for pid in "$@"; do
        split="$split${split:+,}$(ticks_pct "${each0[$i]}" "$(proc_ticks "$pid")")"
        i=$((i + 1))
    done
    [ ${#perfs[@]} -gt 0 ] && wait "${perfs[@]}"
    echo "$out" >"$OUT_DIR/wrk-$target-$(date +%s%N).txt"
    rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}')
    cpu=$(ticks_pct "$t0" "$t1")
    [ -n "$rps" ] || die "wrk printed no rate for $target: $out"
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    dgrams=$(awk -v d="$((u1 - u0))" -v n="${reqs:-0}" 'BEGIN { printf "%.3f", (n > 0 ? d / n : 0) }')
    echo "$target $rps $p50 $p99 $errs $cpu $split $dgrams" | tee -a "$RESULTS" >&2
}

wait_quiet "${BUSY_PATTERN:-rustc}" "${QUIET_WAIT:-120}"
log "c=$C, ${DUR}s per run, $REPS interleaved runs per target, wrk -t $WRK_THREADS, portal threads ${PORTAL_THREADS:-default}"
log "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(pgrep -c -x rustc || true) rustc running"
wrk -t 1 -c "$C" -d 2s "http://$PORTAL/stock/AMZN" >/dev/null # warm-up
for rep in $(seq 1 "$REPS"); do
    run direct "http://$STOCK/stock/AMZN" "$STOCK_PID"
    run portal-fixed "http://$FIXED/stock/AMZN" "$FIXED_PID" "$STOCK_PID"
    run portal-srv "http://$PORTAL/stock/AMZN" "$PORTAL_PID" "$STOCK_PID" "$AGENT_PID"
done

python3 - "$RESULTS" "$C" "$DUR" "$REPS" <<'PY'
import statistics, sys
path, c, dur, reps = sys.argv[1:]
rows = {}
for line in open(path):
    t, rps, p50, p99, errs, cpu, split, dgrams = line.split()
    rows.setdefault(t, []).append((float(rps), p50, p99, int(errs), float(cpu),
                                   [float(x) for x in split.split(",")], float(dgrams)))
med = {t: statistics.median(r[0] for r in v) for t, v in rows.items()}
# CPU time of the serving processes per request: less sensitive than req/s to
# other work on the machine.
us = {t: statistics.median(1e6 * r[4] / 100 / r[0] for r in v) for t, v in rows.items()}
print(f"\nGET /stock/AMZN, c={c}, {dur}s x {reps} runs (median req/s; p50/p99 of the median run;")
print("server CPU = % of one core used by the serving processes; CPU/req = their CPU time per request)")
print(f"{'target':14} {'req/s':>10} {'p50':>9} {'p99':>9} {'errors':>7} {'server CPU':>11} {'CPU/req':>9}")
for t in ("direct", "portal-fixed", "portal-srv"):
    v = sorted(rows[t], key=lambda r: r[0])[len(rows[t]) // 2]
    print(f"{t:14} {med[t]:10.0f} {v[1]:>9} {v[2]:>9} {sum(r[3] for r in rows[t]):7d} {v[4]:10.0f}% {us[t]:7.0f}us")
names = {"direct": ["stock-price"], "portal-fixed": ["portal", "stock-price"],
         "portal-srv": ["portal", "stock-price", "agent"]}
print("\nCPU per request by process (median over runs):")
for t in ("direct", "portal-fixed", "portal-srv"):
    parts = [f"{n} {statistics.median(1e6 * r[5][i] / 100 / r[0] for r in rows[t]):.1f}us"
             for i, n in enumerate(names[t])]
    print(f"  {t:14} " + ", ".join(parts))
d, f, s = med["direct"], med["portal-fixed"], med["portal-srv"]
print(f"\nportal (SRV lookup + proxy) vs direct: {100 * (1 - s / d):.1f}% fewer req/s")
print(f"SRV lookup alone (portal-srv vs portal-fixed): {100 * (1 - s / f):.1f}% fewer req/s, "
      f"+{us['portal-srv'] - us['portal-fixed']:.0f}us CPU per request")
# Each repetition measures portal-fixed and portal-srv back to back: the ratio within a
# repetition is less exposed to the machine's drift than the ratio of the medians.
paired = [100 * (1 - rs[0] / rf[0]) for rf, rs in zip(rows["portal-fixed"], rows["portal-srv"])]
print(f"  paired, per repetition: {', '.join(f'{x:.1f}%' for x in paired)}; "
      f"median {statistics.median(paired):.1f}%")
dg = statistics.median(r[6] for r in rows["portal-srv"])
print(f"UDP datagrams received per portal-srv request: {dg:.3f}, about {dg / 2:.3f} SRV lookups "
      f"per request (direct: {statistics.median(r[6] for r in rows['direct']):.3f}, other UDP traffic)")
PY
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg), $(pgrep -c -x rustc || true) rustc running"
log "raw wrk outputs and results.txt in $OUT_DIR"

#!/usr/bin/env bash
# KV benchmark: Cairn's durable single server against a single-member etcd,
# both measured in the same run, on the same machine, with the same load
# generator and the same request sizes. This is a benchmark, not a test: it
# prints figures and never fails on them.
#
#   bench/kv_vs_etcd.sh
#
# What it does, in order:
#   1. locates etcd (installs etcd-server/etcd-client with apt-get when missing,
#      running as root, and INSTALL_ETCD=1), builds the load generator;
#   2. starts a 1-member etcd on 127.0.0.1 (fsync on, etcd defaults), measures
#      PUT (POST /v3/kv/put, JSON gateway) and linearizable GET
#      (POST /v3/kv/range) at each concurrency in CONCS, stops it;
#   3. starts `cairn agent -server -bootstrap-expect=1` with a data dir on the
#      same filesystem, waits for a leader, measures `PUT /v1/kv/bench/{n}`
#      (raw VALUE_SIZE-byte body, must answer `true`), pre-populates all keys,
#      measures `GET /v1/kv/bench/{n}` (default consistency) at each
#      concurrency, then `?consistent` and `?stale` at EXTRA_GET_CONCS, stops it;
#   4. prints a table (median of REPS with min/max, p50, p99, whole-machine CPU
#      busy %) and the Cairn/etcd ratios, and checks the targets:
#        PUT: Cairn rps >= etcd rps at c=64, with p99 no worse;
#        GET: Cairn rps >= 2 x etcd rps (default consistency, each concurrency).
#
# Load generator: `loadgen` (closed loop, HTTP/1.1 keep-alive, HDR histogram).
# It is NOT part of this repository: it comes from an optional sibling
# checkout at ../shared/bench/loadgen (relative to the repository root). When
# neither LOADGEN (a built binary) nor that checkout exists, the script prints
# a message and exits 0 without measuring anything.
#
# Noise control: before every measurement block (one server, one workload, one
# concurrency) the script waits, polling every QUIET_POLL s, until no `rustc`
# process runs on the machine and the machine is otherwise near idle
# (QUIET_IDLE_PCT), for at most QUIET_BUDGET s summed over the whole run; after
# that it measures anyway. Every result line records the
# whole-machine CPU busy % over the measured interval, the CPU used by the
# server and by the load generator, the remainder ("other": anything else on
# the machine) and the number of rustc processes seen before/after, so
# disturbed runs are visible.
#
# Environment knobs (defaults in brackets):
#   DUR [10]            measured seconds per run
#   WARMUP [2]          unrecorded warm-up seconds before each run
#   REPS [3]            repetitions per (workload, concurrency)
#   CONCS ["1 16 64"]   concurrencies for PUT and GET
#   EXTRA_GET_CONCS ["64"]  concurrencies for Cairn ?consistent / ?stale GET ("" skips)
#   VALUE_SIZE [100]    value bytes;  KEYS [1000] key space bench/0..KEYS-1
#   LG_THREADS [1]      load generator OS threads (1, as in the etcd anchor runs)
#   ETCD_CLIENT_PORT [32379] ETCD_PEER_PORT [32380] CAIRN_HTTP_PORT [18500]
#   CAIRN_BIN [<repo>/target/release/cairn]  (build: cargo build --release -p cairn-cli)
#   BUILD_CAIRN [0]     1: run that cargo build when the binary is missing
#   LOADGEN [$LOADGEN_TARGET/release/loadgen]  LOADGEN_DIR [<repo>/../shared/bench/loadgen]
#   LOADGEN_TARGET [${TMPDIR:-/tmp}/loadgen-target]  (cargo target dir for the build)
#   INSTALL_ETCD [1]    apt-get install etcd-server etcd-client when etcd is missing
#   QUIET_WAIT [1] QUIET_POLL [10] QUIET_BUDGET [1200]  rustc-idle wait (see above)
#   QUIET_IDLE_PCT [25] also wait until the machine, with our server idle, is at most
#                       this % busy over a 2 s sample ("" disables this part)
#   DISK_CHECK [1]      quick fio write+fdatasync probe of the data filesystem (if fio exists)
#   ONLY ["etcd cairn"] which servers to measure
#   MEMBERS [1]         1: one etcd member against one Cairn server (-bootstrap-expect=1);
#                       3: a 3-member etcd cluster against 3 Cairn servers
#                       (-bootstrap-expect=3), all on 127.0.0.1 with ports spaced by 10.
#                       The load goes to the leader of each (etcd: the member that
#                       leads; Cairn: the server /v1/status/leader names), and
#                       "server CPU" counts all three members. Cairn also gets
#                       GET default/?consistent through a follower at EXTRA_GET_CONCS.
#   RUN_ID [kvvsetcd-<timestamp>]  OUT_DIR [${TMPDIR:-/tmp}/kv-vs-etcd-out]
#   KEEP_SCRATCH [0]    1: keep the data directories after the run
#
# Output: one JSON object per measurement appended to $OUT_DIR/results.jsonl
# (fields: run, target, workload, variant, concurrency, rep, rps, p50_ms,
# p90_ms, p99_ms, p999_ms, max_ms, mean_ms, failures, cpu_busy_pct,
# server_cpu_pct, loadgen_cpu_pct, other_busy_pct, rustc_before, rustc_after,
# plus loadgen's own fields), machine facts in $OUT_DIR/<run>.facts.txt and the
# printed tables in $OUT_DIR/<run>.table.md, server logs in $OUT_DIR/<run>.logs/.
# Re-print the tables of an earlier run with:
#   OUT_DIR=... bench/kv_vs_etcd.sh --report RUN_ID
#
# Everything listens on 127.0.0.1 only. Every process the script starts is
# recorded by PID and stopped (TERM, then KILL after 10 s) on exit, Ctrl-C or
# TERM; nothing is killed by name.
set -u

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRATCH_BASE="${TMPDIR:-/tmp}"

DUR="${DUR:-10}"
WARMUP="${WARMUP:-2}"
REPS="${REPS:-3}"
CONCS="${CONCS:-1 16 64}"
EXTRA_GET_CONCS="${EXTRA_GET_CONCS-64}"
VALUE_SIZE="${VALUE_SIZE:-100}"
KEYS="${KEYS:-1000}"
LG_THREADS="${LG_THREADS:-1}"
ETCD_CLIENT_PORT="${ETCD_CLIENT_PORT:-32379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-32380}"
CAIRN_HTTP_PORT="${CAIRN_HTTP_PORT:-18500}"
CAIRN_SERF_PORT="${CAIRN_SERF_PORT:-18301}"
CAIRN_SERVER_PORT="${CAIRN_SERVER_PORT:-18300}"
CAIRN_BIN="${CAIRN_BIN:-$REPO_ROOT/target/release/cairn}"
BUILD_CAIRN="${BUILD_CAIRN:-0}"
LOADGEN_DIR="${LOADGEN_DIR:-$REPO_ROOT/../shared/bench/loadgen}"
LOADGEN_TARGET="${LOADGEN_TARGET:-$SCRATCH_BASE/loadgen-target}"
LOADGEN="${LOADGEN:-$LOADGEN_TARGET/release/loadgen}"
INSTALL_ETCD="${INSTALL_ETCD:-1}"
QUIET_WAIT="${QUIET_WAIT:-1}"
QUIET_POLL="${QUIET_POLL:-10}"
QUIET_BUDGET="${QUIET_BUDGET:-1200}"
QUIET_IDLE_PCT="${QUIET_IDLE_PCT-25}"
DISK_CHECK="${DISK_CHECK:-1}"
ONLY="${ONLY:-etcd cairn}"
MEMBERS="${MEMBERS:-1}"
case "$MEMBERS" in 1|3) ;; *) echo "MEMBERS must be 1 or 3" >&2; exit 2 ;; esac
RUN_ID="${RUN_ID:-kvvsetcd-$(date +%Y%m%dT%H%M%S)}"
OUT_DIR="${OUT_DIR:-$SCRATCH_BASE/kv-vs-etcd-out}"
RESULTS_JSONL="$OUT_DIR/results.jsonl"
KEEP_SCRATCH="${KEEP_SCRATCH:-0}"

# log, die, start_bg, stop_pid, stop_all, require_port_free, cpu_snap, CLK_TCK
. "$REPO_ROOT/bench/lib.sh"

# ---------------------------------------------------------------------------
# Report: median / min / max per (target, workload, concurrency) and ratios.
# ---------------------------------------------------------------------------
report() { # report RUN_ID
    python3 - "$RESULTS_JSONL" "$1" "$MEMBERS" <<'PY'
import json, statistics, sys
path, run, members = sys.argv[1], sys.argv[2], int(sys.argv[3])
# Targets: one server, PUT >= 1x etcd at c=64 and GET >= 2x; three servers, PUT >= 2x
# at c=16 and c=64 with a lower p99, and GET >= 3x.
put_x, put_cs, get_x = (1.0, (64,), 2.0) if members == 1 else (2.0, (16, 64), 3.0)
rows = []
with open(path) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("run") == run and "rps" in d:
            rows.append(d)
if not rows:
    sys.exit("no results for run %s in %s" % (run, path))

groups = {}
for d in rows:
    groups.setdefault((d["target"], d["workload"], d["concurrency"]), []).append(d)

def med(g, k):
    return statistics.median(x[k] for x in g)

def fmt_n(x):
    return "{:,.0f}".format(x)

order_t = {"etcd": 0, "cairn": 1}
order_w = {"kv-put": 0, "kv-get": 1, "kv-get-consistent": 2, "kv-get-stale": 3}
keys = sorted(groups, key=lambda k: (order_w.get(k[1], 9), k[2], order_t.get(k[0], 9)))

out = []
out.append("| target | workload | c | n | rps median (min - max) | p50 ms | p99 ms median (min - max) | failures | CPU busy % median (max) | other busy % max | rustc seen |")
out.append("|---|---|---|---|---|---|---|---|---|---|---|")
for k in keys:
    g = groups[k]
    rps = [x["rps"] for x in g]
    p99 = [x["p99_ms"] for x in g]
    busy = [x["cpu_busy_pct"] for x in g]
    other = [x.get("other_busy_pct", 0.0) for x in g]
    rustc = max(max(x.get("rustc_before", 0), x.get("rustc_after", 0)) for x in g)
    fails = sum(x.get("failures", 0) for x in g)
    out.append("| %s | %s | %d | %d | %s (%s - %s) | %.3f | %.3f (%.3f - %.3f) | %d | %.1f (%.1f) | %.1f | %s |" % (
        k[0], k[1], k[2], len(g), fmt_n(statistics.median(rps)), fmt_n(min(rps)), fmt_n(max(rps)),
        med(g, "p50_ms"), statistics.median(p99), min(p99), max(p99), fails,
        statistics.median(busy), max(busy), max(other), ("yes (max %d)" % rustc) if rustc else "no"))

# Ratios: Cairn / etcd, medians. Cairn GET modes are all compared with etcd's
# (linearizable) GET at the same concurrency.
out.append("")
out.append("| Cairn workload | vs etcd | c | rps ratio (Cairn/etcd) | p50 ratio | p99 ratio |")
out.append("|---|---|---|---|---|---|")
verdict = []
def ratio(cw, ew, c):
    a, b = groups.get(("cairn", cw, c)), groups.get(("etcd", ew, c))
    if not a or not b:
        return None
    return (med(a, "rps") / med(b, "rps"), med(a, "p50_ms") / med(b, "p50_ms"),
            med(a, "p99_ms") / med(b, "p99_ms"), a, b)
for cw in ("kv-put", "kv-get", "kv-get-consistent", "kv-get-stale", "kv-get-follower",
           "kv-get-follower-consistent"):
    ew = "kv-put" if cw == "kv-put" else "kv-get"
    for c in sorted({k[2] for k in groups if k[1] == cw}):
        r = ratio(cw, ew, c)
        if r:
            out.append("| %s | %s (%s) | %d | %.2f | %.2f | %.2f |" % (
                cw, ew, "linearizable" if ew == "kv-get" else "fsync", c, r[0], r[1], r[2]))

out.append("")
for c in put_cs:
    r = ratio("kv-put", "kv-put", c)
    if r:
        ok = r[0] >= put_x and r[2] <= 1.0
        verdict.append("- PUT c=%d: Cairn %s rps vs etcd %s rps (x%.2f; target x%g), p99 %.3f vs %.3f ms -> target %s" % (
            c, fmt_n(med(r[3], "rps")), fmt_n(med(r[4], "rps")), r[0], put_x, med(r[3], "p99_ms"),
            med(r[4], "p99_ms"), "MET" if ok else "MISSED"))
for c in sorted({k[2] for k in groups if k[1] == "kv-get"}):
    r = ratio("kv-get", "kv-get", c)
    if r:
        verdict.append("- GET c=%d (default consistency): Cairn %s rps vs etcd %s rps (x%.2f; target x%g) -> %s" % (
            c, fmt_n(med(r[3], "rps")), fmt_n(med(r[4], "rps")), r[0], get_x,
            "MET" if r[0] >= get_x else "MISSED"))
for cw in ("kv-get-consistent", "kv-get-stale", "kv-get-follower", "kv-get-follower-consistent"):
    for c in sorted({k[2] for k in groups if k[1] == cw}):
        r = ratio(cw, "kv-get", c)
        if r:
            verdict.append("- GET c=%d %s: Cairn %s rps vs etcd %s rps (x%.2f; target x%g) -> %s" % (
                c, cw[len("kv-get-"):], fmt_n(med(r[3], "rps")), fmt_n(med(r[4], "rps")), r[0], get_x,
                "MET" if r[0] >= get_x else "MISSED"))
out.append("Targets:")
out.extend(verdict)
print("\n".join(out))
PY
}

if [ "${1:-}" = "--report" ]; then
    [ -n "${2:-}" ] || die "usage: [OUT_DIR=...] $0 --report RUN_ID"
    [ -f "$RESULTS_JSONL" ] || die "no $RESULTS_JSONL (set OUT_DIR to the run's output directory)"
    report "$2"
    exit $?
fi

# ---------------------------------------------------------------------------
# Process hygiene: every PID we start goes to $RUN_DIR/pids; the trap stops
# exactly those.
# ---------------------------------------------------------------------------
RUN_DIR="$SCRATCH_BASE/kv-vs-etcd-run.$$"
mkdir -p "$RUN_DIR" "$OUT_DIR" || die "cannot create $RUN_DIR / $OUT_DIR"
: >"$RUN_DIR/pids"
BENCH_PIDS="$RUN_DIR/pids"   # where lib.sh's start_bg records and stop_all stops
SCRATCH_RM=()

cleanup() {
    stop_all
    # keep the server logs next to the results; drop the scratch dir
    local f
    for f in "$RUN_DIR"/etcd/*.log "$RUN_DIR"/cairn-log/*.log; do
        [ -f "$f" ] || continue
        mkdir -p "$OUT_DIR/$RUN_ID.logs" && cp -f "$f" "$OUT_DIR/$RUN_ID.logs/$(basename "$(dirname "$f")")-$(basename "$f")"
    done
    if [ "$KEEP_SCRATCH" != 1 ]; then
        local p
        for p in "${SCRATCH_RM[@]}"; do rm -rf -- "$p"; done
        rm -rf -- "$RUN_DIR"
    fi
}
trap 'cleanup; exit 130' INT TERM
trap 'cleanup' EXIT

# ---------------------------------------------------------------------------
# CPU accounting.
# ---------------------------------------------------------------------------
NCPU="$(nproc)"
pid_ticks() { # utime+stime of one process, in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
# CPU seconds of this shell's reaped children (bash `times`, second line). `times`
# must run in this shell, not in a $(...) subshell, hence the file.
pids_ticks() { # summed utime+stime of several processes
    local p t=0
    for p in "$@"; do t=$((t + $(pid_ticks "$p"))); done
    echo "$t"
}
children_snap() { times >"$RUN_DIR/times.$1"; }
children_secs() {
    tail -n 1 "$RUN_DIR/times.$1" | awk '{ s=0; for (i=1;i<=2;i++) { split($i, a, /[ms]/); s += a[1]*60 + a[2] }; printf "%.3f", s }'
}
rustc_count() { pgrep -x rustc 2>/dev/null | wc -l; }

QUIET_SPENT=0
idle_busy_pct() { # whole-machine busy % over a 2 s sample
    local a b
    a="$(cpu_snap)"; sleep 2; b="$(cpu_snap)"
    echo "$a $b" | awk '{dt=$4-$2; printf "%.0f", (dt > 0 ? 100*($3-$1)/dt : 0)}'
}
wait_quiet() { # wait_quiet WHAT
    [ "$QUIET_WAIT" = 1 ] || return 0
    local n busy announced=0
    while :; do
        n="$(rustc_count)"
        busy=""
        if [ "$n" -eq 0 ]; then
            [ -z "$QUIET_IDLE_PCT" ] && break
            busy="$(idle_busy_pct)"
            [ "$busy" -le "$QUIET_IDLE_PCT" ] && break
        fi
        if [ "$QUIET_SPENT" -ge "$QUIET_BUDGET" ]; then
            log "machine still busy ($n rustc${busy:+, ${busy}% CPU busy}) after ${QUIET_SPENT}s of waiting in total: measuring $1 anyway"
            return 0
        fi
        if [ "$announced" = 0 ]; then
            log "waiting for a quiet machine ($n rustc${busy:+, ${busy}% CPU busy while idle}) before $1 (waited ${QUIET_SPENT}s so far, budget ${QUIET_BUDGET}s)"
            announced=1
        fi
        sleep "$QUIET_POLL"
        QUIET_SPENT=$((QUIET_SPENT + QUIET_POLL))
    done
}

# measure TARGET WORKLOAD C REP SERVER_PID LOADGEN_ARGS...
measure() {
    local target="$1" workload="$2" c="$3" rep="$4" spid="$5"; shift 5
    local c0 c1 s0 s1 l0 l1 w0 w1 r0 r1 line rc
    r0="$(rustc_count)"
    c0="$(cpu_snap)"; s0="$(pids_ticks $spid)"; children_snap 0; w0="$(date +%s.%N)"
    line="$("$LOADGEN" --json -c "$c" -t "$LG_THREADS" -d "$DUR" -w "$WARMUP" \
        --keys "$KEYS" --value-size "$VALUE_SIZE" --label "$target $workload c=$c" "$@")"; rc=$?
    children_snap 1; c1="$(cpu_snap)"; s1="$(pids_ticks $spid)"; w1="$(date +%s.%N)"
    r1="$(rustc_count)"; l0="$(children_secs 0)"; l1="$(children_secs 1)"
    if [ -z "$line" ]; then
        log "loadgen printed nothing (rc=$rc) for $target $workload c=$c"
        return 1
    fi
    python3 - "$line" "$RUN_ID" "$target" "$workload" "$c" "$rep" "$c0" "$c1" "$s0" "$s1" \
        "$l0" "$l1" "$w0" "$w1" "$r0" "$r1" "$NCPU" "$CLK_TCK" "$RESULTS_JSONL" <<'PY'
import json, sys
(line, run, target, workload, c, rep, c0, c1, s0, s1, l0, l1, w0, w1, r0, r1,
 ncpu, tck, out) = sys.argv[1:]
d = json.loads(line)
b0, t0 = map(int, c0.split()); b1, t1 = map(int, c1.split())
wall = max(float(w1) - float(w0), 1e-9)
busy = 100.0 * (b1 - b0) / max(t1 - t0, 1)
server = 100.0 * (int(s1) - int(s0)) / int(tck) / wall          # % of one CPU
lg = 100.0 * (float(l1) - float(l0)) / wall                      # % of one CPU
other = max(busy - (server + lg) / int(ncpu), 0.0)               # % of the machine
rec = {"run": run, "target": target, "workload": workload, "variant": "c=%s" % c,
       "concurrency": int(c), "rep": int(rep),
       "failures": d["bad_status"] + d["bad_body"] + d["errors"] + d["timeouts"],
       "cpu_busy_pct": round(busy, 1), "server_cpu_pct": round(server, 1),
       "loadgen_cpu_pct": round(lg, 1), "other_busy_pct": round(other, 1),
       "rustc_before": int(r0), "rustc_after": int(r1), "tool": "loadgen"}
rec.update(d)
with open(out, "a") as f:
    f.write(json.dumps(rec) + "\n")
print("    %-6s %-18s c=%-3s rep %s: %9.1f ok/s  p50 %.3f  p99 %.3f ms  fail %d  busy %.0f%% (server %.0f%%cpu, loadgen %.0f%%cpu, other %.0f%%)  rustc %s/%s%s" % (
    target, workload, c, rep, d["rps"], d["p50_ms"], d["p99_ms"], rec["failures"], busy, server, lg,
    other, r0, r1, ("  first failure: " + d["first_error"][:120]) if d["first_error"] else ""), file=sys.stderr)
PY
    return 0
}

# ---------------------------------------------------------------------------
# Prerequisites.
# ---------------------------------------------------------------------------
if [ ! -x "$LOADGEN" ]; then
    if [ -f "$LOADGEN_DIR/Cargo.toml" ]; then
        log "building loadgen from $LOADGEN_DIR into $LOADGEN_TARGET"
        (cd "$LOADGEN_DIR" && CARGO_TARGET_DIR="$LOADGEN_TARGET" cargo build --release -q) \
            || die "loadgen build failed"
    else
        log "SKIP: the load generator is not available. It comes from an optional sibling"
        log "      checkout at ../shared/bench/loadgen (looked in $LOADGEN_DIR), or set"
        log "      LOADGEN to a built loadgen binary. Nothing was measured."
        exit 0
    fi
fi
[ -x "$LOADGEN" ] || die "no loadgen binary at $LOADGEN"

case " $ONLY " in *" etcd "*) WANT_ETCD=1 ;; *) WANT_ETCD=0 ;; esac
case " $ONLY " in *" cairn "*) WANT_CAIRN=1 ;; *) WANT_CAIRN=0 ;; esac

if [ "$WANT_ETCD" = 1 ] && ! command -v etcd >/dev/null; then
    if [ "$INSTALL_ETCD" = 1 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        log "installing etcd-server etcd-client (apt-get)"
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server etcd-client; } \
            >"$RUN_DIR/apt.log" 2>&1 || die "apt-get failed; see $RUN_DIR/apt.log"
    fi
    command -v etcd >/dev/null || die "etcd not found (apt-get install etcd-server etcd-client)"
fi
if [ "$WANT_ETCD" = 1 ]; then
    command -v etcdctl >/dev/null || die "etcdctl not found (apt-get install etcd-client)"
fi
export ETCDCTL_API=3

if [ "$WANT_CAIRN" = 1 ] && [ ! -x "$CAIRN_BIN" ]; then
    if [ "$BUILD_CAIRN" = 1 ]; then
        log "building Cairn (cargo build --release -p cairn-cli)"
        (cd "$REPO_ROOT" && cargo build --release -p cairn-cli) || die "cairn build failed"
    fi
    [ -x "$CAIRN_BIN" ] || die "no Cairn binary at $CAIRN_BIN (cargo build --release -p cairn-cli, or BUILD_CAIRN=1)"
fi
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"

# ---------------------------------------------------------------------------
# Machine facts.
# ---------------------------------------------------------------------------
FACTS="$OUT_DIR/$RUN_ID.facts.txt"
{
    echo "run:         $RUN_ID ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
    echo "nproc:       $NCPU"
    echo "cpu:         $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "memory:      $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel:      $(uname -srm)"
    echo "os:          $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "data fs:     $(df -hT "$RUN_DIR" | awk 'NR==2 {print $1, $2, $3 " total,", $5 " free"}') (mount $(findmnt -no TARGET -T "$RUN_DIR" 2>/dev/null))"
    [ "$WANT_ETCD" = 1 ] && echo "etcd:        $(etcd --version 2>/dev/null | head -n 1)"
    [ "$WANT_CAIRN" = 1 ] && echo "cairn:       $CAIRN_BIN ($("$CAIRN_BIN" version 2>/dev/null | head -n 1))"
    echo "loadgen:     $LOADGEN (-t $LG_THREADS)"
    echo "knobs:       DUR=$DUR WARMUP=$WARMUP REPS=$REPS CONCS='$CONCS' EXTRA_GET_CONCS='$EXTRA_GET_CONCS' VALUE_SIZE=$VALUE_SIZE KEYS=$KEYS"
    echo "git:         $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO_ROOT" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
} >"$FACTS"
if [ "$DISK_CHECK" = 1 ] && command -v fio >/dev/null; then
    wait_quiet "the disk probe"
    # etcd's recommended disk probe: small sequential writes, fdatasync after each.
    mkdir -p "$RUN_DIR/fio"; SCRATCH_RM+=("$RUN_DIR/fio")
    fio --rw=write --ioengine=sync --fdatasync=1 --directory="$RUN_DIR/fio" --size=22m --bs=2300 \
        --name=fsync-probe --output-format=json >"$RUN_DIR/fio.json" 2>/dev/null \
        && python3 - "$RUN_DIR/fio.json" >>"$FACTS" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
w = j["write"]; s = j.get("sync", {})
pct = s.get("lat_ns", {}).get("percentile", {})
def p(k):
    v = pct.get(k)
    return "%.3f" % (v / 1e6) if v else "?"
print("disk probe:  fio write+fdatasync (bs 2300, 22 MiB): %.0f IOPS; fdatasync p50 %s / p99 %s / p99.9 %s ms" % (
    w["iops"], p("50.000000"), p("99.000000"), p("99.900000")))
PY
fi
cat "$FACTS" >&2
log "results -> $RESULTS_JSONL (run $RUN_ID), scratch $RUN_DIR"

# ---------------------------------------------------------------------------
# etcd, 1 member.
# ---------------------------------------------------------------------------
ETCD_URL="http://127.0.0.1:$ETCD_CLIENT_PORT"
etcd_compact() { # compact all history and wait until it is physically gone
    local rev
    rev="$(etcdctl --endpoints="$ETCD_URL" get compact-probe -w json 2>/dev/null \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])' 2>/dev/null)"
    [ -n "$rev" ] && etcdctl --endpoints="$ETCD_URL" --command-timeout=300s compact --physical "$rev" >/dev/null 2>&1 \
        || log "etcd compaction at rev ${rev:-?} failed"
    sleep 1
}

bench_etcd() {
    local c rep pid
    require_port_free "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT"
    mkdir -p "$RUN_DIR/etcd"; SCRATCH_RM+=("$RUN_DIR/etcd/data")
    local m cluster="" pids=()
    for m in $(seq 1 "$MEMBERS"); do
        cluster="${cluster:+$cluster,}m$m=http://127.0.0.1:$((ETCD_PEER_PORT + 10 * (m - 1)))"
    done
    for m in $(seq 1 "$MEMBERS"); do
        local cport=$((ETCD_CLIENT_PORT + 10 * (m - 1))) pport=$((ETCD_PEER_PORT + 10 * (m - 1)))
        require_port_free "$cport" "$pport"
        start_bg "$RUN_DIR/etcd/stderr.$m.log" etcd --name "m$m" --data-dir "$RUN_DIR/etcd/data/m$m" \
            --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
            --listen-peer-urls "http://127.0.0.1:$pport" \
            --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token "kv-vs-etcd-$$" \
            --logger zap --log-outputs "$RUN_DIR/etcd/etcd.$m.log" --log-level warn
        pids+=("$LAST_PID")
    done
    pid="${pids[*]}"
    local i up=0
    for i in $(seq 1 300); do
        for m in "${pids[@]}"; do kill -0 "$m" 2>/dev/null || die "etcd exited; see $RUN_DIR/etcd/"; done
        if etcdctl --endpoints="$ETCD_URL" endpoint status -w json 2>/dev/null | grep -q '"leader":[1-9]'; then
            up=1; break
        fi
        sleep 0.1
    done
    [ "$up" = 1 ] || die "etcd did not elect a leader; see $RUN_DIR/etcd/"
    # Load goes to the leader.
    ETCD_URL="$(etcdctl --endpoints="$ETCD_URL" endpoint status --cluster -w json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["Status"]["header"]["member_id"] == e["Status"]["leader"]:
        print(e["Endpoint"])' | head -n 1)"
    [ -n "$ETCD_URL" ] || die "could not find the etcd leader"
    log "etcd up, $MEMBERS member(s), leader at $ETCD_URL (pids $pid)"

    local json=(-H 'Content-Type: application/json')
    for c in $CONCS; do
        wait_quiet "etcd PUT c=$c"
        for rep in $(seq 1 "$REPS"); do
            measure etcd kv-put "$c" "$rep" "$pid" -X POST "${json[@]}" --key-dist seq \
                -b '{"key":"{key_b64}","value":"{value_b64}"}' "$ETCD_URL/v3/kv/put"
            sleep 1
        done
        etcd_compact
    done
    # every key exists before the reads
    "$LOADGEN" -X POST -c 16 -t 1 -w 0 -d 60 -n "$KEYS" --keys "$KEYS" --key-dist seq \
        --value-size "$VALUE_SIZE" "${json[@]}" -b '{"key":"{key_b64}","value":"{value_b64}"}' \
        "$ETCD_URL/v3/kv/put" >/dev/null || log "etcd prefill had failures"
    etcd_compact
    for c in $CONCS; do
        wait_quiet "etcd GET c=$c"
        for rep in $(seq 1 "$REPS"); do
            # range defaults to serializable=false: a linearizable read
            measure etcd kv-get "$c" "$rep" "$pid" -X POST "${json[@]}" --key-dist random \
                -b '{"key":"{key_b64}"}' --expect-body '"kvs"' "$ETCD_URL/v3/kv/range"
            sleep 1
        done
    done
    for m in $pid; do stop_pid "$m"; done
    log "etcd stopped"
}

# ---------------------------------------------------------------------------
# Cairn, durable single server.
# ---------------------------------------------------------------------------
CAIRN_URL="http://127.0.0.1:$CAIRN_HTTP_PORT"
bench_cairn() {
    local c rep pid leader i
    require_port_free "$CAIRN_HTTP_PORT"
    mkdir -p "$RUN_DIR/cairn-log"; SCRATCH_RM+=("$RUN_DIR/cairn")
    local m pids=() urls=()
    for m in $(seq 1 "$MEMBERS"); do
        local hport=$((CAIRN_HTTP_PORT + 10 * (m - 1)))
        local extra=()
        if [ "$MEMBERS" -gt 1 ]; then
            extra=(-serf-lan-port $((CAIRN_SERF_PORT + 10 * (m - 1)))
                -server-port $((CAIRN_SERVER_PORT + 10 * (m - 1)))
                -retry-join "127.0.0.1:$CAIRN_SERF_PORT" -retry-interval 1s)
            require_port_free "$hport" $((CAIRN_SERF_PORT + 10 * (m - 1))) $((CAIRN_SERVER_PORT + 10 * (m - 1)))
        else
            require_port_free "$hport"
        fi
        start_bg "$RUN_DIR/cairn-log/cairn.$m.log" "$CAIRN_BIN" agent -server \
            -bootstrap-expect="$MEMBERS" -data-dir "$RUN_DIR/cairn/m$m" -http-port "$hport" \
            -dns-port -1 -node "bench$m" -client 127.0.0.1 -bind 127.0.0.1 "${extra[@]}"
        pids+=("$LAST_PID")
        urls+=("http://127.0.0.1:$hport")
    done
    pid="${pids[*]}"
    leader=""
    for i in $(seq 1 600); do
        for m in "${pids[@]}"; do
            kill -0 "$m" 2>/dev/null || die "cairn exited; see $RUN_DIR/cairn-log/"
        done
        leader="$(curl -s -m 1 "${urls[0]}/v1/status/leader" 2>/dev/null || true)"
        case "$leader" in ""|'""') sleep 0.1 ;; *) break ;; esac
    done
    case "$leader" in ""|'""') die "cairn has no leader after 60 s; see $RUN_DIR/cairn-log/" ;; esac
    # Load goes to the leader: its RPC port names its HTTP port.
    CAIRN_FOLLOWER_URL=""
    if [ "$MEMBERS" -gt 1 ]; then
        local lport="${leader##*:}"; lport="${lport%\"}"
        local k=$(( (lport - CAIRN_SERVER_PORT) / 10 ))
        CAIRN_URL="${urls[$k]}"
        CAIRN_FOLLOWER_URL="${urls[$(( (k + 1) % MEMBERS ))]}"
        for i in $(seq 1 300); do # every server sees the same leader
            local agree=1 u
            for u in "${urls[@]}"; do
                [ "$(curl -s -m 1 "$u/v1/status/leader")" = "$leader" ] || agree=0
            done
            [ "$agree" = 1 ] && break
            sleep 0.1
        done
    fi
    log "cairn up, $MEMBERS server(s), leader $leader at $CAIRN_URL (pids $pid, data dir $RUN_DIR/cairn)"

    for c in $CONCS; do
        wait_quiet "cairn PUT c=$c"
        for rep in $(seq 1 "$REPS"); do
            measure cairn kv-put "$c" "$rep" "$pid" -X PUT --key-dist seq -b '{value}' \
                --expect-body true "$CAIRN_URL/v1/kv/bench/{n}"
            sleep 1
        done
    done
    # every key exists (with a VALUE_SIZE-byte value) before the reads
    "$LOADGEN" -X PUT -c 16 -t 1 -w 0 -d 60 -n "$KEYS" --keys "$KEYS" --key-dist seq \
        --value-size "$VALUE_SIZE" -b '{value}' --expect-body true \
        "$CAIRN_URL/v1/kv/bench/{n}" >/dev/null || log "cairn prefill had failures"
    local got
    got="$(curl -s "$CAIRN_URL/v1/kv/bench/$((KEYS - 1))?raw" | wc -c)"
    [ "$got" = "$VALUE_SIZE" ] || log "WARNING: bench/$((KEYS - 1)) holds $got bytes, expected $VALUE_SIZE"
    for c in $CONCS; do
        wait_quiet "cairn GET c=$c"
        for rep in $(seq 1 "$REPS"); do
            measure cairn kv-get "$c" "$rep" "$pid" -X GET --key-dist random \
                --expect-body '"Value"' "$CAIRN_URL/v1/kv/bench/{n}"
            sleep 1
        done
    done
    for c in $EXTRA_GET_CONCS; do
        wait_quiet "cairn GET ?consistent c=$c"
        for rep in $(seq 1 "$REPS"); do
            measure cairn kv-get-consistent "$c" "$rep" "$pid" -X GET --key-dist random \
                --expect-body '"Value"' "$CAIRN_URL/v1/kv/bench/{n}?consistent"
            sleep 1
        done
        wait_quiet "cairn GET ?stale c=$c"
        for rep in $(seq 1 "$REPS"); do
            measure cairn kv-get-stale "$c" "$rep" "$pid" -X GET --key-dist random \
                --expect-body '"Value"' "$CAIRN_URL/v1/kv/bench/{n}?stale"
            sleep 1
        done
    done
    if [ -n "$CAIRN_FOLLOWER_URL" ]; then
        for c in $EXTRA_GET_CONCS; do
            wait_quiet "cairn GET via a follower c=$c"
            for rep in $(seq 1 "$REPS"); do
                measure cairn kv-get-follower "$c" "$rep" "$pid" -X GET --key-dist random \
                    --expect-body '"Value"' "$CAIRN_FOLLOWER_URL/v1/kv/bench/{n}"
                sleep 1
            done
            for rep in $(seq 1 "$REPS"); do
                measure cairn kv-get-follower-consistent "$c" "$rep" "$pid" -X GET \
                    --key-dist random --expect-body '"Value"' \
                    "$CAIRN_FOLLOWER_URL/v1/kv/bench/{n}?consistent"
                sleep 1
            done
        done
    fi
    du -sh "$RUN_DIR/cairn" 2>/dev/null | awk '{print "cairn data dir after the run: " $1}' >>"$FACTS"
    for m in $pid; do stop_pid "$m"; done
    log "cairn stopped"
}

T_START=$(date +%s)
[ "$WANT_ETCD" = 1 ] && bench_etcd
[ "$WANT_CAIRN" = 1 ] && bench_cairn
T_END=$(date +%s)
echo "elapsed:     $((T_END - T_START)) s, of which ${QUIET_SPENT} s waiting for a quiet machine" >>"$FACTS"
log "done in $((T_END - T_START)) s (${QUIET_SPENT} s of that waiting for a quiet machine)"

report "$RUN_ID" | tee "$OUT_DIR/$RUN_ID.table.md"
echo
echo "facts: $FACTS"
echo "raw:   $RESULTS_JSONL (run $RUN_ID)"

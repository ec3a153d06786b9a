# Shared shell helpers for the scripts in bench/ (dns_vs_nsd.sh, checks_10k.sh,
# kv_vs_etcd.sh). Source it; do not run it.
#
# Every process started through start_bg has its PID recorded; the EXIT/INT/TERM
# trap installed by bench_init stops exactly those PIDs (TERM, then KILL after
# 10 s). Nothing is stopped by name.

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

bench_init() { # OUT_DIR
    BENCH_OUT="$1"
    mkdir -p "$BENCH_OUT"
    BENCH_PIDS="$BENCH_OUT/pids"
    : >"$BENCH_PIDS"
    trap 'stop_all; exit 130' INT TERM
    trap 'stop_all' EXIT
    log "output in $BENCH_OUT"
}

# start_bg LOGFILE CMD ARGS...: start CMD in the background, PID in $LAST_PID.
start_bg() {
    local logf="$1"; shift
    "$@" >"$logf" 2>&1 </dev/null &
    LAST_PID=$!
    echo "$LAST_PID" >>"$BENCH_PIDS"
}

stop_pid() {
    local pid="$1" i
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid ignored TERM; sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    grep -vx "$pid" "$BENCH_PIDS" >"$BENCH_PIDS.tmp" || true
    mv "$BENCH_PIDS.tmp" "$BENCH_PIDS"
}

stop_all() {
    [ -n "${BENCH_PIDS:-}" ] && [ -f "$BENCH_PIDS" ] || return 0
    local pid
    for pid in $(tac "$BENCH_PIDS"); do stop_pid "$pid"; done
}

wait_http() { # URL TIMEOUT_S [PID]
    local url="$1" t="${2:-30}" pid="${3:-}" i
    for i in $(seq 1 $((t * 10))); do
        curl -s -o /dev/null -m 1 "$url" && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

require_port_free() {
    local p
    for p in "$@"; do
        if ss -Hlntu "( sport = :$p )" 2>/dev/null | grep -q .; then
            die "port $p is already in use"
        fi
    done
}

# wait_quiet PATTERN MAX_S: wait (polling every 10 s) until no process matches
# PATTERN (other benchmarks, compilers); after MAX_S go on with a warning.
wait_quiet() {
    local pat="$1" max="$2" waited=0 found
    while :; do
        found=$(pgrep -f "$pat" | grep -vx "$$" || true)
        [ -z "$found" ] && break
        if [ "$waited" -ge "$max" ]; then
            log "WARNING: still busy after ${max}s ($(echo $found | wc -w) matching processes); measuring anyway"
            break
        fi
        [ "$waited" = 0 ] && log "waiting for other benchmarks/builds to finish ($pat)"
        sleep 10; waited=$((waited + 10))
    done
    [ "$waited" -gt 0 ] && log "machine quiet after ${waited}s"
    return 0
}

# descendants PID: PID and all its descendants
descendants() {
    local p c
    echo -n "$1 "
    for c in $(pgrep -P "$1"); do descendants "$c"; done
}

# cpu_snap: "busy total" jiffies over all CPUs; cpu_busy_pct SNAP0 SNAP1 -> %
cpu_snap() { awk '/^cpu / {t=$2+$3+$4+$5+$6+$7+$8+$9; print t-$5-$6, t}' /proc/stat; }
cpu_busy_pct() {
    echo "$1 $2" | awk '{dt=$4-$2; printf "%.1f", (dt > 0 ? 100*($3-$1)/dt : 0)}'
}

# proc_ticks PID...: "utime+stime(ticks, all threads) monotonic-seconds"
proc_ticks() {
    local pid sum=0 v
    for pid in "$@"; do
        v=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}')
        sum=$((sum + ${v:-0}))
    done
    echo "$sum $(awk '{print $1}' /proc/uptime)"
}
CLK_TCK="$(getconf CLK_TCK)"
# ticks_pct SNAP0 SNAP1 -> CPU used between the snaps, % of one core
ticks_pct() {
    echo "$1 $2" | awk -v hz="$CLK_TCK" '{dt=$4-$2; printf "%.2f", (dt > 0 ? 100*($3-$1)/hz/dt : 0)}'
}

#!/usr/bin/env bash
# Checks benchmark: one Cairn agent running 10,000 HTTP checks every 10 s.
#
# 1. nginx on 127.0.0.1:$TARGET_PORT (minimal config in a scratch dir) answers
#    200 "ok" on /health/<anything> and logs "$msec $status $uri" per request.
# 2. cairn agent -dev -dns-port -1; bench/checks_register.py registers $N
#    services through PUT /v1/agent/service/register, $REG_CONC at a time,
#    each with Check {HTTP: http://127.0.0.1:$TARGET_PORT/health/<service id>,
#    Interval: $INTERVAL}; the registration time is recorded.
# 3. After $SETTLE s, a $WINDOW s measurement window:
#    - agent CPU: utime+stime delta of the agent (all threads) from
#      /proc/<pid>/stat, as % of one core; likewise nginx (master + worker)
#    - whole-machine CPU busy % (/proc/stat, 100 = all cores busy)
#    - agent VmRSS sampled every 5 s, VmHWM (peak) at the end, threads, fds
#    - spread: bench/checks_analyze.py on nginx's access log for the window
#      (requests per second, per 100 ms, per-check intervals)
#    - check states from /v1/health/state/{passing,critical}
#
# Needs: nginx, curl, python3, target/release/cairn. Loopback only; every
# process started here is stopped by PID on exit.
#
# env: N (10000) INTERVAL (10s) REG_CONC (16) SETTLE (90) WINDOW (60)
#      TARGET_PORT (18680) CAIRN_HTTP_PORT (18554) NGINX_WORKERS (1)
#      CAIRN (target/release/cairn) OUT_DIR (a new mktemp -d directory)
#      QUIET_WAIT (900)
set -u

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
N="${N:-10000}"
INTERVAL="${INTERVAL:-10s}"
REG_CONC="${REG_CONC:-16}"
SETTLE="${SETTLE:-90}"
WINDOW="${WINDOW:-60}"
TARGET_PORT="${TARGET_PORT:-18680}"
CAIRN_HTTP_PORT="${CAIRN_HTTP_PORT:-18554}"
NGINX_WORKERS="${NGINX_WORKERS:-1}"
CAIRN="${CAIRN:-$ROOT/target/release/cairn}"
OUT_DIR="${OUT_DIR:-$(mktemp -d -t cairn-checks-bench.XXXXXX)}"
QUIET_WAIT="${QUIET_WAIT:-900}"
BUSY_PATTERN="${BUSY_PATTERN:-kvb-cairn|etcd |loadgen|rustc}"

. "$HERE/lib.sh"
bench_init "$OUT_DIR"

for c in nginx curl python3; do
    command -v "$c" >/dev/null || die "$c not installed (Debian: apt-get install nginx curl python3)"
done
[ -x "$CAIRN" ] || die "$CAIRN missing; build it with cargo build --release -p cairn-cli"
require_port_free "$TARGET_PORT" "$CAIRN_HTTP_PORT"

# Each check keeps its own keep-alive connection to the target, so the target
# needs a connection per check (plus headroom), within the fd limit.
NOFILE="$(ulimit -n)"
[ "$NOFILE" -ge $((N + 1000)) ] || die "ulimit -n is $NOFILE; need at least $((N + 1000))"
WCONN=$(( (N + 2000) / NGINX_WORKERS ))

NG="$OUT_DIR/nginx"; mkdir -p "$NG/logs"
cat >"$NG/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile $NOFILE;
pid $NG/nginx.pid;
error_log $NG/logs/error.log warn;
events { worker_connections $WCONN; }
http {
    access_log off;
    client_body_temp_path $NG/tmp-body;
    proxy_temp_path $NG/tmp-proxy;
    fastcgi_temp_path $NG/tmp-fcgi;
    uwsgi_temp_path $NG/tmp-uwsgi;
    scgi_temp_path $NG/tmp-scgi;
    log_format chk '\$msec \$status \$uri';
    keepalive_timeout 75s;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$TARGET_PORT;
        location /health/ {
            access_log $NG/logs/access.log chk;
            default_type text/plain;
            return 200 "ok\n";
        }
        location / { return 404; }
    }
}
EOF

wait_quiet "$BUSY_PATTERN" "$QUIET_WAIT"
start_bg "$NG/nginx.stderr" nginx -p "$NG" -c "$NG/nginx.conf" -g 'daemon off;'
NGINX_PID="$LAST_PID"
wait_http "http://127.0.0.1:$TARGET_PORT/health/probe" 10 "$NGINX_PID" || die "nginx did not start; see $NG"
curl -s "http://127.0.0.1:$TARGET_PORT/health/probe" | grep -q ok || die "nginx does not answer ok"

start_bg "$OUT_DIR/agent.log" "$CAIRN" agent -dev -http-port "$CAIRN_HTTP_PORT" -dns-port -1 -log-level warn
AGENT_PID="$LAST_PID"
API="http://127.0.0.1:$CAIRN_HTTP_PORT"
wait_http "$API/v1/status/leader" 30 "$AGENT_PID" || die "cairn did not come up; see $OUT_DIR/agent.log"
for i in $(seq 1 100); do
    curl -s "$API/v1/status/leader" | grep -q ':' && break
    sleep 0.1
done

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
RSS_IDLE=$(status_kb "$AGENT_PID" VmRSS)
log "agent pid $AGENT_PID, idle RSS ${RSS_IDLE} kB; registering $N services with HTTP checks ($REG_CONC concurrent)"

c0=$(cpu_snap)
REG=$(python3 "$HERE/checks_register.py" "$CAIRN_HTTP_PORT" "$TARGET_PORT" "$N" "$REG_CONC" "$INTERVAL")
c1=$(cpu_snap)
REG_BUSY=$(cpu_busy_pct "$c0" "$c1")
log "registration: $REG (machine busy $REG_BUSY %)"
RSS_REG=$(status_kb "$AGENT_PID" VmRSS)
NSVC=$(curl -s "$API/v1/agent/services" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$NSVC" -ge "$N" ] || die "agent lists $NSVC services, expected $N"

log "settling for ${SETTLE}s"
sleep "$SETTLE"
wait_quiet "$BUSY_PATTERN" "$QUIET_WAIT"
kill -0 "$AGENT_PID" 2>/dev/null || die "agent exited; see $OUT_DIR/agent.log"

NGINX_PIDS="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
log "measuring for ${WINDOW}s"
RSS_SAMPLES=""
T0=$(date +%s.%N); c0=$(cpu_snap); a0=$(proc_ticks "$AGENT_PID"); n0=$(proc_ticks $NGINX_PIDS)
end=$(( $(date +%s) + WINDOW ))
while [ "$(date +%s)" -lt "$end" ]; do
    RSS_SAMPLES+="$(status_kb "$AGENT_PID" VmRSS) "
    sleep 5
done
a1=$(proc_ticks "$AGENT_PID"); n1=$(proc_ticks $NGINX_PIDS); c1=$(cpu_snap); T1=$(date +%s.%N)
AGENT_CPU=$(ticks_pct "$a0" "$a1")
NGINX_CPU=$(ticks_pct "$n0" "$n1")
MACHINE=$(cpu_busy_pct "$c0" "$c1")
RSS_END=$(status_kb "$AGENT_PID" VmRSS)
HWM=$(status_kb "$AGENT_PID" VmHWM)
THREADS=$(status_kb "$AGENT_PID" Threads)
FDS=$(ls "/proc/$AGENT_PID/fd" | wc -l)
NPASS=$(curl -s "$API/v1/health/state/passing" | python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin) if c.get("ServiceID")))')
NCRIT=$(curl -s "$API/v1/health/state/critical" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')

SPREAD=$(python3 "$HERE/checks_analyze.py" "$NG/logs/access.log" "$T0" "$T1" "$N")

python3 - "$OUT_DIR/result.json" <<EOF
import json, sys
reg = json.loads('''$REG''')
spread = json.loads('''$SPREAD''')
rss = [int(x) for x in "$RSS_SAMPLES".split()]
d = {
  "n_checks": $N, "interval": "$INTERVAL", "settle_s": $SETTLE, "window_s": round($T1 - $T0, 2),
  "registration": reg, "registration_machine_busy_pct": $REG_BUSY,
  "agent_cpu_pct_of_core": $AGENT_CPU, "nginx_cpu_pct_of_core": $NGINX_CPU,
  "machine_busy_pct": $MACHINE,
  "rss_idle_mb": round($RSS_IDLE / 1024, 1), "rss_after_registration_mb": round($RSS_REG / 1024, 1),
  "rss_window_mb": {"min": round(min(rss) / 1024, 1), "max": round(max(rss) / 1024, 1)},
  "rss_end_mb": round($RSS_END / 1024, 1), "vmhwm_mb": round($HWM / 1024, 1),
  "threads": $THREADS, "fds": $FDS,
  "checks_passing": $NPASS, "checks_critical": $NCRIT,
  "spread": spread,
}
json.dump(d, open(sys.argv[1], "w"), indent=1)
h = d["spread"].pop("histogram")
print(json.dumps(d, indent=1))
print("requests per second over the window:", h)
EOF
log "result in $OUT_DIR/result.json"

#!/usr/bin/env bash
# Registrator benchmark: N containers (200) started at once on a real Docker engine.
#
# 1. scripts/docker-engine.sh (engine up), a FROM-scratch busybox httpd image, a dev agent
#    (-node bench) and `cairn registrator -resync $RESYNC`.
# 2. N containers are created first (not timed), each publishing 4567 with the article's
#    metadata (SERVICE_4567_NAME=$NAME, CHECK_HTTP=/health, CHECK_INTERVAL=$INTERVAL,
#    SERVICE_TAGS=http). Then all are started at once: POST /containers/<id>/start on the
#    engine socket, $START_CONC in parallel. t0 = just before the first start.
# 3. Measured from t0: every container running (engine), every instance in the catalog
#    (/v1/catalog/service/$NAME), every instance passing (/v1/health/service/$NAME?passing).
# 4. Steady state: $RESYNCS resyncs with nothing changed. Counted: the registrator's own
#    writes (its "resync: ... W writes" lines) and whether the agent's X-Consul-Index on
#    /v1/catalog/services moved.
# 5. All containers removed at once: time until the catalog has none.
# 6. The same without Docker: `cairn tasks run --count N` of a one-container task definition
#    with the same metadata, each process a cairn-demo-http: time from the runner's start
#    until all N are in the catalog and passing, then until SIGTERM has removed them all.
#
# Needs: root (or docker rights), curl, python3, busybox-static, target/release/cairn
# (falls back to target/debug/cairn). Every process started here is stopped by PID on exit;
# the containers are removed by ID.
#
# env: N (200) INTERVAL (1s) RESYNC (2) RESYNCS (5) START_CONC (50) NAME (bench-web)
#      CAIRN (target/release/cairn) DEMO (cairn-demo-http next to CAIRN, else target/debug)
#      OUT_DIR (a new mktemp -d directory)
set -u

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
. "$HERE/lib.sh"
N="${N:-200}"
INTERVAL="${INTERVAL:-1s}"
RESYNC="${RESYNC:-2}"
RESYNCS="${RESYNCS:-5}"
START_CONC="${START_CONC:-50}"
NAME="${NAME:-bench-web}"
CAIRN="${CAIRN:-$ROOT/target/release/cairn}"
[ -x "$CAIRN" ] || CAIRN="$ROOT/target/debug/cairn"
[ -x "$CAIRN" ] || die "no cairn binary: cargo build --release -p cairn-cli"
DEMO="${DEMO:-$(dirname "$CAIRN")/cairn-demo-http}"
[ -x "$DEMO" ] || DEMO="$ROOT/target/debug/cairn-demo-http"
[ -x "$DEMO" ] || die "no cairn-demo-http: cargo build -p cairn-registrator"
OUT_DIR="${OUT_DIR:-$(mktemp -d -t cairn-registrator-bench.XXXXXX)}"
SOCK=/var/run/docker.sock
IMAGE=localhost/cairn-reg-web:bench

bench_init "$OUT_DIR"
CIDS="$OUT_DIR/containers"
: >"$CIDS"
remove_containers() {
    [ -s "$CIDS" ] && xargs -r -P 16 -n 20 docker rm -f <"$CIDS" >/dev/null 2>&1
    : >"$CIDS"
}
trap 'remove_containers; stop_all' EXIT
trap 'remove_containers; stop_all; exit 130' INT TERM

"$ROOT/scripts/docker-engine.sh" >&2 || die "no Docker engine"
log "binary: $CAIRN"

ctx="$OUT_DIR/image"; mkdir -p "$ctx/www"
cp /bin/busybox "$ctx/" && echo OK >"$ctx/www/health"
printf 'FROM scratch\nCOPY busybox /busybox\nCOPY www /www\nEXPOSE 4567\nCMD ["/busybox","httpd","-f","-p","4567","-h","/www"]\n' >"$ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$ctx" >/dev/null || die "docker build"

start_bg "$OUT_DIR/agent.log" "$CAIRN" agent -dev -http-port 0 -dns-port -1 -serf-lan-port 0 -server-port 0 -node bench
AGENT_PID=$LAST_PID
for _ in $(seq 1 200); do grep -q 'HTTP address: ' "$OUT_DIR/agent.log" && break; sleep 0.1; done
ADDR=$(grep -o 'HTTP address: [0-9.:]*' "$OUT_DIR/agent.log" | awk '{print $3}')
[ -n "$ADDR" ] || die "agent did not start: $(tail -5 "$OUT_DIR/agent.log")"
wait_http "http://$ADDR/v1/status/leader" 30 "$AGENT_PID" || die "agent not answering"
log "agent at $ADDR"

start_bg "$OUT_DIR/registrator.log" "$CAIRN" registrator -resync "$RESYNC" "consul://$ADDR"
REG_PID=$LAST_PID
for _ in $(seq 1 200); do grep -q 'start: ' "$OUT_DIR/registrator.log" && break; sleep 0.1; done
grep -q 'start: ' "$OUT_DIR/registrator.log" || die "registrator did not start: $(tail -5 "$OUT_DIR/registrator.log")"

log "creating $N containers (not timed)"
seq 1 "$N" | xargs -P 8 -I{} docker create -p 4567 \
    -e "SERVICE_4567_NAME=$NAME" -e SERVICE_4567_CHECK_HTTP=/health \
    -e "SERVICE_4567_CHECK_INTERVAL=$INTERVAL" -e SERVICE_TAGS=http \
    --name "cairn-bench-{}-$$" "$IMAGE" >>"$CIDS" 2>"$OUT_DIR/create.err"
[ "$(wc -l <"$CIDS")" -eq "$N" ] || die "created $(wc -l <"$CIDS") of $N: $(head -3 "$OUT_DIR/create.err")"
REG_CPU0=$(awk '{print $14+$15}' "/proc/$REG_PID/stat")

log "starting $N containers at once"
python3 - "$ADDR" "$NAME" "$N" "$SOCK" "$CIDS" "$START_CONC" "$OUT_DIR/startup.json" <<'PY'
import json, socket, sys, threading, time, urllib.request
addr, name, n, sock, cids_file, conc, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7]
cids = open(cids_file).read().split()

def engine(method, path):
    s = socket.socket(socket.AF_UNIX); s.connect(sock)
    s.sendall(f"{method} {path} HTTP/1.0\r\nHost: d\r\nContent-Length: 0\r\n\r\n".encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b: break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body

def count(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return len(json.load(r))
    except Exception:
        return -1

todo = list(cids); lock = threading.Lock(); errors = []
def starter():
    while True:
        with lock:
            if not todo: return
            c = todo.pop()
        st, body = engine("POST", f"/containers/{c}/start")
        if st not in (204, 304): errors.append((c, st, body[:200]))
t0 = time.monotonic()
threads = [threading.Thread(target=starter) for _ in range(conc)]
for t in threads: t.start()
marks = {}
while time.monotonic() - t0 < 300:
    now = time.monotonic() - t0
    if "all_started" not in marks and all(not t.is_alive() for t in threads):
        st, body = engine("GET", '/containers/json?filters={"status":["running"],"name":["cairn-bench-"]}')
        if st == 200 and len(json.loads(body)) >= n:
            marks["all_started"] = now
    if "all_registered" not in marks and count(f"http://{addr}/v1/catalog/service/{name}") == n:
        marks["all_registered"] = time.monotonic() - t0
    if "all_passing" not in marks and count(f"http://{addr}/v1/health/service/{name}?passing") == n:
        marks["all_passing"] = time.monotonic() - t0
    if len(marks) == 3: break
    time.sleep(0.05)
for t in threads: t.join()
marks["start_errors"] = len(errors)
json.dump(marks, open(out, "w"))
print(json.dumps(marks))
PY
REG_CPU1=$(awk '{print $14+$15}' "/proc/$REG_PID/stat")
TICKS=$(getconf CLK_TCK)

# Per-container lag: the engine's State.StartedAt against the registrator's "registered" line.
xargs docker inspect -f '{{.Name}} {{.State.StartedAt}}' <"$CIDS" >"$OUT_DIR/started_at"
python3 - "$OUT_DIR/started_at" "$OUT_DIR/registrator.log" <<'PY' | tee "$OUT_DIR/lag.txt"
import datetime, re, sys
def ts(s):
    s = s.rstrip("Z")
    base, _, frac = s.partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + (float("0." + frac) if frac else 0.0)
started = {}
for line in open(sys.argv[1]):
    name, at = line.split()
    started[name.lstrip("/")] = ts(at)
lags = []
for line in open(sys.argv[2]):
    m = re.match(r"(\S+) \[INFO\] registrator: registered [^:]+:([^:]+):4567 ", line)
    if m and m.group(2) in started:
        lags.append(ts(m.group(1)) - started.pop(m.group(2)))
lags.sort()
if lags:
    q = lambda p: lags[min(len(lags) - 1, int(p * len(lags)))]
    print(f"start -> registered, per container: median {q(0.5)*1000:.0f} ms, p90 {q(0.9)*1000:.0f} ms, max {lags[-1]*1000:.0f} ms ({len(lags)} containers)")
PY

log "steady state: $RESYNCS resyncs with nothing changed"
index() { curl -s -D - -o /dev/null "http://$ADDR/v1/catalog/services" | awk -F': ' 'tolower($1)=="x-consul-index"{print $2}' | tr -d '\r'; }
IDX0=$(index)
R0=$(grep -c 'resync: ' "$OUT_DIR/registrator.log")
for _ in $(seq 1 $(( (RESYNC * (RESYNCS + 2) + 10) * 10 ))); do
    [ $(( $(grep -c 'resync: ' "$OUT_DIR/registrator.log") - R0 )) -ge "$RESYNCS" ] && break
    sleep 0.1
done
IDX1=$(index)
RESYNC_LINES=$(grep 'resync: ' "$OUT_DIR/registrator.log" | tail -n +$((R0 + 1)) | head -n "$RESYNCS")
WRITES=$(echo "$RESYNC_LINES" | sed -n 's/.* \([0-9]*\) writes.*/\1/p' | awk '{s+=$1} END {print s+0}')
NRES=$(echo "$RESYNC_LINES" | grep -c 'resync: ')

log "removing $N containers at once"
T0=$(date +%s.%N)
xargs -P 16 -n 20 docker rm -f <"$CIDS" >/dev/null 2>&1
: >"$CIDS"
for _ in $(seq 1 1200); do
    c=$(curl -s "http://$ADDR/v1/catalog/service/$NAME" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null)
    [ "$c" = 0 ] && break
    sleep 0.1
done
T1=$(date +%s.%N)

python3 - "$OUT_DIR/startup.json" "$NRES" "$WRITES" "$IDX0" "$IDX1" "$T0" "$T1" "$REG_CPU0" "$REG_CPU1" "$TICKS" "$N" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
nres, writes, i0, i1, t0, t1, c0, c1, ticks, n = sys.argv[2:]
print(f"containers:                     {n}")
print(f"all running (engine):           {m.get('all_started', float('nan')):.2f} s")
print(f"all registered (catalog):       {m.get('all_registered', float('nan')):.2f} s")
print(f"all passing (health ?passing):  {m.get('all_passing', float('nan')):.2f} s")
print(f"start errors:                   {m['start_errors']}")
print(f"registrator CPU during startup: {(int(c1) - int(c0)) / int(ticks):.2f} s")
print(f"resyncs with nothing changed:   {nres}, registrator writes: {writes}")
print(f"X-Consul-Index /v1/catalog/services: {i0} -> {i1} ({'unchanged' if i0 == i1 else 'MOVED'})")
print(f"all deregistered after removal: {float(t1) - float(t0):.2f} s")
PY

log "the same $N as task processes (cairn tasks run --count $N, no Docker)"
cat >"$OUT_DIR/task.json" <<JSON
{"family": "bench-task", "containerDefinitions": [{"name": "web", "image": "bench/demo",
  "environment": [{"name": "SERVICE_4567_NAME", "value": "$NAME-task"},
                  {"name": "SERVICE_4567_CHECK_HTTP", "value": "/health"},
                  {"name": "SERVICE_4567_CHECK_INTERVAL", "value": "$INTERVAL"},
                  {"name": "SERVICE_TAGS", "value": "http"}],
  "portMappings": [{"containerPort": 4567}], "essential": true}]}
JSON
python3 - "$ADDR" "$NAME-task" "$N" "$OUT_DIR/tasks.log" "$CAIRN" tasks run "$OUT_DIR/task.json" \
    --count "$N" -http-addr "$ADDR" -image "demo=$DEMO" <<'PY'
import json, signal, subprocess, sys, time, urllib.request
addr, name, n, logf, cmd = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
def count(path):
    try:
        with urllib.request.urlopen(f"http://{addr}/v1/{path}", timeout=5) as r:
            return len(json.load(r))
    except Exception:
        return -1
t0 = time.monotonic()
# The runner is this script's child: it is stopped (TERM, then KILL) before the script ends.
p = subprocess.Popen(cmd, stdout=open(logf, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
marks = {}
try:
    while time.monotonic() - t0 < 120 and len(marks) < 2:
        if "registered" not in marks and count(f"catalog/service/{name}") == n:
            marks["registered"] = time.monotonic() - t0
        if "passing" not in marks and count(f"health/service/{name}?passing") == n:
            marks["passing"] = time.monotonic() - t0
        time.sleep(0.02)
    t1 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    while time.monotonic() - t1 < 60 and count(f"catalog/service/{name}") != 0:
        time.sleep(0.02)
    marks["deregistered"] = time.monotonic() - t1
    p.wait(timeout=30)
finally:
    if p.poll() is None:
        p.kill()
        p.wait()
fmt = lambda k: f"{marks[k]:.2f} s" if k in marks else "NOT REACHED"
print(f"tasks: {n} processes registered:   {fmt('registered')}")
print(f"tasks: {n} processes passing:      {fmt('passing')}")
print(f"tasks: deregistered after SIGTERM: {fmt('deregistered')} (runner exit code {p.returncode})")
PY

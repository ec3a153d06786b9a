#!/usr/bin/env bash
# The Docker files end to end: builds the images (docker/build-images.sh, FROM scratch from
# the binaries built here), brings up docker/docker-compose.yml (a server, two clients, the
# registrator, two instances each of stock-price and weather, the portal), waits until the
# portal answers GET /stock/AMZN and GET /weather/Paris through an instance it found by DNS
# SRV, and tears everything down (containers, volumes, images), also on failure.
#
# It runs on loopback addresses and a portal port of its own (127.R.S.11-13, a free port),
# under its own compose project and image tag, so it does not meet another run or a demo.
# Skips (exit 0, with a message) when no Docker engine answers or no compose is available;
# CAIRN_TEST_DOCKER=1 makes those failures instead (scripts/docker-engine.sh starts an
# engine on Debian; `apt-get install docker-compose` gives Compose).
#
# Usage: scripts/test-compose.sh
# Environment: SKIP_CARGO [unset] (use the release binaries already built), TIMEOUT [120]
#   seconds for the portal to answer both routes.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "test-compose: $*" >&2; }
skip() {
    if [ "${CAIRN_TEST_DOCKER:-}" = 1 ]; then say "FAIL: $*"; exit 1; fi
    say "skipped: $*"
    exit 0
}

command -v docker >/dev/null || skip "no docker CLI on PATH"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
    skip "no Docker engine answers (scripts/docker-engine.sh starts one)"
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
else
    skip "neither 'docker compose' nor docker-compose is installed (apt-get install docker-compose)"
fi

R=$((RANDOM % 200 + 20)); S=$((RANDOM % 250 + 1))
export CAIRN_SERVER_IP=127.$R.$S.11 CAIRN_CLIENT1_IP=127.$R.$S.12 CAIRN_CLIENT2_IP=127.$R.$S.13
export PORTAL_BIND=$CAIRN_CLIENT2_IP
export PORTAL_PORT
PORTAL_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export CAIRN_IMAGE_PREFIX=cairn-compose-test CAIRN_IMAGE_TAG=t$$
PROJECT=cairn-compose-test-$$
DC=("${COMPOSE[@]}" -p "$PROJECT" -f docker/docker-compose.yml)
OUT=$(mktemp -d)

cleanup() {
    local rc=$?
    if [ "$rc" != 0 ]; then
        say "logs of the failed run:"
        "${DC[@]}" logs --no-color --tail 30 >&2 2>/dev/null || true
    fi
    "${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    for app in cairn stock-price weather portal; do
        docker rmi "$CAIRN_IMAGE_PREFIX/$app:$CAIRN_IMAGE_TAG" >/dev/null 2>&1 || true
    done
    rm -rf "$OUT"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$(date +%s)
CONTEXT_DIR=$OUT/context docker/build-images.sh
say "compose project $PROJECT: server $CAIRN_SERVER_IP, clients $CAIRN_CLIENT1_IP $CAIRN_CLIENT2_IP, portal $PORTAL_BIND:$PORTAL_PORT (${COMPOSE[*]})"
"${DC[@]}" up -d >"$OUT/up.log" 2>&1 || { cat "$OUT/up.log" >&2; exit 1; }

# get ROUTE FIELD: polls the portal until ROUTE answers 200 with FIELD and an instance.
get() {
    local deadline=$(( $(date +%s) + ${TIMEOUT:-120} )) body=""
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if body=$(curl -fsS --max-time 5 "http://$PORTAL_BIND:$PORTAL_PORT$1" 2>/dev/null) &&
            echo "$body" | grep -q "\"$2\"" && echo "$body" | grep -q '"instance"'; then
            say "GET $1 -> $body"
            return 0
        fi
        sleep 0.5
    done
    say "FAIL: GET $1 did not answer 200 with \"$2\" and \"instance\" in ${TIMEOUT:-120} s; last: $body"
    return 1
}
get /stock/AMZN price
get /weather/Paris temp
# Both instances of each back end get registered and pass their checks (the registrator saw
# every container; client 2 sees what client 1 registered).
for svc in stock-price weather; do
    n=$(python3 - "$CAIRN_CLIENT2_IP" "$svc" "${TIMEOUT:-120}" <<'PY'
import json, sys, time, urllib.request
ip, svc, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline, n = time.monotonic() + limit, 0
while time.monotonic() < deadline:
    try:
        url = f"http://{ip}:8500/v1/health/service/{svc}?passing"
        n = len(json.load(urllib.request.urlopen(url, timeout=5)))
    except OSError:
        pass
    if n == 2:
        break
    time.sleep(0.5)
print(n)
PY
)
    [ "$n" = 2 ] || { say "FAIL: client 2 sees $n passing $svc instances, not 2"; exit 1; }
done
say "ok: portal answered both routes; 2 passing instances of each back end ($(( $(date +%s) - started )) s)"

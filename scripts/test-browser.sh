#!/usr/bin/env bash
# Browser test of the sample portal: a dev Cairn agent, two stock-price and two
# weather instances registered with HTTP checks, the portal resolving them by
# DNS SRV through the agent, and headless Debian Chromium (driven by
# playwright-core, never a downloaded browser) adding a stock and a city.
#
# Usage: scripts/test-browser.sh [--screenshot PATH] [--demo]   (from anywhere)
# --demo: run the same browser test against `cairn demo` (1 server, 2 clients, the
# apps under the task runner) instead of the hand-built single-agent setup.
# Installs what is missing (apt: chromium, nodejs, npm; npm ci in the test
# directory). Any missing piece is an error, never a silent pass.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TEST_DIR=apps/portal/browser-test
SCREENSHOT=$ROOT/target/portal.png
DEMO=0
while [ $# -gt 0 ]; do
  case "$1" in
    --screenshot) SCREENSHOT=$(realpath -m "$2"); shift 2 ;;
    --demo) DEMO=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

say() { printf '\n==> %s\n' "$*"; }
die() {
  if [ -n "${WORK:-}" ] && [ -d "$WORK/demo" ]; then
    echo "--- cairn demo logs" >&2; tail -n 15 "$WORK"/demo/*.log >&2 || true
  fi
  echo "test-browser: $*" >&2; exit 1
}

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null \
    || die "could not install ${need[*]}"
fi
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium is missing"
command -v node >/dev/null || die "node is missing"

say "npm ci ($TEST_DIR)"
(cd "$TEST_DIR" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
[ -d "$TEST_DIR/node_modules/playwright-core" ] || die "playwright-core not installed"

say "cargo build (cairn, stock-price, weather, portal)"
nice -n 10 cargo build -q -p cairn-cli -p stock-price -p weather -p portal
BIN=$ROOT/target/debug
for b in cairn stock-price weather portal; do
  [ -x "$BIN/$b" ] || die "$BIN/$b was not built"
done

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# wait_for FILE PATTERN: prints the text after PATTERN once it appears (30 s).
wait_for() {
  local deadline=$((SECONDS + ${WAIT_SECS:-30})) line
  while [ $SECONDS -lt $deadline ]; do
    line=$(grep -m1 -o "$2.*" "$1" 2>/dev/null || true)
    if [ -n "$line" ]; then echo "${line#"$2"}" | awk '{print $1}'; return 0; fi
    sleep 0.1
  done
  echo "--- $1" >&2; cat "$1" >&2
  die "timed out waiting for '$2' in $1"
}

if [ "$DEMO" = 1 ]; then
  say "starting cairn demo (ephemeral ports)"
  "$BIN/cairn" demo --ports ephemeral --dir "$WORK/demo" >"$WORK/demo.out" 2>&1 &
  PIDS+=($!)
  SERVER=$(wait_for "$WORK/demo.out" "s1  server  HTTP API http://")
  PORTAL=$(wait_for "$WORK/demo.out" "Portal: http://")
  PORTAL=${PORTAL%/}
  PORTAL_LOG=$WORK/demo/portal-1.log
  WAIT_SECS=90 wait_for "$WORK/demo.out" "==> Ready" >/dev/null
  ports_of() { # service -> comma-separated ports of its passing instances
    curl -fsS "http://$SERVER/v1/health/service/$1?passing" 2>/dev/null | python3 -c \
      'import json,sys; print(",".join(str(e["Service"]["Port"]) for e in json.load(sys.stdin)))' \
      2>/dev/null || true
  }
  deadline=$((SECONDS + 30))
  while :; do
    IFS=, read -r -a STOCK_PORTS <<<"$(ports_of stock-price)"
    IFS=, read -r -a WEATHER_PORTS <<<"$(ports_of weather)"
    [ ${#STOCK_PORTS[@]} -ge 2 ] && [ ${#WEATHER_PORTS[@]} -ge 2 ] && break
    if [ $SECONDS -ge $deadline ]; then
      echo "--- cairn demo output" >&2; cat "$WORK/demo.out" >&2
      die "the demo's back ends never all passed: stock-price ${STOCK_PORTS[*]}, weather ${WEATHER_PORTS[*]}"
    fi
    sleep 0.2
  done
  echo "demo: portal $PORTAL, stock-price on ${STOCK_PORTS[*]}, weather on ${WEATHER_PORTS[*]}"
else
  say "starting the agent"
  "$BIN/cairn" agent -dev -http-port 0 -dns-port 0 -serf-lan-port 0 -server-port 0 >"$WORK/agent.log" 2>&1 &
  PIDS+=($!)
  HTTP=$(wait_for "$WORK/agent.log" "HTTP address: ")
  DNS=$(wait_for "$WORK/agent.log" "DNS address: ")
  echo "agent HTTP $HTTP, DNS $DNS"

  start_app() { # name index: starts it here (not in a subshell, so its PID is recorded)
    PORT=0 BIND=127.0.0.1 "$BIN/$1" >"$WORK/$1-$2.log" 2>&1 &
    PIDS+=($!)
  }
  port_of() { # name index -> prints its port
    wait_for "$WORK/$1-$2.log" "$1 listening on " | sed 's/.*://'
  }
  register() { # name id port
    curl -fsS -X PUT "http://$HTTP/v1/agent/service/register" -d \
      "{\"ID\":\"$2\",\"Name\":\"$1\",\"Port\":$3,\"Tags\":[\"http\"],\"Check\":{\"HTTP\":\"http://127.0.0.1:$3/health\",\"Interval\":\"1s\"}}" \
      || die "registering $2 failed"
  }
  STOCK_PORTS=() WEATHER_PORTS=()
  for i in 1 2; do
    start_app stock-price "$i"; p=$(port_of stock-price "$i"); STOCK_PORTS+=("$p")
    register stock-price "stock-price-$i" "$p"
    start_app weather "$i"; p=$(port_of weather "$i"); WEATHER_PORTS+=("$p")
    register weather "weather-$i" "$p"
  done
  echo "stock-price on ${STOCK_PORTS[*]}, weather on ${WEATHER_PORTS[*]}"

  deadline=$((SECONDS + 30))
  for svc in stock-price weather; do
    until [ "$(curl -fsS "http://$HTTP/v1/health/service/$svc?passing" | grep -o '"ServiceID"' | wc -l)" -ge 2 ]; do
      [ $SECONDS -lt $deadline ] || die "$svc instances never became passing"
      sleep 0.2
    done
  done

  say "starting the portal (DNS $DNS)"
  PORT=0 BIND=127.0.0.1 "$BIN/portal" -dns "$DNS" >"$WORK/portal.log" 2>&1 &
  PIDS+=($!)
  PORTAL=$(wait_for "$WORK/portal.log" "portal listening on ")
  PORTAL_LOG=$WORK/portal.log

fi

say "browser test against http://$PORTAL"
mkdir -p "$(dirname "$SCREENSHOT")"
status=0
(cd "$TEST_DIR" && PORTAL_URL="http://$PORTAL" \
  STOCK_PORTS=$(IFS=,; echo "${STOCK_PORTS[*]}") WEATHER_PORTS=$(IFS=,; echo "${WEATHER_PORTS[*]}") \
  SCREENSHOT="$SCREENSHOT" node --test portal.test.mjs) || status=$?
if [ $status -ne 0 ]; then
  echo "--- portal log" >&2; tail -n 30 "$PORTAL_LOG" >&2 || true
  die "browser test failed"
fi
[ -s "$SCREENSHOT" ] || die "no screenshot at $SCREENSHOT"
echo "screenshot: $SCREENSHOT"

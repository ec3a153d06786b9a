#!/usr/bin/env bash
# Cairn's test command: quality gates, the whole workspace test suite against real
# agents, and (when the compatibility harness is next to the checkout) the py-consul
# client's own test suite against a fresh Cairn agent per test.
#
# Usage: scripts/test.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

say "toolchain: $(cargo --version)"
# System packages the tests use: dig (DNS tests) and python3 (compatibility suite).
# scripts/docker-engine.sh and scripts/test-browser.sh install their own (docker.io,
# chromium, node).
need=()
command -v dig >/dev/null || need+=(dnsutils)
command -v python3 >/dev/null || need+=(python3 python3-venv)
# docker-compose: scripts/test-compose.sh (Debian's Compose v1, unless `docker compose` works).
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

say "Docker engine for the registrator's tests"
# Installs docker.io when missing and starts dockerd when it does not answer; with
# CAIRN_TEST_DOCKER=1 the registrator's Docker tests must run (they fail without an engine).
scripts/docker-engine.sh
export CAIRN_TEST_DOCKER=1
# The registrator's tests drive the cairn binary; build it before the test binaries run.
cargo build -p cairn-cli

say "cargo test (unit, contract and integration tests against real agents)"
cargo test --workspace --no-fail-fast 2>&1 | tee target/cargo-test.log
# cargo test prints one 'test result' line per test binary; sum them for one closing line.
awk '/^test result:/ {p+=$4; f+=$6; i+=$8} END {printf "cargo: %d passed, %d failed, %d ignored\n", p, f, i}' target/cargo-test.log

say "browser test of the sample portal (headless Chromium)"
# Reuses the debug binaries cargo test just built.
scripts/test-browser.sh

say "docker/: the images FROM scratch and docker-compose.yml, end to end"
# The debug binaries (cargo test built them; this build only fills any gap), about 30 s.
cargo build -p cairn-cli -p stock-price -p weather -p portal
PROFILE=debug SKIP_CARGO=1 scripts/test-compose.sh

HARNESS=../shared/compat/py-consul.sh
if [ -x "$HARNESS" ] || [ -f "$HARNESS" ]; then
  say "py-consul compatibility suite (fresh agent per test)"
  # Reuses the debug binary cargo test just built: no second build.
  AGENT_CMD="target/debug/cairn agent -dev -dns-port -1 -serf-lan-port 0 -server-port 0" \
    bash "$HARNESS" --exclude "$PWD/compat/py-consul.cairn-exclude"
else
  say "py-consul compatibility suite skipped: $HARNESS not found (it lives outside this repository)"
fi

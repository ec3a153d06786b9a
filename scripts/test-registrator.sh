#!/usr/bin/env bash
# The registrator's test run: brings up a real Docker engine (scripts/docker-engine.sh),
# builds the cairn binary the tests drive, then runs the cairn-registrator tests with
# CAIRN_TEST_DOCKER=1, which makes the Docker tests mandatory: without an engine they fail
# instead of printing "skipped: no Docker engine".
#
# Usage: scripts/test-registrator.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/docker-engine.sh
export CAIRN_TEST_DOCKER=1
cargo build -p cairn-cli
cargo test -p cairn-registrator --no-fail-fast "$@"

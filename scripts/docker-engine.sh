#!/usr/bin/env bash
# Makes sure a Docker engine answers on /var/run/docker.sock (or $DOCKER_HOST's unix
# socket): installs docker.io and busybox-static when missing (Debian), starts dockerd
# when /_ping does not answer, and waits until it is ready. Idempotent: running it
# again with an engine up does nothing. The registrator's Docker tests use it.
#
# Usage: scripts/docker-engine.sh            (prints the engine's API version)
set -euo pipefail

SOCK=${DOCKER_HOST:-unix:///var/run/docker.sock}
SOCK=${SOCK#unix://}
LOG=${CAIRN_DOCKERD_LOG:-/tmp/cairn-dockerd.log}

ping() { curl -sf --max-time 2 --unix-socket "$SOCK" http://docker/_ping >/dev/null 2>&1; }

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
need=()
command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ] || need+=(docker.io)
{ [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static; } || need+=(busybox-static)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  echo "docker-engine: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! ping; then
  echo "docker-engine: starting dockerd (log: $LOG)"
  # setsid: the engine outlives this script and the test run that started it.
  $SUDO setsid /usr/sbin/dockerd -H "unix://$SOCK" >"$LOG" 2>&1 < /dev/null &
  for _ in $(seq 1 300); do ping && break; sleep 0.1; done
fi
if ! ping; then
  echo "docker-engine: dockerd did not become ready; last log lines:" >&2
  tail -30 "$LOG" >&2 || true
  exit 1
fi
ver=$(curl -sf --unix-socket "$SOCK" http://docker/version | sed -n 's/.*"ApiVersion":"\([^"]*\)".*/\1/p')
echo "docker-engine: ready at unix://$SOCK (API $ver)"

#!/usr/bin/env python3
"""Replicated servers: how long a leader's crash interrupts writes, and that no
acknowledged write is lost.

Starts three servers (-bootstrap-expect=3, durable data dirs) on 127.0.0.1-3 and one
client agent on 127.0.0.4 (HTTP 18500, DNS off, serf 18301, RPC 18300 on each address),
with `performance.raft_multiplier` = MULT. Then ROUNDS times: a writer sends sequential
KV PUTs through the client; after 2 s the leader gets SIGKILL; the script records when the
two survivors agree on a new leader, the longest gap between two acknowledged writes,
and how many writes failed; it checks with ?consistent on both survivors that every
acknowledged write is there, then restarts the killed server and waits until it has
caught up.

Usage: bench/servers_failover.py [target/release/cairn] [ROUNDS] [MULT]
Everything runs on 127.0.0.1-4 and is stopped on exit.
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/cairn"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
MULT = int(sys.argv[3]) if len(sys.argv) > 3 else 1
PORTS = ["-http-port", "18500", "-dns-port", "-1", "-serf-lan-port", "18301", "-server-port", "18300"]
WORK = tempfile.mkdtemp(prefix="cairn-failover-bench.")
PROCS = {}


def start(name, ip, extra):
    log = open(os.path.join(WORK, f"{name}.log"), "a")
    args = [BIN, "agent", "-node", name, "-bind", ip, "-client", ip, "-log-level", "warn",
            "-retry-join", "127.0.0.1:18301", "-retry-interval", "500ms"]
    PROCS[name] = subprocess.Popen(args + PORTS + extra, stdout=log, stderr=subprocess.STDOUT)


def server(i):
    start(f"s{i}", f"127.0.0.{i}", ["-server", "-bootstrap-expect", "3",
                                    "-data-dir", os.path.join(WORK, f"s{i}"),
                                    "-hcl", "performance { raft_multiplier = %d }" % MULT])


def get(ip, path, timeout=2):
    with urllib.request.urlopen(f"http://{ip}:18500{path}", timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def wait(what, f, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = f()
            if v:
                return v
        except Exception:
            pass
        time.sleep(0.01)
    raise SystemExit(f"timed out waiting for {what}; logs in {WORK}")


def agreed(ips):
    seen = {get(ip, "/v1/status/leader", 1) for ip in ips}
    return seen.pop() if len(seen) == 1 and "" not in seen else None


def main():
    for i in (1, 2, 3):
        server(i)
    servers = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    wait("a leader", lambda: agreed(servers))
    start("c4", "127.0.0.4", [])
    wait("the client follows the leader", lambda: get("127.0.0.4", "/v1/status/leader"))
    elections, gaps, fails = [], [], []
    key = 0
    for r in range(ROUNDS):
        leader = agreed(servers)
        victim = f"s{leader.split(':')[0].rsplit('.', 1)[1]}"
        acked, failed, stop = [], [0], threading.Event()

        def writer():
            nonlocal key
            while not stop.is_set():
                key += 1
                k = key
                req = urllib.request.Request(f"http://127.0.0.4:18500/v1/kv/f/{k}", data=b"x", method="PUT")
                try:
                    with urllib.request.urlopen(req, timeout=15) as resp:
                        if resp.read().strip() == b"true":
                            acked.append((k, time.monotonic()))
                except Exception as e:
                    failed[0] += 1
                    if failed[0] <= 3 or failed[0] % 1000 == 0:
                        body = getattr(e, "read", lambda: b"")()
                        print(f"  write {k} failed: {e} {body[:200]!r}", flush=True)

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(2)
        killed = time.monotonic()
        PROCS[victim].send_signal(signal.SIGKILL)
        PROCS[victim].wait()
        survivors = [ip for ip in servers if not leader.startswith(ip + ":")]
        new = wait("a new leader", lambda: (lambda l: l if l and l != leader else None)(agreed(survivors)))
        elected = time.monotonic() - killed
        time.sleep(2)
        stop.set()
        t.join()
        times = [ts for _, ts in acked]
        gap = max((b - a for a, b in zip(times, times[1:])), default=0)
        keys = set()
        for ip in survivors:
            got = get(ip, "/v1/kv/f/?keys&consistent", 10)
            keys = {int(x.split("/")[1]) for x in got}
            lost = [k for k, _ in acked if k not in keys]
            if lost:
                raise SystemExit(f"round {r + 1}: {len(lost)} acknowledged writes missing on {ip}: {lost[:10]}")
        elections.append(elected)
        gaps.append(gap)
        fails.append(failed[0])
        print(f"round {r + 1}: leader {leader} killed; new leader {new} agreed after {elected:.2f} s; "
              f"longest gap between acknowledged writes {gap:.2f} s; {len(acked)} acknowledged, "
              f"{failed[0]} failed; none lost", flush=True)
        server(int(victim[1:]))
        wait("the restarted server catches up",
             lambda: set(int(x.split('/')[1]) for x in get(leader.split(':')[0], "/v1/kv/f/?keys&consistent", 10)) >= {k for k, _ in acked})
        wait("everyone agrees on one leader", lambda: agreed(servers))
    print(f"raft_multiplier {MULT}, {ROUNDS} rounds: new leader agreed after median {statistics.median(elections):.2f} s, "
          f"max {max(elections):.2f} s; longest write gap median {statistics.median(gaps):.2f} s, max {max(gaps):.2f} s; "
          f"failed writes per round {fails}; acknowledged writes lost: 0")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in PROCS.values():
            try:
                p.kill()
                p.wait()
            except Exception:
                pass
        if os.environ.get("KEEP"):
            print(f"logs kept in {WORK}")
        else:
            shutil.rmtree(WORK, ignore_errors=True)

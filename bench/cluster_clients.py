#!/usr/bin/env python3
"""Client agents: how fast a crashed node's services leave another client's DNS, and what
an idle client agent costs in memory.

Starts one server (127.0.0.1) and three client agents (127.0.0.2-4), each on ports
HTTP 18500, DNS 18600, serf 18301 of its own address (server RPC 18300 on the server), with
one service per client. Then ROUNDS times: a victim client on 127.0.0.5 starts with service
`victim`, the script waits until 127.0.0.2's DNS answers `victim.service.consul SRV`, sends
it SIGKILL, and polls 127.0.0.2's DNS every 10 ms (UDP, one query in flight) until the answer
is empty: that time is "kill -9 to gone from another client's DNS". It also records when
127.0.0.3's member list first shows the victim failed. Finally it lets the cluster sit idle
for IDLE seconds and reports each agent's RSS (VmRSS).

Usage: bench/cluster_clients.py [target/release/cairn] [ROUNDS] [IDLE]
Everything it starts runs on 127.0.0.1-5 and is stopped on exit (normal or not).
"""

import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/cairn"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
IDLE = int(sys.argv[3]) if len(sys.argv) > 3 else 30
PORTS = ["-http-port", "18500", "-dns-port", "18600", "-serf-lan-port", "18301"]
PROCS = []
WORK = tempfile.mkdtemp(prefix="cairn-cluster-bench.")


def start(name, ip, extra):
    log = open(os.path.join(WORK, f"{name}.log"), "w")
    args = [BIN, "agent", "-node", name, "-bind", ip, "-client", ip, "-log-level", "warn"]
    p = subprocess.Popen(args + PORTS + extra, stdout=log, stderr=subprocess.STDOUT)
    PROCS.append(p)
    return p


def get(ip, path):
    with urllib.request.urlopen(f"http://{ip}:18500{path}", timeout=2) as r:
        return json.loads(r.read() or b"null")


def wait(what, f, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = f()
            if v:
                return v
        except Exception:
            pass
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}; logs in {WORK}")


def srv_count(ip, name):
    """Number of SRV answers for NAME.service.consul from IP:18600 (one UDP query)."""
    qid = os.getpid() & 0xFFFF
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in f"{name}.service.consul".split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", 33, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    try:
        s.sendto(q, (ip, 18600))
        data, _ = s.recvfrom(4096)
    finally:
        s.close()
    return struct.unpack(">H", data[6:8])[0]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def status_of(ip, name):
    for m in get(ip, "/v1/agent/members"):
        if m["Name"] == name:
            return m["Status"]
    return None


def svc(name, port):
    return ["-hcl", 'service {\n name = "%s"\n port = %d\n}' % (name, port)]


def main():
    join = ["-retry-join", "127.0.0.1:18301", "-retry-interval", "1s"]
    server = start("s1", "127.0.0.1", ["-dev", "-server-port", "18300"])
    wait("the server", lambda: get("127.0.0.1", "/v1/status/leader"))
    clients = [start(f"c{i}", f"127.0.0.{i}", join + svc(f"svc{i}", 9000 + i)) for i in (2, 3, 4)]
    wait("4 members alive", lambda: sum(m["Status"] == 1 for m in get("127.0.0.2", "/v1/agent/members")) == 4)
    gone, failed = [], []
    for r in range(ROUNDS):
        victim = start("victim", "127.0.0.5", join + svc("victim", 9999))
        wait("victim in c2's DNS", lambda: srv_count("127.0.0.2", "victim") == 1)
        wait("victim alive on c3", lambda: status_of("127.0.0.3", "victim") == 1)
        t0 = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        PROCS.remove(victim)
        t_failed = None
        while True:
            now = time.monotonic() - t0
            if t_failed is None:
                try:
                    if status_of("127.0.0.3", "victim") == 4:
                        t_failed = now
                except Exception:
                    pass
            if srv_count("127.0.0.2", "victim") == 0:
                gone.append(time.monotonic() - t0)
                break
            if now > 30:
                raise SystemExit(f"round {r}: victim still in DNS after 30 s; logs in {WORK}")
            time.sleep(0.01)
        wait("c3 sees the victim failed", lambda: status_of("127.0.0.3", "victim") == 4)
        failed.append(t_failed if t_failed is not None else time.monotonic() - t0)
        print(f"round {r + 1}: gone from c2's DNS after {gone[-1]:.2f} s, failed on c3 after {failed[-1]:.2f} s", flush=True)
        # Let the failure settle before the next incarnation.
        time.sleep(1)
    q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]
    print(f"kill -9 to gone from another client's DNS over {ROUNDS} rounds: "
          f"min {min(gone):.2f} s, median {statistics.median(gone):.2f} s, p90 {q(gone, 0.9):.2f} s, max {max(gone):.2f} s")
    print(f"kill -9 to failed in another client's member list: median {statistics.median(failed):.2f} s, max {max(failed):.2f} s")
    print(f"idle for {IDLE} s ...", flush=True)
    time.sleep(IDLE)
    for name, p in [("server s1", server)] + [(f"client c{i}", c) for i, c in zip((2, 3, 4), clients)]:
        print(f"idle RSS {name}: {rss_kb(p.pid) / 1024:.1f} MiB")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in PROCS:
            try:
                p.kill()
                p.wait()
            except Exception:
                pass
        shutil.rmtree(WORK, ignore_errors=True)

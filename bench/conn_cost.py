#!/usr/bin/env python3
"""What an idle HTTP connection and a parked blocking query cost a Cairn agent.

Starts `cairn agent -dev` (the binary given), then:
  1. opens N keep-alive connections, each after one request, spread over source addresses
     127.0.0.10+ so the per-client limit (200) is respected, and holds them idle;
  2. in a second, fresh agent, parks N blocking queries (GET
     /v1/kv/bench/watch?index=I&wait=120s, each on its own connection), then writes the key
     once and counts how many woke with a 200;
and reports each agent's RSS (VmRSS) at rest and loaded: per connection and per query
(the query's connection included). Bounded: N connections, one write, everything on 127.0.0.x, stops by itself.

Usage: bench/conn_cost.py target/release/cairn [N]
"""

import asyncio
import os
import re
import subprocess
import sys
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/cairn"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
PER_IP = 190


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def settle(pid, seconds=2.0):
    """RSS after the allocator's decay (jemalloc returns pages after ~1 s)."""
    time.sleep(seconds)
    return rss_kb(pid)


async def open_conn(host, port, src, path):
    r, w = await asyncio.open_connection(host, port, local_addr=(src, 0))
    w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    m = re.search(rb"content-length: (\d+)", head, re.I)
    if m:
        await r.readexactly(int(m.group(1)))
    return r, w


async def send_only(host, port, src, path):
    r, w = await asyncio.open_connection(host, port, local_addr=(src, 0))
    w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await w.drain()
    return r, w


def start_agent():
    proc = subprocess.Popen(
        [BIN, "agent", "-dev", "-http-port", "0", "-dns-port", "-1", "-serf-lan-port", "0", "-server-port", "0", "-log-level", "warn"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if "HTTP address:" in line:
            return proc, line.split("HTTP address:")[1].strip()
    raise SystemExit("the agent did not start")


async def idle_connections(srcs):
    proc, addr = start_agent()
    host, port = addr.rsplit(":", 1)
    port = int(port)
    try:
        r, w = await open_conn(host, port, "127.0.0.9", "/v1/status/leader")
        w.close()
        base = settle(proc.pid)
        conns = []
        for i in range(0, N, 200):
            conns += await asyncio.gather(*[
                open_conn(host, port, srcs[j], "/v1/status/leader") for j in range(i, min(N, i + 200))])
        loaded = settle(proc.pid)
        for _, w in conns:
            w.close()
        return base, loaded
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def blocking_queries(srcs):
    proc, addr = start_agent()
    host, port = addr.rsplit(":", 1)
    port = int(port)
    try:
        out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null",
                              f"http://{addr}/v1/kv/bench/watch"], capture_output=True, text=True).stdout
        index = int(re.search(r"x-consul-index: (\d+)", out, re.I).group(1))
        base = settle(proc.pid)
        parked = []
        for i in range(0, N, 200):
            parked += await asyncio.gather(*[
                send_only(host, port, srcs[j], f"/v1/kv/bench/watch?index={index}&wait=120s")
                for j in range(i, min(N, i + 200))])
        loaded = settle(proc.pid)
        t0 = time.time()
        subprocess.run(["curl", "-s", "-X", "PUT", "-d", "v", f"http://{addr}/v1/kv/bench/watch"],
                       capture_output=True)

        async def woke(r):
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
            return head.startswith(b"HTTP/1.1 200")
        results = await asyncio.gather(*[woke(r) for r, _ in parked], return_exceptions=True)
        wake_s = time.time() - t0
        for _, w in parked:
            w.close()
        return base, loaded, sum(1 for x in results if x is True), wake_s
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def main():
    srcs = [f"127.0.0.{10 + i // PER_IP}" for i in range(N)]
    base, idle = await idle_connections(srcs)
    print(f"agent RSS at rest:             {base / 1024:.1f} MiB")
    print(f"{N} idle keep-alive conns:     {idle / 1024:.1f} MiB  "
          f"=> {(idle - base) / N:.1f} KiB per connection")
    base, loaded, ok, wake_s = await blocking_queries(srcs)
    print(f"fresh agent at rest:           {base / 1024:.1f} MiB")
    print(f"{N} parked blocking queries:   {loaded / 1024:.1f} MiB  "
          f"=> {(loaded - base) / N:.1f} KiB per query (its connection included)")
    print(f"woken by one write:            {ok}/{N} in {wake_s:.2f} s")


asyncio.run(main())

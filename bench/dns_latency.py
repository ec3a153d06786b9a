#!/usr/bin/env python3
"""Sequential DNS latency sampler (one UDP query in flight at a time).

usage: dns_latency.py HOST PORT QUERYFILE [N=20000] [WARMUP=500]

Sends N queries taken round-robin from QUERYFILE ("name TYPE" lines), each only
after the previous answer arrived (timeout 1 s = counted as lost), timing each
round trip with perf_counter_ns from just before sendto() to just after recv().
The figures include this Python client's own per-query overhead (tens of us),
the same for every server. Prints one JSON object: n, lost, p50/p90/p99/p99.9/max
(ms), mean, and the rcode counts.
"""
import json
import random
import socket
import struct
import sys
import time

TYPES = {"A": 1, "NS": 2, "SRV": 33, "TXT": 16, "AAAA": 28, "ANY": 255}


def packet(qid, name, qtype):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", TYPES[qtype], 1)


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def main():
    host, port, qf = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
    warm = int(sys.argv[5]) if len(sys.argv) > 5 else 500
    qs = []
    with open(qf) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                qs.append((parts[0], parts[1].upper()))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, port))
    s.settimeout(1.0)
    rnd = random.Random(7)
    lat = []
    lost = 0
    rcodes = {}
    pkts = [packet(0, nm, t) for nm, t in qs]
    for i in range(warm + n):
        qid = rnd.randrange(65536)
        p = struct.pack(">H", qid) + pkts[i % len(pkts)][2:]
        t0 = time.perf_counter_ns()
        s.send(p)
        while True:
            try:
                r = s.recv(65535)
            except socket.timeout:
                r = None
                break
            if len(r) >= 4 and struct.unpack(">H", r[:2])[0] == qid:
                break
        t1 = time.perf_counter_ns()
        if i < warm:
            continue
        if r is None:
            lost += 1
            continue
        lat.append((t1 - t0) / 1e6)
        rc = r[3] & 0x0F
        rcodes[rc] = rcodes.get(rc, 0) + 1
    lat.sort()
    out = {
        "n": len(lat), "lost": lost,
        "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90), "p99_ms": pct(lat, 99),
        "p999_ms": pct(lat, 99.9), "max_ms": lat[-1] if lat else None,
        "mean_ms": sum(lat) / len(lat) if lat else None,
        "rcodes": {str(k): v for k, v in sorted(rcodes.items())},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Register N services, each with an HTTP check, through PUT /v1/agent/service/register,
from C threads with one keep-alive connection each.

usage: checks_register.py AGENT_HTTP_PORT TARGET_PORT N [C=16] [INTERVAL=10s]

Service i: ID chk-<i:05d>, Name chk-<i:05d>, Port 30000+i%30000, check HTTP
http://127.0.0.1:TARGET_PORT/health/chk-<i:05d> every INTERVAL (the service ID in the
path lets the target's access log attribute each request to its check). INTERVAL "none"
registers the services without checks (to separate the checks' cost from the services').
Prints JSON: n, ok, failed, seconds, per-request latency p50/p99/max (ms).
"""
import http.client
import json
import sys
import threading
import time


def main():
    aport, tport, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    conc = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    interval = sys.argv[5] if len(sys.argv) > 5 else "10s"
    lock = threading.Lock()
    nxt = [0]
    lat, fails = [], []

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", aport, timeout=30)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                break
            sid = f"chk-{i:05d}"
            svc = {"ID": sid, "Name": sid, "Port": 30000 + i % 30000}
            if interval != "none":
                svc["Check"] = {"HTTP": f"http://127.0.0.1:{tport}/health/{sid}", "Interval": interval}
            body = json.dumps(svc)
            t0 = time.perf_counter()
            try:
                c.request("PUT", "/v1/agent/service/register", body=body,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                ok = r.status == 200
                err = None if ok else f"{r.status}"
            except Exception as e:  # reconnect and count it
                ok, err = False, repr(e)
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", aport, timeout=30)
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                lat.append(dt)
                if not ok:
                    fails.append((sid, err))

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.perf_counter() - t0
    lat.sort()
    print(json.dumps({
        "n": n, "concurrency": conc, "ok": n - len(fails), "failed": len(fails),
        "first_failure": fails[0] if fails else None,
        "seconds": round(el, 3), "per_s": round(n / el, 1),
        "p50_ms": round(lat[len(lat) // 2], 3), "p99_ms": round(lat[int(len(lat) * 0.99)], 3),
        "max_ms": round(lat[-1], 3),
    }))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Spread of check executions from the target's access log.

usage: checks_analyze.py ACCESS_LOG T0 T1 [NCHECKS]

Log lines: "<msec> <status> <uri>" (nginx $msec = epoch seconds with ms); only
URIs /health/chk-* (the benchmark's checks) are counted.
For the window [T0, T1) prints JSON with:
  requests, per-second histogram stats (min / p1 / p50 / p99 / max / stddev),
  the busiest 100 ms bucket, status counts, distinct checks seen, checks never seen,
  and per-check intervals (time between consecutive requests of the same check
  inside the window): p0.1 / p1 / p50 / p99 / p99.9 / max, and how many are off
  by more than 1 s from the median.
"""
import json
import math
import statistics
import sys
from collections import Counter, defaultdict


def pct(v, p):
    if not v:
        return None
    return v[min(len(v) - 1, max(0, math.ceil(p / 100 * len(v)) - 1))]


def main():
    path, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    ncheck = int(sys.argv[4]) if len(sys.argv) > 4 else None
    per_id = defaultdict(list)
    status = Counter()
    secs = Counter()
    tenths = Counter()
    n = 0
    for line in open(path):
        parts = line.split()
        if len(parts) < 3 or not parts[2].startswith("/health/chk-"):
            continue
        t = float(parts[0])
        per_id[parts[2]].append(t)  # whole log, for intervals crossing the window edge
        if not (t0 <= t < t1):
            continue
        n += 1
        status[parts[1]] += 1
        secs[int(t - t0)] += 1
        tenths[int((t - t0) * 10)] += 1
    nsec = int(math.floor(t1 - t0))
    hist = [secs.get(i, 0) for i in range(nsec)]
    hs = sorted(hist)
    intervals = []
    seen = 0
    for uri, ts in per_id.items():
        ts.sort()
        if any(t0 <= t < t1 for t in ts):
            seen += 1
        for a, b in zip(ts, ts[1:]):
            if t0 <= b < t1:
                intervals.append(b - a)
    intervals.sort()
    med = statistics.median(intervals) if intervals else None
    out = {
        "window_s": round(t1 - t0, 3),
        "requests": n,
        "req_per_s_mean": round(n / (t1 - t0), 1),
        "per_second": {"min": hs[0], "p1": pct(hs, 1), "p50": pct(hs, 50), "p99": pct(hs, 99),
                       "max": hs[-1], "stddev": round(statistics.pstdev(hist), 1)},
        "per_100ms_max": max(tenths.values()) if tenths else 0,
        "per_100ms_min": min(tenths.get(i, 0) for i in range(int((t1 - t0) * 10))),
        "status": dict(status),
        "checks_seen_in_window": seen,
        "checks_never_seen": (ncheck - len(per_id)) if ncheck else None,
        "interval_s": {
            "n": len(intervals),
            "p0.1": round(pct(intervals, 0.1), 4) if intervals else None,
            "p1": round(pct(intervals, 1), 4) if intervals else None,
            "p50": round(med, 4) if med else None,
            "p99": round(pct(intervals, 99), 4) if intervals else None,
            "p99.9": round(pct(intervals, 99.9), 4) if intervals else None,
            "max": round(intervals[-1], 4) if intervals else None,
            "off_by_more_than_1s": sum(1 for x in intervals if abs(x - med) > 1) if med else None,
        },
        "histogram": hist,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""dnsperf output file -> one JSON object (merged into the JSON given as argv[2])."""
import json
import re
import sys

txt = open(sys.argv[1]).read()


def grab(pat, cast=float, default=None):
    m = re.search(pat, txt)
    return cast(m.group(1)) if m else default


d = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
d.update({
    "sent": grab(r"Queries sent:\s+(\d+)", int),
    "completed": grab(r"Queries completed:\s+(\d+)", int),
    "lost": grab(r"Queries lost:\s+(\d+)", int),
    "qps": grab(r"Queries per second:\s+([\d.]+)"),
    "avg_ms": (grab(r"Average Latency \(s\):\s+([\d.]+)") or 0) * 1000,
    "max_ms": (grab(r"Average Latency \(s\):.*max ([\d.]+)\)") or 0) * 1000,
    "stddev_ms": (grab(r"Latency StdDev \(s\):\s+([\d.]+)") or 0) * 1000,
    "resp_bytes": grab(r"Average packet size:.*response (\d+)", int),
    "rcodes": (re.search(r"Response codes:\s+(.*)", txt) or [None, ""])[1].strip(),
})
print(json.dumps(d))
if d["qps"] is None:
    sys.stderr.write(txt[-2000:])
    sys.exit(1)

#!/usr/bin/env python3
"""results.jsonl of bench/dns_vs_nsd.sh -> Markdown tables (min / median / max over reps)."""
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]


def mmm(vals, fmt):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    return " / ".join(fmt.format(v) for v in (min(vals), statistics.median(vals), max(vals)))


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


print("### Throughput (dnsperf), min / median / max over reps\n")
print("| server | qtype | n | QPS | avg latency ms | max latency ms | lost | resp bytes | server CPU % of 1 core (median) | machine busy % (median) |")
print("|---|---|---|---|---|---|---|---|---|---|")
tput = {}
for srv in ("nsd", "cairn"):
    for qt in ("SRV", "A"):
        r = [x for x in rows if x["kind"] == "tput" and x["server"] == srv and x["qtype"] == qt]
        if not r:
            continue
        tput[(srv, qt)] = med([x["qps"] for x in r])
        print(f"| {srv} | {qt} | {len(r)} | {mmm([x['qps'] for x in r], '{:,.0f}')} | "
              f"{mmm([x['avg_ms'] for x in r], '{:.3f}')} | {mmm([x['max_ms'] for x in r], '{:.2f}')} | "
              f"{sum(x['lost'] or 0 for x in r)} | {r[0]['resp_bytes']} | "
              f"{med([x['server_cpu_pct'] for x in r]):.0f} | {med([x['machine_busy_pct'] for x in r]):.0f} |")
print()
print("| qtype | Cairn / NSD QPS (medians) |")
print("|---|---|")
for qt in ("SRV", "A"):
    if ("nsd", qt) in tput and ("cairn", qt) in tput:
        print(f"| {qt} | {100 * tput[('cairn', qt)] / tput[('nsd', qt)]:.0f} % |")
print()
print("### Latency (sequential sampler, 1 query in flight), min / median / max over reps\n")
print("| server | qtype | background load | n x queries | p50 ms | p99 ms | p99.9 ms | max ms | lost | machine busy % (median) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for bg in sorted({x["bg_qps"] for x in rows if x["kind"] == "lat"}):
    for srv in ("nsd", "cairn"):
        for qt in ("SRV", "A"):
            r = [x for x in rows if x["kind"] == "lat" and x["server"] == srv and x["qtype"] == qt and x["bg_qps"] == bg]
            if not r:
                continue
            print(f"| {srv} | {qt} | {'idle' if bg == 0 else f'{bg:,} qps dnsperf'} | {len(r)} x {r[0]['n']:,} | "
                  f"{mmm([x['p50_ms'] for x in r], '{:.3f}')} | {mmm([x['p99_ms'] for x in r], '{:.3f}')} | "
                  f"{mmm([x['p999_ms'] for x in r], '{:.3f}')} | {mmm([x['max_ms'] for x in r], '{:.2f}')} | "
                  f"{sum(x['lost'] for x in r)} | {med([x['machine_busy_pct'] for x in r]):.0f} |")

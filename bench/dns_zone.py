#!/usr/bin/env python3
"""Data set for bench/dns_vs_nsd.sh: N services x K instances, as a static zone
(for NSD) and as catalog registrations (for Cairn), with the same names, so both
servers give the same answers.

usage: dns_zone.py OUTDIR [NSERVICES=100] [INSTANCES=3] [NQUERIES=10000]

Writes into OUTDIR:
  consul.zone        zone "consul." (TTL 0, Consul's default), per service svcNNN:
                       svcNNN.service            SRV 1 1 <port> svcNNN-nK.node.dc1.consul.
                       svcNNN.service            A   <address of instance K>
                       svcNNN-nK.node.dc1        A   <address of instance K>
                     i.e. what Cairn/Consul answer for a node-addressed service
                     (SRV target = <node>.node.<dc>.<domain>, its A in the additional
                     section). Addresses are 127.1.x.y: loopback data only.
  queries-srv.txt    NQUERIES lines "svcNNN.service.consul SRV", random order (seed 42)
  queries-a.txt      same for A
  register.jsonl     one PUT /v1/catalog/register body per instance (node with
                     address, service with port, a passing service check)
"""
import json
import os
import random
import sys


def main():
    out = sys.argv[1]
    nsvc = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    ninst = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    nq = int(sys.argv[4]) if len(sys.argv) > 4 else 10000
    os.makedirs(out, exist_ok=True)
    zone = [
        "$ORIGIN consul.",
        "$TTL 0",
        "@ IN SOA ns.consul. hostmaster.consul. 1 3600 600 86400 0",
        "@ IN NS ns.consul.",
        "ns IN A 127.0.0.1",
    ]
    regs = []
    for s in range(nsvc):
        name = f"svc{s:03d}"
        for k in range(ninst):
            idx = s * ninst + k + 1
            addr = f"127.1.{idx // 250}.{idx % 250 + 1}"
            port = 20000 + idx
            node = f"{name}-n{k}"
            zone.append(f"{name}.service IN SRV 1 1 {port} {node}.node.dc1.consul.")
            zone.append(f"{name}.service IN A {addr}")
            zone.append(f"{node}.node.dc1 IN A {addr}")
            regs.append({
                "Node": node,
                "Address": addr,
                "Service": {"ID": f"{name}-{k}", "Service": name, "Port": port},
                "Check": {"CheckID": f"service:{name}-{k}", "Name": "bench",
                          "Status": "passing", "ServiceID": f"{name}-{k}"},
            })
    with open(os.path.join(out, "consul.zone"), "w") as f:
        f.write("\n".join(zone) + "\n")
    rnd = random.Random(42)
    for qtype, fn in (("SRV", "queries-srv.txt"), ("A", "queries-a.txt")):
        with open(os.path.join(out, fn), "w") as f:
            for _ in range(nq):
                f.write(f"svc{rnd.randrange(nsvc):03d}.service.consul {qtype}\n")
    with open(os.path.join(out, "register.jsonl"), "w") as f:
        for r in regs:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()

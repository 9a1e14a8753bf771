#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Judge one client.py tcp/udp result: all answered, replies from the VIP, spread over backends
matching the weights. Prints "ok|FAIL<TAB>desc<TAB>expected<TAB>got" lines for lib.sh t_lines.

  check_dist.py --desc web4 --weights b1=1,b2=2,b3=3 --count 600 --vip 10.200.0.100 < result.json

Tolerance: each new flow picks backend i with probability p_i = w_i / sum(w) (the Maglev ring
holds each backend in proportion to its weight to within a fraction of a percent at 65537 slots,
and the flow hash of random client source ports is uniform), so the count of backend i is
Binomial(n, p_i) with sigma_i = sqrt(n p_i (1 - p_i)). We accept |count_i - n p_i| <= 4 sigma_i
+ 0.01 n (the 1% covers ring rounding). For n = 600, weights 1:2:3 that is 100 +- 42,
200 +- 52, 300 +- 55; equal weights 200 +- 52. A correct balancer fails this with probability
~1e-4 per backend; a balancer that ignores weights (200/200/200) or skips a backend fails it.
"""
import argparse
import json
import math
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--desc", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--vip", required=True)
    a = ap.parse_args()
    out = []

    def rec(ok, desc, exp, got):
        out.append("%s\t%s: %s\t%s\t%s" % ("ok" if ok else "FAIL", a.desc, desc, exp, got))

    raw = sys.stdin.read()
    try:
        r = json.loads(raw)
    except ValueError:
        rec(False, "client result", "JSON from client.py", repr(raw[:200]))
        print("\n".join(out))
        return
    weights = dict((k, int(v)) for k, v in (x.split("=") for x in a.weights.split(",")))
    n = a.count
    rec(r["ok"] == n and r["errors"] == 0, "requests answered", "%d ok, 0 errors" % n,
        "%d ok, %d errors%s" % (r["ok"], r["errors"],
                                (" (" + r["first_error"] + ")") if r["first_error"] else ""))
    rec(r["peer_mismatch"] == 0 and r["ok"] > 0, "replies come from the VIP",
        "peer %s" % a.vip, "peers %s" % ",".join(r["peers"]) if r["peers"] else "none")
    total_w = sum(weights.values())
    got_n = r["ok"]
    counts = r["counts"]
    unknown = sorted(set(counts) - set(weights))
    rec(not unknown, "only configured backends answer", ",".join(sorted(weights)),
        ",".join(sorted(counts)) or "none")
    for b, w in sorted(weights.items()):
        p = w / total_w
        exp = got_n * p
        tol = 4 * math.sqrt(got_n * p * (1 - p)) + 0.01 * got_n
        c = counts.get(b, 0)
        ok = c > 0 and abs(c - exp) <= tol
        rec(ok, "backend %s share (weight %d)" % (b, w), "%.0f +- %.0f" % (exp, tol), str(c))
    print("\n".join(out))


if __name__ == "__main__":
    main()

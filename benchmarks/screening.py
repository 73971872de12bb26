"""Benchmark: the screening family, full versus reduced model.

Run on demand (not a test):  python benchmarks/screening.py [--K 10 100 1000 3000] [--full-limit 1500000]

For each K it prints the constraint rows and the wall time of compile (bind +
reduce + build the Pyomo model) and solve (solver + recovery + verification of
every ORIGINAL constraint), for the full model (--no-reduce) and the reduced
one.  Full models above --full-limit rows are not built (K = 3000 has 9 million
IC rows) and are reported as such.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path

import mechdsl

SPEC = Path(__file__).resolve().parents[1] / "specs" / "screening.mech"


def run(K: int, reduce: bool):
    model = mechdsl.load(SPEC, overrides={"K": K}, progress=False)
    t0 = time.perf_counter()
    model.instance()
    res = model.solve(reduce=reduce)
    bind = time.perf_counter() - t0 - sum(res.timings.values())
    rows = sum(res.rows.values())
    return rows, bind + res.timings["compile"], res.timings["solve"] + res.timings["verify"], res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--K", type=int, nargs="+", default=[10, 100, 1000, 3000])
    ap.add_argument("--full-limit", type=int, default=1_500_000, help="largest full model (IC rows) to build")
    args = ap.parse_args()
    logging.getLogger("pyomo").setLevel(logging.ERROR)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    head = (f"{'K':>6} | {'full rows':>10} {'compile s':>10} {'solve s':>9} | {'reduced rows':>12} "
            f"{'compile s':>10} {'solve s':>9} | {'objective (reduced)':>20} {'|full-reduced|':>14}")
    print(head)
    print("-" * len(head))
    for K in args.K:
        r_rows, r_c, r_s, r_res = run(K, True)
        full_rows = K * (K - 1) + K
        if K * (K - 1) <= args.full_limit:
            f_rows, f_c, f_s, f_res = run(K, False)
            diff = f"{abs(f_res.objective - r_res.objective):14.2e}"
            full = f"{f_rows:>10} {f_c:>10.2f} {f_s:>9.2f}"
        else:
            full = f"{full_rows:>10} {'not run':>10} {'':>9}"
            diff = f"{'-':>14}"
        print(f"{K:>6} | {full} | {r_rows:>12} {r_c:>10.2f} {r_s:>9.2f} | {r_res.objective:>20.10f} {diff}",
              flush=True)
        if not r_res.verification.ok:
            print(f"        reduced solution FAILED verification: {r_res.verification.to_dict()}")


if __name__ == "__main__":
    main()

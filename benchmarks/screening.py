"""Benchmark: the screening family, full versus reduced model.

Run on demand (not a test):  python benchmarks/screening.py [--K 10 100 1000 3000] [--full-limit 1500000]

For each K it prints the constraint rows and the wall time of compile (bind +
reduce + build the Pyomo model) and solve (solver + recovery + verification of
every ORIGINAL constraint), for the full model (--no-reduce) and the reduced
one.  Full models are solved by HiGHS as they are (its status is shown: its QP
solver misreports large screening QPs as unbounded, which mechdsl otherwise
answers by re-solving with IPOPT); full models above --full-limit rows are not
built (K = 3000 has 9 million IC rows) and are reported as such.
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


def run(K: int, reduce: bool, solver: str | None = None):
    """Rows, compile seconds, solve(+verify) seconds and the Result (also for a failed solve)."""
    model = mechdsl.load(SPEC, overrides={"K": K}, progress=False)
    t0 = time.perf_counter()
    model.instance()
    try:
        res = model.solve(reduce=reduce, solver=solver)
    except mechdsl.MechError as exc:  # e.g. HiGHS's wrong "unbounded" on large screening QPs
        res = exc.result
    bind = time.perf_counter() - t0 - sum(res.timings.values())
    rows = sum(res.rows.values())
    return rows, bind + res.timings["compile"], res.timings["solve"] + res.timings.get("verify", 0.0), res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--K", type=int, nargs="+", default=[10, 100, 1000, 3000])
    ap.add_argument("--full-limit", type=int, default=1_500_000, help="largest full model (IC rows) to build")
    args = ap.parse_args()
    logging.getLogger("pyomo").setLevel(logging.ERROR)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    head = (f"{'K':>6} | {'full rows':>10} {'compile s':>10} {'solve s':>9} {'status (HiGHS)':>16} | "
            f"{'reduced rows':>12} {'compile s':>10} {'solve s':>9} | {'objective (reduced)':>20} "
            f"{'|full-reduced|':>14}")
    print(head)
    print("-" * len(head))
    for K in args.K:
        r_rows, r_c, r_s, r_res = run(K, True)
        full_rows = K * (K - 1) + K
        if K * (K - 1) <= args.full_limit:
            # The full model is solved by HiGHS as it is (no IPOPT fallback): a QP of a million rows
            # handed to IPOPT runs for tens of minutes on this machine.
            f_rows, f_c, f_s, f_res = run(K, False, solver="highs")
            ok = f_res.objective is not None
            diff = f"{abs(f_res.objective - r_res.objective):14.2e}" if ok else f"{'-':>14}"
            full = f"{f_rows:>10} {f_c:>10.2f} {f_s:>9.2f} {f_res.status:>16}"
        else:
            full = f"{full_rows:>10} {'not built':>10} {'':>9} {'':>16}"
            diff = f"{'-':>14}"
        print(f"{K:>6} | {full} | {r_rows:>12} {r_c:>10.2f} {r_s:>9.2f} | {r_res.objective:>20.10f} {diff}",
              flush=True)
        if not r_res.verification.ok:
            print(f"        reduced solution FAILED verification: {r_res.verification.to_dict()}")


if __name__ == "__main__":
    main()

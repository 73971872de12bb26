"""Paper 003 (rental games with stagewise IR), Section 7: v ~ U[0, 1] i.i.d., consumer surplus.

Solves `specs/rental_uniform.mech` once at H = 10000 (Algorithm 4, the threshold mechanism, against the
optimal fixed-rate mechanism of Lemma 7.1) and draws, against the horizon h:
  (a) the average daily reward R_h / h of both (non-decreasing: Lemma 6.8);
  (b) the ratio R_h / R_fr_h (tends to 2: Corollary 7.5);
  (c) the threshold theta_h: below it an agent rents 1 day for free, above it all h days for theta_h.

    python docs/figures/make_003_rental.py             # ~10 s
    python docs/figures/make_003_rental.py --replot    # redraw from the CSV

Writes docs/figures/003_rental_uniform.{png,svg} and the series as docs/figures/003_rental_uniform.csv.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

SPEC = ROOT / "specs" / "rental_uniform.mech"
CSV = HERE / "003_rental_uniform.csv"


def solve(H: int):
    import mechdsl

    t0 = time.perf_counter()
    r = mechdsl.load(SPEC, overrides={"H": H}).solve()
    print(f"solved H = {H} in {time.perf_counter() - t0:.1f} s")
    p = r.parameters
    rows = [{"h": h, "R": p["R"][(h,)], "R_fr": p["R_fr"][(h,)], "theta": p["theta"][(h,)],
             "ratio": r.reports["ratio"][(h,)]} for h in range(1, H + 1)]
    with CSV.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def plot(rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = [r["h"] for r in rows]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    ax[0].plot(h, [r["R"] / r["h"] for r in rows], label="threshold (Algorithm 4)")
    ax[0].plot(h, [r["R_fr"] / r["h"] for r in rows], label="fixed rate (Lemma 7.1)")
    ax[0].set_ylabel("average daily reward $R_h / h$")
    ax[0].legend()
    ax[1].plot(h, [r["ratio"] for r in rows], color="C2")
    ax[1].axhline(2, color="grey", lw=0.8, ls="--")
    ax[1].set_ylabel("$R_h / R^{fr}_h$")
    ax[2].plot(h[1:], [r["theta"] for r in rows[1:]], color="C3")
    ax[2].set_ylabel(r"threshold $\theta_h$")
    for a in ax:
        a.set_xscale("log")
        a.set_xlabel("horizon $h$ (days)")
        a.grid(alpha=0.3)
    fig.suptitle("Rental games, $v \\sim U[0,1]$, consumer surplus: specs/rental_uniform.mech")
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(HERE / f"003_rental_uniform.{ext}", dpi=120)
    print(f"R_4 = {rows[3]['R']:.12g} (17/8), theta_4 = {rows[3]['theta']:.12g}, "
          f"ratio at h = {rows[-1]['h']}: {rows[-1]['ratio']:.6f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replot", action="store_true")
    ap.add_argument("--H", type=int, default=10000)
    args = ap.parse_args()
    if args.replot:
        with CSV.open() as f:
            rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    else:
        rows = solve(args.H)
    plot(rows)


if __name__ == "__main__":
    main()

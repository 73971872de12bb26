"""Paper 001 (Optimal Procurement Auction for Cooperative Production of Virtual Products, AAAI 2020),
Fig. 2 right: the PVCG payment p_0 to producer 0 against its reported capacity limit x^_0 and reported cost
type g^_0, the other producers at x^_i = 2.5, g^_i = 0.5 and the consumers at theta_j = 0.5 (n = 10, m = 2).
Each point is `specs/pvcg.mech` evaluated by mechdsl with xbar = (x^_0, 2.5, ...) and gamma = (g^_0, 0.5, ...)
(21 auxiliary NLPs: S*, S*_{-i} and the worst-type surplus for every i; our producer 1 is the paper's 0).

    python docs/figures/make_001_fig2.py            # 11 x 13 points, ~2-4 minutes on 2 processes
    python docs/figures/make_001_fig2.py --quick    # 4 x 5 points, for a smoke test
    python docs/figures/make_001_fig2.py --replot   # redraw from the CSV (no solving)

Writes docs/figures/001_fig2_payment.{png,svg} and the points as docs/figures/001_fig2_payment.csv, and
prints the numbers to compare with the paper's text.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

SPEC = ROOT / "specs" / "pvcg.mech"
XS = [0.5 * k for k in range(11)]                                          # x^_0: 0 ... 5 (the prior's support)
GS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.0]   # g^_0: 0 ... 1, finer at 0.5
N_PRODUCERS = 10


def point(xg):
    import mechdsl

    x0, g0 = xg
    res = mechdsl.load(SPEC, overrides={"xbar": [x0] + [2.5] * (N_PRODUCERS - 1),
                                        "gamma": [g0] + [0.5] * (N_PRODUCERS - 1)}).solve()
    rep = res.reports
    return {"x0": x0, "g0": g0, "status": res.status, "p0": rep["p"][(1,)], "tau0": rep["tau"][(1,)],
            "h0": rep["h"][(1,)], "x0_accepted": rep["x"][(1,)], "u0": rep["u"][(1,)],
            "IR": all(rep["IR"].values()), "WBB": bool(rep["WBB"][()])}


def solve_grid(xs, gs, jobs: int):
    pts = [(x, g) for x in xs for g in gs]
    if jobs <= 1:
        return [point(p) for p in pts]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(point, pts, chunksize=4))


def draw(rows, xs, gs, out_stem: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from mechdsl.plot import save

    z = np.array([[next(r["p0"] for r in rows if r["x0"] == x and r["g0"] == g) for x in xs] for g in gs])
    X, G = np.meshgrid(xs, gs)
    fig = plt.figure(figsize=(13, 5))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    ax.plot_surface(X, G, z, cmap="viridis", edgecolor="#333333", linewidth=0.3, alpha=0.95)
    ax.set_xlabel(r"reported capacity limit $\hat{x}_0$", fontsize=9)
    ax.set_ylabel(r"reported cost type $\hat{\gamma}_0$", fontsize=9)
    ax.set_zlabel(r"PVCG payment $p_0$", fontsize=9)
    ax.view_init(elev=25, azim=-130)
    ax.tick_params(labelsize=7)
    ax.set_title(r"$p_0$ against $(\hat{x}_0, \hat{\gamma}_0)$", fontsize=10)
    ax2 = fig.add_subplot(1, 2, 2)
    cmap = plt.get_cmap("viridis")
    shown = [x for x in xs if x > 0][1::2] or xs
    for k, x in enumerate(shown):
        ax2.plot(gs, [next(r["p0"] for r in rows if r["x0"] == x and r["g0"] == g) for g in gs], "-o", ms=3,
                 color=cmap(k / max(1, len(shown) - 1)), label=rf"$\hat{{x}}_0$ = {x:g}")
    ax2.axvline(0.5, ls=":", color="#888888", lw=1.0)
    ax2.text(0.51, ax2.get_ylim()[1] * 0.95, "others' cost 0.5", fontsize=7, color="#666666", va="top")
    ax2.set_xlabel(r"reported cost type $\hat{\gamma}_0$", fontsize=9)
    ax2.set_ylabel(r"PVCG payment $p_0$", fontsize=9)
    ax2.set_title(r"$p_0$ against $\hat{\gamma}_0$: flat below the threshold, 0 above", fontsize=10)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7, frameon=False)
    ax2.tick_params(labelsize=8)
    fig.suptitle("Paper 001, Fig. 2 (right): PVCG payment to producer 0, others at "
                 r"$\hat{x}_i = 2.5$, $\hat{\gamma}_i = 0.5$, $\theta_j = 0.5$ (n = 10, m = 2)"
                 "\nspecs/pvcg.mech evaluated by mechdsl at every point",
                 fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    for ext in ("png", "svg"):
        save(fig, out_stem.with_suffix("." + ext))
    plt.close(fig)


def check(rows, xs, gs):
    """Numbers to compare with the paper (text after Fig. 2) and with the closed form of this instance:
    below cost 0.5 producer 0 is fully accepted and p_0 = tau_0 = 0.5 x^_0 (1.5 at x^_0 = 3), independent of
    g^_0; above 0.5 it is left out and p_0 = 0; h = 0 (the worst type has capacity 0)."""
    at = {(r["x0"], r["g0"]): r for r in rows}
    bad = [r for r in rows if r["status"] != "evaluated"]
    print(f"points evaluated: {len(rows) - len(bad)} of {len(rows)}")
    below = [g for g in gs if g < 0.5]
    above = [g for g in gs if g > 0.5]
    x3 = 3.0 if 3.0 in xs else xs[len(xs) // 2]
    print(f"p_0 at x^_0 = {x3:g} for g^_0 < 0.5 (paper: constant; closed form {0.5 * x3:g}): "
          + ", ".join(f"{at[(x3, g)]['p0']:.4f}" for g in below))
    print(f"p_0 at x^_0 = {x3:g} for g^_0 > 0.5 (paper: ~0): " + ", ".join(f"{at[(x3, g)]['p0']:.2g}" for g in above))
    g_lo = below[len(below) // 2] if below else gs[0]
    ps = [at[(x, g_lo)]["p0"] for x in xs]
    inc = all(b >= a - 1e-9 for a, b in zip(ps, ps[1:]))
    print(f"p_0 increasing in x^_0 at g^_0 = {g_lo:g} (paper: yes): {'yes' if inc else 'no'}  "
          + ", ".join(f"{p:.3f}" for p in ps))
    err = max(abs(at[(x, g)]["p0"] - (0.5 * x if g < 0.5 else 0.0)) for x in xs for g in gs if g != 0.5)
    print(f"largest difference from the closed form (g^_0 != 0.5): {err:.2e}")
    print(f"ex-post IR (Prop. 3) and weak budget balance (Prop. 4) at every point: "
          f"{'yes' if all(r['IR'] and r['WBB'] for r in rows) else 'no'}")
    return not bad and inc and err < 1e-6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 4 x 5 grid (a smoke test; does not overwrite)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="processes (default 2)")
    ap.add_argument("--out", default=None, help="output stem (default docs/figures/001_fig2_payment)")
    ap.add_argument("--replot", action="store_true", help="redraw from the CSV of an earlier run (no solving)")
    args = ap.parse_args(argv)
    xs, gs = ([0.0, 1.0, 3.0, 5.0], [0.1, 0.3, 0.5, 0.7, 0.9]) if args.quick else (XS, GS)
    stem = Path(args.out) if args.out else HERE / ("001_fig2_payment_quick" if args.quick else "001_fig2_payment")
    if args.replot:
        from mechdsl.plot import read_rows
        rows = read_rows(stem.with_suffix(".csv"))
        for r in rows:
            r["x0"], r["g0"] = float(r["x0"]), float(r["g0"])
            r["IR"], r["WBB"] = str(r["IR"]) == "True", str(r["WBB"]) == "True"
    else:
        t0 = time.perf_counter()
        rows = solve_grid(xs, gs, args.jobs)
        print(f"{len(rows)} points in {time.perf_counter() - t0:.1f} s ({args.jobs} process(es))")
        with stem.with_suffix(".csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.10g}" if isinstance(v, float) and math.isfinite(v) else v)
                            for k, v in r.items()})
    draw(rows, xs, gs, stem)
    ok = check(rows, xs, gs)
    print(f"wrote {stem.with_suffix('.png')} and {stem.with_suffix('.svg')}"
          + ("" if args.replot else f" and {stem.with_suffix('.csv')}"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

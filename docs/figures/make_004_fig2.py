"""Paper 004 (Paid with Models, AAAI 2025), Fig. 2 (top and bottom): the optimal contract of the two-type case
(Section 6.1, c = (0.02, 0.01)) under incomplete information, against the probability p1 of the high-cost
type and the number of participants N.  Each point is `specs/cml_two_type.mech` solved by mechdsl with
p = (p1, 1 - p1) and N set (the first-moment problem, all-pairs IC, verified), and again without its IC family
(complete information) for the bottom row: the information cost (the accuracy lost to IC) and each
type's information rent u_i - f_i.

    python docs/figures/make_004_fig2.py            # ~2 minutes: 2 x 39 x 7 solves
    python docs/figures/make_004_fig2.py --quick    # a 5 x 3 grid, for a smoke test
    python docs/figures/make_004_fig2.py --replot   # redraw from the CSV (no solving)

Writes docs/figures/004_fig2_contract.{png,svg} and the solved grid as docs/figures/004_fig2_contract.csv,
and prints the numbers to compare with the paper's text.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

import mechdsl  # noqa: E402
from mechdsl.plot import save  # noqa: E402

SPEC = ROOT / "specs" / "cml_two_type.mech"
# Complete information (the bottom row): the same spec without its IC family.
IC_LINE = "ic IC[i in 1..I, j in 1..I: i != j]: u(i, i) >= u(i, j);"
P1 = [round(0.025 * k, 3) for k in range(1, 40)]     # 0.025 ... 0.975 (the paper: p1 in (0, 1))
NS = [2, 3, 5, 10, 20, 50, 100]                      # the paper: N in [2, 100]


def solve_grid(p1s, ns):
    text = SPEC.read_text()
    assert IC_LINE in text, "the IC family of specs/cml_two_type.mech changed: update IC_LINE"
    complete = _Complete(text.replace(IC_LINE, "# (complete information: no IC)"))
    rows = []
    for n in ns:
        for p1 in p1s:
            over = {"p": [p1, round(1 - p1, 10)], "N": n}
            res = mechdsl.load(SPEC, overrides=over).solve()
            full = complete.solve(overrides=over)
            m, t = res.variables["m"], res.variables["t"]
            c, f = res.parameters["c"], res.parameters["f"]
            rows.append({"p1": p1, "N": n, "status": res.status, "verified": bool(res.verification.ok),
                         "status_full": full.status, "verified_full": bool(full.verification.ok),
                         "objective_full": full.objective, "info_cost": full.objective - res.objective,
                         "rent1": t[(1,)] - c[(1,)] * m[(1,)] - f[(1,)],
                         "rent2": t[(2,)] - c[(2,)] * m[(2,)] - f[(2,)],
                         "objective": res.objective, "m1": m[(1,)], "m2": m[(2,)], "t1": t[(1,)], "t2": t[(2,)],
                         "m_alone1": res.parameters["m_alone"][(1,)], "m_alone2": res.parameters["m_alone"][(2,)],
                         "value_alone1": res.parameters["value_alone"][(1,)],
                         "value_alone2": res.parameters["value_alone"][(2,)]})
    return rows


class _Complete:
    """The complete-information model: the spec's text without IC (the coordinator knows each type)."""

    def __init__(self, text):
        self.text = text

    def solve(self, overrides):
        return mechdsl.loads(self.text, filename="cml_two_type_complete.mech", overrides=overrides).solve()


def draw(rows, p1s, ns, out_stem: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("m1", "data contribution m1 (high cost)", "m_alone1"),
              ("m2", "data contribution m2 (low cost)", "m_alone2"),
              ("gap", "m2 - m1 (0: pooling contract)", None),
              ("t1", "model reward t1 (high cost)", "value_alone1"),
              ("t2", "model reward t2 (low cost)", "value_alone2"),
              ("objective", "expected accuracy (objective)", None)]
    panels += [("info_cost", "information cost: accuracy(complete) - accuracy", None),
               ("rent1", "information rent, high cost: u1 - f1", None),
               ("rent2", "information rent, low cost: u2 - f2", None)]
    fig, axes = plt.subplots(3, 3, figsize=(13, 10.5))
    cmap = plt.get_cmap("viridis")
    for ax, (key, label, alone) in zip(axes.flat, panels):
        for j, n in enumerate(ns):
            sub = sorted((r for r in rows if r["N"] == n), key=lambda r: r["p1"])
            ys = [r["m2"] - r["m1"] if key == "gap" else r[key] for r in sub]
            ax.plot([r["p1"] for r in sub], ys, "-o", ms=2.5, lw=1.3, color=cmap(j / max(1, len(ns) - 1)),
                    label=f"N = {n}")
        if alone is not None:
            ax.axhline(rows[0][alone], ls="--", color="#888888", lw=1.0, label="stand-alone")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("p1 (probability of the high-cost type)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    axes.flat[0].legend(fontsize=7, frameon=False, ncol=2)
    fig.suptitle("Paper 004, Fig. 2: the optimal contract under incomplete information against p1 and N, "
                 "c = (0.02, 0.01); bottom row: against the complete-information solution (no IC)\n"
                 "specs/cml_two_type.mech solved by mechdsl at every point (dashed: the stand-alone levels of "
                 "Eq. (2))", fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.955))
    for ext in ("png", "svg"):
        save(fig, out_stem.with_suffix("." + ext))
    plt.close(fig)


def check(rows, p1s, ns):
    """Numbers to compare with the paper's text (Section 6.1)."""
    r0 = rows[0]
    print("stand-alone (paper: 715.6 units / value 69.6 and 1148.5 / 75.6):")
    print(f"  high cost: m = {r0['m_alone1']:.1f}, value = {r0['value_alone1']:.1f};  "
          f"low cost: m = {r0['m_alone2']:.1f}, value = {r0['value_alone2']:.1f}")
    bad = [r for r in rows if not r["verified"] or r["status"] not in ("optimal", "locally optimal")
           or str(r.get("verified_full", True)) not in ("True", "true", "1")]
    print(f"information cost >= 0 at every point: {'yes' if all(float(r['info_cost']) >= -1e-7 for r in rows) else 'no'};"
          f" low-cost rent >= high-cost rent: "
          f"{'yes' if all(float(r['rent2']) >= float(r['rent1']) - 1e-5 for r in rows) else 'no'} (to 1e-5, the NLP's tolerance)")
    print(f"points solved and verified: {len(rows) - len(bad)} of {len(rows)}")
    more = all(r["m1"] > r["m_alone1"] and r["m2"] > r["m_alone2"] and r["t1"] > r["value_alone1"]
               and r["t2"] > r["value_alone2"] for r in rows)
    print(f"both types contribute more and get better models than alone at every point "
          f"(paper: yes): {'yes' if more else 'no'}")
    at = {(r["p1"], r["N"]): r for r in rows}
    print("m2 - m1 (0: pooling) -- pooling more likely as p1 grows; more differentiation with larger N:")
    print("  p1 \\ N " + "".join(f"{n:>10}" for n in ns))
    for p1 in p1s[max(1, len(p1s) // 8) - 1:: max(1, len(p1s) // 8)]:
        print(f"  {p1:6.2f} " + "".join(f"{at[(p1, n)]['m2'] - at[(p1, n)]['m1']:10.1f}" for n in ns))
    return not bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 5 x 3 grid (a smoke test; does not overwrite)")
    ap.add_argument("--out", default=None, help="output stem (default docs/figures/004_fig2_contract)")
    ap.add_argument("--replot", action="store_true", help="redraw from the CSV of an earlier run (no solving)")
    args = ap.parse_args(argv)
    p1s, ns = ([0.1, 0.3, 0.5, 0.7, 0.9], [2, 10, 100]) if args.quick else (P1, NS)
    stem = Path(args.out) if args.out else HERE / ("004_fig2_contract_quick" if args.quick else "004_fig2_contract")
    if args.replot:
        from mechdsl.plot import read_rows
        rows = read_rows(stem.with_suffix(".csv"))
        for r in rows:
            r["verified"] = str(r["verified"]) == "True"
            r["p1"], r["N"] = float(r["p1"]), int(r["N"])
    else:
        t0 = time.perf_counter()
        rows = solve_grid(p1s, ns)
        print(f"{len(rows)} solves in {time.perf_counter() - t0:.1f} s")
        with stem.with_suffix(".csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.10g}" if isinstance(v, float) and math.isfinite(v) else v)
                            for k, v in r.items()})
    draw(rows, p1s, ns, stem)
    ok = check(rows, p1s, ns)
    print(f"wrote {stem.with_suffix('.png')} and {stem.with_suffix('.svg')}"
          + ("" if args.replot else f" and {stem.with_suffix('.csv')}"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

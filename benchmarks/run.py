"""mechdsl benchmarks, run on demand (not part of the test suite).

    python benchmarks/run.py            # the full run (several minutes)
    python benchmarks/run.py --quick    # small sizes, fewer repetitions (about a minute or two)
    python benchmarks/run.py --only P1 P3

Every comparison is measured side by side in the same run, interleaved (round-robin, the order rotated
each round), and reported as the median over the runs together with the ratio: the machine is shared,
so absolute times vary from run to run while the ratios are what this measures.  See README.md in this
folder for what each row means.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import scipy.sparse as sps

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCREENING = ROOT / "specs" / "screening.mech"
TWO_ITEM = ROOT / "specs" / "two_item_additive.mech"
TINY = HERE / "specs" / "tiny_lp.mech"
DIRECT = HERE / "direct_screening.py"
PY = sys.executable
MECHDSL = str(Path(PY).with_name("mechdsl")) if Path(PY).with_name("mechdsl").exists() else "mechdsl"


# ------------------------------------------------------------------------------------------ helpers
def interleaved(cases: dict, reps: dict | int):
    """Run each callable of ``cases`` ``reps`` times (an int or a per-case dict), round-robin with the
    order rotated each round.  A callable returns ``(seconds, payload)``.  -> {name: (median, n, payloads)},
    the median run's payload last."""
    if isinstance(reps, int):
        reps = {name: reps for name in cases}
    times = {name: [] for name in cases}
    payloads = {name: [] for name in cases}
    names = list(cases)
    for rnd in range(max(reps.values(), default=0)):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        for name in order:
            if len(times[name]) < reps[name]:
                gc.collect()
                sec, payload = cases[name]()
                times[name].append(sec)
                payloads[name].append(payload)
    out = {}
    for name in names:
        if times[name]:
            # payloads[-1] is the payload of the median run (the lower median for an even count), so that
            # the breakdown printed next to a median belongs to that run
            order = sorted(range(len(times[name])), key=times[name].__getitem__)
            mid = order[(len(order) - 1) // 2]
            out[name] = (statistics.median(times[name]), len(times[name]),
                         [p for i, p in enumerate(payloads[name]) if i != mid] + [payloads[name][mid]])
    return out


def process(argv: list[str]):
    """A callable timing ``argv`` as a whole process (wall time, start-up included) -> (seconds, stdout)."""
    def run():
        t0 = time.perf_counter()
        out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        sec = time.perf_counter() - t0
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {out.returncode}:\n{out.stderr[-2000:]}")
        return sec, out.stdout
    return run


def table(title: str, head: list[str], rows: list[list], notes: list[str] = ()):
    print()
    print(title)
    cells = [[str(c) for c in r] for r in [head] + rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r))
    print(fmt(cells[0]))
    print("-" * len(fmt(cells[0])))
    for r in cells[1:]:
        print(fmt(r))
    for n in notes:
        print(f"  {n}")
    sys.stdout.flush()


def s(x):
    return "-" if x is None else f"{x:.3f}"


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def load(spec, **overrides):
    import mechdsl
    return mechdsl.load(spec, overrides=overrides, progress=False)


def api_solve(spec, overrides: dict, **kw):
    """In process: load + bind + solve (+ verify) -> (wall seconds, Result or the exception)."""
    import mechdsl

    def run():
        t0 = time.perf_counter()
        try:
            res = load(spec, **overrides).solve(**kw)
        except mechdsl.MechError as exc:
            res = getattr(exc, "result", None) or exc
        return time.perf_counter() - t0, res
    return run


def timings(res):
    t = getattr(res, "timings", None) or {}
    return t.get("compile"), t.get("solve"), t.get("verify")


def objective(res):
    return getattr(res, "objective", None)


def screening_exact(K: int) -> float:
    """The screening optimum in closed form: q_k = max(v_k, 0), v_k = (2k - K)/K; profit sum f v^2/2 (exact)."""
    return float(sum(Fraction(max(2 * k - K, 0), K) ** 2 / 2 for k in range(1, K + 1)) / K)


# ------------------------------------------------------------------------------------------ P1
def p1(quick: bool):
    K = 300 if quick else 1000
    reps = 3 if quick else 5
    cases = {
        "solve": process([MECHDSL, "solve", str(SCREENING), "--set", f"K={K}", "--json"]),
        "direct": process([PY, str(DIRECT), str(K)]),
        "version": process([MECHDSL, "--version"]),
        "import_highspy": process([PY, "-c", "import highspy"]),
        "import_stack": process([PY, "-c", "import numpy, scipy.sparse, sympy, highspy"]),
        "import_api": process([PY, "-c", "import mechdsl.api"]),
        "tiny": process([MECHDSL, "solve", str(TINY), "--json"]),
    }
    r = interleaved(cases, reps)
    med = {k: v[0] for k, v in r.items()}
    obj_m = json.loads(r["solve"][2][0])["objective"]
    obj_d = float(r["direct"][2][0].strip().splitlines()[-1])
    tiny = json.loads(r["tiny"][2][0])
    exact = screening_exact(K)
    rows = [
        [f"mechdsl solve screening K={K} --json", s(med["solve"]), r["solve"][1],
         f"{ratio(med['solve'], med['direct'])} of direct"],
        [f"direct script K={K} (numpy/scipy.sparse/highspy)", s(med["direct"]), r["direct"][1], "1.00x"],
        ["mechdsl --version", s(med["version"]), r["version"][1],
         f"{ratio(med['version'], med['import_highspy'])} of import highspy"],
        ['python -c "import highspy"', s(med["import_highspy"]), r["import_highspy"][1], "1.00x"],
        ['python -c "import numpy, scipy.sparse, sympy, highspy"', s(med["import_stack"]), r["import_stack"][1],
         f"{ratio(med['import_stack'], med['import_highspy'])} of import highspy"],
        ['python -c "import mechdsl.api"', s(med["import_api"]), r["import_api"][1],
         f"{ratio(med['import_api'], med['import_highspy'])} of import highspy"],
        ["mechdsl solve benchmarks/specs/tiny_lp.mech --json", s(med["tiny"]), r["tiny"][1],
         f"{ratio(med['tiny'], med['import_highspy'])} of import highspy, "
         f"{ratio(med['tiny'], med['import_api'])} of import mechdsl.api"],
    ]
    agree = abs(obj_m - obj_d) <= 1e-9
    notes = [
        f"objective: mechdsl {obj_m!r}, direct {obj_d!r}, |diff| = {abs(obj_m - obj_d):.2e} "
        f"({'agree to 1e-9' if agree else 'DISAGREE beyond 1e-9'}); closed form {exact!r}",
        f"tiny LP: objective {tiny['objective']!r} (expected 0.875), {tiny['problem_class']}, "
        f"verification ok = {tiny['verification']['ok']}",
        f"the whole-process start-up above the bare 'import highspy': mechdsl solve at K={K} spends "
        f"{s(med['solve'] - med['tiny'])} s beyond the tiny LP; the direct script "
        f"{s(med['direct'] - med['import_highspy'])} s beyond importing highspy",
    ]
    table(f"P1  whole processes (wall time, start-up included; median of {reps} interleaved runs)",
          ["command", "median s", "runs", "ratio"], rows, notes)


# ------------------------------------------------------------------------------------------ P2
def p2(quick: bool):
    Ks = [30, 100] if quick else [100, 300, 1000]
    rows, notes = [], []
    for K in Ks:
        reps_red = 3
        reps_full = 3 if K <= 100 else 1
        cases = {"full": api_solve(SCREENING, {"K": K}, reduce=False),
                 "reduced": api_solve(SCREENING, {"K": K}, reduce=True)}
        r = interleaved(cases, {"full": reps_full, "reduced": reps_red})
        exact = screening_exact(K)
        for name in ("full", "reduced"):
            med, n, res = r[name]
            last = res[-1]
            c, sv, v = timings(last)
            ver = getattr(last, "verification", None)
            lazy = [x for x in getattr(last, "notes", []) if "constraint generation" in x]
            obj = objective(last)
            rows.append([K, name, sum(getattr(last, "rows", {}).values()) if hasattr(last, "rows") else "-",
                         s(med), n, s(c), s(sv), s(v),
                         f"{obj:.12f}" if obj is not None else getattr(last, "status", str(last)[:30]),
                         f"{abs(obj - exact):.1e}" if obj is not None else "-",
                         "-" if ver is None else ("ok" if ver.ok else "FAILED"),
                         "-" if ver is None or ver.gap is None else f"{ver.gap:.1e}",
                         ratio(med, r["reduced"][0]) if name == "full" else "1.00x"])
            if lazy:
                notes.append(f"K={K} {name}: {lazy[0]}")
    notes.append("rows: the rows of the model handed to HiGHS (full: K(K-1) IC + K IR unless --ic auto "
                 "switches to constraint generation above 1e5 IC rows; reduced: the K-1 monotonicity rows)")
    notes.append("|obj-exact|: against the closed form sum_k (1/K) max((2k-K)/K, 0)^2 / 2")
    table("P2  screening, full model (reduce=False) / reduced model (reduce=True), in process "
          "(wall = load + bind + solve + verify; median, 'runs' interleaved)",
          ["K", "model", "rows", "wall s", "runs", "compile s", "solve s", "verify s", "objective",
           "|obj-exact|", "verif.", "gap", "full/reduced"], rows, notes)


# ------------------------------------------------------------------------------------------ P3
def two_item_lp(G: int):
    """The full two-item LP (all-pairs IC, IR, revenue) built with scipy.sparse; columns a1, a2, p
    (each G*G, row-major over (i, j)); returns (c to minimise, A csc, row_lo, col_lo, col_hi)."""
    n = G * G
    w = np.arange(G) / (G - 1)
    w1, w2 = np.repeat(w, G), np.tile(w, G)                    # type index -> (w[i], w[j])
    t, r = np.nonzero(~np.eye(n, dtype=bool))                  # all pairs t != r, row-major like the spec
    m = len(t)
    rows = np.arange(m)
    # w1[t] (a1[t] - a1[r]) + w2[t] (a2[t] - a2[r]) - p[t] + p[r] >= 0
    ri = np.concatenate([rows, rows, rows, rows, rows, rows])
    ci = np.concatenate([t, r, n + t, n + r, 2 * n + t, 2 * n + r])
    v = np.concatenate([w1[t], -w1[t], w2[t], -w2[t], -np.ones(m), np.ones(m)])
    # IR: w1 a1 + w2 a2 - p >= 0
    ir = np.arange(n)
    ri = np.concatenate([ri, m + ir, m + ir, m + ir])
    ci = np.concatenate([ci, ir, n + ir, 2 * n + ir])
    v = np.concatenate([v, w1, w2, -np.ones(n)])
    keep = v != 0
    A = sps.csc_matrix((v[keep], (ri[keep], ci[keep])), shape=(m + n, 3 * n))
    A.sort_indices()
    c = np.concatenate([np.zeros(2 * n), -np.full(n, 1.0 / n)])
    col_lo = np.concatenate([np.zeros(2 * n), np.full(n, -np.inf)])
    col_hi = np.concatenate([np.ones(2 * n), np.full(n, np.inf)])
    return c, A, np.zeros(m + n), col_lo, col_hi


def solve_lp_highs(c, A, row_lo, col_lo, col_hi) -> float:
    import highspy

    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
    lp.col_cost_ = c
    lp.col_lower_ = np.where(np.isinf(col_lo), -inf, col_lo)
    lp.col_upper_ = np.where(np.isinf(col_hi), inf, col_hi)
    lp.row_lower_ = row_lo
    lp.row_upper_ = np.full(A.shape[0], inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = A.shape[1], A.shape[0]
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(lp)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if status != "Optimal":
        raise RuntimeError(f"HiGHS: {status}")
    return -h.getInfo().objective_function_value


def direct_two_item(G: int):
    def run():
        t0 = time.perf_counter()
        form = two_item_lp(G)
        t1 = time.perf_counter()
        obj = solve_lp_highs(*form)
        t2 = time.perf_counter()
        return t2 - t0, (obj, t1 - t0, t2 - t1, form[1].shape[0])
    return run


def p3(quick: bool, with_g61: bool = False):
    Gs = [11, 21] if quick else [11, 21, 41, 61] if with_g61 else [11, 21, 41]
    rows, notes = [], []
    if not quick and not with_g61:
        notes.append("G=61 ic=lazy is cut from the default full run (the slowest item: the lazy candidate "
                     "setup alone took 96 s at G=41 and grows ~G^4; add --with-g61 to run it)")
    for G in Gs:
        small = G <= 21 and not (quick and G > 11)   # --quick: G = 21 by ic=lazy only
        cases = {"lazy": api_solve(TWO_ITEM, {"G": G}, ic="lazy")}
        reps = {"lazy": 3 if small else 1}
        if small:
            cases["full"] = api_solve(TWO_ITEM, {"G": G}, ic="full")
            cases["direct"] = direct_two_item(G)
            reps.update(full=3 if G <= 11 else 1, direct=3 if G <= 11 else 1)
        r = interleaved(cases, reps)
        ref = r["direct"][0] if small else None
        objs = {}
        for name in ("lazy", "full", "direct"):
            label = {"lazy": "mechdsl ic=lazy", "full": "mechdsl ic=full", "direct": "direct full LP"}[name]
            if name not in r:
                rows.append([G, label, "-", "not run" + (" (--quick)" if G <= 21 else ""), "", "", "", "", "", "",
                             ""])
                continue
            med, n, res = r[name]
            if name == "direct":
                obj, tb, ts, m = res[-1]
                objs[name] = obj
                rows.append([G, label, m, s(med), n, f"{tb:.3f} (build)", f"{ts:.3f}", "-", f"{obj:.12f}", "-",
                             "1.00x"])
                continue
            last = res[-1]
            c, sv, v = timings(last)
            obj = objective(last)
            objs[name] = obj
            ver = getattr(last, "verification", None)
            lazy = [x for x in getattr(last, "notes", []) if "constraint generation" in x]
            if lazy:
                notes.append(f"G={G} {name}: {lazy[0]}")
            rows.append([G, label, sum(getattr(last, "rows", {}).values()) if hasattr(last, "rows") else "-",
                         s(med), n, s(c), s(sv), s(v),
                         f"{obj:.12f}" if obj is not None else getattr(last, "status", str(last)[:30]),
                         "-" if ver is None else ("ok" if ver.ok else "FAILED"),
                         ratio(med, ref) if ref is not None else "-"])
        vals = [v for v in objs.values() if v is not None]
        spread = max(vals) - min(vals) if vals else float("nan")
        line = f"G={G}: objectives agree to {spread:.1e}" if len(vals) > 1 else f"G={G}: one objective"
        if G == 21:
            line += f"; 250/441 = {250 / 441:.12f}, max |obj - 250/441| = {max(abs(v - 250 / 441) for v in vals):.1e}"
        notes.append(line)
    notes.insert(0, f"G >= 41: the full LP (G^2 (G^2-1) rows: {41**2 * (41**2 - 1):,} at G=41, "
                    f"{61**2 * (61**2 - 1):,} at G=61) is out of reach, so neither the direct LP nor ic=full is run")
    notes.insert(1, "rows: the rows in the final model (ic=lazy: the IC rows generated + IR); direct: "
                    "build = scipy.sparse triplets, solve = highspy passModel + run")
    if not quick and not with_g61:
        rows.append([61, "mechdsl ic=lazy", "-", "cut (--with-g61)", "", "", "", "", "", "", ""])
        rows.append([61, "direct full LP", "-", "not run", "", "", "", "", "", "", ""])
    table("P3  two-item additive grid (G x G types), in process (wall = load + bind + solve + verify; "
          "median, 'runs' interleaved; ratio to the direct full LP)",
          ["G", "method", "rows", "wall s", "runs", "compile s", "solve s", "verify s", "objective", "verif.",
           "/direct"], rows, notes)


# ------------------------------------------------------------------------------------------ P5
def screening_sparse(K: int):
    """The full screening QP (all-pairs IC, IR, profit) with scipy.sparse; columns q_1..q_K, p_1..p_K."""
    theta = np.arange(1, K + 1) / K
    prob = np.full(K, 1.0 / K)
    t, r = np.nonzero(~np.eye(K, dtype=bool))
    m = len(t)
    rows = np.arange(m)
    # theta_t q_t - p_t - theta_t q_r + p_r >= 0
    ri = np.concatenate([rows, rows, rows, rows, m + np.arange(K), m + np.arange(K)])
    ci = np.concatenate([t, K + t, r, K + r, np.arange(K), K + np.arange(K)])
    v = np.concatenate([theta[t], -np.ones(m), -theta[t], np.ones(m), theta, -np.ones(K)])
    A = sps.csr_matrix((v, (ri, ci)), shape=(m + K, 2 * K))
    c = np.concatenate([np.zeros(K), prob])                           # maximise prob p - prob q^2/2
    Q = sps.diags(np.concatenate([-prob, np.zeros(K)]), format="csc")
    return A, c, Q, np.zeros(m + K), np.full(m + K, np.inf)


def hand_pyomo(K: int):
    import pyomo.environ as pyo

    theta = {k: k / K for k in range(1, K + 1)}
    prob = 1.0 / K
    m = pyo.ConcreteModel()
    m.T = pyo.RangeSet(1, K)
    m.q = pyo.Var(m.T, within=pyo.NonNegativeReals)
    m.p = pyo.Var(m.T)
    m.PAIRS = pyo.Set(initialize=[(t, r) for t in range(1, K + 1) for r in range(1, K + 1) if t != r],
                      dimen=2)
    m.IC = pyo.Constraint(m.PAIRS, rule=lambda m, t, r:
                          theta[t] * m.q[t] - m.p[t] >= theta[t] * m.q[r] - m.p[r])
    m.IR = pyo.Constraint(m.T, rule=lambda m, t: theta[t] * m.q[t] - m.p[t] >= 0)
    m.obj = pyo.Objective(expr=sum(prob * (m.p[k] - m.q[k] ** 2 / 2) for k in m.T), sense=pyo.maximize)
    return m


def p5(quick: bool):
    from mechdsl.compilers.standard.build import build

    K = 300 if quick else 1000

    def mech_build():
        mdl = load(SCREENING, K=K)
        inst = mdl.instance()                      # binding excluded from the time
        gc.collect()
        t0 = time.perf_counter()
        built = build(mdl.mech.problem, inst)
        return time.perf_counter() - t0, (built.form.A.shape, built.form.A.nnz)

    def sparse_build():
        t0 = time.perf_counter()
        A, *_ = screening_sparse(K)
        return time.perf_counter() - t0, (A.shape, A.nnz)

    def hand():
        t0 = time.perf_counter()
        m = hand_pyomo(K)
        sec = time.perf_counter() - t0
        import pyomo.environ as pyo
        return sec, sum(1 for _ in m.component_data_objects(pyo.Constraint))

    def old():
        mdl = load(SCREENING, K=K)
        mdl.instance()
        gc.collect()
        t0 = time.perf_counter()
        cm = mdl.compile(reduce=False)
        return time.perf_counter() - t0, sum(cm.con_counts.values())

    cases = {"mech": mech_build, "sparse": sparse_build, "hand": hand}
    reps = {"mech": 3, "sparse": 3, "hand": 1}
    if not quick:
        cases["old"] = old
        reps["old"] = 1
    r = interleaved(cases, reps)
    ref = r["sparse"][0]
    (ms, mnnz), (ss, snnz) = r["mech"][2][-1], r["sparse"][2][-1]
    rows = [
        ["mechdsl compiled form: build(problem, inst)", s(r["mech"][0]), r["mech"][1], f"{ms[0]} x {ms[1]}, nnz {mnnz}",
         ratio(r["mech"][0], ref)],
        ["old Pyomo path: m.compile(reduce=False)", s(r["old"][0]) if "old" in r else "not run (--quick)",
         r["old"][1] if "old" in r else "", f"{r['old'][2][-1]} rows" if "old" in r else "",
         ratio(r["old"][0], ref) if "old" in r else "-"],
        ["hand-written Pyomo ConcreteModel (rule over all pairs)", s(r["hand"][0]), r["hand"][1],
         f"{r['hand'][2][-1]} rows", ratio(r["hand"][0], ref)],
        ["scipy.sparse build (numpy triplets -> csr)", s(ref), r["sparse"][1], f"{ss[0]} x {ss[1]}, nnz {snnz}",
         "1.00x"],
    ]
    notes = [f"same matrix: shape {'equal' if tuple(ms) == tuple(ss) else 'DIFFERENT'}, nnz "
             f"{'equal' if mnnz == snnz else 'DIFFERENT'} (mechdsl vs scipy.sparse)"]
    if "old" in r:
        notes.append(f"mechdsl build / hand-written Pyomo: {ratio(r['mech'][0], r['hand'][0])}; "
                     f"old Pyomo path / hand-written Pyomo: {ratio(r['old'][0], r['hand'][0])}; "
                     f"old Pyomo path / mechdsl build: {ratio(r['old'][0], r['mech'][0])}")
    else:
        notes.append(f"mechdsl build / hand-written Pyomo: {ratio(r['mech'][0], r['hand'][0])}")
    table(f"P5  building the full screening model, K={K} ({K * (K - 1):,} IC + {K} IR rows), in process "
          "(median, 'runs' interleaved; ratio to scipy.sparse)",
          ["builder", "median s", "runs", "size", "/scipy"], rows, notes)


# ------------------------------------------------------------------------------------------ P4
CML_MULTI = ROOT / "specs" / "cml_multi_type.mech"
CML_TWO = ROOT / "specs" / "cml_two_type.mech"
DIRECT_CML = HERE / "direct_cml.py"


def p4_cases():
    """(label, spec, data file or None, direct-script argv, direct solve(...) arguments)."""
    import direct_cml as d

    out = []
    for k in (1, 2, 3):
        out.append((f"cml_multi_type scenario {k}", CML_MULTI, ROOT / "specs" / "data" / f"cml_scenario{k}.toml",
                    ["multi", str(k)], (d.SCENARIOS[k], [0.2] * 5)))
    out.append(("cml_two_type", CML_TWO, None, ["two"], ([0.02, 0.01], [0.5, 0.5])))
    return out


def mech_cml(spec, data):
    """In process: load, bind (the auxiliary problems run here), solve, verify -> (wall, breakdown)."""
    import mechdsl

    def run():
        t0 = time.perf_counter()
        m = mechdsl.load(spec, data=data, progress=False)
        m.check()
        t1 = time.perf_counter()
        m.instance()
        t2 = time.perf_counter()
        res = m.solve()
        t3 = time.perf_counter()
        c, sv, v = timings(res)
        return t3 - t0, {"load": t1 - t0, "aux": t2 - t1, "compile": c, "solve": sv, "verify": v,
                         "objective": res.objective, "ok": res.verification.ok, "notes": res.notes}
    return run


def direct_cml_inproc(args):
    import direct_cml as d

    def run():
        t0 = time.perf_counter()
        out = d.solve(*args)
        sec = time.perf_counter() - t0
        return sec, {"aux": out["times"]["aux"], "compile": out["times"]["build"], "solve": out["times"]["solve"],
                     "objective": out["objective"]}
    return run


def p4(quick: bool):
    sys.path.insert(0, str(HERE))
    reps = 3 if quick else 5
    rows, notes = [], []
    for label, spec, data, argv, args in p4_cases():
        mech_cmd = [MECHDSL, "solve", str(spec), "--json"] + (["--data", str(data)] if data else [])
        cases = {"mech": mech_cml(spec, data), "direct": direct_cml_inproc(args),
                 "mech_proc": process(mech_cmd), "direct_proc": process([PY, str(DIRECT_CML)] + argv)}
        mech_cml(spec, data)()          # warm-up: imports, SymPy caches (both sides run in this process)
        direct_cml_inproc(args)()
        r = interleaved(cases, {"mech": reps, "direct": reps, "mech_proc": max(3, reps - 2),
                                "direct_proc": max(3, reps - 2)})
        m, d = r["mech"][2][-1], r["direct"][2][-1]
        obj_p = json.loads(r["mech_proc"][2][-1])["objective"]
        obj_dp = float(r["direct_proc"][2][-1].strip().splitlines()[-1])
        diff = abs(m["objective"] - d["objective"])
        rows.append([label, "mechdsl (in process)", s(r["mech"][0]), r["mech"][1], s(m["load"]), s(m["aux"]),
                     s(m["compile"]),
                     s(m["solve"]), s(m["verify"]), f"{m['objective']:.12f}", f"{diff:.1e}",
                     ratio(r["mech"][0], r["direct"][0])])
        rows.append(["", "direct CasADi MX (in process)", s(r["direct"][0]), r["direct"][1], "-", s(d["aux"]),
                     s(d["compile"]) + " (build)", s(d["solve"]), "-", f"{d['objective']:.12f}", "-", "1.00x"])
        rows.append(["", "mechdsl solve --json (process)", s(r["mech_proc"][0]), r["mech_proc"][1], "", "", "", "", "",
                     f"{obj_p:.12f}", f"{abs(obj_p - obj_dp):.1e}", ratio(r["mech_proc"][0], r["direct_proc"][0])])
        rows.append(["", "direct_cml.py (process)", s(r["direct_proc"][0]), r["direct_proc"][1], "", "", "", "", "",
                     f"{obj_dp:.12f}", "-", "1.00x"])
        cont = [n for n in m["notes"] if "continuation" in n or "kept exact" in n]
        notes.append(f"{label}: verification ok = {m['ok']}; {cont[0] if cont else 'no min/max note'}")
    notes.append("mechdsl in process: parse + check + lower (SymPy), bind the data (the auxiliary problems are "
                 "solved here), then solve (compile / solve / verify = Result.timings); direct: "
                 "benchmarks/direct_cml.py solve() (aux, build = outcome matrix + MX graph + nlpsol, solve = IPOPT)")
    notes.append("|obj-direct|: against the direct script's objective in the same run (the issue asks for 1e-8)")
    table("P4  paper 004 NLPs, mechdsl / the same model written directly in CasADi MX + IPOPT "
          "(median, 'runs' interleaved; whole processes include start-up)",
          ["spec", "run", "wall s", "runs", "parse+check s", "bind+aux s", "compile s", "solve s", "verify s",
           "objective",
           "|obj-direct|", "ratio"], rows, notes)


# ------------------------------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and fewer repetitions")
    ap.add_argument("--with-g61", action="store_true", help="P3: also G = 61 with ic=lazy (many minutes)")
    ap.add_argument("--only", nargs="+", choices=["P1", "P2", "P3", "P4", "P5"], help="run only these benchmarks")
    args = ap.parse_args()
    logging.getLogger("pyomo").setLevel(logging.ERROR)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "?"
    import highspy  # noqa: F401
    from importlib.metadata import version
    print(f"mechdsl benchmarks{' (--quick)' if args.quick else ''}, {datetime.datetime.now().isoformat(timespec='seconds')}, "
          f"git {commit or '?'} (with whatever the work tree holds)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}")
    print(f"highspy {version('highspy')}, numpy {np.__version__}, scipy {version('scipy')}, "
          f"pyomo {version('pyomo')}; load average at start {os.getloadavg()[0]:.2f} "
          "(shared machine: read the ratios, not the absolute times)")
    t0 = time.perf_counter()
    for name, fn in (("P1", p1), ("P2", p2), ("P3", p3), ("P4", p4), ("P5", p5)):
        if args.only and name not in args.only:
            continue
        t = time.perf_counter()
        fn(args.quick, args.with_g61) if name == "P3" else fn(args.quick)
        print(f"  [{name} took {time.perf_counter() - t:.0f} s]")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Certified answers: the five failures of the issue "Certified answers, fast", each against an independent
computation, plus constraint generation, shadow prices and the repair loop."""
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sps
from scipy.optimize import linprog

import mechdsl
from mechdsl.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCREENING = (ROOT / "specs" / "screening.mech").read_text()
TWO_ITEM = ROOT / "specs" / "two_item_additive.mech"


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def screening_closed_form(K: int):
    """Mussa-Rosen with theta_k = k/K, uniform prior, cost q^2/2: virtual value (2k - K)/K, q_k = max(0, v_k)."""
    q = [max(Fraction(0), Fraction(2 * k - K, K)) for k in range(1, K + 1)]
    obj = sum(Fraction(1, K) * (Fraction(2 * k - K, K) * qk - qk * qk / 2) for k, qk in zip(range(1, K + 1), q))
    return q, obj


@pytest.mark.parametrize("K", [1000, 3000])
def test_screening_qp_is_solved_by_highs_exactly(K):
    res = mechdsl.loads(SCREENING, "screening.mech", overrides={"K": K}).solve()
    q, obj = screening_closed_form(K)
    assert res.solver == "HiGHS" and res.status == "optimal"
    assert not any("IPOPT" in n for n in res.notes)
    assert abs(res.objective - float(obj)) <= 1e-9
    assert max(abs(res.variables["q"][(k,)] - float(qk)) for k, qk in zip(range(1, K + 1), q)) <= 1e-7
    ver = res.verification
    assert ver.ok and ver.gap is not None and ver.gap <= 1e-9
    assert ver.dual_bound == pytest.approx(float(obj), abs=1e-9)


def test_screening_full_model_no_reduce_solves_to_the_closed_form():
    # All 9,900 IC rows at once: the answer is within the gap HiGHS's certificate states.
    res = mechdsl.loads(SCREENING, "screening.mech", overrides={"K": 100}).solve(reduce=False, ic="full")
    q, obj = screening_closed_form(100)
    ver = res.verification
    assert res.solver == "HiGHS" and res.rows["IC"] == 100 * 99
    assert abs(res.objective - float(obj)) <= 1e-7
    # "ok" only with a valid certificate: a dual residual voids the dual bound.
    assert ver.ok == (ver.feasible and ver.gap <= 1e-7 and ver.kkt["dual_residual"] <= 1e-6)
    if ver.ok:
        assert abs(res.objective - float(obj)) <= ver.gap * max(1.0, abs(res.objective)) + 1e-12


def test_screening_without_ir_is_unbounded_and_exits_1(tmp_path, capsys):
    spec = tmp_path / "noir.mech"
    spec.write_text("\n".join(line for line in SCREENING.splitlines() if not line.startswith("ir ")))
    for extra in ([], ["--no-reduce"]):
        code, out, err = run_cli(capsys, "solve", spec, *extra)
        assert code == 1 and "unbounded" in err and "status: optimal" not in out
        # Independently: every price can grow by the same amount without breaking IC, so no optimum exists.


def test_verbose_json_with_highs_prints_one_object():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "mechdsl.cli", "solve",
                          str(ROOT / "specs" / "repurchase_one_capacity.mech"), "-v", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # the solver's log went to stderr
    assert doc["status"] == "optimal" and doc["verification"]["ok"]
    assert "HiGHS" in out.stderr


def test_infeasible_aux_gives_one_json_object_naming_it(tmp_path, capsys):
    spec = tmp_path / "aux.mech"
    spec.write_text("aux A { var z >= 0; constraint C: z <= -1; maximize z; }\nparam f = A.objective;\n"
                    "var x >= 0, <= 1;\nmaximize Obj: f * x;\n")
    code, out, err = run_cli(capsys, "solve", spec, "--json")
    assert code == 1
    doc = json.loads(out)
    assert "infeasible" in doc["status"] and "A" in doc["status"]


def two_item_full_lp(G: int):
    """The two-item additive LP built independently with scipy.sparse: variables (a1, a2, p) per grid type."""
    w = np.linspace(0, 1, G)
    T = [(i, j) for i in range(G) for j in range(G)]
    n = len(T)
    rows, cols, vals, rhs = [], [], [], []
    r = 0
    for t, (t1, t2) in enumerate(T):
        for s, _ in enumerate(T):
            if s == t:
                continue
            # -(U(t,t) - U(t,s)) <= 0 with U(t,s) = w[t1] a1[s] + w[t2] a2[s] - p[s]
            for col, v in ((t, -w[t1]), (n + t, -w[t2]), (2 * n + t, 1.0),
                           (s, w[t1]), (n + s, w[t2]), (2 * n + s, -1.0)):
                rows.append(r), cols.append(col), vals.append(v)
            r += 1
        for col, v in ((t, -w[t1]), (n + t, -w[t2]), (2 * n + t, 1.0)):  # IR
            rows.append(r), cols.append(col), vals.append(v)
        r += 1
    A = sps.csr_matrix((vals, (rows, cols)), shape=(r, 3 * n))
    c = np.zeros(3 * n)
    c[2 * n:] = -1.0 / n
    bounds = [(0, 1)] * (2 * n) + [(None, None)] * n
    sol = linprog(c, A_ub=A, b_ub=np.zeros(r), bounds=bounds, method="highs")
    assert sol.status == 0
    return -sol.fun


@pytest.mark.parametrize("ic", ["lazy", "full"])
def test_two_item_lp_lazy_ic_equals_the_full_lp(ic):
    G = 7
    res = mechdsl.load(TWO_ITEM, overrides={"G": G}).solve(ic=ic)
    assert res.status == "optimal" and res.verification.ok and res.verification.max_regret <= 1e-9
    assert res.objective == pytest.approx(two_item_full_lp(G), abs=1e-9)
    if ic == "lazy":
        note = next(n for n in res.notes if "constraint generation" in n)
        assert f"of {G * G * (G * G - 1)} rows" in note


def test_two_item_auto_uses_constraint_generation_beyond_1e5_rows():
    res = mechdsl.load(TWO_ITEM, overrides={"G": 19}).solve()  # 130,320 IC rows
    assert any("constraint generation" in n for n in res.notes)
    assert res.verification.ok and res.verification.max_regret <= 1e-9
    assert res.rows["IC"] < 19 ** 2 * (19 ** 2 - 1) / 10


def test_shadow_prices_are_marginal_values():
    """Raising the reservation utility R by d lowers every price by d and keeps IC, so the optimum falls by
    exactly d: the IR rows' shadow prices sum to 1.  Checked by finite differences too."""
    spec = SCREENING.replace("ir IR[t in 1..K]: u(t, t) >= 0;", "param R = 0;\nir IR[t in 1..K]: u(t, t) >= R;")
    res = mechdsl.loads(spec, "s.mech", overrides={"K": 8}).solve(reduce=False, ic="full")
    ir = res.duals.get("IR", {})
    assert sum(ir.values()) == pytest.approx(1.0, abs=1e-7)
    d = 1e-3
    up = mechdsl.loads(spec, "s.mech", overrides={"K": 8, "R": d}).solve(reduce=False, ic="full")
    assert (res.objective - up.objective) / d == pytest.approx(sum(ir.values()), abs=1e-6)
    # Every IC row with a nonzero price binds at the solution.
    for key, price in res.duals.get("IC", {}).items():
        t, r = key
        u = lambda a, b: (a / 8) * res.variables["q"][(b,)] - res.variables["p"][(b,)]  # noqa: E731
        assert price >= 0 and abs(u(t, t) - u(t, r)) <= 1e-7
    menu = res.menu()
    assert any(row["prices"] for row in menu)

"""specs/repurchase_one_capacity.mech against an independent model of the paper.

The spec states the ORIGINAL program (9) of Deng et al. (all-pairs IC, IR,
capacity, p >= 0, objective (8) with M*min{0, supply - D}).  Section 4.2 of the
paper reduces it, for one capacity, to the LP (12) in the allocation alone:
substitute the payment rule of Proposition 1,

    p_k(x) = v_K x_K + sum_{j=k}^{K-1} v_j (x_j - x_{j+1}),

and linearise the min with t <= 0, t <= sum_i sum_k lam[i,k] x_k - D, under
cap >= x_1 >= ... >= x_K >= 0.  The reference below is that LP, written with
scipy.optimize.linprog; the optimal values of (9) and (12) must agree.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

import mechdsl
from conftest import payment_matrix

SPEC = Path(__file__).resolve().parents[1] / "specs" / "repurchase_one_capacity.mech"

BASE = dict(n=2, K=3, v=[1, 2, 3], lam=[[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]],
            cap=10, alpha=4, M=3, D=12)  # the defaults written in the spec

INSTANCES = {
    # the spec as shipped; expected supply 13 >= D = 12 at the optimum
    "default": {},
    # a larger D than the optimum supplies: the shortfall penalty is active
    "penalty_active": dict(M=0.5, D=15),
    # a fractional allocation: x_2 stops where the supply reaches D exactly
    "fractional": dict(alpha=2.5, M=1),
    # K = 5 with three clients, a smaller capacity; the penalty is active too
    "K5": dict(n=3, K=5, v=[1, 1.5, 2, 3, 4.5],
               lam=[[0.3, 0.2, 0.2, 0.2, 0.1], [0.1, 0.1, 0.2, 0.3, 0.3], [0.2, 0.2, 0.2, 0.2, 0.2]],
               cap=6, alpha=3.2, M=2, D=20),
    # one client, K = 2, no penalty at all (M = 0)
    "one_client": dict(n=1, K=2, v=[0.5, 2], lam=[[0.4, 0.6]], cap=3, alpha=1.5, M=0, D=100),
}


# ------------------------------------------------------------ the reference
def prop1_payments(v, x) -> np.ndarray:
    """Proposition 1 evaluated directly from its sum (not through payment_matrix)."""
    K = len(v)
    return np.array([v[K - 1] * x[K - 1] + sum(v[j] * (x[j] - x[j + 1]) for j in range(k, K - 1))
                     for k in range(K)])


def paper_11_coefficients(lam, v, alpha) -> np.ndarray:
    """The coefficient of x_k in the paper's program (11), as printed."""
    lam = np.asarray(lam, float)
    K = lam.shape[1]
    out = np.zeros(K)
    out[0] = (lam[:, 0] * (alpha - v[0])).sum()
    for k in range(1, K):
        out[k] = sum(lam[i, k] * (alpha - v[k]) - sum(lam[i, j] * (v[k] - v[k - 1]) for j in range(k))
                     for i in range(lam.shape[0]))
    return out


def reference_lp(n, K, v, lam, cap, alpha, M, D):
    """Program (12): max c.x + M t; returns (optimum, x*, t*, the LP data)."""
    lam = np.asarray(lam, float)
    v = np.asarray(v, float)
    assert lam.shape == (n, K) and v.shape == (K,)
    w = lam.sum(axis=0)                          # sum_i lam[i,k]
    P = payment_matrix(v)
    cx = alpha * w - w @ P                       # sum_i sum_k lam[i,k] (alpha x_k - p_k(x))
    # Substituting (10) into (8) must give the coefficients printed in (11).
    np.testing.assert_allclose(cx, paper_11_coefficients(lam, v, alpha), atol=1e-12)
    c = np.concatenate([cx, [M]])
    A, b = [], []
    for k in range(K - 1):                       # x_{k+1} - x_k <= 0
        row = np.zeros(K + 1)
        row[k + 1], row[k] = 1.0, -1.0
        A.append(row)
        b.append(0.0)
    row = np.zeros(K + 1)                        # t - sum_k w_k x_k <= -D
    row[:K], row[K] = -w, 1.0
    A.append(row)
    b.append(-D)
    bounds = [(0.0, cap)] * K + [(None, 0.0)]    # cap >= x_1, x_K >= 0, t <= 0
    A, b = np.array(A), np.array(b)
    res = linprog(-c, A_ub=A, b_ub=b, bounds=bounds, method="highs")
    assert res.status == 0, res.message
    return -res.fun, res.x[:K], res.x[K], (c, A, b, bounds, w)


def optimal_face_ranges(opt, lp):
    """For each x_k, its min and max over the optimal face of (12)."""
    c, A, b, bounds, w = lp
    K = len(w)
    A2 = np.vstack([A, -c])                      # c.z >= opt - eps
    b2 = np.append(b, -(opt - 1e-9))
    ranges = []
    for k in range(K):
        e = np.zeros(K + 1)
        e[k] = 1.0
        lo = linprog(e, A_ub=A2, b_ub=b2, bounds=bounds, method="highs")
        hi = linprog(-e, A_ub=A2, b_ub=b2, bounds=bounds, method="highs")
        assert lo.status == 0 and hi.status == 0
        ranges.append((lo.fun, -hi.fun))
    return ranges


def params_of(over):
    return {**BASE, **over}


@pytest.fixture(scope="module", params=list(INSTANCES))
def case(request):
    over = INSTANCES[request.param]
    p = params_of(over)
    res = mechdsl.load(SPEC, overrides=over).solve()
    ref = reference_lp(**p)
    return request.param, p, res, ref


# -------------------------------------------------------------------- tests
def test_reference_matches_hand_computation_for_the_default():
    # x = (10, 10, 0): p = (20, 20, 0) by (10); weights w = (0.7, 0.6, 0.7);
    # 0.7*(40-20) + 0.6*(40-20) = 26, supply 13 >= 12 so no penalty.
    opt, x, t, _ = reference_lp(**BASE)
    assert opt == pytest.approx(26.0, abs=1e-9)
    np.testing.assert_allclose(x, [10, 10, 0], atol=1e-9)
    np.testing.assert_allclose(prop1_payments(BASE["v"], x), [20, 20, 0], atol=1e-9)
    assert t == pytest.approx(0.0, abs=1e-9)


def test_instances_cover_the_required_regimes():
    K5 = params_of(INSTANCES["K5"])
    assert K5["K"] == 5
    active = []
    for name, over in INSTANCES.items():
        p = params_of(over)
        opt, x, t, (c, A, b, bounds, w) = reference_lp(**p)
        supply = float(w @ x)
        if supply < p["D"] - 1e-6 and p["M"] > 0:
            active.append(name)
    assert "penalty_active" in active and "K5" in active
    assert "default" not in active


def test_problem_class_and_solver(case):
    name, p, res, ref = case
    assert res.status == "optimal"
    assert res.problem_class == "LP"
    assert "HiGHS" in res.solver


def test_verification(case):
    name, p, res, ref = case
    ver = res.verification
    assert ver.ok
    assert ver.max_regret <= 1e-6
    assert ver.max_ir_violation <= 1e-6
    assert ver.max_violation <= 1e-6


def test_objective_equals_reduced_program_12(case):
    name, p, res, (opt, x, t, lp) = case
    assert res.objective == pytest.approx(opt, abs=1e-6)


def test_objective_recomputed_from_the_returned_contract(case):
    """Objective (8) evaluated in the test at the returned (x, p) equals the reported objective."""
    name, p, res, ref = case
    K = p["K"]
    lam = np.asarray(p["lam"], float)
    x = np.array([res.variables["x"][(k,)] for k in range(1, K + 1)])
    pay = np.array([res.variables["p"][(k,)] for k in range(1, K + 1)])
    w = lam.sum(axis=0)
    value = float(w @ (p["alpha"] * x - pay)) + p["M"] * min(0.0, float(w @ x) - p["D"])
    assert res.objective == pytest.approx(value, abs=1e-6)


def test_allocation_is_feasible_for_theorem_1(case):
    name, p, res, ref = case
    K = p["K"]
    x = [res.variables["x"][(k,)] for k in range(1, K + 1)]
    assert x[0] <= p["cap"] + 1e-7
    assert x[-1] >= -1e-7
    for k in range(K - 1):
        assert x[k] >= x[k + 1] - 1e-7  # (P2): decreasing in the valuation


def test_payments_follow_proposition_1(case):
    """At an optimum with positive type weights, payments are Proposition 1's p*(x) at the returned x."""
    name, p, res, ref = case
    K = p["K"]
    w = np.asarray(p["lam"], float).sum(axis=0)
    assert (w > 0).all()
    x = np.array([res.variables["x"][(k,)] for k in range(1, K + 1)])
    pay = np.array([res.variables["p"][(k,)] for k in range(1, K + 1)])
    np.testing.assert_allclose(pay, prop1_payments(p["v"], x), atol=1e-6)
    np.testing.assert_allclose(pay, payment_matrix(p["v"]) @ x, atol=1e-6)


def test_allocation_matches_the_optimal_face(case):
    """x* lies on the optimal face of (12); where that face pins x_k, it equals the reference."""
    name, p, res, (opt, xr, t, lp) = case
    K = p["K"]
    x = [res.variables["x"][(k,)] for k in range(1, K + 1)]
    for k, (lo, hi) in enumerate(optimal_face_ranges(opt, lp)):
        assert lo - 1e-6 <= x[k] <= hi + 1e-6, (name, k, lo, hi, x[k])
        if hi - lo < 1e-7:
            assert x[k] == pytest.approx(xr[k], abs=1e-6)


def test_menu_rows(case):
    name, p, res, ref = case
    K = p["K"]
    menu = res.menu()
    assert [row["type"] for row in menu] == [str(k) for k in range(1, K + 1)]
    lam = np.asarray(p["lam"], float)
    q = lam.mean(axis=0)  # the spec's prior for the menu: the average of lam
    x = np.array([res.variables["x"][(k,)] for k in range(1, K + 1)])
    pstar = prop1_payments(p["v"], x)
    for k, row in enumerate(menu):
        assert row["prob"] == pytest.approx(q[k], abs=1e-12)
        assert row["x"] == pytest.approx(x[k], abs=1e-12)
        assert row["p"] == pytest.approx(pstar[k], abs=1e-6)
        # the reported utility is U(k, k) = p_k - v_k x_k, and IR holds
        assert row["U"] == pytest.approx(row["p"] - p["v"][k] * row["x"], abs=1e-9)
        assert row["U"] >= -1e-6
    # the highest type's IR (P5) binds under Proposition 1
    assert menu[-1]["U"] == pytest.approx(0.0, abs=1e-6)


def test_unique_optimum_of_the_default_instance():
    """For the default data the optimum of (12) is unique; the spec must find exactly it."""
    opt, xr, t, lp = reference_lp(**BASE)
    ranges = optimal_face_ranges(opt, lp)
    assert all(hi - lo < 1e-7 for lo, hi in ranges)
    res = mechdsl.load(SPEC).solve()
    for k in range(3):
        assert res.variables["x"][(k + 1,)] == pytest.approx(xr[k], abs=1e-6)
    np.testing.assert_allclose([r["p"] for r in res.menu()], prop1_payments(BASE["v"], xr), atol=1e-6)


def test_result_parameters_and_json(case):
    name, p, res, ref = case
    assert res.parameters["K"] == p["K"] and res.parameters["n"] == p["n"]
    assert res.parameters["D"] == p["D"] and res.parameters["M"] == p["M"]
    for k in range(1, p["K"] + 1):
        assert res.parameters["v"][(k,)] == p["v"][k - 1]
    d = json.loads(json.dumps(res.to_dict()))
    assert d["status"] == "optimal" and d["problem_class"] == "LP"
    assert d["objective"] == pytest.approx(res.objective, abs=1e-12)
    for k in range(1, p["K"] + 1):
        assert d["variables"]["x"][str(k)] == pytest.approx(res.variables["x"][(k,)], abs=1e-12)
        assert d["variables"]["p"][str(k)] == pytest.approx(res.variables["p"][(k,)], abs=1e-12)
    assert d["verification"]["ok"] is True


def test_random_instances_against_program_12():
    """A seeded sweep of small instances: objective of (9) == optimum of (12)."""
    rng = np.random.default_rng(20240601)
    for _ in range(8):
        n = int(rng.integers(1, 4))
        K = int(rng.integers(1, 6))
        v = np.sort(rng.uniform(0.1, 5, K)).round(3).tolist()
        lam = rng.dirichlet(np.ones(K), n)
        lam = np.round(lam, 4)
        lam[:, -1] = 1 - lam[:, :-1].sum(axis=1)
        lam = np.clip(lam, 0, 1).round(6).tolist()
        p = dict(n=n, K=K, v=v, lam=lam, cap=float(rng.choice([0.0, 1.0, 5.0, 10.0])),
                 alpha=round(float(rng.uniform(0, 6)), 3), M=round(float(rng.uniform(0, 5)), 3),
                 D=round(float(rng.uniform(0, 20)), 3))
        opt, x, t, lp = reference_lp(**p)
        res = mechdsl.load(SPEC, overrides=p).solve()
        assert res.problem_class == "LP" and "HiGHS" in res.solver
        assert res.verification.ok and res.verification.max_regret <= 1e-6
        assert res.objective == pytest.approx(opt, abs=1e-6), p


# ------------------------------------------------------------ the CLI with --data
@pytest.mark.parametrize("data", ["repurchase_penalty.toml", "repurchase_fractional.toml"])
def test_cli_solve_json_with_data_files_matches_reference(data):
    import json
    import subprocess
    import sys
    import tomllib

    path = SPEC.parent / "data" / data
    out = subprocess.run([sys.executable, "-m", "mechdsl.cli", "solve", str(SPEC), "--data", str(path), "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["problem_class"] == "LP" and doc["solver"] == "HiGHS"
    assert doc["verification"]["max_regret"] <= 1e-6 and doc["verification"]["ok"]
    params = dict(BASE)
    params.update(tomllib.loads(path.read_text()))
    opt, *_ = reference_lp(**params)
    assert doc["objective"] == pytest.approx(opt, abs=1e-6)

"""Conditional IC, disjunctions and complementarity (issue 4): paper 000 with several capacities."""
import itertools
import json
import tomllib

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

import mechdsl
from mechdsl.compilers.pyomo.model import UnsupportedError
from conftest import SPECS, payment_matrix

ORIGINAL = SPECS / "repurchase_multi_capacity.mech"
REDUCED = SPECS / "repurchase_multi_capacity_reduced.mech"
DEFAULTS = dict(n=2, K=3, L=2, v=[1, 2, 3], cap=[4, 10],
                lam=[[[0.20, 0.15, 0.10], [0.25, 0.20, 0.10]], [[0.10, 0.10, 0.20], [0.15, 0.20, 0.25]]],
                alpha=4, M=3, D=12)
INSTANCES = {"default": None, "instance2": SPECS / "data" / "repurchase_mc_instance2.toml",
             "instance3": SPECS / "data" / "repurchase_mc_instance3.toml"}


def params(data):
    p = dict(DEFAULTS)
    if data is not None:
        p.update(tomllib.loads(data.read_text()))
    return p


def independent_milp(n, K, L, v, cap, lam, alpha, M, D):
    """Program (14)-(19) written from scratch: payments (13) substituted numerically, (17) by binaries."""
    v, cap, lam = np.asarray(v, float), np.asarray(cap, float), np.asarray(lam, float)
    w = lam.sum(axis=0)                                  # w[l, k] = sum_i lam[i, l, k]
    P = payment_matrix(v)                                # p = P x per capacity (Prop. 2, eq. (13))
    nx = K * L
    X = lambda k, l: l * K + k
    pairs = [(k, l, l2) for k in range(K) for l in range(L) for l2 in range(L) if l2 > l]
    nz = len(pairs)
    N = nx + 1 + nz                                      # x, t, z
    c = np.zeros(N)
    for l in range(L):
        coef = alpha * w[l] - w[l] @ P                   # sum_k w_k (alpha x_k - p_k(x))
        for k in range(K):
            c[X(k, l)] = coef[k]
    c[nx] = M
    A, lo, hi = [], [], []
    def row(entries, lb, ub):
        r = np.zeros(N)
        for i, a in entries:
            r[i] += a
        A.append(r); lo.append(lb); hi.append(ub)
    for l in range(L):
        row([(X(0, l), 1)], -np.inf, cap[l])                                   # (15) c^l >= x_1
        for k in range(K - 1):
            row([(X(k, l), 1), (X(k + 1, l), -1)], 0, np.inf)                  # (15) decreasing in v
    for k in range(K):
        for l in range(L - 1):
            row([(X(k, l + 1), 1), (X(k, l), -1)], 0, np.inf)                  # (16) increasing in c
    for z, (k, l, l2) in enumerate(pairs):                                     # (17) exact
        row([(X(k, l2), 1), (X(k, l), -1), (nx + 1 + z, -cap[-1])], -np.inf, 0)
        row([(X(k, l), -1), (nx + 1 + z, cap[l])], -np.inf, 0)                 # cap_l - x <= cap_l (1 - z)
    row([(nx, 1)] + [(X(k, l), -w[l, k]) for k in range(K) for l in range(L)], -np.inf, -D)   # (18)
    bounds = Bounds(np.r_[np.zeros(nx), -np.inf, np.zeros(nz)], np.r_[np.full(nx, np.inf), 0, np.ones(nz)])
    res = milp(-c, constraints=LinearConstraint(np.array(A), lo, hi), bounds=bounds,
               integrality=np.r_[np.zeros(nx + 1), np.ones(nz)])
    assert res.success, res.message
    return -res.fun


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_exact_original_equals_exact_reduced_and_an_independent_milp(name):
    data = INSTANCES[name]
    orig = mechdsl.load(ORIGINAL, data=data).solve()
    red = mechdsl.load(REDUCED, data=data).solve()
    assert orig.problem_class == "MILP" and orig.solver == "HiGHS"
    assert orig.verification.ok and orig.verification.max_regret <= 1e-6
    assert red.verification.ok and red.verification.max_regret <= 1e-6  # its "check ic" rows: the original IC
    assert orig.objective == pytest.approx(red.objective, abs=1e-6)
    assert orig.objective == pytest.approx(independent_milp(**params(data)), abs=1e-6)


def test_cli_json_original_is_milp_with_zero_regret(capsys):
    from mechdsl import cli

    assert cli.main(["solve", str(ORIGINAL), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["problem_class"] == "MILP" and doc["verification"]["max_regret"] <= 1e-6
    assert cli.main(["solve", str(REDUCED), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["objective"] == pytest.approx(doc["objective"], abs=1e-6)


@pytest.mark.parametrize("spec", [REDUCED, ORIGINAL], ids=["reduced (20)-(23)", "original (MPCC)"])
def test_relax_regret_shrinks_and_stays_within_lemma_4(spec):
    res = mechdsl.load(spec).solve(mpcc="relax")
    sched = res.schedule
    assert [r["eps"] for r in sched] == [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
    v = DEFAULTS["v"]
    for r in sched:
        assert r["status"] == "locally optimal"
        assert r["bound"] == pytest.approx(sum(v) * np.sqrt(r["eps"]))     # Lemma 4: sum_k v^k sqrt(eps)
        assert r["max_regret"] <= r["bound"] + 1e-9
    regrets = [r["max_regret"] for r in sched]
    # Shrinks as eps decreases (up to IPOPT's own tolerance, ~1e-8, once the regret is at noise level).
    assert all(b <= a + 1e-7 for a, b in zip(regrets, regrets[1:]))
    if spec == ORIGINAL:  # here the relaxation really trades regret for eps: sqrt(eps) scaling
        assert regrets[0] > 1e-2 and regrets[-1] < regrets[0] / 100
    assert res.exact_objective == pytest.approx(independent_milp(**DEFAULTS), abs=1e-6)
    assert sched[-1]["objective"] == pytest.approx(res.exact_objective, abs=1e-3)


def test_relax_cli_prints_the_table_and_json_schedule(capsys):
    from mechdsl import cli

    # The relaxed menu has regret ~ sqrt(eps) > tol: it is not an IC answer, so the exit code is 1 (the
    # table, and the exact optimum beside it, are still printed).
    assert cli.main(["solve", str(ORIGINAL), "--mpcc", "relax"]) == 1
    out = capsys.readouterr().out
    assert "relaxation schedule" in out and "gap to exact" in out and "exact optimum (MILP)" in out
    assert cli.main(["solve", str(ORIGINAL), "--mpcc", "relax", "--json", "--eps", "1e-2", "1e-4"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [r["eps"] for r in doc["schedule"]] == [1e-2, 1e-4]
    assert set(doc["schedule"][0]) == {"eps", "objective", "max_regret", "bound"}
    assert doc["exact_objective"] == pytest.approx(independent_milp(**DEFAULTS), abs=1e-6)


# ------------------------------------------------------------ never silently dropped
GRID = np.linspace(0, 1, 1001)


def brute(objective, feasible):
    """Best objective over a 1001 x 1001 grid of (x, y) in [0, 1]^2 satisfying ``feasible``."""
    X, Y = np.meshgrid(GRID, GRID, indexing="ij")
    ok = feasible(X, Y)
    return float(np.max(np.where(ok, objective(X, Y), -np.inf)))


COMPL = "var x >= 0, <= 1;\nvar y >= 0, <= 1;\nconstraint C: complements(x, y);\nmaximize x + 2 * y - 0.5 * x;\n"
IMPL = ("var x >= 0, <= 1;\nvar y >= 0, <= 1;\nconstraint C: x <= 0.5 -> y <= 0.1;\n"
        "maximize y - x;\n")
DISJ = "var x >= 0, <= 1;\nconstraint C: x <= 0.3 or x >= 0.95;\nconstraint U: x <= 0.9;\nmaximize x;\n"


@pytest.mark.parametrize("mode", ["exact", "relax"])
def test_complementarity_is_never_dropped(mode):
    res = mechdsl.loads(COMPL, "c.mech").solve(mpcc=mode)
    # Without the constraint the optimum is x = y = 1 (value 2.5); with it, x * y = 0 and the best is y = 1: 2.
    ref = brute(lambda x, y: x + 2 * y - 0.5 * x, lambda x, y: x * y == 0)
    free = brute(lambda x, y: x + 2 * y - 0.5 * x, lambda x, y: x >= 0)
    assert res.objective == pytest.approx(ref, abs=1e-4) and res.objective < free - 0.1
    assert res.variables["x"][()] * res.variables["y"][()] <= 1e-4


@pytest.mark.parametrize("mode", ["exact", "relax"])
def test_implication_is_never_dropped(mode):
    res = mechdsl.loads(IMPL, "i.mech").solve(mpcc=mode)
    # Without it: y = 1, x = 0 (value 1).  With it: either x <= 0.5 and y <= 0.1 (value <= 0.1), or x just above
    # 0.5 and y = 1 (value just below 0.5).  The exact MILP finds the global optimum; the relaxed MPCC is a
    # nonconvex NLP and may stop at either branch, but never above 0.5.
    x, y = res.variables["x"][()], res.variables["y"][()]
    assert res.objective < 0.5 + 1e-3
    assert x > 0.5 or y <= 0.1 + 1e-3
    if mode == "exact":
        ref = brute(lambda x, y: y - x, lambda x, y: (x > 0.5) | (y <= 0.1))  # grid: x = 0.501 at best
        assert res.objective == pytest.approx(ref, abs=2e-3) and res.objective > ref and res.verification.ok


def test_disjunction_is_never_dropped():
    res = mechdsl.loads(DISJ, "d.mech").solve()
    ref = max(g for g in GRID if (g <= 0.3 or g >= 0.95) and g <= 0.9)
    assert res.problem_class == "MILP" and res.objective == pytest.approx(ref, abs=1e-7)


def test_exact_refuses_without_bounds_and_names_the_variable():
    text = "var x >= 0;\nvar y >= 0, <= 1;\nconstraint C: complements(x, y);\nmaximize y - x;\n"
    with pytest.raises(UnsupportedError) as err:
        mechdsl.loads(text, "u.mech").solve(mpcc="exact")
    assert "needs finite bounds" in str(err.value) and "x" in str(err.value).split("missing for:")[1]
    assert err.value.exit_code == 2
    res = mechdsl.loads(text, "u.mech").solve()  # the default falls back to relax, and says so
    assert res.objective == pytest.approx(brute(lambda x, y: y - x, lambda x, y: x * y == 0), abs=1e-4)
    assert any("relax mode" in n for n in res.notes)


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_hull_reformulation_agrees_with_big_m(name):
    data = INSTANCES[name]
    hull = mechdsl.load(ORIGINAL, data=data).solve(gdp="hull")
    assert hull.problem_class == "MILP" and hull.verification.ok and hull.verification.max_regret <= 1e-6
    assert hull.objective == pytest.approx(independent_milp(**params(data)), abs=1e-6)
    assert any("gdp.hull" in n for n in hull.notes)

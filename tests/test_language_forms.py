"""End-to-end tests of the language forms of commit 4b8cf79: if-then-else, floor/ceil/mod, iterated
max/min/argmax/argmin, forall/exists, reports, specs without a main problem, indexed aux results
``A[r].x[k]``, ``.feasible`` and an infeasible aux as a value.

Every number asserted comes from mechdsl and is compared with an independent computation in the test:
plain Python (``math``, ``fractions``), a brute-force enumeration or ``scipy.optimize.linprog``.  User
errors are checked for exit 2 and the ``file:line:col: error:`` form with the source line and a caret
under the reported column.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from scipy.optimize import linprog

import mechdsl
from mechdsl import cli
from mechdsl.ir.sym import ARG_TOL

F = "forms.mech"
TOL = 1e-7


# ------------------------------------------------------------------ helpers
def solve(text: str, **overrides):
    return mechdsl.loads(text, F, overrides=overrides or None).solve()


def write(tmp_path, text: str, name: str = "spec.mech"):
    path = tmp_path / name
    path.write_text(text)
    return path


def cli_inproc(capsys, *args):
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys, tmp_path, text: str, *extra):
    path = write(tmp_path, text)
    code, out, err = cli_inproc(capsys, "solve", path, "--json", *extra)
    return code, (json.loads(out) if out.strip() else None), err, path


def cli_subprocess(*args):
    p = subprocess.run([sys.executable, "-m", "mechdsl.cli", *map(str, args)], capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def lp_max(c, A_ub=None, b_ub=None, A_eq=None, b_eq=None, bounds=None):
    """scipy's HiGHS on ``max c.x``: (optimum, x)."""
    r = linprog(-np.asarray(c, float), A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds,
                method="highs")
    assert r.status == 0, r.message
    return -r.fun, r.x


def lp_min(c, A_ub=None, b_ub=None, A_eq=None, b_eq=None, bounds=None):
    r = linprog(np.asarray(c, float), A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
    assert r.status == 0, r.message
    return r.fun, r.x


def col_of(text: str, line: int, needle: str) -> int:
    return text.splitlines()[line - 1].index(needle) + 1


def assert_located(err: str, path, text: str, line: int, col: int):
    """``path:line:col: error:``, then the source line, then a caret under column ``col``; no traceback."""
    assert f"{path}:{line}:{col}: error: " in err, err
    assert "Traceback" not in err and "internal error" not in err and "please report" not in err, err
    src = text.splitlines()[line - 1]
    lines = err.splitlines()
    hits = [i for i, ln in enumerate(lines) if re.fullmatch(rf"\s*{line} \| {re.escape(src)}", ln)]
    assert hits, err
    i = hits[0]
    prefix = lines[i].index("| ") + 2
    caret = lines[i + 1]
    assert set(caret.strip()) == {"^"}, err
    assert caret.index("^") - prefix + 1 == col, err


def values(res, name):
    """A variable's solution as {index tuple: float}."""
    return {k: float(v) for k, v in res.variables[name].items()}


# ------------------------------------------------------------------ if-then-else, floor/ceil/mod
IFE = """\
param K integer >= 1 = 5;
param lim = 4;
param w[k in 1..K] = if mod(k, 2) == 0 then 2 * k else k;
set Odd = {k in 1..K : mod(k, 2) == 1};
set U = {k in 1..K : if K > 5 then k > 4 else k < 3};
param nU = sum{k in U} 1;
var x[k in 1..K] >= 0, <= (if k > 2 then 10 else 1);
constraint C[k in 1..K]: (if w[k] > lim then x[k] else 2 * x[k]) <= w[k];
constraint M[k in 1..K: mod(k, 3) == 0]: x[k] <= 0.5;
maximize sum{k in Odd} x[k] + sum{k in 1..K: (if w[k] >= 4 then k else 0) > 3} x[k]
         + sum{k in U} 0.5 * x[k] + sum{k in 1..K} (if w[k] > 6 then -0.25 * x[k] else 0.125 * x[k]);
"""


@pytest.mark.parametrize("K,lim", [(5, 4), (6, 4), (7, 5.5)])
def test_if_then_else_in_params_filters_bounds_and_constraint_branches(K, lim):
    res = solve(IFE, K=K, lim=lim)
    assert res.status == "optimal" and res.problem_class == "LP" and res.verification.ok
    ks = range(1, K + 1)
    w = {k: 2 * k if k % 2 == 0 else k for k in ks}
    U = [k for k in ks if (k > 4 if K > 5 else k < 3)]
    assert {k: res.parameters["w"][(k,)] for k in ks} == w
    assert res.parameters["nU"] == len(U)
    # the same LP, written out by hand
    c = np.zeros(K)
    for k in ks:
        c[k - 1] += (k % 2 == 1) + ((k if w[k] >= 4 else 0) > 3) + 0.5 * (k in U)
        c[k - 1] += -0.25 if w[k] > 6 else 0.125
    A, b = [], []
    for k in ks:
        row = np.zeros(K)
        row[k - 1] = 1 if w[k] > lim else 2
        A.append(row), b.append(w[k])
        if k % 3 == 0:
            row = np.zeros(K)
            row[k - 1] = 1
            A.append(row), b.append(0.5)
    bounds = [(0, 10 if k > 2 else 1) for k in ks]
    opt, xs = lp_max(c, A, b, bounds=bounds)
    assert res.objective == pytest.approx(opt, abs=TOL)
    x = values(res, "x")
    # every coefficient is nonzero and each x[k] has its own bounds: the optimum is unique
    assert all(c != 0)
    for k in ks:
        assert x[(k,)] == pytest.approx(xs[k - 1], abs=1e-7)


FLOOR = """\
param K integer >= 1 = 7;
set S = 1..floor(K / 2);
set T = {k in 1..K : floor(k / 3) == 1 or mod(k, 5) == 0};
set V = {k in 1..K : (if mod(k, 2) == 0 then k else 0) > 3};
set W = {k in 1..K : ceil(k / 4) == 2};
param nS = sum{k in S} 1;
param sT = sum{k in T} k;
param sV = sum{k in V} k;
param sW = sum{k in W} k * k;
param cl = ceil(K / 2) + floor(-K / 2) + mod(-K, 3) + mod(K + 0.5, 2) + mod(K, -4);
param half[k in 1..K] = if mod(k, 2) == 0 then floor(k / 2) else ceil(-k / 2);
"""


@pytest.mark.parametrize("K", [1, 4, 7, 10, 13])
def test_floor_ceil_mod_in_set_filters_and_params(K):
    res = solve(FLOOR, K=K)
    assert res.status == "evaluated" and res.objective is None
    ks = range(1, K + 1)
    p = res.parameters
    assert p["nS"] == K // 2
    assert p["sT"] == sum(k for k in ks if math.floor(k / 3) == 1 or k % 5 == 0)
    assert p["sV"] == sum(k for k in ks if (k if k % 2 == 0 else 0) > 3)
    assert p["sW"] == sum(k * k for k in ks if math.ceil(k / 4) == 2)
    want = math.ceil(K / 2) + math.floor(-K / 2) + (-K) % 3 + (K + 0.5) % 2 + K % -4
    assert p["cl"] == pytest.approx(want, abs=1e-12)
    for k in ks:
        assert p["half"][(k,)] == (k // 2 if k % 2 == 0 else math.ceil(-k / 2))


# ------------------------------------------------------------------ iterated max/min over params
ITER = """\
param c[i in 1..2, j in 1..3] = [[4, -1, 7], [2, 9, 9]];
param mx = max{i in 1..2, j in 1..3} (c[i, j] - j);
param rowmax[i in 1..2] = max{j in 1..3} c[i, j];
param colmin[j in 1..3] = min{i in 1..2: c[i, j] > 0} c[i, j];
param mm = min{i in 1..2} max{j in 1..3: j != i} c[i, j];
param one = max{j in 2..2} c[1, j];
"""


def test_iterated_max_min_over_params():
    c = {(1, 1): 4, (1, 2): -1, (1, 3): 7, (2, 1): 2, (2, 2): 9, (2, 3): 9}
    res = solve(ITER, c=[[4, -1, 7], [2, 9, 9]])
    p = res.parameters
    assert p["mx"] == max(v - j for (i, j), v in c.items())
    assert p["rowmax"] == {(i,): max(c[i, j] for j in (1, 2, 3)) for i in (1, 2)}
    assert p["colmin"] == {(j,): min(c[i, j] for i in (1, 2) if c[i, j] > 0) for j in (1, 2, 3)}
    assert p["mm"] == min(max(c[i, j] for j in (1, 2, 3) if j != i) for i in (1, 2))
    assert p["one"] == c[1, 2]
    # other data: the same formulas
    c2 = [[-3, -8, -1], [0.5, 2, 6]]
    res = solve(ITER, c=c2)
    d = {(i + 1, j + 1): c2[i][j] for i in range(2) for j in range(3)}
    assert res.parameters["mx"] == pytest.approx(max(v - j for (i, j), v in d.items()))
    assert res.parameters["colmin"] == {(1,): 0.5, (2,): 2, (3,): 6}
    assert res.parameters["mm"] == min(max(d[1, 2], d[1, 3]), max(d[2, 1], d[2, 3]))


# ------------------------------------------------------------------ max/min over variables (epigraphs)
MINMAX = """\
param K integer = 4;
param a[k in 1..K] = [3, 1, 2, 5];
param b[k in 1..K] = [0, 1, -1, 2];
param cap = 0.45;
var x[k in 1..K] >= 0, <= 1;
constraint Total: sum{k in 1..K} x[k] == 1;
constraint Cap: max{k in 1..K: k > 1} x[k] <= cap;
minimize Worst: max{k in 1..K} (a[k] * x[k] + b[k] * x[k] + 1);
report share[k in 1..K] = x[k] / sum{j in 1..K} x[j];
"""


def _minmax_reference(a, b, cap):
    """min t s.t. t >= (a_k + b_k) x_k + 1, sum x = 1, x_k <= cap (k > 1), 0 <= x <= 1; vars (x, t)."""
    K = len(a)
    c = np.r_[np.zeros(K), 1.0]
    A, rhs = [], []
    for k in range(K):
        row = np.zeros(K + 1)
        row[k], row[K] = a[k] + b[k], -1
        A.append(row), rhs.append(-1)
        if k > 0:
            row = np.zeros(K + 1)
            row[k] = 1
            A.append(row), rhs.append(cap)
    A_eq = [np.r_[np.ones(K), 0.0]]
    return lp_min(c, A, rhs, A_eq, [1], bounds=[(0, 1)] * K + [(None, None)])


@pytest.mark.parametrize("a,b,cap", [([3, 1, 2, 5], [0, 1, -1, 2], 0.45), ([1, 4, 4, 2], [1, 0, 2, 0], 0.3),
                                     ([2, 2, 2, 2], [0, 0, 0, 0], 1.0)])
def test_minimize_max_over_variables_is_an_exact_epigraph(a, b, cap):
    res = solve(MINMAX, a=a, b=b, cap=cap)
    assert res.status == "optimal" and res.problem_class == "LP" and res.verification.ok
    assert any("epigraph" in n for n in res.notes), res.notes
    opt, xs = _minmax_reference(a, b, cap)
    assert res.objective == pytest.approx(opt, abs=TOL)
    x = values(res, "x")
    # the objective at mechdsl's x, recomputed (the epigraph is exact, not a bound)
    assert max((a[k] + b[k]) * x[(k + 1,)] + 1 for k in range(4)) == pytest.approx(opt, abs=1e-7)
    assert sum(x.values()) == pytest.approx(1, abs=1e-9)
    assert max(x[(k,)] for k in (2, 3, 4)) <= cap + 1e-9
    for k in range(1, 5):
        assert res.reports["share"][(k,)] == pytest.approx(x[(k,)] / sum(x.values()), abs=1e-12)


def test_minimize_max_closed_form():
    """With a[k] + b[k] = (3, 2, 1, 7) the optimum equalises (a_k + b_k) x_k except where the cap binds."""
    res = solve(MINMAX)
    w = [Fraction(3), Fraction(2), Fraction(1), Fraction(7)]
    # x_3 = 0.45 (cap), the others s / w_k with s * (1/3 + 1/2 + 1/7) = 0.55
    s = Fraction(55, 100) / (1 / w[0] + 1 / w[1] + 1 / w[3])
    assert w[2] * Fraction(45, 100) < s  # so the term of k = 3 is not the max
    assert res.objective == pytest.approx(float(s + 1), abs=1e-9)
    assert values(res, "x")[(3,)] == pytest.approx(0.45, abs=1e-9)


SUMMAX = """\
param R integer = 3;
param K integer = 3;
param g[r in 1..R, k in 1..K] = [[1, 4, 2], [3, 1, 2], [2, 2, 5]];
param d[r in 1..R, k in 1..K] = [[0, 1, 0], [1, 0, 0], [0, 0, 2]];
var x[k in 1..K] >= 0, <= 1;
constraint Total: sum{k in 1..K} x[k] == 1;
minimize Loss: sum{r in 1..R} max{k in 1..K} (g[r, k] * x[k] - d[r, k]);
"""


def test_sum_of_iterated_max_over_variables_matches_linprog():
    g = [[1, 4, 2], [3, 1, 2], [2, 2, 5]]
    d = [[0, 1, 0], [1, 0, 0], [0, 0, 2]]
    res = solve(SUMMAX)
    assert res.status == "optimal" and res.problem_class == "LP" and res.verification.ok
    # variables x1..x3, t1..t3: min sum t  s.t.  g[r][k] x_k - d[r][k] <= t_r
    A, rhs = [], []
    for r in range(3):
        for k in range(3):
            row = np.zeros(6)
            row[k], row[3 + r] = g[r][k], -1
            A.append(row), rhs.append(d[r][k])
    opt, _ = lp_min(np.r_[np.zeros(3), np.ones(3)], A, rhs, [np.r_[np.ones(3), np.zeros(3)]], [1],
                    bounds=[(0, 1)] * 3 + [(None, None)] * 3)
    assert res.objective == pytest.approx(opt, abs=TOL)
    x = values(res, "x")
    at_x = sum(max(g[r][k] * x[(k + 1,)] - d[r][k] for k in range(3)) for r in range(3))
    assert at_x == pytest.approx(opt, abs=1e-7)


HYPO = """\
param c[k in 1..3] = [1, 2, 4];
var x[k in 1..3] >= 0, <= 1;
constraint T: sum{k in 1..3} x[k] == 1;
constraint Lo: min{k in 1..3} x[k] >= lo;
maximize Fair: min{k in 1..3} c[k] * x[k];
"""


def test_maximize_min_over_variables_is_an_exact_hypograph():
    res = solve("param lo = 0;\n" + HYPO)
    assert res.status == "optimal" and res.problem_class == "LP"
    # max t s.t. t <= c_k x_k, sum x = 1: t = 1 / sum 1/c_k, x_k = t / c_k
    t = 1 / sum(Fraction(1, c) for c in (1, 2, 4))
    assert res.objective == pytest.approx(float(t), abs=1e-9)
    for k, c in enumerate((1, 2, 4), 1):
        assert values(res, "x")[(k,)] == pytest.approx(float(t / c), abs=1e-9)
    # a floor on every x via min{} >= lo (a convex position too): linprog on (x, t)
    res = solve("param lo = 0.2;\n" + HYPO)
    A, rhs = [], []
    for k, c in enumerate((1, 2, 4)):
        row = np.zeros(4)
        row[k], row[3] = -c, 1
        A.append(row), rhs.append(0)
    opt, _ = lp_max([0, 0, 0, 1], A, rhs, [[1, 1, 1, 0]], [1], bounds=[(0.2, 1)] * 3 + [(None, None)])
    assert res.objective == pytest.approx(opt, abs=TOL)
    assert min(values(res, "x").values()) >= 0.2 - 1e-9


def test_max_in_a_le_constraint_and_min_in_a_ge_constraint_match_linprog():
    text = """\
var x[k in 1..3] >= 0, <= 1;
constraint Lo: min{k in 1..3} x[k] >= 0.2;
constraint Hi: 2 * max{k in 1..3} x[k] + x[1] <= 1.5;
maximize sum{k in 1..3} k * x[k];
"""
    res = solve(text)
    assert res.status == "optimal" and res.problem_class == "LP" and res.verification.ok
    A, rhs = [], []
    for k in range(3):
        row = np.zeros(3)
        row[k] += 2
        row[0] += 1
        A.append(row), rhs.append(1.5)
    opt, xs = lp_max([1, 2, 3], A, rhs, bounds=[(0.2, 1)] * 3)
    assert res.objective == pytest.approx(opt, abs=TOL)
    x = values(res, "x")
    assert [x[(k,)] for k in (1, 2, 3)] == pytest.approx(list(xs), abs=1e-7)


# ------------------------------------------------------------------ argmax / argmin
def _first_best(vals: list, sign: float):
    """The documented rule, written out: a later element replaces the best so far only when it is better
    by more than ARG_TOL * max(1, |best|)."""
    best = 0
    for i in range(1, len(vals)):
        if sign * (vals[i] - vals[best]) > ARG_TOL * max(1.0, abs(vals[best])):
            best = i
    return best


ARG = """\
param n integer = 6;
param v[k in 1..n] = [1, 5, 5, 2, 0.3, 0.1];
param u[k in 1..n] = [-1e6, -1e6, -1e6, 3, 0, 0];
param noisy[k in 1..2] = [0.3, 0.1 + 0.2];
param top = argmax{k in 1..n} v[k];
param low = argmin{k in 1..n} u[k];
param tail = argmax{k in 4..n} v[k];
param rev = argmax{k in {6, 3, 2, 1}} v[k];
param noise = argmax{k in 1..2} noisy[k];
param filt = argmin{k in 1..n: k > 3} v[k];
"""


@pytest.mark.parametrize("u,low", [([-1e6, -1e6 - 1e-4, -1e6 - 1e-2, 3, 0, 0], 3),  # 1e-10 relative: a tie
                                   ([-1e6, -1e6, -1e6, 3, 0, 0], 1),
                                   ([5, 5 - 2e-9, 5 - 4e-9, 5 - 1.1e-8, 7, 8], 4)])
def test_argmax_argmin_ties_go_to_the_first_element(u, low):
    v = [1, 5, 5, 2, 0.3, 0.1]
    res = solve(ARG, u=u)
    p = res.parameters
    # a strict comparison would pick the second: the tolerance must decide
    assert p["noisy"][(2,)] > p["noisy"][(1,)] and p["noisy"][(2,)] == pytest.approx(0.3, abs=1e-15)
    assert p["top"] == 1 + _first_best(v, 1.0) == 2
    assert p["low"] == 1 + _first_best(u, -1.0) == low
    assert p["tail"] == 4 + _first_best(v[3:], 1.0)
    order = [6, 3, 2, 1]
    assert p["rev"] == order[_first_best([v[k - 1] for k in order], 1.0)] == 3  # set order, not numeric order
    assert p["noise"] == 1
    assert p["filt"] == 4 + _first_best([-x for x in v[3:]], 1.0)


def test_argmax_ties_decide_a_constraint_index():
    text = """\
param v[k in 1..4] = [1, 5, 5, 2];
var x[k in 1..4] >= 0, <= 1;
constraint C: x[argmax{k in 1..4} v[k]] <= 0.3;
constraint D[j in 1..4: j == argmin{k in 1..4} (-v[k])]: x[j] <= 0.2;
maximize sum{k in 1..4} k * x[k];
"""
    res = solve(text)
    v = [1, 5, 5, 2]
    top = 1 + _first_best(v, 1.0)
    assert top == 2
    ub = [1.0] * 4
    ub[top - 1] = min(0.3, 0.2)  # both rows pick the first of the tied pair
    assert res.objective == pytest.approx(sum((k + 1) * ub[k] for k in range(4)), abs=TOL)
    assert values(res, "x")[(2,)] == pytest.approx(0.2, abs=1e-9)
    assert values(res, "x")[(3,)] == pytest.approx(1.0, abs=1e-9)


# ------------------------------------------------------------------ forall / exists
QUANT = """\
param K integer = 4;
param w[k in 1..K] = [3, 5, 2, 5];
param anyBig = if exists{k in 1..K} w[k] > 4 then 1 else 0;
param vacuous = if forall{k in 1..K: k > K} w[k] > 100 then 1 else 0;
param none = if exists{k in 1..K: k > K} w[k] > 0 then 1 else 0;
set Strict = {k in 1..K : forall{j in 1..K: j != k} w[j] < w[k]};
param nStrict = sum{k in Strict} 1;
var x[k in 1..K] >= 0, <= 1;
constraint Dom[k in 1..K]: exists{j in 1..K: j != k} w[j] > w[k] -> x[k] <= 0.25;
constraint Top[k in 1..K]: forall{j in 1..K} w[j] <= w[k] -> x[k] <= 0.5;
constraint Mid[k in 1..K: not forall{j in 1..K} w[j] <= w[k] and exists{j in 1..K} w[j] < w[k]]: x[k] <= 0.75;
maximize sum{k in 1..K} k * x[k];
report dominated[k in 1..K] = exists{j in 1..K: j != k} w[j] > w[k];
report top[k in 1..K] = forall{j in 1..K} w[j] <= w[k];
"""


@pytest.mark.parametrize("w", [[3, 5, 2, 5], [1, 2, 3, 4], [2, 2, 2, 2], [9, 1, 4, 4]])
def test_forall_exists_in_params_filters_premises_and_reports(w):
    res = solve(QUANT, w=w)
    assert res.status == "optimal" and res.verification.ok
    K = len(w)
    p = res.parameters
    assert p["anyBig"] == int(any(x > 4 for x in w))
    assert p["vacuous"] == 1 and p["none"] == 0  # forall over nothing is true, exists false
    assert p["nStrict"] == sum(all(w[j] < w[k] for j in range(K) if j != k) for k in range(K))
    # brute force: each x[k] has only bounds, the objective coefficient k > 0, so x[k] = its tightest bound
    ub = []
    for k in range(K):
        b = 1.0
        dominated = any(w[j] > w[k] for j in range(K) if j != k)
        top = all(w[j] <= w[k] for j in range(K))
        if dominated:
            b = min(b, 0.25)
        if top:
            b = min(b, 0.5)
        if not top and any(w[j] < w[k] for j in range(K)):
            b = min(b, 0.75)
        ub.append(b)
    assert res.objective == pytest.approx(sum((k + 1) * ub[k] for k in range(K)), abs=TOL)
    x = values(res, "x")
    assert [x[(k,)] for k in range(1, K + 1)] == pytest.approx(ub, abs=1e-9)
    assert res.reports["dominated"] == {(k + 1,): any(w[j] > w[k] for j in range(K) if j != k) for k in range(K)}
    assert res.reports["top"] == {(k + 1,): all(w[j] <= w[k] for j in range(K)) for k in range(K)}
    assert all(isinstance(b, bool) for b in res.reports["top"].values())


# ------------------------------------------------------------------ reports
REPORTS = """\
param K integer = 3;
param price[k in 1..K] = [2, 1.5, 3];
param limit = 2;
var x[k in 1..K] >= 0, <= 1;
constraint T: sum{k in 1..K} x[k] <= limit;
maximize Welfare: sum{k in 1..K} (k + 0.5 * price[k]) * x[k];
report pay[k in 1..K] = price[k] * x[k];
report net[k in 1..K: k > 1] = pay[k] - x[k];
report total = sum{k in 2..K} net[k];
report revenue = sum{k in 1..K} pay[k];
report flag = total > 2.5;
report best = argmax{k in 1..K} price[k];
"""


@pytest.mark.parametrize("limit", [2, 1.5, 0.4])
def test_reports_indexed_scalar_and_chained(limit):
    res = solve(REPORTS, limit=limit)
    price = [2, 1.5, 3]
    coef = [k + 1 + 0.5 * price[k] for k in range(3)]
    opt, xs = lp_max(coef, [[1, 1, 1]], [limit], bounds=[(0, 1)] * 3)
    assert res.objective == pytest.approx(opt, abs=TOL)
    x = values(res, "x")
    assert [x[(k,)] for k in (1, 2, 3)] == pytest.approx(list(xs), abs=1e-7)  # distinct coefficients: unique
    r = res.reports
    assert list(r) == ["pay", "net", "total", "revenue", "flag", "best"]  # declaration order
    pay = {k: price[k - 1] * x[(k,)] for k in (1, 2, 3)}
    assert r["pay"] == pytest.approx({(k,): pay[k] for k in (1, 2, 3)}, abs=1e-12)
    assert set(r["net"]) == {(2,), (3,)}  # only the index set of the report
    net = {k: pay[k] - x[(k,)] for k in (2, 3)}
    assert r["net"] == pytest.approx({(k,): net[k] for k in (2, 3)}, abs=1e-12)
    assert r["total"][()] == pytest.approx(sum(net.values()), abs=1e-12)
    assert r["revenue"][()] == pytest.approx(sum(pay.values()), abs=1e-12)
    assert r["flag"][()] is (sum(net.values()) > 2.5)
    assert r["best"][()] == 3


def test_reports_in_json_and_text(capsys, tmp_path):
    code, doc, err, path = cli_json(capsys, tmp_path, REPORTS)
    assert code == 0, err
    res = solve(REPORTS)
    x = values(res, "x")
    assert doc["variables"]["x"] == pytest.approx({str(k): x[(k,)] for k in (1, 2, 3)}, abs=1e-9)
    rep = doc["reports"]
    assert set(rep["net"]) == {"2", "3"} and set(rep["total"]) == {""}
    assert rep["pay"] == pytest.approx({str(k): [2, 1.5, 3][k - 1] * x[(k,)] for k in (1, 2, 3)}, abs=1e-9)
    assert rep["flag"][""] is (sum([2, 1.5, 3][k - 1] * x[(k,)] - x[(k,)] for k in (2, 3)) > 2.5)
    assert rep["best"][""] == 3 and isinstance(rep["best"][""], int)
    assert doc["parameters"]["K"] == {"": 3} and isinstance(doc["parameters"]["K"][""], int)
    code, out, err = cli_inproc(capsys, "solve", path)
    assert code == 0, err
    assert "reports:" in out
    assert "revenue = " in out and "net[2]=" in out and "net[1]" not in out


# ------------------------------------------------------------------ specs without a main problem
EVAL = """\
param n integer = 4;
param v[k in 1..n] = [2, 7, 7, 1];
param best = argmax{k in 1..n} v[k];
param spread = max{k in 1..n} v[k] - min{k in 1..n} v[k];
aux A[r in 1..2] {
  var y >= 0, <= r;
  maximize v[r] * y;
}
report val[r in 1..2] = A[r].objective;
report both = sum{r in 1..2} val[r] + spread;
"""


def test_evaluated_only_spec_api():
    res = mechdsl.loads(EVAL, F).solve()
    assert res.status == "evaluated" and res.ok and res.objective is None and res.verification is None
    assert res.variables == {}
    v = [2, 7, 7, 1]
    assert res.parameters["best"] == 2 and res.parameters["spread"] == max(v) - min(v)
    # max_y v[r] * y over 0 <= y <= r: v[r] * r
    assert res.reports["val"] == pytest.approx({(r,): v[r - 1] * r for r in (1, 2)}, abs=1e-9)
    assert res.reports["both"][()] == pytest.approx(sum(v[r - 1] * r for r in (1, 2)) + 6, abs=1e-9)
    assert set(res.aux) == {"A[1]", "A[2]"} and all(a["feasible"] for a in res.aux.values())


def test_evaluated_only_spec_cli_subprocess(tmp_path):
    path = write(tmp_path, EVAL)
    code, out, err = cli_subprocess("solve", path, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "evaluated" and doc["objective"] is None and doc["verification"] is None
    assert doc["reports"]["val"] == pytest.approx({"1": 2.0, "2": 14.0}, abs=1e-9)
    assert doc["aux"]["A[2]"]["status"] == "optimal" and doc["aux"]["A[2]"]["feasible"] is True
    assert doc["aux"]["A[2]"]["objective"] == pytest.approx(14.0, abs=1e-9)
    assert doc["aux"]["A[2]"]["variables"]["y"][""] == pytest.approx(2.0, abs=1e-9)
    code, out, err = cli_subprocess("solve", path)
    assert code == 0, err
    assert out.startswith("status: evaluated") and "auxiliary problems solved: 2" in out and "both = " in out


# ------------------------------------------------------------------ indexed aux results
AUX = """\
param R integer = 3;
param K integer = 3;
param c[r in 1..R, k in 1..K] = [[1, 2, 3], [3, 1, 2], [2, 4, 1]];
param wt[k in 1..K] = [1, 3, 2];
param cap[r in 1..R] = [1, 2, 1.5];
aux A[r in 1..R] {
  var y[k in 1..K] >= 0, <= 1;
  constraint Budget: sum{k in 1..K} wt[k] * y[k] <= cap[r];
  maximize sum{k in 1..K} (c[r, k] - 0.1 * k) * y[k];
}
param val[r in 1..R] = A[r].objective;
param yv[r in 1..R, k in 1..K] = A[r].y[k];
var z[k in 1..K] >= 0, <= 5;
constraint Link[k in 1..K]: z[k] <= sum{r in 1..R} A[r].y[k];
constraint Pick[r in 1..R]: z[argmax{k in 1..K} A[r].y[k]] <= 10 * A[r].y[argmax{k in 1..K} A[r].y[k]];
maximize sum{k in 1..K} z[k] + sum{r in 1..R} val[r];
report best[r in 1..R] = argmax{k in 1..K} A[r].y[k];
report used[r in 1..R] = sum{k in 1..K} wt[k] * A[r].y[k];
"""

AUX_C = [[1, 2, 3], [3, 1, 2], [2, 4, 1]]
AUX_WT = [1, 3, 2]


def _aux_reference(cap):
    """Each A[r] by linprog; the fractional knapsacks have distinct ratios, so each optimum is unique."""
    out = []
    for r in range(3):
        coef = [AUX_C[r][k] - 0.1 * (k + 1) for k in range(3)]
        ratios = [coef[k] / AUX_WT[k] for k in range(3)]
        assert len(set(ratios)) == 3
        out.append(lp_max(coef, [AUX_WT], [cap[r]], bounds=[(0, 1)] * 3))
    return out


@pytest.mark.parametrize("cap", [[1, 2, 1.5], [0.5, 6, 3.5]])
def test_indexed_aux_variables_match_linprog(cap):
    res = solve(AUX, cap=cap)
    assert res.status == "optimal" and res.verification.ok
    ref = _aux_reference(cap)
    p = res.parameters
    for r in range(3):
        opt, ys = ref[r]
        assert p["val"][(r + 1,)] == pytest.approx(opt, abs=TOL)
        for k in range(3):
            assert p["yv"][(r + 1, k + 1)] == pytest.approx(ys[k], abs=1e-7)
        a = res.aux[f"A[{r + 1}]"]
        assert a["feasible"] is True and a["status"] == "optimal"
        assert a["vars"]["y"] == pytest.approx({(k + 1,): ys[k] for k in range(3)}, abs=1e-7)
        ys_r = [round(y, 9) for y in ys]
        assert res.reports["best"][(r + 1,)] == 1 + ys_r.index(max(ys_r))
        assert res.reports["used"][(r + 1,)] == pytest.approx(float(np.dot(AUX_WT, ys)), abs=1e-7)
    # main problem: z_k <= sum_r y*_rk (and the Pick rows, slack by construction when y* > 0, z <= 0 otherwise)
    zub = [min(5.0, sum(ref[r][1][k] for r in range(3))) for k in range(3)]
    for r in range(3):
        ys = [round(y, 9) for y in ref[r][1]]
        kb = ys.index(max(ys))
        zub[kb] = min(zub[kb], 10 * ref[r][1][kb])
    want = sum(zub) + sum(ref[r][0] for r in range(3))
    assert res.objective == pytest.approx(want, abs=1e-6)


def test_indexed_aux_in_json(capsys, tmp_path):
    code, doc, err, _ = cli_json(capsys, tmp_path, AUX)
    assert code == 0, err
    ref = _aux_reference([1, 2, 1.5])
    for r in range(3):
        a = doc["aux"][f"A[{r + 1}]"]
        assert a["status"] == "optimal" and a["feasible"] is True
        assert a["objective"] == pytest.approx(ref[r][0], abs=TOL)
        assert a["variables"]["y"] == pytest.approx({str(k + 1): ref[r][1][k] for k in range(3)}, abs=1e-7)
        assert doc["parameters"]["yv"][f"{r + 1},2"] == pytest.approx(ref[r][1][1], abs=1e-7)


# ------------------------------------------------------------------ infeasible aux as a value
INFEAS = """\
param R integer = 2;
param need[r in 1..R] = [1, 3];
aux A[r in 1..R] {
  var y[k in 1..2] >= 0, <= 1;
  constraint Need: y[1] + y[2] >= need[r];
  minimize y[1] + 2 * y[2];
}
param feas[r in 1..R] = if A[r].feasible then 1 else 0;
var x >= 0, <= 10;
constraint C: x <= 2 + 3 * feas[2];
constraint G[r in 1..R]: x <= (if A[r].feasible then 1 + 4 * A[r].objective else 7);
maximize x + sum{r in 1..R: A[r].feasible} A[r].objective;
report f[r in 1..R] = A[r].feasible;
report ys[r in 1..R] = if A[r].feasible then A[r].y[1] else -1;
"""


def _infeas_reference(need):
    out = []
    for n in need:
        r = linprog([1, 2], A_ub=[[-1, -1]], b_ub=[-n], bounds=[(0, 1)] * 2, method="highs")
        assert r.status in (0, 2)
        out.append((r.status == 0, r.fun if r.status == 0 else None, r.x if r.status == 0 else None))
    return out


@pytest.mark.parametrize("need", [[1, 3], [1.5, 0.5], [2.5, 2.1]])
def test_infeasible_aux_is_a_value_when_its_number_is_not_used(need):
    res = solve(INFEAS, need=need)
    ref = _infeas_reference(need)
    assert res.status == "optimal" and res.verification.ok
    assert res.parameters["feas"] == {(r + 1,): int(ref[r][0]) for r in range(2)}
    assert res.reports["f"] == {(r + 1,): ref[r][0] for r in range(2)}
    ub = min([10.0, 2 + 3 * int(ref[1][0])] + [1 + 4 * ref[r][1] if ref[r][0] else 7 for r in range(2)])
    want = ub + sum(ref[r][1] for r in range(2) if ref[r][0])
    assert res.objective == pytest.approx(want, abs=TOL)
    for r in range(2):
        a = res.aux[f"A[{r + 1}]"]
        assert a["feasible"] is ref[r][0]
        assert a["status"] == ("optimal" if ref[r][0] else "infeasible")
        assert res.reports["ys"][(r + 1,)] == (pytest.approx(ref[r][2][0], abs=1e-7) if ref[r][0] else -1)


def test_infeasible_aux_in_json(capsys, tmp_path):
    code, doc, err, _ = cli_json(capsys, tmp_path, INFEAS)
    assert code == 0, err
    assert doc["status"] == "optimal"
    ref = _infeas_reference([1, 3])
    assert doc["aux"]["A[2]"] == {"status": "infeasible", "feasible": False, "objective": None}
    assert doc["aux"]["A[1]"]["objective"] == pytest.approx(ref[0][1], abs=TOL)
    assert doc["reports"]["f"] == {"1": True, "2": False}
    assert doc["objective"] == pytest.approx(2 + ref[0][1], abs=TOL)


USED = """\
param R integer = 2;
param need[r in 1..R] = [1, 3];
aux A[r in 1..R] {
  var y[k in 1..2] >= 0, <= 1;
  constraint Need: y[1] + y[2] >= need[r];
  minimize y[1] + 2 * y[2];
}
param v[r in 1..R] = A[r].objective;
var x >= 0, <= 10;
maximize x + v[1];
"""


def test_infeasible_aux_number_used_in_a_param_exits_1_naming_it(tmp_path):
    assert not _infeas_reference([1, 3])[1][0]  # A[2] really is infeasible
    path = write(tmp_path, USED)
    code, out, err = cli_subprocess("solve", path, "--json")
    assert code == 1, err
    assert_located(err, path, USED, 8, 1)
    assert "auxiliary problem A[2] is infeasible" in err and "objective" in err
    doc = json.loads(out)
    assert doc["status"] == "infeasible (auxiliary problem A[2])" and doc["objective"] is None
    # the API: a SolveError (exit 1) whose result names the aux
    with pytest.raises(mechdsl.SolveError) as info:
        solve(USED)
    assert info.value.exit_code == 1 and "A[2]" in str(info.value)
    # and with data that make A[2] feasible, the same spec solves: v[1] = 1 by linprog
    res = solve(USED, need=[1, 1.5])
    assert res.objective == pytest.approx(10 + _infeas_reference([1, 1.5])[0][1], abs=TOL)


@pytest.mark.parametrize("use,line,what", [("report r = A[2].objective;", 11, "objective"),
                                           ("report r = A[two].y[1];", 11, "variable 'y'")])
def test_infeasible_aux_number_used_in_a_report_exits_1(capsys, tmp_path, use, line, what):
    text = USED.replace("param v[r in 1..R] = A[r].objective;\n", "param two = 2;\n").replace(" + v[1]", "")
    text += use + "\n"
    code, doc, err, path = cli_json(capsys, tmp_path, text)
    assert code == 1, err
    assert_located(err, path, text, line, 1)
    assert "auxiliary problem A[2] is infeasible" in err and what in err
    assert doc["status"] == "infeasible (auxiliary problem A[2])"


UNB = """\
aux U { var y >= 0; maximize y; }
aux I { var y >= 0, <= 1; constraint C: y >= 2; maximize y; }
aux G { var y >= 0, <= 1; maximize 3 * y; }
report fu = U.feasible;
report fi = I.feasible;
report g = if I.feasible then I.objective else G.objective;
"""


def test_unbounded_and_infeasible_aux_feasibility_in_an_evaluated_spec(capsys, tmp_path):
    res = solve(UNB)
    assert res.status == "evaluated"
    assert res.reports["fu"][()] is True and res.reports["fi"][()] is False
    assert res.reports["g"][()] == pytest.approx(3.0, abs=1e-9)  # max 3y over [0, 1]
    assert res.aux["U"]["status"] == "unbounded" and res.aux["I"]["status"] == "infeasible"
    # scipy agrees on both statuses
    assert linprog([-1], bounds=[(0, None)], method="highs").status == 3
    assert linprog([-1], A_ub=[[-1]], b_ub=[-2], bounds=[(0, 1)], method="highs").status == 2
    text = UNB + "report bad = U.objective;\n"
    code, doc, err, path = cli_json(capsys, tmp_path, text)
    assert code == 1, err
    assert_located(err, path, text, 7, 1)
    assert "auxiliary problem U is unbounded" in err
    assert doc["status"] == "unbounded (auxiliary problem U)"


# ------------------------------------------------------------------ misuse: located errors, exit 2
MISUSE = {
    "argmax_two_binders": ("param a = argmax{i in 1..2, j in 1..2} i * j;\n", 1, "i in",
                           "argmax{...} needs exactly one index name"),
    "argmin_two_binders": ("param b = 1;\nparam a = b + argmin{i in 1..2, j in 1..3} (i + j);\n", 2, "i in",
                           "argmin{...} needs exactly one index name"),
    "report_in_constraint": ("var x >= 0, <= 1;\nreport r = 2 * x;\nconstraint C: x <= r;\nmaximize x;\n", 3,
                             "r;", "report 'r' is evaluated after the solve"),
    "report_in_objective": ("var x[k in 1..2] >= 0, <= 1;\nreport r[k in 1..2] = 2 * x[k];\n"
                            "maximize x[1] + r[2];\n", 3, "r[2]", "report 'r' is evaluated after the solve"),
    "report_in_param": ("param a = 2;\nreport r = a + 1;\nparam b = r * 2;\n", 3, "r *",
                        "report 'r' is evaluated after the solve"),
    "report_in_filter": ("var x[k in 1..2] >= 0, <= 1;\nreport r[k in 1..2] = x[k];\n"
                         "constraint C[k in 1..2: r[k] > 0]: x[k] <= 0.5;\nmaximize x[1];\n", 3, "r[k]",
                         "report 'r' is evaluated after the solve"),
    "floor_of_variable": ("var x >= 0, <= 3.5;\nconstraint C: floor(x) <= 2;\nmaximize x;\n", 2, "floor",
                          "floor() of a decision variable is not allowed"),
    "mod_of_variable": ("var x >= 0, <= 3.5;\nmaximize x + mod(x, 2);\n", 2, "mod",
                        "mod() of a decision variable is not allowed"),
    "if_number_and_condition": ("param a = 2;\nparam b = if a > 1 then 3 else a > 0;\n", 2, "if",
                                "the branches of if-then-else must both be numbers or both be conditions"),
    "if_mix_in_constraint": ("param a = 2;\nvar x >= 0, <= 1;\nconstraint C: x <= (if a > 1 then 1 else a > 0);\n"
                             "maximize x;\n", 3, "if", "type mismatch"),
    "if_condition_on_variable": ("var x >= 0, <= 1;\nvar y >= 0, <= 1;\n"
                                 "constraint C: (if x > 0.5 then y else 2 * y) <= 1;\nmaximize x + y;\n", 3,
                                 "x > 0.5", "the condition of if-then-else cannot depend on decision variables"),
    "argmax_of_variable": ("var x[k in 1..2] >= 0, <= 1;\nconstraint C: x[argmax{k in 1..2} x[k]] <= 1;\n"
                           "maximize x[1];\n", 2, "x[k]", "cannot depend on decision variables"),
    "aux_no_such_variable": ("aux A[r in 1..2] { var y[k in 1..2] >= 0, <= 1; maximize y[1]; }\n"
                             "param p = A[1].z[1];\n", 2, "A[1]", "aux 'A' has no attribute 'z'"),
    "aux_too_many_indices": ("aux A[r in 1..2] { var y[k in 1..2] >= 0, <= 1; maximize y[1]; }\n"
                             "param p = A[1].y[1, 2];\n", 2, "A[1]", "takes 1 index(es), got 2"),
    "aux_missing_index": ("aux A[r in 1..2] { var y[k in 1..2] >= 0, <= 1; maximize y[1]; }\n"
                          "param p = A[1].y;\n", 2, "A[1]", "takes 1 index(es), got 0"),
    "aux_objective_indexed": ("aux A[r in 1..2] { var y >= 0, <= 1; maximize y; }\n"
                              "param p = A[1].objective[1];\n", 2, "A[1]", "is not indexed"),
    "aux_outside_index_set": ("aux A[r in 1..2] { var y[k in 1..2] >= 0, <= 1; maximize y[1]; }\n"
                              "param p = A[1].y[3];\n", 2, "param", "is outside the index set of variable 'y'"),
    "max_over_empty_set": ("param a = 1;\nparam m = max{k in 1..3: k > 5} k;\n", 2, "param", "empty set"),
    "argmax_over_empty_set": ("param m = argmax{k in 1..3: k > 5} k;\n", 1, "param", "empty set"),
    "mod_by_zero": ("param K integer = 3;\nparam a = sum{k in 1..K} mod(k, K - 3);\n", 2, "param",
                    "mod by zero: K - 3 = 0"),
    "forall_with_variable": ("var x[k in 1..2] >= 0, <= 1;\n"
                             "constraint C[j in 1..2: forall{k in 1..2} x[k] <= 1]: x[j] <= 1;\nmaximize x[1];\n",
                             2, "x[k] <=", "cannot depend on decision variables"),
}


@pytest.mark.parametrize("case", sorted(MISUSE))
def test_misuse_is_a_located_error(capsys, tmp_path, case):
    text, line, needle, words = MISUSE[case]
    path = write(tmp_path, text, f"{case}.mech")
    code, out, err = cli_inproc(capsys, "solve", path, "--json")
    assert code == 2, err
    assert_located(err, path, text, line, col_of(text, line, needle))
    assert words in err


def test_misuse_in_a_real_process_has_no_traceback(tmp_path):
    text, line, needle, words = MISUSE["report_in_constraint"]
    path = write(tmp_path, text)
    code, out, err = cli_subprocess("solve", path)
    assert code == 2, err
    assert_located(err, path, text, line, col_of(text, line, needle))
    assert words in err and out == ""


def test_minimize_max_cli_subprocess(tmp_path):
    path = write(tmp_path, MINMAX)
    code, out, err = cli_subprocess("solve", path, "--json")
    assert code == 0, err
    doc = json.loads(out)
    opt, xs = _minmax_reference([3, 1, 2, 5], [0, 1, -1, 2], 0.45)
    assert doc["status"] == "optimal" and doc["problem_class"] == "LP" and doc["verification"]["ok"] is True
    assert doc["objective"] == pytest.approx(opt, abs=TOL)
    x = doc["variables"]["x"]
    assert sum(x.values()) == pytest.approx(1, abs=1e-9)
    assert doc["reports"]["share"] == pytest.approx(x, abs=1e-9)

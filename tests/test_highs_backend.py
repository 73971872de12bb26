"""The HiGHS backend on hand-built compiled forms, checked against independent routes.

Independent routes: exact vertex enumeration in fractions (2-variable LP), scipy's
``linprog`` / ``milp`` (HiGHS inside scipy, a different build path), and the
Mussa-Rosen closed form of the screening QP, computed here in fractions.
"""
from __future__ import annotations

import itertools
import os
from fractions import Fraction as Fr

import numpy as np
import pytest
import scipy.sparse as sps
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from mechdsl.compilers.highs.backend import HighsSession, solve_highs
from mechdsl.compilers.standard.form import RowBlock, StandardForm

INF = np.inf


def form(sense, c, A, lo, hi, col_lo, col_hi, integer=None, Q=None, c0=0.0):
    A = sps.csr_matrix(np.asarray(A, dtype=float).reshape(-1, len(c)))
    n = len(c)
    return StandardForm(sense, np.asarray(c, float), A, np.asarray(lo, float), np.asarray(hi, float),
                        np.asarray(col_lo, float), np.asarray(col_hi, float),
                        np.zeros(n, bool) if integer is None else np.asarray(integer, bool),
                        Q=None if Q is None else sps.csc_matrix(Q), c0=c0)


def assert_certified(sol, tol=1e-9):
    assert sol.status == "optimal", sol.message
    cert = sol.certificate
    assert cert is not None
    assert cert.primal_residual <= 1e-9
    if sol.row_dual is not None:
        assert cert.dual_residual <= 1e-9
        assert cert.complementarity <= 1e-9
    assert cert.gap is not None and cert.gap <= tol, cert


# --------------------------------------------------------------------------- a 2-variable LP, by hand

def _vertex_enumeration(c, A, b, sense):
    """Optimum of ``sense c@x s.t. A x <= b`` (x in Q^2) by enumerating vertices in fractions, and the
    duals of the active rows (``c_min = A_act^T y``, the min-form convention with y <= 0 at an upper
    bound)."""
    best = None
    for i, j in itertools.combinations(range(len(A)), 2):
        (a, b1), (c2, d) = A[i], A[j]
        det = a * d - b1 * c2
        if det == 0:
            continue
        x = ((b[i] * d - b1 * b[j]) / det, (a * b[j] - b[i] * c2) / det)
        if all(r[0] * x[0] + r[1] * x[1] <= bb for r, bb in zip(A, b)):
            val = c[0] * x[0] + c[1] * x[1]
            if best is None or (val > best[0] if sense == "maximize" else val < best[0]):
                best = (val, x, (i, j))
    val, x, (i, j) = best
    sign = -1 if sense == "maximize" else 1
    cm = [sign * c[0], sign * c[1]]
    # solve [A_i A_j]^T [y_i, y_j] = c_min
    (a, b1), (c2, d) = A[i], A[j]
    det = a * d - c2 * b1
    yi = (cm[0] * d - c2 * cm[1]) / det
    yj = (a * cm[1] - b1 * cm[0]) / det
    y = [Fr(0)] * len(A)
    y[i], y[j] = yi, yj
    return val, x, y


def test_two_variable_lp_against_fractions():
    # maximise 3x + 2y  s.t.  x + y <= 4,  x + 3y <= 7,  0 <= x <= 3,  y >= 0
    c = [Fr(3), Fr(2)]
    rows = [(Fr(1), Fr(1)), (Fr(1), Fr(3))]
    bounds = [(Fr(1), Fr(0)), (Fr(-1), Fr(0)), (Fr(0), Fr(-1))]  # x <= 3, -x <= 0, -y <= 0
    b = [Fr(4), Fr(7), Fr(3), Fr(0), Fr(0)]
    val, xv, y = _vertex_enumeration(c, rows + bounds, b, "maximize")
    sol = solve_highs(form("maximize", [3, 2], [[1, 1], [1, 3]], [-INF, -INF], [4, 7], [0, 0], [3, INF]))
    assert_certified(sol)
    assert sol.objective == pytest.approx(float(val), abs=1e-12)
    assert np.allclose(sol.x, [float(v) for v in xv], atol=1e-12)
    # row duals; the column bound x <= 3 is the third "row" of the enumeration, -x <= 0 the 4th ...
    assert np.allclose(sol.row_dual, [float(y[0]), float(y[1])], atol=1e-12)
    col = [float(y[2] - y[3]), float(-y[4])]
    assert np.allclose(sol.col_dual, col, atol=1e-12)
    # the convention: an upper-bound row of a maximisation has a nonpositive dual
    assert sol.row_dual[0] < 0 and sol.col_dual[0] < 0


# --------------------------------------------------------------------------- LP against scipy linprog

def _random_lp(seed, sense):
    rng = np.random.default_rng(seed)
    m, n = 7, 9
    A = rng.integers(-3, 4, size=(m, n)).astype(float) * (rng.random((m, n)) < 0.7)
    x_feas = rng.random(n) * 2
    Ax = A @ x_feas
    lo = Ax - rng.random(m) - 0.1
    hi = Ax + rng.random(m) + 0.1
    lo[0] = -INF                     # one one-sided row each way
    hi[1] = INF
    lo[2] = hi[2] = Ax[2]            # an equality
    col_lo = np.zeros(n)
    col_hi = np.full(n, 3.0)
    col_lo[3] = -INF                 # a free-below column
    col_hi[4] = INF
    c = rng.normal(size=n)
    return form(sense, c, A, lo, hi, col_lo, col_hi, c0=1.5)


def _linprog_reference(f):
    """Optimum and duals (form.py convention) by scipy's linprog on the min form."""
    sign = -1.0 if f.sense == "maximize" else 1.0
    A = f.A.toarray()
    eq = f.row_lo == f.row_hi
    up = ~eq & np.isfinite(f.row_hi)
    dn = ~eq & np.isfinite(f.row_lo)
    A_ub = np.vstack([A[up], -A[dn]])
    b_ub = np.concatenate([f.row_hi[up], -f.row_lo[dn]])
    res = linprog(sign * f.c, A_ub=A_ub, b_ub=b_ub, A_eq=A[eq], b_eq=f.row_lo[eq],
                  bounds=list(zip([None if np.isinf(v) else v for v in f.col_lo],
                                  [None if np.isinf(v) else v for v in f.col_hi])), method="highs")
    assert res.status == 0
    y = np.zeros(f.m)
    mu = res.ineqlin.marginals
    y[np.flatnonzero(up)] += mu[: up.sum()]
    y[np.flatnonzero(dn)] -= mu[up.sum():]
    y[np.flatnonzero(eq)] += res.eqlin.marginals
    z = res.lower.marginals + res.upper.marginals
    return f.c0 + f.c @ res.x, res.x, y, z


@pytest.mark.parametrize("sense", ["minimize", "maximize"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lp_against_linprog(seed, sense):
    f = _random_lp(seed, sense)
    sol = solve_highs(f)
    assert_certified(sol)
    obj, x, y, z = _linprog_reference(f)
    assert sol.objective == pytest.approx(obj, abs=1e-9)
    assert sol.objective == pytest.approx(f.objective(sol.x), abs=0)
    assert np.allclose(sol.row_dual, y, atol=1e-8)
    assert np.allclose(sol.col_dual, z, atol=1e-8)
    assert sol.certificate.dual_bound == pytest.approx(obj, abs=1e-9)


def test_maximize_and_minimize_duals_agree_and_are_shadow_prices():
    f_max = _random_lp(3, "maximize")
    f_min = _random_lp(3, "minimize")
    f_min.c = -f_max.c
    f_min.c0 = -f_max.c0
    a, b = solve_highs(f_max), solve_highs(f_min)
    assert_certified(a)
    assert_certified(b)
    assert a.objective == pytest.approx(-b.objective, abs=1e-9)
    # same minimisation form, hence the same duals
    assert np.allclose(a.row_dual, b.row_dual, atol=1e-9) and np.allclose(a.col_dual, b.col_dual, atol=1e-9)
    # |row_dual| is the shadow price in the spec's objective: relax a binding row and re-solve
    i = int(np.argmax(np.abs(a.row_dual)))
    assert abs(a.row_dual[i]) > 1e-6
    d = 1e-4
    g = _random_lp(3, "maximize")
    if a.row_dual[i] > 0:       # at its lower bound: lowering it helps
        g.row_lo[i] -= d
        if g.row_hi[i] == f_max.row_lo[i]:
            g.row_hi[i] -= d
    else:
        g.row_hi[i] += d
        if g.row_lo[i] == f_max.row_hi[i]:
            g.row_lo[i] += d
    r = solve_highs(g)
    assert (r.objective - a.objective) / d == pytest.approx(abs(a.row_dual[i]), rel=1e-6)


def test_scaled_lp_tiny_coefficients():
    # the same LP with rows and objective multiplied by awkward small/large factors
    f = _random_lp(4, "maximize")
    ref = solve_highs(f)
    g = _random_lp(4, "maximize")
    R = np.geomspace(1e-6, 1e5, g.m)
    g.A = sps.csr_matrix(sps.diags(R) @ g.A)
    g.row_lo, g.row_hi = R * g.row_lo, R * g.row_hi
    g.c = 3e-7 * g.c
    g.c0 = 3e-7 * g.c0
    sol = solve_highs(g)
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(3e-7 * ref.objective, rel=1e-9)
    assert np.allclose(sol.row_dual * R / 3e-7, ref.row_dual, rtol=1e-6, atol=1e-9)
    assert sol.certificate.gap <= 1e-9


# --------------------------------------------------------------------------- the screening QP

def screening(K, ir=True, ic="adjacent"):
    """maximise sum_k (p_k - q_k^2/2)/K over q >= 0, p free; theta_k = k/K, probability 1/K."""
    th = np.arange(1, K + 1) / K
    pairs = [(t, r) for t in range(K) for r in (t - 1, t + 1) if 0 <= r < K] if ic == "adjacent" else \
        [(t, r) for t in range(K) for r in range(K) if r != t]
    R, C, V = [], [], []
    for i, (t, r) in enumerate(pairs):   # theta_t q_t - p_t - theta_t q_r + p_r >= 0
        R += [i] * 4
        C += [t, K + t, r, K + r]
        V += [th[t], -1.0, -th[t], 1.0]
    m = len(pairs)
    if ir:                               # theta_1 q_1 - p_1 >= 0
        R += [m, m]
        C += [0, K]
        V += [th[0], -1.0]
        m += 1
    for t in range(K - 1):               # q_{t+1} - q_t >= 0
        R += [m, m]
        C += [t + 1, t]
        V += [1.0, -1.0]
        m += 1
    A = sps.csr_matrix((V, (R, C)), shape=(m, 2 * K))
    c = np.r_[np.zeros(K), np.full(K, 1.0 / K)]
    Q = sps.diags(np.r_[np.full(K, -1.0 / K), np.zeros(K)]).tocsc()
    return StandardForm("maximize", c, A, np.zeros(m), np.full(m, INF),
                        np.r_[np.zeros(K), np.full(K, -INF)], np.full(2 * K, INF), np.zeros(2 * K, bool), Q=Q)


def screening_closed_form(K):
    """Mussa-Rosen: virtual value phi_k = theta_k - (1 - F_k)/f_k * (theta_{k+1} - theta_k) = (2k - K)/K,
    q_k = max(0, phi_k) (monotone, so no ironing), revenue minus cost = sum_k (phi_k q_k - q_k^2/2) / K."""
    total = Fr(0)
    for k in range(1, K + 1):
        phi = Fr(k, K) - Fr(K - k, K) * Fr(1, K) / Fr(1, K)
        q = max(Fr(0), phi)
        total += (phi * q - q * q / 2) / K
    return total


def test_closed_form_of_the_screening_qp():
    assert screening_closed_form(1000) == Fr(167167, 2000000)


@pytest.mark.parametrize("K", [5, 40, 1000])  # K = 3000 end to end: tests/test_certified.py
def test_screening_qp(K):
    sol = solve_highs(screening(K))
    assert sol.status == "optimal", sol.message
    assert abs(sol.objective - float(screening_closed_form(K))) <= 1e-9
    q = sol.x[:K]
    expect = np.maximum(0.0, (2 * np.arange(1, K + 1) - K) / K)
    assert np.allclose(q, expect, atol=1e-7)
    assert_certified(sol)


def test_screening_qp_full_ic_agrees():
    K = 12
    a, b = solve_highs(screening(K)), solve_highs(screening(K, ic="all"))
    assert_certified(a)
    assert_certified(b)
    assert a.objective == pytest.approx(b.objective, abs=1e-12)
    assert a.objective == pytest.approx(float(screening_closed_form(K)), abs=1e-12)


def test_unbounded_qp_without_ir():
    # without IR every p can rise together: HiGHS's QP solver calls this "optimal" at a huge point
    for K in (5, 50):
        sol = solve_highs(screening(K, ir=False))
        assert sol.status == "unbounded", sol.message
        assert sol.objective is None


# --------------------------------------------------------------------------- statuses

def test_infeasible_lp():
    sol = solve_highs(form("minimize", [1, 1], [[1, 1]], [-INF], [-1], [0, 0], [INF, INF]))
    assert sol.status == "infeasible" and sol.x is None


def test_unbounded_lp():
    sol = solve_highs(form("maximize", [1, 0], [[1, -1]], [-INF], [1], [0, 0], [INF, INF]))
    assert sol.status == "unbounded"
    sol = solve_highs(form("maximize", [1, 0], [[1, -1]], [-INF], [1], [0, 0], [INF, INF]),
                      options={"presolve": "off"})
    assert sol.status == "unbounded"


def test_infeasible_or_unbounded_is_decided():
    # a MILP with an unbounded relaxation: HiGHS says "infeasible or unbounded"
    sol = solve_highs(form("minimize", [-1, -1], [[1, -1]], [-INF], [1], [0, 0], [INF, INF], integer=[1, 0]))
    assert sol.status == "unbounded", sol.message
    # and an infeasible one with an unbounded direction
    sol = solve_highs(form("minimize", [-1, 0], [[0, 1], [0, 1]], [1, -INF], [INF, 0], [0, 0], [INF, INF],
                           integer=[1, 0]))
    assert sol.status == "infeasible", sol.message


def test_miqp_refused():
    sol = solve_highs(form("minimize", [1, 0], [[1, 1]], [1], [INF], [0, 0], [INF, INF], integer=[1, 0],
                           Q=np.eye(2)))
    assert sol.status == "error" and "MIQP" in sol.message


def test_unknown_option_named():
    with pytest.raises(ValueError, match="no_such_option"):
        solve_highs(form("minimize", [1], [[1]], [0], [1], [0], [1]), options={"no_such_option": 1})


def test_options_pass_through():
    f = _random_lp(0, "minimize")
    sol = solve_highs(f, options={"presolve": "off", "simplex_strategy": 4}, time_limit=10)
    assert_certified(sol)


def test_no_rows():
    sol = solve_highs(form("minimize", [1, -2], np.zeros((0, 2)), [], [], [0, -1], [3, 4]))
    assert_certified(sol)
    assert np.allclose(sol.x, [0, 4]) and sol.objective == pytest.approx(-8)


# --------------------------------------------------------------------------- MILP

def test_milp_against_scipy():
    rng = np.random.default_rng(7)
    m, n = 5, 10
    A = rng.integers(1, 9, size=(m, n)).astype(float)
    hi = A.sum(axis=1) / 3
    c = rng.integers(1, 20, size=n).astype(float)
    integer = np.r_[np.ones(7, bool), np.zeros(3, bool)]
    f = form("maximize", c, A, np.full(m, -INF), hi, np.zeros(n), np.r_[np.full(7, 3.0), np.full(3, 2.5)],
             integer=integer, c0=2.0)
    sol = solve_highs(f, options={"mip_rel_gap": 0.0})
    ref = milp(-c, constraints=LinearConstraint(A, -INF, hi), integrality=integer.astype(int),
               bounds=Bounds(f.col_lo, f.col_hi), options={"mip_rel_gap": 0.0})
    assert ref.status == 0
    assert sol.status == "optimal", sol.message
    assert sol.objective == pytest.approx(2.0 - ref.fun, abs=1e-9)
    assert sol.row_dual is None
    cert = sol.certificate
    assert cert.primal_residual <= 1e-9
    assert cert.dual_bound == pytest.approx(sol.objective, abs=1e-6)
    assert cert.dual_bound >= sol.objective - 1e-9        # an upper bound for a maximisation
    assert cert.gap <= 1e-9


# --------------------------------------------------------------------------- warm start with cuts

def test_add_rows_warm_start_lp():
    f = _random_lp(5, "maximize")
    full = _random_lp(5, "maximize")
    sess = HighsSession(f)
    first = sess.solve()
    assert_certified(first)
    # a cut through the current optimum's neighbourhood: sum x <= (sum x*) - 0.5
    a = np.ones((1, f.n))
    cut_hi = np.array([float(first.x.sum()) - 0.5])
    sess.add_rows(sps.csr_matrix(a), np.array([-INF]), cut_hi)
    second = sess.solve()
    full.add_rows(sps.csr_matrix(a), np.array([-INF]), cut_hi,
                  RowBlock("cut", "constraint", [()], 0))
    ref = solve_highs(full)
    assert_certified(second)
    assert_certified(ref)
    assert second.objective == pytest.approx(ref.objective, abs=1e-9)
    assert len(second.row_dual) == f.m + 1 == full.m
    assert np.allclose(second.row_dual, ref.row_dual, atol=1e-8)
    assert second.objective <= first.objective + 1e-12
    assert f.m == full.m - 1          # the session did not touch the form


def test_add_rows_cutting_plane_screening():
    """Adjacent IC plus cuts for the violated non-adjacent IC rows converges to the full model."""
    K = 15
    sess = HighsSession(screening(K))
    sol = sess.solve()
    full = solve_highs(screening(K, ic="all"))
    assert_certified(full)
    th = np.arange(1, K + 1) / K
    for _ in range(5):
        q, p = sol.x[:K], sol.x[K:]
        cuts = [(t, r) for t in range(K) for r in range(K)
                if abs(t - r) > 1 and th[t] * q[t] - p[t] < th[t] * q[r] - p[r] - 1e-9]
        if not cuts:
            break
        A = sps.lil_matrix((len(cuts), 2 * K))
        for i, (t, r) in enumerate(cuts):
            A[i, t] += th[t]
            A[i, K + t] -= 1
            A[i, r] -= th[t]
            A[i, K + r] += 1
        sess.add_rows(A.tocsr(), np.zeros(len(cuts)), np.full(len(cuts), INF))
        sol = sess.solve()
    assert_certified(sol)
    assert sol.objective == pytest.approx(full.objective, abs=1e-12)
    assert sol.objective == pytest.approx(float(screening_closed_form(K)), abs=1e-12)


def test_warm_argument_reuses_session():
    f = _random_lp(6, "minimize")
    sess = HighsSession(f)
    a = sess.solve()
    b = solve_highs(f, warm=sess)
    assert_certified(b)
    assert b.objective == pytest.approx(a.objective, abs=1e-12)
    c = solve_highs(_random_lp(6, "minimize"), warm=sess)   # same shape: lends the basis
    assert_certified(c)
    assert c.objective == pytest.approx(a.objective, abs=1e-9)


# --------------------------------------------------------------------------- output

def test_quiet_and_tee(capfd):
    f = _random_lp(0, "minimize")
    solve_highs(f)
    solve_highs(screening(5, ir=False))
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    solve_highs(f, tee=True)
    out, err = capfd.readouterr()
    assert out == ""
    assert "HiGHS" in err or "Model status" in err


def test_iteration_limit():
    sol = solve_highs(_random_lp(0, "minimize"), options={"simplex_iteration_limit": 1, "presolve": "off"})
    assert sol.status == "iteration limit", sol.message


def test_false_unbounded_is_caught(monkeypatch):
    """Unscaled, HiGHS's QP solver calls the K = 216 screening QP unbounded (curvature 1/K under its
    zero threshold); the recession check refuses that answer instead of passing it on."""
    from mechdsl.compilers.highs import backend

    monkeypatch.setattr(backend, "_pow2_inverse", lambda v: np.ones_like(v, dtype=float))
    sol = solve_highs(screening(216), options={"qp_regularization_value": 1e-7})
    assert sol.status in ("error", "optimal"), sol.message     # never "unbounded"
    if sol.status == "error":
        assert "no recession direction" in sol.message
    monkeypatch.undo()
    sol = solve_highs(screening(216))
    assert_certified(sol)
    assert abs(sol.objective - float(screening_closed_form(216))) <= 1e-9

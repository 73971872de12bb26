"""One conformance suite over every backend in ``compilers.backends.BACKENDS``.

In the style of CVXPY's ``solver_test_helpers`` and MathOptInterface's
``Test.runtests``: a set of canonical problems, each a function returning a
:class:`StandardForm` together with its answer computed *independently* here
(exact fractions for the small LPs and QPs, ``scipy.optimize.linprog`` /
``milp`` for the larger or integer ones), and one test per (problem, backend)
pair for every backend whose ``classes`` include the problem's class.  A
backend added to the table is run through every problem of its classes; it
needs an entry in :data:`TOL` (and :data:`LIMIT_OPTIONS`) first, or its tests
fail saying so.

Checked for every answer: the status; for an optimal one the objective (to the
backend's tolerance), ``objective == form.objective(x)``, primal feasibility
(and integrality) of ``x``, ``x`` itself where the optimum is unique; duals
where the backend is expected to return them (:func:`duals_expected`), against
the problem's known unique duals, and in every case against the KKT
conditions computed here in numpy: stationarity ``c_min + Q_min x = A^T y + z``
and the sign/complementarity rules of ``compilers/standard/form.py``.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from fractions import Fraction as F

import numpy as np
import pytest
import scipy.sparse as sps
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from mechdsl.compilers.backends import BACKENDS, get_backend
from mechdsl.compilers.standard.form import ColumnBlock, RowBlock, StandardForm

INF = np.inf


# =====================================================================================
# Per-backend expectations
# =====================================================================================

@dataclass(frozen=True)
class Tol:
    obj: float    #: |objective - expected| <= obj * max(1, |expected|)
    x: float      #: max |x - expected x| for an LP or MILP (unique optima only)
    x_qp: float   #: the same for a QP, whose optimum a solver locates only to ~sqrt(tolerance / curvature)
    dual: float   #: max |dual - expected dual|, and the KKT residuals (scaled by max(1, |c|))
    feas: float   #: primal feasibility of x (rows and column bounds, integrality)


#: Tolerances per backend.  A backend in BACKENDS without an entry here fails every test.
TOL = {
    "highs": Tol(obj=1e-8, x=1e-7, x_qp=1e-6, dual=1e-7, feas=1e-7),
    # x_qp: this route passes the model unscaled, and HiGHS's QP solver regularises the Hessian by
    # an absolute 1e-7, which biases x by ~1e-7 / curvature relatively: ~5e-6 in qp_screening,
    # whose curvature is 1/K (the direct backend scales the objective first and meets 1e-6).
    "pyomo-highs": Tol(obj=1e-8, x=1e-7, x_qp=2e-5, dual=1e-7, feas=1e-7),
    # IPOPT stops at tol=1e-8 on its scaled KKT error and relaxes bounds by 1e-8: a local
    # optimum (global here: every LP/QP of the suite is convex) to about six digits in the
    # objective.  x_qp: in qp_screening q_25 = 0 is degenerate (its bound is active with a zero
    # multiplier, the virtual type (2k - K)/K being 0), and an interior point approaches such a
    # point only as sqrt(mu / curvature) = sqrt(mu K): about 1e-3 at IPOPT's final barrier mu.
    "pyomo-ipopt": Tol(obj=1e-6, x=1e-5, x_qp=2e-3, dual=1e-5, feas=1e-6),
}

#: Options that make each backend stop at its iteration limit on `lp_random`.
LIMIT_OPTIONS = {
    "highs": {"presolve": "off", "simplex_iteration_limit": 0},
    "pyomo-highs": {"presolve": "off", "simplex_iteration_limit": 0},
    "pyomo-ipopt": {"max_iter": 1},
}


def duals_expected(backend: str, problem_class: str) -> bool:
    """Whether ``backend`` must return row and column duals for a problem of this class."""
    if problem_class not in ("LP", "QP"):
        return False            # no duals for a MILP from any backend
    if backend == "pyomo-ipopt":
        # Through casadi (no ``ipopt`` executable) the bridge returns no multipliers.
        return shutil.which("ipopt") is not None
    return True


def tol_for(backend: str) -> Tol:
    assert backend in TOL, f"backend {backend!r} is in BACKENDS but has no tolerances in TOL"
    return TOL[backend]


# =====================================================================================
# Exact arithmetic
# =====================================================================================

def solve_exact(M: list[list[F]], b: list[F]) -> list[F]:
    """The solution of the square nonsingular system ``M x = b`` in fractions (Gauss-Jordan)."""
    n = len(M)
    assert all(len(r) == n for r in M) and len(b) == n, "system is not square"
    T = [list(map(F, r)) + [F(bi)] for r, bi in zip(M, b)]
    for col in range(n):
        piv = next((r for r in range(col, n) if T[r][col] != 0), None)
        assert piv is not None, "singular system"
        T[col], T[piv] = T[piv], T[col]
        p = T[col][col]
        T[col] = [v / p for v in T[col]]
        for r in range(n):
            if r != col and T[r][col] != 0:
                f = T[r][col]
                T[r] = [a - f * bb for a, bb in zip(T[r], T[col])]
    return [T[r][n] for r in range(n)]


def exact_lp_vertex(sense, c, A, row_lo, row_hi, col_lo, col_hi, rows_at: dict, cols_at: dict):
    """The optimal vertex of a small LP, *proved* optimal in fractions from a claimed active set.

    ``rows_at`` / ``cols_at`` map a row / column index to ``"lo"`` or ``"hi"`` (the bound it sits
    at).  The active constraints (there must be ``n``) fix ``x``; stationarity of the minimisation
    form, ``c_min = A_act^T y + z_act``, fixes the duals.  Then ``x`` is checked feasible and the
    duals of the right signs, which is the KKT certificate: the LP optimum, and unique (primal and
    dual) when, as asserted here, every inactive constraint is strictly slack and every active one
    has a nonzero dual.  Returns ``(x, objective, row_dual, col_dual)`` in fractions.
    """
    n, m = len(c), len(A)
    act_r, act_c = sorted(rows_at), sorted(cols_at)
    assert len(act_r) + len(act_c) == n, "a vertex needs n active constraints"
    bound = lambda lo, hi, at: lo if at == "lo" else hi
    M = [list(A[i]) for i in act_r] + [[F(int(j == k)) for j in range(n)] for k in act_c]
    rhs = [bound(row_lo[i], row_hi[i], rows_at[i]) for i in act_r] + \
          [bound(col_lo[k], col_hi[k], cols_at[k]) for k in act_c]
    x = solve_exact(M, rhs)
    s = -1 if sense == "maximize" else 1
    c_min = [s * F(v) for v in c]
    # Stationarity: sum over active rows a_ij y_i + z_j (j active) = c_min_j, for every j.
    MT = [[M[r][j] for r in range(n)] for j in range(n)]
    mult = solve_exact(MT, c_min)
    y, z = [F(0)] * m, [F(0)] * n
    for r, i in enumerate(act_r):
        y[i] = mult[r]
    for r, k in enumerate(act_c):
        z[k] = mult[len(act_r) + r]
    for i in range(m):
        ax = sum(F(a) * xj for a, xj in zip(A[i], x))
        assert row_lo[i] is None or ax >= row_lo[i], f"row {i} violated below"
        assert row_hi[i] is None or ax <= row_hi[i], f"row {i} violated above"
        if i in rows_at:
            if row_lo[i] != row_hi[i]:
                assert (y[i] > 0) if rows_at[i] == "lo" else (y[i] < 0), f"dual of row {i} has the wrong sign"
        else:
            assert (row_lo[i] is None or ax > row_lo[i]) and (row_hi[i] is None or ax < row_hi[i]), \
                f"row {i} is not strictly slack: the answer would not be unique"
    for k in range(n):
        assert col_lo[k] is None or x[k] >= col_lo[k]
        assert col_hi[k] is None or x[k] <= col_hi[k]
        if k in cols_at:
            assert (z[k] > 0) if cols_at[k] == "lo" else (z[k] < 0), f"dual of column {k} has the wrong sign"
        else:
            assert (col_lo[k] is None or x[k] > col_lo[k]) and (col_hi[k] is None or x[k] < col_hi[k])
    obj = sum(F(ci) * xi for ci, xi in zip(c, x))
    return x, obj, y, z


# =====================================================================================
# Canonical problems
# =====================================================================================

@dataclass
class Case:
    form: StandardForm
    status: str
    objective: float | None = None
    x: np.ndarray | None = None          #: only when the optimum is unique
    row_dual: np.ndarray | None = None   #: only when the duals are unique
    col_dual: np.ndarray | None = None
    options: dict = field(default_factory=dict)


CASES: dict[str, tuple[str, object]] = {}


def case(problem_class: str):
    """Register a canonical problem of ``problem_class`` (its form's ``problem_class`` is checked)."""
    def deco(fn):
        CASES[fn.__name__] = (problem_class, fn)
        return fn
    return deco


def _f(v):
    return -INF if v is None else float(v)


def _g(v):
    return INF if v is None else float(v)


def make_form(sense, c, A, row_lo, row_hi, col_lo, col_hi, *, integer=None, Q=None, c0=0.0,
              columns=None, rows=None) -> StandardForm:
    """A form from dense lists (``None`` for a missing bound), with one block each unless given."""
    n = len(c)
    A = sps.csr_matrix(np.array([[float(a) for a in r] for r in A], dtype=float).reshape(len(A), n))
    m = A.shape[0]
    return StandardForm(
        sense=sense, c=np.array([float(v) for v in c]), A=A,
        row_lo=np.array([_f(v) for v in row_lo]), row_hi=np.array([_g(v) for v in row_hi]),
        col_lo=np.array([_f(v) for v in col_lo]), col_hi=np.array([_g(v) for v in col_hi]),
        integer=np.zeros(n, bool) if integer is None else np.asarray(integer, bool),
        Q=None if Q is None else sps.csc_matrix(Q), c0=float(c0),
        columns=columns if columns is not None else [ColumnBlock("x", [(j,) for j in range(n)], 0)],
        rows=rows if rows is not None else ([RowBlock("con", "constraint", [(i,) for i in range(m)], 0)] if m else []),
    )


def _floats(v):
    return np.array([float(t) for t in v])


@case("LP")
def lp_basic():
    """Wyndor Glass: max 3x + 5y s.t. x <= 4, 2y <= 12, 3x + 2y <= 18, x, y >= 0.

    Optimum (2, 6), objective 36; shadow prices (0, 3/2, 1), so in the form's convention (the
    minimisation form, rows at their upper bounds) row duals (0, -3/2, -1), column duals 0.
    """
    c = [3, 5]
    A = [[1, 0], [0, 2], [3, 2]]
    lo, hi = [None] * 3, [F(4), F(12), F(18)]
    clo, chi = [F(0), F(0)], [None, None]
    x, obj, y, z = exact_lp_vertex("maximize", c, A, lo, hi, clo, chi, {1: "hi", 2: "hi"}, {})
    assert (x, obj, y) == ([2, 6], 36, [0, F(-3, 2), -1])
    form = make_form("maximize", c, A, lo, hi, clo, chi,
                     columns=[ColumnBlock("x", [()], 0), ColumnBlock("y", [()], 1)],
                     rows=[RowBlock("plant", "constraint", [(1,), (2,), (3,)], 0)])
    return Case(form, "optimal", float(obj), _floats(x), _floats(y), _floats(z))


@case("LP")
def lp_min_equality():
    """min 2x1 + 3x2 + x3 - x4 over an equality, a >= row, a ranged row at its upper end, a column
    at its lower bound and one at its upper bound:

        x1 + x2 + x3 = 10,   x1 - x2 + x4 >= 2,   1 <= x2 + x3 <= 4,   x >= 0,  x4 <= 5.

    Optimum x = (6, 0, 4, 5), objective 11; row duals (2, 0, -1), column duals (0, 2, 0, -1).
    """
    c = [2, 3, 1, -1]
    A = [[1, 1, 1, 0], [1, -1, 0, 1], [0, 1, 1, 0]]
    lo, hi = [F(10), F(2), F(1)], [F(10), None, F(4)]
    clo, chi = [F(0)] * 4, [None, None, None, F(5)]
    x, obj, y, z = exact_lp_vertex("minimize", c, A, lo, hi, clo, chi, {0: "lo", 2: "hi"}, {1: "lo", 3: "hi"})
    assert (x, obj, y, z) == ([6, 0, 4, 5], 11, [2, 0, -1], [0, 2, 0, -1])
    form = make_form("minimize", c, A, lo, hi, clo, chi,
                     rows=[RowBlock("balance", "budget", [()], 0),
                           RowBlock("link", "constraint", [("a",), ("b",)], 1, part="lhs")])
    return Case(form, "optimal", float(obj), _floats(x), _floats(y), _floats(z))


@case("LP")
def lp_bounds_only():
    """No rows at all (m = 0): min c x over a box; x at the bound the sign of c points to, z = c."""
    c = [1.5, -2.0, 0.25, -0.5]
    clo, chi = [-1, 0, 2, -3], [1, 4, 3, 7]
    x = [lo if cj > 0 else hi for cj, lo, hi in zip(c, clo, chi)]
    obj = sum(F(cj) * xj for cj, xj in zip(c, x))
    form = make_form("minimize", c, [], [], [], clo, chi)
    return Case(form, "optimal", float(obj), _floats(x), np.zeros(0), np.array(c))


@case("LP")
def lp_infeasible():
    """x + y <= 1 and x + y >= 3 with x, y >= 0."""
    form = make_form("maximize", [1, 1], [[1, 1], [1, 1]], [None, 3], [1, None], [0, 0], [None, None])
    return Case(form, "infeasible")


@case("LP")
def lp_unbounded():
    """max x + y s.t. x - y <= 1, x, y >= 0: the ray (1, 1)."""
    form = make_form("maximize", [1, 1], [[1, -1]], [None], [1], [0, 0], [None, None])
    return Case(form, "unbounded")


def _random_lp(seed=7, m=25, n=40):
    """A feasible, bounded LP with every kind of row (<=, >=, ranged, =) and column (boxed, one-sided, free)."""
    rng = np.random.default_rng(seed)
    A = rng.integers(-4, 5, size=(m, n)).astype(float) * (rng.random((m, n)) < 0.4)
    x_feas = rng.uniform(-1, 1, n)
    ax = A @ x_feas
    kind = np.arange(m) % 4                      # 0: <=, 1: >=, 2: ranged, 3: =
    row_lo = np.where(kind == 0, -INF, ax - rng.uniform(0.1, 1, m))
    row_hi = np.where(kind == 1, INF, ax + rng.uniform(0.1, 1, m))
    row_lo[kind == 3] = row_hi[kind == 3] = ax[kind == 3]
    col_lo = np.full(n, -3.0)
    col_hi = np.full(n, 3.0)
    col_hi[::5] = INF                             # one-sided
    c = rng.normal(size=n)
    c[::5] = np.abs(c[::5]) + 0.1                 # minimising, so bounded along the open sides
    return c, A, row_lo, row_hi, col_lo, col_hi


@case("LP")
def lp_random():
    """A 25 x 40 LP with every row and column kind, against scipy.optimize.linprog (duals by KKT)."""
    c, A, row_lo, row_hi, col_lo, col_hi = _random_lp()
    ub_rows = np.isfinite(row_hi) & (row_lo != row_hi)
    lb_rows = np.isfinite(row_lo) & (row_lo != row_hi)
    eq = row_lo == row_hi
    ref = linprog(c, A_ub=np.vstack([A[ub_rows], -A[lb_rows]]), b_ub=np.concatenate([row_hi[ub_rows], -row_lo[lb_rows]]),
                  A_eq=A[eq], b_eq=row_lo[eq], bounds=list(zip(col_lo, np.where(np.isinf(col_hi), None, col_hi))),
                  method="highs")
    assert ref.status == 0
    form = StandardForm("minimize", c, sps.csr_matrix(A), row_lo, row_hi, col_lo, col_hi, np.zeros(len(c), bool),
                        columns=[ColumnBlock("x", [(j,) for j in range(len(c))], 0)],
                        rows=[RowBlock("r", "constraint", [(i,) for i in range(len(row_lo))], 0)])
    return Case(form, "optimal", float(ref.fun))


def _screening_answer(K):
    """The screening optimum in fractions: q_k = max(0, (2k - K)/K), IR of type 1 and downward IC binding."""
    theta = [F(k, K) for k in range(1, K + 1)]
    q = [max(F(0), F(2 * k - K, K)) for k in range(1, K + 1)]
    p = [theta[0] * q[0]]
    for k in range(1, K):
        p.append(p[-1] + theta[k] * (q[k] - q[k - 1]))
    obj = sum(pk - qk * qk / 2 for pk, qk in zip(p, q)) / K
    return theta, q, p, obj


@case("QP")
def qp_screening(K=50):
    """Mussa-Rosen screening with K = 50 types theta_k = k/K, uniform:

        max  sum_k (p_k - q_k^2/2) / K
        s.t. theta_t q_t - p_t >= theta_t q_r - p_r   for r = t - 1 and r = t + 1 (adjacent IC),
             theta_1 q_1 - p_1 >= 0  (IR of type 1),   q_{k+1} >= q_k,   q >= 0.

    The optimum is q_k = max(0, (2k - K)/K) (the virtual type theta_k - (1 - theta_k), clipped)
    with IR of the lowest type and the downward ICs binding; unique in (q, p).
    """
    theta, q, p, obj = _screening_answer(K)
    n = 2 * K
    Q_, P_ = (lambda k: k), (lambda k: K + k)   # 0-based type k -> column
    rows, blocks = [], []

    def block(name, kind, keys, coeffs):
        blocks.append(RowBlock(name, kind, keys, len(rows)))
        rows.extend(coeffs)

    def ic(t, r):
        a = np.zeros(n)
        a[Q_(t)] += float(theta[t]); a[P_(t)] -= 1
        a[Q_(r)] -= float(theta[t]); a[P_(r)] += 1
        return a

    block("IC", "ic", [(t + 1, t) for t in range(1, K)], [ic(t, t - 1) for t in range(1, K)])
    block("IC_up", "ic", [(t + 1, t + 2) for t in range(K - 1)], [ic(t, t + 1) for t in range(K - 1)])
    a = np.zeros(n); a[Q_(0)] = float(theta[0]); a[P_(0)] = -1
    block("IR", "ir", [()], [a])
    mono = []
    for k in range(K - 1):
        a = np.zeros(n); a[Q_(k + 1)] = 1; a[Q_(k)] = -1
        mono.append(a)
    block("mono", "monotonicity", [(k + 1,) for k in range(K - 1)], mono)
    A = sps.csr_matrix(np.array(rows))
    c = np.concatenate([np.zeros(K), np.full(K, 1.0 / K)])
    Qm = sps.diags(np.concatenate([np.full(K, -1.0 / K), np.zeros(K)])).tocsc()
    form = StandardForm("maximize", c, A, np.zeros(A.shape[0]), np.full(A.shape[0], INF),
                        np.concatenate([np.zeros(K), np.full(K, -INF)]), np.full(n, INF), np.zeros(n, bool), Q=Qm,
                        columns=[ColumnBlock("q", [(k,) for k in range(1, K + 1)], 0, "nonnegative"),
                                 ColumnBlock("p", [(k,) for k in range(1, K + 1)], K)],
                        rows=blocks)
    return Case(form, "optimal", float(obj), _floats(q + p))


@case("QP")
def qp_simplex_projection():
    """min 1/2 |x - a|^2 s.t. sum x = 1, x >= 0: the Euclidean projection onto the simplex.

    Closed form: x = max(a - tau, 0) with tau from the sorted a; duals y = -tau (the equality),
    z_i = tau - a_i where x_i = 0.
    """
    a = [F(9, 10), F(1, 2), F(-1, 5), F(7, 10), F(1, 10), F(-1), F(7, 20), F(3, 5)]
    u = sorted(a, reverse=True)
    rho = max(j for j in range(1, len(u) + 1) if u[j - 1] - (sum(u[:j]) - 1) / j > 0)
    tau = (sum(u[:rho]) - 1) / rho
    assert all(ai != tau for ai in a), "degenerate: pick another a"
    x = [max(ai - tau, F(0)) for ai in a]
    assert sum(x) == 1
    obj = sum((xi - ai) ** 2 for xi, ai in zip(x, a)) / 2
    z = [tau - ai if xi == 0 else F(0) for xi, ai in zip(x, a)]
    n = len(a)
    form = make_form("minimize", [-ai for ai in a], [[1] * n], [1], [1], [0] * n, [None] * n,
                     Q=sps.identity(n), c0=sum(ai * ai for ai in a) / 2,
                     rows=[RowBlock("simplex", "feasibility", [()], 0)])
    return Case(form, "optimal", float(obj), _floats(x), np.array([-float(tau)]), _floats(z))


def _knapsack_data(seed=3, n=18):
    rng = np.random.default_rng(seed)
    w = rng.integers(5, 40, n).astype(float)
    v = (w * rng.uniform(0.8, 1.6, n)).round(2)
    return v, w, float(np.floor(w.sum() / 2.3))


def _milp_ref(c, A, lo, hi, clo, chi, integrality, sense):
    s = -1.0 if sense == "maximize" else 1.0
    res = milp(s * np.asarray(c), constraints=LinearConstraint(A, lo, hi), bounds=Bounds(clo, chi),
               integrality=integrality, options={"mip_rel_gap": 0})
    return res


@case("MILP")
def milp_knapsack():
    """0-1 knapsack, 18 items, against scipy.optimize.milp; x compared when a no-good cut proves it unique."""
    v, w, cap = _knapsack_data()
    n = len(v)
    ref = _milp_ref(v, w[None, :], [-INF], [cap], np.zeros(n), np.ones(n), np.ones(n), "maximize")
    assert ref.status == 0
    best = np.round(ref.x)
    # Unique iff the best solution other than `best` is worse: sum_{best=1} (1 - x) + sum_{best=0} x >= 1.
    cut = np.where(best == 1, -1.0, 1.0)
    ref2 = _milp_ref(v, np.vstack([w, cut]), [-INF, 1 - best.sum()], [cap, INF], np.zeros(n), np.ones(n),
                     np.ones(n), "maximize")
    unique = ref2.status != 0 or float(v @ np.round(ref2.x)) < float(v @ best) - 1e-9
    form = make_form("maximize", v, [w], [None], [cap], [0] * n, [1] * n, integer=np.ones(n, bool),
                     columns=[ColumnBlock("take", [(f"item{j}",) for j in range(n)], 0, "binary")],
                     rows=[RowBlock("capacity", "budget", [()], 0)])
    return Case(form, "optimal", float(v @ best), best if unique else None)


@case("MILP")
def milp_integer():
    """General integers in [-3, 5] (not binary), <=, >= and = rows, min sense, against scipy.optimize.milp."""
    rng = np.random.default_rng(11)
    m, n = 7, 9
    A = rng.integers(-3, 4, size=(m, n)).astype(float)
    x_feas = rng.integers(-3, 6, n).astype(float)
    ax = A @ x_feas
    lo = np.where(np.arange(m) % 3 == 0, -INF, ax - rng.integers(0, 4, m))
    hi = np.where(np.arange(m) % 3 == 1, INF, ax + rng.integers(0, 4, m))
    lo[m - 1] = hi[m - 1] = ax[m - 1]
    c = rng.normal(size=n).round(3)
    clo, chi = np.full(n, -3.0), np.full(n, 5.0)
    ref = _milp_ref(c, A, lo, hi, clo, chi, np.ones(n), "minimize")
    assert ref.status == 0
    integer = np.ones(n, bool)
    integer[-1] = False                            # one continuous column: a mixed-integer program
    ref = _milp_ref(c, A, lo, hi, clo, chi, integer.astype(int), "minimize")
    assert ref.status == 0
    form = StandardForm("minimize", c, sps.csr_matrix(A), lo, hi, clo, chi, integer,
                        columns=[ColumnBlock("z", [(j,) for j in range(n)], 0, "integer")],
                        rows=[RowBlock("r", "constraint", [(i,) for i in range(m)], 0)])
    return Case(form, "optimal", float(ref.fun))


@case("MILP")
def milp_infeasible():
    """2 x1 + 2 x2 = 3 with x integral: LP-feasible, integer-infeasible (parity)."""
    form = make_form("minimize", [1, 1], [[2, 2]], [3], [3], [0, 0], [5, 5], integer=[True, True])
    return Case(form, "infeasible")


# =====================================================================================
# The tests
# =====================================================================================

PAIRS = [pytest.param(name, b, id=f"{name}-{b}")
         for name, (cls, _) in CASES.items() for b, info in BACKENDS.items() if cls in info.classes]


def _check_feasible(form, x, tol):
    assert x is not None and x.shape == (form.n,), "no primal point of the form's length"
    ax = form.A @ x
    scale = 1.0 + np.abs(ax)
    assert np.all(ax >= form.row_lo - tol * scale), f"row bound violated by {np.max(form.row_lo - ax):.3g}"
    assert np.all(ax <= form.row_hi + tol * scale), f"row bound violated by {np.max(ax - form.row_hi):.3g}"
    assert np.all(x >= form.col_lo - tol * (1 + np.abs(x))) and np.all(x <= form.col_hi + tol * (1 + np.abs(x)))
    integer = np.asarray(form.integer, bool)
    if integer.any():
        assert np.max(np.abs(x[integer] - np.round(x[integer]))) <= tol, "integrality violated"


def check_kkt(form, x, y, z, tol):
    """The form's dual convention, checked here: stationarity of the minimisation form and signs.

    ``c_min + Q_min x = A^T y + z``; ``y_i > 0`` only at the row's lower bound, ``< 0`` only at its
    upper bound (likewise ``z``).  For a convex problem this is the certificate of optimality.
    """
    assert y is not None and z is not None
    assert y.shape == (form.m,) and z.shape == (form.n,)
    s = -1.0 if form.sense == "maximize" else 1.0
    grad = s * form.c + (s * (form.Q @ x) if form.Q is not None and form.Q.nnz else 0.0)
    scale = max(1.0, float(np.max(np.abs(grad), initial=0.0)))
    r = grad - form.A.T @ y - z
    assert np.max(np.abs(r), initial=0.0) <= tol * scale, f"stationarity residual {np.max(np.abs(r)):.3g}"
    ax = form.A @ x
    for vals, act, lo, hi, what in ((y, ax, form.row_lo, form.row_hi, "row"), (z, x, form.col_lo, form.col_hi, "column")):
        pos, neg = vals > tol * scale, vals < -tol * scale
        assert np.all(np.abs(act[pos] - lo[pos]) <= tol * (1 + np.abs(act[pos]))), \
            f"a {what} dual is > 0 away from its lower bound"
        assert np.all(np.abs(act[neg] - hi[neg]) <= tol * (1 + np.abs(act[neg]))), \
            f"a {what} dual is < 0 away from its upper bound"


@pytest.mark.parametrize("problem, backend", PAIRS)
def test_conformance(problem, backend):
    cls, build = CASES[problem]
    tol = tol_for(backend)
    case_ = build()
    form = case_.form
    assert form.problem_class == cls, f"{problem} is registered as {cls} but its form is a {form.problem_class}"
    sol = get_backend(backend).solve(form, **({"options": case_.options} if case_.options else {}))
    assert sol.status == case_.status, f"{backend}: status {sol.status!r} ({sol.message}), expected {case_.status!r}"
    assert isinstance(sol.solver, str) and sol.solver
    if case_.status != "optimal":
        return
    _check_feasible(form, sol.x, tol.feas)
    assert sol.objective is not None
    assert abs(sol.objective - form.objective(sol.x)) <= 1e-9 * max(1.0, abs(sol.objective)), \
        "objective is not the form's objective at x"
    assert abs(sol.objective - case_.objective) <= tol.obj * max(1.0, abs(case_.objective)), \
        f"{backend}: objective {sol.objective!r}, expected {case_.objective!r}"
    if case_.x is not None:
        np.testing.assert_allclose(sol.x, case_.x, rtol=0, atol=tol.x_qp if cls == "QP" else tol.x)
    if duals_expected(backend, cls):
        assert sol.row_dual is not None and sol.col_dual is not None, f"{backend} returned no duals for a {cls}"
    if sol.row_dual is not None or sol.col_dual is not None:
        check_kkt(form, sol.x, sol.row_dual, sol.col_dual, tol.dual)
        if case_.row_dual is not None:
            np.testing.assert_allclose(sol.row_dual, case_.row_dual, rtol=0, atol=tol.dual)
        if case_.col_dual is not None:
            np.testing.assert_allclose(sol.col_dual, case_.col_dual, rtol=0, atol=tol.dual)
    if sol.certificate is not None:
        cert = sol.certificate
        assert cert.primal_residual <= tol.feas * 10
        if cls in ("LP", "QP"):
            assert cert.dual_residual <= tol.dual * 10


@pytest.mark.parametrize("backend", [b for b, info in BACKENDS.items() if "LP" in info.classes])
def test_iteration_limit(backend):
    """A backend stopped by its own iteration limit says "iteration limit", not optimal or error."""
    assert backend in LIMIT_OPTIONS, f"backend {backend!r} has no iteration-limit options in LIMIT_OPTIONS"
    form = lp_random().form
    sol = get_backend(backend).solve(form, options=LIMIT_OPTIONS[backend])
    assert sol.status == "iteration limit", f"{backend}: {sol.status} ({sol.message})"


def test_every_class_of_every_backend_is_exercised():
    """Each backend meets at least one problem of each class it claims, and each problem a backend."""
    classes = {cls for cls, _ in CASES.values()}
    for name, info in BACKENDS.items():
        missing = set(info.classes) - classes
        assert not missing, f"backend {name} claims {sorted(missing)} but the suite has no such problem"
        tol_for(name)
    for problem, (cls, _) in CASES.items():
        assert any(cls in info.classes for info in BACKENDS.values()), f"no backend solves {problem} ({cls})"


def test_backend_answers_agree_on_random_lp():
    """Every LP backend reaches the same optimum of lp_random, and the same x where HiGHS's is a vertex."""
    objs = {}
    for name, info in BACKENDS.items():
        if "LP" in info.classes:
            sol = info.solve(lp_random().form)
            assert sol.ok, (name, sol.status, sol.message)
            objs[name] = sol.objective
    ref = next(iter(objs.values()))
    worst = max(TOL[b].obj for b in objs)
    assert all(abs(v - ref) <= worst * max(1, abs(ref)) for v in objs.values()), objs


# --------------------------------------------------------------------------- the registry

def test_get_backend_unknown_lists_names():
    with pytest.raises(KeyError) as exc:
        get_backend("gurobi")
    msg = str(exc.value)
    assert "gurobi" in msg and all(name in msg for name in BACKENDS)


def test_get_backend_is_case_insensitive():
    assert get_backend("HiGHS") is BACKENDS["highs"]
    assert get_backend("Pyomo-IPOPT").classes == frozenset({"LP", "QP"})


def test_registry_import_loads_no_solver():
    code = ("import sys, mechdsl.compilers.backends as b; "
            "bad = [m for m in ('pyomo', 'highspy', 'casadi') if m in sys.modules]; "
            "assert not bad, bad; print(sorted(b.BACKENDS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "pyomo-highs" in out.stdout


# --------------------------------------------------------------------------- the Pyomo reading

def test_to_pyomo_names_blocks_like_the_spec():
    import pyomo.environ as pyo
    from pyomo.core.expr.numeric_expr import LinearExpression

    from mechdsl.compilers.pyomo.from_form import form_constraints, form_vars, to_pyomo

    form = lp_min_equality().form
    m = to_pyomo(form)
    assert isinstance(m.x, pyo.Var) and list(m.x.keys()) == [0, 1, 2, 3]
    assert m.x[3].ub == 5 and m.x[0].lb == 0 and m.x[0].ub is None
    assert isinstance(m.balance, pyo.Constraint) and not m.balance.is_indexed() and m.balance.equality
    assert list(m.link_lhs.keys()) == ["a", "b"]
    assert m.link_lhs["b"].lower == 1 and m.link_lhs["b"].upper == 4
    assert isinstance(m.link_lhs["a"].body, LinearExpression)
    assert [c is None for c in form_constraints(m)] == [False] * 3
    assert form_vars(m)[2] is m.x[2]
    (obj,) = m.component_data_objects(pyo.Objective)
    assert obj.sense == pyo.minimize

    s = qp_screening().form
    ms = to_pyomo(s)
    assert len(ms.q) == len(ms.p) == 50 and ms.q[3].lb == 0 and ms.p[3].lb is None
    assert (25, 24) in ms.IC and (1, 2) in ms.IC_up and not ms.IR.is_indexed() and 49 in ms.mono


def test_to_pyomo_domains_and_scalars():
    import pyomo.environ as pyo

    from mechdsl.compilers.pyomo.from_form import to_pyomo

    form = make_form("maximize", [1, 2, 3, 0], [[1, 1, 1, 1], [0, 0, 0, 0]], [None, None], [4, None],
                     [0, -2, 0, None], [1, 9, None, None], integer=[True, True, False, False],
                     columns=[ColumnBlock("pick", [(1, "a"), (2, "b")], 0), ColumnBlock("t", [()], 2),
                              ColumnBlock("objective", [()], 3)],
                     rows=[RowBlock("pick", "constraint", [()], 0)])   # row 1 is in no block: c[1]
    m = to_pyomo(form)
    assert m.pick[1, "a"].domain is pyo.Binary and m.pick[2, "b"].domain is pyo.Integers
    assert m.t.domain is pyo.Reals and not m.t.is_indexed()
    assert isinstance(m.pick_2, pyo.Constraint)       # the row block's name was taken by the variable
    assert isinstance(m.objective, pyo.Var) and isinstance(m.objective_2, pyo.Objective)
    assert not hasattr(m, "c") or len(m.c) == 0       # the free row is left out


def test_to_pyomo_quadratic_objective_matches_form():
    import pyomo.environ as pyo

    from mechdsl.compilers.pyomo.from_form import form_vars, to_pyomo

    rng = np.random.default_rng(0)
    B = rng.normal(size=(5, 5))
    Q = B @ B.T
    form = make_form("minimize", rng.normal(size=5), [], [], [], [None] * 5, [None] * 5, Q=Q, c0=1.25)
    m = to_pyomo(form)
    x = rng.normal(size=5)
    for vd, v in zip(form_vars(m), x):
        vd.set_value(float(v))
    (obj,) = m.component_data_objects(pyo.Objective)
    assert abs(pyo.value(obj.expr) - form.objective(x)) <= 1e-12 * max(1, abs(form.objective(x)))


def test_kkt_check_is_not_vacuous():
    """The dual check accepts the known duals and rejects them with the opposite sign convention."""
    c = lp_min_equality()
    check_kkt(c.form, c.x, c.row_dual, c.col_dual, 1e-9)
    with pytest.raises(AssertionError):
        check_kkt(c.form, c.x, -c.row_dual, -c.col_dual, 1e-6)
    b = lp_basic()
    check_kkt(b.form, b.x, b.row_dual, b.col_dual, 1e-9)
    with pytest.raises(AssertionError):      # the spec-sense shadow prices (0, 3/2, 1) are not the form's duals
        check_kkt(b.form, b.x, -b.row_dual, b.col_dual, 1e-6)


def test_ipopt_refuses_integer_columns():
    """IPOPT would relax integrality: a MILP is refused with status "error", never answered relaxed."""
    sol = get_backend("pyomo-ipopt").solve(milp_knapsack().form)
    assert sol.status == "error" and "MILP" in sol.message and sol.x is None


def test_suffix_duals_are_kept_only_when_stationary():
    """The guard on the IPOPT-executable duals (whose ASL sign convention this machine may not test):
    duals of either sign convention come back in the form's; anything else comes back as None."""
    from mechdsl.compilers.pyomo.from_form import _stationary_duals

    for c in (lp_basic(), lp_min_equality(), qp_simplex_projection()):
        y, z = _stationary_duals(c.form, c.x, c.row_dual, c.col_dual)
        np.testing.assert_allclose(y, c.row_dual)
        np.testing.assert_allclose(z, c.col_dual)
        y, z = _stationary_duals(c.form, c.x, -c.row_dual, -c.col_dual)
        np.testing.assert_allclose(y, c.row_dual)
        np.testing.assert_allclose(z, c.col_dual)
        assert _stationary_duals(c.form, c.x, c.row_dual + 0.5, c.col_dual) == (None, None)

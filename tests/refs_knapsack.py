"""Independent reference computations for the knapsack-contract tests (paper 002).

Pure Python + numpy/scipy/fractions/itertools; nothing here imports ``mechdsl``.
The model is the one restated in ``shared/models/002_knapsack_contracts.md``.

Data format (Python lists, 0-based indices; the paper and the model file are
1-based, so "level 1" of the paper is index 0 here)
------------------------------------------------------------------------------
n          number of agents (jobs), i = 0..n-1
m          number of levels per agent after padding
nlev[i]    number of real levels of agent i: levels 0..nlev[i]-1 are real,
           levels nlev[i]..m-1 are padding and are ignored everywhere
NS         number of support points per agent, k = 0..NS-1
s[i][k]    completion times of agent i, sorted strictly ascending (floats)
f[i][j][k] probability of completion time s[i][k] under level j
c[i][j]    cost of level j of agent i (c[i][0] <= c[i][1] <= ...)
v[i]       value of job i to the principal
B          time budget (default 1); a job fits iff the cumulative size <= B
mono       1  : t non-increasing in s, t[k] >= t[k+1]   (model constraint (1))
           -1 : reversed, t[k] <= t[k+1]                  (the secondary source)
           0  : no monotonicity constraint
ir         1 : include IR  E_j t - c_j >= 0;  0 : omit it.  In the data files
           and the built-in instances this key is spelled ``use_ir`` (the
           name of the spec parameter); the functions take it as ``ir``.
tmin[i][j] minimal expected transfer implementing level j of agent i
           (the min-pay LP value), None = not implementable / not a real level

Floats are converted to Fractions through their shortest decimal repr
(``Fraction(str(x))``), so 0.2 is exactly 1/5 and a pmf written in decimals
sums to exactly 1.

Contents
--------
min_pay              exact min-pay contract LP (model 1.2) by vertex enumeration
                     in rationals; returns (value, canonical optimal contract).
min_pay_scipy        the same LP with scipy/HiGHS (float or None).
ir_binds             does including IR change the min-pay value?
tmin_table           tmin[i][j] for all agents/levels.
mskc_params          w_i^j(B) = v_i Pr[s <= B] - c_i^j, mu_i^j(B) = E[min(s, B)].
ior                  IOR alpha = max t~/(v Pr[s<=1] - t~) over pairs with w > 0.
mskc                 LP (2) with scipy/HiGHS (dual simplex, vertex solution).
hull_greedy          upper-concave-hull pre-processing + greedy over hull
                     increments; exact when the inputs are Fractions.
lemma_3_2_structure  checks the Lemma 3.2 structure of an LP solution.
v_fully_adaptive     optimal adaptive policy value (exact recursion).
v_ordered_adaptive   ordered-adaptive DP of Appendix D (agents in index order).
v_non_adaptive       best fixed sequence, brute force over sequences and sizes.
v_stopping_time      best fixed sequence with optimal stopping, brute force.
monte_carlo_adaptive simulation of the fully adaptive optimal policy.
linear_contract      best linear contract t = alpha r, textbook moral hazard.
best_contract        optimal limited-liability contract, textbook moral hazard.
load_instance        reads a knapsack TOML data file into the lists above.

Policy conventions (model 1.3 / 1.4, Lemma 2.1): the cost of hiring agent i at
level j is the deterministic c'_ij = tmin[i][j] (expected transfer), paid always,
also for the job that overflows; the process stops at the first overflow; the
value v_i is collected iff the cumulative size after job i is <= B.  All policy
values are exact Fractions.
"""
from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
from scipy.optimize import linprog

TOL = 1e-9


def _frac(x):
    """Fraction from int / Fraction / float / numpy float / str (floats via str)."""
    if isinstance(x, Fraction):
        return x
    if isinstance(x, (int, np.integer)):
        return Fraction(int(x))
    if isinstance(x, (float, np.floating)):
        return Fraction(str(float(x)))
    return Fraction(x)


def _fvec(xs):
    return tuple(_frac(x) for x in xs)


# ---------------------------------------------------------------------------
# Min-pay contract LP (model 1.2)
# ---------------------------------------------------------------------------

def _constraints(f_i, c_i, nlev_i, j, mono, ir):
    """Rows (tag, a, b) meaning a . t >= b, over t in R^NS.

    IC  vs every other real level l:  (f_j - f_l) . t >= c_j - c_l
    mono 1: t[k] - t[k+1] >= 0;  mono -1: t[k+1] - t[k] >= 0
    LL:  t[k] >= 0
    IR:  f_j . t >= c_j   (if ir)
    """
    fj = _fvec(f_i[j])
    NS = len(fj)
    cj = _frac(c_i[j])
    rows = []
    for l in range(nlev_i):
        if l == j:
            continue
        fl = _fvec(f_i[l])
        rows.append((("IC", l), tuple(a - b for a, b in zip(fj, fl)), cj - _frac(c_i[l])))
    if mono not in (1, 0, -1):
        raise ValueError("mono must be 1, 0 or -1")
    for k in range(NS - 1):
        if mono == 1:
            a = [Fraction(0)] * NS
            a[k], a[k + 1] = Fraction(1), Fraction(-1)
            rows.append((("mono", k), tuple(a), Fraction(0)))
        elif mono == -1:
            a = [Fraction(0)] * NS
            a[k], a[k + 1] = Fraction(-1), Fraction(1)
            rows.append((("mono", k), tuple(a), Fraction(0)))
    for k in range(NS):
        a = [Fraction(0)] * NS
        a[k] = Fraction(1)
        rows.append((("LL", k), tuple(a), Fraction(0)))
    if ir:
        rows.append((("IR",), fj, cj))
    return fj, rows


def _solve_exact(A, b):
    """Solve the square system A t = b in Fractions; None if singular."""
    nr = len(A)
    M = [list(A[r]) + [b[r]] for r in range(nr)]
    for col in range(nr):
        piv = next((r for r in range(col, nr) if M[r][col] != 0), None)
        if piv is None:
            return None
        M[col], M[piv] = M[piv], M[col]
        p = M[col][col]
        M[col] = [x / p for x in M[col]]
        for r in range(nr):
            if r != col and M[r][col] != 0:
                fac = M[r][col]
                M[r] = [x - fac * y for x, y in zip(M[r], M[col])]
    return tuple(M[r][nr] for r in range(nr))


def _vertices(rows, NS):
    """All vertices of {t : a.t >= b for all rows} (exact)."""
    verts = set()
    for combo in itertools.combinations(range(len(rows)), NS):
        t = _solve_exact([rows[r][1] for r in combo], [rows[r][2] for r in combo])
        if t is None:
            continue
        if all(sum(a * x for a, x in zip(row[1], t)) >= row[2] for row in rows):
            verts.add(t)
    return verts


def min_pay(f_i, c_i, nlev_i, j, mono=1, ir=1):
    """Min-pay contract LP of model 1.2 for one agent, solved exactly.

    f_i[l][k]  pmf of completion time s_(k) under level l (l < nlev_i real)
    c_i[l]     level costs;  j  the target level (0-based, j < nlev_i)

        minimise    E_j[t] = sum_k f_i[j][k] t[k]
        subject to  E_j t - c_j >= E_l t - c_l   for every real l != j   (IC)
                    t[k] >= t[k+1] (mono=1) / t[k] <= t[k+1] (mono=-1)     (1)
                    t >= 0                                                 (LL)
                    E_j t - c_j >= 0                    (if ir)            (IR)

    The feasible set lies in t >= 0, so it is pointed and the (bounded, since
    E_j t >= 0) minimum is attained at a vertex.  All vertices are enumerated
    (every NS-subset of the constraints, solved by Gaussian elimination in
    Fractions, feasibility checked exactly).

    Returns (value, contract): value the exact minimum E_j t (Fraction) and the
    canonical optimal contract (tuple of Fractions): among the optimal vertices
    the one with the smallest sum(t), then lexicographically smallest.
    (None, None) when the LP is infeasible (level j not implementable).
    """
    if not 0 <= j < nlev_i:
        raise ValueError("j must be a real level")
    fj, rows = _constraints(f_i, c_i, nlev_i, j, mono, ir)
    verts = _vertices(rows, len(fj))
    if not verts:
        return None, None
    def key(t):
        return (sum(a * x for a, x in zip(fj, t)), sum(t), t)
    best = min(verts, key=key)
    return key(best)[0], best


def min_pay_scipy(f_i, c_i, nlev_i, j, mono=1, ir=1):
    """The min-pay LP of ``min_pay`` with scipy.optimize.linprog (HiGHS).

    Returns the optimal value as a float, or None if the LP is infeasible.
    """
    fj, rows = _constraints(f_i, c_i, nlev_i, j, mono, ir)
    NS = len(fj)
    A = np.array([[-float(a) for a in r[1]] for r in rows])
    b = np.array([-float(r[2]) for r in rows])
    res = linprog(np.array([float(x) for x in fj]), A_ub=A, b_ub=b,
                  bounds=[(0, None)] * NS, method="highs")
    if res.status == 2:
        return None
    if res.status != 0:
        raise RuntimeError(f"linprog failed: {res.message}")
    return float(res.fun)


def ir_binds(f_i, c_i, nlev_i, j, mono=1):
    """True iff including IR strictly raises the min-pay value (or makes the
    LP infeasible).  None if the level is not implementable even without IR."""
    v0, _ = min_pay(f_i, c_i, nlev_i, j, mono=mono, ir=0)
    v1, _ = min_pay(f_i, c_i, nlev_i, j, mono=mono, ir=1)
    if v0 is None:
        return None
    return v1 is None or v1 > v0


def tmin_table(n, nlev, f, c, mono=1, ir=1):
    """tmin[i][j] = min_pay value (Fraction) for j < nlev[i]; None if not
    implementable.  Padding levels j >= nlev[i] are None (not usable)."""
    m = max(len(f[i]) for i in range(n))
    out = []
    for i in range(n):
        row = []
        for j in range(m):
            row.append(min_pay(f[i], c[i], nlev[i], j, mono, ir)[0] if j < nlev[i] else None)
        out.append(row)
    return out


# ---------------------------------------------------------------------------
# MSKC parameters, IOR, LP (2), dominance / hull greedy (model 1.5-1.7)
# ---------------------------------------------------------------------------

def mskc_params(n, nlev, s, f, v, tmin, B=1):
    """w[i][j] = v_i Pr_j[s <= B] - tmin_ij and mu[i][j] = E_j[min(s, B)]
    (exact Fractions), None where tmin is None or j >= nlev[i]."""
    B = _frac(B)
    w, mu = [], []
    for i in range(n):
        si = _fvec(s[i])
        wi, mi = [], []
        for j in range(len(tmin[i])):
            if j >= nlev[i] or tmin[i][j] is None:
                wi.append(None)
                mi.append(None)
                continue
            p = _fvec(f[i][j])
            pr = sum(pk for pk, sk in zip(p, si) if sk <= B)
            wi.append(_frac(v[i]) * pr - _frac(tmin[i][j]))
            mi.append(sum(pk * min(sk, B) for pk, sk in zip(p, si)))
        w.append(wi)
        mu.append(mi)
    return w, mu


def ior(n, nlev, s, f, v, tmin):
    """IOR (Definition 2.6) at B = 1: max over implementable pairs with
    w = v Pr[s<=1] - t~ > 0 of t~ / w.  Returns (alpha, (i, j)) or (None, None)."""
    w, _ = mskc_params(n, nlev, s, f, v, tmin, 1)
    best, arg = None, None
    for i in range(n):
        for j in range(len(w[i])):
            if w[i][j] is not None and w[i][j] > 0:
                a = _frac(tmin[i][j]) / w[i][j]
                if best is None or a > best:
                    best, arg = a, (i, j)
    return best, arg


def mskc(w, mu, B=1):
    """LP (2):  max sum w x  s.t.  sum mu x <= 2B,  sum_j x[i][j] <= 1,  x >= 0,
    over the entries with w[i][j] not None (the null choice takes the slack).

    Solved with linprog method 'highs-ds' (dual simplex, so x is a vertex).
    Returns (value float, x) with x[i][j] float (None where w is None).
    """
    idx = [(i, j) for i in range(len(w)) for j in range(len(w[i])) if w[i][j] is not None]
    n = len(w)
    if not idx:
        return 0.0, [[None] * len(w[i]) for i in range(n)]
    cvec = np.array([-float(w[i][j]) for i, j in idx])
    A = np.zeros((1 + n, len(idx)))
    b = np.zeros(1 + n)
    for q, (i, j) in enumerate(idx):
        A[0, q] = float(mu[i][j])
        A[1 + i, q] = 1.0
    b[0] = 2 * float(B)
    b[1:] = 1.0
    res = linprog(cvec, A_ub=A, b_ub=b, bounds=[(0, None)] * len(idx), method="highs-ds")
    if res.status != 0:
        raise RuntimeError(f"linprog failed: {res.message}")
    x = [[None] * len(w[i]) for i in range(n)]
    for q, (i, j) in enumerate(idx):
        x[i][j] = float(res.x[q])
    return float(-res.fun), x


def _item_hull(wi, mi):
    """Dominance for one item.  Returns (hull, dominated):
    hull = list of choice indices j on the upper concave hull of
    {(0,0)} u {(mu_j, w_j)}, ascending in mu (the null point excluded);
    dominated = {j: 'single' | 'double'}.

    single: some other choice (or the null choice (0,0)) has w >= w_j and
            mu <= mu_j (for identical points the larger index is dropped);
    double: not single-dominated but on or below a chord between two other
            points (the surviving points have distinct mu and increasing w,
            so the remaining non-vertices of the hull are exactly these).
    """
    J = [j for j in range(len(wi)) if wi[j] is not None]
    pts = {j: (mi[j], wi[j]) for j in J}
    pts_null = dict(pts)
    pts_null["null"] = (0, 0)
    dominated = {}
    for k in J:
        mk, wk = pts[k]
        for j, (mj, wj) in pts_null.items():
            if j == k:
                continue
            if wj >= wk and mj <= mk:
                if (mj, wj) == (mk, wk) and j != "null" and j > k:
                    continue  # identical points: keep the smaller index
                dominated[k] = "single"
                break
    surv = sorted((j for j in J if j not in dominated), key=lambda j: pts[j][0])
    # upper concave hull starting at (0,0) (monotone chain); collinear points dropped
    hull = []  # entries: choice index; base point is null
    def P(j):
        return (0, 0) if j == "null" else pts[j]
    chain = ["null"]
    for j in surv:
        while len(chain) >= 2:
            (x1, y1), (x2, y2), (x3, y3) = P(chain[-2]), P(chain[-1]), P(j)
            # remove middle if it is on or below the chord from chain[-2] to j
            if (y2 - y1) * (x3 - x1) <= (y3 - y1) * (x2 - x1):
                chain.pop()
            else:
                break
        chain.append(j)
    hull = chain[1:]
    for j in surv:
        if j not in hull:
            dominated[j] = "double"
    return hull, dominated


def hull_greedy(w, mu, B=1):
    """Greedy for LP (2) over upper-concave-hull increments.

    Per item: hull h_0 = null (0,0), h_1, ..., h_r (ascending mu, strictly
    decreasing positive slopes).  All increments (item, h_{q-1} -> h_q) with
    slope dw/dmu > 0 are sorted by slope (descending; ties by item, then q)
    and taken in that order while the capacity 2B lasts, the last one
    fractionally.  Concavity keeps every item's increments in order.

    Returns (value, dominated, selection):
      dominated[i] = {j: 'single' | 'double'}
      selection[i] = {j: weight} of the positive choices of item i (the null
                     choice takes the rest); at most one item is fractional.
    Exact (Fractions) when w, mu are Fractions; B is converted with _frac.
    """
    cap = 2 * _frac(B)
    n = len(w)
    dominated, incs = {}, []
    hulls = []
    for i in range(n):
        hull, dom = _item_hull(w[i], mu[i])
        dominated[i] = dom
        hulls.append(hull)
        prev = (0, 0)
        for q, j in enumerate(hull):
            dm, dw = mu[i][j] - prev[0], w[i][j] - prev[1]
            if dw > 0:
                incs.append((Fraction(dw) / Fraction(dm) if isinstance(dw, Fraction) else dw / dm,
                             i, q, dm, dw))
            prev = (mu[i][j], w[i][j])
    incs.sort(key=lambda e: (-e[0], e[1], e[2]))
    level = [0] * n          # number of full increments taken per item
    frac_item = None
    value, used = 0, 0
    for slope, i, q, dm, dw in incs:
        if used >= cap:
            break
        if used + dm <= cap:
            used += dm
            value += dw
            level[i] = q + 1
        else:
            th = (cap - used) / dm
            value += th * dw
            used = cap
            frac_item = (i, q, th)
            break
    selection = {}
    for i in range(n):
        sel = {}
        if level[i] > 0:
            sel[hulls[i][level[i] - 1]] = 1
        if frac_item is not None and frac_item[0] == i:
            _, q, th = frac_item
            sel = {}
            if q > 0:
                sel[hulls[i][q - 1]] = 1 - th
            sel[hulls[i][q]] = th
        selection[i] = sel
    return value, dominated, selection


def selection_to_x(selection, w):
    """hull_greedy selection -> nested x[i][j] (0 for unused, None where w is None)."""
    return [[(None if w[i][j] is None else selection[i].get(j, 0)) for j in range(len(w[i]))]
            for i in range(len(w))]


def lemma_3_2_structure(x, tol=1e-7, w=None, mu=None):
    """Check the Lemma 3.2 structure of an LP (2) solution x[i][j] (None = absent).

    * every item is integral (one choice at 1, or all 0 = null) except at most one;
    * the fractional item has at most two positive weights counting the null
      slack 1 - sum_j x[i][j] as one;
    * if w and mu are given: every positive choice is a hull vertex, and the
      fractional item's two choices are adjacent on the hull (null counts as the
      hull point before the first vertex).
    Returns (ok, info) with info = {'fractional': [items], 'problems': [str]}.
    """
    problems, fractional = [], []
    for i, xi in enumerate(x):
        pos = {j: float(xv) for j, xv in enumerate(xi) if xv is not None and float(xv) > tol}
        null = 1 - sum(pos.values())
        if null < -tol:
            problems.append(f"item {i}: sum x > 1")
        parts = dict(pos)
        if null > tol:
            parts["null"] = null
        integral = len(parts) == 1 and abs(next(iter(parts.values())) - 1) <= tol
        if not integral:
            fractional.append(i)
            if len(parts) > 2:
                problems.append(f"item {i}: mixes {len(parts)} choices")
        if w is not None and mu is not None:
            hull, _ = _item_hull(w[i], mu[i])
            for j in pos:
                if j not in hull:
                    problems.append(f"item {i}: choice {j} not on the hull")
            if not integral and len(parts) == 2:
                chain = ["null"] + hull
                a, b = list(parts)
                if a in chain and b in chain and abs(chain.index(a) - chain.index(b)) != 1:
                    problems.append(f"item {i}: choices {a}, {b} not adjacent on the hull")
    if len(fractional) > 1:
        problems.append(f"{len(fractional)} fractional items {fractional}")
    return (not problems), {"fractional": fractional, "problems": problems}


# ---------------------------------------------------------------------------
# Policies (model 1.3), exact
# ---------------------------------------------------------------------------

def _prep(n, nlev, s, f, v, tmin, B):
    """Exact data: jobs[i] = list of (j, cost, [(size, prob), ...]) for the
    usable (real, implementable) levels; values; B."""
    B = _frac(B)
    jobs, vals = [], []
    for i in range(n):
        si = _fvec(s[i])
        lst = []
        for j in range(nlev[i]):
            if j < len(tmin[i]) and tmin[i][j] is not None:
                p = _fvec(f[i][j])
                lst.append((j, _frac(tmin[i][j]), [(sk, pk) for sk, pk in zip(si, p) if pk != 0]))
        jobs.append(lst)
        vals.append(_frac(v[i]))
    return jobs, vals, B


def _fully_adaptive_table(n, nlev, s, f, v, tmin, B):
    jobs, vals, B = _prep(n, nlev, s, f, v, tmin, B)
    memo = {}

    def V(used, u):
        key = (used, u)
        if key in memo:
            return memo[key][0]
        best, act = Fraction(0), None          # stop (preferred on ties)
        for i in range(n):
            if i in used:
                continue
            nxt = used | {i}
            for j, cost, dist in jobs[i]:
                val = -cost
                for sk, pk in dist:
                    if u + sk <= B:
                        val += pk * (vals[i] + V(nxt, u + sk))
                if val > best:
                    best, act = val, (i, j)
        memo[key] = (best, act)
        return best

    val = V(frozenset(), Fraction(0))
    return val, memo, jobs, vals, B


def v_fully_adaptive(n, nlev, s, f, v, tmin, B=1, detail=False):
    """Optimal fully adaptive policy (Definition 2.2), exact:

        V(S, u) = max{ 0, max_{i not in S, j usable} [ -c'_ij
                   + sum_k f_ij(s_k) 1[u + s_k <= B] (v_i + V(S+{i}, u + s_k)) ] }

    (an overflow ends the process with nothing more).  Returns the Fraction
    V(empty, 0); with detail=True returns (value, first action (i, j) or None).
    """
    val, memo, *_ = _fully_adaptive_table(n, nlev, s, f, v, tmin, B)
    if detail:
        return val, memo[(frozenset(), Fraction(0))][1]
    return val


def v_ordered_adaptive(n, nlev, s, f, v, tmin, B=1):
    """Ordered adaptive (Appendix D), agents in index order 0..n-1:

        V(r, u) = max{ V(r+1, u), max_j [ -c'_rj + sum_{k: u+s_k<=B} f_rj(s_k)(v_r + V(r+1, u+s_k)) ] },
        V(n, u) = 0.
    """
    jobs, vals, B = _prep(n, nlev, s, f, v, tmin, B)
    memo = {}

    def V(r, u):
        if r == n:
            return Fraction(0)
        if (r, u) in memo:
            return memo[(r, u)]
        best = V(r + 1, u)
        for j, cost, dist in jobs[r]:
            val = -cost + sum((pk * (vals[r] + V(r + 1, u + sk)) for sk, pk in dist if u + sk <= B),
                              Fraction(0))
            best = max(best, val)
        memo[(r, u)] = best
        return best

    return V(0, Fraction(0))


def _sequences(jobs, n):
    """All sequences of (agent, job-tuple) with distinct agents, any length."""
    for L in range(n + 1):
        for agents in itertools.permutations(range(n), L):
            for choice in itertools.product(*[jobs[i] for i in agents]):
                yield tuple(zip(agents, choice))


def _seq_value_brute(seq, vals, B):
    """Exact expected profit of running seq until the first overflow / end:
    brute force over the product of all size realisations."""
    total = Fraction(0)
    for real in itertools.product(*[dist for _, (_, _, dist) in seq]):
        prob, profit, u = Fraction(1), Fraction(0), Fraction(0)
        for (sk, pk) in real:
            prob *= pk
        for (i, (j, cost, _)), (sk, _) in zip(seq, real):
            profit -= cost
            u += sk
            if u <= B:
                profit += vals[i]
            else:
                break
        total += prob * profit
    return total


def v_non_adaptive(n, nlev, s, f, v, tmin, B=1, detail=False):
    """Best non-adaptive policy (Definition 2.3): max over all fixed sequences
    of (agent, usable level) pairs, distinct agents, any length (incl. empty),
    of the exact expected profit (brute force over size realisations).
    detail=True returns (value, best sequence as [(i, j), ...])."""
    jobs, vals, B = _prep(n, nlev, s, f, v, tmin, B)
    best, arg = Fraction(0), ()
    for seq in _sequences(jobs, n):
        val = _seq_value_brute(seq, vals, B)
        if val > best:
            best, arg = val, seq
    if detail:
        return best, [(i, jt[0]) for i, jt in arg]
    return best


def _stop_value(seq, pos, u, vals, B):
    """Optimal stopping along seq from position pos with used budget u, by
    explicit recursion over the realisation tree (continue iff value > 0)."""
    if pos == len(seq):
        return Fraction(0)
    i, (j, cost, dist) = seq[pos]
    cont = -cost
    for sk, pk in dist:
        if u + sk <= B:
            cont += pk * (vals[i] + _stop_value(seq, pos + 1, u + sk, vals, B))
    return max(Fraction(0), cont)


def v_stopping_time(n, nlev, s, f, v, tmin, B=1, detail=False):
    """Best stopping-time adaptive policy (Definition 2.4): max over all fixed
    sequences of the optimal-stopping value (the policy may stop before each next
    job knowing the realised sizes).  detail=True returns (value, sequence)."""
    jobs, vals, B = _prep(n, nlev, s, f, v, tmin, B)
    best, arg = Fraction(0), ()
    for seq in _sequences(jobs, n):
        val = _stop_value(seq, 0, Fraction(0), vals, B)
        if val > best:
            best, arg = val, seq
    if detail:
        return best, [(i, jt[0]) for i, jt in arg]
    return best


def monte_carlo_adaptive(n, nlev, s, f, v, tmin, B=1, seed=0, runs=200000, return_stderr=False):
    """Simulate the optimal fully adaptive policy (the argmax actions of the
    v_fully_adaptive recursion) with numpy's default_rng(seed); returns the mean
    profit (and its standard error if return_stderr)."""
    val, memo, jobs, vals, Bf = _fully_adaptive_table(n, nlev, s, f, v, tmin, B)
    rng = np.random.default_rng(seed)
    U = rng.random((runs, n))
    lookup = {i: {j: (cost, dist) for j, cost, dist in jobs[i]} for i in range(n)}
    cdfs = {}
    for i in range(n):
        for j, (cost, dist) in lookup[i].items():
            cdfs[(i, j)] = np.cumsum([float(pk) for _, pk in dist])
    profits = np.empty(runs)
    for r in range(runs):
        used, u, prof, step = frozenset(), Fraction(0), 0.0, 0
        while True:
            act = memo[(used, u)][1]
            if act is None:
                break
            i, j = act
            cost, dist = lookup[i][j]
            prof -= float(cost)
            k = int(np.searchsorted(cdfs[(i, j)], U[r, step], side="right"))
            k = min(k, len(dist) - 1)
            step += 1
            u = u + dist[k][0]
            if u > Bf:
                break
            prof += float(vals[i])
            used = used | {i}
        profits[r] = prof
    mean = float(profits.mean())
    if return_stderr:
        return mean, float(profits.std(ddof=1) / math.sqrt(runs))
    return mean


# ---------------------------------------------------------------------------
# Textbook moral hazard: linear vs optimal contract
# ---------------------------------------------------------------------------

def linear_contract(F, c, r):
    """Best linear contract t(s) = alpha r[s], alpha in [0, 1], exact.

    F[a][k] outcome pmfs, c[a] action costs, r[k] rewards.  With R_a = E_a[r]
    the agent picks argmax_a alpha R_a - c_a, ties broken for the principal
    (largest R_a, then smallest index); the principal gets (1 - alpha) R_a.
    On every alpha-interval with a constant agent choice the principal's
    utility decreases, so the optimum is at alpha = 0 or at a breakpoint
    alpha = (c_a - c_b)/(R_a - R_b) in [0, 1].
    Returns (utility, alpha, action) with the smallest optimal alpha.
    """
    A = len(F)
    R = [sum(_frac(p) * _frac(x) for p, x in zip(F[a], r)) for a in range(A)]
    C = [_frac(x) for x in c]
    cands = {Fraction(0), Fraction(1)}
    for a in range(A):
        for b in range(A):
            if R[a] != R[b]:
                al = (C[a] - C[b]) / (R[a] - R[b])
                if 0 <= al <= 1:
                    cands.add(al)
    best = None
    for al in sorted(cands):
        ua = [al * R[a] - C[a] for a in range(A)]
        mx = max(ua)
        act = max((a for a in range(A) if ua[a] == mx), key=lambda a: (R[a], -a))
        U = (1 - al) * R[act]
        if best is None or U > best[0]:
            best = (U, al, act)
    return best


def best_contract(F, c, r, mono=0, ir=1):
    """Optimal limited-liability contract: for every action a the min-pay LP
    (IC vs all other actions, t >= 0, IR, monotonicity per ``mono``, default
    none), principal utility E_a[r] - minpay_a.  Returns (utility, action,
    contract) of the best action (smallest index on ties)."""
    A = len(F)
    best = None
    for a in range(A):
        val, t = min_pay(F, c, A, a, mono=mono, ir=ir)
        if val is None:
            continue
        U = sum(_frac(p) * _frac(x) for p, x in zip(F[a], r)) - val
        if best is None or U > best[0]:
            best = (U, a, t)
    return best


# ---------------------------------------------------------------------------
# Data files
# ---------------------------------------------------------------------------

def load_instance(path):
    """Read a knapsack TOML data file (keys n, m, NS, B, mono, ir, nlev, s, f,
    c, v) into a dict of plain Python values."""
    import tomllib
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def partial_sums_hit_B(n, s, B=1):
    """True if some sum of sizes of distinct agents equals B exactly (the
    instances avoid this so that '<' versus '<=' does not matter)."""
    B = _frac(B)
    for L in range(1, n + 1):
        for agents in itertools.combinations(range(n), L):
            for combo in itertools.product(*[_fvec(s[i]) for i in agents]):
                if sum(combo) == B:
                    return True
    return False


# ---------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------

# K1: n = 3, m = 2, NS = 3.  Level 1 (index 1) shifts mass to small sizes.
# Agent 2's level 1 has the same pmf as level 0 at a higher cost: not implementable.
K1 = dict(
    n=3, m=2, NS=3, B=1.0, mono=1, use_ir=1, nlev=[2, 2, 2],
    s=[[0.2, 0.5, 0.9], [0.3, 0.6, 1.2], [0.15, 0.45, 0.85]],
    f=[[[0.4, 0.2, 0.4], [0.3, 0.6, 0.1]],
       [[0.2, 0.3, 0.5], [0.5, 0.4, 0.1]],
       [[0.3, 0.4, 0.3], [0.3, 0.4, 0.3]]],
    c=[[0.0, 0.1], [0.0, 0.15], [0.0, 0.05]],
    v=[1.0, 1.5, 0.8],
)

# K1F: a variant of K1 (same sizes and values) whose MSKC LP is capacity-bound at
# mono = 1: the optimum mixes agent 0's two levels (19/21 of level 0, 2/21 of
# level 1, adjacent on its hull); agent 1's level 1 is double-dominated, agent
# 2's level 1 is again not implementable.  Agent 0's level 1 min pay is
# 9/40, 6/35, 27/20 under mono = 1, 0, -1.  Strict FA > ST > NA, and here the
# ordered-adaptive value lies strictly between FA and ST (ordered and
# stopping-time are not comparable in general).  Built in only (no TOML file).
K1F = dict(
    n=3, m=2, NS=3, B=1.0, mono=1, use_ir=1, nlev=[2, 2, 2],
    s=[[0.2, 0.5, 0.9], [0.3, 0.6, 1.2], [0.15, 0.45, 0.85]],
    f=[[[0.2, 0.1, 0.7], [0.1, 0.8, 0.1]],
       [[0.3, 0.4, 0.3], [0.5, 0.2, 0.3]],
       [[0.2, 0.1, 0.7], [0.2, 0.1, 0.7]]],
    c=[[0.0, 0.15], [0.0, 0.1], [0.0, 0.05]],
    v=[1.0, 1.5, 0.8],
)

# K3: every agent single-level (nlev = 1) with a positive cost, so IR binds.
# m = 2: level 1 is padding (copy of level 0's pmf and cost), ignored.
K3 = dict(
    n=3, m=2, NS=3, B=1.0, mono=1, use_ir=1, nlev=[1, 1, 1],
    s=[[0.2, 0.5, 0.9], [0.3, 0.6, 1.2], [0.15, 0.45, 0.85]],
    f=[[[0.4, 0.2, 0.4], [0.4, 0.2, 0.4]],
       [[0.5, 0.4, 0.1], [0.5, 0.4, 0.1]],
       [[0.3, 0.4, 0.3], [0.3, 0.4, 0.3]]],
    c=[[0.3, 0.3], [0.4, 0.4], [0.2, 0.2]],
    v=[1.0, 1.5, 0.8],
)

# Textbook moral hazard: one agent, 3 actions, 3 outcomes (rewards ascending).
# Optimal contract: implement action 1 with t = (0, 1, 0), utility 3/2 -- it pays
# only for the middle outcome, so it is not monotone in the reward; the best
# reward-monotone contract earns 57/40 and the best linear one 7/5 (alpha = 1/3).
MH = dict(
    A=3, S=3,
    F=[[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.1, 0.2, 0.7]],
    c=[0.0, 0.3, 0.9],
    r=[0.0, 2.0, 3.0],
)


def _fmt(x):
    if x is None:
        return "None"
    if isinstance(x, Fraction):
        return f"{x} (= {float(x):.10g})"
    if isinstance(x, float):
        return f"{x:.10g}"
    return str(x)


def _report_knapsack(name, inst):
    n, nlev, s, f, c, v, B = (inst[k] for k in ("n", "nlev", "s", "f", "c", "v", "B"))
    print(f"===== {name} =====")
    assert not partial_sums_hit_B(n, s, B), "a partial sum equals B"
    for i in range(n):
        for j in range(nlev[i]):
            assert sum(_fvec(f[i][j])) == 1
    print("min-pay values t~_ij (mono = 1 / 0 / -1), ir = 1:")
    for i in range(n):
        for j in range(nlev[i]):
            vals = []
            for mono in (1, 0, -1):
                val, t = min_pay(f[i], c[i], nlev[i], j, mono, 1)
                sp = min_pay_scipy(f[i], c[i], nlev[i], j, mono, 1)
                assert (val is None) == (sp is None) and (val is None or abs(float(val) - sp) < 1e-7)
                vals.append(val)
                print(f"  i={i} j={j} mono={mono:2d}: {_fmt(val)}  contract="
                      f"{None if t is None else [str(x) for x in t]}  ir_binds={ir_binds(f[i], c[i], nlev[i], j, mono)}")
            if len(set(vals)) > 1:
                print(f"  --> i={i} j={j} differs across mono readings")
    for mono in (1, 0, -1):
        tmin = tmin_table(n, nlev, f, c, mono, inst.get("use_ir", inst.get("ir", 1)))
        print(f"--- mono = {mono}: tmin = {[[None if x is None else str(x) for x in row] for row in tmin]}")
        w, mu = mskc_params(n, nlev, s, f, v, tmin, B)
        print("  w  =", [[None if x is None else str(x) for x in row] for row in w])
        print("  mu =", [[None if x is None else str(x) for x in row] for row in mu])
        al, arg = ior(n, nlev, s, f, v, tmin)
        print("  IOR alpha =", _fmt(al), "at", arg)
        lpv, x = mskc(w, mu, B)
        gv, dom, sel = hull_greedy(w, mu, B)
        print("  MSKC LP (HiGHS) =", _fmt(lpv), " x =", x)
        print("  hull greedy     =", _fmt(gv), " selection =",
              {i: {j: str(q) for j, q in d.items()} for i, d in sel.items()})
        print("  dominated       =", dom)
        assert abs(lpv - float(gv)) < 1e-7
        ok, info = lemma_3_2_structure(selection_to_x(sel, w), 1e-9, w, mu)
        ok2, info2 = lemma_3_2_structure(x, 1e-7, w, mu)
        print("  Lemma 3.2 structure: greedy", ok, info, "| HiGHS", ok2, info2)
        fa, act = v_fully_adaptive(n, nlev, s, f, v, tmin, B, detail=True)
        oa = v_ordered_adaptive(n, nlev, s, f, v, tmin, B)
        na, naseq = v_non_adaptive(n, nlev, s, f, v, tmin, B, detail=True)
        st, stseq = v_stopping_time(n, nlev, s, f, v, tmin, B, detail=True)
        print("  fully adaptive  =", _fmt(fa), " first action", act)
        print("  ordered adaptive=", _fmt(oa))
        print("  stopping time   =", _fmt(st), " sequence", stseq)
        print("  non-adaptive    =", _fmt(na), " sequence", naseq)
        assert fa >= st >= na and oa <= fa and float(fa) <= lpv + 1e-9
        if mono == inst["mono"]:
            mc, se = monte_carlo_adaptive(n, nlev, s, f, v, tmin, B, return_stderr=True)
            print(f"  Monte Carlo (seed 0, 200000 runs) = {mc:.6f} +- {se:.6f}"
                  f"  (z = {(mc - float(fa)) / se:.2f})")


def _report_mh(inst):
    F, c, r = inst["F"], inst["c"], inst["r"]
    print("===== textbook moral hazard =====")
    U, al, a = linear_contract(F, c, r)
    print("best linear contract: utility", _fmt(U), " alpha", _fmt(al), " action", a)
    Ub, ab, tb = best_contract(F, c, r)
    print("optimal contract:     utility", _fmt(Ub), " action", ab, " t =", [str(x) for x in tb])
    Um, am, tm = best_contract(F, c, r, mono=-1)
    print("best reward-monotone (non-decreasing) contract: utility", _fmt(Um), " action", am,
          " t =", [str(x) for x in tm])
    for a in range(len(F)):
        val, t = min_pay(F, c, len(F), a, 0, 1)
        print(f"  action {a}: min pay {_fmt(val)} contract {None if t is None else [str(x) for x in t]}")
    assert Ub > U and Ub > Um


if __name__ == "__main__":
    import pathlib
    data = pathlib.Path(__file__).resolve().parent.parent / "specs" / "data"
    for name, inst, fn in (("K1", K1, "knapsack_K1.toml"), ("K3", K3, "knapsack_K3.toml"),
                           ("K1F", K1F, None)):
        p = data / fn if fn else None
        if p is not None and p.exists():
            d = load_instance(p)
            assert all(d[k] == inst[k] for k in inst), f"{fn} differs from the built-in {name}"
            print(f"({fn} matches the built-in instance)")
        _report_knapsack(name, inst)
    p = data / "moral_hazard.toml"
    if p.exists():
        assert load_instance(p) == MH, "moral_hazard.toml differs"
        print("(moral_hazard.toml matches the built-in instance)")
    _report_mh(MH)

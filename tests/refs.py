"""Independent reference computations for the mechdsl tests.

Pure Python + numpy/scipy; nothing here imports ``mechdsl``.  Each function
states the formula it implements and where it comes from.  Checked against the
published numbers in ``tests/test_refs.py``.

Contents
--------
pvcg                          PVCG procurement auction (Cong, Weng, Yu, Qu, Yiu,
                              AAAI 2020, "Optimal Procurement Auction for
                              Cooperative Production of Virtual Products"),
                              experiment of its Eq. 37.
pvcg_utility_under_misreport  a producer's ex-post utility when it misreports
                              (same paper, Step 3 and Proposition 1 / Eq. 9).
myerson_revenue               optimal single-item revenue, discrete i.i.d. values,
                              ironed discrete virtual values.
auction_lp                    the same optimum as a brute-force LP over ex-post
                              allocations and payments (BIC or DSIC).
vcg                           Clarke-pivot VCG on a finite outcome set.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

TOL = 1e-9

# Prior of the paper's experiment (text after Eq. 37): xbar_i ~ U[0, 5],
# gamma_i ~ U[0, 1].  The "worst point of the support" of Theorem 2 / Eq. 23 is
# therefore (min xbar_i, max gamma_i) = (0, 1).  With xmin = 0 the Theorem-2
# adjustment h_i is identically 0 (reporting capacity 0 is the same as being
# removed, Assumption 2), so in the experiment p_i = tau_i.
PAPER_XMIN = 0.0
PAPER_GMAX = 1.0


# ---------------------------------------------------------------------------
# PVCG (supply side, Section "The Procurement Auction", experiment Eq. 37)
# ---------------------------------------------------------------------------

def _pieces(xbar, gamma):
    """Merit-order cost curve C(X) = min {sum_i g_i x_i : sum x_i = X, 0<=x<=xbar}.

    Producers with equal cost are merged into one linear piece.  Returns a list
    of (g, a, b, members): on X in [a, b] the curve has slope g, and
    ``members`` are the producer indices of that cost level.
    """
    order = sorted((i for i in range(len(xbar)) if xbar[i] > 0), key=lambda i: gamma[i])
    pieces, a = [], 0.0
    for g, grp in itertools.groupby(order, key=lambda i: gamma[i]):
        grp = list(grp)
        cap = sum(xbar[i] for i in grp)
        pieces.append((float(g), a, a + cap, grp))
        a += cap
    return pieces


def _solve_total(n, xbar, gamma, theta_sum):
    """max_X  theta_sum*sqrt(n X) - C(X) over X in [0, sum xbar]; returns (S*, X*, pieces).

    S(X) is concave (sqrt concave, C convex piecewise linear).  On a piece with
    slope g the stationary point of theta_sum*sqrt(nX) - gX is
    X = n theta_sum^2 / (4 g^2) (X = +inf if g <= 0); the best point of the piece
    is that value clipped to [a, b].  The global maximum is the best of these
    candidates and X = 0.
    """
    pieces = _pieces(xbar, gamma)
    best_S, best_X = 0.0, 0.0          # X = 0 gives S = 0
    cost_at_a = 0.0
    for g, a, b, _ in pieces:
        if theta_sum > 0 and g > 0:
            X = min(max(n * theta_sum ** 2 / (4 * g * g), a), b)
        else:
            X = b if theta_sum > 0 or g < 0 else a
        S = theta_sum * math.sqrt(n * X) - (cost_at_a + g * (X - a))
        if S > best_S + 1e-15:
            best_S, best_X = S, X
        cost_at_a += g * (b - a)
    return best_S, best_X, pieces


def _allocation(X, pieces, xbar, n_prod):
    """Fill X cheapest first; within a cost level split in proportion to capacity."""
    x = [0.0] * n_prod
    for g, a, b, grp in pieces:
        if X <= a:
            break
        frac = (min(X, b) - a) / (b - a)
        for i in grp:
            x[i] = xbar[i] * frac
    return x


def social_surplus_star(n, xbar, gamma, theta):
    """S*(xbar, gamma, theta) of Eq. 5 for v(x, theta_j) = theta_j sqrt(n sum_k x_k),
    c_i = gamma_i x_i (Eq. 37).  Returns (S*, allocation x*)."""
    S, X, pieces = _solve_total(n, list(map(float, xbar)), list(map(float, gamma)),
                                float(sum(theta)))
    return S, _allocation(X, pieces, xbar, len(xbar))


def pvcg(n, xbar, gamma, theta, xmin=PAPER_XMIN, gmax=PAPER_GMAX):
    """PVCG outcome under truthful reports (paper Eqs. 5-7, Theorem 2, Eq. 37).

    Model (Eq. 37): v(x, theta_j) = theta_j * sqrt(n * sum_k x_k) with n fixed
    at the number of producers (also when one is removed), c_i = gamma_i x_i,
    0 <= x_i <= xbar_i.

    S        = S*(xbar, gamma, theta) = max_x sum_j v(x, theta_j) - sum_i gamma_i x_i  (Eq. 5)
    S_minus  = S*_{-i}: same with xbar_i = 0
    x        = efficient allocation, merit order (cheapest first), ties between
               equally costly producers split in proportion to capacity
    tau      = tau_i = S* - S*_{-i} + gamma_i x_i                          (Eq. 7)
    h        = h_i = -[S*((xmin, xbar_{-i}), (gmax, gamma_{-i}), theta) - S*_{-i}]
                                                  (proof of Theorem 2, sufficiency)
    p        = tau + h                                                     (Eq. 6)
    u        = p_i - gamma_i x_i  (= S* - S*_{-i} + h_i, Eq. 16)
    budget_surplus = sum_j v(x*, theta_j) - sum_i p_i   (>= 0 is WBB, Eq. 4)
    IR       = all u >= -1e-9 (Prop. 3);  WBB = budget_surplus >= -1e-9 (Prop. 4)

    S* is computed exactly: the problem reduces to the concave 1-D problem in
    X = sum_i x_i with the merit-order cost curve (see ``_solve_total``).
    """
    xbar = [float(v) for v in xbar]
    gamma = [float(v) for v in gamma]
    N = len(xbar)
    S, x = social_surplus_star(n, xbar, gamma, theta)
    S_minus, S_worst = [], []
    for i in range(N):
        xb = list(xbar); xb[i] = 0.0
        S_minus.append(social_surplus_star(n, xb, gamma, theta)[0])
        xb[i] = float(xmin)
        gm = list(gamma); gm[i] = float(gmax)
        S_worst.append(social_surplus_star(n, xb, gm, theta)[0])
    tau = [S - S_minus[i] + gamma[i] * x[i] for i in range(N)]
    h = [S_minus[i] - S_worst[i] for i in range(N)]     # = -[S_worst - S*_{-i}]
    p = [tau[i] + h[i] for i in range(N)]
    u = [p[i] - gamma[i] * x[i] for i in range(N)]
    value = float(sum(theta)) * math.sqrt(n * sum(x))
    budget_surplus = value - sum(p)
    return dict(S=S, S_minus=S_minus, x=x, tau=tau, h=h, p=p, u=u,
                value=value, budget_surplus=budget_surplus,
                IR=all(ui >= -TOL for ui in u), WBB=budget_surplus >= -TOL)


def pvcg_utility_under_misreport(n, i, xbar_true, gamma_true, xhat_i, ghat_i,
                                 xbar_others, gamma_others, theta,
                                 xmin=PAPER_XMIN, gmax=PAPER_GMAX, penalty=1e6):
    """Ex-post utility of producer i reporting (xhat_i, ghat_i), others truthful.

    ``xbar_others`` / ``gamma_others`` are full-length lists (entry i ignored)
    holding the others' (truthful) reports.

    Rule, as in the paper:
      * Step 2 / Eq. 5: the coordinator computes eta* from the *reports*, so
        x_i = xhat_i * eta_i* is computed with producer i's reported capacity and
        reported cost.
      * Step 3: "if it cannot contribute xhat_i * eta_i* <= xhat_i, we impose a
        high punishment on it"; proof of Proposition 1 (Eq. 9), case (1): when
        xhat_i * eta_i* > xbar_i "producer i suffers a high punishment, i.e.
        p_i is a large negative number".  The paper gives no value; here the
        utility is then -penalty (default 1e6).
      * Otherwise (case (2), including over-promises xhat_i > xbar_i whose
        accepted amount still fits, x_i <= xbar_i): the producer delivers x_i
        and u_i = p_i - c(x_i, gamma_i) with p_i = tau_i + h_i (Eq. 6),
        tau_i = S*(reports) - S*_{-i}(reports_{-i}) + ghat_i * x_i (Eq. 7, the
        cost term uses the *reported* cost) and the *true* cost gamma_i x_i
        (Eq. 9).  h_i depends only on the others' reports (Theorem-2 form), so
        it cancels in any comparison.
    Proposition 1: the truthful report (xbar_i, gamma_i) maximises this.
    """
    xb = [float(v) for v in xbar_others]; xb[i] = float(xhat_i)
    gm = [float(v) for v in gamma_others]; gm[i] = float(ghat_i)
    r = pvcg(n, xb, gm, theta, xmin, gmax)
    xi = r["x"][i]
    if xi > xbar_true + TOL:
        return -float(penalty)
    return r["p"][i] - gamma_true * xi


# ---------------------------------------------------------------------------
# Myerson optimal auction, discrete values
# ---------------------------------------------------------------------------

def ironed_virtual_values(values, pmf):
    """Discrete virtual values, raw and ironed.

    phi(v_k) = v_k - (v_{k+1} - v_k) (1 - F(v_k)) / f(v_k)  (the last term is 0
    for k = K).  Equivalently phi_k = (R(q_k) - R(q_{k+1})) / (q_k - q_{k+1}),
    the slope of the revenue curve R(q) = v q in quantile space at the points
    q_k = P(V >= v_k) (q_{K+1} = 0, R = 0 there).  Ironing (Myerson 1981; in
    the discrete form e.g. Elkind 2007, Hartline "Mechanism Design and
    Approximation" ch. 3): replace R by its concave hull on the points
    (q_k, R_k); phibar_k is the slope of the hull on [q_{k+1}, q_k].
    Returns (phi, phibar) as numpy arrays.
    """
    v = np.asarray(values, float); f = np.asarray(pmf, float)
    K = len(v)
    q = np.append(np.cumsum(f[::-1])[::-1], 0.0)        # q[k] = P(V >= v_k), q[K] = 0
    R = np.append(v * q[:K], 0.0)
    phi = (R[:K] - R[1:]) / f
    # upper concave hull of points (q, R), scanned from q = 0 upwards
    pts = list(range(K, -1, -1))
    hull = []
    for k in pts:
        while len(hull) >= 2:
            k1, k2 = hull[-2], hull[-1]
            # drop k2 if it lies on or below the chord k1 -> k
            cross = (q[k2] - q[k1]) * (R[k] - R[k1]) - (R[k2] - R[k1]) * (q[k] - q[k1])
            if cross >= 0:
                hull.pop()
            else:
                break
        hull.append(k)
    Rh = np.interp(q, [q[k] for k in hull], [R[k] for k in hull])
    phibar = (Rh[:K] - Rh[1:]) / f
    return phi, phibar


def myerson_revenue(values, pmf, n):
    """Optimal expected revenue, one item, n i.i.d. bidders, discrete values.

    Revenue = E[max(0, max_i phibar(v_i))] (Myerson 1981, discrete ironed form).
    phibar is non-decreasing in v, so max_i phibar(v_i) = phibar(max_i v_i) and
    Revenue = sum_k (F(v_k)^n - F(v_{k-1})^n) * max(0, phibar_k).
    """
    f = np.asarray(pmf, float)
    _, phibar = ironed_virtual_values(values, f)
    F = np.cumsum(f)
    Fprev = np.append(0.0, F[:-1])
    return float(np.sum((F ** n - Fprev ** n) * np.maximum(phibar, 0.0)))


def auction_lp(values, pmf, n, mode="bic"):
    """Optimal single-item revenue by brute-force LP (scipy linprog, HiGHS).

    Variables for every profile s in {0..K-1}^n and bidder i: allocation
    a_i(s) in [0, 1] with sum_i a_i(s) <= 1, payment t_i(s) free.
    Objective: max sum_s P(s) sum_i t_i(s), P(s) = prod_i pmf[s_i].
    mode "bic": interim IC  E_{s-i}[v_k a_i(k,s-i) - t_i(k,s-i)] >=
                            E_{s-i}[v_k a_i(k',s-i) - t_i(k',s-i)]  for all k, k'
                and interim IR E_{s-i}[v_k a_i(k,s-i) - t_i(k,s-i)] >= 0.
    mode "dsic": the same inequalities for every s-i (ex-post IC and ex-post IR).
    Returns the optimal expected revenue.  Size grows as K^n; meant for small n.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    if mode not in ("bic", "dsic"):
        raise ValueError("mode must be 'bic' or 'dsic'")

    v = np.asarray(values, float); f = np.asarray(pmf, float)
    K = len(v)
    profiles = list(itertools.product(range(K), repeat=n))
    pidx = {s: j for j, s in enumerate(profiles)}
    P = len(profiles)
    A = lambda s, i: (pidx[s] * n + i)                  # allocation var
    T = lambda s, i: (P * n + pidx[s] * n + i)          # payment var
    nv = 2 * P * n
    c = np.zeros(nv)
    for s in profiles:
        ps = float(np.prod(f[list(s)]))
        for i in range(n):
            c[T(s, i)] = -ps
    rows, cols, vals, b = [], [], [], []
    r = 0

    def add(terms, rhs):                                # sum coef*var <= rhs
        nonlocal r
        for col, val in terms:
            rows.append(r); cols.append(col); vals.append(val)
        b.append(rhs); r += 1

    for s in profiles:                                  # feasibility
        add([(A(s, i), 1.0) for i in range(n)], 1.0)
    others = list(itertools.product(range(K), repeat=n - 1))
    for i in range(n):
        def prof(k, o):
            return o[:i] + (k,) + o[i:]
        # dsic: one group per s_-i (weight 1); bic: one group, weights P(s_-i)
        groups = [[(o, 1.0)] for o in others] if mode == "dsic" else \
                 [[(o, float(np.prod(f[list(o)]))) for o in others]]
        for grp in groups:
            def util(k_true, k_rep, sign):   # sign * sum_w w (v_k a(k_rep) - t(k_rep))
                out = []
                for o, w in grp:
                    s = prof(k_rep, o)
                    out += [(A(s, i), sign * w * v[k_true]), (T(s, i), -sign * w)]
                return out
            for k in range(K):
                add(util(k, k, -1.0), 0.0)                          # IR
                for k2 in range(K):
                    if k2 != k:                                     # IC
                        add(util(k, k2, 1.0) + util(k, k, -1.0), 0.0)
    A_ub = coo_matrix((vals, (rows, cols)), shape=(r, nv)).tocsr()
    bounds = [(0.0, 1.0)] * (P * n) + [(None, None)] * (P * n)
    res = linprog(c, A_ub=A_ub, b_ub=np.array(b), bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(res.message)
    return float(-res.fun)


# ---------------------------------------------------------------------------
# VCG with Clarke pivot, finite outcomes
# ---------------------------------------------------------------------------

def vcg(u, u0, avail):
    """Clarke-pivot VCG on outcomes x = 0..NX-1.

    u[i][x]     agent i's value of outcome x;  u0[x] the designer's value;
    avail[i][x] = 1 if x is feasible without agent i.
    xstar  = argmax_x sum_i u[i][x] + u0[x] (lowest index on ties)
    pay[i] = max_{x: avail[i][x]} (sum_{j!=i} u[j][x] + u0[x])
             - (sum_{j!=i} u[j][xstar] + u0[xstar])        (positive = agent pays)
    surplus = sum_i pay[i] + u0[xstar]   (designer's net, >= 0 means no deficit)
    IR      = u[i][xstar] - pay[i] >= -1e-9 for all i (ex post)
    Source: Clarke (1971), Groves (1973); e.g. Nisan et al., AGT ch. 9.3.
    """
    U = np.asarray(u, float); U0 = np.asarray(u0, float); AV = np.asarray(avail)
    nA, NX = U.shape
    W = U.sum(axis=0) + U0
    xstar = int(np.argmax(W))                           # first maximum
    pay = []
    for i in range(nA):
        Wi = W - U[i]
        feas = [x for x in range(NX) if AV[i][x]]
        pay.append(float(max(Wi[x] for x in feas) - Wi[xstar]))
    utils = [float(U[i][xstar] - pay[i]) for i in range(nA)]
    return dict(xstar=xstar, pay=pay, utility=utils,
                surplus=float(sum(pay) + U0[xstar]),
                IR=all(ui >= -TOL for ui in utils))

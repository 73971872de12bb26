"""Independent reference computations for the rental-game tests (paper 003).

Pure Python + numpy/scipy/fractions; nothing here imports ``mechdsl``.  The
model is the one restated in ``shared/models/003_rental_games.md``: an
n-day rental game with i.i.d. per-day valuations, a SWAC (stagewise auction
with seller cost) at every remaining horizon h, over-time cost
C^h(0) = 0, C^h(l) = R_{h-1} - R_{h-l}, and the Bellman recursion

    R_h = max_SWAC E_v[ sum_{d<=l(v)} r(v, p_d(v)) + (R_{h-l(v)} if l(v)>=1 else R_{h-1}) ],
    R_0 = 0.

Contents
--------
uniform_threshold          Algorithm 4 (threshold mechanism, negative tradeoff
                           r = alpha v - beta p) on v ~ U[0,1], exact (Fraction).
uniform_threshold_float    the same recursion in floats (fast for H = 10**4).
uniform_fixed_rate         Algorithm 3 (optimal fixed-rate mechanism) on
                           v ~ U[0,1], reward r = alpha v + b p, exact (Fraction).
uniform_fixed_rate_float   the same in floats.
discrete_brute_force       brute force over all finite menus (revelation
                           principle) for discrete i.i.d. valuations, one LP in
                           the payments per (allocation vector, filter pattern);
                           payment = 'stagewise' | 'fixed' | 'overall'.

Exactness caveat
----------------
The exact (Fraction) versions of the uniform recursions are exact but the size
of the numbers roughly *doubles* at every horizon once the threshold / the
breakpoints are interior: theta_h = (R_{h-1} - beta)/(alpha (h-1) - 2 beta) has
the denominator of R_{h-1}, and R_h contains theta_h**2.  For alpha = beta = 1
the denominator of R_20 already has ~330 000 bits and R_24 ~5 million bits
(minutes).  The exact functions therefore refuse H > EXACT_MAX_H (20) unless the
recursion is degenerate (see the docstrings); use the ``_float`` versions for
large H.
"""
from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
from scipy.optimize import linprog

TOL = 1e-9
EXACT_MAX_H = 20


def _frac(x):
    """Fraction from an int / Fraction / float / str (floats are taken exactly)."""
    return x if isinstance(x, Fraction) else Fraction(x)


# ---------------------------------------------------------------------------
# Algorithm 4: threshold mechanism, v ~ U[0,1], r = alpha v - beta p
# ---------------------------------------------------------------------------

def _threshold_step(h, R_prev, alpha, beta, one, zero):
    """One step h >= 2 of Algorithm 4 on U[0,1]; returns (theta_h, R_h).

    Works for Fractions (one = Fraction(1)) and floats (one = 1.0).

    U[0,1]: F(v) = v, f(v) = 1, revenue virtual value phi(v) = 2v - 1.
    Eq. (14): phi_h(v) = alpha v - beta phi(v)/(h-1) = s v + beta/(h-1) with
    slope s = alpha - 2 beta/(h-1).  Ironing a linear function on U[0,1]
    (Definition 7; H(q) = int_0^q phi_h is convex iff s >= 0, and otherwise its
    convex minorant is the chord): phibar_h = phi_h if s > 0, else the constant
    E[phi_h] = alpha/2 (E[phi] = 0).
    theta_h = inf{v in [0,1]: phibar_h(v) >= R_{h-1}/(h-1)} with the conventions
    "set empty -> 1" and "holds at v = 0 -> 0".
    R_h = int_0^theta (alpha v + R_{h-1}) dv + int_theta^1 (alpha h v - beta theta) dv
        = alpha theta^2/2 + theta R_{h-1} + alpha h (1 - theta^2)/2 - beta theta (1 - theta).
    """
    c = R_prev / (h - 1)
    s = alpha - 2 * beta * one / (h - 1)
    if s > 0:
        # phibar_h(v) = s v + beta/(h-1) >= c  <=>  v >= (c - beta/(h-1))/s
        theta = (c - beta * one / (h - 1)) / s
        theta = min(max(theta, zero), one)      # > 1 means the set is empty -> 1
    else:
        theta = zero if alpha * one / 2 >= c else one
    R = (alpha * theta * theta / 2 + theta * R_prev
         + alpha * h * (one - theta * theta) / 2 - beta * theta * (one - theta))
    return theta, R


def uniform_threshold(H, alpha=1, beta=1):
    """Algorithm 4 (threshold mechanism) on v ~ U[0,1] i.i.d., r = alpha v - beta p. Exact.

    Returns dict(R=[R_0..R_H], theta=[theta_0..theta_H]) of Fractions, with
    R_0 = 0, theta_0 = theta_1 = None (horizon 1: rent 1 day for free, so
    R_1 = E[alpha v] = alpha/2).  For h >= 2 the mechanism gives 1 free day to
    v < theta_h and all h days with theta_h paid on day 1 to v >= theta_h;
    see ``_threshold_step`` for the formulas (Eq. (14), Definition 7 and the
    value formula of Section 2.8).

    alpha, beta may be ints, Fractions or floats (floats are converted exactly).
    Raises ValueError for H > EXACT_MAX_H (the exact numbers double in size at
    every horizon, see the module docstring); use ``uniform_threshold_float``.

    Check: alpha = beta = 1 gives R = [0, 1/2, 1, 3/2, 17/8, ...] and
    theta_4 = 1/2.
    """
    if H > EXACT_MAX_H:
        raise ValueError(f"exact threshold recursion limited to H <= {EXACT_MAX_H} "
                         "(Fraction sizes double per horizon); use uniform_threshold_float")
    alpha, beta = _frac(alpha), _frac(beta)
    one, zero = Fraction(1), Fraction(0)
    R, theta = [zero], [None]
    if H >= 1:
        R.append(alpha / 2); theta.append(None)
    for h in range(2, H + 1):
        t, r = _threshold_step(h, R[-1], alpha, beta, one, zero)
        R.append(r); theta.append(t)
    return dict(R=R, theta=theta)


def uniform_threshold_float(H, alpha=1.0, beta=1.0):
    """Float version of ``uniform_threshold`` (same formulas, plain loop; any H).

    Returns dict(R=[...], theta=[...]) of floats (theta_0 = theta_1 = None).
    """
    alpha, beta = float(alpha), float(beta)
    R, theta = [0.0], [None]
    if H >= 1:
        R.append(alpha / 2); theta.append(None)
    for h in range(2, H + 1):
        t, r = _threshold_step(h, R[-1], alpha, beta, 1.0, 0.0)
        R.append(float(r)); theta.append(float(t))
    return dict(R=R, theta=theta)


# ---------------------------------------------------------------------------
# Algorithm 3: optimal fixed-rate mechanism, v ~ U[0,1], r = alpha v + b p
# ---------------------------------------------------------------------------

def _uniform_ironed_reward_vv(alpha, b):
    """Ironed fixed-rate virtual value phibar^r(v) = A v + B on U[0,1].

    Proposition 6.2: phi^r(v) = r(v, phi(v)) = alpha v + b (2v - 1)
    = (alpha + 2b) v - b.  Ironed (Definition 7): itself if alpha + 2b > 0,
    otherwise the constant mean alpha/2.  Returns (A, B).
    """
    A = alpha + 2 * b
    if A > 0:
        return A, -b
    return A * 0, alpha / 2


def _expected_upper_envelope(slopes, intercepts, one, zero):
    """E_{v~U[0,1]}[ max_i (slopes[i] v + intercepts[i]) ] exactly (piecewise linear).

    Walks the upper envelope from v = 0 to v = 1: start with the line that is
    maximal at 0 (ties: the largest slope, which stays maximal just right of 0);
    the next piece is the line of larger slope with the smallest crossing point
    (ties: the largest slope).  Integrates each piece exactly.  Works with
    Fractions or floats.
    """
    n = len(slopes)
    cur = max(range(n), key=lambda i: (intercepts[i], slopes[i]))
    x, total = zero, zero
    while True:
        sc, ic = slopes[cur], intercepts[cur]
        nxt, xn = None, None
        for i in range(n):
            if slopes[i] > sc:
                xi = (ic - intercepts[i]) / (slopes[i] - sc)
                if nxt is None or xi < xn or (xi == xn and slopes[i] > slopes[nxt]):
                    nxt, xn = i, xi
        if nxt is None or xn >= one:
            return total + sc * (one - x * x) / 2 + ic * (one - x)
        xn = max(xn, x)
        total += sc * (xn * xn - x * x) / 2 + ic * (xn - x)
        cur, x = nxt, xn


def _expected_upper_envelope_np(slopes, intercepts):
    """Float/numpy version of ``_expected_upper_envelope``."""
    s = np.asarray(slopes, float); c = np.asarray(intercepts, float)
    cur = int(np.lexsort((s, c))[-1])           # max intercept, then max slope
    x, total = 0.0, 0.0
    while True:
        mask = s > s[cur]
        xn, nxt = 1.0, None
        if mask.any():
            idx = np.nonzero(mask)[0]
            xs = (c[cur] - c[idx]) / (s[idx] - s[cur])
            xmin = xs.min()
            if xmin < 1.0:
                cand = idx[xs <= xmin + 1e-15]
                nxt = int(cand[np.argmax(s[cand])])
                xn = max(float(xmin), x)
        total += s[cur] * (xn * xn - x * x) / 2 + c[cur] * (xn - x)
        if nxt is None:
            return float(total)
        cur, x = nxt, xn


def _fixed_rate_recursion(H, A, B, envelope, zero):
    R = [zero]
    for h in range(1, H + 1):
        # C^h(0) = 0, C^h(l) = R_{h-1} - R_{h-l}; line_l(v) = l (A v + B) - C^h(l)
        slopes = [l * A for l in range(h + 1)]
        intercepts = [zero] + [l * B - (R[h - 1] - R[h - l]) for l in range(1, h + 1)]
        R.append(R[h - 1] + envelope(slopes, intercepts))
    return R


def uniform_fixed_rate(H, alpha=1, b=-1):
    """Algorithm 3 (optimal fixed-rate rental mechanism) on v ~ U[0,1], r = alpha v + b p. Exact.

    b = -beta is the negative tradeoff (consumer surplus: alpha = 1, b = -1),
    b > 0 the positive tradeoff, alpha = 0, b = 1 revenue, b = 0 welfare-like.

    phibar^r = ironed alpha v + b phi(v), phi(v) = 2v - 1 (see
    ``_uniform_ironed_reward_vv``) and
        R_h = R_{h-1} + E_v[ max_{l=0..h} ( l phibar^r(v) - C^h(l) ) ],
        C^h(0) = 0, C^h(l) = R_{h-1} - R_{h-l},   R_0 = 0,
    the max of finitely many lines integrated exactly over [0,1].
    Returns the list [R_0..R_H] of Fractions.

    Consumer surplus: phibar^r = 1/2 constant, hence R_h = h/2 (every agent
    gets one free day, or equivalently all of it, at rate 0 -- ties).
    Raises ValueError for H > EXACT_MAX_H unless phibar^r is constant (then the
    numbers stay small); use ``uniform_fixed_rate_float`` otherwise.
    """
    alpha, b = _frac(alpha), _frac(b)
    A, B = _uniform_ironed_reward_vv(alpha, b)
    if H > EXACT_MAX_H and A != 0:
        raise ValueError(f"exact fixed-rate recursion limited to H <= {EXACT_MAX_H} "
                         "when phibar^r is not constant; use uniform_fixed_rate_float")
    one, zero = Fraction(1), Fraction(0)
    env = lambda s, c: _expected_upper_envelope(s, c, one, zero)
    return _fixed_rate_recursion(H, A, B, env, zero)


def uniform_fixed_rate_float(H, alpha=1.0, b=-1.0):
    """Float version of ``uniform_fixed_rate`` (numpy envelope walk; any H).

    Returns [R_0..R_H] as floats.
    """
    A, B = _uniform_ironed_reward_vv(float(alpha), float(b))
    R = np.zeros(H + 1)
    for h in range(1, H + 1):
        l = np.arange(h + 1, dtype=float)
        # C^h(l) = R_{h-1} - R_{h-l} for l >= 1 (R[h-l] for l = 0..h is R[h::-1])
        C = R[h - 1] - R[h::-1]
        C[0] = 0.0
        R[h] = R[h - 1] + _expected_upper_envelope_np(l * A, l * B - C)
    return [float(r) for r in R]


# ---------------------------------------------------------------------------
# Discrete valuations: brute force over all menus
# ---------------------------------------------------------------------------
#
# Revelation principle: a SWAC at horizon h is a menu with one option per type
# k, (l_k, P_k, f_k) = (allocation in 0..h, total payment, filter).  Type k can
# place option j iff val_k >= f_j; it must be able to place its own option and
# must weakly prefer it to every option it can place (ties to the seller).
#
# Filter patterns.  Because the types are val_0 < ... < val_{K-1}, the set of
# types that can place option j (l_j >= 1) is {m_j, ..., K-1} for a "lowest
# affordable type" m_j, and own-affordability says m_j <= j.  This set is
# produced exactly by the filters f_j in the interval
#     (val[m_j - 1], val[m_j]]          (val[-1] := -inf, f >= 0 anyway).
#
# 'stagewise': a schedule with p >= 0 realises exactly the pairs with
#   P/l <= f <= P (model 2.2).  Note: choosing f_j = val[m_j] is *not* WLOG --
#   raising f inside the interval relaxes P <= l f but tightens P >= f.  The
#   correct projection onto P is the union over f in (val[m_j-1], val[m_j]] of
#   [f, l_j f], i.e.
#       val[m_j - 1] < P_j <= l_j val[m_j]      (m_j >= 1),
#       0 <= P_j <= l_j val[0]                 (m_j = 0, f in [0, val_0]).
#   A feasible filter for a given P_j is f_j = min(P_j, val[m_j]).  E.g. with
#   values 1,2,3 an option (l=2, P=2.5, f=2.5) -- 2.5 upfront, 0 on day 2 -- is
#   placeable by the type 3 only; f = val[m] = 3 would force P >= 3.  Under
#   consumer surplus (b < 0) this matters: threshold payments sit just above
#   the valuation of the highest excluded type.
# 'fixed': f_j = P_j / l_j, so the pattern means
#       l_j val[m_j - 1] < P_j <= l_j val[m_j]  (m_j >= 1),  0 <= P_j <= l_j val[0].
# 'overall': no filter; IR l_k val_k - P_k >= 0, P_k >= 0 (payments p >= 0, model
#   2.2 -- otherwise a subsidising menu would be unbounded under b < 0), IC over
#   all pairs.
#
# Strict bounds and delta.  The strict lower bound "f_j > val[m_j - 1]" makes the
# optimum a supremum that may only be approached.  With delta = 0 we solve the
# LP with the closed bound (P_j >= val[m_j-1], resp. l_j val[m_j-1]); this is the
# supremum over the true (strict) set whenever that set is non-empty (for a
# convex set {Ax <= b, Cx < d} != {} the closure is {Ax <= b, Cx <= d}).  So each
# candidate that improves the incumbent is also checked for strict feasibility
# (maximise a common slack t on the strict rows); if the strict set is empty the
# pattern is not realisable and is skipped (its closure is then another
# pattern, enumerated separately with its own IC rows).
# With delta > 0 a type is excluded only with margin: type k can NOT place j
# when f_j >= val_k + delta, i.e. the strict bound becomes
# f_j >= val[m_j - 1] + delta, non-strict and attained.
#
# l_k = 0 options are (0, 0, f = 0), placeable by everybody; they give utility 0
# which no type strictly prefers to an affordable own option (v >= f >= P/l), so
# they impose no IC rows on the other types.
#
# Pruning: candidates (l, m) are sorted by an upper bound that replaces the LP
# part sum_k q_k b P_k by its box maximum; once the bound is <= incumbent + 1e-12
# the remaining ones are skipped.

_PAYMENTS = ("stagewise", "fixed", "overall")


def _box(l_k, m_k, val, payment, delta):
    """(lo, hi, strict) for P_k given allocation l_k >= 1 and pattern m_k."""
    if payment == "overall":
        return 0.0, l_k * val[m_k], False      # m_k = k here: IR
    scale = 1.0 if payment == "stagewise" else float(l_k)
    if m_k == 0:
        return 0.0, l_k * val[0], False
    lo = scale * (val[m_k - 1] + delta)
    return lo, l_k * val[m_k], delta == 0


def _solve_pattern(l, m, val, q, b, payment, delta, slack_check=False):
    """LP in P for allocation vector l and pattern m.

    Returns (value of sum_k q_k b P_k, P list) or None if infeasible; with
    slack_check=True returns the best common slack t on the strict rows instead.
    """
    K = len(val)
    var = [k for k in range(K) if l[k] >= 1]
    pos = {k: i for i, k in enumerate(var)}
    n = len(var)
    boxes = {k: _box(l[k], m[k], val, payment, delta) for k in var}
    strict = [k for k in var if boxes[k][2]]
    nv = n + (1 if slack_check else 0)
    A, rhs = [], []
    for k in range(K):
        for j in range(K):
            if j == k:
                continue
            affordable = (payment == "overall" or l[j] == 0 or m[j] <= k)
            if not affordable:
                continue
            # l_k v_k - P_k >= l_j v_k - P_j  <=>  P_k - P_j <= (l_k - l_j) v_k
            row = [0.0] * nv
            if l[k] >= 1:
                row[pos[k]] += 1.0
            if l[j] >= 1:
                row[pos[j]] -= 1.0
            r = (l[k] - l[j]) * val[k]
            if not any(row):
                if r < -TOL:
                    return None
                continue
            A.append(row); rhs.append(r)
    bounds = [(boxes[k][0], boxes[k][1]) for k in var]
    if any(lo > hi + TOL for lo, hi in bounds):
        return None
    if slack_check:
        for k in strict:                         # P_k >= lo_k + t
            row = [0.0] * nv
            row[pos[k]] = -1.0; row[n] = 1.0
            A.append(row); rhs.append(-boxes[k][0])
        bounds = bounds + [(None, 1.0)]
        cost = [0.0] * n + [-1.0]
    else:
        cost = [-q[k] * b for k in var]
    if nv == 0:
        return (0.0, [0.0] * K) if not slack_check else 1.0
    res = linprog(cost, A_ub=A if A else None, b_ub=rhs if rhs else None,
                  bounds=bounds, method="highs")
    if res.status != 0:
        return None
    if slack_check:
        return -res.fun
    P = [0.0] * K
    for k in var:
        P[k] = float(res.x[pos[k]]) + 0.0      # no -0.0
    return float(-res.fun), P


def discrete_brute_force(val, q, H, alpha, b, payment="stagewise", delta=0):
    """Optimal rental mechanism for discrete i.i.d. valuations, by brute force.

    Types val[0] < val[1] < ... with pmf q, i.i.d. over days; reward per rented
    day r(v, p) = alpha v + b p, so a type with allocation l and total payment P
    yields alpha l v + b P.  Backward induction, R_0 = 0,
        R_h = max_menu sum_k q_k [alpha l_k val_k + b P_k
                                  + (R_{h-l_k} if l_k >= 1 else R_{h-1})].
    The max runs over *all* allocation vectors l in {0..h}^K (monotone or not)
    and all filter patterns m (m_j = lowest type able to place option j,
    m_j <= j), with one scipy LP in the payments each; see the block comment
    above for the constraint sets of payment = 'stagewise' (general stagewise
    IR), 'fixed' (fixed rates, f = P/l) and 'overall' (overall IR only), for
    the supremum semantics at delta = 0 and for the margin delta > 0.

    Returns dict(
        R      = [R_0..R_H] floats,
        menus  = [None, menu_1, .., menu_H], menu_h = [(l_k, P_k, f_k) for each type k],
                 f_k = min(P_k, val[m_k]) ('stagewise'), P_k/l_k ('fixed'),
                 None ('overall'); (0, 0.0, 0.0) for l_k = 0 (no filter),
        lowest = [None, m_1, .., m_H] the filter patterns (lowest type able to
                 place each option; 0 for l_k = 0 and for 'overall')).
    At delta = 0 a reported P_k may sit at the closed end val[m_k - 1]
    (resp. l_k val[m_k - 1]): the value is then a supremum, approached by
    P_k slightly above it.
    Intended for small instances (K <= 3, H <= 4).
    """
    if payment not in _PAYMENTS:
        raise ValueError(f"payment must be one of {_PAYMENTS}")
    val = [float(v) for v in val]; q = [float(x) for x in q]
    alpha, b, delta = float(alpha), float(b), float(delta)
    K = len(val)
    if any(val[i] >= val[i + 1] for i in range(K - 1)):
        raise ValueError("val must be strictly increasing")
    R, menus, lowest = [0.0], [None], [None]
    for h in range(1, H + 1):
        cand = []
        for l in itertools.product(range(h + 1), repeat=K):
            base = sum(q[k] * (alpha * l[k] * val[k] + (R[h - l[k]] if l[k] >= 1 else R[h - 1]))
                       for k in range(K))
            if payment == "overall":
                pats = [tuple(k if l[k] >= 1 else 0 for k in range(K))]
            else:
                pats = itertools.product(*[range(j + 1) if l[j] >= 1 else (0,) for j in range(K)])
            for m in pats:
                ub = base
                for k in range(K):
                    if l[k] >= 1:
                        lo, hi, _ = _box(l[k], m[k], val, payment, delta)
                        ub += q[k] * max(b * lo, b * hi)
                cand.append((ub, l, m, base))
        cand.sort(key=lambda c: -c[0])
        best, best_l, best_m, best_P = -np.inf, None, None, None
        for ub, l, m, base in cand:
            if ub <= best + 1e-12:
                break
            sol = _solve_pattern(l, m, val, q, b, payment, delta)
            if sol is None:
                continue
            v = base + sol[0]
            if v > best + 1e-12:
                if delta == 0 and payment != "overall" and any(
                        l[k] >= 1 and m[k] >= 1 for k in range(K)):
                    t = _solve_pattern(l, m, val, q, b, payment, delta, slack_check=True)
                    if t is None or t <= TOL:
                        continue                 # strict pattern not realisable
                best, best_l, best_m, best_P = v, l, m, sol[1]
        menu = []
        for k in range(K):
            lk, Pk = best_l[k], best_P[k]
            if lk == 0:
                menu.append((0, 0.0, 0.0))
            elif payment == "stagewise":
                menu.append((lk, Pk, min(Pk, val[best_m[k]])))
            elif payment == "fixed":
                menu.append((lk, Pk, Pk / lk))
            else:
                menu.append((lk, Pk, None))
        R.append(float(best)); menus.append(menu); lowest.append(list(best_m))
    return dict(R=R, menus=menus, lowest=lowest)


# ---------------------------------------------------------------------------

if __name__ == "__main__":
    import time

    t0 = time.time()
    th = uniform_threshold(4)
    assert th["R"][4] == Fraction(17, 8) and th["theta"][4] == Fraction(1, 2), th
    print("uniform_threshold(4):", [str(r) for r in th["R"]], "theta:",
          [None if t is None else str(t) for t in th["theta"]])
    fr = uniform_fixed_rate(10)
    assert fr == [Fraction(h, 2) for h in range(11)], fr
    print("uniform_fixed_rate(10) consumer surplus:", [str(r) for r in fr])

    val, q, H = [1, 2, 3], [0.3, 0.4, 0.3], 4
    rewards = {"consumer surplus": (1, -1), "revenue": (0, 1), "welfare": (1, 0)}
    for name, (a, bb) in rewards.items():
        res = {p: discrete_brute_force(val, q, H, a, bb, payment=p) for p in _PAYMENTS}
        print(f"\n{name} (alpha={a}, b={bb}):")
        for p in _PAYMENTS:
            print(f"  {p:10s} R =", [round(r, 6) for r in res[p]["R"]])
        for h in range(1, H + 1):
            print(f"    h={h} stagewise menu", [(l, round(P, 4), f if f is None else round(f, 4))
                                               for l, P, f in res["stagewise"]["menus"][h]],
                  " fixed menu", [(l, round(P, 4)) for l, P, _ in res["fixed"]["menus"][h]])
        S, Fx, O = (res[p]["R"] for p in _PAYMENTS)
        # fixed-rate menus are feasible for both other kinds; overall IR is NOT a
        # relaxation of stagewise IR (the filter removes IC rows), so S vs O is open.
        assert all(Fx[h] <= S[h] + 1e-7 and Fx[h] <= O[h] + 1e-7 for h in range(H + 1))
        print("  overall == fixed (Lemma B.4):", all(abs(O[h] - Fx[h]) < 1e-7 for h in range(H + 1)))
        if name != "consumer surplus":
            print("  stagewise == fixed:", all(abs(S[h] - Fx[h]) < 1e-7 for h in range(H + 1)))
        else:
            gap = [h for h in range(H + 1) if S[h] > Fx[h] + 1e-7]
            print("  stagewise > fixed at h =", gap)

    N = 10000
    Rt = uniform_threshold_float(N)["R"]
    Rf = uniform_fixed_rate_float(N)
    print(f"\nuniform, consumer surplus, H={N}: R_thr={Rt[N]:.6f}  R_fr={Rf[N]:.6f}  "
          f"ratio={Rt[N] / Rf[N]:.6f}")
    avg = [Rt[h] / h for h in range(1, N + 1)]
    print("R_h/h non-decreasing:", all(avg[i + 1] >= avg[i] - 1e-12 for i in range(N - 1)),
          f" R_h/h at h=10,100,1000,10000: {avg[9]:.4f} {avg[99]:.4f} {avg[999]:.4f} {avg[-1]:.4f}")
    print(f"total time {time.time() - t0:.1f}s")

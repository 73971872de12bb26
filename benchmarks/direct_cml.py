"""Paper 004's first-moment contract written directly with CasADi MX + IPOPT (no mechdsl).

Used by ``benchmarks/run.py`` (P4), in process (``solve(c, p, N, ...)``) and as a whole process:

    python benchmarks/direct_cml.py multi 1     # specs/cml_multi_type.mech, scenario 1 (2, 3)
    python benchmarks/direct_cml.py two         # specs/cml_two_type.mech
    -> prints the objective (repr of a float) as its last line

The model is the one of the specs, written by hand:

* accuracy a(m) = max(0, a_opt - (sqrt(2k(2 + ln(max(m,k)/k))) + 4) / sqrt(max(m,k))), value v = 100 a;
* reservation utility f_i = max_{0 <= m <= 1e6} v(a(m)) - c_i m: ONE parametric NLP (c as a parameter),
  solved from m = 1000 and from m = 0 for each type, the better kept;
* the outcomes n of Mul(N, p) enumerated once, as a matrix Nmat (outcomes x types) and probabilities w;
* max  w' a(Nmat m)  over m, t >= 0 subject to all-pairs IC  t_i - c_i m_i >= t_j - c_i m_j,
  IR  t_i - c_i m_i >= f_i  and budget  t_i <= E[v(a(Nmat m)) | n_i >= 1];
* one IPOPT solve from the stand-alone contract (m = m_alone, t = v(a(m_alone))).  If it ends on the flat
  branch of the accuracy (every outcome at a = 0, objective 0: scenario 2, where nobody trains alone
  and m_alone = 0), max is smoothed as (a + b + sqrt((a-b)^2 + mu^2))/2 with mu = 1, and that solve
  warm-starts the exact one (mu = 0.1 is too small to leave the flat region; mu = 1 and 10 both work).
"""
from __future__ import annotations

import itertools
import math
import sys
import time

import casadi as ca
import numpy as np

SCENARIOS = {1: [0.2, 0.16, 0.12, 0.08, 0.04], 2: [1.0, 0.85, 0.7, 0.55, 0.4], 3: [0.5, 0.4, 0.03, 0.02, 0.001]}
OPTS = {"print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes", "ipopt.tol": 1e-10,
        "ipopt.bound_relax_factor": 0.0}


def _fmax(a, b, mu):
    return ca.fmax(a, b) if mu is None else (a + b + ca.sqrt((a - b) ** 2 + mu ** 2)) / 2


def accuracy(m, k=1.0, a_opt=1.0, mu=None):
    mm = _fmax(m, k, mu)
    return _fmax(0, a_opt - (ca.sqrt(2 * k * (2 + ca.log(mm / k))) + 4) / ca.sqrt(mm), mu)


def outcomes(N: int, p):
    rows, probs = [], []
    for n in itertools.product(range(N + 1), repeat=len(p)):
        if sum(n) == N:
            rows.append(n)
            probs.append(math.exp(math.lgamma(N + 1) + sum(k * math.log(q) - math.lgamma(k + 1)
                                                           for k, q in zip(n, p))))
    return np.array(rows, float), np.array(probs)


def standalone(c):
    """f_i and m_i for every cost c_i: one parametric NLP, two starts per type."""
    m, ci = ca.MX.sym("m"), ca.MX.sym("c")
    solver = ca.nlpsol("alone", "ipopt", {"x": m, "p": ci, "f": -(100 * accuracy(m) - ci * m)}, OPTS)
    ms, fs = [], []
    for cost in c:
        best = None
        for x0 in (1000.0, 0.0):
            sol = solver(x0=x0, p=cost, lbx=0.0, ubx=1e6)
            val = -float(sol["f"])
            if best is None or val > best[0] + 1e-12:
                best = (val, float(sol["x"]))
        fs.append(best[0])
        ms.append(best[1])
    return np.array(ms), np.array(fs)


def solve(c, p, N=10, k=1.0, a_opt=1.0):
    """-> dict(objective, m, t, times)."""
    t0 = time.perf_counter()
    c = np.asarray(c, float)
    I = len(c)
    m_alone, f = standalone(c)
    t1 = time.perf_counter()
    Nmat, w = outcomes(N, p)
    m, t, mu = ca.MX.sym("m", I), ca.MX.sym("t", I), ca.MX.sym("mu")

    def nlp(smooth):
        acc = accuracy(ca.mtimes(ca.DM(Nmat), m), k, a_opt, mu if smooth else None)
        obj = ca.dot(ca.DM(w), acc)
        g, lbg, ubg = [], [], []
        for i in range(I):
            for j in range(I):
                if i != j:                                  # IC: (t_i - c_i m_i) - (t_j - c_i m_j) >= 0
                    g.append(t[i] - c[i] * m[i] - t[j] + c[i] * m[j]); lbg.append(0.0); ubg.append(ca.inf)
        for i in range(I):                                  # IR
            g.append(t[i] - c[i] * m[i]); lbg.append(f[i]); ubg.append(ca.inf)
        for i in range(I):                                  # budget: t_i - E[100 a | n_i >= 1] <= 0
            wi = w * (Nmat[:, i] >= 1)
            g.append(t[i] - ca.dot(ca.DM(wi / wi.sum()), 100 * acc)); lbg.append(-ca.inf); ubg.append(0.0)
        prob = {"x": ca.vertcat(m, t), "f": -obj, "g": ca.vertcat(*g)}
        if smooth:
            prob["p"] = mu
        return ca.nlpsol("cml", "ipopt", prob, OPTS), lbg, ubg

    exact, lbg, ubg = nlp(False)
    value_alone = np.array([100 * float(accuracy(ca.DM(x), k, a_opt)) for x in m_alone])
    x0 = np.concatenate([m_alone, value_alone])
    t2 = time.perf_counter()
    sol = exact(x0=x0, lbx=0.0, ubx=ca.inf, lbg=lbg, ubg=ubg)
    if -float(sol["f"]) <= 1e-12:                           # the flat branch: smooth (mu = 1), then exact
        smooth, _, _ = nlp(True)
        warm = smooth(x0=x0, p=1.0, lbx=0.0, ubx=ca.inf, lbg=lbg, ubg=ubg)
        sol = exact(x0=warm["x"], lbx=0.0, ubx=ca.inf, lbg=lbg, ubg=ubg)
    t3 = time.perf_counter()
    x = np.asarray(sol["x"]).ravel()
    return {"objective": -float(sol["f"]), "m": x[:I], "t": x[I:], "f": f, "m_alone": m_alone,
            "status": exact.stats()["return_status"],
            "times": {"aux": t1 - t0, "build": t2 - t1, "solve": t3 - t2, "total": t3 - t0}}


def main(argv):
    if argv[0] == "two":
        out = solve([0.02, 0.01], [0.5, 0.5])
    else:
        out = solve(SCENARIOS[int(argv[1])], [0.2] * 5)
    print(repr(out["objective"]))


if __name__ == "__main__":
    main(sys.argv[1:])

"""specs/pvcg_adjustment.mech: PVCG's adjustment payments h (paper 001, Eqs. 8, 15-22, Theorem 2)
as the exact LP "min_h E[LOSS]" over a finite prior of producer types, instead of a neural network.

Every asserted number from the spec (API result or the ``solve --json`` command line) is compared
with an independent computation done here:
  * S*(w) and S*_{-i}(w_{-i}) per profile: tests/refs.py ``social_surplus_star`` (the exact
    merit-order solution for the paper's sqrt valuation); for alpha > 1 (convex value of the total
    input) by enumerating the vertices of the capacity box, where the maximum of a convex function
    over a box lies;
  * the optimal expected LOSS: scipy.optimize.linprog on an LP written here (h table + one epigraph
    variable per ReLU of Eqs. 20-21) over the same profiles, with those reference S values;
  * IR / WBB / the budget surplus / u / tau / p: recomputed from the reference S values, the
    reference allocation and the spec's h;
  * Theorem 2's condition (Eq. 23) and the sufficiency proof's h: recomputed from the reference S.
"""
import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

import mechdsl
from conftest import SPECS
from refs import social_surplus_star

SPEC = SPECS / "pvcg_adjustment.mech"
SYNERGY = SPECS / "data" / "pvcg_adjustment_synergy.toml"
TOL = 1e-7

# The spec's default data, restated (the test checks the spec really has it).
DEFAULT = dict(n=3, m=2, K=3, xb=[0.5, 1.0, 1.5], gm=[0.6, 0.4, 0.2], f=[1 / 3] * 3,
               theta=[0.5, 0.5], alpha=0.5)
# specs/data/pvcg_adjustment_synergy.toml, restated.
SYN = dict(n=3, m=2, K=2, xb=[0.0, 1.0], gm=[0.5, 0.5], f=[0.4, 0.6], theta=[0.5, 0.5], alpha=1.5)
# More instances: four producers, three consumers, a skewed prior (sqrt valuation); three types
# with synergies (alpha = 1.5), one of them absent and one so costly it is not always worth taking.
FOUR = dict(n=4, m=3, K=2, xb=[0.8, 2.5], gm=[0.5, 0.3], f=[0.7, 0.3], theta=[0.6, 0.3, 0.2], alpha=0.5)
SYN3 = dict(n=3, m=2, K=3, xb=[0.0, 0.5, 1.0], gm=[0.5, 0.3, 1.0], f=[0.2, 0.5, 0.3],
            theta=[0.4, 0.2], alpha=1.5)


# ------------------------------------------------------------------ independent references

def profiles(c):
    return list(itertools.product(range(1, c["K"] + 1), repeat=c["n"]))


def others(w, i):
    """w[-i] for a 1-based producer i."""
    return w[:i - 1] + w[i:]


def surplus(c, caps, costs):
    """S* = max_{0 <= x <= caps} sum_j theta_j (n sum x)^alpha - sum costs x, and the allocation."""
    n, th, a = c["n"], c["theta"], c["alpha"]
    if a == 0.5:
        return social_surplus_star(n, caps, costs, th)
    assert a >= 1                       # convex value of the total: the maximum is at a vertex
    best = (0.0, [0.0] * len(caps))
    for on in itertools.product((0, 1), repeat=len(caps)):
        x = [cap * o for cap, o in zip(caps, on)]
        s = sum(th) * (n * sum(x)) ** a - sum(g * xi for g, xi in zip(costs, x))
        if s > best[0] + 1e-12:
            best = (s, x)
    return best


def reference(c):
    """Per profile: S*, the allocation, S*_{-i}, and per (i, o): S*_{-i}(o); prior weights."""
    xb, gm, f, n = c["xb"], c["gm"], c["f"], c["n"]
    S, X, Sm, P = {}, {}, {}, {}
    for w in profiles(c):
        S[w], X[w] = surplus(c, [xb[k - 1] for k in w], [gm[k - 1] for k in w])
        P[w] = math.prod(f[k - 1] for k in w)
        for i in range(1, n + 1):
            caps = [0.0 if j == i else xb[k - 1] for j, k in enumerate(w, 1)]
            Sm[i, others(w, i)] = surplus(c, caps, [gm[k - 1] for k in w])[0]
    return S, X, Sm, P


def loss_lp(c, S, Sm, P):
    """min_h sum_w P(w) [sum_i e1[i,w] + e2[w]]  s.t.  e1 >= -(S - S_-i) - h_i(w_-i),
    e2 >= sum_i (S - S_-i + h_i(w_-i)) - S,  e >= 0,  h free (Eqs. 20-22).  Returns (LOSS, h)."""
    n, W = c["n"], profiles(c)
    O = list(itertools.product(range(1, c["K"] + 1), repeat=n - 1))
    hcol = {(i, o): k for k, (i, o) in enumerate(itertools.product(range(1, n + 1), O))}
    nh = len(hcol)
    e1col = {(i, w): nh + k for k, (i, w) in enumerate(itertools.product(range(1, n + 1), W))}
    e2col = {w: nh + len(e1col) + k for k, w in enumerate(W)}
    nv = nh + len(e1col) + len(e2col)
    cost = np.zeros(nv)
    for (i, w), j in e1col.items():
        cost[j] = P[w]
    for w, j in e2col.items():
        cost[j] = P[w]
    rows, cols, vals, b = [], [], [], []
    for w in W:
        for i in range(1, n + 1):                    # -h - e1 <= S - S_-i
            r = len(b)
            rows += [r, r]; cols += [hcol[i, others(w, i)], e1col[i, w]]; vals += [-1.0, -1.0]
            b.append(S[w] - Sm[i, others(w, i)])
        r = len(b)                                   # sum_i h - e2 <= S - sum_i (S - S_-i)
        for i in range(1, n + 1):
            rows.append(r); cols.append(hcol[i, others(w, i)]); vals.append(1.0)
        rows.append(r); cols.append(e2col[w]); vals.append(-1.0)
        b.append(S[w] - sum(S[w] - Sm[i, others(w, i)] for i in range(1, n + 1)))
    A = coo_matrix((vals, (rows, cols)), shape=(len(b), nv)).tocsr()
    bounds = [(None, None)] * nh + [(0, None)] * (nv - nh)
    res = linprog(cost, A_ub=A, b_ub=np.array(b), bounds=bounds, method="highs")
    assert res.status == 0, res.message
    return res.fun, {k: res.x[j] for k, j in hcol.items()}


def worst(c, S, w, i):
    """min over the types of the support of S*((k, w_-i))."""
    return min(S[w[:i - 1] + (k,) + w[i:]] for k in range(1, c["K"] + 1) if c["f"][k - 1] > 0)


def eq23(c, S, w):
    return sum(S[w] - worst(c, S, w, i) for i in range(1, c["n"] + 1)) <= S[w] + TOL


# ------------------------------------------------------------------ running the spec

def cli_json(*args):
    p = subprocess.run([sys.executable, "-m", "mechdsl.cli", "solve", str(SPEC), "--json", *args],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def key(t):
    return ",".join(map(str, t))


def from_json(doc):
    """The --json object with its tables keyed by index tuples, like the API's."""
    def table(d):
        return {tuple(int(s) for s in k.split(",")) if k else (): v for k, v in d.items()}
    return dict(status=doc["status"], objective=doc["objective"], aux=doc["aux"],
                variables={k: table(v) for k, v in doc["variables"].items()},
                parameters={k: table(v) for k, v in doc["parameters"].items()},
                reports={k: table(v) for k, v in doc["reports"].items()})


def from_api(res):
    return dict(status=res.status, objective=res.objective, aux=res.aux, variables=res.variables,
                parameters=res.parameters, reports=res.reports)


def solve(c):
    return from_api(mechdsl.load(SPEC, overrides=c).solve())


@pytest.fixture(scope="module")
def default():
    return from_api(mechdsl.load(SPEC).solve())


@pytest.fixture(scope="module")
def synergy():
    """The synergy data file through the command line (the one CLI run)."""
    return from_json(cli_json("--data", str(SYNERGY)))


@pytest.fixture(scope="module")
def four():
    return solve(FOUR)


@pytest.fixture(scope="module")
def syn3():
    return solve(SYN3)


CASES = {"default": DEFAULT, "synergy": SYN, "four": FOUR, "syn3": SYN3}


def run(request, name):
    return request.getfixturevalue(name), CASES[name]


# ------------------------------------------------------------------ (1) S* and S*_{-i}

@pytest.mark.parametrize("name", list(CASES))
def test_surpluses_match_the_reference(request, name):
    r, c = run(request, name)
    n, K = c["n"], c["K"]
    S, X, Sm, _ = reference(c)
    assert r["status"] == "optimal"
    # one Eff per profile w, one Without per others' profile o: K^n + K^(n-1)
    assert len(r["aux"]) == K ** n + K ** (n - 1)
    assert all(a["feasible"] and a["status"] in ("locally optimal", "optimal") for a in r["aux"].values())
    par = r["parameters"]
    assert set(par["S"]) == set(S) and set(par["S_minus"]) == {o for _, o in Sm}
    for w in S:
        assert par["S"][w] == pytest.approx(S[w], abs=1e-7), w
        assert sum(r["reports"]["x"][(i, *w)] for i in range(1, n + 1)) == pytest.approx(sum(X[w]), abs=1e-6)
        assert r["reports"]["Xstar"][w] == pytest.approx(sum(X[w]), abs=1e-6)
    for (i, o), v in Sm.items():       # S*_{-i}, computed here for every i, is the spec's S_minus[o]
        assert par["S_minus"][o] == pytest.approx(v, abs=1e-7), (i, o)


def test_default_data_is_as_documented(default):
    p = default["parameters"]
    for k in ("n", "m", "K", "alpha"):
        assert p[k] == DEFAULT[k]
    for k in ("xb", "gm", "f", "theta"):
        got = [p[k][(j,)] for j in range(1, len(DEFAULT[k]) + 1)]
        assert got == pytest.approx(DEFAULT[k], abs=1e-15), k
    # type 1 is the worst point of the support (smallest capacity, largest cost)
    assert DEFAULT["xb"][0] == min(DEFAULT["xb"]) and DEFAULT["gm"][0] == max(DEFAULT["gm"])


# ------------------------------------------------------------------ (2) the optimal expected LOSS

@pytest.mark.parametrize("name", list(CASES))
def test_optimal_loss_matches_an_independent_lp(request, name):
    r, c = run(request, name)
    S, _, Sm, P = reference(c)
    want, _ = loss_lp(c, S, Sm, P)
    assert r["objective"] == pytest.approx(want, rel=1e-7, abs=1e-7)
    # Theorem 2 (finite support): LOSS = 0 iff Eq. 23 holds on every profile
    assert (want <= 1e-7) == all(eq23(c, S, w) for w in S)
    # the spec's per-profile losses (Eqs. 20-21), recomputed from its h and the reference S
    h = r["variables"]["h"]
    rep = r["reports"]
    total = 0.0
    for w in S:
        d = {i: S[w] - Sm[i, others(w, i)] for i in range(1, c["n"] + 1)}
        l1 = sum(max(0.0, -d[i] - h[(i, *others(w, i))]) for i in d)
        l2 = max(0.0, sum(d[i] + h[(i, *others(w, i))] for i in d) - S[w])
        assert rep["loss1"][w] == pytest.approx(l1, abs=1e-6), w
        assert rep["loss2"][w] == pytest.approx(l2, abs=1e-6), w
        total += P[w] * (l1 + l2)
    assert total == pytest.approx(want, rel=1e-6, abs=1e-6)     # the spec's h attains the optimum


# ------------------------------------------------------------------ (3) Theorem 2 holds: IR and WBB

def check_outcome(r, c, S, X, Sm, h):
    """With adjustment h[(i, *o)]: u, p, budget surplus recomputed from the reference S and x."""
    n, gm, th = c["n"], c["gm"], c["theta"]
    out = {}
    for w in S:
        u = [S[w] - Sm[i, others(w, i)] + h[(i, *others(w, i))] for i in range(1, n + 1)]
        tau = [S[w] - Sm[i, others(w, i)] + gm[w[i - 1] - 1] * X[w][i - 1] for i in range(1, n + 1)]
        p = [tau[i] + h[(i + 1, *others(w, i + 1))] for i in range(n)]
        value = sum(th) * (n * sum(X[w])) ** c["alpha"]
        out[w] = dict(u=u, tau=tau, p=p, budget=value - sum(p))
        assert out[w]["budget"] == pytest.approx(S[w] - sum(u), abs=1e-9)   # Eq. 4 = Eq. 17
    return out


@pytest.mark.parametrize("name", ["default", "four"])
def test_ir_and_wbb_on_every_profile(request, name):
    r, c = run(request, name)
    n = c["n"]
    S, X, Sm, _ = reference(c)
    assert all(eq23(c, S, w) for w in S)
    assert r["objective"] == pytest.approx(0, abs=1e-9)
    rep = r["reports"]
    assert all(rep["IR"].values()) and all(rep["WBB"].values()) and all(rep["Eq23"].values())
    assert len(rep["IR"]) == n * len(S) and len(rep["WBB"]) == len(S)
    out = check_outcome(r, c, S, X, Sm, r["variables"]["h"])
    for w, o in out.items():
        assert o["budget"] >= -TOL and min(o["u"]) >= -TOL, w
        assert rep["budget_surplus"][w] == pytest.approx(o["budget"], abs=1e-6), w
        for i in range(1, n + 1):
            assert rep["u"][(i, *w)] == pytest.approx(o["u"][i - 1], abs=1e-6)
            assert rep["tau"][(i, *w)] == pytest.approx(o["tau"][i - 1], abs=1e-6)
            assert rep["p"][(i, *w)] == pytest.approx(o["p"][i - 1], abs=1e-6)
            assert rep["x"][(i, *w)] == pytest.approx(X[w][i - 1], abs=1e-6)


@pytest.mark.parametrize("name", ["default", "four"])
def test_theorem2_adjustment_is_ir_and_wbb(request, name):
    """The sufficiency proof's h_i = S*_{-i} - S*((worst, w_-i)): the spec's h_thm2 vs the reference,
    and PVCG with it is IR and WBB on every profile (recomputed)."""
    r, c = run(request, name)
    n = c["n"]
    S, X, Sm, _ = reference(c)
    h2 = {}
    for w in S:
        for i in range(1, n + 1):
            want = Sm[i, others(w, i)] - worst(c, S, w, i)
            assert r["reports"]["h_thm2"][(i, *w)] == pytest.approx(want, abs=1e-7)
            assert r["reports"]["S_worst"][(i, *w)] == pytest.approx(worst(c, S, w, i), abs=1e-7)
            h2[(i, *others(w, i))] = want
    assert min(h2.values()) < -0.01                # the worst type still produces somewhere: h < 0
    out = check_outcome(r, c, S, X, Sm, h2)
    assert all(min(o["u"]) >= -TOL and o["budget"] >= -TOL for o in out.values())


# ------------------------------------------------------------------ (4) no h works: LOSS > 0

@pytest.mark.parametrize("name", ["synergy", "syn3"])
def test_synergies_break_theorem2(request, name):
    r, c = run(request, name)
    n = c["n"]
    S, X, Sm, P = reference(c)
    want, _ = loss_lp(c, S, Sm, P)
    assert want > 0.1 and r["objective"] == pytest.approx(want, rel=1e-7)
    rep = r["reports"]
    assert {w: rep["Eq23"][w] for w in S} == {w: eq23(c, S, w) for w in S}
    assert not all(rep["Eq23"].values())
    out = check_outcome(r, c, S, X, Sm, r["variables"]["h"])
    for w, o in out.items():
        assert rep["WBB"][w] == (o["budget"] >= -TOL), w
        assert rep["budget_surplus"][w] == pytest.approx(o["budget"], abs=1e-6), w
        for i in range(1, n + 1):
            assert rep["IR"][(i, *w)] == (o["u"][i - 1] >= -TOL)
            assert rep["u"][(i, *w)] == pytest.approx(o["u"][i - 1], abs=1e-6)
    # some profile of the support is not IR or not WBB under the optimal h
    assert not (all(rep["IR"].values()) and all(rep["WBB"].values()))


def test_synergy_numbers_by_hand(synergy):
    """All three present: S* = (3*3)^1.5 - 1.5 = 25.5; without one, (3*2)^1.5 - 1; VCG pays 35.4 > 25.5."""
    S, Sm = synergy["parameters"]["S"], synergy["parameters"]["S_minus"]
    assert S[(2, 2, 2)] == pytest.approx(25.5, abs=1e-7)
    assert Sm[(2, 2)] == pytest.approx(6 ** 1.5 - 1, abs=1e-7)
    vcg = 3 * (25.5 - (6 ** 1.5 - 1))
    assert vcg == pytest.approx(35.41, abs=0.01) and vcg > 25.5
    assert synergy["reports"]["Eq23"][(2, 2, 2)] is False
    assert synergy["reports"]["Eq23"][(2, 1, 1)] is True      # one present producer: WBB with equality


# ------------------------------------------------------------------ (5) the command line

def test_cli_json_synergy_file(synergy):
    p = synergy["parameters"]
    assert p["alpha"][()] == 1.5 and p["K"][()] == 2
    assert [p["xb"][(k,)] for k in (1, 2)] == SYN["xb"] and [p["f"][(k,)] for k in (1, 2)] == SYN["f"]
    assert synergy["status"] == "optimal"
    assert len(synergy["variables"]["h"]) == 3 * 2 ** 2          # h[i, o], o in T^(n-1)

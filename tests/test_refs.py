"""Self-tests of tests/refs.py against published numbers and brute force."""
import itertools

import numpy as np
import pytest
from scipy.optimize import minimize

from refs import (PAPER_GMAX, PAPER_XMIN, auction_lp, ironed_virtual_values,
                  myerson_revenue, pvcg, pvcg_utility_under_misreport,
                  social_surplus_star, vcg)

# Paper setting (Cong et al. 2020, text after Eq. 37 / Fig. 2): n = 10, m = 2,
# producers 1..9 at xbar = 2.5, gamma = 0.5, theta = (0.5, 0.5).
N = 10
THETA = (0.5, 0.5)


def paper(x0, g0):
    return [x0] + [2.5] * 9, [g0] + [0.5] * 9


# ---------------------------------------------------------------- PVCG

def test_pvcg_paper_numbers():
    r = pvcg(N, *paper(3, 0.2), THETA)
    assert r["S"] == pytest.approx(5.9, abs=1e-12)
    assert r["S_minus"][0] == pytest.approx(5.0, abs=1e-12)
    assert r["tau"][0] == pytest.approx(1.5, abs=1e-12)
    assert r["x"][0] == pytest.approx(3.0)
    assert sum(r["x"]) == pytest.approx(10.0)          # X* = n (sum theta)^2 / (4 g^2)
    assert r["x"][1:] == pytest.approx([7 / 9] * 9)    # tie split by capacity
    r = pvcg(N, *paper(3, 0.7), THETA)
    assert r["tau"][0] == pytest.approx(0.0, abs=1e-12)
    assert r["x"][0] == 0.0
    assert (PAPER_XMIN, PAPER_GMAX) == (0.0, 1.0)      # prior U[0,5] x U[0,1]


def test_pvcg_fig2_shape():
    """Fig. 2: p_0 flat in gamma_0 below a threshold, ~0 above it; increasing in x_0."""
    p = [pvcg(N, *paper(3, g), THETA)["p"][0] for g in np.arange(0, 0.5, 0.05)]
    assert p == pytest.approx([1.5] * len(p))
    assert pvcg(N, *paper(3, 0.55), THETA)["p"][0] == pytest.approx(0.0)
    px = [pvcg(N, *paper(x, 0.2), THETA)["p"][0] for x in np.arange(0, 5.01, 0.25)]
    assert all(b >= a - 1e-12 for a, b in zip(px, px[1:]))


def _S_scipy(n, xbar, gamma, theta):
    ts = sum(theta)
    f = lambda x: -(ts * np.sqrt(n * max(x.sum(), 0.0)) - np.dot(gamma, x))
    best = 0.0
    for start in (0.5, 0.1, 0.9):
        res = minimize(f, np.asarray(xbar) * start, bounds=list(zip([0] * len(xbar), xbar)),
                       method="L-BFGS-B", options=dict(ftol=1e-15, gtol=1e-12))
        best = max(best, -res.fun)
    return best


def test_pvcg_surplus_vs_scipy():
    rng = np.random.default_rng(0)
    cases = [paper(3, 0.2), paper(3, 0.7), paper(0.5, 0.5)]
    cases += [(list(rng.uniform(0, 5, N)), list(rng.uniform(0, 1, N))) for _ in range(20)]
    for k, (xbar, gamma) in enumerate(cases):
        theta = THETA if k < 3 else tuple(rng.uniform(0, 1, 2))
        S, x = social_surplus_star(N, xbar, gamma, theta)
        assert S == pytest.approx(_S_scipy(N, xbar, gamma, theta), abs=1e-6)
        # the returned allocation attains S and is feasible
        assert all(-1e-12 <= xi <= xb + 1e-12 for xi, xb in zip(x, xbar))
        assert sum(theta) * np.sqrt(N * sum(x)) - np.dot(gamma, x) == pytest.approx(S, abs=1e-12)


@pytest.mark.parametrize("lo,hi,gmax", [(0.0, 5.0, 1.0), (1.0, 5.0, 0.3)])
def test_pvcg_ir_wbb_on_support(lo, hi, gmax):
    """Corollary 4 / Theorem 2: with h from Theorem 2, IR and WBB on the support."""
    rng = np.random.default_rng(1)
    h_nonzero = 0
    for _ in range(200):
        xbar = rng.uniform(lo, hi, N); gamma = rng.uniform(0, gmax, N)
        theta = rng.uniform(0, 1, 2)
        r = pvcg(N, xbar, gamma, theta, xmin=lo, gmax=gmax)
        assert r["IR"] and r["WBB"]
        if lo == 0.0:
            assert r["h"] == pytest.approx([0.0] * N, abs=1e-12)
        assert r["u"] == pytest.approx([r["S"] - r["S_minus"][i] + r["h"][i] for i in range(N)])
        h_nonzero += any(abs(h) > 1e-6 for h in r["h"])
    assert (h_nonzero > 0) == (lo > 0)                 # the xmin > 0 case exercises h


# -------------------------------------------------- PVCG truthfulness (Prop. 1)

@pytest.mark.parametrize("xt,gt", [(3, 0.2), (3, 0.7), (2.5, 0.5), (1.2, 0.35),
                                   (4.6, 0.05), (0.0, 0.3), (5.0, 1.0)])
def test_truthful_best_response_grid(xt, gt):
    xb_o, g_o = paper(0, 0)
    u = lambda xh, gh: pvcg_utility_under_misreport(N, 0, xt, gt, xh, gh, xb_o, g_o, THETA)
    truth = u(xt, gt)
    best = max(u(xh, gh) for xh in np.arange(0, 5.001, 0.25) for gh in np.arange(0, 1.001, 0.05))
    assert best <= truth + 1e-9


def test_overpromise_punished():
    xb_o, g_o = paper(0, 0)
    # true capacity 3, claims 5 at true cost 0.2: accepted 5 > 3 -> punished
    assert pvcg_utility_under_misreport(N, 0, 3, 0.2, 5, 0.2, xb_o, g_o, THETA) == -1e6
    # claims 5 at cost 0.6: not accepted (x_0 = 0 <= 3) -> ordinary utility 0
    assert pvcg_utility_under_misreport(N, 0, 3, 0.2, 5, 0.6, xb_o, g_o, THETA) == pytest.approx(0)


# ---------------------------------------------------------------- Myerson

UNIFORM10 = (list(range(1, 11)), [0.1] * 10)
# non-regular: mass at 2 and 5, little in between -> phi not monotone
NONREG = ([1, 2, 3, 4, 5], [0.1, 0.4, 0.05, 0.05, 0.4])


@pytest.mark.parametrize("n,expected", [(1, 3.0), (2, 4.9), (3, 6.15)])
def test_myerson_uniform(n, expected):
    assert myerson_revenue(*UNIFORM10, n) == pytest.approx(expected, abs=1e-9)


def test_ironing_matters_for_nonregular():
    phi, phibar = ironed_virtual_values(*NONREG)
    assert np.any(np.diff(phi) < 0)                     # raw phi not monotone
    assert np.all(np.diff(phibar) >= -1e-12)
    assert not np.allclose(phi, phibar)
    # expected revenue is preserved by ironing under the value distribution
    assert np.dot(NONREG[1], phi) == pytest.approx(np.dot(NONREG[1], phibar))


@pytest.mark.parametrize("dist", [UNIFORM10, NONREG], ids=["uniform10", "nonregular"])
@pytest.mark.parametrize("mode", ["bic", "dsic"])
def test_lp_matches_formula_n2(dist, mode):
    assert auction_lp(*dist, 2, mode) == pytest.approx(myerson_revenue(*dist, 2), abs=1e-7)


def test_lp_small_cases():
    assert auction_lp(*UNIFORM10, 1, "dsic") == pytest.approx(3.0, abs=1e-7)
    assert auction_lp(*NONREG, 3, "bic") == pytest.approx(myerson_revenue(*NONREG, 3), abs=1e-7)
    assert auction_lp(*NONREG, 3, "dsic") == pytest.approx(myerson_revenue(*NONREG, 3), abs=1e-7)
    # the un-ironed formula overstates revenue when ironing matters
    phi, _ = ironed_virtual_values(*NONREG)
    f = np.array(NONREG[1])
    raw = sum(np.prod(f[list(s)]) * max(0, max(phi[list(s)]))
              for s in itertools.product(range(5), repeat=2))
    assert raw > auction_lp(*NONREG, 2, "bic") + 1e-6


# ---------------------------------------------------------------- VCG

def _vcg_brute(u, u0, avail):
    nA, NX = len(u), len(u0)
    W = [sum(u[i][x] for i in range(nA)) + u0[x] for x in range(NX)]
    xs = min(range(NX), key=lambda x: (-W[x], x))
    pay = []
    for i in range(nA):
        w = lambda x: sum(u[j][x] for j in range(nA) if j != i) + u0[x]
        pay.append(max(w(x) for x in range(NX) if avail[i][x]) - w(xs))
    return xs, pay


def test_vcg_public_project():
    # outcomes: 0 = nothing, 1 = build (cost 100); values 30, 40, 50
    u = [[0, 30], [0, 40], [0, 50]]; u0 = [0, -100]; av = [[1, 1]] * 3
    r = vcg(u, u0, av)
    assert r["xstar"] == 1
    assert r["pay"] == pytest.approx([10, 20, 30])
    assert r["surplus"] == pytest.approx(-40)           # Clarke runs a deficit here
    assert r["IR"]
    assert (r["xstar"], r["pay"]) == _vcg_brute(u, u0, av)


def test_vcg_brute_force_and_dsic():
    # outcomes: 0 nothing, 1 small (cost 60), 2 big (cost 100, needs agent 0)
    u = [[0, 20, 50], [0, 30, 40], [0, 25, 35]]
    u0 = [0, -60, -100]
    av = [[1, 1, 0], [1, 1, 1], [1, 1, 1]]
    r = vcg(u, u0, av)
    xs, pay = _vcg_brute(u, u0, av)
    assert r["xstar"] == xs == 2 and r["pay"] == pytest.approx(pay)
    assert r["IR"]
    # ties broken by lowest index
    assert vcg([[0, 1], [1, 0]], [0, 0], [[1, 1], [1, 1]])["xstar"] == 0
    # DSIC: no misreport on a grid beats truth (true utility evaluated at true values)
    for i in range(3):
        truth = r["utility"][i]
        for rep in itertools.product(range(0, 61, 10), repeat=2):
            uh = [row[:] for row in u]; uh[i] = [0, *rep]
            ri = vcg(uh, u0, av)
            assert u[i][ri["xstar"]] - ri["pay"][i] <= truth + 1e-9
    # random instances against brute force
    rng = np.random.default_rng(2)
    for _ in range(50):
        uu = rng.integers(0, 10, (3, 4)).tolist(); uu0 = rng.integers(-10, 0, 4).tolist()
        aa = rng.integers(0, 2, (3, 4)); aa[:, 0] = 1
        r = vcg(uu, uu0, aa.tolist())
        assert (r["xstar"], r["pay"]) == _vcg_brute(uu, uu0, aa.tolist())

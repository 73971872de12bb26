"""specs/vcg.mech (Clarke-pivot VCG) and specs/pvcg.mech (paper 001, PVCG procurement auction).

Every number asserted here comes from the spec (its reports, through the Python API or the
``solve --json`` command line) and is compared with an independent computation of tests/refs.py
(``vcg``, ``pvcg``, ``pvcg_utility_under_misreport``) or with a number printed in / derived by
hand from the paper.  Both specs have no main problem: their outputs are reports (status
"evaluated"); PVCG's surpluses come from 2n + 1 auxiliary NLPs solved by IPOPT.
"""
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

import mechdsl
from conftest import SPECS
from refs import PAPER_GMAX, PAPER_XMIN, pvcg, pvcg_utility_under_misreport, vcg

VCG = SPECS / "vcg.mech"
PVCG = SPECS / "pvcg.mech"


def cli_json(spec, *args):
    p = subprocess.run([sys.executable, "-m", "mechdsl.cli", "solve", str(spec), "--json", *args],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def vec(table, n):
    """An indexed report {(1,): a, (2,): b, ...} as the list [a, b, ...]."""
    return [table[(i,)] for i in range(1, n + 1)]


def jvec(table, n):
    """The same from the JSON form {"1": a, "2": b, ...}."""
    return [table[str(i)] for i in range(1, n + 1)]


# ============================================================================ VCG

PUBLIC_PROJECT = dict(u=[[30, 0], [40, 0], [50, 0]], u0=[-100, 0], avail=[[1, 1]] * 3)
# outcomes 1 = nothing, 2 = small project (cost 60), 3 = big project (cost 100), which needs
# agent 1: without it only outcomes 1 and 2 are feasible.
NEEDS_AGENT_1 = dict(u=[[0, 20, 50], [0, 30, 40], [0, 25, 35]], u0=[0, -60, -100],
                     avail=[[1, 1, 0], [1, 1, 1], [1, 1, 1]])


def solve_vcg(u, u0, avail):
    over = {"n": len(u), "NX": len(u0), "u": u, "u0": u0, "avail": avail}
    res = mechdsl.load(VCG, overrides=over).solve()
    assert res.status == "evaluated"
    return res.reports


def assert_vcg_matches_ref(rep, u, u0, avail):
    ref = vcg(u, u0, avail)
    n = len(u)
    assert rep["xstar"][()] == ref["xstar"] + 1            # refs numbers outcomes from 0
    assert vec(rep["pay"], n) == pytest.approx(ref["pay"], abs=1e-9)
    assert vec(rep["util"], n) == pytest.approx(ref["utility"], abs=1e-9)
    assert rep["surplus"][()] == pytest.approx(ref["surplus"], abs=1e-9)
    assert all(vec(rep["IR"], n)) == ref["IR"]
    assert vec(rep["IR"], n) == [ui >= 0 for ui in ref["utility"]]
    return ref


def test_vcg_default_is_the_public_project():
    res = mechdsl.load(VCG).solve()
    assert res.status == "evaluated" and res.variables == {}
    p = res.parameters                                      # the defaults are the stated example
    assert (p["n"], p["NX"]) == (3, 2)
    assert [[p["u"][(i, x)] for x in (1, 2)] for i in (1, 2, 3)] == PUBLIC_PROJECT["u"]
    assert [p["u0"][(x,)] for x in (1, 2)] == PUBLIC_PROJECT["u0"]
    assert all(v == 1 for v in p["avail"].values())
    rep = res.reports
    assert_vcg_matches_ref(rep, **PUBLIC_PROJECT)
    # by hand: build (120 > 100); each agent is pivotal and pays 100 minus the others' values
    assert rep["xstar"][()] == 1
    assert vec(rep["pay"], 3) == [10, 20, 30]
    assert rep["surplus"][()] == -40                        # Clarke runs a deficit here
    assert vec(rep["IR"], 3) == [True, True, True]


def test_vcg_outcome_infeasible_without_an_agent():
    rep = solve_vcg(**NEEDS_AGENT_1)
    assert_vcg_matches_ref(rep, **NEEDS_AGENT_1)
    # welfare (0, 15, 25): the big project.  Agent 1: the others' best without it is
    # max(0, 55 - 60) = 0 (big is infeasible), at xstar they get 75 - 100 = -25: it pays 25
    assert rep["xstar"][()] == 3
    assert vec(rep["pay"], 3) == [25, 15, 10]
    # here the others would want the big project (60 + 55 - 100 = 15 > 0) but cannot have it
    # without agent 1, so agent 1 is paid for enabling it: pay = max(0, 55 - 60) - 15 = -15
    # (0 if the big project were feasible without agent 1)
    case = dict(NEEDS_AGENT_1, u=[[0, 20, 80], [0, 30, 60], [0, 25, 55]])
    rep = solve_vcg(**case)
    assert_vcg_matches_ref(rep, **case)
    assert rep["xstar"][()] == 3
    assert vec(rep["pay"], 3) == [-15, 0, 0]
    full = dict(case, avail=[[1, 1, 1]] * 3)
    rep = solve_vcg(**full)
    assert_vcg_matches_ref(rep, **full)
    assert vec(rep["pay"], 3) == [0, 0, 0]


def test_vcg_ties_go_to_the_first_outcome():
    case = dict(u=[[0, 1], [1, 0]], u0=[0, 0], avail=[[1, 1], [1, 1]])
    rep = solve_vcg(**case)
    assert rep["xstar"][()] == 1
    assert_vcg_matches_ref(rep, **case)


def test_vcg_random_instances_vs_reference():
    rng = np.random.default_rng(7)
    for _ in range(40):
        n, NX = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        u = rng.integers(0, 10, (n, NX)).tolist()           # integers: ties happen
        u0 = rng.integers(-15, 1, NX).tolist()
        av = rng.integers(0, 2, (n, NX)); av[:, 0] = 1      # outcome 1 is always feasible
        assert_vcg_matches_ref(solve_vcg(u, u0, av.tolist()), u, u0, av.tolist())


def test_vcg_dsic_brute_force():
    """No misreport of any agent on a grid beats truth (true values at the chosen outcome)."""
    u, u0, av = NEEDS_AGENT_1["u"], NEEDS_AGENT_1["u0"], NEEDS_AGENT_1["avail"]
    truth = vec(solve_vcg(u, u0, av)["util"], 3)
    gains = []
    for i in range(3):
        for rep in itertools.product(range(0, 61, 20), repeat=2):
            uh = [row[:] for row in u]; uh[i] = [0, *rep]
            r = solve_vcg(uh, u0, av)
            gains.append(u[i][r["xstar"][()] - 1] - r["pay"][(i + 1,)] - truth[i])
    assert max(gains) <= 1e-9
    assert min(gains) < -1                                  # some misreports do hurt


def test_vcg_cli_json():
    c = NEEDS_AGENT_1
    doc = cli_json(VCG, "--set", "NX=3", "--set", f"u={c['u']}", "--set", f"u0={c['u0']}",
                   "--set", f"avail={c['avail']}")
    assert doc["status"] == "evaluated" and doc["objective"] is None
    ref = vcg(c["u"], c["u0"], c["avail"])
    rep = doc["reports"]
    assert rep["xstar"][""] == ref["xstar"] + 1
    assert jvec(rep["pay"], 3) == pytest.approx(ref["pay"])
    assert rep["surplus"][""] == pytest.approx(ref["surplus"])
    assert jvec(rep["IR"], 3) == [True] * 3


# ============================================================================ PVCG

N = 10
THETA = [0.5, 0.5]


def paper(x0, g0):
    """The paper's setting (Fig. 2): producer 1 (the paper's producer 0) at (x0, g0), the others (2.5, 0.5)."""
    return [x0] + [2.5] * 9, [g0] + [0.5] * 9


def solve_pvcg(xbar, gamma, theta=THETA, xmin=PAPER_XMIN, gmax=PAPER_GMAX):
    over = {"n": len(xbar), "m": len(theta), "xbar": list(xbar), "gamma": list(gamma),
            "theta": list(theta), "xmin": xmin, "gmax": gmax}
    res = mechdsl.load(PVCG, overrides=over).solve()
    assert res.status == "evaluated"
    assert len(res.aux) == 2 * len(xbar) + 1                # Eff, Without[i], Worst[i]
    assert all(a["ok"] and a["feasible"] and a["status"] == "locally optimal" for a in res.aux.values())
    return res.reports


def assert_pvcg_matches_ref(rep, xbar, gamma, theta=THETA, xmin=PAPER_XMIN, gmax=PAPER_GMAX, tol=1e-7):
    n = len(xbar)
    ref = pvcg(n, xbar, gamma, theta, xmin, gmax)
    assert rep["S"][()] == pytest.approx(ref["S"], abs=tol)
    for k in ("S_minus", "x", "tau", "h", "p", "u"):
        assert vec(rep[k], n) == pytest.approx(ref[k], abs=tol), k
    assert rep["budget_surplus"][()] == pytest.approx(ref["budget_surplus"], abs=tol)
    assert all(vec(rep["IR"], n)) == ref["IR"]
    assert rep["WBB"][()] == ref["WBB"]
    return ref


def test_pvcg_default_is_the_paper_setting():
    res = mechdsl.load(PVCG).solve()
    p = res.parameters
    assert (p["n"], p["m"], p["xmin"], p["gmax"]) == (10, 2, 0, 1)
    assert (vec(p["xbar"], N), vec(p["gamma"], N)) == paper(3, 0.2)
    assert vec(p["theta"], 2) == THETA
    rep = res.reports
    ref = assert_pvcg_matches_ref(rep, *paper(3, 0.2))
    # the paper's setting (Fig. 2), by hand: X* = n (sum theta)^2 / (4 * 0.5^2) = 10, so
    # S* = sqrt(10 * 10) - 0.2 * 3 - 0.5 * 7 = 5.9, S*_{-0} = 10 - 0.5 * 10 = 5, tau_0 = 0.9 + 0.6 = 1.5
    assert rep["S"][()] == pytest.approx(5.9, abs=1e-7)
    assert rep["S_minus"][(1,)] == pytest.approx(5.0, abs=1e-7)
    assert rep["tau"][(1,)] == pytest.approx(1.5, abs=1e-7)
    # producer 1 full, the 7 remaining units split among the nine tied producers, 7/9 each
    assert rep["Xstar"][()] == pytest.approx(10, abs=1e-7)
    assert vec(rep["x"], N) == pytest.approx([3] + [7 / 9] * 9, abs=1e-7)
    assert vec(rep["h"], N) == pytest.approx([0] * N, abs=1e-7)     # xmin = 0: h = 0
    assert vec(rep["IR"], N) == [True] * N and rep["WBB"][()] is True
    assert ref["IR"] and ref["WBB"]


def test_pvcg_paper_high_cost_cli_json():
    """Producer 1 at (3, 0.7) (specs/data/pvcg_high_cost.toml): excluded, tau_0 = 0 (paper)."""
    xbar, gamma = paper(3, 0.7)
    doc = cli_json(PVCG, "--data", SPECS / "data" / "pvcg_high_cost.toml")
    assert doc["status"] == "evaluated"
    assert (jvec(doc["parameters"]["xbar"], N), jvec(doc["parameters"]["gamma"], N)) == (xbar, gamma)
    assert all(a["status"] == "locally optimal" for a in doc["aux"].values()) and len(doc["aux"]) == 21
    rep = doc["reports"]
    ref = pvcg(N, xbar, gamma, THETA)
    assert rep["tau"]["1"] == pytest.approx(0.0, abs=1e-7)          # paper
    assert rep["x"]["1"] == pytest.approx(0.0, abs=1e-7)
    assert rep["S"][""] == pytest.approx(ref["S"], abs=1e-7)
    for k in ("S_minus", "x", "tau", "h", "p", "u"):
        assert jvec(rep[k], N) == pytest.approx(ref[k], abs=1e-7), k
    assert rep["budget_surplus"][""] == pytest.approx(ref["budget_surplus"], abs=1e-7)
    assert jvec(rep["IR"], N) == [True] * N and rep["WBB"][""] is True


def test_pvcg_fig2_payment_shape():
    """Fig. 2 (text): p_0 is constant in gamma_0 below a threshold and drops to ~0 above it
    (threshold 0.5, the others' cost); p_0 increases with the reported capacity x_0."""
    p_g = [solve_pvcg(*paper(3, g))["p"][(1,)] for g in (0.1, 0.3, 0.45, 0.55, 0.8)]
    assert p_g == pytest.approx([pvcg(N, *paper(3, g), THETA)["p"][0] for g in (0.1, 0.3, 0.45, 0.55, 0.8)],
                                abs=1e-7)
    assert p_g == pytest.approx([1.5, 1.5, 1.5, 0, 0], abs=1e-7)
    p_x = [solve_pvcg(*paper(x, 0.2))["p"][(1,)] for x in (0.5, 1.5, 3, 4.5)]
    assert p_x == pytest.approx([pvcg(N, *paper(x, 0.2), THETA)["p"][0] for x in (0.5, 1.5, 3, 4.5)], abs=1e-7)
    assert all(b > a + 0.1 for a, b in zip(p_x, p_x[1:]))


def test_pvcg_ties_split_in_proportion_to_capacity():
    # merit order: cost 0.1 (producers 1 and 6, 3 units, both full), cost 0.4 (producers 2, 3, 4,
    # 6.5 units), cost 0.8 (producer 5).  X* = n (sum theta)^2 / (4 * 0.4^2) = 7.59375 lies inside
    # the 0.4 level: the three tied producers straddle the marginal unit and share it pro rata.
    xbar = [1, 2, 1.5, 3, 0.5, 2]
    gamma = [0.1, 0.4, 0.4, 0.4, 0.8, 0.1]
    theta = [0.6, 0.3]
    rep = solve_pvcg(xbar, gamma, theta)
    assert_pvcg_matches_ref(rep, xbar, gamma, theta)
    X = 6 * 0.9 ** 2 / (4 * 0.4 ** 2)
    assert rep["Xstar"][()] == pytest.approx(X, abs=1e-7)
    eta = (X - 3) / 6.5
    assert vec(rep["x"], 6) == pytest.approx([1, 2 * eta, 1.5 * eta, 3 * eta, 0, 2], abs=1e-7)
    assert 0 < eta < 1


def test_pvcg_adjustment_payment_with_xmin_positive():
    """xmin > 0: the Theorem-2 adjustment h_i < 0 (the worst type would still contribute)."""
    xbar, gamma, theta = [1, 2, 3, 1], [0.1, 0.25, 0.25, 0.3], [0.5, 0.4]
    rep = solve_pvcg(xbar, gamma, theta, xmin=0.5, gmax=0.3)
    ref = assert_pvcg_matches_ref(rep, xbar, gamma, theta, xmin=0.5, gmax=0.3)
    assert all(h < -0.01 for h in vec(rep["h"], 4))
    assert ref["IR"] and ref["WBB"] and vec(rep["IR"], 4) == [True] * 4 and rep["WBB"][()] is True


def test_pvcg_random_instances_vs_reference():
    rng = np.random.default_rng(3)
    for k in range(8):
        n = int(rng.integers(2, 8))
        lo, gmax = (0.0, 1.0) if k % 2 else (1.0, 0.3)
        xbar = rng.uniform(lo, 5, n).round(3).tolist()
        gamma = rng.uniform(0, gmax, n).round(1).tolist()   # rounded: some ties
        theta = rng.uniform(0, 1, 2).round(3).tolist()
        rep = solve_pvcg(xbar, gamma, theta, lo, gmax)
        ref = assert_pvcg_matches_ref(rep, xbar, gamma, theta, lo, gmax, tol=1e-6)
        assert ref["IR"] and ref["WBB"]                     # Theorem 2 / Corollary 4 on the support


# -------------------------------------------------------------- DSIC (Proposition 1)

def spec_utility_under_misreport(i, xbar_true, gamma_true, xhat, ghat, xbar, gamma, penalty=1e6):
    """Producer i (1-based) bids (xhat, ghat), the others bid xbar/gamma truthfully; the spec computes
    x and p from the bids; utility at the true cost, -penalty if the accepted amount exceeds the true
    capacity (the convention of refs.pvcg_utility_under_misreport)."""
    xb = list(xbar); xb[i - 1] = xhat
    gm = list(gamma); gm[i - 1] = ghat
    rep = solve_pvcg(xb, gm)
    xi = rep["x"][(i,)]
    if xi > xbar_true + 1e-7:
        return -float(penalty), True
    return rep["p"][(i,)] - gamma_true * xi, False


# Producer 1 at the paper's (3, 0.2), in the paper's setting; producer 2 at (2, 0.35) in the same
# setting otherwise (a one-producer cost level between producer 1's and the tied level 0.5, so
# that it earns a rent, 0.3, and misreports can strictly hurt).  The bid grids include the tied
# cost 0.5 and over-promised capacities (xhat > true xbar): punished when accepted beyond the
# true capacity, harmless when the bid cost keeps the acceptance within it.
DSIC_CASES = {
    1: (paper(3, 0.2), [0, 1, 3, 3.5, 5], [0, 0.2, 0.4, 0.5, 0.6, 1.0]),
    2: (([3, 2] + [2.5] * 8, [0.2, 0.35] + [0.5] * 8), [0, 1, 2, 3, 5], [0, 0.35, 0.5, 0.6, 0.9]),
}


@pytest.mark.parametrize("i", sorted(DSIC_CASES))
def test_pvcg_dsic_brute_force(i):
    (xbar, gamma), xs, gs = DSIC_CASES[i]
    xt, gt = xbar[i - 1], gamma[i - 1]
    truth, punished = spec_utility_under_misreport(i, xt, gt, xt, gt, xbar, gamma)
    assert not punished
    assert truth == pytest.approx(pvcg(N, xbar, gamma, THETA)["u"][i - 1], abs=1e-7)
    assert truth == pytest.approx({1: 0.9, 2: 0.3}[i], abs=1e-7)    # S* - S*_{-i}, by hand
    gains, n_punished, n_over_ok = [], 0, 0
    for xh, gh in itertools.product(xs, gs):
        ui, pun = spec_utility_under_misreport(i, xt, gt, xh, gh, xbar, gamma)
        ref = pvcg_utility_under_misreport(N, i - 1, xt, gt, xh, gh, xbar, gamma, THETA)
        assert ui == pytest.approx(ref, abs=1e-6), (xh, gh)
        gains.append(ui - truth)
        n_punished += pun
        n_over_ok += (xh > xt and not pun)
    assert max(gains) <= 1e-6                               # truthful bidding is a best response
    assert n_punished > 0 and n_over_ok > 0                 # both over-promise cases are exercised
    assert min(g for g in gains if g > -1e5) < -0.05        # some unpunished misreports strictly hurt

"""Agents and type profiles: the single-item auction specs (BIC and DSIC) against Myerson's ironed
virtual values and against a brute-force scipy LP written over explicit profiles (tests/refs.py), and the
profile forms of the language (v[i], v[-i], (r, v[-i]), E[v], E[v[-i]], V^N) with their errors."""
from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mechdsl
from mechdsl.errors import MechError
from refs import auction_lp, ironed_virtual_values, myerson_revenue

SPECS = Path(__file__).resolve().parent.parent / "specs"
UNIFORM10 = list(range(1, 11)), [0.1] * 10
IRREGULAR = [1, 2, 3, 4, 5], [0.1, 0.4, 0.05, 0.05, 0.4]  # needs ironing: the virtual value is not monotone


def solve(spec, **over):
    return mechdsl.load(SPECS / spec, overrides=over or None).solve()


def _data(vals, pmf):
    return {"m": len(vals), "val": list(vals), "f": list(pmf)}


@pytest.mark.parametrize("spec", ["auction_bic.mech", "auction_dsic.mech"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_uniform_revenue_is_myerson(spec, n):
    r = solve(spec, n=n)
    want = myerson_revenue(*UNIFORM10, n)
    assert want == pytest.approx({1: 3.0, 2: 4.9, 3: 6.15}[n], abs=1e-12)  # the numbers
    assert r.status == "optimal" and r.verification.ok
    assert r.objective == pytest.approx(want, abs=1e-7)
    assert r.verification.max_regret <= 1e-7 and r.verification.max_ir_violation <= 1e-7


@pytest.mark.parametrize("spec", ["auction_bic.mech", "auction_dsic.mech"])
def test_four_bidders_run(spec):
    r = solve(spec, n=4)
    assert r.verification.ok
    assert r.objective == pytest.approx(myerson_revenue(*UNIFORM10, 4), abs=1e-6)


@pytest.mark.parametrize("mode", ["bic", "dsic"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_irregular_prior_needs_ironing(mode, n):
    """A non-regular prior: the ironed virtual values (and the monotonicity rows) matter."""
    vals, pmf = IRREGULAR
    phi, phibar = ironed_virtual_values(vals, pmf)
    assert any(b < a for a, b in zip(phi, phi[1:]))  # really irregular
    r = solve(f"auction_{mode}.mech", n=n, **_data(vals, pmf))
    assert r.verification.ok
    assert r.objective == pytest.approx(myerson_revenue(vals, pmf, n), abs=1e-7)
    assert r.objective == pytest.approx(auction_lp(vals, pmf, n, mode=mode), abs=1e-7)


def test_per_agent_prior_matches_the_explicit_lp():
    """Asymmetric bidders, f[i, k]: compare with an LP over explicit profiles written here."""
    from scipy.optimize import linprog

    vals = [1.0, 2.0, 3.0]
    F = [[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]]
    src = (SPECS / "auction_bic.mech").read_text().replace(
        "param f[k in 1..m] >= 0, <= 1 = 1 / m;", "param f[i in 1..n, k in 1..m] >= 0, <= 1;")
    got = mechdsl.loads(src, data={"n": 2, "m": 3, "val": vals, "f": F}).solve()
    assert got.verification.ok
    # Independent LP: variables a[i, s], t[i, s] for s in {0,1,2}^2; BIC and interim IR per bidder.
    K, n = 3, 2
    prof = list(itertools.product(range(K), repeat=n))
    col = {}
    for i in range(n):
        for s in prof:
            col[("a", i, s)] = len(col)
    for i in range(n):
        for s in prof:
            col[("t", i, s)] = len(col)
    P = {s: F[0][s[0]] * F[1][s[1]] for s in prof}
    c = np.zeros(len(col))
    for i in range(n):
        for s in prof:
            c[col[("t", i, s)]] = -P[s]
    A, b = [], []
    for s in prof:
        row = np.zeros(len(col))
        for i in range(n):
            row[col[("a", i, s)]] = 1
        A.append(row), b.append(1)

    def interim(i, k, rep):  # the vector of E_{s-i}[v_k a(rep, s-i) - t(rep, s-i)]
        row = np.zeros(len(col))
        for o in range(K):
            s = (rep, o) if i == 0 else (o, rep)
            w = F[1 - i][o]
            row[col[("a", i, s)]] += w * vals[k]
            row[col[("t", i, s)]] -= w
        return row
    for i in range(n):
        for k in range(K):
            A.append(-interim(i, k, k)), b.append(0)
            for k2 in range(K):
                if k2 != k:
                    A.append(interim(i, k, k2) - interim(i, k, k)), b.append(0)
    bounds = [(0, 1) if key[0] == "a" else (None, None) for key in col]
    ref = linprog(c, A_ub=np.array(A), b_ub=np.array(b), bounds=bounds, method="highs")
    assert ref.status == 0
    assert got.objective == pytest.approx(-ref.fun, abs=1e-8)


def test_bic_reduces_per_bidder_and_keeps_ironing_rows():
    out = subprocess.run([sys.executable, "-m", "mechdsl", "compile", str(SPECS / "auction_bic.mech"), "--set", "n=3",
                          "--explain"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "applied local_ic: IC: 3 x 90 -> 3 x 18 IC rows + 3 x 9 monotonicity rows" in out.stdout
    assert "E[v[-i]](x[i, (r, v[-i])])" in out.stdout  # the interim allocation is what must be monotone
    assert "monotonicity" in out.stdout
    # The reduced LP equals the full one (the reduction is exact), on the irregular prior too.
    for over in ({"n": 2}, {"n": 2, **_data(*IRREGULAR)}):
        red = mechdsl.load(SPECS / "auction_bic.mech", overrides=over).solve()
        full = mechdsl.load(SPECS / "auction_bic.mech", overrides=over).solve(reduce=False)
        assert red.objective == pytest.approx(full.objective, abs=1e-9)


def test_dsic_is_not_reduced_and_says_why():
    out = subprocess.run([sys.executable, "-m", "mechdsl", "compile", str(SPECS / "auction_dsic.mech"), "--explain"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "not applied local_ic" in out.stdout and "ex post (DSIC)" in out.stdout


def test_dsic_json_cli():
    out = subprocess.run([sys.executable, "-m", "mechdsl", "solve", str(SPECS / "auction_dsic.mech"), "--set", "n=3",
                          "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["status"] == "optimal" and doc["verification"]["ok"] is True
    assert doc["objective"] == pytest.approx(6.15, abs=1e-7)
    x = doc["variables"]["x"]
    assert len(x) == 3 * 10 ** 3  # x[i, v]: agent, then the profile's entries
    # Ex post: at every profile, the item goes to at most one unit in total, and (Myerson) to a highest
    # bidder when its value's virtual value is positive (phi(k) = 2k - 11 > 0 for k >= 6).
    for prof in itertools.product(range(1, 11), repeat=3):
        tot = sum(x[",".join(map(str, (i,) + prof))] for i in (1, 2, 3))
        assert tot <= 1 + 1e-7
        if max(prof) >= 6:
            assert tot == pytest.approx(1, abs=1e-6)
        elif max(prof) <= 5:
            assert tot == pytest.approx(0, abs=1e-6)


def test_menu_is_per_agent_and_type():
    r = solve("auction_bic.mech", n=2)
    rows = r.menu()
    assert len(rows) == 2 * 10
    assert {(row["agent"], row["type"]) for row in rows} == {(i, k) for i in (1, 2) for k in range(1, 11)}
    # Interim allocation: the probability of winning with value k against one uniform rival.
    for row in rows:
        k = row["type"]
        assert row["prob"] == pytest.approx(0.1)
        if k <= 5:
            assert row["E[x]"] == pytest.approx(0, abs=1e-7)
    # Interim utility is monotone in the type and zero for the lowest type (interim IR binds).
    for i in (1, 2):
        us = [row["U"] for row in rows if row["agent"] == i]
        assert us[0] == pytest.approx(0, abs=1e-7)
        assert all(b >= a - 1e-7 for a, b in zip(us, us[1:]))


def test_specs_do_not_encode_profiles():
    """No spec numbers profiles as integers (no mixed radix, no digit params): profiles are V^N."""
    for spec in ("auction_bic.mech", "auction_dsic.mech"):
        text = (SPECS / spec).read_text()
        assert "V^N" in text and "type v[i in N] in V ~ f" in text
        assert "mod(" not in text and "floor(" not in text and "m^" not in text


# ---------------------------------------------------------------- the forms and their errors
BASE = """
param n integer >= 1 = 2;
set N = 1..n;
set V = 1..3;
param val[k in V] = k;
type v[i in N] in V ~ uniform;
var x[i in N, v in V^N] >= 0, <= 1;
"""


def test_profile_forms_evaluate_exactly():
    """E[v], v[i], v[-i] and (r, v[-i]) in params and reports, against brute force over V^N."""
    src = BASE + """
param top = E[v](max{i in N} val[v[i]]);
param rivals[i in N] = E[v[-i]](sum{j in N: j != i} val[v[j]]);
maximize E[v](sum{i in N} x[i, v]);
constraint Cap[v in V^N]: sum{i in N} x[i, v] <= 1;
report winner_share[i in N] = E[v](x[i, v]);
report swap[i in N] = E[v[-i]](x[i, (1, v[-i])]);
"""
    r = mechdsl.loads(src, data={"n": 3}).solve()
    profiles = list(itertools.product(range(1, 4), repeat=3))
    assert r.parameters["top"] == pytest.approx(sum(max(p) for p in profiles) / len(profiles))
    assert r.objective == pytest.approx(1.0)
    assert all(r.parameters["rivals"][(i,)] == pytest.approx(2 * 2.0) for i in (1, 2, 3))  # 2 rivals, mean 2
    total = sum(r.reports["winner_share"].values())
    assert total == pytest.approx(1.0)
    x = r.variables["x"]
    for i in (1, 2, 3):
        want = sum(x[(i,) + tuple(1 if j == i else p[j - 1] for j in (1, 2, 3))] for p in profiles) / len(profiles)
        assert r.reports["swap"][(i,)] == pytest.approx(want)


def _err(src, data=None):
    with pytest.raises(MechError) as ei:
        mechdsl.loads(src, data=data).solve()
    return str(ei.value)


@pytest.mark.parametrize("body, needle", [
    ("maximize E[v](x[1, v] * 0) + E[v[-1]](x[1, v]);", "agent i's own type is not fixed"),
    ("maximize E[v](x[1, v, 2]);", "wrong number of indices"),
    ("maximize E[v](x[1, v] + v);", "must be a number, but this is a profile"),
    ("maximize E[v](x[1, (2, v)]);", "(r, v[-i])"),
    ("set W = 1..2 * 1..2;\nvar y[w in W^N];\nmaximize 0;", "dimension 1"),
    ("maximize E[V[-1]](1);", "must be a type per agent"),
])
def test_profile_misuse_is_located(body, needle):
    msg = _err(BASE + body)
    assert needle in msg
    assert "<string>:" in msg and "^" in msg


def test_prior_with_three_indices_is_an_error():
    src = BASE.replace("~ uniform", "~ g").replace("type v", "param g[a in 1..2, b in 1..2, c in 1..2] = 0.1;\ntype v")
    msg = _err(src + "maximize 0;")
    assert "indexed by the type" in msg


def test_profile_set_too_large_is_a_located_error():
    msg = _err(BASE + "maximize E[v](x[1, v]);", data={"n": 40})
    assert "profiles" in msg or "elements" in msg

"""Reductions (issue 3): soundness against the full model and independent answers."""
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy.optimize import linprog

import mechdsl
from conftest import SPECS

SCREENING = SPECS / "screening.mech"


def closed_form_screening(K):
    """Uniform types theta_k = k/K: q_k = max(0, theta_k - (1 - F_k)/f_k * (theta_{k+1} - theta_k))."""
    theta = np.arange(1, K + 1) / K
    q = np.maximum(0.0, (2 * np.arange(1, K + 1) - K) / K)  # virtual value, monotone: no ironing
    p = np.empty(K)
    p[0] = theta[0] * q[0]
    for k in range(1, K):
        p[k] = p[k - 1] + theta[k] * (q[k] - q[k - 1])  # binding downward IC
    return float(np.mean(p - q ** 2 / 2)), q, p


@pytest.mark.parametrize("K", [10, 57, 100])
def test_screening_matches_the_closed_form(K):
    res = mechdsl.load(SCREENING, overrides={"K": K}).solve()
    opt, q, p = closed_form_screening(K)
    assert res.objective == pytest.approx(opt, abs=1e-7)
    assert [res.variables["q"][(k,)] for k in range(1, K + 1)] == pytest.approx(q, abs=1e-5)
    assert [res.variables["p"][(k,)] for k in range(1, K + 1)] == pytest.approx(p, abs=1e-5)
    assert res.verification.ok and res.verification.max_regret <= 1e-6
    assert res.verification.checked == K * (K - 1) + K  # every ORIGINAL row is checked


def test_full_and_reduced_agree_at_K100():
    red = mechdsl.load(SCREENING, overrides={"K": 100}).solve()
    full = mechdsl.load(SCREENING, overrides={"K": 100}).solve(reduce=False)
    assert red.objective == pytest.approx(full.objective, abs=1e-6)
    assert [a.pass_name for a in red.reduction.applied] == ["local_ic", "drop_implied", "eliminate_payments"]
    assert full.reduction is None


def test_screening_reduction_counts_and_payment_rule():
    model = mechdsl.load(SCREENING, overrides={"K": 1000})
    cm = model.compile()
    assert cm.con_counts == {"MONO_q": 999}  # from 999000 IC + 1000 IR rows
    red = cm.reduction
    assert red.graph.counts()["IC"] == 999000
    text = "\n".join(d for a in red.applied for d in a.details)
    assert "Eq(p[1], q[1]*theta[1])" in text  # the derived payment rule, printed by SymPy


# ------------------------------------------------------------ property-based soundness
settings.register_profile("mech", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow])


@settings(settings.get_profile("mech"))
@given(K=st.integers(2, 7), data=st.data())
def test_random_screening_full_equals_reduced(K, data):
    steps = data.draw(st.lists(st.floats(0.05, 1.0), min_size=K, max_size=K))
    theta = np.cumsum(steps)
    w = np.array(data.draw(st.lists(st.floats(0.05, 1.0), min_size=K, max_size=K)))
    prob = (w / w.sum()).tolist()
    prob[-1] = 1.0 - sum(prob[:-1])
    over = {"K": K, "theta": theta.tolist(), "prob": prob}
    red = mechdsl.load(SCREENING, overrides=over).solve()
    full = mechdsl.load(SCREENING, overrides=over).solve(reduce=False)
    assert red.objective == pytest.approx(full.objective, rel=1e-6, abs=1e-7)
    assert red.verification.ok and red.verification.max_regret <= 1e-6  # against the FULL constraint set


@settings(settings.get_profile("mech"))
@given(K=st.integers(2, 6), data=st.data())
def test_random_repurchase_full_equals_reduced(K, data):
    v = np.cumsum(data.draw(st.lists(st.floats(0.1, 2.0), min_size=K, max_size=K)))
    lam = np.array(data.draw(st.lists(st.floats(0.05, 1.0), min_size=2 * K, max_size=2 * K))).reshape(2, K)
    lam = lam / lam.sum(axis=1, keepdims=True)
    over = {"K": K, "n": 2, "v": v.tolist(), "lam": lam.tolist(),
            "alpha": data.draw(st.floats(0.5, 5.0)), "D": data.draw(st.floats(0.0, 25.0)),
            "M": data.draw(st.floats(0.0, 4.0))}
    red = mechdsl.load(SPECS / "repurchase_one_capacity.mech", overrides=over).solve()
    full = mechdsl.load(SPECS / "repurchase_one_capacity.mech", overrides=over).solve(reduce=False)
    assert red.objective == pytest.approx(full.objective, rel=1e-7, abs=1e-7)
    assert red.verification.ok and red.verification.max_regret <= 1e-6


# ------------------------------------------------------------ the negative case
def test_two_item_additive_is_not_reduced_and_matches_an_independent_lp():
    model = mechdsl.load(SPECS / "two_item_additive.mech")
    red = model.reduce()
    assert red.applied == []
    reasons = dict(red.rejected)["local_ic"]
    assert any("2-dimensional type space" in r and "all pairs are kept" in r for r in reasons)
    res = model.solve()
    # Independent LP: variables (a1, a2, p) per type on the 3x3 grid.
    G = 3
    w = np.arange(G) / (G - 1)
    types = list(itertools.product(range(G), repeat=2))
    n = len(types)
    idx = {t: i for i, t in enumerate(types)}
    A, b = [], []
    def u_row(t, r):  # coefficients of U(t; r) in (a1, a2, p)
        row = np.zeros(3 * n)
        row[idx[r]], row[n + idx[r]], row[2 * n + idx[r]] = w[t[0]], w[t[1]], -1.0
        return row
    for t in types:
        for r in types:
            if r != t:
                A.append(u_row(t, r) - u_row(t, t)); b.append(0.0)  # U(t;r) - U(t;t) <= 0
        A.append(-u_row(t, t)); b.append(0.0)                       # -U(t;t) <= 0
    c = np.zeros(3 * n); c[2 * n:] = -1.0 / n
    lp = linprog(c, A_ub=np.array(A), b_ub=b, bounds=[(0, 1)] * (2 * n) + [(None, None)] * n, method="highs")
    assert res.objective == pytest.approx(-lp.fun, abs=1e-8)
    assert res.verification.checked == 72 + 9


# ------------------------------------------------------------ the dominance graph
def test_graph_api_explains_dropped_ic_and_ir():
    red = mechdsl.load(SCREENING, overrides={"K": 6}).reduce()
    g = red.graph
    assert g.is_implied("IC[5->1]") and g.is_implied("IR[4]")
    assert not g.is_implied("MONO_q[1,2]")
    text = "\n".join(g.explain("IC[5->1]"))
    assert "IC[5->1]  <=  IC[5->4] AND IC[4->1]" in text and "single crossing" in text
    assert "IR[4]  <=  IC[4->1] AND IR[1]" in "\n".join(g.explain("IR[4]"))
    red_ids = set(g.redundant())
    assert {"IC[6->1]", "IC[1->6]", "IR[6]"} <= red_ids
    nxg = g.to_networkx()
    # Every original IC and IR row is a node; with payments eliminated every one of them is implied.
    originals = [n for n, d in nxg.nodes(data=True) if d.get("family") in ("IC", "IR")]
    assert len(originals) == 6 * 5 + 6 and all(nxg.nodes[n]["implied"] for n in originals)


def test_cml_multi_type_reduces_and_keeps_its_optimum():
    model = mechdsl.load(SPECS / "cml_multi_type.mech", data=SPECS / "data" / "cml_scenario3.toml")
    red = model.reduce()
    applied = [a.pass_name for a in red.applied]
    assert applied == ["local_ic"]  # IR keeps f[i] (type-dependent); payments t also sit in the budget
    assert any("depends on the type" in r for r in dict(red.rejected)["drop_implied"])
    reduced = model.solve()
    full = mechdsl.load(SPECS / "cml_multi_type.mech", data=SPECS / "data" / "cml_scenario3.toml").solve(reduce=False)
    assert reduced.objective == pytest.approx(full.objective, abs=1e-6)
    assert reduced.verification.ok

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


# ------------------------------------------------------------ two types: the upward IC row needs MONO (regression)
TWO_TYPES = """
param theta[k in 1..2] > 0 = [1, 2];
param prob[k in 1..2] >= 0, <= 1 = [0.5, 0.5];
param w[k in 1..2] > 0 = [{w1}, {w2}];
type th in 1..2 ~ prob;
var q[k in 1..2] >= 0, init = 1;
var t[k in 1..2];
def S(x) = 2 * sqrt(x);
utility U(k, r) = t[r] - theta[k] * q[r];
ic IC[k in 1..2, r in 1..2: k != r]: U(k, k) >= U(k, r);
ir IR[k in 1..2]: U(k, k) >= 0;
maximize Profit: E[th](w[th] * S(q[th]) - t[th]);
"""


def two_type_closed_form(w1, w2):
    """The optimum of TWO_TYPES (theta = 1, 2; prob = 1/2 each), derived by hand with fractions.

    A supplier of cost type theta sells quantity q for transfer t; profit E[w S(q) - t], S(q) = 2 sqrt(q).
    Adding IC[1->2] and IC[2->1] gives (theta_2 - theta_1)(q_1 - q_2) >= 0, i.e. q_1 >= q_2.  For given
    q_1 >= q_2 the cheapest transfers are t_2 = theta_2 q_2 (IR[2] binds) and t_1 = t_2 + theta_1 (q_1 - q_2)
    (IC[1->2] binds), so the profit is
        V = 1/2 (2 w1 sqrt(q1) - q1 - q2) + 1/2 (2 w2 sqrt(q2) - 2 q2)  on  q1 >= q2.
    Without q1 >= q2: sqrt(q1) = w1 and sqrt(q2) = w2 / 3 (dV/dq2 = 1/2 (w2/sqrt(q2) - 3) = 0).
    If w1 >= w2 / 3 that point is feasible (separating).  Otherwise, V being concave, the optimum has
    q1 = q2 = q (pooling): both types pay t = theta_2 q = 2 q, V = (w1 + w2) sqrt(q) - 2 q, maximal at
    sqrt(q) = (w1 + w2) / 4 with V = (w1 + w2)^2 / 8.  For w = (1, 4): q = 25/16, V = 25/8 (the relaxed
    point q = (1, 16/9) without q1 >= q2 is worth 19/6 = 3.1667 but is not IC).
    """
    from fractions import Fraction as F
    w1, w2 = F(w1), F(w2)
    if w1 >= w2 / 3:
        s1, s2 = w1, w2 / 3
        q1, q2 = s1 * s1, s2 * s2
        return F(1, 2) * (2 * w1 * s1 - q1 - q2) + F(1, 2) * (2 * w2 * s2 - 2 * q2)
    return (w1 + w2) ** 2 / 8


def two_type_full_scipy(w1, w2):
    """The full two-type program (every IC and IR row, t free) by SLSQP from several starts: an independent check."""
    from scipy.optimize import minimize

    theta, w = np.array([1.0, 2.0]), np.array([w1, w2], dtype=float)

    def U(k, r, x):  # x = (q1, q2, t1, t2)
        return x[2 + r] - theta[k] * x[r]

    cons = [{"type": "ineq", "fun": (lambda x, k=k, r=r: U(k, k, x) - U(k, r, x))} for k in (0, 1) for r in (0, 1)
            if k != r]
    cons += [{"type": "ineq", "fun": (lambda x, k=k: U(k, k, x))} for k in (0, 1)]
    obj = lambda x: -0.5 * sum(w[k] * 2 * np.sqrt(max(x[k], 0.0)) - x[2 + k] for k in (0, 1))
    best = None
    for start in ([1, 1, 2, 2], [4, 0.5, 5, 1], [0.5, 3, 1, 6], [9, 9, 9, 9]):
        r = minimize(obj, start, method="SLSQP", constraints=cons, bounds=[(1e-9, None)] * 2 + [(None, None)] * 2,
                     options={"ftol": 1e-12, "maxiter": 500})
        if r.success and (best is None or r.fun < best.fun):
            best = r
    return -best.fun


@pytest.mark.parametrize("w", [(1, 4), (4, 1), (1, 2)], ids=["pooling", "separating", "pooling-2"])
@pytest.mark.parametrize("reduce", [True, False], ids=["reduced", "full"])
def test_two_types_match_the_closed_form_and_an_independent_solve(w, reduce):
    exact = float(two_type_closed_form(*w))
    assert two_type_full_scipy(*w) == pytest.approx(exact, abs=1e-6)
    res = mechdsl.loads(TWO_TYPES.format(w1=w[0], w2=w[1])).solve(reduce=reduce)
    assert res.objective == pytest.approx(exact, abs=1e-6)
    assert res.verification.ok and res.verification.max_regret <= 1e-6


def test_two_types_reduction_keeps_the_monotone_row_it_cites():
    spec = TWO_TYPES.format(w1=1, w2=4)
    red = mechdsl.loads(spec).reduce()
    assert [a.pass_name for a in red.applied] == ["local_ic", "drop_implied", "eliminate_payments"]
    assert [c.name for c in red.problem.constraints] == ["MONO_q"]  # the one monotonicity row is in the model
    assert any("implied by IC[1->2] AND IC[2->1]" in a.summary for a in red.applied)
    g = red.graph
    assert g.premises("IC[2->1]")[1] == ["IC[1->2]", "MONO_q[1,2]"]  # upward row: binding downward + MONO
    assert not g.is_implied("MONO_q[1,2]") and g.exists("MONO_q[1,2]")
    assert red.dangling_premises() == []


@pytest.mark.parametrize("spec, over, derived", [(SCREENING, {"K": 6}, 36), (SCREENING, {"K": 2}, 4),
                                                 (SPECS / "repurchase_one_capacity.mech", {}, 4),
                                                 (SPECS / "cml_two_type.mech", {}, 0)])
def test_every_premise_is_a_constraint_of_the_original_or_the_reduced_problem(spec, over, derived):
    red = mechdsl.load(spec, overrides=over).reduce()
    assert red.applied
    assert red.dangling_premises() == []
    assert len(set(red.graph.redundant())) == derived  # the rows derived (each premise checked above)


def test_eliminate_payments_refuses_without_the_monotone_family():
    """The typed fact is not enough: the MONO family it names must be in the problem."""
    from mechdsl.passes import PASSES, Facts
    from mechdsl.ir import nodes as ir

    model = mechdsl.loads(TWO_TYPES.format(w1=1, w2=4))
    inst = model.instance()
    problem, facts = model.mech.problem, Facts()
    for name in ("local_ic", "drop_implied"):
        p = PASSES[name](inst)
        assert p.accepts(problem, facts)
        problem, _, facts = p.apply(problem, facts)
    ep = PASSES["eliminate_payments"](inst)
    assert ep.accepts(problem, facts).ok
    without = ir.Problem(problem.vars, tuple(c for c in problem.constraints if c.name != "MONO_q"), problem.objective)
    acc = ep.accepts(without, facts)
    assert not acc.ok and any("monotone-allocation family" in r for r in acc.reasons)
    # nor does it run without local_ic's adjacent form (the upward row would have no premise)
    p = PASSES["drop_implied"](inst)
    acc = ep.accepts(*p.apply(model.mech.problem, facts)[::2])
    assert not acc.ok


# ------------------------------------------------------------ the chain: stages, invert, facts
def test_chain_stages_and_invert():
    from mechdsl.passes import AdjacentIC, ExtremeIR, ICStructure, MonotoneFamily, Stage
    from mechdsl.passes.eliminate_payments import EliminatePayments

    model = mechdsl.load(SCREENING, overrides={"K": 4})
    red = model.reduce()
    assert [s.pass_name for s in red.stages] == ["local_ic", "drop_implied", "eliminate_payments"]
    assert all(isinstance(s, Stage) for s in red.stages)
    assert [s.eliminated for s in red.stages] == [(), (), ("p",)]
    assert red.stages[-1].problem is red.problem and red.stages[0][1].var("p") is not None
    last_full = [s for s in red.stages if {v.name for v in s.problem.vars} >= {"q", "p"}][-1]
    assert last_full.pass_name == "drop_implied"
    assert [c.name for c in last_full.problem.constraints] == ["IC", "MONO_q", "IR"]
    # typed facts, one per family
    assert [f.key for f in red.facts.all(ICStructure)] == ["IC"]
    assert red.facts.get(MonotoneFamily, "IC").name == "MONO_q"
    assert red.facts.get(AdjacentIC, "IC").pairs == ((1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3))
    assert red.facts.get(ExtremeIR, "IR").extreme == 1
    # invert: the chain walks the inverses backwards; the payment rule p1 = theta1 q1, p_k = p_{k-1} + theta_k dq
    q = {(1,): 0.0, (2,): 0.2, (3,): 0.6, (4,): 1.0}
    out = red.invert({"q": dict(q)})
    theta = [0.25, 0.5, 0.75, 1.0]
    p = [theta[0] * q[(1,)]]
    for k in range(1, 4):
        p.append(p[-1] + theta[k] * (q[(k + 1,)] - q[(k,)]))
    assert [out["p"][(k,)] for k in range(1, 5)] == pytest.approx(p)
    assert out == red.chain.invert({"q": dict(q)}, red.inverse)
    assert isinstance(red.inverse[-1][0], EliminatePayments)


def test_constraint_id_lives_in_the_ir():
    from mechdsl.ir.ids import constraint_id
    from mechdsl.verify import constraint_id as old

    assert old is constraint_id


def test_objective_linearity_is_decided_on_the_ir():
    from mechdsl.evaluate import Evaluator
    from mechdsl.passes.eliminate_payments import linear_coefficients

    model = mechdsl.load(SCREENING, overrides={"K": 3, "prob": [0.2, 0.3, 0.5]})
    inst = model.instance()
    coefs = linear_coefficients(model.mech.problem.objective.expr, "p", Evaluator(inst))
    assert coefs == pytest.approx({(1,): 0.2, (2,): 0.3, (3,): 0.5})
    quad = SCREENING.read_text().replace("E[th](p[th] - q[th]^2 / 2)", "E[th](p[th] - p[th]^2 / 100 - q[th]^2 / 2)")
    assert quad != SCREENING.read_text()
    red = mechdsl.loads(quad, overrides={"K": 3}).reduce()
    assert [a.pass_name for a in red.applied] == ["local_ic", "drop_implied"]
    assert any("product" in r or "nonlinear" in r for r in dict(red.rejected)["eliminate_payments"])
    wrong_sign = SCREENING.read_text().replace("E[th](p[th] - q[th]^2 / 2)", "E[th](-p[th] - q[th]^2 / 2)")
    red = mechdsl.loads(wrong_sign, overrides={"K": 3}).reduce()
    assert any("does not strictly prefer a smaller p[1]" in r for r in dict(red.rejected)["eliminate_payments"])


def test_passes_import_neither_pyomo_nor_the_compilers():
    import ast
    from pathlib import Path

    for path in (Path(mechdsl.__file__).parent / "passes").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any("pyomo" in n or "compilers" in n for n in names), (path.name, names)

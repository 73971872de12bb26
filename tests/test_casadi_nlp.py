"""The NLP path: the IR compiled straight to CasADi MX (compilers/casadi/nlp.py) and its solve strategy.

The reference for paper 004 is an independent script written here: the same first-moment program built by
hand with CasADi MX (outcome matrix, all-pairs IC, IR, budget), its stand-alone values from the scalar
problem solved on a grid plus scipy refinement (tests/test_cml.py's ``standalone``), one IPOPT solve from
the stand-alone contract and, only for the all-zero start of scenario 2, a smoothed solve at mu = 1 that
warm-starts the exact one.  mechdsl's objective must equal it to 1e-8 on every scenario.
"""
import itertools
import math

import casadi as ca
import numpy as np
import pytest

import mechdsl
from conftest import SPECS
from test_cml import accuracy, standalone

SCENARIOS = {1: [0.2, 0.16, 0.12, 0.08, 0.04], 2: [1.0, 0.85, 0.7, 0.55, 0.4], 3: [0.5, 0.4, 0.03, 0.02, 0.001]}
OPTS = {"print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes", "ipopt.tol": 1e-11,
        "ipopt.bound_relax_factor": 0.0}


def _outcomes(N, p):
    rows, probs = [], []
    for n in itertools.product(range(N + 1), repeat=len(p)):
        if sum(n) == N:
            rows.append(n)
            probs.append(math.exp(math.lgamma(N + 1) + sum(k * math.log(q) - math.lgamma(k + 1) for k, q in zip(n, p))))
    return np.array(rows, float), np.array(probs)


def _acc(x, mu=None):
    mx = (lambda a, b: ca.fmax(a, b)) if mu is None else (lambda a, b: (a + b + ca.sqrt((a - b) ** 2 + mu ** 2)) / 2)
    xm = mx(x, 1.0)
    return mx(0.0, 1.0 - (ca.sqrt(2 * (2 + ca.log(xm))) + 4) / ca.sqrt(xm))


def direct(c, p, N=10):
    """The program of Section 5.1 written by hand: -> (objective, m, t)."""
    I = len(c)
    sa = [standalone(ci) for ci in c]
    m_alone, f = np.array([s[0] for s in sa]), np.array([s[1] for s in sa])
    Nmat, w = _outcomes(N, p)
    x = ca.MX.sym("x", 2 * I)
    m, t = x[:I], x[I:]

    def solver(mu):
        acc = _acc(ca.mtimes(ca.DM(Nmat), m), mu)
        g, lbg = [], []
        for i in range(I):
            for j in range(I):
                if i != j:
                    g.append(t[i] - c[i] * m[i] - t[j] + c[i] * m[j]); lbg.append(0.0)
            g.append(t[i] - c[i] * m[i] - f[i]); lbg.append(0.0)
            wi = w * (Nmat[:, i] >= 1)
            g.append(ca.dot(ca.DM(wi / wi.sum()), 100 * acc) - t[i]); lbg.append(0.0)
        return ca.nlpsol("d", "ipopt", {"x": x, "f": -ca.dot(ca.DM(w), acc), "g": ca.vertcat(*g)}, OPTS), lbg

    x0 = np.concatenate([m_alone, [100 * accuracy(v) for v in m_alone]])
    exact, lbg = solver(None)
    sol = exact(x0=x0, lbx=0, ubx=ca.inf, lbg=lbg, ubg=ca.inf)
    if -float(sol["f"]) <= 1e-12:   # the flat branch (scenario 2): one smoothed solve, then exact again
        smooth, _ = solver(1.0)
        warm = smooth(x0=x0, lbx=0, ubx=ca.inf, lbg=lbg, ubg=ca.inf)
        sol = exact(x0=warm["x"], lbx=0, ubx=ca.inf, lbg=lbg, ubg=ca.inf)
    xs = np.asarray(sol["x"]).ravel()
    return -float(sol["f"]), xs[:I], xs[I:]


@pytest.fixture(scope="module", params=[1, 2, 3, "two"])
def case(request):
    k = request.param
    if k == "two":
        res = mechdsl.load(SPECS / "cml_two_type.mech").solve()
        ref = direct([0.02, 0.01], [0.5, 0.5])
    else:
        res = mechdsl.load(SPECS / "cml_multi_type.mech", data=SPECS / "data" / f"cml_scenario{k}.toml").solve()
        ref = direct(SCENARIOS[k], [0.2] * 5)
    return k, res, ref


def test_objective_equals_the_direct_casadi_script(case):
    k, res, (obj, m, t) = case
    assert res.status == "locally optimal" and res.solver == "ipopt (casadi)"
    assert res.verification.ok
    assert abs(res.objective - obj) <= 1e-8, (k, res.objective, obj)


def test_reported_objective_is_the_objective_at_the_reported_contract(case):
    """E[a(n . m)] recomputed here in plain floats at mechdsl's m, outcome by outcome."""
    k, res, _ = case
    I = len(res.variables["m"])
    p = [0.5, 0.5] if k == "two" else [0.2] * 5
    Nmat, w = _outcomes(10, p)
    m = np.array([res.variables["m"][(i,)] for i in range(1, I + 1)])
    value = math.fsum(wi * accuracy(float(n @ m)) for n, wi in zip(Nmat, w))
    assert res.objective == pytest.approx(value, abs=1e-12)


def test_kkt_certificate_reaches_1e8(case):
    k, res, _ = case
    kkt = res.verification.kkt
    assert kkt["primal_residual"] <= 1e-8 and kkt["dual_residual"] <= 1e-8 and kkt["complementarity"] <= 1e-8, kkt


def test_continuation_only_where_needed(case):
    """Scenario 2's start (nobody trains alone: m_alone = 0) is the all-zero contract, a stationary point on
    the flat branch of the accuracy; only there does the continuation run, and it finds the pooling
    contract of the paper (0.6905, every type asked for the same m)."""
    k, res, (obj, m_ref, _) = case
    notes = " ".join(res.notes)
    if k == 2:
        assert "smoothing continuation" in notes
        assert res.objective == pytest.approx(0.6905, abs=5e-5)
        m = list(res.variables["m"].values())
        assert max(m) - min(m) <= 1e-6 * max(m)
        assert np.allclose(m, m_ref, rtol=1e-6)
    else:
        assert "solved directly" in notes and "smoothing continuation" not in notes


def test_exact_solve_alone_stalls_in_scenario_2():
    """Without the continuation IPOPT stops at the all-zero contract (objective 0): the failure it exists for."""
    from mechdsl.compilers.casadi.nlp import build_nlp

    model = mechdsl.load(SPECS / "cml_multi_type.mech", data=SPECS / "data" / "cml_scenario2.toml")
    red = model.reduce()
    nlp = build_nlp(red.problem, model.instance())
    out = nlp.solve(nlp.x_init)
    assert out.ok and abs(out.objective) <= 1e-9 and out.flat > 0
    # the independent script stalls the same way from the same start (its first, exact, solve)
    I = 5
    Nmat, w = _outcomes(10, [0.2] * I)
    x = ca.MX.sym("x", I)
    f = -ca.dot(ca.DM(w), _acc(ca.mtimes(ca.DM(Nmat), x)))
    s = ca.nlpsol("s", "ipopt", {"x": x, "f": f}, OPTS)(x0=nlp.x_init[:I], lbx=0, ubx=ca.inf)
    assert -float(s["f"]) == pytest.approx(out.objective, abs=1e-9)


def test_expectations_are_one_vector_expression_whatever_the_number_of_outcomes():
    """The graph does not grow with the outcomes: N = 10 (1001 outcomes) and N = 20 (10626) have the same
    number of MX nodes, and the objective evaluates to the outcome-by-outcome sum computed here."""
    from mechdsl.compilers.casadi.nlp import build_nlp

    sizes = {}
    for N in (10, 20):
        model = mechdsl.load(SPECS / "cml_multi_type.mech", overrides={"N": N})
        nlp = build_nlp(model.reduce().problem, model.instance())
        sizes[N] = ca.Function("f", [nlp.exact.X], [nlp.exact.f]).n_nodes()
        x = nlp.x_init + 1.0
        Nmat, w = _outcomes(N, [0.2] * 5)
        ref = math.fsum(wi * accuracy(float(n @ x[:5])) for n, wi in zip(Nmat, w))
        assert nlp.objective(x) == pytest.approx(ref, abs=1e-12)
    assert sizes[10] == sizes[20] and sizes[10] < 200


def test_vectorised_verification_equals_the_scalar_loop():
    """verify's expectations over populations (numpy over all outcomes) give the scalar loop's numbers."""
    from mechdsl.evaluate import Evaluator, ValuesTarget
    from mechdsl.verify import _PopulationEvaluator

    model = mechdsl.load(SPECS / "cml_multi_type.mech", data=SPECS / "data" / "cml_scenario3.toml")
    res = model.solve()
    inst = model.instance()
    values = res.variables
    fast = _PopulationEvaluator(inst, ValuesTarget(values), values)
    slow = Evaluator(inst, ValuesTarget(values))
    budget = next(c for c in model.mech.problem.constraints if c.name == "Budget")
    (i,) = budget.domain.binders
    for k in range(1, 6):
        a = fast.value(budget.body.rhs, {i: k})
        b = slow.value(budget.body.rhs, {i: k})
        assert a == pytest.approx(b, rel=1e-13, abs=1e-13)
    obj = model.mech.problem.objective.expr
    assert fast.value(obj, {}) == pytest.approx(slow.value(obj, {}), rel=1e-13)


def test_exact_epigraph_in_an_nlp():
    """min in a maximised objective next to a log: the min becomes a hypograph variable (exact), the log keeps
    the model an NLP; optimum at x = 2, log(2) + 2 (closed form), also on a fine grid."""
    res = mechdsl.loads("var x >= 0.1, <= 5, init = 1;\nmaximize log(x) + 2 * min(3 - x, 1);\n").solve()
    assert res.problem_class == "NLP" and res.solver == "ipopt (casadi)"
    grid = np.linspace(0.1, 5, 490001)
    assert res.objective == pytest.approx(float(np.max(np.log(grid) + 2 * np.minimum(3 - grid, 1))), abs=1e-9)
    assert res.objective == pytest.approx(math.log(2) + 2, abs=1e-8)
    assert any("epigraph" in n for n in res.notes)


def test_aux_multistart_reports_the_winning_start():
    """Scenario 3: types 1, 2 would not train alone (f = 0 at m = 0, the lower bound), types 3-5 would
    (an interior optimum from init); the note names the start each one's answer came from."""
    res = mechdsl.load(SPECS / "cml_multi_type.mech", data=SPECS / "data" / "cml_scenario3.toml").solve()
    note = next(n for n in res.notes if n.startswith("auxiliary NLPs"))
    for i, c in enumerate(SCENARIOS[3], 1):
        m_ref, f_ref = standalone(c)
        assert res.parameters["f"][(i,)] == pytest.approx(f_ref, abs=1e-8)
        assert f"alone[{i}]" in note
    assert "lower bounds: alone[1], alone[2]" in note

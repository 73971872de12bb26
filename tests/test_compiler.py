"""IR, compiler and solver behaviour on small models with independently computed answers."""
import itertools
import math

import numpy as np
import pytest
from scipy.stats import multinomial

import mechdsl
from mechdsl.compilers.pyomo.model import UnsupportedError
from mechdsl.verify import verify


def solve(text, **kw):
    return mechdsl.loads(text, "t.mech").solve(**kw)


def test_min_in_maximised_objective_is_linearised_exactly():
    res = solve("var x >= 0, <= 5;\nmaximize x + 2 * min(3 - x, 1);\n")
    assert res.problem_class == "LP" and res.solver == "HiGHS"
    grid = np.linspace(0, 5, 50001)
    assert res.objective == pytest.approx(max(g + 2 * min(3 - g, 1) for g in grid), abs=1e-6)
    assert any("exact" in n for n in res.notes)


def test_max_in_a_constraint_lower_side_is_linearised_exactly():
    # max(x, 2 - x) <= y is convex: epigraph rows are exact and the model stays an LP.
    res = solve("var x >= -3, <= 3;\nvar y;\nconstraint C: max(x, 2 - x) <= y;\nminimize y;\n")
    assert res.problem_class == "LP"
    grid = np.linspace(-3, 3, 60001)
    assert res.objective == pytest.approx(min(max(g, 2 - g) for g in grid), abs=1e-9)


def test_nonconvex_max_is_smoothed_and_multistart_finds_the_boundary_optimum():
    text = "var x >= 0, <= 3, init = 0;\nmaximize max(x - 1, 1 - x);\n"
    single = solve(text)
    assert single.problem_class == "NLP" and single.status == "locally optimal"
    multi = solve(text, multistart=True)
    grid = np.linspace(0, 3, 30001)
    best = max(max(g - 1, 1 - g) for g in grid)
    assert multi.objective == pytest.approx(best, abs=1e-6)
    assert multi.objective >= single.objective - 1e-9


@pytest.mark.parametrize("text, cls", [
    ("var x >= 0, <= 1;\nmaximize x;\n", "LP"),
    ("var x >= 0, <= 1;\nmaximize x - x^2;\n", "QP"),
    ("var x binary;\nvar y >= 0, <= 1;\nmaximize x + y;\n", "MILP"),
    ("var x >= 1, <= 2;\nmaximize log(x);\n", "NLP"),
])
def test_problem_class(text, cls):
    assert mechdsl.loads(text).compile().problem_class == cls


def test_qp_solved_by_highs_matches_closed_form():
    res = solve("var x >= 0, <= 1;\nmaximize x - x^2;\n")
    grid = np.linspace(0, 1, 100001)
    assert res.solver == "HiGHS" and res.objective == pytest.approx(max(grid - grid ** 2), abs=1e-7)


def test_milp_knapsack_matches_brute_force():
    w, v, cap = [3, 4, 5, 6], [4, 5, 7, 8], 10
    text = (f"param w[i in 1..4] = {w};\nparam v[i in 1..4] = {v};\nvar b[i in 1..4] binary;\n"
            f"budget Cap: sum{{i in 1..4}} w[i] * b[i] <= {cap};\nmaximize sum{{i in 1..4}} v[i] * b[i];\n")
    res = solve(text)
    best = max(sum(vi for vi, s in zip(v, pick) if s) for pick in itertools.product([0, 1], repeat=4)
               if sum(wi for wi, s in zip(w, pick) if s) <= cap)
    assert res.problem_class == "MILP" and res.objective == pytest.approx(best)
    assert all(x in (0.0, 1.0) for x in map(round, res.variables["b"].values()))


def test_expectation_over_product_type():
    text = ("param w[a in 1..2, b in 1..3] = [[1, 2, 3], [4, 5, 6]];\ntype g in 1..2 * 1..3 ~ uniform;\n"
            "param m = E[g](w[g]);\nparam c = E[g](w[g]^2);\n")
    inst = mechdsl.loads(text).instance()
    assert inst.params["m"] == pytest.approx(np.mean([1, 2, 3, 4, 5, 6]))
    assert inst.params["c"] == pytest.approx(np.mean(np.square([1, 2, 3, 4, 5, 6])))


def test_population_expectations_match_scipy_multinomial():
    text = ("param p[i in 1..3] = [0.2, 0.3, 0.5];\ntype th in 1..3 ~ p;\npopulation n ~ multinomial(4, th);\n"
            "param e2 = E[n](n[2]^2);\nparam c1 = E[n | n[1] >= 1](n[3]);\n")
    inst = mechdsl.loads(text).instance()
    outs = [(np.array(k), multinomial.pmf(k, 4, [0.2, 0.3, 0.5]))
            for k in itertools.product(range(5), repeat=3) if sum(k) == 4]
    assert inst.params["e2"] == pytest.approx(sum(pr * k[1] ** 2 for k, pr in outs), rel=1e-12)
    cond = [(k, pr) for k, pr in outs if k[0] >= 1]
    assert inst.params["c1"] == pytest.approx(sum(pr * k[2] for k, pr in cond) / sum(pr for _, pr in cond), rel=1e-12)


def test_filtered_sets_prod_and_lists():
    text = ("set S = {(a, b) in 1..3 * 1..3 : a < b};\nset L = {2, 5, 7};\nparam n = sum{(a, b) in S} 1;\n"
            "param q = prod{i in 1..4 : i != 2} i;\nparam s = sum{l in L} l;\n")
    inst = mechdsl.loads(text).instance()
    assert inst.sets["S"] == [(1, 2), (1, 3), (2, 3)]
    pairs = [(a, b) for a in range(1, 4) for b in range(1, 4) if a < b]
    assert inst.sets["S"] == pairs
    assert inst.params["n"] == len(pairs)
    assert inst.params["q"] == math.prod(i for i in range(1, 5) if i != 2)
    assert inst.params["s"] == sum([2, 5, 7])


def test_implication_with_data_premise_compiles():
    text = "var x[i in 1..3] >= 0, <= 5;\nconstraint C[i in 1..3]: i >= 2 -> x[i] <= 1;\nmaximize sum{i in 1..3} x[i];\n"
    res = solve(text)
    assert res.objective == pytest.approx(sum(5 if i < 2 else 1 for i in range(1, 4)))  # x[1] free, x[2..3] <= 1
    assert res.verification.ok


def test_equality_premise_with_variables_is_refused_clearly():
    text = "var x[i in 1..2] >= 0, <= 5;\nic C: x[1] == 2 -> x[2] <= 1;\nmaximize x[1] + x[2];\n"
    with pytest.raises(UnsupportedError) as err:
        mechdsl.loads(text, "imp.mech").compile()
    assert "imp.mech:2:1" in str(err.value) and "premise with variables must be an inequality" in str(err.value)
    assert err.value.exit_code == 2


def test_a_nested_alternative_is_refused_clearly():
    text = "var x >= 0, <= 1;\nvar y >= 0, <= 1;\nconstraint C: x <= 0.2 or (y <= 0.1 -> x >= 0.5);\nmaximize x;\n"
    with pytest.raises((UnsupportedError, mechdsl.MechSemanticError)):
        mechdsl.loads(text, "n.mech").compile()


def test_aux_recursion_backward_induction():
    # V[h] = max_{z in [0,1]} z + sum_{g < h} V[g]  ->  V = 1, 2, 4, 8 (doubling), solved in dependency order.
    text = ("aux V[h in 1..4] {\n  var z >= 0, <= 1;\n  maximize z + sum{g in 1..h-1} V[g].objective;\n}\n"
            "param val[h in 1..4] = V[h].objective;\nparam zz[h in 1..4] = V[h].z;\n")
    inst = mechdsl.loads(text).instance()
    expected = []
    for h in range(1, 5):  # the same recursion, computed directly
        expected.append(1 + sum(expected))
    assert [inst.params["val"][(h,)] for h in range(1, 5)] == pytest.approx(expected, abs=1e-9)
    assert all(inst.params["zz"][(h,)] == pytest.approx(1, abs=1e-9) for h in range(1, 5))


def test_components_named_after_the_spec():
    text = ("param K = 2;\nvar x[k in 1..K] >= 0, <= 1;\nic IC[t in 1..K, r in 1..K: t != r]: x[t] >= x[r] - 1;\n"
            "maximize Welfare: sum{k in 1..K} x[k];\n")
    cm = mechdsl.loads(text).compile()
    assert set(cm.model.IC.keys()) == {(1, 2), (2, 1)}
    assert cm.model.Welfare.sense == -1  # pyomo.maximize
    assert list(cm.model.x.keys()) == [1, 2]


def test_verification_measures_regret_of_a_given_menu():
    text = ("param v[k in 1..2] = [1, 2];\nvar x[k in 1..2] >= 0;\nvar p[k in 1..2] >= 0;\n"
            "utility U(t, r) = p[r] - v[t] * x[r];\nic IC[t in 1..2, r in 1..2: t != r]: U(t, t) >= U(t, r);\n"
            "ir IR[t in 1..2]: U(t, t) >= 0;\nmaximize sum{k in 1..2} (3 * x[k] - p[k]);\n")
    model = mechdsl.loads(text).check()
    inst = model.instance()
    values = {"x": {(1,): 1.0, (2,): 0.5}, "p": {(1,): 1.0, (2,): 1.6}}
    ver = verify(inst, model.mech.problem, values)
    # Hand computation: type 1 gets 1-1=0 truthfully, 1.6-0.5=1.1 by reporting 2 -> regret 1.1;
    # type 2 gets 1.6-1=0.6 truthfully, 1-2=-1 by reporting 1 -> no regret.  IR: all >= 0.
    assert ver.max_regret == pytest.approx(1.1)
    assert ver.max_ir_violation == 0 and not ver.ok
    assert ver.worst[0][1] == "IC[1->2]"

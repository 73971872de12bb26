"""Tests for the Pyomo -> CasADi/IPOPT bridge.

Expected values come from closed forms or from ``scipy.optimize`` computed
inside the tests.
"""

import math
import time

import casadi
import numpy as np
import pyomo.environ as pe
import pytest
from pyomo.core.expr.numeric_expr import MaxExpression, MinExpression
from scipy.optimize import minimize

try:
    from mechdsl.compilers.pyomo.casadi_ipopt import (
        NLPResult,
        solve_with_casadi,
        to_casadi,
    )
except ImportError:  # running from the source tree without installation
    from compilers.pyomo.casadi_ipopt import NLPResult, solve_with_casadi, to_casadi


def _evaluator(expr, variables):
    """Return ``f(values) -> float`` evaluating ``expr`` through CasADi."""
    syms = [casadi.SX.sym(f"v{i}") for i in range(len(variables))]
    varmap = pe.ComponentMap(zip(variables, syms))
    sx = to_casadi(expr, varmap)
    fun = casadi.Function("f", syms, [sx])
    return lambda vals: float(fun(*vals))


# --------------------------------------------------------------------------
# Solving
# --------------------------------------------------------------------------

def test_rosenbrock_unconstrained():
    m = pe.ConcreteModel()
    m.x = pe.Var(initialize=-1.2)
    m.y = pe.Var(initialize=1.0)
    m.obj = pe.Objective(expr=(1 - m.x) ** 2 + 100 * (m.y - m.x**2) ** 2)

    res = solve_with_casadi(m)

    assert isinstance(res, NLPResult)
    assert res.status == "locally_optimal"
    assert res.message == "Solve_Succeeded"
    assert res.iterations is not None and res.iterations > 0
    assert res.wall_time >= 0.0
    assert pe.value(m.x) == pytest.approx(1.0, abs=1e-6)
    assert pe.value(m.y) == pytest.approx(1.0, abs=1e-6)
    assert res.objective == pytest.approx(0.0, abs=1e-10)


def test_constrained_convex_nlp_matches_scipy_slsqp():
    # min (x-2)^2 + (y-1)^2 + z^2 + exp(-x)
    # s.t. x^2 + y^2 <= 2,  x + y + z == 1,  0 <= x <= 1.5,  y >= -1
    m = pe.ConcreteModel()
    m.x = pe.Var(bounds=(0, 1.5))
    m.y = pe.Var(bounds=(-1, None))
    m.z = pe.Var()
    m.obj = pe.Objective(
        expr=(m.x - 2) ** 2 + (m.y - 1) ** 2 + m.z**2 + pe.exp(-m.x))
    m.disk = pe.Constraint(expr=m.x**2 + m.y**2 <= 2)
    m.plane = pe.Constraint(expr=m.x + m.y + m.z == 1)

    res = solve_with_casadi(m)

    def f(v):
        x, y, z = v
        return (x - 2) ** 2 + (y - 1) ** 2 + z**2 + math.exp(-x)

    ref = minimize(
        f,
        x0=[0.5, 0.0, 0.0],
        method="SLSQP",
        bounds=[(0, 1.5), (-1, None), (None, None)],
        constraints=[
            {"type": "ineq", "fun": lambda v: 2 - v[0] ** 2 - v[1] ** 2},
            {"type": "eq", "fun": lambda v: v[0] + v[1] + v[2] - 1},
        ],
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    assert ref.success

    assert res.status == "locally_optimal"
    assert res.objective == pytest.approx(ref.fun, abs=1e-7)
    got = [pe.value(m.x), pe.value(m.y), pe.value(m.z)]
    np.testing.assert_allclose(got, ref.x, atol=1e-5)
    # the disk constraint is active at the optimum (unconstrained min is outside)
    assert got[0] ** 2 + got[1] ** 2 == pytest.approx(2.0, abs=1e-6)
    assert sum(got) == pytest.approx(1.0, abs=1e-8)


def test_maximize_reports_value_in_model_sense():
    # max log(x) + log(y) s.t. x + 2y <= 4 -> x = 2, y = 1 (Lagrange)
    m = pe.ConcreteModel()
    m.x = pe.Var(bounds=(1e-6, None), initialize=1.0)
    m.y = pe.Var(bounds=(1e-6, None), initialize=1.0)
    m.obj = pe.Objective(expr=pe.log(m.x) + pe.log(m.y), sense=pe.maximize)
    m.budget = pe.Constraint(expr=m.x + 2 * m.y <= 4)

    res = solve_with_casadi(m)

    assert res.status == "locally_optimal"
    assert res.objective == pytest.approx(math.log(2.0), abs=1e-7)
    assert pe.value(m.x) == pytest.approx(2.0, abs=1e-6)
    assert pe.value(m.y) == pytest.approx(1.0, abs=1e-6)


def test_maximize_negative_optimum_keeps_sign():
    # max -(x - 1)^2 - 3 -> -3 at x = 1 (a sign slip would give +3)
    m = pe.ConcreteModel()
    m.x = pe.Var(initialize=5.0)
    m.obj = pe.Objective(expr=-((m.x - 1) ** 2) - 3, sense=pe.maximize)

    res = solve_with_casadi(m)

    assert res.status == "locally_optimal"
    assert res.objective == pytest.approx(-3.0, abs=1e-9)
    assert pe.value(m.x) == pytest.approx(1.0, abs=1e-6)


def test_infeasible_lp():
    m = pe.ConcreteModel()
    m.x = pe.Var(bounds=(0, None))
    m.y = pe.Var(bounds=(0, None))
    m.obj = pe.Objective(expr=m.x + m.y)
    m.lo = pe.Constraint(expr=m.x + m.y >= 5)
    m.hi = pe.Constraint(expr=m.x + m.y <= 3)

    res = solve_with_casadi(m)

    assert res.status == "infeasible"
    assert res.message == "Infeasible_Problem_Detected"
    assert res.objective is None


def test_unbounded_lp():
    # min -x - y s.t. x - y <= 1, x, y >= 0: ray (t, t) drives it to -inf.
    m = pe.ConcreteModel()
    m.x = pe.Var(bounds=(0, None))
    m.y = pe.Var(bounds=(0, None))
    m.obj = pe.Objective(expr=-m.x - m.y)
    m.c = pe.Constraint(expr=m.x - m.y <= 1)

    res = solve_with_casadi(m)

    assert res.status == "unbounded"
    assert res.message == "Diverging_Iterates"
    assert res.objective is not None and res.objective < -1e10


def test_unbounded_maximize_has_positive_objective():
    m = pe.ConcreteModel()
    m.x = pe.Var(bounds=(0, None))
    m.y = pe.Var(bounds=(0, None))
    m.obj = pe.Objective(expr=m.x + 2 * m.y, sense=pe.maximize)
    m.c = pe.Constraint(expr=m.x - m.y <= 1)

    res = solve_with_casadi(m)

    assert res.status == "unbounded"
    assert res.objective > 1e10


def test_iteration_limit():
    m = pe.ConcreteModel()
    m.x = pe.Var(initialize=-1.2)
    m.y = pe.Var(initialize=1.0)
    m.obj = pe.Objective(expr=(1 - m.x) ** 2 + 100 * (m.y - m.x**2) ** 2)

    res = solve_with_casadi(m, max_iter=2)

    assert res.status == "iteration_limit"
    assert res.message == "Maximum_Iterations_Exceeded"
    assert res.iterations == 2


def test_evaluation_error_is_reported_not_raised():
    m = pe.ConcreteModel()
    m.x = pe.Var(initialize=-1.0)  # log(-1) is NaN at the starting point
    m.obj = pe.Objective(expr=pe.log(m.x))

    res = solve_with_casadi(m)

    assert res.status == "error"
    assert res.message == "Invalid_Number_Detected"
    assert res.objective is None
    assert pe.value(m.x) == -1.0  # no point loaded


def test_casadi_exception_becomes_error_status():
    m = pe.ConcreteModel()
    m.x = pe.Var(initialize=0.0)
    m.obj = pe.Objective(expr=(m.x - 1) ** 2)

    res = solve_with_casadi(m, options={"no_such_ipopt_option": 1})

    assert res.status == "error"
    assert "no_such_ipopt_option" in res.message
    assert res.iterations is None


def test_named_expressions_params_and_fixed_vars():
    # min (x - p)^2 + (y - w)^2 with w fixed; e is a named Expression.
    m = pe.ConcreteModel()
    m.p = pe.Param(initialize=2.5, mutable=True)
    m.x = pe.Var()
    m.y = pe.Var()
    m.w = pe.Var(initialize=-0.75)
    m.w.fix()
    m.e = pe.Expression(expr=(m.x - m.p) ** 2)
    m.obj = pe.Objective(expr=m.e + (m.y - m.w) ** 2 + 1)
    m.c = pe.Constraint(expr=m.e <= 4)  # shared named expression

    res = solve_with_casadi(m)

    assert res.status == "locally_optimal"
    assert pe.value(m.x) == pytest.approx(2.5, abs=1e-6)
    assert pe.value(m.y) == pytest.approx(-0.75, abs=1e-6)
    assert res.objective == pytest.approx(1.0, abs=1e-9)
    assert m.w.value == -0.75 and m.w.fixed


def test_load_solution_false_keeps_values():
    m = pe.ConcreteModel()
    m.x = pe.Var(initialize=7.0)
    m.obj = pe.Objective(expr=(m.x - 1) ** 2)

    res = solve_with_casadi(m, load_solution=False)

    assert res.status == "locally_optimal"
    assert res.objective == pytest.approx(0.0, abs=1e-12)
    assert m.x.value == 7.0


def test_start_point_projection_and_bound_relax_factor():
    # x has no initial value and bounds [3, 10]: start from 3, the
    # projection of 0.  With bound_relax_factor=0 the bound holds exactly.
    m = pe.ConcreteModel()
    m.x = pe.Var(bounds=(3, 10))
    m.obj = pe.Objective(expr=m.x)

    res = solve_with_casadi(m, bound_relax_factor=0.0)

    assert res.status == "locally_optimal"
    assert 3.0 <= m.x.value <= 3.0 + 1e-7


def test_no_constraints_and_no_variables():
    m = pe.ConcreteModel()
    m.p = pe.Param(initialize=3.0, mutable=True)
    m.v = pe.Var(initialize=2.0)
    m.v.fix()
    m.obj = pe.Objective(expr=m.p**2 + m.v, sense=pe.maximize)
    m.c = pe.Constraint(expr=m.v <= m.p)  # constant, satisfied

    res = solve_with_casadi(m)

    assert res.status == "locally_optimal"
    assert res.objective == pytest.approx(11.0)
    assert res.iterations == 0


def test_no_variables_violated_constant_constraint_is_infeasible():
    m = pe.ConcreteModel()
    m.v = pe.Var(initialize=2.0)
    m.v.fix()
    m.obj = pe.Objective(expr=m.v)
    m.c = pe.Constraint(expr=m.v >= 5)

    res = solve_with_casadi(m)

    assert res.status == "infeasible"
    assert res.objective is None


def test_equality_and_ranged_constraints():
    # min x^2 + y^2 s.t. x + y == 1, 0.7 <= x <= 2 (ranged constraint)
    # -> x = 0.7, y = 0.3 (unconstrained-in-range optimum is x = 0.5)
    m = pe.ConcreteModel()
    m.x = pe.Var()
    m.y = pe.Var()
    m.obj = pe.Objective(expr=m.x**2 + m.y**2)
    m.eq = pe.Constraint(expr=m.x + m.y == 1)
    m.rng = pe.Constraint(expr=pe.inequality(0.7, m.x, 2))

    res = solve_with_casadi(m)

    assert res.status == "locally_optimal"
    assert pe.value(m.x) == pytest.approx(0.7, abs=1e-6)
    assert pe.value(m.y) == pytest.approx(0.3, abs=1e-6)
    assert res.objective == pytest.approx(0.58, abs=1e-7)


def test_deactivated_components_are_ignored():
    m = pe.ConcreteModel()
    m.x = pe.Var(initialize=0.0)
    m.unused = pe.Var(initialize=42.0)
    m.obj = pe.Objective(expr=(m.x - 1) ** 2)
    m.other = pe.Objective(expr=m.unused)
    m.other.deactivate()
    m.c = pe.Constraint(expr=m.x >= 3)
    m.c.deactivate()

    res = solve_with_casadi(m)

    assert res.status == "locally_optimal"
    assert pe.value(m.x) == pytest.approx(1.0, abs=1e-7)
    assert m.unused.value == 42.0


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def test_tee_false_prints_nothing(capfd):
    m = pe.ConcreteModel()
    m.x = pe.Var(initialize=-1.2)
    m.y = pe.Var(initialize=1.0)
    m.obj = pe.Objective(expr=(1 - m.x) ** 2 + 100 * (m.y - m.x**2) ** 2)
    m.c = pe.Constraint(expr=m.x + m.y <= 3)

    assert solve_with_casadi(m).status == "locally_optimal"
    # failure paths must be silent too
    m2 = pe.ConcreteModel()
    m2.x = pe.Var(initialize=-1.0)
    m2.obj = pe.Objective(expr=pe.log(m2.x))
    assert solve_with_casadi(m2).status == "error"
    bad = solve_with_casadi(m, options={"linear_solver": "no_such_solver"})
    assert bad.status == "error"

    out, _ = capfd.readouterr()
    assert out == ""


def test_tee_true_prints_ipopt_log(capfd):
    m = pe.ConcreteModel()
    m.x = pe.Var(initialize=0.0)
    m.obj = pe.Objective(expr=(m.x - 1) ** 2)

    assert solve_with_casadi(m, tee=True).status == "locally_optimal"

    out, _ = capfd.readouterr()
    assert "EXIT: Optimal Solution Found." in out


# --------------------------------------------------------------------------
# Expression translation
# --------------------------------------------------------------------------

def test_translation_matches_pyomo_value():
    m = pe.ConcreteModel()
    m.x = pe.Var()
    m.y = pe.Var()
    m.p = pe.Param(initialize=1.5, mutable=True)
    m.q = pe.Param(initialize=0.25)
    m.f = pe.Var(initialize=0.3)
    m.f.fix()
    m.named = pe.Expression(expr=pe.exp(m.x / 4) - m.p * m.y)
    exprs = {
        "expr_if": pe.Expr_if(IF=m.x <= m.y, THEN=m.x**2 + m.p, ELSE=-m.y),
        "expr_if_eq": pe.Expr_if(IF=m.x == 1, THEN=m.y, ELSE=2 * m.y),
        "expr_if_strict": pe.Expr_if(IF=m.x < 0.5, THEN=1 - m.y, ELSE=m.y),
        "expr_if_ranged": pe.Expr_if(
            IF=pe.inequality(-1, m.x, 1), THEN=m.x * m.y, ELSE=m.x + m.y),
        "abs": abs(m.x - 2 * m.y) + abs(m.f - m.x),
        "sqrt": pe.sqrt(m.x**2 + m.y**2 + m.q),
        "log": pe.log(1 + m.x**2) * pe.log10(2 + m.y**2),
        "exp": pe.exp(-m.x * m.y) / (1 + m.y**2),
        "trig": pe.sin(m.x) * pe.cos(m.y) + pe.tan(m.x / 4)
        + pe.atan(m.y) + pe.asin(m.x / 10) + pe.acos(m.y / 10),
        "hyperbolic": pe.sinh(m.x / 3) + pe.cosh(m.y / 3) + pe.tanh(m.x * m.y),
        "pow": m.x ** 3 - 2 ** m.y + (m.y**2 + 1) ** m.p + (1 + m.x**2) ** (m.y / 3),
        "named": m.named * 2 + m.named,
        "neg_div": -(m.x * m.y) / (m.q + m.y**2),
        "linear": 3 * m.x - 4 * m.y + m.p + 7,
        "max_min": MaxExpression((m.x, m.y, 0.5)) + MinExpression((m.x, -m.y)),
    }
    points = [(0.2, 0.7), (1.0, 1.0), (-0.8, 0.4), (2.5, -1.3), (0.5, 0.5)]
    for name, expr in exprs.items():
        f = _evaluator(expr, [m.x, m.y])
        for px, py in points:
            m.x.set_value(px)
            m.y.set_value(py)
            assert f((px, py)) == pytest.approx(pe.value(expr), rel=1e-12, abs=1e-12), (
                name, px, py)


def test_translation_of_constants_and_npv_expressions():
    m = pe.ConcreteModel()
    m.p = pe.Param(initialize=4.0, mutable=True)
    npv = pe.sqrt(m.p) + m.p**2 / 8  # NPV_* expression: 2 + 2
    sx = to_casadi(npv, pe.ComponentMap())
    assert sx.is_constant() and float(sx) == pytest.approx(4.0)
    assert float(to_casadi(3, pe.ComponentMap())) == 3.0
    assert float(to_casadi(m.p, pe.ComponentMap())) == 4.0


def test_translation_unsupported_node_raises():
    m = pe.ConcreteModel()
    m.x = pe.Var()
    m.ext = pe.ExternalFunction(lambda a: a**2)
    expr = 1 + m.ext(m.x)
    with pytest.raises(NotImplementedError, match="casadi bridge: unsupported "
                       "Pyomo expression node ExternalFunctionExpression"):
        to_casadi(expr, pe.ComponentMap([(m.x, casadi.SX.sym("x"))]))


def test_translation_missing_variable_raises_keyerror():
    m = pe.ConcreteModel()
    m.x = pe.Var()
    with pytest.raises(KeyError, match="not in varmap"):
        to_casadi(m.x + 1, pe.ComponentMap())


def test_deep_expression_does_not_recurse():
    # sin(sin(...sin(x)...)) nested 5000 deep; pyomo.value would recurse.
    m = pe.ConcreteModel()
    m.x = pe.Var()
    expr = m.x
    for _ in range(5000):
        expr = pe.sin(expr)
    f = _evaluator(expr, [m.x])
    expected = 0.9
    for _ in range(5000):
        expected = math.sin(expected)
    assert f((0.9,)) == pytest.approx(expected, rel=1e-12)


def test_large_sums_convert_and_solve():
    # 6 constraints, each a sum of 1000 sqrt/log/max terms.
    n = 1000
    m = pe.ConcreteModel()
    m.I = pe.RangeSet(n)
    m.x = pe.Var(m.I, bounds=(0.1, 10), initialize=1.0)
    m.w = pe.Param(m.I, initialize=lambda m, i: 1 + (i % 7) / 7)

    def rule(m, k):
        return sum(
            m.w[i] * pe.sqrt(m.x[i] + k)
            + pe.log(m.x[i] + 1)
            + MaxExpression((m.x[i] - 1, 0))
            for i in m.I
        ) <= 4.5 * n

    m.c = pe.Constraint(range(6), rule=rule)
    m.obj = pe.Objective(expr=sum((m.x[i] - 2) ** 2 for i in m.I))

    varmap = pe.ComponentMap((m.x[i], casadi.SX.sym(f"x{i}")) for i in m.I)
    bodies = [to_casadi(c.body, varmap) for c in m.c.values()]  # speed is measured in benchmarks/, not here
    assert len(bodies) == 6

    res = solve_with_casadi(m)
    assert res.status == "locally_optimal"
    xs = np.array([m.x[i].value for i in m.I])
    w = np.array([1 + (i % 7) / 7 for i in range(1, n + 1)])
    for k in range(6):
        lhs = np.sum(w * np.sqrt(xs + k) + np.log(xs + 1) + np.maximum(xs - 1, 0))
        # IPOPT relaxes bounds by bound_relax_factor (1e-8) * |bound|
        assert lhs <= 4.5 * n * (1 + 2e-8)
    assert res.objective == pytest.approx(np.sum((xs - 2) ** 2), rel=1e-9)

"""Solve Pyomo models with the IPOPT bundled in the ``casadi`` wheel.

The Pyomo expression trees of the active objective and constraints are
translated into CasADi ``SX`` graphs and handed to
``casadi.nlpsol(..., "ipopt", ...)``; no ``ipopt`` executable is needed.

Functions
---------
solve_with_casadi
    Solve a ``ConcreteModel`` and optionally load the solution back.
to_casadi
    Translate one Pyomo expression into a CasADi ``SX`` scalar.

Notes
-----
Integer and binary variables are treated as continuous (relaxed).
With ``tee=False`` ``sys.stdout`` and file descriptor 1 are redirected to
``os.devnull`` during the IPOPT call, which also hides other threads' stdout
for that time.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any

import casadi
import numpy as np
from pyomo.common.collections import ComponentMap
from pyomo.common.numeric_types import native_numeric_types
from pyomo.core.base.constraint import Constraint
from pyomo.core.base.objective import Objective, maximize
from pyomo.core.expr import numeric_expr as ne
from pyomo.core.expr import relational_expr as rel
from pyomo.core.expr.numvalue import value as pyo_value

__all__ = ["NLPResult", "solve_with_casadi", "to_casadi"]


@dataclass(frozen=True)
class NLPResult:
    """Outcome of :func:`solve_with_casadi`.

    Attributes
    ----------
    status : str
        One of ``"locally_optimal"``, ``"infeasible"``, ``"unbounded"``,
        ``"iteration_limit"`` or ``"error"``.
    message : str
        IPOPT's ``return_status`` (e.g. ``"Solve_Succeeded"``) or an error text.
    objective : float or None
        Objective at the returned point, in the model's own sense; ``None``
        when the status is ``"infeasible"`` or ``"error"``.
    iterations : int or None
        IPOPT iteration count, if IPOPT ran.
    wall_time : float
        Wall-clock seconds spent in :func:`solve_with_casadi`.
    """

    status: str
    message: str
    objective: float | None
    iterations: int | None
    wall_time: float


# --------------------------------------------------------------------------
# Expression translation
# --------------------------------------------------------------------------

def _sum(terms: list) -> Any:
    """Sum translated terms with one CasADi call (linear work, no recursion)."""
    n = len(terms)
    if n == 0:
        return casadi.SX(0.0)
    if n == 1:
        return terms[0]
    if n == 2:
        return _bin(casadi.OP_ADD, terms[0], terms[1])
    return casadi.sum1(casadi.vertcat(*terms))


# ``SX.binary`` / ``SX.unary`` skip the SWIG overload resolution of the
# Python operators (about 5x faster) and apply the same simplifications.
# All operands are SX because leaves are always converted to SX.
_bin = casadi.SX.binary
_un = casadi.SX.unary
_INV_LN10 = casadi.SX(1.0 / math.log(10.0))


def _binop(op: int) -> Callable[[Any, list], Any]:
    return lambda node, a: _bin(op, a[0], a[1])


def _unop(op: int) -> Callable[[Any, list], Any]:
    return lambda node, a: _un(op, a[0])


def _log10(x):
    return _bin(casadi.OP_MUL, _un(casadi.OP_LOG, x), _INV_LN10)


def _reduce(op: int) -> Callable[[Any, list], Any]:
    return lambda node, a: reduce(lambda u, v: _bin(op, u, v), a)


_UNARY_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    **{
        name: (lambda op: lambda x: _un(op, x))(op)
        for name, op in {
            "sqrt": casadi.OP_SQRT,
            "log": casadi.OP_LOG,
            "exp": casadi.OP_EXP,
            "sin": casadi.OP_SIN,
            "cos": casadi.OP_COS,
            "tan": casadi.OP_TAN,
            "asin": casadi.OP_ASIN,
            "acos": casadi.OP_ACOS,
            "atan": casadi.OP_ATAN,
            "sinh": casadi.OP_SINH,
            "cosh": casadi.OP_COSH,
            "tanh": casadi.OP_TANH,
            "asinh": casadi.OP_ASINH,
            "acosh": casadi.OP_ACOSH,
            "atanh": casadi.OP_ATANH,
            "ceil": casadi.OP_CEIL,
            "floor": casadi.OP_FLOOR,
        }.items()
    },
    "log10": _log10,
}


def _unary(node, args):
    name = node.getname()
    try:
        fn = _UNARY_FUNCTIONS[name]
    except KeyError:
        raise NotImplementedError(
            f"casadi bridge: unsupported Pyomo unary function {name!r} "
            f"in {type(node).__name__}"
        ) from None
    return fn(args[0])


def _expr_if(node, args):
    cond, then_, else_ = args
    return casadi.if_else(cond, then_, else_)


def _inequality(node, args):
    return _bin(casadi.OP_LT if node.strict else casadi.OP_LE, args[0], args[1])


def _ranged(node, args):
    lo, body, hi = args
    s_lo, s_hi = node.strict
    left = _bin(casadi.OP_LT if s_lo else casadi.OP_LE, lo, body)
    right = _bin(casadi.OP_LT if s_hi else casadi.OP_LE, body, hi)
    return _bin(casadi.OP_AND, left, right)


# Handlers receive (node, translated_args).  Lookup walks the node type's
# MRO, so NPV_* variants and other subclasses resolve to their base handler.
_HANDLERS: dict[type, Callable[[Any, list], Any]] = {
    ne.SumExpression: lambda node, a: _sum(a),
    ne.LinearExpression: lambda node, a: _sum(a),
    ne.MonomialTermExpression: _binop(casadi.OP_MUL),
    ne.ProductExpression: _binop(casadi.OP_MUL),
    ne.DivisionExpression: _binop(casadi.OP_DIV),
    ne.PowExpression: _binop(casadi.OP_POW),
    ne.NegationExpression: _unop(casadi.OP_NEG),
    ne.AbsExpression: _unop(casadi.OP_FABS),
    ne.UnaryFunctionExpression: _unary,
    ne.Expr_ifExpression: _expr_if,
    ne.MaxExpression: _reduce(casadi.OP_FMAX),
    ne.MinExpression: _reduce(casadi.OP_FMIN),
    rel.InequalityExpression: _inequality,
    rel.EqualityExpression: _binop(casadi.OP_EQ),
    rel.RangedExpression: _ranged,
}
_HANDLER_CACHE: dict[type, Callable[[Any, list], Any] | None] = {}

_NUMBER_TYPES = (int, float, bool, np.number, np.bool_)


def _handler_for(node) -> Callable[[Any, list], Any]:
    cls = type(node)
    try:
        handler = _HANDLER_CACHE[cls]
    except KeyError:
        handler = next((_HANDLERS[c] for c in cls.__mro__ if c in _HANDLERS), None)
        _HANDLER_CACHE[cls] = handler
    if handler is None:
        raise NotImplementedError(
            f"casadi bridge: unsupported Pyomo expression node {cls.__name__}"
        )
    return handler


class _Translator:
    """Iterative (explicit-stack) Pyomo -> CasADi SX translator.

    Parameters
    ----------
    varmap : Mapping
        Maps Pyomo ``VarData`` objects to CasADi symbols.
    create_missing : bool
        If True, an unfixed variable absent from ``varmap`` gets a new
        ``SX`` symbol, recorded in ``varmap`` and ``new_vars``; otherwise a
        ``KeyError`` is raised.
    """

    def __init__(self, varmap: Mapping, create_missing: bool = False):
        self.varmap = varmap
        self.create_missing = create_missing
        self.new_vars: list = []
        # id(named expression) -> (named expression, SX); the object is kept
        # so that its id cannot be recycled during the translator's lifetime.
        self._named: dict[int, tuple[Any, Any]] = {}
        self._consts: dict[float, Any] = {}
        # id(expression node) -> (node, SX) for shared subexpressions.
        self._memo: dict[int, tuple[Any, Any]] = {}

    def _const(self, v) -> Any:
        v = float(v)
        sx = self._consts.get(v)
        if sx is None:
            sx = self._consts[v] = casadi.SX(v)
        return sx

    def _var(self, var):
        if var.fixed:
            if var.value is None:
                raise ValueError(
                    f"casadi bridge: fixed variable {var.name} has no value"
                )
            return self._const(var.value)
        try:
            sym = self.varmap[var]
        except KeyError:
            if not self.create_missing:
                raise KeyError(
                    f"casadi bridge: variable {var.name} is not in varmap"
                ) from None
        else:
            return sym if isinstance(sym, casadi.SX) else casadi.SX(sym)
        sym = casadi.SX.sym(f"x{len(self.new_vars)}")
        self.varmap[var] = sym
        self.new_vars.append(var)
        return sym

    def _leaf(self, obj) -> tuple[bool, Any]:
        """Return ``(True, sx)`` for leaves / cached nodes, else ``(False, None)``."""
        if type(obj) in native_numeric_types or isinstance(obj, _NUMBER_TYPES):
            return True, self._const(obj)
        if obj.is_expression_type():
            if obj.is_named_expression_type():
                hit = self._named.get(id(obj))
                if hit is not None:
                    return True, hit[1]
                return False, None
            if not obj.is_potentially_variable():
                # Constant subtree (NPV_* expressions, params, ...): fold it.
                return True, self._const(pyo_value(obj))
            # Pyomo expressions are DAGs: a subexpression shared by several
            # parents is translated once (a tree walk would blow up).
            hit = self._memo.get(id(obj))
            if hit is not None:
                return True, hit[1]
            return False, None
        if obj.is_variable_type():
            return True, self._var(obj)
        # Params, NumericConstant and other fixed numeric values.
        return True, self._const(pyo_value(obj))

    @staticmethod
    def _children(node):
        if node.is_named_expression_type():
            if node.expr is None:
                raise ValueError(
                    f"casadi bridge: named expression {node.name} has no expression"
                )
            return (node.expr,)
        _handler_for(node)  # fail early on unsupported nodes
        return node.args

    def _exit(self, node, results):
        if node.is_named_expression_type():
            self._named[id(node)] = (node, results[0])
            return results[0]
        val = _handler_for(node)(node, results)
        self._memo[id(node)] = (node, val)
        return val

    def translate(self, expr):
        """Translate ``expr`` into an ``SX`` scalar."""
        done, val = self._leaf(expr)
        if done:
            return val
        # Frame: [node, children, next child index, translated children]
        stack = [[expr, self._children(expr), 0, []]]
        while True:
            frame = stack[-1]
            node, children, i, results = frame
            if i < len(children):
                frame[2] = i + 1
                child = children[i]
                done, val = self._leaf(child)
                if done:
                    results.append(val)
                else:
                    stack.append([child, self._children(child), 0, []])
                continue
            val = self._exit(node, results)
            stack.pop()
            if not stack:
                return casadi.SX(val)
            stack[-1][3].append(val)


def to_casadi(expr, varmap: Mapping):
    """Translate a Pyomo expression into a CasADi ``SX`` scalar.

    Parameters
    ----------
    expr : Pyomo expression, component or number
        Expression to translate. Fixed variables and parameters become
        constants; named ``Expression`` components are followed.
    varmap : Mapping
        Maps each unfixed Pyomo ``VarData`` in ``expr`` to a CasADi ``SX``
        scalar or a number (a ``ComponentMap`` is recommended).

    Returns
    -------
    casadi.SX
        A 1x1 symbolic expression.

    Raises
    ------
    NotImplementedError
        If ``expr`` contains an unsupported node type.
    KeyError
        If an unfixed variable is missing from ``varmap``.
    """
    return _Translator(varmap).translate(expr)


# --------------------------------------------------------------------------
# Solving
# --------------------------------------------------------------------------

_STATUS_MAP = {
    "Solve_Succeeded": "locally_optimal",
    "Solved_To_Acceptable_Level": "locally_optimal",
    "Infeasible_Problem_Detected": "infeasible",
    "Diverging_Iterates": "unbounded",
    "Maximum_Iterations_Exceeded": "iteration_limit",
    "Maximum_CpuTime_Exceeded": "iteration_limit",
    "Maximum_WallTime_Exceeded": "iteration_limit",
}


def _bound(b) -> float | None:
    """Numeric value of a constraint bound, ``None`` for absent/infinite."""
    if b is None:
        return None
    v = pyo_value(b)
    if v is None:
        return None
    v = float(v)
    return None if math.isinf(v) else v


def _start_value(var) -> float:
    if var.value is not None:
        return float(var.value)
    lb, ub = var.lb, var.ub
    x0 = 0.0
    if lb is not None:
        x0 = max(x0, float(lb))
    if ub is not None:
        x0 = min(x0, float(ub))
    return x0


def _flush_c_stdio() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


@contextlib.contextmanager
def _quiet_stdout(active: bool):
    """Silence stdout while ``active``.

    The IPOPT options already silence normal output; this also catches text
    printed regardless of them (e.g. IPOPT's complaint about an invalid
    option value, emitted before ``print_level`` takes effect).  CasADi's
    Python build routes its output through ``sys.stdout``, so both
    ``sys.stdout`` and file descriptor 1 are redirected to ``os.devnull``.
    """
    if not active:
        yield
        return
    try:
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):
        pass
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        try:
            saved = os.dup(1)
        except OSError:
            yield
            return
        try:
            _flush_c_stdio()
            os.dup2(sink.fileno(), 1)
            yield
        finally:
            _flush_c_stdio()
            os.dup2(saved, 1)
            os.close(saved)


def _constant_row_ok(val: float, lo: float, hi: float, tol: float) -> bool:
    scale = max(1.0, abs(val))
    return lo - tol * scale <= val <= hi + tol * scale


def solve_with_casadi(
    model,
    *,
    tee: bool = False,
    options: dict | None = None,
    max_iter: int = 3000,
    tol: float = 1e-8,
    bound_relax_factor: float | None = None,
    load_solution: bool = True,
) -> NLPResult:
    """Solve a Pyomo model with CasADi's bundled IPOPT.

    Parameters
    ----------
    model : pyomo.core.base.block.BlockData
        Model with at most one active ``Objective``; with none, a
        feasibility problem is solved and ``objective`` is ``None``.
    tee : bool, optional
        Show IPOPT's log (``print_level`` 5) and CasADi timings.
    options : dict, optional
        Extra IPOPT options, passed as ``ipopt.<key>`` (keys already
        starting with ``"ipopt."`` are passed unchanged).
    max_iter : int, optional
        IPOPT ``max_iter``.
    tol : float, optional
        IPOPT ``tol``.
    bound_relax_factor : float, optional
        IPOPT ``bound_relax_factor``; IPOPT's default if ``None``.
    load_solution : bool, optional
        Write the returned primal point into the Pyomo variables.

    Returns
    -------
    NLPResult
    """
    t_start = time.perf_counter()

    def result(status, message, objective=None, iterations=None):
        return NLPResult(status, message, objective, iterations,
                         time.perf_counter() - t_start)

    objectives = list(model.component_data_objects(
        Objective, active=True, descend_into=True))
    if len(objectives) > 1:
        raise ValueError(
            f"casadi bridge: expected at most one active Objective, "
            f"found {len(objectives)}"
        )
    obj = objectives[0] if objectives else None
    sign = -1.0 if obj is not None and obj.sense == maximize else 1.0

    active = list(model.component_data_objects(Constraint, active=True, descend_into=True))
    cache_key = (id(obj), tuple(id(c) for c in active), bool(tee), repr(sorted((options or {}).items())),
                 max_iter, tol, bound_relax_factor)
    cached = getattr(model, "_mechdsl_casadi_cache", None)
    if cached is not None and cached[0] == cache_key:
        _, solver, variables, lbg, ubg = cached
        return _run(solver, variables, lbg, ubg, sign, tee, load_solution, result)

    tr = _Translator(ComponentMap(), create_missing=True)
    f = tr.translate(obj.expr) if obj is not None else casadi.SX(0.0)

    g, lbg, ubg = [], [], []
    const_rows = []  # (name, value, lo, hi) for rows without variables
    for con in active:
        body = tr.translate(con.body)
        lower, upper = _bound(con.lower), _bound(con.upper)
        if con.equality:
            lo = hi = lower if lower is not None else upper
        else:
            lo = -math.inf if lower is None else lower
            hi = math.inf if upper is None else upper
        if body.is_constant():
            const_rows.append((con.name, float(body), lo, hi))
            continue
        g.append(body)
        lbg.append(lo)
        ubg.append(hi)

    for name, val, lo, hi in const_rows:
        if not _constant_row_ok(val, lo, hi, max(tol, 1e-8)):
            return result(
                "infeasible",
                f"constraint {name} has no variables and is violated "
                f"({lo} <= {val} <= {hi} fails)",
            )

    variables = tr.new_vars
    if not variables:
        fval = float(f)
        return result("locally_optimal", "No_Variables",
                      None if obj is None else fval, 0)

    x = casadi.vertcat(*(tr.varmap[v] for v in variables))

    opts: dict[str, Any] = {
        "print_time": bool(tee),
        "error_on_fail": False,
        "show_eval_warnings": bool(tee),
        "ipopt.print_level": 5 if tee else 0,
        "ipopt.sb": "yes",
        "ipopt.max_iter": int(max_iter),
        "ipopt.tol": float(tol),
    }
    if bound_relax_factor is not None:
        opts["ipopt.bound_relax_factor"] = float(bound_relax_factor)
    for key, val in (options or {}).items():
        opts[key if key.startswith("ipopt.") else f"ipopt.{key}"] = val

    nlp = {"x": x, "f": sign * f}
    if g:
        nlp["g"] = casadi.vertcat(*g)

    try:
        with _quiet_stdout(not tee):
            solver = casadi.nlpsol("mechdsl_ipopt", "ipopt", nlp, opts)
    except Exception as exc:  # invalid options raise when the solver is built
        return result("error", f"{type(exc).__name__}: {exc}".strip())
    # Building the NLP (translation, AD) dominates small solves; keep it for
    # re-solves of the same model (warm starts, continuation in a bound).
    try:
        model._mechdsl_casadi_cache = (cache_key, solver, variables, lbg, ubg)
    except Exception:  # pragma: no cover - a block that refuses attributes
        pass
    return _run(solver, variables, lbg, ubg, sign, tee, load_solution, result, has_objective=obj is not None)


def _run(solver, variables, lbg, ubg, sign, tee, load_solution, result, has_objective=True):
    """Solve a built NLP from the variables' current values and bounds."""
    lbx = [-math.inf if v.lb is None else float(v.lb) for v in variables]
    ubx = [math.inf if v.ub is None else float(v.ub) for v in variables]
    x0 = [_start_value(v) for v in variables]
    args = {"x0": x0, "lbx": lbx, "ubx": ubx}
    if lbg:
        args["lbg"] = lbg
        args["ubg"] = ubg
    try:
        with _quiet_stdout(not tee):
            sol = solver(**args)
            stats = solver.stats()
    except Exception as exc:  # casadi raises RuntimeError on eval failures
        return result("error", f"{type(exc).__name__}: {exc}".strip())

    message = str(stats.get("return_status", "unknown"))
    status = _STATUS_MAP.get(message, "error")
    iterations = stats.get("iter_count")
    iterations = None if iterations is None else int(iterations)

    xs = np.asarray(sol["x"], dtype=float).ravel()
    has_point = xs.size == len(variables) and bool(np.all(np.isfinite(xs)))
    if load_solution and has_point:
        for var, val in zip(variables, xs):
            var.set_value(float(val), skip_validation=True)

    objective = None
    if has_objective and has_point and status not in ("infeasible", "error"):
        fval = sign * float(sol["f"])
        objective = fval if math.isfinite(fval) else None
    return result(status, message, objective, iterations)

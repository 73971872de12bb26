"""Verify a solution against the ORIGINAL constraints of the spec.

Stage: ``(Instance, Problem, values) -> Verification``.  Every instance of every
constraint family is evaluated at the solution in plain floating point, from
the IR as written (before any reduction or linearisation):

* ``max_regret``: the largest gain of any type from any misreport, i.e. the
  largest violation of an ``ic`` constraint (``rhs - lhs`` of ``lhs >= rhs``);
* ``max_ir_violation``: the same for ``ir`` constraints;
* ``max_violation``: every other constraint, variable bounds and integrality.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy as sp

from .evaluate import EvalError, Evaluator, Target
from .ir import nodes as ir


class _Values(Target):
    def __init__(self, values):
        self.values = values

    def var(self, name, key):
        try:
            return self.values[name][key]
        except KeyError:
            raise EvalError(f"{name}[{','.join(map(str, key))}] is outside the index set of var '{name}'",
                            name=name) from None


@dataclass
class Verification:
    max_regret: float = 0.0
    max_ir_violation: float = 0.0
    max_violation: float = 0.0
    ok: bool = True
    tol: float = 1e-6
    checked: int = 0
    worst: list = field(default_factory=list)  # (violation, constraint id, kind), largest first
    binding: dict = field(default_factory=dict)  # family -> list of (key, id) with zero slack

    def to_dict(self) -> dict:
        return {"max_regret": self.max_regret, "max_ir_violation": self.max_ir_violation,
                "max_violation": self.max_violation, "ok": self.ok}


def constraint_id(c: ir.ConstraintDef, key: tuple, type_dim: int | None) -> str:
    """Readable ids: ``IC[3->1]`` for an ic family over (true type, report), else ``IR[2]``."""
    if not key:
        return c.name
    if type_dim is None and len(key) % 2 == 0:
        type_dim = len(key) // 2  # no type declared: (true..., report...) halves
    if c.kind == ir.ConKind.IC and type_dim and len(key) == 2 * type_dim:
        a, b = key[:type_dim], key[type_dim:]
        return f"{c.name}[{','.join(map(str, a))}->{','.join(map(str, b))}]"
    return f"{c.name}[{','.join(map(str, key))}]"


def verify(inst, problem: ir.Problem, values: dict, tol: float = 1e-6, bind_tol: float | None = None,
           var_names: set[str] | None = None, env: dict | None = None) -> Verification:
    """Evaluate every original constraint of ``problem`` at ``values``."""
    ev = Evaluator(inst, _Values(values))
    if var_names is not None:
        ev._var_names = var_names
    bind_tol = tol if bind_tol is None else bind_tol
    res = Verification(tol=tol)
    types = inst.mech.types
    type_dim = types[0].dim if types else None
    worst = []
    for c in problem.constraints:
        local = dict(env or {})
        it = ev.iterate(c.domain.items, c.domain.cond, local) if c.domain else iter([local])
        binders = c.domain.binders if c.domain else ()
        bound = []
        for _ in it:
            key = tuple(local[b] for b in binders)
            slack = _slack(c.body, ev, local, tol)
            res.checked += 1
            viol = max(0.0, -slack) if not math.isnan(slack) else math.inf
            cid = constraint_id(c, key, type_dim)
            if c.kind == ir.ConKind.IC:
                res.max_regret = max(res.max_regret, viol)
            elif c.kind == ir.ConKind.IR:
                res.max_ir_violation = max(res.max_ir_violation, viol)
            else:
                res.max_violation = max(res.max_violation, viol)
            if viol > tol:
                worst.append((viol, cid, c.kind.value))
            if abs(slack) <= bind_tol:
                bound.append((key, cid))
        res.binding[c.name] = bound
    for v in problem.vars:
        lbs = Evaluator(inst)
        lbs._var_names = ev._var_names
        local = dict(env or {})
        it = lbs.iterate(v.domain.items, v.domain.cond, local) if v.domain else iter([local])
        for _ in it:
            key = tuple(local[b] for b in v.domain.binders) if v.domain else ()
            x = values[v.name][key]
            viol = 0.0
            if math.isnan(x):
                viol = math.inf
            if v.lb is not None:
                viol = max(viol, lbs.value(v.lb, local) - x)
            if v.ub is not None:
                viol = max(viol, x - lbs.value(v.ub, local))
            if v.kind in ("binary", "integer"):
                viol = max(viol, abs(x - round(x)))
            res.max_violation = max(res.max_violation, viol)
            if viol > tol:
                worst.append((viol, f"{v.name}[{','.join(map(str, key))}] bounds", "bound"))
    worst.sort(reverse=True)
    res.worst = worst[:10]
    res.ok = max(res.max_regret, res.max_ir_violation, res.max_violation) <= tol
    return res


def _slack(body, ev: Evaluator, env, tol) -> float:
    """How comfortably ``body`` holds: >= 0 when satisfied, minus the violation otherwise."""
    if isinstance(body, ir.Rel):
        a, b = float(ev.value(body.lhs, env)), float(ev.value(body.rhs, env))
        if body.op == ">=":
            return a - b
        if body.op == "<=":
            return b - a
        return -abs(a - b)
    if isinstance(body, ir.AllOf):
        return min(_slack(p, ev, env, tol) for p in body.parts)
    if isinstance(body, ir.AnyOf):
        return max(_slack(p, ev, env, tol) for p in body.parts)
    if isinstance(body, ir.Implication):
        if _holds(body.premise, ev, env, tol):
            return _slack(body.conclusion, ev, env, tol)
        return math.inf
    if isinstance(body, ir.Complementarity):
        a, b = float(ev.value(body.a, env)), float(ev.value(body.b, env))
        return min(a, b, -min(abs(a), abs(b)))
    raise AssertionError(type(body))  # pragma: no cover


def _holds(cond, ev: Evaluator, env, tol) -> bool:
    """Truth of a premise, with relations given ``tol`` of slack (so more constraints are checked, not fewer)."""
    if isinstance(cond, sp.core.relational.Relational):
        a, b = float(ev.value(cond.lhs, env)), float(ev.value(cond.rhs, env))
        op = cond.rel_op
        if op in ("<=", "<"):
            return a <= b + tol
        if op in (">=", ">"):
            return a >= b - tol
        if op == "==":
            return abs(a - b) <= tol
        return abs(a - b) > tol
    if isinstance(cond, sp.And):
        return all(_holds(c, ev, env, tol) for c in cond.args)
    if isinstance(cond, sp.Or):
        return any(_holds(c, ev, env, tol) for c in cond.args)
    return bool(ev.value(cond, env))

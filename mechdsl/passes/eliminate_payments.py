"""``eliminate_payments``: payments given by binding adjacent IC and the extreme IR.

Accepted only where this is provably exact: after ``local_ic`` and
``drop_implied``, the transfer ``y`` enters ``u`` with a constant marginal
``kappa``, is free (no bounds), appears only in IC, IR and the objective, and
the objective is linear in ``y`` with every coefficient of the opposite sign to
``kappa`` (the designer prefers smaller rents).  Then the cheapest transfers
that satisfy IC and IR are the binding chain from the extreme type e (000 eq.
(10) / Prop. 1; 004 after eq. (7)):

    y[e] = (R - rest(e, e)) / kappa
    y[k] = y[j] + (rest(k, j) - rest(k, k)) / kappa     (j: k's neighbour toward e)

with ``rest(t, r) = u(t, r) - kappa * y[r]``; the upward adjacent IC rows then
hold by single crossing.  ``y`` becomes an expression of the allocation, and
``invert`` reads its values back for the menu and for verification.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..analysis.dominance import Rule
from ..ir import nodes as ir
from .base import Acceptance, Applied, Pass, Reduction
from .structure import id_number


@dataclass
class Elimination:
    var: str
    order: list
    extreme: object
    parent: dict          # k -> neighbour toward the extreme
    children: dict        # k -> neighbours away from the extreme
    rest: sp.Expr         # rest(t, r) template
    t: sp.Symbol
    r: sp.Symbol
    kappa: float
    R: sp.Expr
    formula: str


class EliminatePayments(Pass):
    name = "eliminate_payments"
    doc = "Substitute transfers by the binding IC chain and extreme IR (only where provably exact)."

    def accepts(self, state: Reduction) -> Acceptance:
        ics, irs = state.facts.get("ic", {}), state.facts.get("ir", {})
        reasons, found = [], {}
        for ir_name, f in irs.items():
            s = f["ic"]
            if len(s.transfers) != 1:
                reasons.append(f"{s.family.name}: {len(s.transfers)} transfer variables; need exactly one")
                continue
            y = s.transfers[0]
            ysym = s.subs[sp.IndexedBase(y)[s.r]]
            us = s.u.xreplace(s.subs)
            kappa = sp.diff(us, ysym)
            if not kappa.is_number or kappa == 0:
                reasons.append(f"{s.family.name}: the transfer {y} enters u with marginal {kappa}, not a constant")
                continue
            vdef = state.problem.var(y)
            if vdef.lb is not None or vdef.ub is not None or vdef.kind != "real":
                what = ", ".join(w for w, b in (("a lower bound", vdef.lb is not None), ("an upper bound", vdef.ub is not None),
                                                (f"domain {vdef.kind}", vdef.kind != "real")) if b)
                reasons.append(f"{y} has {what}; the cheapest transfers might violate it, so eliminating {y} is not "
                               "provably exact (it stays a variable)")
                continue
            others = [c.name for c in state.problem.constraints
                      if c.name not in (s.family.name, ir_name) and _mentions(c, y)]
            if others:
                reasons.append(f"{y} also appears in {', '.join(others)}; eliminating it is not provably exact")
                continue
            why = _objective_prefers_small_rents(state, y, float(kappa))
            if why is not True:
                reasons.append(why)
                continue
            found[y] = (s, f, float(kappa))
        if not irs:
            reasons.append("needs drop_implied (IR of a single extreme type) to have applied")
        state.facts["pay"] = found
        return Acceptance(bool(found), reasons)

    def apply(self, state: Reduction):
        drop = set()
        for y, (s, f, kappa) in state.facts["pay"].items():
            e = f["extreme"]
            order = s.order
            pos = {v: k for k, v in enumerate(order)}
            ie = pos[e]
            parent = {k: order[pos[k] - 1 if pos[k] > ie else pos[k] + 1] for k in order if k != e}
            yr = sp.IndexedBase(y)[s.r]
            rest = sp.expand(s.u - kappa * yr)
            if sp.diff(rest, yr) != 0:
                continue
            b = f["binder"]
            R = f["rhs"]
            t, r = s.t, s.r
            yb = sp.IndexedBase(y)
            k_ = sp.nsimplify(kappa)
            first = sp.Eq(yb[e], sp.simplify((R - rest.xreplace({t: e, r: e})) / k_))
            j = sp.Symbol("j")
            step = sp.Eq(yb[t], yb[j] + sp.factor(sp.simplify((rest.xreplace({r: j}) - rest.xreplace({r: t})) / k_)))
            formula = (f"{first}   (extreme type e = {e}, IR binds)\n"
                       f"{step}   for every other type t, j = t's neighbour toward {e} (IC[t->j] binds)")
            children = {}
            for k, j in parent.items():
                children.setdefault(j, []).append(k)
            state.eliminated[y] = Elimination(y, order, e, parent, children, rest, t, r, kappa, R, formula)
            drop |= {s.family.name, f["binder"] and next(n for n, ff in state.facts["ir"].items() if ff is f)}
            _record(state, y, s, f, parent, e)
            n = len(order)
            state.applied.append(Applied(
                self.name, f"{y}: eliminated ({n} variables); {s.family.name} ({2 * (n - 1)} adjacent rows) and "
                           f"the extreme IR hold by construction or single crossing",
                removed=2 * (n - 1) + 1, details=[formula]))
        state.replace_constraints([c for c in state.problem.constraints if c.name not in drop])
        state.problem = ir.Problem(tuple(v for v in state.problem.vars if v.name not in state.eliminated),
                                   state.problem.constraints, state.problem.objective)
        return (state.inst, dict(state.eliminated))

    def invert(self, values: dict, inverse) -> dict:
        """Recover the eliminated transfers from the solved allocation by the payment rule."""
        from ..evaluate import Evaluator
        from ..evaluate import ValuesTarget

        inst, eliminated = inverse
        ev = Evaluator(inst, ValuesTarget(values))
        out = dict(values)
        for y, el in eliminated.items():
            pos = {v: i for i, v in enumerate(el.order)}
            e = el.extreme
            val = {e: (ev.value(el.R, {}) - ev.value(el.rest, {el.t: e, el.r: e})) / el.kappa}
            for k in sorted(el.parent, key=lambda k: abs(pos[k] - pos[e])):
                j = el.parent[k]
                val[k] = val[j] + (ev.value(el.rest, {el.t: k, el.r: j}) - ev.value(el.rest, {el.t: k, el.r: k})) / el.kappa
            out[y] = {(k,): float(v) for k, v in val.items()}
        return out


def _mentions(c: ir.ConstraintDef, y: str) -> bool:
    def exprs(body):
        if isinstance(body, ir.Rel):
            yield body.lhs
            yield body.rhs
        elif isinstance(body, (ir.AllOf, ir.AnyOf)):
            for p in body.parts:
                yield from exprs(p)
        elif isinstance(body, ir.Implication):
            yield body.premise
            yield from exprs(body.conclusion)
        elif isinstance(body, ir.Complementarity):
            yield body.a
            yield body.b
    return any(sp.IndexedBase(y) in e.atoms(sp.IndexedBase) or sp.Symbol(y) in e.free_symbols
               for e in exprs(c.body))


def _objective_prefers_small_rents(state: Reduction, y: str, kappa: float):
    """True if the objective is linear in y with every coefficient of sign opposite to kappa."""
    from pyomo.repn import generate_standard_repn

    from mechdsl.compilers.pyomo.model import compile_problem

    p = state.problem
    if p.objective is None:
        return "no objective"
    cm = compile_problem(ir.Problem(p.vars, (), p.objective), state.inst)
    import pyomo.environ as pyo

    obj = next(iter(cm.model.component_data_objects(pyo.Objective)))
    repn = generate_standard_repn(obj.expr, quadratic=True)
    comp = getattr(cm.model, y)
    ids = {id(comp[k]) for k in comp}
    if any(id(v) in ids for v in (repn.nonlinear_vars or ())):
        return f"the objective is nonlinear in {y}"
    if any(id(a) in ids or id(b) in ids for a, b in (repn.quadratic_vars or ())):
        return f"the objective is quadratic in {y}"
    sense = 1 if p.objective.sense == "maximize" else -1
    coefs = {id(v): c for v, c in zip(repn.linear_vars, repn.linear_coefs)}
    for k in comp:
        c = sense * coefs.get(id(comp[k]), 0.0)
        if not c * kappa < 0:
            return (f"the objective does not strictly prefer a smaller {y}[{k}] rent (coefficient {c:g}); "
                    "the binding chain might not be optimal")
    return True


def _record(state: Reduction, y, s, f, parent, e):
    name = f"PAY_{y}"
    order = s.order
    ir_name = next(n for n, ff in state.facts["ir"].items() if ff is f)
    mono = f"MONO_{s.q}"
    state.graph.add_family(name, "constraint", lambda: (f"{name}[{k}]" for k in order), len(order), derived=True)
    pos = {v: k for k, v in enumerate(order)}

    def premises(cid):
        base, _, rest = cid.partition("[")
        rest = rest.rstrip("]")
        if base == ir_name and rest == str(e):
            return [f"{name}[{e}]"]
        if base != s.family.name or "->" not in rest:
            return None
        a, b = (id_number(x) for x in rest.split("->"))
        if a in parent and parent[a] == b:
            return [f"{name}[{a}]"]
        if b in parent and parent[b] == a:  # upward: implied by the binding downward row + monotonicity
            lo, hi = sorted((pos[a], pos[b]))
            return [s.pair_id(b, a), f"{mono}[{order[lo]},{order[hi]}]"]
        return None

    def targets():
        yield f"{ir_name}[{e}]"
        for k, j in parent.items():
            yield s.pair_id(k, j)
            yield s.pair_id(j, k)

    state.graph.add_rule(Rule("payment rule: the transfer is defined so that this row binds, or it then holds by "
                              "single crossing", "eliminate_payments",
                              state.eliminated[y].formula.replace("\n", "; "), targets, premises))


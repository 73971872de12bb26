"""``eliminate_payments``: payments given by binding adjacent IC and the extreme IR.

Accepted only where this is provably exact: after ``local_ic`` and
``drop_implied`` (their facts :class:`~.facts.AdjacentIC`,
:class:`~.facts.MonotoneFamily` and :class:`~.facts.ExtremeIR`, each naming a
family that is still in the problem), the transfer ``y`` enters ``u`` with a
constant marginal ``kappa``, is free (no bounds), appears only in IC, IR and
the objective, and the objective is linear in ``y`` with every coefficient of
the opposite sign to ``kappa`` (the designer prefers smaller rents; decided on
the IR with SymPy and the instance's data, see :func:`linear_coefficients`).
Then the cheapest transfers that satisfy IC and IR are the binding chain from
the extreme type e (000 eq. (10) / Prop. 1; 004 after eq. (7)):

    y[e] = (R - rest(e, e)) / kappa
    y[k] = y[j] + (rest(k, j) - rest(k, k)) / kappa     (j: k's neighbour toward e)

with ``rest(t, r) = u(t, r) - kappa * y[r]``.  The downward adjacent rows bind
by construction; the upward ones then hold by single crossing GIVEN the
monotone allocation, which is why the ``MONO_q`` rows must be in the problem
(with two types they are added by ``local_ic`` too).  ``y`` becomes an
expression of the allocation, and ``invert`` reads its values back for the
menu and for verification.
"""
from __future__ import annotations

import sympy as sp

from ..analysis.dominance import Family, Rule
from ..evaluate import canon, flat_key
from ..ir import nodes as ir
from ..ir.ids import pair_of, split_id
from ..ir.sym import Expectation, IterProd, IterSum
from .base import Acceptance, Pass, memo
from .facts import AdjacentIC, Applied, DerivedFamily, Elimination, ExtremeIR, Facts, Implied, MonotoneFamily

__all__ = ["EliminatePayments", "Elimination", "linear_coefficients"]


class EliminatePayments(Pass):
    name = "eliminate_payments"
    doc = "Substitute transfers by the binding IC chain and extreme IR (only where provably exact)."

    def _plan(self, problem: ir.Problem, facts: Facts):
        """({y: (ExtremeIR, MonotoneFamily, kappa)}, reasons)."""
        present = set(problem.constraints)
        reasons, found = [], {}
        extremes = [f for f in facts.all(ExtremeIR) if f.constraint in present]
        for f in extremes:
            s = f.structure
            adj = facts.get(AdjacentIC, s.family.name)
            if adj is None or adj.constraint not in present:
                reasons.append(f"{s.family.name}: not reduced to adjacent rows (needs local_ic); dropping it would "
                               "leave non-adjacent rows that no rule derives")
                continue
            mono = facts.get(MonotoneFamily, s.family.name)
            if mono is None or mono.constraint not in present or mono.var != s.q or mono.direction != s.direction:
                reasons.append(f"{s.family.name}: the upward IC rows follow from the binding downward ones only with "
                               f"the allocation {s.q} monotone, and no monotone-allocation family for it is in the "
                               "problem; the IC rows are kept")
                continue
            if len(s.transfers) != 1:
                reasons.append(f"{s.family.name}: {len(s.transfers)} transfer variables; need exactly one")
                continue
            y = s.transfers[0]
            vdef = problem.var(y)
            if vdef is None:
                reasons.append(f"{y} is not a variable of the problem (already eliminated)")
                continue
            ysym = s.subs[sp.IndexedBase(y)[s.r]]
            us = s.u.xreplace(s.subs)
            kappa = sp.diff(us, ysym)
            if not kappa.is_number or kappa == 0:
                reasons.append(f"{s.family.name}: the transfer {y} enters u with marginal {kappa}, not a constant")
                continue
            rest = sp.expand(s.u - float(kappa) * sp.IndexedBase(y)[s.r])
            if sp.IndexedBase(y) in rest.atoms(sp.IndexedBase):
                reasons.append(f"{s.family.name}: u(t, r) - kappa * {y}[r] still mentions {y}")
                continue
            if vdef.lb is not None or vdef.ub is not None or vdef.kind != "real":
                what = ", ".join(w for w, b in (("a lower bound", vdef.lb is not None),
                                                ("an upper bound", vdef.ub is not None),
                                                (f"domain {vdef.kind}", vdef.kind != "real")) if b)
                reasons.append(f"{y} has {what}; the cheapest transfers might violate it, so eliminating {y} is not "
                               "provably exact (it stays a variable)")
                continue
            others = [c.name for c in problem.constraints
                      if c != adj.constraint and c != f.constraint and _mentions(c, y)]
            if others:
                reasons.append(f"{y} also appears in {', '.join(others)}; eliminating it is not provably exact")
                continue
            why = _objective_prefers_small_rents(problem, self.inst, y, s.order, float(kappa))
            if why is not True:
                reasons.append(why)
                continue
            found[y] = (f, mono, float(kappa))
        if not extremes:
            reasons.append("needs drop_implied (IR of a single extreme type) to have applied")
        return found, reasons

    def accepts(self, problem: ir.Problem, facts: Facts) -> Acceptance:
        found, reasons = self._plan(problem, facts)
        if found:
            reasons = reasons + [f"{y}: free, only in {f.ic_family}, {f.family} and the objective, which strictly "
                                 f"prefers smaller rents; {m.name} is in the problem" for y, (f, m, _) in found.items()]
        return Acceptance(bool(found), reasons)

    def apply(self, problem: ir.Problem, facts: Facts):
        found, _ = self._plan(problem, facts)
        drop, added, elims = set(), [], {}
        for y, (f, mono, kappa) in found.items():
            s = f.structure
            e = f.extreme
            order = s.order
            pos = {v: k for k, v in enumerate(order)}
            ie = pos[e]
            parent = {k: order[pos[k] - 1 if pos[k] > ie else pos[k] + 1] for k in order if k != e}
            yr = sp.IndexedBase(y)[s.r]
            rest = sp.expand(s.u - kappa * yr)
            R = f.rhs
            t, r = s.t, s.r
            yb = sp.IndexedBase(y)
            k_ = sp.nsimplify(kappa)
            first = sp.Eq(yb[e], sp.simplify((R - rest.xreplace({t: e, r: e})) / k_))
            j = sp.Symbol("j")
            step = sp.Eq(yb[t], yb[j] + sp.factor(sp.simplify((rest.xreplace({r: j}) - rest.xreplace({r: t})) / k_)))
            formula = (f"{first}   (extreme type e = {e}, IR binds)\n"
                       f"{step}   for every other type {t}, j = {t}'s neighbour toward {e} (IC[{t}->j] binds)")
            children: dict = {}
            for k, jj in parent.items():
                children.setdefault(jj, []).append(k)
            el = Elimination(y, order, e, parent, children, rest, t, r, kappa, R, formula, s.family.name, f.family)
            elims[y] = el
            drop |= {facts.get(AdjacentIC, s.family.name).constraint, f.constraint}
            n = len(order)
            added += [el, *_records(el, s, f, mono),
                      Applied(self.name, f"{y}: eliminated ({n} variables); {s.family.name} ({2 * (n - 1)} adjacent "
                                         f"rows) and the extreme IR hold by construction or by single crossing "
                                         f"with {mono.name}",
                              removed=2 * (n - 1) + 1, details=[formula])]
        new = ir.Problem(tuple(v for v in problem.vars if v.name not in elims),
                         tuple(c for c in problem.constraints if c not in drop), problem.objective)
        return new, (self.inst, elims), facts.add(*added)

    def invert(self, values: dict, inverse) -> dict:
        """Recover the eliminated transfers from the solved allocation by the payment rule."""
        from ..evaluate import Evaluator, ValuesTarget

        inst, eliminated = inverse
        ev = Evaluator(inst, ValuesTarget(values))
        out = dict(values)
        for y, el in eliminated.items():
            pos = {v: i for i, v in enumerate(el.order)}
            e = el.extreme
            val = {e: (ev.value(el.R, {}) - ev.value(el.rest, {el.t: e, el.r: e})) / el.kappa}
            for k in sorted(el.parent, key=lambda k: abs(pos[k] - pos[e])):
                j = el.parent[k]
                val[k] = val[j] + (ev.value(el.rest, {el.t: k, el.r: j})
                                   - ev.value(el.rest, {el.t: k, el.r: k})) / el.kappa
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


# ------------------------------------------------------------------ linearity of the objective in y
class _Nonlinear(Exception):
    pass


def linear_coefficients(expr, y: str, ev, env: dict | None = None) -> dict:
    """The coefficient of every ``y[key]`` in ``expr``, if ``expr`` is affine in ``y`` with numeric coefficients.

    Walks the SymPy tree: sums and expectations (:class:`~mechdsl.ir.sym.IterSum`,
    :class:`~mechdsl.ir.sym.Expectation`) are expanded over their index sets with the
    instance's data; a product contributes ``value(other factors) * coefficient(the one
    factor with y)``, where the other factors must be free of decision variables.
    Anything else that mentions ``y`` (a power, a function, a product of two such
    factors) is not linear.  Returns ``{key: float}``; raises ``ValueError`` with the
    reason when ``expr`` is not affine in ``y``.
    """
    Y = sp.IndexedBase(y)
    try:
        return _lin(expr, Y, ev, dict(env or {}))
    except _Nonlinear as exc:
        raise ValueError(str(exc)) from None


def _has(e, Y) -> bool:
    return isinstance(e, sp.Basic) and (Y in e.atoms(sp.IndexedBase) or Y.label in e.free_symbols)


def _acc(out: dict, part: dict, w: float = 1.0):
    for k, v in part.items():
        out[k] = out.get(k, 0.0) + w * v


def _lin(e, Y, ev, env) -> dict:
    if not _has(e, Y):
        return {}
    if isinstance(e, sp.Indexed) and e.base == Y:
        return {flat_key(tuple(canon(ev.value(i, env)) for i in e.indices)): 1.0}
    if isinstance(e, sp.Add):
        out: dict = {}
        for a in e.args:
            _acc(out, _lin(a, Y, ev, env))
        return out
    if isinstance(e, sp.Mul):
        with_y = [a for a in e.args if _has(a, Y)]
        if len(with_y) > 1:
            raise _Nonlinear(f"the objective has the product {e} of terms in {Y}")
        others = [a for a in e.args if a is not with_y[0]]
        rest = sp.Mul(*others)
        if ev.has_var(rest):
            raise _Nonlinear(f"the coefficient {rest} of {with_y[0]} in the objective depends on decision variables")
        w = float(ev.value(rest, env))
        out = {}
        _acc(out, _lin(with_y[0], Y, ev, env), w)
        return out
    if isinstance(e, sp.Pow) and e.exp == 1:
        return _lin(e.base, Y, ev, env)
    if isinstance(e, IterSum):
        body, dnode, cond = e.args
        items = tuple((tuple(pair[0]), pair[1]) for pair in dnode.args[0])
        cond = None if cond is sp.true else cond
        out = {}
        local = dict(env)
        for _ in ev.iterate(items, cond, local):
            _acc(out, _lin(body, Y, ev, dict(local)))
        return out
    if isinstance(e, Expectation):
        body, label, cond = e.args
        cond = None if cond is sp.true else cond
        parts, total = [], 0.0
        for value, prob in ev.inst.outcomes(label.name):
            local = dict(env)
            local[label] = value
            if cond is not None and not ev.truth(cond, local):
                continue
            total += prob
            parts.append((prob, _lin(body, Y, ev, local)))
        if total <= 0:
            raise _Nonlinear(f"E[{label} | {cond}] has probability 0")
        out = {}
        for prob, part in parts:
            _acc(out, part, prob / total)
        return out
    if isinstance(e, IterProd):
        raise _Nonlinear(f"the objective has a product over an index set of terms in {Y}")
    raise _Nonlinear(f"the objective is nonlinear in {Y} ({type(e).__name__} of it)")


def _objective_prefers_small_rents(problem: ir.Problem, inst, y: str, order, kappa: float):
    """True if the objective is linear in y with every coefficient of sign opposite to kappa, else the reason."""
    from ..evaluate import Evaluator

    if problem.objective is None:
        return "no objective"
    def coefficients():
        try:
            return linear_coefficients(problem.objective.expr, y, Evaluator(inst))  # numbers: the instance's data
        except ValueError as exc:
            return str(exc)

    coefs = memo(inst, ("linear_coefficients", problem.objective.expr, y), coefficients)
    if isinstance(coefs, str):
        return f"{coefs}; the binding chain might not be optimal"
    sense = 1 if problem.objective.sense == "maximize" else -1
    for k in order:
        c = sense * coefs.get((k,), 0.0)
        if not c * kappa < 0:
            return (f"the objective does not strictly prefer a smaller {y}[{k}] rent (coefficient {c:g}); "
                    "the binding chain might not be optimal")
    extra = sorted(set(coefs) - {(k,) for k in order}, key=repr)
    if extra:
        return f"the objective uses {y} at {extra}, outside the type set; the binding chain might not be optimal"
    return True


# ------------------------------------------------------------------ the dominance graph
def _records(el: Elimination, s, f: ExtremeIR, mono: MonotoneFamily):
    order, parent, e = el.order, el.parent, el.extreme
    name = el.definition
    ir_name = f.family
    fam = Family(name, "definition", lambda: iter(el.definition_ids()), len(order), derived=True)
    pos = {v: k for k, v in enumerate(order)}

    def premises(cid):
        base, rest = split_id(cid)
        if base == ir_name and rest == str(e):
            return [f"{name}[{e}]"]
        ab = pair_of(cid, s.family.name)
        if ab is None:
            return None
        a, b = ab
        if a in parent and parent[a] == b:
            return [f"{name}[{a}]"]
        if b in parent and parent[b] == a:  # upward: implied by the binding downward row + monotonicity
            lo, hi = sorted((pos[a], pos[b]))
            return [s.pair_id(b, a), mono.row_id(order[lo], order[hi])]
        return None

    def targets():
        yield f"{ir_name}[{e}]"
        for k, j in parent.items():
            yield s.pair_id(k, j)
            yield s.pair_id(j, k)

    rule = Rule("payment rule: the transfer is defined so that this row binds, or it then holds by "
                "single crossing", "eliminate_payments", el.formula.replace("\n", "; "), targets, premises)
    return [DerivedFamily(fam), Implied(rule, cites=(name, s.family.name, mono.name))]

"""Run the reduction passes over a bound problem (after CVXPY's ``Chain``).

A :class:`Chain` holds passes in order.  :meth:`Chain.run` asks each pass
whether it ``accepts`` the current problem and facts, applies those that do
(each returns a new problem, its inverse data and the facts extended), records
why the others did not, and returns a :class:`~.base.Reduction`.  The chain
owns the invert loop: :meth:`Chain.invert` maps a solution back through the
inverses in reverse order.

After every applied pass the chain checks that each family the dominance
graph's rules cite as premises is a constraint family of the original or the
current problem, or the definition of an eliminated variable; a pass that
breaks this is not applied (and says so), so no rule can rest on a row that is
in neither model.
"""
from __future__ import annotations

from typing import Any, Sequence

import sympy as sp

from ..analysis.dominance import DominanceGraph
from ..ir import nodes as ir
from ..ir.ids import constraint_id
from . import PASSES
from .base import Acceptance, Pass, Reduction, Stage
from .facts import Accepted, DerivedFamily, Elimination, Facts, Implied


def instance_ids(problem: ir.Problem, inst):
    """Every constraint instance id of ``problem`` (``IC[3->1]``, ``MONO_q[1,2]``, ...)."""
    types = inst.mech.types
    tdim = types[0].dim if types else None
    for c in problem.constraints:
        for k in inst.ev.domain_keys(c.domain):
            yield constraint_id(c, k, tdim)


def original_graph(problem: ir.Problem, inst) -> DominanceGraph:
    """A graph whose nodes are every instance of the problem's constraints."""
    g = DominanceGraph()
    types = inst.mech.types
    tdim = types[0].dim if types else None
    ev = inst.ev
    for c in problem.constraints:
        count = _fast_count(c, ev)
        keys_fn = (lambda c=c: ev.domain_keys(c.domain))
        if count is None:
            est = getattr(inst, "family_estimates", {}).get(c.name)
            # A family of millions of rows is counted by the size estimate, not listed (its ids stay lazy).
            count = int(est) if est is not None and est > 1e6 else len(keys_fn())
        g.add_family(c.name, c.kind.value, lambda c=c, keys_fn=keys_fn: (constraint_id(c, k, tdim) for k in keys_fn()),
                     count)
    return g


def _fast_count(c: ir.ConstraintDef, ev) -> int | None:
    if c.domain is None:
        return 1
    items = c.domain.items
    if len(items) == 2 and items[0][1] == items[1][1] and not (items[0][1].free_symbols & set(c.domain.binders)):
        cond = c.domain.cond
        t, r = c.domain.binders
        n = len(ev.set_elements(items[0][1]))
        if cond is None:
            return n * n
        if isinstance(cond, sp.Ne) and {cond.lhs, cond.rhs} == {t, r}:
            return n * (n - 1)
    return None


class Chain:
    """Passes run in order; each applies only where it accepts."""

    def __init__(self, passes: Sequence[Pass], inst):
        self.passes = list(passes)
        self.inst = inst  #: the bound instance (the passes were made with it)

    def accepts(self, problem: ir.Problem, facts: Facts | None = None) -> Acceptance:
        """Whether the first pass accepts (as a CVXPY chain: the rest depend on what it does)."""
        if not self.passes:
            return Acceptance(True, [])
        return self.passes[0].accepts(problem, facts or Facts())

    def apply(self, problem: ir.Problem, facts: Facts | None = None):
        """``(new_problem, inverse, new_facts)``; ``inverse`` is the list of ``(pass, data)`` applied."""
        red = self.run(problem, facts)
        return red.problem, red.inverse, red.facts

    def invert(self, values: dict, inverse: list[tuple[Pass, Any]]) -> dict:
        """Map a solution of the reduced problem back to the original variables (inverses in reverse order)."""
        for p, data in reversed(inverse):
            values = p.invert(values, data)
        return values

    def run(self, problem: ir.Problem, facts: Facts | None = None) -> Reduction:
        """Apply every pass that accepts; record the reasons, stages, inverses and the dominance graph."""
        inst = self.inst
        facts = facts or Facts()
        base_graph = original_graph(problem, inst)
        original_families = {c.name for c in problem.constraints}
        current = problem
        rejected: list[tuple[str, list[str]]] = []
        inverse: list[tuple[Pass, Any]] = []
        stages: list[Stage] = []
        for p in self.passes:
            acc = p.accepts(current, facts)
            if not acc.ok:
                rejected.append((p.name, list(acc.reasons)))
                continue
            new_problem, data, new_facts = p.apply(current, facts)
            bad = _dangling_citations(new_problem, new_facts, original_families)
            if bad:
                rejected.append((p.name, [f"internal: the pass cites {', '.join(bad)} as premises, which is in "
                                          "neither the original nor the reduced problem; not applied"]))
                continue
            current, facts = new_problem, new_facts.add(Accepted(p.name, tuple(acc.reasons)))
            inverse.append((p, data))
            stages.append(Stage(p.name, current, tuple(e.var for e in facts.all(Elimination))))
        return Reduction(problem, current, inst, _graph(base_graph, facts), facts, rejected, inverse, stages, self)


def _dangling_citations(problem: ir.Problem, facts: Facts, original: set[str]) -> list[str]:
    known = set(original) | {c.name for c in problem.constraints} | {e.definition for e in facts.all(Elimination)}
    return sorted({f for imp in facts.all(Implied) for f in imp.cites if f not in known})


def _graph(base: DominanceGraph, facts: Facts) -> DominanceGraph:
    g = DominanceGraph(list(base.families), list(base.rules), dict(base.removed))
    for d in facts.all(DerivedFamily):
        g.families.append(d.family)
    for imp in facts.all(Implied):
        g.add_rule(imp.rule)
    return g


def make_passes(inst, names: Sequence[str] | None = None) -> list[Pass]:
    names = list(PASSES) if names is None else list(names)
    for name in names:
        if name not in PASSES:
            raise ValueError(f"unknown pass '{name}' (known: {', '.join(PASSES)})")
    return [PASSES[name](inst) for name in names]


def reduce(problem: ir.Problem, inst, passes: list[str] | None = None) -> Reduction:
    """Apply the passes (all registered ones by default) that accept; record everything."""
    return Chain(make_passes(inst, passes), inst).run(problem)

"""Run the reduction passes over a bound problem (after CVXPY's ``Chain``)."""
from __future__ import annotations

import sympy as sp

from ..analysis.dominance import DominanceGraph
from ..ir import nodes as ir
from ..verify import constraint_id
from . import PASSES
from .base import Reduction


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
            count = len(keys_fn())
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


def reduce(problem: ir.Problem, inst, passes: list[str] | None = None) -> Reduction:
    """Apply the passes (all registered ones by default) that accept; record everything."""
    state = Reduction(problem, problem, inst, original_graph(problem, inst))
    names = list(PASSES) if passes is None else passes
    for name in names:
        if name not in PASSES:
            raise ValueError(f"unknown pass '{name}' (known: {', '.join(PASSES)})")
        p = PASSES[name]()
        acc = p.accepts(state)
        if acc.ok:
            state.inverse.append((p, p.apply(state)))
            state.facts.setdefault("accept_notes", {})[name] = acc.reasons
        else:
            state.rejected.append((name, acc.reasons))
    return state

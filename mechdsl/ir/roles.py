"""The role of an IC or IR family, as declared data: its agent, true type, report and flavour.

Computed once when the spec is lowered, from the family's own structure (never from index shapes alone),
and read by verification (regret per family and per agent), the menu, ``local_ic`` and ``compile --explain``:

* ``ex post`` IC (DSIC): the domain has a profile binder ``v in V^N`` and an agent binder ``i``; the true type
  is ``v[i]`` and the report the binder ``r`` that replaces it, ``(r, v[-i])``.  IR over a profile binder is
  ex-post IR.
* ``interim`` IC (BIC): the body takes an expectation over the others' types, ``E[v[-i]](...)``; the agent is
  ``i``, and the true type and report are the two binders after the agent's.  IR with ``E[v[-i]]`` is interim.
* ``ex ante`` IR: the body takes the expectation over whole profiles (or over a type), ``E[v](...)``.
* one agent (screening): IC over (true type, report) halves of its binders, IR per type.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from . import nodes as ir
from .sym import Component, Expectation, IPower, OthersExpectation, Replace


@dataclass(frozen=True)
class Role:
    flavour: str                 #: "ex post", "interim", "ex ante" or "single agent"
    agent: sp.Symbol | None      #: the agent binder (None: one agent)
    true: tuple                  #: the true type: binder symbols, or (Component,) for v[i]
    report: tuple                #: the report binder(s) (IC), () for IR
    profile: sp.Symbol | None = None  #: the profile binder of an ex-post family
    ic: bool = True              #: an IC family (else IR)

    @property
    def label(self) -> str:
        if self.ic:
            kind = {"ex post": "ex post IC (DSIC)", "interim": "interim IC (BIC)"}.get(self.flavour,
                                                                                     "IC between types")
        else:
            kind = {"ex post": "ex post IR", "interim": "interim IR", "ex ante": "ex ante IR"}.get(self.flavour,
                                                                                                "IR per type")
        return kind + (f", agent {self.agent}" if self.agent is not None else "")

    def describe(self) -> str:
        """``agent i, true type v[i], report r`` (what verification and the menu read)."""
        parts = [f"agent {self.agent}"] if self.agent is not None else []
        if self.true:
            parts.append("true type " + ", ".join(map(str, self.true)))
        if self.report:
            parts.append("report " + ", ".join(map(str, self.report)))
        return self.label.split(",")[0] + (": " + ", ".join(parts) if parts else "")

    def agent_position(self, binders: tuple) -> int | None:
        """The position of the agent binder among the family's binders."""
        return binders.index(self.agent) if self.agent in binders else None


def classify(c: ir.ConstraintDef) -> Role | None:
    """The role of IC / IR family ``c``, or None for another kind (or a shape with no reading)."""
    if c.kind not in (ir.ConKind.IC, ir.ConKind.IR) or c.domain is None and c.kind == ir.ConKind.IC:
        return None
    binders = c.domain.binders if c.domain is not None else ()
    items = c.domain.items if c.domain is not None else ()
    exprs = _exprs(c.body)
    profiles = [bs[0] for bs, node in items if isinstance(node, IPower) and len(bs) == 1]
    others = [a for e in exprs for a in sp.preorder_traversal(e) if isinstance(a, OthersExpectation)]
    whole = [a for e in exprs for a in sp.preorder_traversal(e) if isinstance(a, Expectation)]
    if profiles:
        v = profiles[0]
        comps = [a for e in exprs for a in sp.preorder_traversal(e) if isinstance(a, Component) and a.args[0] == v]
        agent = next((a.args[1] for a in comps if a.args[1] in binders), None)
        reports = [a.args[0] for e in exprs for a in sp.preorder_traversal(e)
                   if isinstance(a, Replace) and a.args[1] == v and a.args[0] in binders]
        if agent is None:
            return None
        comp = next(a for a in comps if a.args[1] == agent)
        return Role("ex post", agent, (comp,), tuple(dict.fromkeys(reports)), v, c.kind == ir.ConKind.IC)
    if others:
        agent = others[0].args[3]
        if agent not in binders:
            return None
        rest = [b for b in binders if b != agent]
        if c.kind == ir.ConKind.IC:
            if len(rest) < 2:
                return None
            return Role("interim", agent, (rest[-2],), (rest[-1],))
        return Role("interim", agent, tuple(rest[-1:]), (), ic=False)
    conds = [a.args[2] for a in whole if a.args[2] is not sp.true]
    agents = [x.args[1] for cnd in conds for x in sp.preorder_traversal(cnd)
              if isinstance(x, Component) and x.args[1] in binders]
    if agents:  # E[v | v[i] == t](...): interim, conditional on the agent's own type (correlated types)
        agent = agents[0]
        rest = [b for b in binders if b != agent]
        if c.kind == ir.ConKind.IC:
            return Role("interim", agent, (rest[-2],), (rest[-1],)) if len(rest) >= 2 else None
        return Role("interim", agent, tuple(rest[-1:]), (), ic=False)
    if c.kind == ir.ConKind.IR and whole and not binders:
        return Role("ex ante", None, (), (), ic=False)
    if c.kind == ir.ConKind.IC:
        if len(binders) % 2:
            return None
        h = len(binders) // 2
        return Role("single agent", None, tuple(binders[:h]), tuple(binders[h:]))
    return Role("single agent" if binders else "ex ante", None, tuple(binders), (), ic=False)


def _exprs(body) -> list:
    if isinstance(body, ir.Rel):
        return [body.lhs, body.rhs]
    if isinstance(body, (ir.AllOf, ir.AnyOf)):
        return [e for p in body.parts for e in _exprs(p)]
    if isinstance(body, ir.Implication):
        return [body.premise] + _exprs(body.conclusion)
    if isinstance(body, ir.Complementarity):
        return [body.a, body.b]
    return []

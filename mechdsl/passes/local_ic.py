"""``local_ic``: all-pairs IC -> adjacent IC (both directions) + monotone allocation.

Accepted for an IC family in standard form whose utility SymPy proves single
crossing (:mod:`.structure`).  Every removed ``IC[a->b]`` (|a - b| > 1 in the
type order) is recorded in the dominance graph as implied by
``IC[a->n] AND IC[n->b] AND MONO[...]`` with n the neighbour of a toward b.
"""
from __future__ import annotations

import sympy as sp

from ..analysis.dominance import Rule
from ..ir import nodes as ir
from ..ir.sym import IEnum
from .base import Acceptance, Applied, Pass, Reduction
from .structure import NotStandard, analyse_ic, id_number


class LocalIC(Pass):
    name = "local_ic"
    doc = "All-pairs IC -> adjacent IC both ways + monotone allocation, where SymPy proves single crossing."

    def accepts(self, state: Reduction) -> Acceptance:
        found, reasons = {}, []
        for c in state.problem.constraints:
            if c.kind != ir.ConKind.IC or c.origin is not None or c.check_only:
                continue
            try:
                s = analyse_ic(c, state.inst)
            except NotStandard as exc:
                reasons.append(str(exc))
                continue
            if len(s.order) < 3:
                reasons.append(f"{c.name}: only {len(s.order)} types; every pair is already adjacent")
                found[c.name] = s  # the structure still serves drop_implied / eliminate_payments
                continue
            found[c.name] = s
            reasons.append(f"{c.name}: {s.proof}")
        state.facts.setdefault("ic", {}).update(found)
        ok = any(len(s.order) >= 3 for s in found.values())
        return Acceptance(ok, reasons or ["no IC family in the spec"])

    def apply(self, state: Reduction):
        new, applied = [], []
        for c in state.problem.constraints:
            s = state.facts["ic"].get(c.name)
            if s is None or c.origin is not None or len(s.order) < 3:
                new.append(c)
                continue
            order = s.order
            pairs = []
            for a, b in zip(order, order[1:]):
                pairs += [(a, b), (b, a)]
            ic = ir.ConstraintDef(c.name, c.kind, ir.Domain(((tuple([s.t, s.r]), IEnum(*[sp.Tuple(*p) for p in pairs])),)),
                                  c.body, c.span, origin="local_ic: adjacent IC")
            mono_name = f"MONO_{s.q}"
            qa, qb = sp.IndexedBase(s.q)[s.t], sp.IndexedBase(s.q)[s.r]
            body = ir.Rel(qb, ">=", qa) if s.direction > 0 else ir.Rel(qb, "<=", qa)
            mono = ir.ConstraintDef(mono_name, ir.ConKind.MONOTONICITY,
                                    ir.Domain(((tuple([s.t, s.r]), IEnum(*[sp.Tuple(a, b) for a, b in zip(order, order[1:])])),)),
                                    body, c.span, origin="local_ic: monotone allocation")
            new += [ic, mono]
            _record(state, s, mono_name)
            n = len(order)
            applied.append(Applied(self.name, f"{c.name}: {n * (n - 1)} -> {2 * (n - 1)} IC rows + {n - 1} "
                                              f"monotonicity rows ({mono_name})",
                                   removed=n * (n - 1) - 2 * (n - 1), added=n - 1, details=[s.proof]))
        state.replace_constraints(new)
        state.applied += applied
        return None


def _record(state: Reduction, s, mono_name: str):
    order = s.order
    pos = {v: k for k, v in enumerate(order)}
    n = len(order)
    state.graph.add_family(mono_name, "monotonicity",
                           lambda: (f"{mono_name}[{a},{b}]" for a, b in zip(order, order[1:])), n - 1, derived=True)

    def parse(cid):
        name, _, rest = cid.partition("[")
        if name != s.family.name or "->" not in rest:
            return None
        a, b = rest.rstrip("]").split("->")
        try:
            a, b = id_number(a), id_number(b)
        except ValueError:
            return None
        if a not in pos or b not in pos:
            return None
        return a, b

    def premises(cid):
        ab = parse(cid)
        if ab is None:
            return None
        a, b = ab
        i, j = pos[a], pos[b]
        if abs(i - j) <= 1:
            return None
        step = 1 if j > i else -1
        nb = order[i + step]
        lo, hi = sorted((i + step, j))
        monos = [f"{mono_name}[{order[k]},{order[k + 1]}]" for k in range(lo, hi)]
        return [s.pair_id(a, nb), s.pair_id(nb, b)] + monos

    def targets():
        for i, a in enumerate(order):
            for j, b in enumerate(order):
                if abs(i - j) > 1:
                    yield s.pair_id(a, b)

    state.graph.add_rule(Rule(
        "single crossing: IC[a->b] <= IC[a->n] AND IC[n->b] AND monotone allocation between n and b",
        "local_ic", s.proof, targets, premises))


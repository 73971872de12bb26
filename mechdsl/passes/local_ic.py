"""``local_ic``: all-pairs IC -> adjacent IC (both directions) + monotone allocation.

Accepted for an IC family in standard form over two or more types whose
utility SymPy proves single crossing (:mod:`.structure`).  Every removed
``IC[a->b]`` (|a - b| > 1 in the type order) is recorded in the dominance graph
as implied by ``IC[a->n] AND IC[n->b] AND MONO[...]`` with n the neighbour of a
toward b.

The added rows ``MONO_q[a,b]`` (a, b adjacent) are themselves implied by the
adjacent IC rows both ways (adding ``IC[a->b]`` and ``IC[b->a]`` gives
``(theta_b - theta_a) * cross * (q_b - q_a) >= 0``), so adding them is exact.
With two types nothing is removed (every pair is adjacent) but the one
``MONO_q`` row is still added: it is the premise that lets
``eliminate_payments`` drop the upward IC row.
"""
from __future__ import annotations

import sympy as sp

from ..analysis.dominance import Family, Rule
from ..ir import nodes as ir
from ..ir.ids import pair_of
from ..ir.sym import IEnum
from .base import Acceptance, Pass
from .facts import AdjacentIC, Applied, DerivedFamily, Facts, Implied, MonotoneFamily
from .structure import NotStandard, analyse_ic


class LocalIC(Pass):
    name = "local_ic"
    doc = "All-pairs IC -> adjacent IC both ways + monotone allocation, where SymPy proves single crossing."

    def _candidates(self, problem: ir.Problem):
        """(constraint, structure or reason) for every spec IC family of ``problem``."""
        out = []
        for c in problem.constraints:
            if c.kind != ir.ConKind.IC or c.origin is not None or c.check_only:
                continue
            try:
                s = analyse_ic(c, self.inst)
            except NotStandard as exc:
                out.append((c, str(exc)))
                continue
            if len(s.order) < 2:
                out.append((c, f"{c.name}: only {len(s.order)} type; there is no misreport to rule out"))
                continue
            if not s.strict:
                out.append((c, f"{c.name}: d2u/d{s.theta} d{s.q} = {s.cross} is only weakly signed, so IC need not "
                               f"imply a monotone {s.q}; replacing all pairs would not be provably exact"))
                continue
            if _mono_name(s) in {d.name for d in problem.constraints}:
                out.append((c, f"{c.name}: the name {_mono_name(s)} of its monotonicity rows is taken"))
                continue
            out.append((c, s))
        return out

    def accepts(self, problem: ir.Problem, facts: Facts) -> Acceptance:
        cands = self._candidates(problem)
        reasons = [f"{c.name}: {s.proof}" if not isinstance(s, str) else s for c, s in cands]
        ok = any(not isinstance(s, str) for _, s in cands)
        return Acceptance(ok, reasons or ["no IC family in the spec"])

    def apply(self, problem: ir.Problem, facts: Facts):
        reduced = {c.name: s for c, s in self._candidates(problem) if not isinstance(s, str)}
        new, added = [], []
        for c in problem.constraints:
            s = reduced.get(c.name)
            if s is None:
                new.append(c)
                continue
            order = s.order
            pairs = []
            for a, b in zip(order, order[1:]):
                pairs += [(a, b), (b, a)]
            if s.agents:
                added += self._per_agent(c, s, pairs, new)
                continue
            ic = ir.ConstraintDef(c.name, c.kind,
                                  ir.Domain(((tuple([s.t, s.r]), IEnum(*[sp.Tuple(*p) for p in pairs])),)),
                                  c.body, c.span, origin="local_ic: adjacent IC")
            mono_name = _mono_name(s)
            qa, qb = sp.IndexedBase(s.q)[s.t], sp.IndexedBase(s.q)[s.r]
            body = ir.Rel(qb, ">=", qa) if s.direction > 0 else ir.Rel(qb, "<=", qa)
            mono = ir.ConstraintDef(mono_name, ir.ConKind.MONOTONICITY,
                                    ir.Domain(((tuple([s.t, s.r]),
                                                IEnum(*[sp.Tuple(a, b) for a, b in zip(order, order[1:])])),)),
                                    body, c.span, origin="local_ic: monotone allocation")
            new += [ic, mono]
            mf = MonotoneFamily(mono_name, c.name, s.q, s.direction, order, mono)
            n = len(order)
            implied_note = (f"{mono_name}[a,b] <= IC[a->b] AND IC[b->a] for adjacent a, b (add the two rows: "
                            f"(theta_b - theta_a) * d2u/dtheta dq * (q_b - q_a) >= 0), so adding it is exact")
            if n == 2:
                a, b = order
                summary = (f"{c.name}: 2 types, every pair is adjacent: 2 IC rows kept + 1 monotonicity row "
                           f"({mono_name}[{a},{b}], implied by {s.pair_id(a, b)} AND {s.pair_id(b, a)})")
            else:
                summary = (f"{c.name}: {n * (n - 1)} -> {2 * (n - 1)} IC rows + {n - 1} "
                           f"monotonicity rows ({mono_name})")
            added += [s, AdjacentIC(c.name, s, ic, tuple(pairs)), mf, *_records(s, mf),
                      Applied(self.name, summary, removed=n * (n - 1) - 2 * (n - 1), added=n - 1,
                              details=[s.proof, implied_note])]
        return ir.Problem(problem.vars, tuple(new), problem.objective), None, facts.add(*added)


    def _per_agent(self, c, s, pairs, new):
        """Per-agent reduction: the leading binders stay, (t, r) run over adjacent pairs; Q(b) >= Q(a)."""
        order = s.order
        lead = tuple(s.agents)
        ic = ir.ConstraintDef(c.name, c.kind,
                              ir.Domain(lead + ((tuple([s.t, s.r]), IEnum(*[sp.Tuple(*p) for p in pairs])),)),
                              c.body, c.span, origin="local_ic: adjacent IC per agent")
        mono_name = _mono_name(s)
        qa, qb = s.q_expr.xreplace({s.r: s.t}), s.q_expr
        body = ir.Rel(qb, ">=", qa) if s.direction > 0 else ir.Rel(qb, "<=", qa)
        mono = ir.ConstraintDef(mono_name, ir.ConKind.MONOTONICITY,
                                ir.Domain(lead + ((tuple([s.t, s.r]),
                                                   IEnum(*[sp.Tuple(a, b) for a, b in zip(order, order[1:])])),)),
                                body, c.span, origin="local_ic: monotone (interim) allocation per agent")
        new += [ic, mono]
        mf = MonotoneFamily(mono_name, c.name, s.q, s.direction, order, mono)
        keys = self.inst.ev.domain_keys(ir.Domain(lead, None))
        n, na = len(order), len(keys)
        summary = (f"{c.name}: {na} x {n * (n - 1)} -> {na} x {2 * (n - 1)} IC rows + {na} x {n - 1} "
                   f"monotonicity rows ({mono_name}: {qb} {'>=' if s.direction > 0 else '<='} its value one type "
                   f"down)")
        note = (f"{mono_name}[..., a, b] <= IC[..., a, b] AND IC[..., b, a] for adjacent a, b (add the two rows), so "
                "adding it is exact; it is the ironing condition")
        return [s, AdjacentIC(c.name, s, ic, tuple(pairs)), mf, *_agent_records(s, mf, keys),
                Applied(self.name, summary, removed=na * (n * (n - 1) - 2 * (n - 1)), added=na * (n - 1),
                        details=[s.proof, note])]


def _agent_records(s, mf: MonotoneFamily, keys):
    """Graph records of a per-agent reduction: ids ``IC[k..., a, b]`` with k the fixed indices."""
    order = s.order
    pos = {v: k for k, v in enumerate(order)}
    n = len(order)
    name = s.family.name
    txt = lambda k: ",".join(map(str, k))

    def mono_ids():
        for k in keys:
            for a, b in zip(order, order[1:]):
                yield f"{mf.name}[{txt(k)},{a},{b}]"
    fam = Family(mf.name, "monotonicity", mono_ids, len(keys) * (n - 1), derived=True)
    by_text = {txt(k): k for k in keys}

    def premises(cid):
        fam_name, _, rest = cid.partition("[")
        if fam_name != name or not rest.endswith("]"):
            return None
        parts = rest[:-1].rsplit(",", 2)
        if len(parts) != 3 or parts[0] not in by_text:
            return None
        try:
            a, b = (int(float(x)) if float(x).is_integer() else float(x) for x in parts[1:])
        except ValueError:
            return None
        chain = _chain(order, pos, a, b)
        if chain is None:
            return None
        nb, lo, hi = chain
        k = parts[0]
        monos = [f"{mf.name}[{k},{order[m]},{order[m + 1]}]" for m in range(lo, hi)]
        return [f"{name}[{k},{a},{nb}]", f"{name}[{k},{nb},{b}]"] + monos

    def targets():
        for k in keys:
            for i, a in enumerate(order):
                for j, b in enumerate(order):
                    if abs(i - j) > 1:
                        yield f"{name}[{txt(k)},{a},{b}]"

    rule = Rule("single crossing per agent: IC[k,a,b] <= IC[k,a,n] AND IC[k,n,b] AND monotone (interim) allocation",
                "local_ic", s.proof, targets, premises)
    return [DerivedFamily(fam), Implied(rule, cites=(name, mf.name))]


def _chain(order, pos: dict, a, b):
    """For a non-adjacent misreport a -> b: (n, lo, hi) with n the neighbour of a toward b and order[lo..hi]
    the types whose monotonicity rows the rule cites; None when a, b are adjacent or not types."""
    if a not in pos or b not in pos:
        return None
    i, j = pos[a], pos[b]
    if abs(i - j) <= 1:
        return None
    step = 1 if j > i else -1
    lo, hi = sorted((i + step, j))
    return order[i + step], lo, hi


def _mono_name(s) -> str:
    return f"MONO_{s.q}"


def _records(s, mf: MonotoneFamily):
    """The graph's new family (the MONO rows) and the rule for every removed non-adjacent IC row."""
    order = s.order
    pos = {v: k for k, v in enumerate(order)}
    n = len(order)
    fam = Family(mf.name, "monotonicity", lambda: (mf.row_id(a, b) for a, b in zip(order, order[1:])), n - 1,
                 derived=True)

    def premises(cid):
        ab = pair_of(cid, s.family.name)
        chain = _chain(order, pos, *ab) if ab is not None else None
        if chain is None:
            return None
        a, b = ab
        nb, lo, hi = chain
        monos = [mf.row_id(order[k], order[k + 1]) for k in range(lo, hi)]
        return [s.pair_id(a, nb), s.pair_id(nb, b)] + monos

    def targets():
        for i, a in enumerate(order):
            for j, b in enumerate(order):
                if abs(i - j) > 1:
                    yield s.pair_id(a, b)

    rule = Rule("single crossing: IC[a->b] <= IC[a->n] AND IC[n->b] AND monotone allocation between n and b",
                "local_ic", s.proof, targets, premises)
    return [DerivedFamily(fam), Implied(rule, cites=(s.family.name, mf.name))]

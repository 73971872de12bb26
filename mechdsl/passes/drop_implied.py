"""``drop_implied``: IR of every type follows from IR of the extreme type and IC.

With ``u(t, r)`` monotone in the type param (``du/dtheta`` of one sign, proved
by SymPy), the type whose truthful utility is lowest is an end of the order
(the *extreme* type e).  If the IR right-hand side does not depend on the type,
``u(k,k) >= u(k,e) >= u(e,e) >= R`` so ``IR[k] <= IC[k->e] AND IR[e]``
(paper 000, Lemma 3; 004, Prop. 8 for the binding one).

Needs the :class:`~.structure.ICStructure` of an IC family (a fact from
``local_ic``); the premise ``IC[k->e]`` is a row of the original IC family.
"""
from __future__ import annotations

import sympy as sp

from ..analysis.dominance import Rule
from ..ir import nodes as ir
from ..ir.ids import id_number, split_id
from ..ir.sym import IEnum
from .base import Acceptance, Pass, memo
from .facts import Applied, ExtremeIR, Facts, Implied
from .structure import ICStructure


class DropImplied(Pass):
    name = "drop_implied"
    doc = "Keep only the extreme type's IR when IC and a type-free reservation level imply the others."

    def _candidates(self, problem: ir.Problem, facts: Facts):
        structures = [s for s in facts.all(ICStructure) if not s.agents]  # per-agent families: not (yet) here
        out = []
        for c in problem.constraints:
            if c.kind != ir.ConKind.IR or c.origin is not None or c.check_only:
                continue
            key = ("drop_implied", c, tuple(s.family for s in structures))  # a structure is a function of its family
            out.append((c, memo(self.inst, key, lambda c=c: _match(c, structures, self.inst))))
        return out

    def accepts(self, problem: ir.Problem, facts: Facts) -> Acceptance:
        cands = self._candidates(problem, facts)
        reasons = [m if isinstance(m, str) else f"{c.name}: {m.proof}" for c, m in cands]
        if not facts.all(ICStructure):
            reasons.append("no IC family with a proved single-crossing structure")
        return Acceptance(any(not isinstance(m, str) for _, m in cands), reasons)

    def apply(self, problem: ir.Problem, facts: Facts):
        found = {c.name: m for c, m in self._candidates(problem, facts) if not isinstance(m, str)}
        new, added = [], []
        for c in problem.constraints:
            f = found.get(c.name)
            if f is None:
                new.append(c)
                continue
            b, e, s = f.binder, f.extreme, f.structure
            kept = ir.ConstraintDef(c.name, c.kind, ir.Domain((((b,), IEnum(sp.Tuple(e))),)), c.body, c.span,
                                    origin="drop_implied: IR of the extreme type")
            new.append(kept)
            others = [k for k in s.order if k != e]
            name = c.name

            def premises(cid, name=name, e=e, s=s, others=frozenset(others)):
                base, rest = split_id(cid)
                if base != name:
                    return None
                try:
                    k = id_number(rest)
                except ValueError:
                    return None
                if k not in others:
                    return None
                return [s.pair_id(k, e), f"{name}[{e}]"]

            rule = Rule("IR of the extreme type + IC: IR[k] <= IC[k->e] AND IR[e]", self.name, f.proof,
                        lambda others=others, name=name: (f"{name}[{k}]" for k in others), premises)
            added += [ExtremeIR(f.family, b, e, f.ic_family, s, f.rhs, f.proof, kept),
                      Implied(rule, cites=(s.family.name, name)),
                      Applied(self.name, f"{c.name}: {len(s.order)} -> 1 IR row ({name}[{e}] kept)",
                              removed=len(others), details=[f.proof])]
        return ir.Problem(problem.vars, tuple(new), problem.objective), None, facts.add(*added)


def _match(c: ir.ConstraintDef, structures, inst) -> ExtremeIR | str:
    """The extreme-type structure of IR family ``c`` (``constraint`` not yet set), or the reason there is none."""
    if c.domain is None or len(c.domain.binders) != 1 or c.domain.cond is not None:
        return f"{c.name}: not of the form IR[t in S]: u(t, t) >= R"
    (b,) = c.domain.binders
    body = c.body
    if not isinstance(body, ir.Rel) or body.op not in (">=", "<="):
        return f"{c.name}: not a single inequality"
    lhs, rhs = (body.lhs, body.rhs) if body.op == ">=" else (body.rhs, body.lhs)
    elems = tuple(e[0] for e in inst.ev.set_elements(c.domain.items[0][1]))
    for s in structures:
        if elems != s.order:
            continue
        if sp.simplify(lhs - s.u.xreplace({s.t: b, s.r: b})) != 0:
            continue
        if b in rhs.free_symbols or any(b in ix.indices for ix in rhs.atoms(sp.Indexed)):
            return (f"{c.name}: the reservation level {rhs} depends on the type, so IR of one type does not "
                    "imply the others; all IR rows kept")
        g = s.du_dtheta
        if g.is_nonnegative:
            gs = 1
        elif g.is_nonpositive:
            gs = -1
        else:
            return f"{c.name}: cannot prove the sign of du/d{s.theta} = {g}"
        # Lowest truthful utility: where theta is smallest if u increases in theta, largest otherwise.
        vals = {k: inst.params[s.theta][(k,)] for k in s.order}
        e = min(s.order, key=lambda k: vals[k]) if gs > 0 else max(s.order, key=lambda k: vals[k])
        proof = (f"du/d{s.theta} = {g} {'>=' if gs > 0 else '<='} 0, so u(k, e) >= u(e, e) for the extreme type "
                 f"e = {e} ({'lowest' if gs > 0 else 'highest'} {s.theta}); with R = {rhs} type-free, "
                 f"u(k,k) >= u(k,e) >= u(e,e) >= R (000 Lemma 3)")
        return ExtremeIR(c.name, b, e, s.family.name, s, rhs, proof)
    return f"{c.name}: its utility does not match a reduced IC family"

"""``drop_implied``: IR of every type follows from IR of the extreme type and IC.

With ``u(t, r)`` monotone in the type param (``du/dtheta`` of one sign, proved
by SymPy), the type whose truthful utility is lowest is an end of the order
(the *extreme* type e).  If the IR right-hand side does not depend on the type,
``u(k,k) >= u(k,e) >= u(e,e) >= R`` so ``IR[k] <= IC[k->e] AND IR[e]``
(paper 000, Lemma 3; 004, Prop. 8 for the binding one).
"""
from __future__ import annotations

import sympy as sp

from ..analysis.dominance import Rule
from ..ir import nodes as ir
from ..ir.sym import IEnum
from .base import Acceptance, Applied, Pass, Reduction
from .structure import id_number


class DropImplied(Pass):
    name = "drop_implied"
    doc = "Keep only the extreme type's IR when IC and a type-free reservation level imply the others."

    def accepts(self, state: Reduction) -> Acceptance:
        structures = state.facts.get("ic", {})
        found, reasons = {}, []
        for c in state.problem.constraints:
            if c.kind != ir.ConKind.IR or c.origin is not None or c.check_only:
                continue
            why = _match(c, structures, state)
            if isinstance(why, str):
                reasons.append(why)
            else:
                found[c.name] = why
                reasons.append(f"{c.name}: {why['proof']}")
        if not structures:
            reasons.append("no IC family with a proved single-crossing structure")
        state.facts["ir"] = found
        return Acceptance(bool(found), reasons)

    def apply(self, state: Reduction):
        new = []
        for c in state.problem.constraints:
            f = state.facts["ir"].get(c.name)
            if f is None:
                new.append(c)
                continue
            b, e, s = f["binder"], f["extreme"], f["ic"]
            new.append(ir.ConstraintDef(c.name, c.kind, ir.Domain((((b,), IEnum(sp.Tuple(e))),)), c.body, c.span,
                                        origin="drop_implied: IR of the extreme type"))
            others = [k for k in s.order if k != e]
            name = c.name

            def premises(cid, name=name, e=e, s=s, others=set(others)):
                base, _, rest = cid.partition("[")
                if base != name:
                    return None
                try:
                    k = id_number(rest.rstrip("]"))
                except ValueError:
                    return None
                if k not in others:
                    return None
                return [s.pair_id(k, e), f"{name}[{e}]"]

            state.graph.add_rule(Rule(
                "IR of the extreme type + IC: IR[k] <= IC[k->e] AND IR[e]", self.name, f["proof"],
                lambda others=others, name=name: (f"{name}[{k}]" for k in others), premises))
            state.applied.append(Applied(self.name, f"{c.name}: {len(s.order)} -> 1 IR row ({name}[{e}] kept)",
                                         removed=len(others), details=[f["proof"]]))
        state.replace_constraints(new)
        return None


def _match(c: ir.ConstraintDef, structures, state):
    if c.domain is None or len(c.domain.binders) != 1 or c.domain.cond is not None:
        return f"{c.name}: not of the form IR[t in S]: u(t, t) >= R"
    (b,) = c.domain.binders
    body = c.body
    if not isinstance(body, ir.Rel) or body.op not in (">=", "<="):
        return f"{c.name}: not a single inequality"
    lhs, rhs = (body.lhs, body.rhs) if body.op == ">=" else (body.rhs, body.lhs)
    elems = [e[0] for e in state.inst.ev.set_elements(c.domain.items[0][1])]
    for s in structures.values():
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
        vals = {k: state.inst.params[s.theta][(k,)] for k in s.order}
        e = min(s.order, key=lambda k: vals[k]) if gs > 0 else max(s.order, key=lambda k: vals[k])
        proof = (f"du/d{s.theta} = {g} {'>=' if gs > 0 else '<='} 0, so u(k, e) >= u(e, e) for the extreme type "
                 f"e = {e} ({'lowest' if gs > 0 else 'highest'} {s.theta}); with R = {rhs} type-free, "
                 f"u(k,k) >= u(k,e) >= u(e,e) >= R (000 Lemma 3)")
        return {"binder": b, "extreme": e, "ic": s, "rhs": rhs, "proof": proof}
    return f"{c.name}: its utility does not match a reduced IC family"


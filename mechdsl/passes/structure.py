"""Recognise an IC family in standard form and prove single crossing with SymPy.

Standard form: ``ic NAME[t in S, r in S: t != r]: u(t, t) >= u(t, r)`` over a
one-dimensional ordered set ``S``.  The proof of single crossing
(Spence-Mirrlees) goes as follows:

1. ``u(t, r)`` mentions the true type only through params indexed by ``t`` and
   the report only through variables (or params) indexed by ``r``;
2. exactly one report variable ``q`` (the allocation) has a marginal utility
   that depends on the type; every other report variable (a transfer) enters
   with a type-free marginal;
3. exactly one type param ``theta`` interacts with ``q``, and SymPy proves the
   sign of the cross partial ``d2u / dtheta dq`` from the variables' bounds
   and the sign of ``theta``'s data;
4. the data of ``theta`` is strictly monotone along ``S``.

Then IC for all pairs is equivalent to adjacent IC in both directions plus
``q`` monotone along ``S`` (in the direction given by the signs).

Per agent: ``ic NAME[i in N, ..., t in S, r in S: t != r]`` with leading binders (the agent, and anything
else held fixed) is a family of such problems, one per binding of the leading binders, and is reduced in
each.  There ``u(t, r)`` may be an interim utility, an expectation over the others' types
(``E[v[-i]](val[t] * x[i, (r, v[-i])] - p[i, (r, v[-i])])``): each expectation of a report variable whose
coefficient does not depend on the others' types is one aggregate (the interim allocation
``Q(r) = E[v[-i]](x[i, (r, v[-i])])``, the interim payment), by linearity of the expectation, and the proof
runs on the aggregates.  The monotone rows are then ``Q(b) >= Q(a)``: the ironing condition.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..ir import nodes as ir
from ..ir.ids import id_number  # noqa: F401  (re-exported; it used to live here)
from ..ir.sym import Expectation, IPower, OthersExpectation, SetNode


@dataclass(frozen=True)
class ICStructure:
    """The proved single-crossing structure of one IC family (a fact; see :mod:`.facts`)."""

    family: ir.ConstraintDef
    t: sp.Symbol
    r: sp.Symbol
    order: tuple           # the type set's elements (scalars), in order
    u: sp.Expr             # u(t, r), the right-hand side template
    q: str                 # allocation variable
    theta: str             # type parameter crossing q
    cross: sp.Expr         # d2u/dtheta dq
    cross_sign: int        # +1 / -1
    theta_dir: int         # +1 increasing along order, -1 decreasing
    direction: int         # +1: q increasing along order; -1: decreasing
    transfers: tuple       # other report variables
    subs: dict             # Indexed -> plain Symbol used in the proof
    du_dtheta: sp.Expr
    proof: str
    strict: bool = True    # the cross partial is strictly signed (so IC implies a monotone allocation)
    agents: tuple = ()     # per agent: the leading domain items ((binders, set), ...) held fixed
    q_expr: sp.Expr | None = None  # the allocation as a template in r (q[r], or an interim E[...](x[...]))

    @property
    def key(self) -> str:
        return self.family.name

    def pair_id(self, a, b) -> str:
        return f"{self.family.name}[{a}->{b}]"


class NotStandard(Exception):
    """The reason a family cannot be reduced."""


def analyse_ic(c: ir.ConstraintDef, inst) -> ICStructure:
    """Return the proved structure of IC family ``c`` or raise :class:`NotStandard` with the reason.

    Pure; the proof is computed once per (instance, family) and cached.
    """
    from .base import memo

    out = memo(inst, ("analyse_ic", c), lambda: _analyse_or_reason(c, inst))
    if isinstance(out, NotStandard):
        raise NotStandard(*out.args)
    return out


def _analyse_or_reason(c, inst):
    try:
        return _analyse_ic(c, inst)
    except NotStandard as exc:
        return exc


def _analyse_ic(c: ir.ConstraintDef, inst) -> ICStructure:
    if c.domain is None:
        raise NotStandard(f"{c.name} is not quantified over (true type, report)")
    items = c.domain.items
    binders = c.domain.binders
    lead = ()
    role = getattr(c, "role", None)  # declared data (ir/roles.py): the agent, the true type and the report
    last = tuple(bs[0] for bs, _ in items[-2:]) if all(len(bs) == 1 for bs, _ in items[-2:]) else ()
    cond0 = c.domain.cond
    interim = (role is not None and role.flavour == "interim" and role.true and role.report
               and (role.true[0], role.report[0]) == last)
    if len(items) > 2 and last and (interim or isinstance(cond0, sp.Ne) and {cond0.lhs, cond0.rhs} == set(last)):
        lead, items = tuple(items[:-2]), tuple(items[-2:])
        fixed = {b for bs, _ in lead for b in bs}
        if any(node.free_symbols & {bs[0] for bs, _ in items} for _, node in lead) or \
                any(node.free_symbols & fixed for _, node in items):
            raise NotStandard(f"{c.name}: the type set depends on the other indices")
        binders = tuple(bs[0] for bs, _ in items)
    if (role is not None and role.flavour == "ex post") or any(isinstance(node, IPower) for _, node in c.domain.items):
        raise NotStandard(f"{c.name} is ex post (DSIC): the true type is an entry of a profile; the per-profile "
                          "adjacent reduction is not implemented, so all pairs are kept")
    if len(binders) != 2 or len(items) != 2:
        dims = len(binders) // 2 if len(binders) % 2 == 0 else None
        if dims and dims > 1:
            raise NotStandard(f"{c.name} ranges over a {dims}-dimensional type space; single crossing needs a "
                              "one-dimensional ordered type, so all pairs are kept")
        raise NotStandard(f"{c.name} is not of the form [t in S, r in S: t != r]")
    (bt, st), (br, sr) = items
    t, r = bt[0], br[0]
    ev = inst.ev
    elems_t = ev.set_elements(st)
    elems_r = ev.set_elements(sr)
    if elems_t != elems_r:
        raise NotStandard(f"{c.name}: the true type and the report range over different sets")
    if any(len(e) != 1 for e in elems_t):
        raise NotStandard(f"{c.name}: the type set has tuple elements; single crossing needs a one-dimensional "
                          "ordered type, so all pairs are kept")
    cond = c.domain.cond
    if cond is not None and not (isinstance(cond, sp.Ne) and {cond.lhs, cond.rhs} == {t, r}):
        raise NotStandard(f"{c.name}: the filter {cond} is not 't != r'; conditional IC is not reduced")
    body = c.body
    if not isinstance(body, ir.Rel) or body.op not in (">=", "<="):
        raise NotStandard(f"{c.name}: the body is not a single inequality u(t,t) >= u(t,r)")
    lhs, rhs = (body.lhs, body.rhs) if body.op == ">=" else (body.rhs, body.lhs)
    if sp.simplify(lhs - rhs.xreplace({r: t})) != 0:
        raise NotStandard(f"{c.name}: the left side is not the right side at r = t (not u(t,t) >= u(t,r))")
    u = rhs
    var_names = inst.var_names
    u, aggregates = _aggregate(c, u, r, var_names) if lead else (u, {})
    if any(isinstance(a, SetNode) or type(a).__module__.endswith("ir.sym") for a in sp.preorder_traversal(u)):
        raise NotStandard(f"{c.name}: u(t, r) contains sums or expectations; the local IC proof needs a closed form")

    subs, type_params, report_vars = {}, {}, {}
    for name, (sym, template) in aggregates.items():
        lb_ok = _var_nonneg(inst, name)
        report_vars[name] = sp.Symbol(sym.name, real=True, positive=True if lb_ok else None)
        subs[sym] = report_vars[name]
    lead_syms = {b for bs, _ in lead for b in bs}
    for ix in u.atoms(sp.Indexed):
        if lead and not (set(ix.indices) & {t, r}) and not (ix.free_symbols & {t, r}):
            continue  # data of the fixed indices only (e.g. a weight per agent): a constant here
        name = ix.base.label.name
        if ix.indices == (t,):
            if name in var_names:
                raise NotStandard(f"{c.name}: u(t, r) uses the variable {ix} of the true type")
            sym = sp.Symbol(f"{name}_t", real=True, positive=_all_positive(inst.params.get(name)))
            subs[ix] = sym
            type_params[name] = sym
        elif ix.indices == (r,):
            if name in var_names:
                lb_ok = _var_nonneg(inst, name)
                sym = sp.Symbol(f"{name}_r", real=True, positive=True if lb_ok else None)
                report_vars[name] = sym
            else:
                sym = sp.Symbol(f"{name}_r", real=True)
            subs[ix] = sym
        else:
            raise NotStandard(f"{c.name}: u(t, r) indexes {ix}; only [t] and [r] are understood")
    if any(name in var_names for name in (ix.base.label.name for ix in u.atoms(sp.Indexed)
                                          if not (set(ix.indices) & {t, r}))):
        raise NotStandard(f"{c.name}: u(t, r) has a variable that depends on neither the type nor the report")
    if t in u.xreplace(subs).free_symbols or r in u.xreplace(subs).free_symbols:
        raise NotStandard(f"{c.name}: u(t, r) uses the type index itself as a number")
    us = u.xreplace(subs)
    theta_syms = set(type_params.values())
    alloc = [n for n, s in report_vars.items() if sp.diff(us, s).free_symbols & theta_syms]
    transfers = [n for n in report_vars if n not in alloc]
    if len(alloc) != 1:
        if not alloc:
            raise NotStandard(f"{c.name}: no report variable interacts with the type; nothing to screen on")
        raise NotStandard(f"{c.name}: the type interacts with {len(alloc)} allocations ({', '.join(alloc)}); "
                          "single crossing needs one allocation, so all pairs are kept")
    q = alloc[0]
    qs = report_vars[q]
    crossing = [n for n, s in type_params.items() if sp.diff(us, qs, s) != 0]
    if len(crossing) != 1:
        raise NotStandard(f"{c.name}: {len(crossing)} type params ({', '.join(crossing)}) interact with {q}; "
                          "single crossing needs one")
    theta = crossing[0]
    ths = type_params[theta]
    cross = sp.simplify(sp.diff(us, qs, ths))
    if cross.is_nonnegative:
        sign = 1
        strict = bool(cross.is_positive)
    elif cross.is_nonpositive:
        sign = -1
        strict = bool(cross.is_negative)
    else:
        raise NotStandard(f"{c.name}: cannot prove the sign of d2u/d{theta} d{q} = {cross}")
    for other in transfers:
        d = sp.diff(us, report_vars[other])
        if d.free_symbols & theta_syms:
            raise NotStandard(f"{c.name}: the transfer {other} interacts with the type")
    vals = [inst.indexed(theta, (e[0],)) for e in elems_t]  # EvalError (located) outside theta's index set
    if all(b > a for a, b in zip(vals, vals[1:])):
        tdir = 1
    elif all(b < a for a, b in zip(vals, vals[1:])):
        tdir = -1
    else:
        raise NotStandard(f"{c.name}: {theta} is not strictly monotone over the type set, so types are not ordered")
    direction = sign * tdir
    du_dtheta = sp.simplify(sp.diff(us, ths))
    agg_text = "".join(f"; {sym} = {template}" for sym, template in aggregates.values())
    per = (f"for each {', '.join(str(b) for bs, _ in lead for b in bs)}: " if lead else "")
    proof = (f"{per}u(t, r) = {us}{agg_text}; d2u/d{ths} d{qs} = {cross} {'>=' if sign > 0 else '<='} 0 "
             f"({'increasing' if sign > 0 else 'decreasing'} differences, on {qs} > 0 and by continuity at the "
             f"boundary); {theta} is strictly {'increasing' if tdir > 0 else 'decreasing'} over the types (data). "
             f"Single crossing: all-pairs IC <=> adjacent IC both ways + {q} "
             f"{'non-decreasing' if direction > 0 else 'non-increasing'} in the type order")
    q_expr = aggregates[q][1] if q in aggregates else sp.IndexedBase(q)[r]
    return ICStructure(c, t, r, tuple(e[0] for e in elems_t), u, q, theta, cross, sign, tdir, direction,
                       tuple(transfers), subs, du_dtheta, proof, strict, lead, q_expr)


def _aggregate(c, u, r, var_names):
    """``u`` with each expectation of a report variable replaced by one symbol per variable (linearity).

    Returns (u', {var: (symbol, E[...](var[...]) template)}).  A coefficient inside the expectation must
    not depend on the expectation's subject (then it factors out); every expectation of one variable must
    be the same template.
    """
    aggs: dict = {}
    out = []
    for term in sp.Add.make_args(sp.expand(u)):
        factors = sp.Mul.make_args(term)
        es = [f for f in factors if isinstance(f, (Expectation, OthersExpectation))]
        if not es:
            out.append(term)
            continue
        if len(es) > 1:
            raise NotStandard(f"{c.name}: u(t, r) multiplies two expectations")
        e = es[0]
        if e.args[2] is not sp.true:
            raise NotStandard(f"{c.name}: u(t, r) is a conditional expectation (e.g. on the true type, with "
                              "correlated types); the interim allocation then depends on the true type, so single "
                              "crossing is not proved and all pairs are kept")
        coef = sp.Mul(*[f for f in factors if f is not e])
        body, label = e.args[0], e.args[1]
        for bt in sp.Add.make_args(sp.expand(body)):
            vs = [f for f in sp.Mul.make_args(bt) if isinstance(f, sp.Indexed) and f.base.label.name in var_names]
            if len(vs) != 1:
                raise NotStandard(f"{c.name}: the expectation in u(t, r) is not linear in the variables")
            var = vs[0]
            bcoef = sp.Mul(*[f for f in sp.Mul.make_args(bt) if f is not var])
            if label in bcoef.free_symbols or r in bcoef.free_symbols:
                raise NotStandard(f"{c.name}: in u(t, r) the coefficient {bcoef} of {var} depends on the "
                                  "expectation's outcome or the report, so it does not factor out")
            name = var.base.label.name
            template = e.func(var, *e.args[1:])
            if name in aggs and aggs[name][1] != template:
                raise NotStandard(f"{c.name}: {name} appears in u(t, r) under two different expectations")
            sym = aggs.setdefault(name, (sp.Symbol(f"E_{name}_r"), template))[0]
            out.append(coef * bcoef * sym)
    return sp.Add(*out), aggs


def _all_positive(table):
    if isinstance(table, dict) and table:
        if all(v > 0 for v in table.values()):
            return True
    return None


def _var_nonneg(inst, name) -> bool:
    v = next((v for v in inst.mech.problem.vars if v.name == name), None)
    if v is None or v.lb is None:
        return False
    try:
        if v.domain is None:
            return inst.ev.value(v.lb) >= 0
        env: dict = {}
        return all(inst.ev.value(v.lb, env) >= 0 for _ in inst.ev.iterate(v.domain.items, v.domain.cond, env))
    except Exception:
        return False

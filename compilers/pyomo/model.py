"""Compile a bound :class:`~mechdsl.ir.nodes.Problem` into a Pyomo ``ConcreteModel``.

Stage: ``(Problem, Instance, env) -> CompiledModel``.  Components are named
after the spec (``model.IC``, ``model.x``), indexed by the spec's index tuples,
so ``model.pprint()`` reads like the spec.  ``min``/``max`` terms are replaced
by an epigraph or hypograph variable where that is exact (a ``min`` whose
growth helps the model, e.g. ``M*min(0, g)`` in a maximised objective, 000 eq.
12); elsewhere they are smoothed, ``(a + b ± sqrt((a - b)^2 + mu^2))/2``, the
model is an NLP, and the solver runs a continuation in mu down to 1e-9.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import pyomo.environ as pyo
from pyomo.core.expr.numvalue import is_constant, value as pyo_value
from pyomo.core.util import quicksum

from mechdsl.errors import Diagnostic, MechError
from mechdsl.evaluate import EvalError, Evaluator, Target, canon, flat_key
from mechdsl.ir import nodes as ir

_DOMAINS = {"real": pyo.Reals, "nonnegative": pyo.NonNegativeReals, "binary": pyo.Binary,
            "integer": pyo.Integers}


#: Smoothing schedule for min/max terms that cannot be linearised exactly.  The
#: NLP is solved for each mu in turn, warm-started; the last value makes the
#: smoothed term exact to within mu/2 = 5e-10, far below verification tolerances.
#: Large mu gives IPOPT a gradient out of flat regions such as max(0, g) with
#: g < 0, where the exact term has none.
SMOOTHING_SCHEDULE = (1.0, 1e-1, 1e-2, 1e-4, 1e-6)
SMOOTHING_FINAL = 1e-9


class UnsupportedError(MechError):
    """The spec uses a construct this backend cannot compile yet."""


def located(inst, span, message: str) -> str:
    """``message`` at ``span`` in the ``file:line:col: error:`` form, with the source line and a caret
    (the spec's text comes from the instance's lowered mechanism)."""
    if span is None:
        return f"error: {message}"
    mech = getattr(inst, "mech", None)
    source = getattr(mech, "source", None)
    return Diagnostic(message, span).render({span.file: source} if source is not None else {})


class PyomoTarget(Target):
    """Evaluate IR templates into Pyomo expressions."""

    numeric = False

    def __init__(self, model: pyo.ConcreteModel, var_components: dict, label: str = ""):
        self.model = model
        self.vars = var_components
        self.label = label
        self.linearized = 0
        self.smoothed = 0

    def var(self, name, key):
        comp = self.vars[name]
        if not key:
            return comp
        k = key[0] if len(key) == 1 else key
        try:
            return comp[k]
        except KeyError:
            raise EvalError(f"{name}[{','.join(map(str, key))}] is outside the index set of var '{name}'",
                            name=name) from None

    @staticmethod
    def _num(x):
        return isinstance(x, (int, float))

    def sqrt(self, x):
        return Target.sqrt(self, x) if self._num(x) else pyo.sqrt(x)

    def log(self, x):
        return Target.log(self, x) if self._num(x) else pyo.log(x)

    def exp(self, x):
        return Target.exp(self, x) if self._num(x) else pyo.exp(x)

    def abs(self, x):
        return abs(x) if self._num(x) else abs(x)

    def pow(self, b, e):
        if self._num(b) and self._num(e):
            return Target.pow(self, b, e)
        return b ** e

    def sum(self, values):
        if all(self._num(v) for v in values):
            return math.fsum(values) if values else 0
        return quicksum(values)

    def _aux(self, args, upper: bool):
        """A fresh variable z with z <= args (upper) or z >= args."""
        m = self.model
        if not hasattr(m, "minmax_aux"):
            m.minmax_aux = pyo.VarList()
            m.minmax_aux_def = pyo.ConstraintList()
        z = m.minmax_aux.add()
        for a in args:
            m.minmax_aux_def.add(z <= a if upper else z >= a)
        self.linearized += 1
        return z

    def _mu(self):
        # A variable pinned by its bounds rather than a mutable Param: the NLP
        # keeps one structure through the continuation and is built only once.
        m = self.model
        if not hasattr(m, "smoothing_mu"):
            m.smoothing_mu = pyo.Var(bounds=(SMOOTHING_FINAL, SMOOTHING_FINAL), initialize=SMOOTHING_FINAL,
                                     doc="smoothing of nonsmooth min/max terms (see compilers/pyomo/model.py)")
        return m.smoothing_mu

    def _smooth(self, args, sign):
        """max (sign=+1) or min (sign=-1) as (a + b ± sqrt((a-b)^2 + mu^2)) / 2."""
        self.smoothed += 1
        mu = self._mu()
        r = args[0]
        for a in args[1:]:
            r = (r + a + sign * pyo.sqrt((r - a) ** 2 + mu ** 2)) / 2
        return r

    def max(self, args, pol):
        if all(self._num(a) for a in args):
            return max(args)
        if pol < 0:  # a smaller max is better: z >= every arg is exact
            return self._aux(args, upper=False)
        return self._smooth(args, +1)

    def min(self, args, pol):
        if all(self._num(a) for a in args):
            return min(args)
        if pol > 0:  # a larger min is better: z <= every arg is exact
            return self._aux(args, upper=True)
        return self._smooth(args, -1)


@dataclass
class CompiledModel:
    """A Pyomo model with what is needed to read its solution in spec terms."""

    model: pyo.ConcreteModel
    problem: ir.Problem
    problem_class: str
    sense: str
    var_keys: dict[str, list[tuple]]
    con_counts: dict[str, int]  # constraint family -> number of rows
    con_kinds: dict[str, str]
    linearized: int = 0
    smoothed: int = 0
    build_time: float = 0.0
    integer: bool = False
    notes: list[str] = field(default_factory=list)
    reduction: object = None  #: the Reduction compiled (None for the full model)
    mpcc: object = None       #: MPCCOptions when the model has implications/disjunctions/complementarity

    @property
    def num_vars(self) -> int:
        """Decision variables of the compiled model (eliminated ones are expressions, not counted)."""
        return sum(len(k) for n, k in self.var_keys.items() if isinstance(getattr(self.model, n), pyo.Var))

    def values(self) -> dict[str, dict[tuple, float]]:
        out = {}
        for name, keys in self.var_keys.items():
            comp = getattr(self.model, name)
            vals = {}
            for key in keys:
                vd = comp if not key else comp[key[0] if len(key) == 1 else key]
                vals[key] = float(vd.value) if vd.value is not None else math.nan
            out[name] = vals
        return out


def _pyomo_name(model, name, inst=None, span=None):
    if hasattr(model, name):
        raise UnsupportedError(located(inst, span, f"the name '{name}' clashes with a Pyomo model attribute or "
                                                   "another component of the model; please rename it"))
    return name


def compile_problem(problem: ir.Problem, inst, env: dict | None = None, name: str = "mechdsl",
                    var_names: set[str] | None = None, eliminated: dict | None = None,
                    mpcc: MPCCOptions | None = None) -> CompiledModel:
    """Build the Pyomo model of ``problem`` bound to ``inst`` (and index values ``env``).

    ``eliminated`` maps variable names removed by a reduction to their
    :class:`~mechdsl.passes.eliminate_payments.Elimination`; they become Pyomo
    ``Expression`` components (named like the variable) of the remaining ones.
    """
    t0 = time.perf_counter()
    env = dict(env or {})
    model = pyo.ConcreteModel(name=name)
    comps, var_keys = {}, {}
    target = PyomoTarget(model, comps)
    eliminated = eliminated or {}
    names = var_names if var_names is not None else {v.name for v in problem.vars}
    names = set(names) | set(eliminated)
    num = Evaluator(inst)
    num._var_names = names
    ev = Evaluator(inst, target)
    ev._var_names = names
    integer = False

    for v in problem.vars:
        try:
            keys = [flat_key(k) for k in num.domain_keys(v.domain, env)]  # a profile contributes its entries
        except EvalError as exc:
            raise exc.again(f"in var {v.name}: {exc.message}", exc.name, exc.span or v.span) from None
        var_keys[v.name] = keys
        bounds, inits = {}, {}
        local = dict(env)
        it = num.iterate(v.domain.items, v.domain.cond, local) if v.domain else iter([local])
        for _ in it:
            key = flat_key(tuple(local[b] for b in v.domain.binders)) if v.domain else ()
            try:
                lb = _bound(num, v.lb, local)
                ub = _bound(num, v.ub, local)
            except EvalError as exc:
                raise exc.again(f"in var {v.name}: {exc.message}", exc.name, exc.span or v.span) from None
            if lb is not None and ub is not None and lb > ub + 1e-12:  # a data error, located at the var
                raise EvalError(f"var {v.name}{_fmt(key)} has lower bound {float(lb):g} above its upper bound "
                                f"{float(ub):g}, so no value fits", span=v.span)
            bounds[key] = (lb, ub)
            inits[key] = num.value(v.init, local) if v.init is not None else None
        integer |= v.kind in ("binary", "integer")
        dom = _DOMAINS[v.kind]
        pname = _pyomo_name(model, v.name, inst, v.span)
        if v.domain is None:
            lb, ub = bounds[()]
            comp = pyo.Var(domain=dom, bounds=(lb, ub), initialize=_start(inits[()], lb, ub))
        else:
            pkeys = [k[0] if len(k) == 1 else k for k in keys]
            comp = pyo.Var(pkeys, domain=dom, dense=True)
        setattr(model, pname, comp)
        if v.domain is not None:
            for key in keys:
                vd = comp[key[0] if len(key) == 1 else key]
                lb, ub = bounds[key]
                vd.setlb(lb)
                vd.setub(ub)
                vd.set_value(_start(inits[key], lb, ub), skip_validation=True)
        comps[v.name] = comp

    for y, el in eliminated.items():  # a free placeholder while the objective is built
        pname = _pyomo_name(model, y)
        setattr(model, pname, pyo.Var([k for k in el.order], domain=pyo.Reals))
        comps[y] = getattr(model, pname)

    mpcc = mpcc or MPCCOptions()
    notes: list[str] = []
    con_counts, con_kinds = {}, {}
    for c in problem.constraints:
        if c.check_only:
            continue  # verified after the solve, not imposed
        _compile_constraint(model, c, ev, num, env, con_counts, mpcc, notes)
        con_kinds[c.name] = c.kind.value

    sense = "maximize"
    if problem.objective is not None:
        o = problem.objective
        sense = o.sense
        pol = 1 if o.sense == "maximize" else -1
        try:
            expr = ev.value(o.expr, dict(env), pol)
        except EvalError as exc:
            raise exc.again(f"in the objective: {exc.message}", exc.name, o.span) from None
        setattr(model, _pyomo_name(model, o.name, inst, o.span),
                pyo.Objective(expr=expr, sense=pyo.maximize if o.sense == "maximize" else pyo.minimize))
        for y, el in eliminated.items():
            _substitute_eliminated(model, y, el, ev, getattr(model, o.name))
    for y in eliminated:
        var_keys.pop(y, None)

    _transform_disjunctions(model, notes, mpcc)
    cm = CompiledModel(model, problem, "", sense, var_keys, con_counts, con_kinds,
                       linearized=target.linearized, smoothed=target.smoothed,
                       build_time=time.perf_counter() - t0, integer=integer, notes=notes)
    cm.mpcc = mpcc if getattr(model, "_mechdsl_disjunctions", 0) or hasattr(model, "mpcc_eps") else None
    cm.problem_class = classify(model, integer)
    return cm


def _substitute_eliminated(model, y, el, ev: Evaluator, obj):
    """Replace the transfer ``y`` in the objective by the payment rule, summed by parts.

    With y[e] = d[e] and y[k] = y[j(k)] + d[k] along the type order toward the
    extreme e, an objective linear in y, sum_k c_k y[k], equals
    sum_k C_k d[k] where C_k is the sum of c over k and every type beyond k.
    The result has O(K) terms (a chained expression would be O(K^2) to walk).
    """
    from pyomo.repn import generate_standard_repn
    from pyomo.repn.standard_repn import StandardRepn

    comp = getattr(model, y)
    ids = {id(comp[k]): k for k in comp}
    repn = generate_standard_repn(obj.expr, quadratic=True, compute_values=True)
    coef = {k: 0.0 for k in el.order}
    keep = StandardRepn()
    keep.constant = repn.constant
    keep.linear_vars, keep.linear_coefs = [], []
    for v, c in zip(repn.linear_vars, repn.linear_coefs):
        if id(v) in ids:
            coef[ids[id(v)]] += c
        else:
            keep.linear_vars.append(v)
            keep.linear_coefs.append(c)
    keep.quadratic_vars, keep.quadratic_coefs = list(repn.quadratic_vars), list(repn.quadratic_coefs)
    keep.nonlinear_expr, keep.nonlinear_vars = repn.nonlinear_expr, list(repn.nonlinear_vars)
    e = el.extreme
    pos = {v: i for i, v in enumerate(el.order)}
    # C_k: own coefficient plus those of every type further from e than k on the same side.
    C = {}
    for k in sorted(el.order, key=lambda k: -abs(pos[k] - pos[e])):
        C[k] = coef[k] + sum(C[c] for c in el.children.get(k, ()))
    terms = [C[e] * (ev.value(el.R, {}) - ev.value(el.rest, {el.t: e, el.r: e})) / el.kappa]
    for k, j in el.parent.items():
        if C[k] != 0:
            d = (ev.value(el.rest, {el.t: k, el.r: j}) - ev.value(el.rest, {el.t: k, el.r: k})) / el.kappa
            terms.append(C[k] * d)
    obj.set_value(keep.to_expression() + quicksum(terms))
    model.del_component(comp)


def _start(init, lb, ub):
    if init is not None:
        v = init
    else:
        v = 0.0
    if lb is not None and v < lb:
        v = lb
    if ub is not None and v > ub:
        v = ub
    return v


def _bound(num, expr, env):
    if expr is None:
        return None
    b = num.value(expr, env)
    if isinstance(b, float) and math.isinf(b):
        return None
    return b


def _fmt(key):
    return f"[{','.join(map(str, key))}]" if key else ""


@dataclass(frozen=True)
class MPCCOptions:
    """How implications, disjunctions and complementarity constraints are compiled.

    ``mode``: "exact" (pyomo.gdp disjunctions, big-M from the variable bounds: a MILP)
    or "relax" (complementarity a*b <= eps and disjunction indicators z*(1-z) <= eps:
    an NLP whose eps the solver lowers along a schedule).  ``tol`` is the margin
    used to negate a non-strict premise: not(a <= b) is modelled as a >= b + tol.
    """

    mode: str = "exact"
    tol: float = 1e-5
    gdp: str = "bigm"  #: exact mode: "bigm" (M from the bounds) or "hull" (convex hull reformulation)


def _compile_constraint(model, c: ir.ConstraintDef, ev: Evaluator, num: Evaluator, env, counts, mpcc, notes):
    """Add the rows (and disjunctions) of one constraint family to ``model``; ``counts[c.name]`` = rows."""
    rows: dict[str, dict] = {}
    disj: dict[tuple, list] = {}
    local = dict(env)
    it = ev.iterate(c.domain.items, c.domain.cond, local) if c.domain else iter([local])
    binders = c.domain.binders if c.domain else ()
    negated_strict = [False]
    relaxed_impl = [0]

    def side(rel):
        lhs = ev.value(rel.lhs, local, -1 if rel.op == "<=" else (1 if rel.op == ">=" else 0))
        rhs = ev.value(rel.rhs, local, 1 if rel.op == "<=" else (-1 if rel.op == ">=" else 0))
        return lhs, rhs

    def relation(rel, key):
        lhs, rhs = side(rel)
        if PyomoTarget._num(lhs) and PyomoTarget._num(rhs):
            ok = {"<=": lhs <= rhs + 1e-9, ">=": lhs >= rhs - 1e-9, "==": abs(lhs - rhs) <= 1e-9}[rel.op]
            return True if ok else False
        return {"<=": lambda: lhs <= rhs, ">=": lambda: lhs >= rhs, "==": lambda: lhs == rhs}[rel.op]()

    from mechdsl.progress import Progress

    bar = Progress(_expected_rows(c, num), f"building {c.name}")
    for _ in it:
        bar.step()
        key = tuple(local[b] for b in binders)
        try:
            for part, item in _items(c.body, num, local, c, inst=getattr(num, "inst", None)):
                if item[0] == "rel":
                    e = relation(item[1], key)
                    if e is True:
                        continue
                    if e is False:  # a data error, located at the constraint (the handler below says which)
                        raise EvalError("no variable is left in it and the data alone violate it, so the model "
                                        "is infeasible", span=c.span)
                    rows.setdefault(part, {})[key] = e
                elif item[0] == "compl":
                    a = ev.value(item[1], local, 0)
                    b = ev.value(item[2], local, 0)
                    rows.setdefault(part + "nonneg_a", {})[key] = a >= 0
                    rows.setdefault(part + "nonneg_b", {})[key] = b >= 0
                    if mpcc.mode == "relax":
                        rows.setdefault(part + "relaxed", {})[key] = a * b <= _eps(model)
                    else:
                        disj.setdefault((part, key), []).extend([[a <= 0], [b <= 0]])
                elif item[0] == "impl" and mpcc.mode == "relax" and len(item[1]) == 1:
                    _relaxed_implication(model, item[1][0], item[2], ev, local, mpcc.tol)
                    relaxed_impl[0] += 1  # its rows live in model.mpcc_rows
                else:
                    # ("impl", premises, conclusion) == (not P1) or ... or (not Pn) or conclusion;
                    # ("disj", alternatives): each alternative a list of Rel or ("not", relational).
                    alternatives = (item[1] if item[0] == "disj"
                                    else [[("not", p)] for p in item[1]] + [item[2]])
                    alts = []
                    for alt in alternatives:
                        cons = []
                        for r in alt:
                            if isinstance(r, tuple):
                                cons.append(_negate(r[1], ev, local, mpcc.tol, negated_strict))
                            else:
                                e = relation(r, key)
                                if e is False:
                                    cons = None
                                    break
                                if e is not True:
                                    cons.append(e)
                        if cons is not None:
                            alts.append(cons)
                    if not alts:
                        raise EvalError("no alternative of it can hold on the data, so the model is infeasible",
                                        span=c.span)
                    if any(len(a) == 0 for a in alts):
                        continue  # an alternative holds trivially
                    disj[(part, key)] = alts
        except EvalError as exc:
            raise exc.again(f"in constraint {c.name}{_fmt(key)}: {exc.message}", exc.name, c.span) from None
    bar.close()
    total = relaxed_impl[0]
    rows = {p: r for p, r in rows.items() if r}
    for part, exprs in sorted(rows.items()):
        cname = _pyomo_name(model, c.name if part == "" else f"{c.name}_{part}", ev.inst, c.span)
        if not binders:
            comp = pyo.Constraint(expr=exprs[()])
        else:
            pkeys = [k[0] if len(k) == 1 else k for k in exprs]
            lookup = {pk: exprs[k] for pk, k in zip(pkeys, exprs)}
            comp = pyo.Constraint(pkeys, rule=lambda m, *k: lookup[k[0] if len(k) == 1 else k])
        setattr(model, cname, comp)
        total += len(exprs)
    by_part: dict[str, dict] = {}
    for (part, key), alts in disj.items():
        by_part.setdefault(part, {})[key] = alts
    for part, table in sorted(by_part.items()):
        from pyomo.gdp import Disjunction

        cname = _pyomo_name(model, c.name if part == "" and not rows.get("") else f"{c.name}_{part or 'disj'}", ev.inst,
                           c.span)
        if not binders:
            comp = Disjunction(expr=table[()])
        else:
            pkeys = [k[0] if len(k) == 1 else k for k in table]
            lookup = {pk: table[k] for pk, k in zip(pkeys, table)}
            comp = Disjunction(pkeys, rule=lambda m, *k: lookup[k[0] if len(k) == 1 else k])
        setattr(model, cname, comp)
        total += len(table)
        model._mechdsl_disjunctions = getattr(model, "_mechdsl_disjunctions", 0) + len(table)
    if negated_strict[0]:
        notes.append(f"{c.name}: a premise 'a <= b' is negated as 'a >= b + {mpcc.tol:g}' (--mpcc-tol)")
    counts[c.name] = total


def _relaxed_implication(model, premise, conclusion, ev, env, tol):
    """premise g <= 0 -> conclusion h >= 0, as the MPCC  h + w >= 0,  u >= margin - g,  u*w <= eps  (u, w >= 0).

    When the premise holds (g <= 0), u >= margin = sqrt(eps) forces w <= sqrt(eps); when it fails, u may be 0
    and the conclusion is free.  A strict premise has margin 0 (at g == 0 it is false, as in the exact model).
    """
    m = model
    if not hasattr(m, "mpcc_u"):
        m.mpcc_u = pyo.VarList(domain=pyo.NonNegativeReals, doc="MPCC: margin of a premise")
        m.mpcc_w = pyo.VarList(domain=pyo.NonNegativeReals, doc="MPCC: relaxation of a conclusion")
        m.mpcc_rows = pyo.ConstraintList()
    lhs, rhs = ev.value(premise.lhs, env, 0), ev.value(premise.rhs, env, 0)
    op = premise.rel_op
    g = lhs - rhs if op in ("<=", "<") else rhs - lhs
    # A non-strict premise keeps a margin of sqrt(eps): then w <= eps / sqrt(eps) = sqrt(eps), the order of
    # the paper's Lemma 4, and the band 0 < g < sqrt(eps) where the conclusion is still enforced vanishes.
    margin = pyo.sqrt(_eps(m)) if op in ("<=", ">=") else 0.0
    u, w = m.mpcc_u.add(), m.mpcc_w.add()
    u.set_value(1.0)
    w.set_value(0.0)
    m.mpcc_rows.add(u >= margin - g)
    m.mpcc_rows.add(u * w <= _eps(m))
    for rel in conclusion:
        lhs_c = ev.value(rel.lhs, env, 0)
        rhs_c = ev.value(rel.rhs, env, 0)
        if rel.op in (">=", "=="):
            m.mpcc_rows.add(lhs_c - rhs_c + w >= 0)
        if rel.op in ("<=", "=="):
            m.mpcc_rows.add(rhs_c - lhs_c + w >= 0)


def _expected_rows(c: ir.ConstraintDef, num: Evaluator) -> int:
    """Cheap size estimate for the progress line: the product of the sizes of independent index sets."""
    if c.domain is None:
        return 1
    n = 1
    for binders, node in c.domain.items:
        if node.free_symbols & set(c.domain.binders):
            return 0
        try:
            n *= len(num.set_elements(node))
        except Exception:
            return 0
    return n


def _eps(model):
    """The relaxation parameter: a variable pinned by its bounds (one NLP structure for the whole schedule)."""
    if not hasattr(model, "mpcc_eps"):
        model.mpcc_eps = pyo.Var(bounds=(1e-2, 1e-2), initialize=1e-2,
                                 doc="MPCC relaxation: a*b <= eps, z*(1-z) <= eps")
    return model.mpcc_eps


def _negate(cond, ev: Evaluator, env, tol, flag):
    """not(a <= b) -> a >= b + tol; not(a < b) -> a >= b (a strict premise negates to a closed set)."""
    lhs, rhs = ev.value(cond.lhs, env, 0), ev.value(cond.rhs, env, 0)
    op = cond.rel_op
    if op in ("<=", ">="):
        flag[0] = True
    return {"<=": lambda: lhs >= rhs + tol, "<": lambda: lhs >= rhs, ">=": lambda: lhs <= rhs - tol,
            ">": lambda: lhs <= rhs}[op]()


def _items(body, num: Evaluator, env, c: ir.ConstraintDef, prefix="", inst=None):
    """Yield (part label, item): ("rel", Rel), ("compl", a, b) or ("disj", alternatives)."""
    if isinstance(body, ir.Rel):
        yield prefix, ("rel", body)
    elif isinstance(body, ir.AllOf):
        for k, p in enumerate(body.parts, 1):
            yield from _items(p, num, env, c, f"{prefix}{k}" if not prefix else f"{prefix}_{k}", inst)
    elif isinstance(body, ir.Implication):
        if not num.has_var(body.premise):
            if num.truth(body.premise, env):
                yield from _items(body.conclusion, num, env, c, prefix, inst)
            return
        conclusion = _plain_rels(body.conclusion, c, inst)
        premises = _conjuncts(body.premise, c, inst)
        yield prefix, ("impl", premises, conclusion)
    elif isinstance(body, ir.AnyOf):
        yield prefix, ("disj", [_plain_rels(p, c, inst) for p in body.parts])
    elif isinstance(body, ir.Complementarity):
        yield prefix, ("compl", body.a, body.b)
    else:  # pragma: no cover
        raise AssertionError(type(body))


def _plain_rels(body, c, inst=None) -> list:
    if isinstance(body, ir.Rel):
        return [body]
    if isinstance(body, ir.AllOf) and all(isinstance(p, ir.Rel) for p in body.parts):
        return list(body.parts)
    raise UnsupportedError(located(inst, c.span, f"constraint '{c.name}': an alternative of an implication or "
                                   "disjunction must be a comparison or a conjunction of comparisons"))


def _conjuncts(cond, c, inst=None) -> list:
    import sympy as sp

    if isinstance(cond, sp.And):
        out = []
        for a in cond.args:
            out += _conjuncts(a, c, inst)
        return out
    if isinstance(cond, sp.core.relational.Relational) and cond.rel_op in ("<=", "<", ">=", ">"):
        return [cond]
    raise UnsupportedError(located(inst, c.span, f"constraint '{c.name}': a premise with variables must be an "
                                   "inequality or a conjunction ('and') of inequalities"))


def _transform_disjunctions(model, cm_notes, mpcc: MPCCOptions):
    """gdp.bigm with M from the variable bounds; in relax mode the indicators become z*(1-z) <= eps."""
    from pyomo.gdp import GDP_Error
    from pyomo.core.expr.visitor import identify_variables

    if not getattr(model, "_mechdsl_disjunctions", 0):
        return
    transformation = "gdp.hull" if (mpcc.mode == "exact" and mpcc.gdp == "hull") else "gdp.bigm"
    try:
        pyo.TransformationFactory(transformation).apply_to(model)
    except GDP_Error as exc:
        from pyomo.gdp import Disjunct
        missing = []
        for d in model.component_data_objects(Disjunct, descend_into=True):
            for con in d.component_data_objects(pyo.Constraint, active=True):
                for v in identify_variables(con.body):
                    if (v.lb is None or v.ub is None) and v.name not in missing:
                        missing.append(v.name)
        raise UnsupportedError(
            "error: --mpcc exact needs finite bounds on every variable in an implication, disjunction or "
            f"complementarity (big-M and the hull are derived from them); missing for: {', '.join(missing[:8]) or '?'}"
            + (" ..." if len(missing) > 8 else "") + ". Add bounds in the spec (e.g. 'var p[k] >= 0, <= 100;'), "
            f"or use --mpcc relax.  [{str(exc).splitlines()[0]}]") from None
    if mpcc.mode == "relax":
        eps = _eps(model)
        binaries = [v for v in model.component_data_objects(pyo.Var) if v.is_binary()]
        model.mpcc_indicator_relaxed = pyo.ConstraintList()
        for v in binaries:
            v.domain = pyo.Reals
            v.setlb(0)
            v.setub(1)
            model.mpcc_indicator_relaxed.add(v * (1 - v) <= eps)
        cm_notes.append(f"relax: {len(binaries)} disjunction indicators kept in [0,1] with z*(1-z) <= eps")
    else:
        how = "the convex hull (gdp.hull)" if transformation == "gdp.hull" else "big-M (M from the variable bounds)"
        cm_notes.append(f"exact: implications/disjunctions/complementarity compiled by pyomo.gdp {how}")


def classify(model: pyo.ConcreteModel, integer: bool) -> str:
    """LP, QP, NLP, MILP, MIQP or MINLP from the degrees of the model's expressions."""
    worst_con = 0
    for con in model.component_data_objects(pyo.Constraint, active=True):
        d = con.body.polynomial_degree()
        worst_con = max(worst_con, 3 if d is None else d)
    obj_deg = 0
    for obj in model.component_data_objects(pyo.Objective, active=True):
        d = obj.expr.polynomial_degree() if not is_constant(obj.expr) else 0
        obj_deg = 3 if d is None else d
    if worst_con <= 1 and obj_deg <= 1:
        base = "LP"
    elif worst_con <= 1 and obj_deg == 2:
        base = "QP"
    else:
        base = "NLP"
    integer = integer or any(not v.is_continuous() for v in model.component_data_objects(pyo.Var))
    if integer:
        return {"LP": "MILP", "QP": "MIQP", "NLP": "MINLP"}[base]
    return base

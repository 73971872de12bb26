"""Lower a checked AST into the mechanism IR.

Stage: ``(ast.Module, SymbolTable) -> Mechanism``.  Every SymPy expression is
built node by node from the AST; spec text never reaches an evaluator
(no ``sympify``/``parse_expr``).  Calls of user ``def``s are expanded in place
(the argument expressions are substituted for the parameters while lowering
the body), so the IR contains only primitive operations.
"""
from __future__ import annotations

import dataclasses
import math

import sympy as sp

from ..errors import Diagnostic, MechSemanticError
from ..semantics.check import PRIOR_FNS, SymbolTable
from ..syntax import ast
from . import nodes as ir
from .roles import classify
from .sym import (ITERATED, AuxRef, Component, DomainNode, Expectation, IFilter, IfThenElse, IInterval, Infimum,
                  Iron, PriorFn, IList, INamed,
                  IPower, IProduct, IRange, Label, Others, OthersExpectation, Replace, ReportAt)

_REL = {"<=": sp.Le, ">=": sp.Ge, "==": sp.Eq, "!=": sp.Ne, "<": sp.Lt, ">": sp.Gt}
_FUNCS = {"sqrt": sp.sqrt, "log": sp.log, "exp": sp.exp, "abs": sp.Abs, "floor": sp.floor, "ceil": sp.ceiling}


def number(v: float) -> sp.Expr:
    """A SymPy number for ``v``: an Integer when integral, else a Float."""
    return sp.Integer(int(v)) if float(v).is_integer() else sp.Float(v)


_NOT_FINITE = (sp.zoo, sp.nan, sp.oo, -sp.oo)
_BOOLEAN = (sp.core.relational.Relational, sp.logic.boolalg.BooleanFunction, sp.logic.boolalg.BooleanAtom)
_MAX_FLOAT = sp.Float(1.7976931348623157e308)


def _too_large(r: sp.Basic) -> bool:
    try:
        return not math.isfinite(float(r))
    except (TypeError, ValueError, OverflowError):
        return False


def constant_problem(r: sp.Basic) -> str | None:
    """Why a folded constant is unusable (division by zero, a complex or non-finite value), or None.

    SymPy folds ``1/0`` to ``zoo``, ``sqrt(-1)`` to ``I`` and ``10^400`` to an exact integer that
    no double holds.  Only ``r``'s own arguments are looked at: its children were checked when built.
    """
    if r in _NOT_FINITE or any(a in _NOT_FINITE for a in r.args):
        return "is not finite (a division by zero, or log of 0)"
    if r is sp.I or any(a is sp.I for a in r.args):
        return "is not a real number"
    if isinstance(r, (sp.Mul, sp.Add)) and any(a.is_Number and abs(a) > _MAX_FLOAT for a in r.args):
        return "is too large for a double (beyond 1.8e308)"  # a folded coefficient, as 10^309 in x * 1e308 * 10
    if r.is_number and not isinstance(r, _BOOLEAN):
        if r.is_real is False:
            return "is not a real number"
        if r.is_Number and abs(r) > _MAX_FLOAT:
            return "is too large for a double (beyond 1.8e308)"
        if not r.is_Number and isinstance(r, (sp.exp, sp.Pow)) and _too_large(r):
            return "is too large for a double (beyond 1.8e308)"
    return None


class Lowerer:
    def __init__(self, table: SymbolTable, module: ast.Module):
        self.table = table
        self.module = module
        self.defs: dict[str, ast.DefDecl] = {}
        self.utilities: list[ir.UtilityDef] = []
        self.functions: list[ir.UtilityDef] = []
        self._expansions: dict[tuple, tuple] = {}  # (def, argument expressions) -> (expansion, def kept alive)
        self._def_scope: dict[int, dict] = {}  # id(def inside an aux) -> the aux's index scope
        self.reports: dict[str, ast.ReportDecl] = {}  # a report used in a later report is expanded in place
        self.agents: dict[str, sp.Basic] = {}  # profile name -> its agent set node (binders over V^N, E[v])
        self.param_decls = {d.name: d for d in module.items if isinstance(d, ast.ParamDecl)}

    # ------------------------------------------------------------------ top
    def run(self) -> ir.Mechanism:
        data, vars_, cons, obj, reports = [], [], [], None, []
        for item in self.module.items:
            if isinstance(item, ast.ReportDecl):
                if not item.export:  # ``report NAME;`` of a param: uses of NAME stay the param
                    self.reports[item.name] = item
                dom, scope = self.domain(item.index, {})
                reports.append(ir.ReportDef(item.name, dom, len(dom.binders) if dom else 0,
                                            self.expr(item.expr, scope), item.span))
                continue
            if isinstance(item, ast.SetDecl):
                data.append(ir.SetDef(item.name, self.set_node(item.value, {}), self.table[item.name].dim, item.span))
            elif isinstance(item, ast.ParamDecl):
                data.append(self.param(item))
            elif isinstance(item, ast.TypeDecl):
                if item.agents is not None:
                    agents = self.set_node(item.agents.items[0].set, {})
                    self.agents[item.name] = agents
                    psym = self.table.get(item.prior) if item.prior else None
                    kind = ("joint" if psym is not None and psym.profile else
                            "per agent" if psym is not None and psym.dim == 2 else "common")
                    data.append(ir.TypeDef(item.name, IPower(self.set_node(item.set, {}), agents), 1,
                                           item.prior, item.span, agents, kind))
                else:
                    density = (self.expr(item.density, {item.name: sp.Symbol(item.name)})
                               if item.density is not None else None)
                    grid = self.expr(item.grid, {}) if item.grid is not None else None
                    data.append(ir.TypeDef(item.name, self.set_node(item.set, {}), self.table[item.name].dim,
                                           item.prior, item.span, density=density, grid=grid))
            elif isinstance(item, ast.PopulationDecl):
                data.append(ir.PopulationDef(item.name, self.expr(item.count, {}), item.source, item.span))
            elif isinstance(item, ast.DefDecl):
                self.defs[item.name] = item
                args = tuple(sp.Symbol(f"_{item.name}_{p}") for p in item.params)
                body = self.expr(item.body, dict(zip(item.params, args)))
                self.functions.append(ir.UtilityDef(item.name, args, body, item.span))
                if item.utility:
                    self.utilities.append(ir.UtilityDef(item.name, args, body, item.span))
            elif isinstance(item, ast.VarDecl):
                vars_.append(self.var(item, {}))
            elif isinstance(item, ast.ConstraintDecl):
                cons.append(self.constraint(item, {}))
            elif isinstance(item, ast.ObjectiveDecl):
                obj = self.objective(item, {})
            elif isinstance(item, ast.AuxDecl):
                data.append(self.aux(item))
            else:  # pragma: no cover - the checker rejects anything else
                raise AssertionError(type(item))
        return ir.Mechanism(self.module.span.file, self.module.source, tuple(data),
                            ir.Problem(tuple(vars_), tuple(cons), obj), tuple(self.utilities),
                            tuple(self.functions), tuple(reports))

    # ------------------------------------------------------------ pieces
    def domain(self, spec: ast.IndexSpec | None, scope: dict) -> tuple[ir.Domain | None, dict]:
        if spec is None:
            return None, scope
        inner = dict(scope)
        items = []
        for item in spec.items:
            node = self.set_node(item.set, inner)
            if item.binders:
                syms = tuple(sp.Symbol(b) for b in item.binders)
            else:
                syms = tuple(sp.Dummy(f"_{k}") for k in range(self._dim(item.set)))
            for b, s in zip(item.binders, syms):
                inner[b] = s
                if isinstance(node, IPower):
                    self.agents[b] = node.agents
            items.append((syms, node))
        cond = self.expr(spec.condition, inner) if spec.condition is not None else None
        return ir.Domain(tuple(items), cond), inner

    def _dim(self, s) -> int:
        if isinstance(s, ast.NamedSet):
            return self.table[s.name].dim
        if isinstance(s, ast.ProductSet):
            return sum(self._dim(f) for f in s.factors)
        if isinstance(s, ast.FilteredSet):
            return len(s.binders)
        return 1

    def set_node(self, s, scope) -> sp.Basic:
        if isinstance(s, ast.IntervalSet):
            return IInterval(self.expr(s.lo, scope), self.expr(s.hi, scope))
        if isinstance(s, ast.RangeSet):
            return IRange(self.expr(s.lo, scope), self.expr(s.hi, scope))
        if isinstance(s, ast.NamedSet):
            return INamed(sp.Symbol(s.name))
        if isinstance(s, ast.ListSet):
            return IList(*[self.expr(e, scope) for e in s.elements])
        if isinstance(s, ast.ProductSet):
            return IProduct(*[self.set_node(f, scope) for f in s.factors])
        if isinstance(s, ast.PowerSet):
            c = s.count
            sym = self.table.get(c.id) if isinstance(c, ast.Name) and c.id not in scope else None
            if sym is not None and sym.kind in ("set", "type"):
                agents = INamed(sp.Symbol(c.id))
            else:
                agents = IRange(sp.Integer(1), self.expr(c, scope))
            return IPower(self.set_node(s.base, scope), agents)
        if isinstance(s, ast.FilteredSet):
            syms = tuple(sp.Symbol(b) for b in s.binders)
            inner = dict(scope)
            inner.update(zip(s.binders, syms))
            return IFilter(sp.Tuple(*syms), self.set_node(s.base, scope), self.expr(s.condition, inner))
        raise AssertionError(type(s))

    def param(self, d: ast.ParamDecl) -> ir.ParamDef:
        dom, scope = self.domain(d.index, {})
        value = None
        if isinstance(d.value, ast.ArrayLit):
            value = self.array(d.value)
        elif d.value is not None:
            value = self.expr(d.value, scope)
        bounds = tuple((op, self.expr(e, {})) for op, e in d.bounds)
        return ir.ParamDef(d.name, dom, self.table[d.name].dim, value, d.domain, bounds, d.span)

    def array(self, a: ast.ArrayLit):
        return ir.ArrayValue(tuple(self.array(e) if isinstance(e, ast.ArrayLit) else self.expr(e, {})
                                   for e in a.elements), a.span)

    def var(self, d: ast.VarDecl, scope) -> ir.VarDef:
        dom, inner = self.domain(d.index, scope)
        lb = ub = None
        if d.domain in ("nonnegative", "binary"):
            lb = sp.Integer(0)
        if d.domain == "binary":
            ub = sp.Integer(1)
        for op, e in d.bounds:
            v = self.expr(e, inner)
            if op == ">=":
                lb = v if lb is None else sp.Max(lb, v)
            else:
                ub = v if ub is None else sp.Min(ub, v)
        init = self.expr(d.init, inner) if d.init is not None else None
        dim = len(dom.binders) if dom else 0
        return ir.VarDef(d.name, dom, dim, d.domain, lb, ub, init, d.span)

    def constraint(self, d: ast.ConstraintDecl, scope) -> ir.ConstraintDef:
        dom, inner = self.domain(d.index, scope)
        c = ir.ConstraintDef(d.name, ir.ConKind(d.kind), dom, self.body(d.body, inner), d.span,
                             check_only=d.check_only)
        role = classify(c)
        return dataclasses.replace(c, role=role) if role is not None else c

    def body(self, e, scope) -> ir.Body:
        if isinstance(e, ast.Compare):
            for op in e.ops:
                if op in ("<", ">", "!="):
                    self.fail(e, f"a constraint cannot use '{op}': the feasible set would not be closed, "
                                 "so an optimum may not exist",
                              help="use '<=' or '>=' (with a margin if strictness matters); "
                                   "strict comparisons are allowed in filters and premises")
            parts = tuple(ir.Rel(self.number_expr(a, scope, "a side of a constraint"), op,
                                 self.number_expr(b, scope, "a side of a constraint"))
                          for a, op, b in zip(e.operands, e.ops, e.operands[1:]))
            return parts[0] if len(parts) == 1 else ir.AllOf(parts)
        if isinstance(e, ast.Implies):
            return ir.Implication(self.expr(e.premise, scope), self.body(e.conclusion, scope))
        if isinstance(e, ast.BoolOp):
            parts = tuple(self.body(p, scope) for p in e.operands)
            return ir.AllOf(parts) if e.op == "and" else ir.AnyOf(parts)
        if isinstance(e, ast.Complements):
            return ir.Complementarity(self._nonneg(e.left, scope), self._nonneg(e.right, scope))
        raise AssertionError(type(e))

    def _nonneg(self, e, scope):
        if isinstance(e, ast.Compare):  # complements(a >= b, ...) means a - b >= 0
            (a, b), op = e.operands, e.ops[0]
            la, lb = self.expr(a, scope), self.expr(b, scope)
            return la - lb if op == ">=" else lb - la
        return self.expr(e, scope)

    def objective(self, d: ast.ObjectiveDecl, scope) -> ir.ObjectiveDef:
        return ir.ObjectiveDef(d.sense, d.name or "objective", self.expr(d.expr, scope), d.span)

    def aux(self, d: ast.AuxDecl) -> ir.AuxDef:
        dom, scope = self.domain(d.index, {})
        vars_, cons, obj, tie = [], [], None, None
        saved = dict(self.defs)
        for item in d.items:
            if isinstance(item, ast.VarDecl):
                vars_.append(self.var(item, scope))
            elif isinstance(item, ast.ConstraintDecl):
                cons.append(self.constraint(item, scope))
            elif isinstance(item, ast.ObjectiveDecl) and item.tiebreak:
                tie = self.objective(item, scope)
            elif isinstance(item, ast.ObjectiveDecl):
                obj = self.objective(item, scope)
            elif isinstance(item, ast.DefDecl):
                self.defs[item.name] = item
                self._def_scope[id(item)] = scope  # the aux's indices are visible in its defs
        self.defs = saved
        return ir.AuxDef(d.name, dom, len(dom.binders) if dom else 0,
                         ir.Problem(tuple(vars_), tuple(cons), obj), d.span, tie)

    # ------------------------------------------------------------ expressions
    def fail(self, node, message: str, help: str | None = None):
        raise MechSemanticError([Diagnostic(message, node.span, help=help)],
                                {self.module.span.file: self.module.source})

    def expr(self, e, scope) -> sp.Basic:
        r = getattr(self, "ex_" + type(e).__name__)(e, scope)
        if isinstance(e, (ast.BinOp, ast.Neg, ast.Call, ast.Num)):
            why = constant_problem(r)
            if why is not None:
                self.fail(e, f"this expression {why}", help=None if "large" in why else _arith_help(e))
        return r

    def number_expr(self, e, scope, what: str) -> sp.Basic:
        """``e`` lowered where a number is needed: a comparison or a condition there is an error."""
        r = self.expr(e, scope)
        if isinstance(r, _BOOLEAN):
            self.fail(e, f"a condition (true/false) is used as {what}",
                      help="comparisons and and/or/not belong in constraints, filters and premises")
        return r

    def ex_Num(self, e, scope):
        if not math.isfinite(e.value):
            self.fail(e, f"the number literal is beyond the range of a double (1.8e308)")
        return number(e.value)

    def ex_Name(self, e, scope):
        if e.id in scope:
            return scope[e.id]
        sym = self.table.get(e.id)
        if sym is not None and sym.kind == "label":
            return Label(sp.Symbol(e.id))
        if e.id in self.reports:
            return self._report(self.reports[e.id], ())
        return sp.Symbol(e.id)

    def _report(self, d: ast.ReportDecl, args: tuple):
        binders = [b for item in (d.index.items if d.index else ()) for b in item.binders]
        key = (id(d), args)
        hit = self._expansions.get(key)
        if hit is None:
            body = self.expr(d.expr, dict(zip(binders, args)))
            if d.index is not None:
                body = ReportAt(body, sp.Symbol(d.name), sp.Tuple(*args))
            hit = self._expansions[key] = (body, d)
        return hit[0]

    def ex_Indexed(self, e, scope):
        if e.base in self.agents and e.base in scope:  # a profile: v[i] or v[-i]
            a = e.args[0]
            agents = self.agents[e.base]
            if isinstance(a, ast.Neg):
                return Others(scope[e.base], self.expr(a.operand, scope), agents)
            return Component(scope[e.base], self.expr(a, scope), agents)
        args = [self.expr(a, scope) for a in e.args]
        if e.base in self.reports and e.base not in scope:
            return self._report(self.reports[e.base], tuple(args))
        base = scope.get(e.base)
        if base is None:
            base = sp.IndexedBase(e.base)
        return base[tuple(args)] if len(args) > 1 else base[args[0]]

    def ex_Attribute(self, e, scope):
        t = e.target
        base, args = (t.base, t.args) if isinstance(t, ast.Indexed) else (t.id, ())
        ref = (sp.Symbol(base), sp.Tuple(*[self.expr(a, scope) for a in args]), sp.Symbol(e.attr))
        if e.args:
            ref += (sp.Tuple(*[self.expr(a, scope) for a in e.args]),)
        return AuxRef(*ref)

    def ex_Call(self, e, scope):
        if e.func in PRIOR_FNS and e.func not in self.defs:
            return self._prior_call(e, scope)
        what = f"an argument of {e.func}()"
        args = [self.number_expr(a, scope, what) for a in e.args]
        if e.func in _FUNCS:
            return _FUNCS[e.func](args[0])
        if e.func == "mod":
            return sp.Mod(*args)
        if e.func in ("min", "max"):
            op = sp.Min if e.func == "min" else sp.Max
            try:
                return op(*args)
            except (ValueError, TypeError):  # SymPy cannot order the arguments (e.g. aux results): keep them all
                return op(*args, evaluate=False)
        d = self.defs[e.func]
        key = (id(d), tuple(args))  # memoised: a def's expansion depends only on the def and its arguments
        hit = self._expansions.get(key)
        if hit is None:
            inner = dict(self._def_scope.get(id(d), {}))
            inner.update(zip(d.params, args))
            hit = self._expansions[key] = (self.expr(d.body, inner), d)
        return hit[0]

    def _prior_call(self, e, scope):
        """cdf/pdf/phi/phibar(v[, x]) and iron(v, g[, x]) of a continuous type v."""
        t = sp.Symbol(e.args[0].id)
        rest = list(e.args[1:])
        g = arg = None
        if e.func == "iron":
            arg = sp.Symbol(f"_iron_{t.name}")
            inner = dict(scope)
            inner[t.name] = arg
            g = self.number_expr(rest.pop(0), inner, "the function ironed by iron()")
        x = self.number_expr(rest[0], scope, f"the point of {e.func}()") if rest else scope[t.name]
        if e.func == "iron":
            return Iron(t, g, arg, x)
        return PriorFn(sp.Symbol(e.func), t, x)

    def ex_Infimum(self, e, scope):
        x = sp.Symbol(e.binders[0])
        lo, hi = self.expr(e.set.lo, scope), self.expr(e.set.hi, scope)
        inner = dict(scope)
        inner[e.binders[0]] = x
        return Infimum(sp.Symbol(e.op), x, lo, hi, self.expr(e.cond, inner))

    def ex_BinOp(self, e, scope):
        what = f"an operand of '{e.op}'"
        a, b = self.number_expr(e.left, scope, what), self.number_expr(e.right, scope, what)
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            return a * b
        if e.op == "/":
            return a / b
        if a.is_Number and b.is_Number and abs(b) > 64 and abs(a) not in (0, 1):
            # exact powers of large numbers take SymPy unbounded time: decide in floating point
            try:
                v = math.pow(float(a), float(b))
            except OverflowError:
                self.fail(e, "this expression is too large for a double (beyond 1.8e308)")
            except ValueError:
                self.fail(e, "this expression is not a real number (a negative base with a non-integer exponent)")
            if not math.isfinite(v):
                self.fail(e, "this expression is too large for a double (beyond 1.8e308)")
            return sp.Float(v)
        return a ** b

    def ex_Neg(self, e, scope):
        return -self.number_expr(e.operand, scope, "an operand of '-'")

    def ex_Compare(self, e, scope):
        parts = [_REL[op](self.expr(a, scope), self.expr(b, scope), evaluate=False)
                 for a, op, b in zip(e.operands, e.ops, e.operands[1:])]
        return parts[0] if len(parts) == 1 else sp.And(*parts, evaluate=False)

    def ex_BoolOp(self, e, scope):
        parts = [self.expr(p, scope) for p in e.operands]
        return (sp.And if e.op == "and" else sp.Or)(*parts, evaluate=False)

    def ex_Not(self, e, scope):
        return sp.Not(self.expr(e.operand, scope), evaluate=False)

    def ex_Iterate(self, e, scope):
        dom, inner = self.domain(e.index, scope)
        body = self.expr(e.body, inner)
        return ITERATED[e.op](body, domain_node(dom), dom.cond if dom.cond is not None else sp.true)

    def ex_Conditional(self, e, scope):
        cond = self.expr(e.cond, scope)
        a, b = self.expr(e.then, scope), self.expr(e.orelse, scope)
        if cond is sp.true:
            return a
        if cond is sp.false:
            return b
        return IfThenElse(cond, a, b)

    def ex_Replace(self, e, scope):
        o = e.others
        return Replace(self.expr(e.value, scope), scope[o.base], self.expr(o.args[0].operand, scope),
                       self.agents[o.base])

    def ex_ExpectDist(self, e, scope):
        """``E[s ~ f[j, .]](body)`` = sum{s in S} f[j, s] * body, S the set of f's "." position."""
        d = self.param_decls[e.dist]
        slot = next(k for k, a in enumerate(e.args) if a is None)
        items = [(b, item.set) for item in d.index.items for b in (item.binders or ("_",) * self._dim(item.set))]
        if any(item.binders == () for item in d.index.items) or len(items) != len(e.args):
            self.fail(e, f"E[... ~ {e.dist}[...]]: the index set of '{e.dist}' must name one binder per index")
        sub = dict(scope)
        s = sp.Symbol(e.binder)
        for k, (b, _) in enumerate(items):  # the sets may depend on earlier binders of the param's index
            sub[b] = s if k == slot else self.expr(e.args[k], scope)
        node = self.set_node(items[slot][1], {b: sub[b] for b, _ in items[:slot]} | dict(scope))
        inner = dict(scope)
        inner[e.binder] = s
        args = [s if a is None else self.expr(a, scope) for a in e.args]
        weight = sp.IndexedBase(e.dist)[tuple(args)] if len(args) > 1 else sp.IndexedBase(e.dist)[args[0]]
        body = self.expr(e.body, inner)
        return ITERATED["sum"](weight * body, DomainNode(sp.Tuple(sp.Tuple(sp.Tuple(s), node))), sp.true)

    def ex_ExpectOthers(self, e, scope):
        subj = sp.Symbol(e.subject)
        agent = self.expr(e.agent, scope)
        inner = dict(scope)
        inner[e.subject] = subj
        cond = self.expr(e.condition, inner) if e.condition is not None else sp.true
        return OthersExpectation(self.expr(e.body, inner), subj, cond, agent)

    def ex_Expect(self, e, scope):
        sym = self.table[e.subject]
        inner = dict(scope)
        if sym.kind == "population":
            subj = sp.IndexedBase(e.subject)
            inner[e.subject] = subj
            label = subj.label
        else:
            subj = sp.Symbol(e.subject)
            inner[e.subject] = subj
            label = subj
        cond = self.expr(e.condition, inner) if e.condition is not None else sp.true
        return Expectation(self.expr(e.body, inner), label, cond)


def _arith_help(e) -> str | None:
    if isinstance(e, ast.BinOp) and e.op == "/":
        return "the divisor is 0"
    if isinstance(e, ast.Call) and e.func == "log":
        return "log needs a positive argument"
    if isinstance(e, ast.Call) and e.func == "sqrt":
        return "sqrt needs a nonnegative argument"
    if isinstance(e, ast.BinOp) and e.op == "^":
        return "a power of 0 with a negative exponent divides by zero; a negative base needs an integer exponent"
    return None


def domain_node(dom: ir.Domain) -> DomainNode:
    """Pack a :class:`~mechdsl.ir.nodes.Domain`'s items into a SymPy node."""
    return DomainNode(sp.Tuple(*[sp.Tuple(sp.Tuple(*bs), s) for bs, s in dom.items]))


def lower(module: ast.Module, table: SymbolTable) -> ir.Mechanism:
    """Lower a checked module to the mechanism IR."""
    return Lowerer(table, module).run()

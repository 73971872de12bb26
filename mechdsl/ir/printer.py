"""A stable, readable text form of an IR :class:`~.nodes.Problem` (for golden tests and debugging).

Dispatch is per node class, as in SymPy's printers: :meth:`ProblemPrinter.doprint`
calls ``_print_<Class>`` for the first class in the node's MRO that has one.
IR declarations (``VarDef``, ``ConstraintDef``, bodies, domains) are printed by
:class:`ProblemPrinter`; SymPy expressions by :class:`ExprPrinter`, a
``StrPrinter`` that also knows the language's own nodes (:mod:`.sym`: sets,
sums, expectations, results of auxiliary problems).

The output is deterministic: declarations in the problem's order, SymPy terms
in SymPy's canonical order, no source positions or object ids.

    >>> print(print_problem(problem))             # doctest: +SKIP
    vars:
      var q[k in 1..K]  real  >= 0
    constraints:
      ic IC[t in 1..K, r in 1..K : t != r]
          body:   -p[t] + q[t]*theta[t] >= -p[r] + q[r]*theta[t]
          origin: spec
    objective:
      maximize Profit: E[th](p[th] - q[th]**2/2)
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.str import StrPrinter

from . import nodes as ir
from .sym import AuxRef, DomainNode, Expectation, IEnum, IFilter, IList, INamed, IProduct, IRange, IterProd, IterSum

#: An explicit element list (IEnum, made by reductions) longer than this is printed abridged.
MAX_ELEMENTS = 24


class ExprPrinter(StrPrinter):
    """SymPy's ``StrPrinter`` plus the nodes of :mod:`mechdsl.ir.sym`; relations are infix (``t != r``)."""

    def _print_Relational(self, expr):
        return f"{self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)}"

    def _print_And(self, expr):
        return " and ".join(self.parenthesize(a, 0) if isinstance(a, sp.Or) else self._print(a)
                            for a in expr.args)

    def _print_Or(self, expr):
        return " or ".join(self._print(a) for a in expr.args)

    def _print_Not(self, expr):
        return f"not ({self._print(expr.args[0])})"

    # ---- sets
    def _print_IRange(self, e: IRange):
        return f"{self._print(e.lo)}..{self._print(e.hi)}"

    def _print_INamed(self, e: INamed):
        return e.name

    def _print_IList(self, e: IList):
        return "{" + ", ".join(self._print(a) for a in e.args) + "}"

    def _print_IPower(self, e):
        a = e.args[1]
        return f"{self._print(e.args[0])}^{self._print(a) if isinstance(a, INamed) else '(' + self._print(a) + ')'}"

    def _print_IProduct(self, e: IProduct):
        return " * ".join(self._print(a) for a in e.args)

    def _print_IEnum(self, e: IEnum):
        elems = [self._elem(a) for a in e.args]
        if len(elems) > MAX_ELEMENTS:
            head = ", ".join(elems[:MAX_ELEMENTS // 2])
            tail = ", ".join(elems[-2:])
            return "{" + f"{head}, ..., {tail}" + "}" + f" ({len(elems)} elements)"
        return "{" + ", ".join(elems) + "}"

    def _elem(self, t):
        if isinstance(t, sp.Tuple):
            if len(t) == 1:
                return self._print(t[0])
            return "(" + ", ".join(self._print(x) for x in t) + ")"
        return self._print(t)

    def _print_IFilter(self, e: IFilter):
        binders, base, cond = e.args
        bs = self._binders(tuple(binders))
        return "{" + f"{bs} in {self._print(base)} : {self._print(cond)}" + "}"

    def _binders(self, bs) -> str:
        return self._print(bs[0]) if len(bs) == 1 else "(" + ", ".join(self._print(b) for b in bs) + ")"

    def _print_DomainNode(self, e: DomainNode):
        return ", ".join(f"{self._binders(tuple(pair[0]))} in {self._print(pair[1])}" for pair in e.args[0])

    # ---- expressions
    def _iter(self, word, e):
        body, dnode, cond = e.args
        dom = self._print(dnode)
        if cond is not sp.true and cond is not None:
            dom += f" : {self._print(cond)}"
        return f"{word}{{{dom}}}({self._print(body)})"

    def _print_IterSum(self, e: IterSum):
        return self._iter("sum", e)

    def _print_IterProd(self, e: IterProd):
        return self._iter("prod", e)

    def _print_IterMax(self, e):
        return self._iter("max", e)

    def _print_IterMin(self, e):
        return self._iter("min", e)

    def _print_IterArgMax(self, e):
        return self._iter("argmax", e)

    def _print_IterArgMin(self, e):
        return self._iter("argmin", e)

    def _print_IterAll(self, e):
        return self._iter("forall", e)

    def _print_IterAny(self, e):
        return self._iter("exists", e)

    def _print_IfThenElse(self, e):
        c, a, b = (self._print(x) for x in e.args)
        return f"(if {c} then {a} else {b})"

    def _print_Pow(self, expr, rational=False):
        return super()._print_Pow(expr, rational).replace("**", "^")

    def _print_Expectation(self, e: Expectation):
        body, label, cond = e.args
        subject = self._print(label)
        if cond is not sp.true and cond is not None:
            subject += f" | {self._print(cond)}"
        return f"E[{subject}]({self._print(body)})"

    def _print_AuxRef(self, e: AuxRef):
        name, idx, attr = e.args
        ix = f"[{', '.join(self._print(a) for a in idx)}]" if len(idx) else ""
        return f"{name}{ix}.{attr}"


class ProblemPrinter:
    """Prints IR declarations; ``_print_<Class>`` per node class (SymPy printer style)."""

    def __init__(self, inst=None, eliminated: dict | None = None):
        self.inst = inst
        self.eliminated = eliminated or {}
        self.expr_printer = ExprPrinter()

    def doprint(self, obj) -> str:
        for cls in type(obj).__mro__:
            fn = getattr(self, f"_print_{cls.__name__}", None)
            if fn is not None:
                return fn(obj)
        return repr(obj)

    # ---- expressions and domains
    def _print_Basic(self, e: sp.Basic) -> str:
        return self.expr_printer.doprint(e)

    def _print_NoneType(self, _) -> str:
        return "-"

    def _print_Domain(self, d: ir.Domain) -> str:
        parts = []
        for bs, node in d.items:
            b = self.doprint(bs[0]) if len(bs) == 1 else "(" + ", ".join(self.doprint(x) for x in bs) + ")"
            parts.append(f"{b} in {self.doprint(node)}")
        text = ", ".join(parts)
        if d.cond is not None and d.cond is not sp.true:
            text += f" : {self.doprint(d.cond)}"
        return text

    def _index(self, d: ir.Domain | None) -> str:
        return "" if d is None else f"[{self.doprint(d)}]"

    # ---- bodies
    def _print_Rel(self, b: ir.Rel) -> str:
        return f"{self.doprint(b.lhs)} {b.op} {self.doprint(b.rhs)}"

    def _print_AllOf(self, b: ir.AllOf) -> str:
        return " and ".join(f"({self.doprint(p)})" for p in b.parts)

    def _print_AnyOf(self, b: ir.AnyOf) -> str:
        return " or ".join(f"({self.doprint(p)})" for p in b.parts)

    def _print_Implication(self, b: ir.Implication) -> str:
        return f"{self.doprint(b.premise)} -> ({self.doprint(b.conclusion)})"

    def _print_Complementarity(self, b: ir.Complementarity) -> str:
        return f"complements({self.doprint(b.a)}, {self.doprint(b.b)})"

    # ---- declarations
    def _print_VarDef(self, v: ir.VarDef) -> str:
        text = f"var {v.name}{self._index(v.domain)}  {v.kind}"
        if v.lb is not None:
            text += f"  >= {self.doprint(v.lb)}"
        if v.ub is not None:
            text += f"  <= {self.doprint(v.ub)}"
        if v.init is not None:
            text += f"  init {self.doprint(v.init)}"
        if self.inst is not None:
            text += f"  ({self._count(v.domain)} columns)"
        return text

    def _print_ConstraintDef(self, c: ir.ConstraintDef) -> str:
        head = f"{'check ' if c.check_only else ''}{c.kind.value} {c.name}{self._index(c.domain)}"
        lines = [head, f"    body:   {self.doprint(c.body)}", f"    origin: {c.origin or 'spec'}"]
        if self.inst is not None:
            lines.append(f"    rows:   {self._count(c.domain)}")
        return "\n".join(lines)

    def _print_ObjectiveDef(self, o: ir.ObjectiveDef) -> str:
        return f"{o.sense} {o.name}: {self.doprint(o.expr)}"

    def _print_Problem(self, p: ir.Problem) -> str:
        lines = ["vars:"]
        lines += [f"  {self.doprint(v)}" for v in p.vars] or ["  (none)"]
        if self.eliminated:
            lines.append("eliminated (defined by the remaining variables):")
            for name in sorted(self.eliminated):
                el = self.eliminated[name]
                for k, line in enumerate(str(getattr(el, "formula", el)).splitlines()):
                    lines.append(f"  {name + ':' if k == 0 else ' ' * (len(name) + 1)} {line.strip()}")
        lines.append("constraints:")
        for c in p.constraints:
            lines += [f"  {line}" for line in self.doprint(c).splitlines()]
        if not p.constraints:
            lines.append("  (none)")
        lines.append("objective:")
        lines.append(f"  {self.doprint(p.objective)}" if p.objective is not None else "  (none)")
        return "\n".join(lines) + "\n"

    def _count(self, domain) -> int:
        return len(self.inst.ev.domain_keys(domain))


def print_problem(problem: ir.Problem, inst=None, eliminated: dict | None = None) -> str:
    """The text form of ``problem``; with a bound ``inst``, also the number of rows and columns of each family.

    ``eliminated`` (variable name -> an object with a ``formula``, e.g. a reduction's
    :class:`~mechdsl.passes.facts.Elimination`) lists variables that the problem's
    objective still names but that are defined by the others.
    """
    return ProblemPrinter(inst, eliminated).doprint(problem)

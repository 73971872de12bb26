"""SymPy node classes for the parts of the language SymPy has no word for.

Arithmetic, powers and the elementary functions are ordinary SymPy objects;
indexed symbols use :class:`sympy.IndexedBase`.  The classes here carry
iteration over finite sets, expectations and results of auxiliary problems,
so that a whole constraint family is one SymPy template that passes (issue 3)
can reason about and the compiler instantiates.
"""
from __future__ import annotations

import sympy as sp


class SetNode(sp.Basic):
    """A finite index set (possibly depending on params and outer indices)."""


class IRange(SetNode):
    """``lo..hi``: the integers from lo to hi inclusive."""

    @property
    def lo(self):
        return self.args[0]

    @property
    def hi(self):
        return self.args[1]


class INamed(SetNode):
    """A reference to a declared set (or a type's set) by name."""

    @property
    def name(self) -> str:
        return self.args[0].name


class IList(SetNode):
    """An explicit list ``{a, b, ...}``."""


class IProduct(SetNode):
    """A Cartesian product of sets."""


class IPower(SetNode):
    """``V^N``: the profiles, one element of V per element of the agent set N (in N's order); args:
    (V, N).  ``V^k`` is V^(1..k).  Each element is one index value: a tuple of types."""

    @property
    def base(self):
        return self.args[0]

    @property
    def agents(self):
        return self.args[1]


class IInterval(SetNode):
    """``[lo, hi]``: a closed real interval (the support of a continuous type); args: (lo, hi)."""

    def _sympystr(self, p):
        return f"[{p._print(self.args[0])}, {p._print(self.args[1])}]"


class IEnum(SetNode):
    """An explicit, already evaluated list of element tuples (made by reductions)."""


class IFilter(SetNode):
    """``{(a, b) in S : cond}``; args: (Tuple(binders), base, cond)."""


class IterSum(sp.Expr):
    """``sum{binders in domain : cond} body``; args: (body, DomainNode, cond)."""

    @property
    def body(self):
        return self.args[0]


class IterProd(sp.Expr):
    """``prod{...} body``; same args as :class:`IterSum`."""


class IterMax(sp.Expr):
    """``max{...} body``; same args as :class:`IterSum`.  Over variables, an exact epigraph where its
    position allows it (as for n-ary max)."""


class IterMin(sp.Expr):
    """``min{...} body``; same args as :class:`IterSum`."""


class IterArgMax(sp.Expr):
    """``argmax{i in S: cond} body``: the first element of S (in set order) where body is largest.

    The body is data.  A later element replaces the best so far only if its value is larger by more
    than ``ARG_TOL * max(1, |best|)``, so ties (and rounding noise) go to the earlier element."""


class IterArgMin(sp.Expr):
    """``argmin{...} body``: as :class:`IterArgMax`, for the smallest value."""


class IterAll(sp.logic.boolalg.Boolean):
    """``forall{...} cond``: true when cond holds for every element (true over an empty set)."""


class IterAny(sp.logic.boolalg.Boolean):
    """``exists{...} cond``: true when cond holds for some element (false over an empty set)."""


#: Relative tolerance of argmax / argmin ties.
ARG_TOL = 1e-9


class IfThenElse(sp.Expr):
    """``if cond then a else b``; args: (cond, a, b).  The condition is data (params and indices)."""


class Expectation(sp.Expr):
    """``E[subject | cond](body)``; args: (body, Symbol(subject), cond)."""


class OthersExpectation(sp.Expr):
    """``E[v[-i] | cond](body)``: over the other agents' types, agent i's fixed; args: (body, Symbol(v),
    cond, agent).  Inside, v is a profile whose i-th entry is a hole: only ``v[-i]`` and ``(r, v[-i])``
    (which fills it) may index."""

    def _sympystr(self, p):
        body, label, cond, agent = self.args
        subject = f"{p._print(label)}[-{p._print(agent)}]"
        if cond is not sp.true:
            subject += f" | {p._print(cond)}"
        return f"E[{subject}]({p._print(body)})"


class Component(sp.Expr):
    """``v[i]``: agent i's entry of the profile v; args: (profile, agent, agent set)."""

    def _sympystr(self, p):
        return f"{p._print(self.args[0])}[{p._print(self.args[1])}]"


class Others(sp.Expr):
    """``v[-i]``: the profile v without agent i's entry (an element of V^(n-1)); args as :class:`Component`."""

    def _sympystr(self, p):
        return f"{p._print(self.args[0])}[-{p._print(self.args[1])}]"


class Replace(sp.Expr):
    """``(r, v[-i])``: the profile v with agent i's entry replaced by r; args: (r, profile, agent, agent set)."""

    def _sympystr(self, p):
        r, v, i = (p._print(a) for a in self.args[:3])
        return f"({r}, {v}[-{i}])"


#: An entry of a profile that is not fixed (agent i's own, inside E[v[-i]]).
HOLE = -(2 ** 62)


class Label(sp.Expr):
    """A label (an element of ``set X = {build, skip};``); args: (Symbol(name),).  Its value is the name."""

    def _sympystr(self, p):
        return self.args[0].name


class ReportAt(sp.Expr):
    """``R[args]`` of an indexed report, expanded in place; args: (body, Symbol(R), Tuple(args)).  Evaluating
    it checks that args are in R's index set."""


class AuxRef(sp.Expr):
    """``aux[idx].attr`` or ``aux[idx].x[k]``; args: (Symbol(aux), Tuple(idx...), Symbol(attr)[, Tuple(k...)])."""


class PriorFn(sp.Expr):
    """``cdf(v, x)``, ``pdf``, ``phi`` (the virtual value x - (1 - F(x)) / f(x)) or ``phibar`` (its ironed
    version) of the continuous type v at the point x; args: (Symbol(kind), Symbol(v), x)."""

    def _sympystr(self, p):
        kind, t, x = self.args
        return f"{kind.name}({t.name}, {p._print(x)})"


class Iron(sp.Expr):
    """``iron(v, g, x)``: the function g of v ironed under v's prior (the slope of the convex hull of
    H(q) = integral of g(F^-1) from 0 to q), at x; args: (Symbol(v), g, the symbol g uses for v, x)."""

    def _sympystr(self, p):
        t, g, arg, x = self.args
        return f"iron({t.name}, {p._print(g.subs(arg, t))}, {p._print(x)})"


class Infimum(sp.Expr):
    """``inf{x in [lo, hi]: cond}`` or ``sup``; args: (Symbol(op), x, lo, hi, cond)."""

    def _sympystr(self, p):
        op, x, lo, hi, cond = self.args
        return f"{op.name}{{{p._print(x)} in [{p._print(lo)}, {p._print(hi)}]: {p._print(cond)}}}"


#: Iterated forms by the op of the spec: the SymPy class of each.
ITERATED = {"sum": IterSum, "prod": IterProd, "max": IterMax, "min": IterMin, "argmax": IterArgMax,
            "argmin": IterArgMin, "forall": IterAll, "exists": IterAny}


class DomainNode(sp.Basic):
    """The index domain of an iteration: args[0] is a Tuple of (Tuple(binders), SetNode) pairs,
    iterated left to right (later sets may depend on earlier binders)."""

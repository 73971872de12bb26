"""The abstract syntax tree of a .mech file.

Every node is a frozen dataclass with a :class:`~mechdsl.span.Span`.  The AST
is a faithful, typed picture of the source: no name resolution, no data, no
SymPy.  :mod:`mechdsl.syntax.build` produces it from the Lark parse tree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..span import Span


@dataclass(frozen=True, slots=True)
class Node:
    span: Span


# ----------------------------------------------------------------- expressions
@dataclass(frozen=True, slots=True)
class Num(Node):
    value: float


@dataclass(frozen=True, slots=True)
class Name(Node):
    id: str


@dataclass(frozen=True, slots=True)
class Indexed(Node):
    base: str
    base_span: Span
    args: tuple["Expr", ...]


@dataclass(frozen=True, slots=True)
class Attribute(Node):
    """``alone[i].ma``: a result of an auxiliary problem."""

    target: "Expr"
    attr: str
    args: tuple["Expr", ...] = ()  #: ``A[r].x[k]``: the indices of an indexed aux variable


@dataclass(frozen=True, slots=True)
class Call(Node):
    func: str
    args: tuple["Expr", ...]


@dataclass(frozen=True, slots=True)
class BinOp(Node):
    op: str  # + - * / ^
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True, slots=True)
class Neg(Node):
    operand: "Expr"


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """A comparison chain ``a <= b <= c``: ``ops[k]`` sits between ``operands[k]`` and ``operands[k+1]``."""

    operands: tuple["Expr", ...]
    ops: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BoolOp(Node):
    op: str  # and / or
    operands: tuple["Expr", ...]


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: "Expr"


@dataclass(frozen=True, slots=True)
class Implies(Node):
    premise: "Expr"
    conclusion: "Expr"


@dataclass(frozen=True, slots=True)
class Complements(Node):
    """``complements(a, b)``: ``a >= 0``, ``b >= 0`` and ``a * b == 0``."""

    left: "Expr"
    right: "Expr"


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    """``if cond then a else b`` (the condition is data: params and indices)."""

    cond: "Expr"
    then: "Expr"
    orelse: "Expr"


@dataclass(frozen=True, slots=True)
class Iterate(Node):
    """``sum{i in S: cond} body``, ``prod``, ``max``, ``min``, ``argmax``, ``argmin`` (numbers) or
    ``forall``, ``exists`` (conditions)."""

    op: str
    index: "IndexSpec"
    body: "Expr"


@dataclass(frozen=True, slots=True)
class Expect(Node):
    """``E[subject | cond](body)``: expectation over a declared type or population."""

    subject: str
    subject_span: Span
    condition: "Expr | None"
    body: "Expr"


@dataclass(frozen=True, slots=True)
class ExpectOthers(Node):
    """``E[v[-i] | cond](body)``: the interim expectation over the other agents' types, agent i fixed."""

    subject: str
    subject_span: Span
    agent: "Expr"
    condition: "Expr | None"
    body: "Expr"


@dataclass(frozen=True, slots=True)
class ExpectDist(Node):
    """``E[s ~ f[j, .]](body)``: s runs over the set of f's "." position, weighted by f[j, s]."""

    binder: str
    binder_span: Span
    dist: str
    dist_span: Span
    args: tuple  # expressions, with None at the one "." position
    body: "Expr"


@dataclass(frozen=True, slots=True)
class Replace(Node):
    """``(r, v[-i])``: the profile v with agent i's type replaced by r (an index)."""

    value: "Expr"
    others: "Indexed"


@dataclass(frozen=True, slots=True)
class ArrayLit(Node):
    elements: tuple["Expr | ArrayLit", ...]


Expr = Union[Num, Name, Indexed, Attribute, Call, BinOp, Neg, Compare, BoolOp, Not,
             Implies, Complements, Conditional, Iterate, Expect, ExpectOthers, ExpectDist, Replace]


# ------------------------------------------------------------------------ sets
@dataclass(frozen=True, slots=True)
class RangeSet(Node):
    lo: Expr
    hi: Expr


@dataclass(frozen=True, slots=True)
class IntervalSet(Node):
    """``[lo, hi]``: a closed real interval (a continuous type's support, the range of inf/sup)."""

    lo: Expr
    hi: Expr


@dataclass(frozen=True, slots=True)
class Infimum(Node):
    """``inf{v in [a, b]: cond}`` (or ``sup``): the infimum of the points of the interval where cond holds."""

    op: str
    binders: tuple
    set: SetExpr
    cond: "Expr"


@dataclass(frozen=True, slots=True)
class NamedSet(Node):
    name: str


@dataclass(frozen=True, slots=True)
class ListSet(Node):
    elements: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class ProductSet(Node):
    factors: tuple["SetExpr", ...]


@dataclass(frozen=True, slots=True)
class FilteredSet(Node):
    binders: tuple[str, ...]
    base: "SetExpr"
    condition: Expr


@dataclass(frozen=True, slots=True)
class PowerSet(Node):
    """``V^N`` (one element of V per element of the set N: the profiles) or ``V^k`` (k-tuples)."""

    base: "SetExpr"
    count: Expr  # a Name (a set or a param) or a number expression


SetExpr = Union[RangeSet, NamedSet, ListSet, ProductSet, FilteredSet, PowerSet]


@dataclass(frozen=True, slots=True)
class IndexItem(Node):
    """``i in S``, ``(a, b) in S*T`` or a bare ``S`` (binders empty)."""

    binders: tuple[str, ...]
    set: SetExpr


@dataclass(frozen=True, slots=True)
class IndexSpec(Node):
    items: tuple[IndexItem, ...]
    condition: Expr | None


# ---------------------------------------------------------------- declarations
@dataclass(frozen=True, slots=True)
class ParamDecl(Node):
    name: str
    index: IndexSpec | None
    domain: str | None
    bounds: tuple[tuple[str, Expr], ...]
    value: Expr | ArrayLit | None


@dataclass(frozen=True, slots=True)
class SetDecl(Node):
    name: str
    value: SetExpr


@dataclass(frozen=True, slots=True)
class TypeDecl(Node):
    """``type theta in S ~ prior``; prior is ``None`` for uniform, else a param name.

    With ``agents`` (``type v[i in N] in V ~ f``) each agent has a type in V, independently, and v is
    the profile (an element of V^N)."""

    name: str
    set: SetExpr
    prior: str | None
    prior_span: Span
    agents: "IndexSpec | None" = None
    density: "Expr | None" = None  #: ``~ density(expr)``: the density of a continuous type, an expression in it
    grid: "Expr | None" = None  #: ``grid N``: a continuous type discretised on N equal cells


@dataclass(frozen=True, slots=True)
class PopulationDecl(Node):
    """``population n ~ multinomial(N, p)``; ``source`` names a type or a param."""

    name: str
    count: Expr
    source: str
    source_span: Span


@dataclass(frozen=True, slots=True)
class VarDecl(Node):
    name: str
    index: IndexSpec | None
    domain: str
    bounds: tuple[tuple[str, Expr], ...]
    init: Expr | None


@dataclass(frozen=True, slots=True)
class DefDecl(Node):
    name: str
    params: tuple[str, ...]
    body: Expr
    utility: bool = False


@dataclass(frozen=True, slots=True)
class ConstraintDecl(Node):
    kind: str  # ic ir budget feasibility constraint
    name: str
    index: IndexSpec | None
    body: Expr
    check_only: bool = False  # "check ic ...": verified, not imposed


@dataclass(frozen=True, slots=True)
class ObjectiveDecl(Node):
    sense: str
    name: str | None
    expr: Expr
    tiebreak: bool = False  # ``tiebreak minimize ...;`` in an aux: a secondary objective


@dataclass(frozen=True, slots=True)
class ReportDecl(Node):
    """``report NAME[idx] = expr;``: a derived output, evaluated after the solve."""

    name: str
    index: IndexSpec | None
    expr: Expr
    export: bool = False  #: ``report NAME;``: the param NAME itself, over its index set


@dataclass(frozen=True, slots=True)
class AuxDecl(Node):
    name: str
    index: IndexSpec | None
    items: tuple["Decl", ...]


Decl = Union[ParamDecl, SetDecl, TypeDecl, PopulationDecl, VarDecl, DefDecl,
             ConstraintDecl, ObjectiveDecl, AuxDecl, ReportDecl]


@dataclass(frozen=True, slots=True)
class Module(Node):
    items: tuple[Decl, ...]
    source: str = field(repr=False, default="")

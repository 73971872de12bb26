"""The mechanism IR: typed declarations with SymPy bodies.

Stage: ``ast.Module + SymbolTable -> Mechanism`` (see :mod:`.lower`).  The IR is
data-free: set bounds, param values and bounds are SymPy expressions over
params, evaluated when the mechanism is bound to data (:mod:`mechdsl.instance`).
Every declaration keeps its source :class:`~mechdsl.span.Span`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Union

import sympy as sp

from ..span import Span


class ConKind(enum.Enum):
    """The role of a constraint family in the mechanism."""

    IC = "ic"
    """Incentive compatibility: no type gains by misreporting."""
    IR = "ir"
    """Individual rationality: participation is worthwhile."""
    BUDGET = "budget"
    """Budget or resource limits of the designer."""
    FEASIBILITY = "feasibility"
    """Physical feasibility of the outcome."""
    PLAIN = "constraint"
    """Any other constraint."""
    MONOTONICITY = "monotonicity"
    """Monotone allocation, added by a reduction (e.g. local IC under single crossing)."""


@dataclass(frozen=True)
class Domain:
    """An index domain: ``items`` are (binders, set) pairs iterated left to right, then ``cond`` filters."""

    items: tuple[tuple[tuple[sp.Symbol, ...], sp.Basic], ...]
    cond: sp.Basic | None = None

    @property
    def binders(self) -> tuple[sp.Symbol, ...]:
        return tuple(b for bs, _ in self.items for b in bs)


# ------------------------------------------------------------ constraint bodies
@dataclass(frozen=True)
class Rel:
    """``lhs op rhs`` with op in ``<=``, ``>=``, ``==``."""

    lhs: sp.Expr
    op: str
    rhs: sp.Expr


@dataclass(frozen=True)
class AllOf:
    """A conjunction (from ``and`` or a chain ``a <= b <= c``)."""

    parts: tuple["Body", ...]


@dataclass(frozen=True)
class AnyOf:
    """A disjunction ``a or b``: at least one part holds."""

    parts: tuple["Body", ...]


@dataclass(frozen=True)
class Implication:
    """``premise -> conclusion``; the premise may involve variables."""

    premise: sp.Basic
    conclusion: "Body"


@dataclass(frozen=True)
class Complementarity:
    """``0 <= a``, ``0 <= b``, ``a * b == 0``."""

    a: sp.Expr
    b: sp.Expr


Body = Union[Rel, AllOf, AnyOf, Implication, Complementarity]


# ------------------------------------------------------------------ declarations
@dataclass(frozen=True)
class SetDef:
    name: str
    node: sp.Basic
    dim: int
    span: Span


@dataclass(frozen=True)
class ParamDef:
    name: str
    domain: Domain | None
    dim: int
    value: object  # sp.Expr, nested tuple of sp.Expr (array literal), or None
    numeric: str | None  # integer / binary / nonnegative / real / None
    bounds: tuple[tuple[str, sp.Expr], ...]
    span: Span


@dataclass(frozen=True)
class TypeDef:
    name: str
    node: sp.Basic
    dim: int
    prior: str | None  # None = uniform
    span: Span
    agents: sp.Basic | None = None  # a type per agent: the agent set N (the type's set is then V^N)
    prior_kind: str = "common"      # a type per agent: "common" f[k], "per agent" f[i, k], "joint" f[w in V^N]
    density: sp.Expr | None = None  # a continuous type (node an IInterval): its density in Symbol(name); None: uniform
    grid: sp.Expr | None = None     # a continuous type discretised on this many equal cells

    @property
    def continuous(self) -> bool:
        """A continuous type used by quadrature (not discretised on a grid)."""
        return type(self.node).__name__ == "IInterval" and self.grid is None


@dataclass(frozen=True)
class PopulationDef:
    name: str
    count: sp.Expr
    source: str  # a type or a param
    span: Span


@dataclass(frozen=True)
class VarDef:
    name: str
    domain: Domain | None
    dim: int
    kind: str  # real / nonnegative / binary / integer
    lb: sp.Expr | None
    ub: sp.Expr | None
    init: sp.Expr | None
    span: Span


@dataclass(frozen=True)
class ConstraintDef:
    name: str
    kind: ConKind
    domain: Domain | None
    body: Body
    span: Span
    origin: str | None = None  #: None for spec constraints; "pass: rule" for derived ones
    check_only: bool = False   #: verified against the solution but not imposed
    role: Any = None           #: IC / IR: its agent, true type, report and flavour (:mod:`.roles`)


@dataclass(frozen=True)
class ObjectiveDef:
    sense: str  # maximize / minimize
    name: str
    expr: sp.Expr
    span: Span


@dataclass(frozen=True)
class UtilityDef:
    """``utility u(true..., report...) = body``: the arguments are symbols in ``body``."""

    name: str
    args: tuple[sp.Symbol, ...]
    body: sp.Expr
    span: Span


@dataclass(frozen=True)
class Problem:
    """An optimisation problem: variables, constraints and one objective."""

    vars: tuple[VarDef, ...]
    constraints: tuple[ConstraintDef, ...]
    objective: ObjectiveDef | None

    def var(self, name: str) -> VarDef | None:
        return next((v for v in self.vars if v.name == name), None)


@dataclass(frozen=True)
class AuxDef:
    """An indexed family of auxiliary problems; their results act as params."""

    name: str
    domain: Domain | None
    dim: int
    problem: Problem
    span: Span
    tiebreak: "ObjectiveDef | None" = None  #: a secondary objective over the optimal solutions


@dataclass(frozen=True)
class ReportDef:
    """``report NAME[idx] = expr;``: a derived output evaluated on the solution (after the solve)."""

    name: str
    domain: Domain | None
    dim: int
    expr: sp.Basic
    span: Span


Decl = Union[SetDef, ParamDef, TypeDef, PopulationDef, AuxDef]


@dataclass(frozen=True)
class Mechanism:
    """A lowered spec.  ``data_decls`` are in declaration order (binding order)."""

    filename: str
    source: str
    data_decls: tuple[Decl, ...]
    problem: Problem
    utilities: tuple[UtilityDef, ...] = ()
    functions: tuple[UtilityDef, ...] = ()  #: every top-level def as a template (args are symbols in body)
    reports: tuple[ReportDef, ...] = ()  #: derived outputs, in declaration order

    def decl(self, name: str):
        return next((d for d in self.data_decls if d.name == name), None)

    @property
    def params(self) -> dict[str, ParamDef]:
        return {d.name: d for d in self.data_decls if isinstance(d, ParamDef)}

    @property
    def types(self) -> tuple[TypeDef, ...]:
        """The finite types (a menu row each); a continuous type (``[a, b] ~ ...`` without a grid) is not one."""
        return tuple(d for d in self.data_decls if isinstance(d, TypeDef) and not d.continuous)

    @property
    def auxes(self) -> dict[str, AuxDef]:
        return {d.name: d for d in self.data_decls if isinstance(d, AuxDef)}


@dataclass(frozen=True)
class ArrayValue:
    """An array literal: nested tuples of SymPy numbers/expressions."""

    elements: tuple
    span: Span

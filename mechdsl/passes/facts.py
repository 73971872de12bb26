"""Typed facts that passes establish and later passes rely on.

A :class:`Facts` value is an immutable collection; ``apply`` returns the facts
it was given plus its own (``facts.add(...)``), never edits them.  Each fact
class has a ``key`` (usually a constraint family or variable name) and
``facts.get(Class, key)`` returns the latest fact of that class and key.

* :class:`~.structure.ICStructure`: an IC family whose single crossing SymPy proved;
* :class:`AdjacentIC`: ``local_ic`` replaced that IC family by its adjacent rows;
* :class:`MonotoneFamily`: ``local_ic`` added the monotone-allocation rows ``MONO_q``;
* :class:`ExtremeIR`: ``drop_implied`` kept only the extreme type's IR row;
* :class:`Elimination`: ``eliminate_payments`` replaced a transfer by the payment rule;
* :class:`Implied`: a rule of the dominance graph (which removed rows follow from which);
* :class:`DerivedFamily`: a family of ids a pass introduced (``MONO_q``, ``PAY_t``), for the graph;
* :class:`Applied`: the report of an applied pass (what ``--explain`` prints).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import sympy as sp

from ..analysis.dominance import Family, Rule
from ..ir import nodes as ir
from .structure import ICStructure


@dataclass(frozen=True)
class Facts:
    """An immutable collection of typed facts."""

    items: tuple = ()

    def add(self, *new) -> "Facts":
        return Facts(self.items + tuple(new))

    def all(self, cls) -> tuple:
        return tuple(f for f in self.items if isinstance(f, cls))

    def get(self, cls, key, default=None):
        for f in reversed(self.items):
            if isinstance(f, cls) and f.key == key:
                return f
        return default

    def __iter__(self) -> Iterator:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class AdjacentIC:
    """IC family ``family`` now holds only its adjacent rows, both ways (``constraint`` in the problem)."""

    family: str
    structure: ICStructure
    constraint: ir.ConstraintDef
    pairs: tuple[tuple, ...]

    @property
    def key(self) -> str:
        return self.family


@dataclass(frozen=True)
class MonotoneFamily:
    """``name[a,b]`` (``constraint`` in the problem) says ``var`` is monotone from a to b, adjacent in the order.

    Implied by the adjacent IC rows both ways (add IC[a->b] and IC[b->a]; single crossing), so adding it is
    exact; it is what lets ``eliminate_payments`` drop the upward rows.
    """

    name: str
    ic_family: str
    var: str
    direction: int            #: +1: non-decreasing along ``order``; -1: non-increasing
    order: tuple
    constraint: ir.ConstraintDef

    @property
    def key(self) -> str:
        return self.ic_family

    def row_id(self, a, b) -> str:
        return f"{self.name}[{a},{b}]"


@dataclass(frozen=True)
class ExtremeIR:
    """IR family ``family`` now holds only the row of the ``extreme`` type (``constraint`` in the problem)."""

    family: str
    binder: sp.Symbol
    extreme: Any
    ic_family: str
    structure: ICStructure
    rhs: sp.Expr
    proof: str
    constraint: ir.ConstraintDef | None = None  #: None while only matched (before drop_implied applies)

    @property
    def key(self) -> str:
        return self.family


@dataclass(frozen=True)
class Elimination:
    """The transfer ``var`` is defined by the payment rule (and no longer a variable).

    ``y[e] = (R - rest(e, e)) / kappa``; ``y[k] = y[parent[k]] + (rest(k, parent[k]) - rest(k, k)) / kappa``.
    """

    var: str
    order: tuple
    extreme: Any
    parent: dict          # k -> neighbour toward the extreme
    children: dict        # k -> neighbours away from the extreme
    rest: sp.Expr         # rest(t, r) template: u(t, r) - kappa * y[r]
    t: sp.Symbol
    r: sp.Symbol
    kappa: float
    R: sp.Expr
    formula: str
    ic_family: str = ""
    ir_family: str = ""

    @property
    def key(self) -> str:
        return self.var

    @property
    def definition(self) -> str:
        """The family name of the definitional rows ``PAY_y[k]`` (premises in the dominance graph)."""
        return f"PAY_{self.var}"

    def definition_ids(self):
        return [f"{self.definition}[{k}]" for k in self.order]


@dataclass(frozen=True)
class Implied:
    """A rule of the dominance graph recorded by a pass; ``cites`` are the families its premises use."""

    rule: Rule
    cites: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.rule.name


@dataclass(frozen=True)
class DerivedFamily:
    """Constraint ids introduced by a pass (nodes of the dominance graph)."""

    family: Family

    @property
    def key(self) -> str:
        return self.family.name


@dataclass(frozen=True)
class Applied:
    """The report of one applied pass (``--explain``)."""

    pass_name: str
    summary: str
    removed: int = 0
    added: int = 0
    details: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.pass_name


@dataclass(frozen=True)
class Accepted:
    """The reasons a pass gave when it accepted (kept for ``--explain``)."""

    pass_name: str
    reasons: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.pass_name

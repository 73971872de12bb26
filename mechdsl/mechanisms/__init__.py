"""The registry of mechanism kinds: the one place an extension is registered.

A mechanism kind bundles a grammar fragment (``grammar/mechanisms/<kind>.lark``,
which ``%extend``s the core ``item`` or ``atom`` rules), the AST builder
callbacks for its rules, and a lowering into core IR.  See
``docs/extending.md``.  The core language needs no entry here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class MechanismKind:
    """A registered extension of the language."""

    name: str
    grammar: str | None = None          # path under mechdsl.grammar, e.g. "mechanisms/screening.lark"
    builders: dict[str, Callable] = field(default_factory=dict)  # rule name -> AstBuilder method
    lower: Callable | None = None       # (node, lowerer) -> list of core IR items
    doc: str = ""


#: Every registered kind, in load order.  Add one line per new kind.
KINDS: tuple[MechanismKind, ...] = ()

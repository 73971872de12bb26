"""The registry of mechanism kinds: the one place an extension is registered.

A kind is a grammar fragment (``grammar/mechanisms/<kind>.lark``, which
``%extend``s the core ``item`` or ``atom`` rule) plus builder callbacks that
turn its parse-tree rules into AST nodes -- normally core declarations, so the
checker, IR, compilers and verification need nothing new.  See
``docs/extending.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class MechanismKind:
    """A registered extension of the language."""

    name: str
    grammar: str | None = None          #: path under mechdsl.grammar, e.g. "mechanisms/truthful.lark"
    builders: dict[str, Callable] = field(default_factory=dict)  #: rule -> fn(builder, meta, children)
    doc: str = ""
    example: str = ""                   #: a spec using the kind (solved by tests/test_registry.py)


def _kinds() -> tuple[MechanismKind, ...]:
    from . import stagewise, truthful

    #: Every registered kind, in load order.  Add one line per new kind.
    return (
        truthful.SPEC,
        stagewise.SPEC,
    )


KINDS: tuple[MechanismKind, ...] = _kinds()

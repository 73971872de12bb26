"""Readable ids of constraint instances (``IC[3->1]``, ``IR[2]``, ``MONO_q[1,2]``).

The same ids name rows in verification reports, nodes of the dominance graph
and the premises of the reduction passes' rules, so they are made (and parsed)
in this one place.
"""
from __future__ import annotations

from . import nodes as ir


def _txt(k) -> str:
    return "(" + ",".join(map(str, k)) + ")" if isinstance(k, tuple) else str(k)  # a profile: (1,3)


def constraint_id(c: ir.ConstraintDef, key: tuple, type_dim: int | None) -> str:
    """Readable ids: ``IC[3->1]`` for an ic family over (true type, report), else ``IR[2]``."""
    if not key:
        return c.name
    if any(isinstance(k, tuple) for k in key):
        return f"{c.name}[{','.join(map(_txt, key))}]"
    if type_dim is None and len(key) % 2 == 0:
        type_dim = len(key) // 2  # no type declared: (true..., report...) halves
    if c.kind == ir.ConKind.IC and type_dim and len(key) == 2 * type_dim:
        a, b = key[:type_dim], key[type_dim:]
        return f"{c.name}[{','.join(map(str, a))}->{','.join(map(str, b))}]"
    return f"{c.name}[{','.join(map(str, key))}]"


def id_number(text: str):
    """A number written in a constraint id (``IC[3->1]``): int when integral."""
    f = float(text)
    return int(f) if f.is_integer() else f


def split_id(cid: str) -> tuple[str, str]:
    """``"IC[3->1]"`` -> ``("IC", "3->1")``; ``"Budget"`` -> ``("Budget", "")``."""
    name, _, rest = cid.partition("[")
    return name, rest[:-1] if rest.endswith("]") else rest


def pair_of(cid: str, family: str) -> tuple | None:
    """The (true type, report) numbers of a one-dimensional IC id of ``family``, else None."""
    name, rest = split_id(cid)
    if name != family or "->" not in rest:
        return None
    a, b = rest.split("->", 1)
    try:
        return id_number(a), id_number(b)
    except ValueError:
        return None

"""Lowering a mechanism kind by a template: core source text with placeholders for the user's pieces.

``expand(text, span, VAL=expr_node, S=set_node)`` parses ``text`` (core mechdsl, with the placeholder
names ``__VAL__``, ``__S__``, ...) and substitutes the user's AST nodes for the placeholders: a ``Name``
``__X__`` becomes the expression given for X, a named set ``__X__`` the set given for X.  Every generated
node takes ``span``, so an error inside the expansion points at the user's declaration.
"""
from __future__ import annotations

import dataclasses

from ..syntax import ast


def expand(text: str, span, **pieces) -> tuple:
    from ..syntax.parser import parse

    module = parse(text, "<template>")
    names = {f"__{k}__": v for k, v in pieces.items()}
    return tuple(_subst(item, names, span) for item in module.items)


def _subst(node, names: dict, span):
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.NamedSet) and node.name in names:
        return names[node.name]
    if isinstance(node, tuple):
        return tuple(_subst(x, names, span) for x in node)
    if not dataclasses.is_dataclass(node) or isinstance(node, type):
        return node
    changes = {}
    for f in dataclasses.fields(node):
        if f.name == "source":
            continue
        v = getattr(node, f.name)
        if f.name.endswith("span"):
            changes[f.name] = span
        elif isinstance(v, (tuple, ast.Node)):
            changes[f.name] = _subst(v, names, span)
    return dataclasses.replace(node, **changes)

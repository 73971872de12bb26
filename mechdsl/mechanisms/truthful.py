"""Mechanism kind ``truthful``: all-pairs IC (and optionally IR) from a utility.

``truthful U over S reserve r;`` with ``utility U(t, q) = ...`` desugars to::

    ic IC_U[t in S, q in S: t != q]: U(t, t) >= U(t, q);
    ir IR_U[t in S]: U(t, t) >= r;

The builder returns core AST declarations, so the checker, the IR, the
compilers and verification need nothing new.  It is the worked example of
``docs/extending.md``.
"""
from __future__ import annotations

from ..syntax import ast
from . import MechanismKind


def build_truthful_decl(builder, meta, children):
    """Lark rule ``truthful_decl`` -> (ic ConstraintDecl, [ir ConstraintDecl])."""
    name_tok, set_expr, *rest = children
    span = builder._span(meta)
    name = str(name_tok)
    util = builder.utilities.get(name)
    if util is None:
        # Let the checker report the unknown utility at the right place.
        t, q = "_t", "_q"
    else:
        t, q = util.params[0], util.params[1]
    call = lambda a, b: ast.Call(span, name, (ast.Name(span, a), ast.Name(span, b)))
    pair = ast.IndexSpec(span, (ast.IndexItem(span, (t,), set_expr), ast.IndexItem(span, (q,), set_expr)),
                         ast.Compare(span, (ast.Name(span, t), ast.Name(span, q)), ("!=",)))
    decls = [ast.ConstraintDecl(span, "ic", f"IC_{name}", pair,
                                ast.Compare(span, (call(t, t), call(t, q)), (">=",)))]
    if rest:
        single = ast.IndexSpec(span, (ast.IndexItem(span, (t,), set_expr),), None)
        decls.append(ast.ConstraintDecl(span, "ir", f"IR_{name}", single,
                                        ast.Compare(span, (call(t, t), rest[0]), (">=",))))
    return tuple(decls)


#: A spec using the kind; tests/test_registry.py solves and verifies it.
EXAMPLE = """
param K = 3;
param v[k in 1..K] = [1, 2, 3];
var x[k in 1..K] >= 0, <= 1;
var p[k in 1..K] >= 0;
utility U(t, r) = p[r] - v[t] * x[r];
truthful U over 1..K reserve 0;
maximize sum{k in 1..K} (2.5 * x[k] - p[k]);
"""

SPEC = MechanismKind(
    name="truthful",
    grammar="mechanisms/truthful.lark",
    builders={"truthful_decl": build_truthful_decl},
    doc="All-pairs IC (and IR with `reserve`) for a declared utility U(true, report).",
    example=EXAMPLE,
)

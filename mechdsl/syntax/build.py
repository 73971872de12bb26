"""Lark tree -> typed AST.

One callback per grammar rule (the rule name is the method name).  Children are
read by type, never by position alone, so optional pieces (an index, a name)
cannot be confused.  Positions come from ``meta`` (the parser runs with
``propagate_positions=True``).
"""
from __future__ import annotations

from lark import Token, Transformer, v_args

from ..span import Span
from . import ast


def _tok_span(filename: str, tok: Token) -> Span:
    return Span(filename, tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + len(tok))


def _exports(items: list) -> list:
    """``report NAME;`` reports the param NAME: its index set and value (the checker reports a bad one)."""
    params = {d.name: d for d in items if isinstance(d, ast.ParamDecl)}
    out = []
    for d in items:
        p = params.get(d.name) if isinstance(d, ast.ReportDecl) and d.expr is None and d.index is None else None
        if p is not None and (p.index is None or all(it.binders for it in p.index.items)):
            span = d.span
            if p.index is None:
                d = ast.ReportDecl(span, d.name, None, ast.Name(span, p.name), export=True)
            else:
                names = [b for it in p.index.items for b in it.binders]
                d = ast.ReportDecl(span, d.name, p.index,
                                   ast.Indexed(span, p.name, span, tuple(ast.Name(span, b) for b in names)),
                                   export=True)
        out.append(d)
    return out


@v_args(meta=True)
class AstBuilder(Transformer):
    """Build :mod:`mechdsl.syntax.ast` nodes from a Lark parse tree."""

    def __init__(self, filename: str, source: str):
        super().__init__()
        self.filename = filename
        self.source = source
        self.utilities: dict[str, ast.DefDecl] = {}  # for kinds that expand utilities

    # ---------------------------------------------------------------- helpers
    def _span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.filename, 0, 0, 0, 0)
        return Span(self.filename, meta.line, meta.column, meta.end_line, meta.end_column)

    def _ts(self, tok: Token) -> Span:
        return _tok_span(self.filename, tok)

    @staticmethod
    def _exprs(children):
        return tuple(c for c in children if not isinstance(c, Token))

    # ---------------------------------------------------------------- module
    def start(self, meta, children):
        span = self._span(meta)
        if span.line == 0:
            span = Span(self.filename, 1, 1, 1, 1)
        items = []
        for c in children:  # a mechanism kind may expand to several declarations
            items.extend(c if isinstance(c, tuple) else (c,))
        return ast.Module(span, tuple(_exports(items)), self.source)

    # ---------------------------------------------------------- declarations
    def param_decl(self, meta, children):
        name = children[0]
        index = next((c for c in children if isinstance(c, ast.IndexSpec)), None)
        domain = next((c[1] for c in children if isinstance(c, tuple) and c[0] == "domain"), None)
        bounds = tuple(c[1] for c in children if isinstance(c, tuple) and c[0] == "bound")
        value = next((c for c in children if isinstance(c, _InitValue)), None)
        return ast.ParamDecl(self._span(meta), str(name), index, domain, bounds,
                             value.value if value else None)

    def param_bound(self, meta, children):
        op, expr = [c for c in children]
        return ("bound", (str(op), expr))

    def param_domain(self, meta, children):
        return ("domain", str(children[0]))

    var_bound = param_bound
    var_domain = param_domain

    def var_init(self, meta, children):
        return ("init", children[0])

    def init_value(self, meta, children):
        return _InitValue(children[0])

    def array(self, meta, children):
        return ast.ArrayLit(self._span(meta), tuple(children))

    def set_decl(self, meta, children):
        return ast.SetDecl(self._span(meta), str(children[0]), children[1])

    def type_decl(self, meta, children):
        grid = next((c[1] for c in children if isinstance(c, tuple) and c and c[0] == "grid"), None)
        children = [c for c in children if not (isinstance(c, tuple) and c and c[0] == "grid")]
        if len(children) == 4:
            name, agents, set_expr, prior = children
        else:
            (name, set_expr, prior), agents = children, None
        density = prior[2] if len(prior) > 2 else None
        return ast.TypeDecl(self._span(meta), str(name), set_expr, prior[0], prior[1], agents, density, grid)

    def type_grid(self, meta, children):
        return ("grid", children[0])

    def prior_uniform(self, meta, children):
        return (None, self._span(meta))

    def prior_density(self, meta, children):
        return (None, self._span(meta), children[0])

    def prior_table(self, meta, children):
        return (str(children[0]), self._ts(children[0]))

    def population_decl(self, meta, children):
        name, count, source = children
        return ast.PopulationDecl(self._span(meta), str(name), count, str(source), self._ts(source))

    def var_decl(self, meta, children):
        name = children[0]
        index = next((c for c in children if isinstance(c, ast.IndexSpec)), None)
        domains = [c[1] for c in children if isinstance(c, tuple) and c[0] == "domain"]
        bounds = tuple(c[1] for c in children if isinstance(c, tuple) and c[0] == "bound")
        init = next((c[1] for c in children if isinstance(c, tuple) and c[0] == "init"), None)
        return ast.VarDecl(self._span(meta), str(name), index, domains[-1] if domains else "real", bounds, init)

    def def_decl(self, meta, children):
        name, *rest = children
        params = tuple(str(c) for c in rest[:-1] if c is not None)
        return ast.DefDecl(self._span(meta), str(name), params, rest[-1])

    def utility_decl(self, meta, children):
        name, *params, body = children
        d = ast.DefDecl(self._span(meta), str(name), tuple(str(p) for p in params), body, utility=True)
        self.utilities[d.name] = d
        return d

    def constraint_decl(self, meta, children):
        check_only = isinstance(children[0], Token) and children[0].type == "CHECK"
        if check_only:
            children = children[1:]
        kind, name, *rest = children
        index = rest[0] if len(rest) == 2 else None
        return ast.ConstraintDecl(self._span(meta), str(kind), str(name), index, rest[-1], check_only)

    def objective_decl(self, meta, children):
        sense = str(children[0])
        name = str(children[1]) if len(children) == 3 else None
        return ast.ObjectiveDecl(self._span(meta), sense, name, children[-1])

    def tiebreak_decl(self, meta, children):
        return ast.ObjectiveDecl(self._span(meta), str(children[0]), "tiebreak", children[-1], True)

    def report_decl(self, meta, children):
        name = children[0]
        index = next((c for c in children[1:2] if isinstance(c, ast.IndexSpec)), None)
        expr = children[-1] if len(children) > (2 if index is not None else 1) else None
        return ast.ReportDecl(self._span(meta), str(name), index, expr)

    def aux_decl(self, meta, children):
        name = children[0]
        index = next((c for c in children[1:2] if isinstance(c, ast.IndexSpec)), None)
        items = tuple(x for c in children[1:] if not isinstance(c, ast.IndexSpec)
                      for x in (c if isinstance(c, tuple) else (c,)))  # a mechanism kind may expand to several
        return ast.AuxDecl(self._span(meta), str(name), index, items)

    # ------------------------------------------------------------ index sets
    def index_spec(self, meta, children):
        items = tuple(c for c in children if isinstance(c, ast.IndexItem))
        rest = [c for c in children if not isinstance(c, ast.IndexItem)]
        return ast.IndexSpec(self._span(meta), items, rest[0] if rest else None)

    def bound_item(self, meta, children):
        binders, set_expr = children
        return ast.IndexItem(self._span(meta), binders, set_expr)

    def anon_item(self, meta, children):
        return ast.IndexItem(self._span(meta), (), children[0])

    def single_binder(self, meta, children):
        return (str(children[0]),)

    def tuple_binder(self, meta, children):
        return tuple(str(c) for c in children)

    def product_set(self, meta, children):
        factors = []
        for c in children:
            factors.extend(c.factors if isinstance(c, ast.ProductSet) else (c,))
        return ast.ProductSet(self._span(meta), tuple(factors))

    def range_set(self, meta, children):
        return ast.RangeSet(self._span(meta), children[0], children[1])

    def interval_set(self, meta, children):
        return ast.IntervalSet(self._span(meta), children[0], children[1])

    def infimum(self, meta, children):
        op, binders, set_expr, cond = children
        return ast.Infimum(self._span(meta), str(op), tuple(binders), set_expr, cond)

    def named_set(self, meta, children):
        return ast.NamedSet(self._span(meta), str(children[0]))

    def list_set(self, meta, children):
        return ast.ListSet(self._span(meta), tuple(c for c in children if c is not None))

    def power_set(self, meta, children):
        base = children[0]
        return ast.PowerSet(self._span(meta), ast.NamedSet(self._ts(base), str(base)), children[1])

    def filtered_set(self, meta, children):
        binders, base, cond = children
        return ast.FilteredSet(self._span(meta), binders, base, cond)

    # ----------------------------------------------------------- expressions
    def number(self, meta, children):
        return ast.Num(self._span(meta), float(children[0]))

    def name(self, meta, children):
        return ast.Name(self._span(meta), str(children[0]))

    def indexed(self, meta, children):
        base, *args = children
        return ast.Indexed(self._span(meta), str(base), self._ts(base), tuple(args))

    def attribute(self, meta, children):
        target, attr = children
        return ast.Attribute(self._span(meta), target, str(attr))

    def indexed_attribute(self, meta, children):
        target, attr, *args = children
        return ast.Attribute(self._span(meta), target, str(attr), tuple(args))

    def conditional(self, meta, children):
        cond, then, orelse = children
        return ast.Conditional(self._span(meta), cond, then, orelse)

    def call(self, meta, children):
        func, *args = children
        return ast.Call(self._span(meta), str(func), tuple(a for a in args if a is not None))

    def _bin(op):
        def f(self, meta, children):
            return ast.BinOp(self._span(meta), op, children[0], children[1])
        return f

    add, sub, mul, div, pow = _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("^")
    del _bin

    def neg(self, meta, children):
        return ast.Neg(self._span(meta), children[0])

    def compare(self, meta, children):
        operands = tuple(c for c in children if not isinstance(c, Token))
        ops = tuple(str(c) for c in children if isinstance(c, Token))
        return ast.Compare(self._span(meta), operands, ops)

    def _boolop(op):
        def f(self, meta, children):
            left, right = children
            parts = []
            for c in (left, right):
                parts.extend(c.operands if isinstance(c, ast.BoolOp) and c.op == op else (c,))
            return ast.BoolOp(self._span(meta), op, tuple(parts))
        return f

    and_, or_ = _boolop("and"), _boolop("or")
    del _boolop

    def not_(self, meta, children):
        return ast.Not(self._span(meta), children[0])

    def implies(self, meta, children):
        return ast.Implies(self._span(meta), children[0], children[1])

    def iterate(self, meta, children):
        op = str(children[0])
        items = tuple(c for c in children[1:-1] if isinstance(c, ast.IndexItem))
        conds = [c for c in children[1:-1] if not isinstance(c, ast.IndexItem)]
        spec_span = items[0].span if items else self._span(meta)
        index = ast.IndexSpec(spec_span, items, conds[0] if conds else None)
        return ast.Iterate(self._span(meta), op, index, children[-1])

    def expect(self, meta, children):
        subject = children[0]
        cond = children[1] if len(children) == 3 else None
        return ast.Expect(self._span(meta), str(subject), self._ts(subject), cond, children[-1])

    def expect_others(self, meta, children):
        subject, agent = children[0], children[1]
        cond = children[2] if len(children) == 4 else None
        return ast.ExpectOthers(self._span(meta), str(subject), self._ts(subject), agent, cond, children[-1])

    def expect_dist(self, meta, children):
        binder, dist, *args, body = children
        args = tuple(None if a == "." else (a.children[0] if hasattr(a, "children") else a) for a in args)
        return ast.ExpectDist(self._span(meta), str(binder), self._ts(binder), str(dist), self._ts(dist), args, body)

    def dist_arg(self, meta, children):
        return children[0]

    def dist_slot(self, meta, children):
        return "."

    def replace_profile(self, meta, children):
        return ast.Replace(self._span(meta), children[0], children[1])

    def complements(self, meta, children):
        return ast.Complements(self._span(meta), children[0], children[1])


class _InitValue:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

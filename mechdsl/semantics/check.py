"""Static semantic checks on the AST.

Stage: ``ast.Module -> SymbolTable`` or :class:`~mechdsl.errors.MechSemanticError`
carrying *every* diagnostic found (not just the first).

Checked here (no data needed): unknown names, use before declaration,
duplicate definitions, the number of indices, the number of function
arguments, numbers versus conditions ("type mismatch"), variables where only
data may appear (set bounds, filters, param values, bounds), and the subjects
of expectations.  Checks that need data (an index outside its set, array
shapes) happen when the model is bound to data (:mod:`mechdsl.instance`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Diagnostic, MechSemanticError, did_you_mean
from ..span import Span
from ..syntax import ast

NUM, BOOL, CON = "number", "condition", "constraint"
#: The sort of a profile of types (an element of V^N): usable as one index, never as a number.
PROF = "profile"
#: The sort of a label (an element of a set of names, ``set X = {build, skip};``): an index, compared with ==.
LABEL = "label"
#: Local kinds of names bound to profiles: a whole profile (a binder over V^N, or E[v]'s subject
#: when v is a per-agent type), or the others' profile inside E[v[-i]] (agent i's type not fixed).
PROFILE_KINDS = ("profile", "others")

#: Built-in functions: name -> (min args, max args or None for n-ary).
BUILTINS = {"sqrt": (1, 1), "log": (1, 1), "exp": (1, 1), "abs": (1, 1),
            "min": (2, None), "max": (2, None), "floor": (1, 1), "ceil": (1, 1), "mod": (2, 2)}
#: Functions of a declared continuous prior: name -> (min args, max args).  The first argument names the
#: type; the point is the type's current value (inside E[v](...), inf{v in ...}) or the last argument.
#: ``iron(v, g[, x])`` irons the function g of v (the slope of the convex hull of its integral in quantile
#: space); ``phibar(v)`` = ``iron(v, phi(v))``.  A declared name with one of these names takes precedence.
PRIOR_FNS = {"cdf": (1, 2), "pdf": (1, 2), "phi": (1, 2), "phibar": (1, 2), "iron": (2, 3)}
#: Built-ins whose arguments must be data (params and indices), never decision variables.
DATA_ONLY = ("floor", "ceil", "mod")
#: Attributes of every aux problem (besides its variables), with their sort.
AUX_ATTRS = {"objective": NUM, "feasible": BOOL}
#: Iterated forms: op -> (sort of the body, sort of the result, whether the body may hold variables).
ITERATED = {"sum": (NUM, NUM, True), "prod": (NUM, NUM, True), "max": (NUM, NUM, True), "min": (NUM, NUM, True),
            "argmax": (NUM, NUM, False), "argmin": (NUM, NUM, False),
            "forall": (BOOL, BOOL, False), "exists": (BOOL, BOOL, False)}


@dataclass
class Symbol:
    """What a global (or aux-local) name denotes."""

    kind: str  # param set var def utility type population aux
    dim: int  # number of indices (params, vars, aux); arity (defs); dimension (sets, types)
    decl: ast.Node
    aux_vars: dict[str, int] = field(default_factory=dict)  # for aux: var name -> dim
    body_has_var: bool = False  # for defs: the body itself mentions a variable
    profile: bool = False  # for types: one type per agent (``type v[i in N] in V ~ f``)
    continuous: bool = False  # for types: a real interval ``type v in [a, b] ~ uniform | density(...)``
    labels: bool = False  # for sets: a set of labels (``set X = {build, skip};``)


@dataclass
class SymbolTable:
    symbols: dict[str, Symbol]

    def __getitem__(self, name: str) -> Symbol:
        return self.symbols[name]

    def get(self, name: str) -> Symbol | None:
        return self.symbols.get(name)


@dataclass(frozen=True)
class _Info:
    sort: str
    has_var: bool = False


class _Scope:
    """Local names: binders (value 'index'), def params, E subjects."""

    def __init__(self, parent: "_Scope | None" = None, names: dict[str, str] | None = None):
        self.parent = parent
        self.names = dict(names or {})

    def lookup(self, name):
        s = self
        while s is not None:
            if name in s.names:
                return s.names[name]
            s = s.parent
        return None

    def child(self, names):
        return _Scope(self, names)


class Checker:
    def __init__(self, module: ast.Module):
        self.module = module
        self.diags: list[Diagnostic] = []
        self.table: dict[str, Symbol] = {}
        self.local: dict[str, Symbol] | None = None  # aux-local symbols
        self.in_aux: str | None = None
        self.in_report = False
        self.objectives = 0
        self._interval_ok = False  # a real interval [a, b] is allowed in the set being checked
        # Systems of recurrences: a param's value may refer to a later param that refers back to it.
        self._later: dict[str, tuple[int, ast.ParamDecl]] = {}
        self._pos = 0
        self._cur_param: str | None = None
        self._refs: dict[str, set] = {}
        self._forward_refs: list[tuple[str, str, Span]] = []

    # ------------------------------------------------------------- plumbing
    def error(self, msg, span, help=None, notes=()):
        self.diags.append(Diagnostic(msg, span, help=help, notes=tuple(notes)))

    def lookup(self, name):
        if self.local is not None and name in self.local:
            return self.local[name]
        return self.table.get(name)

    def known_names(self):
        names = set(self.table)
        if self.local:
            names |= set(self.local)
        return names

    def declare(self, name, sym, span):
        target = self.local if self.local is not None else self.table
        prev = target.get(name) or (self.table.get(name) if self.local is not None else None)
        if prev is not None:
            self.error(f"duplicate definition of '{name}'", span,
                       notes=[f"'{name}' was first defined as a {prev.kind} at {prev.decl.span}"])
            return
        if name in BUILTINS:
            self.error(f"'{name}' is a built-in function and cannot be redefined", span)
            return
        target[name] = sym

    # ------------------------------------------------------------ top level
    def run(self) -> SymbolTable:
        for k, item in enumerate(self.module.items):
            if isinstance(item, ast.ParamDecl) and item.index is not None and item.value is not None \
                    and not isinstance(item.value, ast.ArrayLit):
                self._later[item.name] = (k, item)
        for k, item in enumerate(self.module.items):
            self._pos = k
            self.item(item)
        self._check_forward_refs()
        if self.objectives == 0 and any(isinstance(i, (ast.VarDecl,)) for i in self.module.items):
            self.error("the spec declares variables but no objective", self.module.span,
                       help="add 'maximize ...;' or 'minimize ...;'")
        if self.diags:
            raise MechSemanticError(self.diags, {self.module.span.file: self.module.source})
        return SymbolTable(self.table)

    def item(self, item):
        method = getattr(self, "decl_" + type(item).__name__)
        method(item)

    def index_spec(self, spec: ast.IndexSpec | None, scope: _Scope, where: str):
        """Check an index spec; return (child scope, number of indices)."""
        if spec is None:
            return scope, 0
        names = {}
        dim = 0
        for item in spec.items:
            sdim = self.set_expr(item.set, scope.child(names))
            if item.binders:
                if sdim is not None and len(item.binders) != sdim:
                    self.error(f"{len(item.binders)} name(s) bound over a set of dimension {sdim}", item.span)
                for b in item.binders:
                    power = isinstance(item.set, ast.PowerSet)
                    sym = self.lookup(b)
                    if power and sym is not None and sym.profile and scope.lookup(b) is None and b not in names:
                        pass  # a profile binder may take the name of the type per agent whose profiles it ranges over
                    else:
                        self.binder(b, item.span, scope, names)
                    names[b] = "profile" if power else ("label" if self._label_set(item.set) else "index")
                dim += len(item.binders)
            else:
                dim += sdim or 1
        inner = scope.child(names)
        if spec.condition is not None:
            self.expect_sort(spec.condition, inner, BOOL, f"the filter of {where}", allow_var=False)
        return inner, dim

    def _label_set(self, s) -> bool:
        if isinstance(s, ast.NamedSet):
            sym = self.lookup(s.name)
            return sym is not None and sym.labels
        if isinstance(s, ast.FilteredSet):
            return self._label_set(s.base)
        return False

    def binder(self, name, span, scope, names):
        if name in names or scope.lookup(name) is not None:
            self.error(f"index '{name}' is already bound in this scope", span)
        elif self.lookup(name) is not None:
            sym = self.lookup(name)
            self.error(f"index name '{name}' shadows the {sym.kind} '{name}' declared at {sym.decl.span}",
                       span, help="rename the index")

    # ---------------------------------------------------------------- sets
    def set_expr(self, s, scope) -> int | None:
        if isinstance(s, ast.IntervalSet):
            if not self._interval_ok:
                self.error("a real interval [a, b] cannot be an index set here", s.span,
                           help="an interval is the support of a continuous type (type v in [a, b] ~ uniform) "
                                "or the range of inf{v in [a, b]: ...}; for a finite set write a..b")
            self.expect_sort(s.lo, scope, NUM, "an interval bound", allow_var=False)
            self.expect_sort(s.hi, scope, NUM, "an interval bound", allow_var=False)
            return 1
        if isinstance(s, ast.RangeSet):
            self.expect_sort(s.lo, scope, NUM, "a range bound", allow_var=False)
            self.expect_sort(s.hi, scope, NUM, "a range bound", allow_var=False)
            return 1
        if isinstance(s, ast.NamedSet):
            sym = self.lookup(s.name)
            if sym is None:
                self.unknown(s.name, s.span)
                return None
            if sym.kind not in ("set", "type"):
                self.error(f"'{s.name}' is a {sym.kind}, not a set", s.span)
                return None
            if sym.profile:
                self.error(f"'{s.name}' is a type per agent; its profiles are the set V^N of its declaration",
                           s.span)
                return None
            return sym.dim
        if isinstance(s, ast.ListSet):
            dims = set()
            for e in s.elements:
                self.expect_sort(e, scope, NUM, "a set element", allow_var=False)
                dims.add(1)
            return 1
        if isinstance(s, ast.ProductSet):
            dims = [self.set_expr(f, scope) for f in s.factors]
            return None if None in dims else sum(dims)
        if isinstance(s, ast.PowerSet):
            bdim = self.set_expr(s.base, scope)
            if bdim is not None and bdim != 1:
                self.error(f"a power set V^N needs a set V of dimension 1, not {bdim}", s.base.span)
            c = s.count
            sym = self.lookup(c.id) if isinstance(c, ast.Name) and scope.lookup(c.id) is None else None
            if sym is not None and sym.kind in ("set", "type"):
                if sym.dim != 1:
                    self.error(f"the agents of V^{c.id} must be a set of dimension 1", c.span)
            else:
                self.expect_sort(c, scope, NUM, "the exponent of a power set", allow_var=False)
            return 1
        if isinstance(s, ast.FilteredSet):
            bdim = self.set_expr(s.base, scope)
            if bdim is not None and len(s.binders) != bdim:
                self.error(f"{len(s.binders)} name(s) bound over a set of dimension {bdim}", s.span)
            names = {}
            for b in s.binders:
                self.binder(b, s.span, scope, names)
                names[b] = "index"
            self.expect_sort(s.condition, scope.child(names), BOOL, "a set filter", allow_var=False)
            return bdim
        raise AssertionError(type(s))

    # -------------------------------------------------------- declarations
    def decl_SetDecl(self, d: ast.SetDecl):
        v = d.value
        if isinstance(v, ast.ListSet) and v.elements and all(isinstance(e, ast.Name) for e in v.elements) \
                and all(self.lookup(e.id) is None or self.lookup(e.id).kind == "label" for e in v.elements):
            seen = set()
            for e in v.elements:  # a set of labels: each name is declared (a label may be in several sets)
                if e.id in seen:
                    self.error(f"label '{e.id}' is repeated in set '{d.name}'", e.span)
                seen.add(e.id)
                if self.lookup(e.id) is None:
                    self.declare(e.id, Symbol("label", 0, d), e.span)
            self.declare(d.name, Symbol("set", 1, d, labels=True), d.span)
            return
        dim = self.set_expr(d.value, _Scope())
        self.declare(d.name, Symbol("set", dim or 1, d), d.span)

    def decl_ParamDecl(self, d: ast.ParamDecl):
        scope, dim = self.index_spec(d.index, _Scope(), f"param '{d.name}'")
        for op, e in d.bounds:
            self.expect_sort(e, _Scope(), NUM, f"a bound of param '{d.name}'", allow_var=False)
        if isinstance(d.value, ast.ArrayLit):
            if dim == 0:
                self.error(f"param '{d.name}' is scalar but is given an array", d.value.span)
            self.array(d.value, _Scope())
        elif d.value is not None:
            # An indexed param may refer to itself at other indices (a recurrence, evaluated bottom-up), and
            # to a later indexed param that refers back to it (a system of recurrences, as R[h] and theta[h]).
            provisional = [d] if dim > 0 and self.lookup(d.name) is None else []
            if dim > 0:  # only an indexed param may be part of a system of recurrences
                provisional += [d2 for name, (k, d2) in self._later.items()
                                if k > self._pos and self.lookup(name) is None and name != d.name]
            for d2 in provisional:
                self.table[d2.name] = Symbol("param", sum(len(it.binders) or 1 for it in d2.index.items), d2)
            self._cur_param, self._refs[d.name] = d.name, set()
            try:
                self.expect_sort(d.value, scope, NUM, f"the value of param '{d.name}'", allow_var=False)
            finally:
                self._cur_param = None
                for d2 in provisional:
                    self.table.pop(d2.name, None)
        joint = (d.index is not None and len(d.index.items) == 1 and isinstance(d.index.items[0].set, ast.PowerSet))
        self.declare(d.name, Symbol("param", dim, d, profile=joint), d.span)

    def _param_use(self, name: str, span):
        """Record a param read inside a param's value (for systems of recurrences)."""
        if self._cur_param is None:
            return
        self._refs[self._cur_param].add(name)
        later = self._later.get(name)
        if later is not None and later[0] > self._pos:
            self._forward_refs.append((self._cur_param, name, span))

    def _check_forward_refs(self):
        """A reference to a later param is allowed only inside a cycle of definitions (they are evaluated
        together, bottom-up); otherwise it is a use before declaration."""
        def reaches(a, b):
            seen, todo = set(), [a]
            while todo:
                x = todo.pop()
                if x == b:
                    return True
                if x not in seen:
                    seen.add(x)
                    todo.extend(self._refs.get(x, ()))
            return False
        for a, b, span in self._forward_refs:
            if not reaches(b, a):
                self.error(f"param '{b}' is used before its declaration", span,
                           help=f"declare '{b}' before '{a}' (a param may refer to a later one only when the two "
                                "are defined in terms of each other, as a system of recurrences)")

    def array(self, a: ast.ArrayLit, scope):
        for e in a.elements:
            if isinstance(e, ast.ArrayLit):
                self.array(e, scope)
            else:
                self.expect_sort(e, scope, NUM, "an array element", allow_var=False)

    def decl_TypeDecl(self, d: ast.TypeDecl):
        if isinstance(d.set, ast.IntervalSet):
            return self._continuous_type(d)
        if d.density is not None:
            self.error("a density needs a real interval as the type set: type v in [a, b] ~ density(...)",
                       d.prior_span)
        if d.grid is not None:
            self.error("a grid discretises a continuous type: type v in [a, b] ~ uniform grid N", d.grid.span)
        if d.agents is not None:
            return self._agent_type(d)
        dim = self.set_expr(d.set, _Scope())
        sym = self._prior_param(d)
        if sym is not None:
            if dim is not None and sym.dim != dim:
                self.error(f"the prior '{d.prior}' has {sym.dim} index(es) but the type set has dimension {dim}",
                           d.prior_span)
        self.declare(d.name, Symbol("type", dim or 1, d), d.span)

    def _continuous_type(self, d: ast.TypeDecl):
        """``type v in [a, b] ~ uniform`` or ``~ density(expr)``: a continuous one-dimensional type."""
        if d.agents is not None:
            self.error("a continuous type per agent is not supported; declare a type over a finite set "
                       "(type v[i in N] in V ~ f)", d.agents.span)
        self._interval_ok = True
        try:
            self.set_expr(d.set, _Scope())
        finally:
            self._interval_ok = False
        if d.prior is not None:
            self.error(f"a continuous type takes ~ uniform or ~ density(...), not the table '{d.prior}'",
                       d.prior_span, help=f"for a finite type set write type {d.name} in 1..K ~ {d.prior}")
        if d.density is not None:
            self.expect_sort(d.density, _Scope(names={d.name: "type"}), NUM, "a density", allow_var=False)
        if d.grid is not None:  # discretised: a finite type whose values are the cells' midpoints
            self.expect_sort(d.grid, _Scope(), NUM, "the number of grid cells", allow_var=False)
        self.declare(d.name, Symbol("type", 1, d, continuous=d.grid is None), d.span)

    def _prior_param(self, d: ast.TypeDecl):
        """The param a type's prior names, or None (uniform, or an error already reported)."""
        if d.prior is None:
            return None
        sym = self.lookup(d.prior)
        if sym is None:
            self.unknown(d.prior, d.prior_span)
            return None
        if sym.kind != "param":
            self.error(f"the prior '{d.prior}' must be a param, not a {sym.kind}", d.prior_span)
            return None
        return sym

    def _agent_type(self, d: ast.TypeDecl):
        """``type v[i in N] in V ~ f``: one type per agent, independent; f[k] common or f[i, k] per agent."""
        spec = d.agents
        if len(spec.items) != 1 or len(spec.items[0].binders) != 1 or spec.condition is not None:
            self.error("a type per agent is declared over one set of agents, e.g. type v[i in N] in V ~ f",
                       spec.span)
        else:
            self.set_expr(spec.items[0].set, _Scope())
        dim = self.set_expr(d.set, _Scope())
        if dim is not None and dim != 1:
            self.error(f"each agent's type set must have dimension 1, not {dim}", d.set.span)
        sym = self._prior_param(d)
        if sym is not None:
            if sym.dim not in (1, 2):
                self.error(f"the prior '{d.prior}' of a type per agent is indexed by the type (common to all "
                           f"agents), by agent and type, or by the profile (a joint prior, param {d.prior}[w in "
                           f"V^N]), not by {sym.dim} indices", d.prior_span)
        self.declare(d.name, Symbol("type", 1, d, profile=True), d.span)

    def index_arg(self, a, scope, what="an index") -> _Info:
        """An index (or a def's argument): a number, or a profile (v, v[-i], (r, v[-i]))."""
        info = self.expr(a, scope)
        if info.sort not in (None, NUM, PROF, LABEL):
            self.error(f"type mismatch: {what} must be a number, but this is a {info.sort}", a.span)
        return info

    def decl_PopulationDecl(self, d: ast.PopulationDecl):
        self.expect_sort(d.count, _Scope(), NUM, "the population size", allow_var=False)
        sym = self.lookup(d.source)
        dim = 1
        if sym is None:
            self.unknown(d.source, d.source_span)
        elif sym.kind == "type":
            dim = sym.dim
        elif sym.kind == "param" and sym.dim >= 1:
            dim = sym.dim
        else:
            self.error(f"multinomial(N, p): '{d.source}' must be a type or an indexed param of probabilities",
                       d.source_span)
        self.declare(d.name, Symbol("population", dim, d), d.span)

    def decl_VarDecl(self, d: ast.VarDecl):
        scope, dim = self.index_spec(d.index, _Scope(), f"var '{d.name}'")
        self._nonstrict(d)
        for op, e in d.bounds:
            self.expect_sort(e, scope, NUM, f"a bound of var '{d.name}'", allow_var=False)
        if d.init is not None:
            self.expect_sort(d.init, scope, NUM, f"the initial value of var '{d.name}'", allow_var=False)
        self.declare(d.name, Symbol("var", dim, d), d.span)
        if self.in_aux is not None:
            self.table[self.in_aux].aux_vars[d.name] = dim

    def _nonstrict(self, d: ast.VarDecl):
        for op, e in d.bounds:
            if op in ("<", ">"):
                self.error(f"a variable bound must be '<=' or '>=', not '{op}'", e.span)

    def decl_DefDecl(self, d: ast.DefDecl, outer: "_Scope | None" = None):
        """A def; inside an aux block (``outer``: the aux's indices) its body may use the aux's indices."""
        outer = outer or _Scope()
        names = {}
        for p in d.params:
            self.binder(p, d.span, outer, names)
            names[p] = "arg"
        info = self.expr(d.body, outer.child(names))
        sym = Symbol("utility" if d.utility else "def", len(d.params), d, body_has_var=info.has_var)
        self.declare(d.name, sym, d.span)

    def decl_ConstraintDecl(self, d: ast.ConstraintDecl):
        scope, dim = self.index_spec(d.index, _Scope(), f"constraint '{d.name}'")
        self.constraint_body(d.body, scope)
        self.declare(d.name, Symbol("constraint", dim, d), d.span)

    def constraint_body(self, e, scope):
        if isinstance(e, ast.Compare):
            info = self.expr(e, scope)
            if any(op == "!=" for op in e.ops):
                self.error("'!=' cannot be a constraint", e.span, help="use '<=', '>=' or '=='")
            return
        if isinstance(e, ast.Implies):
            self.expect_sort(e.premise, scope, BOOL, "the premise of an implication")
            self.constraint_body(e.conclusion, scope)
            return
        if isinstance(e, ast.BoolOp):
            for part in e.operands:
                self.constraint_body(part, scope)
            return
        if isinstance(e, ast.Complements):
            for part in (e.left, e.right):
                if isinstance(part, ast.Compare):
                    self.constraint_body(part, scope)
                else:
                    self.expect_sort(part, scope, NUM, "a side of complements(...)")
            return
        self.error("a constraint must be a comparison, an implication '->', a disjunction 'or', "
                   "a conjunction 'and' or complements(a, b)", e.span)
        self.expr(e, scope)

    def decl_ObjectiveDecl(self, d: ast.ObjectiveDecl):
        self.objectives += 1
        if self.objectives > 1 and self.in_aux is None:
            self.error("only one objective is allowed", d.span)
        self.expect_sort(d.expr, _Scope(), NUM, "the objective")

    def decl_ReportDecl(self, d: ast.ReportDecl):
        if d.expr is None:
            sym = self.lookup(d.name)
            self.error(f"'report {d.name};' reports a param, but '{d.name}' is "
                       + (f"a {sym.kind}" if sym else "not declared")
                       + ("" if d.index is None else " (and it takes no index here)"), d.span,
                       help=f"write report {d.name}[...] = expression; or declare param {d.name} with named indices")
            return
        if d.export:  # ``report NAME;``: the param itself
            self.in_report = True
            try:
                self.index_spec(d.index, _Scope(), f"report '{d.name}'")
            finally:
                self.in_report = False
            return
        scope, dim = self.index_spec(d.index, _Scope(), f"report '{d.name}'")
        self.in_report = True
        try:
            self.expr(d.expr, scope)
        finally:
            self.in_report = False
        self.declare(d.name, Symbol("report", dim, d), d.span)

    def _report_use(self, name, span):
        if not self.in_report:
            self.error(f"report '{name}' is evaluated after the solve and can only be used in other reports",
                       span, help="use a def or a param for a value the model needs")

    def decl_AuxDecl(self, d: ast.AuxDecl):
        scope, dim = self.index_spec(d.index, _Scope(), f"aux '{d.name}'")
        sym = Symbol("aux", dim, d)
        self.declare(d.name, sym, d.span)
        saved = (self.local, self.in_aux, self.objectives)
        self.local, self.in_aux, self.objectives = {}, d.name, 0
        # An aux may read a later param that reads the aux back (R[h] = A[h].objective, a recurrence).
        provisional = [d2 for name, (k, d2) in self._later.items() if k > self._pos and self.lookup(name) is None]
        for d2 in provisional:
            self.table[d2.name] = Symbol("param", sum(len(it.binders) or 1 for it in d2.index.items), d2)
        self._cur_param, self._refs[d.name] = d.name, set()
        # Aux binders (scope) are visible to every item of the block.
        for item in d.items:
            if isinstance(item, ast.ObjectiveDecl) and item.tiebreak:
                self.expect_sort(item.expr, scope, NUM, "the tie-break objective")
            elif isinstance(item, ast.ObjectiveDecl):
                self.objectives += 1
                if self.objectives > 1:
                    self.error(f"aux '{d.name}' has more than one objective", item.span)
                self.expect_sort(item.expr, scope, NUM, "the objective")
            elif isinstance(item, ast.ConstraintDecl):
                inner, _ = self.index_spec(item.index, scope, f"constraint '{item.name}'")
                self.constraint_body(item.body, inner)
                self.declare(item.name, Symbol("constraint", 0, item), item.span)
            elif isinstance(item, ast.VarDecl):
                inner, vdim = self.index_spec(item.index, scope, f"var '{item.name}'")
                self._nonstrict(item)
                for op, e in item.bounds:
                    self.expect_sort(e, inner, NUM, f"a bound of var '{item.name}'", allow_var=False)
                if item.init is not None:
                    self.expect_sort(item.init, inner, NUM, f"the initial value of var '{item.name}'", allow_var=False)
                self.declare(item.name, Symbol("var", vdim, item), item.span)
                sym.aux_vars[item.name] = vdim
            elif isinstance(item, ast.DefDecl):
                self.decl_DefDecl(item, scope)
            else:
                self.item(item)
        if self.objectives == 0:
            self.error(f"aux '{d.name}' has no objective", d.span)
        self.local, self.in_aux, self.objectives = saved
        self._cur_param = None
        for d2 in provisional:
            self.table.pop(d2.name, None)

    # --------------------------------------------------------- expressions
    def unknown(self, name, span):
        self.error(f"unknown name '{name}'", span, help=did_you_mean(name, self.known_names() | set(BUILTINS)))

    def expect_sort(self, e, scope, sort, what, allow_var=True) -> _Info:
        info = self.expr(e, scope)
        if info.sort is not None and info.sort != sort:
            self.error(f"type mismatch: {what} must be a {sort}, but this is a {info.sort}", e.span)
        if not allow_var and info.has_var and not self.in_report:  # a report sees the solution as numbers
            self.error(f"{what} cannot depend on decision variables", e.span)
        return info

    def expr(self, e, scope: _Scope) -> _Info:
        return getattr(self, "ex_" + type(e).__name__)(e, scope)

    def ex_Num(self, e, scope):
        return _Info(NUM)

    def ex_Name(self, e: ast.Name, scope):
        local = scope.lookup(e.id)
        if local in ("index", "arg", "type"):
            return _Info(NUM)
        if local == "profile":
            return _Info(PROF)
        if local == "label":
            return _Info(LABEL)
        if local == "others":
            self.error(f"inside E[{e.id}[-i]](...) agent i's own type is not fixed, so '{e.id}' is not a "
                       "whole profile", e.span, help=f"write {e.id}[-i], or (t, {e.id}[-i]) with i's type t")
            return _Info(PROF)
        if local == "population":
            self.error(f"population '{e.id}' must be indexed, e.g. {e.id}[i]", e.span)
            return _Info(NUM)
        sym = self.lookup(e.id)
        if sym is None:
            self.unknown(e.id, e.span)
            return _Info(None)
        if sym.kind == "param":
            self._param_use(e.id, e.span)
        if sym.kind in ("param", "var"):
            if sym.dim != 0:
                self.error(f"{sym.kind} '{e.id}' needs {sym.dim} index(es)", e.span,
                           help=f"write {e.id}[{', '.join('…' for _ in range(sym.dim))}]")
            return _Info(NUM, sym.kind == "var")
        if sym.kind == "type":
            self.error(f"type '{e.id}' can only be used inside E[{e.id}](...)" +
                       (f" or inf{{{e.id} in [a, b]: ...}}" if sym.continuous else ""), e.span)
            return _Info(NUM)
        if sym.kind == "population":
            self.error(f"population '{e.id}' can only be used inside E[{e.id}](...)", e.span)
            return _Info(NUM)
        if sym.kind == "label":
            return _Info(LABEL)
        if sym.kind == "report":
            self._report_use(e.id, e.span)
            if sym.dim != 0:
                self.error(f"report '{e.id}' needs {sym.dim} index(es)", e.span)
            return _Info(None)
        self.error(f"'{e.id}' is a {sym.kind} and cannot be used as a value here", e.span)
        return _Info(None)

    def ex_Indexed(self, e: ast.Indexed, scope):
        if scope.lookup(e.base) in PROFILE_KINDS:
            return self._component(e, scope)
        has_var = False
        for a in e.args:
            info = self.index_arg(a, scope)
            has_var |= info.has_var
        if has_var:
            self.error("an index cannot depend on decision variables", e.span)
        nargs = sum(self._arg_dim(a, scope) for a in e.args)
        local = scope.lookup(e.base)
        if local == "population":
            sym = self.lookup(e.base)
            if sym is not None and nargs != sym.dim:
                self.error(f"population '{e.base}' takes {sym.dim} index(es), got {nargs}", e.span)
            return _Info(NUM)
        if local is not None:
            self.error(f"'{e.base}' is an index and cannot be indexed", e.base_span)
            return _Info(NUM)
        sym = self.lookup(e.base)
        if sym is None:
            self.unknown(e.base, e.base_span)
            return _Info(None)
        if sym.kind == "population":
            self.error(f"population '{e.base}' can only be used inside E[{e.base}](...)", e.span)
            return _Info(NUM)
        if sym.kind == "report":
            self._report_use(e.base, e.base_span)
            if nargs != sym.dim:
                self.error(f"wrong number of indices for report '{e.base}': expected {sym.dim}, got {nargs}",
                           e.span)
            return _Info(None)
        if sym.kind not in ("param", "var", "aux"):
            self.error(f"'{e.base}' is a {sym.kind} and cannot be indexed", e.base_span)
            return _Info(None)
        if sym.kind == "aux":
            self.error(f"aux '{e.base}' needs an attribute, e.g. {e.base}[...].objective", e.span)
        if sym.kind == "param":
            self._param_use(e.base, e.base_span)
        if nargs != sym.dim:
            self.error(f"wrong number of indices for {sym.kind} '{e.base}': expected {sym.dim}, got {nargs}",
                       e.span, notes=[f"'{e.base}' is declared at {sym.decl.span}"])
        return _Info(NUM, sym.kind == "var")

    def _component(self, e: ast.Indexed, scope) -> _Info:
        """``v[i]`` (agent i's type in the profile v) or ``v[-i]`` (the others' types)."""
        if len(e.args) != 1:
            self.error(f"a profile takes one index (an agent), got {len(e.args)}", e.span)
            return _Info(NUM)
        a = e.args[0]
        if isinstance(a, ast.Neg):
            self.expect_sort(a.operand, scope, NUM, "an agent", allow_var=False)
            return _Info(PROF)
        self.expect_sort(a, scope, NUM, "an agent", allow_var=False)
        return _Info(NUM)

    def ex_Replace(self, e: ast.Replace, scope):
        self.expect_sort(e.value, scope, NUM, "the replacing type in (r, v[-i])", allow_var=False)
        o = e.others
        if not (isinstance(o, ast.Indexed) and scope.lookup(o.base) in PROFILE_KINDS and len(o.args) == 1
                and isinstance(o.args[0], ast.Neg)):
            self.error("a profile with one agent's type replaced is written (r, v[-i]), with v a profile",
                       o.span)
            return _Info(PROF)
        self.expect_sort(o.args[0].operand, scope, NUM, "an agent", allow_var=False)
        return _Info(PROF)

    def ex_ExpectDist(self, e: ast.ExpectDist, scope):
        sym = self.lookup(e.dist)
        if sym is None:
            self.unknown(e.dist, e.dist_span)
            return _Info(NUM, True)
        slots = [k for k, a in enumerate(e.args) if a is None]
        if sym.kind != "param" or sym.dim != len(e.args):
            self.error(f"E[{e.binder} ~ {e.dist}[...]]: '{e.dist}' must be a param with {len(e.args)} index(es)",
                       e.dist_span)
            return _Info(NUM, True)
        if len(slots) != 1:
            self.error(f"E[{e.binder} ~ {e.dist}[...]]: exactly one index is '.', the outcome's position", e.span)
            return _Info(NUM, True)
        for a in e.args:
            if a is not None:
                self.expect_sort(a, scope, NUM, "an index of the distribution", allow_var=False)
        self.binder(e.binder, e.binder_span, scope, {})
        inner = scope.child({e.binder: "index"})
        info = self.expect_sort(e.body, inner, NUM, "the body of E[...]")
        return _Info(NUM, info.has_var)

    def ex_ExpectOthers(self, e: ast.ExpectOthers, scope):
        sym = self.lookup(e.subject)
        if sym is None:
            self.unknown(e.subject, e.subject_span)
            return _Info(NUM, True)
        if sym.kind != "type" or not sym.profile:
            self.error(f"E[{e.subject}[-i]]: '{e.subject}' must be a type per agent (type {e.subject}[i in N] "
                       "in V ~ f)", e.subject_span)
            return _Info(NUM, True)
        self.expect_sort(e.agent, scope, NUM, "the agent of E[v[-i]]", allow_var=False)
        inner = scope.child({e.subject: "others"})
        if e.condition is not None:
            self.expect_sort(e.condition, inner, BOOL, "the condition of E[...]", allow_var=False)
        info = self.expect_sort(e.body, inner, NUM, "the body of E[...]")
        return _Info(NUM, info.has_var)

    def _arg_dim(self, a, scope) -> int:
        """An index that names a product type (bound by E[...]) stands for all of its components."""
        if isinstance(a, ast.Name) and scope.lookup(a.id) == "type":
            sym = self.lookup(a.id)
            return sym.dim if sym is not None else 1
        return 1

    def ex_Attribute(self, e: ast.Attribute, scope):
        t = e.target
        if isinstance(t, ast.Indexed):
            base, args, bspan = t.base, t.args, t.base_span
        elif isinstance(t, ast.Name):
            base, args, bspan = t.id, (), t.span
        else:
            self.error("only an auxiliary problem has attributes", e.span)
            return _Info(NUM)
        sym = self.lookup(base)
        if sym is None:
            self.unknown(base, bspan)
            return _Info(NUM)
        if sym is not None and sym.kind == "aux":
            self._param_use(base, e.span)
        if sym.kind != "aux":
            self.error(f"'{base}' is a {sym.kind}; only an aux problem has attributes", bspan)
            return _Info(NUM)
        for a in args:
            if self.index_arg(a, scope).has_var:
                self.error("an index cannot depend on decision variables", a.span)
        if len(args) != sym.dim:
            self.error(f"wrong number of indices for aux '{base}': expected {sym.dim}, got {len(args)}", t.span)
        for a in e.args:
            self.expect_sort(a, scope, NUM, "an index", allow_var=False)
        if e.attr in AUX_ATTRS and e.attr not in sym.aux_vars:
            if e.args:
                self.error(f"'{e.attr}' of aux '{base}' is not indexed", e.span)
            return _Info(AUX_ATTRS[e.attr])
        if e.attr not in sym.aux_vars:
            choices = list(AUX_ATTRS) + list(sym.aux_vars)
            self.error(f"aux '{base}' has no attribute '{e.attr}'", e.span,
                       help=did_you_mean(e.attr, choices) or f"attributes: {', '.join(choices)}")
        elif sym.aux_vars[e.attr] != len(e.args):
            want = sym.aux_vars[e.attr]
            self.error(f"variable '{e.attr}' of aux '{base}' takes {want} index(es), got {len(e.args)}", e.span,
                       help=f"write {base}{'[…]' if sym.dim else ''}.{e.attr}[{', '.join('…' for _ in range(want))}]"
                       if want else None)
        return _Info(NUM)

    def ex_Call(self, e: ast.Call, scope):
        if e.func in PRIOR_FNS and self.lookup(e.func) is None and scope.lookup(e.func) is None:
            return self._prior_call(e, scope)
        if e.func in BUILTINS:
            infos = [self.expect_sort(a, scope, NUM, f"an argument of {e.func}()") for a in e.args]
        else:
            infos = [self.index_arg(a, scope, f"an argument of {e.func}()") for a in e.args]
        has_var = any(i.has_var for i in infos)
        if e.func in BUILTINS:
            lo, hi = BUILTINS[e.func]
            n = len(e.args)
            if n < lo or (hi is not None and n > hi):
                want = f"{lo}" if lo == hi else f"at least {lo}"
                self.error(f"{e.func}() takes {want} argument(s), got {n}", e.span)
            if e.func in DATA_ONLY and has_var:
                self.error(f"{e.func}() of a decision variable is not allowed: its argument must be data", e.span)
            return _Info(NUM, has_var)
        sym = self.lookup(e.func)
        if sym is None:
            self.unknown(e.func, e.span)
            return _Info(None)
        if sym.kind not in ("def", "utility"):
            self.error(f"'{e.func}' is a {sym.kind}, not a function", e.span,
                       help=f"index it with {e.func}[...]" if sym.kind in ("param", "var") else None)
            return _Info(None)
        if len(e.args) != sym.dim:
            self.error(f"{e.func}() takes {sym.dim} argument(s), got {len(e.args)}", e.span,
                       notes=[f"'{e.func}' is defined at {sym.decl.span}"])
        return _Info(NUM, has_var or sym.body_has_var)

    def _prior_call(self, e: ast.Call, scope) -> _Info:
        """``cdf(v)``, ``pdf(v, x)``, ``phi(v)``, ``phibar(v)``, ``iron(v, g[, x])`` of a continuous type v."""
        lo, hi = PRIOR_FNS[e.func]
        n = len(e.args)
        form = f"{e.func}(v{', g' if e.func == 'iron' else ''}[, x])"
        if n < lo or n > hi:
            self.error(f"{e.func}() takes {lo} or {hi} arguments ({form}), got {n}", e.span)
            return _Info(NUM)
        first = e.args[0]
        sym = self.lookup(first.id) if isinstance(first, ast.Name) else None
        if sym is None or sym.kind != "type" or not sym.continuous:
            self.error(f"the first argument of {e.func}() must name a continuous type (type v in [a, b] ~ ...)",
                       first.span, help=f"{form}: the prior of v, at v's value or at the point x")
            for a in e.args[1:]:
                self.expr(a, scope)
            return _Info(NUM)
        name = first.id
        rest = list(e.args[1:])
        if e.func == "iron":
            self.expect_sort(rest.pop(0), scope.child({name: "type"}), NUM, "the function ironed by iron()",
                             allow_var=False)
        if rest:
            self.expect_sort(rest[0], scope, NUM, f"the point of {e.func}()", allow_var=False)
        elif scope.lookup(name) is None:
            self.error(f"{e.func}({name}{', ...' if e.func == 'iron' else ''}) needs the value of '{name}': use it "
                       f"inside E[{name}](...) or inf{{{name} in [a, b]: ...}}, or give the point as the last "
                       "argument", e.span)
        return _Info(NUM)

    def ex_Infimum(self, e: ast.Infimum, scope):
        if len(e.binders) != 1:
            self.error(f"{e.op}{{...}} binds one name over an interval", e.span)
        if not isinstance(e.set, ast.IntervalSet):
            self.error(f"{e.op}{{...}} ranges over a real interval [a, b]", e.set.span,
                       help="for the least element of a finite set write min{i in S: cond} i")
        self._interval_ok = True
        try:
            self.set_expr(e.set, scope)
        finally:
            self._interval_ok = False
        b = e.binders[0]
        sym = self.lookup(b)
        if sym is not None and sym.kind == "type" and sym.continuous and scope.lookup(b) is None:
            kind = "type"  # the binder is the continuous type's variable: cdf(v), phi(v), ... are at it
        else:
            self.binder(b, e.span, scope, {})
            kind = "index"
        self.expect_sort(e.cond, scope.child({b: kind}), BOOL, f"the condition of {e.op}{{...}}", allow_var=False)
        return _Info(NUM)

    def ex_BinOp(self, e: ast.BinOp, scope):
        a = self.expect_sort(e.left, scope, NUM, f"an operand of '{e.op}'")
        b = self.expect_sort(e.right, scope, NUM, f"an operand of '{e.op}'")
        return _Info(NUM, a.has_var or b.has_var)

    def ex_Neg(self, e, scope):
        return _Info(NUM, self.expect_sort(e.operand, scope, NUM, "the operand of '-'").has_var)

    def ex_Compare(self, e: ast.Compare, scope):
        hv = False
        infos = [self.expr(o, scope) for o in e.operands]
        labels = any(i.sort == LABEL for i in infos)
        for o, info in zip(e.operands, infos):
            hv |= info.has_var
            if labels and info.sort in (LABEL, NUM, None):
                continue
            if info.sort is not None and info.sort != NUM:
                self.error(f"type mismatch: an operand of a comparison must be a number, but this is a {info.sort}",
                           o.span)
        if labels and any(op not in ("==", "!=") for op in e.ops):
            self.error("labels are compared with == and != only (they have no order)", e.span)
        return _Info(BOOL, hv)

    def ex_BoolOp(self, e: ast.BoolOp, scope):
        hv = False
        for o in e.operands:
            hv |= self.expect_sort(o, scope, BOOL, f"an operand of '{e.op}'").has_var
        return _Info(BOOL, hv)

    def ex_Not(self, e, scope):
        return _Info(BOOL, self.expect_sort(e.operand, scope, BOOL, "the operand of 'not'").has_var)

    def ex_Implies(self, e, scope):
        self.error("an implication '->' can only be a whole constraint", e.span)
        return _Info(BOOL, True)

    def ex_Complements(self, e, scope):
        self.error("complements(...) can only be a whole constraint", e.span)
        return _Info(BOOL, True)

    def ex_Conditional(self, e: ast.Conditional, scope):
        self.expect_sort(e.cond, scope, BOOL, "the condition of if-then-else", allow_var=False)
        a = self.expr(e.then, scope)
        b = self.expr(e.orelse, scope)
        sorts = {i.sort for i in (a, b)} - {None}
        if len(sorts) > 1:
            self.error("type mismatch: the branches of if-then-else must both be numbers or both be conditions",
                       e.span)
        return _Info(sorts.pop() if len(sorts) == 1 else None, a.has_var or b.has_var)

    def ex_Iterate(self, e: ast.Iterate, scope):
        inner, dim = self.index_spec(e.index, scope, f"{e.op}{{...}}")
        body_sort, sort, var_ok = ITERATED[e.op]
        what = f"the body of {e.op}{{...}}"
        info = self.expect_sort(e.body, inner, body_sort, what, allow_var=var_ok)
        if e.op in ("argmax", "argmin") and dim != 1:
            self.error(f"{e.op}{{...}} needs exactly one index name (its result is that index's value), "
                       f"got {dim}", e.index.span)
        if e.op in ("argmax", "argmin") and dim == 1:
            binder = e.index.items[0].binders[0] if e.index.items[0].binders else None
            kind = inner.lookup(binder) if binder else None
            if kind == "label":
                sort = LABEL  # the result is an element of a label set
            elif kind == "profile":
                sort = PROF
        return _Info(sort, info.has_var and var_ok)

    def ex_Expect(self, e: ast.Expect, scope):
        sym = self.lookup(e.subject)
        if sym is None:
            self.unknown(e.subject, e.subject_span)
            return _Info(NUM, True)
        if sym.kind not in ("type", "population"):
            self.error(f"E[{e.subject}]: '{e.subject}' must be a declared type or population, not a {sym.kind}",
                       e.subject_span)
            return _Info(NUM, True)
        inner = scope.child({e.subject: "profile" if sym.profile else sym.kind})
        if e.condition is not None:
            self.expect_sort(e.condition, inner, BOOL, "the condition of E[...]", allow_var=False)
        info = self.expect_sort(e.body, inner, NUM, "the body of E[...]")
        if sym.continuous and info.has_var:
            self.error(f"E[{e.subject}](...) over the continuous type '{e.subject}' is computed by quadrature, "
                       "so its body cannot depend on decision variables", e.body.span,
                       help=f"declare the type over a finite grid to optimise over it, e.g. type {e.subject} in "
                            f"1..K ~ f with param f[k in 1..K] its probabilities")
        return _Info(NUM, info.has_var)

    def ex_ArrayLit(self, e, scope):
        self.error("an array is only allowed as the value of an indexed param", e.span)
        return _Info(None)


def check(module: ast.Module) -> SymbolTable:
    """Check ``module``; return its symbol table or raise with every diagnostic."""
    return Checker(module).run()

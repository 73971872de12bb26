"""Compile IR SymPy templates into fast Python closures and evaluate them.

One walker serves three uses, which differ only in the :class:`Target`:

* binding data (param defaults, set bounds): numbers only;
* building the Pyomo model (:mod:`mechdsl.compilers.pyomo.model`): variables
  are Pyomo ``VarData`` and the result is a Pyomo expression;
* verification: variables are the solution's numbers.

A template is compiled once (``compile(expr) -> fn(env, pol)``) and then called
once per index binding; ``env`` maps index symbols to values.  ``pol`` is the
*polarity* of the position being evaluated: +1 where a larger value is better
for the model (a maximised objective, the large side of ``>=``), -1 where a
smaller one is, 0 when unknown.  The Pyomo target uses it to replace
``min``/``max`` by an exact epigraph/hypograph where that is valid.
"""
from __future__ import annotations

import functools
import itertools
import math
import operator
from typing import Any, Callable

import numpy as np
import sympy as sp

from . import continuous
from .errors import DataError, InternalError
from .ir.sym import (ARG_TOL, HOLE, AuxRef, Component, DomainNode, Expectation, IEnum, IFilter, IfThenElse,
                     IList, INamed, Infimum, IPower, IProduct, IRange, Iron, IterAll, IterAny, IterArgMax,
                     IterArgMin, IterMax, IterMin, IterProd, IterSum, Label, Others, OthersExpectation, PriorFn,
                     Replace, ReportAt)
from .span import Span

Fn = Callable[[dict, int], Any]

_MAX_DOUBLE = 1.7976931348623157e308
MAX_SET_ELEMENTS = 10_000_000  #: a set (a range, a product) larger than this is an error, never materialised


def canon(v):
    """Canonical index value: integral floats become ints."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, (sp.Integer,)):
        return int(v)
    if isinstance(v, sp.Float):
        f = float(v)
        return int(f) if f.is_integer() else f
    return v


class EvalError(DataError):
    """A value could not be computed (index outside its set, log of a negative, ...).

    ``name`` is the indexed symbol at fault when known, ``span`` the declaration
    being evaluated; :mod:`mechdsl.api` uses both to point at the source.
    """

    def __init__(self, message: str, name: str | None = None, span=None):
        super().__init__(message)
        self.name = name
        self.span = span

    def again(self, message: str, name: str | None = None, span=None) -> "EvalError":
        """The same error (its class and what it carries, e.g. an aux result) with a new message and place."""
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        EvalError.__init__(new, message, name, span)
        return new


class VectorUnsupported(Exception):
    """Raised in vector mode for a construct only the scalar path handles (the caller falls back)."""


class Target:
    """Numbers: the default target.  Subclasses override :meth:`var` and the functions."""

    numeric = True
    vector = False

    def var(self, name: str, key: tuple):
        raise EvalError(f"variable '{name}' cannot be used here")

    def sqrt(self, x):
        return math.sqrt(x) if x >= 0 else math.nan

    def log(self, x):
        return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)

    def exp(self, x):
        try:
            return math.exp(x)
        except OverflowError:
            return math.inf

    def abs(self, x):
        return abs(x)

    def pow(self, b, e):
        try:
            r = b ** e
        except (OverflowError, ZeroDivisionError):
            return math.inf
        return r if not isinstance(r, complex) else math.nan

    def sum(self, values: list):
        return math.fsum(values) if values else 0

    def max(self, args, pol):
        return max(args)

    def min(self, args, pol):
        return min(args)


def shown(e) -> str:
    """A SymPy expression as the spec would write it (``^`` for powers)."""
    if isinstance(e, sp.Basic):
        from .ir.printer import ExprPrinter

        try:
            return ExprPrinter().doprint(e).replace("**", "^")
        except Exception:  # noqa: BLE001 - a message must never fail to print
            pass
    return str(e).replace("**", "^")


class DataTarget(Target):
    """Numbers for binding data (param values, set bounds): an arithmetic error is an error, never a NaN.

    The error names the operation, the sub-expression at fault and its value, so that ``param a =
    1/(K - 1)`` with ``K = 1`` says "division by zero: K - 1 = 0" at the param.
    """

    def checked_sqrt(self, x, arg):
        if x < 0:
            raise EvalError(f"sqrt of a negative number: {shown(arg)} = {x:g}")
        return math.sqrt(x)

    def checked_log(self, x, arg):
        if x <= 0:
            raise EvalError(f"log of a nonpositive number: {shown(arg)} = {x:g}")
        return math.log(x)

    def checked_exp(self, x, arg):
        try:
            return math.exp(x)
        except OverflowError:
            raise EvalError(f"exp overflows a double: {shown(arg)} = {x:g}") from None

    def checked_inv(self, v, arg):
        if v == 0:
            raise EvalError(f"division by zero: {shown(arg)} = 0")
        return 1 / v

    def checked_pow(self, b, e, node):
        try:
            r = b ** e
        except ZeroDivisionError:
            raise EvalError(f"division by zero: {shown(node)} with {shown(node.args[0])} = 0") from None
        except OverflowError:
            raise EvalError(f"{shown(node)} overflows a double ({b:g}^{e:g})") from None
        if isinstance(r, complex):
            raise EvalError(f"{shown(node)} is not a real number ({b:g}^{e:g})")
        if (isinstance(r, float) and not math.isfinite(r)) or (isinstance(r, int) and abs(r) > _MAX_DOUBLE):
            raise EvalError(f"{shown(node)} overflows a double ({b:g}^{e:g})")
        return r

    def sum(self, values: list):
        r = math.fsum(values) if values else 0
        if isinstance(r, float) and not math.isfinite(r):
            raise EvalError("a sum overflows a double")
        return r


class Evaluator:
    """Compiles SymPy templates against a bound :class:`~mechdsl.instance.Instance`."""

    def __init__(self, inst, target: Target | None = None):
        self.inst = inst
        self.target = target or Target()
        self._cache: dict[int, Fn] = {}
        self._set_cache: dict[Any, list] = {}
        self._var_names = inst.var_names

    # ----------------------------------------------------------- public API
    def compile(self, expr) -> Fn:
        key = id(expr)
        fn = self._cache.get(key)
        if fn is None:
            fn = self._compile(expr)
            self._cache[key] = (fn, expr)  # keep expr alive so its id stays unique
            return fn
        return fn[0]

    def value(self, expr, env: dict | None = None, pol: int = 0):
        return self.compile(expr)(env or {}, pol)

    def truth(self, cond, env: dict) -> bool:
        if cond is None or cond is sp.true:
            return True
        return bool(self.compile(cond)(env, 0))

    def has_var(self, expr) -> bool:
        """Whether ``expr`` mentions a decision variable."""
        if not isinstance(expr, sp.Basic):
            return False
        for s in expr.atoms(sp.Symbol, sp.Indexed):
            name = s.base.label.name if isinstance(s, sp.Indexed) else s.name
            if name in self._var_names:
                return True
        return False

    def iterate(self, items, cond, env: dict):
        """Yield ``env`` (mutated in place) for every binding of a domain."""
        yield from self._iter_items(items, 0, cond, env)

    def domain_keys(self, domain, env: dict | None = None) -> list[tuple]:
        """All index tuples of a :class:`~mechdsl.ir.nodes.Domain`."""
        if domain is None:
            return [()]
        env = dict(env or {})
        binders = domain.binders
        if domain.cond is None or domain.cond is sp.true:
            bset = set(binders)
            if not any(node.free_symbols & bset for _, node in domain.items):  # a plain product: no iteration
                parts = [self._eval_set(node, env) for _, node in domain.items]
                for (bs, _), part in zip(domain.items, parts):
                    if part and len(part[0]) != len(bs):
                        raise EvalError(f"cannot bind {len(bs)} index name(s) to elements of dimension "
                                        f"{len(part[0])}")
                if len(parts) == 1:
                    return list(parts[0])
                return [tuple(itertools.chain.from_iterable(p)) for p in itertools.product(*parts)]
        return [tuple(env[b] for b in binders) for _ in self.iterate(domain.items, domain.cond, env)]

    def set_elements(self, node, env: dict | None = None) -> list[tuple]:
        return self._eval_set(node, env or {})

    # ------------------------------------------------------------- domains
    def _iter_items(self, items, k, cond, env):
        if k == len(items):
            if cond is None or cond is sp.true or self.compile(cond)(env, 0):
                yield env
            return
        binders, node = items[k]
        for elem in self._eval_set(node, env):
            if len(elem) != len(binders):
                raise EvalError(f"cannot bind {len(binders)} index name(s) to elements of dimension {len(elem)}")
            for b, v in zip(binders, elem):
                env[b] = v
            yield from self._iter_items(items, k + 1, cond, env)
        for b in binders:
            env.pop(b, None)

    def _eval_set(self, node, env) -> list[tuple]:
        free = [s for s in node.free_symbols if s in env]
        key = (id(node), tuple(env[s] for s in free))
        hit = self._set_cache.get(key)
        if hit is not None:
            return hit[0]
        out = self._eval_set_uncached(node, env)
        self._set_cache[key] = (out, node)
        return out

    def _eval_set_uncached(self, node, env) -> list[tuple]:
        if isinstance(node, INamed):
            return self.inst.set_elements(node.name)
        if isinstance(node, IRange):
            lo, hi = self.value(node.lo, env), self.value(node.hi, env)
            for v, which in ((lo, "lower"), (hi, "upper")):
                if not isinstance(v, (int, float)) or not math.isfinite(v) or not float(v).is_integer():
                    raise EvalError(f"the {which} bound of the range {shown(node.lo)}..{shown(node.hi)} is {v:g}, "
                                    "not an integer")
            size = int(hi) - int(lo) + 1
            if size > MAX_SET_ELEMENTS:
                text, value = f"{shown(node.lo)}..{shown(node.hi)}", f"{int(lo)}..{int(hi)}"
                both = text if text == value else f"{text} = {value}"
                raise EvalError(f"the range {both} has {size:.3g} elements; sets are limited to "
                                f"{MAX_SET_ELEMENTS:.0e} elements")
            return [(i,) for i in range(int(lo), int(hi) + 1)]
        if isinstance(node, IEnum):
            return [tuple(canon(x) for x in t) for t in node.args]
        if isinstance(node, IList):
            out = []
            for a in node.args:
                out.append((canon(self.value(a, env)),))
            return out
        if isinstance(node, IProduct):
            parts = [self._eval_set(f, env) for f in node.args]
            size = math.prod(len(p) for p in parts)
            if size > MAX_SET_ELEMENTS:
                raise EvalError(f"the product set {shown(node)} has {size:.3g} elements; sets are limited to "
                                f"{MAX_SET_ELEMENTS:.0e} elements")
            return [tuple(itertools.chain.from_iterable(p)) for p in itertools.product(*parts)]
        if isinstance(node, IPower):
            base = self._eval_set(node.base, env)
            agents = self._eval_set(node.agents, env)
            if base and len(base[0]) != 1:
                raise EvalError(f"a power set V^N needs a set V of dimension 1 ({shown(node)})")
            digits = len(agents) * math.log10(len(base)) if base else 0.0
            if digits > math.log10(MAX_SET_ELEMENTS):
                raise EvalError(f"the profile set {shown(node.base)}^{shown(node.agents)} has "
                                f"{len(base)}^{len(agents)} = about 1e{digits:.0f} elements; sets are limited to "
                                f"{MAX_SET_ELEMENTS:.0e} elements")
            values = [b[0] for b in base]
            return [(p,) for p in itertools.product(values, repeat=len(agents))]
        if isinstance(node, IFilter):
            binders, base, cond = node.args
            out = []
            for elem in self._eval_set(base, env):
                inner = dict(env)
                inner.update(zip(binders, elem))
                if self.compile(cond)(inner, 0):
                    out.append(elem)
            return out
        raise InternalError(f"unknown set node {type(node).__name__}")

    # ------------------------------------------------------------ compiler
    def _compile(self, e) -> Fn:
        t = self.target
        if isinstance(e, (int, float)):
            v = e
            return lambda env, pol: v
        if e.is_Number:
            v = canon(e) if e.is_Integer else float(e)
            return lambda env, pol: v
        if e is sp.true or e is sp.false:
            v = bool(e)
            return lambda env, pol: v
        if isinstance(e, sp.Symbol):
            return self._symbol(e)
        if isinstance(e, sp.Indexed):
            return self._indexed(e)
        if isinstance(e, sp.Add):
            fs = [self.compile(a) for a in e.args]
            if len(fs) == 2:
                f0, f1 = fs
                return lambda env, pol: f0(env, pol) + f1(env, pol)
            tsum = t.sum
            return lambda env, pol: tsum([f(env, pol) for f in fs])
        if isinstance(e, sp.Mul):
            return self._mul(e)
        if isinstance(e, sp.Pow):
            return self._pow(e)
        if isinstance(e, sp.log):
            f, arg = self.compile(e.args[0]), e.args[0]
            if isinstance(t, DataTarget):
                return lambda env, pol: t.checked_log(f(env, 0), arg)
            return lambda env, pol: t.log(f(env, 0))
        if isinstance(e, sp.exp):
            f, arg = self.compile(e.args[0]), e.args[0]
            if isinstance(t, DataTarget):
                return lambda env, pol: t.checked_exp(f(env, 0), arg)
            return lambda env, pol: t.exp(f(env, 0))
        if isinstance(e, sp.Abs):
            f = self.compile(e.args[0])
            return lambda env, pol: t.abs(f(env, 0))
        if isinstance(e, (sp.Max, sp.Min)):
            fs = [self.compile(a) for a in e.args]
            op = t.max if isinstance(e, sp.Max) else t.min
            return lambda env, pol: op([f(env, pol) for f in fs], pol)
        if isinstance(e, (IterSum, IterProd)):
            return self._iter(e)
        if isinstance(e, (IterMax, IterMin, IterArgMax, IterArgMin, IterAll, IterAny)):
            return self._extremum(e)
        if isinstance(e, IfThenElse):
            return self._ifelse(e)
        if isinstance(e, (sp.floor, sp.ceiling)):
            f, arg = self.compile(e.args[0]), e.args[0]
            vec = np.floor if isinstance(e, sp.floor) else np.ceil
            one = math.floor if isinstance(e, sp.floor) else math.ceil

            def rounding(env, pol):
                v = f(env, 0)
                if isinstance(v, np.ndarray):
                    return vec(v)
                if not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise EvalError(f"{type(e).__name__}() of {shown(arg)} = {v} is not a finite number")
                return one(v)
            return rounding
        if isinstance(e, sp.Mod):
            fa, fb, divisor = self.compile(e.args[0]), self.compile(e.args[1]), e.args[1]

            def mod(env, pol):
                a, b = fa(env, 0), fb(env, 0)
                if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                    with np.errstate(all="ignore"):
                        return np.mod(a, b)
                if b == 0:
                    raise EvalError(f"mod by zero: {shown(divisor)} = 0")
                return a % b
            return mod
        if isinstance(e, Expectation):
            return self._expect(e)
        if isinstance(e, PriorFn):
            return self._prior_fn(e)
        if isinstance(e, Iron):
            return self._iron(e)
        if isinstance(e, Infimum):
            return self._infimum(e)
        if isinstance(e, OthersExpectation):
            return self._expect_others(e)
        if isinstance(e, (Component, Others, Replace)):
            return self._profile_op(e)
        if isinstance(e, ReportAt):
            return self._report_at(e)
        if isinstance(e, Label):
            name = e.args[0].name
            return lambda env, pol: name
        if isinstance(e, AuxRef):
            return self._auxref(e)
        if isinstance(e, sp.core.relational.Relational):
            return self._relational(e)
        if isinstance(e, (sp.And, sp.Or)):
            fs = [self.compile(a) for a in e.args]
            if t.vector:
                op = np.logical_and if isinstance(e, sp.And) else np.logical_or  # broadcasting, pairwise
                return lambda env, pol: functools.reduce(op, [np.asarray(f(env, 0)) for f in fs])
            if isinstance(e, sp.And):
                return lambda env, pol: all(f(env, 0) for f in fs)
            return lambda env, pol: any(f(env, 0) for f in fs)
        if isinstance(e, sp.Not):
            f = self.compile(e.args[0])
            if t.vector:
                return lambda env, pol: np.logical_not(f(env, 0))
            return lambda env, pol: not f(env, 0)
        if e is sp.pi or e is sp.E:
            v = float(e)
            return lambda env, pol: v
        if isinstance(e, sp.re):  # SymPy writes re(K) where it cannot assume K real; every value here is real
            return self.compile(e.args[0])
        if isinstance(e, sp.im):
            return lambda env, pol: 0
        if isinstance(e, sp.sign):
            f = self.compile(e.args[0])
            return lambda env, pol: (lambda v: (v > 0) - (v < 0))(f(env, 0))
        raise InternalError(f"evaluator: unsupported expression node {type(e).__name__}: {e}")

    def _symbol(self, s: sp.Symbol) -> Fn:
        inst, name = self.inst, s.name
        if name in self._var_names:
            target = self.target

            def var_or_env(env, pol):
                if s in env:
                    return env[s]
                return target.var(name, ())
            return var_or_env

        def lookup(env, pol):
            if s in env:
                return env[s]
            return inst.scalar(name)
        return lookup

    def _indexed(self, e: sp.Indexed) -> Fn:
        label = e.base.label
        name = label.name
        idx = [self.compile(a) for a in e.indices]
        inst, target = self.inst, self.target
        if target.vector:
            is_var = name in self._var_names

            def vlookup(env, pol):
                key = flat_key(tuple(f(env, 0) for f in idx))
                if label in env:
                    raise VectorUnsupported("population counts")
                if not any(isinstance(k, np.ndarray) for k in key):
                    key = flat_key(tuple(canon(k) for k in key))
                    return target.var(name, key) if is_var else inst.indexed(name, key)
                return target.dense(name, is_var, key)
            return vlookup
        if name in self._var_names:
            def var(env, pol):
                return target.var(name, flat_key(tuple(canon(f(env, 0)) for f in idx)))
            return var

        def lookup(env, pol):
            key = flat_key(tuple(canon(f(env, 0)) for f in idx))
            if label in env:  # a population's counts, bound by E[...]
                counts = env[label]
                try:
                    return counts[key]
                except KeyError:
                    raise EvalError(f"{name}[{_fmt_key(key)}] is outside the population's index set") from None
            return inst.indexed(name, key)
        return lookup

    def _mul(self, e: sp.Mul) -> Fn:
        const = [self.compile(a) for a in e.args if not self.has_var(a)]
        varf = [self.compile(a) for a in e.args if self.has_var(a)]
        if self.target.vector:  # numbers or arrays: no polarity, no shortcuts
            fs = const + varf
            return lambda env, pol: _prod(f(env, 0) for f in fs)
        if not varf:
            return lambda env, pol: _prod(f(env, 0) for f in const)
        if len(varf) == 1:
            (g,) = varf

            def mul1(env, pol):
                c = _prod(f(env, 0) for f in const)
                if c == 0:
                    return 0
                return c * g(env, pol * (1 if c > 0 else -1))
            return mul1

        def muln(env, pol):
            c = _prod(f(env, 0) for f in const)
            if c == 0:
                return 0
            r = c
            for g in varf:
                r = r * g(env, 0)
            return r
        return muln

    def _pow(self, e: sp.Pow) -> Fn:
        b, x = e.args
        t = self.target
        fb = self.compile(b)
        if isinstance(t, DataTarget):
            if x == sp.Rational(1, 2):
                return lambda env, pol: t.checked_sqrt(fb(env, 0), b)
            if x == -1:
                return lambda env, pol: t.checked_inv(fb(env, 0), b)
            fx = self.compile(x)
            return lambda env, pol: t.checked_pow(fb(env, 0), fx(env, 0), e)
        if x == sp.Rational(1, 2):
            return lambda env, pol: t.sqrt(fb(env, 0))
        if x == -1 and t.vector:
            def vinv(env, pol):
                with np.errstate(divide="ignore", invalid="ignore"):
                    return 1.0 / np.asarray(fb(env, 0), dtype=float)
            return vinv
        if x == -1:
            def inv(env, pol):
                v = fb(env, 0)
                if isinstance(v, (int, float)) and v == 0:
                    return math.nan if t.numeric else _div_zero()
                return 1 / v
            return inv
        if x == 1:
            return fb
        fx = self.compile(x)
        return lambda env, pol: t.pow(fb(env, 0), fx(env, 0))

    def _iter(self, e) -> Fn:
        body, dnode, cond = e.args
        items = tuple((tuple(pair[0]), pair[1]) for pair in dnode.args[0])
        cond = None if cond is sp.true else cond
        fb = self.compile(body)
        is_sum = isinstance(e, IterSum)

        def run(env, pol):
            env2 = dict(env)
            vals = [fb(env2, pol if is_sum else 0) for _ in self._iter_items(items, 0, cond, env2)]
            return self.target.sum(vals) if is_sum else _prod(vals)
        return run

    def _extremum(self, e) -> Fn:
        body, dnode, cond = e.args
        items = tuple((tuple(pair[0]), pair[1]) for pair in dnode.args[0])
        binders = [b for bs, _ in items for b in bs]
        cond = None if cond is sp.true else cond
        fb = self.compile(body)
        kind = type(e).__name__
        target = self.target

        if isinstance(e, (IterAll, IterAny)):
            want = isinstance(e, IterAll)

            def quantified(env, pol):
                env2 = dict(env)
                vals = [fb(env2, 0) for _ in self._iter_items(items, 0, cond, env2)]
                if any(isinstance(v, np.ndarray) for v in vals):
                    op = np.logical_and if want else np.logical_or
                    return functools.reduce(op, vals, np.bool_(want))
                return all(vals) if want else any(vals)
            return quantified

        if isinstance(e, (IterMax, IterMin)):
            op = target.max if isinstance(e, IterMax) else target.min

            def extreme(env, pol):
                env2 = dict(env)
                vals = [fb(env2, pol) for _ in self._iter_items(items, 0, cond, env2)]
                if not vals:
                    raise EvalError(f"{'max' if isinstance(e, IterMax) else 'min'}{{...}} over an empty set "
                                    f"({shown(e)})")
                return vals[0] if len(vals) == 1 else op(vals, pol)
            return extreme

        sign = 1.0 if isinstance(e, IterArgMax) else -1.0

        def arg(env, pol):
            env2 = dict(env)
            best, best_v = None, None
            for _ in self._iter_items(items, 0, cond, env2):
                v = fb(env2, 0)
                if isinstance(v, np.ndarray):
                    raise VectorUnsupported(kind)
                if not isinstance(v, (int, float)):
                    raise EvalError(f"{kind[4:].lower()}{{...}} needs a number, not {v}")
                if best is None or sign * (v - best_v) > ARG_TOL * max(1.0, abs(best_v)):
                    best, best_v = env2[binders[0]], v
            if best is None:
                raise EvalError(f"{kind[4:].lower()}{{...}} over an empty set ({shown(e)})")
            return best
        return arg

    def _ifelse(self, e) -> Fn:
        fc, fa, fb = (self.compile(a) for a in e.args)

        def choose(env, pol):
            c = fc(env, 0)
            if isinstance(c, np.ndarray):
                try:  # both branches at once; a branch that fails where it is not taken: one by one
                    a, b = fa(env, pol), fb(env, pol)
                except EvalError:
                    raise VectorUnsupported("a branch of if-then-else fails on some bindings") from None
                if not all(isinstance(x, (int, float, np.ndarray, np.number)) for x in (a, b)):
                    raise VectorUnsupported("if-then-else over symbolic values")
                return np.where(c, a, b)
            return fa(env, pol) if c else fb(env, pol)
        return choose

    # ------------------------------------------------------ continuous priors
    def _along(self, expr, x: sp.Symbol):
        """``expr`` as a function of the array bound to ``x`` (and the scalars of env): vectorised where the
        form allows, else point by point."""
        vec_ev = self if self.target.vector else self._vector_evaluator()
        fv = vec_ev.compile(expr)
        fs = self.compile(expr)

        def run(env, xs):
            env2 = dict(env)
            env2[x] = xs
            try:
                out = fv(env2, 0)
                if isinstance(out, np.ndarray) and out.shape == np.shape(xs):
                    return out
                return np.broadcast_to(np.asarray(out, dtype=float), np.shape(xs))
            except VectorUnsupported:
                out = []
                for xv in np.asarray(xs, dtype=float).reshape(-1):
                    env2[x] = float(xv)
                    out.append(fs(env2, 0))
                return np.asarray(out, dtype=float).reshape(np.shape(xs))
        return run

    def _vector_evaluator(self):
        ev = getattr(self, "_vec_ev", None)
        if ev is None:
            ev = self._vec_ev = Evaluator(self.inst, VecTarget(self.inst))
        return ev

    def _truth_vec(self, cond, x: sp.Symbol, tol: float = continuous.CMP_TOL):
        """A condition as a vectorised function of x, and its margin (a function whose sign is the truth, for
        a comparison; else None).  A comparison holds within a relative CMP_TOL, so that rounding does not
        decide it where the two sides are equal."""
        if isinstance(cond, sp.core.relational.Relational) and cond.rel_op in ("<", "<=", ">", ">="):
            fl, fr = self._along(cond.lhs, x), self._along(cond.rhs, x)
            big = cond.rel_op in (">", ">=")

            def margin(env, xs):
                a, b = fl(env, xs), fr(env, xs)
                slack = tol * np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
                return (a - b + slack) if big else (b - a + slack)
            return (lambda env, xs: margin(env, xs) >= 0), margin
        fc = self._along(cond, x)
        return (lambda env, xs: fc(env, xs) != 0), None

    def _prior(self, name: str) -> "continuous.Prior":
        prior = self.inst.priors.get(name)
        if prior is None:
            raise EvalError(f"'{name}' is not a continuous type")
        return prior

    def _prior_fn(self, e) -> Fn:
        kind, t, x = e.args
        fx = self.compile(x)
        method = kind.name

        def run(env, pol):
            prior = self._prior(t.name)
            xv = fx(env, 0)
            try:
                out = getattr(prior, method)(xv)
            except continuous.PriorError as exc:
                raise EvalError(f"{method}({t.name}, ...): {exc}") from None
            if np.ndim(out) == 0:
                out = float(out)
                if not math.isfinite(out):
                    raise EvalError(f"{method}({t.name}, {xv:g}) is not a finite number (the density is 0 there, "
                                    "or the point is outside the support)")
            return out
        return run

    def _iron(self, e) -> Fn:
        t, g, arg, x = e.args
        fg = self._along(g, arg)
        fx = self.compile(x)
        free = sorted(_value_symbols(g) - {arg}, key=lambda s: s.name)  # what g's value depends on besides arg
        cache: dict = {}

        def run(env, pol):
            prior = self._prior(t.name)
            key = tuple(env.get(s) for s in free)
            if any(isinstance(k, np.ndarray) for k in key):
                raise VectorUnsupported("iron() of a function of vectorised indices")
            gfun = lambda xs: fg(env, xs)  # noqa: E731
            if key not in cache:
                try:
                    cache[key] = prior.ironing(gfun)
                except continuous.PriorError as exc:
                    raise EvalError(f"iron({t.name}, ...): {exc}") from None
            out = prior.ironed(gfun, cache[key], fx(env, 0))
            return float(out) if np.ndim(out) == 0 else out
        return run

    def _infimum(self, e) -> Fn:
        op, x, lo, hi, cond = e.args
        flo, fhi = self.compile(lo), self.compile(hi)
        truth, margin = self._truth_vec(cond, x)

        def run(env, pol):
            if any(isinstance(val, np.ndarray) for val in env.values()):
                raise VectorUnsupported("inf{...} under vectorised indices")  # the grid is the vector here
            a, b = flo(env, 0), fhi(env, 0)
            if not (math.isfinite(a) and math.isfinite(b)) or a > b:
                raise EvalError(f"{op.name}{{...}}: [{a:g}, {b:g}] is not an interval")
            return continuous.infimum(lambda xs: truth(env, xs), float(a), float(b), sup=op.name == "sup",
                                      margin=(lambda xs: margin(env, xs)) if margin is not None else None)
        return run

    def _continuous_expect(self, e, prior) -> Fn:
        body, label, cond = e.args
        cond = None if cond is sp.true else cond
        fb = self._along(body, label)
        fc, fm = self._truth_vec(cond, label) if cond is not None else (None, None)
        inner = _inner_binders(body)
        rels = [r for r in sp.preorder_traversal(body) if isinstance(r, sp.core.relational.Relational)
                and label in r.free_symbols and not (r.free_symbols & inner)]
        switches = [self._truth_vec(r, label, tol=0.0) for r in rels]  # where the body's branches switch: exact

        def run(env, pol):
            if any(isinstance(val, np.ndarray) for val in env.values()):
                raise VectorUnsupported("E[...] of a continuous type under vectorised indices")

            def bind(f):
                return (lambda xs: f(env, xs)) if f is not None else None
            try:
                value, err = prior.expect(bind(fb), [(bind(t), bind(m)) for t, m in switches], bind(fc), bind(fm))
            except continuous.PriorError as exc:
                raise EvalError(f"E[{label.name}](...): {exc}") from None
            self.inst.note_quadrature(err)
            return value
        return run

    def _expect(self, e) -> Fn:
        body, label, cond = e.args
        prior = getattr(self.inst, "priors", {}).get(label.name)
        if prior is not None:
            return self._continuous_expect(e, prior)
        cond = None if cond is sp.true else cond
        fb = self.compile(body)
        fc = self.compile(cond) if cond is not None else None
        inst = self.inst

        def run(env, pol):
            return self._weighted(inst.outcomes(label.name), label, fc, fb, env, pol, f"E[{label.name} | {cond}]")
        return run

    def _weighted(self, outcomes, label, fc, fb, env, pol, what: str):
        """The expectation of ``fb`` over (value, probability) ``outcomes`` of ``label``, conditional on ``fc``."""
        env2 = dict(env)
        total, acc = 0.0, []
        for value, prob in outcomes:
            env2[label] = value
            if fc is not None:
                ok = fc(env2, 0)
                if isinstance(ok, np.ndarray):
                    raise VectorUnsupported("a condition that depends on vectorised indices")
                if not ok:
                    continue
            total += prob
            acc.append((prob, fb(env2, pol)))
        if total <= 0:
            raise EvalError(f"{what}: the condition has probability 0")
        return self.target.sum([p / total * v for p, v in acc])

    # ------------------------------------------------------------ profiles
    def positions(self, agents_node, env) -> dict:
        """Agent -> its position in a profile (the order of the agent set)."""
        key = ("positions", id(agents_node))
        hit = self._set_cache.get(key)
        if hit is None or agents_node.free_symbols:
            elems = self._eval_set(agents_node, env)
            hit = self._set_cache[key] = ({e[0] if len(e) == 1 else e: k for k, e in enumerate(elems)}, agents_node)
        return hit[0]

    def _profile_op(self, e) -> Fn:
        if isinstance(e, Replace):
            fr, fv, fi, agents = self.compile(e.args[0]), self.compile(e.args[1]), self.compile(e.args[2]), e.args[3]
        else:
            fr, (fv, fi), agents = None, (self.compile(a) for a in e.args[:2]), e.args[2]
        kind = type(e)
        fixed = [] if agents.free_symbols else None  # the positions, once, when the agent set is fixed

        def op(env, pol):
            v, i = fv(env, 0), fi(env, 0)
            if fixed:
                pos = fixed[0]
            else:
                pos = self.positions(agents, env)
                if fixed is not None:
                    fixed.append(pos)
            if isinstance(v, tuple) and any(isinstance(c, np.ndarray) for c in v) or isinstance(i, np.ndarray):
                return _vector_profile_op(kind, v, i, pos, fr(env, 0) if fr else None)
            if not isinstance(v, tuple):
                raise EvalError(f"{shown(e.args[1])} is not a profile")
            k = pos.get(canon(i))
            if k is None:
                raise EvalError(f"{shown(e.args[-2])} = {i} is not an agent of {shown(agents)}")
            if len(v) != len(pos):
                raise EvalError(f"the profile {shown(e.args[1])} has {len(v)} entries, the agent set "
                                f"{shown(agents)} {len(pos)}")
            if kind is Component:
                if v[k] == HOLE:
                    raise EvalError(f"agent {i}'s own type is not fixed inside E[{shown(e.args[0])}[-{i}]]")
                return v[k]
            if kind is Others:
                return v[:k] + v[k + 1:]
            return v[:k] + (canon(fr(env, 0)),) + v[k + 1:]
        return op

    def _report_at(self, e) -> Fn:
        body, name, args = e.args
        fb, fs = self.compile(body), [self.compile(a) for a in args]
        inst, name = self.inst, name.name
        keys = []

        def run(env, pol):
            if not keys:
                rep = next(r for r in inst.mech.reports if r.name == name)
                keys.append({flat_key(k) for k in self.domain_keys(rep.domain)})
            key = flat_key(tuple(canon(f(env, 0)) for f in fs))
            if key not in keys[0]:
                raise EvalError(f"{name}[{_fmt_key(key)}] is outside the index set of report '{name}'", name=name)
            return fb(env, pol)
        return run

    def _expect_others(self, e) -> Fn:
        body, label, cond, agent = e.args
        cond = None if cond is sp.true else cond
        fb, fi = self.compile(body), self.compile(agent)
        fc = self.compile(cond) if cond is not None else None
        inst = self.inst

        def run(env, pol):
            i = fi(env, 0)
            if isinstance(i, np.ndarray):
                raise VectorUnsupported("E[v[-i]] with vectorised agents")
            return self._weighted(inst.others_outcomes(label.name, canon(i)), label, fc, fb, env, pol,
                                  f"E[{label.name}[-{i}] | {cond}]")
        return run

    def _auxref(self, e) -> Fn:
        name, idx, attr = e.args[0].name, e.args[1], e.args[2].name
        fs = [self.compile(a) for a in idx]
        gs = [self.compile(a) for a in e.args[3]] if len(e.args) > 3 else None
        inst = self.inst
        if gs is None:
            return lambda env, pol: inst.aux_result(name, tuple(canon(f(env, 0)) for f in fs), attr)
        return lambda env, pol: inst.aux_result(name, tuple(canon(f(env, 0)) for f in fs), attr,
                                                tuple(canon(g(env, 0)) for g in gs))

    def _relational(self, e) -> Fn:
        fa, fb = self.compile(e.lhs), self.compile(e.rhs)
        op = e.rel_op
        ops = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<=": lambda a, b: a <= b,
               ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, ">": lambda a, b: a > b}[op]
        return lambda env, pol: ops(fa(env, 0), fb(env, 0))


def _value_symbols(e) -> set:
    """The symbols an expression's value depends on: not the names in cdf(v, x) / iron(v, g, x) (the prior's
    label) nor iron's own argument, but every symbol of their points and functions."""
    if isinstance(e, PriorFn):
        return _value_symbols(e.args[2])
    if isinstance(e, Iron):
        return (_value_symbols(e.args[1]) - {e.args[2]}) | _value_symbols(e.args[3])
    if isinstance(e, sp.Symbol):
        return {e}
    if not isinstance(e, sp.Basic):
        return set()
    out = set()
    for a in e.args:
        out |= _value_symbols(a)
    return out


def _inner_binders(e) -> set:
    """Symbols bound inside ``e`` (iteration indices, inf/sup binders, nested E subjects, iron's argument)."""
    out = set()
    for n in sp.preorder_traversal(e):
        if isinstance(n, DomainNode):
            for pair in n.args[0]:
                out |= set(pair[0])
        elif isinstance(n, Infimum):
            out.add(n.args[1])
        elif isinstance(n, Expectation):
            out.add(n.args[1])
        elif isinstance(n, Iron):
            out.add(n.args[2])
    return out


def _vector_profile_op(kind, v, i, pos: dict, r):
    """v[i], v[-i] or (r, v[-i]) where the profile is a tuple of arrays (one per entry) or i an array."""
    n = len(pos)
    comps = [np.asarray(c) for c in v]
    if len(comps) != n:
        raise EvalError(f"a profile has {len(comps)} entries, the agent set {n}")
    ia = np.asarray(i)
    agents = list(pos)
    if all(isinstance(a, int) for a in agents) and agents == list(range(agents[0], agents[0] + n)):
        k = ia - agents[0]
        if np.any((k < 0) | (k >= n)):
            raise EvalError(f"an agent index is outside the agent set")
    else:
        k = np.vectorize(lambda a: pos[canon(a)])(ia) if ia.ndim else np.asarray(pos[canon(ia.item())])
    if kind is Component:
        out = np.choose(k, comps)
        if np.any(out == HOLE):
            raise EvalError("an agent's own type is not fixed inside E[v[-i]]")
        return out
    if kind is Others:
        return tuple(np.where(j < k, comps[j], comps[j + 1]) for j in range(n - 1))
    return tuple(np.where(j == k, r, comps[j]) for j in range(n))


def flat_key(key: tuple) -> tuple:
    """Index tuples are flat: a product-type value (a tuple) contributes its components."""
    for k in key:
        if isinstance(k, tuple):
            out = []
            for j in key:
                out.extend(j if isinstance(j, tuple) else (j,))
            return tuple(out)
    return key


def _prod(it):
    r = 1
    for v in it:
        r = r * v
    return r


def _div_zero():
    raise EvalError("division by zero")


def _fmt_key(key: tuple) -> str:
    return ",".join(str(k) for k in key)


class ValuesTarget(Target):
    """Numbers, with the decision variables taking given values (a solution)."""

    def __init__(self, values: dict):
        self.values = values

    def var(self, name, key):
        try:
            return self.values[name][key]
        except KeyError:
            raise EvalError(f"{name}[{','.join(map(str, key))}] is outside the index set of var '{name}'",
                            name=name) from None


class VecTarget(ValuesTarget):
    """Numbers and numpy arrays: evaluates a template for many index bindings at once.

    Index symbols are bound to broadcastable integer arrays; indexed params and
    variables are looked up in dense arrays (integer index sets only).  Anything
    else raises :class:`VectorUnsupported` and the caller uses the scalar path.
    """

    vector = True

    def __init__(self, inst, values: dict | None = None):
        super().__init__(values or {})
        self.inst = inst
        self._dense: dict[tuple[str, bool], tuple] = {}

    def dense(self, name, is_var, key):
        hit = self._dense.get((name, is_var))
        if hit is None:
            table = self.values.get(name) if is_var else self.inst.params.get(name)
            if not isinstance(table, dict) or not table:
                raise VectorUnsupported(name)
            keys = list(table)
            if not all(isinstance(c, int) for k in keys for c in k):
                raise VectorUnsupported(f"{name} has non-integer indices")
            dims = len(keys[0])
            lo = [min(k[d] for k in keys) for d in range(dims)]
            hi = [max(k[d] for k in keys) for d in range(dims)]
            arr = np.full([h - l + 1 for l, h in zip(lo, hi)], np.nan)
            for k, v in table.items():
                arr[tuple(c - l for c, l in zip(k, lo))] = v
            hit = self._dense[(name, is_var)] = (arr, lo, hi)
        arr, lo, hi = hit
        if len(key) != arr.ndim:
            raise VectorUnsupported("index arity")
        pos = []
        for k, l, h in zip(key, lo, hi):
            k = np.asarray(k)
            if k.dtype.kind not in "iu":
                if not np.all(np.mod(k, 1) == 0):
                    raise VectorUnsupported("non-integer index")
                k = k.astype(np.int64)
            if np.any(k < l) or np.any(k > h):
                raise VectorUnsupported("index outside the dense box")
            pos.append(k - l)
        out = arr[tuple(pos)]
        if np.isnan(out).any():
            raise VectorUnsupported("index outside the index set")
        return out

    def sqrt(self, x):
        with np.errstate(invalid="ignore"):
            return np.sqrt(np.where(np.asarray(x) >= 0, x, np.nan))

    def log(self, x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.asarray(x, dtype=float))

    def exp(self, x):
        with np.errstate(over="ignore"):
            return np.exp(x)

    def abs(self, x):
        return np.abs(x)

    def pow(self, b, e):
        with np.errstate(all="ignore"):
            return np.power(np.asarray(b, dtype=float), e)

    def sum(self, values):
        return functools.reduce(operator.add, values) if values else 0

    def max(self, args, pol):
        return functools.reduce(np.maximum, args)

    def min(self, args, pol):
        return functools.reduce(np.minimum, args)

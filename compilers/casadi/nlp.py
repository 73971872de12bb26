"""Compile a bound :class:`~mechdsl.ir.nodes.Problem` straight into a CasADi MX NLP and solve it with IPOPT.

Stage: ``(Problem, Instance, env) -> CasadiNLP``.  No Pyomo model is built.  The spec's templates are
evaluated by :class:`~mechdsl.evaluate.Evaluator` with a CasADi target, with two differences that keep
the graph compact:

* an expectation over a population (``E[n](...)``, ``E[n | cond](...)``) is evaluated ONCE with the
  population's counts bound to columns of the outcome matrix (``n[j]`` is a ``DM`` vector over all
  outcomes, restricted to those satisfying ``cond``), so ``sum{j} n[j] * m[j]`` is one vector
  expression and ``a(...)`` is applied elementwise; the expectation is a dot product with the
  probabilities.  The graph has a few nodes per expectation instead of a subtree per outcome.
* ``min`` / ``max`` whose growth (shrinkage) helps the model become an exact hypograph (epigraph)
  variable, as in the Pyomo compiler; the others stay exact (``fmax`` / ``fmin``) in the problem that
  is solved first.  A smoothed twin, ``(a + b +- sqrt((a - b)^2 + mu^2)) / 2`` with ``mu`` a CasADi
  parameter, is built only when :func:`solve_nlp` needs a continuation.

:func:`solve_nlp` is the strategy: solve the exact problem from the spec's start (and from the bounds
with ``multistart``); only when IPOPT fails, or stops where a min/max term sits on a flat branch (a
constant argument strictly active, so that the term has zero gradient: the all-zero contract of paper
004's scenario 2), run a short warm-started continuation in ``mu`` and re-solve the exact problem from
its end; keep the best local optimum.

IPOPT runs with ``tol`` 1e-10 and ``bound_relax_factor`` 0 (the answer feeds verification), and the
KKT residuals of the returned point are measured afterwards (:meth:`CasadiNLP.certificate`).
"""
from __future__ import annotations

import contextlib
import ctypes
import math
import operator
import os
import sys
import time
from dataclasses import dataclass, field
from functools import reduce

import casadi as ca
import numpy as np
import sympy as sp

from mechdsl.evaluate import EvalError, Evaluator, Target, canon, flat_key
from mechdsl.ir import nodes as ir
from mechdsl.ir.sym import Expectation

__all__ = ["Unsupported", "CasadiNLP", "NLPSolution", "NLPRun", "build_nlp", "solve_nlp"]

#: The continuation run when the exact problem stops on a flat branch: mu values, warm-started in turn
#: (then the exact problem from the last point).  One large mu gives a gradient across the flat
#: region; the exact re-solve removes the smoothing bias.
CONTINUATION = (1.0,)
#: A longer schedule, tried only when the short one still ends on a flat branch without improving.
CONTINUATION_LONG = (1.0, 1e-1, 1e-2, 1e-4)

IPOPT_TOL = 1e-10


class Unsupported(Exception):
    """A construct this backend does not compile (the caller uses the Pyomo compiler instead)."""


def _sym(x) -> bool:
    return isinstance(x, ca.MX)


def _num(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating))


def _numel(x) -> int:
    return 1 if _num(x) else int(x.numel())


# --------------------------------------------------------------------------------------------- target
class CasadiTarget(Target):
    """IR templates -> CasADi MX (numbers stay numbers, population counts are DM vectors)."""

    numeric = False

    def __init__(self, builder: "_Builder"):
        self.b = builder

    def var(self, name, key):
        return self.b.var(name, key)

    def sqrt(self, x):
        return Target.sqrt(self, x) if _num(x) else ca.sqrt(x)

    def log(self, x):
        return Target.log(self, x) if _num(x) else ca.log(x)

    def exp(self, x):
        return Target.exp(self, x) if _num(x) else ca.exp(x)

    def abs(self, x):
        return abs(x) if _num(x) else ca.fabs(x)

    def pow(self, b, e):
        if _num(b) and _num(e):
            return Target.pow(self, b, e)
        return b ** e

    def sum(self, values):
        nums = [v for v in values if _num(v)]
        rest = [v for v in values if not _num(v)]
        c = math.fsum(nums) if nums else 0
        if not rest:
            return c
        if len(rest) > 2 and all(_numel(v) == 1 for v in rest):
            s = ca.sum1(ca.vertcat(*rest))
        else:
            s = reduce(operator.add, rest)
        return s + c if c != 0 else s

    def max(self, args, pol):
        return self.b.minmax(args, pol, True)

    def min(self, args, pol):
        return self.b.minmax(args, pol, False)


def _risky(expr) -> set:
    """Sub-expressions that may be undefined (log, non-integer or negative powers, sqrt, division)."""
    out = set()
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.log) or (isinstance(node, sp.Pow) and not (node.exp.is_Integer and node.exp >= 0)):
            out.add(node)
    return out


class _CasadiEvaluator(Evaluator):
    """The evaluator with products that accept vectors and expectations over populations vectorised.

    While a body is evaluated over a population (its counts bound to the shared outcome columns), results
    are memoised by (sub-expression, polarity, the values of its free symbols), so the same accuracy vector
    used by the objective and by every budget row is one node of the graph.  A conditional expectation
    reuses the unconditional vector and selects its outcomes, when every possibly undefined sub-expression
    of its body (log, sqrt, a division) is also evaluated over the whole population by an unconditional
    expectation of the problem; otherwise it is evaluated on the selected outcomes only.
    """

    def __init__(self, inst, target, problem=None):
        super().__init__(inst, target)
        self._wrapped: dict[int, tuple] = {}
        self._memo: dict = {}
        self._pop_depth = 0
        self._full: dict = {}
        self._defined_everywhere: dict[str, set] = {}
        if problem is not None:
            exprs = [problem.objective.expr] if problem.objective is not None else []
            for c in problem.constraints:
                exprs.extend(_rel_exprs(c.body))
            for e in exprs:
                if not isinstance(e, sp.Basic):
                    continue
                for node in sp.preorder_traversal(e):
                    if isinstance(node, Expectation) and node.args[2] is sp.true:
                        self._defined_everywhere.setdefault(node.args[1].name, set()).update(
                            sp.preorder_traversal(node.args[0]))

    def compile(self, expr):
        hit = self._wrapped.get(id(expr))
        if hit is not None:
            return hit[0]
        fn = super().compile(expr)
        if not isinstance(expr, sp.Basic) or expr.is_Number or isinstance(expr, sp.Symbol) or not expr.args:
            self._wrapped[id(expr)] = (fn, expr)
            return fn
        syms = tuple(sorted(expr.free_symbols, key=str))
        memo = self._memo

        def wrapped(env, pol):
            if not self._pop_depth:
                return fn(env, pol)
            key = (expr, pol, tuple(_hkey(env.get(s)) for s in syms))
            try:
                return memo[key]
            except KeyError:
                pass
            v = memo[key] = fn(env, pol)
            return v
        self._wrapped[id(expr)] = (wrapped, expr)
        return wrapped

    def _mul(self, e: sp.Mul):
        const = [self.compile(a) for a in e.args if not self.has_var(a)]
        varf = [self.compile(a) for a in e.args if self.has_var(a)]

        def prod(fs, env):
            r = 1
            for f in fs:
                r = r * f(env, 0)
            return r

        if not varf:
            return lambda env, pol: prod(const, env)

        def mul(env, pol):
            c = prod(const, env)
            if _num(c):
                if c == 0:
                    return 0
                sign = 1 if c > 0 else -1
            else:
                arr = np.asarray(c, dtype=float)
                sign = 1 if np.all(arr >= 0) else (-1 if np.all(arr <= 0) else 0)
            if len(varf) == 1:
                return c * varf[0](env, pol * sign)
            r = c
            for g in varf:
                r = r * g(env, 0)
            return r
        return mul

    def _expect(self, e):
        body, label, cond = e.args
        name = label.name
        if name not in self.inst.populations:
            return super()._expect(e)  # a type: few outcomes, the scalar loop (the target sums)
        cond = None if cond is sp.true else cond
        fb = self.compile(body)
        keys, outcomes = self.inst.populations[name]
        counts = np.array([[o[0][k] for k in keys] for o in outcomes], dtype=float).reshape(len(outcomes), len(keys))
        probs = np.array([o[1] for o in outcomes], dtype=float)
        num = Evaluator(self.inst)
        num._var_names = self._var_names
        fc = num.compile(cond) if cond is not None else None
        cache: dict = {}

        def mask_for(env):
            if fc is None:
                return None
            free = tuple(sorted((str(s), env[s]) for s in cond.free_symbols if s in env and s != label))
            hit = cache.get(free)
            if hit is not None:
                return hit
            env2 = dict(env)
            env2[label] = {k: counts[:, i] for i, k in enumerate(keys)}
            try:  # all outcomes at once (numpy comparisons); anything else: outcome by outcome
                with np.errstate(all="ignore"):
                    vec = fc(env2, 0)
                if isinstance(vec, np.ndarray) and vec.dtype == bool and vec.shape == (len(outcomes),):
                    cache[free] = vec
                    return vec
            except (TypeError, ValueError, KeyError, EvalError):
                pass
            out = np.zeros(len(outcomes), dtype=bool)
            for j, (value, _) in enumerate(outcomes):
                env2[label] = value
                ok = fc(env2, 0)
                if _sym(ok):
                    raise Unsupported("a condition of an expectation that depends on decision variables")
                out[j] = bool(ok)
            cache[free] = out
            return out

        share = cond is None or _risky(body) <= self._defined_everywhere.get(name, set())
        if name not in self._full:
            self._full[name] = {k: ca.DM(counts[:, i]) for i, k in enumerate(keys)}

        def run(env, pol):
            mask = mask_for(env)
            sel = np.arange(len(outcomes)) if mask is None else np.flatnonzero(mask)
            w = probs[sel]
            total = float(w.sum())
            if total <= 0:
                raise EvalError(f"E[{name} | {cond}]: the condition has probability 0")
            env2 = dict(env)
            whole = share or len(sel) == len(outcomes)
            env2[label] = self._full[name] if whole else {k: ca.DM(counts[sel, i]) for i, k in enumerate(keys)}
            self.target.b.nlp.vectorized = True
            self._pop_depth += 1
            try:
                v = fb(env2, pol)
            finally:
                self._pop_depth -= 1
            if _num(v) or _numel(v) == 1:
                return v  # the body does not depend on the outcome: E[v] = v
            if _numel(v) != (len(outcomes) if whole else len(sel)):
                raise Unsupported("an expectation whose body is not one value per outcome")
            if whole and len(sel) != len(outcomes):
                v = v[sel.tolist()]
            return ca.dot(ca.DM(w / total), v)
        return run


# --------------------------------------------------------------------------------------------- builder
class _Builder:
    """One evaluation of the problem into MX (exact, or smoothed with parameter ``mu``)."""

    def __init__(self, nlp: "CasadiNLP", mu=None):
        self.nlp = nlp
        self.mu = mu
        self.x = ca.MX.sym("x", nlp.n)
        self._elem: dict[int, ca.MX] = {}
        self.zs: list = []         # epigraph variables (MX vectors)
        self.epis: list = []       # (z, args, is_max)
        self.terms: list = []      # (args, is_max) of the min/max terms kept (smoothed or exact)
        self.g: list = []
        self.lbg: list = []
        self.ubg: list = []
        self.row_of: list = []     # (family, key) per row

    def var(self, name, key):
        try:
            i = self.nlp.index[name][key]
        except KeyError:
            raise EvalError(f"{name}[{','.join(map(str, key))}] is outside the index set of var '{name}'",
                            name=name) from None
        el = self._elem.get(i)
        if el is None:
            el = self._elem[i] = self.x[i]
        return el

    def minmax(self, args, pol, is_max):
        if not any(_sym(a) for a in args):
            if all(_num(a) for a in args):
                return max(args) if is_max else min(args)
            return reduce(ca.fmax if is_max else ca.fmin, [ca.DM(a) if _num(a) else a for a in args])
        if (is_max and pol < 0) or (not is_max and pol > 0):
            return self._epigraph(args, is_max)
        self.terms.append((args, is_max))
        if self.mu is None:
            return reduce(ca.fmax if is_max else ca.fmin, args)
        sign = 1 if is_max else -1
        mu2 = self.mu ** 2
        r = args[0]
        for a in args[1:]:
            r = (r + a + sign * ca.sqrt((r - a) ** 2 + mu2)) / 2
        return r

    def _epigraph(self, args, is_max):
        n = max(_numel(a) for a in args)
        z = ca.MX.sym(f"z{len(self.zs)}", n)
        self.zs.append(z)
        self.epis.append((z, args, is_max))
        for a in args:
            self.row(z - a, 0.0 if is_max else -math.inf, math.inf if is_max else 0.0, ("minmax_aux", ()))
        self.nlp.linearized += 1
        return z

    def row(self, d, lo, hi, where):
        n = _numel(d)
        self.g.append(d)
        self.lbg.extend([lo] * n)
        self.ubg.extend([hi] * n)
        self.row_of.extend([where] * n)

    def build(self):
        nlp = self.nlp
        ev = _CasadiEvaluator(nlp.inst, CasadiTarget(self), nlp.problem)
        ev._var_names = nlp.names
        num = nlp.num
        env = nlp.env
        for c in nlp.problem.constraints:
            if c.check_only:
                continue
            local = dict(env)
            it = num.iterate(c.domain.items, c.domain.cond, local) if c.domain else iter([local])
            binders = c.domain.binders if c.domain else ()
            count = 0
            for _ in it:
                key = tuple(local[b] for b in binders)
                try:
                    for rel in _rels(c.body, num, local, c):
                        op = rel.op
                        lhs = ev.value(rel.lhs, local, -1 if op == "<=" else (1 if op == ">=" else 0))
                        rhs = ev.value(rel.rhs, local, 1 if op == "<=" else (-1 if op == ">=" else 0))
                        d = lhs - rhs
                        if not _sym(d):
                            dv = np.asarray(d, dtype=float)
                            ok = {"<=": np.all(dv <= 1e-9), ">=": np.all(dv >= -1e-9),
                                  "==": np.all(np.abs(dv) <= 1e-9)}[op]
                            if not ok:  # a data error, located at the constraint (the handler below says which)
                                by = {"<=": np.max(dv), ">=": -np.min(dv), "==": np.max(np.abs(dv))}[op]
                                raise EvalError(f"no variable is left in it and the data alone violate it (by "
                                                f"{float(by):g}), so the model is infeasible", span=c.span)
                            continue
                        lo = 0.0 if op in (">=", "==") else -math.inf
                        hi = 0.0 if op in ("<=", "==") else math.inf
                        self.row(d, lo, hi, (c.name, key))
                        count += _numel(d)
                except EvalError as exc:
                    raise exc.again(f"in constraint {c.name}{_fmt(key)}: {exc.message}", exc.name, c.span) from None
            if self.mu is None:
                nlp.con_counts[c.name] = count
                nlp.con_kinds[c.name] = c.kind.value
        f = 0.0
        o = nlp.problem.objective
        if o is not None:
            try:
                f = ev.value(o.expr, dict(env), 1 if o.sense == "maximize" else -1)
            except EvalError as exc:
                raise exc.again(f"in the objective: {exc.message}", exc.name, o.span) from None
            if _numel(f) != 1:
                raise Unsupported("an objective that is not a scalar")
        # One decision vector X = [x; z_1; ...; z_k] (IPOPT needs a purely symbolic x).
        nz = sum(int(z.numel()) for z in self.zs)
        f = ca.MX(f) if not _sym(f) else f
        g = ca.vertcat(*self.g) if self.g else ca.MX(0, 1)
        flat = self._flat_expr()
        exact_z = self._exact_z()
        if self.zs:
            X = ca.MX.sym("X", nlp.n + nz)
            parts, off = [X[:nlp.n]], nlp.n
            for z in self.zs:
                k = int(z.numel())
                parts.append(X[off:off + k])
                off += k
            f, g, flat = ca.substitute([f, g, flat], [self.x] + self.zs, parts)
        else:
            X = self.x
        self.X, self.f, self.gv, self.flat = X, f, g, flat
        self.nz = nz
        self.exact_z_fn = ca.Function("z0", [self.x], [exact_z]) if self.zs else None
        return self

    def _exact_z(self):
        """The epigraph variables' values as functions of x alone (their start values)."""
        if not self.zs:
            return ca.MX(0, 1)
        exact = []
        for i, (z, args, is_max) in enumerate(self.epis):
            e = reduce(ca.fmax if is_max else ca.fmin, args)
            e = e if _sym(e) else ca.MX(ca.DM(e))
            if i:
                e = ca.substitute([e], self.zs[:i], exact[:i])[0]
            if _numel(e) != int(z.numel()):
                e = ca.repmat(e, int(z.numel()), 1)
            exact.append(e)
        return ca.vertcat(*exact)

    def _flat_expr(self):
        """The number of elements of kept min/max terms whose strictly active argument is constant."""
        pieces = []
        for args, is_max in self.terms:
            dep = [a for a in args if _sym(a) and any(ca.depends_on(a, s) for s in [self.x] + self.zs)]
            const = [a for a in args if not any(a is d for d in dep)]
            if not dep or not const:
                continue
            op = ca.fmax if is_max else ca.fmin
            cb = reduce(op, [ca.MX(ca.DM(a)) if not _sym(a) else a for a in const])
            nb = reduce(op, dep)
            gap = (cb - nb) if is_max else (nb - cb)
            pieces.append(ca.sum1(gap > 1e-9 * (1 + ca.fabs(cb))))
        return reduce(operator.add, pieces) if pieces else ca.MX(0)


def _hkey(v):
    if v is None or isinstance(v, (int, float, str, tuple)):
        return v
    return ("id", id(v))


def _rel_exprs(body) -> list:
    if isinstance(body, ir.Rel):
        return [body.lhs, body.rhs]
    if isinstance(body, (ir.AllOf, ir.AnyOf)):
        return [e for p in body.parts for e in _rel_exprs(p)]
    if isinstance(body, ir.Implication):
        return _rel_exprs(body.conclusion)
    return []


def _rels(body, num, env, c):
    if isinstance(body, ir.Rel):
        yield body
    elif isinstance(body, ir.AllOf):
        for p in body.parts:
            yield from _rels(p, num, env, c)
    elif isinstance(body, ir.Implication) and not num.has_var(body.premise):
        if num.truth(body.premise, env):
            yield from _rels(body.conclusion, num, env, c)
    else:
        raise Unsupported(f"constraint '{c.name}': {type(body).__name__} with decision variables")


def _fmt(key):
    return f"[{','.join(map(str, key))}]" if key else ""


# --------------------------------------------------------------------------------------------- the NLP
@dataclass
class NLPSolution:
    """One IPOPT run."""

    status: str                 #: "locally optimal", "infeasible", "unbounded", "iteration limit", "error"
    message: str
    x: np.ndarray | None = None
    objective: float | None = None   #: in the spec's sense
    lam_g: np.ndarray | None = None
    lam_x: np.ndarray | None = None
    iterations: int = 0
    flat: int = 0               #: elements of min/max terms on a flat branch at x

    @property
    def ok(self) -> bool:
        return self.status == "locally optimal"


_STATUS = {
    "Solve_Succeeded": "locally optimal",
    "Solved_To_Acceptable_Level": "locally optimal",
    "Infeasible_Problem_Detected": "infeasible",
    "Diverging_Iterates": "unbounded",
    "Maximum_Iterations_Exceeded": "iteration limit",
    "Maximum_CpuTime_Exceeded": "iteration limit",
    "Maximum_WallTime_Exceeded": "iteration limit",
}


class CasadiNLP:
    """The NLP of one problem instance: columns, the exact MX graph, solvers built on demand."""

    def __init__(self, problem: ir.Problem, inst, env: dict | None = None, var_names: set | None = None,
                 name: str = "mechdsl"):
        t0 = time.perf_counter()
        self.problem, self.inst, self.env, self.name = problem, inst, dict(env or {}), name
        names = var_names if var_names is not None else {v.name for v in problem.vars}
        self.names = set(names)
        self.num = Evaluator(inst)
        self.num._var_names = self.names
        self.index: dict[str, dict[tuple, int]] = {}
        self.var_keys: dict[str, list[tuple]] = {}
        self.cols: list[tuple[str, tuple]] = []
        lbx, ubx, x0 = [], [], []
        for v in problem.vars:
            if v.kind in ("binary", "integer"):
                raise Unsupported(f"var {v.name} is {v.kind}")
            keys = []
            local = dict(self.env)
            it = self.num.iterate(v.domain.items, v.domain.cond, local) if v.domain else iter([local])
            for _ in it:
                key = flat_key(tuple(local[b] for b in v.domain.binders)) if v.domain else ()
                try:
                    lb = _bound(self.num, v.lb, local)
                    ub = _bound(self.num, v.ub, local)
                except EvalError as exc:
                    raise exc.again(f"in var {v.name}: {exc.message}", exc.name, exc.span or v.span) from None
                if v.kind == "nonnegative":
                    lb = 0.0 if lb is None else max(lb, 0.0)
                if lb is not None and ub is not None and lb > ub + 1e-12:  # a data error, located at the var
                    raise EvalError(f"var {v.name}{_fmt(key)} has lower bound {float(lb):g} above its upper "
                                    f"bound {float(ub):g}, so no value fits", span=v.span)
                init = self.num.value(v.init, local) if v.init is not None else None
                keys.append(key)
                self.index.setdefault(v.name, {})[key] = len(self.cols)
                self.cols.append((v.name, key))
                lbx.append(-math.inf if lb is None else float(lb))
                ubx.append(math.inf if ub is None else float(ub))
                x0.append(_start(init, lb, ub))
            self.var_keys[v.name] = keys
        self.n = len(self.cols)
        self.con_counts: dict[str, int] = {}
        self.con_kinds: dict[str, str] = {}
        self.linearized = 0
        self.vectorized = False   #: an expectation over a population was built as a vector expression
        self.sense = problem.objective.sense if problem.objective is not None else "minimize"
        self.sign = -1.0 if self.sense == "maximize" else 1.0
        self.exact = _Builder(self).build()
        self.smoothed_terms = len(self.exact.terms)
        self.lbx = np.array(lbx + [-math.inf] * self.exact.nz)
        self.ubx = np.array(ubx + [math.inf] * self.exact.nz)
        self.x_init = np.array(x0, dtype=float)
        self.lbg = np.array(self.exact.lbg, dtype=float)
        self.ubg = np.array(self.exact.ubg, dtype=float)
        self._smooth: _Builder | None = None
        self._solvers: dict = {}
        self._flat_fn = None
        self._kkt_fn = None
        self.problem_class = self._classify()
        self.build_time = time.perf_counter() - t0

    # ------------------------------------------------------------------ structure
    def _classify(self) -> str:
        b = self.exact
        X = b.X
        lin_g = b.gv.numel() == 0 or bool(ca.is_linear(b.gv, X))
        if lin_g and bool(ca.is_linear(b.f, X)):
            return "LP"
        if lin_g and bool(ca.is_quadratic(b.f, X)):
            return "QP"
        return "NLP"

    def smoothed(self) -> _Builder:
        if self._smooth is None:
            self._smooth = _Builder(self, mu=ca.MX.sym("mu")).build()
        return self._smooth

    def full_start(self, x) -> np.ndarray:
        """A start for [x; z]: the epigraph variables at their exact values."""
        x = np.asarray(x, dtype=float).ravel()
        if x.size == self.n + self.exact.nz:
            return x
        if self.exact.nz == 0:
            return x
        z = np.asarray(self.exact.exact_z_fn(x), dtype=float).ravel()
        return np.concatenate([x, z])

    def _solver(self, smooth: bool, opts: dict):
        key = (smooth, tuple(sorted(opts.items())))
        s = self._solvers.get(key)
        if s is None:
            b = self.smoothed() if smooth else self.exact
            prob = {"x": b.X, "f": self.sign * b.f, "g": b.gv}
            if smooth:
                prob["p"] = b.mu
            if not self.vectorized:
                # Scalar problems (the aux problems, small specs): the MX graph expanded to SX is quicker to
                # build and to evaluate.  Vector expressions over outcomes stay MX (expanding them would
                # recreate one subtree per outcome).
                with contextlib.suppress(Exception):
                    ins = [b.X] + ([b.mu] if smooth else [])
                    F = ca.Function("F", ins, [prob["f"], prob["g"]]).expand()
                    xs = ca.SX.sym("x", b.X.numel())
                    ps = [ca.SX.sym("p")] if smooth else []
                    fs, gs = F(xs, *ps)
                    prob = {"x": xs, "f": fs, "g": gs}
                    if smooth:
                        prob["p"] = ps[0]
            with _quiet_stdout(not opts.get("ipopt.print_level")):
                s = ca.nlpsol(_safe(self.name + ("_smooth" if smooth else "")), "ipopt", prob, opts)
            self._solvers[key] = s
        return s

    def flat(self, x) -> int:
        if not self.exact.terms:
            return 0
        if self._flat_fn is None:
            self._flat_fn = ca.Function("flat", [self.exact.X], [self.exact.flat])
        return int(round(float(self._flat_fn(x))))

    # ------------------------------------------------------------------ solving
    def solve(self, x0, *, mu: float | None = None, tee: bool = False, options: dict | None = None,
              time_limit: float | None = None, tol: float = IPOPT_TOL, max_iter: int = 3000) -> NLPSolution:
        if tee:  # -v: each solver log says which problem (and which step) it belongs to
            step = "exact" if mu is None else f"continuation step mu = {mu:g}"
            print(f"===== IPOPT: {self.name} ({step}) =====", file=sys.stderr, flush=True)
        opts = {"print_time": bool(tee), "error_on_fail": False, "show_eval_warnings": bool(tee),
                "ipopt.print_level": 5 if tee else 0, "ipopt.sb": "yes", "ipopt.max_iter": int(max_iter),
                "ipopt.tol": float(tol), "ipopt.bound_relax_factor": 0.0}
        for k, v in (options or {}).items():
            opts[k if k.startswith("ipopt.") else f"ipopt.{k}"] = v
        if time_limit:
            opts["ipopt.max_wall_time"] = float(max(time_limit, 1e-3))
        try:
            solver = self._solver(mu is not None, opts)
        except Exception as exc:  # invalid options raise when the solver is built
            return NLPSolution("error", f"{type(exc).__name__}: {exc}".strip())
        args = {"x0": self.full_start(x0), "lbx": self.lbx, "ubx": self.ubx}
        if self.lbg.size:
            args["lbg"], args["ubg"] = self.lbg, self.ubg
        if mu is not None:
            args["p"] = float(mu)
        try:
            with _quiet_stdout(not tee):
                sol = solver(**args)
                stats = solver.stats()
        except Exception as exc:  # casadi raises RuntimeError on evaluation failures
            return NLPSolution("error", f"{type(exc).__name__}: {exc}".strip())
        message = str(stats.get("return_status", "unknown"))
        status = _STATUS.get(message, "error")
        x = np.asarray(sol["x"], dtype=float).ravel()
        out = NLPSolution(status, message, x, None, np.asarray(sol["lam_g"], dtype=float).ravel(),
                          np.asarray(sol["lam_x"], dtype=float).ravel(), int(stats.get("iter_count") or 0))
        if not np.all(np.isfinite(x)):
            out.status = "error" if status == "locally optimal" else status
            return out
        if status not in ("infeasible", "error"):
            fval = self.sign * float(sol["f"])
            if mu is not None:  # report the exact objective at the smoothed problem's point
                fval = self.objective(x)
            out.objective = fval if math.isfinite(fval) else None
            if out.objective is None and out.status == "locally optimal":
                out.status = "error"
        if out.ok:
            out.flat = self.flat(x)
        return out

    def objective(self, x) -> float:
        fn = self.__dict__.get("_f_fn")
        if fn is None:
            fn = self._f_fn = ca.Function("f", [self.exact.X], [self.exact.f])
        return float(fn(self.full_start(x)))

    def values(self, x) -> dict[str, dict[tuple, float]]:
        out: dict = {name: {} for name in self.var_keys}
        for (name, key), v in zip(self.cols, np.asarray(x, dtype=float)[:self.n]):
            out[name][key] = float(v)
        return out

    def certificate(self, sol: NLPSolution) -> Certificate:
        """KKT residuals of ``sol`` measured here (minimisation form f = sign * objective):
        primal = max violation of rows and bounds, dual = max |grad f + J' lam_g + lam_x|,
        complementarity = max |multiplier * distance to the bound it pushes on|."""
        from mechdsl.compilers.standard.form import Certificate  # (imports scipy.sparse: only when asked)

        b = self.exact
        if self._kkt_fn is None:
            lg, lx = ca.MX.sym("lg", b.gv.numel()), ca.MX.sym("lx", b.X.numel())
            lag = self.sign * b.f + (ca.dot(lg, b.gv) if b.gv.numel() else 0)
            self._kkt_fn = ca.Function("kkt", [b.X, lg, lx], [ca.gradient(lag, b.X) + lx, b.gv])
        x, lg, lx = sol.x, sol.lam_g, sol.lam_x
        r, gval = self._kkt_fn(x, lg if lg.size else ca.DM(0, 1), lx)
        r = np.asarray(r, dtype=float).ravel()
        gval = np.asarray(gval, dtype=float).ravel()

        def viol(v, lo, hi):
            return float(np.max(np.maximum(0.0, np.maximum(lo - v, v - hi)))) if v.size else 0.0

        def compl(lam, v, lo, hi):
            if not v.size:
                return 0.0
            bound = np.where(lam > 0, hi, lo)
            dist = np.where(np.isfinite(bound), np.abs(v - bound), 1.0)
            return float(np.max(np.abs(lam) * np.where(lam != 0, dist, 0.0)))

        primal = max(viol(gval, self.lbg, self.ubg), viol(x, self.lbx, self.ubx))
        return Certificate(primal_residual=primal, dual_residual=float(np.max(np.abs(r))) if r.size else 0.0,
                           complementarity=max(compl(lg, gval, self.lbg, self.ubg), compl(lx, x, self.lbx, self.ubx)))

    def duals(self, sol: NLPSolution, kinds=("ic", "ir", "budget", "feasibility", "constraint", "monotonicity")):
        """|multiplier| of the binding rows per family: what one unit of relaxation is worth."""
        out: dict = {}
        if sol.lam_g is None:
            return out
        scale = 1e-7 * max(1.0, float(np.max(np.abs(sol.x))) if sol.x.size else 1.0)
        gval = None
        for i, (fam, key) in enumerate(self.exact.row_of):
            if self.con_kinds.get(fam) not in kinds:
                continue
            lam = float(sol.lam_g[i])
            if lam == 0.0:
                continue
            if gval is None:
                gval = np.asarray(self._kkt_row_values(sol.x), dtype=float).ravel()
            lo, hi = self.lbg[i], self.ubg[i]
            binding = (math.isfinite(lo) and abs(gval[i] - lo) <= scale * (1 + abs(lo))) or \
                      (math.isfinite(hi) and abs(hi - gval[i]) <= scale * (1 + abs(hi)))
            if binding:
                out.setdefault(fam, {})[key] = abs(lam) if lo != hi else -self.sign * lam
        return out

    def _kkt_row_values(self, x):
        fn = self.__dict__.get("_g_fn")
        if fn is None:
            fn = self._g_fn = ca.Function("g", [self.exact.X], [self.exact.gv])
        return fn(x)


def build_nlp(problem: ir.Problem, inst, env: dict | None = None, var_names: set | None = None,
              name: str = "mechdsl") -> CasadiNLP:
    """The CasADi NLP of ``problem``; :class:`Unsupported` for what only the Pyomo compiler handles."""
    return CasadiNLP(problem, inst, env, var_names, name)


# --------------------------------------------------------------------------------------------- strategy
@dataclass
class NLPRun:
    """The outcome of :func:`solve_nlp`: the best solution and how it was found."""

    best: NLPSolution
    start: str                       #: the start whose run won
    continuation: bool = False       #: whether the winner came out of a continuation
    runs: list = field(default_factory=list)   #: (start, "exact" | "continuation mu=...", status, objective)
    iterations: int = 0


def _better(a: NLPSolution | None, b: NLPSolution, sign: float) -> bool:
    """Whether ``b`` beats ``a`` (``sign`` +1 maximise)."""
    if a is None or not a.ok:
        return b.ok or a is None
    return b.ok and sign * b.objective > sign * a.objective + 1e-9 * max(1.0, abs(a.objective))


def starts_for(nlp: CasadiNLP, multistart: bool) -> list[tuple[str, np.ndarray]]:
    starts = [("init", nlp.x_init)]
    if multistart:
        lb, ub = nlp.lbx[:nlp.n], nlp.ubx[:nlp.n]
        for label, pick in (("lower bounds", lb), ("upper bounds", ub)):
            pt = np.where(np.isfinite(pick), pick, nlp.x_init)
            if not any(np.array_equal(pt, s) for _, s in starts):
                starts.append((label, pt))
    return starts


def solve_nlp(nlp: CasadiNLP, *, multistart: bool = False, tee: bool = False, options: dict | None = None,
              deadline=None) -> NLPRun:
    """Exact problem first from each start; a continuation only where it is needed; the best local optimum.

    ``deadline()`` returns the seconds left (or None).  A start whose exact solve ends at a point that is
    at least as good as the best so far and not on a flat branch needs nothing more.
    """
    sense = 1.0 if nlp.sense == "maximize" else -1.0
    best, run, best_continued = None, None, False
    runs, iterations = [], 0

    def remaining():
        return deadline() if deadline is not None else None

    for label, x0 in starts_for(nlp, multistart):
        out = nlp.solve(x0, tee=tee, options=options, time_limit=remaining())
        iterations += out.iterations
        runs.append((label, "exact", out.status, out.objective))
        cont = False
        # A start whose exact solve ended on a flat branch below a best found so far (not itself flat) is
        # dominated: it needs no continuation of its own.
        # Likewise a flat point no better than a best that is flat too but already had its continuation.
        dominated = (out.ok and out.flat and best is not None and best.ok and (not best.flat or best_continued)
                     and sense * out.objective <= sense * best.objective + 1e-9 * max(1.0, abs(best.objective)))
        tried = False
        if nlp.smoothed_terms and (not out.ok or out.flat) and not dominated:
            tried = True
            # The failure continuation exists for: IPOPT failed on the nonsmooth problem, or stopped where a
            # min/max term is on a flat branch (zero gradient).  A short warm-started continuation, then the
            # exact problem again from its end.
            for schedule in (CONTINUATION, CONTINUATION_LONG):
                x = out.x if out.ok else x0
                for mu in schedule:
                    s = nlp.solve(x, mu=mu, tee=tee, options=options, time_limit=remaining())
                    iterations += s.iterations
                    runs.append((label, f"continuation mu={mu:g}", s.status, s.objective))
                    if s.x is not None and np.all(np.isfinite(s.x)) and s.status != "error":
                        x = s.x
                again = nlp.solve(x, tee=tee, options=options, time_limit=remaining())
                iterations += again.iterations
                runs.append((label, "exact after continuation", again.status, again.objective))
                improved = _better(out, again, sense)
                if improved:
                    out, cont = again, True
                if out.ok and (not out.flat or not improved):
                    break
        if _better(best, out, sense):
            best, run, best_continued = out, NLPRun(out, label, cont), tried
        elif tried and best is not None and not _better(out, best, sense):
            best_continued = True
    run.runs, run.iterations = runs, iterations
    return run


# --------------------------------------------------------------------------------------------- helpers
def _bound(num, expr, env):
    if expr is None:
        return None
    b = num.value(expr, env)
    if isinstance(b, float) and math.isinf(b):
        return None
    return float(b)


def _start(init, lb, ub) -> float:
    v = 0.0 if init is None else float(init)
    if lb is not None and v < lb:
        v = lb
    if ub is not None and v > ub:
        v = ub
    return float(v)


def _safe(name: str) -> str:
    """A valid CasADi function name: a letter first, then letters, digits and single underscores."""
    out = "".join(ch if ch.isalnum() else "_" for ch in name)
    while "__" in out:
        out = out.replace("__", "_")
    out = out.strip("_")
    return out if out[:1].isalpha() else f"nlp_{out}" if out else "nlp"


def _flush_c_stdio() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


@contextlib.contextmanager
def _quiet_stdout(active: bool):
    """Silence stdout (``sys.stdout`` and fd 1) while ``active``: IPOPT prints a few lines (its banner, a
    complaint about an invalid option) regardless of ``print_level``.  Not active (``-v``): IPOPT's log goes
    to stderr instead, so that stdout keeps only mechdsl's own output (``--json`` stays one object)."""
    try:
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):
        pass
    target = os.devnull if active else None
    with (open(target, "w") if target else contextlib.nullcontext(sys.stderr)) as sink, \
            contextlib.redirect_stdout(sink):
        try:
            saved = os.dup(1)
        except OSError:
            yield
            return
        try:
            _flush_c_stdio()
            os.dup2(sink.fileno() if target else 2, 1)
            yield
        finally:
            _flush_c_stdio()
            os.dup2(saved, 1)
            os.close(saved)

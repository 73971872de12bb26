"""Size estimates of a bound problem, and the guard that refuses a build too large to finish.

Stage: ``(ir.Problem, Instance) -> SizeEstimate``, before any row is built.  Index domains are
counted without being enumerated: a range contributes ``hi - lo + 1``, a named set its size, a
product the product of its factors.  A set that depends on an earlier index (``r in k+1..K``) and a
filter (``k != r``) are estimated from a sample of evenly spaced bindings, so the estimate of a
family of 10^10 rows takes milliseconds.  Nonzeros are estimated per row from the body: one per
variable reference, times the size of every ``sum{...}`` and expectation around it.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import sympy as sp

from .errors import MechError
from .evaluate import EvalError, canon
from .ir import nodes as ir
from .ir.sym import Expectation, IFilter, IList, INamed, IProduct, IRange, IterProd, IterSum

DEFAULT_MAX_ROWS = 5_000_000   #: refuse builds estimated beyond this many rows (``--max-rows``)
SAMPLES = 64                   #: bindings sampled per dependent level or filter


@dataclass
class FamilyEstimate:
    name: str
    kind: str        # "constraint" | "variable"
    rows: float      # rows (or columns) in the family
    nonzeros: float  # constraint families: estimated nonzeros
    span: object = None


@dataclass
class SizeEstimate:
    families: list[FamilyEstimate] = field(default_factory=list)

    @property
    def rows(self) -> float:
        return sum(f.rows for f in self.families if f.kind == "constraint")

    @property
    def columns(self) -> float:
        return sum(f.rows for f in self.families if f.kind == "variable")

    @property
    def nonzeros(self) -> float:
        return sum(f.nonzeros for f in self.families if f.kind == "constraint")

    def largest(self) -> FamilyEstimate | None:
        cons = [f for f in self.families if f.kind == "constraint"]
        return max(cons, key=lambda f: f.rows) if cons else None


class SizeLimitError(MechError):
    """The problem is estimated to be larger than ``--max-rows`` allows (exit 2: change the data or the limit)."""


class _Estimator:
    def __init__(self, inst, var_names: set[str]):
        self.inst = inst
        self.ev = inst.ev
        self.var_names = var_names

    # ---------------------------------------------------------------- sets
    def set_size(self, node, env) -> float:
        """The number of elements of a set node under ``env`` (no enumeration of ranges or products)."""
        if isinstance(node, IRange):
            lo, hi = self.ev.value(node.lo, env), self.ev.value(node.hi, env)
            return float(max(0, math.floor(hi) - math.ceil(lo) + 1))
        if isinstance(node, INamed):
            return float(len(self.inst.set_elements(node.name)))
        if isinstance(node, IList):
            return float(len(node.args))
        if isinstance(node, IProduct):
            return math.prod(self.set_size(f, env) for f in node.args)
        if isinstance(node, IFilter):
            return self.set_size(node.args[1], env)  # an upper bound; filters on sets are rare
        return float(len(self.ev.set_elements(node, env)))

    def sample(self, node, env, n: int) -> list[tuple]:
        """Up to ``n`` evenly spaced elements of a set node (ranges are never enumerated)."""
        if isinstance(node, IRange):
            lo, hi = self.ev.value(node.lo, env), self.ev.value(node.hi, env)
            lo, hi = math.ceil(lo), math.floor(hi)
            size = hi - lo + 1
            if size <= 0:
                return []
            if size <= n:
                return [(i,) for i in range(lo, hi + 1)]
            return [(lo + round(j * (size - 1) / (n - 1)),) for j in range(n)]
        if isinstance(node, IProduct):
            parts = [self.sample(f, env, max(2, int(n ** (1 / len(node.args))))) for f in node.args]
            out = [()]
            for p in parts:
                out = [a + b for a in out for b in p]
            return out[:n] if len(out) <= n else [out[round(j * (len(out) - 1) / (n - 1))] for j in range(n)]
        elems = self.ev.set_elements(node, env) if not isinstance(node, INamed) else self.inst.set_elements(node.name)
        if len(elems) <= n:
            return list(elems)
        return [elems[round(j * (len(elems) - 1) / (n - 1))] for j in range(n)]

    def domain_size(self, domain, env=None) -> float:
        """Estimated number of bindings of a domain (items, then the filter)."""
        if domain is None:
            return 1.0
        env = dict(env or {})
        total = self._items(list(domain.items), 0, env)
        if domain.cond is not None and domain.cond is not sp.true and total > 0:
            total *= self._selectivity(domain, env)
        return total

    def _items(self, items, k, env) -> float:
        if k == len(items):
            return 1.0
        binders, node = items[k]
        later = set()
        for _, nd in items[k + 1:]:
            later |= nd.free_symbols
        if not (set(binders) & later):  # later items do not depend on these binders
            return self.set_size(node, env) * self._items(items, k + 1, env)
        size = self.set_size(node, env)
        if size == 0:
            return 0.0
        picks = self.sample(node, env, SAMPLES)
        acc = 0.0
        for elem in picks:
            inner = dict(env)
            inner.update(zip(binders, (canon(v) for v in elem)))
            acc += self._items(items, k + 1, inner)
        return size * acc / len(picks)

    def _selectivity(self, domain, env) -> float:
        """The fraction of pseudo-random bindings (a fixed seed) that pass the domain's filter."""
        rng = random.Random(0)
        bindings = []
        for _ in range(SAMPLES * 4):
            b = dict(env)
            for binders, node in domain.items:
                elem = self.random_element(node, b, rng)
                if elem is None:
                    break
                b.update(zip(binders, (canon(v) for v in elem)))
            else:
                bindings.append(b)
        if not bindings:
            return 0.0
        passed = sum(1 for b in bindings if self.ev.truth(domain.cond, b))
        return passed / len(bindings)

    def random_element(self, node, env, rng) -> tuple | None:
        if isinstance(node, IRange):
            lo, hi = self.ev.value(node.lo, env), self.ev.value(node.hi, env)
            lo, hi = math.ceil(lo), math.floor(hi)
            return (rng.randint(lo, hi),) if hi >= lo else None
        if isinstance(node, IProduct):
            out = ()
            for f in node.args:
                e = self.random_element(f, env, rng)
                if e is None:
                    return None
                out += e
            return out
        elems = self.inst.set_elements(node.name) if isinstance(node, INamed) else self.ev.set_elements(node, env)
        return rng.choice(elems) if elems else None

    # ------------------------------------------------------------- nonzeros
    def refs(self, e, env) -> float:
        """Estimated variable references in an expression (sums and expectations multiply)."""
        if not isinstance(e, sp.Basic):
            return 0.0
        if isinstance(e, sp.Indexed):
            return 1.0 if e.base.label.name in self.var_names else 0.0
        if isinstance(e, sp.Symbol):
            return 1.0 if e.name in self.var_names else 0.0
        if isinstance(e, (IterSum, IterProd)):
            body, dnode, cond = e.args
            items = tuple((tuple(pair[0]), pair[1]) for pair in dnode.args[0])
            dom = ir.Domain(items, None if cond is sp.true else cond)
            inner = self.refs(body, env)
            return 0.0 if inner == 0 else inner * self.domain_size(dom, env)
        if isinstance(e, Expectation):
            body, label, _ = e.args
            inner = self.refs(body, env)
            return 0.0 if inner == 0 else inner * max(1, len(self.inst.outcomes(label.name)))
        return sum(self.refs(a, env) for a in e.args)

    def body_refs(self, body, env) -> float:
        if isinstance(body, ir.Rel):
            return self.refs(body.lhs, env) + self.refs(body.rhs, env)
        if isinstance(body, (ir.AllOf, ir.AnyOf)):
            return sum(self.body_refs(p, env) for p in body.parts)
        if isinstance(body, ir.Implication):
            return self.refs(body.premise, env) + self.body_refs(body.conclusion, env)
        if isinstance(body, ir.Complementarity):
            return self.refs(body.a, env) + self.refs(body.b, env)
        return 0.0

    def sample_env(self, domain) -> dict:
        """One binding of the domain's binders (the middle of each set), to evaluate inner sets at."""
        env: dict = {}
        if domain is None:
            return env
        for binders, node in domain.items:
            picks = self.sample(node, env, 3)
            if not picks:
                return env
            env.update(zip(binders, (canon(v) for v in picks[len(picks) // 2])))
        return env


def estimate(problem: ir.Problem, inst) -> SizeEstimate:
    """Estimate the rows, columns and nonzeros of every family of ``problem`` bound to ``inst``."""
    var_names = {v.name for v in problem.vars}
    est = _Estimator(inst, var_names)
    out = SizeEstimate()
    for v in problem.vars:
        out.families.append(FamilyEstimate(v.name, "variable", est.domain_size(v.domain), 0.0, v.span))
    for c in problem.constraints:
        rows = est.domain_size(c.domain)
        per_row = est.body_refs(c.body, est.sample_env(c.domain)) if rows else 0.0
        out.families.append(FamilyEstimate(c.name, "constraint", rows, rows * per_row, c.span))
    return out


def guard(problem: ir.Problem, inst, max_rows: float | None, source: dict | None = None) -> SizeEstimate | None:
    """Raise :class:`SizeLimitError` when ``problem`` is estimated beyond ``max_rows`` rows or columns.

    ``max_rows=None`` or ``0`` turns the guard off.  The message gives the estimate, names the
    largest family (with its source line) and says how to override the limit.
    """
    if not max_rows:
        return None
    try:
        size = estimate(problem, inst)
    except EvalError:
        return None  # the build reports the same error, located
    worst = max(size.rows, size.columns)
    if worst <= max_rows:
        return size
    from .errors import Diagnostic

    big = max(size.families, key=lambda f: f.rows)
    what = "rows" if big.kind == "constraint" else "columns"
    msg = (f"the model is too large to build: about {_fmt(size.rows)} rows, {_fmt(size.columns)} columns and "
           f"{_fmt(size.nonzeros)} nonzeros (limit {_fmt(max_rows)}); the largest family, "
           f"{big.kind} '{big.name}', has about {_fmt(big.rows)} {what}")
    diag = Diagnostic(msg, big.span,
                      help="pass --max-rows N to raise the limit (0 turns it off), use smaller data, "
                           "or let the reductions shrink the IC family (drop --no-reduce)")
    raise SizeLimitError(diag.render(source or {}))


def _fmt(x: float) -> str:
    if x < 1e4:
        return f"{x:.0f}"
    return f"{x:.3g}"


__all__ = ["DEFAULT_MAX_ROWS", "FamilyEstimate", "SizeEstimate", "SizeLimitError", "estimate", "guard"]

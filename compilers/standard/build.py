"""Build the compiled form (:class:`~.form.StandardForm`) from a bound IR problem, vectorised.

Stage: ``(ir.Problem, Instance) -> StandardForm``.  No Pyomo and no per-row
Python objects: every constraint family is one SymPy template, decomposed once
into *terms* ``coef * x[idx] (* y[idx'])`` (inside any number of sums and
expectations), and each term is evaluated with numpy over the whole index set
of the family at once (:class:`~mechdsl.evaluate.VecTarget`).  The triplets go
straight into ``scipy.sparse``.

What is not affine (or, in the objective, quadratic) in the variables, and the
logical bodies (implications with variable premises, disjunctions,
complementarity) raise :class:`NotLinear`; the caller then builds the Pyomo
model instead (:mod:`mechdsl.compilers.pyomo.model`), which handles everything.

:class:`FamilyRows` builds the rows of one family for any subset of its index
set: this is what constraint generation (lazy IC) and the repair loop use.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sps
import sympy as sp

from mechdsl.evaluate import EvalError, Evaluator, VecTarget, VectorUnsupported, canon, flat_key
from mechdsl.ir import nodes as ir
from mechdsl.ir.sym import AuxRef, Expectation, IEnum, IterSum, OthersExpectation

from .form import ColumnBlock, RowBlock, StandardForm


class NotLinear(Exception):
    """The problem is not an LP/QP/MILP this builder can express (the reason is the message)."""


# ----------------------------------------------------------------- term decomposition
@dataclass(frozen=True)
class Loop:
    """A sum or expectation around a term: ``binders`` range over ``items`` (filtered by ``cond``)."""

    kind: str                 #: "sum" or "E"
    binders: tuple            #: sum: the binders in order; E: (label symbol,)
    items: tuple              #: sum: ((binders, set node), ...); E: ()
    cond: object = None       #: filter (sum) or conditioning event (E), or None
    label: str | None = None  #: E: the type / population name
    agent: object = None      #: E-i (E[v[-i]]): the agent whose type is fixed


@dataclass(frozen=True)
class Term:
    coef: sp.Expr             #: variable-free factor
    vars: tuple               #: 0, 1 or 2 variable references (sp.Indexed or sp.Symbol)
    loops: tuple = ()         #: enclosing loops, outermost first


def _is_var(e, names) -> bool:
    if isinstance(e, sp.Indexed):
        return e.base.label.name in names
    return isinstance(e, sp.Symbol) and e.name in names


def decompose(expr, names: set[str], max_degree: int = 1) -> list[Term]:
    """``expr`` as a sum of :class:`Term`; raises :class:`NotLinear` beyond ``max_degree``."""
    if not isinstance(expr, sp.Basic):
        return [Term(sp.Float(expr) if isinstance(expr, float) else sp.Integer(expr), ())]
    return _decomp(expr, names, max_degree)


def _has_var(e, names) -> bool:
    if not isinstance(e, sp.Basic):
        return False
    for a in e.atoms(sp.Symbol, sp.Indexed):
        if _is_var(a, names):
            return True
    return False


def _decomp(e, names, deg) -> list[Term]:
    if not _has_var(e, names):
        return [Term(e, ())]
    if _is_var(e, names):
        return [Term(sp.Integer(1), (e,))]
    if isinstance(e, sp.Add):
        out = []
        for a in e.args:
            out += _decomp(a, names, deg)
        return out
    if isinstance(e, sp.Mul):
        const = [a for a in e.args if not _has_var(a, names)]
        terms = [Term(sp.Mul(*const), ())]
        for a in e.args:
            if _has_var(a, names):
                terms = _product(terms, _decomp(a, names, deg), deg)
        return terms
    if isinstance(e, sp.Pow):
        b, x = e.args
        if not _has_var(x, names) and x.is_Integer and 0 <= int(x) <= deg:
            terms = [Term(sp.Integer(1), ())]
            for _ in range(int(x)):
                terms = _product(terms, _decomp(b, names, deg), deg)
            return terms
        raise NotLinear(f"{e} is not polynomial of degree <= {deg} in the variables")
    if isinstance(e, IterSum):
        body, dnode, cond = e.args
        items = tuple((tuple(pair[0]), pair[1]) for pair in dnode.args[0])
        binders = tuple(b for bs, _ in items for b in bs)
        loop = Loop("sum", binders, items, None if cond is sp.true else cond)
        return [Term(t.coef, t.vars, (loop,) + t.loops) for t in _decomp(body, names, deg)]
    if isinstance(e, Expectation):
        body, label, cond = e.args
        loop = Loop("E", (label,), (), None if cond is sp.true else cond, label.name)
        return [Term(t.coef, t.vars, (loop,) + t.loops) for t in _decomp(body, names, deg)]
    if isinstance(e, OthersExpectation):
        body, label, cond, agent = e.args
        loop = Loop("E-i", (label,), (), None if cond is sp.true else cond, label.name, agent)
        return [Term(t.coef, t.vars, (loop,) + t.loops) for t in _decomp(body, names, deg)]
    raise NotLinear(f"{type(e).__name__.lower()}(...) of a variable is not linear: {e}")


def _product(a: list[Term], b: list[Term], deg) -> list[Term]:
    out = []
    for s in a:
        for t in b:
            if len(s.vars) + len(t.vars) > deg:
                raise NotLinear("a product of variables" + (" in a constraint" if deg == 1 else ""))
            sb = {x for lp in s.loops for x in lp.binders}
            if any(x in sb for lp in t.loops for x in lp.binders):
                raise NotLinear("two factors sum over the same index name")
            out.append(Term(s.coef * t.coef, s.vars + t.vars, s.loops + t.loops))
    return out


# ----------------------------------------------------------------- columns
class Columns:
    """Column numbering of the variables: vectorised lookup of ``name[idx arrays]``."""

    def __init__(self):
        self.blocks: dict[str, ColumnBlock] = {}
        self._lookup: dict[str, tuple] = {}
        self.n = 0

    def add(self, name: str, keys: list[tuple], kind: str) -> ColumnBlock:
        if keys and any(isinstance(c, tuple) for c in keys[0]):
            keys = [flat_key(k) for k in keys]  # variable keys are flat: a profile contributes its entries
        b = ColumnBlock(name, keys, self.n, kind)
        self.blocks[name] = b
        self.n += len(keys)
        if keys and keys[0] and all(isinstance(c, (int, np.integer)) for k in keys for c in k):
            arr = np.asarray(keys, dtype=np.int64)
            lo, hi = arr.min(axis=0), arr.max(axis=0)
            table = np.full(tuple(hi - lo + 1), -1, dtype=np.int64)
            table[tuple((arr - lo).T)] = np.arange(b.start, b.stop)
            self._lookup[name] = ("dense", table, lo, hi)
        else:
            self._lookup[name] = ("dict", {k: b.start + i for i, k in enumerate(keys)})
        return b

    def cols(self, name: str, idx: list, size: int) -> np.ndarray:
        """Column numbers of ``name[idx]`` where each component of idx is a scalar or an array of ``size``."""
        kind = self._lookup[name]
        if not idx:
            if kind[0] == "dict" and () in kind[1]:
                return np.full(size, kind[1][()], dtype=np.int64)
            raise EvalError(f"variable '{name}' needs an index", name=name)
        if kind[0] == "dense":
            _, table, lo, hi = kind
            if len(idx) != table.ndim:
                raise EvalError(f"{name} takes {table.ndim} indices, got {len(idx)}", name=name)
            pos = []
            for d, comp in enumerate(idx):
                a = np.broadcast_to(np.asarray(comp), (size,))
                if a.dtype.kind not in "iu":
                    if a.dtype.kind == "f" and np.all(np.mod(a, 1) == 0):
                        a = a.astype(np.int64)
                    else:
                        raise EvalError(f"an index of {name} is not an integer", name=name)
                bad = (a < lo[d]) | (a > hi[d])
                if bad.any():
                    raise EvalError(f"{name}[{_bad_key(idx, np.argmax(bad))}] is outside the index set of var "
                                    f"'{name}'", name=name)
                pos.append(a - lo[d])
            out = table[tuple(pos)]
            if (out < 0).any():
                raise EvalError(f"{name}[{_bad_key(idx, int(np.argmax(out < 0)))}] is outside the index set of "
                                f"var '{name}'", name=name)
            return out
        table = kind[1]
        comps = [np.broadcast_to(np.asarray(c, dtype=object), (size,)) for c in idx]
        out = np.empty(size, dtype=np.int64)
        for i in range(size):
            key = tuple(canon(c[i]) for c in comps)
            try:
                out[i] = table[key]
            except KeyError:
                raise EvalError(f"{name}[{','.join(map(str, key))}] is outside the index set of var '{name}'",
                                name=name) from None
        return out


def _bad_key(idx, i) -> str:
    return ",".join(str(np.asarray(c).ravel()[i] if np.ndim(c) else c) for c in idx)


# ----------------------------------------------------------------- vector evaluation
class _Vec:
    """Vectorised evaluation of variable-free expressions, with a scalar fallback per element."""

    def __init__(self, inst):
        self.inst = inst
        self.vev = Evaluator(inst, VecTarget(inst))
        self.sev = Evaluator(inst)

    def floats(self, expr, env: dict, size: int) -> np.ndarray:
        try:
            with np.errstate(all="ignore"):
                v = self.vev.value(expr, env)
            out = np.broadcast_to(np.asarray(v, dtype=float), (size,))
            return out
        except (VectorUnsupported, TypeError, ValueError):
            pass
        out = np.empty(size)
        for i in range(size):
            local = {k: _at(v, i) for k, v in env.items()}
            out[i] = float(self.sev.value(expr, local))
        return out

    def raw(self, expr, env: dict, size: int):
        """Evaluate an index expression: an int array (or object array for non-integer labels)."""
        try:
            v = self.vev.value(expr, env)
            if isinstance(v, tuple):
                return v
            a = np.asarray(v)
            if a.dtype == object:
                raise VectorUnsupported("object")
            return np.broadcast_to(a, (size,))
        except (VectorUnsupported, TypeError, ValueError):
            out = []
            for i in range(size):
                local = {k: _at(v, i) for k, v in env.items()}
                out.append(canon(self.sev.value(expr, local)))
            if all(isinstance(x, int) for x in out):
                return np.asarray(out, dtype=np.int64)
            return np.asarray(out, dtype=object)

    def truth(self, cond, env: dict, size: int) -> np.ndarray:
        try:
            v = self.vev.value(cond, env)
            return np.broadcast_to(np.asarray(v, dtype=bool), (size,))
        except (VectorUnsupported, TypeError, ValueError):
            out = np.empty(size, dtype=bool)
            for i in range(size):
                local = {k: _at(v, i) for k, v in env.items()}
                out[i] = bool(self.sev.value(cond, local))
            return out


def _item(v, i):
    if _is_cols(v):  # a profile column: one array per entry
        return tuple(_item(c, i) for c in v)
    x = v[i]
    return x.item() if isinstance(x, np.generic) else x


def _is_cols(v) -> bool:
    """A profile-valued column: a tuple of arrays (one per entry of the profile)."""
    return isinstance(v, tuple) and bool(v) and isinstance(v[0], np.ndarray)


def _at(v, i):
    """Binding ``i`` of an env value (a column, a profile column, or a constant)."""
    if isinstance(v, np.ndarray) or _is_cols(v):
        return _item(v, i)
    return v


def _take(v, idx, size):
    """Rows ``idx`` of an env value with ``size`` rows; constants pass through."""
    if isinstance(v, np.ndarray) and v.shape == (size,):
        return v[idx]
    if _is_cols(v) and v[0].shape == (size,):
        return tuple(c[idx] for c in v)
    return v


def _sel(a, idx):
    """Rows ``idx`` (a mask, an index array or a slice) of an index column."""
    return tuple(c[idx] for c in a) if _is_cols(a) else a[idx]


def _elements_arrays(elems: list[tuple], nb: int) -> list[np.ndarray]:
    if not elems:
        return [np.zeros(0, dtype=np.int64) for _ in range(nb)]
    if any(isinstance(c, tuple) for c in elems[0]):  # profile components: a tuple of arrays each
        out = []
        for d in range(len(elems[0])):
            if isinstance(elems[0][d], tuple):
                arr = np.asarray([e[d] for e in elems], dtype=np.int64).reshape(len(elems), -1)
                out.append(tuple(arr[:, j] for j in range(arr.shape[1])))
            else:
                out.extend(_elements_arrays([(e[d],) for e in elems], 1))
        return out
    if all(isinstance(c, (int, np.integer)) for e in elems for c in e):
        arr = np.asarray(elems, dtype=np.int64).reshape(len(elems), -1)
    else:
        arr = np.empty((len(elems), len(elems[0])), dtype=object)
        for i, e in enumerate(elems):
            arr[i, :] = list(e)
    return [arr[:, d] for d in range(arr.shape[1])]


def _expand(env: dict, size: int, binders: tuple, cols: list[np.ndarray]):
    """Cartesian product of ``size`` rows with the loop elements ``cols``: (new env, row index, new size)."""
    L = (len(cols[0][0]) if _is_cols(cols[0]) else len(cols[0])) if cols else 1
    rep = np.repeat(np.arange(size), L)
    new = {}
    for k, v in env.items():
        new[k] = _take(v, rep, size)
    for b, c in zip(binders, cols):
        new[b] = tuple(np.tile(cc, size) for cc in c) if _is_cols(c) else np.tile(c, size)
    return new, rep, size * L


# ----------------------------------------------------------------- one family
class _TermEvaluator:
    """Evaluates decomposed :class:`Term` s over arrays of index bindings (constraint families, the objective)."""

    def __init__(self, inst, columns: Columns, names: set[str]):
        self.inst, self.columns, self.names = inst, columns, names
        self.vec = _Vec(inst)

    def _coef(self, t: Term, env: dict, size: int) -> np.ndarray:
        """The term's coefficient at each binding, times the probability weight of its expectations."""
        return self.vec.floats(t.coef, env, size) * env.get("__w__", 1.0)


    def _cols(self, v, env, size):
        if isinstance(v, sp.Symbol):
            return self.columns.cols(v.name, [], size)
        idx = []
        for a in v.indices:
            r = self.vec.raw(a, env, size)
            if isinstance(r, tuple):
                idx.extend(r)  # a product-type binder contributes its components
            else:
                idx.append(r)
        return self.columns.cols(v.base.label.name, idx, size)

    def _loops(self, loops, env, size):
        rows = np.arange(size)
        env = dict(env)
        for lp in loops:
            if lp.kind == "sum":
                for bs, node in lp.items:
                    if node.free_symbols & {k for k, v in env.items() if isinstance(v, np.ndarray)}:
                        raise NotLinear("a sum whose index set depends on the row index (vector path)")
                    elems = self.vec.sev.set_elements(node, {k: v for k, v in env.items()
                                                             if not isinstance(v, np.ndarray)})
                    cols = _elements_arrays(elems, len(bs))
                    env, rep, size = _expand(env, size, tuple(bs), cols)
                    rows = rows[rep]
                if lp.cond is not None and size:
                    mask = self.vec.truth(lp.cond, env, size)
                    env = {k: _take(v, mask, size) for k, v in env.items()}
                    rows = rows[mask]
                    size = int(mask.sum())
            elif lp.kind == "E-i":
                env, rows, size = self._others_loop(lp, env, rows, size)
            else:
                if lp.label in self.inst.populations:
                    raise NotLinear("an expectation over a population (vector path)")
                outcomes = self.inst.outcomes(lp.label)
                values = [o[0] for o in outcomes]
                probs = np.asarray([o[1] for o in outcomes], dtype=float)
                tuple_valued = isinstance(values[0], tuple)
                L = len(values)
                rep = np.repeat(np.arange(size), L)
                new = {k: _take(v, rep, size) for k, v in env.items()}
                if tuple_valued:
                    comps = _elements_arrays(values, len(values[0]))
                    new[lp.binders[0]] = tuple(np.tile(cc, size) for cc in comps)
                else:
                    new[lp.binders[0]] = np.tile(np.asarray(values), size)
                w = np.tile(probs, size) * (new.get("__w__", 1.0))
                new["__w__"] = w
                group = np.arange(size * L) // L  # the enclosing binding each outcome belongs to
                if lp.cond is not None:
                    mask = self.vec.truth(lp.cond, {k: v for k, v in new.items() if k != "__w__"}, size * L)
                    keep = np.flatnonzero(mask)
                    total = np.bincount(group[keep], weights=np.tile(probs, size)[keep], minlength=size)
                    if np.any(total[np.unique(group)] <= 0):
                        raise EvalError(f"E[{lp.label} | {lp.cond}]: the condition has probability 0")
                    new = {k: _take(v, keep, size * L) for k, v in new.items()}
                    new["__w__"] = new["__w__"] / total[group[keep]]
                    rows = rows[rep][keep]
                    size = len(keep)
                else:
                    rows = rows[rep]
                    size = size * L
                env = new
        return env, rows, size


    def _others_loop(self, lp, env, rows, size):
        """E[v[-i]]: every binding times the others' profiles (agent i's entry a hole), per agent value."""
        ia = self.vec.raw(lp.agent, env, size)
        if isinstance(ia, tuple):
            raise EvalError("the agent of E[v[-i]] is a profile, not an agent")
        ia = np.broadcast_to(np.asarray(ia), (size,))
        parts, part_rows = [], []
        for a in (np.unique(ia) if size else []):
            sel = np.flatnonzero(ia == a)
            outcomes = self.inst.others_outcomes(lp.label, canon(_item(np.asarray([a]), 0)))
            values = [o[0] for o in outcomes]
            probs = np.asarray([o[1] for o in outcomes], dtype=float)
            L, s = len(values), len(sel)
            sub = {k: _take(v, sel, size) for k, v in env.items()}
            rep = np.repeat(np.arange(s), L)
            new = {k: _take(v, rep, s) for k, v in sub.items()}
            comps = _elements_arrays(values, len(values[0]))
            new[lp.binders[0]] = tuple(np.tile(cc, s) for cc in comps)
            new["__w__"] = np.tile(probs, s) * new.get("__w__", 1.0)
            prow = rows[sel][rep]
            if lp.cond is not None:
                mask = self.vec.truth(lp.cond, {k: v for k, v in new.items() if k != "__w__"}, s * L)
                keep = np.flatnonzero(mask)
                group = np.arange(s * L) // L
                total = np.bincount(group[keep], weights=np.tile(probs, s)[keep], minlength=s)
                if np.any(total <= 0):
                    raise EvalError(f"E[{lp.label}[-{a}] | {lp.cond}]: the condition has probability 0")
                new = {k: _take(v, keep, s * L) for k, v in new.items()}
                new["__w__"] = new["__w__"] / total[group[keep]]
                prow = prow[keep]
            parts.append((new, len(prow)))
            part_rows.append(prow)
        if not parts:
            return dict(env), rows[:0], 0
        out = {}
        for k in parts[0][0]:
            vals = [p[k] for p, _ in parts]
            v0, n0 = vals[0], parts[0][1]
            if isinstance(v0, np.ndarray) and v0.shape == (n0,):
                out[k] = np.concatenate(vals)
            elif _is_cols(v0) and v0[0].shape == (n0,):
                out[k] = tuple(np.concatenate([v[j] for v in vals]) for j in range(len(v0)))
            else:
                out[k] = v0
        rows = np.concatenate(part_rows)
        return out, rows, len(rows)


class FamilyRows(_TermEvaluator):
    """The rows of one constraint family (one relation of its body), buildable for any index subset."""

    def __init__(self, c: ir.ConstraintDef, rel: ir.Rel, part: str, inst, columns: Columns, names: set[str],
                 premise=None):
        super().__init__(inst, columns, names)
        self.c, self.rel, self.part = c, rel, part
        self.premise = premise
        self.binders = c.domain.binders if c.domain else ()
        try:
            self.terms = decompose(sp.Add(rel.lhs, -rel.rhs), names, 1)
        except NotLinear as exc:
            raise NotLinear(f"constraint {c.name}: {exc}") from None

    # ------------------------------------------------------------ index set
    def index_arrays(self, env: dict | None = None) -> tuple[list[np.ndarray], int]:
        """Every binding of the family's domain: one array per binder (in binder order), and the count."""
        c = self.c
        if c.domain is None:
            return [], 1
        env = dict(env or {})
        binders = c.domain.binders
        independent = all(not (node.free_symbols & set(binders)) for _, node in c.domain.items)
        if independent:
            cols_env, size = dict(env), 1
            for bs, node in c.domain.items:
                elems = self.vec.sev.set_elements(node, env)
                cols = _elements_arrays(elems, len(bs))
                cols_env, _, size = _expand(cols_env, size, tuple(bs), cols)
            arrays = [cols_env[b] if isinstance(cols_env[b], np.ndarray) or _is_cols(cols_env[b])
                      else np.full(size, cols_env[b])
                      for b in binders]
            if c.domain.cond is not None:
                mask = self.vec.truth(c.domain.cond, cols_env, size)
                arrays = [_sel(a, mask) for a in arrays]
                size = int(mask.sum())
        else:
            keys = self.vec.sev.domain_keys(c.domain, env)
            size = len(keys)
            arrays = _elements_arrays(keys, len(binders)) if keys else [np.zeros(0, dtype=np.int64)] * len(binders)
        if self.premise is not None and size:
            local = dict(env)
            local.update(zip(binders, arrays))
            mask = self.vec.truth(self.premise, local, size)
            arrays = [_sel(a, mask) for a in arrays]
            size = int(mask.sum())
        return arrays, size

    # ------------------------------------------------------------ rows
    def rows(self, arrays: list[np.ndarray], size: int, env: dict | None = None):
        """(A (size x n, csr), lo, hi) of the rows at the given bindings."""
        local = dict(env or {})
        local.update(zip(self.binders, arrays))
        r_idx, c_idx, vals = [], [], []
        const = np.zeros(size)
        for t in self.terms:
            tenv, rows, tsize = self._loops(t.loops, local, size)
            if tsize == 0:
                continue
            coef = self._coef(t, tenv, tsize)
            if not t.vars:
                const += np.bincount(rows, weights=coef, minlength=size)
                continue
            cols = self._cols(t.vars[0], tenv, tsize)
            r_idx.append(rows)
            c_idx.append(cols)
            vals.append(coef)
        n = self.columns.n
        if r_idx:
            rr, cc, vv = np.concatenate(r_idx), np.concatenate(c_idx), np.concatenate(vals)
            keep = vv != 0
            A = sps.csr_matrix((vv[keep], (rr[keep], cc[keep])), shape=(size, n))
            A.sum_duplicates()
        else:
            A = sps.csr_matrix((size, n))
        if not np.all(np.isfinite(const)) or (A.nnz and not np.all(np.isfinite(A.data))):
            bad = int(np.argmax(~np.isfinite(const))) if not np.all(np.isfinite(const)) else 0
            raise EvalError(f"in constraint {self.c.name}{_key_text(arrays, bad)}: a coefficient is not a finite "
                            "number (a division by zero, or log/sqrt outside its domain)", span=self.c.span)
        op = self.rel.op
        inf = np.full(size, np.inf)
        if op == ">=":
            lo, hi = -const, inf
        elif op == "<=":
            lo, hi = -inf, -const
        else:
            lo, hi = -const, -const
        return A, lo, hi

    # ------------------------------------------------------------ separation
    def slack(self, x: np.ndarray, arrays, size, chunk: int = 200_000) -> np.ndarray:
        """Slack of every given binding at ``x`` (>= 0 when satisfied), computed chunk by chunk."""
        out = np.empty(size)
        for s in range(0, size, chunk):
            e = min(size, s + chunk)
            A, lo, hi = self.rows([_sel(a, slice(s, e)) for a in arrays], e - s)
            act = A @ x
            out[s:e] = np.minimum(act - lo, hi - act)
        return out


def _key_text(arrays, i) -> str:
    if not arrays:
        return ""
    return "[" + ",".join(str(_item(a, i)) for a in arrays) + "]"


class KeyArray:
    """A read-only sequence of index tuples backed by numpy arrays (one per index position)."""

    def __init__(self, arrays: list[np.ndarray], size: int):
        self.arrays = arrays
        self.size = size

    def __len__(self):
        return self.size

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.size))]
        return tuple(_item(a, i) for a in self.arrays)

    def __iter__(self):
        cols = [list(zip(*[c.tolist() for c in a])) if _is_cols(a) else a.tolist() for a in self.arrays]
        return iter(zip(*cols)) if cols else iter([()] * self.size)


# ----------------------------------------------------------------- the builder
@dataclass
class Built:
    """The compiled form and what is needed to extend it (cuts, lazy rows)."""

    form: StandardForm
    families: dict[str, list[FamilyRows]] = field(default_factory=dict)  #: family name -> its parts
    build_time: float = 0.0
    columns: Columns | None = None


def _families(c: ir.ConstraintDef, inst, columns, names):
    body = c.body
    premise = None
    if isinstance(body, ir.Implication):
        if _has_var(body.premise, names):
            raise NotLinear(f"constraint {c.name}: an implication whose premise involves variables")
        premise, body = body.premise, body.conclusion
    if isinstance(body, ir.Rel):
        return [FamilyRows(c, body, "", inst, columns, names, premise)]
    if isinstance(body, ir.AllOf) and all(isinstance(p, ir.Rel) for p in body.parts):
        return [FamilyRows(c, p, str(k), inst, columns, names, premise) for k, p in enumerate(body.parts, 1)]
    raise NotLinear(f"constraint {c.name}: a {type(body).__name__} body (disjunction, implication or "
                    "complementarity) needs the MILP/MPCC compilation")


def build(problem: ir.Problem, inst, env: dict | None = None, eliminated: dict | None = None,
          restrict: dict | None = None) -> Built:
    """Compile ``problem`` bound to ``inst`` into a :class:`StandardForm`.

    ``eliminated`` maps variables removed by ``eliminate_payments`` to their
    Elimination (their objective terms are substituted, summed by parts);
    ``restrict`` maps a family name to the index arrays of the rows to build
    (constraint generation starts from such a subset).
    """
    t0 = time.perf_counter()
    env = dict(env or {})
    eliminated = eliminated or {}
    names = {v.name for v in problem.vars} | set(eliminated)
    columns = Columns()
    vec = _Vec(inst)
    lo_parts, hi_parts, int_parts, x0_parts = [], [], [], []
    for v in problem.vars:
        try:
            keys = vec.sev.domain_keys(v.domain, env)
        except EvalError as exc:
            raise exc.again(f"in var {v.name}: {exc.message}", exc.name, exc.span or v.span) from None
        b = columns.add(v.name, keys, v.kind)
        size = len(keys)
        arrays = _elements_arrays(keys, len(v.domain.binders)) if v.domain is not None and keys else []
        local = dict(env)
        if v.domain is not None:
            local.update(zip(v.domain.binders, arrays))
        if size == 0:  # an empty index set: no bound to evaluate (its binders have no value)
            lb = ub = x0 = np.zeros(0)
        else:
            try:
                lb = vec.floats(v.lb, local, size) if v.lb is not None else np.full(size, -np.inf)
                ub = vec.floats(v.ub, local, size) if v.ub is not None else np.full(size, np.inf)
                x0 = vec.floats(v.init, local, size) if v.init is not None else np.zeros(size)
            except EvalError as exc:
                raise exc.again(f"in var {v.name}: {exc.message}", exc.name, exc.span or v.span) from None
        if v.kind == "nonnegative":
            lb = np.maximum(lb, 0)
        if v.kind == "binary":
            lb, ub = np.maximum(lb, 0), np.minimum(ub, 1)
        if np.isnan(lb).any() or np.isnan(ub).any():
            i = int(np.argmax(np.isnan(lb) | np.isnan(ub)))
            raise EvalError(f"a bound of var {v.name}{_key_text(arrays, i)} is not a number", span=v.span)
        if (lb > ub + 1e-12).any():  # a data error (exit 2), located at the var by the caller
            i = int(np.argmax(lb > ub + 1e-12))
            raise EvalError(f"var {v.name}{_key_text(arrays, i)} has lower bound {lb[i]:g} above its upper "
                            f"bound {ub[i]:g}, so no value fits", span=v.span)
        lo_parts.append(lb), hi_parts.append(ub), x0_parts.append(np.clip(x0, lb, ub))
        int_parts.append(np.full(size, v.kind in ("binary", "integer")))
    n = columns.n

    blocks, mats, rlo, rhi = [], [], [], []
    families: dict[str, list[FamilyRows]] = {}
    m = 0
    for c in problem.constraints:
        if c.check_only:
            continue
        try:
            parts = _families(c, inst, columns, names)
        except OverflowError:
            raise EvalError(f"in constraint {c.name}: a value overflows a double", None, c.span) from None
        except EvalError as exc:
            raise exc.again(exc.message if exc.message.startswith("in constraint") else
                            f"in constraint {c.name}: {exc.message}", exc.name, exc.span or c.span) from None
        families[c.name] = parts
        for fam in parts:
            try:
                if restrict is not None and c.name in restrict:
                    arrays, size = restrict[c.name]
                else:
                    arrays, size = fam.index_arrays(env)
                A, lo, hi = fam.rows(arrays, size, env)
            except OverflowError:
                raise EvalError(f"in constraint {c.name}: a value overflows a double", None, c.span) from None
            except EvalError as exc:
                raise exc.again(exc.message if exc.message.startswith("in constraint") else
                                f"in constraint {c.name}: {exc.message}", exc.name, exc.span or c.span) from None
            A, lo, hi, arrays, size = _drop_constant_rows(c, A, lo, hi, arrays, size)
            blocks.append(RowBlock(c.name, c.kind.value, KeyArray(arrays, size), m, fam.part, c.span, c.origin))
            mats.append(A), rlo.append(lo), rhi.append(hi)
            m += size
    A = sps.vstack(mats, format="csr") if mats else sps.csr_matrix((0, n))
    form = StandardForm(
        sense="maximize", c=np.zeros(n), A=A,
        row_lo=np.concatenate(rlo) if rlo else np.zeros(0), row_hi=np.concatenate(rhi) if rhi else np.zeros(0),
        col_lo=np.concatenate(lo_parts) if lo_parts else np.zeros(0),
        col_hi=np.concatenate(hi_parts) if hi_parts else np.zeros(0),
        integer=np.concatenate(int_parts) if int_parts else np.zeros(0, dtype=bool),
        x0=np.concatenate(x0_parts) if x0_parts else np.zeros(0),
        columns=list(columns.blocks.values()), rows=blocks)
    if problem.objective is not None:
        try:
            _objective(form, problem.objective, inst, columns, names, env, eliminated)
        except EvalError as exc:
            msg = exc.message if exc.message.startswith("in the objective") else f"in the objective: {exc.message}"
            raise exc.again(msg, exc.name, exc.span or problem.objective.span) from None
    return Built(form, families, time.perf_counter() - t0, columns)


def _drop_constant_rows(c, A, lo, hi, arrays, size):
    """Rows with no variable left: check them against the data and drop them."""
    nnz = np.diff(A.indptr)
    empty = nnz == 0
    if not empty.any():
        return A, lo, hi, arrays, size
    bad = empty & ((lo > 1e-9) | (hi < -1e-9))
    if bad.any():  # a data error (exit 2), located at the constraint by the caller
        i = int(np.argmax(bad))
        by = lo[i] if lo[i] > 1e-9 else -hi[i]
        raise EvalError(f"in constraint {c.name}{_key_text(arrays, i)}: no variable is left in it and the data "
                        f"alone violate it (by {by:g}), so the model is infeasible", span=c.span)
    keep = ~empty
    return A[keep], lo[keep], hi[keep], [_sel(a, keep) for a in arrays], int(keep.sum())


def _objective(form: StandardForm, o: ir.ObjectiveDef, inst, columns: Columns, names, env, eliminated):
    form.sense = o.sense
    form.objective_name = o.name
    try:
        terms = decompose(o.expr, names, 2)
    except NotLinear as exc:
        raise NotLinear(f"the objective: {exc}") from None
    n = columns.n
    fam = _TermEvaluator(inst, columns, names)
    c = np.zeros(n + sum(len(el.order) for el in eliminated.values()))
    # Eliminated transfers get temporary columns after the real ones.
    elim_cols, start = {}, n
    for y, el in eliminated.items():
        elim_cols[y] = (start, start + len(el.order))
        start += len(el.order)
    qi, qj, qv = [], [], []
    c0 = 0.0
    for t in terms:
        tenv, rows, tsize = fam._loops(t.loops, dict(env), 1)
        if tsize == 0:
            continue
        coef = fam._coef(t, tenv, tsize)
        if not np.all(np.isfinite(coef)):
            raise EvalError("in the objective: a coefficient is not a finite number", span=o.span)
        if not t.vars:
            c0 += float(coef.sum())
            continue
        cols = [_obj_cols(fam, v, tenv, tsize, eliminated, elim_cols) for v in t.vars]
        if len(cols) == 1:
            np.add.at(c, cols[0], coef)
        else:
            a, b = cols
            if (a >= n).any() or (b >= n).any():
                raise NotLinear("the objective is quadratic in an eliminated transfer")
            qi += [a, b]
            qj += [b, a]
            qv += [coef, coef]
    if qi:
        Q = sps.csc_matrix((np.concatenate(qv), (np.concatenate(qi), np.concatenate(qj))), shape=(n, n))
        Q.sum_duplicates()
        form.Q = Q
    c_main = c[:n].copy()
    for y, el in eliminated.items():
        s, e = elim_cols[y]
        c_y = dict(zip(el.order, c[s:e]))
        c0 += _substitute(c_main, c_y, el, fam, env)
    form.c = c_main
    form.c0 = c0


def _obj_cols(fam, v, env, size, eliminated, elim_cols):
    name = v.base.label.name if isinstance(v, sp.Indexed) else v.name
    if name in eliminated:
        el = eliminated[name]
        pos = {k: i for i, k in enumerate(el.order)}
        idx = fam.vec.raw(v.indices[0], env, size) if isinstance(v, sp.Indexed) else None
        s, _ = elim_cols[name]
        return np.asarray([s + pos[canon(_item(idx, i))] for i in range(size)], dtype=np.int64)
    return fam._cols(v, env, size)


def _substitute(c: np.ndarray, c_y: dict, el, fam: _TermEvaluator, env) -> float:
    """Add sum_k c_y[k] y[k] with y given by the payment rule, summed by parts (O(K) terms); returns a constant.

    y[e] = (R - rest(e, e)) / kappa and y[k] = y[j(k)] + d[k] with d[k] = (rest(k, j) - rest(k, k)) / kappa,
    so sum_k c_k y[k] = sum_k C_k d[k] with C_k the sum of c over k and every type beyond k (C_e: all).
    """
    pos = {v: i for i, v in enumerate(el.order)}
    e = el.extreme
    C = {}
    for k in sorted(el.order, key=lambda k: -abs(pos[k] - pos[e])):
        C[k] = c_y.get(k, 0.0) + sum(C[ch] for ch in el.children.get(k, ()))
    const = 0.0

    def add_affine(expr, local, weight):
        nonlocal const
        for t in decompose(expr, fam.names, 1):
            tenv, _, tsize = fam._loops(t.loops, dict(local), 1)
            if tsize == 0:
                continue
            coef = fam._coef(t, tenv, tsize) * weight
            if not t.vars:
                const += float(coef.sum())
            else:
                np.add.at(c, fam._cols(t.vars[0], tenv, tsize), coef)

    add_affine(el.R, dict(env), C[e] / el.kappa)
    add_affine(el.rest, {**env, el.t: e, el.r: e}, -C[e] / el.kappa)
    for k, j in el.parent.items():
        if C[k] != 0:
            add_affine(el.rest, {**env, el.t: k, el.r: j}, C[k] / el.kappa)
            add_affine(el.rest, {**env, el.t: k, el.r: k}, -C[k] / el.kappa)
    return const


def values_of(form: StandardForm, x: np.ndarray) -> dict[str, dict[tuple, float]]:
    """The solution in spec variables: ``{name: {key: value}}``."""
    out = {}
    for b in form.columns:
        seg = x[b.start:b.stop].tolist()
        out[b.name] = dict(zip(b.keys, seg))
    return out

"""Solve strategies over the compiled form: one solve, IC by constraint generation, and separation.

Stage: ``compiled form -> backend -> solution`` (between :mod:`mechdsl.compilers.standard`
and :mod:`mechdsl.verify`).

* :func:`solve_form` hands a :class:`~mechdsl.compilers.standard.build.Built` to
  HiGHS; with *lazy* families it starts from a subset of their rows (the IC
  rows between neighbouring types in the type grid), separates the violated
  rows of the whole family at the solution (vectorised, chunk by chunk), adds
  the worst one per true type, and re-solves warm-started until no row is
  violated.  The optimum then equals the full model's: the relaxation's
  optimum is feasible for every row, so it is optimal for the full model, and
  the duals of the rows never added are zero.
* :func:`violated_keys` lists every violated instance of the original
  constraint families at a solution; the repair loop in :mod:`mechdsl.api`
  adds them back as cuts when a reduced model's solution fails verification.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .compilers.standard.build import Built, Columns, FamilyRows, KeyArray, NotLinear, _families, _item, _sel
from .compilers.standard.form import BackendSolution, RowBlock
from .ir import nodes as ir

#: IC families with more rows than this are generated lazily under ``--ic auto``.
LAZY_AUTO_ROWS = 100_000
#: Families whose full row matrix has fewer nonzeros than this are kept in memory for separation.
KEEP_NNZ = 20_000_000
MAX_ROUNDS = 500


@dataclass
class LazyFamily:
    """A constraint family whose rows are added on demand."""

    fam: FamilyRows
    arrays: list           #: every binding of the family (one array per binder)
    size: int
    added: np.ndarray      #: bool mask of the rows already in the model
    group: np.ndarray      #: the true type of each row (rows are added per true type)
    A_full: object = None  #: the whole family's rows, when small enough to keep


@dataclass
class FormOutcome:
    solution: BackendSolution
    rounds: list = field(default_factory=list)  #: per round: (rows added, max violation found)
    lazy_rows: dict = field(default_factory=dict)  #: family -> (rows in the model, rows in the family)


def neighbour_mask(fam: FamilyRows, arrays: list, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of an IC family between neighbouring types, and each row's true-type group id.

    The binders split into (true type, report) halves; two types are neighbours when their positions in the
    grid of type values differ by one step in exactly one coordinate.
    """
    nb = len(arrays)
    if nb == 0:
        return np.zeros(size, dtype=bool), np.zeros(size, dtype=np.int64)
    if nb % 2 or any(isinstance(a, tuple) for a in arrays):
        # Not a (true type, report) split: rows are grouped by every binder but the last (the report).
        cols = [c for a in arrays[:-1] for c in (a if isinstance(a, tuple) else (a,))]
        if not cols or any(np.asarray(c).dtype == object for c in cols):
            return np.zeros(size, dtype=bool), np.arange(size, dtype=np.int64)
        _, group = np.unique(np.stack(cols, axis=1), axis=0, return_inverse=True)
        return np.zeros(size, dtype=bool), group.ravel()
    h = nb // 2
    dist = np.zeros(size, dtype=np.int64)
    for d in range(h):
        t, r = arrays[d], arrays[h + d]
        vals = np.unique(np.concatenate([t, r]))
        dist += np.abs(np.searchsorted(vals, t) - np.searchsorted(vals, r))
    true = np.stack([np.searchsorted(np.unique(arrays[d]), arrays[d]) for d in range(h)], axis=1)
    _, group = np.unique(true, axis=0, return_inverse=True)
    return dist == 1, group.ravel()


def lazy_candidates(problem: ir.Problem, inst, columns: Columns, names: set[str], mode: str, env=None) -> dict:
    """The IC families to generate lazily under ``--ic lazy|auto`` (name -> LazyFamily)."""
    out = {}
    if mode == "full":
        return out
    for c in problem.constraints:
        if c.kind != ir.ConKind.IC or c.check_only or c.origin is not None:
            continue
        try:
            parts = _families(c, inst, columns, names)
        except NotLinear:
            continue
        if len(parts) != 1:
            continue
        fam = parts[0]
        arrays, size = fam.index_arrays(env)
        if mode == "auto" and size <= LAZY_AUTO_ROWS:
            continue
        start, group = neighbour_mask(fam, arrays, size)
        out[c.name] = LazyFamily(fam, arrays, size, start.copy(), group)
    return out


def _subset(lf: LazyFamily, mask: np.ndarray):
    return [_sel(a, mask) for a in lf.arrays], int(mask.sum())


def solve_form(built: Built, lazy: dict, *, options=None, time_limit=None, tee=False, progress=None,
               sep_tol: float = 1e-9, deadline=None, label: str = "main problem") -> FormOutcome:
    """Solve the compiled form with HiGHS; generate the rows of ``lazy`` families until none is violated."""
    from .compilers.highs.backend import HighsSession

    if tee:  # -v: each solver log says which problem it belongs to
        import sys

        print(f"===== HiGHS: {label} ({built.form.problem_class}, {built.form.n} columns, {built.form.m} rows) =====",
              file=sys.stderr, flush=True)
    session = HighsSession(built.form, options=options, time_limit=time_limit, tee=tee, deadline=deadline)
    outcome = FormOutcome(session.solve())
    if not lazy:
        return outcome
    form = built.form
    for rnd in range(1, MAX_ROUNDS + 1):
        sol = outcome.solution
        if not sol.ok:
            break
        x = sol.x
        tol = sep_tol * max(1.0, float(np.max(np.abs(x))) if x.size else 1.0)
        added_now, worst = 0, 0.0
        for name, lf in lazy.items():
            slack = _family_slack(lf, x)
            viol = (slack < -tol) & ~lf.added
            if not viol.any():
                continue
            worst = max(worst, float(-slack[viol].min()))
            idx = np.flatnonzero(viol)
            # The most violated row per true type.
            order = np.lexsort((slack[idx], lf.group[idx]))
            idx = idx[order]
            first = np.ones(len(idx), dtype=bool)
            first[1:] = lf.group[idx][1:] != lf.group[idx][:-1]
            pick = idx[first]
            mask = np.zeros(lf.size, dtype=bool)
            mask[pick] = True
            arrays, size = _subset(lf, mask)
            A, lo, hi = lf.fam.rows(arrays, size) if lf.A_full is None else _rows_from_full(lf, pick)
            session.add_rows(A, lo, hi)
            lf.added |= mask
            form.add_rows(A, lo, hi, RowBlock(name, lf.fam.c.kind.value, KeyArray(arrays, size), 0, lf.fam.part,
                                              lf.fam.c.span, "lazy: violated rows added"))
            added_now += size
        outcome.rounds.append((added_now, worst))
        if progress is not None:
            progress(rnd, added_now, worst)
        if added_now == 0:
            break
        outcome.solution = session.solve()
    else:
        outcome.solution = BackendSolution("error", outcome.solution.solver,
                                           f"constraint generation did not converge in {MAX_ROUNDS} rounds")
    for name, lf in lazy.items():
        outcome.lazy_rows[name] = (int(lf.added.sum()), lf.size)
    return outcome


def _family_slack(lf: LazyFamily, x: np.ndarray) -> np.ndarray:
    if lf.A_full is None and lf.size * max(1, len(lf.fam.terms)) <= KEEP_NNZ:
        A, lo, hi = lf.fam.rows(lf.arrays, lf.size)
        lf.A_full = (A, lo, hi)
    if lf.A_full is not None:
        A, lo, hi = lf.A_full
        act = A @ x
        return np.minimum(act - lo, hi - act)
    return lf.fam.slack(x, lf.arrays, lf.size)


def _rows_from_full(lf: LazyFamily, pick: np.ndarray):
    A, lo, hi = lf.A_full
    return A[pick], lo[pick], hi[pick]


# ----------------------------------------------------------------- separation for the repair loop
def violated_keys(problem: ir.Problem, inst, values: dict, tol: float, env=None) -> dict[str, list[tuple]]:
    """Every violated instance of every constraint family of ``problem`` at ``values``: name -> keys."""
    from .evaluate import Evaluator, ValuesTarget
    from .verify import _slack

    names = {v.name for v in problem.vars}
    columns = Columns()
    xs = []
    for v in problem.vars:
        vals = values.get(v.name, {})
        keys = list(vals)
        columns.add(v.name, keys, v.kind)
        xs.append(np.asarray([vals[k] for k in keys], dtype=float))
    x = np.concatenate(xs) if xs else np.zeros(0)
    out: dict[str, list[tuple]] = {}
    ev = Evaluator(inst, ValuesTarget(values))
    ev._var_names = names
    for c in problem.constraints:
        if c.check_only:
            continue
        try:
            parts = _families(c, inst, columns, names)
            bad = None
            arrays = None
            for fam in parts:
                arrays_f, size = fam.index_arrays(env)
                s = fam.slack(x, arrays_f, size)
                bad = (s < -tol) if bad is None else (bad | (s < -tol))
                arrays = arrays_f
            keys = [tuple(_item(a, i) for a in arrays)
                    for i in np.flatnonzero(bad)] if bad is not None and arrays is not None else []
        except (NotLinear, Exception):  # noqa: BLE001 - any family the vector path cannot take: one by one
            keys = []
            local = dict(env or {})
            it = ev.iterate(c.domain.items, c.domain.cond, local) if c.domain else iter([local])
            binders = c.domain.binders if c.domain else ()
            for _ in it:
                s = _slack(c.body, ev, local, tol)
                if math.isnan(s) or s < -tol:
                    keys.append(tuple(local[b] for b in binders))
        if keys:
            out[c.name] = keys
    return out

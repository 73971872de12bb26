"""A Pyomo model read from the compiled form, and a solve through Pyomo that answers in the form's terms.

Stage: ``compiled form -> backend``.  :func:`to_pyomo` turns a
:class:`~compilers.standard.form.StandardForm` into a readable
``ConcreteModel``: one ``Var`` per :class:`ColumnBlock` and one ``Constraint``
per :class:`RowBlock`, each named like the spec family (``q[3]``,
``IC[3,1]``), so a model written with ``model.write("m.lp")`` or printed with
``model.pprint()`` reads in the spec's own names.  :func:`solve_pyomo` builds
that model, solves it with HiGHS (Pyomo's ``contrib.solver`` interface) or
IPOPT (the mechdsl route of :mod:`.solvers`: an ``ipopt`` executable, else the
IPOPT bundled with casadi) and returns a :class:`BackendSolution` in the
form's column and row order, duals in the form's sign convention.

This backend exists beside the direct HiGHS backend (``compilers/highs``) as a
second, independent reading of the same form: the conformance suite solves the
same problems through both.
"""
from __future__ import annotations

import math
import shutil
import time

import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sps
from pyomo.common.gc_manager import PauseGC
from pyomo.core.expr.numeric_expr import LinearExpression
from pyomo.core.util import quicksum

from mechdsl.compilers.standard.form import BackendSolution, ColumnBlock, RowBlock, StandardForm

__all__ = ["to_pyomo", "solve_pyomo", "form_vars", "form_constraints"]

#: Attribute of the model holding the ``VarData`` of each form column, in column order.
_COLS = "_mechdsl_form_columns"
#: Attribute of the model holding the ``ConstraintData`` of each form row (``None`` for a free row).
_ROWS = "_mechdsl_form_rows"


def _bound(v: float) -> float | None:
    v = float(v)
    return None if math.isinf(v) else v


def _component_name(model: pyo.ConcreteModel, wanted: str) -> str:
    """``wanted`` if it is free on the model, else ``wanted_2``, ``wanted_3``, ..."""
    base = wanted if wanted else "c"
    name, k = base, 1
    while hasattr(model, name) or model.component(name) is not None:
        k += 1
        name = f"{base}_{k}"
    return name


def _index(keys: list[tuple]) -> list | None:
    """The Pyomo index set of a block's keys (1-tuples flattened to their element); ``None`` when scalar.

    Keys that are not unique or not of one length fall back to positions ``0..len-1``.
    """
    if list(keys) == [()]:
        return None
    lengths = {len(k) if isinstance(k, tuple) else 1 for k in keys}
    flat = [k[0] if isinstance(k, tuple) and len(k) == 1 else k for k in keys]
    if len(lengths) != 1 or 0 in lengths:
        return list(range(len(keys)))
    try:
        if len(set(flat)) != len(flat):
            return list(range(len(keys)))
    except TypeError:  # unhashable key elements
        return list(range(len(keys)))
    return flat


def _column_blocks(form: StandardForm) -> list[ColumnBlock]:
    """The form's column blocks, plus one block ``x[j]`` for any column no block names."""
    blocks = list(form.columns)
    covered = np.zeros(form.n, dtype=bool)
    for b in blocks:
        covered[b.start:b.stop] = True
    rest = np.flatnonzero(~covered)
    if rest.size:
        # Uncovered columns are numbered by their column index; a block's keys must be contiguous,
        # so each run of uncovered columns becomes one block of the same name (made unique later).
        for run in np.split(rest, np.flatnonzero(np.diff(rest) != 1) + 1):
            blocks.append(ColumnBlock("x", [(int(j),) for j in run], int(run[0])))
    return blocks


def _row_blocks(form: StandardForm) -> list[RowBlock]:
    """The form's row blocks, plus one block ``c[i]`` for any row no block names."""
    blocks = list(form.rows)
    covered = np.zeros(form.m, dtype=bool)
    for b in blocks:
        covered[b.start:b.stop] = True
    rest = np.flatnonzero(~covered)
    if rest.size:
        for run in np.split(rest, np.flatnonzero(np.diff(rest) != 1) + 1):
            blocks.append(RowBlock("c", "constraint", [(int(i),) for i in run], int(run[0])))
    return blocks


def to_pyomo(form: StandardForm) -> pyo.ConcreteModel:
    """A ``ConcreteModel`` for ``form``, with components named like the spec's families.

    * one ``Var`` per :class:`ColumnBlock`, named like the spec variable and indexed by the
      block's keys (a 1-tuple key ``(3,)`` becomes the index ``3``; a block with keys ``[()]``
      is a scalar ``Var``), with the form's column bounds and domain (``Binary`` for an
      integral column within [0, 1], ``Integers`` for another integral one, ``Reals`` otherwise);
    * one ``Constraint`` per :class:`RowBlock`, named ``name`` (or ``name_part`` for one part of
      a conjunction), each row ``lo <= a_i @ x <= hi`` built as a ``LinearExpression`` straight
      from the CSR slice of row ``i`` (an equality when ``lo == hi``; a row with neither bound
      is left out);
    * the objective ``c0 + c @ x + 1/2 x @ Q @ x`` under ``form.objective_name``.

    A name already taken on the model gets a suffix (``IC_2``).  Columns or rows that no block
    names are gathered into ``x[j]`` / ``c[i]`` (``j``, ``i`` the form's own indices).  The
    start point ``form.x0``, when given, initialises the variables.  :func:`form_vars` and
    :func:`form_constraints` give the components' data in the form's column and row order.

    Construction pauses Python's cyclic garbage collector (as Pyomo's own writers do): the
    expression objects are acyclic, and collecting while a million of them are created would
    otherwise take most of the time.
    """
    with PauseGC():
        return _to_pyomo(form)


def _to_pyomo(form: StandardForm) -> pyo.ConcreteModel:
    n, m = form.n, form.m
    model = pyo.ConcreteModel(name=form.objective_name or "mechdsl")
    col_lo, col_hi = np.asarray(form.col_lo, float), np.asarray(form.col_hi, float)
    integer = np.asarray(form.integer, dtype=bool) if form.integer is not None else np.zeros(n, bool)
    x0 = None if form.x0 is None else np.asarray(form.x0, float)

    cols: list = [None] * n
    for b in _column_blocks(form):
        index = _index(b.keys)
        name = _component_name(model, b.name)
        j0 = b.start
        var = pyo.Var(dense=True) if index is None else pyo.Var(index, dense=True)
        model.add_component(name, var)
        datas = [var] if index is None else [var[k] for k in index]
        for i, vd in enumerate(datas):
            j = j0 + i
            vd.setlb(_bound(col_lo[j]))
            vd.setub(_bound(col_hi[j]))
            if integer[j]:
                vd.domain = pyo.Binary if col_lo[j] >= 0 and col_hi[j] <= 1 else pyo.Integers
            if x0 is not None and math.isfinite(x0[j]):
                vd.set_value(float(x0[j]), skip_validation=True)
            cols[j] = vd

    A = sps.csr_matrix(form.A)
    A.sum_duplicates()
    indptr, indices, data = A.indptr, A.indices, A.data
    row_lo, row_hi = np.asarray(form.row_lo, float), np.asarray(form.row_hi, float)
    rows: list = [None] * m
    for b in _row_blocks(form):
        index = _index(b.keys)
        name = _component_name(model, b.name if not b.part else f"{b.name}_{b.part}")
        bodies = {}
        positions = [None] if index is None else index
        for k, pos in enumerate(positions):
            i = b.start + k
            lo, hi = _bound(row_lo[i]), _bound(row_hi[i])
            if lo is None and hi is None:
                bodies[pos] = pyo.Constraint.Skip
                continue
            p0, p1 = indptr[i], indptr[i + 1]
            if p0 == p1:
                if (lo is None or lo <= 0.0) and (hi is None or hi >= 0.0):
                    bodies[pos] = pyo.Constraint.Skip
                    continue
                # An empty row that cannot hold: keep it (as 0 * x_0) so that the solver sees it.
                vs, cs = [cols[0]] if n else [], [0.0] if n else []
            else:
                vs = [cols[j] for j in indices[p0:p1].tolist()]
                cs = data[p0:p1].tolist()
            body = LinearExpression(linear_coefs=cs, linear_vars=vs)
            bodies[pos] = (body == lo) if lo is not None and lo == hi else (lo, body, hi)
        if index is None:
            con = pyo.Constraint(expr=bodies[None]) if bodies[None] is not pyo.Constraint.Skip else pyo.Constraint()
        else:
            con = pyo.Constraint(index, rule=_rule(bodies))
        model.add_component(name, con)
        for k, pos in enumerate(positions):
            if pos is None:
                cd = None if bodies[None] is pyo.Constraint.Skip else con
            else:
                cd = con[pos] if pos in con else None
            rows[b.start + k] = cd

    c = np.asarray(form.c, float)
    nz = np.flatnonzero(c).tolist()
    obj = LinearExpression(constant=float(form.c0), linear_coefs=c[nz].tolist(), linear_vars=[cols[j] for j in nz])
    if form.Q is not None and form.Q.nnz:
        # 1/2 x Q x with Q symmetric (both triangles stored): 1/2 Q_jj x_j^2 + sum_{i<j} Q_ij x_i x_j.
        U = sps.triu(sps.coo_matrix(form.Q)).tocoo()
        U.sum_duplicates()
        quad = quicksum((0.5 * v if r == c else v) * cols[r] * cols[c]
                        for r, c, v in zip(U.row.tolist(), U.col.tolist(), U.data.tolist()) if v)
        obj = obj + quad
    sense = pyo.maximize if form.sense == "maximize" else pyo.minimize
    model.add_component(_component_name(model, form.objective_name or "objective"),
                        pyo.Objective(expr=obj, sense=sense))
    setattr(model, _COLS, cols)
    setattr(model, _ROWS, rows)
    return model


def _rule(bodies: dict):
    """A Constraint rule reading prebuilt bodies (Pyomo passes a tuple index unpacked)."""
    def rule(mdl, *k):
        return bodies[k[0] if len(k) == 1 else k]
    return rule


def form_vars(model: pyo.ConcreteModel) -> list:
    """The ``VarData`` of each form column, in column order (a model built by :func:`to_pyomo`)."""
    return getattr(model, _COLS)


def form_constraints(model: pyo.ConcreteModel) -> list:
    """The ``ConstraintData`` of each form row, in row order; ``None`` for a row left out (no bounds)."""
    return getattr(model, _ROWS)


# --------------------------------------------------------------------------
# Solving
# --------------------------------------------------------------------------

def solve_pyomo(form: StandardForm, solver: str = "highs", tee: bool = False, options: dict | None = None,
                *, time_limit: float | None = None) -> BackendSolution:
    """Build :func:`to_pyomo` of ``form``, solve it through Pyomo, and answer in the form's terms.

    ``solver`` is ``"highs"`` (HiGHS through ``pyomo.contrib.solver``: LP, convex QP, MILP) or
    ``"ipopt"`` (the route of :func:`compilers.pyomo.solvers.solve`: an ``ipopt`` executable if
    one is on ``PATH``, otherwise the IPOPT bundled with casadi; LP and QP only: a form with
    integer columns is refused with status ``error`` rather than solved relaxed).

    The status is one of ``optimal``, ``infeasible``, ``unbounded``, ``iteration limit`` or
    ``error``.  For IPOPT ``optimal`` means that IPOPT converged to a point satisfying its
    first-order conditions: a *local* optimum, which is global only for a convex problem (an LP,
    or a QP whose ``Q`` is positive semidefinite for a minimisation, negative semidefinite for a
    maximisation).

    ``x`` is in the form's column order and ``objective`` is ``form.objective(x)``.  ``row_dual``
    and ``col_dual`` follow the sign convention of :mod:`compilers.standard.form`; they are
    ``None`` where the route gives none: for a MILP, and for IPOPT through casadi, whose bridge
    does not return multipliers.  Through an ``ipopt`` executable the duals come from the
    ``dual`` / ``ipopt_zL_out`` / ``ipopt_zU_out`` suffixes and are returned only if they satisfy
    stationarity at ``x`` (so an unexpected sign convention yields ``None``, never wrong duals).
    """
    key = solver.lower()
    if key not in ("highs", "ipopt"):
        raise ValueError(f"solve_pyomo: unknown solver {solver!r}; use 'highs' or 'ipopt'")
    t0 = time.perf_counter()
    if key == "ipopt" and form.problem_class not in ("LP", "QP"):
        return BackendSolution("error", "pyomo-ipopt", f"IPOPT does not solve a {form.problem_class}: it would "
                               "relax the integrality of its integer columns")
    try:
        model = to_pyomo(form)
    except Exception as exc:
        return BackendSolution("error", f"pyomo-{key}", f"building the Pyomo model failed: {exc}",
                               wall_time=time.perf_counter() - t0)
    if key == "highs":
        sol = _solve_highs(form, model, tee, dict(options or {}), time_limit)
    else:
        sol = _solve_ipopt(form, model, tee, dict(options or {}), time_limit)
    sol.wall_time = time.perf_counter() - t0
    return sol


def _values(model) -> np.ndarray | None:
    vals = [vd.value for vd in form_vars(model)]
    if any(v is None for v in vals):
        return None
    x = np.asarray(vals, dtype=float)
    return x if np.all(np.isfinite(x)) else None


def _solve_highs(form, model, tee, options, time_limit) -> BackendSolution:
    from pyomo.contrib.solver.common.factory import SolverFactory
    from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition as TC

    from .solvers import _infeasible_or_unbounded

    name = "pyomo-highs"
    kwargs = dict(tee=tee, load_solutions=False, raise_exception_on_nonoptimal_result=False)
    if time_limit:
        kwargs["time_limit"] = time_limit
    if options:
        kwargs["solver_options"] = options
    try:
        res = SolverFactory("highs").solve(model, **kwargs)
    except Exception as exc:  # highspy raises on malformed input (e.g. a nonconvex QP)
        return BackendSolution("error", name, f"HiGHS failed: {exc}")
    tc = res.termination_condition
    status = {
        TC.convergenceCriteriaSatisfied: "optimal",
        TC.provenInfeasible: "infeasible",
        TC.locallyInfeasible: "infeasible",
        TC.unbounded: "unbounded",
        TC.iterationLimit: "iteration limit",
        TC.maxTimeLimit: "iteration limit",
    }.get(tc, "error")
    if tc == TC.infeasibleOrUnbounded:
        status = _infeasible_or_unbounded(model).value
    it = getattr(res, "iteration_count", None)
    sol = BackendSolution(status, name, str(tc.name), iterations=it if isinstance(it, int) else None)
    if status != "optimal" or res.solution_status not in (SolutionStatus.optimal, SolutionStatus.feasible):
        return sol
    res.solution_loader.load_vars()
    sol.x = _values(model)
    if sol.x is not None:
        sol.objective = form.objective(sol.x)
    if form.problem_class in ("LP", "QP"):
        sol.row_dual, sol.col_dual = _highs_duals(form, model, res.solution_loader)
    return sol


def _highs_duals(form, model, loader):
    """Row and column duals from Pyomo's HiGHS solution loader, in the form's convention.

    Pyomo reports ``d objective / d rhs`` in the model's own sense (a row at its lower bound of a
    minimisation has a dual >= 0; of a maximisation <= 0); the form's duals are those of the
    minimisation form, so both are multiplied by the sense sign.
    """
    sign = -1.0 if form.sense == "maximize" else 1.0
    try:
        duals = loader.get_duals()
        rcs = loader.get_reduced_costs()
    except Exception:  # no duals for this problem (the loader raises rather than returning none)
        return None, None
    row = np.zeros(form.m)
    for i, cd in enumerate(form_constraints(model)):
        if cd is not None:
            row[i] = sign * float(duals.get(cd, 0.0))
    col = np.array([sign * float(rcs.get(vd, 0.0)) for vd in form_vars(model)])
    return row, col


def _solve_ipopt(form, model, tee, options, time_limit) -> BackendSolution:
    from .solvers import ipopt_backend, solve

    executable = shutil.which("ipopt") is not None
    if executable:
        # The ASL reader fills suffixes by these exact names; one taken by a spec name gets none.
        for sfx in ("dual", "ipopt_zL_out", "ipopt_zU_out"):
            if not hasattr(model, sfx):
                model.add_component(sfx, pyo.Suffix(direction=pyo.Suffix.IMPORT))
    name = "pyomo-ipopt"
    out = solve(model, "ipopt", tee=tee, options=options, time_limit=time_limit)
    status = {"locally optimal": "optimal", "optimal": "optimal"}.get(out.status.value, out.status.value)
    sol = BackendSolution(status, name, f"{ipopt_backend()}: {out.message}", iterations=out.iterations)
    if status != "optimal":
        return sol
    sol.x = _values(model)
    if sol.x is None:
        sol.status, sol.message = "error", sol.message + " (no primal point returned)"
        return sol
    sol.objective = form.objective(sol.x)
    if executable and all(isinstance(getattr(model, sfx, None), pyo.Suffix)
                          for sfx in ("dual", "ipopt_zL_out", "ipopt_zU_out")):
        sol.row_dual, sol.col_dual = _ipopt_suffix_duals(form, model, sol.x)
    return sol


def _ipopt_suffix_duals(form, model, x):
    """Duals from the ASL suffixes, kept only if they satisfy stationarity at the solution."""
    dual, zl, zu = model.dual, getattr(model, "ipopt_zL_out", None), getattr(model, "ipopt_zU_out", None)
    y = np.array([0.0 if cd is None else float(dual.get(cd, 0.0)) for cd in form_constraints(model)])
    z = np.array([float((zl.get(vd, 0.0) if zl is not None else 0.0) + (zu.get(vd, 0.0) if zu is not None else 0.0))
                  for vd in form_vars(model)])
    return _stationary_duals(form, x, y, z)


def _stationary_duals(form, x, y, z, tol: float = 1e-5):
    """``(y, z)`` or ``(-y, -z)``, whichever satisfies ``c_min + Q_min x = A^T y + z``; else ``(None, None)``.

    Used where a route's sign convention is not pinned down by a test: duals are returned only
    when they demonstrably are the form's duals.
    """
    sign = -1.0 if form.sense == "maximize" else 1.0
    grad = sign * np.asarray(form.c, float)
    if form.Q is not None and form.Q.nnz:
        grad = grad + sign * (form.Q @ x)
    scale = max(1.0, float(np.max(np.abs(grad), initial=0.0)))
    for s in (1.0, -1.0):
        r = grad - form.A.T @ (s * y) - s * z
        if float(np.max(np.abs(r), initial=0.0)) <= tol * scale:
            return s * y, s * z
    return None, None

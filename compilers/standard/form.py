"""The backend-neutral compiled form: a sparse standard form with a row map back to the spec.

Stage: ``compiled form -> backend``.  Every backend reads a :class:`StandardForm`
and returns a :class:`BackendSolution`; neither type knows about Pyomo, HiGHS or
the spec's syntax.  The problem is::

    optimise   c0 + c @ x + 1/2 x @ Q @ x          (sense: "minimize" or "maximize")
    s.t.       row_lo <= A @ x <= row_hi
               col_lo <= x <= col_hi,  x[j] integral where integer[j]

with ``-inf`` / ``+inf`` for a missing bound and ``row_lo == row_hi`` for an
equality.  ``Q`` is symmetric (both triangles stored), so the Hessian of the
objective is ``Q``.

Columns are grouped in :class:`ColumnBlock` (one per spec variable family, keys
in order) and rows in :class:`RowBlock` (one per spec constraint family or part
of one), so every row and column can be named in spec terms: ``IC[3->1]``.

**Dual convention** (every backend returns duals in it, whatever its own): for
the *minimisation* form of the problem (the objective negated when
``sense == "maximize"``), the Lagrangian stationarity condition is::

    c_min + Q_min @ x  =  A.T @ row_dual + col_dual

so ``row_dual[i] >= 0`` where row i sits at its lower bound, ``<= 0`` at its
upper bound, and 0 where it is slack (likewise ``col_dual``).  ``|row_dual[i]|``
is then what one unit of relaxation of row i is worth to the designer in the
spec's own objective: its shadow price.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sps


@dataclass
class ColumnBlock:
    """The columns of one spec variable family: ``x[start + i]`` is ``name[keys[i]]``."""

    name: str
    keys: list[tuple]
    start: int
    kind: str = "real"  #: real / nonnegative / binary / integer

    @property
    def stop(self) -> int:
        return self.start + len(self.keys)


@dataclass
class RowBlock:
    """The rows of one spec constraint family (or one part of a conjunction): row ``start + i`` is
    ``name[keys[i]]``."""

    name: str
    kind: str            #: ic / ir / budget / feasibility / constraint / monotonicity / epigraph
    keys: list[tuple]
    start: int
    part: str = ""       #: which conjunct of the body ("" for a single relation)
    span: Any = None     #: the source span of the declaration
    origin: str | None = None  #: None for a spec constraint; "pass: rule" for a derived one

    @property
    def stop(self) -> int:
        return self.start + len(self.keys)


@dataclass
class StandardForm:
    """A linear or quadratic program in sparse standard form (see the module docstring)."""

    sense: str
    c: np.ndarray
    A: sps.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray
    Q: sps.csc_matrix | None = None
    c0: float = 0.0
    x0: np.ndarray | None = None
    columns: list[ColumnBlock] = field(default_factory=list)
    rows: list[RowBlock] = field(default_factory=list)
    objective_name: str = "objective"

    @property
    def n(self) -> int:
        return len(self.c)

    @property
    def m(self) -> int:
        return self.A.shape[0]

    @property
    def problem_class(self) -> str:
        quadratic = self.Q is not None and self.Q.nnz > 0
        if bool(np.any(self.integer)):
            return "MIQP" if quadratic else "MILP"
        return "QP" if quadratic else "LP"

    def convex(self) -> bool:
        """The objective is convex in the minimisation form (concave when maximised): a QP HiGHS solves."""
        if self.Q is None or self.Q.nnz == 0:
            return True
        Q = self.Q if self.sense == "minimize" else -self.Q
        Q = sps.csc_matrix(Q)
        cols = np.unique(Q.nonzero()[1])
        sub = Q[cols][:, cols]
        off = sub - sps.diags(sub.diagonal())
        d = sub.diagonal()
        if off.nnz == 0:
            return bool(np.all(d >= -1e-12 * max(1.0, float(np.abs(d).max()))))
        if len(cols) <= 3000:
            ev = np.linalg.eigvalsh(sub.toarray())
            return bool(ev.min() >= -1e-9 * max(1.0, float(np.abs(ev).max())))
        return True  # too large to decompose here: HiGHS reports a nonconvex QP itself

    def objective(self, x: np.ndarray) -> float:
        """The objective at ``x`` in the spec's sense."""
        val = self.c0 + float(self.c @ x)
        if self.Q is not None and self.Q.nnz:
            val += 0.5 * float(x @ (self.Q @ x))
        return val

    def row_name(self, i: int) -> str:
        """``IC[3,1]``-style name of row ``i`` (family and index tuple)."""
        for b in self.rows:
            if b.start <= i < b.stop:
                key = b.keys[i - b.start]
                name = b.name if not b.part else f"{b.name}_{b.part}"
                return f"{name}[{','.join(map(str, key))}]" if key else name
        raise IndexError(i)

    def column_name(self, j: int) -> str:
        for b in self.columns:
            if b.start <= j < b.stop:
                key = b.keys[j - b.start]
                return f"{b.name}[{','.join(map(str, key))}]" if key else b.name
        raise IndexError(j)

    def add_rows(self, A_new: sps.spmatrix, lo: np.ndarray, hi: np.ndarray, block: RowBlock) -> None:
        """Append rows (cuts); ``block.start`` is set to where they land."""
        block.start = self.m
        self.A = sps.vstack([self.A, sps.csr_matrix(A_new)], format="csr")
        self.row_lo = np.concatenate([self.row_lo, lo])
        self.row_hi = np.concatenate([self.row_hi, hi])
        self.rows.append(block)


@dataclass
class Certificate:
    """What certifies a solution: residuals measured independently in numpy on the model as solved."""

    primal_residual: float = float("nan")   #: max violation of rows and column bounds (unscaled)
    dual_residual: float = float("nan")     #: max |c + Qx - A^T y - z| (minimisation form)
    complementarity: float = float("nan")   #: max |dual * slack| over rows and columns
    dual_bound: float | None = None         #: a bound on the optimum (the dual objective), spec sense
    gap: float | None = None                #: |objective - dual_bound| / max(1, |objective|)


@dataclass
class BackendSolution:
    """A backend's answer about a :class:`StandardForm`, in the form's own columns and rows."""

    status: str                      #: optimal / infeasible / unbounded / iteration limit / error
    solver: str                      #: e.g. "HiGHS"
    message: str = ""
    x: np.ndarray | None = None
    objective: float | None = None   #: in the spec's sense and scale
    row_dual: np.ndarray | None = None  #: see the module docstring for the sign convention
    col_dual: np.ndarray | None = None
    certificate: Certificate | None = None
    iterations: int | None = None
    wall_time: float = 0.0
    basis: Any = None                #: backend-specific warm-start data

    @property
    def ok(self) -> bool:
        return self.status == "optimal"

"""HiGHS reading the compiled form directly: ``highspy`` ``passModel``, scaled, with certificates.

Stage: ``compiled form -> backend``.  :func:`solve_highs` passes a
:class:`~compilers.standard.form.StandardForm` to HiGHS as arrays (``HighsLp``
with a column-wise matrix, ``HighsHessian`` in lower-triangular form,
``integrality_``) without going through Pyomo, and :class:`HighsSession` keeps
the ``highspy.Highs`` alive so that a cutting-plane loop can ``add_rows`` and
re-solve from the current basis.

**What HiGHS is given.**  Always a *minimisation*: when ``form.sense ==
"maximize"`` the objective (``c0``, ``c``, ``Q``) is negated here, because
HiGHS's QP solver only minimises; the answer is flipped back.

**Scaling.**  HiGHS has absolute thresholds (its QP solver treats curvature
below ``qp_zero_threshold`` ~1e-7 as zero and regularises its Hessian by an
absolute 1e-7; feasibility and optimality tolerances are absolute too), so a
model whose numbers are all ~1/K is mis-solved (a screening QP is reported
"unbounded" for K >= 216).  Before passing the model:

* the objective is multiplied by ``s = 2**-round(log2(max(max|c|, max|Q|)))``
  (1 when both are zero; the exponent clipped to [-200, 200]);
* row ``i`` of ``A`` and its bounds are multiplied by ``r_i =
  2**-round(log2(max_j |a_ij|))`` (1 for an empty row).

For a QP, ``qp_regularization_value`` defaults to 1e-12 instead of HiGHS's
1e-7: the regularisation ``eps * I`` is absolute and perturbs the duals by
``eps * |x|`` (a gap of ~2e-8 on a screening QP even after scaling); an
explicit option wins.  Powers of two make the scaling exact in floating point.  Columns are not
scaled (HiGHS's simplex scales internally).  Everything returned is unscaled:
``x`` as is, ``row_dual = r * y_s / s``, ``col_dual = z_s / s``, and the
objective recomputed from the form, ``form.objective(x)``, in the spec's sense
and scale.  Duals are in the convention of :mod:`compilers.standard.form`
(minimisation form; ``>= 0`` at a lower bound).

**Statuses.**  ``optimal`` / ``infeasible`` / ``unbounded`` / ``iteration
limit`` (iteration, time or solution limit, or an interrupt) / ``error``.
When HiGHS says "infeasible or unbounded" a second solve of the feasibility
problem (zero objective, same rows, bounds and integrality) decides.  When it
says "unbounded" for a QP, that is checked: a feasible point must exist
(feasibility solve) and a recession direction ``d`` with ``Q d = 0``, ``A d``
and ``d`` in the recession cones of the row and column bounds, and ``c_min @ d
< 0`` (an LP over ``-1 <= d <= 1``); if HiGHS's claim fails the check, the
status is ``error`` with a message saying so, never "optimal" or "unbounded".
An LP/QP "optimal" whose certificate is weak (gap or scaled dual residual
above 1e-6) gets the same recession check from its feasible point: HiGHS's QP
solver stops at a huge "optimal" point of an unbounded QP, which is then
reported ``unbounded``; without a recession direction it stays ``optimal``
with the weak certificate named in the message.
A MIQP is refused (``error``): HiGHS does not solve it.

**Certificate** (:class:`~compilers.standard.form.Certificate`), computed in
numpy on the *unscaled* model as solved (the form plus any rows added to the
session) from the returned ``x``, ``row_dual``, ``col_dual``:

* ``primal_residual``: the largest violation of a row bound (``row_lo <= A x
  <= row_hi``) or column bound; for a MILP also of integrality.
* ``dual_residual`` (LP/QP): ``max |c_min + Q_min x - A^T y - z|``, after
  *projecting* the duals: a component whose sign points at an infinite bound
  (``y_i > 0`` with ``row_lo_i = -inf``, etc.) is set to 0, so what it
  contributed to stationarity shows up here instead of making the dual point
  infeasible.
* ``complementarity`` (LP/QP): ``max |y_i| * |a_i x - b_i|`` where ``b_i`` is
  the bound the sign of ``y_i`` points at, likewise for the columns.
* ``dual_bound`` (LP/QP): the Lagrangian (Wolfe) dual objective at the
  projected dual point, ``c0 + sum_i y_i*(lo_i if y_i > 0 else hi_i) + sum_j
  z_j*(col_lo_j if z_j > 0 else col_hi_j) - 1/2 x Q_min x`` in minimisation
  form, converted to the spec's sense.  It is a valid bound on the optimum to
  the extent that ``dual_residual`` is 0 (weak duality for a convex QP).  For
  a MILP: HiGHS's ``mip_dual_bound`` unscaled, in the spec's sense.
* ``gap``: ``|objective - dual_bound| / max(1, |objective|)``; for a MILP
  HiGHS's ``mip_gap``.

Output: ``tee=False`` prints nothing (not even HiGHS's banner, which highspy
writes to C stdout on the first ``Highs()``); ``tee=True`` sends HiGHS's log to
stderr through its logging callback, so stdout stays clean for ``--json``.
While HiGHS runs, C-level stdout (fd 1) is pointed at /dev/null (or stderr
with ``tee``), so nothing a solver prints directly can reach stdout.

**Interrupts and the time limit.**  Every HiGHS run is interruptible: HiGHS's interrupt callbacks
(simplex, IPM, QP, MIP: once per iteration or node) are subscribed for the run, and in the main
thread SIGINT is caught for its duration by a handler that only sets a flag (HiGHS calls back into
Python each iteration, so the handler runs promptly, and nothing is raised inside HiGHS).  The next
callback tells HiGHS to stop; once ``run`` has returned, the previous handler gets the signal
(Python's default raises KeyboardInterrupt, so the CLI says "interrupted while ..." and exits 130).
A session's ``time_limit`` is a deadline for all its runs (each run gets what is left, and the
callback stops HiGHS there too); ``deadline`` (a callable, e.g. ``mechdsl.runstate.remaining``) adds
the run's own deadline, and is called when HiGHS stops on a time limit, so that it raises
``TimeLimitReached``.  The cost is one Python call per iteration, about 2 us (1-3 % on LPs/QPs of a
few thousand iterations).

``HighsSession.add_rows`` appends cuts to the live model (equilibrated like
the other rows) and the next ``solve`` starts from the current basis; the
session keeps its own copy of the rows, so the form is not modified (call
``form.add_rows`` too to name the cuts; the row duals then line up).
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time

import numpy as np
import scipy.sparse as sps

from mechdsl.errors import MechError

from ..standard.form import BackendSolution, Certificate, StandardForm

__all__ = ["solve_highs", "HighsSession"]

SOLVER = "HiGHS"
QP_REGULARIZATION = 1e-12  #: default ``qp_regularization_value`` (HiGHS's own is 1e-7)
QP_RETRY_SECONDS = 60.0    #: time allowed to the retry with HiGHS's own regularisation


# --------------------------------------------------------------------------- output

@contextlib.contextmanager
def _c_stdout_to(fd_target: int | None):
    """Redirect C-level stdout (fd 1) to ``fd_target`` (None: /dev/null) for the duration."""
    try:
        sys.stdout.flush()
    except Exception:  # pragma: no cover - a closed stdout
        pass
    try:
        saved = os.dup(1)
    except OSError:  # pragma: no cover - no fd 1
        yield
        return
    devnull = None
    try:
        if fd_target is None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            fd_target = devnull
        os.dup2(fd_target, 1)
        yield
    finally:
        _fflush_c()
        os.dup2(saved, 1)
        os.close(saved)
        if devnull is not None:
            os.close(devnull)


def _fflush_c() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except Exception:  # pragma: no cover - no libc
        pass


def _new_highs(tee: bool):
    """A ``highspy.Highs`` whose output goes to stderr (tee) or nowhere."""
    import highspy

    try:
        err_fd = sys.stderr.fileno() if tee else None
    except (AttributeError, ValueError, OSError):
        err_fd = None
    with _c_stdout_to(err_fd):  # the banner is printed at construction
        h = highspy.Highs()
    if tee:
        h.setOptionValue("output_flag", True)
        h.setOptionValue("log_to_console", False)

        def _log(event):
            try:
                sys.stderr.write(event.message)
                sys.stderr.flush()
            except Exception:  # pragma: no cover
                pass

        h.cbLogging.subscribe(_log)
    else:
        h.setOptionValue("output_flag", False)
        h.setOptionValue("log_to_console", False)
    return h


def _set_options(h, options: dict | None, time_limit: float | None) -> None:
    import highspy

    for name, value in (options or {}).items():
        status, _ = h.getOptionType(name)
        if status != highspy.HighsStatus.kOk:
            raise ValueError(f"unknown HiGHS option '{name}'")
        if isinstance(value, bool):
            pass
        elif isinstance(value, (np.integer,)):
            value = int(value)
        elif isinstance(value, (np.floating,)):
            value = float(value)
        if h.setOptionValue(name, value) != highspy.HighsStatus.kOk:
            raise ValueError(f"invalid value {value!r} for HiGHS option '{name}'")
    if time_limit:
        h.setOptionValue("time_limit", float(time_limit))


# --------------------------------------------------------------------------- interrupts

#: the callbacks through which HiGHS asks whether to stop (those this highspy knows are used)
_INTERRUPT_CALLBACKS = ("kCallbackSimplexInterrupt", "kCallbackIpmInterrupt", "kHighsCallbackQpInterrupt",
                        "kCallbackMipInterrupt")


class _Stop:
    """Whether a HiGHS run should stop: a SIGINT arrived, or the run's deadline passed."""

    __slots__ = ("deadline", "sigint", "late")

    def __init__(self, deadline: float | None):
        self.deadline = deadline  #: time.monotonic() past which the run stops (None: none)
        self.sigint = False
        self.late = False

    def on_signal(self, signum, frame) -> None:  # the SIGINT handler while HiGHS runs: raises nothing
        self.sigint = True

    def __call__(self, event) -> None:  # HiGHS's interrupt callbacks
        if self.sigint:
            event.interrupt()
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.late = True
            event.interrupt()
        else:  # HiGHS keeps the flag across runs: a run after an interrupted one would stop at once
            event.interrupt(False)


def _interrupt_events(h) -> list:
    """highspy's callback events for HiGHS's interrupt callbacks ([] with a highspy without them)."""
    try:
        from highspy import cb

        events = h.callbacks
        return [events[int(getattr(cb.HighsCallbackType, k))] for k in _INTERRUPT_CALLBACKS
                if hasattr(cb.HighsCallbackType, k)]
    except Exception:  # pragma: no cover - an old highspy
        return []


@contextlib.contextmanager
def _interruptible(h, left: float | None):
    """Run HiGHS (``h.run()`` in the body) so that Ctrl-C, and ``left`` seconds passing, stop it cleanly.

    Yields the :class:`_Stop`; its ``late`` says the deadline stopped the run.  After a SIGINT the
    previous handler is given the signal once HiGHS has returned (Python's default handler raises
    KeyboardInterrupt there, outside HiGHS)."""
    stop = _Stop(None if left is None else time.monotonic() + left)
    events = []
    for ev in _interrupt_events(h):
        try:
            ev.subscribe(stop)
            events.append(ev)
        except Exception:  # pragma: no cover - a callback this HiGHS refuses
            pass
    prev = None
    caught = False
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError, TypeError):
            prev = signal.getsignal(signal.SIGINT)
            if prev is not signal.SIG_IGN:
                signal.signal(signal.SIGINT, stop.on_signal)
                caught = True
    try:
        yield stop
    finally:
        if caught:
            signal.signal(signal.SIGINT, prev if prev is not None else signal.default_int_handler)
        for ev in events:
            with contextlib.suppress(Exception):
                ev.unsubscribe(stop)
    if stop.sigint:
        if callable(prev):
            prev(signal.SIGINT, None)  # Python's default handler raises KeyboardInterrupt
        else:
            raise KeyboardInterrupt


# --------------------------------------------------------------------------- scaling

def _pow2_inverse(x: np.ndarray) -> np.ndarray:
    """``2**-round(log2(x))`` elementwise, 1 where x is 0 or not finite."""
    out = np.ones_like(x, dtype=float)
    ok = np.isfinite(x) & (x > 0)
    e = np.clip(-np.round(np.log2(x[ok])), -200, 200).astype(int)
    out[ok] = np.ldexp(1.0, e)
    return out


def _row_scale(A: sps.csr_matrix) -> np.ndarray:
    if A.shape[0] == 0:
        return np.ones(0)
    rowmax = np.asarray(abs(A).max(axis=1).todense()).ravel() if A.nnz else np.zeros(A.shape[0])
    return _pow2_inverse(rowmax)


def _sym(Q) -> sps.csc_matrix | None:
    if Q is None or Q.nnz == 0:
        return None
    return sps.csc_matrix(Q)


# --------------------------------------------------------------------------- session

_LIMITS = {"kTimeLimit": "time limit", "kIterationLimit": "iteration limit",
           "kSolutionLimit": "solution limit", "kInterrupt": "interrupted",
           "kHighsInterrupt": "interrupted", "kObjectiveBound": "objective bound reached",
           "kObjectiveTarget": "objective target reached"}


class HighsSession:
    """A live ``highspy.Highs`` holding the scaled model of ``form``, for cutting-plane loops.

    ``solve()`` solves (warm from the current basis after :meth:`add_rows`) and returns a
    :class:`BackendSolution` about the form plus the rows added so far (row duals for the
    added rows come after the form's).  The form itself is not modified: call
    ``form.add_rows`` separately if the cuts should be named.
    """

    def __init__(self, form: StandardForm, options: dict | None = None, time_limit: float | None = None,
                 tee: bool = False, deadline=None):
        """``time_limit``: seconds for everything the session solves, counted from now (a session
        re-solved over rounds of constraint generation does not get it anew each round);
        ``deadline``: a callable giving the seconds left of the whole run (None: no limit) and raising
        once none are left (e.g. ``mechdsl.runstate.remaining``), asked before each HiGHS run and
        when one is stopped by the limit."""
        import highspy

        self.form = form
        self.options = dict(options or {})
        self.time_limit = time_limit
        self.deadline = deadline
        self._until = None if not time_limit else time.monotonic() + float(time_limit)
        self.tee = tee
        self.sign = -1.0 if form.sense == "maximize" else 1.0
        if form.sense not in ("minimize", "maximize"):
            raise ValueError(f"unknown objective sense '{form.sense}'")
        n = form.n
        # the unscaled model as solved (minimisation form of the objective)
        self.c_min = self.sign * np.asarray(form.c, dtype=float)
        self.c0_min = self.sign * float(form.c0)
        Q = _sym(form.Q)
        self.Q_min = None if Q is None else (self.sign * Q).tocsc()
        self.A = sps.csr_matrix(form.A, dtype=float)
        if self.A.shape[1] != n:
            raise ValueError(f"A has {self.A.shape[1]} columns, the form has {n}")
        self.row_lo = np.asarray(form.row_lo, dtype=float).copy()
        self.row_hi = np.asarray(form.row_hi, dtype=float).copy()
        self.col_lo = np.asarray(form.col_lo, dtype=float).copy()
        self.col_hi = np.asarray(form.col_hi, dtype=float).copy()
        self.integer = np.asarray(form.integer, dtype=bool).copy() if len(form.integer) else np.zeros(n, bool)
        self.is_mip = bool(self.integer.any())
        self.is_qp = self.Q_min is not None
        # scaling
        cmax = float(np.max(np.abs(self.c_min))) if n else 0.0
        if self.is_qp:
            cmax = max(cmax, float(np.max(np.abs(self.Q_min.data))))
        self.obj_scale = float(_pow2_inverse(np.array([cmax]))[0])
        self.row_scale = _row_scale(self.A)
        self.last: BackendSolution | None = None

        self.h = _new_highs(tee)
        if self.is_qp:
            # HiGHS adds an absolute 1e-7 * I to the Hessian; on the scaled objective that still
            # perturbs the duals by ~1e-7 * |x| (a gap of ~1e-8 on a screening QP).  1e-12 keeps the
            # reduced Hessian nonsingular in practice and the answer exact; an explicit option wins.
            self.h.setOptionValue("qp_regularization_value", QP_REGULARIZATION)
        _set_options(self.h, self.options, time_limit)
        if self.is_mip and self.is_qp:
            self._refused = "HiGHS does not solve MIQP (a quadratic objective with integer variables)"
            return
        self._refused = None
        status = self.h.passModel(self._model(self.c_min, self.Q_min, with_integrality=True))
        if status == highspy.HighsStatus.kError:
            self._refused = "HiGHS rejected the model (passModel returned an error)"
        if self.is_mip and form.x0 is not None and len(form.x0) == n:
            sol = highspy.HighsSolution()
            sol.col_value = list(np.asarray(form.x0, dtype=float))
            sol.value_valid = True
            with contextlib.suppress(Exception):
                self.h.setSolution(sol)

    # ---------------------------------------------------------------- model building
    def _model(self, c_min, Q_min, *, with_integrality: bool):
        import highspy

        inf = highspy.kHighsInf
        s, r = self.obj_scale, self.row_scale
        n, m = self.form.n, self.A.shape[0]
        lp = highspy.HighsLp()
        lp.num_col_ = n
        lp.num_row_ = m
        lp.col_cost_ = np.ascontiguousarray(s * c_min, dtype=float)
        lp.offset_ = s * self.c0_min if c_min is self.c_min else 0.0
        lp.col_lower_ = np.where(np.isneginf(self.col_lo), -inf, self.col_lo)
        lp.col_upper_ = np.where(np.isposinf(self.col_hi), inf, self.col_hi)
        lp.row_lower_ = np.where(np.isneginf(self.row_lo), -inf, r * self.row_lo)
        lp.row_upper_ = np.where(np.isposinf(self.row_hi), inf, r * self.row_hi)
        As = sps.csc_matrix(sps.diags(r) @ self.A) if m else sps.csc_matrix((0, n))
        As.sort_indices()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_ = n
        lp.a_matrix_.num_row_ = m
        lp.a_matrix_.start_ = As.indptr.astype(np.int32)
        lp.a_matrix_.index_ = As.indices.astype(np.int32)
        lp.a_matrix_.value_ = As.data.astype(float)
        if with_integrality and self.is_mip:
            lp.integrality_ = [highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous
                               for b in self.integer]
        if Q_min is None:
            return lp
        model = highspy.HighsModel()
        model.lp_ = lp
        L = sps.tril(s * Q_min, format="csc")
        L.sort_indices()
        hess = highspy.HighsHessian()
        hess.dim_ = n
        hess.format_ = highspy.HessianFormat.kTriangular
        hess.start_ = L.indptr.astype(np.int32)
        hess.index_ = L.indices.astype(np.int32)
        hess.value_ = L.data.astype(float)
        model.hessian_ = hess
        return model

    # ---------------------------------------------------------------- cuts
    def add_rows(self, A_new, lo, hi) -> None:
        """Append rows ``lo <= A_new @ x <= hi`` (unscaled, ``n`` columns) to the live model.

        The new rows are equilibrated like the others; the next :meth:`solve` starts from the
        current basis / solution."""
        import highspy

        A_new = sps.csr_matrix(A_new, dtype=float)
        if A_new.shape[1] != self.form.n:
            raise ValueError(f"the new rows have {A_new.shape[1]} columns, the form has {self.form.n}")
        k = A_new.shape[0]
        lo = np.broadcast_to(np.asarray(lo, dtype=float), (k,)).copy()
        hi = np.broadcast_to(np.asarray(hi, dtype=float), (k,)).copy()
        r = _row_scale(A_new)
        self.A = sps.vstack([self.A, A_new], format="csr")
        self.row_lo = np.concatenate([self.row_lo, lo])
        self.row_hi = np.concatenate([self.row_hi, hi])
        self.row_scale = np.concatenate([self.row_scale, r])
        if self._refused or k == 0:
            return
        inf = highspy.kHighsInf
        As = sps.csr_matrix(sps.diags(r) @ A_new)
        As.sort_indices()
        status = self.h.addRows(k, np.where(np.isneginf(lo), -inf, r * lo), np.where(np.isposinf(hi), inf, r * hi),
                                As.nnz, As.indptr[:-1].astype(np.int32), As.indices.astype(np.int32),
                                As.data.astype(float))
        if status == highspy.HighsStatus.kError:
            raise ValueError("HiGHS rejected the new rows (addRows returned an error)")

    # ---------------------------------------------------------------- solving
    def solve(self) -> BackendSolution:
        t0 = time.perf_counter()
        if self._refused:
            sol = BackendSolution("error", SOLVER, self._refused)
        elif self.form.A.shape[1] == 0:  # nothing to choose: the objective is its constant, rows hold or not
            m = self.form.A.shape[0]
            ok = bool(np.all(self.form.row_lo <= 1e-9) and np.all(self.form.row_hi >= -1e-9))
            sol = BackendSolution("optimal" if ok else "infeasible", SOLVER, "no variables", x=np.zeros(0),
                                  objective=float(self.form.c0) if ok else None, row_dual=np.zeros(m),
                                  col_dual=np.zeros(0),
                                  certificate=Certificate(0.0, 0.0, 0.0, float(self.form.c0), 0.0) if ok else None)
        else:
            try:
                sol = self._solve()
            except MechError:  # the run's deadline (TimeLimitReached from ``deadline``)
                raise
            except Exception as exc:  # highspy raises on malformed input
                sol = BackendSolution("error", SOLVER, f"HiGHS failed: {exc}")
        sol.wall_time = time.perf_counter() - t0
        self.last = sol
        return sol

    def _left(self) -> float | None:
        """Seconds left for HiGHS (None: no limit); ``deadline`` raises when the run has none left."""
        left = None if self._until is None else self._until - time.monotonic()
        if self.deadline is not None:
            d = self.deadline()
            if d is not None:
                left = d if left is None else min(left, d)
        return left

    def _run(self, h, limit: float | None = None) -> str:
        """One interruptible HiGHS run (see the module docstring) of at most ``limit`` seconds and what
        is left of the deadlines; HiGHS's model status name."""
        import highspy

        left = self._left()
        if left is not None and left <= 0:
            return "kTimeLimit"
        budget = min((t for t in (left, limit) if t is not None), default=None)
        # HiGHS's time_limit is on the instance's total run time (it grows over re-solves)
        cap = float(self.options.get("time_limit", math.inf))
        with contextlib.suppress(Exception):
            h.setOptionValue("time_limit", cap if budget is None else min(cap, h.getRunTime() + budget))
        with _c_stdout_to(None if not self.tee else _stderr_fd()), _interruptible(h, left) as stop:
            status = h.run()
        ms = h.getModelStatus()
        if stop.late or ms == highspy.HighsModelStatus.kTimeLimit:
            if self.deadline is not None:
                self.deadline()  # raises when the run's own deadline has passed
            return "kTimeLimit"
        if status == highspy.HighsStatus.kError and ms == highspy.HighsModelStatus.kNotset:
            return "kSolveError"
        return ms.name

    def _solve(self) -> BackendSolution:
        ms = self._run(self.h)
        if ms == "kSolveError" and self.is_qp and "qp_regularization_value" not in self.options:
            # With the tiny default regularisation the active-set QP solver calls a Hessian that is singular on
            # a free direction (e.g. transfers that enter the objective only linearly) "non-convex"; HiGHS's own
            # regularisation handles it, at the cost of a larger (and reported) gap.
            # The active-set solver can also stall on such a model: bound the retry, and report what happens.
            self.h.setOptionValue("qp_regularization_value", 1e-7)
            ms = self._run(self.h, limit=QP_RETRY_SECONDS)
        info = self.h.getInfo()
        iters = int(info.simplex_iteration_count + max(info.ipm_iteration_count, 0)
                    + max(info.qp_iteration_count, 0) + max(info.pdlp_iteration_count, 0))
        if ms == "kModelEmpty":
            ms = "kOptimal"
        if ms == "kOptimal":
            sol = self._optimal(info, iters)
            if not self.is_mip and self._weak(sol.certificate):
                # HiGHS's "optimal" is not certified (e.g. its QP solver stops at a huge point of an
                # unbounded QP): is there an improving recession direction from this feasible point?
                best = self._recession_direction() if sol.certificate.primal_residual <= 1e-6 else None
                cert = sol.certificate
                if best is not None and best < -1e-6:
                    return BackendSolution("unbounded", SOLVER, "HiGHS reported optimal, but its point is not "
                                           f"certified (dual residual {cert.dual_residual:.3g}, gap "
                                           f"{cert.gap:.3g}) and a recession direction d (Q d = 0, c @ d < 0) "
                                           "from that feasible point exists: unbounded", iterations=iters)
                sol.message = (f"HiGHS: optimal, but the certificate is weak (dual residual "
                               f"{cert.dual_residual:.3g}, gap {cert.gap:.3g})")
            return sol
        if ms == "kInfeasible":
            return BackendSolution("infeasible", SOLVER, "HiGHS: infeasible", iterations=iters)
        if ms == "kUnboundedOrInfeasible":
            feasible = self._feasible()
            if feasible is None:
                return BackendSolution("error", SOLVER, "HiGHS: infeasible or unbounded, and the feasibility "
                                       "solve did not decide", iterations=iters)
            if not feasible:
                return BackendSolution("infeasible", SOLVER, "HiGHS: infeasible or unbounded; the feasibility "
                                       "problem is infeasible", iterations=iters)
            if not self.is_qp:
                return BackendSolution("unbounded", SOLVER, "HiGHS: infeasible or unbounded; the feasibility "
                                       "problem is feasible, so unbounded", iterations=iters)
            return self._check_qp_unbounded("infeasible or unbounded", iters)
        if ms == "kUnbounded":
            if not self.is_qp:
                return BackendSolution("unbounded", SOLVER, "HiGHS: unbounded", iterations=iters)
            feasible = self._feasible()
            if feasible is False:
                return BackendSolution("infeasible", SOLVER, "HiGHS said unbounded, but the feasibility "
                                       "problem is infeasible", iterations=iters)
            return self._check_qp_unbounded("unbounded", iters)
        if ms in _LIMITS:
            sol = BackendSolution("iteration limit", SOLVER, f"HiGHS: {_LIMITS[ms]}", iterations=iters)
            if info.primal_solution_status == 2:  # feasible point available
                self._fill(sol, info, duals=False)
            return sol
        return BackendSolution("error", SOLVER, f"HiGHS: {ms[1:] if ms.startswith('k') else ms}",
                               iterations=iters)

    def _weak(self, cert: Certificate | None) -> bool:
        if cert is None or cert.gap is None:
            return True
        return not (cert.gap <= 1e-6 and cert.dual_residual * self.obj_scale <= 1e-6)

    def _optimal(self, info, iters) -> BackendSolution:
        sol = BackendSolution("optimal", SOLVER, "HiGHS: optimal", iterations=iters)
        self._fill(sol, info, duals=not self.is_mip)
        with contextlib.suppress(Exception):
            if not self.is_mip:
                sol.basis = self.h.getBasis()
        return sol

    def _fill(self, sol: BackendSolution, info, *, duals: bool) -> None:
        hs = self.h.getSolution()
        x = np.array(hs.col_value, dtype=float)
        if x.shape != (self.form.n,):
            return
        sol.x = x
        sol.objective = self.form.objective(x)
        if duals and hs.dual_valid:
            s = self.obj_scale
            sol.row_dual = self.row_scale * np.array(hs.row_dual, dtype=float) / s
            sol.col_dual = np.array(hs.col_dual, dtype=float) / s
        sol.certificate = self.certificate(x, sol.row_dual, sol.col_dual)
        if self.is_mip:
            bound = info.mip_dual_bound
            if bound is not None and not math.isnan(bound):
                sol.certificate.dual_bound = self.sign * float(bound) / self.obj_scale
            gap = info.mip_gap
            sol.certificate.gap = float(gap) if gap is not None and gap >= 0 else None

    # ---------------------------------------------------------------- auxiliary solves
    def _aux(self, c_min, *, with_integrality: bool, col_lo=None, col_hi=None, extra=None):
        """A fresh silent Highs on the current rows with another objective (no Hessian)."""
        h = _new_highs(False)
        opts = {k: v for k, v in self.options.items()}
        _set_options(h, opts, self.time_limit)
        h.setOptionValue("output_flag", False)
        lp = self._model(c_min, None, with_integrality=with_integrality)
        if col_lo is not None:
            lp.col_lower_ = col_lo
            lp.col_upper_ = col_hi
        if extra is not None:
            lp = extra(lp)
        h.passModel(lp)
        return h

    def _feasible(self) -> bool | None:
        """Is the feasible set nonempty?  (None: undecided.)"""
        h = self._aux(np.zeros(self.form.n), with_integrality=True)
        ms = self._run(h)
        if ms in ("kOptimal", "kModelEmpty"):
            return True
        if ms == "kInfeasible":
            return False
        return None

    def _recession_direction(self) -> float | None:
        """min c_min @ d over recession directions d in [-1, 1]^n with Q d = 0 (scaled), or None."""
        import highspy

        inf = highspy.kHighsInf
        n = self.form.n
        # d's column bounds: the recession cone of the column bounds, boxed
        dlo = np.where(np.isfinite(self.col_lo), 0.0, -1.0)
        dhi = np.where(np.isfinite(self.col_hi), 0.0, 1.0)
        # rows: A d in the recession cone of the row bounds; then Q d = 0 (equilibrated)
        Qs = sps.csr_matrix(self.Q_min) if self.is_qp else sps.csr_matrix((0, n))
        rq = _row_scale(Qs)
        keep = np.diff(Qs.indptr) > 0
        Qs = sps.csr_matrix(sps.diags(rq[keep]) @ Qs[keep]) if keep.any() else sps.csr_matrix((0, n))
        r = self.row_scale
        As = sps.csr_matrix(sps.diags(r) @ self.A) if self.A.shape[0] else sps.csr_matrix((0, n))
        M = sps.vstack([As, Qs], format="csc")
        M.sort_indices()
        rlo = np.concatenate([np.where(np.isfinite(self.row_lo), 0.0, -inf), np.zeros(Qs.shape[0])])
        rhi = np.concatenate([np.where(np.isfinite(self.row_hi), 0.0, inf), np.zeros(Qs.shape[0])])
        cs = self.obj_scale * self.c_min

        h = _new_highs(False)
        _set_options(h, {k: v for k, v in self.options.items()}, self.time_limit)
        h.setOptionValue("output_flag", False)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, M.shape[0]
        lp.col_cost_ = cs
        lp.col_lower_, lp.col_upper_ = dlo, dhi
        lp.row_lower_, lp.row_upper_ = rlo, rhi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, M.shape[0]
        lp.a_matrix_.start_ = M.indptr.astype(np.int32)
        lp.a_matrix_.index_ = M.indices.astype(np.int32)
        lp.a_matrix_.value_ = M.data.astype(float)
        h.passModel(lp)
        if self._run(h) != "kOptimal":
            return None
        return float(h.getInfo().objective_function_value)

    def _check_qp_unbounded(self, said: str, iters: int) -> BackendSolution:
        best = self._recession_direction()
        if best is not None and best < -1e-6:
            return BackendSolution("unbounded", SOLVER, f"HiGHS: {said}; confirmed: a feasible point exists and "
                                   f"a recession direction d with Q d = 0 improves the objective",
                                   iterations=iters)
        return BackendSolution("error", SOLVER, f"HiGHS said {said}, but the QP has a feasible point and no "
                               "recession direction (Q d = 0, c @ d < 0), so it is bounded: HiGHS's answer is "
                               "wrong (numerical thresholds?)", iterations=iters)

    # ---------------------------------------------------------------- certificate
    def certificate(self, x: np.ndarray, row_dual: np.ndarray | None = None,
                    col_dual: np.ndarray | None = None) -> Certificate:
        """Residuals of ``x`` (and the duals, if given) on the unscaled model as solved."""
        return certify(self.A, self.row_lo, self.row_hi, self.col_lo, self.col_hi, self.c_min, self.Q_min,
                       self.c0_min, self.sign, x, row_dual, col_dual,
                       integer=self.integer if self.is_mip else None)


def _stderr_fd() -> int | None:
    try:
        return sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):
        return None


# --------------------------------------------------------------------------- certificate

def _project(d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Zero the components whose sign points at an infinite bound."""
    d = d.copy()
    d[(d > 0) & np.isneginf(lo)] = 0.0
    d[(d < 0) & np.isposinf(hi)] = 0.0
    return d


def _bound_term(d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """``sum_i d_i * (lo_i if d_i > 0 else hi_i)`` for projected duals (0 where d_i == 0)."""
    nz = d != 0
    b = np.where(d[nz] > 0, lo[nz], hi[nz])
    return float(d[nz] @ b)


def _compl(d: np.ndarray, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    if len(d) == 0:
        return 0.0
    b = np.where(d > 0, lo, hi)
    gap = np.where(d != 0, np.abs(v - b), 0.0)
    return float(np.max(np.abs(d) * gap))


def _maxviol(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    if len(v) == 0:
        return 0.0
    return float(np.max(np.maximum(0.0, np.maximum(lo - v, v - hi))))


def certify(A, row_lo, row_hi, col_lo, col_hi, c_min, Q_min, c0_min, sign, x, row_dual=None, col_dual=None,
            integer=None) -> Certificate:
    """The certificate of ``(x, row_dual, col_dual)`` for ``min c0_min + c_min x + 1/2 x Q_min x``
    over ``row_lo <= A x <= row_hi, col_lo <= x <= col_hi`` (see the module docstring);
    ``sign`` is -1 when the spec maximises (the dual bound is returned in the spec's sense)."""
    x = np.asarray(x, dtype=float)
    Ax = A @ x
    primal = max(_maxviol(Ax, row_lo, row_hi), _maxviol(x, col_lo, col_hi))
    if integer is not None and integer.any():
        xi = x[integer]
        primal = max(primal, float(np.max(np.abs(xi - np.round(xi)))))
    cert = Certificate(primal_residual=primal)
    if row_dual is None or col_dual is None:
        return cert
    y = _project(np.asarray(row_dual, dtype=float), row_lo, row_hi)
    z = _project(np.asarray(col_dual, dtype=float), col_lo, col_hi)
    Qx = Q_min @ x if Q_min is not None else np.zeros_like(x)
    r = c_min + Qx - A.T @ y - z
    cert.dual_residual = float(np.max(np.abs(r))) if len(r) else 0.0
    cert.complementarity = max(_compl(y, Ax, row_lo, row_hi), _compl(z, x, col_lo, col_hi))
    dual_min = c0_min + _bound_term(y, row_lo, row_hi) + _bound_term(z, col_lo, col_hi) - 0.5 * float(x @ Qx)
    cert.dual_bound = sign * dual_min
    obj = sign * (c0_min + float(c_min @ x) + 0.5 * float(x @ Qx))
    cert.gap = abs(obj - cert.dual_bound) / max(1.0, abs(obj))
    return cert


# --------------------------------------------------------------------------- entry point

def solve_highs(form: StandardForm, *, options: dict | None = None, time_limit: float | None = None,
                tee: bool = False, warm: HighsSession | None = None, deadline=None) -> BackendSolution:
    """Solve ``form`` with HiGHS (scaled; see the module docstring) and certify the answer.

    ``warm``: a session on this same form re-solves in place (warm); a session on a form of
    the same shape lends its last basis (LP) or point (MILP) as a start."""
    if warm is not None and warm.form is form and not (options or time_limit) and warm.tee == tee:
        if deadline is not None:
            warm.deadline = deadline
        return warm.solve()
    sess = HighsSession(form, options=options, time_limit=time_limit, tee=tee, deadline=deadline)
    if warm is not None and warm.last is not None and not sess._refused:
        _lend_start(sess, warm)
    return sess.solve()


def _lend_start(sess: HighsSession, warm: HighsSession) -> None:
    import highspy

    last = warm.last
    if warm.form.n != sess.form.n:
        return
    with contextlib.suppress(Exception):
        if last.basis is not None and warm.A.shape[0] == sess.A.shape[0] and not sess.is_mip:
            sess.h.setBasis(last.basis)
        elif last.x is not None and sess.is_mip:
            hs = highspy.HighsSolution()
            hs.col_value = list(last.x)
            hs.value_valid = True
            sess.h.setSolution(hs)

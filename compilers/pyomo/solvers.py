"""Solvers: a capability table, the choice of solver, and honest statuses.

* HiGHS (``highspy``, through Pyomo's ``contrib.solver`` interface) solves LP,
  QP and MILP.
* IPOPT solves NLP.  An ``ipopt`` executable on ``PATH`` is used through
  Pyomo when present; otherwise the IPOPT bundled in the ``casadi`` wheel is
  used through :mod:`.casadi_ipopt`, so a pip install suffices.
"""
from __future__ import annotations

import enum
import math
import shutil
import time
from dataclasses import dataclass

import pyomo.environ as pyo

from mechdsl.errors import SolveError


class Status(str, enum.Enum):
    """The outcome of a solve, in mechdsl's words."""

    OPTIMAL = "optimal"
    """Proven globally optimal (LP/QP/MILP by HiGHS)."""
    LOCALLY_OPTIMAL = "locally optimal"
    """A local optimum (IPOPT); global for convex problems."""
    INFEASIBLE = "infeasible"
    """The constraints cannot all hold."""
    UNBOUNDED = "unbounded"
    """The objective can be improved without limit."""
    ITERATION_LIMIT = "iteration limit"
    """The solver stopped at its iteration or time limit."""
    ERROR = "error"
    """The solver failed."""

    @property
    def ok(self) -> bool:
        return self in (Status.OPTIMAL, Status.LOCALLY_OPTIMAL)


@dataclass(frozen=True)
class SolverInfo:
    name: str
    classes: frozenset
    doc: str


SOLVERS = {
    "highs": SolverInfo("highs", frozenset({"LP", "QP", "MILP"}), "HiGHS via highspy: LP, convex QP, MILP"),
    "ipopt": SolverInfo("ipopt", frozenset({"LP", "QP", "NLP"}), "IPOPT (executable on PATH, else bundled with casadi): NLP"),
}


@dataclass
class SolveOutcome:
    status: Status
    objective: float | None
    solver: str
    message: str
    wall_time: float
    iterations: int | None = None


def choose_solver(problem_class: str, forced: str | None = None) -> str:
    """The solver for a problem class, or the forced one if it can handle the class."""
    if forced:
        key = forced.lower()
        if key not in SOLVERS:
            raise SolveError(f"error: unknown solver '{forced}'; available: {', '.join(SOLVERS)}", status="error")
        if problem_class not in SOLVERS[key].classes:
            raise SolveError(f"error: solver '{forced}' cannot solve a {problem_class} "
                             f"(it handles {', '.join(sorted(SOLVERS[key].classes))})", status="error")
        return key
    for name in ("highs", "ipopt"):
        if problem_class in SOLVERS[name].classes:
            return name
    raise SolveError(f"error: no installed solver handles a {problem_class} "
                     f"(HiGHS: LP/QP/MILP; IPOPT: NLP)", status="error")


def ipopt_backend() -> str:
    """Which IPOPT is used: 'ipopt (executable)' or 'ipopt (casadi)'."""
    return "ipopt (executable)" if shutil.which("ipopt") else "ipopt (casadi)"


def solve(model: pyo.ConcreteModel, solver: str, *, tee: bool = False, options: dict | None = None,
          time_limit: float | None = None) -> SolveOutcome:
    """Solve ``model`` in place; variables hold the solution when one exists."""
    if solver == "highs":
        return _solve_highs(model, tee, options or {}, time_limit)
    if solver == "ipopt":
        return _solve_ipopt(model, tee, options or {}, time_limit)
    raise SolveError(f"error: unknown solver '{solver}'")  # pragma: no cover


def _objective_value(model):
    for obj in model.component_data_objects(pyo.Objective, active=True):
        try:
            return float(pyo.value(obj.expr))
        except (ValueError, TypeError, ZeroDivisionError):
            return None
    return 0.0


def _solve_highs(model, tee, options, time_limit) -> SolveOutcome:
    from pyomo.contrib.solver.common.factory import SolverFactory
    from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition as TC

    opt = SolverFactory("highs")
    t0 = time.perf_counter()
    kwargs = dict(tee=tee, load_solutions=False, raise_exception_on_nonoptimal_result=False)
    if time_limit:
        kwargs["time_limit"] = time_limit
    opts = {}
    if getattr(model, "_mechdsl_disjunctions", 0):
        # Big-M rows: an indicator that is integral only to within 1e-6 would relax a row by M * 1e-6,
        # more than the margin of a negated premise.  Ask for tight integrality and feasibility.
        opts.update(mip_feasibility_tolerance=1e-9, primal_feasibility_tolerance=1e-9)
    opts.update(options or {})
    if opts:
        kwargs["solver_options"] = opts
    try:
        res = opt.solve(model, **kwargs)
    except Exception as exc:  # highspy raises on malformed input (e.g. a nonconvex QP)
        return SolveOutcome(Status.ERROR, None, "highs", f"HiGHS failed: {exc}", time.perf_counter() - t0)
    tc = res.termination_condition
    status = {
        TC.convergenceCriteriaSatisfied: Status.OPTIMAL,
        TC.provenInfeasible: Status.INFEASIBLE,
        TC.locallyInfeasible: Status.INFEASIBLE,
        TC.unbounded: Status.UNBOUNDED,
        TC.iterationLimit: Status.ITERATION_LIMIT,
        TC.maxTimeLimit: Status.ITERATION_LIMIT,
    }.get(tc, Status.ERROR)
    if tc == TC.infeasibleOrUnbounded:
        status = _infeasible_or_unbounded(model)
    if res.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible) and status.ok:
        res.solution_loader.load_vars()
    obj = _objective_value(model) if status.ok else None
    it = getattr(res, "iteration_count", None)
    return SolveOutcome(status, obj, "highs", str(tc.name), time.perf_counter() - t0,
                        it if isinstance(it, int) else None)


def _infeasible_or_unbounded(model) -> Status:
    """Tell infeasible from unbounded by solving the feasibility problem alone."""
    from pyomo.contrib.solver.common.factory import SolverFactory
    from pyomo.contrib.solver.common.results import TerminationCondition as TC

    objs = list(model.component_data_objects(pyo.Objective, active=True))
    for o in objs:
        o.deactivate()
    model._mechdsl_feas = pyo.Objective(expr=0)
    try:
        res = SolverFactory("highs").solve(model, load_solutions=False, raise_exception_on_nonoptimal_result=False)
        feasible = res.termination_condition == TC.convergenceCriteriaSatisfied
    finally:
        model.del_component("_mechdsl_feas")
        for o in objs:
            o.activate()
    return Status.UNBOUNDED if feasible else Status.INFEASIBLE


def _solve_ipopt(model, tee, options, time_limit) -> SolveOutcome:
    t0 = time.perf_counter()
    if shutil.which("ipopt"):
        opt = pyo.SolverFactory("ipopt")
        for k, v in options.items():
            opt.options[k] = v
        if time_limit:
            opt.options["max_cpu_time"] = time_limit
        try:
            res = opt.solve(model, tee=tee, load_solutions=False)
        except Exception as exc:
            return SolveOutcome(Status.ERROR, None, "ipopt", f"IPOPT failed: {exc}", time.perf_counter() - t0)
        from pyomo.opt import TerminationCondition as TC
        tc = res.solver.termination_condition
        status = {TC.optimal: Status.LOCALLY_OPTIMAL, TC.locallyOptimal: Status.LOCALLY_OPTIMAL,
                  TC.infeasible: Status.INFEASIBLE, TC.unbounded: Status.UNBOUNDED,
                  TC.maxIterations: Status.ITERATION_LIMIT, TC.maxTimeLimit: Status.ITERATION_LIMIT,
                  }.get(tc, Status.ERROR)
        if status.ok:
            model.solutions.load_from(res)
        obj = _objective_value(model) if status.ok else None
        return SolveOutcome(status, obj, "ipopt", str(tc), time.perf_counter() - t0)

    from .casadi_ipopt import solve_with_casadi

    opts = dict(options)
    if time_limit:
        opts["max_cpu_time"] = time_limit
    res = solve_with_casadi(model, tee=tee, options=opts)
    status = {"locally_optimal": Status.LOCALLY_OPTIMAL, "infeasible": Status.INFEASIBLE,
              "unbounded": Status.UNBOUNDED, "iteration_limit": Status.ITERATION_LIMIT}.get(res.status, Status.ERROR)
    return SolveOutcome(status, res.objective if status.ok else None, "ipopt", res.message, res.wall_time,
                        res.iterations)

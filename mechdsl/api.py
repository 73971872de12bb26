"""The Python API; the CLI is a thin layer over it.

>>> import mechdsl
>>> model = mechdsl.load("specs/repurchase_one_capacity.mech", overrides={"D": 3})
>>> result = model.solve()
>>> result.status, result.objective, result.verification.ok
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from . import data as data_mod
from . import runstate
from .errors import MechError, SolveError, VerificationError
from .evaluate import EvalError
from .instance import Instance
from .ir import nodes as ir
from .ir.lower import lower
from .progress import Status
from .result import Result
from .semantics.check import SymbolTable, check
from .size import DEFAULT_MAX_ROWS, guard as size_guard
from .syntax import ast, parse, parse_file
from .verify import verify


@dataclass(frozen=True)
class SolveOptions:
    """Options of :meth:`Model.solve` (all have sensible defaults)."""

    solver: str | None = None       #: force "highs" or "ipopt"
    tee: bool = False               #: show the solver's own log
    tol: float = 1e-6               #: verification tolerance (regret, IR, other constraints)
    strict: bool = False            #: raise VerificationError when verification fails
    multistart: bool = False        #: NLP: also start from the variables' bounds, keep the best
    aux_multistart: bool = True     #: the same for auxiliary problems (stand-alone optima are often nonconvex)
    time_limit: float | None = None
    solver_options: Mapping | None = None
    reduce: bool = True             #: apply the reduction passes that provably apply (--no-reduce: False)
    passes: tuple | None = None     #: which passes to try (default: all registered, in order)
    mpcc: str | None = None         #: "exact" | "relax"; default exact when every variable involved is bounded
    mpcc_tol: float = 1e-5          #: margin used to negate a non-strict premise (not(a <= b): a >= b + tol)
    gdp: str = "bigm"               #: exact mode: "bigm" or "hull"
    eps_schedule: tuple = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)  #: relax mode, warm-started in turn
    ic: str = "auto"                #: "full" | "lazy" | "auto": IC rows by constraint generation (auto: > 1e5 rows)
    gap_tol: float = 1e-7           #: relative optimality gap accepted as certified optimal
    max_rows: int | None = DEFAULT_MAX_ROWS  #: refuse a build estimated beyond this many rows (None/0: no limit)


class Model:
    """A loaded spec: ``.check()``, ``.compile()``, ``.solve()``."""

    def __init__(self, module: ast.Module, data: dict | None = None, progress: bool | None = None):
        self.module = module
        self.path = module.span.file
        self._data = data or {}
        self.table: SymbolTable | None = None
        self.mech: ir.Mechanism | None = None
        self._instance: Instance | None = None
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._aux_opts = SolveOptions()
        self.max_rows: int | None = DEFAULT_MAX_ROWS  #: the size guard's limit (``--max-rows``)

    def __repr__(self) -> str:
        from .result import model_repr

        return model_repr(self)

    def _repr_html_(self) -> str:
        from .result import model_html

        return model_html(self)

    # -------------------------------------------------------------- stages
    def guard(self, problem: ir.Problem | None = None):
        """Refuse (SizeLimitError, exit 2) a problem estimated beyond ``self.max_rows`` rows; returns the estimate."""
        inst = self.instance()
        return size_guard(problem if problem is not None else self.mech.problem, inst, self.max_rows,
                          {self.module.span.file: self.module.source})

    def check(self) -> "Model":
        """Run the semantic checks; raise :class:`MechSemanticError` with every problem found."""
        if self.mech is None:
            self.table = check(self.module)
            self.mech = lower(self.module, self.table)
        return self

    def instance(self) -> Instance:
        """Bind the spec to its data (defaults, ``data`` file, ``overrides``)."""
        self.check()
        if self._instance is None:
            try:
                self._instance = Instance(self.mech, self._data, aux_solver=self._solve_aux)
            except EvalError as exc:
                raise _locate(self.module, exc) from None
        return self._instance

    def reduce(self, passes: tuple | None = None):
        """Run the reduction passes; returns the :class:`~mechdsl.passes.base.Reduction` (cached)."""
        from .passes.chain import reduce as run_passes

        key = tuple(passes) if passes is not None else None
        cache = self.__dict__.setdefault("_reductions", {})
        if key not in cache:
            inst = self.instance()
            if not hasattr(inst, "family_estimates"):  # the graph counts a huge family instead of listing it
                from .size import estimate

                try:
                    inst.family_estimates = {f.name: f.rows for f in estimate(self.mech.problem, inst).families
                                             if f.kind == "constraint"}
                except EvalError:
                    inst.family_estimates = {}
            try:
                cache[key] = run_passes(self.mech.problem, inst, list(passes) if passes is not None else None)
            except EvalError as exc:
                if exc.span is None:  # which family's index set fails to evaluate (only on this error path)
                    for d in (*self.mech.problem.vars, *self.mech.problem.constraints):
                        try:
                            inst.ev.domain_keys(d.domain)
                        except EvalError:
                            exc.span = d.span
                            break
                raise _locate(self.module, exc) from None
        return cache[key]

    def compile(self, reduce: bool = True, passes: tuple | None = None, mpcc: str | None = None,
                mpcc_tol: float = 1e-5, gdp: str = "bigm"):
        """Build the Pyomo model of the main problem (reduced unless ``reduce=False``); a CompiledModel.

        ``mpcc`` selects how implications, disjunctions and complementarity compile: "exact"
        (big-M MILP) or "relax" (NLP with eps); by default exact, or relax if a bound is missing.
        """
        self.instance()
        red = self.reduce(passes) if reduce else None
        problem = red.problem if red is not None else self.mech.problem
        return self._compile_problem(problem, red, mpcc, mpcc_tol, gdp)

    def _compile_problem(self, problem: ir.Problem, red, mpcc, mpcc_tol, gdp):
        from mechdsl.compilers.pyomo.model import MPCCOptions, UnsupportedError, compile_problem

        inst = self.instance()
        self.guard(problem)
        runstate.checkpoint("building the Pyomo model")

        def build(mode):
            return compile_problem(problem, inst, name=Path(self.path).stem,
                                   eliminated=red.eliminated if red is not None else None,
                                   var_names={v.name for v in self.mech.problem.vars},
                                   mpcc=MPCCOptions(mode, mpcc_tol, gdp))
        try:
            try:
                cm = build(mpcc or "exact")
            except UnsupportedError as exc:
                if mpcc is not None or "needs finite bounds" not in str(exc):
                    raise
                cm = build("relax")  # the default: exact when every variable involved is bounded
                cm.notes.append("some variables in implications/complementarity are unbounded, so the model "
                                "is solved in relax mode (give bounds for the exact MILP)")
        except EvalError as exc:
            raise _locate(self.module, exc) from None
        cm.reduction = red
        return cm

    def solve(self, options: SolveOptions | None = None, **kwargs) -> Result:
        """Compile, solve, verify against the original constraints (repairing a reduction that fails), and map
        back to the spec."""
        opts = options or SolveOptions(**kwargs)
        if opts.ic not in ("auto", "full", "lazy"):
            raise MechError(f"error: ic must be auto, full or lazy, not '{opts.ic}'")
        self._aux_opts = opts
        self.max_rows = opts.max_rows
        if opts.time_limit is not None and not opts.time_limit > 0:
            raise MechError(f"error: the time limit must be positive, not {opts.time_limit}")
        from .result import stamp

        t_start = time.perf_counter()
        with runstate.run(opts.time_limit):
            try:
                return stamp(self._solve(opts), self, opts, time.perf_counter() - t_start)
            except MechError as exc:  # a failed solve's Result is stamped too (what was run, with what)
                if exc.result is not None:
                    stamp(exc.result, self, opts, time.perf_counter() - t_start)
                raise

    def sweep(self, grid, client=None, **kwargs):
        """Solve at every point of ``grid`` (``{"N": [2, 5, 10], "p": [[0.1, 0.9], [0.5, 0.5]]}``, several params
        forming a product; values may also be strings in the ``--grid`` syntax, ``"0:1:0.1"``).

        Returns one dict per point, in grid order: the swept values, ``status``, ``objective``, the verification
        (``verification_ok``, ``max_regret``, ``max_ir_violation``, ``max_violation``), ``message``, every report
        (indexed ones flattened as ``name[k]``) and the variables named by ``select``.  A point that fails is a row
        with its status and message.  ``client``: a ``dask.distributed.Client`` (each point a task); or
        ``workers=N`` for a local cluster.  Other keywords: ``options`` (SolveOptions), ``select``, ``output``
        (.csv/.jsonl/.parquet), ``resume``, ``progress``, ``pandas=True`` (a DataFrame); see mechdsl/sweep.py.
        """
        from .sweep import sweep

        return sweep(self, grid, client=client, **kwargs)

    def _solve(self, opts: SolveOptions) -> Result:
        t0 = time.perf_counter()
        runstate.phase("binding the data")
        inst = self.instance()
        if self.mech.problem.objective is None:
            return self._evaluate_only(opts, t0)
        res = self._solve_main(opts, t0)
        self._add_reports(res, res.variables)
        return res

    def _evaluate_only(self, opts: SolveOptions, t0: float) -> Result:
        """A spec without a main problem: its params, auxiliary problems and reports, evaluated."""
        inst = self.instance()
        res = Result(status="evaluated", objective=None, problem_class="none", solver="", variables={},
                     parameters=dict(inst.params), verification=None, spec=self.path,
                     timings={"total": time.perf_counter() - t0})
        self._add_reports(res, {})
        res.aux = {f"{n}[{','.join(map(str, k))}]" if k else n: v for (n, k), v in inst.aux_results.items()}
        res.timings["total"] = time.perf_counter() - t0
        return res

    def _add_reports(self, res: Result, values: dict) -> None:
        if not self.mech.reports:
            return
        from .reports import evaluate_reports

        runstate.phase("evaluating the reports")
        t = time.perf_counter()
        try:
            res.reports = evaluate_reports(self.instance(), self.mech, values)
        except EvalError as exc:
            raise _locate(self.module, exc) from None
        res.timings["reports"] = time.perf_counter() - t
        res.aux = {f"{n}[{','.join(map(str, k))}]" if k else n: v for (n, k), v in self.instance().aux_results.items()}
        inst = self.instance()
        if inst.quadratures:
            res.notes.append(f"continuous expectations: {inst.quadratures} integral(s) by Gauss-Legendre on the "
                             f"pieces between switch points; largest error estimate {inst.quadrature_error:.2g}")

    def _solve_main(self, opts: SolveOptions, t0: float) -> Result:
        inst = self.instance()
        runstate.checkpoint("reducing")
        red = self.reduce(opts.passes) if opts.reduce else None
        problem = red.problem if red is not None else self.mech.problem
        eliminated = dict(red.eliminated) if red is not None else {}
        att = self._attempt(problem, eliminated, red, opts, t0)
        res = self._finish(att, red, opts)
        if att.ok and not res.verification.feasible and red is not None and red.applied:
            res = self._repair(red, res, opts, t0)
        if not res.ok:
            iis_text = self._explain_infeasible(res, att) if res.status == "infeasible" else ""
            raise SolveError(_failure_message(self.path, res) + iis_text, status=res.status).with_result(res)
        if opts.strict and not res.verification.ok:
            raise VerificationError(_verification_message(res.verification)).with_result(res)
        return res

    # ------------------------------------------------------------ one attempt
    def _attempt(self, problem: ir.Problem, eliminated: dict, red, opts: SolveOptions, t0: float,
                 lazy_ok: bool = True) -> "_Attempt":
        """Solve ``problem`` once: on the compiled form with HiGHS when it is an LP/QP/MILP, else through Pyomo."""
        if opts.solver in (None, "highs") and opts.mpcc != "relax":
            from mechdsl.compilers.standard.build import NotLinear

            try:
                built, lazy = self._build_form(problem, eliminated, opts.ic if lazy_ok else "full")
                if built.form.problem_class in ("LP", "MILP") or (built.form.problem_class == "QP"
                                                                  and (built.form.convex() or opts.solver == "highs")):
                    return self._solve_form(built, lazy, problem, eliminated, red, opts, t0)
            except NotLinear:
                pass  # not an LP/QP/MILP the compiled form expresses: the Pyomo compiler takes everything
        if opts.solver in (None, "ipopt") and opts.mpcc != "relax" and not eliminated:
            att = self._solve_casadi(problem, red, opts, t0)
            if att is not None:
                return att
        return self._solve_pyomo(problem, red, opts, t0)

    def _solve_casadi(self, problem, red, opts, t0) -> "_Attempt | None":
        """An NLP compiled straight to CasADi MX and solved by IPOPT (compilers/casadi/nlp.py); None when the
        problem is not an NLP that backend compiles (then the Pyomo compiler takes it)."""
        try:
            nlp = self._build_nlp(problem, None, {v.name for v in self.mech.problem.vars}, Path(self.path).stem)
        except EvalError as exc:
            raise _locate(self.module, exc) from None
        if nlp is None:
            return None
        from mechdsl.compilers.casadi.nlp import solve_nlp

        t1 = time.perf_counter()
        run = solve_nlp(nlp, multistart=opts.multistart, tee=opts.tee, options=dict(opts.solver_options or {}),
                        deadline=lambda: runstate.remaining("solving the main problem"))
        best = run.best
        att = _Attempt(status=best.status, objective=best.objective, problem_class="NLP", solver="ipopt (casadi)",
                       message=best.message, sense=nlp.sense, problem=problem, red=red,
                       timings={"compile": t1 - t0, "solve": time.perf_counter() - t1})
        att.notes.extend(_nlp_notes(nlp, run, opts.multistart))
        att.rows = dict(nlp.con_counts)
        if best.ok:
            values = nlp.values(best.x)
            att.values = _invert(red, values, self.mech.problem) if red is not None else values
            att.certificate = nlp.certificate(best)
            att.duals = nlp.duals(best)
        return att

    def _build_nlp(self, problem, env, names, label, inst=None, accept_qp: bool = False):
        """The CasADi NLP of ``problem`` or None (not an NLP, or a construct only the Pyomo compiler takes)."""
        try:
            from mechdsl.compilers.casadi.nlp import Unsupported, build_nlp
        except ImportError:  # pragma: no cover - casadi is a dependency
            return None
        if inst is None:
            inst = self.instance()
            self.guard(problem)
        runstate.checkpoint("building the NLP")
        try:
            nlp = build_nlp(problem, inst, env, var_names=names, name=label)
        except (Unsupported, RuntimeError, TypeError, ValueError, NotImplementedError):
            return None  # a construct (or a CasADi limitation) only the Pyomo compiler takes
        return nlp if nlp.problem_class == "NLP" or (accept_qp and nlp.problem_class == "QP") else None

    def compile_form(self, reduce: bool = True, passes: tuple | None = None, ic: str = "auto"):
        """The backend-neutral compiled form of the main problem: ``(Built, lazy families)``.

        Raises :class:`~mechdsl.compilers.standard.build.NotLinear` when the problem is not an LP/QP/MILP the
        form can express (then :meth:`compile` builds the Pyomo model).
        """
        self.instance()
        red = self.reduce(passes) if reduce else None
        problem = red.problem if red is not None else self.mech.problem
        return self._build_form(problem, dict(red.eliminated) if red is not None else {}, ic)

    def _build_form(self, problem: ir.Problem, eliminated: dict, ic: str):
        from mechdsl.compilers.standard.build import _sel, build
        from .solving import lazy_candidates

        inst = self.instance()
        self.guard(problem)
        runstate.checkpoint("building the compiled form")
        try:
            lazy = {}
            if ic != "full":
                names = {v.name for v in problem.vars} | set(eliminated)
                lazy = lazy_candidates(problem, inst, _columns_for(problem, inst), names, ic)
            restrict = {n: ([_sel(a, lf.added) for a in lf.arrays], int(lf.added.sum())) for n, lf in lazy.items()}
            built = build(problem, inst, eliminated=eliminated, restrict=restrict)
        except EvalError as exc:
            raise _locate(self.module, exc) from None
        return built, lazy

    def _solve_form(self, built, lazy, problem, eliminated, red, opts, t0) -> "_Attempt":
        from mechdsl.compilers.standard.build import values_of
        from .solving import solve_form

        t1 = time.perf_counter()
        progress = None
        if opts.tee or self.progress:
            def progress(rnd, added, worst):
                print(f"constraint generation: round {rnd}: {added} violated row(s) added "
                      f"(worst violation {worst:.3g})", file=sys.stderr, flush=True)
        out = solve_form(built, lazy, options=dict(opts.solver_options or {}),
                         time_limit=runstate.remaining("solving the main problem"),
                         tee=opts.tee, progress=progress,
                         deadline=lambda: runstate.remaining("solving the main problem"))
        sol = out.solution
        form = built.form
        att = _Attempt(status=sol.status, objective=sol.objective, problem_class=form.problem_class,
                       solver="HiGHS", message=sol.message, sense=form.sense, problem=problem, red=red,
                       timings={"compile": t1 - t0, "solve": time.perf_counter() - t1})
        att.certificate = sol.certificate
        att.form = form  # an infeasible form is explained by an IIS (_explain_infeasible)
        att.rows = {}
        for b in form.rows:
            att.rows[b.name] = att.rows.get(b.name, 0) + len(b.keys)
        if lazy:
            for name, (used, total) in out.lazy_rows.items():
                att.notes.append(f"{name}: IC by constraint generation: {used} of {total} rows used, "
                                 f"{len(out.rounds)} round(s) (--ic full builds them all)")
        if sol.ok:
            values = values_of(form, sol.x)
            att.values = _invert(red, values, self.mech.problem) if red is not None else values
            att.duals = _duals(form, sol)
        return att

    def _solve_pyomo(self, problem, red, opts, t0) -> "_Attempt":
        from mechdsl.compilers.pyomo.solvers import choose_solver

        cm = self._compile_problem(problem, red, opts.mpcc, opts.mpcc_tol, opts.gdp)
        t1 = time.perf_counter()
        solver = choose_solver(cm.problem_class, opts.solver)
        schedule = None
        if cm.mpcc is not None and cm.mpcc.mode == "relax":
            out, schedule = self._relax_schedule(cm, solver, opts)
        else:
            out = _solve_compiled(cm, solver, opts, opts.multistart)
        att = _Attempt(status=out.status.value, objective=out.objective, problem_class=cm.problem_class,
                       solver=_solver_label(solver), message=out.message, sense=cm.sense, problem=problem, red=red,
                       timings={"compile": t1 - t0, "solve": time.perf_counter() - t1})
        if cm.problem_class == "QP" and solver == "highs" and not out.status.ok and opts.solver is None:
            # Only a QP that the compiled form cannot take comes here (min/max terms, implications).
            att.notes.append(f"HiGHS's QP solver reported '{out.status.value}' ({out.message}); re-solved with "
                             "IPOPT, whose answer is reported")
            solver = "ipopt"
            out = _solve_compiled(cm, solver, opts, opts.multistart)
            att.status, att.objective, att.message = out.status.value, out.objective, out.message
            att.solver = _solver_label(solver)
        att.notes.extend(cm.notes)
        if cm.linearized:
            att.notes.append(f"{cm.linearized} min/max term(s) replaced by an exact epigraph/hypograph variable")
        if cm.smoothed:
            att.notes.append(f"{cm.smoothed} min/max term(s) cannot be linearised exactly in their position; "
                             "solved by smoothing continuation (mu = 1 -> 1e-9)")
        att.rows = dict(cm.con_counts)
        att.schedule = schedule
        if out.status.ok:
            att.values = self._spec_values(cm)
        else:
            att.values = {}
        att.cm = cm
        return att

    def _finish(self, att: "_Attempt", red, opts: SolveOptions) -> Result:
        """Verify an attempt against the original constraints and make the Result."""
        runstate.phase("verifying the solution")
        inst = self.instance()
        t2 = time.perf_counter()
        ver = None
        if att.ok:
            ver = verify(inst, self.mech.problem, att.values, tol=opts.tol)
            ver.certify(att.certificate, att.problem_class, opts.gap_tol)
        res = Result(
            status=att.status, objective=att.objective, problem_class=att.problem_class, solver=att.solver,
            variables=att.values if att.ok else {}, parameters=dict(inst.params), verification=ver, spec=self.path,
            objective_name=self.mech.problem.objective.name if self.mech.problem.objective else "objective",
            sense=att.sense, message=att.message,
            timings={**att.timings, "verify": time.perf_counter() - t2},
        )
        res.notes.extend(att.notes)
        res.reduction = red
        res.rows = dict(att.rows)
        res.duals = att.duals
        res.certificate = att.certificate
        if att.schedule is not None:
            res.schedule = att.schedule
            try:  # the exact optimum alongside, for comparison
                exact = self.solve(SolveOptions(**{**opts.__dict__, "mpcc": "exact", "strict": False}))
                res.exact_objective = exact.objective
            except MechError as exc:
                res.notes.append(f"no exact optimum for comparison: {str(exc).splitlines()[0]}")
        if red is not None:
            for a in red.applied:
                res.notes.append(f"reduced by {a.pass_name}: {a.summary}")
        res.aux = {f"{n}[{','.join(map(str, k))}]": v for (n, k), v in inst.aux_results.items()}
        aux_runs = self.__dict__.get("_aux_runs")
        if aux_runs:
            won = {}
            for label, run in aux_runs.items():
                won.setdefault(run.start + (" after continuation" if run.continuation else ""), []).append(label)
            res.notes.append("auxiliary NLPs (multistart: init and the bounds, exact first): best start "
                             + "; ".join(f"{how}: {_few(labels)}" for how, labels in won.items()))
        if ver is not None:
            res.menu_rows = _menu(inst, self.mech, att.values, ver, att.duals)
        return res

    # ------------------------------------------------------------ repair
    def _repair(self, red, first: Result, opts: SolveOptions, t0: float) -> Result:
        """A reduced model's solution failed verification: add the violated original rows and re-solve.

        The re-solve starts from the last stage of the reductions that still has every original variable,
        adds each violated instance of an original constraint family as a cut, and repeats until the solution
        verifies (a cutting-plane loop).  Which reduction was unsound is reported in a note.
        """
        from .solving import violated_keys
        from .ir.sym import IEnum

        inst = self.instance()
        original = self.mech.problem
        base = _base_stage(red, original)
        unsound = ", ".join(a.pass_name for a in red.applied)
        notes = [f"verification of the reduced model failed (max_regret={first.verification.max_regret:.3g}, "
                 f"max_ir_violation={first.verification.max_ir_violation:.3g}, "
                 f"max_violation={first.verification.max_violation:.3g}): a reduction ({unsound}) was not exact "
                 "here; violated original rows were added back and the model re-solved"]
        cuts: dict[str, set] = {}
        values = first.variables
        res = first
        for rnd in range(1, 51):
            runstate.checkpoint(f"repairing the reduction (round {rnd})")
            bad = violated_keys(original, inst, values, opts.tol * 1e-3)
            if not bad:
                break
            for name, keys in bad.items():
                cuts.setdefault(name, set()).update(keys)
            extra = []
            for c in original.constraints:
                if c.name in cuts:
                    keys = sorted(cuts[c.name], key=repr)
                    dom = ir.Domain(((c.domain.binders, IEnum(*[sp_tuple(k) for k in keys])),)) if c.domain else None
                    extra.append(ir.ConstraintDef(f"{c.name}__cut", c.kind, dom, c.body, c.span,
                                                  origin="repair: violated original rows", check_only=False))
            problem = ir.Problem(base.vars, base.constraints + tuple(extra), base.objective)
            att = self._attempt(problem, {}, None, opts, t0, lazy_ok=False)
            res = self._finish(att, None, opts)
            res.reduction = red
            if not att.ok:
                break
            values = att.values
            if res.verification.feasible:
                break
        res.notes = notes + [f"repair: {sum(len(v) for v in cuts.values())} original row(s) added as cuts "
                             f"({', '.join(f'{n}: {len(v)}' for n, v in cuts.items())})"] + res.notes
        return res

    def _explain_infeasible(self, res: Result, att) -> str:
        """An infeasible LP/QP/MILP solved on the compiled form: an irreducible infeasible subset, in spec terms,
        on ``res.iis`` (compilers/highs/iis.py); returns the lines printed under the error message."""
        from mechdsl.compilers.highs import iis as iis_mod
        from mechdsl.compilers.standard.build import NotLinear
        from .size import estimate

        form = getattr(att, "form", None)
        if form is None or not getattr(self, "explain_infeasibility", True):  # (a sweep may turn it off)
            return ""  # solved through Pyomo or CasADi: no compiled form to explain
        runstate.phase("explaining the infeasibility (IIS)")
        where = "the model as solved (reductions included: the full model is too large)"
        try:  # the full, unreduced model when it is not too large: every member is then a row the spec writes
            if estimate(self.mech.problem, self.instance()).rows <= iis_mod.FULL_ROWS:
                form = self._build_form(self.mech.problem, {}, "full")[0].form
                where = "the full model (every original row, no reduction)"
        except (NotLinear, MechError, EvalError):
            pass
        try:
            left = runstate.remaining()
            found = iis_mod.compute_iis(form, time_limit=iis_mod.SECONDS if left is None else min(left, iis_mod.SECONDS))
            if found is None or not found.atoms:
                return ""
            res.iis = iis_mod.describe(form, found, self.mech)
        except MechError:  # the time limit: the infeasibility is reported without its explanation
            return ""
        except Exception as exc:  # never hide the infeasibility behind a failure to explain it
            res.notes.append(f"no IIS: computing it failed ({type(exc).__name__}: {exc})")
            return ""
        res.notes.append(f"IIS of {where}: {len(res.iis)} member(s), by {found.method} ({found.solves} HiGHS solves, "
                         f"{found.seconds:.2g} s); " + ("irreducible: dropping any member leaves a feasible set"
                                                       if found.irreducible else found.message))
        return "\n" + iis_mod.render(res.iis, found)

    def _spec_values(self, cm) -> dict:
        """The solution in the spec's variables: the reductions inverted in reverse order (CVXPY's Chain)."""
        values = cm.values()
        return _invert(cm.reduction, values, self.mech.problem) if cm.reduction is not None else values

    # ------------------------------------------------------------ MPCC relaxation
    def _relax_schedule(self, cm, solver, opts: SolveOptions):
        """Solve for each eps of the schedule (warm-started); verify every point against the original spec."""
        eps = cm.model.mpcc_eps
        bound_fn = next((f for f in self.mech.functions if f.name == "regret_bound" and len(f.args) == 1), None)
        inst = self.instance()
        rows, out = [], None
        from .evaluate import Evaluator

        ev = Evaluator(inst)
        if hasattr(cm.model, "mpcc_indicator_relaxed"):
            # Warm-up: at eps = 1/4, z(1-z) <= eps holds for every z in [0,1] (the continuous relaxation of
            # the big-M model); its solution is a far better start for the schedule than z = 0.
            import pyomo.environ as pyo

            for z in cm.model.component_data_objects(pyo.Var):
                if z.lb == 0 and z.ub == 1 and z.value in (None, 0):
                    z.set_value(0.5)
            first = opts.eps_schedule[0]
            ramp = [0.25]
            while ramp[-1] * 0.6 > first:  # then tighten gently down to the first reported eps
                ramp.append(ramp[-1] * 0.6)
            for e in ramp:
                eps.setlb(e), eps.setub(e), eps.set_value(e)
                _solve_compiled(cm, solver, opts, opts.multistart)
        for e in opts.eps_schedule:
            eps.setlb(e), eps.setub(e), eps.set_value(e)
            out = _solve_compiled(cm, solver, opts, opts.multistart)
            row = {"eps": e, "status": out.status.value, "objective": out.objective, "max_regret": None,
                   "bound": float(ev.value(bound_fn.body, {bound_fn.args[0]: e})) if bound_fn else None}
            if out.status.ok:
                values = self._spec_values(cm)
                ver = verify(inst, self.mech.problem, values, tol=opts.tol)
                row["max_regret"] = ver.max_regret
                row["max_violation"] = max(ver.max_violation, ver.max_ir_violation)
            rows.append(row)
        return out, rows

    # ------------------------------------------------------------ aux solves
    def _solve_aux(self, inst: Instance, aux: ir.AuxDef, key: tuple, env: dict) -> dict:
        label = f"{aux.name}[{','.join(map(str, key))}]" if key else aux.name
        outer = runstate.current_phase()
        runstate.checkpoint(f"solving auxiliary problem {label}")
        if self.progress:
            self.__dict__.setdefault("_status", Status()).show(f"solving auxiliary problem {label} ...")
        names = {v.name for v in aux.problem.vars}
        opts = self._aux_opts
        r = self._aux_attempt(inst, aux, aux.problem, env, names, label, opts, tiebreak=aux.tiebreak)
        tie_note = r.get("tiebreak")
        if r["ok"] and aux.tiebreak is not None and tie_note is None:
            # Lexicographic: the primary objective held at its optimum (within the solver's tolerance), then
            # the tie-break objective over that face.
            z, obj = r["objective"], aux.problem.objective
            slack = 1e-7 * max(1.0, abs(z))
            rel = (ir.Rel(obj.expr, ">=", z - slack) if obj.sense == "maximize" else ir.Rel(obj.expr, "<=", z + slack))
            keep = ir.ConstraintDef(f"{obj.name}_optimal", ir.ConKind.PLAIN, None, rel, aux.span,
                                    origin="tiebreak: the primary objective at its optimum")
            second = ir.Problem(aux.problem.vars, aux.problem.constraints + (keep,), aux.tiebreak)
            r2 = self._aux_attempt(inst, aux, second, env, names, label, opts)
            if r2["ok"]:
                r["values"], tie_note = r2["values"], f"tie-break {aux.tiebreak.sense} {r2['objective']:.10g}"
            else:
                tie_note = f"tie-break not applied ({r2['status']}: {r2['message']})"
        if self.progress and "_status" in self.__dict__:
            self._status.clear()
        if not r["ok"]:
            runstate.phase(outer)
            status = r["status"]
            # a value, not an abort: `.feasible` reads it, and only a number it lacks is an error (where used)
            infeasible = "infeasible" in str(status).lower()
            unbounded = "unbounded" in str(status).lower()
            return {"ok": False, "status": status, "message": f"{r['solver']}: {r['message']}",
                    "feasible": False if infeasible else (True if unbounded else None), "objective": None,
                    "vars": {}, "span": aux.span}
        values = r["values"]
        ver = verify(inst, aux.problem, values, tol=opts.tol, var_names=names, env=env)
        if not ver.ok:
            raise SolveError(f"error: the solution of auxiliary problem {label} violates its constraints by "
                             f"{max(ver.max_violation, ver.max_regret, ver.max_ir_violation):.3g}",
                             status="error").with_result(
                _failed_result(self, f"error (auxiliary problem {label} fails verification)", r["message"]))
        res = {"ok": True, "status": r["status"], "feasible": True, "objective": r["objective"],
               "message": r["message"], "solver": r["solver"],
               "vars": {v.name: dict(values[v.name]) for v in aux.problem.vars}}
        if tie_note:
            res["tiebreak"] = tie_note
        runstate.phase(outer)
        return res

    def _aux_attempt(self, inst, aux, problem, env, names, label, opts, tiebreak=None) -> dict:
        """Solve one auxiliary problem: the compiled form straight to HiGHS (LP, QP, MILP: built in
        milliseconds, no modelling objects), else the CasADi NLP, else the Pyomo model; the solve options
        (solver, tolerances, MPCC settings) are the main problem's."""
        try:
            if opts.solver in (None, "highs"):
                r = self._aux_form(inst, problem, env, opts, tiebreak, label)
                if r is not None:
                    return r
            nlp = (self._build_nlp(problem, env, names, label, inst, accept_qp=True)  # a QP here is nonconvex
                   if opts.solver in (None, "ipopt") else None)
            if nlp is None:  # not an NLP the CasADi backend compiles: the Pyomo compiler (imported only now)
                from mechdsl.compilers.pyomo.model import MPCCOptions, UnsupportedError, compile_problem

                def pyomo_model(mode):
                    return compile_problem(problem, inst, env, name=label, var_names=names,
                                           mpcc=MPCCOptions(mode, opts.mpcc_tol, opts.gdp))
                try:
                    cm = pyomo_model(opts.mpcc or "exact")
                except UnsupportedError as exc:  # as for the main problem: relax when a variable is unbounded
                    if opts.mpcc is not None or "needs finite bounds" not in str(exc):
                        raise
                    cm = pyomo_model("relax")
        except EvalError as exc:
            raise exc.again(f"in auxiliary problem {label}: {exc.message}", exc.name, aux.span) from None
        if nlp is not None:
            # Stand-alone optima are often nonconvex: every start (init, the bounds) with the exact problem,
            # a continuation only where one stops on a flat branch; the best kept, its start recorded.
            from mechdsl.compilers.casadi.nlp import solve_nlp

            run = solve_nlp(nlp, multistart=opts.aux_multistart, tee=opts.tee,
                            options=dict(opts.solver_options or {}), deadline=lambda: runstate.remaining())
            best = run.best
            self.__dict__.setdefault("_aux_runs", {})[label] = run
            return {"ok": best.ok, "status": best.status, "message": best.message, "objective": best.objective,
                    "solver": "ipopt (casadi)", "values": nlp.values(best.x) if best.ok else {}}
        from mechdsl.compilers.pyomo.solvers import choose_solver

        solver = choose_solver(cm.problem_class, opts.solver)
        out = _solve_compiled(cm, solver, opts, opts.aux_multistart)
        if cm.problem_class == "QP" and solver == "highs" and not out.status.ok and opts.solver is None:
            solver = "ipopt"  # the main problem's QP fallback
            out = _solve_compiled(cm, solver, opts, opts.aux_multistart)
        return {"ok": out.status.ok, "status": out.status.value, "message": out.message, "objective": out.objective,
                "solver": _solver_label(solver), "values": cm.values() if out.status.ok else {}}

    def _aux_form(self, inst, problem, env, opts, tiebreak=None, label: str = "") -> dict | None:
        """An LP/MILP auxiliary problem through the compiled form and HiGHS, or None (another path).

        An LP's tie-break is exact: the optimal face is the feasible set with every column of nonzero reduced
        cost held at its value and every row of nonzero dual held active (complementary slackness), and the
        tie-break objective is optimised over it; the primary optimum is not relaxed."""
        from mechdsl.compilers.standard.build import NotLinear, build, values_of
        from .solving import solve_form

        try:
            built = build(problem, inst, env)
        except NotLinear:
            return None
        if built.form.problem_class not in ("LP", "MILP") and not (built.form.problem_class == "QP"
                                                                    and built.form.convex()):
            return None  # a nonconvex QP: IPOPT (a local optimum, multistart)
        out = solve_form(built, {}, options=dict(opts.solver_options or {}), time_limit=runstate.remaining(),
                         deadline=lambda: runstate.remaining(), tee=opts.tee, label=f"auxiliary problem {label}")
        sol = out.solution
        res = {"ok": sol.ok, "status": sol.status, "message": sol.message, "objective": sol.objective,
               "solver": "HiGHS", "values": values_of(built.form, sol.x) if sol.ok else {}}
        if sol.ok and tiebreak is not None and built.form.problem_class == "LP" and sol.row_dual is not None \
                and sol.col_dual is not None:
            res.update(self._tiebreak_on_face(inst, problem, env, opts, built, sol, tiebreak))
        return res

    def _tiebreak_on_face(self, inst, problem, env, opts, built, sol, tiebreak) -> dict:
        from mechdsl.compilers.standard.build import build, values_of
        from .solving import solve_form

        second = build(ir.Problem(problem.vars, problem.constraints, tiebreak), inst, env)
        f1, f2 = built.form, second.form
        if f2.A.shape != f1.A.shape or f2.problem_class != "LP":
            return {}
        x = sol.x
        scale = 1e-9 * max(1.0, float(np.max(np.abs(f1.c))) if f1.c.size else 1.0)
        fix = np.abs(sol.col_dual) > scale
        f2.col_lo = np.where(fix, x, f2.col_lo)
        f2.col_hi = np.where(fix, x, f2.col_hi)
        act = f1.A @ x
        hold = np.abs(sol.row_dual) > scale
        f2.row_lo = np.where(hold, act, f2.row_lo)
        f2.row_hi = np.where(hold, act, f2.row_hi)
        out = solve_form(second, {}, options=dict(opts.solver_options or {}), time_limit=runstate.remaining(),
                         deadline=lambda: runstate.remaining())
        s2 = out.solution
        if not s2.ok:
            return {"tiebreak": f"tie-break not applied ({s2.status}: {s2.message})"}
        return {"values": values_of(f2, s2.x),
                "tiebreak": f"tie-break {tiebreak.sense} {s2.objective:.10g} over the optimal face (exact)"}


@dataclass
class _Attempt:
    """One solve of one (possibly reduced or cut-extended) problem, before verification."""

    status: str
    objective: float | None
    problem_class: str
    solver: str
    message: str
    sense: str
    problem: Any
    red: Any
    timings: dict
    values: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    rows: dict = field(default_factory=dict)
    duals: dict = field(default_factory=dict)
    certificate: Any = None
    schedule: list | None = None
    cm: Any = None

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "locally optimal")


def _invert(red, values: dict, original: ir.Problem) -> dict:
    """The solution in the spec's variables: the reductions inverted in reverse order (the Chain's job)."""
    if hasattr(red, "invert"):
        values = red.invert(values)
    else:
        for p, inverse in reversed(red.inverse):
            values = p.invert(values, inverse)
    return {v.name: values[v.name] for v in original.vars if v.name in values}


def _base_stage(red, original: ir.Problem) -> ir.Problem:
    """The last reduced problem that still has every original variable (the repair loop adds cuts to it)."""
    names = {v.name for v in original.vars}
    best = original
    for stage in getattr(red, "stages", None) or []:
        problem = stage[1]
        if {v.name for v in problem.vars} >= names:
            best = problem
    if best is original and not red.eliminated:
        best = red.problem
    return best


def _columns_for(problem: ir.Problem, inst):
    from mechdsl.compilers.standard.build import Columns

    cols = Columns()
    for v in problem.vars:
        try:
            _keys = inst.ev.domain_keys(v.domain)
        except EvalError as exc:
            raise exc.again(f"in var {v.name}: {exc.message}", exc.name, exc.span or v.span) from None
        cols.add(v.name, _keys, v.kind)
    return cols


def sp_tuple(key: tuple):
    import sympy as sp

    return sp.Tuple(*key)


#: Row kinds whose shadow prices are reported in spec terms.
DUAL_KINDS = ("ic", "ir", "budget", "feasibility", "constraint", "monotonicity")


def _duals(form, sol) -> dict:
    """Shadow prices of the binding rows: {family: {key: value}}, value = what one unit of relaxation is worth."""
    if sol.row_dual is None:
        return {}
    y = sol.row_dual
    act = form.A @ sol.x
    scale = 1e-7 * max(1.0, float(np.max(np.abs(sol.x))) if sol.x.size else 1.0)
    out: dict = {}
    for b in form.rows:
        if b.kind not in DUAL_KINDS:
            continue
        seg = slice(b.start, b.stop)
        yy, a, lo, hi = y[seg], act[seg], form.row_lo[seg], form.row_hi[seg]
        with np.errstate(invalid="ignore"):
            binding = ((np.isfinite(lo) & (np.abs(a - lo) <= scale * (1 + np.abs(lo))))
                       | (np.isfinite(hi) & (np.abs(hi - a) <= scale * (1 + np.abs(hi)))))
        eq = lo == hi
        val = np.where(eq, yy, np.abs(yy))
        name = b.name if not b.part else f"{b.name}_{b.part}"
        fam = out.setdefault(name, {})
        for i in np.flatnonzero(binding):
            fam[b.keys[int(i)]] = float(val[i])
    return {k: v for k, v in out.items() if v}


def _failed_result(model: "Model", status: str, message: str) -> Result:
    """The Result of a solve that stopped before the main problem (e.g. an auxiliary problem failed)."""
    mech = model.mech
    return Result(status=status, objective=None, problem_class="", solver="", variables={}, parameters={},
                  verification=None, spec=model.path, message=message,
                  objective_name=mech.problem.objective.name if mech.problem.objective else "objective")


def _solver_label(solver: str) -> str:
    if solver == "ipopt":
        from mechdsl.compilers.pyomo.solvers import ipopt_backend
        return ipopt_backend()
    return {"highs": "HiGHS"}.get(solver, solver)


def _nlp_notes(nlp, run, multistart: bool) -> list[str]:
    """What the CasADi NLP path did, in words: epigraphs, min/max terms, continuation, the winning start."""
    notes = []
    if nlp.linearized:
        notes.append(f"{nlp.linearized} min/max term(s) replaced by an exact epigraph/hypograph variable")
    if nlp.smoothed_terms:
        if any(how.startswith("continuation") for _, how, _, _ in run.runs):
            mus = sorted({how.split("=")[1] for _, how, _, _ in run.runs if how.startswith("continuation")},
                         key=lambda m: -float(m))
            won = "its result was kept" if run.continuation else "the direct solve was kept"
            notes.append(f"{nlp.smoothed_terms} min/max term(s) kept exact; the exact problem stopped where a "
                         f"min/max term is on a flat branch (or failed), so a smoothing continuation "
                         f"(mu = {', '.join(mus)}, warm-started) was run before re-solving it exactly; {won}")
        else:
            notes.append(f"{nlp.smoothed_terms} min/max term(s) kept exact; the exact problem was solved directly "
                         "(no min/max term on a flat branch at the solution, no continuation needed)")
    if multistart:
        starts = list(dict.fromkeys(label for label, _, _, _ in run.runs))
        notes.append(f"multistart: {len(starts)} start(s) ({', '.join(starts)}); the best came from: {run.start}")
    return notes


def _solve_compiled(cm, solver, opts: SolveOptions, multistart: bool):
    """Solve once from the spec's starting point; for an NLP with ``multistart``, also from the bounds."""
    import pyomo.environ as pyo
    from mechdsl.compilers.pyomo.solvers import solve

    def once():
        return solve(cm.model, solver, tee=opts.tee, options=dict(opts.solver_options or {}),
                     time_limit=runstate.remaining())

    def run():
        return _continuation(cm, once)

    if not (multistart and cm.problem_class == "NLP"):
        return run()
    mu = getattr(cm.model, "smoothing_mu", None)
    vars_ = [v for v in cm.model.component_data_objects(pyo.Var) if v is not mu]
    starts = [[v.value for v in vars_]]
    for pick in (lambda v: v.lb, lambda v: v.ub):
        pt = [pick(v) if pick(v) is not None else v.value for v in vars_]
        if pt not in starts:
            starts.append(pt)
    best, best_vals = None, None
    sign = 1 if cm.sense == "maximize" else -1
    # From each start: a direct solve of the exact problem, and (when the model
    # has smoothed min/max terms) a continuation; keep the best local optimum.
    runs = [once, run] if mu is not None else [once]
    for pt in starts:
        for attempt in runs:
            for v, x in zip(vars_, pt):
                v.set_value(x, skip_validation=True)
            out = attempt()
            if out.status.ok and (best is None or not best.status.ok
                                  or sign * out.objective > sign * best.objective + 1e-9):
                best, best_vals = out, [v.value for v in vars_]
            elif best is None:
                best = out
    if best_vals is not None:
        for v, x in zip(vars_, best_vals):
            v.set_value(x, skip_validation=True)
    return best


def _continuation(cm, run_once):
    """Solve through the smoothing schedule of nonsmooth min/max terms (if any), warm-started."""
    from mechdsl.compilers.pyomo.model import SMOOTHING_FINAL, SMOOTHING_SCHEDULE

    mu = getattr(cm.model, "smoothing_mu", None)
    if mu is None:
        return run_once()
    for value in SMOOTHING_SCHEDULE:
        mu.setlb(value), mu.setub(value), mu.set_value(value)
        out = run_once()
        if not out.status.ok:
            break
    mu.setlb(SMOOTHING_FINAL), mu.setub(SMOOTHING_FINAL), mu.set_value(SMOOTHING_FINAL)
    return run_once()


def _menu(inst: Instance, mech: ir.Mechanism, values: dict, ver, duals: dict | None = None) -> list[dict]:
    types = mech.types
    if not types:
        return []
    t = types[0]
    if t.agents is not None:
        return _agent_menu(inst, mech, t, values, ver, duals)
    elems, probs = inst.types[t.name]
    keys = [e if isinstance(e, tuple) else (e,) for e in elems]
    keyset = set(keys)
    cols = [n for n, vals in values.items() if set(vals) == keyset]
    util = next((u for u in mech.utilities if len(u.args) == 2 * t.dim), None)
    from .evaluate import Evaluator
    from .evaluate import ValuesTarget
    ev = Evaluator(inst, ValuesTarget(values))
    binding_of: dict[tuple, list[str]] = {}
    price_of: dict[tuple, dict[str, float]] = {}
    duals = duals or {}
    for c in mech.problem.constraints:
        if c.kind in (ir.ConKind.IC, ir.ConKind.IR, ir.ConKind.BUDGET):
            fam = duals.get(c.name, {})
            for k, cid in ver.binding.get(c.name, []):
                binding_of.setdefault(tuple(k[:t.dim]), []).append(cid)
                if k in fam:
                    price_of.setdefault(tuple(k[:t.dim]), {})[cid] = fam[k]
    rows = []
    for key, p in zip(keys, probs):
        row = {"type": ",".join(map(str, key)), "prob": p}
        for n in cols:
            row[n] = values[n][key]
        if util is not None:
            env = dict(zip(util.args, key + key))
            row[f"{util.name}"] = float(ev.value(util.body, env))
        row["binding"] = binding_of.get(key, [])
        row["prices"] = price_of.get(key, {})
        rows.append(row)
    return rows


def _few(labels: list, k: int = 6) -> str:
    """A list of names, abridged: the first k and how many more."""
    return ", ".join(labels[:k]) + (f" and {len(labels) - k} more" if len(labels) > k else "")


def _agent_menu(inst: Instance, mech: ir.Mechanism, t, values: dict, ver, duals: dict | None) -> list[dict]:
    """One row per (agent, type): the interim value of every variable x[i, v] (E over the others' types with
    i's type fixed), the interim utility where the spec defines one as U(i, t, r), and the binding rows."""
    agents, tvals, probs = inst.agent_types[t.name]
    n = len(agents)
    pos = {a: k for k, a in enumerate(agents)}
    cols = [name for name, vals in values.items() if vals and all(len(k) == 1 + n for k in list(vals)[:1])
            and all(k[0] in pos for k in list(vals)[:50])]
    from .evaluate import Evaluator, ValuesTarget
    from .ir.sym import Expectation, OthersExpectation
    ev = Evaluator(inst, ValuesTarget(values))
    util = next((u for u in mech.utilities if len(u.args) == 3 and u.body.has(OthersExpectation, Expectation)), None)
    duals = duals or {}
    binding_of: dict[tuple, list[str]] = {}
    price_of: dict[tuple, dict[str, float]] = {}
    for c in mech.problem.constraints:
        if c.kind not in (ir.ConKind.IC, ir.ConKind.IR, ir.ConKind.BUDGET):
            continue
        role = getattr(c, "role", None)
        if role is None or role.agent is None or c.domain is None:
            continue
        binders = c.domain.binders
        apos = binders.index(role.agent)
        if role.profile is not None:  # ex post: the agent's own entry of the profile binder
            ppos = binders.index(role.profile)
            own_of = lambda k: k[ppos][pos[k[apos]]] if isinstance(k[ppos], tuple) else None
        else:
            tpos = binders.index(role.true[0]) if role.true and role.true[0] in binders else None
            own_of = lambda k: k[tpos] if tpos is not None else None
        fam = duals.get(c.name, {})
        for k, cid in ver.binding.get(c.name, []):
            if k[apos] not in pos:
                continue
            own = own_of(k)
            binding_of.setdefault((k[0], own), []).append(cid)
            if k in fam:
                price_of.setdefault((k[0], own), {})[cid] = fam[k]
    rows = []
    profiles, pr = inst.types[t.name]
    for a in agents:
        for j, tv in enumerate(tvals):
            # i's type fixed at tv: the others' types conditional on it (independent or joint prior alike)
            sel = [(prof, p) for prof, p in zip(profiles, pr) if prof[pos[a]] == tv]
            marginal = sum(p for _, p in sel)
            row = {"agent": a, "type": tv, "prob": marginal}
            for name in cols:
                total = sum(p * values[name].get((a,) + prof, float("nan")) for prof, p in sel)
                row[f"E[{name}]"] = total / marginal if marginal > 0 else float("nan")
            if util is not None:
                try:
                    row[util.name] = float(ev.value(util.body, dict(zip(util.args, (a, tv, tv)))))
                except EvalError:
                    row[util.name] = float("nan")
            row["binding"] = binding_of.get((a, tv), [])
            row["prices"] = price_of.get((a, tv), {})
            rows.append(row)
    if not cols and util is None and not binding_of:
        return []  # nothing per agent to show (no outcome variables, no IC/IR)
    return rows


def _failure_message(path, out) -> str:
    what = {"infeasible": "the model is infeasible: no contract satisfies all constraints",
            "unbounded": "the model is unbounded: the objective can be improved without limit",
            "iteration limit": "the solver stopped at its iteration or time limit before converging",
            "error": "the solver failed"}.get(out.status, out.status)
    msg = f"{path}: {what} [{out.solver}: {out.message}]"
    if "Invalid_Number" in out.message:
        msg += ("\n  help: the solver met an undefined value (log or sqrt of a negative number, a division by zero); "
                "give the variables a starting point inside the functions' domain ('init = ...') or bounds that "
                "keep them there")
    return msg


def _verification_message(ver) -> str:
    lines = [f"error: verification failed (tolerance {ver.tol:g}): max_regret={ver.max_regret:.3g}, "
             f"max_ir_violation={ver.max_ir_violation:.3g}, max_violation={ver.max_violation:.3g}"]
    for viol, cid, kind in ver.worst[:5]:
        lines.append(f"  {cid} ({kind}) violated by {viol:.3g}")
    return "\n".join(lines)


def _locate(module: ast.Module, exc: EvalError) -> MechError:
    """Point an evaluation error at the source: the offending ``name[...]`` inside the declaration.

    An auxiliary problem without an optimum, whose number is needed, is a solve failure (exit 1), located
    where the number is used."""
    from .errors import DataError, Diagnostic
    from .instance import AuxUnavailable

    if isinstance(exc, AuxUnavailable):
        text = "error: " + exc.message
        if exc.span is not None:
            text = Diagnostic(exc.message, exc.span).render({module.span.file: module.source})
        status = str(exc.result.get("status") or "error")
        return SolveError(text, status=status).with_result(
            Result(status=f"{status} (auxiliary problem {exc.result.get('label')})", objective=None, problem_class="", solver="", variables={}, parameters={},
                   verification=None, spec=module.span.file, message=exc.message))

    if exc.span is None and exc.name:  # no declaration known: the first use of the name at fault
        for item in module.items:
            if getattr(item, "name", None) == exc.name:
                continue  # its declaration is not a use
            hits = [n for n in _walk(item) if isinstance(n, ast.Indexed) and n.base == exc.name]
            if hits:
                exc.span = item.span
                break
    if exc.span is None:
        return exc
    span = exc.span
    decl = next((d for d in module.items if d.span == span), None)
    if decl is not None and exc.name:
        hits = [n for n in _walk(decl) if isinstance(n, ast.Indexed) and n.base == exc.name]
        if hits:
            span = hits[0].span
    diag = Diagnostic(exc.message, span)
    err = DataError(diag.render({module.span.file: module.source}))  # still a data error (exit 2), now located
    err.diagnostics = [diag]
    return err


def _walk(node):
    """Every AST node below ``node`` (dataclass fields, tuples)."""
    import dataclasses

    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, tuple):
            stack.extend(n)
        elif dataclasses.is_dataclass(n) and not isinstance(n, type):
            yield n
            for f in dataclasses.fields(n):
                if f.name != "span":
                    stack.append(getattr(n, f.name))


def load(path: str | Path, data: str | Path | Mapping | None = None,
         overrides: Iterable[str] | Mapping | None = None, progress: bool | None = None) -> Model:
    """Parse a spec and attach its data (a TOML path or a mapping) and overrides (``["K=10"]`` or a mapping)."""
    from .result import inputs_record

    module = parse_file(path)
    model = Model(module, data_mod.collect(data, overrides), progress=progress)
    model.inputs = inputs_record(data, overrides)  # as given: the data file's path and hash, the overrides
    return model


def loads(text: str, filename: str = "<string>", data=None, overrides=None) -> Model:
    """Like :func:`load`, from a string."""
    from .result import inputs_record

    model = Model(parse(text, filename), data_mod.collect(data, overrides), progress=False)
    model.inputs = inputs_record(data, overrides)
    return model

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import data as data_mod
from .errors import MechError, SolveError, VerificationError
from .evaluate import EvalError
from .instance import Instance
from .ir import nodes as ir
from .ir.lower import lower
from .result import Result
from .semantics.check import SymbolTable, check
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

    # -------------------------------------------------------------- stages
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
            try:
                cache[key] = run_passes(self.mech.problem, inst, list(passes) if passes is not None else None)
            except EvalError as exc:
                raise _locate(self.module, exc) from None
        return cache[key]

    def compile(self, reduce: bool = True, passes: tuple | None = None, mpcc: str | None = None,
                mpcc_tol: float = 1e-5, gdp: str = "bigm"):
        """Build the Pyomo model of the main problem (reduced unless ``reduce=False``); a CompiledModel.

        ``mpcc`` selects how implications, disjunctions and complementarity compile: "exact"
        (big-M MILP) or "relax" (NLP with eps); by default exact, or relax if a bound is missing.
        """
        from mechdsl.compilers.pyomo.model import MPCCOptions, UnsupportedError, compile_problem

        inst = self.instance()
        red = self.reduce(passes) if reduce else None
        problem = red.problem if red is not None else self.mech.problem

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
        """Compile, solve, verify against the original constraints, and map back to the spec."""
        from mechdsl.compilers.pyomo.solvers import choose_solver, solve

        opts = options or SolveOptions(**kwargs)
        self._aux_opts = opts
        t0 = time.perf_counter()
        cm = self.compile(reduce=opts.reduce, passes=opts.passes, mpcc=opts.mpcc, mpcc_tol=opts.mpcc_tol,
                          gdp=opts.gdp)
        t1 = time.perf_counter()
        solver = choose_solver(cm.problem_class, opts.solver)
        schedule = None
        if cm.mpcc is not None and cm.mpcc.mode == "relax":
            out, schedule = self._relax_schedule(cm, solver, opts)
        else:
            out = _solve_compiled(cm, solver, opts, opts.multistart)
        qp_note = None
        if cm.problem_class == "QP" and solver == "highs" and not out.status.ok and opts.solver is None:
            # HiGHS's active-set QP solver can misreport bounded convex QPs as unbounded
            # (ERGO-Code/HiGHS#1363); do not pass that on: re-solve with the interior-point solver.
            qp_note = (f"HiGHS's QP solver reported '{out.status.value}' ({out.message}); "
                       "re-solved with IPOPT, whose answer is reported")
            solver = "ipopt"
            out = _solve_compiled(cm, solver, opts, opts.multistart)
        t2 = time.perf_counter()
        inst = self.instance()
        values = self._spec_values(cm) if out.status.ok else cm.values()
        ver = None
        if out.status.ok:
            ver = verify(inst, self.mech.problem, values, tol=opts.tol)
        res = Result(
            status=out.status.value, objective=out.objective, problem_class=cm.problem_class,
            solver=_solver_label(solver), variables=values if out.status.ok else {},
            parameters=dict(inst.params), verification=ver, spec=self.path,
            objective_name=self.mech.problem.objective.name if self.mech.problem.objective else "objective",
            sense=cm.sense, message=out.message,
            timings={"compile": t1 - t0, "solve": t2 - t1, "verify": time.perf_counter() - t2},
        )
        res.notes.extend(cm.notes)
        if qp_note:
            res.notes.append(qp_note)
        res.reduction = cm.reduction
        res.rows = dict(cm.con_counts)
        if schedule is not None:
            res.schedule = schedule
            try:  # the exact optimum alongside, for comparison
                exact = self.solve(SolveOptions(**{**opts.__dict__, "mpcc": "exact", "strict": False}))
                res.exact_objective = exact.objective
            except MechError as exc:
                res.notes.append(f"no exact optimum for comparison: {str(exc).splitlines()[0]}")
        if cm.reduction is not None:
            for a in cm.reduction.applied:
                res.notes.append(f"reduced by {a.pass_name}: {a.summary}")
        if cm.linearized:
            res.notes.append(f"{cm.linearized} min/max term(s) replaced by an exact epigraph/hypograph variable")
        if cm.smoothed:
            res.notes.append(f"{cm.smoothed} min/max term(s) cannot be linearised exactly in their position; "
                             "solved by smoothing continuation (mu = 1 -> 1e-9)")
        res.aux = {f"{n}[{','.join(map(str, k))}]": v for (n, k), v in inst.aux_results.items()}
        if ver is not None:
            res.menu_rows = _menu(inst, self.mech, values, ver)
        if not out.status.ok:
            raise SolveError(_failure_message(self.path, out), status=out.status.value).with_result(res)
        if opts.strict and not ver.ok:
            raise VerificationError(_verification_message(ver)).with_result(res)
        return res

    def _spec_values(self, cm) -> dict:
        """The solution in the spec's variables: the reductions inverted in reverse order (CVXPY's Chain)."""
        values = cm.values()
        if cm.reduction is not None:
            for p, inverse in reversed(cm.reduction.inverse):
                values = p.invert(values, inverse)
        return {v.name: values[v.name] for v in self.mech.problem.vars if v.name in values}

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
        from mechdsl.compilers.pyomo.model import compile_problem
        from mechdsl.compilers.pyomo.solvers import choose_solver

        label = f"{aux.name}[{','.join(map(str, key))}]" if key else aux.name
        if self.progress:
            print(f"\rsolving auxiliary problem {label} ...", end="", file=sys.stderr, flush=True)
        names = {v.name for v in aux.problem.vars}
        try:
            cm = compile_problem(aux.problem, inst, env, name=label, var_names=names)
        except EvalError as exc:
            raise EvalError(f"in auxiliary problem {label}: {exc.message}", exc.name, aux.span) from None
        opts = self._aux_opts
        solver = choose_solver(cm.problem_class, None)
        out = _solve_compiled(cm, solver, opts, opts.aux_multistart)
        if self.progress:
            print("\r" + " " * (30 + len(label)) + "\r", end="", file=sys.stderr, flush=True)
        if not out.status.ok:
            raise SolveError(f"error: auxiliary problem {label} ({aux.span}) is {out.status.value} "
                             f"[{_solver_label(solver)}: {out.message}]", status=out.status.value)
        values = cm.values()
        ver = verify(inst, aux.problem, values, tol=opts.tol, var_names=names, env=env)
        if not ver.ok:
            raise SolveError(f"error: the solution of auxiliary problem {label} violates its constraints by "
                             f"{max(ver.max_violation, ver.max_regret, ver.max_ir_violation):.3g}", status="error")
        res = {"objective": out.objective}
        for v in aux.problem.vars:
            if v.domain is None:
                res[v.name] = values[v.name][()]
        return res


def _solver_label(solver: str) -> str:
    if solver == "ipopt":
        from mechdsl.compilers.pyomo.solvers import ipopt_backend
        return ipopt_backend()
    return {"highs": "HiGHS"}.get(solver, solver)


def _solve_compiled(cm, solver, opts: SolveOptions, multistart: bool):
    """Solve once from the spec's starting point; for an NLP with ``multistart``, also from the bounds."""
    import pyomo.environ as pyo
    from mechdsl.compilers.pyomo.solvers import solve

    def once():
        return solve(cm.model, solver, tee=opts.tee, options=dict(opts.solver_options or {}),
                     time_limit=opts.time_limit)

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


def _menu(inst: Instance, mech: ir.Mechanism, values: dict, ver) -> list[dict]:
    types = mech.types
    if not types:
        return []
    t = types[0]
    elems, probs = inst.types[t.name]
    keys = [e if isinstance(e, tuple) else (e,) for e in elems]
    keyset = set(keys)
    cols = [n for n, vals in values.items() if set(vals) == keyset]
    util = next((u for u in mech.utilities if len(u.args) == 2 * t.dim), None)
    from .evaluate import Evaluator
    from .evaluate import ValuesTarget
    ev = Evaluator(inst, ValuesTarget(values))
    binding_of: dict[tuple, list[str]] = {}
    for c in mech.problem.constraints:
        if c.kind in (ir.ConKind.IC, ir.ConKind.IR):
            for k, cid in ver.binding.get(c.name, []):
                binding_of.setdefault(tuple(k[:t.dim]), []).append(cid)
    rows = []
    for key, p in zip(keys, probs):
        row = {"type": ",".join(map(str, key)), "prob": p}
        for n in cols:
            row[n] = values[n][key]
        if util is not None:
            env = dict(zip(util.args, key + key))
            row[f"{util.name}"] = float(ev.value(util.body, env))
        row["binding"] = binding_of.get(key, [])
        rows.append(row)
    return rows


def _failure_message(path, out) -> str:
    what = {"infeasible": "the model is infeasible: no contract satisfies all constraints",
            "unbounded": "the model is unbounded: the objective can be improved without limit",
            "iteration limit": "the solver stopped at its iteration or time limit before converging",
            "error": "the solver failed"}.get(out.status.value, out.status.value)
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
    """Point an evaluation error at the source: the offending ``name[...]`` inside the declaration."""
    from .errors import DataError, Diagnostic

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
    module = parse_file(path)
    return Model(module, data_mod.collect(data, overrides), progress=progress)


def loads(text: str, filename: str = "<string>", data=None, overrides=None) -> Model:
    """Like :func:`load`, from a string."""
    return Model(parse(text, filename), data_mod.collect(data, overrides), progress=False)

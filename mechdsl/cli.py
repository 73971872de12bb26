"""Command line: ``mechdsl check|compile|solve SPEC``.

A thin layer over :mod:`mechdsl.api`.  Exit codes: 0 success; 1 infeasible,
unbounded, solver failure, or failed verification under ``--strict``; 2 an
error in the spec, its data or the command line (usage errors, found before the
spec is read: an unknown solver or solver option, a bad number, an unknown
``--emit`` format).  User errors never print a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import time
import sys
from pathlib import Path

from .errors import MechError


class _LazyModule:
    """``mechdsl.api`` imported on first use, so `mechdsl --version` and `--help` need no SymPy or numpy."""

    def __getattr__(self, name):
        from . import api as module

        return getattr(module, name)


api = _LazyModule()


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return v


def _nonnegative(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a nonnegative number, not {text}")
    return v


def _rows(text: str) -> int:
    try:
        v = int(float(text))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no limit) or positive, not {text}")
    return v


def _version() -> str:
    """The installed distribution's version (package metadata); the source tree's when not installed."""
    from importlib import metadata

    try:
        return metadata.version("mechdsl")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        from . import __version__

        return __version__


SOLVERS = ("highs", "ipopt")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _logging_options(p: argparse.ArgumentParser, top: bool = False):
    # On the subcommands the defaults are SUPPRESS, so `mechdsl -q solve ...` and `mechdsl solve ... -q` both work.
    default = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("-q", "--quiet", action="store_true", **({"default": False} if top else default),
                   help="print only errors: no progress, log level error (mechdsl's and Pyomo's loggers)")
    p.add_argument("--log-level", type=str.lower, choices=LOG_LEVELS, metavar="LEVEL", **default,
                   help="level of the mechdsl and Pyomo loggers on stderr: debug, info, warning (default; "
                        "Pyomo: error), error, critical")


def _common(p: argparse.ArgumentParser, data: bool = True):
    p.add_argument("spec", help="the .mech file, or - to read the spec from stdin")
    _logging_options(p)
    p.add_argument("--max-rows", type=_rows, default=5_000_000, metavar="N",
                   help="refuse to build a model estimated beyond N rows or columns (default 5e6; 0: no limit)")
    if data:
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                       help="override a param: K=10, c=[0.2,0.1], lam=[[0.5,0.5],[0.2,0.8]] (repeatable)")
        p.add_argument("--data", metavar="FILE.toml", help="param values from a TOML file (keys are param names)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mechdsl", description="Algebraic modelling for mechanism and contract design.")
    ap.add_argument("--version", action="version", version=f"mechdsl {_version()}")
    _logging_options(ap, top=True)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="parse and check a spec (and its data)")
    _common(p)

    p = sub.add_parser("compile", help="build the optimisation model and print a summary")
    _common(p)
    p.add_argument("--emit", nargs=2, metavar=("FORMAT", "FILE"),
                   help="write the model: lp, nl, gms (Pyomo writers) or pyomo (a readable dump)")
    p.add_argument("--solver", type=str.lower, choices=SOLVERS, help="the solver that would be used (highs or ipopt)")
    p.add_argument("--explain", action="store_true",
                   help="show the reductions: rows per constraint kind before and after, and each rule applied")
    p.add_argument("--no-reduce", action="store_true", help="compile the full model (no reduction passes)")
    p.add_argument("--ic", choices=["auto", "full", "lazy"], default="auto",
                   help="IC rows: all (full), generated on demand (lazy), or lazy beyond 1e5 rows (auto)")

    p = sub.add_parser("graph", help="write the dominance graph (which constraints imply which, and why)")
    _common(p)
    p.add_argument("--format", default="dot", choices=["dot", "graphml", "json", "png", "svg"])
    p.add_argument("-o", "--output", help="output file (dot and json print to stdout without it)")
    drawn = p.add_mutually_exclusive_group()
    drawn.add_argument("--summary", action="store_true",
                       help="one node per constraint family (rows, kept, implied), edges labelled by rule; the "
                            "default for png/svg above 400 constraint instances")
    drawn.add_argument("--full", action="store_true", help="png/svg: draw every instance, however many")
    p.add_argument("--engine", choices=["matplotlib", "graphviz"], default="matplotlib",
                   help="png/svg: lay out with matplotlib (default) or Graphviz's dot (must be on PATH)")

    p = sub.add_parser("plot", help="solve and draw the menu against the type (png or svg; binding IC/IR marked)")
    _common(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the picture: .png or .svg (or .pdf)")
    p.add_argument("--columns", metavar="COLS", help="menu columns to draw, comma-separated (default: all numeric)")
    p.add_argument("--title", help="the figure's title (default: spec, status and objective)")
    p.add_argument("--solver", type=str.lower, choices=SOLVERS, help="force a solver: highs or ipopt")
    p.add_argument("--no-reduce", action="store_true", help="solve the full model (no reduction passes)")
    p.add_argument("--tol", type=_nonnegative, default=1e-6, help="verification tolerance (default 1e-6)")

    p = sub.add_parser("explain", help="explain why a constraint instance was dropped, e.g. 'IC[5->1]'")
    _common(p)
    p.add_argument("constraint", help="a constraint id such as 'IC[5->1]' or 'IR[2]'")

    p = sub.add_parser("solve", help="solve and print the menu, the objective and the verification")
    _common(p)
    p.add_argument("--solver", type=str.lower, choices=SOLVERS,
                   help="force a solver: highs (LP/QP/MILP) or ipopt (NLP, and any LP/QP); it solves the "
                        "auxiliary problems too")
    p.add_argument("--solver-option", dest="solver_options", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the solver given by --solver, under the solver's own name (HiGHS: "
                        "mip_rel_gap=1e-6, threads=1; IPOPT: max_iter=500, mu_strategy=adaptive); repeatable; "
                        "an unknown name or a bad value is an error")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the report (or the JSON object with --json) to FILE instead of stdout")
    p.add_argument("--csv", metavar="FILE", help="also write the menu as CSV to FILE (one row per type)")
    p.add_argument("--full", action="store_true",
                   help="show long menus and binding-row cells in full (default: elided, with a count)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the solver's own log")
    p.add_argument("--strict", action="store_true", help="exit 1 if verification fails")
    p.add_argument("--tol", type=_nonnegative, default=1e-6, help="verification tolerance (default 1e-6)")
    p.add_argument("--multistart", action="store_true",
                   help="NLP: also start from the variables' bounds and keep the best local optimum")
    p.add_argument("--time-limit", type=_positive,
                   help="wall-clock limit in seconds for the whole run, auxiliary problems included")
    p.add_argument("--no-reduce", action="store_true", help="solve the full model (no reduction passes)")
    p.add_argument("--ic", choices=["auto", "full", "lazy"], default="auto",
                   help="IC rows: all at once (full), by constraint generation (lazy: start from neighbouring types, "
                        "add violated rows), or lazy for families of more than 1e5 rows that no reduction shrank "
                        "(auto, the default)")
    p.add_argument("--mpcc", choices=["exact", "relax"],
                   help="implications/disjunctions/complementarity: exact big-M MILP (default when bounded) or "
                        "the relaxed NLP with an eps schedule")
    p.add_argument("--mpcc-tol", type=_positive, default=1e-5,
                   help="margin for negating a premise a <= b (as a >= b + tol) in exact mode (default 1e-5; "
                        "keep it above --tol so verification and the model agree on which misreports fit)")
    p.add_argument("--gdp", choices=["bigm", "hull"], default="bigm",
                   help="exact mode: big-M with M from the bounds (default) or the convex hull reformulation")
    p.add_argument("--eps", type=_positive, nargs="+", metavar="EPS",
                   help="relax mode: the eps schedule (default 1e-2 1e-3 ... 1e-8)")

    p = sub.add_parser("sweep", help="solve over a grid of param values (a product of --grid's), serially or on Dask")
    _common(p)
    p.add_argument("--grid", action="append", required=True, metavar="NAME=VALUES",
                   help="a swept param: a list 0.1,0.3,0.5, a range start:stop:step (0:1:0.1, stop included), or "
                        "JSON for an indexed param ('p=[[0.1,0.9],[0.5,0.5]]'); several form a product")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the rows to FILE: .csv, .jsonl or .parquet (pyarrow); without it, CSV on stdout")
    p.add_argument("--resume", action="store_true", help="skip the points already in the output file")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="solve on a local Dask cluster of N worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="solve on an existing Dask cluster, e.g. tcp://host:8786")
    p.add_argument("--select", action="append", default=[], metavar="VARS",
                   help="variables to add to each row, comma-separated (m,t); flattened as m[1], m[2], ...")
    p.add_argument("--solver", type=str.lower, choices=SOLVERS, help="force a solver: highs or ipopt")
    p.add_argument("--tol", type=_nonnegative, default=1e-6, help="verification tolerance (default 1e-6)")
    p.add_argument("--time-limit", type=_positive, metavar="S", help="wall-clock limit in seconds for each point")
    p.add_argument("--multistart", action="store_true", help="NLP: also start from the variables' bounds")
    p.add_argument("--no-reduce", action="store_true", help="solve the full model at every point")
    p.add_argument("--ic", choices=["auto", "full", "lazy"], default="auto", help="IC rows as in solve")
    p.add_argument("--no-aux-cache", action="store_true",
                   help="solve every auxiliary problem at every point (by default one that does not depend on "
                        "a swept param is solved once per process)")
    p.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")
    p.add_argument("--plot", metavar="FILE",
                   help="also draw the rows to FILE (.png or .svg): lines against one swept param, a heatmap per "
                        "output for two (see --plot-kind)")
    p.add_argument("--plot-kind", choices=["auto", "lines", "heatmap"], default="auto",
                   help="--plot with two swept params: heatmaps (auto) or lines against the first, one per value "
                        "of the second")
    return ap


def _quiet(args) -> bool:
    return bool(getattr(args, "quiet", False))


def _validate_args(parser: argparse.ArgumentParser, args) -> None:
    """Check what argparse cannot before anything is loaded: a usage error exits 2 at once."""
    def fail(message: str):
        parser.exit(2, f"mechdsl {args.command}: error: {message}\n")

    if getattr(args, "emit", None):
        fmt, path = args.emit
        if fmt.lower() not in _EMIT_FORMATS:
            fail(f"argument --emit: unknown format '{fmt}' (use lp, nl, gms or pyomo)")
        _check_writable(path, "--emit", fail)
    if getattr(args, "output", None):
        _check_writable(args.output, "--output", fail)
    if getattr(args, "csv", None):
        _check_writable(args.csv, "--csv", fail)
    if args.spec == "-" and getattr(args, "data", None) == "-":
        fail("the spec and --data cannot both be read from stdin")
    items = getattr(args, "solver_options", None)
    args.solver_option_values = {}
    if items:
        if args.solver is None:
            fail("argument --solver-option: give --solver highs or --solver ipopt with it (the option names "
                 "are the solver's own, and the one solver then solves every problem of the run)")
        from .solver_options import OptionError, parse_options

        try:
            args.solver_option_values = parse_options(items, args.solver)
        except OptionError as exc:
            fail(f"argument --solver-option: {exc}")
        _log.debug("solver options for %s: %s", args.solver, args.solver_option_values)


def _check_writable(path: str, flag: str, fail) -> None:
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        fail(f"argument {flag}: the directory '{folder}' does not exist")
    if Path(path).is_dir():
        fail(f"argument {flag}: '{path}' is a directory")


_log = logging.getLogger("mechdsl.cli")


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to the current ``sys.stderr`` (tests replace it between runs)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class _LevelFormatter(logging.Formatter):
    def format(self, record):
        return f"{record.levelname.lower()}: {record.name}: {record.getMessage()}"


@contextlib.contextmanager
def _logging_to_stderr(args):
    """Log records of mechdsl, Pyomo (and any library) to stderr for one command, at ``--log-level``.

    Default: mechdsl at warning, Pyomo at error (its warnings are about modelling objects mechdsl builds);
    ``-q``: error for both; ``--log-level L``: L for both.  A handler on the root logger also silences
    Pyomo's own handler, which would write to stdout (and break ``--json``).
    """
    level = getattr(args, "log_level", None)
    mech_level = logging.ERROR if _quiet(args) else getattr(logging, (level or "warning").upper())
    pyomo_level = logging.ERROR if _quiet(args) or level is None else getattr(logging, level.upper())
    loggers = {logging.getLogger("mechdsl"): mech_level, logging.getLogger("pyomo"): pyomo_level}
    saved = {lg: lg.level for lg in loggers}
    handler = _StderrHandler()
    handler.setFormatter(_LevelFormatter())
    root = logging.getLogger()
    for lg, lv in loggers.items():
        lg.setLevel(lv)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for lg, lv in saved.items():
            lg.setLevel(lv)


@contextlib.contextmanager
def _forced_solver_errors(solver: str | None):
    """``--solver highs`` on an NLP (or ``ipopt`` on a MILP): found when the model is built, before it is
    solved, and a usage error (exit 2) rather than a solver failure."""
    from .errors import SolveError

    try:
        yield
    except SolveError as exc:
        import re

        m = re.search(r"cannot solve an? (\w+) \(it handles ([^)]*)\)", str(exc))
        if solver is None or m is None or getattr(exc, "result", None) is not None:
            raise
        from .solver_options import SOLVER_LABELS

        cls, handles = m.groups()
        other = [s for s in SOLVERS if s != solver]
        article = "an" if cls[:1] in "AEFHILMNORSX" else "a"
        raise MechError(f"error: --solver {solver}: {SOLVER_LABELS[solver]} cannot solve {article} {cls} "
                        f"(it solves {handles}); use --solver {other[0]} or leave --solver out") from None


def _interrupt_watchdog(grace: float = 1.0) -> None:
    """Make Ctrl-C stop the run within ``grace`` seconds even inside a solver's C code.

    Python runs its SIGINT handler (KeyboardInterrupt) only between bytecodes, so a long IPOPT or
    HiGHS call would ignore Ctrl-C.  The C-level handler still writes the signal to the wakeup fd at
    once; a daemon thread reads it and, if the main thread has not stopped by itself within
    ``grace`` seconds, says where the run was and exits 130.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    try:
        r, w = os.pipe()
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except (ValueError, OSError):
        return

    def watch():
        from . import runstate

        while True:
            data = os.read(r, 64)
            if signal.SIGINT in data:
                time.sleep(grace)
                print(f"\ninterrupted while {runstate.current_phase()}", file=sys.stderr, flush=True)
                os._exit(130)

    threading.Thread(target=watch, name="mechdsl-interrupt", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with _logging_to_stderr(args):
        _validate_args(parser, args)  # usage errors (exit 2) before anything is parsed or compiled
        if argv is None:  # the command line (not a test calling main): Ctrl-C must work inside solvers
            _interrupt_watchdog()
        return _run(args)


def _run(args) -> int:
    try:
        return {"check": cmd_check, "compile": cmd_compile, "solve": cmd_solve, "graph": cmd_graph,
                "plot": cmd_plot, "explain": cmd_explain, "sweep": cmd_sweep}[args.command](args)
    except MechError as exc:
        if getattr(args, "json", False) and getattr(exc, "result", None) is not None:
            _write_output(args, exc.result.to_json())
        msg = str(exc)
        print(msg if msg.lstrip().startswith(("error", "warning")) or ": error" in msg else f"error: {msg}",
              file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        from . import runstate

        print(f"interrupted while {runstate.current_phase()}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `mechdsl solve ... | head`: the reader went away; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug in mechdsl, not a user error
        if os.environ.get("MECHDSL_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc}\n"
              f"This is a bug in mechdsl {_version()}; please report it with the spec. "
              "Set MECHDSL_DEBUG=1 to see the traceback.", file=sys.stderr)
        return 3


def _load(args) -> api.Model:
    data, overrides = getattr(args, "data", None), getattr(args, "overrides", None)
    if args.spec == "-":  # the spec on stdin
        from .syntax.parser import decode_source

        model = api.loads(decode_source(sys.stdin.buffer.read(), "<stdin>"), "<stdin>", data=data,
                          overrides=overrides)
    else:
        model = api.load(args.spec, data=data, overrides=overrides, progress=False if _quiet(args) else None)
    if _quiet(args):
        model.progress = False
    _log.debug("loaded %s (%d declarations)", model.path, len(model.module.items))
    model.max_rows = getattr(args, "max_rows", model.max_rows) or None
    return model


def cmd_check(args) -> int:
    model = _load(args)
    model.check()
    inst = model.instance()
    mech = model.mech
    note = ""
    if mech.problem.objective is not None:
        # Every index of every row evaluated (x[k+1] outside x's set is a located error here, not at solve time):
        # the compiled form is built without reductions when the problem is one it expresses.
        from mechdsl.compilers.standard.build import NotLinear

        try:
            model.compile_form(reduce=False, ic="full")
            note = ", every row's indices checked"
        except NotLinear:
            note = "; nonlinear families' indices are checked when compiled"
    print(f"{args.spec}: ok ({len(mech.problem.vars)} variable families, "
          f"{len(mech.problem.constraints)} constraint families, {len(inst.params)} params{note})")
    return 0


def cmd_compile(args) -> int:
    from mechdsl.compilers.pyomo.solvers import choose_solver
    from mechdsl.compilers.standard.build import NotLinear

    model = _load(args)
    if args.emit:
        _check_emit_format(args.emit[0])
        if model.check().mech.problem.objective is None:  # before anything is compiled
            raise MechError("error: --emit needs a main problem (the spec has no objective)")
    inst = model.instance()
    built = cm = None
    if args.solver in (None, "highs"):
        try:
            built, lazy = model.compile_form(reduce=not args.no_reduce, ic=args.ic)
            if built.form.problem_class not in ("LP", "QP", "MILP"):
                built = None
        except NotLinear:
            built = None
    if built is None:
        cm = model.compile(reduce=not args.no_reduce)
        summary = _summary_pyomo(model, cm)
    else:
        summary = _summary_form(model, built, lazy)
    with _forced_solver_errors(args.solver):
        solver = choose_solver(summary["class"], args.solver)
    out = sys.stdout
    print(f"spec: {args.spec}", file=out)
    if inst.sets or inst.types:
        print("sets:", file=out)
        for name, elems in inst.sets.items():
            print(f"  {name:<16} {len(elems)} element(s)", file=out)
        for name, (elems, _) in inst.types.items():
            print(f"  type {name:<11} {len(elems)} type(s)", file=out)
    print(f"variables: {summary['num_vars']}", file=out)
    for v in model.mech.problem.vars:
        idx = "[" + ",".join(b.name for b in v.domain.binders) + "]" if v.domain else ""
        if v.name in summary["vars"]:
            print(f"  {v.name + idx:<16} {summary['vars'][v.name]:>8}  {v.kind}", file=out)
        else:
            print(f"  {v.name + idx:<16} {'-':>8}  eliminated (recovered from the others after the solve)", file=out)
    print("constraints:", file=out)
    by_kind: dict[str, int] = {}
    for name, kind, rows, note in summary["cons"]:
        by_kind[kind] = by_kind.get(kind, 0) + rows
        print(f"  {kind:<12} {name:<16} {rows:>8} row(s){note}", file=out)
    for line in summary["extra"]:
        print(f"  {line}", file=out)
    print("  per kind: " + ", ".join(f"{k} {n}" for k, n in by_kind.items()), file=out)
    if model.mech.problem.objective is None:
        print("objective: none (no main problem: solve evaluates the params, auxiliary problems and reports)",
              file=out)
        if model.mech.reports:
            print("reports: " + ", ".join(r.name for r in model.mech.reports), file=out)
        if args.emit:
            raise MechError("error: --emit needs a main problem (the spec has no objective)")
        return 0
    print(f"objective: {summary['sense']} {model.mech.problem.objective.name}", file=out)
    print(f"problem class: {summary['class']}", file=out)
    print(f"solver: {api._solver_label(solver)}" + (" (reads the compiled form directly)" if built is not None else
                                                     " (through Pyomo)"), file=out)
    if args.explain:
        print(render_reduction(model, summary["rows"]), file=out)
    if args.emit:
        if cm is None:
            from mechdsl.compilers.pyomo.from_form import to_pyomo

            _emit_model(to_pyomo(built.form), summary["class"], *args.emit)
        else:
            _emit_model(cm.model, cm.problem_class, *args.emit)
        print(f"wrote {args.emit[0]} to {args.emit[1]}", file=out)
    return 0


def _summary_form(model, built, lazy) -> dict:
    form = built.form
    rows: dict[str, int] = {}
    kinds: dict[str, str] = {}
    for b in form.rows:
        rows[b.name] = rows.get(b.name, 0) + len(b.keys)
        kinds[b.name] = b.kind
    cons = []
    for name, n in rows.items():
        note = ""
        if name in lazy:
            lf = lazy[name]
            note = f"  (of {lf.size}; IC by constraint generation: starts from the rows between neighbouring types)"
        cons.append((name, kinds[name], n, note))
    return {"class": form.problem_class, "sense": form.sense, "num_vars": form.n,
            "vars": {b.name: len(b.keys) for b in form.columns}, "cons": cons, "rows": rows,
            "extra": [f"built in {built.build_time:.3g} s: {form.m} rows, {form.n} columns, {form.A.nnz} nonzeros"
                      + (f", {form.Q.nnz} Hessian nonzeros" if form.Q is not None else "")]}


def _summary_pyomo(model, cm) -> dict:
    cons = [(c.name, c.kind.value, cm.con_counts.get(c.name, 0), "") for c in cm.problem.constraints]
    extra = []
    if cm.linearized:
        extra.append(f"{'(linearise)':<12} {'minmax_aux_def':<16} "
                     f"{len(getattr(cm.model, 'minmax_aux_def', []))} row(s) for {cm.linearized} min/max term(s)")
    return {"class": cm.problem_class, "sense": cm.sense, "num_vars": cm.num_vars,
            "vars": {n: len(k) for n, k in cm.var_keys.items() if cm.problem.var(n) is not None},
            "cons": cons, "rows": dict(cm.con_counts), "extra": extra}


_EMIT_FORMATS = {"lp": "lp", "nl": "nl", "gms": "gams", "pyomo": None}


def _check_emit_format(fmt: str):
    if fmt.lower() not in _EMIT_FORMATS:
        raise MechError(f"error: --emit: unknown format '{fmt}' (use lp, nl, gms or pyomo)")


def _emit_model(model, problem_class: str, fmt: str, path: str):
    fmt = fmt.lower()
    _check_emit_format(fmt)
    if fmt == "pyomo":
        with open(path, "w") as f:
            model.pprint(ostream=f)
        return
    if fmt == "lp" and problem_class not in ("LP", "MILP", "QP", "MIQP"):
        raise MechError(f"error: --emit lp: a {problem_class} cannot be written as LP; use nl or gms")
    try:
        model.write(path, format=_EMIT_FORMATS[fmt], io_options={"symbolic_solver_labels": True})
    except Exception as exc:
        raise MechError(f"error: --emit {fmt}: Pyomo could not write the model: {exc}") from None


def cmd_solve(args) -> int:
    model = _load(args)
    extra = {"eps_schedule": tuple(args.eps)} if args.eps else {}
    opts = api.SolveOptions(solver=args.solver, tee=args.verbose, tol=args.tol, strict=args.strict,
                            multistart=args.multistart, time_limit=args.time_limit, reduce=not args.no_reduce,
                            mpcc=args.mpcc, mpcc_tol=args.mpcc_tol, gdp=args.gdp, ic=args.ic,
                            max_rows=args.max_rows or None, solver_options=getattr(args, "solver_option_values", None) or None,
                            **extra)
    if args.json:
        # Keep stdout for the one JSON object: solver logs go to stderr, at the file-descriptor level
        # (contextlib.redirect_stdout deadlocks Pyomo's TeeStream).
        with _stdout_to_stderr(), _forced_solver_errors(args.solver):
            res = model.solve(opts)
        _write_output(args, res.to_json())
    else:
        with _forced_solver_errors(args.solver):
            res = model.solve(opts)
        _write_output(args, render(res, full=args.full))
    if args.csv:
        Path(args.csv).write_text(res.menu_csv(), encoding="utf-8")
    # A failed verification is never a success.
    return 0 if (res.verification is None or res.verification.ok) else 1


def _write_output(args, text: str) -> None:
    """``text`` (and a newline) to ``--output FILE`` when given (solve), else to stdout."""
    path = getattr(args, "output", None) if args.command == "solve" else None
    if path:
        Path(path).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send everything written to stdout (by Python or by a solver's C code) to stderr for the duration."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (e.g. captured): Python-level only
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def render_reduction(model, rows_after: dict) -> str:
    """Rows per constraint kind before and after the reductions, each rule applied, and why others were not."""
    red = model.reduce()
    before: dict[str, int] = {}
    for f in red.graph.families:
        if not f.derived:
            before[f.kind] = before.get(f.kind, 0) + f.count
    after: dict[str, int] = {}
    kind_of = {c.name: c.kind.value for c in red.problem.constraints}
    kind_of.update({c.name: c.kind.value for c in model.mech.problem.constraints})
    for name, n in rows_after.items():
        k = kind_of.get(name, "constraint")
        after[k] = after.get(k, 0) + n
    kinds = list(dict.fromkeys(list(before) + list(after)))
    lines = ["", "reductions (rows per constraint kind):", f"  {'kind':<14}{'before':>12}{'after':>12}"]
    for k in kinds:
        lines.append(f"  {k:<14}{before.get(k, 0):>12}{after.get(k, 0):>12}")
    lines.append(f"  {'total':<14}{sum(before.values()):>12}{sum(after.values()):>12}")
    if red.eliminated:
        lines.append(f"  eliminated variables: {', '.join(red.eliminated)}")
    roles = [(c.name, c.role) for c in model.mech.problem.constraints if getattr(c, "role", None) is not None]
    if roles:
        lines.append("")
        lines.append("incentive and participation constraints (as declared):")
        for name, role in roles:
            lines.append(f"  {name}: {role.describe()}")
    lines.append("")
    for a in red.applied:
        lines.append(f"applied {a.pass_name}: {a.summary}")
        for d in a.details:
            for line in d.splitlines():
                lines.append(f"    {line}")
    for name, reasons in red.rejected:
        lines.append(f"not applied {name}:")
        for r in reasons:
            lines.append(f"    {r}")
    return "\n".join(lines)


def cmd_graph(args) -> int:
    model = _load(args)
    red = model.reduce()
    summary = True if args.summary else False if args.full else None
    try:
        if args.format in ("png", "svg"):
            if args.output is None:
                raise ValueError(f"{args.format} needs an output file (-o FILE)")
            from .analysis.dominance import draw

            what = draw(red.graph, args.output, args.format, summary=summary, engine=args.engine)
            text = None
        else:
            what = "summary" if summary else "full"
            text = red.graph.write(args.format, args.output, summary=bool(summary))
    except ValueError as exc:
        raise MechError(f"error: graph: {exc}") from None
    if text is not None:
        sys.stdout.write(text)
    elif not _quiet(args):
        how = " (family-level summary; --full draws every instance)" if what == "summary" else ""
        print(f"wrote {args.format} to {args.output}{how}", file=sys.stderr)
    return 0


def cmd_sweep(args) -> int:
    from .sweep import run_sweep, write_csv

    if args.workers is not None and args.workers < 1:
        raise MechError(f"error: --workers must be at least 1, not {args.workers}")
    if args.plot is not None:  # refuse a bad picture name before the sweep, not after it
        if Path(args.plot).suffix.lower() not in (".png", ".svg", ".pdf"):
            raise MechError(f"error: --plot {args.plot}: the picture must be .png, .svg or .pdf")
        if not Path(args.plot).resolve().parent.is_dir():
            raise MechError(f"error: --plot {args.plot}: the directory does not exist")
    model = _load(args)
    opts = api.SolveOptions(solver=args.solver, tol=args.tol, multistart=args.multistart, time_limit=args.time_limit,
                            reduce=not args.no_reduce, ic=args.ic, max_rows=args.max_rows or None)
    # Without -o the rows go to stdout: anything a solver (or a worker process) prints goes to stderr meanwhile.
    with _stdout_to_stderr() if args.output is None else contextlib.nullcontext():
        run = run_sweep(model, args.grid, options=opts, select=args.select, output=args.output, resume=args.resume,
                        workers=args.workers, scheduler=args.scheduler, progress=True if args.progress else None,
                        quiet=_quiet(args), cache_aux=not args.no_aux_cache)
    info = sys.stdout
    if args.output is None:  # the rows are the output: CSV on stdout, the summary on stderr
        write_csv(run.rows, sys.stdout)
        info = sys.stderr
    line = run.summary()
    if run.resumed:
        line += f" ({run.resumed} already in {args.output}, {run.solved} solved now)"
    print(line, file=info)
    if run.extra:
        print(f"note: kept {run.extra} row(s) of {args.output} that are not points of this grid (at the end)",
              file=sys.stderr)
    if args.output is not None:
        print(f"wrote {len(run.rows)} row(s) to {args.output}", file=info)
    if args.plot is not None:
        from .plot import plot_sweep

        try:
            panels = plot_sweep(run.rows[:len(run.rows) - run.extra], run.names, args.plot, kind=args.plot_kind)
        except ValueError as exc:
            raise MechError(f"error: --plot: {exc}") from None
        print(f"drew {', '.join(panels)} to {args.plot}", file=info)
    return 0


def cmd_plot(args) -> int:
    from .plot import plot_menu

    model = _load(args)
    opts = api.SolveOptions(solver=args.solver, tol=args.tol, reduce=not args.no_reduce,
                            max_rows=args.max_rows or None)
    with _stdout_to_stderr():
        res = model.solve(opts)
    if not res.ok:
        from .errors import SolveError

        raise SolveError(f"error: plot: nothing to draw, the solve ended {res.status}"
                         + (f": {res.message}" if res.message else ""), res.status)
    cols = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    try:
        panels = plot_menu(res, args.output, columns=cols, title=args.title)
    except ValueError as exc:
        raise MechError(f"error: plot: {exc}") from None
    if not _quiet(args):
        print(f"{res.status}: wrote {args.output} ({', '.join(panels)})", file=sys.stderr)
    return 0 if (res.verification is None or res.verification.ok) else 1


def cmd_explain(args) -> int:
    model = _load(args)
    red = model.reduce()
    lines = red.graph.explain(args.constraint)
    print("\n".join(lines))
    if lines and lines[0].endswith("no such constraint"):
        return 2
    return 0


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v == 0:
            return "0"
        return f"{v:.6g}"
    return str(v)


def _binding_cell(row, limit: int | None = 4) -> str:
    """The binding IC/IR rows of a menu row, each with its shadow price when the backend gave one; beyond
    ``limit`` ids (None: no limit) the cell ends with ``… +230 more``."""
    from .result import truncate_ids

    return truncate_ids(row["binding"], row.get("prices"), limit) or "-"


#: Text output: a menu longer than this is shown as its first and last rows and a count (``--full``: all).
MENU_ROWS = 40


def _report_lines(res) -> list[str]:
    """The reports of a result: a scalar on one line, an indexed report as ``name[k]=v`` cells."""
    lines = []
    for name, table in res.reports.items():
        if table and all(isinstance(k, tuple) and len(k) >= 2 for k in table):
            # several indices (a menu per horizon, say): one line per value of the first index
            groups: dict = {}
            for k, v in table.items():
                groups.setdefault(k[0], []).append((k[1:], v))
            for g, items in list(groups.items())[:40]:
                cells = [f"[{','.join(map(str, k))}]={_fmt(v)}" for k, v in items[:40]]
                more = f"  ... ({len(items)} in all)" if len(items) > 40 else ""
                lines.append(f"  {name}[{g}, ...]:  " + "  ".join(cells) + more)
            if len(groups) > 40:
                lines.append(f"  {name}: ... ({len(groups)} values of the first index in all)")
            continue
        cells = [f"{name}[{','.join(map(str, k))}]={_fmt(v)}" if k else f"{name} = {_fmt(v)}"
                 for k, v in list(table.items())[:40]]
        more = f"  ... ({len(table)} in all)" if len(table) > 40 else ""
        lines.append("  " + "  ".join(cells) + more if cells else f"  {name}: (empty)")
    return lines


def render(res, full: bool = False) -> str:
    """A readable report: status, objective, menu, reports, verification (long menus and cells elided unless
    ``full``)."""
    if res.status == "evaluated":
        lines = ["status: evaluated (the spec has no main problem: params, auxiliary problems and reports)"]
        if res.aux:
            bad = [k for k, r in res.aux.items() if not r.get("ok", True)]
            lines.append(f"auxiliary problems solved: {len(res.aux)}"
                         + (f" ({len(bad)} without an optimum: {', '.join(bad[:6])})" if bad else ""))
        if res.reports:
            lines += ["", "reports:"] + _report_lines(res)
        for note in res.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)
    lines = [f"status: {res.status}   problem: {res.problem_class}   solver: {res.solver}",
             f"objective ({res.sense} {res.objective_name}): {_fmt(res.objective)}"]
    if res.aux:
        lines.append(f"auxiliary problems solved: {len(res.aux)}")
    rows = res.menu()
    if rows:
        cols = [c for c in rows[0] if c not in ("binding", "prices")]
        from .result import elide

        shown, hidden = elide(rows, None if full else MENU_ROWS)
        table = [cols + ["binding IC/IR (shadow price)"]] + [
            None if r is None else [_fmt(r[c]) for c in cols] + [_binding_cell(r, None if full else 4)]
            for r in shown]
        widths = [max(len(row[i]) for row in table if row is not None) for i in range(len(table[0]))]
        lines.append("")
        lines.append("menu (one row per type):")
        for k, row in enumerate(table):
            if row is None:
                lines.append(f"  \u2026 {hidden} more rows (--full shows all {len(rows)})")
                continue
            lines.append("  " + "  ".join(cell.rjust(w) if j < len(cols) else cell
                                          for j, (cell, w) in enumerate(zip(row, widths))))
            if k == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
    else:
        lines.append("")
        lines.append("variables:")
        for name, vals in res.variables.items():
            shown = ", ".join(f"{name}[{','.join(map(str, k))}]={_fmt(v)}" if k else f"{name}={_fmt(v)}"
                              for k, v in list(vals.items())[:12])
            more = f", ... ({len(vals)} in all)" if len(vals) > 12 else ""
            lines.append(f"  {shown}{more}")
    if res.schedule is not None:
        lines.append("")
        lines.append("relaxation schedule (each point verified against the original constraints):")
        lines.append(f"  {'eps':>8}  {'objective':>14}  {'max_regret':>11}  {'bound':>11}  {'gap to exact':>12}")
        for r in res.schedule:
            gap = (f"{res.exact_objective - r['objective']:12.3e}" if res.exact_objective is not None
                   and r["objective"] is not None else f"{'-':>12}")
            obj = f"{r['objective']:14.8g}" if r["objective"] is not None else f"{r['status']:>14}"
            reg = f"{r['max_regret']:11.3e}" if r["max_regret"] is not None else f"{'-':>11}"
            bnd = f"{r['bound']:11.3e}" if r["bound"] is not None else f"{'-':>11}"
            lines.append(f"  {r['eps']:8.0e}  {obj}  {reg}  {bnd}  {gap}")
        if res.exact_objective is not None:
            lines.append(f"  exact optimum (MILP): {res.exact_objective:.8g}")
    if res.reports:
        lines += ["", "reports:"] + _report_lines(res)
    ver = res.verification
    lines.append("")
    lines.append(f"verification against the original constraints (tol {ver.tol:g}, {ver.checked} rows): "
                 f"{'ok' if ver.ok else 'FAILED'}")
    lines.append(f"  max_regret={ver.max_regret:.3g}  max_ir_violation={ver.max_ir_violation:.3g}  "
                 f"max_violation={ver.max_violation:.3g}")
    if ver.gap is not None:
        lines.append(f"  optimality gap={ver.gap:.3g}  dual_bound={_fmt(ver.dual_bound)}")
    if ver.uncertified:
        lines.append(f"  {ver.uncertified}")
    for f in ver.families:
        if f["by_agent"]:
            worst = max(f["by_agent"].items(), key=lambda kv: kv[1])
            per = f"; worst agent {worst[0]}: {worst[1]:.3g}" if len(f["by_agent"]) > 1 else ""
        else:
            per = ""
        lines.append(f"  {f['name']} ({f['role']}): {f['rows']} rows, max violation {f['max_violation']:.3g}{per}")
    for viol, cid, kind in ver.worst[:5]:
        lines.append(f"  violated: {cid} ({kind}) by {viol:.3g}")
    for note in res.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

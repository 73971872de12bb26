"""Command-line conventions (issue 11, part 8): usage errors exit 2 before anything is loaded, solver
choices and solver options are checked against the solvers themselves, logging goes through ``logging``
(Pyomo's logger included) at ``-q`` / ``--log-level``, ``-`` reads the spec from stdin, misspelt keywords
get a did-you-mean, and the version comes from the package metadata.
"""
from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from importlib import metadata

import pytest

from conftest import SPECS
from mechdsl import cli

LP = SPECS / "repurchase_one_capacity.mech"      # an LP, solved by HiGHS in milliseconds
NLP = SPECS / "cml_two_type.mech"                # NLP aux problems and an NLP main problem
NO_OBJECTIVE = SPECS / "vcg.mech"                # params, reports: no main problem
MISSING = SPECS / "no_such_spec.mech"            # proves a check happens before the spec is read


def run(capsys, *args):
    """``mechdsl ARGS`` in-process: (exit code, stdout, stderr); argparse's own exits included."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*args, input=None, module="mechdsl"):
    p = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                       input=input, timeout=300)
    return p.returncode, p.stdout, p.stderr


# ------------------------------------------------------------------ --solver: choices, exit 2
def test_unknown_solver_is_a_usage_error(capsys):
    code, out, err = run(capsys, "solve", LP, "--solver", "hihgs")
    assert code == 2 and out == ""
    assert "invalid choice: 'hihgs'" in err and "highs" in err and "ipopt" in err
    code, out, err = run(capsys, "compile", LP, "--solver", "cplex")
    assert code == 2 and "invalid choice" in err


def test_unknown_solver_exits_2_in_a_real_process_before_loading():
    t = time.perf_counter()
    code, out, err = run_process("solve", MISSING, "--solver", "hihgs")
    assert code == 2 and "invalid choice: 'hihgs'" in err and "Traceback" not in err
    assert "cannot read spec" not in err  # the command line was refused first
    assert time.perf_counter() - t < 30


def test_solver_name_is_case_insensitive(capsys):
    code, out, err = run(capsys, "solve", LP, "--solver", "HiGHS", "--json")
    assert code == 0, err
    assert json.loads(out)["solver"] == "HiGHS"


@pytest.mark.parametrize("command", ["solve", "compile"])
def test_highs_on_an_nlp_is_a_usage_error_with_a_clear_message(capsys, command):
    code, out, err = run(capsys, command, NLP, "--solver", "highs")
    assert code == 2, err
    assert "--solver highs: HiGHS cannot solve an NLP" in err and "--solver ipopt" in err
    assert "internal error" not in err


def test_ipopt_forced_on_an_lp_still_works(capsys):
    code, out, err = run(capsys, "solve", LP, "--solver", "ipopt", "--json")
    assert code == 0, err
    assert json.loads(out)["solver"].startswith("ipopt")


# ------------------------------------------------------------------ --solver-option KEY=VALUE
def test_solver_options_reach_the_solve(capsys, monkeypatch):
    seen = {}

    def fake_solve(self, opts):
        seen["opts"] = opts
        raise cli.MechError("error: stopped by the test")

    from mechdsl import api

    monkeypatch.setattr(api.Model, "solve", fake_solve)
    code, out, err = run(capsys, "solve", LP, "--solver", "highs", "--solver-option", "time_limit=30",
                         "--solver-option", "presolve=off", "--solver-option", "threads=1",
                         "--solver-option", "output_flag=false")
    assert code == 2 and "stopped by the test" in err
    assert seen["opts"].solver == "highs"
    assert seen["opts"].solver_options == {"time_limit": 30.0, "presolve": "off", "threads": 1,
                                           "output_flag": False}  # typed as HiGHS declares them
    code, out, err = run(capsys, "solve", NLP, "--solver", "ipopt", "--solver-option", "max_iter=500",
                         "--solver-option", "ipopt.mu_strategy=adaptive", "--solver-option", "tol=1e-9")
    assert seen["opts"].solver_options == {"max_iter": 500, "mu_strategy": "adaptive", "tol": 1e-9}


def test_highs_options_take_effect(capsys):
    code, out, err = run(capsys, "solve", LP, "--json", "--solver", "highs", "--solver-option", "presolve=off",
                         "--solver-option", "simplex_iteration_limit=0")
    assert code == 1, err  # stopped at the iteration limit: not an answer
    assert json.loads(out)["status"] == "iteration limit"


def test_ipopt_options_take_effect(capsys):
    code, out, err = run(capsys, "solve", NLP, "--solver", "ipopt", "--solver-option", "max_iter=1")
    assert code == 1, err
    assert "Maximum_Iterations_Exceeded" in err or "iteration limit" in err


@pytest.mark.parametrize("solver,item,words", [
    ("highs", "time_limt=10", ["unknown HiGHS option 'time_limt'", "did you mean 'time_limit'?"]),
    ("highs", "mip_gap=1e-3", ["unknown HiGHS option 'mip_gap'", "did you mean"]),
    ("highs", "presolve=maybe", ["invalid value 'maybe' for HiGHS option 'presolve'", "choose"]),
    ("highs", "threads=two", ["HiGHS option 'threads' takes an integer, not 'two'"]),
    ("highs", "time_limit=-5", ["invalid value '-5' for HiGHS option 'time_limit'", "lower bound"]),
    ("highs", "output_flag=perhaps", ["HiGHS option 'output_flag' takes true or false"]),
    ("ipopt", "max_iterr=5", ["unknown IPOPT option 'max_iterr'", "did you mean 'max_iter'?"]),
    ("ipopt", "tol=-1", ["invalid value '-1' for IPOPT option 'tol'"]),
    ("ipopt", "mu_strategy=fast", ["invalid value 'fast' for IPOPT option 'mu_strategy'"]),
    ("ipopt", "time_limit=10", ["unknown IPOPT option 'time_limit'"]),    # a HiGHS name given to IPOPT
    ("highs", "max_iter=10", ["unknown HiGHS option 'max_iter'"]),        # and the other way round
    ("highs", "noequals", ["'noequals' is not KEY=VALUE"]),
    ("ipopt", "=3", ["'=3' is not KEY=VALUE"]),
    ("highs", "bad-name=1", ["'bad-name' is not an option name"]),
])
def test_bad_solver_options_are_usage_errors_before_loading(capsys, solver, item, words):
    code, out, err = run(capsys, "solve", MISSING, "--solver", solver, "--solver-option", item)
    assert code == 2, err
    assert "argument --solver-option" in err and "cannot read spec" not in err
    for w in words:
        assert w in err, err
    assert out == ""  # nothing a solver printed while checking leaks to stdout


def test_solver_option_needs_solver(capsys):
    code, out, err = run(capsys, "solve", LP, "--solver-option", "time_limit=10")
    assert code == 2 and "give --solver highs or --solver ipopt" in err


def test_bad_solver_option_in_a_real_process():
    code, out, err = run_process("solve", LP, "--solver", "highs", "--solver-option", "time_limt=1", "--json")
    assert code == 2 and out == "" and "did you mean 'time_limit'?" in err and "Traceback" not in err


# ------------------------------------------------------------------ arguments validated before compiling
@pytest.mark.parametrize("args,words", [
    (["solve", MISSING, "--tol", "-1"], "argument --tol: must be a nonnegative number"),
    (["solve", MISSING, "--tol=-1"], "argument --tol: must be a nonnegative number"),
    (["solve", MISSING, "--tol", "abc"], "argument --tol: 'abc' is not a number"),
    (["solve", MISSING, "--time-limit", "0"], "argument --time-limit: must be a positive number"),
    (["solve", MISSING, "--mpcc-tol", "-1e-3"], "argument --mpcc-tol"),
    (["solve", MISSING, "--eps", "1e-2", "0"], "argument --eps: must be a positive number"),
    (["solve", MISSING, "--max-rows", "-3"], "argument --max-rows"),
    (["solve", MISSING, "--ic", "some"], "argument --ic: invalid choice"),
    (["compile", MISSING, "--emit", "mps", "out.mps"], "argument --emit: unknown format 'mps'"),
    (["compile", MISSING, "--emit", "lp", "/no/such/dir/model.lp"], "argument --emit: the directory"),
    (["graph", MISSING, "--format", "png", "-o", "/no/such/dir/g.png"], "argument --output: the directory"),
    (["solve", MISSING, "--log-level", "loud"], "argument --log-level: invalid choice"),
])
def test_bad_arguments_exit_2_before_the_spec_is_read(capsys, args, words):
    code, out, err = run(capsys, *args)
    assert code == 2, err
    assert words in err, err
    assert "cannot read spec" not in err


def test_emit_mps_fails_at_once_in_a_real_process():
    t = time.perf_counter()
    code, out, err = run_process("compile", SPECS / "screening.mech", "--set", "K=2000", "--emit", "mps", "m.mps")
    assert code == 2 and "unknown format 'mps'" in err
    assert time.perf_counter() - t < 20  # no compile of the 4e6-row model first


def test_emit_on_a_spec_without_objective_fails_before_compiling(capsys, monkeypatch, tmp_path):
    from mechdsl import api

    def no_compile(*a, **k):
        raise AssertionError("compiled before refusing --emit")

    monkeypatch.setattr(api.Model, "compile", no_compile)
    monkeypatch.setattr(api.Model, "compile_form", no_compile)
    code, out, err = run(capsys, "compile", NO_OBJECTIVE, "--emit", "lp", tmp_path / "m.lp")
    assert code == 2 and "--emit needs a main problem" in err
    assert not (tmp_path / "m.lp").exists()


def test_emit_lp_still_writes(capsys, tmp_path):
    path = tmp_path / "m.lp"
    code, out, err = run(capsys, "compile", LP, "--emit", "LP", path)
    assert code == 0, err
    assert path.read_text().strip()


# ------------------------------------------------------------------ logging: -q and --log-level
def _log_everything(args):
    """A stand-in command: one record per level on mechdsl's and Pyomo's loggers."""
    for name in ("mechdsl.test", "pyomo.core"):
        lg = logging.getLogger(name)
        lg.debug("%s debug", name)
        lg.info("%s info", name)
        lg.warning("%s warning", name)
        lg.error("%s error", name)
    print("stdout of the command")
    return 0


@pytest.mark.parametrize("flags,shown,hidden", [
    ([], ["mechdsl.test warning", "mechdsl.test error", "pyomo.core error"],
     ["mechdsl.test info", "pyomo.core warning"]),
    (["-q"], ["mechdsl.test error", "pyomo.core error"], ["mechdsl.test warning", "pyomo.core warning"]),
    (["--quiet"], ["pyomo.core error"], ["pyomo.core warning"]),
    (["--log-level", "info"], ["mechdsl.test info", "pyomo.core info", "pyomo.core warning"],
     ["mechdsl.test debug", "pyomo.core debug"]),
    (["--log-level", "DEBUG"], ["mechdsl.test debug", "pyomo.core debug"], []),
    (["--log-level", "error"], ["mechdsl.test error", "pyomo.core error"], ["mechdsl.test warning"]),
])
@pytest.mark.parametrize("where", ["before", "after"])
def test_log_levels(capsys, monkeypatch, flags, shown, hidden, where):
    monkeypatch.setattr(cli, "cmd_check", _log_everything)
    args = [*flags, "check", LP] if where == "before" else ["check", LP, *flags]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert out == "stdout of the command\n"  # Pyomo's own handler (stdout) stays silent: --json is safe
    for s in shown:
        assert s in err, (flags, err)
    for s in hidden:
        assert s not in err, (flags, err)
    assert "error: pyomo.core: pyomo.core error" in err  # level: logger: message


def test_logging_is_restored_after_a_command(capsys, monkeypatch):
    monkeypatch.setattr(cli, "cmd_check", _log_everything)
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {n: logging.getLogger(n).level for n in ("mechdsl", "pyomo")}
    run(capsys, "--log-level", "debug", "check", LP)
    assert root.handlers == handlers
    assert {n: logging.getLogger(n).level for n in ("mechdsl", "pyomo")} == levels


def test_log_level_debug_in_a_real_run(capsys):
    code, out, err = run(capsys, "check", LP, "--log-level", "debug")
    assert code == 0, err
    assert f"debug: mechdsl.cli: loaded {LP}" in err


def test_quiet_solve_prints_no_progress(capsys, tmp_path):
    code, out, err = run(capsys, "solve", LP, "-q")
    assert code == 0 and "status: optimal" in out and err == ""


# ------------------------------------------------------------------ - reads the spec from stdin
def test_spec_from_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(LP.read_bytes())))
    code, out, err = run(capsys, "solve", "-", "--json", "--set", "D=18")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "optimal" and doc["parameters"]["D"] == {"": 18}


def test_spec_from_stdin_errors_are_located(capsys, monkeypatch):
    text = "param K = 3;\nvar x >= 0, <= K;\nmaximise x;\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, err = run(capsys, "check", "-")
    assert code == 2
    assert "<stdin>:3:1: error: syntax error: unexpected 'maximise'" in err
    assert "   3 | maximise x;" in err and "did you mean 'maximize'?" in err


def test_spec_from_stdin_in_a_real_process():
    code, out, err = run_process("check", "-", input=(SPECS / "screening.mech").read_text())
    assert code == 0, err
    assert out.startswith("-: ok")
    code, out, err = run_process("solve", "-", "--json", input="var x >= 0, <= 2;\nmaximize 3 * x;\n")
    assert code == 0, err
    assert json.loads(out)["objective"] == pytest.approx(6)


# ------------------------------------------------------------------ did you mean, for keywords
@pytest.mark.parametrize("text,line,col,suggestion", [
    ("param K = 3;\nvar x >= 0, <= K;\nmaximise x;\n", 3, 1, "maximize"),
    ("parm K = 3;\n", 1, 1, "param"),
    ("param K = 3;\nvar x >= 0;\nminimise x;\n", 3, 1, "minimize"),
    ("var x;\nutilty u(a, b) = 1;\n", 2, 1, "utility"),
    ("param K integr = 3;\n", 1, 9, "integer"),
    ("sett T = 1..3;\n", 1, 1, "set"),
    ("var x >= 0, <= 1;\nconstrant C: x <= 1;\nmaximize x;\n", 2, 1, "constraint"),
    ("var x >= 0, <= 1;\nfeasability C: x <= 1;\nmaximize x;\n", 2, 1, "feasibility"),
    ("report r = 1;\nreprot s = 2;\n", 2, 1, "report"),
    # a word that starts with a keyword: the lexer reads `parameter` as `param` + `eter`
    ("parameter K = 3;\n", 1, 1, "param"),
    ("param K = 3;\nvariable x >= 0;\n", 2, 1, "var"),
    ("params K = 3;\n", 1, 1, "param"),
])
def test_misspelt_keyword_did_you_mean(capsys, tmp_path, text, line, col, suggestion):
    path = tmp_path / "typo.mech"
    path.write_text(text)
    code, out, err = run(capsys, "check", path)
    assert code == 2
    assert f"{path}:{line}:{col}: error: syntax error: unexpected" in err
    assert f"help: did you mean '{suggestion}'?" in err


def test_split_keyword_is_reported_at_the_whole_word(capsys, tmp_path):
    path = tmp_path / "typo.mech"
    path.write_text("parameter K = 3;\n")
    code, out, err = run(capsys, "check", path)
    assert f"{path}:1:1: error: syntax error: unexpected 'parameter'" in err
    assert "   1 | parameter K = 3;\n       ^^^^^^^^^\n" in err
    assert "'parameter' reads as 'param' followed by 'eter'" in err


def test_no_suggestion_for_unrelated_words(capsys, tmp_path):
    path = tmp_path / "typo.mech"
    path.write_text("param K = 3;\nzzz K = 4;\n")
    code, out, err = run(capsys, "check", path)
    assert code == 2 and "syntax error: unexpected 'zzz'" in err and "did you mean" not in err
    path.write_text("var x >= 0;\nconstraint C: x <= typed y;\nmaximize x;\n")  # `typed` is a name here
    code, out, err = run(capsys, "check", path)
    assert code == 2 and f"{path}:2:26: error: syntax error: unexpected 'y'" in err and "did you mean" not in err


def test_reserved_word_hint_is_kept(capsys, tmp_path):
    path = tmp_path / "reserved.mech"
    path.write_text("param sum = 3;\n")
    code, out, err = run(capsys, "check", path)
    assert code == 2 and "'sum' is a reserved word" in err


# ------------------------------------------------------------------ version, python -m mechdsl
def test_version_from_package_metadata(capsys):
    code, out, err = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"mechdsl {metadata.version('mechdsl')}"


def test_python_dash_m_mechdsl():
    code, out, err = run_process("--version")
    assert code == 0 and out.strip() == f"mechdsl {metadata.version('mechdsl')}"
    code, out, err = run_process("check", LP)
    assert code == 0 and ": ok" in out, err
    code, out, err = run_process("solve", LP, "--solver", "nope")
    assert code == 2 and "invalid choice" in err

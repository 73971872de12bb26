"""Hostile input (issue "Hostile input"): each minimal reproducer is a located error with exit 2.

Each case runs the CLI in process (``mechdsl.cli.main``) and checks the exit code, the
``file:line:col: error:`` form, the expected words, and that no internal error is reported.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import mechdsl
from mechdsl.cli import main
from mechdsl.errors import MechError

SPECS = Path(__file__).resolve().parents[1] / "specs"
LOCATED = re.compile(r"^\S+:\d+:\d+: error: ", re.MULTILINE)


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: a usage error
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


CASES = {
    "latin1": (b"# caf\xe9\nparam a = 1;\nvar x >= 0, <= 1;\nmaximize x;\n", "not UTF-8: byte 0xE9 at line 1"),
    "sum3000": (("param a = " + " + ".join(["1"] * 3000) + ";\n").encode(), "nested too deeply"),
    "neg3000": (("param a = " + "- " * 3000 + "1;\n").encode(), "nested too deeply"),
    "sqrt1000": (("param a = " + "sqrt(" * 1000 + "1" + ")" * 1000 + ";\n").encode(), "nested too deeply"),
    "div0": (b"param a = 1/0;\n", "not finite"),
    "log0": (b"param a = log(0);\n", "not finite"),
    "pow": (b"param a = 0^-1;\n", "not finite"),
    "sqrtneg": (b"param a = sqrt(-1);\n", "not a real number"),
    "bigrange": (b"set S = 1..1e9;\nparam a = 1;\n", "limited to 1e+07 elements"),
    "pow400": (b"param a = 10^400;\n", "too large for a double"),
    "list": (b"param b[k in 1..2] = [1, 1e308*10];\n", "too large for a double"),
    "maxsqrt": (b"param a = max(0, sqrt(-1));\n", "not a real number"),
    "nan": (b"param a = 0/0;\nvar x >= a, <= 1;\nmaximize x;\n", "not finite"),
    "gt": (b"def v(x) = 1 >= x;\nparam a = v(1) - 2;\n", "a condition (true/false) is used"),
    "strict": (b"var x >= 0, <= 1;\nconstraint C: x > 0.5;\nmaximize x;\n", "cannot use '>'"),
    "bigpow": (b"var x >= 0, <= 1;\nmaximize x^1e400;\n", "beyond the range of a double"),
    "silent_nan": (b"param K = 1;\nparam a = 1/(K-1);\nvar x >= 0, <= 1;\nmaximize x;\n",
                   "division by zero: K - 1 = 0"),
    "sqrt_param": (b"param K = 1;\nparam a = sqrt(K-2);\nvar x >= 0, <= 1;\nmaximize x;\n",
                   "sqrt of a negative number: K - 2 = -1"),
    "range_float": (b"param a = sum{k in 1..2.5} k;\n", "not an integer"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reproducer_is_a_located_error(tmp_path, capsys, name):
    text, words = CASES[name]
    spec = tmp_path / f"{name}.mech"
    spec.write_bytes(text)
    code, out, err = run(capsys, "compile", spec)
    assert code == 2, err
    assert LOCATED.search(err), err
    assert words in err
    assert "internal error" not in err and "Traceback" not in err


def test_bom_is_skipped(tmp_path, capsys):
    spec = tmp_path / "bom.mech"
    spec.write_bytes(b"\xef\xbb\xbfparam a = 1;\nvar x >= 0, <= 1;\nmaximize x;\n")
    code, out, err = run(capsys, "check", spec)
    assert code == 0, err


def test_empty_param_index_is_located(tmp_path, capsys):
    text = (SPECS / "screening.mech").read_text().replace("param theta[k in 1..K]", "param theta[k in {}]")
    spec = tmp_path / "empty.mech"
    spec.write_text(text)
    code, out, err = run(capsys, "compile", spec)
    assert code == 2 and LOCATED.search(err) and "theta[1] is outside the index set" in err


def test_deep_json_override(capsys):
    code, out, err = run(capsys, "check", SPECS / "screening.mech", "--set", "K=" + "[" * 50000)
    assert code == 2 and "--set K" in err and "nested" in err


def test_huge_integer_in_data_file(tmp_path, capsys):
    data = tmp_path / "d.toml"
    data.write_text("K = 99999999999999999999\n")
    code, out, err = run(capsys, "check", SPECS / "screening.mech", "--data", data)
    assert code == 2 and f"{data}:1:1: error:" in err and "too large" in err


def test_huge_range_from_override(capsys):
    code, out, err = run(capsys, "check", SPECS / "screening.mech", "--set", "K=100000000")
    assert code == 2 and LOCATED.search(err) and "limited to 1e+07 elements" in err


def test_size_guard_refuses_with_estimate(capsys):
    """screening at K = 100000 without reductions: all-pairs IC has K(K-1) = 9.9999e9 rows."""
    code, out, err = run(capsys, "solve", SPECS / "screening.mech", "--set", "K=100000", "--no-reduce")
    assert code == 2 and LOCATED.search(err)
    m = re.search(r"constraint 'IC', has about ([0-9.e+]+) rows", err)
    assert m, err
    K = 100000
    assert abs(float(m.group(1)) - K * (K - 1)) / (K * (K - 1)) < 0.05  # sampled filter: a 5% estimate
    assert "--max-rows" in err


def test_size_guard_estimate_of_dependent_ranges():
    """A triangular family r in k+1..K has K(K-1)/2 rows; the sampled estimate is within 5%."""
    import mechdsl

    K = 3000
    m = mechdsl.loads(f"param K = {K};\nvar x[k in 1..K] >= 0, <= 1;\n"
                      "constraint C[k in 1..K, r in k+1..K]: x[k] - x[r] <= 1;\nmaximize x[1];\n")
    est = m.guard()
    assert abs(est.rows - K * (K - 1) / 2) / (K * (K - 1) / 2) < 0.05
    assert abs(est.nonzeros - 2 * est.rows) < 1e-6 * est.rows


def test_max_rows_can_be_raised(tmp_path, capsys):
    code, out, err = run(capsys, "compile", SPECS / "screening.mech", "--set", "K=40", "--no-reduce",
                         "--max-rows", "100")
    assert code == 2 and "limit 100" in err
    code, out, err = run(capsys, "compile", SPECS / "screening.mech", "--set", "K=40", "--no-reduce",
                         "--max-rows", "0")
    assert code == 0, err


def test_def_expansion_is_linear(tmp_path, capsys):
    """f_j = f_{j-1} + f_{j-1}, 30 deep: 2^30 calls expanded in place would never finish; memoised it is
    linear.  The value is checked: f30(y) = 2^30 y, so the maximum over y in [0, 1] is 2^30."""
    import mechdsl

    defs = ["def f0(x) = x;"] + [f"def f{j}(x) = f{j-1}(x) + f{j-1}(x);" for j in range(1, 31)]
    m = mechdsl.loads("\n".join(defs) + "\nvar y >= 0, <= 1;\nmaximize f30(y);\n")
    res = m.solve()
    assert res.objective == pytest.approx(2 ** 30, rel=1e-9)


def test_time_limit_must_be_positive(capsys):
    code, out, err = run(capsys, "solve", SPECS / "screening.mech", "--time-limit", "-1")
    assert code == 2 and "--time-limit" in err


def test_tol_must_be_positive(capsys):
    code, out, err = run(capsys, "solve", SPECS / "screening.mech", "--tol", "-1")
    assert code == 2 and "--tol" in err


def test_internal_error_says_report_with_version(monkeypatch, capsys):
    import mechdsl
    from mechdsl import cli

    def boom(args):
        raise RuntimeError("boom")
    monkeypatch.setattr(cli, "cmd_check", boom)
    code, out, err = run(capsys, "check", SPECS / "screening.mech")
    assert code == 3 and "please report" in err and mechdsl.__version__ in err


# ------------------------------------------------------------ errors found while building a model
# Each compiler (the compiled form, CasADi, Pyomo) used to raise a solver failure (exit 1) with the span
# only inside its text; these are data errors (exit 2) in the file:line:col form with the source and a caret.
CARET = re.compile(r"^\s*\d+ \| .*\n\s*\^+", re.MULTILINE)

LB_ABOVE_UB = ("param a = 2;\nvar x[k in 1..3] >= a*k - 3, <= 1;\n"
               "maximize sum{k in 1..3} log(1 + x[k]);\n")
DATA_ALONE = "param a = 2;\nvar x >= 0, <= 1;\nconstraint C: a <= 1;\nmaximize log(1 + x);\n"
#: which compiler builds the model: the compiled form (default), CasADi (--solver ipopt), Pyomo (relax)
PATHS = {"form": (), "casadi": ("--solver", "ipopt"), "pyomo": ("--solver", "ipopt", "--mpcc", "relax")}


def _located_at(err: str, spec: Path, line: int) -> bool:
    return f"{spec}:{line}:1: error: " in err and bool(CARET.search(err))


@pytest.mark.parametrize("path", sorted(PATHS))
def test_var_lower_bound_above_upper_is_a_located_data_error(tmp_path, capsys, path):
    spec = tmp_path / "lbub.mech"
    spec.write_text(LB_ABOVE_UB)
    code, out, err = run(capsys, "solve", spec, *PATHS[path])
    assert code == 2, err
    assert _located_at(err, spec, 2), err
    assert "var x[3] has lower bound 3 above its upper bound 1" in err
    assert "internal error" not in err


def test_var_lower_bound_above_upper_in_compile(tmp_path, capsys):
    spec = tmp_path / "lbub.mech"
    spec.write_text(LB_ABOVE_UB.replace("log(1 + x[k])", "x[k]"))
    for extra in ((), ("--solver", "ipopt")):
        code, out, err = run(capsys, "compile", spec, *extra)
        assert code == 2 and _located_at(err, spec, 2) and "above its upper bound" in err, err


@pytest.mark.parametrize("path", sorted(PATHS))
def test_constraint_violated_by_the_data_is_a_located_data_error(tmp_path, capsys, path):
    spec = tmp_path / "data_alone.mech"
    spec.write_text(DATA_ALONE if path != "form" else DATA_ALONE.replace("log(1 + x)", "x"))
    code, out, err = run(capsys, "solve", spec, *PATHS[path])
    assert code == 2, err
    assert _located_at(err, spec, 3), err
    assert "in constraint C: no variable is left in it and the data alone violate it" in err


def test_indexed_constraint_violated_by_the_data_names_the_row(tmp_path, capsys):
    spec = tmp_path / "rows.mech"
    spec.write_text("param c[k in 1..3] = k;\nvar x >= 0, <= 1;\nconstraint C[k in 1..3]: c[k] <= 2;\n"
                    "maximize x;\n")
    code, out, err = run(capsys, "solve", spec)
    assert code == 2 and _located_at(err, spec, 3), err
    assert "in constraint C[3]:" in err and "(by 1)" in err


def test_no_alternative_can_hold_is_a_located_data_error(tmp_path, capsys):
    spec = tmp_path / "noalt.mech"
    spec.write_text("param a = 2;\nvar x >= 0, <= 1;\nconstraint C: a <= 1 or a >= 3;\nmaximize x;\n")
    code, out, err = run(capsys, "solve", spec)
    assert code == 2 and _located_at(err, spec, 3), err
    assert "no alternative of it can hold" in err


def test_unsupported_premise_shows_the_source(tmp_path, capsys):
    spec = tmp_path / "imp.mech"
    spec.write_text("var x[i in 1..2] >= 0, <= 5;\nic C: x[1] == 2 -> x[2] <= 1;\nmaximize x[1] + x[2];\n")
    code, out, err = run(capsys, "solve", spec)
    assert code == 2 and _located_at(err, spec, 2), err
    assert "a premise with variables must be an inequality" in err


@pytest.mark.parametrize("compiler", ["form", "casadi", "pyomo"])
def test_each_compiler_raises_a_located_eval_error(compiler):
    """The three build sites themselves (not only whichever the CLI reaches first): an EvalError at the var."""
    import mechdsl
    from mechdsl.evaluate import EvalError

    m = mechdsl.loads(LB_ABOVE_UB, "lbub.mech")
    inst = m.instance()
    problem = m.mech.problem
    with pytest.raises(EvalError) as err:
        if compiler == "form":
            from mechdsl.compilers.standard.build import build
            build(problem, inst)
        elif compiler == "casadi":
            from mechdsl.compilers.casadi.nlp import build_nlp
            build_nlp(problem, inst, None, var_names={v.name for v in problem.vars}, name="lbub")
        else:
            from mechdsl.compilers.pyomo.model import compile_problem
            compile_problem(problem, inst, name="lbub", var_names={v.name for v in problem.vars})
    assert err.value.exit_code == 2
    assert err.value.span is not None and err.value.span.line == 2
    assert "var x[3] has lower bound 3 above its upper bound 1" in err.value.message


def test_a_folded_coefficient_beyond_a_double_is_a_located_error():  # fuzz finding (seed 7)
    with pytest.raises(MechError) as exc:
        mechdsl.loads("var x >= 0, <= 1;\nmaximize x * 1e308 * 10;", filename="o.mech").solve()
    assert "o.mech:2:" in str(exc.value) and "too large for a double" in str(exc.value)

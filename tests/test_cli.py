"""End-to-end tests of the command line (the installed ``mechdsl`` console script)."""
import json
import math
import subprocess
import sys

import pytest

from conftest import SPECS
from mechdsl import cli

SPEC_FILES = sorted(p.name for p in SPECS.glob("*.mech"))


def run(*args, input=None):
    p = subprocess.run([sys.executable, "-m", "mechdsl.cli", *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def run_inproc(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("spec", SPEC_FILES)
def test_solve_json_every_spec(capsys, spec):
    code, out, err = run_inproc(capsys, "solve", SPECS / spec, "--json")
    assert code == 0, err
    doc = json.loads(out)  # exactly one JSON object on stdout
    assert set(doc) == {"status", "objective", "problem_class", "solver", "variables", "parameters", "verification",
                        "duals", "reports", "aux", "menu", "notes", "timings", "message", "versions", "spec_sha256",
                        "inputs", "iis"}
    if doc["status"] == "evaluated":  # no main problem: params, aux problems and reports only
        assert doc["objective"] is None and doc["reports"]
        return
    assert doc["status"] in ("optimal", "locally optimal")
    assert math.isfinite(doc["objective"])
    v = doc["verification"]
    assert v["ok"] is True and v["max_regret"] <= 1e-6 and v["max_ir_violation"] <= 1e-6 and v["max_violation"] <= 1e-6
    for name, vals in doc["variables"].items():
        assert all(isinstance(k, str) for k in vals)


def test_repurchase_is_lp_solved_by_highs_subprocess():
    code, out, err = run("solve", SPECS / "repurchase_one_capacity.mech", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["problem_class"] == "LP" and doc["solver"] == "HiGHS"
    assert doc["verification"]["max_regret"] <= 1e-6
    assert set(doc["variables"]) == {"x", "p"}
    assert set(doc["variables"]["x"]) == {"1", "2", "3"}
    assert doc["parameters"]["cap"] == {"": 10.0}
    assert doc["parameters"]["lam"]["2,3"] == 0.5


def test_cml_two_type_json_parameters(capsys):
    code, out, err = run_inproc(capsys, "solve", SPECS / "cml_two_type.mech", "--json")
    doc = json.loads(out)
    assert doc["problem_class"] == "NLP" and doc["solver"].startswith("ipopt")
    assert doc["parameters"]["m_alone"]["1"] == pytest.approx(715.6, abs=0.2)
    assert doc["parameters"]["m_alone"]["2"] == pytest.approx(1148.5, abs=0.2)
    assert doc["parameters"]["value_alone"]["1"] == pytest.approx(69.6, abs=0.1)
    assert doc["parameters"]["value_alone"]["2"] == pytest.approx(75.6, abs=0.1)


def test_solve_prints_menu(capsys):
    code, out, err = run_inproc(capsys, "solve", SPECS / "repurchase_one_capacity.mech")
    assert code == 0
    assert "menu (one row per type)" in out and "binding IC/IR" in out
    assert "verification against the original constraints" in out and ": ok" in out


def test_verbose_shows_solver_log(capsys):
    code, out, err = run_inproc(capsys, "solve", SPECS / "repurchase_one_capacity.mech", "-v")
    assert code == 0
    assert "LP has" in out and "Coefficient ranges" in out  # HiGHS's own log


def test_check_and_compile_summary(capsys):
    code, out, err = run_inproc(capsys, "check", SPECS / "cml_two_type.mech")
    assert code == 0 and "ok" in out
    code, out, err = run_inproc(capsys, "compile", SPECS / "repurchase_one_capacity.mech", "--no-reduce")
    assert code == 0
    assert "problem class: LP" in out and "solver: HiGHS" in out
    assert "IC" in out and "6 row(s)" in out  # K(K-1) = 6 IC rows for K = 3
    assert "per kind: ic 6, ir 3, feasibility 3" in out
    code, out, err = run_inproc(capsys, "compile", SPECS / "repurchase_one_capacity.mech")
    assert "per kind: ic 4, monotonicity 2, ir 1, feasibility 3" in out  # adjacent IC, x monotone, IR of v^K


def test_emit_lp_is_readable_by_highs(capsys, tmp_path):
    import highspy

    path = tmp_path / "rep.lp"
    code, out, err = run_inproc(capsys, "compile", SPECS / "repurchase_one_capacity.mech", "--emit", "lp", path)
    assert code == 0, err
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    h.run()
    code, out, err = run_inproc(capsys, "solve", SPECS / "repurchase_one_capacity.mech", "--json")
    assert h.getInfo().objective_function_value == pytest.approx(json.loads(out)["objective"], abs=1e-7)


def test_emit_nl_is_readable_by_casadi(capsys, tmp_path):
    import casadi

    path = tmp_path / "cml.nl"
    code, out, err = run_inproc(capsys, "compile", SPECS / "cml_two_type.mech", "--emit", "nl", path)
    assert code == 0, err
    # NL text allows '#' comments (Pyomo writes labels there); CasADi's reader does not, so strip them.
    plain = tmp_path / "plain.nl"
    plain.write_text("".join(line.split("#")[0].rstrip() + "\n" for line in path.read_text().splitlines()))
    nl = casadi.NlpBuilder()
    nl.import_nl(str(plain))
    assert len(nl.x) == 5  # m[1..2], t[1..2] and the smoothing variable (pinned by its bounds)
    assert len(nl.g) == 7  # IC 2 + the monotone allocation local_ic adds (MONO_m, 1) + IR 2 + Budget 2
    # Solve the written file on its own (CasADi's reader + IPOPT): same optimum as mechdsl's solve.
    x, g = casadi.vertcat(*nl.x), casadi.vertcat(*nl.g)
    solver = casadi.nlpsol("nl", "ipopt", {"x": x, "f": nl.f, "g": g}, {"ipopt.print_level": 0, "print_time": 0})
    sol = solver(x0=nl.x_init, lbx=nl.x_lb, ubx=nl.x_ub, lbg=nl.g_lb, ubg=nl.g_ub)
    assert solver.stats()["success"]
    code, out, err = run_inproc(capsys, "solve", SPECS / "cml_two_type.mech", "--json")
    assert -float(sol["f"]) == pytest.approx(json.loads(out)["objective"], abs=1e-5)  # NL minimises -objective


def test_emit_pyomo_dump(capsys, tmp_path):
    path = tmp_path / "m.txt"
    code, out, err = run_inproc(capsys, "compile", SPECS / "repurchase_one_capacity.mech", "--emit", "pyomo", path)
    text = path.read_text()
    assert code == 0 and "IC : " in text and "Utility : " in text


BAD = {
    "syntax": ("param K = 3;\nvar x[k in 1..K] >= 0\nmaximize sum{k in 1..K} x[k];\n", "3:1", "unexpected 'maximize'"),
    "unknown": ("param K = 3;\nvar x[k in 1..K] >= 0, <= 1;\nmaximize sum{k in 1..K} y[k];\n", "3:25",
                "unknown name 'y'"),
    "index": ("param K = 3;\nvar x[k in 1..K] >= 0, <= 1;\nconstraint C[k in 1..K]: x[k+1] <= 1;\n"
              "maximize sum{k in 1..K} x[k];\n", "3:26", "x[4] is outside the index set"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_user_errors_exit_2_with_location_and_no_traceback(tmp_path, case):
    text, loc, msg = BAD[case]
    spec = tmp_path / f"{case}.mech"
    spec.write_text(text)
    code, out, err = run("solve", spec)
    assert code == 2
    assert f"{spec}:{loc}: error" in err and msg in err
    assert "^" in err  # caret under the offending source
    assert "Traceback" not in err


@pytest.mark.parametrize("arg, key", [("K=0", "K"), ("v=[1,2]", "v"), ("foo=1", "foo"), ("v=[1,", "v")])
def test_bad_set_values_name_the_key(arg, key):
    code, out, err = run("solve", SPECS / "repurchase_one_capacity.mech", "--set", arg)
    assert code == 2
    assert f"--set {key}" in err and "Traceback" not in err


def test_bad_data_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("c = [0.1, 0.2, 0.3]\n")
    code, out, err = run("solve", SPECS / "cml_two_type.mech", "--data", bad)
    assert code == 2 and f"{bad}:1:1: error: param 'c'" in err and "wrong shape" in err and "Traceback" not in err
    assert "1 | c = [0.1, 0.2, 0.3]" in err  # the data file's line, with a caret under the key


def test_infeasible_exits_1(tmp_path):
    spec = tmp_path / "inf.mech"
    spec.write_text("param K = 3;\nvar x[k in 1..K] >= 0, <= 1;\nconstraint C: sum{k in 1..K} x[k] >= 5;\n"
                    "maximize sum{k in 1..K} x[k];\n")
    code, out, err = run("solve", spec)
    assert code == 1 and "infeasible" in err and "Traceback" not in err
    code, out, err = run("solve", spec, "--json")
    assert code == 1 and json.loads(out)["status"] == "infeasible"


def test_unbounded_exits_1(tmp_path):
    spec = tmp_path / "unb.mech"
    spec.write_text("var x >= 0;\nmaximize x;\n")
    code, out, err = run("solve", spec)
    assert code == 1 and "unbounded" in err


def test_strict_fails_when_verification_fails(tmp_path, capsys):
    # IPOPT solves x^2 == 2 only to ~1e-9; with a zero tolerance verification must fail, and --strict exits 1.
    spec = tmp_path / "eq.mech"
    spec.write_text("var x >= 0, init = 1;\nconstraint C: x^2 + x == 2 + sqrt(2);\nminimize x;\n")
    code, out, err = run_inproc(capsys, "solve", spec, "--tol", "0", "--json")
    doc = json.loads(out)
    # A failed verification is never a success: exit 1, with or without --strict.
    assert code == 1 and doc["verification"]["ok"] is False and doc["verification"]["max_violation"] > 0
    code, out, err = run_inproc(capsys, "solve", spec, "--tol", "0", "--strict")
    assert code == 1 and "verification failed" in err
    code, out, err = run_inproc(capsys, "solve", spec, "--strict")
    assert code == 0


def test_forced_solver(capsys):
    code, out, err = run_inproc(capsys, "solve", SPECS / "repurchase_one_capacity.mech", "--solver", "ipopt", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["solver"].startswith("ipopt") and doc["status"] == "locally optimal"
    code, out2, err = run_inproc(capsys, "solve", SPECS / "repurchase_one_capacity.mech", "--json")
    assert doc["objective"] == pytest.approx(json.loads(out2)["objective"], abs=1e-5)
    code, out, err = run_inproc(capsys, "solve", SPECS / "cml_two_type.mech", "--solver", "highs")
    assert code == 2 and "HiGHS cannot solve an NLP" in err  # a usage error, found before any solve


# ------------------------------------------------------------ reductions and the dominance graph (issue 3)
def test_compile_explain_screening_K1000(capsys):
    code, out, err = run_inproc(capsys, "compile", SPECS / "screening.mech", "--set", "K=1000", "--explain")
    assert code == 0
    assert "ic" in out and "999000" in out          # K(K-1) rows before
    assert "IC: 999000 -> 1998 IC rows + 999 monotonicity rows" in out
    assert "applied local_ic" in out and "applied drop_implied" in out and "applied eliminate_payments" in out
    assert "d2u/dtheta_t dq_r = 1 >= 0" in out      # the single-crossing proof
    assert "Eq(p[1], q[1]*theta[1])" in out          # the derived payment rule


def test_two_item_additive_keeps_all_pairs_and_says_why(capsys):
    code, out, err = run_inproc(capsys, "compile", SPECS / "two_item_additive.mech", "--explain")
    assert code == 0
    assert "not applied local_ic" in out and "2-dimensional type space" in out and "all pairs are kept" in out


@pytest.mark.parametrize("spec, args", [("repurchase_one_capacity.mech", []), ("cml_multi_type.mech", [])])
def test_graph_writes_dot_and_png(capsys, tmp_path, spec, args):
    dot = tmp_path / "g.dot"
    png = tmp_path / "g.png"
    assert run_inproc(capsys, "graph", SPECS / spec, "--format", "dot", "-o", dot)[0] == 0
    assert run_inproc(capsys, "graph", SPECS / spec, "--format", "png", "-o", png)[0] == 0
    text = dot.read_text()
    assert text.startswith("digraph dominance") and '"IC[1->3]"' in text and "AND#1" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    for fmt in ("json", "graphml"):
        out = tmp_path / f"g.{fmt}"
        assert run_inproc(capsys, "graph", SPECS / spec, "--format", fmt, "-o", out)[0] == 0 and out.stat().st_size > 0


def test_explain_names_the_rule_for_a_dropped_ic_and_ir(capsys):
    code, out, err = run_inproc(capsys, "explain", SPECS / "repurchase_one_capacity.mech", "IC[1->3]")
    assert code == 0 and "IC[1->3]  <=  IC[1->2] AND IC[2->3] AND MONO_x[2,3]" in out and "single crossing" in out
    code, out, err = run_inproc(capsys, "explain", SPECS / "repurchase_one_capacity.mech", "IR[1]")
    assert code == 0 and "IR[1]  <=  IC[1->3] AND IR[3]" in out and "000 Lemma 3" in out
    code, out, err = run_inproc(capsys, "explain", SPECS / "repurchase_one_capacity.mech", "IC[1->2]")
    assert code == 0 and "kept in the model" in out
    code, out, err = run_inproc(capsys, "explain", SPECS / "repurchase_one_capacity.mech", "IC[9->1]")
    assert code == 2 and "no such constraint" in out


def test_no_reduce_solves_the_full_model(capsys):
    code, out, err = run_inproc(capsys, "solve", SPECS / "screening.mech", "--set", "K=20", "--no-reduce", "--json")
    full = json.loads(out)
    code, out, err = run_inproc(capsys, "solve", SPECS / "screening.mech", "--set", "K=20", "--json")
    red = json.loads(out)
    assert full["objective"] == pytest.approx(red["objective"], abs=1e-7)
    assert full["variables"]["p"]["7"] == pytest.approx(red["variables"]["p"]["7"], abs=1e-5)

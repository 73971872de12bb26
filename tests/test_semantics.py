"""Semantic checks: every diagnostic is located (file, line, column) and all
of them are reported at once."""
from __future__ import annotations

from pathlib import Path

import pytest

import mechdsl

SPECS = Path(__file__).resolve().parents[1] / "specs"
F = "s.mech"


def diagnostics(text: str):
    model = mechdsl.loads(text, F)
    with pytest.raises(mechdsl.MechSemanticError) as info:
        model.check()
    err = info.value
    assert err.exit_code == 2
    assert isinstance(err, mechdsl.MechError)
    assert err.diagnostics, "a semantic error must carry diagnostics"
    return err, err.diagnostics


def only(text: str):
    err, diags = diagnostics(text)
    assert len(diags) == 1, [d.message for d in diags]
    return err, diags[0]


def at(diag, line, col, end_col=None):
    sp = diag.span
    assert sp is not None
    assert sp.file == F
    assert (sp.line, sp.column) == (line, col), (diag.message, sp)
    if end_col is not None:
        assert sp.end_column == end_col


def col_of(text: str, line: int, needle: str) -> int:
    return text.splitlines()[line - 1].index(needle) + 1


# --------------------------------------------------------------- valid specs
@pytest.mark.parametrize("path", sorted(SPECS.glob("*.mech")), ids=lambda p: p.name)
def test_shipped_specs_pass_the_checks(path):
    model = mechdsl.load(path)
    assert model.check() is model


# --------------------------------------------------------------- unknown name
def test_unknown_name_with_did_you_mean():
    text = "var x;\nvar y;\nmaximize x + yy;\n"
    err, d = only(text)
    assert d.message == "unknown name 'yy'"
    c = col_of(text, 3, "yy")
    at(d, 3, c, c + 2)
    assert d.help == "did you mean 'y'?"
    out = str(err)
    assert f"{F}:3:{c}" in out and "did you mean 'y'?" in out
    assert "^^" in out


def test_unknown_set_name_with_did_you_mean():
    text = "set Types = 1..3;\nvar x[k in Typse];\nmaximize x[1];\n"
    _, d = only(text)
    assert "unknown name 'Typse'" in d.message
    at(d, 2, col_of(text, 2, "Typse"))
    assert d.help == "did you mean 'Types'?"


def test_unknown_function():
    text = "def gain(z) = 2 * z;\nvar x;\nmaximize gian(x);\n"
    _, d = only(text)
    assert "unknown name 'gian'" in d.message
    at(d, 3, col_of(text, 3, "gian"))
    assert "gain" in (d.help or "")


# ------------------------------------------------------ number of indices
def test_too_many_indices():
    text = "param c[k in 1..2] = [1, 2];\nvar x;\nmaximize x + c[1, 2];\n"
    _, d = only(text)
    assert "wrong number of indices for param 'c': expected 1, got 2" in d.message
    at(d, 3, col_of(text, 3, "c[1"))
    assert any(f"{F}:1:1" in n for n in d.notes)  # points back at the declaration


def test_too_few_indices_on_a_variable():
    text = "var x[i in 1..2, j in 1..2];\nmaximize x[1];\n"
    _, d = only(text)
    assert "wrong number of indices for var 'x': expected 2, got 1" in d.message
    at(d, 2, col_of(text, 2, "x[1]"))


def test_indexed_param_used_without_index():
    text = "param a[k in 1..2] = [1, 2];\nvar x;\nmaximize x + a;\n"
    _, d = only(text)
    assert "param 'a' needs 1 index(es)" in d.message
    at(d, 3, col_of(text, 3, "a;"))


# ----------------------------------------------------------------- duplicates
def test_duplicate_definition():
    text = "param a = 1;\nvar x;\nparam a = 2;\nmaximize x + a;\n"
    _, d = only(text)
    assert d.message == "duplicate definition of 'a'"
    at(d, 3, 1)
    assert any("first defined as a param" in n and f"{F}:1:1" in n for n in d.notes)


def test_duplicate_across_kinds():
    text = "set S = 1..2;\nvar S;\nmaximize 1;\n"
    _, d = only(text)
    assert "duplicate definition of 'S'" in d.message
    at(d, 2, 1)
    assert any("first defined as a set" in n for n in d.notes)


# ---------------------------------------------------------------- type errors
def test_condition_used_as_a_number_in_objective():
    text = "var x;\nmaximize x >= 1;\n"
    _, d = only(text)
    assert d.message.startswith("type mismatch")
    assert "must be a number, but this is a condition" in d.message
    at(d, 2, col_of(text, 2, "x >="))


def test_condition_used_as_a_number_in_arithmetic():
    text = "var x;\nconstraint C: (x >= 1) + 1 <= 3;\nmaximize x;\n"
    _, d = only(text)
    assert "type mismatch: an operand of '+' must be a number, but this is a condition" in d.message
    at(d, 2, col_of(text, 2, "x >="))


def test_number_used_as_a_condition_in_a_filter():
    text = "var x[k in 1..3];\nmaximize sum{k in 1..3: k} x[k];\n"
    _, d = only(text)
    assert "type mismatch: the filter of sum{...} must be a condition, but this is a number" in d.message
    at(d, 2, col_of(text, 2, "k}") )


def test_number_used_as_a_condition_in_an_implication():
    text = "var x;\nconstraint C: x + 1 -> x <= 2;\nmaximize x;\n"
    _, d = only(text)
    assert "type mismatch: the premise of an implication must be a condition, but this is a number" in d.message
    at(d, 2, col_of(text, 2, "x + 1"))


def test_number_used_as_a_condition_under_not():
    text = "var x;\nconstraint C: not 3 or x <= 1;\nmaximize x;\n"
    _, diags = diagnostics(text)
    msgs = [d.message for d in diags]
    hit = [d for d in diags if "the operand of 'not' must be a condition, but this is a number" in d.message]
    assert hit, msgs
    at(hit[0], 2, col_of(text, 2, "3"))


def test_number_is_not_a_constraint():
    text = "var x;\nconstraint C: x + 1;\nmaximize x;\n"
    _, d = only(text)
    assert "a constraint must be a comparison" in d.message
    at(d, 2, col_of(text, 2, "x + 1"))


# ------------------------------------------------- variables where data is due
def test_variable_in_a_set_bound():
    text = "var x;\nset S = 1..x;\nmaximize x;\n"
    _, d = only(text)
    assert d.message == "a range bound cannot depend on decision variables"
    at(d, 2, col_of(text, 2, "x;"))


def test_variable_in_a_set_filter():
    text = "var x;\nset S = {k in 1..3: x >= k};\nmaximize x;\n"
    _, d = only(text)
    assert d.message == "a set filter cannot depend on decision variables"
    at(d, 2, col_of(text, 2, "x >="))


def test_variable_in_a_sum_filter():
    text = "var x[k in 1..3];\nmaximize sum{k in 1..3: x[k] >= 1} x[k];\n"
    _, d = only(text)
    assert d.message == "the filter of sum{...} cannot depend on decision variables"
    at(d, 2, col_of(text, 2, "x[k] >="))


def test_variable_in_a_param_value_and_bound():
    _, d = only("var x;\nparam a = x;\nmaximize x;\n")
    assert d.message == "the value of param 'a' cannot depend on decision variables"
    at(d, 2, 11)
    _, d = only("var x;\nvar y <= x;\nmaximize x + y;\n")
    assert d.message == "a bound of var 'y' cannot depend on decision variables"
    at(d, 2, 10)


# ----------------------------------------------- index outside its set (data)
def test_index_outside_its_set_in_a_param_default():
    text = "param c[k in 1..2] = [1, 2];\nparam d = c[3];\nvar x;\nmaximize x + d;\n"
    model = mechdsl.loads(text, F)
    model.check()  # statically fine: only the data shows that 3 is outside 1..2
    with pytest.raises(mechdsl.MechError) as info:
        model.instance()
    err = info.value
    assert err.exit_code == 2
    msg = str(err)
    assert "c[3] is outside the index set of param 'c'" in msg
    assert f"{F}:2:" in msg  # the declaration of d, on line 2


def test_index_outside_its_set_in_an_indexed_default():
    text = "param c[k in 1..2] = [1, 2];\nparam d[k in 1..2] = c[k + 1];\n"
    model = mechdsl.loads(text, F)
    with pytest.raises(mechdsl.MechError) as info:
        model.instance()
    assert info.value.exit_code == 2
    assert "c[3] is outside the index set of param 'c'" in str(info.value)
    assert f"{F}:2:" in str(info.value)


def test_index_outside_its_set_in_the_objective():
    text = "param c[k in 1..2] = [1, 2];\nvar x <= 5;\nmaximize x + c[3];\n"
    model = mechdsl.loads(text, F)
    with pytest.raises(mechdsl.MechError) as info:
        model.solve()
    assert info.value.exit_code == 2
    assert "c[3] is outside the index set of param 'c'" in str(info.value)
    assert f"{F}:3:" in str(info.value)


# ------------------------------------------------------------- expectations
def test_expectation_over_a_param():
    text = "param a = 1;\nvar x;\nmaximize E[a](x);\n"
    _, d = only(text)
    assert d.message == "E[a]: 'a' must be a declared type or population, not a param"
    at(d, 3, col_of(text, 3, "a]"))


def test_expectation_over_a_variable():
    text = "var x;\nmaximize E[x](x);\n"
    _, d = only(text)
    assert "must be a declared type or population, not a var" in d.message
    at(d, 2, col_of(text, 2, "x]"))


def test_expectation_over_a_type_is_fine_and_a_bare_type_is_not():
    ok = "type th in 1..3 ~ uniform;\nvar x[k in 1..3];\nmaximize E[th | th >= 2](x[th]);\n"
    mechdsl.loads(ok, F).check()
    text = "type th in 1..3 ~ uniform;\nvar x[k in 1..3];\nmaximize x[th];\n"
    _, d = only(text)
    assert "type 'th' can only be used inside E[th](...)" in d.message
    at(d, 3, col_of(text, 3, "th]"))


# ---------------------------------------------------------------- def arity
def test_def_called_with_wrong_arity():
    text = "def f(u) = u + 1;\nvar x;\nmaximize f(x, 1);\n"
    _, d = only(text)
    assert d.message == "f() takes 1 argument(s), got 2"
    at(d, 3, col_of(text, 3, "f(x"))
    assert any(f"{F}:1:1" in n for n in d.notes)


def test_utility_called_with_wrong_arity():
    text = "var x[k in 1..2];\nutility U(t, r) = x[r];\nconstraint C: U(1) >= 0;\nmaximize x[1];\n"
    _, d = only(text)
    assert d.message == "U() takes 2 argument(s), got 1"
    at(d, 3, col_of(text, 3, "U(1)"))


def test_builtin_called_with_wrong_arity():
    text = "var x;\nmaximize sqrt(x, 2);\n"
    _, d = only(text)
    assert d.message == "sqrt() takes 1 argument(s), got 2"
    at(d, 2, col_of(text, 2, "sqrt"))


def test_aux_attribute_errors():
    text = ("var x;\naux A[i in 1..2] {\n var y <= 1;\n maximize y;\n}\n"
            "constraint C: x <= A[1].z;\nmaximize x;\n")
    _, d = only(text)
    assert d.message == "aux 'A' has no attribute 'z'"
    at(d, 6, col_of(text, 6, "A[1]"))
    assert "y" in d.help


# -------------------------------------------------------- many errors at once
def test_all_errors_are_reported_at_once():
    text = ("param a = 1;\n"                      # 1
            "param a = 2;\n"                      # 2 duplicate
            "var x[k in 1..3];\n"                 # 3
            "def f(u) = u;\n"                     # 4
            "constraint C1: x[1, 2] <= 1;\n"      # 5 wrong number of indices
            "constraint C2: x[1] <= bb;\n"        # 6 unknown name
            "set S = 1..x[1];\n"                  # 7 variable in a set bound
            "constraint C3: f(x[1], 2) <= 1;\n"   # 8 wrong arity
            "maximize E[a](x[1]);\n")             # 9 E over a param
    err, diags = diagnostics(text)
    assert len(diags) >= 3
    found = {(d.span.line, d.span.column): d.message for d in diags}
    expect = {
        (2, 1): "duplicate definition of 'a'",
        (5, col_of(text, 5, "x[1, 2]")): "wrong number of indices for var 'x'",
        (6, col_of(text, 6, "bb")): "unknown name 'bb'",
        (7, col_of(text, 7, "x[1]")): "cannot depend on decision variables",
        (8, col_of(text, 8, "f(")): "f() takes 1 argument(s), got 2",
        (9, col_of(text, 9, "a]")): "must be a declared type or population",
    }
    for pos, fragment in expect.items():
        assert pos in found, (pos, fragment, found)
        assert fragment in found[pos]
    assert len(diags) == len(expect)
    # sorted by source order, each rendered with its location and a summary line
    assert [d.span.line for d in diags] == sorted(d.span.line for d in diags)
    out = str(err)
    for (line, col) in expect:
        assert f"{F}:{line}:{col}" in out
    assert out.rstrip().endswith(f"{len(diags)} errors found")

"""Data binding: ``--set`` overrides (scalars, vectors, nested tables), TOML
data files, and DataErrors that name the offending key."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mechdsl

ROOT = Path(__file__).resolve().parents[1]
REPURCHASE = ROOT / "specs" / "repurchase_one_capacity.mech"

# A box-constrained LP whose optimum is known in closed form: x[k] sits at its
# upper bound when its weight is positive, at 0 otherwise; the same for y.
LP = """\
param n integer >= 1 = 2;
param ub[k in 1..n] >= 0 = [1, 2];
param c[k in 1..n] = [3, -1];
param T[i in 1..2, j in 1..3] = [[1, -2, 3], [-4, 5, -6]];
param scale > 0 = 1;
var x[k in 1..n] >= 0, <= ub[k];
var y[i in 1..2, j in 1..3] >= 0, <= 1;
maximize Total: scale * sum{k in 1..n} c[k] * x[k] + sum{i in 1..2, j in 1..3} T[i,j] * y[i,j];
"""
DEFAULTS = dict(n=2, ub=[1, 2], c=[3, -1], T=[[1, -2, 3], [-4, 5, -6]], scale=1)


def expected(**over):
    d = {**DEFAULTS, **over}
    ub, c, T = np.array(d["ub"], float), np.array(d["c"], float), np.array(d["T"], float)
    obj = d["scale"] * float(np.maximum(c, 0) @ ub) + float(np.maximum(T, 0).sum())
    x = {(k + 1,): (ub[k] if c[k] > 0 else 0.0) for k in range(len(c))}
    y = {(i + 1, j + 1): (1.0 if T[i, j] > 0 else 0.0) for i in range(2) for j in range(3)}
    return obj, x, y


def solve_lp(**kw):
    return mechdsl.loads(LP, "lp.mech", **kw).solve()


def check_solution(res, **over):
    obj, x, y = expected(**over)
    assert res.status == "optimal"
    assert res.problem_class == "LP"
    assert res.objective == pytest.approx(obj, abs=1e-7)
    assert set(res.variables["x"]) == set(x)
    for k, val in x.items():
        assert res.variables["x"][k] == pytest.approx(val, abs=1e-7)
    for k, val in y.items():
        assert res.variables["y"][k] == pytest.approx(val, abs=1e-7)
    assert res.verification.ok


# ------------------------------------------------------------ good overrides
def test_defaults():
    res = solve_lp()
    check_solution(res)
    assert res.parameters["scale"] == 1
    assert res.parameters["c"] == {(1,): 3, (2,): -1}


def test_set_scalar_changes_the_solution():
    res = solve_lp(overrides=["scale=2.5"])
    check_solution(res, scale=2.5)
    assert res.parameters["scale"] == 2.5
    assert res.objective != pytest.approx(solve_lp().objective)


def test_set_vector_changes_the_solution():
    res = solve_lp(overrides=["c=[-1, 4]"])
    check_solution(res, c=[-1, 4])
    assert res.parameters["c"] == {(1,): -1, (2,): 4}
    assert res.variables["x"][(1,)] == pytest.approx(0.0, abs=1e-9)
    assert res.variables["x"][(2,)] == pytest.approx(2.0, abs=1e-9)


def test_set_changes_an_index_set_size():
    res = solve_lp(overrides=["n=3", "ub=[1, 2, 4]", "c=[3, -1, 0.5]"])
    check_solution(res, n=3, ub=[1, 2, 4], c=[3, -1, 0.5])
    assert set(res.variables["x"]) == {(1,), (2,), (3,)}


def test_set_nested_table():
    T = [[-1, 2, -3], [4, -5, 6]]
    res = solve_lp(overrides=["T=[[-1, 2, -3], [4, -5, 6]]"])
    check_solution(res, T=T)
    assert res.parameters["T"][(2, 3)] == 6 and res.parameters["T"][(1, 1)] == -1


def test_set_keyed_table_and_mapping_overrides():
    T = [[0.5, 0.5, 0.5], [-1, -1, 7]]
    table = {f"{i + 1},{j + 1}": T[i][j] for i in range(2) for j in range(3)}
    import json

    res = solve_lp(overrides=["T=" + json.dumps(table)])
    check_solution(res, T=T)
    res2 = solve_lp(overrides={"T": T, "scale": 3})
    check_solution(res2, T=T, scale=3)


def test_overrides_change_derived_params_of_the_repurchase_spec():
    lam = [[0.25, 0.25, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4]]
    model = mechdsl.load(REPURCHASE, overrides=["K=4", "v=[1, 2, 3, 4]",
                                               "lam=[[0.25,0.25,0.25,0.25],[0.1,0.2,0.3,0.4]]", "D=7.5"])
    params = model.instance().params
    assert params["K"] == 4 and params["D"] == 7.5
    assert params["v"] == {(k,): k for k in range(1, 5)}
    assert params["lam"] == {(i + 1, k + 1): lam[i][k] for i in range(2) for k in range(4)}
    q = np.mean(np.array(lam), axis=0)
    for k in range(4):
        assert params["q"][(k + 1,)] == pytest.approx(q[k], abs=1e-12)


# ------------------------------------------------------------------ TOML
def test_toml_data_file_with_nested_arrays(tmp_path):
    p = tmp_path / "d.toml"
    p.write_text("# data\nn = 3\nub = [2, 2, 1.5]\nc = [1, 2, -3]\nscale = 0.5\n"
                 "T = [[-1, -1, -1],\n     [2, 0.25, -1]]\n", encoding="utf-8")
    res = solve_lp(data=p)
    check_solution(res, n=3, ub=[2, 2, 1.5], c=[1, 2, -3], scale=0.5, T=[[-1, -1, -1], [2, 0.25, -1]])
    # also through load(path, data=str)
    spec = tmp_path / "lp.mech"
    spec.write_text(LP, encoding="utf-8")
    res2 = mechdsl.load(spec, data=str(p)).solve()
    assert res2.objective == pytest.approx(res.objective, abs=1e-9)


def test_toml_keyed_table(tmp_path):
    p = tmp_path / "t.toml"
    T = [[1, 1, 1], [1, 1, -9]]
    body = "\n".join(f'"{i + 1},{j + 1}" = {T[i][j]}' for i in range(2) for j in range(3))
    p.write_text("[T]\n" + body + "\n", encoding="utf-8")
    check_solution(solve_lp(data=p), T=T)


def test_overrides_win_over_the_data_file(tmp_path):
    p = tmp_path / "d.toml"
    p.write_text("scale = 4\nc = [1, 1]\n", encoding="utf-8")
    res = solve_lp(data=p, overrides=["scale=2"])
    check_solution(res, scale=2, c=[1, 1])
    assert res.parameters["scale"] == 2


def test_data_as_a_mapping():
    res = solve_lp(data={"c": [2, 2], "ub": [0.5, 0.25]})
    check_solution(res, c=[2, 2], ub=[0.5, 0.25])


# ------------------------------------------------------------- data errors
def data_error(*, text=LP, path=None, **kw) -> mechdsl.DataError:
    with pytest.raises(mechdsl.MechError) as info:
        model = mechdsl.load(path, **kw) if path else mechdsl.loads(text, "lp.mech", **kw)
        model.instance()
    err = info.value
    assert err.exit_code == 2
    return err


def test_unknown_key_in_set():
    err = data_error(overrides=["scal=2"])
    assert isinstance(err, mechdsl.DataError)
    msg = str(err)
    assert "unknown param 'scal'" in msg and "--set scal" in msg
    assert "did you mean 'scale'?" in msg


def test_unknown_key_in_toml(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("scale = 2\nKk = 3\n", encoding="utf-8")
    err = data_error(path=REPURCHASE, data=p)
    assert isinstance(err, mechdsl.DataError)
    msg = str(err)
    assert f"{p}:2:1: error: unknown param 'Kk'" in msg  # located at the key in the data file
    assert "did you mean 'K'?" in msg


def test_data_for_something_that_is_not_a_param():
    err = data_error(path=REPURCHASE, overrides=["theta=1"])
    assert isinstance(err, mechdsl.DataError)
    assert "'theta' is a type, not a param" in str(err)
    err = data_error(overrides=["x=[1, 2]"])  # a variable takes no data
    assert isinstance(err, mechdsl.DataError)
    assert "--set x" in str(err) and "'x'" in str(err)


@pytest.mark.parametrize("override, fragments", [
    ("c=[1, 2, 3]", ["param 'c'", "wrong shape", "expected 2 values, got 3"]),
    ("c=[[1, 2]]", ["param 'c'", "wrong shape"]),
    ("T=[1, -2, 3, -4, 5, -6]", ["param 'T'", "wrong shape", "2 x 3"]),
    ("T=[[1, -2, 3], [-4, 5]]", ["param 'T'", "wrong shape", "at depth 2"]),
    ("scale=[1, 2]", ["param 'scale'", "is scalar"]),
    ("c=3", ["param 'c'", "needs an array"]),
    ('c={"1": 1, "3": 2}', ["param 'c'", "key '3' is outside its index set"]),
    ('c={"1": 1}', ["param 'c'", "no value for index 2"]),
])
def test_wrong_shape(override, fragments):
    err = data_error(overrides=[override])
    assert isinstance(err, mechdsl.DataError)
    for f in fragments:
        assert f in str(err)


def test_wrong_shape_in_toml_names_file_and_key(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("lam = [[0.5, 0.5, 0], [0.25, 0.75]]\n", encoding="utf-8")
    err = data_error(path=REPURCHASE, data=p)
    assert isinstance(err, mechdsl.DataError)
    msg = str(err)
    assert f"{p}:1:1: error: param 'lam'" in msg and "wrong shape" in msg


@pytest.mark.parametrize("override, fragments", [
    ('c=[1, "a"]', ["--set c", "must be numbers"]),
    ('scale="2"', ["--set scale", "must be numbers"]),
    ("scale=true", ["--set scale", "must be numbers"]),
    ("scale=abc", ["--set scale", "cannot read the value 'abc'"]),
    ("scale=NaN", ["'scale'", "finite"]),
    ("scale=Infinity", ["'scale'", "finite"]),
])
def test_non_numbers(override, fragments):
    err = data_error(overrides=[override])
    assert isinstance(err, mechdsl.DataError)
    for f in fragments:
        assert f in str(err)


def test_non_number_in_toml(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('c = [1, "two"]\n', encoding="utf-8")
    err = data_error(data=p)
    assert isinstance(err, mechdsl.DataError)
    assert ":1:1: error: param 'c'" in str(err) and "must be numbers" in str(err)


@pytest.mark.parametrize("bad", ["scale", "=3", "1x=3", "sc ale=3"])
def test_malformed_set(bad):
    err = data_error(overrides=[bad])
    assert isinstance(err, mechdsl.DataError)
    assert "--set" in str(err)


def test_unreadable_and_invalid_toml(tmp_path):
    err = data_error(data=tmp_path / "missing.toml")
    assert isinstance(err, mechdsl.DataError) and "missing.toml" in str(err)
    p = tmp_path / "broken.toml"
    p.write_text("c = [1, 2\n", encoding="utf-8")
    err = data_error(data=p)
    assert isinstance(err, mechdsl.DataError)
    assert "broken.toml" in str(err) and "invalid TOML" in str(err)


@pytest.mark.parametrize("override, fragments", [
    ("K=0", ["K = 0 is out of range", "K >= 1"]),
    ("K=2.5", ["K = 2.5 is out of range", "integer"]),
    ("cap=-1", ["cap = -1 is out of range", "cap >= 0"]),
    ("lam=[[0.5, 0.3, 1.2], [0.2, 0.3, 0.5]]", ["lam[1,3] = 1.2 is out of range", "lam <= 1"]),
    ("v=[1, -2, 3]", ["v[2] = -2 is out of range", "v >= 0"]),
])
def test_out_of_range_repurchase(override, fragments):
    err = data_error(path=REPURCHASE, overrides=[override])
    assert isinstance(err, mechdsl.DataError)
    key = override.split("=")[0]
    assert f"--set {key}" in str(err)
    for f in fragments:
        assert f in str(err)


def test_out_of_range_strict_bound():
    err = data_error(overrides=["scale=0"])
    assert isinstance(err, mechdsl.DataError)
    assert "scale = 0 is out of range" in str(err) and "scale > 0" in str(err)


def test_out_of_range_default_names_its_declaration():
    err = data_error(text="param K integer >= 1 = 0;\n")
    assert isinstance(err, mechdsl.DataError)
    assert "lp.mech:1:" in str(err) and "K = 0 is out of range" in str(err)


def test_prior_not_summing_to_one_names_the_prior():
    err = data_error(path=REPURCHASE, overrides=["q=[0.5, 0.3, 0.3]"])
    msg = str(err)
    assert "'q'" in msg and "sums to 1.1" in msg and "not 1" in msg


def test_missing_param_value_names_the_param():
    text = "param a;\nparam b[k in 1..2];\nvar x <= 1;\nmaximize a * x;\n"
    err = data_error(text=text)
    msg = str(err)
    assert "param 'a' has no value" in msg and "--set a=" in msg
    # giving it fixes it (then b is the next one missing)
    err = data_error(text=text, overrides=["a=2"])
    assert "param 'b' has no value" in str(err)
    res = mechdsl.loads(text, "lp.mech", overrides=["a=2", "b=[1, 1]"]).solve()
    assert res.objective == pytest.approx(2.0, abs=1e-9)


# Errors caused by data (a --set value, a data file entry, or a param default)
# are DataErrors: that is the documented contract of Model.instance() and of
# mechdsl.errors.DataError ("A --set or --data value, or a param default, is
# unusable").  Every case below must be catchable as mechdsl.DataError.
BINDING_ERRORS = {
    "out of range via --set": (None, ["K=0"]),
    "wrong shape via --set": (None, ["v=[1, 2]"]),
    "prior not summing to one via --set": (None, ["q=[0.5, 0.3, 0.3]"]),
    "missing param value": ("param a;\nvar x <= 1;\nmaximize a * x;\n", None),
    "param default indexes outside its set": ("param c[k in 1..2] = [1, 2];\nparam d = c[3];\n", None),
}


@pytest.mark.parametrize("case", list(BINDING_ERRORS))
def test_binding_errors_are_data_errors(case):
    text, overrides = BINDING_ERRORS[case]
    if text is None:
        model = mechdsl.load(REPURCHASE, overrides=overrides)
    else:
        model = mechdsl.loads(text, "d.mech", overrides=overrides)
    with pytest.raises(mechdsl.MechError) as info:
        model.instance()
    assert info.value.exit_code == 2
    assert isinstance(info.value, mechdsl.DataError), (
        f"{case}: raised {type(info.value).__name__}, not DataError: {info.value}")

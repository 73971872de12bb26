"""Infeasibility explained in spec terms (issue 11, part 5): an irreducible infeasible subset (IIS).

Specs built (here, with mechdsl.loads) to be infeasible in known ways.  Each one's constraints are
written out again by hand as half-spaces ("atoms") over the spec's variables, and scipy decides, with
no mechdsl code involved:

* the whole system is infeasible, and so are the atoms of mechdsl's IIS;
* dropping any one atom of the IIS leaves a feasible set (irreducible);
* dropping any one atom of the IIS from the *whole* system leaves it feasible -- so every infeasible
  subset contains all of them, the IIS is unique, and its exact membership is the only right answer.

Then random infeasible LPs and MILPs straight on the compiled form (compilers/highs/iis.py), with
HiGHS's getIis (true IIS, elastic LP) and with the deletion filter alone, checked for irreducibility the same way.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sps
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

import mechdsl
from mechdsl import cli
from mechdsl.compilers.highs import iis as iis_mod
from mechdsl.compilers.standard.form import ColumnBlock, RowBlock, StandardForm
from mechdsl.errors import SolveError


# ----------------------------------------------------------------------------- an independent feasibility oracle

def feasible(atoms: dict, names: list, n: int, integer=()) -> bool:
    """Do the atoms {name: (g, op, rhs)} (g @ z op rhs, op in >= <=), the others dropped, admit a point z?"""
    rows = [atoms[k] for k in names]
    if not rows:
        return True
    A = np.array([g for g, _, _ in rows], dtype=float)
    lo = np.array([rhs if op == ">=" else -np.inf for _, op, rhs in rows])
    hi = np.array([rhs if op == "<=" else np.inf for _, op, rhs in rows])
    if integer:
        integrality = np.zeros(n)
        integrality[list(integer)] = 1
        res = milp(np.zeros(n), constraints=[LinearConstraint(A, lo, hi)], integrality=integrality,
                   bounds=Bounds(-np.inf, np.inf))
        assert res.status in (0, 2), res.message
        return res.status == 0
    A_ub = np.vstack([-A[np.isfinite(lo)], A[np.isfinite(hi)]])
    b_ub = np.concatenate([-lo[np.isfinite(lo)], hi[np.isfinite(hi)]])
    res = linprog(np.zeros(n), A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * n, method="highs")
    assert res.status in (0, 2), res.message
    return res.status == 0


def e(n, *pairs):
    g = np.zeros(n)
    for j, a in pairs:
        g[j] += a
    return g


def assert_unique_iis(atoms: dict, iis: list, n: int, integer=()):
    """The independent checks of the module docstring."""
    everything = list(atoms)
    assert not feasible(atoms, everything, n, integer), "the hand-written system should be infeasible"
    assert not feasible(atoms, iis, n, integer), f"{iis} is not infeasible"
    for a in iis:
        rest = [b for b in iis if b != a]
        assert feasible(atoms, rest, n, integer), f"{iis} without {a} is still infeasible: not irreducible"
        others = [b for b in everything if b != a]
        assert feasible(atoms, others, n, integer), f"the whole system without {a} is infeasible: not unique"


def solve_failure(text: str, **kw) -> SolveError:
    with pytest.raises(SolveError) as info:
        mechdsl.loads(text, "spec.mech").solve(**kw)
    exc = info.value
    assert exc.exit_code == 1 and exc.result.status == "infeasible"
    return exc


def atom_names(members: list[dict]) -> list[str]:
    """mechdsl's members as the atoms below: a constraint by its id (and the direction used, for an
    equality), a bound by its text (``x[3] <= 1``)."""
    out = []
    for m in members:
        if m["member"] == "bound":
            out.append(m["id"])
        elif m["equality"]:
            out += [f"{m['id']}>=", f"{m['id']}<="] if m["relation"] == "==" else [f"{m['id']}{m['relation']}"]
        else:
            out.append(m["id"])
    return out


# ----------------------------------------------------------------------------- specs infeasible in known ways

MONO = """\
param v[k in 1..2] = [1, 2];
var x[k in 1..2] >= 0;
var p[k in 1..2] >= 0;
utility U(t, r) = p[r] - v[t] * x[r];
ic IC[t in 1..2, r in 1..2: t != r]: U(t, t) >= U(t, r);
ir IR[t in 1..2]: U(t, t) >= 0;
feasibility X1: x[1] <= 1;
feasibility X2: x[2] >= 3;
maximize W: sum{k in 1..2} (x[k] - p[k]);
"""


def mono_atoms():
    # z = (x1, x2, p1, p2); U(t, r) = p_r - v_t x_r.  Both IC rows together say x1 >= x2 (x non-increasing).
    n = 4
    return n, {
        "IC[1->2]": (e(n, (2, 1), (0, -1), (3, -1), (1, 1)), ">=", 0),   # p1 - x1 >= p2 - x2
        "IC[2->1]": (e(n, (3, 1), (1, -2), (2, -1), (0, 2)), ">=", 0),   # p2 - 2 x2 >= p1 - 2 x1
        "IR[1]": (e(n, (2, 1), (0, -1)), ">=", 0),
        "IR[2]": (e(n, (3, 1), (1, -2)), ">=", 0),
        "X1": (e(n, (0, 1)), "<=", 1),
        "X2": (e(n, (1, 1)), ">=", 3),
        "x[1] >= 0": (e(n, (0, 1)), ">=", 0), "x[2] >= 0": (e(n, (1, 1)), ">=", 0),
        "p[1] >= 0": (e(n, (2, 1)), ">=", 0), "p[2] >= 0": (e(n, (3, 1)), ">=", 0),
    }


@pytest.mark.parametrize("reduce", [True, False])
def test_ic_monotonicity_conflict(reduce):
    exc = solve_failure(MONO, reduce=reduce)
    members = exc.result.iis
    assert [m["id"] for m in members] == ["IC[1->2]", "IC[2->1]", "X1", "X2"]
    assert [m["kind"] for m in members] == ["ic", "ic", "feasibility", "feasibility"]
    assert [m["where"] for m in members] == ["spec.mech:5", "spec.mech:5", "spec.mech:7", "spec.mech:8"]
    assert [m["relation"] for m in members] == [">=", ">=", "<=", ">="]
    assert all(m["origin"] is None for m in members)  # spec rows, not the reduction's MONO_x row
    n, atoms = mono_atoms()
    assert_unique_iis(atoms, atom_names(members), n)
    text = str(exc)
    assert "the model is infeasible" in text and "irreducible infeasible subset" in text
    assert "    IC[2->1]  (ic, spec.mech:5)" in text and "    X2  (feasibility, spec.mech:8)" in text
    assert any(note.startswith("IIS of the full model") and "4 member(s)" in note and "irreducible" in note
               for note in exc.result.notes)


def test_too_large_for_the_full_model_the_solved_one_is_explained(monkeypatch):
    """Beyond FULL_ROWS the IIS is of the model as solved: a reduction's derived row is named as such."""
    monkeypatch.setattr(iis_mod, "FULL_ROWS", 0)
    exc = solve_failure(MONO)
    members = exc.result.iis
    assert [m["id"] for m in members] == ["MONO_x[1,2]", "X1", "X2"]
    assert members[0]["kind"] == "monotonicity" and members[0]["origin"].startswith("local_ic")
    assert "[derived: local_ic" in members[0]["text"]
    assert any(note.startswith("IIS of the model as solved") for note in exc.result.notes)
    n = 4  # MONO_x[1,2]: x1 >= x2 (in the form, x2 - x1 <= 0 or x1 - x2 >= 0): with X1, X2 the unique IIS
    atoms = {"MONO": (e(n, (0, 1), (1, -1)), ">=", 0), "X1": (e(n, (0, 1)), "<=", 1), "X2": (e(n, (1, 1)), ">=", 3)}
    assert_unique_iis(atoms, ["MONO", "X1", "X2"], n)


BOUND = """\
param d[k in 1..3] = [0, 0, 3];
var x[k in 1..3] >= 0, <= 1;
var p[k in 1..3] >= 0;
feasibility Need[k in 1..3]: x[k] + p[k] >= d[k];
budget Pay: sum{k in 1..3} p[k] <= 1;
maximize W: sum{k in 1..3} x[k];
"""


def test_variable_bounds_are_members():
    exc = solve_failure(BOUND)
    members = exc.result.iis
    assert [m["id"] for m in members] == ["Need[3]", "Pay", "x[3] <= 1", "p[1] >= 0", "p[2] >= 0"]
    bounds = [m for m in members if m["member"] == "bound"]
    assert [(m["variable"], m["index"], m["side"], m["bound"]) for m in bounds] == [
        ("x", [3], "upper", 1), ("p", [1], "lower", 0), ("p", [2], "lower", 0)]
    assert [m["where"] for m in members] == ["spec.mech:4", "spec.mech:5", "spec.mech:2", "spec.mech:3",
                                             "spec.mech:3"]
    assert "    x[3] <= 1  (var x at spec.mech:2)" in str(exc)
    assert "    p[1] >= 0  (var p at spec.mech:3)" in str(exc)
    n = 6  # z = (x1, x2, x3, p1, p2, p3)
    atoms = {f"Need[{k}]": (e(n, (k - 1, 1), (k + 2, 1)), ">=", [0, 0, 3][k - 1]) for k in (1, 2, 3)}
    atoms["Pay"] = (e(n, (3, 1), (4, 1), (5, 1)), "<=", 1)
    for k in (1, 2, 3):
        atoms[f"x[{k}] >= 0"] = (e(n, (k - 1, 1)), ">=", 0)
        atoms[f"x[{k}] <= 1"] = (e(n, (k - 1, 1)), "<=", 1)
        atoms[f"p[{k}] >= 0"] = (e(n, (k + 2, 1)), ">=", 0)
    assert_unique_iis(atoms, atom_names(members), n)


PICK = """\
var b[k in 1..2] binary;
var y >= 0;
constraint Pick: sum{k in 1..2} b[k] == 1;
constraint Both[k in 1..2]: b[k] >= 0.5;
constraint Free: y <= 10;
maximize W: y;
"""


def test_milp_needs_integrality_and_one_direction_of_an_equality():
    exc = solve_failure(PICK)
    assert exc.result.problem_class == "MILP"
    members = exc.result.iis
    assert [m["id"] for m in members] == ["Pick", "Both[1]", "Both[2]"]
    pick = members[0]
    assert pick["equality"] and pick["side"] == "upper" and pick["relation"] == "<="
    assert "only the '<=' direction of its '==' is needed" in pick["text"]
    n = 3  # z = (b1, b2, y)
    atoms = {"Pick>=": (e(n, (0, 1), (1, 1)), ">=", 1), "Pick<=": (e(n, (0, 1), (1, 1)), "<=", 1),
             "Both[1]": (e(n, (0, 1)), ">=", 0.5), "Both[2]": (e(n, (1, 1)), ">=", 0.5),
             "Free": (e(n, (2, 1)), "<=", 10), "y >= 0": (e(n, (2, 1)), ">=", 0)}
    for k in (1, 2):
        atoms[f"b[{k}] >= 0"] = (e(n, (k - 1, 1)), ">=", 0)
        atoms[f"b[{k}] <= 1"] = (e(n, (k - 1, 1)), "<=", 1)
    names = atom_names(members)
    assert names == ["Pick<=", "Both[1]", "Both[2]"]
    assert_unique_iis(atoms, names, n, integer=(0, 1))
    assert feasible(atoms, names, n)  # without integrality it is feasible (b = 1/2): the MILP path was needed


TYPED = """\
param v[k in 1..2] = [1, 2];
type t in 1..2 ~ uniform;
var x[k in 1..2] >= 0, <= 5;
var p[k in 1..2] >= 0;
utility U(a, r) = p[r] - v[a] * x[r];
ic IC[a in 1..2, r in 1..2: a != r]: U(a, a) >= U(a, r);
ir IR[a in 1..2]: U(a, a) >= 0;
feasibility Cap: p[2] <= 3;   # only type 2 is capped: one IIS
feasibility Min[k in 1..2]: x[k] >= 2;
maximize W: E[t](x[t] - p[t]);
"""


def test_participation_conflict_with_a_type(capsys, tmp_path):
    exc = solve_failure(TYPED)
    members = exc.result.iis
    assert [(m["id"], m["kind"], m["line"]) for m in members] == [("IR[2]", "ir", 7), ("Cap", "feasibility", 8),
                                                                  ("Min[2]", "feasibility", 9)]
    n = 4  # z = (x1, x2, p1, p2)
    atoms = {"IC[1->2]": (e(n, (2, 1), (0, -1), (3, -1), (1, 1)), ">=", 0),
             "IC[2->1]": (e(n, (3, 1), (1, -2), (2, -1), (0, 2)), ">=", 0),
             "IR[1]": (e(n, (2, 1), (0, -1)), ">=", 0), "IR[2]": (e(n, (3, 1), (1, -2)), ">=", 0)}
    atoms["Cap"] = (e(n, (3, 1)), "<=", 3)
    for k in (1, 2):
        atoms[f"Min[{k}]"] = (e(n, (k - 1, 1)), ">=", 2)
        atoms[f"x[{k}] >= 0"] = (e(n, (k - 1, 1)), ">=", 0)
        atoms[f"x[{k}] <= 5"] = (e(n, (k - 1, 1)), "<=", 5)
        atoms[f"p[{k}] >= 0"] = (e(n, (k + 1, 1)), ">=", 0)
    assert_unique_iis(atoms, atom_names(members), n)
    # the command line: the IIS under the error message (exit 1), and in the JSON of the failed result
    spec = tmp_path / "typed.mech"
    spec.write_text(TYPED)
    code = cli.main(["solve", str(spec)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert "the model is infeasible" in lines[0]
    assert lines[1].startswith("  an irreducible infeasible subset (IIS): these 3 constraint(s)")
    assert lines[2:5] == [f"    IR[2]  (ir, {spec}:7)", f"    Cap  (feasibility, {spec}:8)",
                          f"    Min[2]  (feasibility, {spec}:9)"]
    code = cli.main(["solve", str(spec), "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    doc = json.loads(out)
    assert doc["status"] == "infeasible" and doc["objective"] is None
    assert [m["id"] for m in doc["iis"]] == ["IR[2]", "Cap", "Min[2]"]
    assert doc["iis"][0] == {"member": "constraint", "id": "IR[2]", "family": "IR", "kind": "ir", "index": [2],
                             "part": None, "side": "lower", "relation": ">=", "equality": False, "origin": None,
                             "file": str(spec), "line": 7, "where": f"{spec}:7",
                             "text": f"IR[2]  (ir, {spec}:7)"}
    assert doc["spec_sha256"] and doc["inputs"]["spec"] == str(spec)


def test_feasible_and_nonlinear_models_have_no_iis():
    res = mechdsl.loads(MONO.replace("x[2] >= 3", "x[2] >= 0"), "ok.mech").solve()
    assert res.status == "optimal" and res.iis is None and res.to_dict()["iis"] is None


# ----------------------------------------------------------------------------- random forms, straight to the backend

def random_form(seed: int, integer: bool = False):
    rng = np.random.default_rng(seed)
    n, m = 6, 10
    A = rng.integers(-3, 4, size=(m, n)).astype(float)
    x_ref = rng.uniform(-2, 2, n)
    slack = rng.uniform(0, 2, m)
    kinds = rng.integers(0, 3, m)  # 0: >=, 1: <=, 2: ==
    ax = A @ x_ref
    lo = np.where(kinds == 0, ax - slack, np.where(kinds == 2, ax, -np.inf))
    hi = np.where(kinds == 1, ax + slack, np.where(kinds == 2, ax, np.inf))
    # one row that the column bounds cannot meet: sum x >= n * 3 with |x| <= 2.5
    A = np.vstack([A, np.ones(n)])
    lo, hi = np.append(lo, 3.0 * n), np.append(hi, np.inf)
    col_lo, col_hi = np.full(n, -2.5), np.full(n, 2.5)
    form = StandardForm(sense="minimize", c=rng.normal(size=n), A=sps.csr_matrix(A), row_lo=lo, row_hi=hi,
                        col_lo=col_lo, col_hi=col_hi, integer=np.full(n, integer),
                        columns=[ColumnBlock("x", [(j + 1,) for j in range(n)], 0)],
                        rows=[RowBlock("R", "constraint", [(i + 1,) for i in range(m)], 0),
                              RowBlock("Big", "feasibility", [()], m)])
    return form


def form_atoms(form: StandardForm) -> dict:
    atoms = {}
    for i in range(form.m):
        g = form.A[i].toarray().ravel()
        if np.isfinite(form.row_lo[i]):
            atoms[("row", i, "lo")] = (g, ">=", form.row_lo[i])
        if np.isfinite(form.row_hi[i]):
            atoms[("row", i, "hi")] = (g, "<=", form.row_hi[i])
    for j in range(form.n):
        atoms[("col", j, "lo")] = (e(form.n, (j, 1)), ">=", form.col_lo[j])
        atoms[("col", j, "hi")] = (e(form.n, (j, 1)), "<=", form.col_hi[j])
    return atoms


@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("start", ["true IIS", "elastic LP", "every atom"])
@pytest.mark.parametrize("seed", range(4))
def test_random_forms_irreducible(monkeypatch, seed, integer, start):
    form = random_form(seed, integer)
    if start == "elastic LP":  # as on a model above TRUE_IIS_ROWS rows
        monkeypatch.setattr(iis_mod, "TRUE_IIS_ROWS", 0)
    elif start == "every atom":  # as above ELASTIC_ROWS: the deletion filter alone, from every row and bound
        monkeypatch.setattr(iis_mod, "ELASTIC_ROWS", 0)
    found = iis_mod.compute_iis(form)
    assert found is not None and found.irreducible
    atoms = form_atoms(form)
    names = [tuple(a) for a in found.atoms]
    assert set(names) <= set(atoms)
    integ = tuple(range(form.n)) if integer else ()
    assert not feasible(atoms, names, form.n, integ)
    for a in names:
        assert feasible(atoms, [b for b in names if b != a], form.n, integ), (a, names)
    # without the Big row the forms are feasible (x_ref is inside the bounds), so every IIS contains it
    assert ("row", form.m - 1, "lo") in names
    members = iis_mod.describe(form, found)
    assert len(members) == len({(w, i) for w, i, _ in found.atoms if w == "row"}) + sum(
        1 for w, _, _ in found.atoms if w == "col")
    assert all(m["id"].startswith(("R[", "Big", "x[")) for m in members)


def test_feasible_form_has_no_iis():
    form = random_form(0)
    form.row_lo[-1] = -np.inf  # drop the impossible row
    assert feasible(form_atoms(form), list(form_atoms(form)), form.n)
    assert iis_mod.compute_iis(form) is None

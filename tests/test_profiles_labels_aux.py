"""Joint (correlated) priors over profiles and Cremer-McLean full extraction; labels (sets of names) as
indices, in filters, if-then-else, argmax, data files and JSON; auxiliary problems (lexicographic
tie-breaks, aux indexed by profiles inside E[...], a large aux family, nonconvex QP aux, an LP aux forced
through IPOPT); IC/IR roles and per-agent verification in JSON; profile-indexed params and reports,
variables over empty index sets and problems without variables.

Every number asserted that comes from mechdsl is compared with an independent computation written here:
brute-force enumeration, ``fractions``, closed forms, ``scipy.optimize.linprog`` over explicit profiles,
or Myerson's ironed revenue from ``tests/refs.py``.  User errors are checked for exit 2 and the
``file:line:col: error:`` form with the source line and a caret under the reported column.
"""
from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

import mechdsl
from mechdsl.errors import MechError
from refs import myerson_revenue

SPECS = Path(__file__).resolve().parent.parent / "specs"


# ------------------------------------------------------------------ helpers
def run_cli(*args):
    p = subprocess.run([sys.executable, "-m", "mechdsl", *map(str, args)], capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def assert_located(err: str, path, text: str, line: int, col: int):
    """``path:line:col: error:``, the source line, a caret starting under column ``col``; no traceback."""
    assert f"{path}:{line}:{col}: error: " in err, err
    assert "Traceback" not in err and "internal error" not in err and "please report" not in err, err
    src = text.splitlines()[line - 1]
    lines = err.splitlines()
    hits = [i for i, ln in enumerate(lines) if re.fullmatch(rf"\s*{line} \| {re.escape(src)}", ln)]
    assert hits, err
    i = hits[0]
    prefix = lines[i].index("| ") + 2
    caret = lines[i + 1]
    assert set(caret.strip()) == {"^"}, err
    assert caret.index("^") - prefix + 1 == col, err


def col_of(text: str, line: int, needle: str) -> int:
    return text.splitlines()[line - 1].index(needle) + 1


# ================================================================== 1. joint priors, Cremer-McLean
CM = """\
param n integer = 2;
param m integer = 2;
set N = 1..n;
set V = 1..m;
param val[k in V] = k;
param g[w in V^N] >= 0, <= 1;
type v[i in N] in V ~ g;
var x[i in N, v in V^N] >= 0, <= 1;
var p[i in N, v in V^N];
utility U(i, t, r) = E[v | v[i] == t](val[t] * x[i, (r, v[-i])] - p[i, (r, v[-i])]);
feasibility Supply[v in V^N]: sum{i in N} x[i, v] <= 1;
ic IC[i in N, t in V, r in V: r != t]: U(i, t, t) >= U(i, t, r);
ir IR[i in N, t in V]: U(i, t, t) >= 0;
maximize Revenue: E[v](sum{i in N} p[i, v]);
"""


def _prof(i, own, other):
    """The 2-bidder profile (0-based entries) with bidder i's entry ``own`` and the other's ``other``."""
    return (own, other) if i == 0 else (other, own)


def _cond(G, i, t):
    """P(other's type = o | bidder i's type = t), o = 0..m-1, from the joint matrix G[s1][s2]."""
    G = np.asarray(G, float)
    row = G[t, :] if i == 0 else G[:, t]
    return row / row.sum()


def cm_lp(vals, G):
    """Optimal revenue under BIC (conditional on the own type) + interim IR, 2 bidders, over explicit
    profiles: variables x[i, s] in [0, 1], p[i, s] free; sum_i x[i, s] <= 1."""
    m = len(vals)
    prof = list(itertools.product(range(m), repeat=2))
    col = {}
    for what in "xp":
        for i in range(2):
            for s in prof:
                col[(what, i, s)] = len(col)
    G = np.asarray(G, float)
    c = np.zeros(len(col))
    for i in range(2):
        for s in prof:
            c[col[("p", i, s)]] = -G[s]
    A, b = [], []
    for s in prof:
        row = np.zeros(len(col))
        for i in range(2):
            row[col[("x", i, s)]] = 1
        A.append(row), b.append(1)

    def interim(i, t, r):
        row = np.zeros(len(col))
        for o, w in enumerate(_cond(G, i, t)):
            s = _prof(i, r, o)
            row[col[("x", i, s)]] += w * vals[t]
            row[col[("p", i, s)]] -= w
        return row

    for i in range(2):
        for t in range(m):
            A.append(-interim(i, t, t)), b.append(0)
            for r in range(m):
                if r != t:
                    A.append(interim(i, t, r) - interim(i, t, t)), b.append(0)
    bounds = [(0, 1) if k[0] == "x" else (None, None) for k in col]
    res = linprog(c, A_ub=np.array(A), b_ub=np.array(b), bounds=bounds, method="highs")
    assert res.status == 0, res.message
    return -res.fun


def e_max(vals, G):
    m = len(vals)
    return sum(G[a][b] * max(vals[a], vals[b]) for a in range(m) for b in range(m))


CM_PRIORS = {
    "2x2": [[0.4, 0.1], [0.1, 0.4]],
    "3x3 symmetric": [[0.2, 0.05, 0.05], [0.05, 0.2, 0.05], [0.05, 0.05, 0.3]],
    "3x3 asymmetric": [[0.15, 0.1, 0.05], [0.05, 0.2, 0.1], [0.02, 0.08, 0.25]],
}


@pytest.mark.parametrize("name", list(CM_PRIORS))
def test_cremer_mclean_full_surplus_extraction(name):
    G = CM_PRIORS[name]
    m = len(G)
    vals = list(range(1, m + 1))
    assert sum(map(sum, G)) == pytest.approx(1, abs=1e-15)
    # the spanning condition: each bidder's conditional beliefs are linearly independent (full rank)
    assert abs(np.linalg.det(np.asarray(G))) > 1e-4
    r = mechdsl.loads(CM, data={"m": m, "g": G}).solve()
    assert r.status == "optimal" and r.verification.ok
    want = e_max(vals, G)
    assert r.objective == pytest.approx(want, abs=1e-7)
    assert r.objective == pytest.approx(cm_lp(vals, G), abs=1e-7)
    # Full extraction: every interim utility is 0 and the allocation is efficient at every profile.
    x, p = r.variables["x"], r.variables["p"]
    prof = list(itertools.product(range(m), repeat=2))
    for s in prof:
        welfare = sum(vals[s[i]] * x[(i + 1, s[0] + 1, s[1] + 1)] for i in range(2))
        assert welfare == pytest.approx(max(vals[s[0]], vals[s[1]]), abs=1e-6)
    menu = {(row["agent"], row["type"]): row for row in r.menu()}
    assert len(menu) == 2 * m
    for i in range(2):
        for t in range(m):
            w = _cond(G, i, t)
            u = sum(w[o] * (vals[t] * x[(i + 1,) + tuple(k + 1 for k in _prof(i, t, o))]
                            - p[(i + 1,) + tuple(k + 1 for k in _prof(i, t, o))]) for o in range(m))
            assert u == pytest.approx(0, abs=1e-7)
            row = menu[(i + 1, t + 1)]
            assert row["U"] == pytest.approx(u, abs=1e-9)
            marginal = float(np.asarray(G)[t, :].sum() if i == 0 else np.asarray(G)[:, t].sum())
            assert row["prob"] == pytest.approx(marginal, abs=1e-12)
            ex = sum(w[o] * x[(i + 1,) + tuple(k + 1 for k in _prof(i, t, o))] for o in range(m))
            assert row["E[x]"] == pytest.approx(ex, abs=1e-9)


def test_independent_prior_written_as_joint_gives_myerson_not_full_extraction():
    """A product prior has no correlation to exploit: the revenue is Myerson's, below E[max]."""
    f = [0.2, 0.5, 0.3]
    vals = [1, 2, 3]
    G = np.outer(f, f).tolist()
    r = mechdsl.loads(CM, data={"m": 3, "g": G}).solve()
    assert r.status == "optimal" and r.verification.ok
    want = myerson_revenue(vals, f, 2)
    assert r.objective == pytest.approx(want, abs=1e-7)
    assert r.objective == pytest.approx(cm_lp(vals, G), abs=1e-7)
    assert r.objective < e_max(vals, G) - 0.05


JOINT_EXPR = """\
set N = 1..2;
set V = 1..3;
param val[k in V] = [1, 2.5, 4];
param g[w in V^N] >= 0;
type v[i in N] in V ~ g;
param top = E[v](max{i in N} val[v[i]]);
param m2[t in V] = E[v | v[1] == t](val[v[2]]);
param m1[t in V] = E[v | v[2] == t](val[v[1]] * val[v[2]]);
param diag = E[v | v[1] == v[2]](val[v[1]]);
param below = E[v](if v[1] < v[2] then 1 else 0);
"""
G3 = [["0.1", "0.05", "0.05"], ["0.05", "0.2", "0.05"], ["0.1", "0.1", "0.3"]]


def _joint_reference():
    G = {(a + 1, b + 1): Fraction(G3[a][b]) for a in range(3) for b in range(3)}
    val = {1: Fraction(1), 2: Fraction(5, 2), 3: Fraction(4)}

    def E(f, cond=lambda s: True):
        num = sum(G[s] * f(s) for s in G if cond(s))
        den = sum(G[s] for s in G if cond(s))
        return num / den

    return {
        "top": E(lambda s: max(val[s[0]], val[s[1]])),
        "m2": {(t,): E(lambda s: val[s[1]], lambda s, t=t: s[0] == t) for t in (1, 2, 3)},
        "m1": {(t,): E(lambda s: val[s[0]] * val[s[1]], lambda s, t=t: s[1] == t) for t in (1, 2, 3)},
        "diag": E(lambda s: val[s[0]], lambda s: s[0] == s[1]),
        "below": E(lambda s: 1 if s[0] < s[1] else 0),
    }


@pytest.mark.parametrize("form", ["nested", "dict", "toml"])
def test_joint_prior_expectations_and_conditional_expectations(form, tmp_path):
    nested = [[float(x) for x in row] for row in G3]
    if form == "nested":
        data = {"g": nested}
    elif form == "dict":
        data = {"g": {f"{a + 1},{b + 1}": nested[a][b] for a in range(3) for b in range(3)}}
    else:
        path = tmp_path / "g.toml"
        path.write_text("g = [" + ", ".join("[" + ", ".join(row) + "]" for row in G3) + "]\n")
        data = path
    r = mechdsl.loads(JOINT_EXPR, data=data).solve()
    assert r.status == "evaluated"
    ref = _joint_reference()
    p = r.parameters
    assert p["g"] == {(a + 1, b + 1): pytest.approx(nested[a][b]) for a in range(3) for b in range(3)}
    for name in ("top", "diag", "below"):
        assert p[name] == pytest.approx(float(ref[name]), abs=1e-12), name
    for name in ("m1", "m2"):
        assert set(p[name]) == set(ref[name])
        for k, want in ref[name].items():
            assert p[name][k] == pytest.approx(float(want), abs=1e-12), (name, k)


def test_joint_prior_with_the_others_expectation_is_a_located_error():
    src = CM.replace("E[v | v[i] == t]", "E[v[-i]]")
    with pytest.raises(MechError) as ei:
        mechdsl.loads(src, "cm.mech", data={"g": CM_PRIORS["2x2"]}).solve()
    msg = str(ei.value)
    assert "joint" in msg and "E[v | v[i] == t]" in msg
    line = next(k for k, ln in enumerate(src.splitlines(), 1) if ln.startswith("ic IC"))
    assert re.search(rf"cm\.mech:{line}:\d+: error:", msg), msg
    assert "^" in msg


@pytest.mark.parametrize("g, needle", [([[0.4, 0.1], [0.1, 0.3]], "sums to 0.9"),
                                       ([0.4, 0.1, 0.1, 0.4], "wrong shape")])
def test_joint_prior_data_errors(g, needle):
    with pytest.raises(MechError) as ei:
        mechdsl.loads(CM, "cm.mech", data={"g": g}).solve()
    assert needle in str(ei.value)


def test_compile_explain_correlated_types_keeps_all_pairs(tmp_path):
    spec = tmp_path / "cm.mech"
    spec.write_text(CM.replace("param m integer = 2;", "param m integer = 3;"))
    data = tmp_path / "cm.toml"
    data.write_text("g = [[0.2, 0.05, 0.05], [0.05, 0.2, 0.05], [0.05, 0.05, 0.3]]\n")
    code, out, err = run_cli("compile", spec, "--data", data, "--explain")
    assert code == 0, err
    assert "not applied local_ic" in out
    assert "conditional expectation" in out and "single crossing is not proved" in out
    assert "incentive and participation constraints (as declared)" in out
    assert "IC: interim IC (BIC)" in out and "IR: interim IR" in out
    n, m = 2, 3
    row = re.search(r"^\s*ic\s+(\d+)\s+(\d+)\s*$", out, re.M)
    assert row and int(row.group(1)) == int(row.group(2)) == n * m * (m - 1)  # nothing dropped
    row = re.search(r"^\s*ir\s+(\d+)\s+(\d+)\s*$", out, re.M)
    assert row and int(row.group(1)) == int(row.group(2)) == n * m


# ================================================================== 2. labels
LAB = """\
set A = 1..3;
set X = {build, skip, rent};
param u[i in A, x in X] = if x == build then 10 * i else (if x == rent then 4 * i else 0);
param cost[x in X] = [50, 0, 20];
param net[x in X] = sum{i in A} u[i, x] - cost[x];
param nb = sum{x in X: x != build} 1;
var y[x in X] >= 0, <= 1;
var z[x in X, i in A: x == rent or i == 1] >= 0, <= i;
constraint One: sum{x in X} y[x] == 1;
constraint Lnk[x in X, i in A: x == rent or i == 1]: z[x, i] <= 2 * y[x];
maximize sum{x in X} net[x] * y[x]
       + sum{x in X, i in A: x == rent or i == 1} (if x == skip then 0.5 else 0.1) * z[x, i];
report pick = argmax{x in X} y[x];
report best = argmax{x in X} net[x];
report worst = argmin{x in X: x != skip} net[x];
report w[x in X] = net[x] * y[x];
report agree = if argmax{x in X} y[x] == rent then 1 else 0;
"""
XS = ["build", "skip", "rent"]


def _lab_reference(cost):
    u = {(i, x): (10 * i if x == "build" else 4 * i if x == "rent" else 0) for i in (1, 2, 3) for x in XS}
    net = {x: sum(u[i, x] for i in (1, 2, 3)) - cost[x] for x in XS}
    zkeys = [(x, i) for x in XS for i in (1, 2, 3) if x == "rent" or i == 1]
    cols = [("y", x) for x in XS] + [("z",) + k for k in zkeys]
    c = [net[x] for x in XS] + [0.5 if x == "skip" else 0.1 for x, _ in zkeys]
    A, b = [], []
    for k, (x, i) in enumerate(zkeys):
        row = np.zeros(len(cols))
        row[3 + k], row[XS.index(x)] = 1, -2
        A.append(row), b.append(0)
    res = linprog(-np.array(c, float), A_ub=A, b_ub=b, A_eq=[[1, 1, 1] + [0] * len(zkeys)], b_eq=[1],
                  bounds=[(0, 1)] * 3 + [(0, i) for _, i in zkeys], method="highs")
    assert res.status == 0
    return u, net, -res.fun, dict(zip(cols, res.x))


@pytest.mark.parametrize("cost", [{"build": 50, "skip": 0, "rent": 20}, {"build": 70, "skip": 0, "rent": 30},
                                  {"build": 0, "skip": 0, "rent": 40}])
def test_labels_as_indices_filters_conditionals_and_argmax(cost):
    r = mechdsl.loads(LAB, data={"cost": cost}).solve()
    assert r.status == "optimal" and r.verification.ok
    u, net, opt, sol = _lab_reference(cost)
    p = r.parameters
    assert p["u"] == {(i, x): u[i, x] for i in (1, 2, 3) for x in XS}
    assert p["cost"] == {(x,): cost[x] for x in XS}
    assert p["net"] == {(x,): net[x] for x in XS}
    assert p["nb"] == sum(1 for x in XS if x != "build")
    assert r.objective == pytest.approx(opt, abs=1e-7)
    y = {k[0]: v for k, v in r.variables["y"].items()}
    assert set(y) == set(XS)
    for x in XS:
        assert y[x] == pytest.approx(sol[("y", x)], abs=1e-7)
    assert set(r.variables["z"]) == {(x, i) for x in XS for i in (1, 2, 3) if x == "rent" or i == 1}
    rep = r.reports
    best_y = max(XS, key=lambda x: (y[x], -XS.index(x)))
    assert rep["pick"][()] == best_y and isinstance(rep["pick"][()], str)
    assert rep["best"][()] == max(XS, key=lambda x: (net[x], -XS.index(x)))
    assert rep["worst"][()] == min((x for x in XS if x != "skip"), key=lambda x: (net[x], XS.index(x)))
    assert rep["w"] == {(x,): pytest.approx(net[x] * y[x], abs=1e-7) for x in XS}
    assert rep["agree"][()] == (1 if best_y == "rent" else 0)


LAB_CLI = """\
set A = 1..3;
set X = {build, skip};
param u[i in A, x in X] = if x == build then 10 * i else 0;
param cost[x in X] = if x == build then 50 else 0;
report xstar = argmax{x in X} (sum{i in A} u[i, x] - cost[x]);
report w[x in X] = sum{i in A} u[i, x] - cost[x];
var y[x in X] >= 0, <= 1;
constraint One: sum{x in X} y[x] == 1;
maximize sum{x in X} (sum{i in A} u[i, x] - cost[x]) * y[x];
"""


@pytest.mark.parametrize("cost, how", [((70, 0), "cli"), ((0, 25), "api")])
def test_labels_from_a_toml_data_file_and_as_json_strings(tmp_path, cost, how):
    spec = tmp_path / "lab.mech"
    spec.write_text(LAB_CLI)
    data = tmp_path / "lab.toml"
    data.write_text(f"cost = {{build = {cost[0]}, skip = {cost[1]}}}\n")
    if how == "cli":
        code, out, err = run_cli("solve", spec, "--data", data, "--json")
        assert code == 0, err
        doc = json.loads(out)
    else:
        doc = json.loads(mechdsl.load(spec, data=data).solve().to_json())
    w = {"build": 10 + 20 + 30 - cost[0], "skip": 0 - cost[1]}
    assert doc["status"] == "optimal"
    assert doc["objective"] == pytest.approx(max(w.values()), abs=1e-9)
    assert doc["parameters"]["cost"] == {"build": cost[0], "skip": cost[1]}
    assert doc["reports"]["w"] == w
    assert doc["reports"]["xstar"] == {"": max(w, key=w.get)}
    assert doc["variables"]["y"] == {x: pytest.approx(1.0 if x == max(w, key=w.get) else 0.0, abs=1e-9)
                                     for x in w}


def test_label_misuse_is_a_located_error(tmp_path):
    # a label in arithmetic and '<' on labels: both reported by one `check`, each located, exit 2
    spec = tmp_path / "bad.mech"
    text = "set X = {a, b};\nparam p[x in X] = x + 1;\nparam q[x in X: x < a] = 1;\n"
    spec.write_text(text)
    code, _, err = run_cli("check", spec)
    assert code == 2
    assert_located(err, spec, text, 2, col_of(text, 2, "x + 1"))
    assert_located(err, spec, text, 3, col_of(text, 3, "x < a"))
    assert "but this is a label" in err and "== and !=" in err
    assert "2 errors" in err
    # a key of a data file that is not in the label set: located at the key in the data file
    spec = tmp_path / "lab.mech"
    spec.write_text(LAB_CLI)
    data = tmp_path / "bad.toml"
    dtext = "cost = {build = 70, sikp = 0}\n"
    data.write_text(dtext)
    code, _, err = run_cli("solve", spec, "--data", data)
    assert code == 2
    assert_located(err, data, dtext, 1, 1)
    assert "sikp" in err and "outside its index set" in err


# ================================================================== 3. auxiliary problems
TIE = """\
param c[k in 1..4] = [2, 2, 2, 1];
param d[k in 1..4];
aux T {
  var y[k in 1..4] >= 0, <= 1;
  constraint Cap: sum{k in 1..4} y[k] <= 2;
  maximize sum{k in 1..4} c[k] * y[k];
  tiebreak SENSE sum{k in 1..4} d[k] * y[k];
}
aux P {
  var y[k in 1..4] >= 0, <= 1;
  constraint Cap: sum{k in 1..4} y[k] <= 2;
  maximize sum{k in 1..4} c[k] * y[k];
}
report y[k in 1..4] = T.y[k];
report z = T.objective;
report tb = sum{k in 1..4} d[k] * T.y[k];
report zp = P.objective;
"""


@pytest.mark.parametrize("sense, d", [("minimize", [3, 1, 2, 0.5]), ("maximize", [1, 0.3, -1, 1.2]),
                                      ("minimize", [-1, -2, 0.7, -1.5]), ("maximize", [0.2, 0.9, 0.4, 0])])
def test_tiebreak_is_lexicographic_over_the_optimal_face(sense, d):
    c = [2, 2, 2, 1]
    r = mechdsl.loads(TIE.replace("SENSE", sense), data={"d": d}).solve()
    assert r.status == "evaluated"
    # two-stage reference: the primary optimum, then the tie-break over {primary = optimum}
    s1 = linprog(-np.array(c, float), A_ub=[[1, 1, 1, 1]], b_ub=[2], bounds=[(0, 1)] * 4, method="highs")
    z = -s1.fun
    sgn = 1 if sense == "minimize" else -1
    s2 = linprog(sgn * np.array(d, float), A_ub=[[1, 1, 1, 1]], b_ub=[2], A_eq=[c], b_eq=[z],
                 bounds=[(0, 1)] * 4, method="highs")
    assert s1.status == 0 and s2.status == 0
    tb = sgn * s2.fun
    # brute force over the face's vertices: y4 = 0 and two of y1..y3 at 1 (the face is their hull)
    verts = [tuple(1 if k in pair else 0 for k in range(4)) for pair in itertools.combinations(range(3), 2)]
    assert all(np.dot(c, v) == z for v in verts)
    brute = [np.dot(d, v) for v in verts]
    assert tb == pytest.approx(min(brute) if sense == "minimize" else max(brute), abs=1e-9)
    assert sorted(brute).count(tb) == 1  # a unique lexicographic optimum (so y is determined)
    rep = r.reports
    assert rep["z"][()] == pytest.approx(z, abs=1e-9) and rep["zp"][()] == pytest.approx(z, abs=1e-9)
    y = [rep["y"][(k,)] for k in (1, 2, 3, 4)]
    assert np.dot(c, y) == pytest.approx(z, abs=1e-6)  # still optimal for the primary
    assert rep["tb"][()] == pytest.approx(tb, abs=1e-6)
    assert y == pytest.approx(list(s2.x), abs=1e-6)
    assert "tiebreak" in r.aux["T"] and "tiebreak" not in r.aux["P"]


PROFILE_AUX = """\
param n integer = 2;
set N = 1..n;
set T = 1..3;
param c[k in T] = [1, 2.5, 4];
param q[i in N] = [1, 0.8];
param g[w in T^N] >= 0;
type th[i in N] in T ~ g;
aux A[w in T^N] {
  var x[i in N] >= 0, <= 1;
  constraint Cap: sum{i in N} x[i] <= 1;
  constraint Q[i in N]: x[i] <= q[i];
  maximize sum{i in N} c[w[i]] * x[i] - 0.1 * x[2];
}
param val = E[th](A[th].objective);
report at[w in T^N] = A[w].objective;
report cond[t in T] = E[th | th[1] == t](A[th].objective);
report share[w in T^N] = A[w].x[1];
"""


def _profile_aux_reference(G):
    c, q = [1, 2.5, 4], [1, 0.8]
    at, share = {}, {}
    for w in itertools.product((1, 2, 3), repeat=2):
        obj = np.array([c[w[0] - 1], c[w[1] - 1] - 0.1])
        s = linprog(-obj, A_ub=[[1, 1]], b_ub=[1], bounds=[(0, q[0]), (0, q[1])], method="highs")
        assert s.status == 0
        at[w], share[w] = -s.fun, s.x[0]
    val = sum(G[w[0] - 1][w[1] - 1] * at[w] for w in at)
    cond = {t: sum(G[t - 1][b - 1] * at[(t, b)] for b in (1, 2, 3)) / sum(G[t - 1]) for t in (1, 2, 3)}
    return at, share, val, cond


def test_aux_indexed_by_profiles_inside_expectations():
    G = [[float(x) for x in row] for row in G3]
    r = mechdsl.loads(PROFILE_AUX, data={"g": G}).solve()
    assert r.status == "evaluated"
    at, share, val, cond = _profile_aux_reference(G)
    assert r.parameters["val"] == pytest.approx(val, abs=1e-9)
    assert r.reports["at"] == {w: pytest.approx(at[w], abs=1e-9) for w in at}
    assert r.reports["cond"] == {(t,): pytest.approx(cond[t], abs=1e-9) for t in cond}
    # x[1] is unique at every profile (c differs or q caps), except where c[w1] = c[w2] - 0.1: never here
    assert r.reports["share"] == {w: pytest.approx(share[w], abs=1e-7) for w in share}


def test_profile_params_from_nested_toml_arrays_and_profile_report_keys_in_json(tmp_path):
    spec = tmp_path / "pa.mech"
    spec.write_text(PROFILE_AUX)
    data = tmp_path / "pa.toml"
    data.write_text("g = [" + ", ".join("[" + ", ".join(row) + "]" for row in G3) + "]\n")
    code, out, err = run_cli("solve", spec, "--data", data, "--json")
    assert code == 0, err
    doc = json.loads(out)
    G = [[float(x) for x in row] for row in G3]
    at, share, val, cond = _profile_aux_reference(G)
    assert doc["parameters"]["g"] == {f"{a},{b}": pytest.approx(G[a - 1][b - 1])
                                      for a in (1, 2, 3) for b in (1, 2, 3)}
    assert doc["parameters"]["val"] == {"": pytest.approx(val, abs=1e-9)}
    assert doc["reports"]["at"] == {f"{a},{b}": pytest.approx(at[(a, b)], abs=1e-9) for a, b in at}
    assert doc["reports"]["cond"] == {str(t): pytest.approx(cond[t], abs=1e-9) for t in cond}


FAMILY = """\
param R integer = 500;
param c[r in 1..R, k in 1..3];
param w[r in 1..R, k in 1..3];
param cap[r in 1..R];
aux A[r in 1..R] {
  var y[k in 1..3] >= 0, <= 1;
  constraint Cap: sum{k in 1..3} w[r, k] * y[k] <= cap[r];
  maximize sum{k in 1..3} c[r, k] * y[k];
}
report tot = sum{r in 1..R} A[r].objective;
report y[r in 1..R, k in 1..3: mod(r, 97) == 3] = A[r].y[k];
"""


def test_a_family_of_500_lp_aux_problems_matches_linprog():
    R = 500
    rng = np.random.default_rng(7)
    C = rng.uniform(0.5, 3, (R, 3)).round(3)
    W = rng.uniform(0.5, 2, (R, 3)).round(3)
    B = rng.uniform(0.5, 3, R).round(3)
    r = mechdsl.loads(FAMILY, data={"c": C.tolist(), "w": W.tolist(), "cap": B.tolist()}).solve()
    assert r.status == "evaluated"
    refs = [linprog(-C[i], A_ub=[W[i]], b_ub=[B[i]], bounds=[(0, 1)] * 3, method="highs") for i in range(R)]
    assert all(s.status == 0 for s in refs)
    assert len([k for k in r.aux if k.startswith("A[")]) == R
    for i in range(R):
        assert r.aux[f"A[{i + 1}]"]["objective"] == pytest.approx(-refs[i].fun, abs=1e-8)
    assert r.reports["tot"][()] == pytest.approx(sum(-s.fun for s in refs), abs=1e-6)
    sampled = [i for i in range(1, R + 1) if i % 97 == 3]
    assert len(sampled) == 6
    assert set(r.reports["y"]) == {(i, k) for i in sampled for k in (1, 2, 3)}
    for i in sampled:
        # the ratio test picks a unique LP optimum for generic data: the solutions must agree
        for k in (1, 2, 3):
            assert r.reports["y"][(i, k)] == pytest.approx(refs[i - 1].x[k - 1], abs=1e-7)


NONCONVEX = """\
aux Q { var x >= 0, <= 1; maximize x^2 - 0.5 * x; }
aux M { var x >= 0, <= 1; minimize -(x - 0.3)^2 + 0.1 * x; }
param best = Q.objective;
param arg = Q.x;
param low = M.objective;
param argl = M.x;
"""


def test_nonconvex_qp_aux_finds_the_global_optimum():
    r = mechdsl.loads(NONCONVEX).solve()
    grid = np.linspace(0, 1, 100001)
    f = grid ** 2 - 0.5 * grid
    h = -(grid - 0.3) ** 2 + 0.1 * grid
    assert float(f.max()) == pytest.approx(0.5, abs=1e-12) and grid[f.argmax()] == 1.0
    assert r.parameters["best"] == pytest.approx(float(f.max()), abs=1e-7)
    assert r.parameters["arg"] == pytest.approx(float(grid[f.argmax()]), abs=1e-6)
    assert r.parameters["low"] == pytest.approx(float(h.min()), abs=1e-7)
    assert r.parameters["argl"] == pytest.approx(float(grid[h.argmin()]), abs=1e-6)


LPAUX = """\
param c[k in 1..4] = [3, 1, 4, 1.5];
param a[j in 1..2, k in 1..4] = [[1, 2, 3, 1], [2, 1, 1, 3]];
param b[j in 1..2] = [4, 5];
aux L {
  var y[k in 1..4] >= 0, <= 2;
  constraint C[j in 1..2]: sum{k in 1..4} a[j, k] * y[k] <= b[j];
  maximize sum{k in 1..4} c[k] * y[k];
}
param v = L.objective;
"""


def test_lp_aux_forced_through_ipopt_gives_the_same_objective():
    ref = linprog(-np.array([3, 1, 4, 1.5]), A_ub=[[1, 2, 3, 1], [2, 1, 1, 3]], b_ub=[4, 5],
                  bounds=[(0, 2)] * 4, method="highs")
    assert ref.status == 0
    default = mechdsl.loads(LPAUX).solve()
    forced = mechdsl.loads(LPAUX).solve(solver="ipopt")
    assert default.aux["L"]["solver"] == "HiGHS"
    assert "ipopt" in forced.aux["L"]["solver"].lower()
    assert default.parameters["v"] == pytest.approx(-ref.fun, abs=1e-9)
    assert forced.parameters["v"] == pytest.approx(-ref.fun, abs=1e-6)


# ================================================================== 4. roles, per-agent verification
def _by_agent(fams, name):
    fam = next(f for f in fams if f["name"] == name)
    return fam, {str(k): v for k, v in fam["by_agent"].items()}


def _interim_violations(x, p, vals, f, n):
    """Per agent: the largest interim BIC regret and interim IR shortfall (clipped at 0), independent prior f."""
    m = len(vals)
    ic, ir = {}, {}
    for i in range(1, n + 1):
        def U(t, rep):
            tot = 0.0
            for others in itertools.product(range(1, m + 1), repeat=n - 1):
                prof = list(others[:i - 1]) + [rep] + list(others[i - 1:])
                w = np.prod([f[o - 1] for o in others])
                key = ",".join(map(str, [i] + prof))
                tot += w * (vals[t - 1] * x[key] - p[key])
            return tot
        u = {(t, rep): U(t, rep) for t in range(1, m + 1) for rep in range(1, m + 1)}
        ic[str(i)] = max(0.0, max(u[t, rep] - u[t, t] for t in range(1, m + 1) for rep in range(1, m + 1)
                                  if rep != t))
        ir[str(i)] = max(0.0, max(-u[t, t] for t in range(1, m + 1)))
    return ic, ir


def _expost_violations(x, p, vals, n, key=lambda i, s: ",".join(map(str, (i,) + s))):
    m = len(vals)
    ic, ir = {}, {}
    for i in range(1, n + 1):
        worst_ic, worst_ir = 0.0, 0.0
        for s in itertools.product(range(1, m + 1), repeat=n):
            t = s[i - 1]
            truth = vals[t - 1] * x[key(i, s)] - p[key(i, s)]
            worst_ir = max(worst_ir, -truth)
            for rep in range(1, m + 1):
                if rep != t:
                    s2 = s[:i - 1] + (rep,) + s[i:]
                    worst_ic = max(worst_ic, vals[t - 1] * x[key(i, s2)] - p[key(i, s2)] - truth)
        ic[str(i)], ir[str(i)] = worst_ic, worst_ir
    return ic, ir


def test_bic_auction_json_families_per_agent():
    code, out, err = run_cli("solve", SPECS / "auction_bic.mech", "--json")
    assert code == 0, err
    doc = json.loads(out)
    n, m = 2, 10
    assert doc["objective"] == pytest.approx(myerson_revenue(list(range(1, 11)), [0.1] * 10, 2), abs=1e-7)
    fams = doc["verification"]["families"]
    ic, ic_agents = _by_agent(fams, "IC")
    ir, ir_agents = _by_agent(fams, "IR")
    assert ic["kind"] == "ic" and ic["role"] == "interim IC (BIC), agent i" and ic["rows"] == n * m * (m - 1)
    assert ir["kind"] == "ir" and ir["role"] == "interim IR, agent i" and ir["rows"] == n * m
    assert set(ic_agents) == set(ir_agents) == {"1", "2"}
    my_ic, my_ir = _interim_violations(doc["variables"]["x"], doc["variables"]["p"], list(range(1, 11)),
                                       [0.1] * 10, n)
    for a in ("1", "2"):
        assert ic_agents[a] <= 1e-6 and ir_agents[a] <= 1e-6
        assert ic_agents[a] == pytest.approx(my_ic[a], abs=1e-9)
        assert ir_agents[a] == pytest.approx(my_ir[a], abs=1e-9)
    assert ic["max_violation"] == pytest.approx(max(ic_agents.values()), abs=1e-15)


def test_dsic_auction_json_role_is_ex_post():
    doc = json.loads(mechdsl.load(SPECS / "auction_dsic.mech", overrides={"m": 4}).solve().to_json())
    n, m = 2, 4
    assert doc["objective"] == pytest.approx(myerson_revenue([1, 2, 3, 4], [0.25] * 4, 2), abs=1e-7)
    fams = doc["verification"]["families"]
    ic, ic_agents = _by_agent(fams, "IC")
    ir, ir_agents = _by_agent(fams, "IR")
    assert ic["role"] == "ex post IC (DSIC), agent i" and ic["rows"] == n * m ** n * (m - 1)
    assert ir["role"].startswith("ex post IR") and ir["rows"] == n * m ** n
    my_ic, my_ir = _expost_violations(doc["variables"]["x"], doc["variables"]["p"], [1, 2, 3, 4], n)
    for a in ("1", "2"):
        assert ic_agents[a] <= 1e-6 and ir_agents[a] <= 1e-6
        assert ic_agents[a] == pytest.approx(my_ic[a], abs=1e-9)
        assert ir_agents[a] == pytest.approx(my_ir[a], abs=1e-9)


def test_screening_json_role_between_types():
    doc = json.loads(mechdsl.load(SPECS / "screening.mech").solve().to_json())
    K = 10
    # Mussa-Rosen, uniform discrete: phi_k = theta_k - (K - k)/K * (1/K) / (1/K) = (2k - K)/K, q = max(0, phi)
    phi = [Fraction(2 * k - K, K) for k in range(1, K + 1)]
    assert doc["objective"] == pytest.approx(float(sum(max(0, f) ** 2 / 2 for f in phi) / K), abs=1e-7)
    fams = doc["verification"]["families"]
    ic, ic_agents = _by_agent(fams, "IC")
    assert ic["role"] == "IC between types" and ic["rows"] == K * (K - 1) and ic_agents == {}
    q = {int(k): v for k, v in doc["variables"]["q"].items()}
    p = {int(k): v for k, v in doc["variables"]["p"].items()}
    u = {(t, r): t / K * q[r] - p[r] for t in q for r in q}
    regret = max(0.0, max(u[t, r] - u[t, t] for t, r in u if t != r))
    assert ic["max_violation"] == pytest.approx(regret, abs=1e-9)


CHECKED = (SPECS / "auction_bic.mech").read_text() + """
utility W(i, t, w) = val[t] * x[i, w] - p[i, w];
check ic EP[i in N, v in V^N, r in V: r != v[i]]: W(i, v[i], v) >= W(i, v[i], (r, v[-i]));
check ir EPIR[i in N, v in V^N]: W(i, v[i], v) >= 0;
"""


def test_per_agent_violations_of_checked_ex_post_families():
    """A BIC optimum measured against DSIC (check: verified, not imposed): nonzero, per agent, as computed here."""
    vals, f = [1, 2, 3], [0.2, 0.5, 0.3]
    r = mechdsl.loads(CHECKED, data={"m": 3, "f": f}).solve()
    assert r.status == "optimal"
    assert r.objective == pytest.approx(myerson_revenue(vals, f, 2), abs=1e-7)
    fams = r.verification.families
    ep, ep_agents = _by_agent(fams, "EP")
    epir, epir_agents = _by_agent(fams, "EPIR")
    assert ep["role"] == "ex post IC (DSIC), agent i" and epir["role"].startswith("ex post IR")
    x = {",".join(map(str, k)): v for k, v in r.variables["x"].items()}
    p = {",".join(map(str, k)): v for k, v in r.variables["p"].items()}
    my_ic, my_ir = _expost_violations(x, p, vals, 2)
    for a in ("1", "2"):
        assert ep_agents[a] == pytest.approx(my_ic[a], abs=1e-9)
        assert epir_agents[a] == pytest.approx(my_ir[a], abs=1e-9)
    my_bic, my_iir = _interim_violations(x, p, vals, f, 2)
    _, bic_agents = _by_agent(fams, "IC")
    for a in ("1", "2"):
        assert bic_agents[a] == pytest.approx(my_bic[a], abs=1e-9) and bic_agents[a] <= 1e-6
    # the overall figures are the worst over both families; ok iff the checked rows hold too
    regret = max(max(my_ic.values()), max(my_bic.values()))
    short = max(max(my_ir.values()), max(my_iir.values()))
    assert r.verification.max_regret == pytest.approx(regret, abs=1e-9)
    assert r.verification.max_ir_violation == pytest.approx(short, abs=1e-9)
    assert r.verification.ok is (max(regret, short) <= 1e-6)


# ================================================================== 5. empty index sets, no variables
@pytest.mark.parametrize("src, want", [
    ("var y[j in 1..0] >= 0, <= j;\nmaximize 1 + sum{j in 1..0} y[j];", 1.0),
    ("param a = 2;\nminimize a^2 + 3;", 2 ** 2 + 3),
    ("param K integer = 0;\nvar y[j in 1..K] >= 0, <= j;\nvar z >= 0, <= 2;\n"
     "constraint C[j in 1..K]: y[j] >= 5;\nmaximize 3 * z + 7 + sum{j in 1..K} y[j];", 3 * 2 + 7),
])
def test_empty_variable_families_and_problems_without_variables(src, want):
    r = mechdsl.loads(src).solve()
    assert r.status == "optimal" and r.verification.ok
    assert r.objective == pytest.approx(want, abs=1e-9)
    if "y[j" in src:
        assert r.variables["y"] == {}

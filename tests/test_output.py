"""Complete output (issue 11, part 4) and notebooks (part 6).

``solve --json`` carries the menu (binding rows and their shadow prices), notes, timings, the solver
message, the versions, the spec's hash and the inputs; ``--output``, ``--csv``, truncated cells and
elided menus in text; short reprs, ``_repr_html_`` and ``to_pandas``.  The numbers are checked against
independent computations: hashes of the files, package metadata, and the LP re-solved by hand with
scipy (objective, feasibility of the menu, and every shadow price between the one-sided derivatives of
the optimal value -- the set of optimal duals of a degenerate LP, row by row).
"""
from __future__ import annotations

import csv
import hashlib
import importlib.metadata as metadata
import io
import json
import platform
import re
import sys

import numpy as np
import pytest
from scipy.optimize import linprog

import mechdsl
from mechdsl import cli
from mechdsl.errors import MechError

from conftest import SPECS

LP = """\
param K integer >= 2 = 3;
param v[k in 1..K] = [1, 2, 3];
param prob[k in 1..K] = [0.35, 0.3, 0.35];
param alpha = 2.5;
param cap = 10;
type t in 1..K ~ prob;
var x[k in 1..K] >= 0, <= cap;
var p[k in 1..K] >= 0;
utility U(a, r) = p[r] - v[a] * x[r];
ic IC[a in 1..K, r in 1..K: a != r]: U(a, a) >= U(a, r);
ir IR[a in 1..K]: U(a, a) >= 0;
budget Pay: E[t](p[t]) <= 8;
maximize Profit: E[t](alpha * x[t] - p[t]);
"""


def run(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def lp_spec(tmp_path):
    path = tmp_path / "lp.mech"
    path.write_text(LP)
    return path


# ----------------------------------------------------------------------------- the LP by hand (scipy)

def hand_lp(v, prob, alpha, cap, budget):
    """The spec's LP written out: z = (x_1..x_K, p_1..p_K); constraints g(z) >= 0 by id."""
    K = len(v)
    rows = {}
    for a in range(K):
        for r in range(K):
            if a != r:  # U(a,a) - U(a,r) = p_a - v_a x_a - p_r + v_a x_r >= 0
                g = np.zeros(2 * K)
                g[K + a] += 1
                g[a] -= v[a]
                g[K + r] -= 1
                g[r] += v[a]
                rows[f"IC[{a + 1}->{r + 1}]"] = (g, 0.0)
        g = np.zeros(2 * K)
        g[K + a], g[a] = 1, -v[a]
        rows[f"IR[{a + 1}]"] = (g, 0.0)
    g = np.zeros(2 * K)
    g[K:] = -np.asarray(prob)
    rows["Pay"] = (g, -budget)  # budget - E[p] >= 0  <=>  g @ z >= -budget
    c = -np.concatenate([alpha * np.asarray(prob), -np.asarray(prob)])  # maximise -> minimise the negative
    bounds = [(0, cap)] * K + [(0, None)] * K
    return rows, c, bounds


def lp_value(rows, c, bounds, relax=None):
    """The optimal value (spec sense, maximised) with row ``relax = (id, s)`` relaxed to g @ z >= rhs - s."""
    A, b = [], []
    for cid, (g, rhs) in rows.items():
        s = relax[1] if relax is not None and relax[0] == cid else 0.0
        A.append(-g)
        b.append(-(rhs - s))
    res = linprog(c, A_ub=np.array(A), b_ub=np.array(b), bounds=bounds, method="highs")
    return -res.fun if res.status == 0 else (-np.inf if res.status == 2 else None)


def test_json_menu_prices_and_objective_against_scipy(capsys, lp_spec):
    code, out, err = run(capsys, "solve", lp_spec, "--json", "--no-reduce")
    assert code == 0, err
    doc = json.loads(out)
    rows, c, bounds = hand_lp([1, 2, 3], [0.35, 0.3, 0.35], 2.5, 10, 8)
    best = lp_value(rows, c, bounds)
    assert doc["objective"] == pytest.approx(best, abs=1e-9)
    # The menu is the solution: feasible for the LP written by hand, and optimal
    menu = doc["menu"]
    assert [r["type"] for r in menu] == ["1", "2", "3"]
    z = np.array([r["x"] for r in menu] + [r["p"] for r in menu])
    for cid, (g, rhs) in rows.items():
        assert g @ z >= rhs - 1e-9, cid
    assert -c @ z == pytest.approx(best, abs=1e-9)
    for r, vk in zip(menu, [1, 2, 3]):
        assert r["U"] == pytest.approx(r["p"] - vk * r["x"], abs=1e-12)
    # binding ids: exactly the rows with zero slack, per type (IC/IR/budget rows of that true type)
    for k, r in enumerate(menu, 1):
        expect = sorted(cid for cid, (g, rhs) in rows.items()
                        if abs(g @ z - rhs) <= 1e-9 and re.match(rf"(IC\[{k}->|IR\[{k}\])", cid))
        assert sorted(r["binding"]) == expect
    # every shadow price lies between the one-sided derivatives of the optimal value in that row's rhs
    d = 1e-4
    priced = 0
    for r in menu:
        for cid, price in r["prices"].items():
            up = (lp_value(rows, c, bounds, (cid, d)) - best) / d
            down = (best - lp_value(rows, c, bounds, (cid, -d))) / d
            assert up - 1e-6 <= price <= down + 1e-6, (cid, price, up, down)
            priced += 1
    assert priced >= 5
    # the duals table says the same as the menu's prices
    for r in menu:
        for cid, price in r["prices"].items():
            fam, key = cid.split("[")[0], cid.split("[")[1].rstrip("]").replace("->", ",")
            assert doc["duals"][fam][key] == pytest.approx(price, abs=1e-12)


def test_json_provenance(capsys, tmp_path, lp_spec):
    data = tmp_path / "d.toml"
    data.write_text("alpha = 3\ncap = 12\n")
    code, out, err = run(capsys, "solve", lp_spec, "--json", "--data", data, "--set", "K=3", "--set",
                         "v=[1,2,4]", "--tol", "1e-7")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["spec_sha256"] == hashlib.sha256(lp_spec.read_bytes()).hexdigest()
    inp = doc["inputs"]
    assert inp["spec"] == str(lp_spec)
    assert inp["data"] == {"path": str(data), "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}
    assert inp["overrides"] == ["K=3", "v=[1,2,4]"]
    assert inp["options"]["tol"] == 1e-7 and inp["options"]["reduce"] is True
    ver = doc["versions"]
    assert ver["python"] == platform.python_version()
    for dist in ("highspy", "pyomo", "casadi", "numpy", "scipy", "sympy"):
        assert ver[dist] == metadata.version(dist)
    assert ver["highs"] == metadata.version("highspy") and ver["ipopt"]
    assert ver["mechdsl"] in (mechdsl.__version__, metadata.version("mechdsl"))
    assert doc["message"].startswith("HiGHS")
    assert set(doc["timings"]) >= {"compile", "solve", "verify", "total"}
    assert all(isinstance(t, float) and t >= 0 for t in doc["timings"].values())
    assert doc["timings"]["total"] >= doc["timings"]["solve"]
    assert isinstance(doc["notes"], list) and doc["iis"] is None
    # the data and the overrides took effect, and integers stay integers in the JSON text
    assert doc["parameters"]["alpha"] == {"": 3} and doc["parameters"]["cap"] == {"": 12}
    assert '"K": {\n      "": 3\n    }' in out and doc["parameters"]["v"] == {"1": 1, "2": 2, "3": 4}
    assert all(type(x) is int for x in doc["parameters"]["v"].values())


def test_api_result_is_stamped_like_the_cli(lp_spec):
    res = mechdsl.load(lp_spec, overrides={"alpha": 2}).solve()
    assert res.spec_sha256 == hashlib.sha256(lp_spec.read_bytes()).hexdigest()
    assert res.inputs["overrides"] == {"alpha": 2} and res.inputs["data"] is None
    res2 = mechdsl.loads(LP, "mem.mech").solve()
    assert res2.spec_sha256 == hashlib.sha256(LP.encode()).hexdigest() and res2.inputs["spec"] == "mem.mech"


def test_output_and_csv_files(capsys, tmp_path, lp_spec):
    out_file, csv_file = tmp_path / "report.txt", tmp_path / "menu.csv"
    code, out, err = run(capsys, "solve", lp_spec, "--output", out_file, "--csv", csv_file, "--no-reduce")
    assert code == 0, err
    assert out == ""  # the report went to the file
    text = out_file.read_text()
    assert text.startswith("status: optimal") and "menu (one row per type):" in text
    res = mechdsl.load(lp_spec).solve(reduce=False)
    table = list(csv.DictReader(io.StringIO(csv_file.read_text())))
    assert [r["type"] for r in table] == ["1", "2", "3"]
    for got, want in zip(table, res.menu()):
        for col in ("prob", "x", "p", "U"):
            assert float(got[col]) == pytest.approx(want[col], abs=1e-12)
        assert got["binding"].split() == want["binding"]
        prices = dict(cell.split("=") for cell in got["prices"].split())
        assert {k: float(v) for k, v in prices.items()} == pytest.approx(want["prices"], abs=1e-12)
    # --json with --output: the one JSON object in the file, nothing on stdout
    json_file = tmp_path / "r.json"
    code, out, err = run(capsys, "solve", lp_spec, "--json", "-o", json_file)
    assert code == 0 and out == ""
    assert json.loads(json_file.read_text())["status"] == "optimal"


def test_long_cells_truncated_and_long_menus_elided(capsys):
    K = 60
    code, out, err = run(capsys, "solve", SPECS / "screening.mech", "--set", f"K={K}")
    assert code == 0, err
    res = mechdsl.load(SPECS / "screening.mech", overrides={"K": K}).solve()
    menu = res.menu()
    lines = out.splitlines()
    start = lines.index("menu (one row per type):") + 3
    body = []
    for line in lines[start:]:
        if not line.strip():
            break
        body.append(line)
    assert len(body) == 41  # 37 first rows, the gap line, the last 3 rows (cli.MENU_ROWS = 40)
    assert body[37].strip() == f"\u2026 {K - 40} more rows (--full shows all {K})"
    first = body[0]
    n = len(menu[0]["binding"])
    assert n > 4
    assert first.endswith(" ".join(menu[0]["binding"][:4]) + f" \u2026 +{n - 4} more")
    assert body[-1].split()[0] == str(K)
    code, out, err = run(capsys, "solve", SPECS / "screening.mech", "--set", f"K={K}", "--full")
    full = out.splitlines()
    start = full.index("menu (one row per type):") + 3
    assert all(full[start + i].split()[0] == str(i + 1) for i in range(K))
    assert full[start].endswith(" ".join(menu[0]["binding"]))
    assert "more rows" not in out and "more" not in full[start]


# ----------------------------------------------------------------------------- notebooks

def test_reprs_are_short_and_html_has_the_menu():
    K = 50
    model = mechdsl.load(SPECS / "screening.mech", overrides={"K": K})
    assert repr(model).startswith("<Model ") and len(repr(model)) < 300
    assert "maximize Profit" in repr(model) and "2 variable families" in repr(model)
    page = model._repr_html_()
    assert "<table>" in page and "ic IC" in page and "ir IR" in page
    res = model.solve()
    r = repr(res)
    assert len(r) < 300, r
    assert r.startswith("<Result status='optimal'") and "menu: 50 rows" in r and "verified" in r
    page = res._repr_html_()
    assert page.count("<tr>") == 1 + 30 + 1  # header, 30 rows shown (27 + 3), the gap row
    assert f"{K - 30} more rows" in page and "status <b>optimal</b>" in page
    assert f"{res.objective:.6g}" in page and "verification against the original constraints" in page
    assert "\u2026 +" in page  # long binding cells truncated there too


def test_to_pandas(lp_spec):
    pd = pytest.importorskip("pandas")
    res = mechdsl.load(lp_spec).solve(reduce=False)
    frames = res.to_pandas()
    assert set(frames) == {"menu", "variables", "reports", "duals"}
    menu = frames["menu"]
    assert isinstance(menu, pd.DataFrame) and list(menu["type"]) == ["1", "2", "3"]
    assert list(menu["x"]) == [r["x"] for r in res.menu()]
    var = frames["variables"]
    assert len(var) == sum(len(v) for v in res.variables.values()) == 6
    for _, row in var.iterrows():
        assert row["value"] == res.variables[row["variable"]][row["key"]]
    assert list(frames["duals"].columns) == ["family", "index", "key", "price"]
    ir = frames["duals"][frames["duals"]["family"] == "IR"]
    assert dict(zip(ir["index"], ir["price"])) == {",".join(map(str, k)): v for k, v in res.duals["IR"].items()}
    assert list(frames["reports"].columns) == ["report", "index", "key", "value"] and frames["reports"].empty


def test_to_pandas_without_pandas_says_how_to_install(monkeypatch, lp_spec):
    res = mechdsl.load(lp_spec).solve()
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(MechError, match=r"pip install 'mechdsl\[pandas\]'"):
        res.to_pandas()
    with pytest.raises(MechError, match="pandas"):
        res.menu(pandas=True)


def test_pandas_extra_declared():
    import tomllib
    from conftest import ROOT

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = meta["project"]["optional-dependencies"]
    assert any(d.startswith("pandas") for d in extras["pandas"])


def test_tutorial_notebook_runs():
    """docs/tutorial.ipynb executes top to bottom in a fresh kernel (nbclient), and says what it should."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from conftest import ROOT

    docs = ROOT / "docs"
    nb = nbformat.read(docs / "tutorial.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # committed without outputs
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(docs)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]

    def plain(cell):
        return "".join(o.get("data", {}).get("text/plain", "") + o.get("text", "") for o in cell.outputs)

    assert plain(code[0]).startswith("<Model '../specs/screening.mech'")
    html = "".join(o.get("data", {}).get("text/html", "") for o in code[1].outputs)
    assert "<table>" in html and "status <b>optimal</b>" in html
    # screening with K = 8 uniform types: the optimum 0.1171875 = 15/128 (Mussa-Rosen: q_k = 2 theta_k - 1 on
    # the top half, the virtual value; profit sum_k prob (p_k - q_k^2 / 2))
    assert "(0.1171875, True" in plain(code[2])
    assert plain(code[-1]).strip().endswith("['IC[1->2]', 'IC[2->1]', 'Few', 'Many']")
    assert "an irreducible infeasible subset (IIS)" in plain(code[-1])

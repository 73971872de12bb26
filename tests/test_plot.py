"""Figures (issue 11, part 3): the menu against the type, sweeps as lines or heatmaps, and the dominance
graph drawn fast, always labelled, as a family-level summary above a size limit, in PNG and SVG."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

import mechdsl
from mechdsl import cli
from mechdsl.analysis.dominance import DRAW_LIMIT, draw
from mechdsl.plot import plot_menu, plot_sweep, read_rows, sweep_columns

from conftest import SPECS

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > 2_000


def svg_text(path) -> str:
    text = path.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text and text.rstrip().endswith("</svg>")
    return text


def has(svg: str, label: str) -> bool:
    """Whether a label is drawn as text in the SVG (text is kept as text: svg.fonttype none)."""
    esc = label.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return esc in svg


def run(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def repurchase():
    return mechdsl.load(SPECS / "repurchase_one_capacity.mech").solve()


@pytest.fixture(scope="module")
def screening40():
    return mechdsl.load(SPECS / "screening.mech", overrides={"K": 40}).reduce()


# ----------------------------------------------------------------------------------------------- menu
def test_menu_png_and_svg_with_panels_and_binding_rows(tmp_path, repurchase):
    png, svg = tmp_path / "menu.png", tmp_path / "menu.svg"
    panels = plot_menu(repurchase, png)
    assert panels == ["x", "p", "U", "binding"]          # one panel per menu column, then the binding rows
    assert is_png(png)
    plot_menu(repurchase, svg)
    text = svg_text(svg)
    for label in ("type", "x", "p", "U", "binding rows", "IC binds", "IR binds", "repurchase_one_capacity.mech"):
        assert has(text, label), label
    for row in repurchase.menu():                           # every binding row of every type is named
        for cid in row["binding"]:
            assert has(text, cid), cid


def test_menu_columns_and_errors(tmp_path, repurchase):
    assert plot_menu(repurchase, tmp_path / "m.svg", columns=["x"], title="only x") == ["x", "binding"]
    assert has(svg_text(tmp_path / "m.svg"), "only x")
    with pytest.raises(ValueError, match="no menu column 'zz'"):
        plot_menu(repurchase, tmp_path / "m.png", columns=["zz"])
    with pytest.raises(ValueError, match="png, svg or pdf"):
        plot_menu(repurchase, tmp_path / "m.gif")


def test_per_agent_menu_one_line_per_agent(tmp_path):
    res = mechdsl.load(SPECS / "auction_bic.mech").solve()
    assert "agent" in res.menu()[0]
    plot_menu(res, tmp_path / "a.svg")
    text = svg_text(tmp_path / "a.svg")
    assert has(text, "agent 1") and has(text, "agent 2") and has(text, "E[x]") and has(text, "E[p]")


def test_result_without_menu_draws_indexed_reports(tmp_path):
    res = SimpleNamespace(spec="r.mech", reports={"pay": {(1,): 1.0, (2,): 0.5, (3,): 0.0}, "ok": {(): True}},
                          variables={}, menu=lambda: [])
    assert plot_menu(res, tmp_path / "r.svg") == ["pay"]
    assert has(svg_text(tmp_path / "r.svg"), "pay")
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_menu(SimpleNamespace(spec="", reports={}, variables={}, menu=lambda: []), tmp_path / "x.png")


def test_cli_plot(capsys, tmp_path):
    out = tmp_path / "menu.svg"
    code, _, err = run(capsys, "plot", SPECS / "repurchase_one_capacity.mech", "--set", "D=18", "-o", out)
    assert code == 0, err
    assert "wrote" in err and has(svg_text(out), "binding rows")
    code, _, err = run(capsys, "plot", SPECS / "repurchase_one_capacity.mech", "--columns", "nope", "-o", out)
    assert code == 2 and "no menu column 'nope'" in err
    with pytest.raises(SystemExit) as exc:  # a usage error, before anything is solved
        run(capsys, "plot", SPECS / "repurchase_one_capacity.mech", "-o", tmp_path / "no" / "m.png")
    assert exc.value.code == 2


# ---------------------------------------------------------------------------------------------- sweep
def _rows_two_grids():
    rows = []
    for i, a in enumerate([0.1, 0.5, 0.9]):
        for n in (2, 10):
            ok = not (a == 0.9 and n == 10)
            rows.append({"point": len(rows), "a": a, "N": n, "status": "optimal" if ok else "infeasible",
                         "objective": a * n if ok else None, "verification_ok": ok, "x[1]": a + n,
                         "const": 1.0, "message": ""})
    return rows


def test_sweep_lines_for_one_grid_and_heatmap_for_two(tmp_path):
    rows = _rows_two_grids()
    assert sweep_columns(rows, ["a", "N"]) == ["objective", "x[1]"]   # constants and bookkeeping left out
    one = [r for r in rows if r["N"] == 2]
    assert plot_sweep(one, ["a", "N"], tmp_path / "lines.svg") == ["objective", "x[1]"]
    text = svg_text(tmp_path / "lines.svg")
    assert has(text, "sweep over a (3 points)") and has(text, "x[1]")
    plot_sweep(rows, ["a", "N"], tmp_path / "heat.png")
    assert is_png(tmp_path / "heat.png")
    plot_sweep(rows, ["a", "N"], tmp_path / "heat.svg")
    text = svg_text(tmp_path / "heat.svg")
    assert has(text, "sweep over a x N (6 points, 1 without an optimum left out)") and has(text, "objective")
    plot_sweep(rows, ["a", "N"], tmp_path / "lines2.svg", kind="lines")
    assert has(svg_text(tmp_path / "lines2.svg"), "N=10")


def test_sweep_vector_grid_values_are_labelled(tmp_path):
    rows = [{"p": [p, round(1 - p, 2)], "N": n, "status": "optimal", "objective": p * n}
            for p in (0.1, 0.5) for n in (2, 5)]
    plot_sweep(rows, ["p", "N"], tmp_path / "v.svg")
    assert has(svg_text(tmp_path / "v.svg"), "(0.1, 0.9)")


def test_sweep_rows_from_csv(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("point,a,status,objective,m[1]\n0,0.1,optimal,1.5,2\n1,0.2,optimal,2.5,3\n")
    rows = read_rows(path)
    assert rows[0]["a"] == 0.1 and rows[1]["m[1]"] == 3
    assert plot_sweep(rows, ["a"], tmp_path / "s.png") == ["objective", "m[1]"]


# ------------------------------------------------------------------------------------- dominance graph
def test_summary_has_one_node_per_family(screening40):
    g = screening40.graph
    s = g.summary_networkx()
    assert set(s.nodes) == {f.name for f in g.families} == {"IC", "IR", "MONO_q", "PAY_p"}
    for f in g.families:
        d = s.nodes[f.name]
        assert d["count"] == f.count and d["kept"] + d["implied"] == f.count
    assert s.nodes["IC"]["count"] == 40 * 39 and s.nodes["IC"]["implied"] == 40 * 39
    assert s.nodes["IR"]["implied"] == 40                      # 39 by drop_implied, IR[1] by the payment rule
    rules = {(a, b): d["rule"] for a, b, d in s.edges(data=True)}
    assert "single crossing (local_ic)" in rules[("MONO_q", "IC")]
    assert "IR of the extreme type + IC (drop_implied)" in rules[("IC", "IR")]
    assert "payment rule (eliminate_payments)" in rules[("PAY_p", "IC")]


def test_screening_K40_draws_fast_with_labels(tmp_path, screening40):
    g = screening40.graph
    assert sum(f.count for f in g.families) > DRAW_LIMIT
    assert draw(g, tmp_path / "g.png") == "summary"             # above the limit: the family summary
    assert is_png(tmp_path / "g.png")
    draw(g, tmp_path / "g.svg")
    text = svg_text(tmp_path / "g.svg")
    assert has(text, "IC (ic)") and has(text, "1560 rows: 0 kept, 1560 implied") and has(text, "MONO_q")
    assert has(text, "single crossing (local_ic): 1482 rows")
    # every instance on request (one LineCollection for the 24480 edges), every one labelled
    assert draw(g, tmp_path / "full.svg", summary=False) == "full"
    text = svg_text(tmp_path / "full.svg")
    labels = set(re.findall(r">((?:IC|IR|MONO_q|PAY_p)\[[^<]*)<", text))
    assert len(labels) == 1560 + 40 + 39 + 40 and has(text, "IC[40->39]") and has(text, "IR[40]")


def test_graph_without_reductions_is_labelled(capsys, tmp_path):
    out = tmp_path / "two.svg"
    code, _, err = run(capsys, "graph", SPECS / "two_item_additive.mech", "--format", "svg", "-o", out)
    assert code == 0, err
    text = svg_text(out)
    assert has(text, "IC[1,1->1,2]") and has(text, "IR[3,3]") and has(text, "no constraint is implied")
    code, _, err = run(capsys, "graph", SPECS / "two_item_additive.mech", "--format", "png", "-o", tmp_path / "t.png")
    assert code == 0 and is_png(tmp_path / "t.png")


def test_cli_graph_summary_and_full_options(capsys, tmp_path):
    spec = SPECS / "repurchase_one_capacity.mech"
    code, _, err = run(capsys, "graph", spec, "--format", "svg", "--summary", "-o", tmp_path / "s.svg")
    assert code == 0 and "family-level summary" in err
    assert has(svg_text(tmp_path / "s.svg"), "IC (ic)")
    code, out, err = run(capsys, "graph", spec, "--format", "dot", "--summary")
    assert code == 0 and '"IC" -> "IR"' in out and "drop_implied" in out and '"IC[1->3]"' not in out
    code, out, _ = run(capsys, "graph", spec, "--format", "dot")      # text formats: every instance by default
    assert '"IC[1->3]"' in out
    code, _, err = run(capsys, "graph", spec, "--format", "svg")
    assert code == 2 and "needs an output file" in err


def test_cli_sweep_plot(capsys, tmp_path):
    out, pic = tmp_path / "s.csv", tmp_path / "s.svg"
    code, stdout, err = run(capsys, "sweep", SPECS / "screening.mech", "--grid", "K=2,3,4", "-o", out, "--plot", pic)
    assert code == 0, err
    assert "drew objective" in stdout and has(svg_text(pic), "sweep over K (3 points)")
    code, _, err = run(capsys, "sweep", SPECS / "screening.mech", "--grid", "K=2,3", "--plot", tmp_path / "s.gif")
    assert code == 2 and "must be .png, .svg or .pdf" in err


def test_graphviz_engine(tmp_path, monkeypatch, screening40):
    import shutil

    if shutil.which("dot") is not None:
        draw(screening40.graph, tmp_path / "gv.svg", engine="graphviz")
        assert has(svg_text(tmp_path / "gv.svg"), "IC (ic)")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="needs Graphviz's 'dot' on PATH"):
        draw(screening40.graph, tmp_path / "gv.png", engine="graphviz")

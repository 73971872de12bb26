"""Figures with matplotlib (Agg; PNG or SVG, from the file's suffix): a result's menu against the type, and a
sweep's rows as lines (one grid) or heatmaps (two grids).

>>> import mechdsl
>>> from mechdsl.plot import plot_menu
>>> res = mechdsl.load("specs/screening.mech").solve()
>>> plot_menu(res, "menu.svg")                     # one panel per menu column, binding IC/IR marked

``mechdsl plot SPEC -o menu.png`` and ``mechdsl sweep ... --plot FILE`` are these functions.  SVG files keep
their text as text (``svg.fonttype`` "none"), so labels are searchable and the files small.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

#: Menu columns that are not values to plot.
_META = ("type", "agent", "prob", "binding", "prices")
#: How a binding row of each constraint kind is marked on the value panels.
_MARKS = {"ic": ("^", "#c44e52", "IC binds"), "ir": ("s", "#55a868", "IR binds"),
          "budget": ("D", "#8172b2", "budget binds"), "other": ("X", "#937860", "other row binds")}
#: Sweep columns that are not outputs to plot (besides the grid's own).
_SWEEP_META = ("point", "status", "message", "verification_ok")
_OK = ("optimal", "locally optimal", "evaluated")


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _format_of(path, fmt: str | None) -> str:
    fmt = (fmt or Path(str(path)).suffix.lstrip(".") or "png").lower()
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"cannot write a figure as '{fmt}' (png, svg or pdf)")
    return fmt


def save(fig, path, fmt: str | None = None, dpi: float = 130) -> str:
    """Write ``fig`` to ``path`` (png, svg or pdf, from ``fmt`` or the suffix), text kept as text in SVG."""
    import matplotlib
    fmt = _format_of(path, fmt)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight",
                    metadata={"Date": None} if fmt in ("svg", "pdf") else None)  # reproducible files
    return str(path)


def _number(v) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if hasattr(v, "__float__") and not isinstance(v, (str, bytes)):
        try:
            return float(v)
        except (TypeError, ValueError):
            return None
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _positions(values: Sequence) -> tuple[list[float], list[str] | None]:
    """Numeric positions of axis values: the numbers themselves, or 0..n-1 (in first-seen order) with labels."""
    nums = [_number(v) for v in values]
    if values and all(x is not None for x in nums):
        return nums, None
    labels = list(dict.fromkeys(_label(v) for v in values))
    where = {lab: k for k, lab in enumerate(labels)}
    return [float(where[_label(v)]) for v in values], labels


def _label(v) -> str:
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_label(x) for x in v) + ")"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _set_ticks(ax, labels: list[str] | None, axis: str = "x", most: int = 12):
    if labels is None:
        return
    step = max(1, math.ceil(len(labels) / most))
    ticks = list(range(0, len(labels), step))
    getattr(ax, f"set_{axis}ticks")(ticks)
    getattr(ax, f"set_{axis}ticklabels")([labels[k] for k in ticks], rotation=30 if axis == "x" and
                                         max(len(lab) for lab in labels) > 4 else 0, fontsize=8)


def _grid_of_axes(plt, n: int, ncols: int | None = None, size=(3.7, 2.8)):
    ncols = ncols or min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows + 0.6), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


# ------------------------------------------------------------------------------------------------ menu
def _kind_of(result) -> dict[str, str]:
    """Constraint family -> kind (ic, ir, budget, ...), from the verification's per-family entries."""
    out = {}
    ver = getattr(result, "verification", None)
    for f in getattr(ver, "families", None) or []:
        if isinstance(f, Mapping) and "name" in f and "kind" in f:
            out[f["name"]] = f["kind"]
    return out


def _guess_kind(family: str, kinds: Mapping[str, str]) -> str:
    k = kinds.get(family)
    if k is None:
        up = family.upper()
        k = "ic" if up.startswith("IC") else "ir" if up.startswith("IR") else "budget" if "BUDGET" in up else "other"
    return k if k in _MARKS else "other"


def menu_columns(rows: Sequence[Mapping]) -> list[str]:
    """The numeric columns of a menu (allocation, payment, utility, ...): one panel each."""
    cols = []
    for c in (rows[0] if rows else {}):
        if c in _META:
            continue
        if all(_number(r.get(c)) is not None for r in rows):
            cols.append(c)
    return cols


def plot_menu(result, path, *, columns: Sequence[str] | None = None, title: str | None = None,
              fmt: str | None = None) -> list[str]:
    """Draw a result's menu against the type: one panel per menu column (allocation, payment, utility, ...),
    the types where an IC, IR or budget row binds marked on every panel, and a last panel naming the binding
    rows of each type.  A per-agent menu (rows with "agent") has one line per agent.  ``result`` is a
    :class:`~mechdsl.result.Result` or its ``menu()`` rows.  A result without a menu (a spec that only
    evaluates reports, e.g. specs/pvcg.mech) draws its one-index reports and variables against the index.
    Returns the panels' names."""
    rows = result.menu() if hasattr(result, "menu") else [dict(r) for r in result]
    if not rows:
        return _plot_indexed(result, path, title=title, fmt=fmt)
    kinds = _kind_of(result) if hasattr(result, "menu") else {}
    cols = list(columns) if columns is not None else menu_columns(rows)
    missing = [c for c in cols if c not in rows[0]]
    if missing:
        raise ValueError(f"no menu column '{missing[0]}' (the menu has {', '.join(menu_columns(rows))})")
    if not cols:
        raise ValueError("the menu has no numeric column to plot")
    plt = _pyplot()
    per_agent = "agent" in rows[0]
    agents = list(dict.fromkeys(r["agent"] for r in rows)) if per_agent else [None]
    binding = any(r.get("binding") for r in rows)
    fig, axes = _grid_of_axes(plt, len(cols) + (1 if binding else 0))
    xs_all, labels = _positions([r["type"] for r in rows])
    x_of = {id(r): x for r, x in zip(rows, xs_all)}
    many = len(rows) / len(agents) > 40
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    used_marks: dict[str, Any] = {}
    for ax, col in zip(axes, cols):
        for j, a in enumerate(agents):
            sub = [r for r in rows if not per_agent or r["agent"] == a]
            xs = [x_of[id(r)] for r in sub]
            ys = [_number(r[col]) for r in sub]
            color = colors[j % len(colors)] if per_agent else colors[0]
            ax.plot(xs, ys, "-" if many else "-o", color=color, ms=3.5, lw=1.4,
                    label=f"agent {a}" if per_agent else None, zorder=2)
            marks: dict[str, list] = {}
            for r, x, y in zip(sub, xs, ys):
                for kind in dict.fromkeys(_guess_kind(cid.split("[", 1)[0], kinds) for cid in r.get("binding") or []):
                    marks.setdefault(kind, []).append((x, y))
            for kind, pts in marks.items():  # one scatter per kind (thousands of types stay fast)
                marker, mcolor, text = _MARKS[kind]
                h = ax.scatter([x for x, _ in pts], [y for _, y in pts], marker=marker, s=9 if many else 55,
                               facecolors="none", edgecolors=mcolor, linewidths=0.6 if many else 1.3, zorder=3)
                used_marks.setdefault(text, h)
        ax.set_title(col, fontsize=10)
        ax.set_xlabel("type", fontsize=9)
        ax.set_ylabel(col, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        _set_ticks(ax, labels)
        if per_agent and len(agents) > 1 and ax is axes[0]:
            ax.legend(fontsize=7, frameon=False)
    if binding:
        _binding_panel(axes[-1], rows, agents, per_agent, x_of, labels, kinds, colors)
    if used_marks:
        fig.legend(list(used_marks.values()), list(used_marks), loc="upper right", fontsize=8, frameon=False,
                   ncol=len(used_marks))
    fig.suptitle(title or _menu_title(result), fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    save(fig, path, fmt)
    plt.close(fig)
    return cols + (["binding"] if binding else [])


def _menu_title(result) -> str:
    if not hasattr(result, "status"):
        return "menu against the type"
    spec = Path(result.spec).name if getattr(result, "spec", "") else "menu"
    obj = result.objective
    objtxt = f", {result.sense} {result.objective_name} = {obj:.6g}" if isinstance(obj, (int, float)) else ""
    return f"{spec}: the menu against the type ({result.status}{objtxt})"


def _binding_panel(ax, rows, agents, per_agent, x_of, labels, kinds, colors):
    """Which rows bind for each type: one line per constraint family, a marker per type where it binds, named
    when there are few (else counted)."""
    fams = list(dict.fromkeys(cid.split("[", 1)[0] for r in rows for cid in r.get("binding") or []))
    ypos = {f: k for k, f in enumerate(fams)}
    total = sum(len(r.get("binding") or []) for r in rows)
    offset = {a: (j - (len(agents) - 1) / 2) * 0.12 for j, a in enumerate(agents)}
    few_types = len(rows) <= 40
    points: dict[tuple, list] = {}
    for r in rows:
        by_fam: dict[str, list[str]] = {}
        for cid in r.get("binding") or []:
            by_fam.setdefault(cid.split("[", 1)[0], []).append(cid)
        for fam, ids in by_fam.items():
            off = offset[r["agent"]] if per_agent else 0.0
            x, y = x_of[id(r)] + off, ypos[fam] + off
            points.setdefault((_guess_kind(fam, kinds), r["agent"] if per_agent else None), []).append((x, y))
            if total <= 24:
                ax.annotate(" ".join(ids), (x, y), xytext=(0, 6), textcoords="offset points", ha="center",
                            fontsize=6.5, zorder=4)
            elif len(ids) > 1 and few_types:
                ax.annotate(str(len(ids)), (x, y), xytext=(0, 5), textcoords="offset points", ha="center",
                            fontsize=6.5)
    for (kind, agent), pts in points.items():
        marker, mcolor, _ = _MARKS[kind]
        color = colors[agents.index(agent) % len(colors)] if per_agent else mcolor
        ax.scatter([x for x, _ in pts], [y for _, y in pts], marker=marker, s=40 if few_types else 12,
                   color=color, zorder=3)
    ax.set_yticks(range(len(fams)))
    ax.set_yticklabels(fams, fontsize=8)
    ax.set_ylim(-0.6, len(fams) - 0.4 + 0.3)
    xs = list(x_of.values())
    pad = 0.5 if labels is not None else 0.08 * ((max(xs) - min(xs)) or 1)
    ax.set_xlim(min(xs) - pad, max(xs) + pad)
    ax.set_title("binding rows" + ("" if total <= 24 else " (how many, where > 1)" if few_types else ""),
                 fontsize=10)
    ax.set_xlabel("type", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    _set_ticks(ax, labels)


def _indexed_tables(result) -> dict[str, dict]:
    """Reports and variables with one, two or three indices and numeric values."""
    out = {}
    for source in (getattr(result, "reports", None) or {}, getattr(result, "variables", None) or {}):
        for name, table in source.items():
            if name in out or not isinstance(table, Mapping) or len(table) < 2:
                continue
            dims = {len(k) if isinstance(k, tuple) else -1 for k in table}
            if len(dims) == 1 and dims.pop() in (1, 2, 3) and all(_number(v) is not None for v in table.values()):
                out[name] = table
    return out


def _plot_indexed(result, path, title=None, fmt=None) -> list[str]:
    """One panel per table: one index, a line; two, one line per value of the second index (e.g. a menu
    l[h, k] per horizon h, one line per type k); three, the slice at the last value of the first index,
    one line per value of the second (e.g. the payment schedule pay[H, k, d] against the day d)."""
    tables = _indexed_tables(result)
    if not tables:
        raise ValueError("nothing to plot: the result has no menu and no report or variable with 1 to 3 indices")
    plt = _pyplot()
    fig, axes = _grid_of_axes(plt, len(tables))
    for ax, (name, table) in zip(axes, tables.items()):
        keys = list(table)
        dim = len(keys[0])
        title_ = name
        if dim == 3:
            last = keys[-1][0]
            table = {k[1:]: v for k, v in table.items() if k[0] == last}
            keys = list(table)
            title_ = f"{name}[{_label(last)}, ., .]"
        if dim == 1:
            xs, labels = _positions([k[0] for k in keys])
            ax.plot(xs, [_number(table[k]) for k in keys], "-o", ms=3.5, lw=1.4)
        else:
            xs, labels = _positions(list(dict.fromkeys(k[-1] if dim == 3 else k[0] for k in keys)))
            series = list(dict.fromkeys(k[0] if dim == 3 else k[1] for k in keys))
            at = {x: i for i, x in enumerate(dict.fromkeys(k[-1] if dim == 3 else k[0] for k in keys))}
            for sname in series:
                pts = sorted((at[k[-1] if dim == 3 else k[0]], _number(v)) for k, v in table.items()
                             if (k[0] if dim == 3 else k[1]) == sname)
                ax.plot([xs[i] for i, _ in pts], [y for _, y in pts], "-o", ms=3, lw=1.2, label=_label(sname))
            if len(series) <= 12:
                ax.legend(fontsize=7, title="index 2" if dim == 2 else "index 2", title_fontsize=7)
        ax.set_title(title_, fontsize=10)
        ax.set_xlabel("index" if dim == 1 else ("index 1" if dim == 2 else "index 3"), fontsize=9)
        ax.set_ylabel(name, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        _set_ticks(ax, labels)
    spec = Path(result.spec).name if getattr(result, "spec", "") else "result"
    fig.suptitle(title or f"{spec}: reports and variables against their index (the result has no menu)",
                 fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    save(fig, path, fmt)
    plt.close(fig)
    return list(tables)


# ----------------------------------------------------------------------------------------------- sweep
def sweep_columns(rows: Sequence[Mapping], grid: Sequence[str]) -> list[str]:
    """The outputs of a sweep worth a panel: the numeric columns that are not the grid or bookkeeping,
    the objective first, columns constant over the sweep left out."""
    cols = []
    for r in rows:
        for c in r:
            if c not in cols:
                cols.append(c)
    out = []
    for c in cols:
        if c in grid or c in _SWEEP_META:
            continue
        vals = [_number(r.get(c)) for r in rows if r.get(c) is not None]
        if not vals or any(v is None for v in vals):
            continue
        finite = [v for v in vals if math.isfinite(v)]
        if c != "objective" and (not finite or max(finite) - min(finite) <= 1e-12 * max(1.0, abs(max(finite)))):
            continue
        out.append(c)
    if "objective" in out:
        out.remove("objective")
        out.insert(0, "objective")
    return out


def plot_sweep(rows: Sequence[Mapping], grid: Sequence[str], path, *, columns: Sequence[str] | None = None,
               kind: str = "auto", title: str | None = None, fmt: str | None = None, max_panels: int = 12
               ) -> list[str]:
    """Draw a sweep's rows (dicts, as :func:`mechdsl.sweep.run_sweep` returns or a CSV reads): one panel per
    output column (default :func:`sweep_columns`, at most ``max_panels``).  One swept param (grids with one
    value do not count): a line against it.  Two: a heatmap per column (``kind="heatmap"``, the default), or
    lines against the first, one per value of the second (``kind="lines"``).  More: lines against the first,
    one per combination of the others.  Values that are not numbers (a vector param's lists) are placed in
    grid order and labelled.  Points whose status is not optimal are left out (gaps) and counted in the title.
    Returns the panels' names."""
    rows = [dict(r) for r in rows]
    if not rows:
        raise ValueError("no rows to plot")
    grid = [g for g in grid if g in rows[0] or any(g in r for r in rows)]
    if not grid:
        raise ValueError("the rows have none of the swept params as a column")
    varying = [g for g in grid if len({_label(r.get(g)) for r in rows}) > 1] or grid[:1]
    cols = list(columns) if columns is not None else sweep_columns(rows, grid)[:max_panels]
    if not cols:
        raise ValueError("no numeric output column to plot")
    unknown = [c for c in cols if not any(c in r for r in rows)]
    if unknown:
        raise ValueError(f"no column '{unknown[0]}' in the rows")
    if kind not in ("auto", "lines", "heatmap"):
        raise ValueError(f"kind must be auto, lines or heatmap, not '{kind}'")
    if kind == "heatmap" and len(varying) != 2:
        raise ValueError(f"a heatmap needs exactly two swept params with several values, not {len(varying)}")
    heat = kind == "heatmap" or (kind == "auto" and len(varying) == 2)
    failed = sum(1 for r in rows if r.get("status") is not None and r.get("status") not in _OK)
    plt = _pyplot()
    fig, axes = _grid_of_axes(plt, len(cols), size=(4.2, 3.2) if heat else (3.7, 2.8))
    for ax, col in zip(axes, cols):
        if heat:
            _heat_panel(fig, ax, rows, varying[0], varying[1], col)
        else:
            _line_panel(ax, rows, varying[0], varying[1:], col, legend=ax is axes[0])
    what = f"sweep over {' x '.join(varying)} ({len(rows)} points"
    what += f", {failed} without an optimum left out)" if failed else ")"
    fig.suptitle(title or what, fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    save(fig, path, fmt)
    plt.close(fig)
    return cols


def _value(r: Mapping, col: str) -> float:
    if r.get("status") is not None and r.get("status") not in _OK:
        return math.nan
    v = _number(r.get(col))
    return math.nan if v is None else v


def _line_panel(ax, rows, x, others: Sequence[str], col, legend: bool):
    xs_all, labels = _positions([r.get(x) for r in rows])
    groups: dict[tuple, list[int]] = {}
    for k, r in enumerate(rows):
        groups.setdefault(tuple(_label(r.get(o)) for o in others), []).append(k)
    if len(groups) > 12:
        raise ValueError(f"{len(groups)} lines per panel is too many: sweep at most 12 combinations of "
                         f"{', '.join(others)}, or plot two grids as a heatmap")
    for key, idx in groups.items():
        idx = sorted(idx, key=lambda k: xs_all[k])
        lab = ", ".join(f"{o}={v}" for o, v in zip(others, key)) if others else None
        ax.plot([xs_all[k] for k in idx], [_value(rows[k], col) for k in idx], "-o", ms=3, lw=1.3, label=lab)
    ax.set_title(col, fontsize=10)
    ax.set_xlabel(x, fontsize=9)
    ax.set_ylabel(col, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    _set_ticks(ax, labels)
    if legend and others:
        ax.legend(fontsize=7, frameon=False)


def _heat_panel(fig, ax, rows, x, y, col):
    """One cell per grid point, equal cells (uneven grids such as N = 2, 5, 100 stay readable), the grid's
    values as tick labels, and each cell's value written in it when there are few."""
    import numpy as np

    xs_all, xlabels = _positions([r.get(x) for r in rows])
    ys_all, ylabels = _positions([r.get(y) for r in rows])
    xu, yu = sorted(set(xs_all)), sorted(set(ys_all))
    xi, yi = {v: k for k, v in enumerate(xu)}, {v: k for k, v in enumerate(yu)}
    z = np.full((len(yu), len(xu)), np.nan)
    for r, a, b in zip(rows, xs_all, ys_all):
        z[yi[b], xi[a]] = _value(r, col)
    mesh = ax.pcolormesh(np.arange(len(xu) + 1) - 0.5, np.arange(len(yu) + 1) - 0.5, np.ma.masked_invalid(z),
                         shading="flat", cmap="viridis")
    fig.colorbar(mesh, ax=ax, fraction=0.05, pad=0.03).ax.tick_params(labelsize=7)
    if z.size <= 64:
        finite = z[np.isfinite(z)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for (j, i), v in np.ndenumerate(z):
            ax.text(i, j, "-" if not np.isfinite(v) else f"{v:.4g}", ha="center", va="center", fontsize=6.5,
                    color="white" if np.isfinite(v) and v < mid else "black")
    ax.set_title(col, fontsize=10)
    ax.set_xlabel(x, fontsize=9)
    ax.set_ylabel(y, fontsize=9)
    ax.tick_params(labelsize=8)
    _set_ticks(ax, xlabels if xlabels is not None else [_label(v) for v in xu], "x")
    _set_ticks(ax, ylabels if ylabels is not None else [_label(v) for v in yu], "y")


def read_rows(path) -> list[dict]:
    """A sweep's output file as rows (CSV or JSON Lines; Parquet with pyarrow), numbers parsed."""
    import csv
    import json

    path = Path(path)
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # optional; the sweep wrote it, so it is installed
        return pq.read_table(path).to_pylist()
    out = []
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            out.append({k: _cell(v) for k, v in r.items()})
    return out


def _cell(text: str):
    if text is None or text == "":
        return None
    if text[:1] in "[{":
        import json
        try:
            return json.loads(text)
        except ValueError:
            return text
    n = _number(text)
    return text if n is None else (int(n) if text.lstrip("-").isdigit() else n)


__all__ = ["plot_menu", "plot_sweep", "menu_columns", "sweep_columns", "read_rows", "save"]

"""The dominance graph: which constraints imply which, and why.

Nodes are the constraint instances of the ORIGINAL spec (``IC[3->1]``,
``IR[2]``) plus those a reduction adds (``MONO_q[1,2]``, and ``PAY_t[k]``, the
definition of an eliminated transfer); a conjunction of
premises is an ``And`` node.  Edges carry the rule and the pass that recorded
them.  Rules are kept symbolically (a function from a constraint id to its
premises), so a graph over a million IC instances costs nothing until it is
drawn; :meth:`DominanceGraph.to_networkx` materialises it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import networkx as nx


@dataclass(frozen=True)
class Rule:
    """``targets`` are implied by their ``premises(target)`` (a conjunction)."""

    name: str
    pass_name: str
    text: str
    targets: Callable[[], Iterable[str]]
    premises: Callable[[str], list[str] | None]


@dataclass
class Family:
    name: str
    kind: str
    ids: Callable[[], Iterable[str]]
    count: int
    derived: bool = False


@dataclass
class DominanceGraph:
    families: list[Family] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    removed: dict[str, str] = field(default_factory=dict)  # family name -> why it left the model

    # --------------------------------------------------------------- build
    def add_family(self, name: str, kind: str, ids: Callable[[], Iterable[str]], count: int, derived=False):
        self.families.append(Family(name, kind, ids, count, derived))

    def add_rule(self, rule: Rule):
        self.rules.append(rule)

    # ----------------------------------------------------------------- API
    def premises(self, cid: str) -> tuple[Rule, list[str]] | None:
        for rule in self.rules:
            p = rule.premises(cid)
            if p is not None:
                return rule, p
        return None

    def is_implied(self, cid: str) -> bool:
        """Whether a recorded rule derives ``cid`` from other constraints."""
        return self.premises(cid) is not None

    def explain(self, cid: str, max_depth: int = 12) -> list[str]:
        """The chain of reasons for ``cid``: one line per step, indented by depth; each rule's proof once."""
        if self.premises(cid) is None:
            return [f"{cid}: kept in the model (not implied by other constraints)" if self.exists(cid)
                    else f"{cid}: no such constraint"]
        lines, told, seen = [], [], set()

        def walk(c, depth):
            hit = self.premises(c)
            pad = "  " * depth
            if hit is None:
                return
            rule, prem = hit
            if rule not in told:
                told.append(rule)
            lines.append(f"{pad}{c}  <=  {' AND '.join(prem)}   [{rule.pass_name} #{told.index(rule) + 1}]")
            if c in seen or depth >= max_depth:
                return
            seen.add(c)
            for p in prem:
                walk(p, depth + 1)

        walk(cid, 0)
        lines.append("")
        for k, rule in enumerate(told, 1):
            lines.append(f"#{k} {rule.name} ({rule.pass_name})")
            lines.append(f"   why: {rule.text}")
        return lines

    def exists(self, cid: str) -> bool:
        base = cid.split("[", 1)[0]
        return any(f.name == base and cid in set(f.ids()) for f in self.families)

    def redundant(self) -> Iterator[str]:
        """Every constraint instance that a rule derives from others."""
        for rule in self.rules:
            yield from rule.targets()

    def counts(self) -> dict[str, int]:
        return {f.name: f.count for f in self.families}

    # --------------------------------------------------------- materialise
    def to_networkx(self, max_nodes: int = 200_000) -> nx.DiGraph:
        total = sum(f.count for f in self.families)
        if total > max_nodes:
            raise ValueError(f"the graph has {total} constraint instances; drawing is limited to {max_nodes}")
        g = nx.DiGraph()
        for f in self.families:
            for cid in f.ids():
                g.add_node(cid, kind=f.kind, family=f.name, derived=f.derived)
        n_and = 0
        for rule in self.rules:
            for cid in rule.targets():
                prem = rule.premises(cid)
                if prem is None:
                    continue
                g.nodes[cid]["implied"] = True
                if len(prem) == 1:
                    g.add_edge(prem[0], cid, rule=rule.name, pass_name=rule.pass_name)
                    continue
                n_and += 1
                a = f"AND#{n_and}"
                g.add_node(a, kind="and")
                for p in prem:
                    g.add_edge(p, a, rule=rule.name, pass_name=rule.pass_name)
                g.add_edge(a, cid, rule=rule.name, pass_name=rule.pass_name)
        for n, d in g.nodes(data=True):
            d.setdefault("implied", False)
        return g

    def summary_networkx(self, sample: int = 20_000) -> nx.DiGraph:
        """The family-level summary: one node per constraint family (``count`` rows, ``implied`` of them
        derived by a rule, ``kept`` the rest) and one edge per (premise family, implied family), labelled by
        the rules with the number of rows each derives.  Which families a rule's premises come from is read
        from the first ``sample`` targets of each rule (at most ``10 * sample`` premise ids; every target is
        counted), so a graph over a million IC rows is summarised in seconds."""
        g = nx.DiGraph()
        for f in self.families:
            g.add_node(f.name, kind=f.kind, family=f.name, count=f.count, derived=f.derived)
        # Rows implied by two rules count once: exactly (a set of ids) up to `exact` targets in all; beyond,
        # the rules' counts are added and capped at the family's size (the recorded rules are disjoint).
        exact, seen = 300_000, 0
        implied: dict[str, set] | None = {}
        totals: dict[str, int] = {}
        edges: dict[tuple, dict] = {}
        for rule in self.rules:
            short = rule.name.split(":", 1)[0].strip()
            per_family: dict[str, int] = {}
            premise_families: dict[str, dict] = {}
            budget = 10 * sample  # premise ids read per rule (a premise list may be as long as the type grid)
            for k, cid in enumerate(rule.targets()):
                fam = cid[:cid.find("[")] if "[" in cid else cid
                per_family[fam] = per_family.get(fam, 0) + 1
                if implied is not None:
                    implied.setdefault(fam, set()).add(cid)
                    seen += 1
                    if seen > exact:
                        implied = None
                if k < sample and budget > 0:
                    prem = rule.premises(cid) or ()
                    budget -= len(prem)
                    for p in prem:
                        premise_families.setdefault(fam, {})[p.split("[", 1)[0]] = None
            for fam, n in per_family.items():
                totals[fam] = totals.get(fam, 0) + n
                for pf in premise_families.get(fam, {}):
                    edges.setdefault((pf, fam), {})[f"{short} ({rule.pass_name})"] = n
        for name, d in g.nodes(data=True):
            n_imp = len(implied.get(name, ())) if implied is not None else min(d["count"], totals.get(name, 0))
            d["implied"] = n_imp
            d["kept"] = d["count"] - n_imp
            what = (f"added by a reduction: {d['count']}" if d["derived"] else
                    f"{d['count']} rows: {d['kept']} kept, {n_imp} implied" if n_imp else f"{d['count']} rows, all kept")
            d["label"] = f"{name} ({d['kind']})\n{what}"
        for (a, b), rules in edges.items():
            for n in (a, b):
                if n not in g:  # a premise outside the recorded families (should not happen)
                    g.add_node(n, kind="constraint", family=n, count=0, derived=False, implied=0, kept=0, label=n)
            g.add_edge(a, b, rule="; ".join(rules), count=max(rules.values()),
                       label="\n".join(f"{r}: {n} row{'s' if n != 1 else ''}" for r, n in rules.items()))
        return g

    def write(self, fmt: str, path: str | None, summary: bool | None = None, limit: int | None = None):
        """Write the graph as dot, graphml, json, png or svg; returns the text for dot/json when ``path`` is
        None.  ``summary``: the family-level summary (:meth:`summary_networkx`) instead of every instance;
        by default a drawing (png, svg) is a summary when the graph has more than ``limit`` (default
        :data:`DRAW_LIMIT`) constraint instances, and the text formats are never."""
        if fmt in ("png", "svg"):
            if path is None:
                raise ValueError(f"{fmt} needs an output file (-o FILE)")
            draw(self, path, fmt, summary=summary, limit=limit)
            return None
        g = self.summary_networkx() if summary else self.to_networkx()
        if fmt == "dot":
            text = _to_dot(g)
        elif fmt == "json":
            text = json.dumps(nx.node_link_data(g, edges="edges"), indent=1)
        elif fmt == "graphml":
            if path is None:
                raise ValueError("graphml needs an output file (-o FILE)")
            nx.write_graphml(g, path)
            return None
        else:
            raise ValueError(f"unknown graph format '{fmt}' (dot, graphml, json, png, svg)")
        if path is None:
            return text
        with open(path, "w") as fh:
            fh.write(text)
        return None


_COLORS = {"ic": "#4c72b0", "ir": "#55a868", "budget": "#c44e52", "feasibility": "#8172b2",
           "constraint": "#937860", "monotonicity": "#dd8452", "definition": "#64b5cd", "and": "#999999"}


def _to_dot(g: nx.DiGraph) -> str:
    lines = ["digraph dominance {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for n, d in g.nodes(data=True):
        if d.get("kind") == "and":
            lines.append(f'  "{n}" [label="AND", shape=point, width=0.08];')
            continue
        style = "dashed" if d.get("implied") else "solid"
        color = _COLORS.get(d.get("kind"), "#333333")
        label = f', label="{_dot_escape(d["label"])}"' if "label" in d else ""
        lines.append(f'  "{n}" [shape=box, style="{style}", color="{color}"{label}];')
    for a, b, d in g.edges(data=True):
        label = f', label="{_dot_escape(d["label"])}", fontsize=8' if "label" in d else ""
        lines.append(f'  "{a}" -> "{b}" [tooltip="{_dot_escape(d.get("rule", ""))}"{label}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _layers(g: nx.DiGraph) -> dict:
    """Column of each node: 0 for constraints kept in the model, else 1 + the deepest premise's column."""
    depth = {}
    for n in nx.topological_sort(g):
        preds = list(g.predecessors(n))
        if not preds:
            depth[n] = 0
        elif g.nodes[n].get("kind") == "and":
            depth[n] = max(depth[p] for p in preds)
        else:
            depth[n] = max(depth[p] for p in preds) + 1
    return depth


#: Above this many constraint instances a drawing shows the family-level summary unless asked for the full one.
DRAW_LIMIT = 400


def draw(graph: DominanceGraph, path: str, fmt: str | None = None, summary: bool | None = None,
         limit: int | None = None, engine: str = "matplotlib") -> str:
    """Draw the graph to ``path`` (png or svg, from ``fmt`` or the file's suffix); returns what was drawn,
    "full" or "summary".  ``summary=None`` chooses: every instance up to ``limit`` (default
    :data:`DRAW_LIMIT`) constraint instances, the family-level summary above.  ``engine="graphviz"`` lays
    the graph out with Graphviz's ``dot`` (which must be on PATH) instead of matplotlib."""
    fmt = (fmt or str(path).rsplit(".", 1)[-1]).lower()
    if fmt not in ("png", "svg"):
        raise ValueError(f"cannot draw to '{fmt}' (png or svg)")
    limit = DRAW_LIMIT if limit is None else limit
    total = sum(f.count for f in graph.families)
    if summary is None:
        summary = total > limit
    if engine == "graphviz":
        _draw_graphviz(graph.summary_networkx() if summary else graph.to_networkx(), path, fmt)
    elif engine != "matplotlib":
        raise ValueError(f"unknown drawing engine '{engine}' (matplotlib or graphviz)")
    elif summary:
        _draw_summary(graph.summary_networkx(), path, fmt, graph, total)
    else:
        _draw_full(graph.to_networkx(), path, fmt, graph)
    return "summary" if summary else "full"


def _draw_graphviz(g: nx.DiGraph, path: str, fmt: str):
    import shutil
    import subprocess

    exe = shutil.which("dot")
    if exe is None:
        raise ValueError("the graphviz engine needs Graphviz's 'dot' on PATH (or use the matplotlib engine)")
    out = subprocess.run([exe, f"-T{fmt}", "-o", str(path)], input=_to_dot(g), text=True, capture_output=True)
    if out.returncode != 0:
        raise ValueError(f"graphviz failed: {out.stderr.strip()[:400]}")


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str, fmt: str, dpi: float, **kw):
    import matplotlib
    # svg.fonttype "none": text stays text (searchable, small files) instead of glyph outlines.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(path, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None, **kw)


def _kind_handles(kinds):
    from matplotlib.lines import Line2D
    return [Line2D([], [], marker="s", ls="", color=_COLORS[k], label=k) for k in _COLORS
            if k != "and" and k in kinds]


def _draw_full(g: nx.DiGraph, path: str, fmt: str, graph: DominanceGraph):
    """Every instance, labelled: kept constraints in column 0, each implied one right of its premises.  The
    edges are one LineCollection (they all run left to right), the arrowheads one scatter."""
    plt = _pyplot()
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    try:
        depth = _layers(g)
    except nx.NetworkXUnfeasible:  # a cycle (should not happen): one column per family instead
        fam = {f.name: k for k, f in enumerate(graph.families)}
        depth = {n: fam.get(d.get("family"), 0) for n, d in g.nodes(data=True)}
    order = {f.name: k for k, f in enumerate(graph.families)}
    nodes = g.nodes
    ands = [n for n, d in nodes(data=True) if d.get("kind") == "and"]
    columns: dict[int, list] = {}
    for n, d in nodes(data=True):
        if d.get("kind") != "and":
            columns.setdefault(depth[n], []).append(n)
    for col in columns.values():
        col.sort(key=lambda n: (order.get(nodes[n].get("family"), 99), _natural(n)))
    if g.number_of_edges() == 0 and len(columns) == 1:  # nothing implied: wrap the one column into several
        col = columns.pop(next(iter(columns)))
        per = max(20, math.ceil(math.sqrt(3 * len(col))))
        columns = {k: col[k * per:(k + 1) * per] for k in range(math.ceil(len(col) / per))}
    pos = {}
    for x, col in columns.items():
        for y, n in enumerate(col):
            pos[n] = (x * 3.0, -float(y))
    for a in ands:
        succ = [pos[s] for s in g.successors(a) if s in pos]
        pos[a] = (succ[0][0] - 0.9, succ[0][1]) if succ else (depth[a] * 3.0 + 1.5, 0.0)
    tallest = max((len(v) for v in columns.values()), default=1)
    ncols = max(columns, default=0) + 1
    width, height = max(8.5, 1.45 * ncols + 2.6), max(3.0, 0.17 * tallest + 1.6)
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0.2 / width, 0.3 / height, 1 - 2.4 / width, 1 - 1.3 / height))
    segs = [(pos[a], pos[b]) for a, b in g.edges()]
    # Antialiasing thousands of long lines is what costs (4 s of 7 for screening K = 40): off beyond 5000.
    ax.add_collection(LineCollection(segs, colors="#c8c8c8", linewidths=0.5, zorder=1,
                                     antialiaseds=len(segs) <= 5000))
    heads = [pos[b] for a, b in g.edges() if nodes[b].get("kind") != "and"]
    if heads:
        ax.scatter([x - 0.2 for x, _ in heads], [y for _, y in heads], marker=">", s=9, c="#aaaaaa",
                   linewidths=0, zorder=2)
    implied = [n for n in pos if nodes[n].get("implied") and nodes[n].get("kind") != "and"]
    kept = [n for n in pos if not nodes[n].get("implied") and nodes[n].get("kind") != "and"]
    for group, marker, alpha in ((kept, "s", 1.0), (implied, "o", 0.5)):
        if group:
            ax.scatter([pos[n][0] for n in group], [pos[n][1] for n in group], marker=marker, s=30, alpha=alpha,
                       c=[_COLORS.get(nodes[n].get("kind"), "#333333") for n in group], linewidths=0, zorder=3)
    if ands:
        ax.scatter([pos[n][0] for n in ands], [pos[n][1] for n in ands], marker=".", s=6, c="#777777", zorder=3)
    for n in kept + implied:
        x, y = pos[n]
        ax.text(x + 0.18, y, n, fontsize=6.5, va="center", ha="left", zorder=4)
    xs = [p[0] for p in pos.values()] or [0.0]
    ax.set_xlim(min(xs) - 0.4, max(xs) + 2.8)
    ax.set_ylim(-tallest + 0.4, 0.8)
    ax.axis("off")
    kinds = {d.get("kind") for _, d in nodes(data=True)}
    handles = [Line2D([], [], marker="s", ls="", color="#333", label="kept in the reduced model")]
    if implied:
        handles.append(Line2D([], [], marker="o", ls="", color="#333", alpha=0.5, label="implied (dropped)"))
    if ands:
        handles.append(Line2D([], [], marker=".", ls="", color="#777", label="AND of premises"))
    handles += _kind_handles(kinds)
    fig.legend(handles=handles, loc="upper right", fontsize=7, frameon=False)
    n_con = len(kept) + len(implied)
    sub = ("left: constraints kept; each implied constraint sits right of its premises" if implied else
           "no constraint is implied by others (no reduction applied): every row is kept")
    fig.text(0.2 / width, 1 - 0.15 / height, f"dominance graph: {n_con} constraint instances, {len(implied)} implied"
             f"\n{sub}", fontsize=9, va="top", ha="left")
    _save(fig, path, fmt, dpi=110 if width * 110 < 20000 else max(30, 20000 / width))
    plt.close(fig)


def _draw_summary(s: nx.DiGraph, path: str, fmt: str, graph: DominanceGraph, total: int):
    """One box per constraint family (rows, kept, implied) on one row, premise families left of the families
    they imply; each (premise family, implied family) an arc above, as high as it is long, labelled with the
    rules and the rows each derives; a family implied by its own rows a loop below."""
    plt = _pyplot()

    flat = nx.DiGraph()
    flat.add_nodes_from(s.nodes)
    flat.add_edges_from((a, b) for a, b in s.edges if a != b)
    cond = nx.condensation(flat)
    level: dict = {}
    for c in nx.topological_sort(cond):
        preds = list(cond.predecessors(c))
        level[c] = 1 + max(level[p] for p in preds) if preds else 0
    order = {f.name: k for k, f in enumerate(graph.families)}
    seq = sorted(s.nodes, key=lambda n: (level[cond.graph["mapping"][n]], order.get(n, 99)))
    slot = {n: k for k, n in enumerate(seq)}
    step, rise = 3.0, 0.5  # inches between boxes; arc height per slot spanned
    spans = [abs(slot[b] - slot[a]) for a, b in s.edges if a != b and slot[b] > slot[a]] or [0]
    back = any(slot[b] < slot[a] for a, b in s.edges)
    loops = any(a == b for a, b in s.edges)
    top = 0.9 + max(spans) * rise + 0.45   # title, the highest arc and its label
    bottom = 1.4 if (loops or back) else 0.5
    width, height = max(8.0, step * len(seq) + 0.6), top + 0.7 + bottom
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    y0 = bottom + 0.35
    boxes = {}
    for n in seq:
        d = s.nodes[n]
        color = _COLORS.get(d.get("kind"), "#333333")
        all_implied = d.get("count", 0) > 0 and d.get("kept", 1) == 0
        boxes[n] = ax.text(0.3 + step * (slot[n] + 0.5), y0, d.get("label", n), ha="center", va="center",
                           fontsize=8.5, zorder=3, bbox=dict(boxstyle="round,pad=0.5", fc=color + "22", ec=color,
                                                             lw=1.4, ls="--" if all_implied else "-"))
    fig.canvas.draw()  # the boxes' extents, for the arcs' end points (few artists: cheap)
    inv = ax.transData.inverted()

    def edge_point(n, frac_x, side):
        bb = boxes[n].get_bbox_patch().get_window_extent()
        (x, y), = inv.transform([(bb.x0 + frac_x * bb.width, bb.y1 if side == "top" else bb.y0)])
        return x, y

    arrow = dict(arrowstyle="-|>", color="#666666", lw=1.0, shrinkA=0, shrinkB=0, mutation_scale=11)
    for a, b, d in s.edges(data=True):
        label = d.get("label", d.get("rule", ""))
        if a == b:  # a loop below the box
            (xa, ya), (xb, yb) = edge_point(a, 0.35, "bottom"), edge_point(a, 0.65, "bottom")
            ax.annotate("", xy=(xb, yb), xytext=(xa, ya), zorder=2,
                        arrowprops=dict(arrow, connectionstyle="arc3,rad=1.6"))
            ax.text((xa + xb) / 2, ya - 0.5 * 1.6 * (xb - xa) - 0.08, label, ha="center", va="top", fontsize=7,
                    color="#444444", zorder=4)
            continue
        forward = slot[b] > slot[a]
        side = "top" if forward else "bottom"
        (xa, ya), (xb, yb) = edge_point(a, 0.6, side), edge_point(b, 0.4, side)
        rad = -2 * rise / step  # apex 0.5 * |rad| * dx above (forward) or below (backward) the chord
        ax.annotate("", xy=(xb, yb), xytext=(xa, ya), zorder=2,
                    arrowprops=dict(arrow, connectionstyle=f"arc3,rad={rad}"))
        apex = (ya + yb) / 2 + (0.5 * abs(rad) * abs(xb - xa)) * (1 if forward else -1)
        ax.text((xa + xb) / 2, apex + (0.04 if forward else -0.04), label, ha="center",
                va="bottom" if forward else "top", fontsize=7, color="#444444", zorder=4,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))
    fig.legend(handles=_kind_handles({d.get("kind") for _, d in s.nodes(data=True)}), loc="upper right",
               fontsize=7, frameon=False)
    n_imp = sum(d.get("implied", 0) for _, d in s.nodes(data=True))
    ax.text(0.3, height - 0.15, f"dominance graph, one box per constraint family: {total} constraint instances, "
            f"{n_imp} implied\nan arrow runs from the family of the premises to the family of the rows they imply "
            "(rule (pass): rows derived)", fontsize=9, va="top", ha="left")
    _save(fig, path, fmt, dpi=130)
    plt.close(fig)


def _natural(name: str):
    import re
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]

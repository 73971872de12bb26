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

    def write(self, fmt: str, path: str | None):
        """Write the graph as dot, graphml, json or png; returns the text for dot/json when ``path`` is None."""
        g = self.to_networkx()
        if fmt == "dot":
            text = _to_dot(g)
        elif fmt == "json":
            text = json.dumps(nx.node_link_data(g, edges="edges"), indent=1)
        elif fmt == "graphml":
            if path is None:
                raise ValueError("graphml needs an output file (-o FILE)")
            nx.write_graphml(g, path)
            return None
        elif fmt == "png":
            if path is None:
                raise ValueError("png needs an output file (-o FILE)")
            _draw_png(g, path, self)
            return None
        else:
            raise ValueError(f"unknown graph format '{fmt}' (dot, graphml, json, png)")
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
        lines.append(f'  "{n}" [shape=box, style="{style}", color="{color}"];')
    for a, b, d in g.edges(data=True):
        lines.append(f'  "{a}" -> "{b}" [tooltip="{d.get("rule", "")}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


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


def _draw_png(g: nx.DiGraph, path: str, graph: DominanceGraph):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    try:
        depth = _layers(g)
    except nx.NetworkXUnfeasible:  # a cycle (should not happen): one column per family instead
        fam = {f.name: k for k, f in enumerate(graph.families)}
        depth = {n: fam.get(d.get("family"), 0) for n, d in g.nodes(data=True)}
    order = {f.name: k for k, f in enumerate(graph.families)}
    columns: dict[int, list] = {}
    for n, d in g.nodes(data=True):
        if d.get("kind") != "and":
            columns.setdefault(depth[n], []).append(n)
    pos = {}
    for x, nodes in columns.items():
        nodes.sort(key=lambda n: (order.get(g.nodes[n].get("family"), 99), _natural(n)))
        for y, n in enumerate(nodes):
            pos[n] = (x * 3.0, -y)
    for a in (n for n, d in g.nodes(data=True) if d.get("kind") == "and"):
        succ = [pos[s] for s in g.successors(a) if s in pos]
        if succ:
            pos[a] = (succ[0][0] - 0.9, succ[0][1])
        else:
            pos[a] = (depth[a] * 3.0 + 1.5, 0)
    tallest = max((len(v) for v in columns.values()), default=1)
    fig, ax = plt.subplots(figsize=(max(7.0, 2.3 * len(columns)), max(4.0, 0.42 * tallest + 1.5)))
    ands = [n for n, d in g.nodes(data=True) if d.get("kind") == "and"]
    implied = [n for n, d in g.nodes(data=True) if d.get("implied")]
    kept = [n for n, d in g.nodes(data=True) if not d.get("implied") and d.get("kind") != "and"]
    nx.draw_networkx_edges(g, pos, ax=ax, edge_color="#c8c8c8", arrows=True, arrowsize=6, width=0.5,
                           connectionstyle="arc3,rad=0.05")
    for nodes, shape, alpha in ((kept, "s", 1.0), (implied, "o", 0.45)):
        nx.draw_networkx_nodes(g, pos, nodelist=nodes, ax=ax, node_shape=shape, node_size=55, alpha=alpha,
                               node_color=[_COLORS.get(g.nodes[n]["kind"], "#333") for n in nodes])
    nx.draw_networkx_nodes(g, pos, nodelist=ands, ax=ax, node_size=5, node_color="#777777")
    nx.draw_networkx_labels(g, {n: (x + 0.15, y) for n, (x, y) in pos.items() if n not in ands},
                            labels={n: n for n in pos if n not in ands}, font_size=6.5, ax=ax,
                            horizontalalignment="left")
    handles = [Line2D([], [], marker="s", ls="", color="#333", label="kept in the reduced model"),
               Line2D([], [], marker="o", ls="", color="#333", alpha=0.45, label="implied (dropped)"),
               Line2D([], [], marker=".", ls="", color="#777", label="AND of premises")]
    handles += [Line2D([], [], marker="s", ls="", color=c, label=k) for k, c in _COLORS.items()
                if k != "and" and any(d.get("kind") == k for _, d in g.nodes(data=True))]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    ax.set_title("dominance graph\nleft: constraints kept; each dropped constraint sits right of its premises",
                 fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def _natural(name: str):
    import re
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]

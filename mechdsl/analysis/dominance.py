"""The dominance graph: which constraints imply which, and why.

Nodes are the constraint instances of the ORIGINAL spec (``IC[3->1]``,
``IR[2]``) plus those a reduction adds (``MONO_q[1,2]``); a conjunction of
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
           "constraint": "#937860", "monotonicity": "#dd8452", "and": "#999999"}


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


def _draw_png(g: nx.DiGraph, path: str, graph: DominanceGraph):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fams = [f for f in graph.families]
    pos = {}
    col = {f.name: k for k, f in enumerate(fams)}
    rows: dict[str, int] = {}
    for n, d in g.nodes(data=True):
        if d.get("kind") == "and":
            continue
        fam = d["family"]
        rows[fam] = rows.get(fam, 0) + 1
        pos[n] = (col[fam] * 3.0, -rows[fam])
    ands = [n for n, d in g.nodes(data=True) if d.get("kind") == "and"]
    for a in ands:
        succ = list(g.successors(a))
        pred = list(g.predecessors(a))
        xs = [pos[p][0] for p in pred + succ if p in pos]
        ys = [pos[p][1] for p in pred + succ if p in pos]
        pos[a] = (sum(xs) / len(xs) + 0.8, sum(ys) / len(ys)) if xs else (0, 0)
    height = max(4, 0.32 * max(rows.values(), default=1))
    width = max(8, 3.2 * len(fams))
    fig, ax = plt.subplots(figsize=(width, height))
    implied = [n for n, d in g.nodes(data=True) if d.get("implied")]
    kept = [n for n, d in g.nodes(data=True) if not d.get("implied") and d.get("kind") != "and"]
    nx.draw_networkx_edges(g, pos, ax=ax, edge_color="#bbbbbb", arrows=True, arrowsize=6, width=0.5)
    for nodes, shape, alpha in ((kept, "s", 1.0), (implied, "o", 0.35)):
        nx.draw_networkx_nodes(g, pos, nodelist=nodes, ax=ax, node_shape=shape, node_size=60, alpha=alpha,
                               node_color=[_COLORS.get(g.nodes[n]["kind"], "#333") for n in nodes])
    nx.draw_networkx_nodes(g, pos, nodelist=ands, ax=ax, node_size=6, node_color="#777777")
    nx.draw_networkx_labels(g, {n: (x + 0.12, y) for n, (x, y) in pos.items() if n not in ands},
                            labels={n: n for n in pos if n not in ands}, font_size=6, ax=ax,
                            horizontalalignment="left")
    handles = [Line2D([], [], marker="s", ls="", color="#333", label="kept in the reduced model"),
               Line2D([], [], marker="o", ls="", color="#333", alpha=0.35, label="implied (removed)")]
    handles += [Line2D([], [], marker="s", ls="", color=c, label=k) for k, c in _COLORS.items()
                if any(d.get("kind") == k for _, d in g.nodes(data=True)) and k != "and"]
    ax.legend(handles=handles, loc="upper right", fontsize=7)
    ax.set_title("dominance graph: an arrow (through AND) means the premises imply the target", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)

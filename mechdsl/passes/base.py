"""Reduction passes: the contract every pass follows (after CVXPY's ``Reduction``).

A pass looks at the current :class:`Reduction` state (the problem so far, the
bound instance, the dominance graph, facts proved by earlier passes) and

* ``accepts(state) -> Acceptance``: whether it applies, with reasons either way;
* ``apply(state) -> inverse data``: rewrites ``state.problem``, records in
  ``state.graph`` every constraint it removes and the rule that justifies it;
* ``invert(values, inverse) -> values``: maps a solution of the reduced problem
  back to the original variables.

The solution is always verified against the ORIGINAL problem, so a wrong pass
cannot produce a silently wrong answer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..analysis.dominance import DominanceGraph
from ..ir import nodes as ir


@dataclass
class Acceptance:
    ok: bool
    reasons: list[str] = field(default_factory=list)

    def __bool__(self):
        return self.ok


@dataclass
class Applied:
    pass_name: str
    summary: str
    removed: int = 0
    added: int = 0
    details: list[str] = field(default_factory=list)


@dataclass
class Reduction:
    """The state threaded through the passes."""

    original: ir.Problem
    problem: ir.Problem
    inst: Any
    graph: DominanceGraph
    facts: dict = field(default_factory=dict)         # e.g. "ic_structure": {family: ICStructure}
    applied: list[Applied] = field(default_factory=list)
    rejected: list[tuple[str, list[str]]] = field(default_factory=list)
    eliminated: dict = field(default_factory=dict)    # var name -> elimination spec (compiled as expressions)
    inverse: list[tuple[Any, Any]] = field(default_factory=list)

    def replace_constraints(self, new: list[ir.ConstraintDef]):
        self.problem = ir.Problem(self.problem.vars, tuple(new), self.problem.objective)


class Pass:
    """Base class; subclasses set ``name`` and ``doc`` and implement the three methods."""

    name = "pass"
    doc = ""
    default = True  #: run by default (only when it accepts, i.e. where it is provably exact)

    def accepts(self, state: Reduction) -> Acceptance:
        raise NotImplementedError

    def apply(self, state: Reduction) -> Any:
        raise NotImplementedError

    def invert(self, values: dict, inverse: Any) -> dict:
        return values

"""Reduction passes: the contract every pass follows (after CVXPY's ``Reduction``).

A pass is constructed with the bound :class:`~mechdsl.instance.Instance` (the
data it reasons about) and is then a set of pure functions of an IR problem
and the typed :class:`~.facts.Facts` proved by earlier passes:

* ``accepts(problem, facts) -> Acceptance``: whether it applies, with reasons
  either way.  No side effects: neither argument (nor anything else) changes.
* ``apply(problem, facts) -> (new_problem, inverse, new_facts)``: a NEW
  problem (IR nodes are frozen dataclasses; the input is untouched), the data
  ``invert`` needs, and the input facts plus what this pass established: the
  structure it proved (e.g. :class:`~.facts.MonotoneFamily`), the rules of the
  dominance graph for every constraint instance it removed
  (:class:`~.facts.Implied`), and a report (:class:`Applied`).
* ``invert(values, inverse) -> values``: maps a solution of the reduced
  problem back to the variables of the problem the pass was given.

:class:`~.chain.Chain` runs the passes and owns the invert loop.  The solution
is always verified against the ORIGINAL problem, so a wrong pass cannot produce
a silently wrong answer.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from ..analysis.dominance import DominanceGraph
from ..ir import nodes as ir
from .facts import Applied, Facts


@dataclass(frozen=True)
class Acceptance:
    ok: bool
    reasons: list[str] = field(default_factory=list)

    def __bool__(self):
        return self.ok


class Pass:
    """Base class; subclasses set ``name`` and ``doc`` and implement the three methods."""

    name = "pass"
    doc = ""
    default = True  #: run by default (only when it accepts, i.e. where it is provably exact)

    def __init__(self, inst):
        self.inst = inst

    def accepts(self, problem: ir.Problem, facts: Facts) -> Acceptance:
        raise NotImplementedError

    def apply(self, problem: ir.Problem, facts: Facts) -> tuple[ir.Problem, Any, Facts]:
        raise NotImplementedError

    def invert(self, values: dict, inverse: Any) -> dict:
        return values

    def __repr__(self):
        return f"<pass {self.name}>"


class Stage(NamedTuple):
    """The problem after one applied pass (a tuple, so ``stage[1]`` is the problem)."""

    pass_name: str
    problem: ir.Problem
    eliminated: tuple[str, ...]  #: names of the variables eliminated so far, in order


@dataclass
class Reduction:
    """What :meth:`~.chain.Chain.run` returns: the reduced problem and how it was obtained.

    ``inverse`` lists ``(pass, inverse data)`` of the applied passes in order;
    :meth:`invert` walks it backwards (the chain's invert loop).
    """

    original: ir.Problem
    problem: ir.Problem
    inst: Any
    graph: DominanceGraph
    facts: Facts = field(default_factory=Facts)
    rejected: list[tuple[str, list[str]]] = field(default_factory=list)
    inverse: list[tuple[Pass, Any]] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    chain: Any = None

    @property
    def applied(self) -> list[Applied]:
        return list(self.facts.all(Applied))

    @property
    def eliminated(self) -> dict:
        """Variable name -> :class:`~.eliminate_payments.Elimination` (compiled as expressions)."""
        from .facts import Elimination

        return {e.var: e for e in self.facts.all(Elimination)}

    def invert(self, values: dict) -> dict:
        """A solution of :attr:`problem` -> one in the original variables (the inverses in reverse order)."""
        if self.chain is not None:
            return self.chain.invert(values, self.inverse)
        for p, data in reversed(self.inverse):
            values = p.invert(values, data)
        return values

    def dangling_premises(self, limit: int = 200_000) -> list[tuple[str, str]]:
        """(target, premise) pairs of the graph whose premise is not a constraint instance of the
        original or the reduced problem, nor the definition of an eliminated variable.  Empty when sound.

        Enumerates every rule's targets (up to ``limit`` of them); meant for tests and small models.
        """
        from .chain import instance_ids

        known = set(instance_ids(self.original, self.inst)) | set(instance_ids(self.problem, self.inst))
        for el in self.eliminated.values():
            known |= set(el.definition_ids())
        out, n = [], 0
        for rule in self.graph.rules:
            for cid in rule.targets():
                n += 1
                if n > limit:
                    return out
                for p in rule.premises(cid) or ():
                    if p not in known:
                        out.append((cid, p))
        return out


_MEMO: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def memo(inst, key, fn: Callable[[], Any]):
    """``fn()`` computed once per bound instance and ``key`` (a SymPy proof is not redone by ``apply``
    after ``accepts``).  A cache only: the result is a pure function of ``inst`` and ``key``."""
    try:
        table = _MEMO.setdefault(inst, {})
    except TypeError:  # not weak-referenceable: no cache
        return fn()
    if key not in table:
        table[key] = fn()
    return table[key]

"""Golden before/after tests of every reduction pass (in the style of MathOptInterface's bridge tests).

Each test loads a small spec, runs one pass (after its prerequisites), and
compares ``print_problem`` of the problem the pass was given and of the one it
returned with text files in tests/golden/.  A change to what a pass does fails
here; if it is intended, regenerate the files with

    MECHDSL_UPDATE_GOLDEN=1 python -m pytest tests/test_pass_golden.py

and read the diff.  The last tests check that ``accepts`` is pure.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import mechdsl
from mechdsl.ir.printer import print_problem
from mechdsl.passes import PASSES, Elimination, Facts
from test_passes import TWO_TYPES as TWO_TYPES_TEMPLATE

GOLDEN = Path(__file__).resolve().parent / "golden"
SPECS = Path(__file__).resolve().parents[1] / "specs"

SCREENING3 = (SPECS / "screening.mech", {"K": 3})

TWO_TYPES = TWO_TYPES_TEMPLATE.format(w1=1, w2=4)  # the spec of the two-type regression


def _model(which):
    if which == "two_types":
        return mechdsl.loads(TWO_TYPES, filename="two_types.mech")
    path, over = which
    return mechdsl.load(path, overrides=over, progress=False)


def run_until(model, names):
    """Apply ``names`` in order (each must accept); the problem and facts before the last, and after it."""
    inst = model.instance()
    problem, facts = model.mech.problem, Facts()
    before = None
    for name in names:
        p = PASSES[name](inst)
        acc = p.accepts(problem, facts)
        assert acc.ok, (name, acc.reasons)
        before = (problem, facts)
        problem, _, facts = p.apply(problem, facts)
    return inst, before, (problem, facts)


def text(problem, facts, inst) -> str:
    elim = {e.var: e for e in facts.all(Elimination)}
    return print_problem(problem, inst, elim or None)


def check_golden(name: str, got: str):
    path = GOLDEN / name
    if os.environ.get("MECHDSL_UPDATE_GOLDEN"):
        path.write_text(got)
    assert path.exists(), f"missing golden file {path} (MECHDSL_UPDATE_GOLDEN=1 to create it, then read it)"
    assert got == path.read_text(), f"{name} differs from the golden file"


CASES = {
    "local_ic": (SCREENING3, ["local_ic"]),
    "local_ic_two_types": ("two_types", ["local_ic"]),
    "drop_implied": (SCREENING3, ["local_ic", "drop_implied"]),
    "eliminate_payments": (SCREENING3, ["local_ic", "drop_implied", "eliminate_payments"]),
    "eliminate_payments_two_types": ("two_types", ["local_ic", "drop_implied", "eliminate_payments"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_pass_golden(case):
    which, names = CASES[case]
    inst, (p0, f0), (p1, f1) = run_until(_model(which), names)
    check_golden(f"{case}.before.txt", text(p0, f0, inst))
    check_golden(f"{case}.after.txt", text(p1, f1, inst))


def test_every_pass_has_a_golden_test():
    assert {names[-1] for _, names in CASES.values()} == set(PASSES)


def test_golden_stages_agree_with_the_chain():
    """What the chain records as stages is what the passes return one by one."""
    model = _model(SCREENING3)
    red = model.reduce()
    inst = model.instance()
    for stage in red.stages:
        _, _, (p, f) = run_until(model, list(PASSES)[: list(PASSES).index(stage.pass_name) + 1])
        assert print_problem(stage.problem, inst) == print_problem(p, inst)


# ------------------------------------------------------------ accepts has no side effects
def _snapshot(problem, facts, inst):
    return print_problem(problem, inst), len(facts), [repr(f) for f in facts], facts.items


@pytest.mark.parametrize("which", [SCREENING3, "two_types", (SPECS / "two_item_additive.mech", {})],
                         ids=["screening", "two_types", "two_item_additive"])
def test_accepts_leaves_its_inputs_unchanged(which):
    model = _model(which)
    inst = model.instance()
    problem, facts = model.mech.problem, Facts()
    for name, cls in PASSES.items():
        p = cls(inst)
        snap = _snapshot(problem, facts, inst)
        first = p.accepts(problem, facts)
        second = p.accepts(problem, facts)
        assert first == second
        assert _snapshot(problem, facts, inst) == snap, f"{name}.accepts changed its inputs"
        if first.ok:
            new_problem, _, new_facts = p.apply(problem, facts)
            assert _snapshot(problem, facts, inst) == snap, f"{name}.apply changed its inputs"
            assert new_facts.items[: len(facts)] == facts.items  # facts only grow
            problem, facts = new_problem, new_facts

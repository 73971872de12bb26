"""A bounded fuzz test in CI: mutants of every spec in specs/ end in success or a located MechError.

The full campaign (10,000 mutants, a worker pool, timeouts) is ``python -m tests.fuzz``; this runs a
fixed, seeded sample of 120 mutants in process, plus random param expressions, so CI is
deterministic.  Any exception other than a MechError fails the test, as does a MechError with no
``file:line:col: error:`` location (or no named command-line argument).
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz  # noqa: E402  (tests/fuzz.py)

import mechdsl.api as api  # noqa: E402
from mechdsl.compilers.standard.build import NotLinear  # noqa: E402
from mechdsl.errors import MechError  # noqa: E402


def _outcome(path: Path, data=None) -> str:
    try:
        m = api.load(path, data=data)
        m.check()
        m.instance()
        try:
            built, _ = m.compile_form()
            if built.form.problem_class not in ("LP", "QP", "MILP"):
                m.compile()
        except NotLinear:
            m.compile()
        return "ok"
    except MechError as exc:
        assert fuzz.LOCATED.search(str(exc)), f"unlocated error for {path.name}:\n{exc}"
        return "located"


def test_mutated_specs(tmp_path):
    counts = {"ok": 0, "located": 0}
    for i, (name, data, raw) in enumerate(fuzz.mutants(120, seed=12)):
        if "multi_type" in name:  # the NLP specs cost ~1 s each; the campaign covers them
            continue
        p = tmp_path / f"m{i}_{name}"
        p.write_bytes(raw)
        counts[_outcome(p, data)] += 1
    assert counts["located"] > 0 and counts["ok"] > 0  # the sample exercises both outcomes


def _expr(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(["0", "1", "-1", "2.5", "1e308", "1e-308", "K", "(K - 1)", "0.0"])
    op = rng.randrange(4)
    if op == 0:
        return f"({_expr(rng, depth - 1)} {rng.choice('+-*/^')} {_expr(rng, depth - 1)})"
    if op == 1:
        return f"{rng.choice(['sqrt', 'log', 'exp', 'abs'])}({_expr(rng, depth - 1)})"
    if op == 2:
        return f"{rng.choice(['min', 'max'])}({_expr(rng, depth - 1)}, {_expr(rng, depth - 1)})"
    return f"-{_expr(rng, depth - 1)}"


@pytest.mark.parametrize("seed", range(3))
def test_random_param_expressions(tmp_path, seed):
    """Random arithmetic in params and bounds: a value, or a located arithmetic error (never NaN)."""
    rng = random.Random(seed)
    for i in range(40):
        e = _expr(rng, 4)
        p = tmp_path / f"e{i}.mech"
        p.write_text(f"param K = 1;\nparam a = {e};\nvar x >= 0, <= 1;\nconstraint C: x <= a + 2;\nmaximize x;\n")
        try:
            m = api.load(p)
            m.instance()
            a = m.instance().params["a"]
            assert a == a and abs(a) != float("inf"), f"{e} gave {a}"  # a NaN or inf never passes
        except MechError as exc:
            assert fuzz.LOCATED.search(str(exc)), f"{e}: {exc}"

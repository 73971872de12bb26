"""Reports: derived outputs (payments, utilities, surplus, checks) evaluated on a solution.

Stage: ``(Instance, Mechanism, solution values) -> {report: {index: value}}``.  A report is a
``report NAME[idx] = expr;`` declaration.  It is evaluated after the solve (or, in a spec with no
main problem, after the data and the auxiliary problems), with the decision variables at their
solution values; a report used in a later report was expanded in place when lowering.
"""
from __future__ import annotations

import math

import numpy as np

from .evaluate import EvalError, Evaluator, ValuesTarget, canon, flat_key
from .ir import nodes as ir


def evaluate_reports(inst, mech: ir.Mechanism, values: dict) -> dict[str, dict[tuple, object]]:
    """Every report of ``mech`` over its index set: numbers (floats or ints) or booleans."""
    ev = Evaluator(inst, ValuesTarget(values))
    out: dict[str, dict[tuple, object]] = {}
    for rep in mech.reports:
        try:
            keys = ev.domain_keys(rep.domain)
            binders = rep.domain.binders if rep.domain else ()
            fn = ev.compile(rep.expr)
            table = {}
            for key in keys:
                table[flat_key(key)] = _plain(fn(dict(zip(binders, key)), 0))
        except EvalError as exc:
            if exc.span is None:
                exc.span = rep.span
            raise
        out[rep.name] = table
    return out


def _plain(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, tuple):
        return tuple(canon(x) for x in v)
    v = canon(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        v = float(v)
    if isinstance(v, float) and not math.isfinite(v):
        return v
    return v

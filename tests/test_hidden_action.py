"""Expectations under a distribution given by a param's row, E[s ~ F[j, .]](...): a min-pay contract per
hidden action (moral hazard) as an aux family, checked against scipy's LP per action."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

import mechdsl
from mechdsl.errors import MechError

F = [[0.6, 0.3, 0.1], [0.3, 0.4, 0.3], [0.1, 0.3, 0.6], [0.1, 0.3, 0.6]]
C = [0.0, 1.0, 2.0, 2.5]

SRC = """
set S = 1..3;
set A = 1..4;
param F[a in A, s in S];
param c[a in A];
aux Pay[j in A] {
  var t[s in S] >= 0;                                      # limited liability
  constraint IC[a in A: a != j]: E[s ~ F[j, .]](t[s]) - c[j] >= E[s ~ F[a, .]](t[s]) - c[a];
  minimize E[s ~ F[j, .]](t[s]);
}
report implementable[j in A] = Pay[j].feasible;
report cost[j in A] = if Pay[j].feasible then Pay[j].objective else -1;
"""


def _reference(j):
    f = np.array(F)
    others = [a for a in range(len(C)) if a != j]
    A_ub = np.array([f[a] - f[j] for a in others])         # E_a[t] - E_j[t] <= c[a] - c[j]
    b_ub = np.array([C[a] - C[j] for a in others])
    return linprog(f[j], A_ub=A_ub, b_ub=b_ub, bounds=[(0, None)] * 3, method="highs")


def test_min_pay_contracts_match_linprog():
    r = mechdsl.loads(SRC, data={"F": F, "c": C}).solve()
    assert r.status == "evaluated"
    for j in range(4):
        ref = _reference(j)
        assert r.reports["implementable"][(j + 1,)] is (ref.status == 0)
        if ref.status == 0:
            assert r.reports["cost"][(j + 1,)] == pytest.approx(ref.fun, abs=1e-9)
    assert any(not v for v in r.reports["implementable"].values())  # action 4: action 3 costlier, not implementable


def test_expectation_over_a_row_needs_one_slot():
    with pytest.raises(MechError) as ei:
        mechdsl.loads("param F[a in 1..2, s in 1..2] = 0.5;\nparam x = E[s ~ F[1, 1]](s);").check()
    assert "exactly one index is '.'" in str(ei.value)
    r = mechdsl.loads("param F[a in 1..2, s in 1..3] = [[0.2, 0.3, 0.5], [1, 0, 0]];\n"
                      "param m[a in 1..2] = E[s ~ F[a, .]](s * s);\nreport r[a in 1..2] = m[a];").solve()
    assert r.reports["r"][(1,)] == pytest.approx(0.2 + 0.3 * 4 + 0.5 * 9)
    assert r.reports["r"][(2,)] == pytest.approx(1.0)

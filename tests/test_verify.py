"""Verification: the vectorised path checks exactly what the scalar path checks."""
import numpy as np
import pytest

import mechdsl
import mechdsl.verify as V
from conftest import SPECS


def test_vector_and_scalar_verification_agree_on_a_perturbed_menu(monkeypatch):
    model = mechdsl.load(SPECS / "screening.mech", overrides={"K": 60})
    res = model.solve()
    assert res.verification.ok
    inst = model.instance()
    rng = np.random.default_rng(0)
    values = {n: {k: v + rng.normal(0, 0.01) for k, v in vals.items()} for n, vals in res.variables.items()}
    fast = V.verify(inst, model.mech.problem, values)
    monkeypatch.setattr(V, "VECTOR_MIN", 10**12)  # force instance-by-instance evaluation
    slow = V.verify(inst, model.mech.problem, values)
    assert fast.checked == slow.checked == 60 * 59 + 60
    assert fast.max_regret == pytest.approx(slow.max_regret, rel=1e-12) and fast.max_regret > 0
    assert fast.max_ir_violation == pytest.approx(slow.max_ir_violation, rel=1e-12)
    assert fast.worst[0][1] == slow.worst[0][1]  # the same worst constraint instance
    # Independent regret: max over t of max_r u(t, r) - u(t, t), with u = theta[t] q[r] - p[r].
    th = np.arange(1, 61) / 60
    q = np.array([values["q"][(k,)] for k in range(1, 61)])
    p = np.array([values["p"][(k,)] for k in range(1, 61)])
    U = th[:, None] * q[None, :] - p[None, :]
    assert fast.max_regret == pytest.approx(max(0.0, (U.max(axis=1) - np.diag(U)).max()), rel=1e-12)

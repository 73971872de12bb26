import logging
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

logging.getLogger("pyomo").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def specs_dir() -> Path:
    return SPECS


def payment_matrix(v):
    """Paper 000, Prop. 1 / eq. (10)-(13): p_k(x) = P[k] @ x, i.e. v_K x_K + sum_{j=k}^{K-1} v_j (x_j - x_{j+1})."""
    import numpy as np

    K = len(v)
    P = np.zeros((K, K))
    for k in range(K):
        P[k, K - 1] += v[K - 1]
        for j in range(k, K - 1):
            P[k, j] += v[j]
            P[k, j + 1] -= v[j]
    return P

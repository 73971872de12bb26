import logging
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

logging.getLogger("pyomo").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def specs_dir() -> Path:
    return SPECS

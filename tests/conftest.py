import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "xrbench"

# Tests run on the CPU; keep XLA to the cores CI has.
os.environ.setdefault("JAX_PLATFORMS", "cpu")


@pytest.fixture(scope="session")
def xrbench_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/xrbench is not present")
    return SHARED

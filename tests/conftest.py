import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "xrbench"

# Tests run on the CPU; keep XLA to the cores CI has.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Subprocess tests run `python -m pipeorgan_jax` from a temporary folder: let them import the
# checkout when the package is not installed.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


@pytest.fixture(scope="session")
def xrbench_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/xrbench is not present")
    return SHARED

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "xrbench"

# Tests run on the CPU; keep XLA to the cores CI has.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# `python -m pipeorgan_jax` subprocesses find this checkout whether or not it is installed.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    """Command-line runs in tests share one throw-away compilation cache (never the user's)."""
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("xla_cache"))
    yield


@pytest.fixture(scope="session")
def xrbench_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/xrbench is not present")
    return SHARED

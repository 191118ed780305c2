"""The batch model against its golden outputs (tests/data/golden_cost.npz, written by
benchmarks/golden.py from the model before the table rewrite): every output within 1e-6
relative, feasibility and reason codes exact. The golden file holds the vmapped XLA path's
numbers, so this checks that path (backend="xla"); tests/test_kernel.py holds the kernel
against the JAX combine."""
import importlib.util
from pathlib import Path

import pytest

from pipeorgan_jax.cost import Scorer

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("golden", ROOT / "benchmarks" / "golden.py")
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)
xla = lambda *a, **k: Scorer(*a, **k, backend="xla")

# small models on every topology and both XR-bench array sizes; the rest is -m slow
QUICK = ("KD_res8_narrow|xrbench_4k|torus|6", "KD_res8_narrow|xrbench_8k|express|8",
         "AS_ED_TCN|xrbench_4k|torus|6", "ES_RITNet|small|mesh|4", "ASR_EM_24L|small|express|4")


def test_golden_quick():
    assert set(QUICK) <= set(golden.keys_of(golden.GOLDEN))
    assert golden.check(golden.GOLDEN, 1e-6, keys=list(QUICK), verbose=False, scorer_factory=xla) == 0


@pytest.mark.slow
def test_golden_all():
    assert golden.check(golden.GOLDEN, 1e-6, verbose=False, scorer_factory=xla) == 0

"""The fused C++ cost kernel (cost/kernel.py, csrc/) against the JAX combine: every float
output within 1e-6 relative, feasibility, reason codes and per-segment feasibility exactly, on
random placements (infeasible ones included: segments deeper than max_depth, the reduction
split where it does not apply, PE SRAM overflow), on every built-in model (-m slow) and
every NoC topology and both XR-bench array sizes.

The reference is `score_one` evaluated one placement at a time (lax.map), not the vmapped
`score_batch`: under vmap XLA rewrites a division by a broadcast operand (a model array such
as Yo, K) into a multiplication by its reciprocal, so the vmapped XLA path rounds some exact
quotients up (ceil(7 * 28 / 28) = 8 rows) and differs from its own unbatched self (SS_HRViT_b1:
seg_latency by up to 59% on a few of the golden placements). The kernel divides, as
score_one and the reference do. Whole-network sums (over layers and edges) are added in
XLA's order where it is known (cost kernel `net_sum`), else in layer order: they differ by
float rounding only (< 4e-7 relative on the golden placements)."""
import importlib.util
import logging
from pathlib import Path

import jax
import numpy as np
import pytest

from pipeorgan_jax.cost import Scorer, hw_arrays, kernel, model_arrays, score_batch, score_one
from pipeorgan_jax.loading import builtin_models, load_model
from pipeorgan_jax.placement import concat, sample

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("golden", ROOT / "benchmarks" / "golden.py")
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)

needs_kernel = pytest.mark.skipif(not kernel.available(), reason=f"cost kernel: {kernel.load_error()}")
EXACT = ("feasible", "reason", "seg_feasible")
VARIANTS = [(hw, topo, D) for hw, D in (("xrbench_4k", 6), ("xrbench_8k", 8))
            for topo in ("mesh", "torus", "express")]


@jax.jit
def _one_at_a_time(ma, ha, p):
    return jax.lax.map(lambda q: score_one(ma, ha, q), p)


def compare(model_name: str, hw_name: str, topology: str, D: int, n: int, seed: int) -> dict:
    """Kernel against score_one on n random placements: {output: worst relative difference
    (floats) or mismatch count (exact outputs)}; also the placements' feasible count."""
    model, hw = load_model(model_name), golden.hardware(hw_name, topology)
    ma, ha = jax.device_put(model_arrays(model)), jax.device_put(hw_arrays(hw, D))
    p = golden.placements(model, D, n, seed)
    # plus shallow segments of thin tiles, which mostly fit (the above mostly do not)
    red_ok = np.asarray([l.reduction_ok for l in model.layers])
    thin = sample(np.random.default_rng(seed), len(model.layers), n // 2, max_depth=min(2, D),
                  grans=(0, 1), parts=(0, 2, 3), red_ok=red_ok)
    p = concat([p, thin])
    ref = _one_at_a_time(ma, ha, jax.device_put(p))
    new = score_batch(ma, ha, p, backend="kernel")
    out = {"n": p.batch_size, "n_feasible": int(np.asarray(ref.feasible).sum())}
    for f in ref._fields:
        a, b = np.asarray(getattr(ref, f)), np.asarray(getattr(new, f))
        assert a.dtype == b.dtype and a.shape == b.shape, f
        if f in EXACT:
            out[f] = int((a != b).sum())
            continue
        rel = np.where(a == b, 0.0, np.abs(b.astype(np.float64) - a) / np.maximum(np.abs(a), 1e-30))
        out[f] = float(rel.max())
    return out


def _check(res: dict) -> list[str]:
    return [f"{k}={v}" for k, v in res.items() if (k in EXACT and v) or (k not in EXACT + ("n", "n_feasible") and v > 1e-6)]


QUICK = [("KD_res8_narrow", "xrbench_4k", "torus", 6), ("KD_res8_narrow", "xrbench_8k", "express", 8),
         ("GE_FBNet_C", "xrbench_4k", "mesh", 6), ("ES_RITNet", "small", "mesh", 4)]


@needs_kernel
@pytest.mark.parametrize("case", QUICK, ids=["|".join(map(str, c)) for c in QUICK])
def test_kernel_agrees_quick(case):
    res = compare(*case, n=96, seed=1)
    assert not _check(res), res


@needs_kernel
@pytest.mark.slow
@pytest.mark.parametrize("model_name", builtin_models())
def test_kernel_agrees_all(model_name):
    """About 15,000 placements per model, split over 4K and 8K, mesh, torus and express."""
    bad, n = [], 0
    for i, v in enumerate(VARIANTS):
        res = compare(model_name, *v, n=1668, seed=100 + i)
        print(model_name, *v, res)  # the counts and worst differences (pytest -s)
        n += res["n"]
        bad += [f"{v}: {b}" for b in _check(res)]
    assert n >= 10_000 and not bad, bad


@needs_kernel
def test_kernel_under_jit_and_vmap():
    """A vmapped batch of batches, and a single placement, give the rows of one batch."""
    model, hw = load_model("KD_res8_narrow"), golden.hardware("xrbench_4k", "mesh")
    ma, ha = jax.device_put(model_arrays(model)), jax.device_put(hw_arrays(hw, 6))
    p = golden.placements(model, 6, 32, 3)[:32]
    flat = jax.jit(kernel.score)(ma, ha, p)
    nested = jax.jit(jax.vmap(lambda q: kernel.score(ma, ha, q)))(
        jax.tree_util.tree_map(lambda x: x.reshape((4, 8) + x.shape[1:]), p))
    single = jax.jit(jax.vmap(lambda q: kernel.score(ma, ha, q)))(p)  # each call one [L] placement
    for f in flat._fields:
        a = np.asarray(getattr(flat, f))
        np.testing.assert_array_equal(np.asarray(getattr(nested, f)).reshape(a.shape), a, err_msg=f)
        np.testing.assert_array_equal(np.asarray(getattr(single, f)), a, err_msg=f)


@needs_kernel
def test_kernel_vmapped_over_hardware_scalars():
    """Tables vmapped too (a sweep over hardware scalars) are mapped one set at a time."""
    model, hw = load_model("KD_res8_narrow"), golden.hardware("xrbench_4k", "mesh")
    ma, ha = jax.device_put(model_arrays(model)), jax.device_put(hw_arrays(hw, 6))
    p = golden.placements(model, 6, 16, 4)
    bws = np.asarray([64.0, 256.0], np.float32)
    out = jax.jit(jax.vmap(lambda bw: kernel.score(ma, ha.replace(glb_bw=bw), p).latency_cycles))(bws)
    for i, bw in enumerate(bws):
        ref = jax.jit(kernel.score)(ma, ha.replace(glb_bw=bw), p).latency_cycles
        np.testing.assert_array_equal(np.asarray(out[i]), np.asarray(ref))


LANE_CASES = [("GE_FBNet_C", "xrbench_4k", "mesh", 6), ("KD_res8_narrow", "xrbench_8k", "express", 8),
              ("ES_RITNet", "small", "torus", 4)]


@needs_kernel
@pytest.mark.parametrize("case", LANE_CASES, ids=["|".join(map(str, c)) for c in LANE_CASES])
def test_lanes_equal_the_scalar_kernel(case, monkeypatch):
    """The lane-parallel combine (csrc/combine_lanes.h: 16 placements per vector with AVX-512,
    8 with AVX2) gives bitwise the scalar combine's outputs (PIPEORGAN_KERNEL_SCALAR=1), signed
    zeros included: on a batch that is not a multiple of the lanes (its rest goes through the
    scalar combine), with the hardware's power-of-two bandwidths (divisions by them are
    multiplications there) and with bandwidths that are not powers of two."""
    model_name, hw_name, topology, D = case
    model, hw = load_model(model_name), golden.hardware(hw_name, topology)
    ma, ha = jax.device_put(model_arrays(model)), jax.device_put(hw_arrays(hw, D))
    p = golden.placements(model, D, 101, 11)[:101]
    odd = ha.replace(glb_bw=np.float32(100.0), dram_bw=np.float32(48.5), link_bw=np.float32(3.0))
    f = jax.jit(kernel.score)
    for h in (ha, odd):
        monkeypatch.delenv("PIPEORGAN_KERNEL_SCALAR", raising=False)
        lanes = jax.device_get(f(ma, h, p))
        monkeypatch.setenv("PIPEORGAN_KERNEL_SCALAR", "1")
        scalar = jax.device_get(f(ma, h, p))
        for name in lanes._fields:
            a, b = np.asarray(getattr(lanes, name)), np.asarray(getattr(scalar, name))
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8), err_msg=name)


def test_backend_falls_back_with_one_warning(monkeypatch, caplog):
    """Without the library, auto and kernel run the XLA path, with one warning line."""
    monkeypatch.setattr(kernel, "_load", lambda: (False, "not built"))
    kernel._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger=kernel.__name__):
        assert kernel.resolve("auto", "cpu") == "xla"
        assert kernel.resolve("kernel", "cpu") == "xla"
        assert kernel.resolve("xla", "cpu") == "xla"
    assert len(caplog.records) == 1 and "not built" in caplog.records[0].getMessage()
    kernel._warn_once.cache_clear()
    with pytest.raises(ValueError):
        kernel.resolve("fast")


def test_backend_off_cpu_is_xla():
    assert kernel.resolve("auto", "gpu") == "xla"


@needs_kernel
def test_kernel_matches_the_golden_file():
    """Every one of the 3,080 golden placements (all 11 XR-bench models, 4K and 8K arrays,
    mesh, torus and express; the XLA path's numbers, benchmarks/golden.py) through the kernel,
    lanes and scalar rest: floats within 1e-6 relative, flags exactly. About 10 s on 2 cores,
    so CI holds the kernel against every built-in model's golden cases."""
    factory = lambda *a, **k: Scorer(*a, **k, backend="kernel")
    assert golden.check(golden.GOLDEN, 1e-6, verbose=False, scorer_factory=factory) == 0

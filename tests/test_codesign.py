"""Hardware points batched in one jitted call; the co-design search and task."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeorgan_jax.codesign import codesign_model
from pipeorgan_jax.cost import Scorer, hw_arrays, model_arrays
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.hwbatch import LEAVES, point_hardware, score_points, score_points_each, values_array
from pipeorgan_jax.placement import Placement, sample
from pipeorgan_jax.search import Problem, baseline_spaces, run_strategy
from pipeorgan_jax.loading import load_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kd():
    m = load_model("KD_res8_narrow")
    hw = load_hardware("small")
    p = sample(np.random.default_rng(1), len(m.layers), 64, 4,
               red_ok=[l.reduction_ok for l in m.layers])
    return m, hw, p


def test_every_shape_free_leaf_batched_equals_a_scorer_of_that_hardware(kd):
    m, hw, p = kd
    keys = tuple(LEAVES)
    rng = np.random.default_rng(0)
    base = np.asarray([float(getattr(hw, k)) for k in keys])
    vals = base * rng.choice([0.25, 0.5, 1.0, 2.0, 4.0], (3, len(keys)))
    vals[:, keys.index("router_latency_cycles")] = [0, 1, 3]
    for k in ("pe_sram_bytes", "glb_bytes"):
        vals[:, keys.index(k)] = np.round(vals[:, keys.index(k)])
    c = score_points(model_arrays(m), hw_arrays(hw, 4), values_array(vals, keys), p, keys=keys)
    for h in range(len(vals)):
        ref = Scorer(m, point_hardware(hw, keys, vals[h]), max_depth=4)(p)
        for f in ("latency_cycles", "energy_pj", "feasible", "seg_latency", "dram_bytes"):
            np.testing.assert_allclose(np.asarray(getattr(c, f))[h], ref[f], rtol=1e-6)


def test_chunked_points_and_per_point_placements_agree(kd):
    m, hw, p = kd
    keys = ("dram_bytes_per_cycle", "glb_bytes_per_cycle")
    vals = values_array(np.asarray([[4, 8], [16, 32], [64, 64], [2, 4], [8, 8]], float), keys)
    ma, ha = model_arrays(m), hw_arrays(hw, 4)
    a = score_points(ma, ha, vals, p, keys=keys)
    b = score_points(ma, ha, vals, p, keys=keys, chunk=2)  # lax.map, 2 points at a time
    # same numbers up to float32 rounding (a different fusion order)
    np.testing.assert_allclose(np.asarray(a.latency_cycles), np.asarray(b.latency_cycles), rtol=1e-6)
    each = Placement(*(np.broadcast_to(np.asarray(f)[None], (5,) + np.shape(f)) for f in p.fields()))
    e = score_points_each(ma, ha, vals, each, keys=keys, chunk=3)
    np.testing.assert_allclose(np.asarray(a.energy_pj), np.asarray(e.energy_pj), rtol=1e-6)


@pytest.mark.parametrize("key", ["dram_bytes_per_cycle", "glb_bytes_per_cycle",
                                 "distribution_bytes_per_cycle", "link_bytes_per_cycle"])
def test_more_bandwidth_never_increases_a_fixed_placements_latency(kd, key):
    m, hw, p = kd
    v = getattr(hw, key) * np.geomspace(1 / 16, 16, 9)[:, None]
    c = score_points(model_arrays(m), hw_arrays(hw, 4), values_array(v, (key,)), p, keys=(key,))
    lat = np.asarray(c.latency_cycles, np.float64)  # [points, placements]
    assert (np.diff(lat, axis=0) <= 1e-5 * lat[1:]).all()
    assert (lat[0] > lat[-1]).any()  # and the sweep is not vacuous


def test_codesign_dp_nests_and_matches_dp_at_the_default_point():
    m = load_model("AS_ED_TCN")
    hw = load_hardware("small")
    keys = ("glb_bytes_per_cycle", "dram_bytes_per_cycle")
    vals = np.asarray([[hw.glb_bytes_per_cycle / 8, hw.dram_bytes_per_cycle / 8],
                       [hw.glb_bytes_per_cycle, hw.dram_bytes_per_cycle]])
    r = codesign_model(m, hw, keys, vals, max_depth=4, batch=64, rounds=2)
    lbl, ch, fl = (r[s]["latency_cycles"] for s in ("layer_by_layer", "chunked", "flexible"))
    assert (fl <= ch * (1 + 1e-6)).all() and (ch <= lbl * (1 + 1e-6)).all()
    assert np.allclose(r["speedup_vs_chunked"], ch / fl)
    assert r["flexible"]["feasible"].all()
    # the per-point search is as good as the ordinary dp run at that point (same effort),
    # within 2% (both sample their inner choices)
    sc, seeds = Scorer(m, hw, max_depth=4), []
    for s in ("layer_by_layer", "chunked", "flexible"):
        res = run_strategy("dp", Problem(sc, "latency", baseline_spaces(4)[s]), None, seeds)
        seeds = [res.best]
    assert fl[1] <= res.cost["latency_cycles"] * 1.02
    # a slower GLB and DRAM never make the best latency lower
    assert (lbl[0] >= lbl[1]) and (fl[0] >= fl[1] * (1 - 1e-6))


def _run(args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pipeorgan_jax", *args, "progress=false",
                           f"hydra.run.dir={tmp_path}", f"compilation_cache_dir={tmp_path / 'xla'}"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def test_codesign_task_writes_points_and_plots(tmp_path):
    r = _run(["task=codesign", "+workload=KD_res8_narrow", "hardware=small",
              "search.dp_batch_size=16", "search.dp_rounds=1", "search.max_depth=3",
              "codesign.keys=[dram_bytes_per_cycle]", "codesign.values=[[0.5, 1.0, 2.0]]"], tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "codesign.json").read_text())
    assert [p["dram_bytes_per_cycle"] for p in doc["points"]] == [8.0, 16.0, 32.0]
    kd = doc["models"]["KD_res8_narrow"]
    assert len(kd["speedup_vs_chunked"]) == 3 and min(kd["speedup_vs_chunked"]) >= 1 - 1e-6
    assert (tmp_path / "plots" / "codesign_speedup.png").is_file()
    assert (tmp_path / "codesign.csv").read_text().count("\n") == 4


@pytest.mark.parametrize("override,needle", [
    ("codesign.keys=[rows,dram_bytes_per_cycle]", "codesign.keys: rows is not a shape-free hardware key"),
    ("codesign.values=[[1],[0.5,-1]]", "codesign.values for dram_bytes_per_cycle: -1 must be"),
    ("codesign.values=[[1]]", "codesign.values: 1 value lists for 2 keys"),
    ("codesign.max_rows=0", "codesign.max_rows=0"),
    ("scenario.rt_k_per_ms=-1", "scenario.rt_k_per_ms=-1"),
])
def test_bad_codesign_or_scenario_override_is_one_line(tmp_path, override, needle):
    r = _run(["task=codesign", "+workload=KD_res8_narrow", "hardware=small", override], tmp_path)
    assert r.returncode == 1
    assert needle in r.stderr and "Traceback" not in r.stderr

"""Batch cost model: a case worked out by hand, and invariants checked with hypothesis."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pipeorgan_jax import reference
from pipeorgan_jax.cost import Scorer, hw_arrays
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.placement import Placement, layer_by_layer, sample, validate
from pipeorgan_jax.workload import build_model, load_model

ONE_FC = {"name": "one_fc", "inputs": [{"name": "x", "shape": [16, 4, 1]}],
          "layers": [{"name": "fc", "op": "fc", "inputs": ["x"], "C": 16, "K": 8, "Y": 4}]}


@pytest.fixture(scope="module")
def small():
    return load_hardware("small")


def test_one_fc_layer_by_layer_by_hand(small):
    """One fc (16 -> 8 features, 4 tokens, int8) on the 8x8 array (16 units of 2x2 PEs),
    spatial partition, whole tensor as one tile.

    compute: 4 output positions over 64 PEs -> ceil(4/64) = 1 position per PE, 8 outputs x 16
      MACs each = 128 cycles;
    preload: 128 weight bytes / 16 B/cycle DRAM = 8 cycles;
    input tile: 64 bytes from DRAM (16 B/cycle: 4 cycles; GLB 32 B/cycle: 2; port link per PE
      row 8 bytes / 4 B/cycle: 2) -> 4 cycles, plus 1 cycle per hop to the farthest PE (port
      link + 7 row hops = 8) -> 12;
    output tile: 32 bytes to DRAM (2 cycles; GLB 1; port link 4 bytes: 1) + 8 hops -> 10;
    latency = 8 + 12 + 128 + 10 = 158 cycles.
    Energy (pJ): MAC 512 x 0.2 = 102.4; GLB bytes: input written 64 + read 64, weights written
    128 + read 128, output written 32 = 416 -> x1.2 = 499.2; DRAM: weights 128 + input 64 +
    output 32 = 224 -> x40 = 8960. Byte-hops: a PE in column x is 1 + x hops from its row's
    port, 36 hops summed over a row of 8; the input gives each PE 1 byte (8 rows x 36 = 288),
    the output 0.5 byte (144); every unit gets all 128 weight bytes (spatial), 32 per PE
    (8 x 32 x 36 = 9216), and broadcasts them inside the unit over 3 links (16 x 128 x 3 =
    6144); total 15792 -> x0.4 = 6316.8. PE SRAM: 512 operand bytes + bytes delivered (input
    64 + weights 2048 x 4 PEs) = 8768 -> x0.2 =
    1753.6. Total 17632.
    """
    m = build_model(ONE_FC, "one_fc")
    p = layer_by_layer(1, gran=6, part=np.zeros(1, int))
    c = Scorer(m, small)(p)
    assert c["latency_cycles"][0] == pytest.approx(158.0)
    assert c["byte_hops"][0] == pytest.approx(15792.0)
    assert c["glb_bytes"][0] == pytest.approx(416.0)
    assert c["dram_bytes"][0] == pytest.approx(224.0)
    assert c["energy_mac_pj"][0] == pytest.approx(102.4)
    assert c["energy_noc_pj"][0] == pytest.approx(6316.8)
    assert c["energy_pe_sram_pj"][0] == pytest.approx(1753.6)
    assert c["energy_pj"][0] == pytest.approx(17632.0)
    assert bool(c["feasible"][0])
    r = reference.evaluate(m, small, p)
    assert r["latency_cycles"] == pytest.approx(158.0)
    assert r["energy_pj"] == pytest.approx(17632.0)


def _fast(hw, **kw):
    """Bandwidths so high that compute is the only bound."""
    return dataclasses.replace(hw, glb_bytes_per_cycle=1e12, dram_bytes_per_cycle=1e12,
                               link_bytes_per_cycle=1e12, router_latency_cycles=0, **kw)


@settings(max_examples=25, deadline=None)
@given(C=st.integers(1, 64), K=st.integers(1, 64), Y=st.integers(1, 40), X=st.integers(1, 40),
       R=st.sampled_from([1, 3, 5]), part=st.integers(0, 2))
def test_more_pes_never_slow_a_compute_bound_layer(small, C, K, Y, X, R, part):
    m = build_model({"name": "conv", "inputs": [{"name": "x", "shape": [C, Y, X]}],
                     "layers": [{"name": "c", "op": "conv", "inputs": ["x"], "C": C, "K": K,
                                 "Y": Y, "X": X, "R": R, "S": R}]})
    p = layer_by_layer(1, gran=0, part=np.full(1, part))
    lat = []
    for rows, cols in ((8, 8), (16, 8), (16, 16)):
        hw = _fast(small, rows=rows, cols=cols, pe_sram_bytes=1 << 30)
        lat.append(float(Scorer(m, hw)(p)["latency_cycles"][0]))
    assert lat[0] >= lat[1] >= lat[2]


@pytest.fixture(scope="module")
def kd_small(small):
    m = load_model("KD_res8_narrow")
    return m, Scorer(m, small, max_depth=6)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_more_link_bandwidth_never_raises_latency(kd_small, small, seed):
    m, sc = kd_small
    p = sample(np.random.default_rng(seed), len(m.layers), 64, max_depth=6)
    base = sc(p)["latency_cycles"]
    sc2 = Scorer.__new__(Scorer)
    sc2.model, sc2.hw, sc2.ma = m, small, sc.ma
    sc2.ha = hw_arrays(small.with_(link_bytes_per_cycle=small.link_bytes_per_cycle * 4), 6)
    faster = sc2(p)["latency_cycles"]
    assert (faster <= base * (1 + 1e-6)).all()


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_energy_at_least_mac_energy_and_never_nan(kd_small, small, seed):
    m, sc = kd_small
    p = sample(np.random.default_rng(seed), len(m.layers), 128, max_depth=6)
    for i in range(0, 128, 32):
        assert validate(p[i], len(m.layers), small.n_units) == []
    c = sc(p)
    for k, v in c.items():
        if v.dtype.kind == "f":
            assert np.isfinite(v).all(), k
    assert (c["energy_pj"] >= c["energy_mac_pj"] * (1 - 1e-6)).all()
    assert (c["energy_mac_pj"] > 0).all()
    # infeasible placements carry a reason, feasible ones none
    assert ((c["reason"] == 0) == c["feasible"]).all()


def test_validator_names_problems(small):
    m = load_model("KD_res8_narrow")
    L = len(m.layers)
    p = layer_by_layer(L).numpy()
    bad = Placement(np.zeros(L, bool), p.gran, np.full(L, 9), p.share, p.part)
    errs = validate(bad, L, small.n_units)
    assert any("seg_end" in e for e in errs) and any("org" in e for e in errs)
    deep = Placement(np.eye(1, L, L - 1, dtype=bool)[0], p.gran, p.org, p.share, p.part)
    assert any("allocation units" in e for e in validate(deep, L, 4))

"""Batch cost model: a case worked out by hand, and invariants checked with hypothesis."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pipeorgan_jax import reference
from pipeorgan_jax.cost import Scorer, hw_arrays
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.placement import Placement, layer_by_layer, sample, validate
from pipeorgan_jax.workload import build_model
from pipeorgan_jax.loading import load_model

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
    preload (the first segment: nothing to hide it behind): 128 weight bytes at min(DRAM 16,
      GLB 32, distribution 32 B/cycle) = 8 cycles;
    input tile: 64 bytes from DRAM (16 B/cycle: 4 cycles; GLB write + read 128 B at 32: 4;
      distribution 64 B at 32: 2) -> 4 cycles, plus 1 cycle per pitch to the farthest PE of
      the distribution bus (1 + 7 = 8) -> 12;
    output tile: 32 bytes to DRAM (2 cycles; GLB 1; distribution 1) + 8 -> 10;
    latency = 8 + 12 + 128 + 10 = 158 cycles, above every bound (GLB 416/32 = 13, DRAM
      224/16 = 14).
    Energy (pJ): MAC 512 x 0.23 = 117.76; GLB bytes: input written 64 + read 64, weights
    written 128 + read 128 (once: multicast), output written 32 = 416 -> x2.5 = 1040; DRAM:
    weights 128 + input 64 + output 32 = 224 -> x46 = 10304. Distribution wire: a PE in column
    x is 1 + x pitches from its row's port, 36 summed over a row of 8; the input gives each PE
    1 byte (8 rows x 36 = 288), the output gathers 0.5 byte per PE (144); the weights (spatial:
    every PE holds all 128) are multicast once: every one of the 8 row buses carries them to
    column 7, 8 pitches each, 128 x 64 = 8192; total 8624 byte-pitches -> x0.46 = 3967.04. PE
    SRAM: 2 operand bytes per MAC (1024) + bytes delivered (input 64 + weights 128 x 64 PEs)
    = 9280 -> x1.25 = 11600. Total 27028.8.
    """
    m = build_model(ONE_FC, "one_fc")
    p = layer_by_layer(1, gran=6, part=np.zeros(1, int))
    c = Scorer(m, small)(p)
    assert c["latency_cycles"][0] == pytest.approx(158.0)
    assert c["byte_hops"][0] == pytest.approx(8624.0)
    assert c["dist_byte_hops"][0] == pytest.approx(8624.0)
    assert c["glb_bytes"][0] == pytest.approx(416.0)
    assert c["dram_bytes"][0] == pytest.approx(224.0)
    assert c["energy_mac_pj"][0] == pytest.approx(117.76)
    assert c["energy_noc_pj"][0] == pytest.approx(3967.04)
    assert c["energy_pe_sram_pj"][0] == pytest.approx(11600.0)
    assert c["energy_pj"][0] == pytest.approx(27028.8)
    assert bool(c["feasible"][0])
    r = reference.evaluate(m, small, p)
    assert r["latency_cycles"] == pytest.approx(158.0)
    assert r["energy_pj"] == pytest.approx(27028.8)


def test_one_fc_reduction_split_by_hand(small):
    """The same fc with the reduction partition: each of the 16 units takes 1 of the 16 input
    channels, its 4 PEs 2 of the 8 output channels each.

    compute: ceil(16/16) = 1 channel x 4 positions x 2 outputs = 8 MACs, plus the reduction:
      the unit sums the 15 partials it receives for its ceil(4/16) = 1 position, 2 outputs:
      (4 + 15) x 2 = 38 cycles;
    partial sums (4 bytes each, 32 outputs = 128 B per unit): unit i sends unit j != i the
      128 x c_j/16 = 8 B of its chunk, 15 x 128 = 1920 B delivered; between two units drawn
      uniformly from the 4x4 grid (2-PE pitch) the mean distance is 2.5 + 2.5 = 5 PE hops, so
      128 x 16 x 5 = 10240 byte-hops on the mesh;
    input: unit j gets its 4-byte channel slice, multicast to its 4 PEs: 2 rows x 2(col+1)
      pitches, summed over 4 units per unit column: 4 x 4 x 4 x (1+2+3+4) = 640, 64 x 4 = 256
      bytes delivered;
    weights: each PE its own 2 bytes (unicast): 2 x 8 rows x 36 = 576, 128 delivered;
    output: gathered from the chunks as in the spatial case: 144.
    """
    m = build_model(ONE_FC, "one_fc")
    p = layer_by_layer(1, gran=6, part=np.full(1, 3))
    c = Scorer(m, small)(p)
    r = reference.evaluate(m, small, p)
    assert r["segments"][0]["compute_cycles"] == [38]
    assert bool(c["feasible"][0]) and r["feasible"]
    assert c["byte_hops"][0] == pytest.approx(10240 + 640 + 576 + 144)
    assert c["dist_byte_hops"][0] == pytest.approx(640 + 576 + 144)
    assert r["byte_hops"] == pytest.approx(10240 + 640 + 576 + 144)
    assert r["delivered_bytes"] == pytest.approx(1920 + 256 + 128)
    assert c["energy_pe_sram_pj"][0] == pytest.approx((2 * 512 + 1920 + 256 + 128) * 1.25)
    # a 3x3 conv cannot split its reduction this way: infeasible, reason 3, in both models
    conv = build_model({"name": "c3", "inputs": [{"name": "x", "shape": [4, 8, 8]}], "layers": [
        {"name": "c", "op": "conv", "inputs": ["x"], "C": 4, "K": 8, "Y": 8, "X": 8, "R": 3,
         "S": 3}]}, "c3")
    c = Scorer(conv, small)(p)
    assert not c["feasible"][0] and c["reason"][0] == 3
    assert reference.evaluate(conv, small, p)["reason"] == 3


def test_replicated_weights_are_read_from_the_glb_once(small):
    """Multicast: a layer's GLB reads and DRAM bytes do not grow with the units that hold a
    copy of its weights; only the wire and the PE SRAM writes do."""
    m = build_model(ONE_FC, "one_fc")
    # spatial: every PE holds a copy; hybrid: every unit one copy split over its PEs
    out = {part: Scorer(m, small)(layer_by_layer(1, gran=6, part=np.full(1, part)))
           for part in (0, 2)}
    assert out[0]["glb_bytes"][0] == out[2]["glb_bytes"][0]
    assert out[0]["dram_bytes"][0] == out[2]["dram_bytes"][0]
    assert out[0]["energy_pe_sram_pj"][0] > out[2]["energy_pe_sram_pj"][0]


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


def test_no_latency_jump_at_the_pe_sram_threshold(small):
    """A spatial fc whose weights fill the 4 KiB PE SRAM: at K = 252 they stay resident, at
    K = 256 they are re-streamed once per tile. Both preload the first copy and hide the rest
    behind compute, so latency grows with K (1.6%) and does not jump at the threshold."""
    def run(K):
        m = build_model({"name": "rs", "inputs": [{"name": "x", "shape": [16, 4, 1]}],
                         "layers": [{"name": "fc", "op": "fc", "inputs": ["x"], "C": 16, "K": K,
                                     "Y": 4}]}, "rs")
        p = layer_by_layer(1, gran=0)
        return float(Scorer(m, small)(p)["latency_cycles"][0]), reference.evaluate(m, small, p)
    (b252, r252), (b256, r256) = run(252), run(256)
    assert r252["segments"][0]["restream"] == [False] and r256["segments"][0]["restream"] == [True]
    for lo, hi in ((b252, b256), (r252["latency_cycles"], r256["latency_cycles"])):
        assert 1.0 < hi / lo < 1.03

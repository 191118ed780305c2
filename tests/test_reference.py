"""Hand-worked checks of the exact reference model (pipeorgan_jax/reference.py).

The `small` hardware: 8x8 PEs, 2x2 units (4x4 unit grid, U = 16, g = 4), 4 B/cycle links,
router latency 1, GLB 32 B/cycle, DRAM 16 B/cycle, express_k = 2.
"""
import math

import numpy as np
import pytest

from pipeorgan_jax import reference as ref
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.placement import Placement, layer_by_layer, sample, segments
from pipeorgan_jax.workload import build_model
from pipeorgan_jax.loading import load_model


@pytest.fixture(scope="module")
def small():
    return load_hardware("small")


def topo(hw, t):
    return hw.with_(topology=t)


def links(hw, acc):
    return ref.split_links(hw, acc.loads())


def nonzero(d):
    """{(type, index...): bytes} of the non-zero links."""
    out = {}
    for t, a in d.items():
        for ix in zip(*np.nonzero(a)):
            out[(t,) + tuple(int(i) for i in ix)] = float(a[ix])
    return out


# ---------------------------------------------------------------- routing, hop by hop
def test_mesh_route_east_south(small):
    hw = topo(small, "mesh")
    acc = ref.LinkAcc(hw)
    acc.pe_flows([1], [1], [6], [7], 8.0)  # (1,1) -> (6,7): row 1 east, then column 7 south
    want = {("E", 1, x): 8.0 for x in range(1, 7)}
    want.update({("S", y, 7): 8.0 for y in range(1, 6)})
    assert nonzero(links(hw, acc)) == want
    assert acc.max_hops == 11 and acc.byte_hops == 88.0


def test_torus_route_wraps_shorter_way(small):
    hw = topo(small, "torus")
    acc = ref.LinkAcc(hw)
    # row: 1 -> 7 is 6 east or 2 west: west over the wrap link W[1, 0] (0 -> 7);
    # column 7: 1 -> 6 is 5 south or 3 north: north over the wrap N[0, 7] (0 -> 7).
    acc.pe_flows([1], [1], [6], [7], 8.0)
    want = {("W", 1, 1): 8.0, ("W", 1, 0): 8.0,
            ("N", 1, 7): 8.0, ("N", 0, 7): 8.0, ("N", 7, 7): 8.0}
    assert nonzero(links(hw, acc)) == want
    assert acc.max_hops == 5 and acc.byte_hops == 40.0


def test_torus_tie_goes_to_increasing_index(small):
    hw = topo(small, "torus")
    acc = ref.LinkAcc(hw)
    acc.pe_flows([0], [6], [4], [2], 1.0)  # d = 4 = N - d both ways: east (6,7 wrap,0,1), south
    want = {("E", 0, 6): 1.0, ("E", 0, 7): 1.0, ("E", 0, 0): 1.0, ("E", 0, 1): 1.0,
            ("S", 0, 2): 1.0, ("S", 1, 2): 1.0, ("S", 2, 2): 1.0, ("S", 3, 2): 1.0}
    assert nonzero(links(hw, acc)) == want


def test_express_route(small):
    hw = topo(small, "express")  # k = 2
    acc = ref.LinkAcc(hw)
    # row 1: 1 -> 7, d = 6: three express links at 1, 3, 5; column 7: 1 -> 6, d = 5: express
    # at 1, 3, then one ordinary link 5 -> 6.
    acc.pe_flows([1], [1], [6], [7], 2.0)
    want = {("XE", 1, 1): 2.0, ("XE", 1, 3): 2.0, ("XE", 1, 5): 2.0,
            ("XS", 1, 7): 2.0, ("XS", 3, 7): 2.0, ("S", 5, 7): 2.0}
    assert nonzero(links(hw, acc)) == want
    assert acc.max_hops == 6
    # and back: row 6 west 7 -> 1 (express at 7, 5, 3), column 1 north 6 -> 1 (express at 6, 4,
    # then ordinary 2 -> 1)
    acc = ref.LinkAcc(hw)
    acc.pe_flows([6], [7], [1], [1], 2.0)
    want = {("XW", 6, 7): 2.0, ("XW", 6, 5): 2.0, ("XW", 6, 3): 2.0,
            ("XN", 6, 1): 2.0, ("XN", 4, 1): 2.0, ("N", 2, 1): 2.0}
    assert nonzero(links(hw, acc)) == want


def test_distribution_multicast_wire(small):
    """One bus per PE row from the west edge: a multicast costs, per row it reaches, 1 + the
    farthest column; a unicast 1 + its column; byte-hops and PE copies counted per PE."""
    assert ref.mc_wire([3], [5]) == 6.0
    assert ref.mc_wire([3, 3, 4], [5, 2, 0]) == 6.0 + 1.0
    d = ref._Dist()
    d.multicast(np.array([0, 0, 1, 1]), np.array([2, 3, 2, 3]), 2.0)  # a 2x2 unit at (0, 2)
    assert d.byte_hops == 2.0 * (4 + 4) and d.delivered == 8.0 and d.max_hops == 4
    d.unicast(np.array([7]), np.array([7]), 1.0)
    assert d.byte_hops == 16.0 + 8.0 and d.delivered == 9.0 and d.max_hops == 8


def test_broadcast_tree(small):
    hw = topo(small, "mesh")
    acc = ref.LinkAcc(hw)
    # unit with top-left PE (2, 4); piece of 3 bytes at local (1, 0) = PE (3, 4): east to
    # (3, 5), then north in both unit columns: g - 1 = 3 links
    acc.tree([2], [4], [1], [0], 3.0)
    assert nonzero(links(hw, acc)) == {("E", 3, 4): 3.0, ("N", 3, 4): 3.0, ("N", 3, 5): 3.0}
    assert acc.byte_hops == 9.0


@pytest.mark.parametrize("t", ["mesh", "torus", "express"])
def test_random_flows_byte_hops_equal_link_sum(small, t):
    hw = topo(small, t)
    rng = np.random.default_rng(3)
    acc = ref.LinkAcc(hw)
    n = 500
    acc.pe_flows(*(rng.integers(0, 8, n) for _ in range(4)), rng.random(n))
    acc.tree(rng.integers(0, 4, n) * 2, rng.integers(0, 4, n) * 2, rng.integers(0, 2, n),
             rng.integers(0, 2, n), rng.random(n))
    assert acc.loads().sum() == pytest.approx(acc.byte_hops, rel=1e-12)


# ---------------------------------------------------------------- whole placements
@pytest.mark.parametrize("t", ["mesh", "torus", "express"])
def test_placement_byte_hops_equal_link_sum(small, t):
    hw = topo(small, t)
    m = load_model("KD_res8_narrow")
    L = len(m.layers)
    p = sample(np.random.default_rng(5), L, 1, max_units=hw.n_units)[0]
    r = ref.evaluate(m, hw, p)
    tot = np.zeros(ref.n_links(hw))
    for s, seg in enumerate(r["segments"]):
        ld = ref.link_loads(m, hw, p, s)
        # mesh links carry all but the distribution network's wire
        assert ld.sum() == pytest.approx(seg["byte_hops"] - seg["dist_byte_hops"], rel=1e-9)
        assert ld.max() == pytest.approx(seg["max_link_bytes"], rel=1e-12)
        tot += ld
    assert tot.sum() == pytest.approx(r["byte_hops"] - r["dist_byte_hops"], rel=1e-9)
    assert tot.max() == pytest.approx(r["max_link_bytes_total"], rel=1e-12)
    assert r["max_link_bytes"] == max(seg["max_link_bytes"] for seg in r["segments"])


def test_unit_positions_match_segment_map(small):
    m = load_model("KD_res8_narrow")
    L = len(m.layers)
    ps = sample(np.random.default_rng(7), L, 3, max_units=small.n_units)
    for b in range(3):
        p = ps[b]
        for s, (a, z) in enumerate(segments(p.seg_end)):
            pm = ref.pe_map(m, small, p, s)
            origins = ref._units(small, np.asarray(p.share[a:z + 1]), int(p.org[z]))
            mine = np.full_like(pm, -1)
            for k, o in enumerate(origins):
                for y, x in o:
                    mine[y:y + 2, x:x + 2] = k
            assert np.array_equal(pm, mine)


def _fc_model(n_layers=1):
    layers = [{"name": "fc0", "op": "fc", "inputs": ["x"], "C": 16, "K": 8, "Y": 4}]
    for i in range(1, n_layers):
        layers.append({"name": f"fc{i}", "op": "fc", "inputs": [f"fc{i - 1}"], "C": 8, "K": 8,
                       "Y": 4})
    return build_model({"name": "fc", "inputs": [{"name": "x", "shape": [16, 4, 1]}],
                        "layers": layers})


def test_two_units_case1_flows(small):
    """Two spatial fc layers, blocked, shares 1:1: 8 units each, unit rows 0-1 feed unit
    rows 2-3 of the same unit column: every PE flow goes 4 rows south."""
    hw = topo(small, "mesh")
    m = _fc_model(2)
    p = Placement(seg_end=np.array([False, True]), gran=np.array([6, 6]), org=np.array([0, 0]),
                  share=np.array([1, 1]), part=np.array([0, 0]))
    keep = {"segment": 0}
    ref.evaluate(m, hw, p, _keep=keep)
    assert keep["units"] == [8, 8]
    edge = [g for g in keep["groups"] if g.kind == "edge"][0]
    S = ref.split_links(hw, edge.loads)["S"]
    B = 32.0  # fc0 output: 8 x 4 x 1 bytes; each PE sends B / 32
    per_row = np.array([1, 2, 3, 4, 3, 2, 1, 0]) * B / 32
    assert np.allclose(S, per_row[:, None] * np.ones(8))
    assert edge.byte_hops == pytest.approx(4 * B)
    assert edge.max_hops == 4


def test_one_layer_fc_by_hand(small):
    """One row-wise fc layer (x: [16, 4, 1] -> [8, 4, 1], 512 MACs, 128 weight bytes), one
    segment, spatial, 1-row tiles: n = 4 tiles, 16 units = 64 PEs.

    compute per tile: ceil(1*1/64) * K=8 * m=512/32=16 = 128 cycles. preload: the network's
      first segment, 128 weight bytes at DRAM 16 B/cycle = 8.
    input tile t (a network input, first use), double-buffered 2 ahead: GLB 16 read + 16
      write = 32 B -> 1 cycle, DRAM 16 B -> 1, distribution 16 B -> 0.5, then 8 pitches to
      column 7 -> tiles 0, 1 arrive at 8+1+8 = 17, 18.
    compute ends: 17+128 = 145, 273, 401, 529 (tiles 2, 3 are issued at 145, 273).
    output tile 3 (network output): GLB 8 B -> 0.25, DRAM 8 B -> 0.5, distribution 0.25,
      8 pitches -> 529 + 0.5 + 8 = 537.5, above every bound (GLB 416/32 = 13, DRAM 224/16).
    """
    hw = topo(small, "mesh")
    m = _fc_model(1)
    p = layer_by_layer(1, gran=0)
    r = ref.evaluate(m, hw, p)
    seg = r["segments"][0]
    assert seg["n_tiles"] == 4 and seg["units"] == [16]
    assert seg["compute_cycles"] == [128]
    assert seg["preload_cycles"] == 8.0
    assert r["latency_cycles"] == pytest.approx(537.5)
    assert seg["steady_cycles"] == pytest.approx(128.0)
    assert seg["fill_cycles"] == pytest.approx(537.5 - 8 - 3 * 128)
    assert r["feasible"] and r["reason"] == 0
    # distribution wire: input 1 B per PE at 1 + x (8 rows x 36); weights multicast once to
    # all 64 PEs: 8 row buses x 8 pitches x 128 B; output 0.5 B per PE at 1 + x
    assert r["byte_hops"] == pytest.approx(288 + 8192 + 144)
    assert r["dist_byte_hops"] == pytest.approx(288 + 8192 + 144)
    assert r["delivered_bytes"] == pytest.approx(64 + 128 * 64)
    assert r["glb_bytes"] == pytest.approx((32 + 64 + 128) + (64 + 128))
    assert r["dram_bytes"] == pytest.approx(128 + 64 + 32)
    assert r["max_link_bytes"] == 0.0  # nothing crosses the mesh
    e = r["energy"]
    assert e["mac"] == pytest.approx(512 * hw.mac_pj)
    assert e["pe_sram"] == pytest.approx((2 * 512 + 64 + 8192) * hw.pe_sram_pj_per_byte)
    assert e["noc"] == pytest.approx(8624 * hw.noc_pj_per_byte_hop)
    assert r["energy_pj"] == pytest.approx(sum(e.values()))
    assert r["edp"] == pytest.approx(r["energy_pj"] * 537.5)


def test_two_layer_pipeline_steady_is_bottleneck(small):
    """fc0 (128 cycles/tile on 8 units) -> fc1 (64 cycles/tile): the pipeline's last layer
    finishes one tile every 128 cycles, and no tile of fc1 ends before its fc0 tile."""
    hw = topo(small, "mesh")
    m = _fc_model(2)
    p = Placement(seg_end=np.array([False, True]), gran=np.array([0, 0]), org=np.array([2, 2]),
                  share=np.array([1, 1]), part=np.array([0, 0]))
    keep = {"segment": 0}
    r = ref.evaluate(m, hw, p, _keep=keep)
    seg = r["segments"][0]
    assert seg["compute_cycles"] == [128, 64]
    assert seg["steady_cycles"] == pytest.approx(128.0)
    ends = keep["compute_ends"]
    assert np.all(ends[1] >= ends[0] + 64)


def test_needed_tile_halo():
    doc = {"name": "c", "inputs": [{"name": "x", "shape": [4, 8, 8]}], "layers": [
        {"name": "c0", "op": "conv", "inputs": ["x"], "C": 4, "K": 4, "Y": 8, "X": 8, "R": 3,
         "S": 3},
        {"name": "c1", "op": "conv", "inputs": ["c0"], "C": 4, "K": 4, "Y": 8, "X": 8, "R": 3,
         "S": 3}]}
    net = ref._Net(build_model(doc))
    # 4 tiles of 2 rows; 3x3 same conv: halo 1 row: tile t needs producer rows up to 2t+2
    assert [ref._needed_tile(net, 1, t, 4, 2, 2) for t in range(4)] == [1, 2, 3, 3]


def test_infeasible_placements_are_finite(small):
    m = load_model("KD_res8_narrow")
    L = len(m.layers)
    # reason 1: one segment of all layers is fine (L <= 16); use a 2x2-unit array instead
    tiny = small.with_(rows=4, cols=4)
    assert tiny.n_units == 4 and L > 4
    p = Placement(seg_end=np.eye(1, L, L - 1, dtype=bool)[0], gran=np.zeros(L, np.int32),
                  org=np.full(L, 3, np.int32), share=np.ones(L, np.int32),
                  part=np.zeros(L, np.int32))
    r = ref.evaluate(m, tiny, p)
    assert not r["feasible"] and r["reason"] == 1
    for k in ("latency_cycles", "energy_pj", "edp", "max_link_bytes", "byte_hops"):
        assert math.isfinite(r[k]) and r[k] > 0
    # reason 2: a channel-split fc whose whole input has to sit in every PE
    big = build_model({"name": "big", "inputs": [{"name": "x", "shape": [8192, 1, 1]}],
                       "layers": [{"name": "fc", "op": "fc", "inputs": ["x"], "C": 8192,
                                   "K": 16}]})
    r = ref.evaluate(big, small, layer_by_layer(1, part=np.array([1])))
    assert not r["feasible"] and r["reason"] == 2
    for k in ("latency_cycles", "energy_pj", "edp", "byte_hops"):
        assert math.isfinite(r[k]) and r[k] > 0
    assert r["max_link_bytes"] == 0.0  # one layer: nothing crosses the mesh


def test_restreamed_weights_cost_n_times(small):
    """A spatial fc whose weights (16 x 256 = 4096 B, plus tile buffers) overflow the 4 KiB
    PE SRAM while the rest fits: weights re-streamed once per tile."""
    m = build_model({"name": "rs", "inputs": [{"name": "x", "shape": [16, 4, 1]}],
                     "layers": [{"name": "fc", "op": "fc", "inputs": ["x"], "C": 16, "K": 256,
                                 "Y": 4}]})
    hw = topo(small, "mesh")
    r1 = ref.evaluate(m, hw, layer_by_layer(1, gran=6))  # whole: 1 tile
    r4 = ref.evaluate(m, hw, layer_by_layer(1, gran=0))  # 4 tiles
    assert r1["feasible"] and r4["feasible"]
    assert r1["segments"][0]["restream"] == [True] and r4["segments"][0]["restream"] == [True]
    W = 4096
    assert r4["glb_bytes"] - r1["glb_bytes"] == pytest.approx(3 * W)
    assert r4["dram_bytes"] == pytest.approx(r1["dram_bytes"])

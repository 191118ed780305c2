"""Segments as the unit of cost (cost/segment.py): a segment scored on its window of the
model gives the record the whole-network combine gives it, the records reduce to the
whole-network Cost, dp's window plan covers every candidate segment, and a placement's cost
does not depend on the batch it is scored in."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pipeorgan_jax.cost import Scorer, SegmentCost, combine, geometry, network_cost, segment
from pipeorgan_jax.dp import segment_plan
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.loading import load_model
from pipeorgan_jax.placement import Placement, sample

D = 6


@pytest.fixture(scope="module", params=["KD_res8_narrow", "SS_HRViT_b1"])
def case(request):
    """A chain-like model, and one whose layers have up to 16 inputs (wide Slots rows)."""
    m = load_model(request.param)
    sc = Scorer(m, load_hardware("xrbench_4k"), max_depth=D)
    red_ok = np.asarray([l.reduction_ok for l in m.layers])
    p = sample(np.random.default_rng(3), len(m.layers), 4, D, red_ok=red_ok)
    return sc, p


@jax.jit
def _whole_records(ma, ha, p):
    def one(q):
        sg = geometry.segments(q.seg_end, ma.n_layers, ha.max_depth)
        c, rec = combine(ma, ha, sg, geometry.layers(ma, ha, q, sg), with_segments=True)
        return c, rec
    return jax.vmap(one)(p)


def _close(a, b, rtol=1e-6):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.all(np.abs(a - b) <= rtol * np.maximum(np.abs(b), 1e-30))


def _starts_ends(seg_end):
    e = np.flatnonzero(seg_end)
    return np.concatenate([[0], e[:-1] + 1]), e


def test_window_records_equal_the_whole_network_records(case):
    sc, p = case
    _, rec = _whole_records(sc.ma, sc.ha, jax.tree_util.tree_map(jnp.asarray, p))
    L, W = p.seg_end.shape[1], sc.window_depth()
    a0s, rows, where = [], [], []
    for i in range(len(p.seg_end)):
        for a, b in zip(*_starts_ends(p.seg_end[i])):
            a0, se = segment.segment_row(L, W, a, b - a + 1)
            a0s.append(a0)
            rows.append([se] + [np.asarray(f)[i, a0:a0 + W] for f in p.fields()[1:]])
            where.append((i, a, a - a0))
    got = sc.score_windows(np.asarray(a0s), Placement(*(np.stack(f) for f in zip(*rows))))
    i, a, loc = np.asarray(where).T
    for k in SegmentCost._fields:
        want = np.asarray(getattr(rec, k))[i, a]
        have = got[k][np.arange(len(i)), loc]
        if want.dtype == bool:
            assert np.array_equal(have, want), k
        else:
            assert _close(have, want), k
    assert got["latency_cycles"][np.arange(len(i)), loc].min() > 0


def test_records_reduce_to_the_whole_network_cost(case):
    sc, p = case
    c, rec = _whole_records(sc.ma, sc.ha, jax.tree_util.tree_map(jnp.asarray, p))
    for i in range(len(p.seg_end)):
        s, _ = _starts_ends(p.seg_end[i])
        r = SegmentCost(*(np.asarray(v)[i, s] for v in rec))
        got = network_cost(r, sc.ha)
        for k in ("latency_cycles", "energy_pj", "energy_dram_pj", "byte_hops", "glb_bytes",
                  "dram_bytes", "max_link_bytes", "edp"):
            assert _close(getattr(got, k), np.asarray(getattr(c, k))[i], 2e-6), k
        assert int(got.reason) == int(np.asarray(c.reason)[i])
        assert _close(got.seg_latency, np.asarray(c.seg_latency)[i, s], 2e-6)


def test_whole_placements_from_their_segments(case):
    sc, p = case
    want, got = sc(p), segment.whole_from_windows(sc, p)
    for k, v in want.items():
        assert got[k].shape == v.shape, k
        if v.dtype == bool or k == "reason":
            assert np.array_equal(got[k], v), k
        else:
            assert _close(got[k], v, 2e-6), k


@pytest.mark.parametrize("L,W,Dsp", [(1, 1, 1), (5, 5, 3), (23, 6, 6), (23, 6, 1), (40, 8, 5)])
def test_segment_plan_covers_every_segment_once_per_round(L, W, Dsp):
    a0, seg_end, segs, n_cover = segment_plan(L, W, Dsp)
    assert seg_end.shape == (len(a0), W) and seg_end[:, -1].all()
    # every row is tiled by its segments, every segment within the model and the space
    for k in range(len(a0)):
        mine = segs[segs[:, 0] == k]
        assert mine[:, 2].sum() == W and (mine[:, 2] <= Dsp).all()
        assert np.array_equal(np.sort(mine[:, 1] + mine[:, 2] - 1), np.flatnonzero(seg_end[k]))
        assert np.array_equal(mine[:, 3], a0[k] + mine[:, 1])
    assert (a0 >= 0).all() and (a0 + W <= L).all()
    want = {(a, d) for d in range(1, Dsp + 1) for a in range(L - d + 1)}
    assert {(int(a), int(d)) for _, _, d, a in segs} == want
    # packing: fewer rows than candidate segments when a window holds several
    assert len(a0) <= len(want)
    # the first rows tile the network: a search stopped after them has a placement
    cover = segs[segs[:, 0] < n_cover]
    reach = {0}
    for a in range(L):
        if a in reach:
            reach |= {int(a + d) for _, _, d, s in cover if s == a}
    assert L in reach


def test_a_cost_does_not_depend_on_its_batch():
    """XLA divides by a broadcast operand through its reciprocal; ceil(28 * 112 / 56) must
    still be 56, alone or in a batch (cost/ops.py, ceil_ratio)."""
    from pipeorgan_jax.cost.ops import ceil_ratio
    f = jax.jit(lambda r, a, b: ceil_ratio(r * a / b))
    for B in (1, 16):
        assert np.all(np.asarray(f(jnp.full(B, 28.0), jnp.float32(112.0), jnp.float32(56.0))) == 56.0)
    m = load_model("SS_HRViT_b1")
    sc = Scorer(m, load_hardware("xrbench_4k"), max_depth=D)
    p = sample(np.random.default_rng(3), len(m.layers), 16, D,
               red_ok=np.asarray([l.reduction_ok for l in m.layers]))
    c16, _ = _whole_records(sc.ma, sc.ha, jax.tree_util.tree_map(jnp.asarray, p))
    c1, _ = _whole_records(sc.ma, sc.ha, jax.tree_util.tree_map(lambda x: jnp.asarray(x)[:1], p))
    for k in ("reason", "seg_feasible"):
        assert np.array_equal(np.asarray(getattr(c16, k))[0], np.asarray(getattr(c1, k))[0]), k
    for k in ("latency_cycles", "seg_latency", "energy_pj"):  # a rounding apart, not a ceil
        assert _close(np.asarray(getattr(c16, k))[0], np.asarray(getattr(c1, k))[0]), k


@pytest.mark.parametrize("depth", [1, 2, 6])
def test_kernel_windows_equal_the_xla_combine_on_windows(depth):
    """dp's window rows through the fused kernel (segment.kernel_windows) give the XLA
    combine's cost of the same windows, padding edges included (a window with fewer edges
    than the widest one; depth 1: no layer-to-layer edge at all)."""
    from pipeorgan_jax.cost import kernel, score_one
    if not kernel.available():
        pytest.skip(f"cost kernel: {kernel.load_error()}")
    m = load_model("GE_FBNet_C")
    sc = Scorer(m, load_hardware("xrbench_4k"), max_depth=depth)
    st, W = sc.windows(), sc.window_depth()
    rng = np.random.default_rng(depth)
    n_win = st.alive0.shape[0]
    a0 = rng.integers(0, n_win, 24).astype(np.int32)
    red_ok = np.asarray([l.reduction_ok for l in m.layers])
    q = sample(rng, W, 24 * 4, depth)
    q = Placement(q.seg_end, q.gran, q.org, q.share,
                  np.where((q.part == 3) & ~red_ok[np.repeat(a0, 4)[:, None] + np.arange(W)], 2, q.part))
    grouped = Placement(*(np.asarray(f).reshape((24, 4) + f.shape[1:]) for f in q.fields()))
    got = segment.kernel_windows(st, sc.ha, jnp.asarray(a0), grouped)
    want = jax.jit(jax.vmap(lambda a, p: score_one(jax.tree_util.tree_map(lambda x: x[a], st), sc.ha, p)))(
        jnp.asarray(np.repeat(a0, 4)), q)
    for k in ("latency_cycles", "energy_pj", "seg_latency", "seg_energy", "max_link_bytes"):
        assert _close(np.asarray(getattr(got, k)).reshape(np.shape(getattr(want, k))), getattr(want, k)), k
    for k in ("reason", "seg_feasible"):
        assert np.array_equal(np.asarray(getattr(got, k)).reshape(np.shape(getattr(want, k))),
                              np.asarray(getattr(want, k))), k

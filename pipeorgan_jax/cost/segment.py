"""Segments scored directly: windows of a model, and the record of every segment in a window.

A segment's record (`SegmentCost`: latency, energy by part, bytes, busiest link, GLB
residency, weights, feasibility) depends only on its own layers and their choices, and on
facts fixed per layer: which inputs cross into it (read from the GLB), which outputs are
consumed after it (written to the GLB), what is alive in the GLB when it starts
(`ModelArrays.alive0`). It does not depend on the other segments' boundaries or choices; the
whole-network cost is a reduction of the records (`network_cost`: sums, the busiest link, the
GLB spill of the busiest segment with the next segment's weights prefetched).

So a segment is scored on a *window* of the model: `windows(ma, D)` cuts a model into its
L - D + 1 windows of D consecutive layers, as ModelArrays stacked along a leading axis, in
which an edge from outside the window is a segment input (a GLB read), as it is for every
segment in the window. A window row, a local `seg_end` and choices for its D layers, yields
the record of every segment in it at that segment's first layer: `window_records` for one
row (jit, vmap, grad it), `score_windows` for a batch. dp (search.py) scores distinct
segments this way instead of through whole-network rows; `segment_row` places one segment in
its window.
"""
from __future__ import annotations

import functools
import time

import jax
import numpy as np

from pipeorgan_jax.cost import SegmentCost, combine, geometry
from pipeorgan_jax.cost.tables import HwArrays, ModelArrays, slots
from pipeorgan_jax.placement import Placement


def windows(ma: ModelArrays, depth: int) -> ModelArrays:
    """Every window of `depth` consecutive layers (depth <= L) as one ModelArrays whose every
    leaf has a leading [L - depth + 1] axis (NumPy; `ma` must hold NumPy arrays)."""
    ma = jax.tree_util.tree_map(np.asarray, ma)
    L, D = ma.n_layers, depth
    if not 1 <= D <= L:
        raise ValueError(f"window depth {D} outside 1..{L} (layers)")
    n_in = [np.flatnonzero((ma.e_dst >= a) & (ma.e_dst < a + D)) for a in range(L - D + 1)]
    n_edges = max(len(e) for e in n_in) + 1  # at least one padding edge: padded index lists point at it
    net_in = np.flatnonzero(ma.t_prod < 0)
    t_pad = max(max(int(((ma.t_first[net_in] >= a) & (ma.t_first[net_in] < a + D)).sum())
                    for a in range(L - D + 1)), 1)
    rows = []
    for a, eg in enumerate(n_in):
        loc = np.full(ma.e_src.shape[0], -1, np.int32)
        loc[eg] = np.arange(len(eg))
        inside = lambda i: (i >= a) & (i < a + D)
        pad_e = lambda v, fill: np.concatenate([v, np.full(n_edges - len(v), fill, v.dtype)])
        src = np.where(inside(ma.e_src[eg]), ma.e_src[eg] - a, -1).astype(np.int32)
        dst = (ma.e_dst[eg] - a).astype(np.int32)
        chain = np.flatnonzero((src >= 0) & (dst == src + 1)).astype(np.int32)
        skip = np.flatnonzero((src >= 0) & (dst != src + 1)).astype(np.int32)
        in_eidx = np.where(ma.in_eidx[a:a + D] >= 0, loc[np.maximum(ma.in_eidx[a:a + D], 0)], -1)
        out = np.where(ma.out_eidx[a:a + D] >= 0, loc[np.maximum(ma.out_eidx[a:a + D], 0)], -1)
        out = -np.sort(-out, axis=1)  # entries first (edge order does not matter to a sum or max)
        in_src = np.where(inside(ma.in_src[a:a + D]), ma.in_src[a:a + D] - a, -1)
        # tensors: the window's layer outputs, then the network inputs first consumed in it
        nin = net_in[inside(ma.t_first[net_in])]
        rel = lambda i: np.where(i >= 0, i - a, -1).astype(np.int32)
        pad_t = lambda v, fill: np.concatenate([v, np.full(t_pad - len(nin), fill, v.dtype)])
        lay = slice(a, a + D)
        t_prod = np.concatenate([np.arange(D, dtype=np.int32), pad_t(np.full(len(nin), -1, np.int32), -1)])
        t_last = np.concatenate([rel(ma.t_last[lay]), pad_t(rel(ma.t_last[nin]), -1)])
        t_first = np.concatenate([rel(ma.t_first[lay]), pad_t(rel(ma.t_first[nin]), 0)])
        t_bytes = np.concatenate([ma.t_bytes[lay], pad_t(ma.t_bytes[nin], 0)]).astype(np.float32)
        per_layer = {f: getattr(ma, f)[lay] for f in (
            "K", "Yo", "Xo", "Yin", "halo", "rows_full", "m", "ops", "W", "out_bytes", "in_row_bytes",
            "in_full_bytes", "net_out", "out_elems", "red_ok", "in_bytes", "alive0", "net_first")}
        rows.append(dict(
            per_layer, in_src=in_src.astype(np.int32), in_eidx=in_eidx.astype(np.int32),
            out_eidx=out.astype(np.int32),
            # padding edges: no bytes, in no layer's slots (so they reach no sum or maximum),
            # from outside the window (never intra: their geometry is never computed, which
            # the kernel relies on; the XLA path's lookups wrap index -1 harmlessly)
            e_src=pad_e(src, -1), e_dst=pad_e(dst, 0), e_bytes=pad_e(ma.e_bytes[eg], 0),
            t_prod=t_prod, t_last=t_last, t_first=t_first, t_bytes=t_bytes,
            chain_e=chain, skip_e=skip, in_slots=slots(in_eidx), out_slots=slots(out),
            W_total=np.float32(ma.W[lay].sum()), ops_total=np.float32(ma.ops[lay].sum()),
            net_in_total=np.float32(t_bytes[D:].sum()),
            net_out_total=np.float32(ma.out_bytes[lay][ma.net_out[lay]].sum())))
    # ragged per window: pad edge lists and the Slots' wide rows to the widest window
    for k in ("chain_e", "skip_e"):
        n = max(len(r[k]) for r in rows)
        for r in rows:
            r[k] = np.concatenate([r[k], np.full(n - len(r[k]), n_edges - 1, np.int32)])
    for k in ("in_slots", "out_slots"):
        H = max(r[k].hi_rows.shape[0] for r in rows)
        for r in rows:
            s, h = r[k], r[k].hi_rows.shape[0]
            r[k] = s.replace(hi_rows=np.concatenate([s.hi_rows, np.zeros(H - h, np.int32)]),
                             hi=np.concatenate([s.hi, np.full((H - h,) + s.hi.shape[1:], -1, np.int32)]))
    stack = {k: jax.tree_util.tree_map(lambda *v: np.stack(v), *[r[k] for r in rows]) for k in rows[0]}
    return ModelArrays(**stack, n_layers=D)


def window_records(mw: ModelArrays, ha: HwArrays, p: Placement) -> SegmentCost:
    """Records of every segment of one window row (per layer: valid at segment starts)."""
    sg = geometry.segments(p.seg_end, mw.n_layers, ha.max_depth)
    _, rec = combine(mw, ha, sg, geometry.layers(mw, ha, p, sg), with_segments=True)
    return rec


@functools.partial(jax.jit, static_argnames=("chunk",))
def score_windows(stack: ModelArrays, ha: HwArrays, a0, p: Placement, chunk: int | None = None):
    """Records of a batch of window rows: row i is window a0[i] (its first layer) with the
    local placement p[i] ([N, D] fields). Every output is [N, D]."""
    from pipeorgan_jax.cost import chunked_vmap

    def one(a, q):
        mw = jax.tree_util.tree_map(lambda x: x[a], stack)
        return window_records(mw, ha, q)

    return chunked_vmap(one, (a0, p), chunk)


@jax.jit
def kernel_windows(stack: ModelArrays, ha: HwArrays, a0, p: Placement):
    """The fused kernel (cost/kernel.py) on runs of rows of one window each: a0 [G], p
    fields [G, B, D]; the windows' Cost, [G, B, ...]."""
    from pipeorgan_jax.cost import kernel

    def one(args):
        a, q = args
        return kernel.score(jax.tree_util.tree_map(lambda x: x[a], stack), ha, q)

    return jax.lax.map(one, (a0, p))


def segment_row(n_layers: int, window: int, first: int, depth: int):
    """(window start, local seg_end) of a row that holds segment [first, first + depth - 1]
    (depth <= window): the window starts at the segment unless the model ends first; the
    layers around the segment form one segment before it and one after."""
    a0 = max(min(first, n_layers - window), 0)
    seg_end = np.zeros(window, bool)
    seg_end[[first - a0 - 1, first - a0 + depth - 1, window - 1][0 if first > a0 else 1:]] = True
    return a0, seg_end


def whole_from_windows(scorer, p: Placement) -> dict[str, np.ndarray] | None:
    """Whole placements' costs (Scorer's output dict) from their segments' records: each
    segment scored in a window row of its own, then `network_cost`. None when a segment is
    deeper than the scorer's windows. dp scores its seeds and its result this way, so it
    never compiles the whole-network model."""
    from pipeorgan_jax.cost import Cost, network_cost
    p = p.numpy()
    if p.seg_end.ndim == 1:
        p = Placement(*(f[None] for f in p.fields()))
    B, L = p.seg_end.shape
    W = scorer.window_depth()
    seg_end = p.seg_end.copy()
    seg_end[:, -1] = True
    a0s, ends, fields, spans = [], [], [], []
    for i in range(B):
        e = np.flatnonzero(seg_end[i])
        s = np.concatenate([[0], e[:-1] + 1])
        if (e - s + 1).max() > W:
            return None
        for a, b in zip(s, e):
            a0, se = segment_row(L, W, int(a), int(b - a + 1))
            a0s.append(a0)
            ends.append(se)
            fields.append([np.asarray(f)[i, a0:a0 + W] for f in p.fields()[1:]])
            spans.append((i, a, a - a0))
    rows = Placement(np.asarray(ends), *(np.stack(f) for f in zip(*fields)))
    rec = scorer.score_windows(np.asarray(a0s, np.int32), rows)
    spans = np.asarray(spans)
    out = {k: [] for k in Cost._fields}
    reduce = scorer.__dict__.get("_network_cost")
    for i in range(B):
        j = np.flatnonzero(spans[:, 0] == i)
        n = len(j)  # records padded to L rows (one compiled shape), masked by `valid`
        r = SegmentCost(*(np.concatenate([rec[k][j, spans[j, 2]], np.repeat(rec[k][j[:1], spans[j[:1], 2]], L - n)])
                          for k in SegmentCost._fields))
        valid = np.arange(L) < n
        if reduce is None:
            t0 = time.perf_counter()
            reduce = scorer._network_cost = jax.jit(network_cost).lower(r, scorer.ha, valid).compile()
            scorer.compile_seconds += time.perf_counter() - t0
        c = reduce(r, scorer.ha, valid)
        for k, v in c._asdict().items():
            v = np.asarray(v)
            if k.startswith("seg_"):  # per layer, at each segment's first layer
                full = np.full(L, k == "seg_feasible", v.dtype)
                full[spans[j, 1]] = v[:n]
                v = full
            out[k].append(v)
    return {k: np.stack(v) for k, v in out.items()}

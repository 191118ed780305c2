"""The batch cost model: one pure jax.numpy function, jitted and vmapped over placements.

It implements docs/cost_model.md in closed form at allocation-unit level; reference.py
implements the same contract per PE and per link with a discrete-event schedule. Everything
here is finite for any placement the validator accepts: an infeasible placement gets
feasible=False, a reason code and costs computed as if it fit.
"""
from __future__ import annotations

import functools
import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pipeorgan_jax.hardware import Hardware, hops
from pipeorgan_jax.organization import ORG_CURVE, ORG_INTERLEAVED, chunk_owner, curves, interleave_perm
from pipeorgan_jax.placement import GRAN_ROWS, Placement
from pipeorgan_jax.workload import Model

REASONS = ("ok", "segment deeper than the array has units (or than max_depth)", "PE SRAM capacity",
           "reduction partition on a layer that is not fc, matmul or 1x1 conv")
SPATIAL, CHANNEL, HYBRID, REDUCTION = 0, 1, 2, 3
F32 = jnp.float32


@struct.dataclass
class ModelArrays:
    """Fixed-shape per-layer / per-edge / per-tensor arrays of one model."""
    K: jnp.ndarray
    Yo: jnp.ndarray
    Xo: jnp.ndarray
    Yin: jnp.ndarray
    halo: jnp.ndarray
    rows_full: jnp.ndarray
    m: jnp.ndarray  # ops per output element
    ops: jnp.ndarray
    W: jnp.ndarray  # weight bytes
    out_bytes: jnp.ndarray
    in_row_bytes: jnp.ndarray
    in_full_bytes: jnp.ndarray
    net_out: jnp.ndarray  # bool: consumed by nothing
    out_elems: jnp.ndarray
    red_ok: jnp.ndarray  # bool: the reduction partition applies (fc, matmul, 1x1 conv)
    in_src: jnp.ndarray  # [L, D] producer layer of each in-edge, -1 none / network input
    in_eidx: jnp.ndarray  # [L, D] edge index of each in-edge, -1 none
    out_eidx: jnp.ndarray  # [L, D2] edge index of each out-edge, -1 none
    t_end_idx: jnp.ndarray  # [L, D3] tensors whose last consumer is layer l, -1 none
    in_bytes: jnp.ndarray  # [L, D]
    e_src: jnp.ndarray  # [E] producer layer, -1 for a network input
    e_dst: jnp.ndarray
    e_bytes: jnp.ndarray
    t_prod: jnp.ndarray  # [T] tensors: producer layer (-1: network input)
    t_last: jnp.ndarray  # last consumer layer (-1: none)
    t_first: jnp.ndarray  # first consumer layer (-1: none)
    t_bytes: jnp.ndarray
    n_layers: int = struct.field(pytree_node=False)


@struct.dataclass
class HwArrays:
    curve_y: jnp.ndarray  # [4, U]
    curve_x: jnp.ndarray
    hx: jnp.ndarray  # [GW] PE hops for a unit-column offset
    hy: jnp.ndarray  # [GH]
    glbx: jnp.ndarray  # [GW] distribution wire per byte unicast to a PE of a unit column (mean)
    glb_far: jnp.ndarray  # [GW] distribution hops to the farthest PE of a unit column
    tree_unit: jnp.ndarray  # [GW] wire per byte multicast to every PE of a unit in that column
    hyb_row: jnp.ndarray  # [GW] wire per byte to one PE per unit on a unit row reaching that column
    perm: jnp.ndarray  # [U] interleaving permutation
    cum_x: jnp.ndarray  # [4, U+1, GW] per organization: units among its first v slots per column
    cum_y: jnp.ndarray  # [4, U+1, GH]
    cum_2d: jnp.ndarray  # [4, U+1, GH*GW]
    chunk_unit: jnp.ndarray  # [U+1, U]: unit holding chunk q of a layer with n units
    sram: float
    glb: float
    glb_bw: float
    dist_bw: float
    dram_bw: float
    link_bw: float
    router: float
    macs_per_cycle: float
    db: float
    psum_b: float
    sram_per_mac: float
    e_mac: float
    e_sram: float
    e_noc: float
    e_glb: float
    e_dram: float
    topology: str = struct.field(pytree_node=False)
    express_k: int = struct.field(pytree_node=False)
    U: int = struct.field(pytree_node=False)
    GH: int = struct.field(pytree_node=False)
    GW: int = struct.field(pytree_node=False)
    uh: int = struct.field(pytree_node=False)
    uw: int = struct.field(pytree_node=False)
    max_depth: int = struct.field(pytree_node=False)

    @property
    def lanes(self) -> int:
        """Links into a unit across one side: min(uh, uw) ordinary links, or one express
        link per PE when express links skip exactly one unit."""
        return self.uh * self.uw if self.topology == "express" else min(self.uh, self.uw)


class Cost(NamedTuple):
    latency_cycles: jnp.ndarray
    energy_pj: jnp.ndarray
    energy_mac_pj: jnp.ndarray
    energy_pe_sram_pj: jnp.ndarray
    energy_noc_pj: jnp.ndarray
    energy_glb_pj: jnp.ndarray
    energy_dram_pj: jnp.ndarray
    edp: jnp.ndarray
    feasible: jnp.ndarray
    reason: jnp.ndarray
    max_link_bytes: jnp.ndarray
    byte_hops: jnp.ndarray  # mesh and distribution network together
    dist_byte_hops: jnp.ndarray  # the GLB distribution network's share
    glb_bytes: jnp.ndarray
    dram_bytes: jnp.ndarray
    # per layer: the cost of the segment that starts at this layer (0 elsewhere)
    seg_latency: jnp.ndarray
    seg_energy: jnp.ndarray
    seg_feasible: jnp.ndarray


def model_arrays(model: Model) -> ModelArrays:
    db = model.data_bytes
    L = len(model.layers)
    f = lambda v: np.asarray(v, np.float32)
    K, Yo, Xo, Yin, halo, full, m, ops, W, ob, irb, ifb = ([] for _ in range(12))
    for l in model.layers:
        k, yo, xo = l.out_shape
        K.append(k); Yo.append(yo); Xo.append(xo)
        yin = l.in_shapes[0][1]
        Yin.append(yin)
        halo.append(max(0, l.kernel_rows - l.stride_rows - l.pad_rows) if l.op in ("conv", "pool") else 0)
        full.append(l.rows_full)
        ops.append(l.ops)
        m.append(l.ops / (k * yo * xo))
        W.append(l.weight_elems * db)
        ob.append(l.out_act_elems * db)
        irb.append(sum(c * x for c, _, x in l.in_shapes) * db)
        ifb.append(l.in_act_elems * db)
    consumers: dict[int, list[int]] = {}
    for e in model.edges:
        consumers.setdefault(e.src, []).append(e.dst)
    deg = max(1, max(len(l.inputs) for l in model.layers))
    in_src = np.full((L, deg), -1, np.int32)
    in_bytes = np.zeros((L, deg), np.float32)
    in_eidx = np.full((L, deg), -1, np.int32)
    fill = [0] * L
    outs: dict[int, list[int]] = {}
    for ei, e in enumerate(model.edges):
        in_src[e.dst, fill[e.dst]] = e.src if e.src >= 0 else -1
        in_bytes[e.dst, fill[e.dst]] = e.elems * db
        in_eidx[e.dst, fill[e.dst]] = ei
        fill[e.dst] += 1
        if e.src >= 0:
            outs.setdefault(e.src, []).append(ei)
    out_eidx = np.full((L, max([1] + [len(v) for v in outs.values()])), -1, np.int32)
    for l, v in outs.items():
        out_eidx[l, :len(v)] = v
    tensors = list(range(L)) + [-1 - i for i in range(len(model.input_names))]
    ends: dict[int, list[int]] = {}
    for ti, t in enumerate(tensors):
        if consumers.get(t):
            ends.setdefault(max(consumers[t]), []).append(ti)
    t_end_idx = np.full((L, max([1] + [len(v) for v in ends.values()])), -1, np.int32)
    for l, v in ends.items():
        t_end_idx[l, :len(v)] = v
    t_bytes = [model.layers[t].out_act_elems * db if t >= 0 else math.prod(model.input_shapes[-1 - t]) * db
               for t in tensors]
    return ModelArrays(
        K=f(K), Yo=f(Yo), Xo=f(Xo), Yin=f(Yin), halo=f(halo), rows_full=np.asarray(full),
        m=f(m), ops=f(ops), W=f(W), out_bytes=f(ob), in_row_bytes=f(irb), in_full_bytes=f(ifb),
        net_out=np.asarray([i not in consumers for i in range(L)]),
        out_elems=f([l.out_act_elems for l in model.layers]),
        red_ok=np.asarray([l.reduction_ok for l in model.layers]),
        in_src=in_src, in_bytes=in_bytes, in_eidx=in_eidx, out_eidx=out_eidx, t_end_idx=t_end_idx,
        e_src=np.asarray([max(e.src, -1) for e in model.edges], np.int32),
        e_dst=np.asarray([e.dst for e in model.edges], np.int32),
        e_bytes=f([e.elems * db for e in model.edges]),
        t_prod=np.asarray([max(t, -1) for t in tensors], np.int32),
        t_last=np.asarray([max(consumers.get(t, [-1])) for t in tensors], np.int32),
        t_first=np.asarray([min(consumers.get(t, [-1])) for t in tensors], np.int32),
        t_bytes=f(t_bytes), n_layers=L)


def hw_arrays(hw: Hardware, max_depth: int = 16) -> HwArrays:
    gh, gw = hw.grid
    cv = curves(gh, gw)
    k = hw.express_k
    hx = hops(np.arange(gw) * hw.unit_cols, hw.cols, hw.topology, k).astype(np.float32)
    hy = hops(np.arange(gh) * hw.unit_rows, hw.rows, hw.topology, k).astype(np.float32)
    # distribution network: a row bus from the west edge, 1 + x pitches to PE column x
    port = 1 + np.arange(hw.cols)
    glbx = port.reshape(gw, hw.unit_cols).mean(1).astype(np.float32)
    glb_far = port.reshape(gw, hw.unit_cols).max(1).astype(np.float32)
    ucol = np.arange(gw)
    tree_unit = (hw.unit_rows * (ucol + 1) * hw.unit_cols).astype(np.float32)
    hyb_row = (1 + ucol * hw.unit_cols + (hw.unit_cols - 1) / 2).astype(np.float32)
    perm = interleave_perm(hw.n_units)
    cum_x = np.zeros((4, hw.n_units + 1, gw), np.float32)
    cum_y = np.zeros((4, hw.n_units + 1, gh), np.float32)
    cum_2d = np.zeros((4, hw.n_units + 1, gh * gw), np.float32)
    for o in range(4):
        order = perm if ORG_INTERLEAVED[o] else np.arange(hw.n_units)
        pos = cv[ORG_CURVE[o]][order]
        cum_y[o, 1:] = np.cumsum(np.eye(gh, dtype=np.float32)[pos[:, 0]], axis=0)
        cum_2d[o, 1:] = np.cumsum(np.eye(gh * gw, dtype=np.float32)[pos[:, 0] * gw + pos[:, 1]], axis=0)
        cum_x[o, 1:] = np.cumsum(np.eye(gw, dtype=np.float32)[pos[:, 1]], axis=0)
    return HwArrays(
        curve_y=cv[:, :, 0], curve_x=cv[:, :, 1], hx=hx, hy=hy, glbx=glbx, glb_far=glb_far,
        tree_unit=tree_unit, hyb_row=hyb_row, dist_bw=hw.distribution_bytes_per_cycle,
        psum_b=float(hw.psum_bytes), sram_per_mac=float(hw.pe_sram_bytes_per_mac),
        router=float(hw.router_latency_cycles),
        perm=interleave_perm(hw.n_units), cum_x=cum_x, cum_y=cum_y, cum_2d=cum_2d,
        chunk_unit=np.array([chunk_owner(max(n, 1), hw.n_units) for n in range(hw.n_units + 1)], np.int32),
        sram=float(hw.pe_sram_bytes), glb=float(hw.glb_bytes), glb_bw=hw.glb_bytes_per_cycle,
        dram_bw=hw.dram_bytes_per_cycle, link_bw=hw.link_bytes_per_cycle,
        macs_per_cycle=float(hw.macs_per_pe_per_cycle), db=float(hw.data_bytes),
        e_mac=hw.mac_pj, e_sram=hw.pe_sram_pj_per_byte, e_noc=hw.noc_pj_per_byte_hop,
        e_glb=hw.glb_pj_per_byte, e_dram=hw.dram_pj_per_byte,
        topology=hw.topology, express_k=hw.express_k, U=hw.n_units, GH=gh, GW=gw, uh=hw.unit_rows, uw=hw.unit_cols,
        max_depth=int(min(max_depth, hw.n_units)))


def _cdiv(a, b):
    return -((-a) // b)


def score_one(ma: ModelArrays, ha: HwArrays, p: Placement) -> Cost:
    """Cost of one placement (vmap this over a batch)."""
    L, U, D = ma.n_layers, ha.U, ha.max_depth
    g = ha.uh * ha.uw
    idx = jnp.arange(L)
    seg_end = p.seg_end.at[L - 1].set(True)
    starts = jnp.concatenate([jnp.ones(1, bool), seg_end[:-1]])
    f_l = jax.lax.cummax(jnp.where(starts, idx, 0))  # first layer of l's segment
    z_l = jax.lax.cummin(jnp.where(seg_end, idx, L - 1), reverse=True)  # last layer
    depth = z_l - f_l + 1
    k_l = idx - f_l  # position inside the segment
    too_deep = depth > D
    # Segment reductions over a window of D layers from the segment's first layer: segments
    # are contiguous and at most D deep (deeper ones are infeasible, reason 1).
    win = f_l[:, None] + jnp.arange(D)[None, :]
    win_ok = jnp.arange(D)[None, :] < depth[:, None]
    win = jnp.clip(win, 0, L - 1)
    seg_sum = lambda v: jnp.where(win_ok, v[win], 0.0).sum(1)
    seg_max = lambda v: jnp.where(win_ok, v[win], -jnp.inf).max(1)
    gran = p.gran[z_l]
    org = p.org[z_l]
    part = p.part
    pos_split = part != CHANNEL  # output held as position chunks (spatial, hybrid, reduction)
    in_pos = (part == SPATIAL) | (part == HYBRID)  # input needed by output position
    red = part == REDUCTION
    bad_red = red & ~ma.red_ok

    # Units per layer (integer arithmetic, as organization.units_per_layer).
    share = p.share.astype(jnp.int32)
    csum = jnp.cumsum(share)
    base = jnp.where(f_l > 0, csum[jnp.maximum(f_l - 1, 0)], 0)
    S = csum - base
    S_prev = S - share
    Wt = S[z_l]
    free = jnp.maximum(U - depth, 0)
    n_l = jnp.maximum(1 + (free * S) // Wt - (free * S_prev) // Wt, 1)
    n_f = n_l.astype(F32)
    P_f = n_f * g

    # Each layer's units are positions [start, start + n) of its organization's slot order.
    ncum = jnp.cumsum(n_l)
    nbase = jnp.where(f_l > 0, ncum[jnp.maximum(f_l - 1, 0)], 0)
    start_l = ncum - n_l - nbase  # units of the earlier layers of the segment
    inter = jnp.asarray(ORG_INTERLEAVED)[org][:, None]
    cid = jnp.asarray(ORG_CURVE)[org][:, None]

    def position(m):
        """Unit (row, col) of unit m of each layer (small-table lookups)."""
        v = jnp.clip(start_l[:, None] + m, 0, U - 1)
        sl = jnp.where(inter, ha.perm[v], v)
        flat = cid * U + sl
        return ha.curve_y.reshape(-1)[flat], ha.curve_x.reshape(-1)[flat]

    # Chunk q lives on unit m(q): the first U mod n units hold ceil(U/n) chunks, the rest
    # floor(U/n) (docs/cost_model.md, "Data placement"); MQ[n, q] tabulates m(q).
    cy, cx = position(ha.chunk_unit[n_l])  # [L, U] unit position of chunk q

    # Histograms over unit columns/rows from prefix-count tables of each organization's
    # slot order: units of a layer are the contiguous positions [start, start + n).
    o = org

    def span(cum, a, b):
        return cum[o, b] - cum[o, a]  # [L, bins]

    s0, s1, s2 = start_l, start_l + n_l, start_l + (U % n_l)
    bqf = (U // n_l).astype(F32)[:, None]
    oh_ux = span(ha.cum_x, s0, s1) / n_f[:, None]  # uniform over the layer's units
    oh_uy = span(ha.cum_y, s0, s1) / n_f[:, None]
    oh_cx = (bqf * span(ha.cum_x, s0, s1) + span(ha.cum_x, s0, s2)) / U  # chunk distribution
    oh_cy = (bqf * span(ha.cum_y, s0, s1) + span(ha.cum_y, s0, s2)) / U
    u2d = span(ha.cum_2d, s0, s1) / n_f[:, None]  # [L, GH*GW] units, uniform
    c2d = (bqf * span(ha.cum_2d, s0, s1) + span(ha.cum_2d, s0, s2)) / U  # chunks
    # data distribution of each layer's output: chunks if position-split, else uniform
    dx = jnp.where(pos_split[:, None], oh_cx, oh_ux)
    dy = jnp.where(pos_split[:, None], oh_cy, oh_uy)
    HX = ha.hx[jnp.abs(jnp.arange(ha.GW)[:, None] - jnp.arange(ha.GW)[None, :])]
    HY = ha.hy[jnp.abs(jnp.arange(ha.GH)[:, None] - jnp.arange(ha.GH)[None, :])]

    # GLB distribution network wire per byte (docs/cost_model.md, "Distribution network"):
    # a row bus per PE row from the west edge; a delivery crosses, on every PE row it reaches,
    # 1 + the farthest column it reaches there.
    occ = u2d.reshape(-1, ha.GH, ha.GW) > 0
    mc = jnp.where(occ, jnp.arange(ha.GW)[None, None, :], -1).max(2)  # [L, GH] farthest unit col
    row_occ = mc >= 0
    mcc = jnp.maximum(mc, 0)
    wire_all = jnp.where(row_occ, ha.tree_unit[mcc], 0.0).sum(1)  # to every PE of every unit
    wire_hyb = jnp.where(row_occ, ha.hyb_row[mcc], 0.0).sum(1)  # to one PE per unit
    wire_uni_u = oh_ux @ ha.glbx  # unicast, spread evenly over the units
    wire_uni_c = oh_cx @ ha.glbx  # unicast, spread as the chunks
    wire_unit_u = oh_ux @ ha.tree_unit  # to every PE of one unit, units alike
    wire_unit_c = oh_cx @ ha.tree_unit  # to every PE of one unit, as the chunks

    # Tiles.
    Yo_z = ma.Yo[z_l]
    T = jnp.asarray(GRAN_ROWS, F32)[gran]
    T = jnp.where(T == 0, Yo_z, T)
    n_tiles = jnp.ceil(Yo_z / T)
    min_rows = -seg_max(-ma.Yo)
    n_tiles = jnp.maximum(jnp.minimum(n_tiles, min_rows), 1.0)
    r = jnp.ceil(ma.Yo / n_tiles)
    h = jnp.minimum(ma.Yin, jnp.ceil(r * ma.Yin / ma.Yo) + ma.halo)
    h = jnp.where(ma.rows_full, ma.Yin, h)

    # Edges.
    es, ed, eb = ma.e_src, ma.e_dst, ma.e_bytes
    es_c = jnp.maximum(es, 0)
    intra = (es >= 0) & (f_l[es_c] == f_l[ed])
    cross_in = ~intra  # edge read from the GLB
    lag = jnp.where(ma.rows_full[ed], n_tiles[ed] - 1,
                    jnp.minimum(n_tiles[ed] - 1, jnp.floor((h[ed] - 1) / r[es_c])))
    lag = jnp.maximum(lag, 0.0)
    ps, pd = pos_split[es_c], in_pos[ed]
    pe_ = part[ed]
    # case 1: chunk-matched flows
    hop_q = (_hops(jnp.abs(cx[es_c] - cx[ed]) * ha.uw, ha.GW * ha.uw, ha)
             + _hops(jnp.abs(cy[es_c] - cy[ed]) * ha.uh, ha.GH * ha.uh, ha))  # [E, U]
    bh1 = eb * hop_q.mean(1)
    # case 2: consumer channel-split (every consumer unit gets all of B); a reduction consumer
    # gets its 1/n input-channel slice from every producer unit
    pair_x = jnp.einsum("ea,ab,eb->e", dx[es_c], HX, oh_ux[ed])
    pair_y = jnp.einsum("ea,ab,eb->e", dy[es_c], HY, oh_uy[ed])
    bh2 = eb * (pair_x + pair_y) * jnp.where(pe_ == CHANNEL, n_f[ed], 1.0)
    # case 3: producer channel-split, consumer position-split
    pair3 = (jnp.einsum("ea,ab,eb->e", oh_ux[es_c], HX, oh_cx[ed])
             + jnp.einsum("ea,ab,eb->e", oh_uy[es_c], HY, oh_cy[ed]))
    bh3 = eb * pair3
    inter_bh = jnp.where(pd & ps, bh1, jnp.where(~pd, bh2, bh3))
    recv = jnp.where(pe_ == CHANNEL, eb * n_f[ed], eb)  # bytes arriving into the consumer's units
    bcast = pe_ != SPATIAL  # channel, hybrid and reduction consumers broadcast inside each unit
    mesh_in_bh = inter_bh + jnp.where(bcast, recv * (g - 1), 0.0)
    mesh_in_deliv = jnp.where(bcast, recv * g, recv)
    # segment inputs over the distribution network: read once, delivered to every PE needing them
    dist_in_bh = eb * jnp.where(pe_ == SPATIAL, wire_uni_c[ed], jnp.where(
        pe_ == CHANNEL, wire_all[ed], jnp.where(pe_ == HYBRID, wire_unit_c[ed], wire_unit_u[ed])))
    dist_in_deliv = eb * jnp.where(pe_ == SPATIAL, 1.0, jnp.where(pe_ == CHANNEL, P_f[ed], g))
    e_mesh_bh = jnp.where(intra, mesh_in_bh, 0.0)
    e_dist_bh = jnp.where(intra, 0.0, dist_in_bh)
    e_deliv = jnp.where(intra, mesh_in_deliv, dist_in_deliv)

    # Per-layer sums over in-edges and out-edges (static edge lists).
    def by_dst(v):
        return jnp.where(ma.in_eidx >= 0, v[jnp.maximum(ma.in_eidx, 0)], 0.0).sum(1)

    has_cross = jnp.where(ma.out_eidx >= 0, cross_in[jnp.maximum(ma.out_eidx, 0)], False).any(1)
    to_glb = has_cross | ma.net_out  # outputs written to the GLB
    out_bh = jnp.where(to_glb, ma.out_bytes * (dx @ ha.glbx), 0.0)  # gathered, unicast
    glb_in_l = by_dst(jnp.where(cross_in, eb, 0.0))  # per layer: segment inputs read from the GLB
    glb_out_l = jnp.where(to_glb, ma.out_bytes, 0.0)  # per layer: output written to the GLB

    # Capacity.
    Kf, W = ma.K, ma.W
    kg = jnp.ceil(Kf / g)
    w_pe = jnp.where(part == SPATIAL, W, jnp.where(part == CHANNEL, jnp.ceil(Kf / P_f) * W / Kf,
                                                   kg * W / Kf / jnp.where(red, n_f, 1.0)))
    I = jnp.where(ma.rows_full, ma.in_full_bytes, h * ma.in_row_bytes)
    I_pe = jnp.where(part == SPATIAL, I / P_f, jnp.where(part == CHANNEL, I, I / n_f))
    O_pe = jnp.where(red, r * ma.Xo * kg * ha.psum_b, r * Kf * ma.Xo * ha.db / P_f)
    k_e = k_l[ed] - k_l[es_c]
    skip_b = jnp.where(intra & (k_e > 1), (k_e - 1 + lag) * eb / n_tiles[ed], 0.0) / P_f[ed]
    need = w_pe + 2 * (I_pe + O_pe) + by_dst(skip_b)
    over = need > ha.sram
    restream = over & (need - w_pe <= ha.sram)
    no_fit = over & ~restream
    wmult = jnp.where(restream, n_tiles, 1.0)
    # weights over the distribution network: spatial to every PE; channel and reduction split
    # (each PE its own slice); hybrid one copy per unit, split over the unit's PEs
    w_bytes = W * wmult
    w_bh = w_bytes * jnp.where(part == SPATIAL, wire_all, jnp.where(part == HYBRID, wire_hyb,
                                                                  wire_uni_u))
    w_deliv = w_bytes * jnp.where(part == SPATIAL, P_f, jnp.where(part == HYBRID, n_f, 1.0))

    # Reduction partition: partial sums reduce-scattered over the mesh, unit i -> unit j
    # (j != i) carries psum_bytes x (output elements) x c_j / U.
    ps_bytes = jnp.where(red & (n_l > 1), ma.out_elems * ha.psum_b, 0.0)
    pair_ps = (jnp.einsum("la,ab,lb->l", oh_ux, HX, oh_cx)
               + jnp.einsum("la,ab,lb->l", oh_uy, HY, oh_cy))
    ps_bh = ps_bytes * n_f * pair_ps
    ps_deliv = ps_bytes * (n_f - 1)

    mesh_bh = e_mesh_bh.sum() + ps_bh.sum()
    dist_bh = e_dist_bh.sum() + out_bh.sum() + w_bh.sum()
    byte_hops = mesh_bh + dist_bh
    delivered = e_deliv.sum() + w_deliv.sum() + ps_deliv.sum()

    # GLB and DRAM traffic.
    net_in_bytes = jnp.where(ma.t_prod < 0, ma.t_bytes, 0.0)
    glb_reads = jnp.where(cross_in, eb, 0.0).sum() + w_bytes.sum()
    glb_writes = glb_out_l.sum() + net_in_bytes.sum() + W.sum()
    glb_bytes = glb_reads + glb_writes
    # GLB live bytes while a segment runs: crossing tensors alive at its start plus the
    # crossing tensors it produces (exactly the contract's "intersecting" set).
    cross_out = (ma.t_last[:L] > z_l)  # layer tensors consumed after their segment
    tb_layer = jnp.where(cross_out, ma.t_bytes[:L], 0.0)
    in_bytes_total = net_in_bytes.sum()
    ended = jnp.where(ma.t_end_idx >= 0, jnp.concatenate([tb_layer, net_in_bytes[L:]])[
        jnp.maximum(ma.t_end_idx, 0)], 0.0).sum(1)  # crossing bytes last consumed at l
    alive_at = (in_bytes_total + jnp.concatenate([jnp.zeros(1), jnp.cumsum(tb_layer)[:-1]])
                - jnp.concatenate([jnp.zeros(1), jnp.cumsum(ended)[:-1]]))  # t_prod < l <= t_last
    # plus the next segment's weights, fetched from DRAM into the GLB during this one
    W_s = seg_sum(W)
    W_next = jnp.where(z_l + 1 < L, W_s[jnp.minimum(z_l + 1, L - 1)], 0.0)
    live = alive_at[f_l] + seg_sum(tb_layer) + seg_sum(jnp.where(restream, W, 0.0)) + W_next
    spill = 2.0 * jnp.maximum(live.max() - ha.glb, 0.0)
    net_out_bytes = jnp.where(ma.net_out, ma.out_bytes, 0.0)
    dram_bytes = W.sum() + net_in_bytes.sum() + net_out_bytes.sum() + spill

    # Mesh link loads (unit-level estimate; the reference counts every link). GLB traffic is
    # on the distribution network, not here.
    chunks_per_unit = jnp.ceil(U / n_f) / U  # largest unit's share of the chunks
    per_unit_in = jnp.where(pd, eb * chunks_per_unit[ed],
                            jnp.where(pe_ == CHANNEL, eb, eb / n_f[ed]))
    intra_link = by_dst(jnp.where(intra & bcast, per_unit_in, 0.0)) * (ha.uh - 1) / ha.uh
    # what a unit receives over in-segment edges enters through its boundary links
    edge_link = by_dst(jnp.where(intra, per_unit_in, 0.0)) / ha.lanes
    # All-to-all edges (a channel-split or reduction end): every source unit sends to every
    # destination unit, so the load on each unit-boundary link follows from the two 2-D
    # distributions (XY routing: along the source's unit row, then down the destination's
    # unit column).
    S2 = jnp.where(ps[:, None], c2d[es_c], u2d[es_c])
    D2 = jnp.where(pd[:, None], c2d[ed], u2d[ed] * jnp.where(pe_ == CHANNEL, n_f[ed], 1.0)[:, None])
    a2a = intra & ~(ps & pd)
    a2a_link = jnp.where(a2a, eb * _a2a_factor(S2, D2, ha), 0.0)
    # what the producer's busiest unit sends out over in-segment edges
    src_unit = jnp.where(ps, eb * chunks_per_unit[es_c], eb / n_f[es_c])
    out_unit = jnp.where(intra, jnp.where(pe_ == CHANNEL, src_unit * n_f[ed], src_unit), 0.0)
    by_src = jnp.where(ma.out_eidx >= 0, out_unit[jnp.maximum(ma.out_eidx, 0)], 0.0).sum(1)
    src_link = jnp.maximum(by_src / ha.lanes, by_dst(a2a_link))
    # partial sums: all-to-all among the layer's own units; the busiest receiver gets
    # (n-1) x its chunks, the busiest sender all but its fewest chunks
    ps_unit = ps_bytes * jnp.maximum((n_f - 1) * chunks_per_unit,
                                     1.0 - jnp.floor(U / n_f) / U) / ha.lanes
    ps_link = jnp.maximum(ps_bytes * _a2a_factor(u2d * n_f[:, None], c2d, ha), ps_unit)
    # one tile of an edge takes its busiest link (per unit in or out, or the broadcast tree)
    x_edge = jnp.maximum(jnp.maximum(per_unit_in, out_unit) / ha.lanes,
                         jnp.where(bcast, per_unit_in * (ha.uh - 1) / ha.uh, 0.0))
    # plus the router latency of its longest PE flow
    ext = lambda h, a, b: (h[None] * ((a[:, :, None] > 0) & (b[:, None, :] > 0))).max((1, 2))
    far = jnp.where(pd & ps, hop_q.max(1), ext(HX, dx[es_c], jnp.where(pd[:, None], oh_cx[ed], oh_ux[ed]))
                    + ext(HY, dy[es_c], jnp.where(pd[:, None], oh_cy[ed], oh_uy[ed])))
    x_edge = x_edge / n_tiles[ed] / ha.link_bw + ha.router * far
    x_ps = jnp.where(ps_bytes > 0, ps_link / n_tiles / ha.link_bw
                     + ha.router * (ext(HX, oh_ux, oh_cx) + ext(HY, oh_uy, oh_cy)), 0.0)
    seg_link = seg_max(jnp.maximum(jnp.maximum(intra_link, edge_link),
                                   jnp.maximum(src_link, ps_link)))
    max_link = seg_link.max()

    # Timing.
    Q = r * ma.Xo
    m_red = jnp.ceil(ma.m - 1e-3)  # reduction length per output (an integer for eligible ops)
    cyc = jnp.where(part == SPATIAL, jnp.ceil(Q / P_f) * Kf * ma.m,
                    jnp.where(part == CHANNEL, jnp.ceil(Kf / P_f) * Q * ma.m,
                              jnp.where(part == HYBRID, jnp.ceil(Q / n_f) * kg * ma.m,
                                        (jnp.ceil(m_red / n_f) * Q + (n_f - 1) * jnp.ceil(Q / n_f)) * kg)))
    cyc = jnp.ceil(cyc / ha.macs_per_cycle)
    glb_fed = by_dst(cross_in.astype(F32)) > 0  # reads a segment input from the GLB
    first_use = jnp.clip(ma.t_first, 0, L - 1)
    net_in_first = jnp.zeros(L, F32).at[first_use].add(net_in_bytes)
    # bytes moved while the segment's tiles play (the first copy of every weight is preloaded)
    g_in = seg_sum(glb_in_l + jnp.where(restream, W * (n_tiles - 1), 0.0))
    g_net = seg_sum(net_in_first)  # network inputs: DRAM -> GLB write -> read (in g_in)
    g_out = seg_sum(glb_out_l)
    d_pipe = seg_sum(net_in_first + net_out_bytes)
    # the first GLB tile reaches the farthest PE of the distribution network's rows
    port_far_in = (ha.glb_far[None, :] * (oh_ux > 0)).max(1)
    port_far_out = (ha.glb_far[None, :] * (dx > 0)).max(1)
    t_in = (jnp.maximum(jnp.maximum((g_in + g_net) / ha.glb_bw, g_in / ha.dist_bw),
                        g_net / ha.dram_bw) / n_tiles
            + ha.router * seg_max(jnp.where(glb_fed, port_far_in, 0.0)))
    t_out = (jnp.maximum(jnp.maximum(g_out / ha.glb_bw, g_out / ha.dist_bw),
                         seg_sum(net_out_bytes) / ha.dram_bw) / n_tiles
             + ha.router * port_far_out)
    src_c = jnp.maximum(ma.in_src, 0)
    has_in = ma.in_eidx >= 0
    in_e = jnp.maximum(ma.in_eidx, 0)
    lag_in = jnp.where(has_in, lag[in_e], 0.0)
    in_intra = has_in & intra[in_e]
    F0 = jnp.where(glb_fed, t_in, 0.0)

    # During the fill a producer delivers its next tiles at the pace of the slowest stage
    # upstream of it (rho), not yet at the segment's steady tile time. E_l is when l finishes
    # its last tile: it runs its remaining n-1 tiles at its own pace (compute, its GLB input
    # tile time or its partial-sum exchange, if slower), and its last tile needs the
    # producers' last tiles.
    sigma = jnp.maximum(jnp.maximum(seg_link / ha.link_bw, (g_in + g_net + g_out) / ha.glb_bw),
                        jnp.maximum(jnp.maximum(g_in, g_out) / ha.dist_bw, d_pipe / ha.dram_bw)) / n_tiles
    c_pace = jnp.maximum(jnp.maximum(cyc, jnp.where(glb_fed, t_in, 0.0)),
                         ps_link / n_tiles / ha.link_bw)
    c_done = cyc + x_ps  # a tile's output exists once its partial sums are reduced

    def step(carry, i):
        F, rho, E = carry
        src = src_c[i]
        prev = jnp.where(in_intra[i], F[src] + lag_in[i] * rho[src] + x_in[i], 0.0)
        # a layer that waits for its producers' whole output then runs at its own pace
        rho_i = jnp.where(ma.rows_full[i], c_pace[i],
                          jnp.maximum(c_pace[i], jnp.where(in_intra[i], rho[src], 0.0).max()))
        F_i = jnp.maximum(prev.max(), F0[i]) + c_done[i]
        E_i = jnp.maximum(F_i + (n_tiles[i] - 1) * c_pace[i],
                          jnp.where(in_intra[i], E[src] + x_in[i], 0.0).max() + c_done[i])
        return (F.at[i].set(F_i), rho.at[i].set(rho_i), E.at[i].set(E_i)), None

    x_in = jnp.where(ma.in_eidx >= 0, x_edge[jnp.maximum(ma.in_eidx, 0)], 0.0)
    z = jnp.zeros(L, F32)
    (Fill, _, End), _ = jax.lax.scan(step, (z, z, z), idx)
    pipe = jnp.maximum(seg_max(End + jnp.where(to_glb, t_out, 0.0)),
                       seg_max(Fill) + (n_tiles - 1) * sigma)
    # Weights: fetched from DRAM into the GLB while the previous segment runs (the first
    # segment has none to hide behind), then delivered to the PEs before the first tile.
    is_first = idx == f_l
    preload = W_s / jnp.minimum(ha.glb_bw, ha.dist_bw)
    preload = jnp.where(f_l == 0, jnp.maximum(preload, W_s / ha.dram_bw), preload)
    # No segment beats the rate at which its servers move its bytes (DESIGN.md section 6).
    bound_glb = seg_sum(glb_in_l + glb_out_l
                        + W + w_bytes + net_in_first) / ha.glb_bw
    bound_dram = seg_sum(W + net_in_first + net_out_bytes) / ha.dram_bw
    bound_dist = jnp.maximum(seg_sum(glb_in_l + w_bytes), g_out) / ha.dist_bw
    bound = jnp.maximum(jnp.maximum(bound_glb, bound_dram), jnp.maximum(bound_dist, seg_link / ha.link_bw))
    seg_lat = jnp.maximum(preload + pipe, bound)  # at every layer of the segment
    latency = jnp.where(is_first, seg_lat, 0.0).sum() + spill / ha.dram_bw

    e_mac = ma.ops.sum() * ha.e_mac
    e_sram = (ma.ops.sum() * ha.sram_per_mac + delivered) * ha.e_sram
    e_noc = byte_hops * ha.e_noc
    e_glb = glb_bytes * ha.e_glb
    e_dram = dram_bytes * ha.e_dram
    energy = e_mac + e_sram + e_noc + e_glb + e_dram
    reason = jnp.where(too_deep.any(), 1, jnp.where(no_fit.any(), 2, jnp.where(bad_red.any(), 3, 0)))

    # Per-segment attribution for dynamic programming over segments: every term above
    # charged to the segment of the layer it belongs to; spill charged per segment.
    en_l = (ma.ops * (ha.e_mac + ha.sram_per_mac * ha.e_sram)
            + ha.e_sram * (by_dst(e_deliv) + w_deliv + ps_deliv)
            + ha.e_noc * (by_dst(e_mesh_bh + e_dist_bh) + out_bh + w_bh + ps_bh)
            + ha.e_glb * (glb_in_l + glb_out_l
                          + W + w_bytes + net_in_first)
            + ha.e_dram * (W + net_out_bytes + net_in_first))
    spill_s = 2.0 * jnp.maximum(live - ha.glb, 0.0)
    seg_ok = seg_sum((no_fit | too_deep | bad_red).astype(F32)) == 0
    return Cost(latency_cycles=latency, energy_pj=energy, energy_mac_pj=e_mac,
                energy_pe_sram_pj=e_sram, energy_noc_pj=e_noc, energy_glb_pj=e_glb,
                energy_dram_pj=e_dram, edp=energy * latency, feasible=reason == 0,
                reason=reason, max_link_bytes=max_link, byte_hops=byte_hops,
                dist_byte_hops=dist_bh, glb_bytes=glb_bytes, dram_bytes=dram_bytes,
                seg_latency=jnp.where(is_first, seg_lat + spill_s / ha.dram_bw, 0.0),
                seg_energy=jnp.where(is_first, seg_sum(en_l) + spill_s * ha.e_dram, 0.0),
                seg_feasible=jnp.where(is_first, seg_ok & ~too_deep, True))


def _a2a_factor(S2, D2, ha: "HwArrays"):
    """Largest load, per byte, on a unit-boundary link of an all-to-all flow from source
    weights S2 to destination weights D2 ([N, GH*GW] each; XY routing)."""
    S2 = S2.reshape(-1, ha.GH, ha.GW)
    D2 = D2.reshape(-1, ha.GH, ha.GW)
    Sx = jnp.cumsum(S2, axis=2)  # sources in row y at columns <= x
    Dc = D2.sum(1)
    Dcx = jnp.cumsum(Dc, axis=1)  # destinations at columns <= x
    east = Sx[:, :, :-1] * (Dcx[:, -1:] - Dcx)[:, None, :-1]
    west = (Sx[:, :, -1:] - Sx)[:, :, :-1] * Dcx[:, None, :-1]
    Sr = jnp.cumsum(S2.sum(2), axis=1)  # sources at rows <= y
    Dy = jnp.cumsum(D2, axis=1)  # destinations in column x at rows <= y
    south = Sr[:, :-1, None] * (Dy[:, -1:, :] - Dy)[:, :-1, :]
    north = (Sr[:, -1:] - Sr)[:, :-1, None] * Dy[:, :-1, :]
    # a unit boundary has uh (rows) or uw (columns) ordinary links; with express links that
    # skip one unit, every PE of the unit has its own link across it
    g = ha.uh * ha.uw
    lanes_x, lanes_y = (g, g) if ha.topology == "express" else (ha.uh, ha.uw)
    # initial=0: a grid one unit wide has no boundary along that axis (loads are >= 0)
    m = lambda v: v.max((1, 2), initial=0.0)
    return jnp.maximum(jnp.maximum(m(east), m(west)) / lanes_x,
                       jnp.maximum(m(south), m(north)) / lanes_y)


def _hops(d, n, ha: "HwArrays"):
    """Hop count for PE offsets d >= 0 along a dimension of n PEs (as hardware.hops)."""
    if ha.topology == "torus":
        return jnp.minimum(d, n - d).astype(F32)
    if ha.topology == "express":
        return (d // ha.express_k + d % ha.express_k).astype(F32)
    return d.astype(F32)


def by_dst_rows(v, in_eidx):
    """[E, k] edge rows summed into their consumer layer: [L, k]."""
    return jnp.where((in_eidx >= 0)[..., None], v[jnp.maximum(in_eidx, 0)], 0.0).sum(1)


def seg_sum_rows(v, win, win_ok):
    """[L, k] rows summed over each layer's segment window."""
    return jnp.where(win_ok[..., None], v[win], 0.0).sum(1)


@functools.partial(jax.jit, static_argnums=())
def score_batch(ma: ModelArrays, ha: HwArrays, p: Placement) -> Cost:
    """Score a batch of placements (leading axis on every Placement field)."""
    return jax.vmap(score_one, in_axes=(None, None, 0))(ma, ha, p)


class Scorer:
    """Convenience wrapper: a model on a hardware, scoring NumPy placement batches.

    Each batch shape is compiled once, ahead of time, so that compilation (or a load from the
    persistent compilation cache) is timed apart from scoring: `compile_seconds` accumulates
    it. The batch is split over `devices` (default: all of JAX's default backend) along a 1-D
    mesh; the model and hardware tables are replicated."""

    def __init__(self, model: Model, hw: Hardware, max_depth: int = 16, devices=None):
        from pipeorgan_jax.devices import batch_mesh
        self.model, self.hw = model, hw
        self.devices = list(devices) if devices else jax.devices()
        self.ma = jax.device_put(model_arrays(model), batch_mesh(self.devices)[1])
        self.ha = hw_arrays(hw, max_depth)

    MIN_BATCH = 128  # small batches are padded so that they reuse one compiled shape
    # Class-level defaults, so that a Scorer assembled field by field (tests swap `ha`) works.
    devices = None  # None: every device of JAX's default backend
    compile_seconds = 0.0

    @functools.cached_property
    def batch_sharding(self):
        from pipeorgan_jax.devices import batch_mesh
        return batch_mesh(self.devices or jax.devices())[0]

    def score_on_devices(self, p: Placement) -> tuple[Cost, int]:
        """(Cost as sharded device arrays, padded rows included; number of real rows)."""
        p = p.numpy()
        if p.seg_end.ndim == 1:
            p = Placement(*(f[None] for f in p.fields()))
        B = p.seg_end.shape[0]
        n_dev = len(self.batch_sharding.mesh.devices)
        padded = -(-max(B, self.MIN_BATCH) // n_dev) * n_dev  # every device gets equal rows
        if padded > B:
            pad = padded - B
            p = Placement(*(np.concatenate([f, np.repeat(f[:1], pad, 0)]) for f in p.fields()))
        p = jax.device_put(p, self.batch_sharding)
        compiled = self.__dict__.setdefault("_compiled", {})
        fn = compiled.get(padded)
        if fn is None:
            t0 = time.perf_counter()
            fn = compiled[padded] = score_batch.lower(self.ma, self.ha, p).compile()
            self.compile_seconds += time.perf_counter() - t0
        return fn(self.ma, self.ha, p), B

    def __call__(self, p: Placement) -> dict[str, np.ndarray]:
        c, B = self.score_on_devices(p)
        return {k: np.asarray(v)[:B] for k, v in c._asdict().items()}

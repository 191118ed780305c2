"""The batch cost model: one pure jax.numpy function, jitted and vmapped over placements.

It implements docs/cost_model.md in closed form at allocation-unit level; reference.py
implements the same contract per PE and per link with a discrete-event schedule. Everything
here is finite for any placement the validator accepts: an infeasible placement gets
feasible=False, a reason code and costs computed as if it fit.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pipeorgan_jax.hardware import Hardware, hops
from pipeorgan_jax.organization import ORG_CURVE, ORG_INTERLEAVED, curves, interleave_perm
from pipeorgan_jax.placement import GRAN_ROWS, Placement
from pipeorgan_jax.workload import Model

REASONS = ("ok", "segment deeper than the array has units (or than max_depth)", "PE SRAM capacity")
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
    in_src: jnp.ndarray  # [L, D] producer layer of each in-edge, -1 none / network input
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
    glbx: jnp.ndarray  # [GW] mean port-flow hops to a unit column
    perm: jnp.ndarray  # [U] interleaving permutation
    sram: float
    glb: float
    glb_bw: float
    dram_bw: float
    link_bw: float
    macs_per_cycle: float
    db: float
    e_mac: float
    e_sram: float
    e_noc: float
    e_glb: float
    e_dram: float
    U: int = struct.field(pytree_node=False)
    GH: int = struct.field(pytree_node=False)
    GW: int = struct.field(pytree_node=False)
    uh: int = struct.field(pytree_node=False)
    uw: int = struct.field(pytree_node=False)
    max_depth: int = struct.field(pytree_node=False)


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
    byte_hops: jnp.ndarray
    glb_bytes: jnp.ndarray
    dram_bytes: jnp.ndarray


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
    fill = [0] * L
    for e in model.edges:
        in_src[e.dst, fill[e.dst]] = e.src if e.src >= 0 else -1
        in_bytes[e.dst, fill[e.dst]] = e.elems * db
        fill[e.dst] += 1
    tensors = list(range(L)) + [-1 - i for i in range(len(model.input_names))]
    t_bytes = [model.layers[t].out_act_elems * db if t >= 0 else math.prod(model.input_shapes[-1 - t]) * db
               for t in tensors]
    return ModelArrays(
        K=f(K), Yo=f(Yo), Xo=f(Xo), Yin=f(Yin), halo=f(halo), rows_full=np.asarray(full),
        m=f(m), ops=f(ops), W=f(W), out_bytes=f(ob), in_row_bytes=f(irb), in_full_bytes=f(ifb),
        net_out=np.asarray([i not in consumers for i in range(L)]),
        in_src=in_src, in_bytes=in_bytes,
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
    x = np.arange(hw.cols)
    port = 1 + hops(x, hw.cols, hw.topology, k)
    glbx = port.reshape(gw, hw.unit_cols).mean(1).astype(np.float32)
    return HwArrays(
        curve_y=cv[:, :, 0], curve_x=cv[:, :, 1], hx=hx, hy=hy, glbx=glbx,
        perm=interleave_perm(hw.n_units),
        sram=float(hw.pe_sram_bytes), glb=float(hw.glb_bytes), glb_bw=hw.glb_bytes_per_cycle,
        dram_bw=hw.dram_bytes_per_cycle, link_bw=hw.link_bytes_per_cycle,
        macs_per_cycle=float(hw.macs_per_pe_per_cycle), db=float(hw.data_bytes),
        e_mac=hw.mac_pj, e_sram=hw.pe_sram_pj_per_byte, e_noc=hw.noc_pj_per_byte_hop,
        e_glb=hw.glb_pj_per_byte, e_dram=hw.dram_pj_per_byte,
        U=hw.n_units, GH=gh, GW=gw, uh=hw.unit_rows, uw=hw.unit_cols,
        max_depth=int(min(max_depth, hw.n_units)))


def _cdiv(a, b):
    return -((-a) // b)


def score_one(ma: ModelArrays, ha: HwArrays, p: Placement) -> Cost:
    """Cost of one placement (vmap this over a batch)."""
    L, U, D = ma.n_layers, ha.U, ha.max_depth
    g = ha.uh * ha.uw
    idx = jnp.arange(L)
    seg_end = p.seg_end.at[L - 1].set(True)
    seg_id = jnp.cumsum(seg_end) - seg_end.astype(jnp.int32)
    first = jax.ops.segment_min(idx, seg_id, num_segments=L)
    last = jax.ops.segment_max(idx, seg_id, num_segments=L)
    f_l, z_l = first[seg_id], last[seg_id]
    depth = z_l - f_l + 1
    k_l = idx - f_l  # position inside the segment
    too_deep = depth > D
    gran = p.gran[z_l]
    org = p.org[z_l]
    part = p.part
    pos_split = part != 1  # spatial or hybrid

    # Units per layer (integer arithmetic, as organization.units_per_layer).
    share = p.share.astype(jnp.int32)
    csum = jnp.cumsum(share)
    base = jnp.where(f_l > 0, csum[jnp.maximum(f_l - 1, 0)], 0)
    S = csum - base
    S_prev = S - share
    Wt = S[z_l]
    free = jnp.maximum(U - depth, 0)
    n_l = 1 + (free * S) // Wt - (free * S_prev) // Wt
    n_f = n_l.astype(F32)
    P_f = n_f * g

    # Slots of every potential unit m (0..U-1) of each layer: [L, U].
    mm = jnp.arange(U)
    # contiguous: start = units of the earlier layers of the segment
    ncum = jnp.cumsum(n_l)
    nbase = jnp.where(f_l > 0, ncum[jnp.maximum(f_l - 1, 0)], 0)
    start_l = ncum - n_l - nbase
    contiguous_slot = start_l[:, None] + mm[None, :]
    inter_slot = ha.perm[jnp.clip(contiguous_slot, 0, U - 1)]
    inter = jnp.asarray(ORG_INTERLEAVED)[org]
    slot = jnp.where(inter[:, None], inter_slot, contiguous_slot)
    slot = jnp.clip(slot, 0, U - 1)
    cid = jnp.asarray(ORG_CURVE)[org]
    uy = ha.curve_y[cid[:, None], slot]  # [L, U] unit row of unit m
    ux = ha.curve_x[cid[:, None], slot]
    valid_m = mm[None, :] < n_l[:, None]

    # Chunk q lives on unit floor(q n / U): positions per chunk [L, U].
    mq = (mm[None, :] * n_l[:, None]) // U
    cy = jnp.take_along_axis(uy, mq, axis=1)
    cx = jnp.take_along_axis(ux, mq, axis=1)
    # Histograms over unit columns/rows: chunk distribution and uniform-over-units.
    oh_cx = jax.nn.one_hot(cx, ha.GW, dtype=F32).sum(1) / U  # [L, GW]
    oh_cy = jax.nn.one_hot(cy, ha.GH, dtype=F32).sum(1) / U
    vm = valid_m.astype(F32)[..., None]
    oh_ux = (jax.nn.one_hot(ux, ha.GW, dtype=F32) * vm).sum(1) / n_f[:, None]
    oh_uy = (jax.nn.one_hot(uy, ha.GH, dtype=F32) * vm).sum(1) / n_f[:, None]
    # data distribution of each layer's output: chunks if position-split, else uniform
    dx = jnp.where(pos_split[:, None], oh_cx, oh_ux)
    dy = jnp.where(pos_split[:, None], oh_cy, oh_uy)
    HX = ha.hx[jnp.abs(jnp.arange(ha.GW)[:, None] - jnp.arange(ha.GW)[None, :])]
    HY = ha.hy[jnp.abs(jnp.arange(ha.GH)[:, None] - jnp.arange(ha.GH)[None, :])]

    # Tiles.
    Yo_z = ma.Yo[z_l]
    T = jnp.asarray(GRAN_ROWS, F32)[gran]
    T = jnp.where(T == 0, Yo_z, T)
    n_tiles = jnp.ceil(Yo_z / T)
    min_rows = jax.ops.segment_min(ma.Yo, seg_id, num_segments=L)[seg_id]
    n_tiles = jnp.maximum(jnp.minimum(n_tiles, min_rows), 1.0)
    r = jnp.ceil(ma.Yo / n_tiles)
    h = jnp.minimum(ma.Yin, jnp.ceil(r * ma.Yin / ma.Yo) + ma.halo)
    h = jnp.where(ma.rows_full, ma.Yin, h)

    # Edges.
    es, ed, eb = ma.e_src, ma.e_dst, ma.e_bytes
    es_c = jnp.maximum(es, 0)
    intra = (es >= 0) & (seg_id[es_c] == seg_id[ed])
    lag = jnp.where(ma.rows_full[ed], n_tiles[ed] - 1,
                    jnp.minimum(n_tiles[ed] - 1, jnp.floor((h[ed] - 1) / r[es_c])))
    lag = jnp.maximum(lag, 0.0)
    ps, pd = pos_split[es_c], pos_split[ed]
    # case 1: chunk-matched flows
    hop_q = ha.hx[jnp.abs(cx[es_c] - cx[ed])] + ha.hy[jnp.abs(cy[es_c] - cy[ed])]  # [E, U]
    bh1 = eb * hop_q.mean(1)
    # case 2: consumer channel-split (every consumer unit gets all of B)
    pair_x = jnp.einsum("ea,ab,eb->e", dx[es_c], HX, oh_ux[ed])
    pair_y = jnp.einsum("ea,ab,eb->e", dy[es_c], HY, oh_uy[ed])
    bh2 = eb * n_f[ed] * (pair_x + pair_y)
    # case 3: producer channel-split, consumer position-split
    pair3 = (jnp.einsum("ea,ab,eb->e", oh_ux[es_c], HX, oh_cx[ed])
             + jnp.einsum("ea,ab,eb->e", oh_uy[es_c], HY, oh_cy[ed]))
    bh3 = eb * pair3
    inter_bh = jnp.where(pd & ps, bh1, jnp.where(~pd, bh2, bh3))
    recv = jnp.where(pd, eb, eb * n_f[ed])  # bytes arriving into the consumer's units
    bcast = part[ed] != 0  # channel or hybrid consumer broadcasts inside each unit
    bcast_bh = jnp.where(bcast, recv * (g - 1), 0.0)
    deliv = jnp.where(bcast, recv * g, recv)
    # GLB -> consumer for segment inputs
    dist_c_x = jnp.where(pd[:, None], oh_cx[ed], oh_ux[ed])
    port_hops_in = dist_c_x @ ha.glbx
    glb_in_bh = recv * port_hops_in + bcast_bh
    e_bh = jnp.where(intra, inter_bh + bcast_bh, glb_in_bh)
    e_deliv = deliv
    cross_in = ~intra  # edge read from the GLB

    # Outputs written to the GLB.
    has_cross = jax.ops.segment_sum(jnp.where((es >= 0) & ~intra, 1, 0), es_c, num_segments=L) > 0
    to_glb = has_cross | ma.net_out
    out_port = dx @ ha.glbx
    out_bh = jnp.where(to_glb, ma.out_bytes * out_port, 0.0)

    # Capacity.
    Kf = ma.K
    W = ma.W
    w_pe = jnp.where(part == 0, W, jnp.where(part == 1, jnp.ceil(Kf / P_f) * W / Kf,
                                             jnp.ceil(Kf / g) * W / Kf))
    I = jnp.where(ma.rows_full, ma.in_full_bytes, h * ma.in_row_bytes)
    I_pe = jnp.where(part == 0, I / P_f, jnp.where(part == 1, I, I / n_f))
    O_pe = r * Kf * ma.Xo * ha.db / P_f
    k_e = k_l[ed] - k_l[es_c]
    skip_b = jnp.where(intra & (k_e > 1), (k_e - 1 + lag) * eb / n_tiles[ed], 0.0) / P_f[ed]
    skip_pe = jax.ops.segment_sum(skip_b, ed, num_segments=L)
    need = w_pe + 2 * (I_pe + O_pe) + skip_pe
    over = need > ha.sram
    restream = over & (need - w_pe <= ha.sram)
    no_fit = over & ~restream
    wmult = jnp.where(restream, n_tiles, 1.0)
    # weights over the NoC: spatial every unit gets W and broadcasts; channel W/n per unit;
    # hybrid W per unit, no broadcast
    w_recv = jnp.where(part == 1, W, W * n_f) * wmult
    port_w = oh_ux @ ha.glbx
    w_bh = w_recv * port_w + jnp.where(part == 0, w_recv * (g - 1), 0.0)
    w_deliv = jnp.where(part == 0, w_recv * g, w_recv)

    byte_hops = e_bh.sum() + out_bh.sum() + w_bh.sum()
    delivered = e_deliv.sum() + w_deliv.sum()

    # GLB and DRAM traffic.
    net_in_bytes = jnp.where(ma.t_prod < 0, ma.t_bytes, 0.0)
    glb_reads = jnp.where(cross_in, eb, 0.0).sum() + (W * wmult).sum()
    glb_writes = jnp.where(to_glb, ma.out_bytes, 0.0).sum() + net_in_bytes.sum() + W.sum()
    glb_bytes = glb_reads + glb_writes
    # live tensors per segment
    t_prod_seg = jnp.where(ma.t_prod >= 0, seg_id[jnp.maximum(ma.t_prod, 0)], 0)
    t_last_seg = jnp.where(ma.t_last >= 0, seg_id[jnp.maximum(ma.t_last, 0)], -1)
    t_cross = (t_last_seg > t_prod_seg) | (ma.t_prod < 0)
    # live(s) = sum of crossing tensors with prod_seg <= s <= last_seg (difference array)
    tb = jnp.where(t_cross, ma.t_bytes, 0.0)
    live = jnp.cumsum(jax.ops.segment_sum(tb, t_prod_seg, num_segments=L + 1)
                      - jax.ops.segment_sum(tb, jnp.maximum(t_last_seg, t_prod_seg) + 1,
                                            num_segments=L + 1))[:L]
    live = live + jax.ops.segment_sum(jnp.where(restream, W, 0.0), seg_id, num_segments=L)
    spill = 2.0 * jnp.maximum(live.max() - ha.glb, 0.0)
    net_out_bytes = jnp.where(ma.net_out, ma.out_bytes, 0.0)
    dram_bytes = W.sum() + net_in_bytes.sum() + net_out_bytes.sum() + spill

    # Link loads (unit-level estimate; the reference counts every link).
    seg_e = seg_id[ed]
    port_rows_in = (jnp.where(cross_in[:, None], recv[:, None] * jnp.where(pd[:, None], oh_cy[ed], oh_uy[ed]), 0.0))
    port_in = jax.ops.segment_sum(port_rows_in, seg_e, num_segments=L)
    wrow = (w_recv[:, None] * oh_uy)
    port_in = port_in + jax.ops.segment_sum(wrow, seg_id, num_segments=L)
    port_out = jax.ops.segment_sum(jnp.where(to_glb[:, None], ma.out_bytes[:, None] * dy, 0.0),
                                   seg_id, num_segments=L)
    port_max = jnp.maximum(port_in.max(1), port_out.max(1)) / ha.uh  # per PE row port link
    # bytes each consumer unit receives per inference, over all its in-edges and weights
    chunks_per_unit = jnp.ceil(U / n_f) / U  # largest unit's share of the chunks
    per_unit_in = jnp.where(pd, eb * chunks_per_unit[ed], eb)
    unit_in = jax.ops.segment_sum(per_unit_in, ed, num_segments=L)
    unit_w = jnp.where(part == 1, W / n_f, W) * wmult
    bc_in = jax.ops.segment_sum(jnp.where(bcast, per_unit_in, 0.0), ed, num_segments=L)
    bc_in = bc_in + jnp.where(part == 0, unit_w, 0.0)
    intra_link = bc_in * (ha.uh - 1) / ha.uh
    edge_link = (unit_in + unit_w) / min(ha.uh, ha.uw)
    unit_link = jnp.maximum(intra_link, edge_link)
    seg_link = jnp.maximum(port_max, jax.ops.segment_max(unit_link, seg_id, num_segments=L))
    max_link = seg_link.max()

    # Timing.
    Q = r * ma.Xo
    cyc = jnp.where(part == 0, jnp.ceil(Q / P_f) * Kf,
                    jnp.where(part == 1, jnp.ceil(Kf / P_f) * Q,
                              jnp.ceil(Q / n_f) * jnp.ceil(Kf / g))) * ma.m
    cyc = jnp.ceil(cyc / ha.macs_per_cycle)
    nt_s = jax.ops.segment_max(n_tiles, seg_id, num_segments=L)
    seg_glb = (jax.ops.segment_sum(jnp.where(cross_in, eb, 0.0), seg_e, num_segments=L)
               + jax.ops.segment_sum(jnp.where(to_glb, ma.out_bytes, 0.0) + jnp.where(restream, W * n_tiles, 0.0),
                                     seg_id, num_segments=L))
    in_first_seg = jnp.where(ma.t_first >= 0, seg_id[jnp.maximum(ma.t_first, 0)], 0)
    seg_dram = (jax.ops.segment_sum(net_in_bytes, in_first_seg, num_segments=L)
                + jax.ops.segment_sum(net_out_bytes, seg_id, num_segments=L))
    tau = jnp.maximum(jax.ops.segment_max(cyc, seg_id, num_segments=L),
                      jnp.maximum(seg_link / ha.link_bw,
                                  jnp.maximum(seg_glb / ha.glb_bw, seg_dram / ha.dram_bw)) / jnp.maximum(nt_s, 1.0))
    tau_l = tau[seg_id]
    # fill: F_l = max over in-segment producers (F_p + lag * tau) + c_l, in layer order
    src_c = jnp.maximum(ma.in_src, 0)
    h_l = h[:, None]
    lag_in = jnp.where(ma.rows_full[:, None], n_tiles[:, None] - 1,
                       jnp.minimum(n_tiles[:, None] - 1, jnp.floor((h_l - 1) / r[src_c])))
    lag_in = jnp.maximum(lag_in, 0.0)
    in_intra = (ma.in_src >= 0) & (seg_id[src_c] == seg_id[:, None])

    def step(F, i):
        prev = jnp.where(in_intra[i], F[src_c[i]] + lag_in[i] * tau_l[i], 0.0)
        Fi = prev.max() + cyc[i]
        return F.at[i].set(Fi), None

    Fill, _ = jax.lax.scan(step, jnp.zeros(L, F32), idx)
    seg_fill = jax.ops.segment_max(Fill, seg_id, num_segments=L)
    seg_w = jax.ops.segment_sum(jnp.where(restream, 0.0, W), seg_id, num_segments=L)
    is_seg = jnp.arange(L) <= seg_id[L - 1]
    seg_lat = seg_w / ha.dram_bw + seg_fill + (nt_s - 1) * tau
    latency = jnp.where(is_seg, seg_lat, 0.0).sum() + spill / ha.dram_bw

    e_mac = ma.ops.sum() * ha.e_mac
    e_sram = (ma.ops.sum() * ha.db + delivered) * ha.e_sram
    e_noc = byte_hops * ha.e_noc
    e_glb = glb_bytes * ha.e_glb
    e_dram = dram_bytes * ha.e_dram
    energy = e_mac + e_sram + e_noc + e_glb + e_dram
    reason = jnp.where(too_deep.any(), 1, jnp.where(no_fit.any(), 2, 0))
    return Cost(latency_cycles=latency, energy_pj=energy, energy_mac_pj=e_mac,
                energy_pe_sram_pj=e_sram, energy_noc_pj=e_noc, energy_glb_pj=e_glb,
                energy_dram_pj=e_dram, edp=energy * latency, feasible=reason == 0,
                reason=reason, max_link_bytes=max_link, byte_hops=byte_hops,
                glb_bytes=glb_bytes, dram_bytes=dram_bytes)


@functools.partial(jax.jit, static_argnums=())
def score_batch(ma: ModelArrays, ha: HwArrays, p: Placement) -> Cost:
    """Score a batch of placements (leading axis on every Placement field)."""
    return jax.vmap(score_one, in_axes=(None, None, 0))(ma, ha, p)


class Scorer:
    """Convenience wrapper: a model on a hardware, scoring NumPy placement batches."""

    def __init__(self, model: Model, hw: Hardware, max_depth: int = 16):
        self.model, self.hw = model, hw
        self.ma = jax.device_put(model_arrays(model))
        self.ha = hw_arrays(hw, max_depth)

    def __call__(self, p: Placement) -> dict[str, np.ndarray]:
        p = p.numpy()
        if p.seg_end.ndim == 1:
            p = Placement(*(f[None] for f in p.fields()))
        c = score_batch(self.ma, self.ha, p)
        return {k: np.asarray(v) for k, v in c._asdict().items()}

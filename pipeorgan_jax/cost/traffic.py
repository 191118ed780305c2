"""Phase 2 of the combine: bytes moved, where, and the busiest links (docs/cost_model.md,
"Traffic", "Distribution network", "Link loads").

Per edge ([E] arrays) and per layer ([L]). Geometry comes from table rows: a layer's unit
distribution projected through the hop matrix (`proj`), its distribution (`dist`), all-to-all
factors (`a2a_src`, `a2a_dst`), support extents (`ext`), chunk positions, and the chain-edge
hop table.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from pipeorgan_jax.cost import tables as T
from pipeorgan_jax.cost.geometry import CHANNEL, F32, SPATIAL, Layers, Segments, Tiles, unit_hops
from pipeorgan_jax.cost.ops import EXACT
from pipeorgan_jax.cost.tables import HwArrays, ModelArrays


def by_dst(ma: ModelArrays, v):
    """[E] edge values summed into their consumer layer: [L]."""
    return ma.in_slots.reduce(v)


def by_src(ma: ModelArrays, v):
    return ma.out_slots.reduce(v)


class Edges(NamedTuple):
    src: jnp.ndarray  # producer layer (0 for a network input: masked by `intra`)
    intra: jnp.ndarray  # producer and consumer in one segment
    lag: jnp.ndarray  # tiles the consumer waits behind its producer
    ps: jnp.ndarray  # producer position-split
    pd: jnp.ndarray  # consumer needs input by position
    part_d: jnp.ndarray
    bcast: jnp.ndarray  # consumer broadcasts inside each unit
    hop_mean: jnp.ndarray  # chunk-matched flow: mean hops over chunks
    far: jnp.ndarray  # hops of the edge's longest unit-to-unit flow
    pair: jnp.ndarray  # mean unit-to-unit hops of a flow spread over both layers' units
    a2a: jnp.ndarray  # all-to-all: largest unit-boundary link load per byte


def _geometry(ma: ModelArrays, ha: HwArrays, ly: Layers, ps, pd, ops=EXACT):
    """Per edge: chunk-matched mean and max hops, longest flow, pair product and all-to-all
    factor, for the (source, destination) kinds the edge uses. Chain edges read one row of
    the chain table; the others combine the two layers' key rows."""
    U = ha.U
    E = ma.e_src.shape[0]
    # kind combination: uniform-uniform, chunked-uniform, uniform-chunked (an edge whose two
    # ends are both by position is chunk-matched and uses neither)
    kind = lambda e, v: ops.where(pd[e], v[2], ops.where(ps[e], v[1], v[0]))
    out = jnp.zeros((E, 5), F32)
    if ma.chain_e.shape[0]:
        ce = ma.chain_e
        # every layer pair (l - 1, l) from static slices, then the chain edges pick theirs: a
        # gather whose index is computed by other gathers is redone per element it reads
        s = jnp.minimum(ly.start[:-1], U)
        a = jnp.minimum(ly.n[:-1], jnp.maximum(U - s, 1))
        b = jnp.minimum(ly.n[1:], jnp.maximum(U - s - a, 1))
        rows = ha.chain[ha.chain_off[ly.org[:-1], s, a] + b - 1]  # [L - 1, N_CHAIN]
        row = rows[ma.e_src[ce]]
        pick = lambda col: kind(ce, [row[:, col + i] for i in range(3)])
        out = out.at[ce].set(jnp.stack([row[:, T.CH_HOP_MEAN], row[:, T.CH_HOP_MAX], row[:, T.CH_EXT],
                                        pick(T.CH_PAIR), pick(T.CH_A2A)], 1))
    if ma.skip_e.shape[0]:
        se = ma.skip_e
        es, ed = ma.e_src[se], ma.e_dst[se]
        ks, kd = ly.key[es], ly.key[ed]
        dx = jnp.abs(ha.chunk_x[ks].astype(jnp.int32) - ha.chunk_x[kd].astype(jnp.int32))
        dy = jnp.abs(ha.chunk_y[ks].astype(jnp.int32) - ha.chunk_y[kd].astype(jnp.int32))
        h = unit_hops(dx, ha, "x") + unit_hops(dy, ha, "y")
        empty = (ly.ks[es, T.KS_EMPTY] + ly.ks[ed, T.KS_EMPTY]) > 0
        lx, lyy = ha.lanes_xy
        if ops.soft:  # every kind combination, mixed
            combos = ((0, 0), (1, 0), (0, 1))
            pair = kind(se, [(ha.proj[ks, sk] * ha.dist[kd, dk]).sum(1) for sk, dk in combos])
            a2a = kind(se, [T.a2a_combine(ha.a2a_src[ks, sk], ha.a2a_dst[kd, dk], ha.GW, lx, lyy)
                            for sk, dk in combos])
        else:
            ps_, pd_ = ps[se].astype(jnp.int32), pd[se].astype(jnp.int32)
            pair = (ha.proj[ks, ps_ * (1 - pd_)] * ha.dist[kd, pd_]).sum(1)
            a2a = T.a2a_combine(ha.a2a_src[ks, ps_], ha.a2a_dst[kd, pd_], ha.GW, lx, lyy)
        out = out.at[se].set(jnp.stack([h.mean(1), h.max(1), _extent_hops(ha, ks, kd, empty),
                                        pair, a2a], 1))
    return tuple(out[:, i] for i in range(5))


def _extent_hops(ha: HwArrays, ks, kd, empty):
    """Largest hop count between any unit of one layer and any unit of another."""
    es_, ed_ = ha.ext[ks], ha.ext[kd]
    out = 0.0
    for axis, (i0, i1), h in (("x", (0, 1), ha.hx), ("y", (2, 3), ha.hy)):
        if ha.topology != "torus" and (ha.topology == "mesh" or (ha.express_k == (ha.uw if axis == "x" else ha.uh))):
            d = jnp.maximum(jnp.abs(es_[:, i1] - ed_[:, i0]), jnp.abs(ed_[:, i1] - es_[:, i0]))
            out = out + unit_hops(d, ha, axis)
        else:  # hops not monotone in distance: every pair of occupied columns (rows)
            n = ha.GW if axis == "x" else ha.GH
            off = 0 if axis == "x" else ha.GW
            sa = ha.dist[ks, 0, off:off + n] > 0
            sb = ha.dist[kd, 0, off:off + n] > 0
            Hm = jnp.asarray(h)[jnp.abs(jnp.arange(n)[:, None] - jnp.arange(n)[None, :])]
            out = out + (Hm[None] * (sa[:, :, None] & sb[:, None, :])).max((1, 2))
    return jnp.where(empty, 0.0, out)


def edges(ma: ModelArrays, ha: HwArrays, ly: Layers, sg: Segments, tl: Tiles, ops=EXACT) -> Edges:
    es, ed = ma.e_src, ma.e_dst
    es_c = jnp.maximum(es, 0)
    intra = (es >= 0) & (sg.f[es_c] == sg.f[ed])
    lag = jnp.where(ma.rows_full[ed], tl.n_tiles[ed] - 1,
                    jnp.minimum(tl.n_tiles[ed] - 1, ops.floor((tl.h[ed] - 1) / tl.r[es_c])))
    lag = jnp.maximum(lag, 0.0)
    ps, pd = ly.pos_split[es_c], ly.in_pos[ed]
    part_d = ly.part[ed]
    hop_mean, hop_max, ext, pair, a2a = ops.geometry(lambda l: _geometry(ma, ha, l, ps, pd, ops), ly, ed)
    far = ops.where(ops.and_(pd, ps), hop_max, ext)
    return Edges(es_c, intra, lag, ps, pd, part_d, ops.not_(ops.is_(part_d, SPATIAL)), hop_mean, far,
                 pair, a2a)


class Traffic(NamedTuple):
    e_mesh_bh: jnp.ndarray  # [E]
    e_dist_bh: jnp.ndarray
    e_deliv: jnp.ndarray
    cross_in: jnp.ndarray  # [E] edge read from the GLB
    to_glb: jnp.ndarray  # [L] output written to the GLB
    out_bh: jnp.ndarray
    glb_in_l: jnp.ndarray
    glb_out_l: jnp.ndarray
    w_bytes: jnp.ndarray
    w_bh: jnp.ndarray
    w_deliv: jnp.ndarray
    restream: jnp.ndarray
    no_fit: jnp.ndarray
    ps_bytes: jnp.ndarray
    ps_bh: jnp.ndarray
    ps_deliv: jnp.ndarray
    per_unit_in: jnp.ndarray  # [E] what the busiest consumer unit receives
    out_unit: jnp.ndarray  # [E] what the busiest producer unit sends
    a2a_link: jnp.ndarray  # [E]
    sram_excess: jnp.ndarray  # [L] bytes per PE beyond the PE SRAM even with re-streaming


def traffic(ma: ModelArrays, ha: HwArrays, ly: Layers, sg: Segments, tl: Tiles, ed_: Edges,
            ops=EXACT) -> Traffic:
    g = ha.uh * ha.uw
    es, ed, eb = ed_.src, ma.e_dst, ma.e_bytes
    intra, ps, pd, pe_ = ed_.intra, ed_.ps, ed_.pd, ed_.part_d
    cross_in = ~intra
    n_d = ly.n_f[ed]
    # case 1: chunk-matched flows
    bh1 = eb * ed_.hop_mean
    # case 2: consumer channel-split (every consumer unit gets all of B; a reduction consumer
    # gets its 1/n input-channel slice from every producer unit): producer's distribution
    # (chunked if position-split) to the consumer's units, evenly. Case 3: producer
    # channel-split, consumer position-split: evenly over the producer's units to the
    # consumer's chunks.
    to_all = ops.is_(pe_, CHANNEL)  # (a channel-split consumer needs no input by position)
    bh23 = eb * ed_.pair * ops.where(to_all, n_d, 1.0)
    inter_bh = ops.where(ops.and_(pd, ps), bh1, bh23)
    recv = ops.where(to_all, eb * n_d, eb)  # bytes arriving into the consumer's units
    bcast = ed_.bcast
    mesh_in_bh = inter_bh + ops.where(bcast, recv * (g - 1), 0.0)
    mesh_in_deliv = ops.where(bcast, recv * g, recv)
    # segment inputs over the distribution network: read once, delivered to every PE needing them
    kd = ly.ks[ed]
    dist_in_bh = eb * ops.pick(pe_, kd[:, T.KS_WIRE_UNI_C], kd[:, T.KS_WIRE_ALL], kd[:, T.KS_WIRE_UNIT_C],
                               kd[:, T.KS_WIRE_UNIT_U])
    dist_in_deliv = eb * ops.pick(pe_, 1.0, ly.P_f[ed], g, g)
    e_mesh_bh = jnp.where(intra, mesh_in_bh, 0.0)
    e_dist_bh = jnp.where(intra, 0.0, dist_in_bh)
    e_deliv = jnp.where(intra, mesh_in_deliv, dist_in_deliv)

    # a layer's output goes to the GLB when a later segment or nothing consumes it
    to_glb = (ma.t_last[:ma.n_layers] > sg.z) | ma.net_out
    ks = ly.ks
    out_bh = jnp.where(to_glb, ma.out_bytes * ops.where(ly.pos_split, ks[:, T.KS_WIRE_UNI_C],
                                                       ks[:, T.KS_WIRE_UNI_U]), 0.0)
    glb_in_l = by_dst(ma, jnp.where(cross_in, eb, 0.0))
    glb_out_l = jnp.where(to_glb, ma.out_bytes, 0.0)

    # Capacity.
    Kf, W, n_f, P_f = ma.K, ma.W, ly.n_f, ly.P_f
    part, red = ly.part, ly.red
    kg = ops.ceil(Kf / g)
    w_pe = ops.pick(part, W, ops.ceil(Kf / P_f) * W / Kf, kg * W / Kf, kg * W / Kf / n_f)
    I = jnp.where(ma.rows_full, ma.in_full_bytes, tl.h * ma.in_row_bytes)
    I_pe = ops.pick(part, I / P_f, I, I / n_f, I / n_f)
    O_pe = ops.where(red, tl.r * ma.Xo * kg * ha.psum_b, tl.r * Kf * ma.Xo * ha.db / P_f)
    k_e = sg.k[ed] - sg.k[es]
    skip_b = jnp.where(intra & (k_e > 1), (k_e - 1 + ed_.lag) * eb / tl.n_tiles[ed], 0.0) / P_f[ed]
    need = w_pe + 2 * (I_pe + O_pe) + by_dst(ma, skip_b)
    over = need > ha.sram
    restream = over & (need - w_pe <= ha.sram)
    no_fit = over & ~restream
    sram_excess = jnp.maximum(need - w_pe - ha.sram, 0.0)
    wmult = jnp.where(restream, tl.n_tiles, 1.0)
    # weights over the distribution network: spatial to every PE; channel and reduction split
    # (each PE its own slice); hybrid one copy per unit, split over the unit's PEs
    w_bytes = W * wmult
    w_bh = w_bytes * ops.pick(part, ks[:, T.KS_WIRE_ALL], ks[:, T.KS_WIRE_UNI_U], ks[:, T.KS_WIRE_HYB],
                              ks[:, T.KS_WIRE_UNI_U])
    w_deliv = w_bytes * ops.pick(part, P_f, 1.0, n_f, 1.0)

    # Reduction partition: partial sums reduce-scattered over the mesh, unit i -> unit j
    # (j != i) carries psum_bytes x (output elements) x c_j / U.
    ps_bytes = ops.where(ops.and_(red, ly.n > 1), ma.out_elems * ha.psum_b, 0.0)
    ps_bh = ps_bytes * n_f * ks[:, T.KS_PAIR_PS]
    ps_deliv = ps_bytes * (n_f - 1)

    # Mesh link loads (unit level).
    chunks_per_unit = ly.by_n[:, 1]  # largest unit's share of the chunks
    per_unit_in = ops.where(pd, eb * chunks_per_unit[ed], ops.where(to_all, eb, eb / n_d))
    # All-to-all edges (a channel-split or reduction end): every source unit sends to every
    # destination unit; the busiest unit-boundary link from the two layers' factors.
    a2a = ops.and_(intra, ops.not_(ops.and_(ps, pd)))
    a2a_link = ops.where(a2a, eb * ops.where(to_all, n_d, 1.0) * ed_.a2a, 0.0)
    src_unit = ops.where(ps, eb * chunks_per_unit[es], eb / n_f[es])
    out_unit = jnp.where(intra, ops.where(to_all, src_unit * n_d, src_unit), 0.0)
    return Traffic(e_mesh_bh, e_dist_bh, e_deliv, cross_in, to_glb, out_bh, glb_in_l, glb_out_l,
                   w_bytes, w_bh, w_deliv, restream, no_fit, ps_bytes, ps_bh, ps_deliv,
                   per_unit_in, out_unit, a2a_link, sram_excess)


class Links(NamedTuple):
    seg_link: jnp.ndarray  # per layer: bytes on the segment's busiest mesh link
    ps_link: jnp.ndarray
    x_edge: jnp.ndarray  # [E] time for one tile of an edge over its busiest link
    x_ps: jnp.ndarray


def links(ma: ModelArrays, ha: HwArrays, ly: Layers, sg: Segments, tl: Tiles, ed_: Edges,
          tr: Traffic, ops=EXACT) -> Links:
    intra, bcast = ed_.intra, ed_.bcast
    per_unit_in, out_unit = tr.per_unit_in, tr.out_unit
    intra_link = by_dst(ma, ops.where(ops.and_(intra, bcast), per_unit_in, 0.0)) * (ha.uh - 1) / ha.uh
    edge_link = by_dst(ma, jnp.where(intra, per_unit_in, 0.0)) / ha.lanes
    src_link = jnp.maximum(by_src(ma, out_unit) / ha.lanes, by_dst(ma, tr.a2a_link))
    # partial sums: all-to-all among the layer's own units; the busiest receiver gets
    # (n-1) x its chunks, the busiest sender all but its fewest chunks
    n_f = ly.n_f
    ps_unit = tr.ps_bytes * jnp.maximum((n_f - 1) * ly.by_n[:, 1], 1.0 - ly.by_n[:, 2]) / ha.lanes
    ps_link = jnp.maximum(tr.ps_bytes * ly.ks[:, T.KS_A2A_PS], ps_unit)
    x_edge = jnp.maximum(jnp.maximum(per_unit_in, out_unit) / ha.lanes,
                         ops.where(bcast, per_unit_in * (ha.uh - 1) / ha.uh, 0.0))
    ed = ma.e_dst
    x_edge = x_edge / tl.n_tiles[ed] / ha.link_bw + ha.router * ed_.far
    x_ps = jnp.where(tr.ps_bytes > 0, ps_link / tl.n_tiles / ha.link_bw
                     + ha.router * ly.ks[:, T.KS_EXT_PS], 0.0)
    seg_link = sg.max(jnp.maximum(jnp.maximum(intra_link, edge_link), jnp.maximum(src_link, ps_link)))
    return Links(seg_link, ps_link, x_edge, x_ps)

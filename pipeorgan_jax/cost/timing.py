"""Phase 3 of the combine: compute cycles, GLB / DRAM residency, the fill recurrence and the
segment latency with its bounds (docs/cost_model.md, "Timing", "Bounds")."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from pipeorgan_jax.cost import tables as T
from pipeorgan_jax.cost.geometry import F32, Layers, Segments, Tiles
from pipeorgan_jax.cost.ops import EXACT
from pipeorgan_jax.cost.tables import HwArrays, ModelArrays
from pipeorgan_jax.cost.traffic import Edges, Links, Traffic, by_dst


class Memory(NamedTuple):
    glb_bytes: jnp.ndarray
    dram_bytes: jnp.ndarray
    live: jnp.ndarray  # per layer: GLB live bytes while its segment runs
    spill: jnp.ndarray  # bytes spilled to DRAM and back (whole network)
    net_in_first: jnp.ndarray  # [L] network input bytes charged to their first consumer
    net_out_bytes: jnp.ndarray  # [L]
    W_s: jnp.ndarray  # per layer: its segment's weight bytes


def memory(ma: ModelArrays, ha: HwArrays, sg: Segments, tr: Traffic) -> Memory:
    L = ma.n_layers
    net_in_bytes = jnp.where(ma.t_prod < 0, ma.t_bytes, 0.0)
    glb_reads = jnp.where(tr.cross_in, ma.e_bytes, 0.0).sum() + tr.w_bytes.sum()
    glb_writes = tr.glb_out_l.sum() + ma.net_in_total + ma.W_total
    # GLB live bytes while a segment runs: crossing tensors alive at its start plus the
    # crossing tensors it produces (exactly the contract's "intersecting" set).
    cross_out = ma.t_last[:L] > sg.z  # layer tensors consumed after their segment
    tb_layer = jnp.where(cross_out, ma.t_bytes[:L], 0.0)
    ended = jnp.where(ma.t_end_idx >= 0, jnp.concatenate([tb_layer, net_in_bytes[L:]])[
        jnp.maximum(ma.t_end_idx, 0)], 0.0).sum(1)  # crossing bytes last consumed at l
    alive_at = (ma.net_in_total + jnp.concatenate([jnp.zeros(1), jnp.cumsum(tb_layer)[:-1]])
                - jnp.concatenate([jnp.zeros(1), jnp.cumsum(ended)[:-1]]))  # t_prod < l <= t_last
    # plus the next segment's weights, fetched from DRAM into the GLB during this one
    sums = sg.sum(jnp.stack([ma.W, tb_layer, jnp.where(tr.restream, ma.W, 0.0)], 1))
    W_s = sums[:, 0]
    W_next = jnp.where(sg.z + 1 < L, W_s[jnp.minimum(sg.z + 1, L - 1)], 0.0)
    live = alive_at[sg.f] + sums[:, 1] + sums[:, 2] + W_next
    spill = 2.0 * jnp.maximum(live.max() - ha.glb, 0.0)
    net_out_bytes = jnp.where(ma.net_out, ma.out_bytes, 0.0)
    dram_bytes = ma.W_total + ma.net_in_total + ma.net_out_total + spill
    first_use = jnp.clip(ma.t_first, 0, L - 1)
    net_in_first = jnp.zeros(L, F32).at[first_use].add(net_in_bytes)
    return Memory(glb_reads + glb_writes, dram_bytes, live, spill, net_in_first, net_out_bytes, W_s)


def compute_cycles(ma: ModelArrays, ha: HwArrays, ly: Layers, tl: Tiles, ops=EXACT):
    """Cycles of one tile of each layer on its PEs."""
    g = ha.uh * ha.uw
    part, n_f, P_f, Kf = ly.part, ly.n_f, ly.P_f, ma.K
    kg = jnp.ceil(Kf / g)
    Q = tl.r * ma.Xo
    m_red = jnp.ceil(ma.m - 1e-3)  # reduction length per output (an integer for eligible ops)
    c = ops.ceil
    cyc = ops.pick(part, c(Q / P_f) * Kf * ma.m, c(Kf / P_f) * Q * ma.m, c(Q / n_f) * kg * ma.m,
                   (c(m_red / n_f) * Q + (n_f - 1) * c(Q / n_f)) * kg)
    return c(cyc / ha.macs_per_cycle)


def segment_latency(ma: ModelArrays, ha: HwArrays, ly: Layers, sg: Segments, tl: Tiles,
                    ed_: Edges, tr: Traffic, lk: Links, mem: Memory, ops=EXACT):
    """Per layer: its segment's latency (the same value at every layer of the segment)."""
    n_tiles = tl.n_tiles
    cyc = compute_cycles(ma, ha, ly, tl, ops)
    mx2 = ops.maximum  # soft: smooth
    glb_fed = by_dst(ma, tr.cross_in.astype(F32)) > 0  # reads a segment input from the GLB
    # bytes moved while the segment's tiles play (the first copy of every weight is preloaded)
    s = sg.sum(jnp.stack([
        tr.glb_in_l + jnp.where(tr.restream, ma.W * (n_tiles - 1), 0.0),  # g_in
        mem.net_in_first,  # g_net: network inputs, DRAM -> GLB write -> read (in g_in)
        tr.glb_out_l,  # g_out
        mem.net_in_first + mem.net_out_bytes,  # d_pipe
        mem.net_out_bytes,
        tr.glb_in_l + tr.glb_out_l + ma.W + tr.w_bytes + mem.net_in_first,  # GLB bound bytes
        ma.W + mem.net_in_first + mem.net_out_bytes,  # DRAM bound bytes
        tr.glb_in_l + tr.w_bytes,  # distribution bound bytes (in)
    ], 1))
    g_in, g_net, g_out, d_pipe, d_out, b_glb, b_dram, b_dist = (s[:, i] for i in range(8))
    port_far = ly.ks[:, T.KS_PORT_FAR]  # the first GLB tile reaches the farthest PE
    mx = sg.max(jnp.stack([jnp.where(glb_fed, port_far, 0.0)], 1))[:, 0]
    t_in = (mx2(mx2((g_in + g_net) / ha.glb_bw, g_in / ha.dist_bw), g_net / ha.dram_bw) / n_tiles
            + ha.router * mx)
    t_out = (mx2(mx2(g_out / ha.glb_bw, g_out / ha.dist_bw), d_out / ha.dram_bw)
             / n_tiles + ha.router * port_far)
    src_c = jnp.maximum(ma.in_src, 0)
    has_in = ma.in_eidx >= 0
    in_e = jnp.maximum(ma.in_eidx, 0)
    lag_in = jnp.where(has_in, ed_.lag[in_e], 0.0)
    in_intra = has_in & ed_.intra[in_e]
    F0 = jnp.where(glb_fed, t_in, 0.0)
    seg_link, ps_link = lk.seg_link, lk.ps_link

    # During the fill a producer delivers its next tiles at the pace of the slowest stage
    # upstream of it (rho), not yet at the segment's steady tile time. E_l is when l finishes
    # its last tile: it runs its remaining n-1 tiles at its own pace (compute, its GLB input
    # tile time or its partial-sum exchange, if slower), and its last tile needs the
    # producers' last tiles.
    sigma = mx2(mx2(seg_link / ha.link_bw, (g_in + g_net + g_out) / ha.glb_bw),
                mx2(mx2(g_in, g_out) / ha.dist_bw, d_pipe / ha.dram_bw)) / n_tiles
    c_pace = mx2(mx2(cyc, jnp.where(glb_fed, t_in, 0.0)), ps_link / n_tiles / ha.link_bw)
    c_done = cyc + lk.x_ps  # a tile's output exists once its partial sums are reduced
    x_in = jnp.where(has_in, lk.x_edge[in_e], 0.0)

    Fill, End = fill(src_c, ma.rows_full, in_intra, lag_in, x_in, c_pace, c_done, F0, n_tiles)
    m = sg.max(jnp.stack([End + jnp.where(tr.to_glb, t_out, 0.0), Fill], 1))
    pipe = mx2(m[:, 0], m[:, 1] + (n_tiles - 1) * sigma)
    # Weights: fetched from DRAM into the GLB while the previous segment runs (the first
    # segment has none to hide behind), then delivered to the PEs before the first tile.
    W_s = mem.W_s
    preload = W_s / jnp.minimum(ha.glb_bw, ha.dist_bw)
    preload = jnp.where(sg.f == 0, mx2(preload, W_s / ha.dram_bw), preload)
    # No segment beats the rate at which its servers move its bytes (DESIGN.md section 6).
    bound = mx2(mx2(b_glb / ha.glb_bw, b_dram / ha.dram_bw),
                mx2(mx2(b_dist, g_out) / ha.dist_bw, seg_link / ha.link_bw))
    return mx2(preload + pipe, bound)


def _fill_layer_major(src, rows_full, in_intra, lag_in, x_in, c_pace, c_done, F0, n_tiles):
    """The fill recurrence over a batch held layer-major ([L, B] per layer value, [L, D, B]
    per in-edge slot): each step reads its producers' rows and writes its own, contiguous.
    Returns (Fill, End) as [L, B]."""
    L, B = c_pace.shape

    def step(carry, i):
        F, rho, E = carry
        s = src[i]  # [D] producers of layer i
        ok = in_intra[i]  # [D, B]
        Fs, rs, Es = F[s], rho[s], E[s]  # [D, B]
        prev = jnp.where(ok, Fs + lag_in[i] * rs + x_in[i], 0.0).max(0)
        # a layer that waits for its producers' whole output then runs at its own pace
        rho_i = jnp.where(rows_full[i], c_pace[i], jnp.maximum(c_pace[i], jnp.where(ok, rs, 0.0).max(0)))
        F_i = jnp.maximum(prev, F0[i]) + c_done[i]
        E_i = jnp.maximum(F_i + (n_tiles[i] - 1) * c_pace[i], jnp.where(ok, Es + x_in[i], 0.0).max(0) + c_done[i])
        return (F.at[i].set(F_i), rho.at[i].set(rho_i), E.at[i].set(E_i)), None

    z = jnp.zeros((L, B), F32)
    (Fill, _, End), _ = jax.lax.scan(step, (z, z, z), jnp.arange(L))
    return Fill, End


def _fill_one(src, rows_full, in_intra, lag_in, x_in, c_pace, c_done, F0, n_tiles):
    add = lambda v: v[..., None]
    F, E = _fill_layer_major(src, rows_full, add(in_intra), add(lag_in), add(x_in), add(c_pace),
                             add(c_done), add(F0), add(n_tiles))
    return F[:, 0], E[:, 0]


@jax.custom_jvp
def fill(src, rows_full, in_intra, lag_in, x_in, c_pace, c_done, F0, n_tiles):
    """Per layer: when its first tile is done (Fill) and its last (End), for one placement.

    Layer i's first tile needs its in-segment producers' first tiles plus `lag` more at their
    pace, and the edge's transfer; `src` [L, D] are the producers (static), `in_intra`, `lag_in`,
    `x_in` [L, D] the in-edge slots. Under vmap the batch runs layer-major (_fill_batched):
    XLA:CPU would otherwise scatter each step's reads and writes across the [B, L] carry.
    Derivatives come from the plain recurrence (custom_vmap has no reverse mode)."""
    return _fill_batched(src, rows_full, in_intra, lag_in, x_in, c_pace, c_done, F0, n_tiles)


@fill.defjvp
def _fill_jvp(primals, tangents):
    return jax.jvp(_fill_one, primals, tangents)


@jax.custom_batching.custom_vmap
def _fill_batched(src, rows_full, in_intra, lag_in, x_in, c_pace, c_done, F0, n_tiles):
    return _fill_one(src, rows_full, in_intra, lag_in, x_in, c_pace, c_done, F0, n_tiles)


@_fill_batched.def_vmap
def _fill_vmap(axis_size, in_batched, src, rows_full, *per_placement):
    if in_batched[0] or in_batched[1]:  # a batch of models: no layer-major shortcut
        out = jax.vmap(lambda s, r, *a: _fill_one(s, r, *a),
                       in_axes=(0 if in_batched[0] else None, 0 if in_batched[1] else None)
                       + tuple(0 if b else None for b in in_batched[2:]))(src, rows_full, *per_placement)
        return out, (True, True)
    # batch axis last: [B, L] -> [L, B], [B, L, D] -> [L, D, B]
    to_lm = lambda v, b: jnp.moveaxis(v, 0, -1) if b else jnp.broadcast_to(v[..., None], v.shape + (axis_size,))
    args = [to_lm(v, b) for v, b in zip(per_placement, in_batched[2:])]
    F, E = _fill_layer_major(src, rows_full, *args)
    return (F.T, E.T), (True, True)

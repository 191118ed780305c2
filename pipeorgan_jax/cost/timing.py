"""Phase 3 of the combine: compute cycles, GLB / DRAM residency, the fill recurrence and the
segment latency with its bounds (docs/cost_model.md, "Timing", "Bounds")."""
from __future__ import annotations

import functools

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
    live_own: jnp.ndarray  # the same less the next segment's weights (prefetched meanwhile)
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
    # plus the next segment's weights, fetched from DRAM into the GLB during this one
    sums = sg.sum(jnp.stack([ma.W, tb_layer, jnp.where(tr.restream, ma.W, 0.0)], 1))
    W_s = sums[:, 0]
    live_own = ma.alive0[sg.f] + sums[:, 1] + sums[:, 2]
    W_next = jnp.where(sg.z + 1 < L, W_s[jnp.minimum(sg.z + 1, L - 1)], 0.0)
    live = live_own + W_next
    spill = 2.0 * jnp.maximum(live.max() - ha.glb, 0.0)
    net_out_bytes = jnp.where(ma.net_out, ma.out_bytes, 0.0)
    dram_bytes = ma.W_total + ma.net_in_total + ma.net_out_total + spill
    first_use = jnp.clip(ma.t_first, 0, L - 1)
    net_in_first = jnp.zeros(L, F32).at[first_use].add(net_in_bytes)
    return Memory(glb_reads + glb_writes, dram_bytes, live, live_own, spill, net_in_first, net_out_bytes, W_s)


def compute_cycles(ma: ModelArrays, ha: HwArrays, ly: Layers, tl: Tiles, ops=EXACT):
    """Cycles of one tile of each layer on its PEs."""
    g = ha.uh * ha.uw
    part, n_f, P_f, Kf = ly.part, ly.n_f, ly.P_f, ma.K
    kg = ops.ceil(Kf / g)
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
    Fill, End = fill(ed_.src, ma.in_slots, ma.rows_full, ed_.intra, ed_.lag, lk.x_edge, c_pace, c_done,
                     F0, n_tiles, sg.depth.max(), min(ha.max_depth, ma.n_layers))
    m = sg.max(jnp.stack([End + jnp.where(tr.to_glb, t_out, 0.0), Fill], 1))
    pipe = mx2(m[:, 0], m[:, 1] + (n_tiles - 1) * sigma)
    # Weights: fetched from DRAM into the GLB while the previous segment runs (the first
    # segment has none to hide behind), then delivered to the PEs before the first tile.
    W_s = mem.W_s
    preload = W_s / jnp.minimum(ha.glb_bw, ha.dist_bw)
    preload = jnp.where(ma.net_first[sg.f], mx2(preload, W_s / ha.dram_bw), preload)
    # No segment beats the rate at which its servers move its bytes (DESIGN.md section 6).
    bound = mx2(mx2(b_glb / ha.glb_bw, b_dram / ha.dram_bw),
                mx2(mx2(b_dist, g_out) / ha.dist_bw, seg_link / ha.link_bw))
    return mx2(preload + pipe, bound)


def _fill_step(src, into, rows_full, intra, lag, x, c_pace, c_done, F0, n_tiles, F, rho, E):
    """Every layer at once, from its producers' current values (one Jacobi sweep); per-edge
    terms are reduced into their consumer layers through `into` (Slots)."""
    Fs, rs, Es = F[src], rho[src], E[src]  # [E]
    prev = into.reduce(jnp.where(intra, Fs + lag * rs + x, 0.0), "max")
    # a layer that waits for its producers' whole output then runs at its own pace
    rho = jnp.where(rows_full, c_pace, jnp.maximum(c_pace, into.reduce(jnp.where(intra, rs, 0.0), "max")))
    F = jnp.maximum(prev, F0) + c_done
    E = jnp.maximum(F + (n_tiles - 1) * c_pace, into.reduce(jnp.where(intra, Es + x, 0.0), "max") + c_done)
    return F, rho, E


@functools.partial(jax.custom_jvp, nondiff_argnums=(11,))
def fill(src, into, rows_full, intra, lag, x, c_pace, c_done, F0, n_tiles, sweeps, first: int):
    """Per layer: when its first tile is done (Fill) and its last (End).

    Layer l's first tile needs its in-segment producers' first tiles, plus `lag` more at their
    pace (rho), plus the edge's transfer `x`; its last tile needs its producers' last. `src`,
    `intra`, `lag`, `x` are per edge, `into` maps edges to their consumer layers.

    This is a longest-path recurrence in (max, +) over the in-segment edges, so instead of L
    sequential steps it is solved by Jacobi sweeps over every layer at once: after k sweeps
    every layer at most k deep in its segment holds its final value (the same operations on
    the same operands as the sequential recurrence, so the same floats), and `sweeps` = the
    deepest segment suffices. A 1,149-layer model needs <= max_depth sweeps, not 1,149 steps.
    The first `first` (static: the deepest feasible segment) sweeps run as a fixed loop; a
    while loop adds any more a deeper (infeasible) segment needs: under vmap a loop whose trip
    count differs per placement selects every value every sweep."""
    args = (src, into, rows_full, intra, lag, x, c_pace, c_done, F0, n_tiles)
    z = jnp.zeros_like(c_pace)
    F, rho, E = _sweeps(first, args, (z, z, z))

    def body(c):
        k, F, rho, E = c
        return (k + 1,) + _fill_step(*args, F, rho, E)

    _, F, _, E = jax.lax.while_loop(lambda c: c[0] < sweeps, body, (jnp.int32(first), F, rho, E))
    return F, E


def _fill_fixed(n: int, *args):
    """`n` sweeps, a fixed count (differentiable: a while loop has no reverse mode)."""
    z = jnp.zeros_like(args[6])
    F, _, E = _sweeps(n, args, (z, z, z))
    return F, E


def _sweeps(n: int, args, carry):
    return jax.lax.fori_loop(0, n, lambda k, c: _fill_step(*args, *c), carry)


@fill.defjvp
def _fill_jvp(first, primals, tangents):
    # tangents from a fixed number of sweeps: the layer count bounds every segment's depth
    L = primals[6].shape[0]
    out = fill(*primals, first)
    _, t = jax.jvp(lambda *a: _fill_fixed(L, *a), primals[:-1], tangents[:-1])
    return out, t

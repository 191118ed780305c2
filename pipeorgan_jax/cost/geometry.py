"""Phase 1 of the combine: a placement's segments, units per layer and table rows.

Everything here is per layer ([L] arrays); the geometry itself comes from table rows
(tables.py) looked up by each layer's key (organization, first slot, unit count).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from pipeorgan_jax.cost.ops import EXACT, ceil_ratio, floor_ratio
from pipeorgan_jax.cost.tables import HwArrays, ModelArrays, layer_key
from pipeorgan_jax.placement import GRAN_ROWS, Placement

SPATIAL, CHANNEL, HYBRID, REDUCTION = 0, 1, 2, 3
F32 = jnp.float32


class Segments(NamedTuple):
    """Where each layer sits in its segment, and window sums over segments."""
    f: jnp.ndarray  # first layer of l's segment
    z: jnp.ndarray  # last layer
    depth: jnp.ndarray
    k: jnp.ndarray  # position inside the segment
    is_first: jnp.ndarray
    e: jnp.ndarray  # last layer of the window summed for l's segment (min(z, f + D - 1))
    D: int

    def _shifted(self, v, fill, op):
        """Combine v over the window positions f..l of each layer l (D static shifts)."""
        acc = v
        for s in range(1, min(self.D, v.shape[0])):
            pad = jnp.full((s,) + v.shape[1:], fill, v.dtype)
            sh = jnp.concatenate([pad, v[:-s]])
            ok = (self.k >= s).reshape((-1,) + (1,) * (v.ndim - 1))
            acc = op(acc, jnp.where(ok, sh, fill))
        return acc[self.e]

    def sum(self, v):
        """Per layer: v summed over its segment's window (rows of [L, k] alike)."""
        return self._shifted(v, 0.0, jnp.add)

    def max(self, v):
        return self._shifted(v, -jnp.inf, jnp.maximum)


def segments(seg_end, L: int, D: int) -> Segments:
    idx = jnp.arange(L)
    seg_end = seg_end.at[L - 1].set(True)
    starts = jnp.concatenate([jnp.ones(1, bool), seg_end[:-1]])
    f = jax.lax.cummax(jnp.where(starts, idx, 0))
    z = jax.lax.cummin(jnp.where(seg_end, idx, L - 1), reverse=True)
    # Segments deeper than D are infeasible (reason 1); their sums cover their first D layers.
    return Segments(f, z, z - f + 1, idx - f, idx == f, jnp.minimum(z, f + D - 1), D)


class Layers(NamedTuple):
    """Per-layer choices, units and table rows of one placement."""
    gran: jnp.ndarray
    org: jnp.ndarray
    part: jnp.ndarray
    pos_split: jnp.ndarray  # output held as position chunks (spatial, hybrid, reduction)
    in_pos: jnp.ndarray  # input needed by output position (spatial, hybrid)
    red: jnp.ndarray
    n: jnp.ndarray  # units (int32)
    n_f: jnp.ndarray
    P_f: jnp.ndarray  # PEs
    start: jnp.ndarray  # first position in the organization's slot order
    key: jnp.ndarray  # row in the per-key tables
    ks: jnp.ndarray  # [L, N_KS] per-key scalars
    by_n: jnp.ndarray  # [L, 3] U // n, ceil(U / n) / U, floor(U / n) / U


def layers(ma: ModelArrays, ha: HwArrays, p: Placement, sg: Segments) -> Layers:
    U = ha.U
    g = ha.uh * ha.uw
    gran, org, part = p.gran[sg.z], p.org[sg.z], p.part
    # Units per layer from integer shares (organization.units_per_layer): a float division
    # of integers below 2^16 with a quotient below U, so its floor is exact (floor_ratio:
    # even where XLA divides by a reciprocal).
    share = p.share.astype(F32)
    csum = jnp.cumsum(share)
    base = jnp.where(sg.f > 0, csum[jnp.maximum(sg.f - 1, 0)], 0.0)
    S = csum - base
    S_prev = S - share
    Wt = S[sg.z]
    free = jnp.maximum(U - sg.depth, 0).astype(F32)
    n = jnp.maximum(1 + floor_ratio(free * S / Wt) - floor_ratio(free * S_prev / Wt), 1.0).astype(jnp.int32)
    ncum = jnp.cumsum(n)
    nbase = jnp.where(sg.f > 0, ncum[jnp.maximum(sg.f - 1, 0)], 0)
    start = ncum - n - nbase
    key = layer_key(org, start, n, U)
    n_f = n.astype(F32)
    return Layers(gran=gran, org=org, part=part, pos_split=part != CHANNEL,
                  in_pos=(part == SPATIAL) | (part == HYBRID), red=part == REDUCTION,
                  n=n, n_f=n_f, P_f=n_f * g, start=start, key=key,
                  ks=ha.key_scalars[key], by_n=ha.by_n[n])


class Tiles(NamedTuple):
    n_tiles: jnp.ndarray  # per layer: the segment's tile count
    r: jnp.ndarray  # output rows per tile
    h: jnp.ndarray  # input rows per tile


def tiles(ma: ModelArrays, ly: Layers, sg: Segments, ops=EXACT) -> Tiles:
    """Tile count per segment, rows per tile. Relaxed (ops), the tile count of every
    granularity mixed by its probability, and rows per tile ceil'd straight-through."""
    Yo_z = ma.Yo[sg.z]
    min_rows = -sg.max(-ma.Yo)

    def count(T):  # T: rows per tile, per layer or one for all
        T = jnp.where(T == 0, Yo_z, T)
        return jnp.maximum(jnp.minimum(ceil_ratio(Yo_z / T), min_rows), 1.0)

    n_tiles = ops.mix_options(ly.gran, count, GRAN_ROWS)
    r = ops.ceil(ma.Yo / n_tiles)
    h = jnp.minimum(ma.Yin, ops.ceil(r * ma.Yin / ma.Yo) + ma.halo)
    h = jnp.where(ma.rows_full, ma.Yin, h)
    return Tiles(n_tiles, r, h)


def unit_hops(d, ha: HwArrays, axis: str):
    """Hops between units d >= 0 unit columns (axis 'x') or rows ('y') apart."""
    u, N = (ha.uw, ha.GW) if axis == "x" else (ha.uh, ha.GH)
    d = d.astype(F32)
    if ha.topology == "mesh":
        return d * u
    if ha.topology == "torus":
        return u * jnp.minimum(d, N - d)
    if ha.express_k == u:
        return d
    return (ha.hx if axis == "x" else ha.hy)[d.astype(jnp.int32)]

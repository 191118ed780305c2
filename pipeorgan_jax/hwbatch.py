"""Hardware points as data: one jitted call scores (hardware points x placements).

The hardware parameters that do not change array shapes (bandwidths, capacities, router
latency, energy table) are scalar leaves of `HwArrays`; a sweep gives each of them one value
per point, as a column of a `[H, k]` array, and `jax.vmap` runs the cost model once per
point inside one compiled call (gymnax's `EnvParams` as data, STYLE.md). Shape-changing
parameters (array size, allocation unit, topology) stay Hydra multirun jobs.

Only the leaves named in `LEAVES` are replaced, by name; the rest of `HwArrays` (tables,
static fields) is closed over as it is, so the batch model is free to grow new leaves.
"""
from __future__ import annotations

import functools
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from pipeorgan_jax.cost import score_one
from pipeorgan_jax.hardware import Hardware

from pipeorgan_jax.hwkeys import INTEGER_KEYS, LEAVES


class HwBatchError(ValueError):
    pass


def check_keys(keys: Sequence[str]) -> None:
    bad = [k for k in keys if k not in LEAVES]
    if bad:
        raise HwBatchError(f"hardware key(s) {bad} cannot be batched; batchable (shape-free) "
                           f"keys: {sorted(LEAVES)}; shape-changing ones (rows, cols, units, "
                           "topology) are swept as a Hydra multirun (-m)")


def default_value(hw: Hardware, key: str) -> float:
    return float(getattr(hw, key))


def point_hardware(hw: Hardware, keys: Sequence[str], values: Sequence[float]) -> Hardware:
    """The `Hardware` of one point (what a Scorer of that point would be built from)."""
    kw = {}
    for k, v in zip(keys, values):
        kw[k] = int(round(float(v))) if k in INTEGER_KEYS else float(v)
    return hw.with_(**kw)


def _with_point(ha, keys: tuple[str, ...], v):
    return ha.replace(**{LEAVES[k]: v[i] for i, k in enumerate(keys)})


def _over_points(at, xs, chunk):
    """vmap over the leading (point) axis; with `chunk`, `chunk` points at a time inside the
    same compiled call (lax.map), so that memory stays bounded for any number of points."""
    H = jax.tree_util.tree_leaves(xs)[0].shape[0]
    if chunk is None or chunk >= H:
        return jax.vmap(at)(xs)
    return jax.lax.map(at, xs, batch_size=chunk)


@functools.partial(jax.jit, static_argnames=("keys", "chunk"))
def score_points(ma, ha, values, p, keys: tuple[str, ...], chunk: int | None = None):
    """Cost of every placement of `p` ([B] batch) at every hardware point: `values` is
    [H, len(keys)], one column per key in `keys`; every Cost field comes out [H, B, ...]."""
    def at(v):
        return jax.vmap(score_one, (None, None, 0))(ma, _with_point(ha, keys, v), p)
    return _over_points(at, values, chunk)


@functools.partial(jax.jit, static_argnames=("keys", "chunk"))
def score_points_each(ma, ha, values, p, keys: tuple[str, ...], chunk: int | None = None):
    """As `score_points`, but each point has its own placements: `p` is [H, B]."""
    def at(vq):
        v, q = vq
        return jax.vmap(score_one, (None, None, 0))(ma, _with_point(ha, keys, v), q)
    return _over_points(at, (values, p), chunk)


def values_array(points: Mapping[str, Sequence[float]] | np.ndarray, keys: Sequence[str]) -> jnp.ndarray:
    """[H, k] float32 from {key: [H values]} (or an array already in that shape)."""
    if isinstance(points, np.ndarray):
        return jnp.asarray(points, jnp.float32)
    return jnp.asarray(np.stack([np.asarray(points[k], np.float64) for k in keys], 1), jnp.float32)

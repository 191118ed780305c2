"""A relaxed, differentiable cost: the batch model's tables and combine, with soft choices.

docs/cost_model.md, "Relaxed cost". A `SoftPlacement` holds, per layer, logits over the
granularities, organizations and partitions and a continuous log PE share; segment
boundaries (`seg_end`) are given from outside and stay fixed. `relaxed_cost` runs the same
combine as `score_one` (cost/__init__.py `combine`) with `ops.Soft` primitives: a choice's
probabilities mix the per-option values (table rows, tile counts, bytes, cycles), max is a
smooth maximum of relative width `temperature`, ceil and floor are straight-through, and units
per layer take the rounded shares' value with the continuous shares' derivative. At
temperature 0 the probabilities are the logits' argmax and every surrogate is exact, so
`relaxed_cost(ma, ha, seg_end, s, 0.0)` is the batch model's cost of
`round(s, seg_end, ma.red_ok)`.

Everything here is pure and works on one placement: jit, vmap and grad it (w.r.t. the
SoftPlacement's leaves, or the hardware's continuous parameters in `ha`).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pipeorgan_jax.cost import Cost, combine, geometry
from pipeorgan_jax.cost.geometry import CHANNEL, F32, HYBRID, REDUCTION, SPATIAL
from pipeorgan_jax.cost.ops import Soft, straight_through
from pipeorgan_jax.cost.tables import HwArrays, ModelArrays, layer_key
from pipeorgan_jax.placement import GRAN_ROWS, MAX_SHARE, PARTITIONS, Placement
from pipeorgan_jax.organization import ORGANIZATIONS

ONE_HOT_MARGIN = 4.0  # logit gap of one_hot's chosen option: p = 0.93 of 4 at temperature 1


@struct.dataclass
class SoftPlacement:
    """A distribution over placements with fixed segment boundaries ([..., L] leading axes)."""
    gran: jnp.ndarray  # float[..., L, 7] logits over GRAN_ROWS, read at a segment's last layer
    org: jnp.ndarray  # float[..., L, 4] logits over ORGANIZATIONS, read at the last layer
    part: jnp.ndarray  # float[..., L, 4] logits over PARTITIONS
    log_share: jnp.ndarray  # float[..., L] log of the PE share (clipped to 1..MAX_SHARE)


class RelaxedCost(NamedTuple):
    latency_cycles: jnp.ndarray
    energy_pj: jnp.ndarray
    edp: jnp.ndarray
    sram_excess: jnp.ndarray  # sum over layers of PE SRAM overflow / PE SRAM (0: it fits)
    feasible: jnp.ndarray  # the relaxed placement's feasibility (exact at temperature 0)
    cost: Cost  # every output of the combine, relaxed


def shares(soft: SoftPlacement):
    """Continuous PE shares in [1, MAX_SHARE]."""
    return jnp.clip(jnp.exp(soft.log_share), 1.0, float(MAX_SHARE))


def _part_logits(logits, red_ok):
    """No probability on the reduction partition where it does not apply (reason 3)."""
    if red_ok is None:
        return logits
    return jnp.where(jnp.asarray(red_ok)[..., None] | (jnp.arange(logits.shape[-1]) != REDUCTION),
                     logits, -jnp.inf)


def probabilities(logits, temperature):
    """softmax(logits / temperature); at temperature 0 the argmax, one-hot."""
    t = jnp.asarray(temperature, F32)
    hard = jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1], dtype=F32)
    soft = jax.nn.softmax(logits / jnp.where(t > 0, t, 1.0), -1)
    return jnp.where(t > 0, soft, hard)


def round(soft: SoftPlacement, seg_end, red_ok=None) -> Placement:  # noqa: A001 (the rounding)
    """The placement a SoftPlacement rounds to: each choice's most probable option, shares
    rounded to integers. `red_ok` (ModelArrays.red_ok) keeps reduction off layers it does not
    apply to. Leading batch axes carry through (seg_end with them)."""
    am = lambda x: jnp.argmax(x, -1).astype(jnp.int32)
    return Placement(seg_end=jnp.asarray(seg_end, bool), gran=am(soft.gran), org=am(soft.org),
                     share=jnp.clip(jnp.rint(shares(soft)), 1, MAX_SHARE).astype(jnp.int32),
                     part=am(_part_logits(soft.part, red_ok)))


def one_hot(p: Placement, margin: float = ONE_HOT_MARGIN) -> SoftPlacement:
    """The SoftPlacement whose logits favour p's choices by `margin` (p = round(one_hot(p)))."""
    oh = lambda x, n: margin * (jax.nn.one_hot(jnp.asarray(x), n, dtype=F32) - 1.0)
    return SoftPlacement(gran=oh(p.gran, len(GRAN_ROWS)), org=oh(p.org, len(ORGANIZATIONS)),
                         part=oh(p.part, len(PARTITIONS)),
                         log_share=jnp.log(jnp.asarray(p.share, F32)))


def uniform(n_layers: int, key=None, scale: float = 0.0) -> SoftPlacement:
    """Equal logits (plus `scale` x normal noise from `key`), equal shares: a start from scratch."""
    shapes = dict(gran=(n_layers, len(GRAN_ROWS)), org=(n_layers, len(ORGANIZATIONS)),
                  part=(n_layers, len(PARTITIONS)), log_share=(n_layers,))
    keys = jax.random.split(key, 4) if key is not None else [None] * 4
    return SoftPlacement(**{name: (scale * jax.random.normal(k, s) if k is not None else jnp.zeros(s))
                            + (np.log(MAX_SHARE / 2) if name == "log_share" else 0.0)
                            for (name, s), k in zip(shapes.items(), keys)})


def soft_layers(ma: ModelArrays, ha: HwArrays, sg: geometry.Segments, seg_end, soft: SoftPlacement,
                temperature) -> geometry.Layers:
    """geometry.layers of the rounded placement, its choices replaced by probabilities, its
    unit counts carrying the continuous shares' derivative, its per-key scalars mixed over
    the organizations."""
    ly = geometry.layers(ma, ha, round(soft, seg_end, ma.red_ok), sg)
    wg = probabilities(soft.gran, temperature)[sg.z]
    wo = probabilities(soft.org, temperature)[sg.z]
    wp = probabilities(_part_logits(soft.part, ma.red_ok), temperature)
    # units: 1 + free * share / (segment's share sum), the floor-free form of the exact rule
    s = shares(soft)
    csum = jnp.cumsum(s)
    Wt = csum[sg.z] - jnp.where(sg.f > 0, csum[jnp.maximum(sg.f - 1, 0)], 0.0)
    free = jnp.maximum(ha.U - sg.depth, 0).astype(F32)
    n_f = straight_through(ly.n_f, 1.0 + free * s / Wt)
    ks = sum(wo[:, o, None] * ha.key_scalars[layer_key(jnp.full_like(ly.n, o), ly.start, ly.n, ha.U)]
             for o in range(len(ORGANIZATIONS)))
    return ly._replace(gran=wg, org=wo, part=wp, pos_split=1.0 - wp[:, CHANNEL],
                       in_pos=wp[:, SPATIAL] + wp[:, HYBRID], red=wp[:, REDUCTION],
                       n_f=n_f, P_f=n_f * (ha.uh * ha.uw), ks=ks)


def relaxed_cost(ma: ModelArrays, ha: HwArrays, seg_end, soft: SoftPlacement, temperature) -> RelaxedCost:
    """The relaxed cost of one SoftPlacement with fixed segment boundaries `seg_end` (bool[L]).

    Differentiable w.r.t. `soft` (and `ha`'s scalars); `temperature` (traced: anneal it freely)
    scales the softmax over each choice's logits and the smooth maximum's width; 0 gives the
    exact batch cost of `round(soft, seg_end, ma.red_ok)`."""
    seg_end = jnp.asarray(seg_end, bool)
    sg = geometry.segments(seg_end, ma.n_layers, ha.max_depth)
    ly = soft_layers(ma, ha, sg, seg_end, soft, temperature)
    c, tr = combine(ma, ha, sg, ly, Soft(ha, temperature), with_traffic=True)
    return RelaxedCost(c.latency_cycles, c.energy_pj, c.edp, tr.sram_excess.sum() / ha.sram, c.feasible, c)

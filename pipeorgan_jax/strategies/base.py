"""The strategy interface and the placement operators every stochastic strategy shares.

A strategy (evosax's shape, DESIGN.md section 7) is a frozen dataclass of static
hyperparameters with three pure functions:

    state = strategy.init(key, domain, seeds)      # seeds: a Placement batch or None
    placements = strategy.ask(state)                # a Placement batch [B, L]
    state = strategy.tell(state, placements, cost)  # cost: the batch model's Cost of them

and optionally `finish(state) -> Placement | None` (what to score once more when the budget
ends, e.g. gradient's rounded modes) and `done(state) -> bool` (exhaustive: enumeration over).
`state` is a pytree (a flax.struct dataclass) carrying the PRNG key, the step counter, the
driver's `progress` in [0, 1] and the `Domain`; `ask` draws from
`jax.random.fold_in(state.key, state.step)`, so it needs no key of its own and the same state
always asks the same batch. Nothing is changed in place; ask and tell are jitted (exhaustive's
enumeration is plain NumPy, still a pure function of its state). Budgets, counting, history and
progress bars are the driver's (driver.py), not the strategies'.
"""
from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pipeorgan_jax import objective as objectives
from pipeorgan_jax.placement import MAX_SHARE, REDUCTION, Placement


@struct.dataclass
class Domain:
    """What a strategy may propose and how it is judged: the space's allowed values and shapes
    (static, hashable: they fix the compiled shapes), the objective as data, and, for
    strategies that score inside their own jitted code (a relaxed gradient), the batch
    model's tables."""
    n_layers: int = struct.field(pytree_node=False)
    depth: int = struct.field(pytree_node=False)  # deepest segment (space and array allow)
    grans: tuple = struct.field(pytree_node=False)  # sorted allowed values
    orgs: tuple = struct.field(pytree_node=False)
    parts: tuple = struct.field(pytree_node=False)
    shares: tuple = struct.field(pytree_node=False)
    red_ok: tuple = struct.field(pytree_node=False)  # per layer: the reduction split applies
    objective: jax.Array  # float32[2]: objective.log_weights (data: one compile for all)
    ma: Any = None  # cost.ModelArrays
    ha: Any = None  # cost.HwArrays

    @property
    def part_ok(self) -> np.ndarray:
        """[L, n_parts] bool: which allowed partitions each layer may take."""
        parts = np.asarray(self.parts)
        ok = (parts[None] != REDUCTION) | np.asarray(self.red_ok, bool)[:, None]
        return ok | ~ok.any(1, keepdims=True)  # a space of reduction only: keep it


def domain_of(space, n_layers: int, n_units: int, red_ok, objective: str, ma=None, ha=None) -> Domain:
    return Domain(n_layers, max(1, min(space.max_depth, n_units)), tuple(sorted(space.grans)),
                  tuple(sorted(space.orgs)), tuple(sorted(space.parts)),
                  tuple(sorted(space.shares)) if space.shares is not None
                  else tuple(range(1, MAX_SHARE + 1)),
                  tuple(bool(x) for x in red_ok),
                  jnp.asarray(objectives.log_weights(objectives.check(objective)), jnp.float32),
                  ma, ha)


@struct.dataclass
class State:
    """Fields every strategy state has."""
    key: jax.Array
    step: jax.Array  # int32: tells so far
    progress: jax.Array  # float32 in [0, 1]: the driver's share of the budget spent
    domain: Domain


def base_state(key, domain: Domain) -> dict:
    return dict(key=key, step=jnp.int32(0), progress=jnp.float32(0.0), domain=domain)


def step_key(state, salt: int = 0) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(state.key, state.step), salt)


def fitness(domain: Domain, p: Placement, cost) -> tuple[jax.Array, jax.Array]:
    """(log fitness [B], layers of infeasible segments [B, L]) of a scored batch."""
    return objectives.log_fitness(domain.objective, cost, jnp.asarray(p.seg_end, bool), jnp)


# ----------------------------------------------------------------------------- operators
def _vals(v) -> jax.Array:
    return jnp.asarray(v, jnp.int32)


def nearest(x, vals: tuple, log: bool = False) -> jax.Array:
    """Nearest of the sorted `vals` to every element of x (in log space if log)."""
    v = _vals(vals)
    if len(vals) == 1:
        return jnp.broadcast_to(v, jnp.shape(x))
    fx, fv = jnp.asarray(x, jnp.float32), v.astype(jnp.float32)
    if log:
        fx, fv = jnp.log(jnp.maximum(fx, 1e-9)), jnp.log(fv)
    i = jnp.clip(jnp.searchsorted(fv, fx), 1, len(vals) - 1)
    return v[jnp.where(fx - fv[i - 1] <= fv[i] - fx, i - 1, i)]


def prev_end(seg_end) -> jax.Array:
    """Per layer: index of the last segment end strictly before it (-1 if none)."""
    L = seg_end.shape[-1]
    last = jax.lax.cummax(jnp.where(seg_end, jnp.arange(L), -1), axis=seg_end.ndim - 1)
    return jnp.concatenate([jnp.full(seg_end.shape[:-1] + (1,), -1), last[..., :-1]], -1)


def end_of(seg_end) -> jax.Array:
    """Per layer: index of the segment end at or after it."""
    L = seg_end.shape[-1]
    return jax.lax.cummin(jnp.where(seg_end, jnp.arange(L), L), axis=seg_end.ndim - 1,
                          reverse=True)


def repair(p: Placement, d: Domain) -> Placement:
    """Project a batch into the space: the last layer ends a segment, runs deeper than
    d.depth are cut every d.depth layers, every value the nearest allowed (shares in log
    space), a reduction split where it does not apply replaced by the layer's last allowed
    partition. Identity on placements already inside the space."""
    seg_end = jnp.asarray(p.seg_end, bool).at[..., -1].set(True)
    k = jnp.arange(d.n_layers) - prev_end(seg_end)  # 1-based position in its run
    seg_end = seg_end | (k % d.depth == 0)
    part = nearest(p.part, d.parts)
    ok = jnp.asarray(d.part_ok)
    pv = _vals(d.parts)
    idx = jnp.searchsorted(pv, part)
    fallback = pv[jnp.asarray(ok.shape[1] - 1 - np.argmax(d.part_ok[:, ::-1], 1))]  # [L]
    part = jnp.where(jnp.take_along_axis(jnp.broadcast_to(ok, part.shape + (len(d.parts),)),
                                         idx[..., None], -1)[..., 0], part, fallback)
    return Placement(seg_end, nearest(p.gran, d.grans), nearest(p.org, d.orgs),
                     nearest(p.share, d.shares, log=True), part)


def sample(key, d: Domain, batch: int) -> Placement:
    """Uniform placements of the space (segment depths uniform in 1..d.depth), as
    placement.sample draws them, from a jax key."""
    L = d.n_layers
    k = jax.random.split(key, 6)
    ends = jnp.cumsum(jax.random.randint(k[0], (batch, L), 1, d.depth + 1), 1) - 1
    seg_end = jnp.zeros((batch, L + 1), bool).at[jnp.arange(batch)[:, None],
                                                 jnp.minimum(ends, L)].set(True)[:, :L]
    pick = lambda kk, vals: _vals(vals)[jax.random.randint(kk, (batch, L), 0, len(vals))]
    part_logits = jnp.where(jnp.asarray(d.part_ok), 0.0, -jnp.inf)
    part = _vals(d.parts)[jax.random.categorical(k[4], part_logits, shape=(batch, L))]
    return Placement(seg_end.at[:, -1].set(True), pick(k[1], d.grans), pick(k[2], d.orgs),
                     pick(k[3], d.shares), part)


def where(mask, a: Placement, b: Placement) -> Placement:
    """Per row (mask [B]) or per layer (mask [B, L]) choice between two batches."""
    m = mask if mask.ndim == 2 else mask[:, None]
    return Placement(*(jnp.where(m, x, y) for x, y in zip(a.fields(), b.fields())))


def take(p: Placement, idx) -> Placement:
    return Placement(*(jnp.asarray(f)[idx] for f in p.fields()))


def concat(ps) -> Placement:
    return Placement(*(jnp.concatenate([jnp.asarray(f) for f in fs])
                       for fs in zip(*(p.fields() for p in ps))))


def _other(key, cur, vals: tuple) -> jax.Array:
    """Another allowed value than cur, uniformly (cur itself when it is the only one)."""
    v = _vals(vals)
    step = jax.random.randint(key, cur.shape, 1, max(2, len(vals)))
    return v[(jnp.searchsorted(v, cur) + step) % len(vals)]


def mutate(key, p: Placement, rate, d: Domain, force_one: bool,
           bad: Optional[jax.Array] = None) -> Placement:
    """Mutate each layer with probability `rate` (layers of infeasible segments, `bad`
    [B, L], with probability at least 0.3); a mutated layer changes one random field: flip
    its segment boundary (split or merge segments; depth re-capped), move its segment's gran
    or org (applied at the segment's last layer, where they are read) or the layer's part to
    another allowed value, or rescale its share by 2**N(0,1) (nearest allowed, at least one
    step). force_one: every row changes at least one layer, one of its bad layers if it has
    any (annealing's neighbors)."""
    B, L = p.seg_end.shape
    k = jax.random.split(key, 10)
    seg_end0 = jnp.asarray(p.seg_end, bool)
    hit = jax.random.uniform(k[0], (B, L)) < rate
    if bad is not None:
        hit |= bad & (jax.random.uniform(k[1], (B, L)) < jnp.maximum(rate, 0.3))
    if force_one:
        pick = jax.random.uniform(k[2], (B, L)) + (0.0 if bad is None else bad)
        hit |= jax.nn.one_hot(pick.argmax(1), L, dtype=bool)
    field = jnp.where(hit, jax.random.randint(k[3], (B, L), 0, 5), -1)
    last = field[:, L - 1]
    field = field.at[:, L - 1].set(jnp.where(last == 0, jax.random.randint(k[4], (B,), 1, 5), last))
    seg_end = seg_end0 ^ (field == 0)
    end = end_of(seg_end0)
    rows = jnp.arange(B)[:, None]
    out = [seg_end]
    for j, (x, vals, kk) in enumerate(((p.gran, d.grans, k[5]), (p.org, d.orgs, k[6])), start=1):
        m = jnp.zeros((B, L), jnp.int32).at[rows, end].max((field == j).astype(jnp.int32)) > 0
        out.append(jnp.where(m, _other(kk, x, vals), x))
    share = jnp.asarray(p.share)
    new = nearest(share * jnp.exp2(jax.random.normal(k[7], (B, L))), d.shares, log=True)
    v = _vals(d.shares)
    i = jnp.searchsorted(v, share)
    nudge = v[jnp.clip(jnp.where(i + 1 < len(d.shares), i + 1, i - 1), 0, len(d.shares) - 1)]
    out.append(jnp.where(field == 3, jnp.where(new == share, nudge, new), share))
    part = jnp.asarray(p.part)
    pv = _vals(d.parts)
    cand = jnp.asarray(d.part_ok)[None] & (pv[None, None] != part[..., None])  # [B, L, n]
    drawn = pv[jax.random.categorical(k[8], jnp.where(cand, 0.0, -jnp.inf))]
    moved = jnp.where(cand.any(-1), drawn, part)
    out.append(jnp.where(field == 4, moved, part))
    return repair(Placement(*out), d)


def crossover(key, a: Placement, b: Placement) -> tuple[Placement, jax.Array]:
    """Per-layer uniform crossover of every field (boundaries included; repair re-caps depth).
    Returns the children and the mask (True: from a)."""
    mask = jax.random.uniform(key, a.seg_end.shape) < 0.5
    return where(mask, a, b), mask


def project(seeds: Placement, d: Domain) -> Placement:
    """Seed placements as a batch inside the space: gran/org broadcast from each segment's
    last layer over the segment (the same cost, and meaningful crossovers), then `repair`."""
    s = Placement(*(jnp.asarray(f).reshape(-1, d.n_layers) for f in seeds.fields()))
    e = end_of(jnp.asarray(s.seg_end, bool))
    return repair(Placement(s.seg_end, jnp.take_along_axis(s.gran, e, -1),
                            jnp.take_along_axis(s.org, e, -1), s.share, s.part), d)


def with_seeds(key, d: Domain, n: int, seeds: Optional[Placement]) -> Placement:
    """n placements: the seeds (at most n, projected into the space) then uniform samples."""
    fresh = sample(key, d, n)
    if seeds is None or seeds.batch_size == 0:
        return fresh
    s = project(seeds, d)
    k = min(n, s.batch_size)
    return concat([take(s, slice(0, k)), take(fresh, slice(k, n))]) if k < n else take(s, slice(0, n))

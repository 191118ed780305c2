"""Simulated annealing: parallel Metropolis chains with population resampling."""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

import jax
import jax.numpy as jnp
from flax import struct

from pipeorgan_jax.placement import Placement
from pipeorgan_jax.strategies.base import (State, base_state, fitness, mutate, step_key, take,
                                           where, with_seeds)


@struct.dataclass
class AnnealingState(State):
    cur: Placement  # [N, L] each chain's current placement
    val: jax.Array  # [N] its log fitness
    bad: jax.Array  # [N, L]


@dataclasses.dataclass(frozen=True)
class Annealing:
    """batch_size Metropolis chains in parallel. The first ask is the chains' start (the
    seeds, then uniform samples); every later ask one neighbor per chain: a small `mutate`,
    one forced change (in an infeasible segment if there is one) plus each layer with
    probability neighbor_rate (default mutation_rate / 4). tell accepts with probability
    min(1, exp(-(F' - F) / T)) on the log fitness F (so T is a relative cost change: T = 0.1
    accepts a 10% worse move with probability 1/e), T = temperature0 * 1e-3 ** progress, the
    driver's share of the budget spent (iterations or seconds, whichever is further, so a
    time-limited run cools down fully). With `resample` (population annealing), every 10 steps
    the worst quarter of the chains restart from copies of random chains of the best quarter."""
    batch_size: int = 1024
    temperature0: float = 0.1
    mutation_rate: float = 0.1
    neighbor_rate: Optional[float] = None
    resample: bool = True
    name: ClassVar[str] = "annealing"

    def init(self, key, domain, seeds=None) -> AnnealingState:
        k0, k1 = jax.random.split(key)
        N = self.batch_size
        return AnnealingState(**base_state(k1, domain), cur=with_seeds(k0, domain, N, seeds),
                              val=jnp.full(N, jnp.inf, jnp.float32),
                              bad=jnp.zeros((N, domain.n_layers), bool))

    def ask(self, state: AnnealingState) -> Placement:
        rate = self.mutation_rate / 4 if self.neighbor_rate is None else self.neighbor_rate
        prop = mutate(step_key(state), state.cur, rate, state.domain, True, state.bad)
        return where(jnp.broadcast_to(state.step == 0, (self.batch_size,)), state.cur, prop)

    def tell(self, state: AnnealingState, prop: Placement, cost) -> AnnealingState:
        N = self.batch_size
        lp, pbad = fitness(state.domain, prop, cost)
        k = jax.random.split(step_key(state, 1), 2)
        T = self.temperature0 * 1e-3 ** jnp.minimum(1.0, state.progress)
        acc = jax.random.uniform(k[0], (N,)) < jnp.exp(jnp.minimum(0.0, state.val - lp)
                                                       / jnp.maximum(T, 1e-12))
        acc = acc | (state.step == 0)
        cur, val = where(acc, prop, state.cur), jnp.where(acc, lp, state.val)
        bad = jnp.where(acc[:, None], pbad, state.bad)
        step = state.step + 1
        if self.resample and N >= 4:
            order = jnp.argsort(val, stable=True)
            q = N // 4
            src = order[jax.random.randint(k[1], (q,), 0, q)]
            idx = jnp.arange(N).at[order[-q:]].set(src)
            idx = jnp.where((step > 1) & ((step - 1) % 10 == 0), idx, jnp.arange(N))
            cur, val, bad = take(cur, idx), val[idx], bad[idx]
        return state.replace(step=step, cur=cur, val=val, bad=bad)

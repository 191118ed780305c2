"""Generational genetic algorithm with elitism over whole placements."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from pipeorgan_jax.placement import Placement
from pipeorgan_jax.strategies.base import (State, base_state, concat, crossover, fitness, mutate,
                                           step_key, take, where, with_seeds)


@struct.dataclass
class EvolutionaryState(State):
    pop: Placement  # [N, L]
    val: jax.Array  # [N] log fitness (inf before the first tell)
    bad: jax.Array  # [N, L] layers of infeasible segments


@dataclasses.dataclass(frozen=True)
class Evolutionary:
    """Population batch_size. The first ask is the initial population (the seeds, then
    uniform samples); every later ask is batch_size children: parents by binary tournament,
    per-layer uniform crossover of all fields (boundaries included, depth re-capped), then
    `mutate` (layers of a parent's infeasible segments more often). tell keeps the
    elite_fraction best of the old population plus the best children. Ranking by
    `fitness` (log of the penalized objective, graded by the number of infeasible segments)."""
    batch_size: int = 1024
    mutation_rate: float = 0.1
    elite_fraction: float = 0.1
    name: ClassVar[str] = "evolutionary"

    @property
    def n_elite(self) -> int:
        N = self.batch_size
        return min(N - 1, max(1, int(round(self.elite_fraction * N)))) if N > 1 else 0

    def init(self, key, domain, seeds=None) -> EvolutionaryState:
        k0, k1 = jax.random.split(key)
        N, L = self.batch_size, domain.n_layers
        return EvolutionaryState(**base_state(k1, domain), pop=with_seeds(k0, domain, N, seeds),
                                 val=jnp.full(N, jnp.inf, jnp.float32),
                                 bad=jnp.zeros((N, L), bool))

    def ask(self, state: EvolutionaryState) -> Placement:
        N = self.batch_size
        k = jax.random.split(step_key(state), 3)
        t = jax.random.randint(k[0], (2, 2, N), 0, N)  # two binary tournaments per child
        val = state.val
        par = jnp.where(val[t[:, 0]] <= val[t[:, 1]], t[:, 0], t[:, 1])
        kids, mask = crossover(k[1], take(state.pop, par[0]), take(state.pop, par[1]))
        kbad = jnp.where(mask, state.bad[par[0]], state.bad[par[1]])
        kids = mutate(k[2], kids, self.mutation_rate, state.domain, False, kbad)
        return where(jnp.broadcast_to(state.step == 0, (N,)), state.pop, kids)

    def tell(self, state: EvolutionaryState, kids: Placement, cost) -> EvolutionaryState:
        N, n_el = self.batch_size, self.n_elite
        kval, kbad = fitness(state.domain, kids, cost)
        el = jnp.argsort(state.val, stable=True)[:n_el]
        kb = jnp.argsort(kval, stable=True)[:N - n_el]
        pop = concat([take(state.pop, el), take(kids, kb)])
        val = jnp.concatenate([state.val[el], kval[kb]])
        bad = jnp.concatenate([state.bad[el], kbad[kb]])
        first = state.step == 0  # the initial population, scored: it is the population
        return state.replace(step=state.step + 1,
                             pop=where(jnp.broadcast_to(first, (N,)), kids, pop),
                             val=jnp.where(first, kval, val), bad=jnp.where(first, kbad, bad))

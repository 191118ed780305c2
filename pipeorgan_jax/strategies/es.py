"""Evolution strategies over relaxed placement logits, from evosax (search=es).

A solution is a pytree of real numbers per layer: a boundary logit (the layer ends a segment
where it is > 0; the last layer always does), logits over the space's granularities,
organizations and partitions (argmax; partitions that do not apply to the layer are masked)
and mu, the log2 PE share (share = nearest allowed value to 2**clip(mu, 0, 6)). evosax's
algorithm (`es_algorithm`, default SNES: separable natural evolution strategy, diagonal
covariance, suits the ~17 x layers dimensions) searches that space on the log fitness of
the decoded placements; its initial mean is the first seed placement's one-hot logits (or
zeros), its initial standard deviation `es_sigma`. evosax's own ask returns a new state; as
in gradient.py, tell asks again from the same key to get it, so our ask stays state -> batch.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from pipeorgan_jax.placement import Placement
from pipeorgan_jax.strategies.base import State, base_state, fitness, repair, step_key

_MASKED = -1e9


@struct.dataclass
class ESState(State):
    es_state: Any
    es_params: Any


def _template(d) -> dict:
    L = d.n_layers
    return dict(seg=jnp.zeros(L), gran=jnp.zeros((L, len(d.grans))),
                org=jnp.zeros((L, len(d.orgs))), part=jnp.zeros((L, len(d.parts))),
                mu=jnp.zeros(L))


def decode(x: dict, d) -> Placement:
    """A batch of solutions (leading axis) as placements inside the space."""
    v = lambda t: jnp.asarray(t, jnp.int32)
    part = jnp.where(jnp.asarray(d.part_ok), x["part"], _MASKED)
    return repair(Placement(x["seg"] > 0, v(d.grans)[x["gran"].argmax(-1)],
                            v(d.orgs)[x["org"].argmax(-1)], jnp.exp2(jnp.clip(x["mu"], 0, 6)),
                            v(d.parts)[part.argmax(-1)]), d)


@dataclasses.dataclass(frozen=True)
class EvolutionStrategy:
    batch_size: int = 1024
    algorithm: str = "SNES"
    sigma: float = 0.5
    name: ClassVar[str] = "es"

    @functools.lru_cache(maxsize=16)
    def _es(self, shapes: tuple):
        import evosax.algorithms as algorithms
        template = {k: jnp.zeros(s) for k, s in shapes}
        try:
            cls = getattr(algorithms, self.algorithm)
        except AttributeError:
            raise ValueError(f"search.es_algorithm={self.algorithm!r} is not an evosax "
                             "algorithm (e.g. SNES, Sep_CMA_ES, Open_ES, CMA_ES)") from None
        return cls(population_size=self.batch_size, solution=template)

    def _for(self, d):
        t = _template(d)
        return self._es(tuple((k, tuple(v.shape)) for k, v in t.items()))

    def init(self, key, domain, seeds=None) -> ESState:
        d, mean = domain, _template(domain)
        if seeds is not None and seeds.batch_size:
            s = Placement(*(jnp.asarray(f).reshape(-1, d.n_layers)[0] for f in seeds.fields()))
            hot = lambda x, vals: 2.0 * (x[:, None] == jnp.asarray(vals)[None]).astype(jnp.float32)
            mean = dict(seg=jnp.where(s.seg_end, 2.0, -2.0), gran=hot(s.gran, d.grans),
                        org=hot(s.org, d.orgs), part=hot(s.part, d.parts),
                        mu=jnp.log2(s.share.astype(jnp.float32)))
        es = self._for(d)
        k0, k1 = jax.random.split(key)
        params = es.default_params
        if hasattr(params, "std_init"):
            params = params.replace(std_init=self.sigma)
        mean = {k: jnp.asarray(v, jnp.float32) for k, v in mean.items()}
        return ESState(**base_state(k1, d), es_state=es.init(k0, mean, params), es_params=params)

    def _ask(self, state):
        return self._for(state.domain).ask(step_key(state), state.es_state, state.es_params)

    def ask(self, state: ESState) -> Placement:
        return decode(self._ask(state)[0], state.domain)

    def tell(self, state: ESState, placements: Placement, cost) -> ESState:
        x, es_state = self._ask(state)
        f = fitness(state.domain, placements, cost)[0]
        es_state, _ = self._for(state.domain).tell(step_key(state, 1), x, f, es_state,
                                                   state.es_params)
        return state.replace(step=state.step + 1, es_state=es_state)

    def finish(self, state: ESState) -> Placement:
        """The search distribution's mean, decoded."""
        mean = self._for(state.domain).get_mean(state.es_state) if hasattr(
            self._for(state.domain), "get_mean") else state.es_state.mean
        return decode(jax.tree.map(lambda v: v[None], mean), state.domain)

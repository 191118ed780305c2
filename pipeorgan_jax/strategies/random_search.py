"""Random search: every step a fresh batch of uniform placements of the space."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from flax import struct

from pipeorgan_jax.strategies.base import State, base_state, sample, step_key


@struct.dataclass
class RandomState(State):
    pass


@dataclasses.dataclass(frozen=True)
class RandomSearch:
    batch_size: int = 4096
    name: ClassVar[str] = "random"

    def init(self, key, domain, seeds=None) -> RandomState:
        return RandomState(**base_state(key, domain))

    def ask(self, state: RandomState):
        return sample(step_key(state), state.domain, self.batch_size)

    def tell(self, state: RandomState, placements, cost) -> RandomState:
        return state.replace(step=state.step + 1)

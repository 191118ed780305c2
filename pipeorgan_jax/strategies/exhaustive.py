"""Exhaustive enumeration of a (small) space, batch_size placements per ask.

The enumeration order: compositions of the network into segments (depths 1..d.depth), each
with every inner choice of every segment (mixed radix). The state is the index of the next
placement; ask builds that slice on the host (NumPy), still a pure function of the state.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import ClassVar

import numpy as np
from flax import struct

from pipeorgan_jax.placement import Placement
from pipeorgan_jax.strategies.base import State, base_state


class SpaceTooLarge(ValueError):
    """The space is too large to enumerate (a user's choice of strategy, not a bug)."""


def inner_choices(d, depth: int) -> int:
    """Inner choices (gran, org, shares, parts) of one segment of `depth` layers."""
    return len(d.grans) * len(d.orgs) * (len(d.parts) * (len(d.shares) if depth > 1 else 1)) ** depth


def space_size(d) -> int:
    """Placements in the space: sum over segmentations of the product of each segment's inner
    choices (exact integer)."""
    c = [1] + [0] * d.n_layers
    for b in range(1, d.n_layers + 1):
        c[b] = sum(c[b - k] * inner_choices(d, k) for k in range(1, min(d.depth, b) + 1))
    return c[d.n_layers]


@functools.lru_cache(maxsize=8)
def _plan(n_layers, depth, grans, orgs, parts, shares):
    """Per depth the inner-choice tables; the compositions and their first global index."""
    inner = {}
    for k in range(1, depth + 1):
        ch = [(g, o, sh, pa) for g, o in itertools.product(grans, orgs)
              for pa in itertools.product(parts, repeat=k)
              for sh in (itertools.product(shares, repeat=k) if k > 1 else [(shares[0],)])]
        inner[k] = (np.array([c[0] for c in ch], np.int32), np.array([c[1] for c in ch], np.int32),
                    np.array([c[2] for c in ch], np.int32).reshape(len(ch), -1),
                    np.array([c[3] for c in ch], np.int32).reshape(len(ch), k))

    def compositions(rest):
        if rest == 0:
            yield ()
            return
        for k in range(1, min(depth, rest) + 1):
            for tail in compositions(rest - k):
                yield (k,) + tail

    comps = list(compositions(n_layers))
    sizes = [int(np.prod([len(inner[k][0]) for k in c])) for c in comps]
    return inner, comps, np.concatenate([[0], np.cumsum(sizes)])


@struct.dataclass
class ExhaustiveState(State):
    next: int = struct.field(pytree_node=False, default=0)  # index of the next placement


@dataclasses.dataclass(frozen=True)
class Exhaustive:
    batch_size: int = 1024
    max_space: int = 2_000_000
    name: ClassVar[str] = "exhaustive"
    jittable: ClassVar[bool] = False

    def init(self, key, domain, seeds=None) -> ExhaustiveState:
        n = space_size(domain)
        if n > self.max_space:
            raise SpaceTooLarge(f"exhaustive: the space of {domain.n_layers} layers has {n} "
                                f"placements, more than max_space={self.max_space}; use dp or "
                                f"a stochastic strategy, or restrict the space")
        return ExhaustiveState(**base_state(key, domain))

    def _plan(self, d):
        return _plan(d.n_layers, d.depth, d.grans, d.orgs, d.parts, d.shares)

    def done(self, state: ExhaustiveState) -> bool:
        return state.next >= int(self._plan(state.domain)[2][-1])

    def ask(self, state: ExhaustiveState) -> Placement:
        d = state.domain
        inner, comps, first = self._plan(d)
        lo, hi = state.next, min(state.next + self.batch_size, int(first[-1]))
        L, out = d.n_layers, []
        ci = int(np.searchsorted(first, lo, side="right") - 1)
        while lo < hi:
            comp = comps[ci]
            a0, a1 = lo - first[ci], min(hi, first[ci + 1]) - first[ci]
            shape = tuple(len(inner[k][0]) for k in comp)
            idx = np.unravel_index(np.arange(a0, a1), shape)
            B = len(idx[0])
            seg_end = np.zeros((B, L), bool)
            seg_end[:, np.cumsum(comp) - 1] = True
            f = [np.zeros((B, L), np.int32) for _ in range(4)]
            a = 0
            for k, ix in zip(comp, idx):
                g, o, sh, pa = inner[k]
                f[0][:, a:a + k], f[1][:, a:a + k] = g[ix, None], o[ix, None]
                f[2][:, a:a + k], f[3][:, a:a + k] = sh[ix], pa[ix]
                a += k
            out.append(Placement(seg_end, *f))
            lo += B
            ci += 1
        return Placement(*(np.concatenate(fs) for fs in zip(*(p.fields() for p in out))))

    def tell(self, state: ExhaustiveState, placements: Placement, cost) -> ExhaustiveState:
        return state.replace(step=state.step + 1, next=state.next + placements.batch_size)

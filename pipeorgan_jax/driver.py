"""The one host loop every ask/tell strategy runs under (DESIGN.md section 7).

    result = drive(strategy, prob, iterations, budget_s, seed_placements)

The driver owns what strategies must not: the budget (iterations and search seconds,
compilation excluded), the counting and the best-so-far (`prob.score`: a search.Problem's
tally, history and progress callback), and the compilation of the strategy's own jitted
ask/tell, timed as compile time apart from search time. It scores the seed placements first,
projected into the space (so a result is never worse than a seed of the space), hands them to `init`, then loops ask -> score ->
tell, telling the strategy how much of the budget is spent (`state.progress`), and at the
end scores what `finish` returns. Strategies are in strategies/; `dp` is a function over the
Problem (search.py) that the same Problem counts.
"""
from __future__ import annotations

import time
from typing import Optional

import jax
import numpy as np

from pipeorgan_jax.cost import Cost
from pipeorgan_jax.placement import Placement, concat
from pipeorgan_jax.strategies.base import project

_EXECUTABLES: dict = {}  # (strategy, method, argument shapes) -> compiled, for the process


def _signature(args) -> tuple:
    leaves, tree = jax.tree_util.tree_flatten(args)
    return str(tree), tuple((np.shape(x), str(np.asarray(x).dtype) if not hasattr(x, "dtype")
                             else str(x.dtype)) for x in leaves)


def call(strategy, method: str, prob, *args):
    """strategy.<method>(*args), jitted and compiled once per argument shapes; the
    compilation is counted as prob's compile time, not search time."""
    fn = getattr(strategy, method)
    if not getattr(strategy, "jittable", True):
        return fn(*args)
    key = (strategy, method, _signature(args))
    exe = _EXECUTABLES.get(key)
    if exe is None:
        t0 = time.perf_counter()
        exe = _EXECUTABLES[key] = jax.jit(fn).lower(*args).compile()
        if prob is not None:
            prob.note_compile(time.perf_counter() - t0)
    return exe(*args)


def as_batch(placements) -> Optional[Placement]:
    """Seed placements (a list of single placements or batches) as one NumPy batch."""
    if not placements:
        return None
    return concat([Placement(*(np.asarray(f).reshape(-1, np.shape(p.seg_end)[-1])
                               for f in p.fields())) for p in placements])


def seed_key(seed: int) -> jax.Array:
    """A PRNG key for any non-negative seed below 2**63 (the documented range): jax's keys
    take 32 bits, so the high half is folded in."""
    seed = int(seed)
    return jax.random.fold_in(jax.random.key(seed & 0xFFFFFFFF), seed >> 32)


def drive(strategy, prob, iterations: int, budget_s: float = 0.0, seed_placements=None,
          key: Optional[jax.Array] = None):
    """Run `strategy` on `prob` for at most `iterations` ask/tell steps and `budget_s` search
    seconds (0: no time limit); returns prob.result(strategy.name)."""
    key = seed_key(prob.seed) if key is None else key
    seeds = as_batch(seed_placements)
    if seeds is not None:  # projected into the space (a seed from a wider space is repaired)
        seeds = Placement(*(np.asarray(f) for f in project(seeds, prob.domain).fields()))
        prob.score(seeds)
    state = call(strategy, "init", prob, key, prob.domain, seeds)
    done = getattr(strategy, "done", lambda s: False)
    for i in range(iterations):
        if prob.out_of_time(budget_s) or done(state):
            break
        spent = i / iterations if iterations else 1.0
        if budget_s > 0:
            spent = max(spent, prob.elapsed() / budget_s)
        state = state.replace(progress=np.float32(min(1.0, spent)))
        p = call(strategy, "ask", prob, state)
        _, c = prob.score(p)
        state = call(strategy, "tell", prob, state, p, Cost(**c))
    finish = getattr(strategy, "finish", None)
    if finish is not None:
        final = call(strategy, "finish", prob, state)
        if final is not None:
            prob.score(final)
    return prob.result(strategy.name)

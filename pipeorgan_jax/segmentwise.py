"""Any ask/tell strategy run on dp's window rows: the decomposed search (search.decompose).

A whole placement of a long network is feasible only if every one of its segments fits, so a
strategy that varies whole placements spends its budget finding feasibility (README, search
quality: evolutionary 8-430x above dp from scratch on the long models). The cost is a sum
over segments (cost/segment.py), and dp already exploits it; this driver lets any pure
ask/tell strategy do the same. It runs one independent instance of the strategy per window
row of dp's plan (dp.segment_plan: every candidate segment of depth <= max_depth appears in
exactly one row, the first rows tiling the network), all rows at once under jax.vmap over
the strategy's state. A row's placements have the plan's fixed segment boundaries (what the
strategy proposes for seg_end is overwritten); the strategy varies the inner choices
(granularity, organization, PE shares, partitions) and is told each proposal's value: the
sum of its segments' values (each segment with its own GLB spill; dp.Candidates.values),
infeasible if any segment is. Every scored segment is a candidate (dp.Candidates), and the
same exact DP over boundaries assembles the placement. So evolutionary, annealing, random,
es and reinforce differ from dp only in how they search a segment's inner choices.

Generations run over all rows in turn (rows in blocks of one compiled shape), so a budget cut
leaves every row with as many generations as the budget allowed; the first generation of the
rows that tile the network is always scored, so there is always a placement.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from pipeorgan_jax.dp import Candidates, per_scalarization, plan_rows, segment_plan
from pipeorgan_jax.driver import as_batch, call, seed_key
from pipeorgan_jax.placement import REDUCTION, Placement
from pipeorgan_jax.strategies.base import domain_of, project


@dataclasses.dataclass(frozen=True)
class PerRow:
    """A strategy as independent instances, one per row (a leading axis on every state leaf)."""
    strategy: Any

    def init(self, keys, domain):
        return jax.vmap(lambda k: self.strategy.init(k, domain, None))(keys)

    def ask(self, states):
        return jax.vmap(self.strategy.ask)(states)

    def tell(self, states, placements, cost):
        return jax.vmap(self.strategy.tell)(states, placements, cost)


def fallback_parts(space, red_ok: np.ndarray) -> np.ndarray:
    """[L]: the partition a layer takes where a reduction split was proposed but does not
    apply (its last allowed partition, as strategies.base.repair picks)."""
    parts = np.asarray(sorted(space.parts), np.int32)
    ok = (parts[None] != REDUCTION) | np.asarray(red_ok, bool)[:, None]
    ok |= ~ok.any(1, keepdims=True)
    return parts[ok.shape[1] - 1 - np.argmax(ok[:, ::-1], 1)]


def drive_segments(strategy, prob, iterations: int, budget_s: float = 0.0,
                   seed_placements: Optional[list[Placement]] = None, row_batch: int = 32,
                   lam: Optional[float] = None, name: Optional[str] = None):
    """Run `strategy` (strategies/, any jittable ask/tell) on prob's window rows (module
    docstring): at most `iterations` generations of `row_batch` proposals per row, within
    `budget_s` search seconds. Seeds' segments are candidates (never worse than a seed on an
    additive objective). Returns prob.result(name or strategy.name)."""
    name = name or strategy.name
    if per_scalarization(lambda x, b: drive_segments(strategy, prob, iterations, b, seed_placements,
                                                     row_batch, x, name),
                         prob, seed_placements, lam, budget_s):  # not additive
        return prob.result(name)
    N = max(2, int(row_batch))
    per_row = PerRow(dataclasses.replace(strategy, batch_size=N))
    cands = Candidates(prob, lam)
    seeds = as_batch(seed_placements)
    if seeds is not None:  # projected into the space, as the driver does
        seeds = project(seeds, prob.domain)
        cands.add_seeds([Placement(*(np.asarray(f)[i] for f in seeds.fields()))
                         for i in range(seeds.batch_size)])
    L, W = cands.L, cands.W
    a0, seg_end, segs, n_cover = segment_plan(L, W, cands.D)
    # the strategy ranks a row by its value as "latency" (the row value is already the
    # objective, or EDP's scalarization); reductions are allowed in the domain and repaired
    # per layer on the host, since rows cover different layers under one compiled domain
    domain = domain_of(prob.space, W, prob.n_units, [True] * W, "latency")
    fb = fallback_parts(prob.space, prob.red_ok)
    blk = max(1, min(len(a0), prob.scorer.WINDOW_BLOCK * 4 // N))  # rows per call
    blocks = []  # per block of rows, what every generation reuses
    for lo in range(0, len(a0), blk):
        sel = np.arange(lo, min(lo + blk, len(a0)))
        pad = np.concatenate([sel, np.full(blk - len(sel), sel[0])])  # one compiled shape
        glob = np.minimum(a0[pad][:, None] + np.arange(W), L - 1)  # [blk, W]
        blocks.append((sel, np.broadcast_to(seg_end[pad][:, None, :], (blk, N, W)),
                       ~prob.red_ok[glob][:, None, :], fb[glob][:, None, :],
                       plan_rows(prob, a0, seg_end, segs, sel, N)))
    states: list = [None] * len(blocks)
    key = seed_key(prob.seed)
    solved = False
    for gen in range(max(1, int(iterations))):
        for b, (sel, se, no_red, fallback, rows) in enumerate(blocks):
            if prob.out_of_time(budget_s) and (gen > 0 or sel[0] >= n_cover):
                break
            n = len(sel)
            if states[b] is None:
                if gen > 0:
                    continue  # cut by the budget in the first generation: never started
                keys = jax.random.split(jax.random.fold_in(key, b), blk)
                states[b] = call(per_row, "init", prob, keys, domain)
            spent = gen / iterations if iterations else 1.0
            if budget_s > 0:
                spent = max(spent, prob.elapsed() / budget_s)
            st = states[b].replace(progress=jnp.full(blk, min(1.0, spent), jnp.float32))
            p = call(per_row, "ask", prob, st)
            part = np.asarray(p.part)
            part = np.where((part == REDUCTION) & no_red, fallback, part)
            p = Placement(se, np.asarray(p.gran), np.asarray(p.org), np.asarray(p.share), part)
            v, _, _, bad = cands.score(rows, [np.asarray(f)[:n].reshape(n * N, W)
                                              for f in p.fields()[1:]])
            solved = False
            row_v = np.zeros((blk, N))
            row_v[:n] = rows.totals(v)
            seg_ok = np.ones((blk, N, W), bool)
            seg_ok[rows.segs[:, 0], :, rows.segs[:, 1]] = ~bad
            cost = {"latency_cycles": jnp.asarray(row_v, jnp.float32),
                    "energy_pj": jnp.ones((blk, N), jnp.float32),
                    "feasible": jnp.asarray(seg_ok.all(-1)), "seg_feasible": jnp.asarray(seg_ok)}
            states[b] = call(per_row, "tell", prob, st, p, cost)
        else:
            cands.solve()  # the best placement so far, scored whole: an anytime history
            solved = True
            continue
        break  # out of time
    if not solved:
        cands.solve()
    return prob.result(name)

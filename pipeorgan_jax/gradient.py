"""search=gradient: placements found by gradient descent on the relaxed cost (cost/relaxed.py).

Segment boundaries have no smooth relaxation worth the name, but the cost decomposes over
segments (cost/segment.py), so the search splits the two. Every candidate segment's inner
choices (granularity, organization, partitions, PE shares) are optimized by gradient descent
on the relaxed cost of dp's window rows (dp.segment_plan), `restarts` soft placements per row
at once (vmapped), with Adam (optax) while the temperature anneals geometrically from
`t_start` to `t_end`. Every `round_every` steps each restart is rounded and scored exactly
(the batch model, in window rows), and each segment keeps its best exact choice
(dp.Candidates); the DP over boundaries then assembles the placement. Values outside the
space (a baseline's: blocked only, coarse tiles) get no probability (space_mask), so the
search stays in it.

From scratch the restarts start from random logits. Given seeds (search=dp+gradient: dp's
result), the first restart of every row starts from the seed's choices in that window and the
seeds' segments are candidates themselves, so on an additive objective the result is never
worse than the seed: the gradient refines what dp only sampled (the inner choices of deep
segments).
"""
from __future__ import annotations

import functools
import time
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pipeorgan_jax.cost import relaxed
from pipeorgan_jax.dp import Candidates, best_tiling, per_scalarization, plan_rows, segment_plan
from pipeorgan_jax.objective import INFEASIBLE_PENALTY, log_weights
from pipeorgan_jax.organization import ORGANIZATIONS
from pipeorgan_jax.placement import GRAN_ROWS, PARTITIONS, Placement

SRAM_WEIGHT = 1.0  # loss per unit of PE SRAM overflow (sram_excess / PE SRAM): steers to fit
OUTSIDE = -1e4  # logit offset of a value outside the space: no probability at any temperature


def space_mask(space) -> tuple:
    """Additive logit masks (gran [7], org [4], part [4]) that keep a search in `space`
    (a baseline's: blocked only, coarse tiles, no reduction split): 0 on its values, OUTSIDE
    elsewhere."""
    m = lambda n, vals: jnp.asarray(np.where(np.isin(np.arange(n), vals), 0.0, OUTSIDE), jnp.float32)
    return (m(len(GRAN_ROWS), space.grans), m(len(ORGANIZATIONS), space.orgs),
            m(len(PARTITIONS), space.parts))


def _masked(soft, mask):
    return soft.replace(gran=soft.gran + mask[0], org=soft.org + mask[1], part=soft.part + mask[2])


def _loss(stack, ha, a0, seg_end, soft, temperature, lam, mask, objective: str):
    """log of a window row's summed segment objective, plus the SRAM overflow penalty."""
    mw = jax.tree_util.tree_map(lambda x: x[a0], stack)
    rc = relaxed.relaxed_cost(mw, ha, seg_end, _masked(soft, mask), temperature)
    first = jnp.concatenate([jnp.ones(1, bool), seg_end[:-1]])
    lat = jnp.where(first, rc.cost.seg_latency, 0.0).sum()
    en = jnp.where(first, rc.cost.seg_energy, 0.0).sum()
    w = log_weights(objective)  # (1, 0): latency; (0, 1): energy; else the scalarization
    v = lat if w[1] == 0 else en if w[0] == 0 else lat + lam * en
    return jnp.log(v) + SRAM_WEIGHT * rc.sram_excess


@functools.partial(jax.jit, static_argnames=("steps", "objective", "learning_rate"))
def descend(stack, ha, a0, seg_end, soft, temps, lam, mask, steps: int, objective: str,
            learning_rate: float):
    """`steps` Adam steps on every row's soft placement at once (rows: a0 [N], seg_end
    [N, D], soft leaves [N, D, ...]) at temperatures temps [steps], inside the space of
    `mask` (space_mask); the final soft placements."""
    opt = optax.adam(learning_rate)
    grad = jax.vmap(jax.grad(_loss, argnums=4), in_axes=(None, None, 0, 0, 0, None, None, None, None))

    def step(k, carry):
        s, st = carry
        g = grad(stack, ha, a0, seg_end, s, temps[k], lam, mask, objective)
        g = jax.tree_util.tree_map(lambda x: jnp.where(jnp.isfinite(x), x, 0.0), g)
        up, st = opt.update(g, st, s)
        return optax.apply_updates(s, up), st

    soft, _ = jax.lax.fori_loop(0, steps, step, (soft, opt.init(soft)))
    return soft


def _screen(prob, cands: Candidates, plan, samples: int, keep: int, budget_s: float):
    """Score `samples` random inner choices of every plan row exactly (harvested as
    candidates); each row's `keep` best, as fields (gran, org, share, part) [P, keep, W]
    (rows the budget cut: their first sample repeated), and which rows were screened."""
    a0, seg_end, segs, n_cover = plan
    P, W = seg_end.shape
    out = [np.zeros((P, keep, W), np.int32) for _ in range(4)]
    done = np.zeros(P, bool)
    blk = max(1, prob.scorer.WINDOW_BLOCK * 4 // samples)
    for lo in range(0, P, blk):
        if prob.out_of_time(budget_s) and lo >= n_cover:
            break
        sel = np.arange(lo, min(lo + blk, P))
        rows = plan_rows(prob, a0, seg_end, segs, sel, samples)
        fields = rows.random(prob)
        v, _, _, bad = cands.score(rows, fields)
        row_v = rows.totals(np.where(bad, v * INFEASIBLE_PENALTY, v))
        top = np.argsort(row_v, 1, kind="stable")[:, :keep]
        for o, f in zip(out, fields):
            o[sel] = f.reshape(len(sel), samples, W)[np.arange(len(sel))[:, None], top]
        done[sel] = True
    return out, done


def _path_first(cands: Candidates, plan) -> np.ndarray:
    """Plan rows in the order to refine them: those holding a segment of the DP's current best
    tiling first (the segments the placement is made of), then the rest."""
    a0, seg_end, segs, _ = plan
    p = best_tiling(cands.L, cands.D, {k: (v[0], v[3]) for k, v in cands.best.items()})
    ends = np.flatnonzero(p.seg_end[0])
    on = set(zip(np.concatenate([[0], ends[:-1] + 1]).tolist(), ends.tolist()))
    hot = np.zeros(len(a0), bool)
    for k, _, d, a in segs:
        hot[k] |= (int(a), int(a + d - 1)) in on
    return np.concatenate([np.flatnonzero(hot), np.flatnonzero(~hot)])


def gradient(prob, restarts: int = 8, steps: int = 60, learning_rate: float = 0.1,
             t_start: float = 1.0, t_end: float = 0.05, round_every: int = 20,
             budget_s: float = 0.0, seed_placements: Optional[list[Placement]] = None,
             lam: Optional[float] = None, block_rows: int = 64, screen: int = 64):
    """Relaxed-gradient search (module docstring) on a search.Problem; its SearchResult."""
    if per_scalarization(lambda x, b: gradient(prob, restarts, steps, learning_rate, t_start, t_end,
                                               round_every, b, seed_placements, x, block_rows, screen),
                         prob, seed_placements, lam, budget_s):
        return prob.result("gradient")
    sc = prob.scorer
    cands = Candidates(prob, lam)
    cands.add_seeds(seed_placements)
    L, W = cands.L, cands.W
    plan = segment_plan(L, W, cands.D)
    a0, seg_end, segs, n_cover = plan
    stack = sc.windows()
    R = max(1, int(restarts))
    chunk = max(1, min(int(round_every), int(steps)))
    temps = t_start * (t_end / t_start) ** (np.arange(steps) / max(steps - 1, 1))
    seeds = [s.numpy() for s in seed_placements or []]
    key = jax.random.PRNGKey(prob.seed)
    red_ok = np.asarray(prob.red_ok)
    mask = space_mask(prob.space)
    order, starts = np.arange(len(a0)), None
    if screen > 0 and not seeds:  # from scratch: start from each row's best random samples
        starts, screened = _screen(prob, cands, plan, max(int(screen), R), R, budget_s)
        order = _path_first(cands, plan)
        order = order[screened[order]]
    for lo in range(0, len(order), block_rows):
        if prob.out_of_time(budget_s) and (starts is not None or lo >= n_cover):
            break
        sel = order[lo:lo + block_rows]
        n = len(sel)
        pad = np.concatenate([sel, np.full(block_rows - n, sel[0])])  # one compiled shape
        rows = plan_rows(prob, a0, seg_end, segs, sel, R)
        A = np.repeat(a0[pad], R).astype(np.int32)
        E = np.repeat(seg_end[pad], R, 0)
        glob = np.minimum(a0[pad][:, None] + np.arange(W), L - 1)
        if starts is not None:  # restart r of each row from its r-th best screened sample
            soft = relaxed.one_hot(Placement(E, *(f[pad].reshape(-1, W) for f in starts)))
        else:
            key, k = jax.random.split(key)
            soft = jax.vmap(lambda kk: relaxed.uniform(W, kk, 1.0))(jax.random.split(k, len(A)))
        if seeds:  # restart 0 of each row from the seed's choices in its window
            oh = relaxed.one_hot(Placement(*(np.asarray(f)[glob] for f in seeds[0].fields())))
            soft = jax.tree_util.tree_map(
                lambda s, o: s.reshape((block_rows, R) + s.shape[1:]).at[:, 0].set(o).reshape(s.shape),
                soft, oh)
        for k0 in range(0, steps, chunk):
            args = (stack, sc.ha, A, E, soft, jnp.asarray(temps[k0:k0 + chunk], jnp.float32),
                    jnp.float32(lam or 0.0), mask)
            static = dict(steps=chunk, objective=prob.objective, learning_rate=float(learning_rate))
            compiled = sc.__dict__.setdefault("_descend", {})
            ck = (len(A), W) + tuple(static.values())
            if ck not in compiled:  # compile time, not search time
                t0 = time.perf_counter()
                compiled[ck] = descend.lower(*args, **static).compile()
                prob.note_compile(time.perf_counter() - t0)
            soft = compiled[ck](*args)
            p = relaxed.round(_masked(soft, mask), E, np.repeat(red_ok[glob], R, 0))
            fields = [np.asarray(f)[:n * R] for f in p.fields()[1:]]
            if prob.space.shares is not None:  # the nearest allowed share, in log space
                allowed = np.asarray(sorted(prob.space.shares), np.float64)
                fields[2] = allowed[np.abs(np.log(fields[2][..., None]) - np.log(allowed)).argmin(-1)].astype(np.int32)
            cands.score(rows, fields)
            if prob.out_of_time(budget_s) and (starts is not None or lo + block_rows >= n_cover):
                break
    cands.solve()
    return prob.result("gradient")

"""Stochastic and exhaustive search strategies (DESIGN.md section 7).

`run(name, prob, cfg, seed_placements)` dispatches to `exhaustive`, `evolutionary`,
`annealing` and `gradient` (and, for convenience, to search.py's `dp` and `random`). Every
strategy scores only through `prob.score(batch)` (which counts placements, tracks the best
and appends the convergence history), only proposes placements inside `prob.space` (every
proposal goes through `_repair`), stops after `cfg.iterations` batch calls or when
`prob.out_of_time(cfg.time_budget_s)`, and returns `prob.result(name)`. All randomness comes
from `prob.rng`, so a strategy is deterministic given the Problem's seed (up to where a time
budget cuts it).

Population arrays are NumPy [B, L] per Placement field. Every layer's gran/org/part/share
always holds a value allowed by the space (not just at segment ends), so changing segment
boundaries never produces a placement outside the space.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Optional

import numpy as np

from pipeorgan_jax.placement import MAX_SHARE, Placement, concat

NAMES = ("exhaustive", "evolutionary", "annealing", "gradient", "dp", "random")


# ----------------------------------------------------------------------------- helpers
def _get(cfg, key, default):
    v = getattr(cfg, key, default) if cfg is not None else default
    return default if v is None else v


def _allowed(prob) -> dict:
    """Sorted allowed values of each per-layer field, and the effective max depth."""
    s = prob.space
    return dict(gran=np.array(sorted(s.grans), np.int32), org=np.array(sorted(s.orgs), np.int32),
                part=np.array(sorted(s.parts), np.int32),
                share=np.array(sorted(s.shares) if s.shares is not None
                               else range(1, MAX_SHARE + 1), np.int32),
                depth=max(1, min(s.max_depth, prob.n_units)))


def _nearest(x: np.ndarray, vals: np.ndarray, log: bool = False) -> np.ndarray:
    """Nearest value of sorted `vals` to every element of x (in log space if log)."""
    if len(vals) == 1:
        return np.broadcast_to(vals, np.shape(x)).copy()
    fx, fv = np.asarray(x, np.float64), vals.astype(np.float64)
    if log:
        fx, fv = np.log(np.maximum(fx, 1e-9)), np.log(fv)
    i = np.clip(np.searchsorted(fv, fx), 1, len(vals) - 1)
    return vals[np.where(fx - fv[i - 1] <= fv[i] - fx, i - 1, i)]


def _prev_end(seg_end: np.ndarray) -> np.ndarray:
    """Per layer: index of the last segment end strictly before it (-1 if none)."""
    L = seg_end.shape[-1]
    pos = np.where(seg_end, np.arange(L), -1)
    last = np.maximum.accumulate(pos, axis=-1)
    return np.concatenate([np.full(seg_end.shape[:-1] + (1,), -1), last[..., :-1]], axis=-1)


def _end_of(seg_end: np.ndarray) -> np.ndarray:
    """Per layer: index of the segment end at or after it."""
    L = seg_end.shape[-1]
    pos = np.where(seg_end, np.arange(L), L)
    return np.minimum.accumulate(pos[..., ::-1], axis=-1)[..., ::-1]


def _repair(seg_end, gran, org, share, part, A) -> Placement:
    """Project a batch into the space: last layer ends a segment, segments at most A['depth']
    deep (a run of k > depth layers is cut every depth layers), every value the nearest allowed
    (shares in log space). Identity on placements already inside the space."""
    seg_end = np.array(seg_end, bool)
    seg_end[..., -1] = True
    D = A["depth"]
    k = np.arange(seg_end.shape[-1]) - _prev_end(seg_end)  # 1-based position in its run
    seg_end |= (k % D) == 0
    return Placement(seg_end, _nearest(gran, A["gran"]).astype(np.int32),
                     _nearest(org, A["org"]).astype(np.int32),
                     _nearest(share, A["share"], log=True).astype(np.int32),
                     _nearest(part, A["part"]).astype(np.int32))


def _seeds(prob, seed_placements, A) -> Optional[Placement]:
    """Seed placements as a batch inside the space; gran/org broadcast from each segment's
    last layer over the segment (same cost, keeps crossovers meaningful)."""
    if not seed_placements:
        return None
    ps = []
    for p in seed_placements:
        p = p.numpy()
        f = [np.asarray(x).reshape(-1, prob.n_layers) for x in p.fields()]
        e = _end_of(f[0].astype(bool))
        f[1], f[2] = (np.take_along_axis(x, e, -1) for x in f[1:3])
        ps.append(_repair(*f, A))
    return concat(ps)


def _initial(prob, n: int, seed_placements, A) -> Placement:
    """n placements: the seeds (at most n) then uniform samples from the space."""
    s = _seeds(prob, seed_placements, A)
    k = 0 if s is None else min(n, s.batch_size)
    parts = ([s[:k]] if k else []) + ([prob.sample(n - k)] if n > k else [])
    p = concat(parts)
    return _repair(*p.fields(), A)


def _take(p: Placement, idx) -> Placement:
    return Placement(*(np.asarray(f)[idx] for f in p.fields()))


def _where(mask, a: Placement, b: Placement) -> Placement:
    """Per row (mask [B]) or per layer (mask [B, L]) choice between two batches."""
    m = mask if mask.ndim == 2 else mask[:, None]
    return Placement(*(np.where(m, x, y) for x, y in zip(a.fields(), b.fields())))


def _mutate(rng, p: Placement, rate: float, A, force_one: bool,
            bad: Optional[np.ndarray] = None) -> Placement:
    """Mutate each layer with probability `rate` (layers of infeasible segments, `bad`
    [B, L], with probability at least 0.3); a mutated layer changes one random field: flip
    its segment boundary (split or merge segments; depth re-capped), move the segment's
    gran or org (applied at the segment's last layer, where they are read) or the layer's part
    to another allowed value, or rescale its share by 2**N(0,1) (nearest allowed, at least
    one step). force_one: every row changes at least one layer, one of its bad layers if it
    has any (annealing neighbors)."""
    seg_end, gran, org, share, part = (np.array(f) for f in p.fields())
    B, L = seg_end.shape
    hit = rng.random((B, L)) < rate
    if bad is not None:
        hit |= bad & (rng.random((B, L)) < max(rate, 0.3))
    if force_one:
        pick = rng.random((B, L)) + (0.0 if bad is None else bad)
        hit[np.arange(B), pick.argmax(1)] = True
    field = np.where(hit, rng.integers(0, 5, (B, L)), -1)
    field[:, L - 1] = np.where(field[:, L - 1] == 0, rng.integers(1, 5, B), field[:, L - 1])
    seg_end ^= field == 0
    end = _end_of(np.array(p.seg_end, bool))
    rows = np.arange(B)[:, None]
    out = [seg_end]
    for j, (x, key) in enumerate(((gran, "gran"), (org, "org")), start=1):
        m = np.zeros((B, L), bool)
        m[np.broadcast_to(rows, (B, L))[field == j], end[field == j]] = True
        v = A[key]
        step = rng.integers(1, max(2, len(v)), (B, L))
        out.append(np.where(m, v[(np.searchsorted(v, x) + step) % len(v)], x))
    v = A["share"]
    new = _nearest(share * np.exp2(rng.standard_normal((B, L))), v, log=True)
    i = np.searchsorted(v, share)
    nudge = v[np.clip(np.where(i + 1 < len(v), i + 1, i - 1), 0, len(v) - 1)]
    out.append(np.where(field == 3, np.where(new == share, nudge, new), share))
    v = A["part"]
    step = rng.integers(1, max(2, len(v)), (B, L))
    out.append(np.where(field == 4, v[(np.searchsorted(v, part) + step) % len(v)], part))
    return _repair(*out, A)


def _score(prob, p: Placement) -> tuple[np.ndarray, np.ndarray]:
    """Score through prob. Returns the search fitness, the log of prob's (penalized)
    objective plus log(INFEASIBLE_PENALTY) for every infeasible segment beyond the first, and
    the layers of infeasible segments ([B, L] bool). The fitness orders feasible placements,
    and feasible against infeasible ones, exactly as prob's objective does; among infeasible
    ones it prefers fewer infeasible segments, which gives the search a slope towards
    feasibility on deep networks where almost no random placement fits."""
    from pipeorgan_jax.search import INFEASIBLE_PENALTY
    v, c = prob.score(p)
    seg_ok = np.asarray(c["seg_feasible"], bool).reshape(len(v), -1)
    n_bad = (~seg_ok).sum(1)
    start = _prev_end(np.asarray(p.seg_end, bool).reshape(len(v), -1)) + 1
    bad = ~np.take_along_axis(seg_ok, start, 1)
    fit = np.log(np.maximum(v, 1e-30)) + math.log(INFEASIBLE_PENALTY) * np.maximum(n_bad - 1, 0)
    return fit, bad


# ----------------------------------------------------------------------------- exhaustive
def space_size(prob) -> int:
    """Number of placements in prob.space: sum over segmentations of the product of each
    segment's inner choices (exact integer)."""
    D, L = _allowed(prob)["depth"], prob.n_layers
    c = [1] + [0] * L
    for b in range(1, L + 1):
        c[b] = sum(c[b - d] * prob.space.inner_choices(d) for d in range(1, min(D, b) + 1))
    return c[L]


class SpaceTooLarge(ValueError):
    """The space is too large to enumerate (a user's choice of strategy, not a bug)."""


def exhaustive(prob, batch_size: int = 1024, budget_s: float = 0.0, max_space: int = 2_000_000,
               name: str = "exhaustive"):
    """Score every placement of the space, in batches of batch_size (tiny problems only)."""
    n = space_size(prob)
    if n > max_space:
        raise SpaceTooLarge(f"exhaustive: space {prob.space.name!r} of {prob.n_layers} layers has "
                         f"{n} placements, more than max_space={max_space}; use dp or a "
                         f"stochastic strategy, or restrict the space")
    L, D = prob.n_layers, _allowed(prob)["depth"]
    inner = {}
    for d in range(1, D + 1):
        ch = prob.space.enumerate_inner(d)
        inner[d] = (np.array([c[0] for c in ch], np.int32), np.array([c[1] for c in ch], np.int32),
                    np.array([c[2] for c in ch], np.int32).reshape(len(ch), -1),
                    np.array([c[3] for c in ch], np.int32).reshape(len(ch), d))

    def compositions(rest):
        if rest == 0:
            yield ()
            return
        for d in range(1, min(D, rest) + 1):
            for tail in compositions(rest - d):
                yield (d,) + tail

    pending, n_pending = [], 0

    def flush(final=False):
        nonlocal pending, n_pending
        while n_pending >= batch_size or (final and n_pending):
            p = concat(pending)
            k = min(batch_size, p.batch_size)
            prob.score(_take(p, slice(0, k)))
            rest = _take(p, slice(k, None))
            pending, n_pending = ([rest] if rest.batch_size else []), rest.batch_size

    for comp in compositions(L):
        ends = np.cumsum(comp) - 1
        shape = tuple(len(inner[d][0]) for d in comp)
        M = int(np.prod(shape))
        seg_end = np.zeros(L, bool)
        seg_end[ends] = True
        for lo in range(0, M, batch_size):
            if prob.out_of_time(budget_s):
                flush(True)
                return prob.result(name)
            idx = np.unravel_index(np.arange(lo, min(M, lo + batch_size)), shape)
            B = len(idx[0])
            f = [np.zeros((B, L), np.int32) for _ in range(4)]
            a = 0
            for d, ix in zip(comp, idx):
                g, o, sh, pa = inner[d]
                f[0][:, a:a + d], f[1][:, a:a + d] = g[ix, None], o[ix, None]
                f[2][:, a:a + d] = sh[ix]
                f[3][:, a:a + d] = pa[ix]
                a += d
            pending.append(Placement(np.broadcast_to(seg_end, (B, L)).copy(), *f))
            n_pending += B
            flush()
    flush(True)
    return prob.result(name)


# ----------------------------------------------------------------------------- evolutionary
def evolutionary(prob, batch_size=1024, iterations=40, budget_s=0.0, mutation_rate=0.1,
                 elite_fraction=0.1, seed_placements=None, name="evolutionary"):
    """Generational GA with elitism. Population batch_size; each generation scores
    batch_size children (one batch call): parents by binary tournament, per-layer uniform
    crossover of all fields (seg_end included, depth re-capped), then `_mutate`. The next
    population is the elite_fraction best of the old one plus the best children. Selection
    uses `_score`'s fitness (prob's penalized objective, graded by the number of infeasible
    segments); layers of a parent's infeasible segments mutate more often."""
    rng, A = prob.rng, _allowed(prob)
    N = batch_size
    n_el = min(N - 1, max(1, int(round(elite_fraction * N)))) if N > 1 else 0
    pop = _initial(prob, N, seed_placements, A)
    val, bad = _score(prob, pop)
    for _ in range(iterations - 1):
        if prob.out_of_time(budget_s):
            break
        t = rng.integers(0, N, (2, 2, N))  # two binary tournaments per child
        par = np.where(val[t[:, 0]] <= val[t[:, 1]], t[:, 0], t[:, 1])
        mask = rng.random((N, prob.n_layers)) < 0.5
        kids = _where(mask, _take(pop, par[0]), _take(pop, par[1]))
        kbad = np.where(mask, bad[par[0]], bad[par[1]])
        kids = _mutate(rng, kids, mutation_rate, A, False, kbad)
        kval, kbad = _score(prob, kids)
        el = np.argsort(val, kind="stable")[:n_el]
        kb = np.argsort(kval, kind="stable")[:N - n_el]
        pop = concat([_take(pop, el), _take(kids, kb)])
        val, bad = np.concatenate([val[el], kval[kb]]), np.concatenate([bad[el], kbad[kb]])
    return prob.result(name)


# ----------------------------------------------------------------------------- annealing
def annealing(prob, batch_size=1024, iterations=60, budget_s=0.0, temperature0=0.1,
              mutation_rate=0.1, seed_placements=None, name="annealing", neighbor_rate=None,
              resample=True):
    """batch_size Metropolis chains in parallel, one batch call per step. Neighbor: a small
    `_mutate`: one forced change (in an infeasible segment if there is one) plus each layer
    with probability neighbor_rate (default mutation_rate / 4). Accept with probability
    min(1, exp(-(F' - F) / T)) on the log fitness F of `_score` (log objective; so T is a
    relative cost change: T = 0.1 accepts a 10% worse move with probability 1/e). Geometric
    schedule T = temperature0 * 1e-3 ** progress, progress = the larger of step / iterations
    and elapsed / time_budget_s (so a time-limited run still cools down fully). With
    `resample` (population annealing, default), every 10 steps the worst quarter of the
    chains restart from copies of random chains of the best quarter."""
    rng, A = prob.rng, _allowed(prob)
    rate = mutation_rate / 4 if neighbor_rate is None else neighbor_rate
    cur = _initial(prob, batch_size, seed_placements, A)
    lv, bad = _score(prob, cur)
    for k in range(1, iterations):
        if prob.out_of_time(budget_s):
            break
        prog = max(k / iterations, (time.perf_counter() - prob.t0) / budget_s if budget_s > 0 else 0.0)
        T = temperature0 * 1e-3 ** min(1.0, prog)
        prop = _mutate(rng, cur, rate, A, True, bad)
        lp, pbad = _score(prob, prop)
        acc = rng.random(batch_size) < np.exp(np.minimum(0.0, lv - lp) / max(T, 1e-12))
        cur = _where(acc, prop, cur)
        lv, bad = np.where(acc, lp, lv), np.where(acc[:, None], pbad, bad)
        if resample and k % 10 == 0 and batch_size >= 4:
            order = np.argsort(lv, kind="stable")
            q = batch_size // 4
            src = order[rng.integers(0, q, q)]
            idx = np.arange(batch_size)
            idx[order[-q:]] = src
            cur, lv, bad = _take(cur, idx), lv[idx], bad[idx]
    return prob.result(name)


# ----------------------------------------------------------------------------- gradient
SHARE_SIGMA = 0.75  # std of the log2-share Gaussian


@functools.lru_cache(maxsize=None)
def _grad_step():
    """(adam with the learning rate in its state, jitted (params, opt_state, samples, adv,
    tau) -> (params, opt_state)); compiled once per shape, whatever tau and the rate."""
    import jax
    import jax.numpy as jnp
    import optax

    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.05)

    def logprob(params, smp, tau):
        a = params["seg"][:, None] / tau  # [R, 1, L]
        x = smp["seg"]
        lp = (x * jax.nn.log_sigmoid(a) + (1 - x) * jax.nn.log_sigmoid(-a)) * smp["seg_mask"]
        for k in ("gran", "org", "part"):
            ls = jax.nn.log_softmax(params[k][:, None] / tau, -1)  # [R, 1, L, n]
            lk = jnp.take_along_axis(jnp.broadcast_to(ls, smp[k].shape + ls.shape[-1:]),
                                     smp[k][..., None], -1)[..., 0]
            lp = lp + lk * (smp["end"] if k != "part" else 1.0)
        z = smp["z"]
        lp = lp - 0.5 * ((z - params["mu"][:, None]) / SHARE_SIGMA) ** 2 * smp["sh_mask"]
        return lp.sum(-1)  # [R, S]

    def loss(params, smp, adv, tau):
        return (logprob(params, smp, tau) * jax.lax.stop_gradient(adv)).mean(-1).sum()

    @jax.jit
    def step(params, state, smp, adv, tau):
        g = jax.grad(loss)(params, smp, adv, tau)
        upd, state = opt.update(g, state, params)
        return optax.apply_updates(params, upd), state

    return opt, step


_STEP_EXECUTABLES: dict = {}  # the optimizer step compiled per input shapes, for the process


def _compiled_step(step, prob, args):
    """The jitted optimizer step compiled ahead of time for these shapes; the compilation is
    counted as prob's compile time, not search time (as the batch model's is)."""
    import jax
    leaves, tree = jax.tree_util.tree_flatten(args)
    key = (str(tree), tuple((np.shape(x), str(np.asarray(x).dtype)) for x in leaves))
    fn = _STEP_EXECUTABLES.get(key)
    if fn is None:
        t0 = time.perf_counter()
        fn = _STEP_EXECUTABLES[key] = step.lower(*args).compile()
        prob.note_compile(time.perf_counter() - t0)
    return fn


def gradient(prob, batch_size=1024, iterations=100, budget_s=0.0, restarts=64,
             learning_rate=0.05, gumbel_tau=1.0, seed_placements=None, name="gradient"):
    """Gradient-relaxed placement search, `restarts` parameter sets optimized at once.

    Relaxation. Each restart r holds: a logit a_l per layer for "layer l ends a segment"
    (the last layer always does); per layer, logits over the space's granularities and
    organizations (read at the segment's last layer, like the placement encoding) and over its
    partitions; and a real mu_l per layer for the PE share, the mean of a Gaussian
    z_l ~ N(mu_l, 0.75^2) in log2-share units, share_l = nearest allowed value to
    2**clip(z_l, 0, 6) (the share is continuous; the log scale makes equal steps equal
    ratios, which is what units_per_layer depends on). Discrete choices are drawn with the
    Gumbel trick at temperature tau = gumbel_tau: argmax(logits / tau + Gumbel noise), i.e.
    from pi_tau = softmax(logits / tau) (tau > 1 explores more, tau < 1 less). A drawn
    placement is projected into the space (segments deeper than max_depth are cut), which is
    part of the cost function below.

    Smooth objective. The batch model is piecewise constant in every choice (integer tiling,
    unit counts, argmax decoding), so its pathwise gradient is zero or undefined and a
    relaxed (soft) placement cannot be scored. Instead each restart minimizes the expected
    log-objective under the relaxed distribution,
        J(theta) = E_{x ~ p_theta}[ F(x) ],
    with F the search fitness of `_score`: log of prob's penalized objective (infeasible =
    1000x, +6.9) plus 6.9 per further infeasible segment. J is smooth in theta however jagged
    F is, and its minimizers put their mass on the best placements. Its gradient is estimated
    with the score-function (REINFORCE) estimator
        grad J ~= mean_s (F(x_s) - b_s) grad log p_theta(x_s)
    from S = max(1, batch_size // restarts) samples per restart, all restarts' samples scored
    in one batch call per step; b_s is the restart's leave-one-out mean of F (an exponential
    moving average when S = 1), and the advantages are divided by the restart's std. The log
    makes the estimator scale-free across models and restarts. Terms of choices that cannot
    change F given the drawn boundaries (gran/org of a layer that does not end a segment, the
    share of a layer alone in its segment) are dropped: they have zero mean, so this only
    lowers the variance. In jax: jax.grad of sum(logprob * stop_gradient(adv)),
    then optax.adam(learning_rate). At the end each restart's argmax choices (boundary where
    a_l > 0, argmax logits, share 2**mu) are rounded to a placement, projected into the space
    and re-scored with the batch model in one call; the result is the best placement scored
    during the whole run (samples included).
    """
    import jax.numpy as jnp

    rng, A = prob.rng, _allowed(prob)
    L, R = prob.n_layers, max(1, restarts)
    S = max(1, batch_size // R)
    tau = float(gumbel_tau)
    nG, nO, nP = len(A["gran"]), len(A["org"]), len(A["part"])
    D = A["depth"]
    # Initial parameters: diverse boundary densities, small random logits, log-uniform shares.
    p_end = rng.uniform(1.0 / D, 1.0, (R, 1)) if D > 1 else np.ones((R, 1))
    seg = np.broadcast_to(np.log(p_end) - np.log1p(-np.minimum(p_end, 1 - 1e-3)), (R, L)).copy()
    seg += 0.3 * rng.standard_normal((R, L))
    params = dict(seg=seg, gran=0.5 * rng.standard_normal((R, L, nG)),
                  org=0.5 * rng.standard_normal((R, L, nO)),
                  part=0.5 * rng.standard_normal((R, L, nP)),
                  mu=rng.uniform(0, np.log2(A["share"][-1]) if A["share"][-1] > 1 else 0.0, (R, L)))
    sd = _seeds(prob, seed_placements, A)
    for i in range(0 if sd is None else min(R, sd.batch_size)):
        q = sd[i]
        params["seg"][i] = np.where(q.seg_end, 3.0, -3.0)
        for k, v in (("gran", q.gran), ("org", q.org), ("part", q.part)):
            params[k][i] = 3.0 * (np.asarray(v)[:, None] == A[k][None])
        params["mu"][i] = np.log2(q.share)
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    opt, step = _grad_step()
    state = opt.init(params)
    state.hyperparams["learning_rate"] = jnp.asarray(learning_rate, jnp.float32)
    ema = None
    for _ in range(iterations):
        if prob.out_of_time(budget_s):
            break
        P = {k: np.asarray(v, np.float64) for k, v in params.items()}
        gum = lambda n: -np.log(-np.log(rng.uniform(1e-12, 1.0, (R, S, L, n))))
        sel = {k: np.argmax(P[k][:, None] / tau + gum(P[k].shape[-1]), -1)
               for k in ("gran", "org", "part")}
        u = rng.uniform(1e-12, 1 - 1e-12, (R, S, L))
        x = (P["seg"][:, None] / tau + np.log(u) - np.log1p(-u)) > 0  # logistic = 2-way Gumbel
        x[..., L - 1] = True
        z = P["mu"][:, None] + SHARE_SIGMA * rng.standard_normal((R, S, L))
        share = _nearest(np.exp2(np.clip(z, 0, 6)), A["share"], log=True)
        flat = lambda a: a.reshape(R * S, L)
        p = _repair(flat(x), A["gran"][flat(sel["gran"])], A["org"][flat(sel["org"])],
                    flat(share), A["part"][flat(sel["part"])], A)
        lf = _score(prob, p)[0].reshape(R, S)
        if S > 1:
            base = (lf.sum(1, keepdims=True) - lf) / (S - 1)
            adv = (lf - base) / (lf.std(1, keepdims=True) + 1e-6)
        else:
            ema = lf if ema is None else ema
            adv, ema = lf - ema, 0.8 * ema + 0.2 * lf
        se = p.seg_end.reshape(R, S, L)
        depth1 = se & np.concatenate([np.ones((R, S, 1), bool), se[..., :-1]], -1)
        smp = dict(seg=x.astype(np.float32),
                   seg_mask=np.broadcast_to(np.arange(L) < L - 1, (R, S, L)).astype(np.float32),
                   end=se.astype(np.float32), sh_mask=(~depth1).astype(np.float32),
                   z=z.astype(np.float32), **{k: sel[k].astype(np.int32) for k in sel})
        args = (params, state, smp, jnp.asarray(adv, jnp.float32), jnp.asarray(tau, jnp.float32))
        params, state = _compiled_step(step, prob, args)(*args)
    P = {k: np.asarray(v, np.float64) for k, v in params.items()}
    prob.score(_repair(P["seg"] > 0, A["gran"][P["gran"].argmax(-1)], A["org"][P["org"].argmax(-1)],
                       np.exp2(np.clip(P["mu"], 0, 6)), A["part"][P["part"].argmax(-1)], A))
    return prob.result(name)


# ----------------------------------------------------------------------------- dispatch
def run(name: str, prob, cfg=None, seed_placements=None):
    """Run strategy `name` on prob with parameters read from a SearchConfig-like cfg."""
    g = functools.partial(_get, cfg)
    budget = float(g("time_budget_s", 0.0))
    seeds = list(seed_placements) if seed_placements else None
    if name == "exhaustive":
        return exhaustive(prob, int(g("batch_size", 1024)), budget, int(g("max_space", 2_000_000)))
    if name == "evolutionary":
        return evolutionary(prob, int(g("batch_size", 1024)), int(g("iterations", 40)), budget,
                            float(g("mutation_rate", 0.1)), float(g("elite_fraction", 0.1)), seeds)
    if name == "annealing":
        return annealing(prob, int(g("batch_size", 1024)), int(g("iterations", 60)), budget,
                         float(g("temperature0", 0.1)), float(g("mutation_rate", 0.1)), seeds)
    if name == "gradient":
        return gradient(prob, int(g("batch_size", 1024)), int(g("iterations", 100)), budget,
                        int(g("restarts", 64)), float(g("learning_rate", 0.05)),
                        float(g("gumbel_tau", 1.0)), seeds)
    if name in ("dp", "random"):
        from pipeorgan_jax import search
        return search.run_strategy(name, prob, cfg, seed_placements)
    raise ValueError(f"unknown search strategy {name!r}; choose one of {NAMES}")

"""Search over placements: the space, the bookkeeping of one search, and the dispatch.

`run_strategy(name, prob, cfg, seed_placements)` runs a strategy on a `Problem` (scorer +
space + objective + seed) and returns a `SearchResult`: the best placement, its cost, what it
scored (counting.py: distinct whole-network placements; for dp also segment evaluations and
distinct segments), the search time and the compile time apart, and a convergence history of
(placements scored, search seconds, best objective). `dp` (dp.py) is a function over the
Problem that scores segments directly; every other strategy is a pure ask/tell object (strategies/) run by the one host loop in
driver.py. Neither strategies/ nor driver.py imports this module.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Optional

import numpy as np

from pipeorgan_jax import objective as objectives
from pipeorgan_jax import strategies
from pipeorgan_jax.cost import Scorer
from pipeorgan_jax.cost.segment import whole_from_windows
from pipeorgan_jax.counting import Tally
from pipeorgan_jax.dp import dp, enumerated, tiling  # noqa: F401 (dp's home; re-exported)
from pipeorgan_jax.driver import drive
from pipeorgan_jax.gradient import gradient
from pipeorgan_jax.objective import INFEASIBLE_PENALTY, OBJECTIVES  # noqa: F401 (re-exported)
from pipeorgan_jax.segmentwise import drive_segments
from pipeorgan_jax.placement import GRAN_ROWS, MAX_SHARE, Placement, sample


@dataclasses.dataclass(frozen=True)
class Space:
    """Which placements a search may return."""
    name: str = "flexible"
    max_depth: int = 8
    orgs: tuple[int, ...] = (0, 1, 2, 3)
    grans: tuple[int, ...] = tuple(range(len(GRAN_ROWS)))
    parts: tuple[int, ...] = (0, 1, 2, 3)
    shares: Optional[tuple[int, ...]] = None  # None: 1..MAX_SHARE

    def contains(self, p: Placement) -> bool:
        from pipeorgan_jax.placement import segments
        p = p.numpy()
        for a, b in segments(p.seg_end):
            if b - a + 1 > self.max_depth or int(p.org[b]) not in self.orgs \
                    or int(p.gran[b]) not in self.grans:
                return False
        if self.shares is not None and not np.isin(p.share, self.shares).all():
            return False
        return bool(np.isin(p.part, self.parts).all())

    def inner_choices(self, depth: int) -> int:
        """Number of inner choices (gran, org, shares, parts) of one segment of `depth`."""
        n_sh = MAX_SHARE if self.shares is None else len(self.shares)
        return len(self.grans) * len(self.orgs) * (len(self.parts) * (n_sh if depth > 1 else 1)) ** depth

    def enumerate_inner(self, depth: int) -> list[tuple]:
        """All inner choices of one segment: (gran, org, shares tuple, parts tuple)."""
        sh = tuple(range(1, MAX_SHARE + 1)) if self.shares is None else self.shares
        out = []
        for g, o in itertools.product(self.grans, self.orgs):
            for parts in itertools.product(self.parts, repeat=depth):
                for shares in (itertools.product(sh, repeat=depth) if depth > 1 else [(sh[0],)]):
                    out.append((g, o, shares, parts))
        return out


COARSE_GRANS = (4, 5, 6)  # 16 rows, 32 rows, whole tensor


def baseline_spaces(max_depth: int) -> dict[str, Space]:
    """Nested spaces: layer_by_layer within chunked within flexible, all with the same
    intra-layer space (every tile size, partition and share; DESIGN.md section 7): chunked
    differs from flexible only in spatial organization (blocked), layer_by_layer from chunked
    only in pipelining (depth 1). `chunked_coarse` is the prior-work-like extra column
    (blocked chunks, coarse tiles, no reduction split), never the headline."""
    return {
        "layer_by_layer": Space("layer_by_layer", 1, (0,)),
        "chunked": Space("chunked", max_depth, (0,)),
        "flexible": Space("flexible", max_depth),
        "chunked_coarse": Space("chunked_coarse", max_depth, (0,), COARSE_GRANS, (0, 1, 2)),
    }


@dataclasses.dataclass
class SearchResult:
    strategy: str
    space: str
    objective: str
    best: Placement
    cost: dict
    placements_scored: int  # distinct whole-network placements (padding and repeats excluded)
    seconds: float  # search wall time, compilation excluded
    history: list  # [(placements scored, seconds, best objective)]
    compile_seconds: float = 0.0  # batch-model compilation (or cache loads) during the search
    rows_scored: int = 0  # batch rows sent to the model, repeats included, padding excluded
    segment_evaluations: int = 0  # dp: segment costs read off the scored rows
    distinct_segments: int = 0  # dp: distinct (layer range, inner choices) among them


class Problem:
    """One search's bookkeeping: a model on a hardware, an objective and a space, and what the
    search scored (the driver's record; strategies never see it, they get `domain`).

    `tally` may be shared by several Problems (the three spaces of one model) so that a
    placement scored by one, e.g. a seed handed to the next, is counted once; `on_step` is
    called after every scored batch (a progress bar), `on_batch(placements, cost)` with every
    scored batch (pareto.Archive)."""

    def __init__(self, scorer: Scorer, objective: str = "latency", space: Space = Space(),
                 seed: int = 0, tally: Optional[Tally] = None, on_step=None):
        self.scorer, self.objective, self.space = scorer, objectives.check(objective), space
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)  # dp's draws
        self.n_layers = len(scorer.model.layers)
        self.red_ok = np.asarray([l.reduction_ok for l in scorer.model.layers])
        self.n_units = scorer.hw.n_units
        self.tally = Tally() if tally is None else tally
        self.on_step = on_step
        self.on_batch = None
        self._tally0 = (self.tally.placements, self.tally.rows, self.tally.segment_evaluations,
                        self.tally.distinct_segments)
        self._compile0 = self.scorer.compile_seconds
        self._compile_other = 0.0  # a strategy's own jitted code (gradient's optimizer step)
        self.t0 = time.perf_counter()
        self.history: list = []
        self.best_value = np.inf
        self.best: Optional[Placement] = None
        self.best_cost: Optional[dict] = None

    def objective_of(self, c: dict) -> np.ndarray:
        return np.asarray(objectives.penalized(self.objective, c), np.float64)

    @property
    def domain(self) -> strategies.Domain:
        """What a strategy's init gets: the space's values and shapes, the objective, and the
        batch model's tables."""
        return strategies.domain_of(self.space, self.n_layers, self.n_units, self.red_ok,
                                    self.objective, self.scorer.ma, self.scorer.ha)

    def score(self, p: Placement, by_segments: bool = False) -> tuple[np.ndarray, dict]:
        """Score a batch, track the best, return (objective per placement, cost dict).
        by_segments: from the segments' records (cost/segment.py), where they fit its windows."""
        # (the kernel scores whole placements without a compilation of their shape)
        c = whole_from_windows(self.scorer, p) if by_segments and self.scorer.resolved_backend != "kernel" else None
        if c is None:
            c = self.scorer(p)
        self.tally.add_placements(p)
        if self.on_batch is not None:
            self.on_batch(p, c)
        v = self.objective_of(c)
        i = int(np.argmin(v))
        if v[i] < self.best_value:
            self.best_value = float(v[i])
            self.best = p[i] if p.seg_end.ndim == 2 else p.numpy()
            self.best_cost = {k: np.asarray(x)[i] for k, x in c.items()}
        self.step()
        return v, c

    def step(self) -> None:
        """Record progress after a scored batch (of placements, or of dp's segments)."""
        self.history.append((self.scored, self.elapsed(), self.best_value))
        if self.on_step is not None:
            self.on_step(self)

    @property
    def scored(self) -> int:
        """Distinct whole-network placements this search scored (new to its tally)."""
        return self.tally.placements - self._tally0[0]

    @property
    def compile_seconds(self) -> float:
        return self.scorer.compile_seconds - self._compile0 + self._compile_other

    def note_compile(self, seconds: float) -> None:
        """Count a strategy's own compilation as compile time, not search time."""
        self._compile_other += seconds

    def elapsed(self) -> float:
        """Search seconds so far: wall time less the batch model's compilation."""
        return time.perf_counter() - self.t0 - self.compile_seconds

    def sample(self, batch: int) -> Placement:
        s = self.space
        return sample(self.rng, self.n_layers, batch, min(s.max_depth, self.n_units),
                      s.orgs, s.grans, s.parts, shares=s.shares, red_ok=self.red_ok)

    def result(self, strategy: str) -> SearchResult:
        cost = {k: (float(v) if np.ndim(v) == 0 else np.asarray(v)) for k, v in self.best_cost.items()}
        t = self.tally
        return SearchResult(strategy, self.space.name, self.objective, self.best, cost,
                            self.scored, self.elapsed(), self.history, self.compile_seconds,
                            t.rows - self._tally0[1], t.segment_evaluations - self._tally0[2],
                            t.distinct_segments - self._tally0[3])

    def out_of_time(self, budget_s: float) -> bool:
        return budget_s > 0 and self.elapsed() > budget_s


def random_search(prob: Problem, batch_size: int = 4096, iterations: int = 20,
                  budget_s: float = 0.0) -> SearchResult:
    return drive(strategies.RandomSearch(batch_size), prob, iterations, budget_s)


def run_strategy(name, prob: Problem, cfg=None, seed_placements=None) -> SearchResult:
    """Run a strategy by name with parameters from a SearchConfig (or defaults): dp as a
    function over prob, every other strategy through the driver."""
    name = getattr(name, "value", name)
    get = (lambda k, d: getattr(cfg, k, d)) if cfg is not None else (lambda k, d: d)
    budget = get("time_budget_s", 0.0)
    if name in ("dp", "dp+gradient"):
        r = dp(prob, get("dp_batch_size", 128), max(1, get("dp_rounds", 2)), budget,
               seed_placements, mutation=get("mutation_rate", 0.15))
        if name == "dp":
            return r
        seed_placements = [r.best] + list(seed_placements or [])
    if name in ("gradient", "dp+gradient"):
        r = gradient(prob, int(get("restarts", 8)), int(get("gradient_steps", 60)),
                     float(get("learning_rate", 0.1)), float(get("gradient_t_start", 1.0)),
                     float(get("gradient_t_end", 0.05)), int(get("gradient_round_every", 20)),
                     budget, seed_placements, screen=int(get("gradient_screen", 64)))
        r.strategy = name
        return r
    strategy, iterations = strategies.make(name, cfg)
    if get("decompose", True) and getattr(strategy, "jittable", True):
        return drive_segments(strategy, prob, iterations, float(budget or 0.0), seed_placements,
                              int(get("row_batch_size", 32)))
    return drive(strategy, prob, iterations, float(budget or 0.0), seed_placements)

"""Hardware co-design: the best placement of each space at every hardware point of a sweep.

Search per point (docs/codesign.md): one dynamic program over segment boundaries per point,
whose candidate segments are scored at all points at once. As `search.dp`, every depth and
offset tiles the network and a batch of inner choices (granularity, organization, shares,
partitions) is scored; here each batch is scored at every hardware point in one jitted call
(`hwbatch.score_points`: [H points x B placements]), each point keeps its own best inner choice
per segment, later rounds mutate each point's own best (`score_points_each`), and the boundary
DP runs per point. The spaces nest as in the main job: layer-by-layer's best at a point seeds
chunked there, chunked's seeds flexible, so flexible is never slower than chunked at any point.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Optional, Sequence

import jax.numpy as jnp
import numpy as np

from pipeorgan_jax.cost import hw_arrays, model_arrays
from pipeorgan_jax.dp import best_tiling
from pipeorgan_jax.hardware import Hardware
from pipeorgan_jax.hwbatch import score_points, score_points_each
from pipeorgan_jax.placement import Placement, layer_by_layer, sample
from pipeorgan_jax.search import INFEASIBLE_PENALTY, Space, enumerated, baseline_spaces, tiling
from pipeorgan_jax.workload import Model

SPACES = ("layer_by_layer", "chunked", "flexible")
_FIELDS = ("latency_cycles", "energy_pj", "feasible", "seg_latency", "seg_energy", "seg_feasible")


class MultiScorer:
    """A model at H hardware points: scores a batch of placements at every point.

    Batches are padded to `batch` rows (one compiled shape per call kind); `chunk` points are
    held in memory at once inside the one compiled call (lax.map), from `max_rows`."""

    def __init__(self, model: Model, hw: Hardware, keys: Sequence[str], values: np.ndarray,
                 max_depth: int, batch: int, max_rows: int = 4096):
        self.model, self.hw, self.keys = model, hw, tuple(keys)
        self.values = jnp.asarray(np.asarray(values, np.float64), jnp.float32)
        self.H = int(self.values.shape[0])
        self.batch = batch
        self.chunk = max(1, max_rows // batch)
        self.ma = model_arrays(model)
        self.ha = hw_arrays(hw, max_depth)
        self.compiled: dict = {}
        self.compile_seconds = 0.0
        self.score_seconds = 0.0
        self.rows = 0  # (point, placement) pairs scored, padding excluded

    def _pad(self, f: np.ndarray, axis: int, size: int) -> np.ndarray:
        n = f.shape[axis]
        if n == size:
            return f
        reps = np.take(f, [0] * (size - n), axis=axis)
        return np.concatenate([f, reps], axis=axis)

    def _run(self, kind: str, p: Placement, axis: int) -> dict[str, np.ndarray]:
        n = p.seg_end.shape[axis]
        size = self.batch * -(-n // self.batch)  # whole multiples of `batch`
        p = Placement(*(self._pad(np.asarray(f), axis, size) for f in p.fields()))
        fn = score_points if kind == "shared" else score_points_each
        key = (kind, size)
        if key not in self.compiled:
            t0 = time.perf_counter()
            chunk = max(1, self.chunk * self.batch // size)
            self.compiled[key] = fn.lower(self.ma, self.ha, self.values, p, keys=self.keys,
                                          chunk=chunk).compile()
            self.compile_seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        c = self.compiled[key](self.ma, self.ha, self.values, p)
        out = {k: np.asarray(getattr(c, k))[:, :n] for k in _FIELDS}
        self.score_seconds += time.perf_counter() - t0
        self.rows += self.H * n
        return out

    def shared(self, p: Placement) -> dict[str, np.ndarray]:
        """[B] placements, the same at every point -> every field [H, B, ...]."""
        return self._run("shared", p, 0)

    def each(self, p: Placement) -> dict[str, np.ndarray]:
        """[H, B] placements, point h scores its own row p[h] -> [H, B, ...]. About 10x the
        time per row of `shared`: there XLA computes what does not depend on the hardware
        scalars once per placement, here once per (point, placement)."""
        return self._run("each", p, 1)

    def diagonal(self, p: Placement) -> dict[str, np.ndarray]:
        """[H] placements, one per point, each scored at its own point -> [H, ...], through
        `shared` calls of `batch` rows (cheaper than `each` for one row per point)."""
        H, B = self.H, self.batch
        out: dict[str, list] = {}
        for a in range(0, H, B):
            rows = np.arange(a, min(a + B, H))
            c = self.shared(Placement(*(np.asarray(f)[rows] for f in p.fields())))
            for k, v in c.items():
                out.setdefault(k, []).append(v[rows, rows - a])
        self.rows -= H * H - H  # count the pairs used, not the wasted off-diagonal ones
        return {k: np.concatenate(v) for k, v in out.items()}


def _objective(objective: str, lat, en, lam):
    if objective == "latency":
        return lat
    if objective == "energy":
        return en
    return lat + lam * en  # EDP: a scalarization per point (lam [H, 1...])


@dataclasses.dataclass
class PointsResult:
    """Per hardware point: the best placement of one space and its whole-network cost."""
    placements: Placement  # [H, L]
    latency_cycles: np.ndarray  # [H]
    energy_pj: np.ndarray
    feasible: np.ndarray


def dp_points(ms: MultiScorer, space: Space, objective: str, rng: np.random.Generator,
              rounds: int = 2, mutation: float = 0.15,
              seeds: Optional[PointsResult] = None, mutation_factor: int = 4) -> PointsResult:
    """`search.dp` at every point at once (module docstring); `seeds`: one placement per
    point whose segments are candidates there and whose whole-network cost the result never
    exceeds (the nested smaller space's best)."""
    L, H = len(ms.model.layers), ms.H
    U = ms.hw.n_units
    D = max(1, min(space.max_depth, U))
    red_ok = np.asarray([l.reduction_ok for l in ms.model.layers])
    lam = np.zeros((H, 1))
    if objective == "edp":
        c = ms.shared(Placement(*(np.asarray(f)[None] for f in layer_by_layer(L).fields())))
        lam = (c["latency_cycles"][:, :1] / np.maximum(c["energy_pj"][:, :1], 1e-30))
    # (a, b) -> [value [H], fields: 4 arrays [H, b - a + 1]]
    best: dict[tuple[int, int], list] = {}
    hh = np.arange(H)

    def seg_values(c, starts):
        lat = c["seg_latency"][..., starts].astype(np.float64)
        en = c["seg_energy"][..., starts].astype(np.float64)
        v = _objective(objective, lat, en, lam[..., None] if lat.ndim == 3 else lam)
        return np.where(c["seg_feasible"][..., starts], v, v * INFEASIBLE_PENALTY)

    def keep(a, b, v, fields):
        cur = best.get((a, b))
        if cur is None:
            best[(a, b)] = [v.copy(), [f.copy() for f in fields]]
            return
        better = v < cur[0]
        cur[0] = np.where(better, v, cur[0])
        for cf, f in zip(cur[1], fields):
            cf[better] = f[better]

    def harvest(p: Placement, c: dict, seg_end: np.ndarray):
        """All rows share seg_end; fields [B, L] (shared) or [H, B, L] (per point)."""
        ends = np.flatnonzero(seg_end)
        starts = np.concatenate([[0], ends[:-1] + 1])
        v = seg_values(c, starts)  # [H, B, S]
        pick = np.argmin(v, axis=1)  # [H, S]
        fields = [np.asarray(f) for f in p.fields()[1:]]
        fields = [f if f.ndim == 3 else np.broadcast_to(f[None], (H,) + f.shape) for f in fields]
        for j, (a, b) in enumerate(zip(starts, ends)):
            i = pick[:, j]
            keep(int(a), int(b), v[hh, i, j], [f[hh, i, a:b + 1] for f in fields])

    if seeds is not None:
        c = ms.diagonal(seeds.placements)
        for h in range(H):
            se = np.asarray(seeds.placements.seg_end[h])
            ends = np.flatnonzero(se)
            starts = np.concatenate([[0], ends[:-1] + 1])
            v = seg_values({k: x[h:h + 1] for k, x in c.items()}, starts)[0]
            for j, (a, b) in enumerate(zip(starts, ends)):
                vv = np.full(H, np.inf)
                vv[h] = v[j]
                fl = [np.broadcast_to(np.asarray(f[h, a:b + 1]), (H, b - a + 1))
                      for f in seeds.placements.fields()[1:]]
                keep(int(a), int(b), vv, fl)
    B = ms.batch
    for r in range(max(1, rounds)):
        for d in range(1, D + 1):
            enum = space.inner_choices(d) <= B
            if enum and r > 0:
                continue
            for o in range(d):
                seg_end = tiling(L, d, o)
                if enum:
                    p = enumerated(seg_end, space, d)
                else:
                    p = sample(rng, L, B, D, space.orgs, space.grans, space.parts,
                               shares=space.shares, red_ok=red_ok)
                    p = Placement(np.broadcast_to(seg_end, p.seg_end.shape).copy(), *p.fields()[1:])
                if r > 0:  # mutation_factor x the batch: the points' bests share it
                    p = sample(rng, L, B * mutation_factor, D, space.orgs, space.grans,
                               space.parts, shares=space.shares, red_ok=red_ok)
                    p = _mutate_around(p, best, seg_end, rng, mutation, H)
                harvest(p, ms.shared(p), seg_end)
    # boundary DP, every point at once
    res = best_tiling(L, D, best, H)
    c = ms.diagonal(res)
    out = PointsResult(res, c["latency_cycles"].astype(np.float64),
                       c["energy_pj"].astype(np.float64), c["feasible"])
    if seeds is not None:  # the spaces nest: never worse than the seed, point by point
        out = _better(out, seeds, objective, lam[:, 0])
    return out


def _better(a: PointsResult, b: PointsResult, objective: str, lam: np.ndarray) -> PointsResult:
    def val(r):
        v = _objective(objective, r.latency_cycles, r.energy_pj, lam)
        return np.where(r.feasible, v, v * INFEASIBLE_PENALTY)
    take_b = val(b) < val(a)
    pick = lambda x, y: np.where(take_b.reshape((-1,) + (1,) * (np.ndim(x) - 1)), y, x)
    return PointsResult(Placement(*(pick(np.asarray(x), np.asarray(y))
                                    for x, y in zip(a.placements.fields(), b.placements.fields()))),
                        pick(a.latency_cycles, b.latency_cycles), pick(a.energy_pj, b.energy_pj),
                        pick(a.feasible, b.feasible))


def _mutate_around(p: Placement, best: dict, seg_end: np.ndarray, rng: np.random.Generator,
                   rate: float, H: int) -> Placement:
    """One batch shared by every point: the distinct per-point bests of this tiling's segments
    (rows 0..k-1, unmutated), then mutations of them, round-robin, every field of every layer
    resampled (from the fresh batch `p`) with probability `rate`. Scored at every point, each
    point can also take a mutation of another point's best."""
    fields = [np.asarray(f) for f in p.fields()[1:]]  # [B, L]
    B, L = fields[0].shape
    base = [np.broadcast_to(f[0], (H, L)).copy() for f in fields]
    ends = np.flatnonzero(seg_end)
    starts = np.concatenate([[0], ends[:-1] + 1])
    for a, b in zip(starts, ends):
        got = best.get((int(a), int(b)))
        if got is not None:
            for bf, v in zip(base, got[1]):
                bf[:, a:b + 1] = v
    _, first = np.unique(np.concatenate(base, axis=1), axis=0, return_index=True)
    bases = [bf[np.sort(first)][:B] for bf in base]  # [k, L], in point order
    k = len(bases[0])
    src = np.arange(B) % k
    out = []
    for f, bf in zip(fields, bases):
        keep = rng.random((B, L)) >= rate
        keep[:k] = True
        out.append(np.where(keep, bf[src], f).astype(np.int32))
    return Placement(np.broadcast_to(seg_end, (B, L)).copy(), *out)


def codesign_model(model: Model, hw: Hardware, keys: Sequence[str], values: np.ndarray,
                   objective: str = "latency", max_depth: int = 6, batch: int = 128,
                   rounds: int = 2, mutation: float = 0.15, seed: int = 0,
                   max_rows: int = 4096) -> dict:
    """Per point, the best of layer-by-layer, chunked and flexible (nested, seeded) and the
    speedups of flexible over the other two; arrays of length H."""
    t0 = time.perf_counter()
    ms = MultiScorer(model, hw, keys, values, max_depth, batch, max_rows)
    spaces = baseline_spaces(max_depth)
    rng = np.random.default_rng(seed)
    res: dict[str, PointsResult] = {}
    prev = None
    for name in SPACES:
        prev = res[name] = dp_points(ms, spaces[name], objective, rng, rounds, mutation, prev)
    out = {name: {"latency_cycles": r.latency_cycles, "energy_pj": r.energy_pj,
                  "feasible": r.feasible} for name, r in res.items()}
    fl = res["flexible"].latency_cycles
    out["speedup_vs_chunked"] = res["chunked"].latency_cycles / fl
    out["speedup_vs_layer_by_layer"] = res["layer_by_layer"].latency_cycles / fl
    out["rows_scored"] = ms.rows
    out["compile_seconds"] = ms.compile_seconds
    out["score_seconds"] = ms.score_seconds
    out["wall_seconds"] = time.perf_counter() - t0
    out["_placements"] = {k: r.placements for k, r in res.items()}
    return out

"""What a search minimizes: the objective of a scored placement, and the fitness strategies rank by.

Objectives: `latency` (cycles), `energy` (pJ), `edp` (pJ x s), and the energy-weighted
`weighted:<a>` = latency**(1 - a) * energy**a for a in [0, 1] (a weighted geometric mean, so
scale-free: a = 0 ranks as latency, 1 as energy, 0.5 as EDP). `objective=pareto` runs the
flexible space at several weights (explore.py). Infeasible placements rank after every
feasible one (their objective counts INFEASIBLE_PENALTY times). The functions take a cost
dict or Cost NamedTuple of NumPy or jax arrays (`xp` picks the array module).
"""
from __future__ import annotations

import math

import numpy as np

OBJECTIVES = ("latency", "energy", "edp")
INFEASIBLE_PENALTY = 1e3  # infeasible placements rank after every feasible one
_KEYS = {"latency": "latency_cycles", "energy": "energy_pj", "edp": "edp"}


def weighted(a: float) -> str:
    """The objective latency**(1 - a) * energy**a."""
    return f"weighted:{float(a):g}"


def energy_weight(objective: str) -> float | None:
    """a of `weighted:<a>`; None for the named objectives."""
    if objective.startswith("weighted:"):
        return float(objective.split(":", 1)[1])
    return None


def check(objective: str) -> str:
    a = None
    try:
        a = energy_weight(objective)
    except ValueError:
        pass
    if objective in OBJECTIVES or (a is not None and 0.0 <= a <= 1.0):
        return objective
    raise ValueError(f"objective must be one of {OBJECTIVES} or 'weighted:<a>' with a in "
                     f"[0, 1], got {objective!r}")


def _get(cost, key):
    return cost[key] if isinstance(cost, dict) else getattr(cost, key)


def value(objective: str, cost, xp=np):
    """The raw objective of every placement of a scored batch."""
    a = energy_weight(objective)
    if a is None:
        return _get(cost, _KEYS[objective])
    lat, en = _get(cost, "latency_cycles"), _get(cost, "energy_pj")
    return xp.exp((1.0 - a) * xp.log(xp.maximum(lat, 1e-30)) + a * xp.log(xp.maximum(en, 1e-30)))


def penalized(objective: str, cost, xp=np):
    """The objective searches minimize: infeasible placements count INFEASIBLE_PENALTY times."""
    v = value(objective, cost, xp)
    return xp.where(_get(cost, "feasible"), v, v * INFEASIBLE_PENALTY)


def log_weights(objective: str) -> tuple[float, float]:
    """(w_lat, w_en): log objective = w_lat * log(latency) + w_en * log(energy) + a constant
    (EDP = latency x energy / clock). Strategies take these as data, so one compiled step
    serves every objective."""
    a = energy_weight(objective)
    if a is not None:
        return 1.0 - a, a
    return {"latency": (1.0, 0.0), "energy": (0.0, 1.0), "edp": (1.0, 1.0)}[objective]


def log_fitness(weights, cost, seg_end, xp=np):
    """(fitness [B], layers of infeasible segments [B, L] bool), what stochastic strategies
    rank by: the log objective (`weights` from log_weights), plus log(INFEASIBLE_PENALTY) if
    infeasible and again for every infeasible segment beyond the first. It orders feasible
    placements, and feasible against infeasible ones, exactly as `penalized` does; among
    infeasible ones it prefers fewer infeasible segments, a slope towards feasibility on deep
    networks where almost no random placement fits. The log makes it scale-free across
    models (a temperature is a relative change)."""
    lat, en = _get(cost, "latency_cycles"), _get(cost, "energy_pj")
    v = (weights[0] * xp.log(xp.maximum(lat, 1e-30)) + weights[1] * xp.log(xp.maximum(en, 1e-30))
         + math.log(INFEASIBLE_PENALTY) * (1 - xp.asarray(_get(cost, "feasible"), lat.dtype)))
    seg_ok = xp.asarray(_get(cost, "seg_feasible")).astype(bool).reshape(seg_end.shape)
    n_bad = (~seg_ok).sum(-1)
    L = seg_end.shape[-1]
    pos = xp.where(seg_end, xp.arange(L), -1)
    last = (np.maximum.accumulate(pos, axis=-1) if xp is np
            else __import__("jax").lax.cummax(pos, axis=pos.ndim - 1))
    start = xp.concatenate([xp.zeros(seg_end.shape[:-1] + (1,), last.dtype), last[..., :-1] + 1], -1)
    bad = ~xp.take_along_axis(seg_ok, start, -1)
    fit = v + math.log(INFEASIBLE_PENALTY) * xp.maximum(n_bad - 1, 0)
    return fit, bad

"""The latency-vs-energy Pareto front of a space (`objective=pareto`, explore.py).

An `Archive` watches every batch a search scores (`Problem.on_batch`) and keeps the feasible
placements no other scored placement beats on both latency and energy, so the front is built
from everything the searches scored, not only from their best placements. explore.py fills it
by searching the flexible space at several energy weights a (objective `weighted:<a>` =
latency**(1 - a) * energy**a; dp, being additive, minimizes latency + lam * energy with lam
the tangent of that objective at the latency-best placement), all seeded with the latency
search's best.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeorgan_jax.placement import Placement


def nondominated(lat: np.ndarray, en: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both (ties: the first kept), by latency."""
    order = np.lexsort((en, lat))
    best_en = np.minimum.accumulate(en[order])
    keep = np.concatenate([[True], en[order][1:] < best_en[:-1]])
    return order[keep]


class Archive:
    """Non-dominated feasible (latency, energy) points scored so far, with their placements."""

    def __init__(self):
        self.lat = np.zeros(0)
        self.en = np.zeros(0)
        self.fields: list[np.ndarray] = [np.zeros((0, 0), np.int32)] * 5
        self.cost: dict = {}

    def __len__(self) -> int:
        return len(self.lat)

    def add(self, p: Placement, c: dict) -> None:
        ok = np.asarray(c["feasible"], bool).reshape(-1)
        if not ok.any():
            return
        lat = np.asarray(c["latency_cycles"], np.float64).reshape(-1)[ok]
        en = np.asarray(c["energy_pj"], np.float64).reshape(-1)[ok]
        keep = nondominated(lat, en)
        L = np.shape(p.seg_end)[-1]
        f = [np.asarray(x).reshape(-1, L)[ok][keep] for x in p.fields()]
        cost = {k: np.asarray(v).reshape(-1)[ok][keep] for k, v in c.items() if np.ndim(v) == 1}
        if len(self):
            lat, en = np.concatenate([self.lat, lat[keep]]), np.concatenate([self.en, en[keep]])
            f = [np.concatenate([a, b]) for a, b in zip(self.fields, f)]
            cost = {k: np.concatenate([self.cost[k], cost[k]]) for k in cost}
        else:
            lat, en = lat[keep], en[keep]
        k = nondominated(lat, en)
        self.lat, self.en = lat[k], en[k]
        self.fields = [a[k] for a in f]
        self.cost = {n: v[k] for n, v in cost.items()}

    def placements(self) -> list[Placement]:
        return [Placement(*(a[i] for a in self.fields)) for i in range(len(self))]

    def points(self) -> list[dict]:
        """The front by increasing latency: latency, energy and EDP of each point."""
        return [{"latency_cycles": float(self.lat[i]), "energy_pj": float(self.en[i]),
                 "edp": float(self.cost["edp"][i])} for i in range(len(self))]

    def costs(self) -> list[dict]:
        return [{k: v[i] for k, v in self.cost.items()} for i in range(len(self))]


def plot(doc: dict, path: Path) -> None:
    """One panel per model: the flexible space's front, the best placement of each energy
    weight, and the layer-by-layer and chunked baselines (latency-searched) for reference."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = {k: v for k, v in doc["models"].items() if v.get("pareto")}
    if not models:
        return
    n = len(models)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
    for ax, (name, m) in zip(axes.flat, models.items()):
        pts = m["pareto"]
        lat = np.array([p["latency_cycles"] for p in pts]) / 1e6
        en = np.array([p["energy_pj"] for p in pts]) / 1e6
        ax.step(lat, en, where="post", color="C0", lw=1)
        ax.plot(lat, en, "o", ms=3, color="C0", label=f"flexible front ({len(pts)})")
        for w in m.get("pareto_weights", []):
            ax.plot(w["latency_cycles"] / 1e6, w["energy_pj"] / 1e6, "x", color="C3", ms=6)
        ax.plot([], [], "x", color="C3", label="best per energy weight")
        for base, mk, col in (("layer_by_layer", "s", "C7"), ("chunked", "^", "C2")):
            b = m[base]
            ax.plot(b["latency_cycles"] / 1e6, b["energy_pj"] / 1e6, mk, color=col, label=base)
        if len(lat) and lat.max() > 4 * lat.min():
            ax.set_xscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("latency (Mcycles)")
        ax.set_ylabel("energy (uJ)")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"{doc['hardware']}, search={doc['search']}: latency vs energy", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

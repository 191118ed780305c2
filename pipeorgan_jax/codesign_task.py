"""task=codesign: a sweep of shape-free hardware points, every model searched at every point
with the batched dp of codesign.py; results, a table and the study's plots (docs/codesign.md)."""
from __future__ import annotations

import csv
import io
import itertools
import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from pipeorgan_jax.codesign import SPACES, codesign_model
from pipeorgan_jax.config import to_dict
from pipeorgan_jax.hardware import Hardware
from pipeorgan_jax.hwbatch import default_value
from pipeorgan_jax.hwkeys import CONFIG_PATH, INTEGER_KEYS
from pipeorgan_jax.runfiles import write_json_atomic, write_text_atomic
from pipeorgan_jax.workload import Model

log = logging.getLogger(__name__)


def hardware_points(cd, hw: Hardware, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(keys, absolute values [H, k], multiples of the default [H, k]) from the config: the
    full grid, or `random_points` log-uniform draws within each key's grid range."""
    grid = {str(k): [float(v) for v in vals] for k, vals in zip(cd["keys"], cd["values"])}
    keys = list(grid)
    base = np.asarray([default_value(hw, k) for k in keys])
    if cd.random_points > 0:
        rng = np.random.default_rng(seed)
        cols = []
        for k in keys:
            lo, hi = min(grid[k]), max(grid[k])
            u = rng.random(cd.random_points)
            cols.append(np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))) if lo > 0
                        else lo + u * (hi - lo))
        given = np.stack(cols, 1)
    else:
        given = np.asarray(list(itertools.product(*(grid[k] for k in keys))), np.float64)
    absolute = given * base if cd.relative else given
    for j, k in enumerate(keys):
        if k in INTEGER_KEYS:
            absolute[:, j] = np.maximum(np.round(absolute[:, j]), 1 if k != "router_latency_cycles" else 0)
    rel = np.divide(absolute, base, out=np.full_like(absolute, np.nan), where=base != 0)
    return keys, absolute, rel


def group_of(groups, name: str) -> str:
    for g, ms in (groups or {}).items():
        if name in list(ms):
            return str(g)
    return "other"


def _gmean(x, axis=0):
    return np.exp(np.mean(np.log(np.asarray(x, np.float64)), axis=axis))


def run_codesign(cfg: DictConfig, hw: Hardware, models: list[Model], out: Path) -> int:
    cd = cfg.codesign
    objective = getattr(cfg.objective, "value", str(cfg.objective))
    keys, values, rel = hardware_points(cd, hw, cfg.seed)
    H = len(values)
    s = cfg.search
    log.info(f"codesign: {H} hardware points over {', '.join(keys)} on '{hw.name}', "
             f"{len(models)} models; batched dp (dp_batch_size={s.dp_batch_size}, "
             f"dp_rounds={s.dp_rounds}, max_depth={s.max_depth})")
    doc = {"hardware": hw.name, "objective": objective, "config": to_dict(cfg),
           "keys": keys, "config_keys": [f"hardware.{CONFIG_PATH[k]}" for k in keys],
           "defaults": {k: default_value(hw, k) for k in keys},
           "points": [{k: float(v) for k, v in zip(keys, row)} for row in values],
           "relative": [{k: float(v) for k, v in zip(keys, row)} for row in rel],
           "search": "per-point dp, candidate batches scored at every point in one call "
                     "(docs/codesign.md)",
           "models": {}, "groups": {}, "errors": {}}
    t0 = time.perf_counter()
    for i, m in enumerate(models):
        log.info(f"[{i + 1}/{len(models)}] {m.name} ({len(m.layers)} layers) at {H} points")
        try:
            r = codesign_model(m, hw, keys, values, objective, s.max_depth, s.dp_batch_size,
                               s.dp_rounds, s.mutation_rate, cfg.seed, cd.max_rows)
        except Exception as e:  # one model failing must not lose the others
            msg = f"{type(e).__name__}: {' '.join(str(e).split())}"
            log.error(f"error: {m.name}: {msg}")
            doc["errors"][m.name] = msg
            continue
        r.pop("_placements")
        r["group"] = group_of(cd.groups, m.name)
        r["points_per_s"] = H / max(r["score_seconds"], 1e-9)
        doc["models"][m.name] = r
        _summarize(doc, H)
        write_json_atomic(out / "codesign.json", doc)
    doc["wall_seconds"] = time.perf_counter() - t0
    _summarize(doc, H)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "codesign.json", doc)
    write_text_atomic(out / "codesign.csv", _csv(doc))
    log.info("\n" + table(doc))
    if cfg.plots and doc["models"]:
        plots = out / "plots"
        plots.mkdir(exist_ok=True)
        for fn, name in ((speedup_png, "codesign_speedup.png"), (pareto_png, "codesign_pareto.png")):
            try:
                fn(doc, plots / name)
            except Exception as e:
                log.warning(f"warning: {name} not drawn: {type(e).__name__}: {e}")
    log.info(f"\nresults: {out / 'codesign.json'}, {out / 'codesign.csv'}"
             + (f", plots in {out / 'plots'}" if cfg.plots else ""))
    if doc["errors"]:
        log.error(f"error: {len(doc['errors'])} of {len(models)} models failed")
        return 1
    return 0


def _summarize(doc: dict, H: int) -> None:
    """Per group and over all models, per point: geomean speedups, flexible latency, energy."""
    names: dict[str, list] = {}
    for name, r in doc["models"].items():
        names.setdefault(r["group"], []).append(name)
    names["all"] = list(doc["models"])
    doc["groups"] = {}
    for g, ns in names.items():
        rs = [doc["models"][n] for n in ns]
        doc["groups"][g] = {
            "models": ns,
            "geomean_speedup_vs_chunked": _gmean([r["speedup_vs_chunked"] for r in rs]),
            "geomean_speedup_vs_layer_by_layer": _gmean([r["speedup_vs_layer_by_layer"] for r in rs]),
            "geomean_flexible_latency_cycles": _gmean([r["flexible"]["latency_cycles"] for r in rs]),
            "geomean_flexible_energy_pj": _gmean([r["flexible"]["energy_pj"] for r in rs])}
    allg = doc["groups"]["all"]
    lat, en = allg["geomean_flexible_latency_cycles"], allg["geomean_flexible_energy_pj"]
    doc["pareto"] = pareto_mask(lat, en)
    rows = sum(r["rows_scored"] for r in doc["models"].values())
    secs = sum(r["score_seconds"] for r in doc["models"].values())
    doc["rows_scored"] = rows
    doc["score_seconds"] = secs
    doc["points_x_placements_per_s"] = rows / max(secs, 1e-9)


def pareto_mask(lat, en) -> list[bool]:
    """Points no other point beats on both latency and energy (ties kept)."""
    lat, en = np.asarray(lat), np.asarray(en)
    dom = ((lat[None, :] <= lat[:, None]) & (en[None, :] <= en[:, None])
           & ((lat[None, :] < lat[:, None]) | (en[None, :] < en[:, None])))
    return [not d for d in dom.any(1)]


def _csv(doc: dict) -> str:
    keys = doc["keys"]
    cols = (["point"] + [f"hardware.{CONFIG_PATH[k]}" for k in keys] + [f"{k}_x_default" for k in keys]
            + ["model", "group"] + [f"{s}_{q}" for s in SPACES for q in ("latency_cycles", "energy_pj", "feasible")]
            + ["speedup_vs_chunked", "speedup_vs_layer_by_layer", "pareto"])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for h, (pt, rl) in enumerate(zip(doc["points"], doc["relative"])):
        for name, r in doc["models"].items():
            w.writerow([h] + [pt[k] for k in keys] + [rl[k] for k in keys] + [name, r["group"]]
                       + [_v(r[s][q][h]) for s in SPACES for q in ("latency_cycles", "energy_pj", "feasible")]
                       + [_v(r["speedup_vs_chunked"][h]), _v(r["speedup_vs_layer_by_layer"][h]),
                          doc["pareto"][h]])
    return buf.getvalue()


def _v(x):
    x = x.item() if hasattr(x, "item") else x
    return "" if isinstance(x, float) and not np.isfinite(x) else x


def table(doc: dict) -> str:
    keys = doc["keys"]
    groups = [g for g in doc["groups"] if g != "all"] + ["all"]
    head = ("  ".join(f"{k[:14]:>14s}" for k in keys) + "  "
            + "  ".join(f"{g[:13] + ' xch/xLbL':>22s}" for g in groups) + "  flex Mcyc  flex uJ  pareto")
    lines = ["geomean speedup of flexible over chunked / over layer-by-layer per model group "
             "(hardware values: multiple of default)", head, "-" * len(head)]
    for h, rl in enumerate(doc["relative"]):
        cells = "  ".join(f"{rl[k]:>14.4g}" for k in keys)
        sp = "  ".join(f"{doc['groups'][g]['geomean_speedup_vs_chunked'][h]:>10.3f}/"
                       f"{doc['groups'][g]['geomean_speedup_vs_layer_by_layer'][h]:<11.3f}"
                       for g in groups)
        a = doc["groups"]["all"]
        lines.append(f"{cells}  {sp}  {a['geomean_flexible_latency_cycles'][h] / 1e6:9.4f}  "
                     f"{a['geomean_flexible_energy_pj'][h] / 1e6:7.2f}  "
                     f"{'*' if doc['pareto'][h] else ''}")
    lines.append(f"{doc['rows_scored']:,} (point, placement) pairs scored in "
                 f"{doc['score_seconds']:.1f} s: {doc['points_x_placements_per_s']:,.0f}/s")
    return "\n".join(lines)


def _slice(doc: dict, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Points along key j with every other key at its default (multiple 1), sorted; when the
    sweep has no such points (random sweeps), all points."""
    keys = doc["keys"]
    rel = np.asarray([[r[k] for k in keys] for r in doc["relative"]])
    others = np.delete(rel, j, axis=1)
    sel = np.all(np.isclose(others, 1.0), axis=1) if others.size else np.ones(len(rel), bool)
    if not sel.any():
        sel = np.ones(len(rel), bool)
    idx = np.flatnonzero(sel)
    idx = idx[np.argsort(rel[idx, j])]
    return idx, rel[idx, j]


def speedup_png(doc: dict, path: Path) -> None:
    """Speedup of flexible over chunked (solid) and over layer-by-layer (dashed) per group,
    along each swept key with the others at their default."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = doc["keys"]
    groups = [g for g in doc["groups"] if g != "all"]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab10")
    for j, (ax, k) in enumerate(zip(axes[0], keys)):
        idx, x = _slice(doc, j)
        for gi, g in enumerate(groups):
            G = doc["groups"][g]
            ax.plot(x, np.asarray(G["geomean_speedup_vs_chunked"])[idx], "-o", ms=3,
                    color=cmap(gi), label=f"{g}: x chunked")
            ax.plot(x, np.asarray(G["geomean_speedup_vs_layer_by_layer"])[idx], "--s", ms=3,
                    color=cmap(gi), label=f"{g}: x layer-by-layer")
        ax.set_xscale("log", base=2)
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.set_xlabel(f"{k} (x default {doc['defaults'][k]:g})")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("geomean speedup of flexible")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(f"flexible pipelining vs hardware ({doc['hardware']}), per model group", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def pareto_png(doc: dict, path: Path) -> None:
    """Every hardware point's geomean flexible latency and energy over the models; the Pareto
    front joined, the default point marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    a = doc["groups"]["all"]
    lat = np.asarray(a["geomean_flexible_latency_cycles"]) / 1e6
    en = np.asarray(a["geomean_flexible_energy_pj"]) / 1e6
    front = np.asarray(doc["pareto"])
    keys = doc["keys"]
    rel = np.asarray([[r[k] for k in keys] for r in doc["relative"]])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    c = np.log2(rel[:, 0]) if len(keys) else None
    sc = ax.scatter(lat, en, c=c, cmap="viridis", s=18)
    if len(keys):
        fig.colorbar(sc, ax=ax, label=f"log2 {keys[0]} (x default)")
    o = np.argsort(lat[front])
    ax.plot(lat[front][o], en[front][o], "r-", lw=1, label="Pareto front")
    d = np.flatnonzero(np.all(np.isclose(rel, 1.0), axis=1))
    if len(d):
        ax.plot(lat[d], en[d], "k*", ms=10, label="default")
    ax.set_xlabel("geomean flexible latency (Mcycles)")
    ax.set_ylabel("geomean flexible energy (uJ)")
    ax.legend(fontsize=7)
    ax.set_title(f"hardware points on {doc['hardware']} ({', '.join(keys)})", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

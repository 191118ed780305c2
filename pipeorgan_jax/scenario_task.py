"""task=scenario: the XR-bench usage scenarios scored for layer-by-layer, chunked and flexible
placements (scenario.py has the sharing model and the scores; docs/scenarios.md)."""
from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from pipeorgan_jax.config import to_dict
from pipeorgan_jax.cost import Scorer
from pipeorgan_jax.counting import Tally
from pipeorgan_jax.hardware import Hardware
from pipeorgan_jax.runfiles import safe_filename, write_json_atomic, write_text_atomic
from pipeorgan_jax.scenario import Scenario, horizon_ms, load_scenarios, play, timing_from_cost
from pipeorgan_jax.search import Problem, baseline_spaces, run_strategy
from pipeorgan_jax.loading import load_model
from pipeorgan_jax.workload import Model

SPACES = ("layer_by_layer", "chunked", "flexible")
log = logging.getLogger(__name__)


def best_placements(model: Model, hw: Hardware, cfg: DictConfig, devices=None) -> dict:
    """The three nested spaces searched as the main job does (baselines dp, flexible with the
    configured strategy, each seeded with the previous space's best)."""
    objective = getattr(cfg.objective, "value", str(cfg.objective))
    s = cfg.search
    scorer = Scorer(model, hw, max_depth=s.max_depth, devices=devices,
                    backend=getattr(cfg.backend, "value", cfg.backend))
    spaces = baseline_spaces(s.max_depth)
    tally, seeds, out = Tally(), [], {}
    for name in SPACES:
        prob = Problem(scorer, objective, spaces[name], seed=cfg.seed, tally=tally)
        strategy = getattr(s.strategy, "value", s.strategy) if name == "flexible" else "dp"
        res = run_strategy(strategy, prob, s, seed_placements=seeds)
        best, cost = res.best, res.cost
        if out:
            prev = out[SPACES[SPACES.index(name) - 1]]
            pv = prob.objective_of({k: np.asarray([v]) for k, v in prev["cost"].items()})[0]
            if pv < prob.objective_of({k: np.asarray([v]) for k, v in cost.items()})[0]:
                best, cost = prev["placement"], prev["cost"]
        out[name] = {"placement": best, "cost": cost}
        seeds = [best]
    return out


def run_scenarios(cfg: DictConfig, hw: Hardware, models: list[Model], out: Path,
                  devices=None) -> int:
    scenarios = load_scenarios(cfg.workload)
    by_name = {m.name: m for m in models}
    for sc in scenarios:
        for m in sc.models:
            if m.name not in by_name:
                by_name[m.name] = load_model(m.name)
    needed = [n for n in by_name if any(n == m.name for sc in scenarios for m in sc.models)]
    sc_cfg = cfg.scenario
    doc = {"hardware": hw.name, "clock_ghz": hw.clock_ghz, "config": to_dict(cfg),
           "sharing_model": "time-multiplexed at segment boundaries, EDF, cascades honoured, "
                            "triggers on a deterministic pattern at their rate (docs/scenarios.md)",
           "models": {}, "scenarios": {}}
    timings: dict[str, dict] = {}
    for i, name in enumerate(needed):
        log.info(f"[{i + 1}/{len(needed)}] searching {name}")
        found = best_placements(by_name[name], hw, cfg, devices)
        timings[name] = {}
        doc["models"][name] = {}
        for space, r in found.items():
            c = r["cost"]
            tm = timing_from_cost(c["seg_latency"], float(c["latency_cycles"]),
                                  float(c["energy_pj"]), hw.clock_ghz)
            timings[name][space] = tm
            doc["models"][name][space] = {
                "latency_cycles": float(c["latency_cycles"]), "latency_ms": tm.latency_ms,
                "energy_mj": tm.energy_mj, "feasible": bool(c["feasible"]),
                "segment_ms": list(tm.segment_ms)}
    played_all = {}
    for sc in scenarios:
        h = (sc_cfg.horizon_s * 1000.0 if sc_cfg.horizon_s > 0
             else horizon_ms(sc, sc_cfg.max_horizon_s))
        entry = {"models": [m.name for m in sc.models], "horizon_ms": h}
        for space in SPACES:
            res, played = play(sc, {m.name: timings[m.name][space] for m in sc.models}, h,
                               sc_cfg.rt_k_per_ms, sc_cfg.energy_max_mj)
            entry[space] = res
            played_all[(sc.name, space)] = played
        doc["scenarios"][sc.name] = entry
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "scenarios.json", doc)
    write_text_atomic(out / "scenarios.csv", _csv(doc))
    log.info("\n" + table(doc))
    if cfg.plots:
        plots = out / "plots"
        plots.mkdir(exist_ok=True)
        for sc in scenarios:
            try:
                timeline_png(sc, {s: played_all[(sc.name, s)] for s in SPACES},
                             plots / f"timeline_{safe_filename(sc.name)}.png")
            except Exception as e:  # a plot never costs the results
                log.warning(f"warning: timeline of {sc.name} not drawn: {type(e).__name__}: {e}")
    log.info(f"\nresults: {out / 'scenarios.json'}, {out / 'scenarios.csv'}"
             + (f", timelines in {out / 'plots'}" if cfg.plots else ""))
    return 0


def _csv(doc: dict) -> str:
    cols = ["scenario", "placement", "scenario_score", "model", "fps", "depends_on",
            "trigger_probability", "latency_ms", "deadline_ms", "segments", "frames", "dropped",
            "worst_response_ms", "worst_slack_ms", "rt_score", "energy_mj", "energy_score",
            "ux_score", "score"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for sn, e in doc["scenarios"].items():
        for space in SPACES:
            for mn, v in e[space]["models"].items():
                row = {"scenario": sn, "placement": space, "scenario_score": e[space]["score"],
                       "model": mn, **v}
                w.writerow(["" if row.get(c) is None else row.get(c) for c in cols])
    return buf.getvalue()


def table(doc: dict) -> str:
    lines = []
    for sn, e in doc["scenarios"].items():
        sc = {s: e[s]["score"] for s in SPACES}
        lines.append(f"{sn} (horizon {e['horizon_ms']:.1f} ms): score LbL {sc['layer_by_layer']:.3f}"
                     f"  chunked {sc['chunked']:.3f}  flexible {sc['flexible']:.3f}")
        head = (f"  {'model':24s} {'fps':>5s} {'deadline':>8s} {'LbL ms':>8s} {'chunk ms':>8s} "
                f"{'flex ms':>8s} {'rt':>6s} {'E mJ':>8s} {'E score':>8s} {'UX':>5s} {'score':>6s}")
        lines += [head, "  " + "-" * (len(head) - 2)]
        for mn in e["models"]:
            f = e["flexible"]["models"][mn]
            lat = [e[s]["models"][mn]["latency_ms"] for s in SPACES]
            lines.append(f"  {mn:24s} {f['fps']:5.0f} {f['deadline_ms']:8.2f} {lat[0]:8.3f} "
                         f"{lat[1]:8.3f} {lat[2]:8.3f} {f['rt_score']:6.4f} {f['energy_mj']:8.4f} "
                         f"{f['energy_score']:8.6f} {f['ux_score']:5.2f} {f['score']:6.4f}")
        lines.append("")
    lines.append("(rt, E, UX and score columns: flexible placements; scenario score = 100 x "
                 "mean model score, XR-bench v0.1)")
    return "\n".join(lines)


def timeline_png(sc: Scenario, played: dict, path: Path) -> None:
    """One frame period of the slowest model (every model's frames in it), one lane per
    model, a panel per placement kind; ticks mark deadlines, x a dropped frame."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    window = max(m.period_ms for m in sc.models)
    names = [m.name for m in sc.models]
    colors = plt.get_cmap("tab10")
    fig, axes = plt.subplots(len(played), 1, figsize=(10, 1.0 + 0.45 * len(names) * len(played)),
                             sharex=True, squeeze=False)
    for ax, (space, frames) in zip(axes[:, 0], played.items()):
        for k, name in enumerate(names):
            mine = [f for f in frames if f.model == name and f.release_ms < window]
            bars = [(s, min(e, window) - s) for f in mine for s, e, _ in f.runs if s < window]
            if bars:  # one call per lane: thousands of segments draw at once
                ax.broken_barh(bars, (k - 0.35, 0.7), facecolors=colors(k % 10),
                               edgecolors="none")
            dl = [f.deadline_ms for f in mine if f.deadline_ms <= window]
            ax.vlines(dl, k - 0.45, k + 0.45, color="black", lw=0.8)
            drop = [f.deadline_ms for f in mine if f.dropped]
            if drop:
                ax.plot(drop, [k] * len(drop), "rx")
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.invert_yaxis()
        ax.set_title(space, fontsize=8, loc="left")
    axes[-1, 0].set_xlim(0, window)
    axes[-1, 0].set_xlabel("time (ms); bars: segments run, ticks: deadlines")
    fig.suptitle(f"{sc.name}: one frame period of the slowest model ({window:.1f} ms)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""The main job: per model, baselines vs searched placements, table, results files, plots."""
from __future__ import annotations

import math
import sys
import time
import traceback
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from pipeorgan_jax import reference
from pipeorgan_jax.app import write_json_atomic
from pipeorgan_jax.cost import Scorer
from pipeorgan_jax.hardware import Hardware
from pipeorgan_jax.placement import decode, segments
from pipeorgan_jax.search import Problem, baseline_spaces, run_strategy
from pipeorgan_jax.workload import Model

BASELINES = ("layer_by_layer", "chunked", "flexible")
# prior-work-like chunked pipelining (blocked chunks, 16-row/32-row/whole tiles, no reduction
# split): an extra column, labelled as such, never the headline (DESIGN.md section 7)
EXTRA = ("chunked_coarse",)


class NoFeasiblePlacement(RuntimeError):
    pass


def binding_constraint(model: Model, hw: Hardware) -> str:
    """Name the layer and constraint that no placement can satisfy (layer-by-layer, 1-row
    tiles, the whole array, the best partition: the loosest setting the space offers)."""
    P = hw.n_pes
    worst, worst_need = None, 0.0
    for l in model.layers:
        k, yo, xo = l.out_shape
        db = model.data_bytes
        yin = l.in_shapes[0][1]
        rows_in = yin if l.rows_full else min(yin, math.ceil(yin / yo) + max(0, l.kernel_rows - l.stride_rows))
        I = l.in_act_elems * db if l.rows_full else rows_in * sum(c * x for c, _, x in l.in_shapes) * db
        O = k * xo * db
        # loosest setting: weights re-streamed, the best partition's tile buffers
        need = min(2 * (I / P + O / P), 2 * (I + O / P), 2 * (I / hw.n_units + O / P))
        if need > hw.pe_sram_bytes and need > worst_need:
            worst, worst_need = l.name, need
    if worst is None:
        return "PE SRAM capacity"
    return (f"PE SRAM capacity: layer '{worst}' needs {worst_need:,.0f} bytes per PE even with "
            f"1-row tiles on all {P} PEs (PE SRAM is {hw.pe_sram_bytes:,} bytes)")


def explore_model(model: Model, hw: Hardware, cfg: DictConfig, plots_dir: Path | None) -> dict:
    objective = cfg.objective.value if hasattr(cfg.objective, "value") else str(cfg.objective)
    s = cfg.search
    scorer = Scorer(model, hw, max_depth=s.max_depth)
    spaces = baseline_spaces(s.max_depth)
    out: dict = {}
    seeds = []
    results = {}
    t_model = time.perf_counter()
    for name in EXTRA + BASELINES:
        prob = Problem(scorer, objective, spaces[name], seed=cfg.seed)
        strategy = getattr(s.strategy, "value", s.strategy) if name == "flexible" else "dp"
        res = run_strategy(strategy, prob, s, seed_placements=seeds if name in BASELINES else [])
        if name in BASELINES[1:]:
            prev = results[BASELINES[BASELINES.index(name) - 1]]
            # The spaces nest, so the previous space's best is a candidate here too.
            prev_v = prob.objective_of({k: np.asarray([v]) for k, v in prev.cost.items()})[0]
            if prev_v < prob.objective_of({k: np.asarray([v]) for k, v in res.cost.items()})[0]:
                res.best, res.cost = prev.best, prev.cost
        results[name] = res
        seeds = [res.best]
    if not results["flexible"].cost["feasible"]:
        # the flexible space contains the others: nothing found fits this hardware
        raise NoFeasiblePlacement(
            f"{model.name}: no feasible placement on '{hw.name}': {binding_constraint(model, hw)}")
    names = [l.name for l in model.layers]
    for name, res in results.items():
        entry = {"latency_cycles": float(res.cost["latency_cycles"]),
                 "energy_pj": float(res.cost["energy_pj"]),
                 "edp": float(res.cost["edp"]),
                 "feasible": bool(res.cost["feasible"]),
                 "energy_breakdown_pj": {k: float(res.cost[f"energy_{k}_pj"])
                                         for k in ("mac", "pe_sram", "noc", "glb", "dram")},
                 "segments": len(segments(res.best.seg_end)),
                 "placements_scored": res.placements_scored,
                 "search_seconds": res.seconds}
        if name == "flexible":
            entry["placement"] = decode(res.best, names, hw.n_units)
        out[name] = entry
    fl, ch, lb = out["flexible"], out["chunked"], out["layer_by_layer"]
    out["speedup_vs_chunked"] = ch["latency_cycles"] / fl["latency_cycles"]
    out["speedup_vs_layer_by_layer"] = lb["latency_cycles"] / fl["latency_cycles"]
    out["energy_ratio_vs_chunked"] = fl["energy_pj"] / ch["energy_pj"]
    out["speedup_vs_chunked_coarse"] = out["chunked_coarse"]["latency_cycles"] / fl["latency_cycles"]
    out["placements_scored"] = sum(r.placements_scored for r in results.values())
    out["search_seconds"] = sum(r.seconds for r in results.values())
    out["strategy"] = getattr(s.strategy, "value", s.strategy)
    out["history"] = {k: [list(h) for h in r.history] for k, r in results.items()}
    if cfg.reference_check:
        ref = reference.evaluate(model, hw, results["flexible"].best)
        out["reference_latency_cycles"] = float(ref["latency_cycles"])
        out["reference_energy_pj"] = float(ref["energy_pj"])
        out["reference_latency_diff"] = ref["latency_cycles"] / fl["latency_cycles"] - 1.0
    out["wall_seconds"] = time.perf_counter() - t_model
    if plots_dir is not None:
        from pipeorgan_jax import report
        report.segment_map_png(model, hw, results["flexible"].best,
                               plots_dir / f"pe_map_{model.name}.png")
    return out


def explore(cfg: DictConfig, hw: Hardware, models: list[Model], out: Path) -> int:
    from pipeorgan_jax import report
    objective = cfg.objective.value if hasattr(cfg.objective, "value") else str(cfg.objective)
    out.mkdir(parents=True, exist_ok=True)
    plots_dir = out / "plots" if cfg.plots else None
    if plots_dir:
        plots_dir.mkdir(exist_ok=True)
    doc = {"hardware": hw.name, "search": getattr(cfg.search.strategy, "value", cfg.search.strategy),
           "objective": objective,
           "workload": cfg.workload.name, "models": {}, "errors": {}}
    failed = 0
    t0 = time.perf_counter()
    bar = _progress(models, cfg.progress)
    for m in bar:
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(m.name)
        try:
            doc["models"][m.name] = explore_model(m, hw, cfg, plots_dir)
        except NoFeasiblePlacement as e:
            print(f"error: {e}", file=sys.stderr)
            doc["errors"][m.name] = str(e)
            failed += 1
        except Exception as e:  # one model failing must not lose the others' results
            print(f"error: {m.name}: {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc(limit=3, file=sys.stderr)
            doc["errors"][m.name] = f"{type(e).__name__}: {e}"
            failed += 1
        _finish(doc)
        write_json_atomic(out / "results.json", doc)
    doc["wall_seconds"] = time.perf_counter() - t0
    write_json_atomic(out / "results.json", doc)
    report.write_csv(doc, out / "results.csv")
    print()
    print(report.table(doc))
    if plots_dir and doc["models"]:
        report.plots(doc, plots_dir)
    print(f"\nresults: {out / 'results.json'}, {out / 'results.csv'}"
          + (f", plots in {plots_dir}" if plots_dir else ""))
    return 1 if failed and not doc["models"] else 0


def _finish(doc: dict) -> None:
    sp = [v["speedup_vs_chunked"] for v in doc["models"].values()]
    sl = [v["speedup_vs_layer_by_layer"] for v in doc["models"].values()]
    if sp:
        doc["geomean_speedup_vs_chunked"] = float(np.exp(np.mean(np.log(sp))))
        doc["geomean_speedup_vs_layer_by_layer"] = float(np.exp(np.mean(np.log(sl))))
        doc["geomean_speedup_vs_chunked_coarse"] = float(np.exp(np.mean(np.log(
            [v["speedup_vs_chunked_coarse"] for v in doc["models"].values()]))))


def _progress(items, enabled: bool):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
        return tqdm(items, desc="models", unit="model", file=sys.stderr)
    except ImportError:
        return items

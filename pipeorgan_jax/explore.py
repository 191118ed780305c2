"""The main job: per model, baselines vs searched placements, table, results files, plots."""
from __future__ import annotations

import logging
import math
import sys
import time
import traceback
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from pipeorgan_jax import placement_io, reference
from pipeorgan_jax.app import write_json_atomic
from pipeorgan_jax.config import to_dict
from pipeorgan_jax.cost import Scorer
from pipeorgan_jax.counting import Tally
from pipeorgan_jax.hardware import Hardware
from pipeorgan_jax.placement import decode, segments
from pipeorgan_jax.search import Problem, baseline_spaces, run_strategy
from pipeorgan_jax.workload import Model

BASELINES = ("layer_by_layer", "chunked", "flexible")
log = logging.getLogger(__name__)


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


def explore_model(model: Model, hw: Hardware, cfg: DictConfig, plots_dir: Path | None,
                  devices=None, placements_dir: Path | None = None) -> dict:
    objective = cfg.objective.value if hasattr(cfg.objective, "value") else str(cfg.objective)
    s = cfg.search
    scorer = Scorer(model, hw, max_depth=s.max_depth, devices=devices)
    spaces = baseline_spaces(s.max_depth)
    out: dict = {}
    seeds = []
    results = {}
    tally = Tally()  # shared: a seed handed from one space to the next counts once
    t_model = time.perf_counter()
    for name in BASELINES:
        prob = Problem(scorer, objective, spaces[name], seed=cfg.seed, tally=tally)
        strategy = getattr(s.strategy, "value", s.strategy) if name == "flexible" else "dp"
        with _search_bar(f"{model.name} {name}", cfg.progress,
                         _expected_batches(strategy, s, spaces[name], hw.n_units)) as bar:
            prob.on_step = bar
            res = run_strategy(strategy, prob, s, seed_placements=seeds)
        if name != "layer_by_layer" and results:
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
                 "rows_scored": res.rows_scored,
                 "segment_evaluations": res.segment_evaluations,
                 "distinct_segments": res.distinct_segments,
                 "search_seconds": res.seconds,
                 "compile_seconds": res.compile_seconds}
        if name == "flexible":
            entry["placement"] = decode(res.best, names, hw.n_units)
        out[name] = entry
    fl, ch, lb = out["flexible"], out["chunked"], out["layer_by_layer"]
    out["speedup_vs_chunked"] = ch["latency_cycles"] / fl["latency_cycles"]
    out["speedup_vs_layer_by_layer"] = lb["latency_cycles"] / fl["latency_cycles"]
    out["energy_ratio_vs_chunked"] = fl["energy_pj"] / ch["energy_pj"]
    out["placements_scored"] = tally.placements
    out["rows_scored"] = tally.rows
    out["segment_evaluations"] = tally.segment_evaluations
    out["distinct_segments"] = tally.distinct_segments
    out["search_seconds"] = sum(r.seconds for r in results.values())
    out["compile_seconds"] = sum(r.compile_seconds for r in results.values())
    out["strategy"] = getattr(s.strategy, "value", s.strategy)
    out["history"] = {k: [list(h) for h in r.history] for k, r in results.items()}
    if cfg.reference_check:
        ref = reference.evaluate(model, hw, results["flexible"].best)
        out["reference_latency_cycles"] = float(ref["latency_cycles"])
        out["reference_energy_pj"] = float(ref["energy_pj"])
        out["reference_latency_diff"] = ref["latency_cycles"] / fl["latency_cycles"] - 1.0
    out["wall_seconds"] = time.perf_counter() - t_model
    if placements_dir is not None:
        placement_io.save(placements_dir / f"{model.name}.json", placement_io.to_doc(
            model, {k: r.best for k, r in results.items()}, {k: r.cost for k, r in results.items()},
            to_dict(cfg.hardware), hw.n_units, objective=objective, strategy=out["strategy"],
            seed=cfg.seed))
    if plots_dir is not None:
        from pipeorgan_jax import report
        report.segment_map_png(model, hw, results["flexible"].best,
                               plots_dir / f"pe_map_{model.name}.png")
    return out


def explore(cfg: DictConfig, hw: Hardware, models: list[Model], out: Path, devices=None,
            cache: str | None = None) -> tuple[int, float | None]:
    """Run the main job; returns (exit code, the run's objective: the geometric mean over the
    models of the flexible placement's objective, inf if a model found no feasible one)."""
    from pipeorgan_jax import report
    from pipeorgan_jax.app import hydra_overrides
    objective = cfg.objective.value if hasattr(cfg.objective, "value") else str(cfg.objective)
    out.mkdir(parents=True, exist_ok=True)
    plots_dir = out / "plots" if cfg.plots else None
    if plots_dir:
        plots_dir.mkdir(exist_ok=True)
    doc = {"hardware": hw.name, "search": getattr(cfg.search.strategy, "value", cfg.search.strategy),
           "objective": objective, "seed": cfg.seed,
           "workload": cfg.workload.name, "config": to_dict(cfg), "overrides": hydra_overrides(),
           "devices": [str(d) for d in (devices or [])], "compilation_cache": cache,
           "models": {}, "errors": {}}
    failed = 0
    t0 = time.perf_counter()
    bar = _progress(models, cfg.progress)
    for m in bar:
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(m.name)
        try:
            doc["models"][m.name] = explore_model(m, hw, cfg, plots_dir, devices, out / "placements")
        except NoFeasiblePlacement as e:
            log.error(f"error: {e}")
            doc["errors"][m.name] = str(e)
            failed += 1
        except Exception as e:  # one model failing must not lose the others' results
            log.error(f"error: {m.name}: {type(e).__name__}: {e}\n"
                      + "".join(traceback.format_exc(limit=3)))
            doc["errors"][m.name] = f"{type(e).__name__}: {e}"
            failed += 1
        _finish(doc)
        write_json_atomic(out / "results.json", doc)
    doc["wall_seconds"] = time.perf_counter() - t0
    key = {"latency": "latency_cycles", "energy": "energy_pj", "edp": "edp"}[objective]
    vals = [v["flexible"][key] for v in doc["models"].values()]
    value = float("inf") if failed or not vals else float(np.exp(np.mean(np.log(vals))))
    doc["objective_value"] = value
    write_json_atomic(out / "results.json", doc)
    report.write_csv(doc, out / "results.csv")
    log.info("\n" + report.table(doc))
    if plots_dir and doc["models"]:
        report.plots(doc, plots_dir)
    log.info(f"\nresults: {out / 'results.json'}, {out / 'results.csv'}, best placements in "
             f"{out / 'placements'}" + (f", plots in {plots_dir}" if plots_dir else ""))
    return (1 if failed and not doc["models"] else 0), value


def _finish(doc: dict) -> None:
    sp = [v["speedup_vs_chunked"] for v in doc["models"].values()]
    sl = [v["speedup_vs_layer_by_layer"] for v in doc["models"].values()]
    if sp:
        doc["geomean_speedup_vs_chunked"] = float(np.exp(np.mean(np.log(sp))))
        doc["geomean_speedup_vs_layer_by_layer"] = float(np.exp(np.mean(np.log(sl))))


def _expected_batches(strategy: str, s, space, n_units: int) -> int | None:
    """About how many batches a search scores (the progress bar's length): dp scores one per
    depth and offset per round, a stochastic strategy one per iteration."""
    if strategy == "dp":
        D = max(1, min(space.max_depth, n_units))
        return max(1, s.dp_rounds) * D * (D + 1) // 2
    if strategy in ("random", "evolutionary", "annealing", "gradient"):
        return s.iterations
    return None


class _search_bar:
    """A progress bar over one search's scored batches (dp tilings, stochastic iterations),
    with the best objective so far; a no-op when progress is off."""

    def __init__(self, desc: str, enabled: bool, total: int | None = None):
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(desc=desc, total=total, unit="batch", leave=False, file=sys.stderr,
                            position=1)

    def __enter__(self):
        return self

    def __call__(self, prob) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(best=f"{prob.best_value:.4g}", placements=prob.scored,
                                 refresh=False)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def _progress(items, enabled: bool):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
        return tqdm(items, desc="models", unit="model", file=sys.stderr)
    except ImportError:
        return items

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
from pipeorgan_jax.config import hydra_overrides, to_dict
from pipeorgan_jax.cost import Scorer
from pipeorgan_jax.counting import Tally
from pipeorgan_jax.interrupt import Interrupted, pending
from pipeorgan_jax.runfiles import safe_filename, write_json_atomic
from pipeorgan_jax.hardware import Hardware
from pipeorgan_jax.placement import decode, segments
from pipeorgan_jax.objective import weighted
from pipeorgan_jax.pareto import Archive
from pipeorgan_jax.search import Problem, baseline_spaces, dp, run_strategy
from pipeorgan_jax.strategies import SpaceTooLarge
from pipeorgan_jax.workload import Model

BASELINES = ("layer_by_layer", "chunked", "flexible")
# prior-work-like chunked pipelining (blocked chunks, 16-row/32-row/whole tiles, no reduction
# split): an extra column, labelled as such, never the headline (DESIGN.md section 7)
EXTRA = ("chunked_coarse",)
log = logging.getLogger(__name__)


class NoFeasiblePlacement(RuntimeError):
    pass


class NonPhysicalCost(RuntimeError):
    """A cost came out non-finite or negative: never written as a number."""


def check_physical(model_name: str, entry: dict, what: str) -> None:
    """Latency > 0, energies and EDP >= 0, all finite (float32 overflow shows up as inf)."""
    vals = {"latency_cycles": entry["latency_cycles"], "energy_pj": entry["energy_pj"],
            "edp": entry["edp"], **{f"energy_{k}_pj": v
                                    for k, v in entry["energy_breakdown_pj"].items()}}
    for k, v in vals.items():
        if not math.isfinite(v) or v < 0 or (k == "latency_cycles" and v <= 0):
            raise NonPhysicalCost(
                f"{model_name}: {what} {k} = {v!r} is not a finite non-negative number; the "
                "workload or hardware values exceed what float32 holds (see "
                "docs/workload_format.md, 'Limits')")


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
    pareto = objective == "pareto"
    if pareto:  # the headline searches minimize latency; the front comes after them
        objective = "latency"
    s = cfg.search
    scorer = Scorer(model, hw, max_depth=s.max_depth, devices=devices,
                    backend=getattr(cfg.backend, "value", cfg.backend))
    archive = Archive() if pareto else None
    spaces = baseline_spaces(s.max_depth)
    out: dict = {}
    seeds = []
    results = {}
    tally = Tally()  # shared: a seed handed from one space to the next counts once
    t_model = time.perf_counter()
    chosen = getattr(s.strategy, "value", s.strategy)
    for name in EXTRA + BASELINES:
        prob = Problem(scorer, objective, spaces[name], seed=cfg.seed, tally=tally)
        # every space is searched by the chosen strategy (baselines searched as hard as the
        # flexible space); exhaustive, which refuses large spaces, leaves the baselines to
        # dp, optimal on them for an additive objective
        strategy = chosen if name == "flexible" or chosen != "exhaustive" else "dp"
        with _search_bar(f"{model.name} {name}", cfg.progress,
                         _expected_batches(strategy, s, spaces[name], hw.n_units)) as bar:
            prob.on_step = bar
            if name == "flexible" and archive is not None:
                prob.on_batch = archive.add
            res = run_strategy(strategy, prob, s,
                               seed_placements=seeds if name in BASELINES else [])
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
    if archive is not None:
        for r in results.values():  # the baselines' bests are flexible placements too
            archive.add(r.best, {k: np.asarray([v]) for k, v in r.cost.items()})
        by_weight = pareto_search(scorer, cfg, spaces["flexible"], results["flexible"], tally,
                                  archive, model.name)
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
                 "strategy": res.strategy,
                 "search_seconds": res.seconds,
                 "compile_seconds": res.compile_seconds}
        check_physical(model.name, entry, name)
        if name == "flexible":
            entry["placement"] = decode(res.best, names, hw.n_units)
        out[name] = entry
    fl, ch, lb = out["flexible"], out["chunked"], out["layer_by_layer"]
    out["speedup_vs_chunked"] = ch["latency_cycles"] / fl["latency_cycles"]
    out["speedup_vs_layer_by_layer"] = lb["latency_cycles"] / fl["latency_cycles"]
    out["energy_ratio_vs_chunked"] = fl["energy_pj"] / ch["energy_pj"]
    out["speedup_vs_chunked_coarse"] = out["chunked_coarse"]["latency_cycles"] / fl["latency_cycles"]
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
        ref_lat, ref_en = float(ref["latency_cycles"]), float(ref["energy_pj"])
        if not (math.isfinite(ref_lat) and ref_lat > 0 and math.isfinite(ref_en) and ref_en >= 0):
            raise NonPhysicalCost(f"{model.name}: the exact reference gives latency {ref_lat!r}"
                                  f" cycles, energy {ref_en!r} pJ for the best placement")
        out["reference_latency_cycles"] = ref_lat
        out["reference_energy_pj"] = ref_en
        # the one signed number: the reference's relative difference from the batch model
        out["reference_latency_diff"] = ref_lat / fl["latency_cycles"] - 1.0
    if archive is not None:
        out["pareto"] = archive.points()
        out["pareto_weights"] = by_weight
        out["placements_scored"] = tally.placements
        out["rows_scored"] = tally.rows
        out["segment_evaluations"] = tally.segment_evaluations
        out["distinct_segments"] = tally.distinct_segments
    out["wall_seconds"] = time.perf_counter() - t_model
    if placements_dir is not None and archive is not None:
        front = {f"pareto_{i}": p for i, p in enumerate(archive.placements())}
        placement_io.save(placements_dir / f"{safe_filename(model.name)}_pareto.json",
                          placement_io.to_doc(model, front, dict(zip(front, archive.costs())),
                                              to_dict(cfg.hardware), hw.n_units,
                                              objective="pareto", strategy=out["strategy"],
                                              seed=cfg.seed))
    if placements_dir is not None:
        placement_io.save(placements_dir / f"{safe_filename(model.name)}.json", placement_io.to_doc(
            model, {k: r.best for k, r in results.items()}, {k: r.cost for k, r in results.items()},
            to_dict(cfg.hardware), hw.n_units, objective=objective, strategy=out["strategy"],
            seed=cfg.seed))
    out["_best"] = results["flexible"].best  # for the PE map; dropped before saving
    return out


def pareto_search(scorer, cfg, space, latency_best, tally, archive: Archive, model_name: str,
                  weights=None) -> list[dict]:
    """The flexible space searched again at energy weights a in (0, 1] (objective
    weighted:<a>; a = 1 is energy), every scored placement into `archive`; each search is
    seeded with the latency search's best and the previous weight's. dp, additive, minimizes
    latency + lam * energy, lam = a / (1 - a) * latency0 / energy0: the tangent of the
    weighted objective at the latency-best placement (latency0, energy0). Returns the best
    placement's latency and energy per weight (a = 0: the latency search)."""
    s = cfg.search
    strategy = getattr(s.strategy, "value", s.strategy)
    n = max(2, int(getattr(s, "pareto_points", 5)))
    weights = [i / (n - 1) for i in range(1, n)] if weights is None else weights
    lat0, en0 = (float(latency_best.cost[k]) for k in ("latency_cycles", "energy_pj"))
    found = [{"energy_weight": 0.0, "latency_cycles": lat0, "energy_pj": en0}]
    seeds = [latency_best.best]
    for a in weights:
        prob = Problem(scorer, "energy" if a >= 1 else weighted(a), space, seed=cfg.seed,
                       tally=tally)
        prob.on_batch = archive.add
        with _search_bar(f"{model_name} pareto a={a:.2f}", cfg.progress,
                         _expected_batches(strategy, s, space, scorer.hw.n_units)) as bar:
            prob.on_step = bar
            if strategy == "dp":
                lam = None if a >= 1 else a / (1 - a) * lat0 / max(en0, 1e-30)
                r = dp(prob, s.dp_batch_size, max(1, s.dp_rounds), s.time_budget_s, seeds,
                       lam=lam, mutation=s.mutation_rate)
            else:
                r = run_strategy(strategy, prob, s, seed_placements=seeds)
        found.append({"energy_weight": a, "latency_cycles": float(r.cost["latency_cycles"]),
                      "energy_pj": float(r.cost["energy_pj"])})
        seeds = [latency_best.best, r.best]
    return found


def pe_map_path(plots_dir: Path, model_name: str) -> Path:
    """Any model name (`a/b`, `..`, spaces) becomes one safe file in plots/."""
    return plots_dir / f"pe_map_{safe_filename(model_name)}.png"


def explore(cfg: DictConfig, hw: Hardware, models: list[Model], out: Path, devices=None,
            cache: str | None = None) -> tuple[int, float | None]:
    """Every model in turn; results.json and results.csv are rewritten (atomically) after each,
    so an interrupted or killed run keeps every model it finished. Returns (exit code, the
    run's objective: the geometric mean over the models of the flexible placement's objective,
    inf if a model failed); the exit code is 1 when any model failed (the others still run and
    are saved), with a one-line summary."""
    from pipeorgan_jax import report
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
    t0 = time.perf_counter()

    def save():
        _finish(doc)
        doc["wall_seconds"] = time.perf_counter() - t0
        write_json_atomic(out / "results.json", doc)
        report.write_csv(doc, out / "results.csv")

    bar = _progress(models, cfg.progress)
    try:
        for m in bar:
            pending()
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(m.name)
            best = None
            try:
                res = explore_model(m, hw, cfg, plots_dir, devices, out / "placements")
                best = res.pop("_best")
                doc["models"][m.name] = res
            except (NoFeasiblePlacement, NonPhysicalCost) as e:
                _fail(doc, m.name, str(e), None)
            except SpaceTooLarge as e:
                _fail(doc, m.name, f"{m.name}: {e}", None)
            except Exception as e:  # one model failing must not lose the others' results
                _fail(doc, m.name, f"{m.name}: {type(e).__name__}: {e}", out)
            save()
            if best is not None and plots_dir is not None:
                _plot_safely(lambda: report.segment_map_png(m, hw, best,
                                                            pe_map_path(plots_dir, m.name)),
                             f"PE map of {m.name}")
        pending()
    except Interrupted as e:
        doc["interrupted"] = e.name
        save()
        if hasattr(bar, "close"):
            bar.close()
        e.detail = (f"{len(doc['models'])} of {len(models)} models saved in "
                    f"{out / 'results.json'} and results.csv")
        raise
    key = {"latency": "latency_cycles", "energy": "energy_pj", "edp": "edp",
           "pareto": "latency_cycles"}[objective]
    vals = [v["flexible"][key] for v in doc["models"].values()]
    value = float("inf") if doc["errors"] or not vals else float(np.exp(np.mean(np.log(vals))))
    doc["objective_value"] = value
    save()
    log.info("\n" + report.table(doc))
    if plots_dir and doc["models"]:
        _plot_safely(lambda: report.plots(doc, plots_dir), "summary plots")
        if objective == "pareto":
            from pipeorgan_jax import pareto
            _plot_safely(lambda: pareto.plot(doc, plots_dir / "pareto.png"), "Pareto fronts")
    log.info(f"\nresults: {out / 'results.json'}, {out / 'results.csv'}, best placements in "
             f"{out / 'placements'}" + (f", plots in {plots_dir}" if plots_dir else ""))
    if doc["errors"]:
        why = "; ".join(f"{k}: {_short(v, k)}" for k, v in doc["errors"].items())
        log.error(f"error: {len(doc['errors'])} of {len(models)} models failed ({why})")
        return 1, value
    return 0, value


def _fail(doc: dict, name: str, msg: str, out: Path | None) -> None:
    """One line on stderr; for an unexpected exception the traceback goes to errors.log."""
    msg = " ".join(msg.split())
    if out is not None:
        with open(out / "errors.log", "a") as f:
            f.write(f"--- {name}\n{traceback.format_exc()}\n")
        msg += f" (traceback in {out / 'errors.log'})"
    log.error(f"error: {msg}")
    doc["errors"][name] = msg


def _short(msg: str, name: str, n: int = 120) -> str:
    msg = msg[len(name) + 2:] if msg.startswith(name + ": ") else msg
    return msg if len(msg) <= n else msg[:n - 3] + "..."


def _plot_safely(draw, what: str) -> None:
    """A plot that fails (a name matplotlib rejects, a full disk) costs the plot, never results."""
    try:
        draw()
    except Exception as e:
        log.warning(f"warning: {what} not drawn: {type(e).__name__}: {' '.join(str(e).split())}")


def _finish(doc: dict) -> None:
    sp = [v["speedup_vs_chunked"] for v in doc["models"].values()]
    sl = [v["speedup_vs_layer_by_layer"] for v in doc["models"].values()]
    if sp:
        doc["geomean_speedup_vs_chunked"] = float(np.exp(np.mean(np.log(sp))))
        doc["geomean_speedup_vs_layer_by_layer"] = float(np.exp(np.mean(np.log(sl))))
        doc["geomean_speedup_vs_chunked_coarse"] = float(np.exp(np.mean(np.log(
            [v["speedup_vs_chunked_coarse"] for v in doc["models"].values()]))))


def _expected_batches(strategy: str, s, space, n_units: int) -> int | None:
    """About how many batches a search scores (the progress bar's length): a stochastic
    strategy on whole placements one per iteration; unknown (None) for those that score
    segments (dp, gradient, the decomposed strategies: calls per generation depend on the
    plan's rows)."""
    if strategy in ("random", "evolutionary", "annealing", "reinforce", "es") \
            and not getattr(s, "decompose", True):
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

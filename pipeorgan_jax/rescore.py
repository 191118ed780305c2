"""task=score: re-score a saved best placement (placements/<model>.json from an explore run)
with the batch model on any hardware, the exact reference alongside.

    python -m pipeorgan_jax task=score placement=outputs/<date>/<time>/placements/KD_res8_narrow.json hardware=xrbench_8k
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from pipeorgan_jax import placement_io, reference
from pipeorgan_jax.runfiles import write_json_atomic
from pipeorgan_jax.config import to_dict
from pipeorgan_jax.hardware import Hardware, HardwareError
from pipeorgan_jax.placement import segments, validate
from pipeorgan_jax.workload import WorkloadError
from pipeorgan_jax.loading import load_model

log = logging.getLogger(__name__)
OBJECTIVE_KEY = {"latency": "latency_cycles", "energy": "energy_pj", "edp": "edp",
                 "pareto": "latency_cycles"}  # pareto: the headline is latency


def _model_for(cfg: DictConfig, doc: dict):
    """The workload's model when one is given, else the one the file names (its path, or the
    built-in of that name when the path is not on this machine)."""
    if cfg.get("workload") is not None and cfg.workload.models:
        return load_model(cfg.workload.models[0])
    path = doc.get("model_path")
    return load_model(path if path and Path(path).exists() else doc["model"])


def score_file(cfg: DictConfig, out: Path) -> tuple[int, float | None]:
    from pipeorgan_jax.cost import REASONS, Scorer
    from pipeorgan_jax.devices import DeviceError, select_devices
    if not cfg.get("placement"):
        log.error("error: task=score needs placement=<placements/<model>.json from an explore run>")
        return 2, None
    try:
        doc, placements = placement_io.load(cfg.placement)
        model = _model_for(cfg, doc)
        hw = Hardware.from_config(cfg.hardware)
        devices = select_devices(getattr(cfg.device, "value", cfg.device))
    except (placement_io.PlacementFileError, WorkloadError, HardwareError, DeviceError) as e:
        log.error(f"error: {e}")
        return 1, None
    names = [l.name for l in model.layers]
    if names != doc["layers"]:
        log.error(f"error: {cfg.placement}: its {len(doc['layers'])} layers are not those of "
                  f"model {model.name} ({len(names)} layers)")
        return 1, None
    objective = getattr(cfg.objective, "value", cfg.objective)
    deepest = max(b - a + 1 for p in placements.values() for a, b in segments(p.seg_end))
    scorer = Scorer(model, hw, max_depth=max(deepest, cfg.search.max_depth), devices=devices,
                    backend=getattr(cfg.backend, "value", cfg.backend))
    result = {"placement_file": str(cfg.placement), "model": model.name, "hardware": hw.name,
              "hardware_config": to_dict(cfg.hardware), "objective": objective,
              "found_on": doc.get("hardware"), "spaces": {}}
    head = (f"{'space':16s} {'Mcycles':>10s} {'uJ':>9s} {'feasible':>8s} {'ref Mcycles':>11s} "
            f"{'ref uJ':>9s} {'ref diff':>8s}  found with (Mcycles on {doc['hardware'].get('name')})")
    lines = [f"model={model.name} hardware={hw.name} placement={cfg.placement}", head,
             "-" * len(head)]
    for space, p in placements.items():
        c = scorer(p)
        e = {k: float(np.asarray(v)[0]) for k, v in c.items() if np.ndim(v) == 1}
        e["feasible"] = bool(c["feasible"][0])
        e["reason"] = REASONS[int(c["reason"][0])]
        if cfg.reference_check and not validate(p, len(names), hw.n_units):
            ref = reference.evaluate(model, hw, p)
            e["reference_latency_cycles"] = float(ref["latency_cycles"])
            e["reference_energy_pj"] = float(ref["energy_pj"])
        result["spaces"][space] = e
        was = doc["spaces"][space]["cost"].get("latency_cycles", float("nan"))
        rl, ren = e.get("reference_latency_cycles"), e.get("reference_energy_pj")
        ref_cols = ("-", "-", "-") if rl is None else (
            f"{rl / 1e6:.4f}", f"{ren / 1e6:.2f}", f"{(rl / e['latency_cycles'] - 1) * 100:.1f}%")
        lines.append(
            f"{space:16s} {e['latency_cycles'] / 1e6:10.4f} {e['energy_pj'] / 1e6:9.2f} "
            f"{str(e['feasible']):>8s} {ref_cols[0]:>11s} {ref_cols[1]:>9s} {ref_cols[2]:>8s}"
            f"  {was / 1e6:.4f}" + ("" if e["feasible"] else f"  infeasible: {e['reason']}"))
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "score.json", result)
    log.info("\n".join(lines))
    log.info(f"\nwrote {out / 'score.json'}")
    key = "flexible" if "flexible" in result["spaces"] else next(iter(result["spaces"]))
    return 0, result["spaces"][key][OBJECTIVE_KEY[objective]]

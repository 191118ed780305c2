"""The tasks behind the command line: plain Python around the jitted model."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from omegaconf import DictConfig

from pipeorgan_jax.hardware import Hardware, HardwareError
from pipeorgan_jax.paths import conf_dir
from pipeorgan_jax.workload import WorkloadError, load_model, summarize


def available_workloads() -> list[str]:
    return sorted(p.stem for p in (conf_dir() / "workload").glob("*.yaml"))


def run_dir() -> Path:
    try:
        from hydra.core.hydra_config import HydraConfig
        return Path(HydraConfig.get().runtime.output_dir)
    except Exception:  # called outside a Hydra run (tests, API)
        return Path(os.getcwd())


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON so that a reader never sees a half-written file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default))
    os.replace(tmp, path)


def _json_default(o):
    import numpy as np
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def run(cfg: DictConfig) -> int:
    import logging
    for noisy in ("jax", "jax._src.xla_bridge", "matplotlib", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if cfg.get("workload") is None:
        print("error: no workload given. Add one with +workload=<name>; available:",
              file=sys.stderr)
        for w in available_workloads():
            print(f"  {w}", file=sys.stderr)
        return 2
    try:
        hw = Hardware.from_config(cfg.hardware)
        models = [load_model(m, cfg.workload.get("onnx_unsupported", "error"))
                  for m in cfg.workload.models]
    except (WorkloadError, HardwareError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    task = cfg.task.value if hasattr(cfg.task, "value") else str(cfg.task)
    if task == "describe":
        return describe(models, run_dir())
    if task == "import":
        return write_workloads(models, run_dir())
    from pipeorgan_jax.explore import explore
    return explore(cfg, hw, models, run_dir())


def write_workloads(models, out: Path) -> int:
    """task=import: each model as a workload YAML file, to read, edit and version."""
    from pipeorgan_jax import workload_yaml
    out.mkdir(parents=True, exist_ok=True)
    for m in models:
        print(f"wrote {workload_yaml.write(m, out / f'{m.name}.yaml')}")
    return 0


def describe(models, out: Path) -> int:
    rows = []
    head = (f"{'model':24s} {'layers':>6s} {'edges':>6s} {'skip':>5s} {'GMACs':>8s} "
            f"{'weight MB':>9s} {'act MB':>8s} {'A/W min':>9s} {'median':>9s} {'max':>9s}")
    print(head)
    print("-" * len(head))
    doc = {"models": {}}
    for m in models:
        s = summarize(m)
        print(f"{m.name:24s} {s['layers']:6d} {s['edges']:6d} {s['skip_edges']:5d} "
              f"{s['macs'] / 1e9:8.3f} {s['weight_mb']:9.3f} {s['act_mb']:8.3f} "
              f"{s['aw_min']:9.3g} {s['aw_median']:9.3g} {s['aw_max']:9.3g}")
        doc["models"][m.name] = {
            "layers": s["layers"], "macs": s["macs"], "weight_elems": s["weight_elems"],
            "skip_edges": s["skip_edges"], "edges": s["edges"],
            "inferred_edges": s["inferred_edges"], "table": m.source.get("table"),
            "aw_min": s["aw_min"], "aw_median": s["aw_median"], "aw_max": s["aw_max"]}
        rows.append(s)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "workloads.json", doc)
    print(f"\nwrote {out / 'workloads.json'}")
    return 0

"""The tasks behind the command line: plain Python around the jitted model."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import NamedTuple, Optional

from omegaconf import DictConfig

from pipeorgan_jax.hardware import Hardware, HardwareError
from pipeorgan_jax.paths import conf_dir
from pipeorgan_jax.workload import WorkloadError, load_model, summarize

log = logging.getLogger(__name__)


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


class Outcome(NamedTuple):
    """A task's exit code and, for explore and score, the run's objective value (what a Hydra
    sweeper such as Optuna minimizes)."""
    code: int
    value: Optional[float] = None


def _value(x):
    return x.value if hasattr(x, "value") else str(x)


def compilation_cache_dir(cfg: DictConfig) -> Optional[str]:
    """The persistent compilation cache folder, or None when the cache is off."""
    if not cfg.get("compilation_cache", True):
        return None
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pipeorgan_jax" / "xla"
    return str(cfg.get("compilation_cache_dir") or os.environ.get("JAX_COMPILATION_CACHE_DIR")
               or default)


def setup_compilation_cache(folder: Optional[str]) -> None:
    import jax
    if folder is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", folder)
    # every compiled shape, however quick: a sweep compiles many small ones
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def run(cfg: DictConfig) -> Outcome:
    task = _value(cfg.task)
    if task == "collect":
        from pipeorgan_jax.collect import collect
        return Outcome(collect(cfg))
    cache = compilation_cache_dir(cfg)
    setup_compilation_cache(cache)
    if task == "score":
        from pipeorgan_jax.rescore import score_file
        return Outcome(*score_file(cfg, run_dir()))
    if cfg.get("workload") is None:
        log.error("error: no workload given. Add one with +workload=<name>; available:\n"
                  + "\n".join(f"  {w}" for w in available_workloads()))
        return Outcome(2)
    try:
        hw = Hardware.from_config(cfg.hardware)
        models = [load_model(m) for m in cfg.workload.models]
    except (WorkloadError, HardwareError) as e:
        log.error(f"error: {e}")
        return Outcome(1)
    if task == "describe":
        return Outcome(describe(models, run_dir()))
    from pipeorgan_jax.devices import DeviceError, select_devices
    try:
        devices = select_devices(_value(cfg.device))
    except DeviceError as e:
        log.error(f"error: {e}")
        return Outcome(1)
    from pipeorgan_jax.explore import explore
    return Outcome(*explore(cfg, hw, models, run_dir(), devices=devices, cache=cache))


def hydra_overrides() -> list[str]:
    """The command-line overrides of this job (a sweep's swept values included)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        return list(HydraConfig.get().overrides.task)
    except Exception:  # outside a Hydra run
        return []


def describe(models, out: Path) -> int:
    rows, lines = [], []
    head = (f"{'model':24s} {'layers':>6s} {'edges':>6s} {'skip':>5s} {'GMACs':>8s} "
            f"{'weight MB':>9s} {'act MB':>8s} {'A/W min':>9s} {'median':>9s} {'max':>9s}")
    lines += [head, "-" * len(head)]
    doc = {"models": {}}
    for m in models:
        s = summarize(m)
        lines.append(f"{m.name:24s} {s['layers']:6d} {s['edges']:6d} {s['skip_edges']:5d} "
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
    log.info("\n".join(lines))
    log.info(f"\nwrote {out / 'workloads.json'}")
    return 0

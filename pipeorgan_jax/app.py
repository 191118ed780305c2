"""The tasks behind the command line: plain Python around the jitted model."""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import NamedTuple, Optional

from omegaconf import DictConfig

from pipeorgan_jax.hardware import Hardware, HardwareError
from pipeorgan_jax.paths import conf_dir
from pipeorgan_jax.runfiles import RunFolderBusy, RunLock, write_json_atomic
from pipeorgan_jax.validate import ConfigError, check as check_config
from pipeorgan_jax.workload import WorkloadError, summarize
from pipeorgan_jax.loading import load_model

# Exit codes: 0 all models done, 1 bad input or a model failed, 2 usage (no workload),
# 75 run folder busy (EX_TEMPFAIL: try again), 128 + signal when interrupted.
EXIT_BUSY = 75
log = logging.getLogger(__name__)


def available_workloads() -> list[str]:
    return sorted(p.stem for p in (conf_dir() / "workload").glob("*.yaml"))


def run_dir() -> Path:
    try:
        from hydra.core.hydra_config import HydraConfig
        return Path(HydraConfig.get().runtime.output_dir)
    except Exception:  # called outside a Hydra run (tests, API)
        return Path(os.getcwd())


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
    for noisy in ("jax", "jax._src.xla_bridge", "matplotlib", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
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
        check_config(cfg)  # every numeric value against its range, before any work
        hw = Hardware.from_config(cfg.hardware)
        models = [load_model(m, cfg.workload.get("onnx_unsupported", "error"))
                  for m in cfg.workload.models]
        _check_unique_names(models)
    except (WorkloadError, HardwareError, ConfigError) as e:
        log.error(f"error: {e}")
        return Outcome(1)
    out = run_dir()
    try:
        lock = RunLock(out).acquire()  # one writer per run folder
    except RunFolderBusy as e:
        log.error(f"error: {e}")
        return Outcome(EXIT_BUSY)
    try:
        if task == "describe":
            return Outcome(describe(models, out))
        if task == "import":
            return Outcome(write_workloads(models, out))
        from pipeorgan_jax.devices import DeviceError, select_devices
        try:
            devices = select_devices(_value(cfg.device))
        except DeviceError as e:
            log.error(f"error: {e}")
            return Outcome(1)
        from pipeorgan_jax import interrupt
        with interrupt.deferred():  # jax's import must not be unwound halfway
            from pipeorgan_jax.explore import explore
        return Outcome(*explore(cfg, hw, models, out, devices=devices, cache=cache))
    finally:
        lock.release()


def _check_unique_names(models) -> None:
    """Results are keyed by model name: two models of one name would overwrite each other."""
    seen: dict[str, str] = {}
    for m in models:
        if m.name in seen:
            other = "listed twice" if seen[m.name] == m.path else f"also in {seen[m.name]}"
            raise WorkloadError(f"{m.path}: model name '{m.name}' is {other}; results are "
                                "keyed by model name, so names must be unique in one run")
        seen[m.name] = m.path


def write_workloads(models, out: Path) -> int:
    """task=import: each model as a workload YAML file, to read, edit and version."""
    from pipeorgan_jax import workload_yaml
    out.mkdir(parents=True, exist_ok=True)
    for m in models:
        log.info(f"wrote {workload_yaml.write(m, out / f'{m.name}.yaml')}")
    return 0


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
                     f"{_g(s['aw_min']):>9s} {_g(s['aw_median']):>9s} {_g(s['aw_max']):>9s}")
        # A/W does not apply to a model without weights: null in JSON, '-' in the table
        na = lambda v: v if math.isfinite(v) else None
        doc["models"][m.name] = {
            "layers": s["layers"], "macs": s["macs"], "weight_elems": s["weight_elems"],
            "skip_edges": s["skip_edges"], "edges": s["edges"],
            "inferred_edges": s["inferred_edges"], "table": m.source.get("table"),
            "aw_min": na(s["aw_min"]), "aw_median": na(s["aw_median"]),
            "aw_max": na(s["aw_max"])}
        rows.append(s)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "workloads.json", doc)
    log.info("\n".join(lines))
    log.info(f"\nwrote {out / 'workloads.json'}")
    return 0


def _g(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else "-"

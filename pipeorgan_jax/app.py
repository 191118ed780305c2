"""The tasks behind the command line: plain Python around the jitted model."""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from omegaconf import DictConfig

from pipeorgan_jax.hardware import Hardware, HardwareError
from pipeorgan_jax.paths import conf_dir
from pipeorgan_jax.runfiles import RunFolderBusy, RunLock, write_json_atomic  # noqa: F401
from pipeorgan_jax.validate import ConfigError, check as check_config
from pipeorgan_jax.workload import WorkloadError, load_model, summarize

# Exit codes: 0 all models done, 1 bad input or a model failed, 2 usage (no workload),
# 75 run folder busy (EX_TEMPFAIL: try again), 128 + signal when interrupted.
EXIT_BUSY = 75


def available_workloads() -> list[str]:
    return sorted(p.stem for p in (conf_dir() / "workload").glob("*.yaml"))


def run_dir() -> Path:
    try:
        from hydra.core.hydra_config import HydraConfig
        return Path(HydraConfig.get().runtime.output_dir)
    except Exception:  # called outside a Hydra run (tests, API)
        return Path(os.getcwd())


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
        check_config(cfg)  # every numeric value against its range, before any work
        hw = Hardware.from_config(cfg.hardware)
        models = [load_model(m, cfg.workload.get("onnx_unsupported", "error"))
                  for m in cfg.workload.models]
        _check_unique_names(models)
    except (WorkloadError, HardwareError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    task = cfg.task.value if hasattr(cfg.task, "value") else str(cfg.task)
    out = run_dir()
    try:
        lock = RunLock(out).acquire()  # one writer per run folder
    except RunFolderBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BUSY
    try:
        if task == "describe":
            return describe(models, out)
        if task == "import":
            return write_workloads(models, out)
        from pipeorgan_jax import interrupt
        with interrupt.deferred():  # jax's import must not be unwound halfway
            from pipeorgan_jax.explore import explore
        return explore(cfg, hw, models, out)
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
    print(f"\nwrote {out / 'workloads.json'}")
    return 0


def _g(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else "-"

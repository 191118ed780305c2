"""task=collect: a multirun folder (every job's results.json) gathered into one CSV, one
table and one set of plots, so that a sweep reads as one experiment.

    python -m pipeorgan_jax -m +workload=KD_res8_narrow hardware=small,medium search=dp,random
    python -m pipeorgan_jax task=collect sweep_dir=multirun/<date>/<time>
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from pipeorgan_jax import report

log = logging.getLogger(__name__)


def _job_order(path: Path):
    """Hydra numbers jobs 0, 1, ..., 10: sort by the numbers in the path, not as text."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def swept(overrides: list[list[str]]) -> list[str]:
    """Per job, the overrides that differ between jobs ("hardware=small search=dp")."""
    common = set.intersection(*(set(o) for o in overrides)) if overrides else set()
    return [" ".join(t for t in o if t not in common) or "(no override)" for o in overrides]


def gather(sweep_dir: Path) -> tuple[list[dict], list[str]]:
    """(one row per job and model, the jobs' errors as text), jobs in Hydra's order."""
    files = sorted(sweep_dir.rglob("results.json"), key=lambda p: _job_order(p.relative_to(sweep_dir)))
    docs = [(f, json.loads(f.read_text())) for f in files]
    labels = swept([d.get("overrides", []) for _, d in docs])
    rows, errors = [], []
    for (f, doc), label in zip(docs, labels):
        job = str(f.parent.relative_to(sweep_dir))
        for r in report.rows(doc):
            rows.append({"job": job, "swept": label, **r})
        errors += [f"job {job} ({label}): {m}: {e}" for m, e in doc.get("errors", {}).items()]
    _mark_pareto(rows)
    return rows, errors


def _mark_pareto(rows: list[dict]) -> None:
    """pareto = True where no other job's flexible placement of the same model has both lower
    (or equal) latency and energy, one of them strictly."""
    for r in rows:
        lat, en = r["flexible_latency_cycles"], r["flexible_energy_pj"]
        r["pareto"] = not any(
            o is not r and o["model"] == r["model"] and o["flexible_latency_cycles"] <= lat
            and o["flexible_energy_pj"] <= en
            and (o["flexible_latency_cycles"] < lat or o["flexible_energy_pj"] < en) for o in rows)


def table(rows: list[dict]) -> str:
    w = max([len(r["swept"]) for r in rows] + [5])
    head = (f"{'job':>4s} {'swept':{w}s} {'model':24s} {'flex Mcyc':>9s} {'flex uJ':>8s} "
            f"{'x chunk':>7s} {'x LbL':>6s} {'scored':>8s} {'search s':>8s} {'compile s':>9s} "
            f"{'pareto':>6s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['job']:>4s} {r['swept']:{w}s} {r['model']:24s} "
                     f"{r['flexible_latency_cycles'] / 1e6:9.4f} {r['flexible_energy_pj'] / 1e6:8.2f} "
                     f"{r['speedup_vs_chunked']:7.3f} {r['speedup_vs_layer_by_layer']:6.3f} "
                     f"{r['placements_scored']:8d} {r['search_seconds']:8.1f} "
                     f"{r['compile_seconds']:9.1f} {'*' if r['pareto'] else '':>6s}")
    return "\n".join(lines)


def plots(rows: list[dict], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    models = list(dict.fromkeys(r["model"] for r in rows))
    jobs = list(dict.fromkeys(r["swept"] for r in rows))
    x = np.arange(len(models))
    wbar = 0.8 / max(1, len(jobs))
    fig, ax = plt.subplots(figsize=(max(6, len(models) * (0.5 + 0.25 * len(jobs))), 4))
    for j, job in enumerate(jobs):
        by_model = {r["model"]: r["speedup_vs_chunked"] for r in rows if r["swept"] == job}
        ax.bar(x - 0.4 + (j + 0.5) * wbar, [by_model.get(m, np.nan) for m in models], wbar,
               label=job)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(x, models, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("speedup of flexible over chunked")
    ax.legend(fontsize=7)
    ax.set_title("speedup per model per swept value")
    fig.tight_layout()
    fig.savefig(out / "speedup.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    markers = "osD^v<>pPX*"
    for i, m in enumerate(models):
        rs = sorted((r for r in rows if r["model"] == m), key=lambda r: r["flexible_latency_cycles"])
        for r in rs:
            ax.scatter(r["flexible_latency_cycles"], r["flexible_energy_pj"] / 1e6, color=f"C{i % 10}",
                       marker=markers[jobs.index(r["swept"]) % len(markers)], s=30)
        front = [r for r in rs if r["pareto"]]
        ax.plot([r["flexible_latency_cycles"] for r in front],
                [r["flexible_energy_pj"] / 1e6 for r in front], color=f"C{i % 10}", lw=1, label=m)
    for j, job in enumerate(jobs):
        ax.scatter([], [], color="gray", marker=markers[j % len(markers)], label=job)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency (cycles), best flexible placement")
    ax.set_ylabel("energy (uJ)")
    ax.set_title("latency / energy across jobs (lines: Pareto front per model)")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "pareto.png", dpi=110)
    plt.close(fig)


def collect(cfg: DictConfig) -> int:
    if not cfg.get("sweep_dir"):
        log.error("error: task=collect needs sweep_dir=<a multirun folder, hydra.sweep.dir>")
        return 2
    sweep = Path(cfg.sweep_dir)
    if not sweep.is_dir():
        log.error(f"error: sweep_dir={sweep}: no such folder")
        return 1
    rows, errors = gather(sweep)
    if not rows:
        log.error(f"error: sweep_dir={sweep}: no results.json with results under it")
        return 1
    report.write_rows_csv(rows, sweep / "collected.csv")
    log.info(table(rows))
    for e in errors:
        log.warning(f"warning: {e}")
    if cfg.get("plots", True):
        plots(rows, sweep / "collected_plots")
    log.info(f"\ncollected {len(rows)} rows from {len(set(r['job'] for r in rows))} jobs: "
             f"{sweep / 'collected.csv'}"
             + (f", plots in {sweep / 'collected_plots'}" if cfg.get("plots", True) else ""))
    return 0

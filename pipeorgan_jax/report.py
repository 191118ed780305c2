"""Reporting: the terminal table, results.csv and the plots of a main-job run."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from pipeorgan_jax.organization import render_png, segment_map
from pipeorgan_jax.placement import GRAN_NAMES, ORGANIZATIONS, segments
from pipeorgan_jax.runfiles import write_text_atomic

COLUMNS = ("model", "lbl_latency_cycles", "chunked_latency_cycles", "flexible_latency_cycles",
           "lbl_energy_pj", "chunked_energy_pj", "flexible_energy_pj", "speedup_vs_chunked",
           "speedup_vs_layer_by_layer", "energy_ratio_vs_chunked", "chunked_coarse_latency_cycles",
           "speedup_vs_chunked_coarse", "reference_latency_cycles",
           "placements_scored", "segment_evaluations", "distinct_segments", "search_seconds",
           "compile_seconds")


def flatten(d: dict, prefix: str = "") -> dict:
    """{"hardware": {"noc": {"topology": "mesh"}}} -> {"hardware.noc.topology": "mesh"}; lists
    and other non-scalar leaves become JSON text so that a CSV cell holds them."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        elif isinstance(v, (list, tuple, dict)):
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out


def run_columns(doc: dict) -> dict:
    """What identifies a run in a sweep: the resolved config (hardware parameters, search,
    objective, seed, ...) and the Hydra overrides that made it."""
    cols = flatten({k: v for k, v in doc.get("config", {}).items() if k != "workload"})
    cols["workload"] = doc.get("workload")
    cols["overrides"] = " ".join(doc.get("overrides", []))
    return cols


def rows(doc: dict) -> list[dict]:
    out = []
    run = run_columns(doc)
    for name, v in doc["models"].items():
        out.append({
            "model": name,
            "lbl_latency_cycles": v["layer_by_layer"]["latency_cycles"],
            "chunked_latency_cycles": v["chunked"]["latency_cycles"],
            "flexible_latency_cycles": v["flexible"]["latency_cycles"],
            "lbl_energy_pj": v["layer_by_layer"]["energy_pj"],
            "chunked_energy_pj": v["chunked"]["energy_pj"],
            "flexible_energy_pj": v["flexible"]["energy_pj"],
            "speedup_vs_chunked": v["speedup_vs_chunked"],
            "speedup_vs_layer_by_layer": v["speedup_vs_layer_by_layer"],
            "energy_ratio_vs_chunked": v["energy_ratio_vs_chunked"],
            "chunked_coarse_latency_cycles": v["chunked_coarse"]["latency_cycles"],
            "speedup_vs_chunked_coarse": v["speedup_vs_chunked_coarse"],
            # None where it does not apply (reference_check=false): empty in CSV, '-' in the table
            "reference_latency_cycles": v.get("reference_latency_cycles"),
            "placements_scored": v["placements_scored"],
            "segment_evaluations": v.get("segment_evaluations", 0),
            "distinct_segments": v.get("distinct_segments", 0),
            "search_seconds": v["search_seconds"],
            "compile_seconds": v.get("compile_seconds", float("nan")),
            **run,
        })
    return out


def write_rows_csv(rs: list[dict], path: Path) -> None:
    """Rows (dicts) to CSV, atomically; the header is the union of their keys, in order; a
    value that does not apply (None, non-finite) is an empty cell."""
    fields = list(dict.fromkeys(k for r in rs for k in r)) or list(COLUMNS)
    f = io.StringIO()
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    for r in rs:
        w.writerow({k: ("" if v is None or (isinstance(v, float) and not math.isfinite(v))
                        else v) for k, v in r.items()})
    write_text_atomic(path, f.getvalue())


def _fmt(v, spec: str, width: int, scale: float = 1.0) -> str:
    """A number, or '-' right-aligned where it does not apply."""
    if v is None or not math.isfinite(v):
        return f"{'-':>{width}s}"
    return f"{v * scale:{width}{spec}}"


def write_csv(doc: dict, path: Path) -> None:
    write_rows_csv(rows(doc), path)


def table(doc: dict) -> str:
    head = (f"{'model':24s} {'LbL Mcyc':>9s} {'chunk Mcyc':>10s} {'flex Mcyc':>9s} "
            f"{'LbL uJ':>8s} {'chunk uJ':>8s} {'flex uJ':>8s} {'x chunk':>7s} {'x LbL':>6s} "
            f"{'x coarse*':>9s} {'ref diff':>8s} {'scored':>8s} {'seg evals':>10s} "
            f"{'distinct':>9s} {'search s':>8s} {'compile s':>9s}")
    lines = [f"hardware={doc['hardware']} search={doc['search']} objective={doc['objective']}",
             head, "-" * len(head)]
    for r in rows(doc):
        v = doc["models"][r["model"]]
        diff = v.get("reference_latency_diff")
        lines.append(
            f"{r['model']:24s} {r['lbl_latency_cycles'] / 1e6:9.4f} "
            f"{r['chunked_latency_cycles'] / 1e6:10.4f} {r['flexible_latency_cycles'] / 1e6:9.4f} "
            f"{r['lbl_energy_pj'] / 1e6:8.1f} {r['chunked_energy_pj'] / 1e6:8.1f} "
            f"{r['flexible_energy_pj'] / 1e6:8.1f} {r['speedup_vs_chunked']:7.3f} "
            f"{r['speedup_vs_layer_by_layer']:6.3f} {r['speedup_vs_chunked_coarse']:9.3f} "
            f"{_fmt(diff, '.1f', 7, 100)}{'%' if diff is not None else ' '} "
            f"{r['placements_scored']:8d} {r['segment_evaluations']:10d} "
            f"{r['distinct_segments']:9d} {r['search_seconds']:8.1f} {r['compile_seconds']:9.1f}")
    if "geomean_speedup_vs_chunked" in doc:
        lines.append("-" * len(head))
        lines.append(f"{'geomean':24s} {'':9s} {'':10s} {'':9s} {'':8s} {'':8s} {'':8s} "
                     f"{doc['geomean_speedup_vs_chunked']:7.3f} "
                     f"{doc['geomean_speedup_vs_layer_by_layer']:6.3f} "
                     f"{doc.get('geomean_speedup_vs_chunked_coarse', float('nan')):9.3f}")
        t = [doc["models"][m] for m in doc["models"]]
        lines.append(f"search {sum(v['search_seconds'] for v in t):.1f} s, compile "
                     f"{sum(v.get('compile_seconds', 0.0) for v in t):.1f} s "
                     f"(persistent compilation cache: {doc.get('compilation_cache') or 'off'})")
    lines.append("* x coarse: over prior-work-like chunked pipelining (blocked chunks, 16-row, "
                 "32-row or whole tiles, no reduction split); an extra column, not the headline")
    for name, err in doc.get("errors", {}).items():
        lines.append(f"{name:24s} FAILED: {err}")
    return "\n".join(lines)


def segment_map_png(model, hw, placement, path: Path) -> None:
    """PE -> layer map of the placement's largest (deepest) segment."""
    p = placement.numpy()
    segs = segments(p.seg_end)
    a, b = max(segs, key=lambda s: (s[1] - s[0], -s[0]))
    pe = segment_map(p.share[a:b + 1], int(p.org[b]), hw.rows, hw.cols, hw.unit_rows,
                     hw.unit_cols)
    names = [model.layers[i].name for i in range(a, b + 1)]
    render_png(pe, str(path), names,
               f"{model.name}: {ORGANIZATIONS[int(p.org[b])]}, {GRAN_NAMES[int(p.gran[b])]}, "
               f"layers {a}-{b}")


def plots(doc: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(doc["models"])
    x = np.arange(len(names))
    # speedup bars
    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.8), 4))
    sc = [doc["models"][n]["speedup_vs_chunked"] for n in names]
    sl = [doc["models"][n]["speedup_vs_layer_by_layer"] for n in names]
    ax.bar(x - 0.2, sl, 0.4, label="flexible vs layer-by-layer")
    ax.bar(x + 0.2, sc, 0.4, label="flexible vs chunked")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("speedup (latency)")
    ax.legend(fontsize=8)
    ax.set_title(f"{doc['hardware']}, search={doc['search']}, objective={doc['objective']}")
    fig.tight_layout()
    fig.savefig(out / "speedup.png", dpi=110)
    plt.close(fig)
    # energy breakdown bars: three bars per model (LbL, chunked, flexible), stacked by component
    comps = ("mac", "pe_sram", "noc", "glb", "dram")
    fig, ax = plt.subplots(figsize=(max(6, len(names) * 1.0), 4))
    ref = np.array([doc["models"][n]["layer_by_layer"]["energy_pj"] for n in names])
    for j, base in enumerate(("layer_by_layer", "chunked", "flexible")):
        bottom = np.zeros(len(names))
        for ci, c in enumerate(comps):
            vals = np.array([doc["models"][n][base]["energy_breakdown_pj"][c] for n in names]) / ref
            ax.bar(x + (j - 1) * 0.27, vals, 0.25, bottom=bottom, color=f"C{ci}",
                   label=c if j == 0 else None, edgecolor="k" if j == 2 else None, lw=0.3)
            bottom += vals
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("energy / layer-by-layer energy\nbars: LbL | chunked | flexible")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "energy_breakdown.png", dpi=110)
    plt.close(fig)
    # convergence of the flexible search
    fig, ax = plt.subplots(figsize=(6, 4))
    for n in names:
        h = np.array(doc["models"][n]["history"]["flexible"], float)
        if len(h):
            ax.plot(h[:, 0], h[:, 2] / h[-1, 2], label=n, lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("placements scored")
    ax.set_ylabel("best objective / final")
    ax.legend(fontsize=6, ncol=2)
    ax.set_title("flexible search convergence")
    fig.tight_layout()
    fig.savefig(out / "convergence.png", dpi=110)
    plt.close(fig)

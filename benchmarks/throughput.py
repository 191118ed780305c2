"""Throughput of the batch cost model: whole-network placements per second.

A model (default GE_FBNet_C) on a hardware (default xrbench_4k) at the main job's max_depth,
batch sizes 2^7 and up until a batch no longer fits (or --max-log2), on JAX's default device.
Per batch size: placements per second (best of --repeats timed calls after one warm-up; the
compile is timed apart), XLA's own flop and bytes accessed per placement (the compiled
function's cost analysis), and the achieved GFLOP/s.

`--baseline PATH` runs the same measurement, in the same command, on another checkout of the
project (e.g. a `git worktree` of the commit before a change) and prints the ratio per batch
size: these machines are noisy, so a speed is only reported against a baseline measured in the
same sitting. Each checkout is measured in its own subprocess, alternating, so neither gets a
warmer machine. `--reference-placements N` adds the exact reference's rate. Last line:
placements_per_s=<best of this checkout>.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs inside a subprocess with the checkout under test first on sys.path; only the API every
# version of the project has (Scorer, score_batch, sample) is used.
MEASURE = r"""
import json, sys, time
import jax, numpy as np
from pipeorgan_jax.cost import Scorer, score_batch
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.placement import sample
try:
    from pipeorgan_jax.loading import load_model
except ImportError:  # a checkout from before loading.py
    from pipeorgan_jax.workload import load_model
a = json.loads(sys.argv[1])
model, hw = load_model(a["model"]), load_hardware(a["hardware"])
L = len(model.layers)
t0 = time.perf_counter()
sc = Scorer(model, hw, max_depth=a["max_depth"])
setup = time.perf_counter() - t0


def lower(p, backend):
    if backend == "default":  # a checkout from before the backend option
        return score_batch.lower(sc.ma, sc.ha, p)
    return score_batch.lower(sc.ma, sc.ha, p, backend=backend)


for k in a["log2"]:
    B = 1 << k
    p = jax.device_put(sample(np.random.default_rng(k), L, B, max_depth=a["max_depth"]))
    for backend in a["backends"]:
        try:
            t0 = time.perf_counter()
            try:  # the options the project compiles with (cost.compiler_options), where it has them
                from pipeorgan_jax.cost import compiler_options
                opts = compiler_options() if a["xla_options"] == "project" else {}
            except ImportError:
                opts = {}
            compiled = lower(p, backend).compile(compiler_options=opts)
            t_compile = time.perf_counter() - t0
            # XLA counts a while loop's body once, so a chunked batch (lax.map over chunks of
            # 128) is costed from an unchunked compile of one chunk
            probe = compiled
            if B > 128 and hasattr(__import__("pipeorgan_jax.cost", fromlist=["x"]), "CPU_CHUNK"):
                probe = lower(jax.tree_util.tree_map(lambda x: x[:128], p), backend).compile(
                    compiler_options=opts)
            ca = probe.cost_analysis()
            ca = ca[0] if isinstance(ca, (list, tuple)) else ca
            nb = 128 if probe is not compiled else B
            jax.block_until_ready(compiled(sc.ma, sc.ha, p))
            dts = []
            for _ in range(a["repeats"]):
                t0 = time.perf_counter()
                jax.block_until_ready(compiled(sc.ma, sc.ha, p))
                dts.append(time.perf_counter() - t0)
        except Exception as e:  # out of memory: the previous size was the largest
            print(json.dumps({"B": B, "backend": backend,
                              "error": type(e).__name__ + ": " + str(e).splitlines()[0][:80]}))
            break
        print(json.dumps({"B": B, "backend": backend, "rate": B / min(dts),
                          "flop": float(ca.get("flops", float("nan"))) / nb,
                          "bytes": float(ca.get("bytes accessed", float("nan"))) / nb,
                          "compile_s": t_compile, "setup_s": setup,
                          "device": jax.devices()[0].platform + ":" + jax.devices()[0].device_kind}),
              flush=True)
"""


def measure(checkout: Path, args, log2: list[int], backends=("default",)) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(checkout) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    a = dict(model=args.model, hardware=args.hardware, max_depth=args.max_depth,
             repeats=args.repeats, log2=log2, xla_options=args.xla_options, backends=list(backends))
    out = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(a)], env=env, cwd=checkout,
                         capture_output=True, text=True)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode and not rows:
        sys.exit(f"measurement in {checkout} failed:\n{out.stderr[-2000:]}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="GE_FBNet_C")
    ap.add_argument("--hardware", default="xrbench_4k")
    ap.add_argument("--min-log2", type=int, default=7)
    ap.add_argument("--max-log2", type=int, default=14)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-depth", type=int, default=6, help="the main job's default (conf/search/dp.yaml)")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout of the project, measured in the same run")
    ap.add_argument("--reference-placements", type=int, default=0)
    ap.add_argument("--xla-options", choices=("project", "default"), default="project",
                    help="project: cost.compiler_options() as Scorer compiles (XLA:CPU loop "
                         "emitters, quicker to compile); default: XLA's defaults")
    ap.add_argument("--backend", choices=("xla", "kernel"), default="xla",
                    help="kernel: the fused C++ kernel (cost/kernel.py), measured with the XLA "
                         "path in the same process, alternating per batch size, and their ratio")
    args = ap.parse_args()
    if args.backend == "kernel":
        return compare_backends(args)

    new: dict[int, dict] = {}
    old: dict[int, dict] = {}
    # alternate the two checkouts, two batch sizes at a time, so machine noise hits both
    sizes = list(range(args.min_log2, args.max_log2 + 1))
    for i in range(0, len(sizes), 2):
        chunk = sizes[i:i + 2]
        if args.baseline:
            for r in measure(args.baseline, args, chunk):
                old[r["B"]] = r
        for r in measure(ROOT, args, chunk, backends=("xla",)):
            new[r["B"]] = r
        if any("error" in r for r in new.values()):
            break
    dev = next((r["device"] for r in new.values() if "device" in r), "?")
    print(f"model={args.model} hardware={args.hardware} max_depth={args.max_depth} device={dev} "
          f"xla_options={args.xla_options}")
    hdr = f"{'batch':>7s} {'placements/s':>13s} {'flop/pl':>10s} {'bytes/pl':>10s} {'GFLOP/s':>8s} {'compile s':>9s}"
    if args.baseline:
        hdr += f" {'baseline/s':>11s} {'base flop':>10s} {'base bytes':>10s} {'ratio':>6s}"
    print(hdr)
    best = 0.0
    for B in sorted(new):
        r = new[B]
        if "error" in r:
            print(f"{B:7d} stopped: {r['error']}")
            continue
        best = max(best, r["rate"])
        line = (f"{B:7d} {r['rate']:13,.0f} {r['flop']:10,.0f} {r['bytes']:10,.0f} "
                f"{r['rate'] * r['flop'] / 1e9:8.2f} {r['compile_s']:9.1f}")
        o = old.get(B)
        if o and "rate" in o:
            line += f" {o['rate']:11,.0f} {o['flop']:10,.0f} {o['bytes']:10,.0f} {r['rate'] / o['rate']:6.1f}"
        print(line, flush=True)
    if old:
        ob = max((o["rate"] for o in old.values() if "rate" in o), default=float("nan"))
        print(f"best: {best:,.0f} placements/s against the baseline's {ob:,.0f} ({best / ob:.1f}x)")
    if args.reference_placements:
        import time

        import numpy as np

        from pipeorgan_jax import reference
        from pipeorgan_jax.hardware import load_hardware
        from pipeorgan_jax.placement import sample
        from pipeorgan_jax.loading import load_model
        model, hw = load_model(args.model), load_hardware(args.hardware)
        p = sample(np.random.default_rng(0), len(model.layers), args.reference_placements,
                   max_depth=args.max_depth)
        t0 = time.perf_counter()
        for i in range(p.batch_size):
            reference.evaluate(model, hw, p[i])
        ref_rate = p.batch_size / (time.perf_counter() - t0)
        print(f"reference: {ref_rate:.2f} placements/s; batch model / reference = {best / ref_rate:,.0f}x")
    print(f"placements_per_s={best:.0f}")


def compare_backends(args) -> None:
    """The kernel and the XLA path of this checkout, one process, alternating per batch size."""
    rows: dict[tuple[int, str], dict] = {}
    for k in range(args.min_log2, args.max_log2 + 1):
        for r in measure(ROOT, args, [k], backends=("kernel", "xla")):
            rows[r["B"], r["backend"]] = r
    dev = next((r["device"] for r in rows.values() if "device" in r), "?")
    print(f"model={args.model} hardware={args.hardware} max_depth={args.max_depth} device={dev} "
          f"xla_options={args.xla_options} cpus={os.cpu_count()}")
    print(f"{'batch':>7s} {'kernel pl/s':>12s} {'xla pl/s':>10s} {'ratio':>6s} {'kernel compile s':>16s}")
    best = {"kernel": 0.0, "xla": 0.0}
    for B in sorted({b for b, _ in rows}):
        kr, xr = rows.get((B, "kernel"), {}), rows.get((B, "xla"), {})
        if "rate" not in kr or "rate" not in xr:
            print(f"{B:7d} stopped: {kr.get('error') or xr.get('error')}")
            continue
        for n, r in (("kernel", kr), ("xla", xr)):
            best[n] = max(best[n], r["rate"])
        print(f"{B:7d} {kr['rate']:12,.0f} {xr['rate']:10,.0f} {kr['rate'] / xr['rate']:6.1f} "
              f"{kr['compile_s']:16.2f}", flush=True)
    print(f"best: kernel {best['kernel']:,.0f} placements/s, xla {best['xla']:,.0f} "
          f"({best['kernel'] / max(best['xla'], 1e-9):.1f}x)")
    print(f"placements_per_s={best['kernel']:.0f}")


if __name__ == "__main__":
    main()

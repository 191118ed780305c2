"""Golden outputs of the batch cost model: write them once, check any later model against them.

`--write` scores random placements of every built-in model on 4K and 8K arrays with mesh,
torus and express NoCs (each model on one 4K and one 8K variant, the topology cycling over
the models, plus the `small` test array) and saves (placement, every output) to
tests/data/golden_cost.npz, with the commit that produced them. `--check` re-scores the same
placements with the current model and reports the largest relative difference per output and
any feasibility or reason-code mismatch (exit 1 on a mismatch beyond --rtol).

The placements include infeasible ones on purpose: segments deeper than max_depth (reason 1),
reduction splits on layers it does not apply to (reason 3), and whatever overflows PE SRAM.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.placement import Placement, layer_by_layer_grid, sample
from pipeorgan_jax.loading import builtin_models, load_model

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "golden_cost.npz"
TOPOLOGIES = ("mesh", "torus", "express")
EXACT = ("feasible", "reason", "seg_feasible")


def variants() -> list[tuple[str, str, str, int]]:
    """(model, hardware, topology, max_depth) cases."""
    out = []
    for i, m in enumerate(builtin_models()):
        out.append((m, "xrbench_4k", TOPOLOGIES[i % 3], 6))
        out.append((m, "xrbench_8k", TOPOLOGIES[(i + 1) % 3], 8))
        if i % 4 == 0:
            out.append((m, "small", TOPOLOGIES[(i + 2) % 3], 4))
    return out


def hardware(name: str, topology: str):
    ov = [f"hardware.noc.topology={topology}"]
    if topology == "express":
        ov.append("hardware.noc.express_k=" + ("2" if name == "small" else "8"))
    return load_hardware(name, ov)


def placements(model, max_depth: int, n: int, seed: int) -> Placement:
    """Random placements: most within max_depth, some deeper (reason 1), some with the
    reduction split where it does not apply (reason 3)."""
    rng = np.random.default_rng(seed)
    L = len(model.layers)
    red_ok = np.asarray([l.reduction_ok for l in model.layers])
    a = sample(rng, L, n - n // 8, max_depth=max_depth, red_ok=red_ok)
    b = sample(rng, L, n // 8, max_depth=max_depth + 2)
    b = Placement(b.seg_end, b.gran, b.org, b.share,
                  np.where(rng.random(b.part.shape) < 0.05, 3, b.part).astype(np.int32))
    lbl, _ = layer_by_layer_grid(L)  # many of these fit, so the feasible path is covered too
    return Placement(*(np.concatenate(fs) for fs in zip(a.fields(), b.fields(), lbl.fields())))


def n_for(L: int) -> int:
    return 40 if L > 400 else 100


def main() -> int:
    from pipeorgan_jax.cost import Scorer
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--file", default=str(GOLDEN))
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--backend", choices=("auto", "xla", "kernel"), default="auto",
                    help="the cost model's backend for --check (cost.score_batch)")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    cases = [c for c in variants() if not only or c[0] in only]
    if args.write:
        data = {}
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
        data["commit"] = np.asarray(commit)
        for ci, (m, hwn, topo, D) in enumerate(cases):
            model, hw = load_model(m), hardware(hwn, topo)
            p = placements(model, D, n_for(len(model.layers)), ci)
            t0 = time.perf_counter()
            c = Scorer(model, hw, max_depth=D)(p)
            key = f"{m}|{hwn}|{topo}|{D}"
            for f, v in zip(("seg_end", "gran", "org", "share", "part"), p.fields()):
                data[f"{key}|p|{f}"] = np.asarray(v).astype(np.int8)
            for k, v in c.items():
                data[f"{key}|c|{k}"] = np.asarray(v)
            print(f"{key}: {p.batch_size} placements, {int(np.sum(c['feasible']))} feasible, "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
        Path(args.file).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.file, **data)
        print(f"wrote {args.file}")
        return 0
    return check(args.file, args.rtol, only,
                 scorer_factory=lambda *a, **k: Scorer(*a, **k, backend=args.backend))


def keys_of(path) -> list[str]:
    """The (model|hardware|topology|max_depth) cases of a golden file."""
    return sorted({k.rsplit("|", 2)[0] for k in np.load(path).files if "|p|" in k})


def check(path, rtol: float = 1e-6, only=(), scorer_factory=None, verbose: bool = True,
          keys=None) -> int:
    """Re-score the golden placements; return the number of outputs outside rtol."""
    from pipeorgan_jax.cost import Scorer
    g = np.load(path)
    keys = keys_of(path) if keys is None else keys
    bad = total = 0
    worst: dict[str, float] = {}
    for key in keys:
        m, hwn, topo, D = key.split("|")
        if only and m not in only:
            continue
        model, hw = load_model(m), hardware(hwn, topo)
        p = Placement(*(g[f"{key}|p|{f}"].astype(np.int32 if f != "seg_end" else bool)
                        for f in ("seg_end", "gran", "org", "share", "part")))
        sc = (scorer_factory or Scorer)(model, hw, max_depth=int(D))
        c = sc(p)
        total += p.batch_size
        for k in c:
            ref = g[f"{key}|c|{k}"]
            new = np.asarray(c[k])
            if k in EXACT:
                n = int(np.sum(new != ref))
                if n:
                    bad += n
                    print(f"{key} {k}: {n} mismatches", flush=True)
                continue
            den = np.maximum(np.abs(ref), 1e-30)
            rel = np.where((ref == 0) & (new == 0), 0.0, np.abs(new.astype(np.float64) - ref) / den)
            # a relative error on a value that is ~0 next to its row is rounding, not physics
            scale = np.abs(ref).max(axis=-1, keepdims=True) if ref.ndim > 1 else np.abs(ref)
            rel = np.where(np.abs(ref) < 1e-6 * np.maximum(scale, 1e-30), 0.0, rel)
            worst[k] = max(worst.get(k, 0.0), float(rel.max()))
            n = int(np.sum(rel > rtol))
            if n:
                bad += n
                print(f"{key} {k}: {n} outside rtol={rtol:g} (max {rel.max():.3g})", flush=True)
        if verbose:
            print(f"{key}: checked {p.batch_size}", flush=True)
    if verbose:
        print(f"{total} placements; largest relative difference per output:")
        for k, v in sorted(worst.items()):
            print(f"  {k:20s} {v:.3g}")
        print("OK" if bad == 0 else f"{bad} mismatches")
    return bad


if __name__ == "__main__":
    sys.exit(1 if main() else 0)

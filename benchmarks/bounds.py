"""How many layer-by-layer (layer, tile size, partition) evaluations fall below a physical bound.

For every built-in model on a hardware config, every layer runs alone (a depth-1 segment)
with every tile size and every partition; its latency from the batch model is held against
bounds worked out here from first principles, independently of cost.py:
- compute: the layer's ops over every PE of the array;
- GLB: its inputs read + its output written + its weights written (from DRAM) and read once +
  its network inputs written, over the GLB bandwidth;
- DRAM: its weights + network inputs + network outputs, over the DRAM bandwidth.
(Re-streamed weights and spill only add traffic, so these are lower bounds for every
evaluation.) Prints a line per model and the total; the goal is 0 below.

    python benchmarks/bounds.py [--hardware xrbench_4k] [--models GE_FBNet_C ...]
"""
from __future__ import annotations

import argparse

import numpy as np

from pipeorgan_jax.cost import Scorer
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.placement import GRAN_ROWS, layer_by_layer_grid
from pipeorgan_jax.workload import MODELS_DIR
from pipeorgan_jax.loading import load_model


def layer_bounds(model, hw) -> np.ndarray:
    """[L, 3] lower bounds (compute, GLB, DRAM) in cycles for each layer run alone."""
    db = model.data_bytes
    consumers = {}
    for e in model.edges:
        consumers.setdefault(e.src, []).append(e.dst)
    first_use = {t: min(v) for t, v in consumers.items() if t < 0}
    out = []
    for i, l in enumerate(model.layers):
        w = l.weight_elems * db
        ins = sum(e.elems * db for e in model.edges if e.dst == i)
        net_in = sum(int(np.prod(model.input_shapes[-1 - t])) * db
                     for t, f in first_use.items() if f == i)
        net_out = l.out_act_elems * db if i not in consumers else 0
        glb = ins + l.out_act_elems * db + 2 * w + net_in
        dram = w + net_in + net_out
        out.append((l.ops / (hw.n_pes * hw.macs_per_pe_per_cycle),
                    glb / hw.glb_bytes_per_cycle, dram / hw.dram_bytes_per_cycle))
    return np.asarray(out)


def check(name: str, hw) -> tuple[int, int, int]:
    m = load_model(name)
    L = len(m.layers)
    p, rows = layer_by_layer_grid(L)
    c = Scorer(m, hw, max_depth=1)(p)
    # the network's first segment carries no spill; seg_latency of layer l is its segment's
    seg = c["seg_latency"].astype(np.float64)  # [rows, L]
    b = layer_bounds(m, hw)  # [L, 3]
    below = (seg[:, :, None] < b[None, :, :] * (1 - 1e-5)).any(2)  # [rows, L]
    # distinct (layer, tile, split) evaluations: a tile size at or beyond a layer's rows is the
    # same evaluation as "whole"
    n_eval = n_below = 0
    for i, l in enumerate(m.layers):
        seen = {}
        for k, (g, q) in enumerate(rows):
            yo = l.out_shape[1]
            key = (min(-(-yo // (GRAN_ROWS[g] or yo)), yo), q)
            seen[key] = seen.get(key, False) or bool(below[k, i])
        n_eval += len(seen)
        n_below += sum(seen.values())
    return n_eval, n_below, int(c["feasible"].sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hardware", default="xrbench_4k")
    ap.add_argument("--models", nargs="*", default=sorted(p.stem for p in MODELS_DIR.glob("*.yaml")))
    a = ap.parse_args()
    hw = load_hardware(a.hardware)
    tot_e = tot_b = 0
    for name in a.models:
        n_eval, n_below, _ = check(name, hw)
        tot_e += n_eval
        tot_b += n_below
        print(f"{name:24s} evaluations {n_eval:6d}  below a bound {n_below:4d}", flush=True)
    print(f"total: {tot_b} of {tot_e} (layer, tile, split) evaluations below a compute, GLB or "
          f"DRAM bound")


if __name__ == "__main__":
    main()

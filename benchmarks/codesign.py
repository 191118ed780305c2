"""Co-design sweep rate: hardware points (and points x placements) scored per second.

One jitted call (`hwbatch.score_points`) scores B placements of a model at H hardware points
(GLB and DRAM bandwidth varied, as in the study); points are held `max_rows // B` at a time
inside the call (lax.map). Per H: compile seconds, then the best of --repeats timed calls.
Last line: points_per_s=<best> pairs_per_s=<best>.
"""
from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from pipeorgan_jax.cost import hw_arrays, model_arrays
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.hwbatch import score_points, values_array
from pipeorgan_jax.placement import sample
from pipeorgan_jax.loading import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="GE_FBNet_C")
    ap.add_argument("--hardware", default="xrbench_4k")
    ap.add_argument("--points", default="16,64,256,1024")
    ap.add_argument("--placements", type=int, default=128)
    ap.add_argument("--max-rows", type=int, default=4096)
    ap.add_argument("--max-depth", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    m, hw = load_model(args.model), load_hardware(args.hardware)
    ma, ha = model_arrays(m), hw_arrays(hw, args.max_depth)
    B = args.placements
    p = sample(np.random.default_rng(0), len(m.layers), B, args.max_depth,
               red_ok=[l.reduction_ok for l in m.layers])
    keys = ("glb_bytes_per_cycle", "dram_bytes_per_cycle")
    chunk = max(1, args.max_rows // B)
    print(f"model={m.name} layers={len(m.layers)} hardware={hw.name} placements={B} "
          f"chunk={chunk} points devices={[d.platform + ':' + d.device_kind for d in jax.devices()]}")
    print(f"{'points':>7s} {'compile s':>9s} {'call s':>8s} {'points/s':>10s} {'pairs/s':>12s}")
    best_p, best_pp = 0.0, 0.0
    rng = np.random.default_rng(1)
    for H in (int(x) for x in args.points.split(",")):
        mult = np.exp2(rng.uniform(-3, 1, (H, 2)))
        v = values_array(mult * [hw.glb_bytes_per_cycle, hw.dram_bytes_per_cycle], keys)
        t0 = time.perf_counter()
        f = score_points.lower(ma, ha, v, p, keys=keys, chunk=chunk).compile()
        tc = time.perf_counter() - t0
        jax.block_until_ready(f(ma, ha, v, p))
        dts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(f(ma, ha, v, p))
            dts.append(time.perf_counter() - t0)
        dt = min(dts)
        best_p, best_pp = max(best_p, H / dt), max(best_pp, H * B / dt)
        print(f"{H:7d} {tc:9.2f} {dt:8.3f} {H / dt:10.1f} {H * B / dt:12,.0f}")
    print(f"points_per_s={best_p:.1f} pairs_per_s={best_pp:.0f}")


if __name__ == "__main__":
    main()

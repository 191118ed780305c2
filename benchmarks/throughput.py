"""Throughput of the batch cost model: whole-network placements per second.

GE_FBNet_C on the default hardware (xrbench_4k), batch sizes 2^10 and up until a batch no
longer fits in memory (or --max-log2), on every device JAX sees. Per batch size: placements per
second (best of --repeats timed calls after one warm-up), XLA's own flop count per placement
(from the compiled function's cost analysis) and the achieved GFLOP/s. In the same run, the
exact reference's rate on a few placements and the ratio. Last line: placements_per_s=<best>.
"""
from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from pipeorgan_jax import reference
from pipeorgan_jax.cost import Scorer, score_batch
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.placement import sample
from pipeorgan_jax.workload import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="GE_FBNet_C")
    ap.add_argument("--hardware", default="xrbench_4k")
    ap.add_argument("--min-log2", type=int, default=10)
    ap.add_argument("--max-log2", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-depth", type=int, default=6)
    ap.add_argument("--reference-placements", type=int, default=5)
    args = ap.parse_args()

    model = load_model(args.model)
    hw = load_hardware(args.hardware)
    L = len(model.layers)
    print(f"model={model.name} layers={L} hardware={hw.name} ({hw.rows}x{hw.cols}, "
          f"{hw.topology}) devices={[d.platform + ':' + d.device_kind for d in jax.devices()]}")
    best = 0.0
    print(f"{'batch':>8s} {'placements/s':>14s} {'flop/placement':>15s} {'GFLOP/s':>9s} {'compile s':>9s}")
    for devi, dev in enumerate(jax.devices()):
        sc = Scorer(model, hw, max_depth=args.max_depth)
        ma = jax.device_put(sc.ma, dev)
        for k in range(args.min_log2, args.max_log2 + 1):
            B = 1 << k
            p = jax.device_put(sample(np.random.default_rng(k), L, B, max_depth=args.max_depth), dev)
            try:
                t0 = time.perf_counter()
                compiled = score_batch.lower(ma, sc.ha, p).compile()
                t_compile = time.perf_counter() - t0
                ca = compiled.cost_analysis()
                ca = ca[0] if isinstance(ca, (list, tuple)) else ca
                flops = float(ca.get("flops", float("nan"))) / B
                jax.block_until_ready(compiled(ma, sc.ha, p))
                dts = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    jax.block_until_ready(compiled(ma, sc.ha, p))
                    dts.append(time.perf_counter() - t0)
            except Exception as e:  # out of memory: the previous size was the largest
                print(f"{B:8d} stopped: {type(e).__name__}: {str(e).splitlines()[0][:80]}")
                break
            rate = B / min(dts)
            best = max(best, rate)
            print(f"{B:8d} {rate:14,.0f} {flops:15,.0f} {rate * flops / 1e9:9.2f} {t_compile:9.1f}")
    if len(jax.devices()) > 1:
        # the whole batch split over every device (what the search does): host arrays in,
        # the transfer to the devices included in the time
        print(f"all {len(jax.devices())} devices, batch sharded:")
        sc = Scorer(model, hw, max_depth=args.max_depth)
        for k in range(args.min_log2, args.max_log2 + 1):
            B = 1 << k
            p = sample(np.random.default_rng(k), L, B, max_depth=args.max_depth)
            try:
                t0 = time.perf_counter()
                jax.block_until_ready(sc.score_on_devices(p)[0])
                t_first = time.perf_counter() - t0
                dts = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    jax.block_until_ready(sc.score_on_devices(p)[0])
                    dts.append(time.perf_counter() - t0)
            except Exception as e:
                print(f"{B:8d} stopped: {type(e).__name__}: {str(e).splitlines()[0][:80]}")
                break
            rate = B / min(dts)
            best = max(best, rate)
            print(f"{B:8d} {rate:14,.0f} {'':15s} {'':9s} {t_first:9.1f}")
    # the exact reference, same process
    p = sample(np.random.default_rng(0), L, args.reference_placements, max_depth=args.max_depth)
    t0 = time.perf_counter()
    for i in range(p.batch_size):
        reference.evaluate(model, hw, p[i])
    ref_rate = p.batch_size / (time.perf_counter() - t0)
    print(f"reference: {ref_rate:.2f} placements/s; batch model / reference = {best / ref_rate:,.0f}x")
    print(f"placements_per_s={best:.0f}")


if __name__ == "__main__":
    main()

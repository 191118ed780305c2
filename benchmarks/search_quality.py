"""Search quality at equal wall time: dp first, then random, evolutionary, annealing and
gradient each get dp's wall time as their budget, on XR-bench models, the default hardware
and the flexible space. Prints best latency, ratio to dp's optimum, placements scored and
seconds, and the geometric-mean ratio to dp per strategy. Ratios compare the searches'
objective (prob.objective_of: an infeasible best counts 1000x its cost).

    python benchmarks/search_quality.py [--models KD_res8_narrow GE_FBNet_C AS_ED_TCN]

Every batch shape and jitted step a strategy uses is compiled before any timing starts (compilation is
per shape and per model, and would otherwise dominate small budgets).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeorgan_jax.cost import Scorer  # noqa: E402
from pipeorgan_jax.hardware import load_hardware  # noqa: E402
from pipeorgan_jax.search import Problem, baseline_spaces, dp, run_strategy  # noqa: E402
from pipeorgan_jax.loading import load_model  # noqa: E402

STRATEGIES = ("random", "evolutionary", "annealing", "gradient")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["KD_res8_narrow", "GE_FBNet_C", "AS_ED_TCN"])
    ap.add_argument("--hardware", default="xrbench_4k")
    ap.add_argument("--objective", default="latency", choices=("latency", "energy", "edp"))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--max-depth", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    hw = load_hardware(args.hardware)
    space = baseline_spaces(args.max_depth)["flexible"]
    cfg = SimpleNamespace(batch_size=args.batch, iterations=10**6, time_budget_s=0.0,
                          mutation_rate=0.1, elite_fraction=0.1, temperature0=0.1, restarts=8,
                          learning_rate=0.3, gumbel_tau=1.0, max_space=2_000_000)
    key = {"latency": "latency_cycles", "energy": "energy_pj", "edp": "edp"}[args.objective]
    rows, ratios = [], {s: [] for s in STRATEGIES}
    print(f"hardware={hw.name} space={space.name} objective={args.objective} batch={args.batch}",
          flush=True)
    for name in args.models:
        model = load_model(name)
        scorer = Scorer(model, hw, max_depth=args.max_depth)
        t = time.perf_counter()
        warm = Problem(scorer, args.objective, space, seed=args.seed)
        shapes = {1, args.batch, cfg.restarts,
                  cfg.restarts * max(1, args.batch // cfg.restarts)}
        shapes |= {space.inner_choices(d) for d in range(1, args.max_depth + 1)
                   if space.inner_choices(d) <= args.batch}
        for n in sorted(shapes):
            scorer(warm.sample(n))
        for s in STRATEGIES:  # jits of the strategies themselves (gradient's optimizer step)
            run_strategy(s, Problem(scorer, args.objective, space, seed=args.seed),
                         SimpleNamespace(**{**vars(cfg), "iterations": 2}))
        compile_s = time.perf_counter() - t

        r = dp(Problem(scorer, args.objective, space, seed=args.seed), batch_size=args.batch)
        budget, opt = r.seconds, r.history[-1][2]
        rows.append((name, "dp", float(r.cost[key]), 1.0, r.placements_scored, r.seconds,
                     r.cost["feasible"]))
        print(f"# {name}: {len(model.layers)} layers, compile {compile_s:.1f}s, "
              f"dp {budget:.2f}s", flush=True)
        for s in STRATEGIES:
            c = SimpleNamespace(**{**vars(cfg), "time_budget_s": budget})
            r = run_strategy(s, Problem(scorer, args.objective, space, seed=args.seed), c)
            q = r.history[-1][2] / opt  # penalized objective: infeasible counts 1000x
            ratios[s].append(q)
            rows.append((name, s, float(r.cost[key]), q, r.placements_scored, r.seconds,
                         r.cost["feasible"]))

    print(f"{'model':16s} {'strategy':13s} {'best ' + args.objective:>16s} {'ratio_vs_dp':>11s} "
          f"{'scored':>9s} {'seconds':>8s} feasible")
    for m, s, v, q, n, sec, ok in rows:
        print(f"{m:16s} {s:13s} {v:16.1f} {q:11.3f} {n:9d} {sec:8.2f} {bool(ok)}")
    print("geomean_ratio_vs_dp=" + ",".join(
        f"{s}:{math.exp(sum(map(math.log, q)) / len(q)):.3f}" for s, q in ratios.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Search quality at equal wall time (issue 13, part 4): on each model, dp first (the
project's default dp settings), then every other strategy from scratch with dp's search
seconds as its budget, and again with 4x that budget; best latency / dp's, as a table.
`dp+gradient` runs dp and then gradient from dp's result inside the same budget. The
stochastic strategies run on dp's window rows (search.decompose, the default: segmentwise.py,
32 proposals per row and generation); `evolutionary:whole` and `annealing:whole` run them on
whole placements (--batch per step) for comparison. Every segment-scoring strategy always
finishes the rows that tile the network (dp.segment_plan's cover), so at a small budget it
may overrun it: search seconds are printed, with segment evaluations.

    python benchmarks/search_quality.py                      # all 11 XR-bench models
    python benchmarks/search_quality.py --models KD_res8_narrow GE_FBNet_C --factors 1 4

Hardware xrbench_4k, the flexible space, objective latency (or --objective). Ratios compare
the searches' penalized objective (an infeasible best counts 1000x its cost), so a ratio
above 1000 means the strategy found nothing feasible. Every batch shape and jitted
ask/tell/init is compiled before any timing starts (compilation is per shape and per model
and would otherwise eat small budgets); search seconds exclude compilation in any case.
`--json PATH` also writes every row. The machine's load is printed: budgets are wall time,
so other processes on the machine shift every strategy's result, dp's budget included.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeorgan_jax.config import SearchConfig  # noqa: E402
from pipeorgan_jax.cost import Scorer  # noqa: E402
from pipeorgan_jax.hardware import load_hardware  # noqa: E402
from pipeorgan_jax.search import Problem, baseline_spaces, run_strategy  # noqa: E402
from pipeorgan_jax.loading import load_model  # noqa: E402

XR_BENCH = ["KD_res8_narrow", "AS_ED_TCN", "GE_FBNet_C", "ES_RITNet", "DR_RGBd_200",
            "DE_midas_v21_small", "OD_D2go_FasterRCNN", "ASR_EM_24L", "HT_hand_graph_cnn_half",
            "PD_Plane_RCNN_Quarter", "SS_HRViT_b1"]
STRATEGIES = ("gradient", "dp+gradient", "random", "evolutionary", "annealing", "reinforce", "es",
              "evolutionary:whole", "annealing:whole")
# the stochastic strategies' step size for reinforce (tuned in issue 13); gradient's own default
LEARNING_RATE = {"reinforce": 0.3}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=XR_BENCH)
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    ap.add_argument("--factors", nargs="+", type=float, default=[1.0, 4.0],
                    help="budgets as multiples of dp's search seconds")
    ap.add_argument("--hardware", default="xrbench_4k")
    ap.add_argument("--objective", default="latency", choices=("latency", "energy", "edp"))
    ap.add_argument("--batch", type=int, default=256, help="population / chains / samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-cache", action="store_true", help="no persistent compilation cache")
    args = ap.parse_args(argv)
    from pipeorgan_jax.app import compilation_cache_dir, setup_compilation_cache
    setup_compilation_cache(None if args.no_cache else compilation_cache_dir({}))

    d = SearchConfig()  # dp and the space as the main job runs them
    hw = load_hardware(args.hardware)
    space = baseline_spaces(d.max_depth)["flexible"]
    cfg = SimpleNamespace(**{**vars(d), "batch_size": args.batch, "iterations": 10 ** 6,
                             "restarts": 8, "time_budget_s": 0.0})
    # "<strategy>:whole": the strategy on whole placements (search.decompose=false);
    # "gradient:screen": gradient's screening alone (no descent), an ablation
    with_lr = lambda c, s: SimpleNamespace(**{
        **vars(c), "learning_rate": LEARNING_RATE.get(s.split(":")[0], d.learning_rate),
        "decompose": not s.endswith(":whole"),
        **({"gradient_steps": 0} if s.endswith(":screen") else {})})
    base_name = lambda s: s.split(":")[0]
    key = {"latency": "latency_cycles", "energy": "energy_pj", "edp": "edp"}[args.objective]
    print(f"hardware={hw.name} space={space.name} objective={args.objective} batch={args.batch} "
          f"dp: max_depth={d.max_depth} dp_batch_size={d.dp_batch_size} dp_rounds={d.dp_rounds} "
          f"seed={args.seed} load={os.getloadavg()[0]:.2f} cpus={os.cpu_count()}", flush=True)
    rows = []
    for name in args.models:
        model = load_model(name)
        scorer = Scorer(model, hw, max_depth=d.max_depth)
        t = time.perf_counter()
        for s in ["dp"] + args.strategies:  # compile every shape and jitted step
            run_strategy(base_name(s), Problem(scorer, args.objective, space, seed=args.seed),
                         with_lr(SimpleNamespace(**{**vars(cfg), "iterations": 2, "dp_rounds": 1,
                                                    "time_budget_s": 1e-9 if "gradient" in s else 0.0}), s))
        compile_s = time.perf_counter() - t
        r = run_strategy("dp", Problem(scorer, args.objective, space, seed=args.seed), cfg)
        budget, opt = r.seconds, r.history[-1][2]
        row = {"model": name, "layers": len(model.layers), "dp_value": float(r.cost[key]),
               "dp_seconds": budget, "dp_scored": r.placements_scored, "compile_seconds": compile_s,
               "ratios": {}, "scored": {}}
        print(f"# {name}: {len(model.layers)} layers, warm-up {compile_s:.0f}s, dp {budget:.1f}s "
              f"{args.objective}={float(r.cost[key]):.6g} load={os.getloadavg()[0]:.2f}", flush=True)
        for f in args.factors:
            for s in args.strategies:
                c = with_lr(SimpleNamespace(**{**vars(cfg), "time_budget_s": f * budget}), s)
                q = run_strategy(base_name(s), Problem(scorer, args.objective, space, seed=args.seed), c)
                ratio = q.history[-1][2] / opt  # penalized objective: infeasible counts 1000x
                row["ratios"][f"{s}@{f:g}x"] = ratio
                row["scored"][f"{s}@{f:g}x"] = q.placements_scored
                row.setdefault("segments", {})[f"{s}@{f:g}x"] = q.segment_evaluations
                row.setdefault("seconds", {})[f"{s}@{f:g}x"] = q.seconds
                print(f"  {s:18s} {f:g}x: ratio {ratio:8.3f}  scored {q.placements_scored:8d}  "
                      f"segments {q.segment_evaluations:9d}  {q.seconds:6.1f}s", flush=True)
        rows.append(row)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))

    cols = [f"{s}@{f:g}x" for f in args.factors for s in args.strategies]
    print("\nbest " + args.objective + " / dp's (1.000 = dp's; > 1000: nothing feasible)")
    print("| model | dp Mcyc | dp s | " + " | ".join(cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    for row in rows:
        print(f"| {row['model']} | {row['dp_value'] / 1e6:.4f} | {row['dp_seconds']:.1f} | "
              + " | ".join(f"{row['ratios'][c]:.3f}" for c in cols) + " |")
    geo = {c: math.exp(sum(math.log(r["ratios"][c]) for r in rows) / len(rows)) for c in cols}
    print("| geomean | | | " + " | ".join(f"{geo[c]:.3f}" for c in cols) + " |")
    print("geomean_ratio_vs_dp=" + ",".join(f"{c}:{geo[c]:.3f}" for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())

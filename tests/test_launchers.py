"""The command line as a researcher uses it: --help, sweeps through Hydra's launchers and the
Optuna sweeper. Tiny budgets: what is tested is the plumbing, not the search."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ["+workload=KD_res8_narrow", "hardware=small", "search.max_depth=2", "search.dp_rounds=1",
        "search.dp_batch_size=32", "plots=false", "reference_check=false", "progress=false"]


def _run(args, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "pipeorgan_jax", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def test_help_lists_real_options_and_the_readme_examples(tmp_path):
    r = _run(["--help"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "base_" not in r.stdout
    groups = dict(re.findall(r"^(hardware|search|workload): (.*)$", r.stdout, re.M))
    assert set(groups) == {"hardware", "search", "workload"}
    assert "xrbench_4k" in groups["hardware"] and "dp" in groups["search"]
    assert "inter-operator" in r.stdout or "pipeline" in r.stdout.splitlines()[0]
    readme = (ROOT / "README.md").read_text()
    block = readme.split("Examples:\n```bash\n", 1)[1].split("```", 1)[0]
    examples = [l.split("#")[0].strip() for l in block.splitlines() if l.strip()]
    assert len(examples) >= 5
    for ex in examples:
        assert ex in r.stdout, ex
    # the schema is no option
    bad = _run(["hardware=base_hardware", "task=describe", "+workload=KD_res8_narrow",
                f"hydra.run.dir={tmp_path}"], tmp_path)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_optuna_sweeps_a_hardware_parameter(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    r = _run(["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=1",
              "hydra.sweeper.sampler.seed=0", "hydra.sweeper.direction=minimize",
              "hardware.glb_bytes_per_cycle=choice(4,16,64)", *TINY,
              f"hydra.sweep.dir={tmp_path}"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    trials = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/results.json"))]
    assert len(trials) == 3
    values = {d["config"]["hardware"]["glb_bytes_per_cycle"]: d["objective_value"] for d in trials}
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(values.values()))
    assert best["best_params"]["hardware.glb_bytes_per_cycle"] == min(values, key=values.get)
    # the objective is the flexible placement's latency, what the table shows
    for d in trials:
        assert d["objective_value"] == pytest.approx(
            d["models"]["KD_res8_narrow"]["flexible"]["latency_cycles"])


def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path):
    # after the Optuna test: the same shapes, so the workers load them from the test session's
    # compilation cache instead of compiling twice at once
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    r = _run(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY, "seed=0,1",
              f"hydra.sweep.dir={tmp_path}"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    docs = [json.loads((tmp_path / str(i) / "results.json").read_text()) for i in (0, 1)]
    assert [d["seed"] for d in docs] == [0, 1]
    assert all(d["models"]["KD_res8_narrow"]["placements_scored"] > 0 for d in docs)
    # each job logs into its own folder under the app's name
    for i in (0, 1):
        assert "geomean" in (tmp_path / str(i) / "pipeorgan_jax.log").read_text()

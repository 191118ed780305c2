"""The four ONNX structures and the two Flax models, imported, run through the main job on
`hardware=small` (a tiny search) in one run: every model gets baselines and a searched
placement, and no error."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx")

import flax_models as fm  # noqa: E402
import onnx_graphs as og  # noqa: E402
from pipeorgan_jax import workload_yaml  # noqa: E402
from pipeorgan_jax.jax_import import trace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_imported_models_run_through_the_main_job(tmp_path):
    files = [og.write(name, tmp_path)[0] for name in sorted(og.MODELS)]
    for make in (fm.small_cnn, fm.transformer_block):
        module, x, _ = make()
        files.append(workload_yaml.write(trace(module, x), tmp_path / f"{make.__name__}.yaml"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "pipeorgan_jax", "+workload=custom",
         f"workload.models=[{','.join(str(f) for f in files)}]", "hardware=small",
         "search.max_depth=2", "search.dp_batch_size=16", "search.dp_rounds=1",
         "progress=false", "plots=false", "reference_check=false",
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    assert doc["errors"] == {}
    names = set(og.MODELS) | {"SmallCNN", "TransformerBlock"}
    assert set(doc["models"]) == names
    for m in doc["models"].values():
        assert m["flexible"]["latency_cycles"] > 0 and m["placements_scored"] > 0
        assert m["flexible"]["latency_cycles"] <= m["layer_by_layer"]["latency_cycles"]

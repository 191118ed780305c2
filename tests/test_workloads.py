"""The built-in XR-bench models: they load, and their MACs equal the reference tables'."""
import csv
import json
import subprocess
import sys

import pytest

from pipeorgan_jax.workload import summarize
from pipeorgan_jax.loading import builtin_models, load_model

XR = ["ASR_EM_24L", "AS_ED_TCN", "DE_midas_v21_small", "DR_RGBd_200", "ES_RITNet", "GE_FBNet_C",
      "HT_hand_graph_cnn_half", "KD_res8_narrow", "OD_D2go_FasterRCNN", "PD_Plane_RCNN_Quarter",
      "SS_HRViT_b1"]


def test_all_eleven_models_ship():
    assert set(XR) <= set(builtin_models())


@pytest.mark.parametrize("name", XR)
def test_model_follows_its_reference_table(name, xrbench_dir):
    m = load_model(name)
    table = m.source.get("table")
    assert table and (table.startswith("annotated/") or table.startswith("corrected/"))
    # a model follows the corrected table where one exists
    corrected = list((xrbench_dir / "corrected").glob(name + "*.csv"))
    if corrected:
        assert table.startswith("corrected/")
    with open(xrbench_dir / table) as f:
        rows = list(csv.DictReader(f))
    by_ref = {l.ref: l for l in m.layers if l.ref}
    for r in rows:
        assert r["layer"] in by_ref, f"{name}: table row {r['layer']} has no layer"
        assert by_ref[r["layer"]].macs == int(r["MACs"]), f"{name}: {r['layer']}"
    assert len(by_ref) == len(rows)
    assert sum(l.macs for l in by_ref.values()) == sum(int(r["MACs"]) for r in rows)


@pytest.mark.parametrize("name", XR)
def test_model_structure(name):
    m = load_model(name)
    s = summarize(m)
    assert s["layers"] == len(m.layers) and s["macs"] > 0
    # every model but the pure chain ED-TCN has skip connections of its original architecture
    if name != "AS_ED_TCN":
        assert s["skip_edges"] > 0
    # edges point backwards in the listed (topological) order
    assert all(e.src < e.dst for e in m.edges)
    assert "edges" in m.source, "each model file says how sure its edges are"


def test_fbnet_has_real_strides_and_depthwise():
    m = load_model("GE_FBNet_C")
    assert any(l.op == "conv" and l.params.get("stride", 1) == 2 for l in m.layers)
    assert any(l.op == "conv" and l.params.get("groups", 1) == l.in_shapes[0][0] > 1
               for l in m.layers)


def _run(args, tmp_path):
    return subprocess.run([sys.executable, "-m", "pipeorgan_jax", *args,
                           f"hydra.run.dir={tmp_path}"], capture_output=True, text=True,
                          timeout=300)


def test_describe_end_to_end(tmp_path):
    r = _run(["+workload=xr_bench", "task=describe"], tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "workloads.json").read_text())
    assert set(doc["models"]) == set(XR)
    for name, v in doc["models"].items():
        assert {"layers", "macs", "weight_elems", "skip_edges"} <= set(v)
        assert isinstance(v["layers"], int) and v["macs"] == load_model(name).macs
        assert name in r.stdout


def test_no_workload_lists_and_fails_cleanly(tmp_path):
    r = _run([], tmp_path)
    assert r.returncode != 0
    assert "xr_bench" in r.stderr and "Traceback" not in r.stderr


def test_bad_override_fails_at_start(tmp_path):
    r = _run(["+workload=GE_FBNet_C", "hardware=no_such_hw"], tmp_path)
    assert r.returncode != 0 and "no_such_hw" in r.stderr
    r = _run(["+workload=GE_FBNet_C", "hardware.rows=many"], tmp_path)
    assert r.returncode != 0 and "hardware.rows" in r.stderr
    r = _run(["+workload=GE_FBNet_C", "objective=speed"], tmp_path)
    assert r.returncode != 0 and "objective" in r.stderr


def test_bad_workload_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninputs:\n  - {name: x, shape: [3, 8, 8]}\nlayers:\n"
                   "  - {name: c1, op: conv, inputs: [x], C: 3, K: 0, Y: 8, X: 8, R: 3, S: 3}\n")
    r = _run(["+workload=custom", f"workload.models=[{bad}]", "task=describe"], tmp_path / "run")
    assert r.returncode != 0
    err = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(err) == 1 and "bad.yaml" in err[0] and "c1" in err[0] and "'K'" in err[0]
    assert "Traceback" not in r.stderr

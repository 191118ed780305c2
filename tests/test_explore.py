"""The main job end to end on small inputs: results files, errors, multirun."""
import json
import subprocess
import sys

import pytest


def _run(args, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "pipeorgan_jax", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def kd_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("kd")
    r = _run(["+workload=KD_res8_narrow", "hardware=small", "progress=false",
              f"hydra.run.dir={out}"], out)
    return r, out


def test_results_json_schema(kd_run):
    r, out = kd_run
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["hardware"] == "small" and doc["search"] == "dp" and doc["objective"] == "latency"
    m = doc["models"]["KD_res8_narrow"]
    for base in ("layer_by_layer", "chunked", "flexible"):
        assert isinstance(m[base]["latency_cycles"], float) and m[base]["latency_cycles"] > 0
        assert isinstance(m[base]["energy_pj"], float) and m[base]["energy_pj"] > 0
    assert isinstance(m["flexible"]["placement"], list) and m["flexible"]["placement"]
    assert m["speedup_vs_chunked"] == pytest.approx(
        m["chunked"]["latency_cycles"] / m["flexible"]["latency_cycles"])
    # the spaces nest: flexible >= chunked >= layer-by-layer on the objective
    assert m["flexible"]["latency_cycles"] <= m["chunked"]["latency_cycles"] <= \
        m["layer_by_layer"]["latency_cycles"]
    assert isinstance(m["placements_scored"], int) and m["placements_scored"] > 0
    assert m["search_seconds"] > 0 and m["reference_latency_cycles"] > 0
    assert doc["geomean_speedup_vs_chunked"] == pytest.approx(m["speedup_vs_chunked"])


def test_table_csv_and_plots(kd_run):
    r, out = kd_run
    assert "geomean" in r.stdout and "KD_res8_narrow" in r.stdout
    csv = (out / "results.csv").read_text().splitlines()
    assert csv[0].startswith("model,") and csv[1].startswith("KD_res8_narrow,")
    for png in ("speedup.png", "energy_breakdown.png", "convergence.png",
                "pe_map_KD_res8_narrow.png"):
        assert (out / "plots" / png).stat().st_size > 1000


def test_infeasible_model_is_one_line_and_others_run(tmp_path):
    r = _run(["+workload=custom", "workload.models=[GE_FBNet_C,KD_res8_narrow]",
              "hardware=small", "hardware.pe_sram_bytes=256", "progress=false",
              "plots=false", "reference_check=false", f"hydra.run.dir={tmp_path}"], tmp_path)
    assert r.returncode == 1, r.stderr  # a failed model makes the run fail ...
    errs = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(errs) == 2 and "GE_FBNet_C" in errs[0] and "PE SRAM" in errs[0]
    # ... with a one-line summary of which failed and why
    assert errs[1].startswith("error: 1 of 2 models failed") and "GE_FBNet_C" in errs[1]
    assert "Traceback" not in r.stderr
    doc = json.loads((tmp_path / "results.json").read_text())
    assert "KD_res8_narrow" in doc["models"] and "GE_FBNet_C" in doc["errors"]


def test_multirun_failed_job_does_not_stop_the_others(tmp_path):
    r = _run(["-m", "+workload=KD_res8_narrow", "hardware=small",
              "hardware.pe_sram_bytes=16,8192", "search=dp,random", "search.iterations=1",
              "search.batch_size=128", "search.max_depth=3", "progress=false",
              "plots=false", "reference_check=false", f"hydra.sweep.dir={tmp_path}"], tmp_path)
    done = sorted(tmp_path.glob("*/results.json"))
    assert len(done) == 4, r.stderr[-2000:]
    ok = [json.loads(p.read_text()) for p in done]
    assert sum(bool(d["models"]) for d in ok) == 2  # the 16-byte PE jobs fail cleanly
    assert sum("KD_res8_narrow" in d["errors"] for d in ok) == 2
    assert {d["search"] for d in ok} == {"dp", "random"}

"""The main job end to end on small inputs: results files, errors, multirun."""
import csv
import json
import subprocess
import sys

import pytest


def _run(args, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "pipeorgan_jax", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def kd_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("kd_cache")


@pytest.fixture(scope="module")
def kd_run(tmp_path_factory, kd_cache):
    out = tmp_path_factory.mktemp("kd")
    r = _run(["+workload=KD_res8_narrow", "hardware=small", "progress=false",
              f"compilation_cache_dir={kd_cache}", f"hydra.run.dir={out}"], out)
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
    # a sweep's job says what it ran: resolved hardware parameters, search, seed, overrides
    assert doc["config"]["hardware"]["pe_sram_bytes"] == 4096 and doc["config"]["seed"] == 0
    assert doc["config"]["search"]["strategy"] == "dp" and doc["seed"] == 0
    assert "hardware=small" in doc["overrides"]
    # honest counters: distinct placements, and dp's segment evaluations on top of them
    assert m["distinct_segments"] <= m["segment_evaluations"]
    assert m["placements_scored"] <= m["rows_scored"]
    assert m["placements_scored"] == sum(m[b]["placements_scored"] for b in
                                         ("chunked_coarse", "layer_by_layer", "chunked",
                                          "flexible"))
    assert m["compile_seconds"] > 0 and doc["objective_value"] == pytest.approx(
        m["flexible"]["latency_cycles"])


def test_second_run_loads_the_compiled_model(kd_run, kd_cache, tmp_path):
    _, out = kd_run
    assert any(kd_cache.iterdir())  # the first run filled the cache
    r = _run(["+workload=KD_res8_narrow", "hardware=small", "progress=false", "plots=false",
              "reference_check=false", f"compilation_cache_dir={kd_cache}",
              f"hydra.run.dir={tmp_path}"], tmp_path)
    assert r.returncode == 0, r.stderr
    first = json.loads((out / "results.json").read_text())["models"]["KD_res8_narrow"]
    second = json.loads((tmp_path / "results.json").read_text())["models"]["KD_res8_narrow"]
    assert second["compile_seconds"] < first["compile_seconds"]
    assert second["flexible"]["latency_cycles"] == first["flexible"]["latency_cycles"]


def test_saved_placement_rescores_to_the_same_cost(kd_run, kd_cache, tmp_path):
    from pipeorgan_jax import placement_io
    _, out = kd_run
    f = out / "placements" / "KD_res8_narrow.json"
    doc, best = placement_io.load(f)
    assert set(best) == {"chunked_coarse", "layer_by_layer", "chunked", "flexible"}
    found = json.loads((out / "results.json").read_text())["models"]["KD_res8_narrow"]
    assert doc["spaces"]["flexible"]["decoded"] == found["flexible"]["placement"]
    r = _run(["task=score", f"placement={f}", "hardware=small", f"compilation_cache_dir={kd_cache}",
              f"hydra.run.dir={tmp_path}"], tmp_path)
    assert r.returncode == 0, r.stderr
    sc = json.loads((tmp_path / "score.json").read_text())["spaces"]
    for base in ("layer_by_layer", "chunked", "flexible"):
        assert sc[base]["latency_cycles"] == pytest.approx(found[base]["latency_cycles"], rel=1e-6)
        assert sc[base]["energy_pj"] == pytest.approx(found[base]["energy_pj"], rel=1e-6)
    assert sc["flexible"]["reference_latency_cycles"] == pytest.approx(
        found["reference_latency_cycles"], rel=1e-6)
    assert "ref Mcycles" in r.stdout
    # and on other hardware parameters: the same placement, another cost
    r = _run(["task=score", f"placement={f}", "hardware=small", "reference_check=false",
              "hardware.energy.noc_pj_per_byte_hop=0.8", f"compilation_cache_dir={kd_cache}",
              f"hydra.run.dir={tmp_path / 'm'}"], tmp_path)
    assert r.returncode == 0, r.stderr
    other = json.loads((tmp_path / "m" / "score.json").read_text())
    assert other["hardware_config"]["energy"]["noc_pj_per_byte_hop"] == 0.8
    assert other["spaces"]["flexible"]["energy_pj"] > sc["flexible"]["energy_pj"]


def test_table_csv_and_plots(kd_run):
    r, out = kd_run
    assert "geomean" in r.stdout and "KD_res8_narrow" in r.stdout
    csv = (out / "results.csv").read_text().splitlines()
    assert csv[0].startswith("model,") and csv[1].startswith("KD_res8_narrow,")
    head = csv[0].split(",")
    for col in ("hardware.pe_sram_bytes", "hardware.noc.topology", "search.strategy",
                "objective", "seed", "overrides", "compile_seconds", "segment_evaluations"):
        assert col in head, col
    row = dict(zip(head, csv[1].split(",")))
    assert row["hardware.pe_sram_bytes"] == "4096" and row["hardware.rows"] == "8"
    # the table goes through logging: the job's log file has it too, and the job is named
    log = (out / "pipeorgan_jax.log").read_text()
    assert "KD_res8_narrow" in log and "geomean" in log and "compile" in log
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
    assert "nan" not in r.stdout  # no reference check: the column says "-"
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
    # the sweep as one table: task=collect gathers it
    r = _run(["task=collect", f"sweep_dir={tmp_path}", "hydra.run.dir=" + str(tmp_path / "c")],
             tmp_path)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "collected.csv")))
    assert len(rows) == 2 and {r["search.strategy"] for r in rows} == {"dp", "random"}
    assert {r["hardware.pe_sram_bytes"] for r in rows} == {"8192"}
    assert {r["swept"] for r in rows} == {"hardware.pe_sram_bytes=8192 search=dp",
                                         "hardware.pe_sram_bytes=8192 search=random"}
    assert "KD_res8_narrow" in r.stdout
    assert sum(l.startswith("warning: job") for l in r.stderr.splitlines()) == 2  # failed jobs
    assert (tmp_path / "collected_plots" / "speedup.png").stat().st_size > 1000
    assert (tmp_path / "collected_plots" / "pareto.png").stat().st_size > 1000


def test_pareto_objective(tmp_path, kd_cache):
    """objective=pareto: the headline searches minimize latency, then the flexible space at
    energy weights gives a latency-vs-energy front (results.json, a placements file that
    loads, pareto.png)."""
    from pipeorgan_jax import placement_io
    r = _run(["+workload=KD_res8_narrow", "hardware=small", "progress=false", "objective=pareto",
              "search.pareto_points=3", "reference_check=false", "search.dp_batch_size=32",
              "search.dp_rounds=1", f"compilation_cache_dir={kd_cache}",
              f"hydra.run.dir={tmp_path}"], tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "results.json").read_text())
    m = doc["models"]["KD_res8_narrow"]
    front = m["pareto"]
    lat = [p["latency_cycles"] for p in front]
    en = [p["energy_pj"] for p in front]
    assert len(front) >= 2 and lat == sorted(lat) and en == sorted(en, reverse=True)
    assert lat[0] <= m["flexible"]["latency_cycles"] * (1 + 1e-6)  # the latency end
    assert [w["energy_weight"] for w in m["pareto_weights"]] == [0.0, 0.5, 1.0]
    assert min(en) <= min(w["energy_pj"] for w in m["pareto_weights"]) * (1 + 1e-6)
    assert doc["objective_value"] == pytest.approx(m["flexible"]["latency_cycles"])
    _, ps = placement_io.load(tmp_path / "placements" / "KD_res8_narrow_pareto.json")
    assert len(ps) == len(front)
    assert (tmp_path / "plots" / "pareto.png").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.parametrize("search", ["exhaustive", "random", "evolutionary", "annealing",
                                    "gradient", "es"])
@pytest.mark.parametrize("objective", ["latency", "edp"])
def test_every_search_option_runs(tmp_path, kd_cache, search, objective):
    extra = ["search.iterations=3", "search.batch_size=128"]
    r = _run(["+workload=KD_res8_narrow", "hardware=small", "progress=false", "plots=false",
              f"search={search}", f"objective={objective}", "reference_check=false",
              f"compilation_cache_dir={kd_cache}", f"hydra.run.dir={tmp_path}", *extra], tmp_path)
    if search == "exhaustive":  # KD's space is far too large to enumerate: one clean line
        assert r.returncode == 1 and "max_space" in r.stderr and "Traceback" not in r.stderr
        return
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "results.json").read_text())["models"]["KD_res8_narrow"]
    assert m["strategy"] == search and m["flexible"]["feasible"]
    # the baselines are searched by the same strategy as the flexible space
    assert {m[k]["strategy"] for k in ("layer_by_layer", "chunked", "chunked_coarse", "flexible")} == {search}

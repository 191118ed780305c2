"""Bad files, strict outputs, safe names, one writer per run folder, clean interrupts (issue 9)."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

from pipeorgan_jax import runfiles
from pipeorgan_jax.app import describe
from pipeorgan_jax.workload import MAX_DIM, WorkloadError
from pipeorgan_jax.loading import load_model

TINY = """name: tiny
inputs:
  - {name: image, shape: [3, 8, 8]}
layers:
  - {name: conv1, op: conv, inputs: [image], C: 3, K: 4, Y: 8, X: 8, R: 3, S: 3}
"""


def strict_loads(text: str):
    def bad(c):
        raise AssertionError(f"non-strict JSON constant {c}")
    return json.loads(text, parse_constant=bad)


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return p


FILE_CASES = [
    ("bin.yaml", b"\x00\xff\xfe\x89binary", "not a text file"),
    ("bin.csv", b"\x00\xff\xfe\x89binary", "not a text file"),
    ("bin.m", b"\x00\xff\xfe\x89binary", "not a text file"),
    ("latin.yaml", "name: caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
    ("latin.csv", "name,op\nc\xe9,conv\n".encode("latin-1"), "not UTF-8 text"),
    ("latin.m", "Network caf\xe9 {}\n".encode("latin-1"), "not UTF-8 text"),
    ("src.yaml", TINY.replace("name: tiny", "name: tiny\nsource: [1, 2]"), "'source': must be a mapping"),
    ("inname.yaml", TINY.replace("name: image,", "name: [image],"), "must be a string"),
    ("lname.yaml", TINY.replace("name: conv1", "name: {a: 1}"), "must be a string"),
    ("modelname.yaml", TINY.replace("name: tiny", "name: [tiny]"), "'name': must be a non-empty string"),
    ("boolshape.yaml", TINY.replace("[3, 8, 8]", "[true, true, true]"), "must be [C, Y, X] integers"),
    ("dupin.yaml", TINY.replace("inputs:\n", "inputs:\n  - {name: image, shape: [3, 8, 8]}\n"), "duplicate input name"),
    ("huge.yaml", TINY.replace("K: 4", "K: 100000000000000000000000000"), "exceeds the limit"),
    ("bigmacs.yaml", TINY.replace("[3, 8, 8]", "[3, 16777216, 16]").replace("Y: 8, X: 8", "Y: 16777216, X: 16").replace("K: 4", "K: 16777216"), "exceed the limit"),
    ("intkey.yaml", TINY.replace("R: 3, S: 3}", "R: 3, S: 3, 7: 1}"), "unknown field"),
    ("tabname.yaml", "name: t\ntable:\n  - {name: [a], op: conv, C: 3, K: 4, Y: 8, X: 8, R: 3, S: 3}\n", "'name': must be a string"),
    ("nested.yaml", "[" * 2000 + "]" * 2000, None),
]


@pytest.mark.parametrize("name,data,want", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_every_file_error_is_one_line_naming_the_file(tmp_path, name, data, want):
    p = _write(tmp_path, name, data)
    with pytest.raises(WorkloadError) as e:
        load_model(p)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(p))
    if want:
        assert want in msg


@pytest.mark.parametrize("name", ["x.yaml", "x.csv", "x.m"])
def test_a_directory_is_not_a_file(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(WorkloadError, match="not a file"):
        load_model(tmp_path / name)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_one_line(tmp_path):
    p = _write(tmp_path, "x.yaml", TINY)
    p.chmod(0)
    with pytest.raises(WorkloadError, match="cannot read"):
        load_model(p)


def test_dimension_limit_is_the_float32_exact_range(tmp_path):
    ok = TINY.replace("K: 4", f"K: {MAX_DIM}")
    assert load_model(_write(tmp_path, "ok.yaml", ok)).layers[0].out_shape[0] == MAX_DIM
    with pytest.raises(WorkloadError, match="limit"):
        load_model(_write(tmp_path, "big.yaml", TINY.replace("K: 4", f"K: {MAX_DIM + 1}")))


def test_json_is_strict_and_not_applicable_is_null(tmp_path):
    import numpy as np
    runfiles.write_json_atomic(tmp_path / "x.json", {"a": float("nan"), "b": np.float32("inf"),
                                                     "c": [np.int64(3), np.bool_(True)]})
    assert strict_loads((tmp_path / "x.json").read_text()) == {"a": None, "b": None,
                                                               "c": [3, True]}
    assert not list(tmp_path.glob("*.tmp"))


def test_describe_a_model_without_weights_writes_null_and_shows_dash(tmp_path, caplog):
    doc = TINY.replace("op: conv, inputs: [image], C: 3, K: 4, Y: 8, X: 8, R: 3, S: 3",
                       "op: pool, inputs: [image], C: 3, Y: 8, X: 8, R: 2, S: 2, stride: 2")
    m = load_model(_write(tmp_path, "nw.yaml", doc))
    caplog.set_level("INFO", logger="pipeorgan_jax.app")  # the table goes through logging
    assert describe([m], tmp_path) == 0
    out = strict_loads((tmp_path / "workloads.json").read_text())["models"]["tiny"]
    assert out["aw_min"] is None and out["aw_median"] is None and out["aw_max"] is None
    line = next(l for l in caplog.text.splitlines() if l.startswith("tiny"))
    assert line.split()[-3:] == ["-", "-", "-"] and "nan" not in line


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_any_name_becomes_one_safe_file_name(name):
    s = runfiles.safe_filename(name)
    assert re.fullmatch(r"[A-Za-z0-9._+-]+", s) and not s.startswith(".") and len(s) <= 89
    if s == name:
        assert re.fullmatch(r"[A-Za-z0-9._+-]+", name)


def test_distinct_names_never_share_a_file():
    names = ["a/b", "a_b", "a\\b", "a b", "..", ".", "", "ü", "a/b/../c"]
    assert len({runfiles.safe_filename(n) for n in names}) == len(names)


def test_a_second_writer_on_a_run_folder_is_refused(tmp_path):
    with runfiles.RunLock(tmp_path):
        with pytest.raises(runfiles.RunFolderBusy, match="in use by another run"):
            runfiles.RunLock(tmp_path).acquire()
    runfiles.RunLock(tmp_path).acquire().release()  # free again once released


def _cli(args, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "pipeorgan_jax", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, **kw)


def test_odd_model_names_plots_csv_and_nulls_end_to_end(tmp_path):
    """A model named 'a/b' and one without weights: safe plot file, both rows saved, the
    reference column (reference_check=false) is null / empty / '-'."""
    a = _write(tmp_path, "a.yaml", TINY.replace("name: tiny", "name: a/b"))
    b = _write(tmp_path, "b.yaml", TINY.replace("name: tiny", "name: '..'"))
    run = tmp_path / "run"
    r = _cli(["+workload=custom", f"workload.models=[{a},{b}]", "hardware=small",
              "search.max_depth=2", "search.dp_batch_size=8", "search.dp_rounds=1",
              "progress=false", "reference_check=false", f"hydra.run.dir={run}"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    doc = strict_loads((run / "results.json").read_text())
    assert set(doc["models"]) == {"a/b", ".."}
    pngs = sorted(p.name for p in (run / "plots").glob("pe_map_*.png"))
    assert len(pngs) == 2 and all("/" not in p for p in pngs)
    import csv
    rows = list(csv.DictReader((run / "results.csv").read_text().splitlines()))
    assert len(rows) == 2 and all(r["reference_latency_cycles"] == "" for r in rows)
    line = next(l for l in r.stdout.splitlines() if l.startswith("a/b"))
    assert " - " in line and "nan" not in line.lower()


def _interrupt(tmp_path, sig, after_first_model: bool):
    run = tmp_path / "run"
    env = dict(os.environ)
    args = ["+workload=custom", "workload.models=[KD_res8_narrow,AS_ED_TCN,GE_FBNet_C]",
            "hardware=small", "progress=false", "plots=false", "reference_check=false",
            "search.dp_rounds=1", f"hydra.run.dir={run}",
            # XLA's path, whose compilation takes seconds (the fused kernel's needs none and
            # the run could end before the signal): the signal lands mid-compile, where
            # Python's default unwinding crashed
            "backend=xla"]
    # A non-interactive shell starts background jobs with SIGINT ignored, and an ignored
    # signal stays ignored (by design): reset it in the child before the app starts.
    boot = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
            "sys.argv = ['pipeorgan_jax'] + sys.argv[1:]; "
            "runpy.run_module('pipeorgan_jax', run_name='__main__')")
    p = subprocess.Popen([sys.executable, "-c", boot, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    t0 = time.time()
    while time.time() - t0 < 120:
        if after_first_model and (run / "results.csv").exists() and \
                strict_loads((run / "results.json").read_text())["models"]:
            break
        if not after_first_model and (run / ".pipeorgan.lock").exists():
            time.sleep(1.0)  # mid-compile of the first model
            break
        time.sleep(0.1)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    return p.returncode, err, run


@pytest.mark.parametrize("sig,code,first", [(signal.SIGINT, 130, True),
                                            (signal.SIGTERM, 143, False)])
def test_interrupt_is_one_line_exit_code_and_keeps_finished_models(tmp_path, sig, code, first):
    rc, err, run = _interrupt(tmp_path, sig, first)
    assert rc == code, err[-2000:]
    lines = [l for l in err.splitlines() if l.strip()]
    assert "Traceback" not in err and lines[-1].startswith(f"interrupted by {sig.name}")
    doc = strict_loads((run / "results.json").read_text())
    assert doc["interrupted"] == sig.name
    csv_rows = (run / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + len(doc["models"])
    if first:
        assert "KD_res8_narrow" in doc["models"]

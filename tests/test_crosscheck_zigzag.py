"""Smoke test of benchmarks/crosscheck_zigzag.py; skipped unless zigzag-dse is installed
(`pip install ".[crosscheck]"`). One tiny fc layer: a few seconds."""
import csv
import importlib.util
import math

import pytest

from pathlib import Path

pytest.importorskip("zigzag")

ROOT = Path(__file__).resolve().parents[1]


def _module():
    path = ROOT / "benchmarks" / "crosscheck_zigzag.py"
    spec = importlib.util.spec_from_file_location("crosscheck_zigzag", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_crosscheck_one_layer(tmp_path):
    mod = _module()
    out = tmp_path / "cz"
    assert mod.main(["--layers", "OD_D2go_FasterRCNN:conv20", "--lpf", "2", "--spatial", "1",
                     "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(f"{out}.csv")))
    assert len(rows) == 1
    r = rows[0]
    assert int(r["macs"]) == 96 * 24
    # both tools agree on the unavoidable DRAM traffic of a one-layer network within 10%
    assert math.isclose(float(r["ours_dram_uj"]), float(r["zz_dram_uj"]), rel_tol=0.1)
    assert float(r["lat_ratio"]) > 0 and float(r["energy_ratio"]) > 0

"""Fuzzing (issue 9, item 8): random valid DAG workloads through describe, the batch model, a
short search and the exact reference; random corruptions of valid workload files; random
config override values. The default run stays well under a minute; `-m slow` runs the same
properties with many more examples."""
import math
import random

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf.errors import OmegaConfBaseException

from pipeorgan_jax import reference, validate
from pipeorgan_jax.config import register
from pipeorgan_jax.cost import Scorer
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.paths import conf_dir
from pipeorgan_jax.placement import sample
from pipeorgan_jax.search import Problem, baseline_spaces, dp
from pipeorgan_jax.workload import WorkloadError, build_model, summarize
from pipeorgan_jax.loading import load_model

NUMBERS = ("latency_cycles", "energy_pj", "edp", "energy_mac_pj", "energy_pe_sram_pj",
           "energy_noc_pj", "energy_glb_pj", "energy_dram_pj", "byte_hops", "glb_bytes",
           "dram_bytes", "max_link_bytes")


@pytest.fixture(scope="module")
def small():
    return load_hardware("small")


# ----------------------------------------------------------------------------- valid DAGs

@st.composite
def dag_docs(draw, max_layers=5):
    """A valid workload document: each layer reads earlier tensors whose shapes fit its op."""
    C, Y, X = draw(st.integers(1, 6)), draw(st.integers(1, 10)), draw(st.integers(1, 10))
    tensors = {"x": (C, Y, X)}
    layers = []
    for i in range(draw(st.integers(1, max_layers))):
        name = f"l{i}"
        last = layers[-1]["name"] if layers else "x"
        src = draw(st.sampled_from([last] * 3 + sorted(tensors)))
        c, y, x = tensors[src]
        op = draw(st.sampled_from(["conv", "conv", "pool", "add", "concat", "fc", "upsample"]))
        same = [t for t, s in tensors.items() if s == (c, y, x) and t != src]
        rows = [t for t, s in tensors.items() if s[1:] == (y, x) and t != src]
        if op == "add" and same:
            spec = {"op": "add", "inputs": [src, draw(st.sampled_from(same))]}
        elif op == "concat" and rows:
            spec = {"op": "concat", "inputs": [src, draw(st.sampled_from(rows))]}
        elif op == "fc":
            flat = draw(st.booleans())
            spec = {"op": "fc", "inputs": [src], "C": c * y * x if flat else c,
                    "K": draw(st.integers(1, 8))}
            if not flat:
                spec.update(Y=y, X=x)
        elif op == "upsample" and y * x <= 64:
            spec = {"op": "upsample", "inputs": [src], "factor": draw(st.integers(1, 2))}
        elif op == "pool":
            spec = {"op": "pool", "inputs": [src], "C": c, "Y": y, "X": x,
                    "R": draw(st.integers(1, 3)), "S": draw(st.integers(1, 3)),
                    "stride": draw(st.integers(1, 2)), "kind": draw(st.sampled_from(["max", "avg"]))}
        else:
            dw = draw(st.booleans())
            spec = {"op": "conv", "inputs": [src], "C": c, "K": c if dw else draw(st.integers(1, 8)),
                    "Y": y, "X": x, "R": draw(st.integers(1, 3)), "S": draw(st.integers(1, 3)),
                    "stride": draw(st.integers(1, 2)), "groups": c if dw else 1}
        spec["name"] = name
        layers.append(spec)
        tensors[name] = build_model({"name": "p", "inputs": [{"name": "x", "shape": [C, Y, X]}],
                                     "layers": layers}).layers[-1].out_shape
    return {"name": "fuzz", "inputs": [{"name": "x", "shape": [C, Y, X]}], "layers": layers}


def check_dag(doc, hw, seed):
    m = build_model(doc)
    s = summarize(m)
    assert s["layers"] == len(doc["layers"]) and s["macs"] >= 0
    for k in ("aw_min", "aw_median", "aw_max"):  # nan only for a model without weights
        assert math.isnan(s[k]) == (m.weight_elems == 0)
    scorer = Scorer(m, hw, max_depth=3)
    p = sample(np.random.default_rng(seed), len(m.layers), 16, 3)
    c = scorer(p)
    for k in NUMBERS:
        v = np.asarray(c[k], np.float64)
        assert np.all(np.isfinite(v)) and np.all(v >= 0), k
    assert np.all(c["latency_cycles"] > 0)
    for i in range(2):  # the exact reference agrees on feasibility, and is finite
        r = reference.evaluate(m, hw, p[i])
        assert bool(r["feasible"]) == bool(c["feasible"][i])
        assert all(math.isfinite(r[k]) and r[k] >= 0 for k in ("latency_cycles", "energy_pj"))
    res = dp(Problem(scorer, "latency", baseline_spaces(3)["flexible"], seed=seed), 8, 1)
    assert math.isfinite(float(res.cost["latency_cycles"])) and res.placements_scored > 0


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(dag_docs(), st.integers(0, 2 ** 16))
def test_random_dags_score_finite_and_agree_on_feasibility(small, doc, seed):
    check_dag(doc, small, seed)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(dag_docs(max_layers=8), st.integers(0, 2 ** 16))
def test_random_dags_score_finite_and_agree_on_feasibility_long(small, doc, seed):
    check_dag(doc, small, seed)


# ----------------------------------------------------------------------------- corrupted files

VALID = (conf_dir().parent / "pipeorgan_jax" / "models" / "KD_res8_narrow.yaml").read_text()
VALID_CSV = "name,op,C,K,Y,X,R,S,stride,groups,inputs\nc1,conv,3,8,16,16,3,3,1,1,\n" \
            "c2,conv,8,8,16,16,3,3,2,8,c1\n"
JUNK = [None, True, -1, 0, 2 ** 70, 1.5, float("nan"), "", "x", [], [1, 2], {"a": 1}, [[1]],
        "same", "\u00e9", {"name": "x"}]


def _mutate_doc(rng: random.Random, node, depth=0):
    """Replace, delete or retype one random value somewhere in a parsed document."""
    if isinstance(node, dict) and node:
        k = rng.choice(list(node))
        r = rng.random()
        if r < 0.15:
            del node[k]
        elif r < 0.3 or depth > 3:
            node[k] = rng.choice(JUNK)
        else:
            node[k] = _mutate_doc(rng, node[k], depth + 1)
        return node
    if isinstance(node, list) and node:
        i = rng.randrange(len(node))
        r = rng.random()
        if r < 0.15:
            node.pop(i)
        elif r < 0.3:
            node.insert(i, rng.choice(JUNK))
        else:
            node[i] = _mutate_doc(rng, node[i], depth + 1)
        return node
    return rng.choice(JUNK)


def _corrupt_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        r, i = rng.random(), rng.randrange(max(1, len(b)))
        if r < 0.3:
            b[i:i + 1] = bytes([rng.randrange(256)])
        elif r < 0.5:
            del b[i:i + rng.randint(1, 20)]
        elif r < 0.7:
            b[i:i] = rng.choice([b":", b"{", b"[", b"- ", b"\n  ", b"\xff", b"\x00", b",", b";"])
        else:
            b = b[:i]
    return bytes(b)


def check_corruption(tmp_path, seed):
    rng = random.Random(seed)
    kind = rng.choice(["doc", "doc", "bytes", "csv"])
    if kind == "doc":
        doc = yaml.safe_load(VALID)
        for _ in range(rng.randint(1, 3)):
            doc = _mutate_doc(rng, doc)
        data, suffix = yaml.safe_dump(doc, allow_unicode=True).encode(), ".yaml"
    elif kind == "bytes":
        data, suffix = _corrupt_bytes(rng, VALID.encode()), ".yaml"
    else:
        data, suffix = _corrupt_bytes(rng, VALID_CSV.encode()), ".csv"
    p = tmp_path / f"f{seed}{suffix}"
    p.write_bytes(data)
    try:
        m = load_model(p)
    except WorkloadError as e:
        assert "\n" not in str(e) and str(e).startswith(str(p)), str(e)
        return
    # accepted: then every derived number is a sane positive integer
    assert m.layers and all(min(l.out_shape) >= 1 and l.macs >= 0 for l in m.layers)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2 ** 32))
def test_corrupted_workload_files_fail_in_one_line(tmp_path, seed):
    check_corruption(tmp_path, seed)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2 ** 32))
def test_corrupted_workload_files_fail_in_one_line_long(tmp_path, seed):
    check_corruption(tmp_path, seed)


# ----------------------------------------------------------------------------- overrides

KEYS = [f"hardware.{k}" for k in validate.HARDWARE] + [f"search.{k}" for k in validate.SEARCH] \
    + ["seed"]
VALUES = ["0", "-1", "1", "2", "3", "8", "64", "0.5", "1.5", "-0.0", "1e-300", "1e300", "nan",
          "inf", "-inf", "99999999999999999999", "true", "abc", "null", "[1]"]


def check_override(key, value):
    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
            cfg = compose(config_name="config", overrides=[
                "+workload=KD_res8_narrow", "hardware=small", f"{key}={value}"])
    except (OmegaConfBaseException, Exception) as e:  # Hydra's own one-line type error
        assert type(e).__module__.split(".")[0] in ("hydra", "omegaconf"), repr(e)
        return
    try:
        validate.check(cfg)
    except validate.ConfigError as e:
        assert "\n" not in str(e) and str(e).startswith(key.split(".")[0])
        return
    from pipeorgan_jax.hardware import Hardware
    hw = Hardware.from_config(cfg.hardware)  # an accepted value builds a machine
    assert hw.n_units >= 1 and hw.rows % hw.unit_rows == 0


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(KEYS), st.sampled_from(VALUES))
def test_random_override_values_are_clean(key, value):
    check_override(key, value)


@pytest.mark.slow
@pytest.mark.parametrize("key", KEYS)
def test_every_override_value_is_clean_long(key):
    for v in VALUES:
        check_override(key, v)

"""Shared set-up of the batch-vs-reference agreement checks (tests and docs/tolerances.md)."""
import zlib

import numpy as np

from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.placement import sample
from pipeorgan_jax.workload import build_model
from pipeorgan_jax.loading import load_model

TRANSFORMER = {
    "name": "tiny_transformer",
    "inputs": [{"name": "tokens", "shape": [64, 32, 1]}],
    "layers": [
        {"name": "q", "op": "fc", "inputs": ["tokens"], "C": 64, "K": 64, "Y": 32},
        {"name": "k", "op": "fc", "inputs": ["tokens"], "C": 64, "K": 64, "Y": 32},
        {"name": "v", "op": "fc", "inputs": ["tokens"], "C": 64, "K": 64, "Y": 32},
        {"name": "score", "op": "matmul", "inputs": ["q", "k"], "M": 32, "N": 32, "Kd": 16, "heads": 4},
        {"name": "ctx", "op": "matmul", "inputs": ["score", "v"], "M": 32, "N": 16, "Kd": 32, "heads": 4},
        {"name": "proj", "op": "fc", "inputs": ["ctx"], "C": 64, "K": 64, "Y": 32},
        {"name": "res1", "op": "add", "inputs": ["proj", "tokens"]},
        {"name": "ffn1", "op": "fc", "inputs": ["res1"], "C": 64, "K": 256, "Y": 32},
        {"name": "ffn2", "op": "fc", "inputs": ["ffn1"], "C": 256, "K": 64, "Y": 32},
        {"name": "res2", "op": "add", "inputs": ["ffn2", "res1"]},
    ],
}

WORKLOADS = ("KD_res8_narrow", "GE_FBNet_C", "tiny_transformer")
HARDWARE = ("small", "medium")
TOPOLOGIES = ("mesh", "torus", "express")
PER_CASE = 12


def workload(name):
    return build_model(TRANSFORMER, "tiny_transformer") if name == "tiny_transformer" else load_model(name)


def hardware(name, topology):
    return load_hardware(name, [f"hardware.noc.topology={topology}"])


def placements(model, hw, n=PER_CASE, key=""):
    rng = np.random.default_rng(zlib.crc32(f"{model.name}/{hw.name}/{hw.topology}/{key}".encode()))
    return sample(rng, len(model.layers), n, max_depth=min(6, hw.n_units),
                  red_ok=np.asarray([l.reduction_ok for l in model.layers]))


def pairs():
    """Every case: ((workload, array, topology, i), batch cost of placement i, reference)."""
    from pipeorgan_jax import reference
    from pipeorgan_jax.cost import Scorer
    for wn in WORKLOADS:
        m = workload(wn)
        for hn in HARDWARE:
            for topo in TOPOLOGIES:
                hw = hardware(hn, topo)
                p = placements(m, hw)
                c = Scorer(m, hw, max_depth=6)(p)
                for i in range(p.batch_size):
                    yield ((wn, hn, topo, i), {k: v[i] for k, v in c.items()},
                           reference.evaluate(m, hw, p[i]))

"""The batch is split over every visible device (a 1-D mesh over the batch axis), and the
results do not depend on it. Two host devices stand in for two accelerators."""
import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, numpy as np, jax
from pipeorgan_jax.cost import Scorer
from pipeorgan_jax.devices import select_devices
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.placement import sample
from pipeorgan_jax.loading import load_model
m, hw = load_model("KD_res8_narrow"), load_hardware("small")
p = sample(np.random.default_rng(0), len(m.layers), 200, 4)
both = Scorer(m, hw, max_depth=4, devices=select_devices("cpu"))
one = Scorer(m, hw, max_depth=4, devices=select_devices("cpu")[:1])
c, B = both.score_on_devices(p)
shards = [(str(s.device), int(s.data.shape[0])) for s in c.latency_cycles.addressable_shards]
a, b = both(p), one(p)
print(json.dumps({"devices": [str(d) for d in jax.devices()], "shards": shards, "rows": B,
                  "equal": {k: bool(np.array_equal(a[k], b[k])) for k in a},
                  "max_rel": {k: float(np.max(np.abs(a[k].astype(float) - b[k])
                                              / np.maximum(np.abs(b[k].astype(float)), 1e-30)))
                              for k in a}}))
"""


def test_batch_is_sharded_over_two_devices_with_equal_results():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(out["devices"]) == 2
    # both devices hold a shard of the (padded) batch, of equal size
    assert sorted(d for d, _ in out["shards"]) == sorted(out["devices"])
    assert [n for _, n in out["shards"]] == [100, 100] and out["rows"] == 200
    # the decisions are identical; sums (latency, energy, byte-hops) may round differently
    # (each device's program is compiled for its 100 rows, so XLA may order a reduction
    # differently): equal to float32 rounding
    for k in ("feasible", "reason", "seg_feasible"):
        assert out["equal"][k], k
    assert max(out["max_rel"].values()) < 1e-6, out["max_rel"]

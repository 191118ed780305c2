"""Flax / JAX models traced into workloads: a small CNN with residual adds, a transformer block
and a plain JAX function, with layers, edges, skip edges and MACs worked out in
tests/flax_models.py; the YAML round trip; every error class as one line."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import flax_models as fm
import onnx_graphs as og
from pipeorgan_jax import workload_yaml
from pipeorgan_jax.jax_import import trace
from pipeorgan_jax.workload import WorkloadError
from pipeorgan_jax.loading import load_model


@pytest.mark.parametrize("make", [fm.small_cnn, fm.transformer_block],
                         ids=["small_cnn", "transformer_block"])
def test_structure(make):
    module, x, exp = make()
    m = trace(module, x)
    assert [(l.name, l.op) for l in m.layers] == exp["layers"]
    assert sorted(og.edge_names(m)) == sorted(exp["edges"])
    assert len(m.skip_edges) == og.skip_edges([n for n, _ in exp["layers"]], {"input"},
                                              exp["edges"])
    assert m.macs == exp["macs"]
    assert (m.source["format"], m.source["function"]) == ("jax_trace", type(module).__name__)


def test_small_cnn_shapes():
    module, x, _ = fm.small_cnn()
    m = trace(module, x)
    assert m.input_shapes == ((3, 16, 16),)  # NHWC read as [C, Y, X]
    stem = m.layers[0]
    assert (stem.params["stride"], stem.out_shape) == (2, (8, 8, 8))
    assert m.layers[m.index("max_pool")].out_shape == (8, 4, 4)
    assert m.layers[m.index("global_avg_pool")].out_shape == (8, 1, 1)


def test_transformer_shapes():
    module, x, _ = fm.transformer_block()
    m = trace(module, x)
    assert m.input_shapes == ((fm.D, fm.T, 1),)
    s = m.layers[m.index("MultiHeadDotProductAttention_0/einsum")].params
    assert (s["heads"], s["M"], s["N"], s["Kd"]) == (fm.H, fm.T, fm.T, fm.D // fm.H)
    q = m.layers[0].params
    assert (q["C"], q["K"], q["Y"]) == (fm.D, fm.D, fm.T)  # DenseGeneral to H x dh heads


def test_plain_jax_function_concat_split():
    f, x, macs = fm.concat_split_fn()
    m = trace(f, x, name="gated")
    assert m.name == "gated"
    assert [(l.name, l.op) for l in m.layers] == [
        ("conv", "conv"), ("conv_2", "conv"), ("concat", "concat"), ("slice_0", "slice"),
        ("slice_1", "slice"), ("add", "add")]
    assert m.layers[4].params["start"] == 8 and m.macs == macs
    assert m.layers[-1].inputs == ("slice_0", "slice_1")  # sigmoid(g) * v: a two-layer op


def test_yaml_round_trip(tmp_path):
    module, x, _ = fm.transformer_block()
    m = trace(module, x)
    back = load_model(workload_yaml.write(m, tmp_path / "block.yaml"))
    assert back.layers == m.layers and back.edges == m.edges


# ----------------------------------------------------------------------------- errors

def _one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_error_batch_size():
    module, x, _ = fm.small_cnn()
    with pytest.raises(WorkloadError) as e:
        trace(module, jnp.zeros((4, 16, 16, 3)))
    msg = _one_line(e)
    assert "batch size 4" in msg and "trace with batch size 1" in msg


def test_error_control_flow():
    def f(x):
        return jax.lax.scan(lambda c, _: (c * 2.0, None), x, None, length=3)[0]
    with pytest.raises(WorkloadError) as e:
        trace(f, jnp.zeros((1, 4, 4, 2)))
    assert "(scan): control flow is not mapped" in _one_line(e)


def test_error_unsupported_primitive():
    class Sorter(nn.Module):
        @nn.compact
        def __call__(self, x):
            return jnp.sort(nn.Conv(4, (3, 3))(x), axis=-1)
    with pytest.raises(WorkloadError) as e:
        trace(Sorter(), jnp.zeros((1, 4, 4, 2)))
    msg = _one_line(e)
    assert "node 'Sorter' (sort): primitive 'sort' is not mapped" in msg


def test_error_no_input():
    with pytest.raises(WorkloadError, match="no example input"):
        trace(lambda: 0)


@pytest.mark.slow
def test_resnet50_macs():
    """Flax ResNet-50 at 224x224: 53 convs, 16 adds, 2 pools, 1 fc; MACs summed by hand here
    (4.09 G, the figure usually quoted for ResNet-50)."""
    class Bottleneck(nn.Module):
        f: int
        s: int = 1

        @nn.compact
        def __call__(self, x):
            bn = lambda: nn.BatchNorm(use_running_average=True)  # noqa: E731
            y = nn.relu(bn()(nn.Conv(self.f, (1, 1))(x)))
            y = nn.relu(bn()(nn.Conv(self.f, (3, 3), strides=self.s)(y)))
            y = bn()(nn.Conv(4 * self.f, (1, 1))(y))
            if x.shape[-1] != 4 * self.f or self.s != 1:
                x = bn()(nn.Conv(4 * self.f, (1, 1), strides=self.s)(x))
            return nn.relu(x + y)

    stages = [(3, 64), (4, 128), (6, 256), (3, 512)]

    class ResNet50(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(64, (7, 7), strides=2)(x))
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
            for i, (n, f) in enumerate(stages):
                for j in range(n):
                    x = Bottleneck(f, 2 if j == 0 and i > 0 else 1)(x)
            return nn.Dense(1000)(x.mean(axis=(1, 2)))

    m = trace(ResNet50(), jnp.zeros((1, 224, 224, 3)))
    macs, hw, cin = 112 * 112 * 64 * 3 * 49, 56, 64
    for i, (n, f) in enumerate(stages):
        for j in range(n):
            out = hw // 2 if j == 0 and i > 0 else hw
            macs += hw * hw * f * cin + out * out * f * f * 9 + out * out * 4 * f * f
            if j == 0:
                macs += out * out * 4 * f * cin
            hw, cin = out, 4 * f
    macs += 2048 * 1000
    assert m.macs == macs == 4_089_184_256
    ops = [l.op for l in m.layers]
    assert (ops.count("conv"), ops.count("add"), ops.count("pool"), ops.count("fc")) == \
        (53, 16, 2, 1)
    assert len(m.skip_edges) == 16 + 4  # one per add, plus the 4 projection shortcuts' inputs

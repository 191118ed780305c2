"""ONNX import: four real structures built with onnx.helper (layers, edges, skip edges and
MACs worked out in tests/onnx_graphs.py), the round trip of two XR-bench models through our own
ONNX writer, the YAML writer of task=import, and every error class as one line."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import onnx_graphs as og  # noqa: E402  (tests/ is on sys.path under pytest's rootdir)

from pipeorgan_jax import workload_yaml  # noqa: E402
from pipeorgan_jax.onnx_export import to_onnx, write_onnx  # noqa: E402
from pipeorgan_jax.workload import WorkloadError, summarize  # noqa: E402
from pipeorgan_jax.loading import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(og.MODELS))
def test_structure(name, tmp_path):
    path, exp = og.write(name, tmp_path)
    m = load_model(path)
    assert [(l.name, l.op) for l in m.layers] == exp["layers"]
    assert sorted(og.edge_names(m)) == sorted(exp["edges"])
    assert len(m.skip_edges) == og.skip_edges([n for n, _ in exp["layers"]], set(m.input_names),
                                              exp["edges"])
    assert m.macs == exp["macs"]
    assert m.source["format"] == "onnx"


def test_resnet_fields_and_fusion(tmp_path):
    m = load_model(og.write("resnet_bottleneck", tmp_path)[0])
    c2 = m.layers[m.index("b1_c2")]
    # 3x3 stride 2 with pads 1: kept as padding 1 (PyTorch's), 16x16 -> 8x8
    assert (c2.params["stride"], c2.params["padding"], c2.out_shape) == (2, 1, (8, 8, 8))
    assert m.input_shapes == ((16, 16, 16),)
    assert m.source["notes"]["b1_c1"] == "fused: BatchNormalization, Relu"
    assert m.source["notes"]["b1_add"] == "fused: Relu"


def test_depthwise_groups(tmp_path):
    m = load_model(og.write("depthwise_separable", tmp_path)[0])
    assert m.layers[m.index("dw")].params["groups"] == 24
    assert m.layers[m.index("dw2")].params["groups"] == 8
    assert m.layers[m.index("dw2")].out_shape == (8, 6, 6)
    assert "Clip" in m.source["notes"]["dw"]


def test_attention_shapes(tmp_path):
    m = load_model(og.write("attention", tmp_path)[0])
    T, D, H = og.T, og.D, og.H
    assert m.input_shapes == ((D, T, 1),)  # [1, T, D] tokens as [C, Y, X] = [D, T, 1]
    qkv = m.layers[m.index("qkv")]
    assert (qkv.params["C"], qkv.params["K"], qkv.params["Y"]) == (D, 3 * D, T)
    assert [m.layers[m.index(f"split_{k}")].params.get("start", 0) for k in range(3)] == \
        [0, D, 2 * D]
    s = m.layers[m.index("scores")].params
    assert (s["heads"], s["M"], s["N"], s["Kd"]) == (H, T, T, D // H)
    c = m.layers[m.index("context")].params
    assert (c["heads"], c["M"], c["N"], c["Kd"]) == (H, T, D // H, T)
    assert "Softmax" in m.source["notes"]["scores"]


def test_unet_concat_and_upsample(tmp_path):
    m = load_model(og.write("unet", tmp_path)[0])
    assert m.layers[m.index("cat2")].out_shape == (32, 8, 8)
    assert m.layers[m.index("u1")].params["factor"] == 2
    assert m.layers[m.index("p1")].params["kind"] == "max"


# ----------------------------------------------------------------------------- our own models

@pytest.mark.parametrize("name, ops", [
    ("KD_res8_narrow", {"Conv", "AveragePool", "Add", "GlobalAveragePool", "Gemm"}),
    ("GE_FBNet_C", {"Conv", "Add", "GlobalAveragePool"})])
def test_round_trip_builtin_models(name, ops, tmp_path):
    """Built-in model -> our ONNX writer -> the importer: the same layers (shapes, MACs,
    geometry), edges and skip edges; only `ref` (a table row name) has no place in ONNX."""
    m = load_model(name)
    path = write_onnx(m, tmp_path / f"{name}.onnx")
    assert ops <= {n.op_type for n in onnx.load(str(path)).graph.node}
    back = load_model(path)
    assert list(back.layers) == [dataclasses.replace(l, ref=None) for l in m.layers]
    assert back.edges == m.edges
    s, t = summarize(m), summarize(back)
    assert (t["layers"], t["edges"], t["skip_edges"], t["macs"], t["weight_elems"]) == \
        (s["layers"], s["edges"], s["skip_edges"], s["macs"], s["weight_elems"])


def test_writer_covers_every_op(tmp_path):
    """slice, concat, upsample, matmul, reshape and a Y x X fc come back as they went out
    (a reshape becomes the importer's own reshape in front of its consumer)."""
    from pipeorgan_jax.workload import build_model
    doc = {"name": "ops", "inputs": [{"name": "x", "shape": [8, 4, 4]}], "layers": [
        {"name": "a", "op": "slice", "inputs": ["x"], "C": 4, "start": 2},
        {"name": "b", "op": "upsample", "inputs": ["a"], "factor": 2},
        {"name": "c", "op": "pool", "inputs": ["b"], "C": 4, "Y": 8, "X": 8, "R": 2, "S": 2,
         "stride": 2, "kind": "avg"},
        {"name": "d", "op": "concat", "inputs": ["c", "x"]},
        {"name": "e", "op": "fc", "inputs": ["d"], "C": 12, "K": 8, "Y": 4, "X": 4},
        {"name": "f", "op": "matmul", "inputs": ["e", "e"], "heads": 2, "M": 4, "N": 4,
         "Kd": 16},
        {"name": "g", "op": "reshape", "inputs": ["f"], "C": 8, "Y": 2, "X": 2},
        {"name": "h", "op": "conv", "inputs": ["g"], "C": 8, "K": 4, "Y": 2, "X": 2, "R": 1,
         "S": 1}]}
    m = build_model(doc)
    onnx.save(to_onnx(m), str(tmp_path / "ops.onnx"))
    back = load_model(tmp_path / "ops.onnx")
    assert [l.op for l in back.layers] == [l.op for l in m.layers]
    assert back.layers[-2].name == "f.reshape"  # the importer's reshape stands in for g
    assert [l.macs for l in back.layers] == [l.macs for l in m.layers]
    assert [l.out_shape for l in back.layers] == [l.out_shape for l in m.layers]


def test_yaml_writer_round_trip(tmp_path):
    """task=import's file: loading it gives the same model; importer notes kept per layer."""
    m = load_model(og.write("attention", tmp_path)[0])
    path = workload_yaml.write(m, tmp_path / "attention.yaml")
    text = path.read_text()
    assert "- {name: qkv, op: fc, inputs: [x], C: 16, K: 48, Y: 8" in text
    back = load_model(path)
    assert back.layers == m.layers and back.edges == m.edges
    assert back.input_shapes == m.input_shapes


# ----------------------------------------------------------------------------- errors

def _one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def _save(tmp_path, g, inputs, outputs, name="bad"):
    return g.save(tmp_path / f"{name}.onnx", inputs, outputs)


def test_error_batch_size(tmp_path):
    g = og.Graph()
    g.conv("x", "c", 3, 4, 3)
    with pytest.raises(WorkloadError) as e:
        load_model(_save(tmp_path, g, {"x": [2, 3, 8, 8]}, ["c_bn_relu"].copy()))
    msg = _one_line(e)
    assert "node 'x' (graph input): batch size 2" in msg and "batch size 1" in msg


def test_error_dynamic_shape(tmp_path):
    g = og.Graph()
    g.conv("x", "c", 3, 4, 3)
    with pytest.raises(WorkloadError) as e:
        load_model(_save(tmp_path, g, {"x": ["N", 3, 8, 8]}, ["c_bn_relu"]))
    msg = _one_line(e)
    assert "dynamic dimension 0 ('N')" in msg and "fix the input shapes" in msg


def _conv_transpose_graph():
    g = og.Graph()
    c = g.conv("x", "c", 3, 4, 3)
    up = g.op("ConvTranspose", [c, g.w(4, 4, 2, 2)], "up", kernel_shape=[2, 2], strides=[2, 2])
    return g, up


def test_error_unsupported_op(tmp_path):
    g, up = _conv_transpose_graph()
    with pytest.raises(WorkloadError) as e:
        load_model(_save(tmp_path, g, {"x": [1, 3, 8, 8]}, [up]))
    msg = _one_line(e)
    assert "node 'up' (ConvTranspose): op type 'ConvTranspose' is not mapped" in msg
    assert "onnx_unsupported=passthrough" in msg


def test_passthrough_keeps_shape_preserving_op(tmp_path):
    g = og.Graph()
    c = g.conv("x", "c", 3, 4, 3)
    n = g.op("LRN", [c], "lrn", size=3)
    d = g.conv(n, "d", 4, 4, 3)
    path = _save(tmp_path, g, {"x": [1, 3, 8, 8]}, [d])
    with pytest.raises(WorkloadError, match=r"node 'lrn' \(LRN\)"):
        load_model(path)
    m = load_model(path, onnx_unsupported="passthrough")
    assert [l.name for l in m.layers] == ["c", "d"] and m.layers[1].inputs == ("c",)
    assert "LRN (passthrough)" in m.source["notes"]["c"]


def test_passthrough_that_changes_size_is_one_line(tmp_path):
    g, up = _conv_transpose_graph()
    d = g.conv(up, "d", 4, 4, 3)
    with pytest.raises(WorkloadError) as e:
        load_model(_save(tmp_path, g, {"x": [1, 3, 8, 8]}, [d]), onnx_unsupported="passthrough")
    assert "node 'd' (Conv)" in _one_line(e)


def test_error_resize_not_integer(tmp_path):
    g = og.Graph()
    c = g.conv("x", "c", 3, 4, 3)
    r = g.op("Resize", [c, "", g.const(np.array([1, 1, 1.5, 1.5], np.float32))], "r",
             mode="nearest")
    with pytest.raises(WorkloadError) as e:
        load_model(_save(tmp_path, g, {"x": [1, 3, 8, 8]}, [r]))
    assert "node 'r' (Resize)" in _one_line(e) and "integer scale" in str(e.value)


def test_error_concat_not_channels(tmp_path):
    g = og.Graph()
    a, b = g.conv("x", "a", 3, 4, 3), g.conv("x", "b", 3, 4, 3)
    c = g.op("Concat", [a, b], "cat", axis=2)
    with pytest.raises(WorkloadError) as e:
        load_model(_save(tmp_path, g, {"x": [1, 3, 8, 8]}, [c]))
    assert "node 'cat' (Concat): concatenates along axis 2" in _one_line(e)


def test_error_slice_not_channels(tmp_path):
    g = og.Graph()
    a = g.conv("x", "a", 3, 4, 3)
    s = g.op("Slice", [a, g.const(np.array([0])), g.const(np.array([4])),
                       g.const(np.array([2]))], "crop")
    with pytest.raises(WorkloadError) as e:
        load_model(_save(tmp_path, g, {"x": [1, 3, 8, 8]}, [s]))
    assert "node 'crop' (Slice): slices along axis 2" in _one_line(e)


def test_error_not_onnx(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"\x00\x01 not a protobuf \xff" * 10)
    with pytest.raises(WorkloadError) as e:
        load_model(p)
    assert "not a readable ONNX model" in _one_line(e)


def test_error_onnx_missing(tmp_path, monkeypatch):
    path, _ = og.write("unet", tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(WorkloadError) as e:
        load_model(path)
    assert "pip install 'pipeorgan_jax[onnx]'" in _one_line(e)


def _cli(args, cwd):
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pipeorgan_jax", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


def test_cli_error_is_one_line_and_passthrough_option(tmp_path):
    g = og.Graph()
    c = g.conv("x", "c", 3, 4, 3)
    n = g.op("LRN", [c], "lrn", size=3)
    path = _save(tmp_path, g, {"x": [1, 3, 8, 8]}, [g.conv(n, "d", 4, 4, 3)])
    r = _cli(["+workload=custom", f"workload.models=[{path}]", "task=describe",
              f"hydra.run.dir={tmp_path}/run1"], tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    errs = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(errs) == 1 and "node 'lrn' (LRN)" in errs[0], r.stderr
    r = _cli(["+workload=custom", f"workload.models=[{path}]", "task=import",
              "workload.onnx_unsupported=passthrough", f"hydra.run.dir={tmp_path}/run2"],
             tmp_path)
    assert r.returncode == 0, r.stderr
    assert load_model(tmp_path / "run2" / "bad.yaml").macs == \
        load_model(path, onnx_unsupported="passthrough").macs


def test_conv_attributes(tmp_path):
    """Dilation (dense kernel, same output size and MACs), TF-style asymmetric 'same' pads,
    auto_pad, and a 1-d convolution on a [1, C, L] input."""
    g = og.Graph()
    a = g.op("Conv", ["x", g.w(8, 4, 3, 3)], "dilated", kernel_shape=[3, 3], pads=[2] * 4,
             dilations=[2, 2])
    b = g.op("Conv", [a, g.w(8, 8, 3, 3)], "tf_same", kernel_shape=[3, 3], strides=[2, 2],
             pads=[0, 0, 1, 1])
    c = g.op("Conv", [b, g.w(8, 8, 3, 3)], "auto", kernel_shape=[3, 3],
             auto_pad="SAME_UPPER")
    m = load_model(g.save(tmp_path / "attrs.onnx", {"x": [1, 4, 16, 16]}, [c]))
    d, t, u = m.layers
    assert d.out_shape == (8, 16, 16) and d.macs == 16 * 16 * 8 * 4 * 9
    assert "dilations [2, 2]" in m.source["notes"]["dilated"]
    assert (t.params["padding"], t.params["stride"], t.out_shape, t.pad_rows) == \
        ("same", 2, (8, 8, 8), 0)
    assert u.params["padding"] == "same" and "auto" not in m.source.get("notes", {})
    g = og.Graph()
    y = g.op("Conv", ["s", g.w(6, 2, 5)], "conv1d", kernel_shape=[5], pads=[2, 2])
    m = load_model(g.save(tmp_path / "c1d.onnx", {"s": [1, 2, 40]}, [y]))
    assert m.input_shapes == ((2, 40, 1),) and m.layers[0].out_shape == (6, 40, 1)
    assert (m.layers[0].params["R"], m.layers[0].params["S"]) == (5, 1)
    assert m.macs == 40 * 6 * 2 * 5


def test_squeeze_excitation_broadcast(tmp_path):
    """x * sigmoid(fc(relu(fc(gap(x))))): the [C, 1, 1] gate is broadcast over the map by an
    inserted upsample, and the multiply is a two-layer element-wise op (`add`)."""
    g = og.Graph()
    x = g.conv("x", "conv", 4, 16, 3)
    s = g.op("GlobalAveragePool", [x], "gap")
    s = g.conv(s, "squeeze", 16, 4, 1, bn=False)
    s = g.conv(s, "excite", 4, 16, 1, bn=False, act="Sigmoid")
    y = g.op("Mul", [x, s], "gate")
    m = load_model(g.save(tmp_path / "se.onnx", {"x": [1, 4, 8, 8]}, [y]))
    assert [(l.name, l.op) for l in m.layers] == [
        ("conv", "conv"), ("gap", "pool"), ("squeeze", "conv"), ("excite", "conv"),
        ("excite.broadcast", "upsample"), ("gate", "add")]
    b = m.layers[4]
    assert (b.params["factor"], b.params["factor_x"], b.out_shape) == (8, 8, (16, 8, 8))
    assert m.layers[5].inputs == ("conv", "excite.broadcast")
    assert m.macs == 8 * 8 * 16 * 4 * 9 + 16 * 4 + 4 * 16


def test_pad_folds_into_conv(tmp_path):
    """TF-style explicit Pad in front of a valid conv becomes the conv's padding; a reflect
    pad is one line."""
    g = og.Graph()
    p = g.op("Pad", ["x", g.const(np.array([0, 0, 0, 0, 0, 0, 1, 1]))], "pad")
    c = g.op("Conv", [p, g.w(8, 3, 3, 3)], "c", kernel_shape=[3, 3], strides=[2, 2])
    p2 = g.op("Pad", [c, g.const(np.array([0, 0, 1, 1, 0, 0, 1, 1]))], "pad2")
    d = g.op("MaxPool", [p2], "pool", kernel_shape=[3, 3])
    m = load_model(g.save(tmp_path / "pad.onnx", {"x": [1, 3, 16, 16]}, [d]))
    c, pool = m.layers
    assert m.input_shapes == ((3, 16, 16),)
    assert (c.params["padding"], c.out_shape) == ("same", (8, 8, 8))
    assert (pool.params["padding"], pool.out_shape) == ("same", (8, 8, 8))  # pads 1, stride 1
    g = og.Graph()
    p = g.op("Pad", ["x", g.const(np.array([0, 0, 1, 1, 0, 0, 1, 1]))], "rpad", mode="reflect")
    with pytest.raises(WorkloadError) as e:
        load_model(g.save(tmp_path / "reflect.onnx", {"x": [1, 3, 8, 8]},
                          [g.op("Conv", [p, g.w(4, 3, 3, 3)], "c", kernel_shape=[3, 3])]))
    assert "node 'rpad' (Pad): reflect padding" in _one_line(e)


def test_shape_arithmetic_is_free(tmp_path):
    """PyTorch-style flatten: Shape -> Gather -> Unsqueeze -> Concat -> Reshape computes the
    target shape from the activation's static shape; no layer, the Gemm reads the pool."""
    g = og.Graph()
    c = g.conv("x", "c", 3, 8, 3)
    p = g.op("GlobalAveragePool", [c], "gap")
    shp = g.op("Shape", [p], "shape")
    n = g.op("Gather", [shp, g.const(np.array(0))], "batch", axis=0)
    n = g.op("Unsqueeze", [n, g.const(np.array([0]))], "batch1")
    tgt = g.op("Concat", [n, g.const(np.array([-1]))], "target", axis=0)
    f = g.op("Reshape", [p, tgt], "flat")
    y = g.op("Gemm", [f, g.w(10, 8), g.w(10)], "fc", transB=1)
    m = load_model(g.save(tmp_path / "flat.onnx", {"x": [1, 3, 8, 8]}, [y]))
    assert [(l.name, l.op) for l in m.layers] == [("c", "conv"), ("gap", "pool"), ("fc", "fc")]
    assert (m.layers[2].params["C"], m.layers[2].params["K"]) == (8, 10)

"""Writing a workload as an ONNX model, to check the ONNX importer against our own models.

Every layer output is an NCHW tensor [1, C, Y, X] named like the layer; weights are zero
initializers of the right shape (only shapes matter to the cost model). The mapping is the
importer's in reverse: conv -> Conv (pads written out from the `padding` rule), pool ->
MaxPool / AveragePool (GlobalAveragePool / GlobalMaxPool when the window is the whole map),
fc -> Flatten + Gemm (one token) or Reshape, Transpose, MatMul, Transpose, Reshape (Y*X tokens),
matmul -> Reshape + MatMul, add -> Add / Sum, concat -> Concat, slice -> Slice, upsample ->
Resize, reshape -> Reshape. Importing the file gives back the same layers, MACs and edges,
except that a `reshape` layer is a free view in ONNX (it disappears) and an fc over a Y x X
grid comes back with Y*X tokens in one row.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeorgan_jax.onnx_import import _onnx
from pipeorgan_jax.workload import Model

OPSET = 17


def _pads(n, k, s, padding):
    """(leading, trailing) zero rows that the workload format's `padding` means."""
    if padding == "same":
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        return total // 2, total - total // 2
    if padding == "valid":
        return 0, 0
    return int(padding), int(padding)


def to_onnx(model: Model):
    """An onnx.ModelProto of the workload."""
    onnx = _onnx()
    h, tp = onnx.helper, onnx.TensorProto
    nodes, inits = [], []

    def const(name, arr):
        inits.append(onnx.numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(op, inputs, output, **attrs):
        nodes.append(h.make_node(op, inputs, [output], name=output, **attrs))
        return output

    # A fc / matmul layer's name is its MatMul / Gemm node (the importer names layers after
    # nodes); the NCHW tensor its consumers read is `<name>.out`.
    tensor = {}
    for layer in model.layers:
        p, n, ins = layer.params, layer.name, [tensor.get(s, s) for s in layer.inputs]
        if layer.op in ("conv", "pool"):
            sy = p["stride"]
            sx = p["stride_x"] or sy
            (ty, by), (lx, rx) = (_pads(p["Y"], p["R"], sy, p["padding"]),
                                  _pads(p["X"], p["S"], sx, p["padding"]))
            win = dict(strides=[sy, sx], pads=[ty, lx, by, rx])
            if layer.op == "conv":
                w = const(f"{n}.weight", np.zeros((p["K"], p["C"] // p["groups"], p["R"], p["S"]),
                                                  np.float32))
                node("Conv", [ins[0], w], n, kernel_shape=[p["R"], p["S"]], group=p["groups"],
                     **win)
            elif (p["R"], p["S"], sy, sx) == (p["Y"], p["X"], p["Y"], p["X"]) and \
                    layer.out_shape[1:] == (1, 1):
                node("GlobalMaxPool" if p["kind"] == "max" else "GlobalAveragePool", ins, n)
            else:
                node("MaxPool" if p["kind"] == "max" else "AveragePool", ins, n,
                     kernel_shape=[p["R"], p["S"]], **win)
        elif layer.op == "fc":
            C, K, Y, X = p["C"], p["K"], p["Y"], p["X"]
            w = const(f"{n}.weight", np.zeros((C, K), np.float32))
            if Y * X == 1:
                flat = node("Flatten", ins, f"{n}.flatten", axis=1)
                node("Gemm", [flat, w], n)
                node("Reshape", [n, const(f"{n}.shape", np.array([1, K, 1, 1]))], f"{n}.out")
            else:
                t = node("Reshape", [ins[0], const(f"{n}.in_shape", np.array([1, C, Y * X]))],
                         f"{n}.in")
                t = node("Transpose", [t], f"{n}.tokens", perm=[0, 2, 1])
                t = node("MatMul", [t, w], n)
                t = node("Transpose", [t], f"{n}.channels", perm=[0, 2, 1])
                node("Reshape", [t, const(f"{n}.shape", np.array([1, K, Y, X]))], f"{n}.out")
        elif layer.op == "matmul":
            H, M, N, Kd = p["heads"], p["M"], p["N"], p["Kd"]
            a = node("Reshape", [ins[0], const(f"{n}.a_shape", np.array([1, H, M, Kd]))],
                     f"{n}.a")
            b = node("Reshape", [ins[1], const(f"{n}.b_shape", np.array([1, H, Kd, N]))],
                     f"{n}.b")
            node("MatMul", [a, b], n)
            node("Reshape", [n, const(f"{n}.shape", np.array([1, *layer.out_shape]))], f"{n}.out")
        elif layer.op == "add":
            node("Add" if len(ins) == 2 else "Sum", ins, n)
        elif layer.op == "concat":
            node("Concat", ins, n, axis=1)
        elif layer.op == "slice":
            s = p["start"]
            node("Slice", [ins[0], const(f"{n}.starts", np.array([s])),
                           const(f"{n}.ends", np.array([s + p["C"]])),
                           const(f"{n}.axes", np.array([1]))], n)
        elif layer.op == "upsample":
            f, fx = p["factor"], p["factor_x"] or p["factor"]
            node("Resize", [ins[0], "", const(f"{n}.scales", np.array([1, 1, f, fx],
                                                                      np.float32))], n,
                 mode="nearest")
        elif layer.op == "reshape":
            node("Reshape", [ins[0], const(f"{n}.shape", np.array([1, p["C"], p["Y"], p["X"]]))],
                 n)
        else:  # pragma: no cover - every op of workload.OPS is listed above
            raise ValueError(f"layer '{n}': op '{layer.op}' has no ONNX form")
        if layer.op in ("fc", "matmul"):
            tensor[n] = f"{n}.out"
    consumed = {s for l in model.layers for s in l.inputs}
    graph = h.make_graph(
        nodes, model.name,
        [h.make_tensor_value_info(i, tp.FLOAT, [1, *s])
         for i, s in zip(model.input_names, model.input_shapes)],
        [h.make_tensor_value_info(tensor.get(l.name, l.name), tp.FLOAT, [1, *l.out_shape])
         for l in model.layers if l.name not in consumed],
        inits, doc_string=model.description)
    return h.make_model(graph, producer_name="pipeorgan_jax.onnx_export",
                        opset_imports=[h.make_opsetid("", OPSET)])


def write_onnx(model: Model, path) -> Path:
    path = Path(path)
    _onnx().save(to_onnx(model), str(path))
    return path

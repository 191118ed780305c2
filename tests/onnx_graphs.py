"""Small ONNX graphs built with onnx.helper for the import tests (no downloaded files), and
the edge helpers the ONNX and Flax tests share (this module imports onnx only in Graph)."""
from __future__ import annotations

import numpy as np


class Graph:
    """Nodes named like their (first) output tensor, so tensor names are layer names."""

    def __init__(self):
        import onnx
        self.onnx = onnx
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, arr) -> str:
        name = f"const{self.n}"
        self.n += 1
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(arr), name))
        return name

    def w(self, *shape) -> str:
        return self.const(np.zeros(shape, np.float32))

    def op(self, op, inputs, name, n_out=1, **attrs):
        outs = [name] if n_out == 1 else [f"{name}_{i}" for i in range(n_out)]
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(self, x, name, cin, cout, k, stride=1, groups=1, pad=None, bn=True, act="Relu"):
        pad = k // 2 if pad is None else pad
        y = self.op("Conv", [x, self.w(cout, cin // groups, k, k), self.w(cout)], name,
                    kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=groups)
        if bn:
            y = self.op("BatchNormalization", [y] + [self.w(cout) for _ in range(4)],
                        f"{name}_bn")
        if act:
            y = self.op(act, [y], f"{name}_{act.lower()}")
        return y

    def model(self, inputs: dict, outputs: list, opset=17):
        h, tp = self.onnx.helper, self.onnx.TensorProto
        graph = h.make_graph(
            self.nodes, "test", [h.make_tensor_value_info(n, tp.FLOAT, s) for n, s in inputs.items()],
            [h.make_tensor_value_info(o, tp.FLOAT, None) for o in outputs], self.inits)
        return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])

    def save(self, path, inputs: dict, outputs: list, opset=17):
        self.onnx.save(self.model(inputs, outputs, opset), str(path))
        return path


def skip_edges(order: list, first_inputs: set, edges: list) -> int:
    """Skip edges by the definition in docs/workload_format.md: the producer is not the layer
    listed directly before the consumer (a network input feeding any layer but the first)."""
    pos = {n: i for i, n in enumerate(order)}
    n = 0
    for src, dst in edges:
        if src in first_inputs:
            n += pos[dst] != 0
        else:
            n += pos[src] != pos[dst] - 1
    return n


def edge_names(model) -> list:
    """(producer, consumer) names of a loaded model's edges."""
    def name(i):
        return model.layers[i].name if i >= 0 else model.input_names[-1 - i]
    return [(name(e.src), model.layers[e.dst].name) for e in model.edges]


def conv_macs(cin, cout, k, yo, xo, groups=1):
    return yo * xo * cout * (cin // groups) * k * k


# ----------------------------------------------------------------------------- the four models
# Each returns (Graph, inputs {name: shape}, outputs, expected) where expected holds the layers
# in order as (name, op), the edges (producer, consumer) and the MACs, all worked out by hand.

def resnet_bottleneck_stage():
    """Two bottlenecks (1x1 -> 3x3 -> 1x1); the first strides by 2 with a 1x1 projection
    shortcut, the second adds its input back (identity). BatchNorm and ReLU are fused."""
    g = Graph()
    a = g.conv("x", "b1_c1", 16, 8, 1)                       # 16x16
    a = g.conv(a, "b1_c2", 8, 8, 3, stride=2)                # -> 8x8
    a = g.conv(a, "b1_c3", 8, 32, 1, act=None)
    p = g.conv("x", "b1_proj", 16, 32, 1, stride=2, pad=0, act=None)
    s = g.op("Relu", [g.op("Add", [a, p], "b1_add")], "b1_relu")
    b = g.conv(s, "b2_c1", 32, 8, 1)
    b = g.conv(b, "b2_c2", 8, 8, 3)
    b = g.conv(b, "b2_c3", 8, 32, 1, act=None)
    t = g.op("Relu", [g.op("Add", [b, s], "b2_add")], "b2_relu")
    layers = [("b1_c1", "conv"), ("b1_c2", "conv"), ("b1_c3", "conv"), ("b1_proj", "conv"),
              ("b1_add", "add"), ("b2_c1", "conv"), ("b2_c2", "conv"), ("b2_c3", "conv"),
              ("b2_add", "add")]
    edges = [("x", "b1_c1"), ("b1_c1", "b1_c2"), ("b1_c2", "b1_c3"), ("x", "b1_proj"),
             ("b1_c3", "b1_add"), ("b1_proj", "b1_add"), ("b1_add", "b2_c1"),
             ("b2_c1", "b2_c2"), ("b2_c2", "b2_c3"), ("b2_c3", "b2_add"), ("b1_add", "b2_add")]
    macs = (conv_macs(16, 8, 1, 16, 16) + conv_macs(8, 8, 3, 8, 8) + conv_macs(8, 32, 1, 8, 8)
            + conv_macs(16, 32, 1, 8, 8)
            + conv_macs(32, 8, 1, 8, 8) + conv_macs(8, 8, 3, 8, 8) + conv_macs(8, 32, 1, 8, 8))
    return g, {"x": [1, 16, 16, 16]}, [t], dict(layers=layers, edges=edges, macs=macs)


def depthwise_separable_block():
    """A MobileNetV2 inverted residual (1x1 expand, 3x3 depthwise, 1x1 project, + input; ReLU6
    as Clip) followed by a stride-2 depthwise-separable conv (3x3 depthwise, 1x1 pointwise)."""
    g = Graph()
    lo, hi = g.const(np.float32(0)), g.const(np.float32(6))

    def relu6(x):
        return g.op("Clip", [x, lo, hi], f"{x}_relu6")
    a = relu6(g.conv("x", "expand", 8, 24, 1, act=None))
    a = relu6(g.conv(a, "dw", 24, 24, 3, groups=24, act=None))
    a = g.conv(a, "project", 24, 8, 1, act=None)
    s = g.op("Add", [a, "x"], "residual")
    d = g.conv(s, "dw2", 8, 8, 3, stride=2, groups=8)
    d = g.conv(d, "pw2", 8, 16, 1)
    layers = [("expand", "conv"), ("dw", "conv"), ("project", "conv"), ("residual", "add"),
              ("dw2", "conv"), ("pw2", "conv")]
    edges = [("x", "expand"), ("expand", "dw"), ("dw", "project"), ("project", "residual"),
             ("x", "residual"), ("residual", "dw2"), ("dw2", "pw2")]
    macs = (conv_macs(8, 24, 1, 12, 12) + conv_macs(24, 24, 3, 12, 12, groups=24)
            + conv_macs(24, 8, 1, 12, 12) + conv_macs(8, 8, 3, 6, 6, groups=8)
            + conv_macs(8, 16, 1, 6, 6))
    return g, {"x": [1, 8, 12, 12]}, [d], dict(layers=layers, edges=edges, macs=macs)


T, D, H, F = 8, 16, 2, 32  # tokens, model width, heads, MLP width of the attention block


def attention_block():
    """A pre-norm transformer block on [1, T, D] tokens: LayerNorm, one qkv projection split
    in three, heads by Reshape/Transpose, two activation x activation MatMuls (scores with a
    scale and Softmax, then context), output projection, residual; LayerNorm, MLP, residual."""
    g = Graph()
    dh = D // H

    def ln(x, name):
        return g.op("LayerNormalization", [x, g.w(D), g.w(D)], name, axis=-1)
    y = ln("x", "ln1")
    qkv = g.op("Add", [g.op("MatMul", [y, g.w(D, 3 * D)], "qkv"), g.w(3 * D)], "qkv_bias")
    q, k, v = g.op("Split", [qkv, g.const(np.array([D, D, D]))], "split", n_out=3, axis=2)

    def heads(t, perm):
        r = g.op("Reshape", [t, g.const(np.array([1, T, H, dh]))], f"{t}_heads")
        return g.op("Transpose", [r], f"{t}_t", perm=perm)
    q, k, v = heads(q, [0, 2, 1, 3]), heads(k, [0, 2, 3, 1]), heads(v, [0, 2, 1, 3])
    s = g.op("MatMul", [q, k], "scores")
    s = g.op("Softmax", [g.op("Mul", [s, g.const(np.float32(dh ** -0.5))], "scale")],
             "softmax", axis=-1)
    c = g.op("MatMul", [s, v], "context")
    c = g.op("Reshape", [g.op("Transpose", [c], "context_t", perm=[0, 2, 1, 3]),
                         g.const(np.array([1, T, D]))], "context_tokens")
    o = g.op("MatMul", [c, g.w(D, D)], "proj")
    r1 = g.op("Add", [o, "x"], "res1")
    f = g.op("Relu", [g.op("MatMul", [ln(r1, "ln2"), g.w(D, F)], "ffn1")], "ffn1_relu")
    f = g.op("MatMul", [f, g.w(F, D)], "ffn2")
    r2 = g.op("Add", [f, r1], "res2")
    layers = [("qkv", "fc"), ("split_0", "slice"), ("split_1", "slice"), ("split_2", "slice"),
              ("scores", "matmul"), ("context", "matmul"), ("proj", "fc"), ("res1", "add"),
              ("ffn1", "fc"), ("ffn2", "fc"), ("res2", "add")]
    edges = [("x", "qkv"), ("qkv", "split_0"), ("qkv", "split_1"), ("qkv", "split_2"),
             ("split_0", "scores"), ("split_1", "scores"), ("scores", "context"),
             ("split_2", "context"), ("context", "proj"), ("proj", "res1"), ("x", "res1"),
             ("res1", "ffn1"), ("ffn1", "ffn2"), ("ffn2", "res2"), ("res1", "res2")]
    macs = T * D * 3 * D + 2 * H * T * T * dh + T * D * D + T * D * F + T * F * D
    return g, {"x": [1, T, D]}, [r2], dict(layers=layers, edges=edges, macs=macs)


def unet():
    """A two-level U-Net: conv, max-pool down twice, then nearest Resize x2 up, conv, Concat
    with the encoder map of the same size (the skip), conv; a 1x1 head."""
    g = Graph()
    scales = g.const(np.array([1, 1, 2, 2], np.float32))
    e1 = g.conv("x", "e1", 3, 8, 3)                                    # 16x16
    p1 = g.op("MaxPool", [e1], "p1", kernel_shape=[2, 2], strides=[2, 2])
    e2 = g.conv(p1, "e2", 8, 16, 3)                                    # 8x8
    p2 = g.op("MaxPool", [e2], "p2", kernel_shape=[2, 2], strides=[2, 2])
    b = g.conv(p2, "b", 16, 32, 3)                                     # 4x4
    u2 = g.op("Resize", [b, "", scales], "u2", mode="nearest")
    d2a = g.conv(u2, "d2a", 32, 16, 3)
    c2 = g.op("Concat", [d2a, e2], "cat2", axis=1)
    d2 = g.conv(c2, "d2", 32, 16, 3)
    u1 = g.op("Resize", [d2, "", scales], "u1", mode="nearest")
    d1a = g.conv(u1, "d1a", 16, 8, 3)
    c1 = g.op("Concat", [d1a, e1], "cat1", axis=1)
    d1 = g.conv(c1, "d1", 16, 8, 3)
    head = g.conv(d1, "head", 8, 2, 1, bn=False, act=None)
    order = ["e1", "p1", "e2", "p2", "b", "u2", "d2a", "cat2", "d2", "u1", "d1a", "cat1", "d1",
             "head"]
    ops = dict(p1="pool", p2="pool", u2="upsample", u1="upsample", cat2="concat",
               cat1="concat")
    layers = [(n, ops.get(n, "conv")) for n in order]
    edges = [("x", "e1")] + list(zip(order, order[1:])) + [("e2", "cat2"), ("e1", "cat1")]
    macs = (conv_macs(3, 8, 3, 16, 16) + conv_macs(8, 16, 3, 8, 8) + conv_macs(16, 32, 3, 4, 4)
            + conv_macs(32, 16, 3, 8, 8) + conv_macs(32, 16, 3, 8, 8)
            + conv_macs(16, 8, 3, 16, 16) + conv_macs(16, 8, 3, 16, 16)
            + conv_macs(8, 2, 1, 16, 16))
    return g, {"x": [1, 3, 16, 16]}, [head], dict(layers=layers, edges=edges, macs=macs)


MODELS = {"resnet_bottleneck": resnet_bottleneck_stage, "depthwise_separable":
          depthwise_separable_block, "attention": attention_block, "unet": unet}


def write(name, folder):
    """Write one of MODELS as <folder>/<name>.onnx; returns (path, expected)."""
    g, inputs, outputs, expected = MODELS[name]()
    return g.save(folder / f"{name}.onnx", inputs, outputs), expected

"""ONNX import: a `.onnx` model file as a workload (docs/model_import.md).

`load_onnx(path)` reads the model, runs ONNX shape inference (every tensor then has a static
shape) and maps each node with `graph_builder.Builder`:

- Conv (groups, strides, pads, dilations) -> `conv`; MaxPool / AveragePool -> `pool`;
  GlobalAveragePool / GlobalMaxPool, and ReduceMean/Max/Sum over the spatial axes -> a `pool`
  over the whole map;
- Gemm / MatMul with a constant operand -> `fc` (tokens = the other operand's leading dims);
  MatMul of two activations (attention scores, context) -> `matmul`;
- Add, Sum, Sub, Mul, Div, Max, Min, Mean of two or more layers -> `add` (with a constant, or
  of one layer with itself, e.g. x * sigmoid(x): fused into the producer);
- Concat along channels -> `concat`; Split / Slice along channels -> one `slice` per output;
- Resize / Upsample by integer factors -> `upsample`;
- Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Identity, ... -> free views;
- BatchNormalization, activations, Softmax, LayerNormalization, ... -> fused into the producer;
- nodes on constants only (weights, shape arithmetic) -> nothing.

An op outside these lists stops the import with one line naming the node, its op type and the
fix; `unsupported="passthrough"` (`workload.onnx_unsupported=passthrough`) treats it as a free
view of its first input instead. The `onnx` package is imported only here, on first use.
"""
from __future__ import annotations

import math
from pathlib import Path

from pipeorgan_jax.graph_builder import Builder, Value, choose_padding
from pipeorgan_jax.workload import Model, WorkloadError, build_model

# Element-wise ops that may combine two layers into an `add` layer.
BINARY = {"Add", "Sum", "Sub", "Mul", "Div", "Max", "Min", "Mean", "Pow", "Where", "And", "Or",
          "Xor", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Mod", "PRelu"}
# One activation in, the same shape out: fused into the producer (the cost model charges the
# producer's PEs nothing extra for them, as the built-in XR-bench models do).
FUSED = {"BatchNormalization", "LayerNormalization", "InstanceNormalization",
         "GroupNormalization", "LpNormalization", "MeanVarianceNormalization",
         "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Clip", "Elu",
         "Selu", "Celu", "Gelu", "Softplus", "Softsign", "Mish", "Swish", "ThresholdedRelu",
         "Softmax", "LogSoftmax", "Hardmax", "Erf", "Exp", "Log", "Sqrt", "Reciprocal", "Neg",
         "Abs", "Sign", "Floor", "Ceil", "Round", "Not", "IsNaN", "IsInf", "Sin", "Cos", "Tan",
         "QuantizeLinear", "DequantizeLinear"} | BINARY
# Same elements, another shape: no data moves in the cost model.
VIEWS = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout",
         "Cast", "CastLike", "DepthToSpace", "SpaceToDepth", "Expand"}
POOLS = {"MaxPool": "max", "AveragePool": "avg", "LpPool": "avg"}
GLOBAL_POOLS = {"GlobalAveragePool": "avg", "GlobalMaxPool": "max", "GlobalLpPool": "avg"}
REDUCES = {"ReduceMean": "avg", "ReduceMax": "max", "ReduceSum": "avg", "ReduceMin": "max",
           "ReduceL2": "avg", "ReduceL1": "avg", "ReduceSumSquare": "avg",
           "ReduceLogSumExp": "max", "ReduceProd": "avg"}
# Ops whose output depends only on the static shape of their input (exporters' shape
# arithmetic: Shape -> Gather -> Concat -> Reshape).
SHAPE_OF = {"Shape", "Size"}
UNSUPPORTED_CHOICES = ("error", "passthrough")

_FIXED_SHAPES = ("fix the input shapes before importing (export without dynamic axes, e.g. "
                 "torch.onnx.export(..., dynamic_axes=None), or onnx.tools.update_model_dims."
                 "update_inputs_outputs_dims)")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise WorkloadError("reading .onnx models needs the onnx package: "
                            "pip install 'pipeorgan_jax[onnx]' (or pip install onnx)") from None
    return onnx


def canonical_layout(rank: int):
    """ONNX tensors are NCHW; rank 3 is [N, tokens, features] (Conv1d fixes its own NCL)."""
    return {1: (0, None, None), 2: (1, None, None), 3: (2, 1, None), 4: (1, 2, 3)}.get(rank)


def load_onnx(path, unsupported: str = "error") -> Model:
    """A workload from an ONNX file (see the module docstring for the op mapping)."""
    return build_model(onnx_doc(path, unsupported), str(path))


def onnx_doc(path, unsupported: str = "error") -> dict:
    """The workload document (docs/workload_format.md) of an ONNX file."""
    onnx = _onnx()
    path = Path(path)
    if unsupported not in UNSUPPORTED_CHOICES:
        raise WorkloadError(f"onnx_unsupported must be one of {', '.join(UNSUPPORTED_CHOICES)},"
                            f" got {unsupported!r}")
    try:
        proto = onnx.load(str(path))
    except FileNotFoundError:
        raise WorkloadError(f"{path}: no such file") from None
    except Exception as e:  # protobuf's DecodeError and friends
        raise WorkloadError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None
    try:
        proto = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WorkloadError(f"{path}: ONNX shape inference failed: {first}") from None
    return _Importer(onnx, proto, path, unsupported).run()


class _Importer:
    def __init__(self, onnx, proto, path: Path, unsupported: str):
        self.onnx, self.proto, self.path = onnx, proto, path
        self.graph = proto.graph
        self.unsupported = unsupported
        self.b = Builder(str(path), canonical_layout)
        self.env: dict[str, Value] = {}
        self.consts: dict = {}  # Constant node outputs: name -> numpy array
        self.inits = {i.name: i for i in self.graph.initializer}  # read only where a value is
        self.types = {}
        for vi in list(self.graph.input) + list(self.graph.value_info) + list(self.graph.output):
            self.types[vi.name] = vi.type

    # ---------------------------------------------------------------- shapes
    def shape(self, name: str, what: str = "output") -> tuple:
        if name in self.inits:
            return tuple(self.inits[name].dims)
        if name in self.consts:
            return tuple(self.consts[name].shape)
        t = self.types.get(name)
        if t is None or not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
            raise self.b.error(f"shape of {what} '{name}' unknown after ONNX shape inference",
                               "export with static shapes, or simplify the model (onnxsim) "
                               "so that shape inference can follow it")
        dims = []
        for k, d in enumerate(t.tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(d.dim_value)
            else:
                sym = f" ('{d.dim_param}')" if d.dim_param else ""
                raise self.b.error(f"{what} '{name}' has a dynamic dimension {k}{sym}",
                                   _FIXED_SHAPES)
        return tuple(dims)

    def attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def const_value(self, name: str, what: str):
        if name in self.inits:
            return self.onnx.numpy_helper.to_array(self.inits[name])
        if name not in self.consts:
            raise self.b.error(f"{what} is computed at run time", "fold constants first "
                               "(python -m onnxsim in.onnx out.onnx)")
        return self.consts[name]

    # ---------------------------------------------------------------- walk
    def run(self) -> dict:
        for inp in self.graph.input:
            if inp.name in self.inits:
                continue
            self.b.node = (inp.name, "graph input")
            shape = self.shape(inp.name, "input")
            if len(shape) >= 2 and shape[0] != 1:
                raise self.b.error(f"batch size {shape[0]} (shape {list(shape)})",
                                   "export the model with batch size 1: the cost model maps "
                                   "one inference")
            self.env[inp.name] = self.b.add_input(inp.name, shape)
        for name, init in self.inits.items():
            self.env[name] = Value(None, tuple(init.dims))
        for i, node in enumerate(self.graph.node):
            name = node.name.strip("/") or f"{node.op_type.lower()}_{i}"
            self.b.node = (name, node.op_type)
            self.node(node, name)
        p = self.proto
        source = {"format": "onnx", "file": str(self.path),
                  "producer": f"{p.producer_name} {p.producer_version}".strip() or "unknown",
                  "opset": max((o.version for o in p.opset_import if o.domain in ("", "ai.onnx")),
                               default=0)}
        return self.b.doc(self.path.stem, source, self.graph.doc_string or "")

    def node(self, node, name: str) -> None:
        op = node.op_type
        ins = [self.env.get(n) if n else None for n in node.input]
        for n, v in zip(node.input, ins):
            if n and v is None:
                raise self.b.error(f"input '{n}' is not produced by an earlier node",
                                   "sort the graph topologically (onnx.checker reports this)")
        acts = [v for v in ins if v is not None and v.src is not None]
        if op in SHAPE_OF:  # static after shape inference: a constant, whatever its input
            acts = []
        if op == "Constant":
            a = self.attrs(node)
            if "value" in a:
                self.consts[node.output[0]] = self.onnx.numpy_helper.to_array(a["value"])
        if not acts:  # weights, shape arithmetic: no layer
            for out in node.output:
                if out:
                    shp = tuple(self.consts[out].shape) if out in self.consts else ()
                    self.env[out] = Value(None, shp)
            return
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            if op in VIEWS:
                handler = self.view
            elif op in FUSED:
                handler = self.fused
            elif op in POOLS or op in GLOBAL_POOLS:
                handler = self.pool
            elif op in REDUCES:
                handler = self.reduce
            elif self.unsupported == "passthrough":
                handler = self.passthrough
            else:
                raise self.b.error(f"op type '{op}' is not mapped to the workload format",
                                   "set workload.onnx_unsupported=passthrough (load_onnx(..., "
                                   "unsupported='passthrough')) to treat it as a free view of "
                                   "its first input, or replace it in the model")
        outs = handler(node, name, ins)
        for o, v in zip(node.output, outs):
            if o:
                self.env[o] = v

    # ---------------------------------------------------------------- op handlers
    def out_shapes(self, node) -> list:
        return [self.shape(o) if o else () for o in node.output]

    def view(self, node, name, ins):
        x = ins[0]
        out = self.shape(node.output[0])
        layout = canonical_layout(len(out))
        if node.op_type == "Transpose" and x.layout is not None:
            perm = self.attrs(node).get("perm", list(range(len(x.shape)))[::-1])
            layout = tuple(perm.index(a) if a is not None else None for a in x.layout)
        derived = x.derived or math.prod(out) != x.elems  # Expand replicates
        res = [Value(x.src, out, layout, derived)]
        return res + [Value(None, self.shape(o) if o in self.types else ()) for o in
                      node.output[1:]]

    def fused(self, node, name, ins):
        outs = self.out_shapes(node)[:1]
        first = self.b.elementwise([v for v in ins if v is not None], outs[0], name)
        # extra outputs (LayerNormalization's mean, BatchNorm's running stats) are statistics
        rest = [Value(first.src, self.shape(o) if o in self.types else (), None, True)
                for o in node.output[1:]]
        return [first] + rest

    def passthrough(self, node, name, ins):
        x = next(v for v in ins if v is not None and v.src is not None)
        out = self.shape(node.output[0])
        self.b.fuse(x, f"{node.op_type} (passthrough)")
        return [Value(x.src, out, None, x.derived or math.prod(out) != x.elems)] + \
            [Value(x.src, (), None, True) for _ in node.output[1:]]

    def op_Conv(self, node, name, ins):
        x, w = ins[0], ins[1]
        if w.src is not None:
            raise self.b.error("weights come from an activation", "only constant weights map "
                               "to a conv; for activation x activation use MatMul")
        a = self.attrs(node)
        xs, ws, out = x.shape, self.shape(node.input[1]), self.shape(node.output[0])
        nsp = len(xs) - 2
        if nsp not in (1, 2):
            raise self.b.error(f"{nsp}-d convolution", "only 1-d and 2-d convolutions map")
        x, extra = self._unpad(x)
        xs = x.shape
        C, Y, X = xs[1], xs[2], xs[3] if nsp == 2 else 1
        K, R, S = ws[0], ws[2], ws[3] if nsp == 2 else 1
        Yo, Xo = out[2], out[3] if nsp == 2 else 1
        layer = self._window(node, a, (Y, X), (R, S), (Yo, Xo), nsp, extra)
        note = layer.pop("_note", "")
        spec = {"name": name, "op": "conv", "inputs": [self.b.need(x, (C, Y, X))], "C": C,
                "K": K, "Y": Y, "X": X, "R": R, "S": S, **layer}
        g = a.get("group", 1)
        if g != 1:
            spec["groups"] = g
        out_name = self.b.emit(spec, (K, Yo, Xo), note=note)
        return [Value(out_name, out, (1, 2, 3) if nsp == 2 else (1, 2, None))]

    def _unpad(self, x: Value):
        """(x without a pending Pad, that Pad's ((top, bottom), (left, right)))."""
        if x.pads is None:
            return x, ((0, 0), (0, 0))
        (t, b), (l, r) = x.pads
        shape = x.shape[:2] + (x.shape[2] - t - b,) + \
            ((x.shape[3] - l - r,) if len(x.shape) == 4 else ())
        return Value(x.src, shape, x.layout, x.derived), x.pads

    def op_Pad(self, node, name, ins):
        """Zero padding of rows and cols, folded into the Conv / pool that reads it."""
        x = ins[0]
        a = self.attrs(node)
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = a.get("pads")
        if pads is None:
            pads = [int(v) for v in self.const_value(node.input[1], "the pads input")]
        value = 0.0
        if len(node.input) > 2 and node.input[2]:
            value = float(self.const_value(node.input[2], "the constant_value input"))
        r = len(x.shape)
        axes = list(range(r))
        if len(node.input) > 3 and node.input[3]:
            axes = [int(v) % r for v in self.const_value(node.input[3], "the axes input")]
        lo = dict(zip(axes, pads[:len(axes)]))
        hi = dict(zip(axes, pads[len(axes):]))
        spatial = {2, 3} if r == 4 else {2}
        if mode != "constant" or value != 0.0 or r not in (3, 4) or any(
                (lo.get(k, 0) or hi.get(k, 0)) for k in range(r) if k not in spatial):
            raise self.b.error(f"{mode} padding by {pads} with value {value}",
                               "only zero padding of rows and cols maps (folded into the "
                               "next Conv or pool)")
        x, (pt, pl) = self._unpad(x)
        add = ((pt[0] + lo.get(2, 0), pt[1] + hi.get(2, 0)),
               (pl[0] + lo.get(3, 0), pl[1] + hi.get(3, 0)))
        return [Value(x.src, self.shape(node.output[0]), x.layout, x.derived, add)]

    def _window(self, node, a, size, kernel, out, nsp, extra=((0, 0), (0, 0))) -> dict:
        """stride / stride_x / padding fields of a conv or pool node; `extra` is the zero
        padding of a Pad node in front of it."""
        strides = list(a.get("strides", [1] * nsp)) + [1]
        dil = list(a.get("dilations", [1] * nsp)) + [1]
        pads = list(a.get("pads", [0] * (2 * nsp)))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        sy, sx = strides[0], strides[1]
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for n, k, s, d in zip(size[:nsp], kernel[:nsp], strides, dil):
                tot = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
                lo = tot // 2 if auto == "SAME_UPPER" else tot - tot // 2
                pads.append((lo, tot - lo))
        elif auto == "VALID":
            pads = [(0, 0)] * nsp
        else:
            pads = [(pads[i], pads[i + nsp]) for i in range(nsp)]
        pads = pads + [(0, 0)] * (2 - nsp)
        pads = [(lo + e0, hi + e1) for (lo, hi), (e0, e1) in zip(pads, extra)]
        got = choose_padding(size, kernel, (sy, sx), out, pads, (dil[0], dil[1]))
        if got is None:
            raise self.b.error(f"no padding of the workload format gives the output {list(out)} "
                               f"from {list(size)} with kernel {list(kernel)}, strides "
                               f"{[sy, sx]}, pads {pads}, dilations {dil[:nsp]}",
                               "use symmetric or 'same' padding")
        pad, exact = got
        spec = {}
        if sy != 1:
            spec["stride"] = sy
        if sx != sy:
            spec["stride_x"] = sx
        if pad != "same":
            spec["padding"] = pad
        if not exact:
            spec["_note"] = (f"pads {pads} dilations {dil[:nsp]} modeled as padding {pad} "
                             f"(same output size and MACs)")
        return spec

    def pool(self, node, name, ins):
        x, extra = self._unpad(ins[0])
        out = self.shape(node.output[0])
        nsp = len(x.shape) - 2
        if nsp not in (1, 2):
            raise self.b.error(f"{nsp}-d pooling", "only 1-d and 2-d pooling maps")
        C, Y, X = x.shape[1], x.shape[2], x.shape[3] if nsp == 2 else 1
        Yo, Xo = out[2], out[3] if nsp == 2 else 1
        op = node.op_type
        if op in GLOBAL_POOLS:
            kind, R, S = GLOBAL_POOLS[op], Y, X
            layer = {"stride": Y, "padding": "valid"}
            if X != Y:
                layer["stride_x"] = X
        else:
            a = self.attrs(node)
            ks = list(a["kernel_shape"]) + [1]
            kind, R, S = POOLS[op], ks[0], ks[1]
            layer = self._window(node, a, (Y, X), (R, S), (Yo, Xo), nsp, extra)
        note = layer.pop("_note", "")
        spec = {"name": name, "op": "pool", "inputs": [self.b.need(x, (C, Y, X))], "C": C,
                "Y": Y, "X": X, "R": R, "S": S, **layer, "kind": kind}
        out_name = self.b.emit(spec, (C, Yo, Xo), note=note)
        return [Value(out_name, out, (1, 2, 3) if nsp == 2 else (1, 2, None))] + \
            [Value(out_name, (), None, True) for _ in node.output[1:]]

    def reduce(self, node, name, ins):
        x = ins[0]
        a = self.attrs(node)
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(v) for v in self.const_value(node.input[1], "the axes input")]
        if axes is None:
            axes = list(range(len(x.shape)))
        out = self.shape(node.output[0])
        return [self.b.reduce(x, axes, REDUCES[node.op_type], out, name)]

    def _matmul(self, name, a: Value, b: Value, out: tuple) -> Value:
        """Two activations [.., M, Kd] x [.., Kd, N] (attention scores, context)."""
        return self.b.matmul(name, a, b, math.prod(out[:-2]), a.shape[-2], b.shape[-1],
                             a.shape[-1], out)

    def op_MatMul(self, node, name, ins):
        a, b = ins
        out = self.shape(node.output[0])
        if len(a.shape) < 2 or len(b.shape) < 2:
            raise self.b.error("matrix-vector MatMul", "reshape the vector to a matrix")
        if a.src is not None and b.src is not None:
            return [self._matmul(name, a, b, out)]
        if b.src is None:  # x @ W
            if math.prod(b.shape[:-2]) != 1:
                raise self.b.error(f"batched weights {list(b.shape)}", "use 2-d weights")
            return [self.b.fc(name, a, b.shape[-2], b.shape[-1], out)]
        # W @ x: x's columns are the tokens; C = W's columns, K = W's rows
        if math.prod(a.shape[:-2]) != 1:
            raise self.b.error(f"batched weights {list(a.shape)}", "use 2-d weights")
        return [self.b.fc(name, b, a.shape[-1], a.shape[-2], out)]

    def op_Gemm(self, node, name, ins):
        a, b = ins[0], ins[1]
        at = self.attrs(node)
        out = self.shape(node.output[0])
        if at.get("transA", 0) or a.src is None:
            raise self.b.error("Gemm with a transposed or constant A",
                               "export activations as A (x @ W^T, the usual Linear layer)")
        if b.src is not None:
            if at.get("transB", 0):
                raise self.b.error("Gemm of two activations with transB",
                                   "use MatMul with an explicit Transpose")
            return [self._matmul(name, a, b, out)]
        kin, n = b.shape if not at.get("transB", 0) else b.shape[::-1]
        return [self.b.fc(name, a, kin, n, out)]

    def _channel_axis(self, x: Value) -> int:
        lay = x.layout or canonical_layout(len(x.shape))
        if lay is None:
            raise self.b.error(f"tensor of shape {list(x.shape)} has no channel axis",
                               "reshape it to [1, C, H, W] or [1, tokens, features]")
        return lay[0]

    def op_Concat(self, node, name, ins):
        out = self.shape(node.output[0])
        axis = self.attrs(node)["axis"] % len(out)
        if any(v is not None and v.src is None and v.elems for v in ins):
            raise self.b.error("concatenates a constant with activations (e.g. a class token)",
                               "the workload format concatenates layer outputs only")
        acts = [v for v in ins if v is not None and v.elems]
        for v in acts:
            if self._channel_axis(v) != axis:
                raise self.b.error(f"concatenates along axis {axis}, not the channel axis "
                                   f"{self._channel_axis(v)} of {list(v.shape)}",
                                   "the workload format concatenates channels only")
        chws = [self.b.chw(v) for v in acts]
        srcs = [self.b.need(v, c) for v, c in zip(acts, chws)]
        if len(srcs) == 1:
            return [Value(srcs[0], out, acts[0].layout)]
        cout = (sum(c[0] for c in chws),) + tuple(chws[0][1:])
        return [Value(self.b.emit({"name": name, "op": "concat", "inputs": srcs}, cout), out,
                      acts[0].layout)]

    def _slices(self, name, x: Value, axis: int, parts: list) -> list:
        """One `slice` layer per (start, size) along the channel axis of x."""
        if axis != self._channel_axis(x):
            raise self.b.error(f"slices along axis {axis}, not the channel axis "
                               f"{self._channel_axis(x)} of {list(x.shape)}",
                               "the workload format slices channels only")
        C, Y, Xw = self.b.chw(x)
        src = self.b.need(x, (C, Y, Xw))
        res = []
        for k, (start, size) in enumerate(parts):
            shape = tuple(size if i == axis else d for i, d in enumerate(x.shape))
            if size == C:
                res.append(Value(src, shape, x.layout))
                continue
            spec = {"name": name if len(parts) == 1 else f"{name}_{k}", "op": "slice",
                    "inputs": [src], "C": size}
            if start:
                spec["start"] = start
            res.append(Value(self.b.emit(spec, (size, Y, Xw)), shape, x.layout))
        return res

    def op_Split(self, node, name, ins):
        x = ins[0]
        axis = self.attrs(node).get("axis", 0) % len(x.shape)
        sizes = [self.shape(o)[axis] for o in node.output]
        starts = [sum(sizes[:k]) for k in range(len(sizes))]
        return self._slices(name, x, axis, list(zip(starts, sizes)))

    def op_Slice(self, node, name, ins):
        x = ins[0]
        out = self.shape(node.output[0])
        cut = [i for i, (a, b) in enumerate(zip(x.shape, out)) if a != b]
        if not cut:
            return [Value(x.src, out, x.layout, x.derived)]
        if len(cut) > 1:
            raise self.b.error(f"slices along axes {cut}", "the workload format slices "
                               "channels only")
        axis = cut[0]
        a = self.attrs(node)
        if "starts" in a:  # opset < 10
            starts, axes, steps = a["starts"], a.get("axes"), None
        else:
            starts = self.const_value(node.input[1], "the starts input")
            axes = self.const_value(node.input[3], "the axes input") \
                if len(node.input) > 3 and node.input[3] else None
            steps = self.const_value(node.input[4], "the steps input") \
                if len(node.input) > 4 and node.input[4] else None
        axes = [int(v) % len(x.shape) for v in (axes if axes is not None
                                                 else range(len(starts)))]
        k = axes.index(axis)
        if steps is not None and int(steps[k]) != 1:
            raise self.b.error(f"slice with step {int(steps[k])}", "use step 1")
        start = int(starts[k])
        start = min(max(start + x.shape[axis] if start < 0 else start, 0), x.shape[axis])
        return self._slices(name, x, axis, [(start, out[axis])])

    def op_Resize(self, node, name, ins):
        x = ins[0]
        out = self.shape(node.output[0])
        if len(x.shape) != 4:
            raise self.b.error(f"resize of a rank-{len(x.shape)} tensor", "resize NCHW maps")
        (_, c, y, xw), (_, c2, yo, xo) = x.shape, out
        if c2 != c or yo % y or xo % xw:
            raise self.b.error(f"resize {list(x.shape)} -> {list(out)} is not an integer "
                               "upsampling of rows and cols",
                               "use integer scale factors (e.g. 2.0)")
        src = self.b.need(x, (c, y, xw))
        if (yo, xo) == (y, xw):
            return [Value(src, out, (1, 2, 3))]
        spec = {"name": name, "op": "upsample", "inputs": [src], "factor": yo // y}
        if xo // xw != yo // y:
            spec["factor_x"] = xo // xw
        return [Value(self.b.emit(spec, (c, yo, xo)), out, (1, 2, 3))]

    op_Upsample = op_Resize

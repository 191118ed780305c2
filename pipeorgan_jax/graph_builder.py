"""Turning a tensor dataflow graph (ONNX nodes, jaxpr equations) into a workload document.

The two model importers (`onnx_import`, `trace`) walk their graphs and hand every operator to a
`Builder`. The builder keeps, per tensor, a `Value`: which workload layer (or network input)
holds its data, and the tensor's full N-d shape. Views (reshape, transpose, ...) and operators
fused into their producer (activations, normalizations, bias adds) make a new `Value` of the
same layer, so they cost nothing; operators the cost model knows become layers. The result is
the document of docs/workload_format.md, so `build_model` validates it like any file.

Shapes: a workload layer's output is [C, Y, X]. A tensor's `layout` says which of its axes are
C, Y and X (the other axes must have size 1: batch 1, one inference). When a consumer needs a
layer's data as a different [C, Y, X] with the same element count (a real re-layout, e.g.
tokens back to a feature map), the builder inserts a `reshape` layer; that is the only layer
it adds on its own, besides an `upsample` for an element-wise op that broadcasts a [C, 1, 1]
tensor over a map (squeeze-and-excitation gates).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

from pipeorgan_jax.workload import WorkloadError

Layout = Optional[tuple]  # (c_axis, y_axis | None, x_axis | None) into Value.shape


class ModelImportError(WorkloadError):
    """A model could not be mapped; the message is one line naming the node, op and the fix."""


@dataclasses.dataclass(frozen=True)
class Value:
    src: Optional[str]  # layer or network input holding the data; None for constants
    shape: tuple
    layout: Layout = None
    # Computed from src's data but not that data itself (a statistic such as a LayerNorm mean,
    # or a broadcast copy): combines with src for free, cannot stand in for it.
    derived: bool = False
    # Zero padding ((top, bottom), (left, right)) of an ONNX Pad node not yet folded into the
    # Conv / pool that reads it; `shape` is the padded shape, src holds the unpadded data.
    pads: Optional[tuple] = None

    @property
    def elems(self) -> int:
        return math.prod(self.shape)


def chw_of(shape: tuple, layout: Layout) -> Optional[tuple]:
    """[C, Y, X] of a tensor under a layout, or None when other axes are not size 1."""
    if layout is None:
        return None
    c, y, x = layout
    dims = (shape[c], shape[y] if y is not None else 1, shape[x] if x is not None else 1)
    if math.prod(dims) != math.prod(shape):
        return None
    return dims


def choose_padding(size, kernel, stride, out, pads=None, dilation=(1, 1)):
    """The workload format's `padding` (same | valid | int, one value for rows and cols) that
    gives exactly the output size `out` = (Yo, Xo). `pads` = ((top, bottom), (left, right)) as
    the source model states them: when they are what `same` or a symmetric int means, that is
    kept, so a model written from our format comes back unchanged. A dilated kernel is modeled
    as its dense R x S (same MACs); the padding then only has to reproduce the output size.
    Returns (padding, exact) or None when no value reproduces `out`."""
    def out_len(n, k, s, p):
        if p == "same":
            return -(-n // s)
        if p == "valid":
            return (n - k) // s + 1
        return (n + 2 * p - k) // s + 1

    def fits(p):
        return all(out_len(n, k, s, p) == o for n, k, s, o in zip(size, kernel, stride, out))

    if pads is not None and all(d == 1 for d in dilation):
        same = True
        for n, k, s, (lo, hi) in zip(size, kernel, stride, pads):
            o = -(-n // s)
            total = max((o - 1) * s + k - n, 0)
            same &= (lo, hi) == (total // 2, total - total // 2)
        if same and fits("same"):
            return "same", True
        los = {lo for lo, hi in pads} | {hi for lo, hi in pads}
        if len(los) == 1:
            p = los.pop()
            p = "valid" if p == 0 else p
            if fits(p):
                return p, True
    for p in ["same", "valid"] + list(range(1, max(kernel) + 1)):
        if fits(p):
            return p, False
    return None


class Builder:
    """Collects layers for one model. `where` (file or function name) starts every error."""

    def __init__(self, where: str, canonical_layout):
        self.where = where
        # rank -> layout for a tensor whose layout its producer does not fix (ONNX: NCHW,
        # Flax: NHWC; both: [N, tokens, features] for rank 3)
        self.canonical_layout = canonical_layout
        self.inputs: list[dict] = []
        self.layers: list[dict] = []
        self.out_chw: dict[str, Optional[tuple]] = {}  # layer or input -> its [C, Y, X]
        self.fused: dict[str, list[str]] = {}
        self.notes: dict[str, str] = {}
        self._reshaped: dict[tuple, str] = {}
        self._declared: dict[str, Value] = {}  # network inputs as the model declares them
        self.node = ("-", "-")  # (node name, op type) being mapped, for errors and names

    # ---------------------------------------------------------------- errors and names
    def error(self, msg: str, fix: str = "") -> ModelImportError:
        name, op = self.node
        line = f"{self.where}: node '{name}' ({op}): {msg}"
        return ModelImportError(" ".join((line + (f"; {fix}" if fix else "")).split()))

    def fresh(self, base: str) -> str:
        base = base.strip("/") or "layer"
        name, k = base, 1
        while name in self.out_chw:
            k += 1
            name = f"{base}_{k}"
        return name

    # ---------------------------------------------------------------- values
    def add_input(self, name: str, shape: tuple) -> Value:
        """A network input; its [C, Y, X] is fixed by its first consumer (a conv reading a
        [1, C, L] input wants [C, L, 1], an fc reading [1, T, D] tokens wants [D, T, 1])."""
        name = self.fresh(name)
        self.out_chw[name] = None
        self.inputs.append({"name": name, "shape": None})
        v = Value(name, tuple(shape), self.canonical_layout(len(shape)))
        self._declared[name] = v
        return v

    def chw(self, v: Value) -> tuple:
        """[C, Y, X] that `v` means in its own layout (src's when v is a plain view of it)."""
        got = chw_of(v.shape, v.layout)
        if got is not None:
            return got
        src = self.out_chw.get(v.src)
        if src is not None and math.prod(src) == v.elems:
            return src
        got = chw_of(v.shape, self.canonical_layout(len(v.shape)))
        if got is None:
            raise self.error(f"tensor of shape {list(v.shape)} has no [C, Y, X] reading",
                             "reshape it to [1, C, H, W] or [1, tokens, features]")
        return got

    def need(self, v: Value, want: Optional[tuple] = None) -> str:
        """The name of a layer or input whose output is `v`'s data as [C, Y, X] `want` (any
        [C, Y, X] with v's element count when None); inserts a reshape layer if needed."""
        if v.src is None:
            raise self.error("an operand the model computes from constants only is used as "
                             "an activation", "fold the constants (onnxsim / jax.jit) first")
        if v.pads is not None:
            raise self.error("reads the output of a Pad node", "zero padding is folded into "
                             "a Conv or pool only; pad inside the consumer instead")
        have = self.out_chw[v.src]
        if have is None:  # a network input at its first use
            decl = self._declared[v.src]
            have = want if want is not None and math.prod(want) == decl.elems \
                else self.chw(decl)
            if math.prod(have) != v.elems:
                raise self.error(f"input '{v.src}' of shape {list(v.shape)} read as "
                                 f"{list(have)}", "give the input the shape its first "
                                 "consumer reads (batch 1, no padding or broadcast in between)")
            self.out_chw[v.src] = tuple(have)
            for inp in self.inputs:
                if inp["name"] == v.src:
                    inp["shape"] = list(have)
        if v.elems != math.prod(have) or (v.derived and want is None):
            raise self.error(
                f"reads a tensor of shape {list(v.shape)} that is not the output of "
                f"'{v.src}' ({list(have)}) but a broadcast, reduction or size-changing "
                "passthrough of it", "such tensors map only as operands of element-wise ops; "
                "replace the op in between with one the importer maps")
        if want is None or tuple(want) == tuple(have):
            return v.src
        want = tuple(want)
        if math.prod(want) != math.prod(have):
            raise self.error(f"needs [C, Y, X] {list(want)} but '{v.src}' gives {list(have)}",
                             "check the ops between them: only views may change the shape")
        key = (v.src, want)
        if key not in self._reshaped:
            name = self.emit({"name": f"{v.src}.reshape", "op": "reshape", "inputs": [v.src],
                              "C": want[0], "Y": want[1], "X": want[2]}, want,
                             note=f"importer: {list(have)} read as {list(want)} by "
                                  f"'{self.node[0]}'")
            self._reshaped[key] = name
        return self._reshaped[key]

    def emit(self, spec: dict, out_chw: tuple, note: str = "") -> str:
        """Add a layer (spec without validation; `build_model` validates the whole document)."""
        # numpy integers (from jaxpr params, ONNX arrays) become ints, which YAML can write
        spec = {k: int(v) if hasattr(v, "__index__") and not isinstance(v, bool) else v
                for k, v in spec.items()}
        spec["name"] = self.fresh(spec["name"])
        self.layers.append(spec)
        self.out_chw[spec["name"]] = tuple(int(d) for d in out_chw)
        if note:
            self.notes[spec["name"]] = note
        return spec["name"]

    def fuse(self, v: Value, op_type: str) -> None:
        if v.src is not None and op_type not in self.fused.setdefault(v.src, []):
            self.fused[v.src].append(op_type)

    # ---------------------------------------------------------------- element-wise
    def elementwise(self, operands: list[Value], out_shape: tuple, name: str) -> Value:
        """An element-wise op (add, mul, ...). Constant operands (biases, scales) and operands
        from the same layer (x * sigmoid(x), x - mean(x)) fuse into that layer; operands from
        two or more layers become an `add` layer (zero MACs, one op per element)."""
        acts = [v for v in operands if v.src is not None]
        if not acts:
            return Value(None, tuple(out_shape))
        primary = max(acts, key=lambda v: (not v.derived, v.elems))
        srcs = list(dict.fromkeys(v.src for v in acts))
        if len(srcs) == 1:
            self.fuse(primary, self.node[1])
            derived = all(v.derived for v in acts) or primary.elems != math.prod(out_shape)
            layout = primary.layout if primary.shape == tuple(out_shape) else None
            return Value(primary.src, tuple(out_shape), layout, derived)
        want = self.chw(primary)
        ins = []
        for s in srcs:
            v = max((a for a in acts if a.src == s), key=lambda a: (not a.derived, a.elems))
            ins.append(self._broadcast(v, want) if (v.elems != math.prod(want) or v.derived)
                       else self.need(v, want))
        out = self.emit({"name": name, "op": "add", "inputs": ins}, want)
        return Value(out, tuple(out_shape), primary.layout if primary.shape == tuple(out_shape)
                     else None)

    def _broadcast(self, v: Value, want: tuple) -> str:
        """An operand that broadcasts over the other's map: [C, 1, 1] -> [C, Y, X]."""
        have = self.out_chw.get(v.src)
        if have is None:
            have = self.chw(Value(v.src, v.shape, v.layout))
        C, Y, X = want
        if have[0] != C or Y % have[1] or X % have[2]:
            raise self.error(f"broadcasts '{v.src}' {list(have)} over {list(want)}, which the "
                             "workload format cannot express",
                             "only a [C, 1, 1] (or [C, y, x] dividing the map) operand can be "
                             "broadcast over a map")
        src = self.need(Value(v.src, tuple(have), (0, 1, 2)), have)
        if tuple(have) == tuple(want):
            return src
        return self.emit({"name": f"{src}.broadcast", "op": "upsample", "inputs": [src],
                          "factor": Y // have[1], "factor_x": X // have[2]}, want,
                         note=f"importer: broadcast of {list(have)} over {list(want)} for "
                              f"'{self.node[0]}'")

    # ---------------------------------------------------------------- GEMMs
    def fc(self, name: str, x: Value, C: int, K: int, out_shape: tuple) -> Value:
        """`x` (tokens x C, tokens = its other elements) times a constant C x K weight. Tokens
        that are a feature map's pixels keep its rows and cols, so the fc pipelines row by row
        and a conv after it reads its output as it is."""
        tokens = x.elems // C
        src = self.need(x)
        have = self.out_chw[src]
        Y, X = (have[1], have[2]) if have[0] == C and have[1] * have[2] == tokens else (tokens, 1)
        spec = {"name": name, "op": "fc", "inputs": [src], "C": C, "K": K}
        if Y != 1:
            spec["Y"] = Y
        if X != 1:
            spec["X"] = X
        out = self.emit(spec, (K, Y, X))
        lay = self.canonical_layout(len(out_shape))
        return Value(out, tuple(out_shape), lay if chw_of(out_shape, lay) == (K, Y, X) else None)

    def matmul(self, name, a: Value, b: Value, heads, M, N, Kd, out_shape) -> Value:
        """Activation x activation: a holds heads x M x Kd, b heads x Kd x N elements."""
        if a.elems != heads * M * Kd or b.elems != heads * Kd * N:
            raise self.error(f"broadcasting matmul {list(a.shape)} x {list(b.shape)}",
                             "give both operands the same batch dims")
        spec = {"name": name, "op": "matmul", "inputs": [self.need(a), self.need(b)],
                "M": M, "N": N, "Kd": Kd}
        if heads != 1:
            spec["heads"] = heads
        return Value(self.emit(spec, (heads * N, M, 1)), tuple(out_shape), None)

    # ---------------------------------------------------------------- reductions
    def reduce(self, v: Value, axes, kind: str, out_shape: tuple, name: str) -> Value:
        """A reduction (mean, max, sum) over `axes` of `v`. Over the rows and cols of a map (or
        the tokens of a [N, T, D] tensor): a `pool` layer with the whole map as its window
        (global average / max pooling). Over the features (LayerNorm, softmax statistics) or
        over the batch axis (BatchNorm statistics in training mode): a statistic of `v`,
        fused."""
        rank = len(v.shape)
        axes = {a % rank for a in axes if v.shape[a % rank] != 1}
        lay = v.layout or self.canonical_layout(rank)
        if not axes or 0 in axes:
            return Value(v.src, tuple(out_shape), None, True)
        if lay is not None:
            c, y, x = lay
            spatial = {a for a in (y, x) if a is not None and v.shape[a] != 1}
            if axes == spatial:
                C, Y, X = self.chw(v)
                src = self.need(v, (C, Y, X))
                spec = {"name": name, "op": "pool", "inputs": [src], "C": C, "Y": Y, "X": X,
                        "R": Y, "S": X, "stride": Y, "padding": "valid", "kind": kind}
                if X != Y:
                    spec["stride_x"] = X
                return Value(self.emit(spec, (C, 1, 1)), tuple(out_shape), None)
            if axes <= {c}:
                return Value(v.src, tuple(out_shape), None, True)
        if axes == {rank - 1}:
            return Value(v.src, tuple(out_shape), None, True)
        raise self.error(f"reduction over axes {sorted(axes)} of a tensor of shape "
                         f"{list(v.shape)}", "reduce over the rows and cols (global pooling) "
                         "or over the features (normalization) only")

    # ---------------------------------------------------------------- the document
    def doc(self, name: str, source: dict, description: str = "") -> dict:
        inputs = [{"name": i["name"], "shape": i["shape"]} for i in self.inputs
                  if i["shape"] is not None]  # an input nothing reads is dropped
        layers = []
        for spec in self.layers:
            spec = dict(spec)
            note = self.notes.get(spec["name"], "")
            fused = self.fused.get(spec["name"])
            if fused:
                note = (note + "; " if note else "") + "fused: " + ", ".join(fused)
            if note:
                spec["note"] = note
            layers.append(spec)
        if not layers:
            raise WorkloadError(f"{self.where}: no layer the cost model can map (no conv, "
                                "matmul, pool, ... on the inputs)")
        src = dict(source)
        notes = {k: v["note"] for k, v in zip([l["name"] for l in layers], layers)
                 if "note" in v}
        if notes:
            src["notes"] = notes
        out = {"name": name}
        if description:
            out["description"] = description
        out.update({"source": src, "inputs": inputs, "layers": layers})
        return out

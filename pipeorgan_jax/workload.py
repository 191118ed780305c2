"""Workload model: a DAG of operators, loaded and validated in plain Python.

The file format is documented in docs/workload_format.md. `build_model` turns a parsed YAML
document into a `Model` (layers in topological = pipeline order, with derived shapes, MACs, weights); a bad
file raises `WorkloadError` whose message names the file, the layer and the field.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Optional

import yaml

MODELS_DIR = Path(__file__).parent / "models"

OPS = ("conv", "fc", "matmul", "pool", "add", "concat", "upsample", "slice", "reshape")

# Required and optional fields per op; optional values are defaults.
_REQUIRED = {
    "conv": ("C", "K", "Y", "X", "R", "S"),
    "fc": ("C", "K"),
    "matmul": ("M", "N", "Kd"),
    "pool": ("C", "Y", "X", "R", "S"),
    "add": (),
    "concat": (),
    "upsample": ("factor",),
    "slice": ("C",),
    "reshape": ("C", "Y", "X"),
}
_OPTIONAL = {
    "conv": {"stride": 1, "stride_x": None, "groups": 1, "padding": "same"},
    "fc": {"Y": 1, "X": 1},
    "matmul": {"heads": 1},
    "pool": {"stride": 1, "stride_x": None, "padding": "same", "kind": "max"},
    "add": {},
    "concat": {},
    "upsample": {"factor_x": None},
    "slice": {"start": 0},
    "reshape": {},
}
_COMMON = {"name", "op", "inputs", "ref", "inferred", "note"}
_INT_FIELDS = {"C", "K", "Y", "X", "R", "S", "stride", "stride_x", "groups", "M", "N", "Kd",
               "heads", "factor", "factor_x", "start"}


# Limits that keep every output finite and exact enough in the batch model's float32 (max
# 3.4e38; integers exact up to 2**24): a dimension is at most MAX_DIM, a tensor (activations or
# weights) at most MAX_ELEMS elements, a model at most MAX_MACS MACs. With these, latency is
# below ~1e16 cycles and energy below ~1e20 pJ on the shipped hardware configs, so EDP stays
# far below float32's range; a cost that still overflows (extreme hardware values) fails its
# model with one line, never a written inf. docs/workload_format.md, "Limits".
MAX_DIM = 2 ** 24
MAX_ELEMS = 2 ** 40
MAX_MACS = 2 ** 50


class WorkloadError(ValueError):
    """A workload file is malformed; the message is one line naming file, layer and field."""


def read_text(path: Path) -> str:
    """A workload file's text, or a one-line WorkloadError: missing, not a file, unreadable,
    not UTF-8 text (a leading byte-order mark is dropped)."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            raise WorkloadError(f"{path}: not a file")
        data = path.read_bytes()
    except OSError as e:
        raise WorkloadError(f"{path}: cannot read: {e.strerror or e}") from None
    if b"\0" in data:
        raise WorkloadError(f"{path}: not a text file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise WorkloadError(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} on line "
                            f"{line}); save the file as UTF-8") from None


def parse_yaml(path: Path, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise WorkloadError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise WorkloadError(f"{path}: not valid YAML: nested too deeply") from None


@dataclasses.dataclass(frozen=True)
class Layer:
    name: str
    op: str
    inputs: tuple[str, ...]
    in_shapes: tuple[tuple[int, int, int], ...]  # per input [C, Y, X] as produced
    out_shape: tuple[int, int, int]  # [K, Yo, Xo]
    macs: int
    weight_elems: int
    # Row geometry for tiling: output row r needs input rows [r*stride_rows - pad_rows,
    # r*stride_rows - pad_rows + kernel_rows). `rows_full` marks ops that need the whole input
    # before producing any output row (global pools, fc over a flattened map, matmul).
    kernel_rows: int
    stride_rows: int
    pad_rows: int
    rows_full: bool
    ref: Optional[str] = None
    inferred: tuple[str, ...] = ()
    params: dict = dataclasses.field(default_factory=dict, compare=False)

    @property
    def in_act_elems(self) -> int:
        return sum(c * y * x for c, y, x in self.in_shapes)

    @property
    def out_act_elems(self) -> int:
        k, y, x = self.out_shape
        return k * y * x

    @property
    def ops(self) -> int:
        """Work in PE operations: MACs, or one op per input element for MAC-free operators."""
        return self.macs if self.macs > 0 else max(self.in_act_elems, self.out_act_elems)

    @property
    def reduction_ok(self) -> bool:
        """The reduction (input-channel) partition applies: fc, matmul and 1x1 convolutions
        without groups, whose outputs each sum over input channels only."""
        if self.op in ("fc", "matmul"):
            return True
        p = self.params
        return self.op == "conv" and p.get("R", 1) == 1 and p.get("S", 1) == 1 \
            and p.get("groups", 1) == 1

    @property
    def aw_ratio(self) -> float:
        if self.weight_elems == 0:
            return math.inf
        return (self.in_act_elems + self.out_act_elems) / self.weight_elems


@dataclasses.dataclass(frozen=True)
class Edge:
    src: int  # producer layer index, or -1 - i for network input i
    dst: int
    elems: int  # elements of the producer's output tensor carried to dst
    skip: bool
    inferred: bool
    operand: int  # which input of dst this edge feeds


@dataclasses.dataclass(frozen=True)
class Model:
    name: str
    path: str
    description: str
    source: dict
    data_bytes: int
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int, int, int], ...]
    layers: tuple[Layer, ...]
    edges: tuple[Edge, ...]

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)

    @property
    def weight_elems(self) -> int:
        return sum(l.weight_elems for l in self.layers)

    @property
    def act_elems(self) -> int:
        return sum(l.out_act_elems for l in self.layers)

    @property
    def skip_edges(self) -> list[Edge]:
        return [e for e in self.edges if e.skip]

    def index(self, name: str) -> int:
        for i, l in enumerate(self.layers):
            if l.name == name:
                return i
        raise KeyError(name)


def _out_len(n: int, k: int, s: int, padding: Any) -> tuple[int, int]:
    """Output length and leading pad for a window k, stride s over n."""
    if padding == "same":
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        return out, total // 2
    if padding == "valid":
        return (n - k) // s + 1, 0
    p = int(padding)
    return (n + 2 * p - k) // s + 1, p


def _err(path: str, layer: str, field: str, msg: str) -> WorkloadError:
    return WorkloadError(f"{path}: layer '{layer}', field '{field}': {msg}")


def _int_field(path, lname, spec, key):
    v = spec[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise _err(path, lname, key, f"must be an integer, got {v!r}")
    if v <= 0 and not (key == "start" and v == 0):
        raise _err(path, lname, key, f"must be positive, got {v}")
    if v > MAX_DIM:
        raise _err(path, lname, key, f"{v} exceeds the limit {MAX_DIM} (2**24)")
    return v


def _check_size(path, lname, layer) -> None:
    """Tensor and MAC limits (MAX_ELEMS, MAX_MACS): beyond them float32 costs overflow."""
    for what, v, lim in (("output elements", layer.out_act_elems, MAX_ELEMS),
                         ("weight elements", layer.weight_elems, MAX_ELEMS),
                         ("MACs", layer.macs, MAX_MACS)):
        if v > lim:
            raise _err(path, lname, "-", f"{what} {v:.3g} exceed the limit {lim:.3g}")


def build_model(doc: dict, path: str = "<memory>") -> Model:
    """Validate a parsed workload document and derive every layer's shapes and counts."""
    if not isinstance(doc, dict):
        raise WorkloadError(f"{path}: top level must be a mapping")
    for key in ("name", "inputs", "layers"):
        if key not in doc:
            raise WorkloadError(f"{path}: layer '-', field '{key}': missing")
    if not _is_name(doc["name"]):
        raise _err(path, "-", "name", f"must be a non-empty string, got {doc['name']!r}")
    for key in ("description",):
        if doc.get(key) is not None and not isinstance(doc[key], (str, int, float)):
            raise _err(path, "-", key, f"must be text, got {doc[key]!r}")
    if doc.get("source") is not None and not isinstance(doc["source"], dict):
        raise _err(path, "-", "source", f"must be a mapping, got {doc['source']!r}")
    data_bytes = doc.get("data_bytes", 1)
    if not isinstance(data_bytes, int) or isinstance(data_bytes, bool) or not 0 < data_bytes <= 16:
        raise _err(path, "-", "data_bytes", f"must be an integer in 1..16, got {data_bytes!r}")
    shapes: dict[str, tuple[int, int, int]] = {}
    producer: dict[str, int] = {}
    input_names, input_shapes = [], []
    if not isinstance(doc["inputs"], list) or not doc["inputs"]:
        raise _err(path, "-", "inputs", "must be a non-empty list")
    for i, inp in enumerate(doc["inputs"]):
        name = inp.get("name") if isinstance(inp, dict) else None
        if not name:
            raise _err(path, f"inputs[{i}]", "name", "missing")
        if not _is_name(name):
            raise _err(path, f"inputs[{i}]", "name", f"must be a string, got {name!r}")
        if name in shapes:
            raise _err(path, name, "name", "duplicate input name")
        shp = inp.get("shape")
        if not (isinstance(shp, list) and len(shp) == 3
                and all(isinstance(v, int) and not isinstance(v, bool) for v in shp)):
            raise _err(path, name, "shape", f"must be [C, Y, X] integers, got {shp!r}")
        if min(shp) <= 0:
            raise _err(path, name, "shape", f"dimensions must be positive, got {shp}")
        if max(shp) > MAX_DIM:
            raise _err(path, name, "shape", f"{max(shp)} exceeds the limit {MAX_DIM} (2**24)")
        if math.prod(shp) > MAX_ELEMS:
            raise _err(path, name, "shape", f"{math.prod(shp):.3g} elements exceed the limit "
                       f"{MAX_ELEMS:.3g}")
        shapes[name] = tuple(shp)
        producer[name] = -1 - i
        input_names.append(name)
        input_shapes.append(tuple(shp))

    raw_layers = doc["layers"]
    if not isinstance(raw_layers, list) or not raw_layers:
        raise _err(path, "-", "layers", "must be a non-empty list")
    all_names = {}
    for i, spec in enumerate(raw_layers):
        if not isinstance(spec, dict):
            raise _err(path, f"layers[{i}]", "-", "each layer must be a mapping")
        n = spec.get("name")
        if n is None or n == "":
            raise _err(path, f"layers[{i}]", "name", "missing")
        if not _is_name(n):
            raise _err(path, f"layers[{i}]", "name", f"must be a string, got {n!r}")
        if n in all_names or n in shapes:
            raise _err(path, n, "name", "duplicate name")
        all_names[n] = i

    layers: list[Layer] = []
    edges: list[Edge] = []
    for i, spec in enumerate(raw_layers):
        lname = spec["name"]
        op = spec.get("op")
        if op is None:
            raise _err(path, lname, "op", "missing")
        if op not in OPS:
            raise _err(path, lname, "op", f"unknown op {op!r}; known: {', '.join(OPS)}")
        for key in _REQUIRED[op]:
            if key not in spec:
                raise _err(path, lname, key, f"missing (required for op '{op}')")
        unknown = set(spec) - _COMMON - set(_REQUIRED[op]) - set(_OPTIONAL[op])
        if unknown:
            raise _err(path, lname, sorted(map(str, unknown))[0], f"unknown field for op '{op}'")
        p = dict(_OPTIONAL[op])
        p.update({k: v for k, v in spec.items() if k not in _COMMON})
        for key in list(p):
            # A field given as null is validated too (only the stride_x default may be None).
            if key in _INT_FIELDS and (p[key] is not None or key in spec):
                p[key] = _int_field(path, lname, p, key)
        inputs = spec.get("inputs")
        if not isinstance(inputs, list) or not inputs or not all(isinstance(s, str) for s in inputs):
            raise _err(path, lname, "inputs", "must be a non-empty list of names")
        for src in inputs:
            if src not in shapes:
                if src in all_names and all_names[src] == i:
                    raise _err(path, lname, "inputs", "layer consumes itself (cycle)")
                if src in all_names:
                    # A forward reference is a cycle if the later layer reaches this one.
                    if _reaches(raw_layers, all_names, src, lname):
                        raise _err(path, lname, "inputs",
                                   f"cycle: '{src}' depends on '{lname}'")
                    raise _err(path, lname, "inputs",
                               f"'{src}' is listed after its consumer; list layers in "
                               "topological order")
                raise _err(path, lname, "inputs", f"unknown layer or input '{src}'")
        inferred = spec.get("inferred", []) or []
        if not isinstance(inferred, list) or any(s not in inputs for s in inferred):
            raise _err(path, lname, "inferred", "must list a subset of the layer's inputs")
        in_shapes = tuple(shapes[s] for s in inputs)
        layer = _derive(path, lname, op, p, in_shapes, spec)
        _check_size(path, lname, layer)
        layers.append(layer)
        shapes[lname] = layer.out_shape
        producer[lname] = i
        for operand, src in enumerate(inputs):
            j = producer[src]
            c, y, x = shapes[src]
            edges.append(Edge(src=j, dst=i, elems=c * y * x, skip=(j != i - 1 if j >= 0 else i != 0),
                              inferred=src in inferred, operand=operand))
    total = sum(l.macs for l in layers)
    if total > MAX_MACS:
        raise _err(path, "-", "-", f"the model's MACs {total:.3g} exceed the limit {MAX_MACS:.3g}")
    return Model(
        name=str(doc["name"]), path=path, description=str(doc.get("description", "")),
        source=dict(doc.get("source", {}) or {}), data_bytes=data_bytes,
        input_names=tuple(input_names), input_shapes=tuple(input_shapes),
        layers=tuple(layers), edges=tuple(edges))


def _is_name(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _reaches(raw_layers, all_names, start: str, target: str) -> bool:
    seen, stack = set(), [start]
    while stack:
        n = stack.pop()
        if n == target:
            return True
        if n in seen or n not in all_names:
            continue
        seen.add(n)
        ins = raw_layers[all_names[n]].get("inputs", []) or []
        stack.extend(s for s in (ins if isinstance(ins, list) else []) if isinstance(s, str))
    return False


def _derive(path, lname, op, p, in_shapes, spec) -> Layer:
    def mismatch(field, want, got):
        return _err(path, lname, field, f"expects {want} but its producer gives {got}")

    ref = spec.get("ref")
    inferred = tuple(spec.get("inferred", []) or [])
    n_in = len(in_shapes)
    if op in ("conv", "pool"):
        if n_in != 1:
            raise _err(path, lname, "inputs", f"'{op}' takes one input, got {n_in}")
        C, Y, X, R, S = p["C"], p["Y"], p["X"], p["R"], p["S"]
        if in_shapes[0] != (C, Y, X):
            raise mismatch("C/Y/X", [C, Y, X], list(in_shapes[0]))
        sy = p["stride"]
        sx = p["stride_x"] or sy
        pad = p["padding"]
        if pad not in ("same", "valid") and (not isinstance(pad, int) or isinstance(pad, bool)
                                             or pad < 0):
            raise _err(path, lname, "padding",
                       f"must be same, valid or a non-negative integer, got {pad!r}")
        Yo, pad_y = _out_len(Y, R, sy, pad)
        Xo, _ = _out_len(X, S, sx, pad)
        if Yo <= 0 or Xo <= 0:
            raise _err(path, lname, "R/S", f"kernel {R}x{S} larger than input {Y}x{X}")
        if op == "conv":
            K, g = p["K"], p["groups"]
            if C % g or K % g:
                raise _err(path, lname, "groups", f"{g} must divide C={C} and K={K}")
            macs = Yo * Xo * K * (C // g) * R * S
            w = K * (C // g) * R * S
            out = (K, Yo, Xo)
        else:
            if p["kind"] not in ("max", "avg"):
                raise _err(path, lname, "kind", f"must be max or avg, got {p['kind']!r}")
            macs, w, out = 0, 0, (C, Yo, Xo)
        return Layer(lname, op, tuple(spec["inputs"]), in_shapes, out, macs, w,
                     kernel_rows=R, stride_rows=sy, pad_rows=pad_y,
                     rows_full=(Yo == 1 and Y > 1), ref=ref, inferred=inferred, params=p)
    if op == "fc":
        if n_in != 1:
            raise _err(path, lname, "inputs", f"'fc' takes one input, got {n_in}")
        C, K, Y, X = p["C"], p["K"], p["Y"], p["X"]
        got = math.prod(in_shapes[0])
        if got != C * Y * X:
            raise mismatch("C", f"{C * Y * X} elements (C*Y*X)", f"{got} {list(in_shapes[0])}")
        # A row-wise fc (tokens are rows) pipelines row by row; an fc over a flattened map does not.
        rowwise = in_shapes[0][1] == Y
        return Layer(lname, op, tuple(spec["inputs"]), in_shapes, (K, Y, X), Y * X * C * K, C * K,
                     kernel_rows=1, stride_rows=1, pad_rows=0, rows_full=not rowwise,
                     ref=ref, inferred=inferred, params=p)
    if op == "matmul":
        if n_in != 2:
            raise _err(path, lname, "inputs", f"'matmul' takes two inputs, got {n_in}")
        H, M, N, Kd = p["heads"], p["M"], p["N"], p["Kd"]
        a, b = math.prod(in_shapes[0]), math.prod(in_shapes[1])
        if a != H * M * Kd:
            raise mismatch("M/Kd", f"{H * M * Kd} elements (heads*M*Kd)", f"{a} {list(in_shapes[0])}")
        if b != H * Kd * N:
            raise mismatch("N/Kd", f"{H * Kd * N} elements (heads*Kd*N)", f"{b} {list(in_shapes[1])}")
        return Layer(lname, op, tuple(spec["inputs"]), in_shapes, (H * N, M, 1), H * M * N * Kd, 0,
                     kernel_rows=1, stride_rows=1, pad_rows=0, rows_full=True,
                     ref=ref, inferred=inferred, params=p)
    if op == "add":
        if n_in < 2:
            raise _err(path, lname, "inputs", f"'add' takes two or more inputs, got {n_in}")
        for s in in_shapes[1:]:
            if s != in_shapes[0]:
                raise mismatch("inputs", list(in_shapes[0]), list(s))
        return Layer(lname, op, tuple(spec["inputs"]), in_shapes, in_shapes[0], 0, 0,
                     kernel_rows=1, stride_rows=1, pad_rows=0, rows_full=False,
                     ref=ref, inferred=inferred, params=p)
    if op == "concat":
        if n_in < 2:
            raise _err(path, lname, "inputs", f"'concat' takes two or more inputs, got {n_in}")
        for s in in_shapes[1:]:
            if s[1:] != in_shapes[0][1:]:
                raise mismatch("inputs", f"rows/cols {list(in_shapes[0][1:])}", list(s[1:]))
        out = (sum(s[0] for s in in_shapes),) + tuple(in_shapes[0][1:])
        return Layer(lname, op, tuple(spec["inputs"]), in_shapes, out, 0, 0,
                     kernel_rows=1, stride_rows=1, pad_rows=0, rows_full=False,
                     ref=ref, inferred=inferred, params=p)
    if op == "slice":
        if n_in != 1:
            raise _err(path, lname, "inputs", f"'slice' takes one input, got {n_in}")
        c, y, x = in_shapes[0]
        if p["start"] + p["C"] > c:
            raise _err(path, lname, "C", f"channels [{p['start']}, {p['start'] + p['C']}) exceed "
                       f"the producer's {c}")
        return Layer(lname, op, tuple(spec["inputs"]), in_shapes, (p["C"], y, x), 0, 0,
                     kernel_rows=1, stride_rows=1, pad_rows=0, rows_full=False,
                     ref=ref, inferred=inferred, params=p)
    if op == "reshape":
        if n_in != 1:
            raise _err(path, lname, "inputs", f"'reshape' takes one input, got {n_in}")
        C, Y, X = p["C"], p["Y"], p["X"]
        got = math.prod(in_shapes[0])
        if got != C * Y * X:
            raise mismatch("C/Y/X", f"{C * Y * X} elements (C*Y*X)", f"{got} {list(in_shapes[0])}")
        return Layer(lname, op, tuple(spec["inputs"]), in_shapes, (C, Y, X), 0, 0,
                     kernel_rows=1, stride_rows=1, pad_rows=0, rows_full=in_shapes[0][1] != Y,
                     ref=ref, inferred=inferred, params=p)
    # upsample
    if n_in != 1:
        raise _err(path, lname, "inputs", f"'upsample' takes one input, got {n_in}")
    f = p["factor"]
    fx = p["factor_x"] or f
    c, y, x = in_shapes[0]
    return Layer(lname, op, tuple(spec["inputs"]), in_shapes, (c, y * f, x * fx), 0, 0,
                 kernel_rows=1, stride_rows=1, pad_rows=0, rows_full=False,
                 ref=ref, inferred=inferred, params=p)


def summarize(model: Model) -> dict:
    aw = sorted(l.aw_ratio for l in model.layers if l.weight_elems > 0)
    med = aw[len(aw) // 2] if aw else math.nan
    db = model.data_bytes
    return {
        "layers": len(model.layers),
        "edges": len(model.edges),
        "skip_edges": len(model.skip_edges),
        "inferred_edges": sum(e.inferred for e in model.edges),
        "macs": model.macs,
        "weight_elems": model.weight_elems,
        "weight_mb": model.weight_elems * db / 1e6,
        "act_mb": model.act_elems * db / 1e6,
        "aw_min": aw[0] if aw else math.nan,
        "aw_median": med,
        "aw_max": aw[-1] if aw else math.nan,
    }

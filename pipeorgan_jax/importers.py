"""Importers: MAESTRO `.m` layer lists (XR-bench usage scenarios, accelerator configs) and plain
layer tables (CSV or table-style YAML, docs/layer_table_format.md).

Every importer converts to the workload document of docs/workload_format.md and calls
`build_model`, so all of its validation applies and errors are `WorkloadError`s (one line that
names the file, the layer and the field).

MAESTRO semantics kept exactly (checked against XR-bench `summary.json`):
- `Y, X` are a layer's input rows/cols; the output is Y' = max((Y - R) // stride + 1, 1), i.e.
  no padding, and a kernel larger than its input still yields one output row/col. A layer
  without `Stride` has stride 1 (a warning per file says how many layers lacked it).
- MACs of a `CONV` layer are K * C * Y' * X' * R * S; a `DSCONV` (depthwise, imported as a conv
  with groups = C) has C * Y' * X' * R * S.
- Layers named `fc...` (with a 1x1 kernel) are imported as `op: fc` with C and K as given and
  Y' * X' tokens, so their MACs are Y' * X' * C * K = MAESTRO's. The tokens are laid out as a
  grid (`Y`, `X` of the fc) that matches the producer's map when the token count allows (else
  the next conv's map, else MAESTRO's Y' x X'), so an fc between convs pipelines row by row and
  its consumer conv connects; the grid never changes the MACs. An `fc` layer with a kernel
  larger than 1x1 stays a conv.
- A conv whose kernel exceeds its input (Y < R) is given the input MAESTRO implicitly assumes,
  max(Y, R) x max(X, S), with `padding: valid`, so its output is 1 row/col as in MAESTRO;
  its `note` records this.

The `.m` lists are chains whose consecutive shapes often disagree (strides, pools, flatten,
padding, attention matmuls and skip connections are not recorded). `_link` connects each layer
to the previous one:
  1. same shape (fc: same channels and tokens, or same element count): a direct edge;
  2. same channels, sizes differ: an inserted `upsample` (integer factor, only when both sizes
     at least double) and/or one inserted `pool` with per-dimension window and stride that
     downsamples and/or zero-pads (`padding: p`, p up to max(MAX_PAD, producer kernel // 2),
     which stands in for the `same` padding MAESTRO's valid sizes drop); of the pools that fit,
     the one whose windows are closest to its strides, with the least padding;
     an fc with one token reading a map whose channels divide its C: a pool, then flatten;
  3. otherwise (channels differ, a reshape, too much padding): the layer reads a fresh network
     input of its own shape, named `<layer>_in`.
Inserted layers are named `<layer>_pool` / `<layer>_up` and have no `ref`. Every imported
layer keeps `ref` = its name in the .m file. What the importer did is written in each layer's
`note` and, since `Layer` does not keep notes, in `model.source["notes"]` ({layer: note}).
"""
from __future__ import annotations

import csv
import dataclasses
import re
import warnings
from pathlib import Path
from typing import Any, Optional

from pipeorgan_jax.workload import Model, WorkloadError, build_model, parse_yaml, read_text

MAX_PAD = 4  # rows/cols of zero padding per side an inserted pool may add


class MaestroWarning(UserWarning):
    """A MAESTRO file relies on a default (e.g. missing Stride)."""


def _err(path, layer, field, msg) -> WorkloadError:
    msg = " ".join(str(msg).split())
    return WorkloadError(f"{path}: layer '{layer}', field '{field}': {msg}")


# ----------------------------------------------------------------------------- MAESTRO parser

_TOKEN = re.compile(r"[{}:,;]|[^\s{}:,;]+")


@dataclasses.dataclass
class _Block:
    kind: Optional[str]
    name: Optional[str]
    line: int
    fields: dict = dataclasses.field(default_factory=dict)  # key -> str | _Block
    children: list = dataclasses.field(default_factory=list)  # named blocks: `Kind Name { }`
    words: list = dataclasses.field(default_factory=list)  # bare words (e.g. Dependency list)
    field_lines: dict = dataclasses.field(default_factory=dict)


def _strip_comments(text: str) -> str:
    # Keep newlines inside /* */ so line numbers stay right.
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _tokens(text: str) -> list[tuple[str, int]]:
    out = []
    for ln, line in enumerate(_strip_comments(text).split("\n"), 1):
        out.extend((m.group(0), ln) for m in _TOKEN.finditer(line))
    return out


def _parse(path, text: str) -> _Block:
    toks = _tokens(text)
    n = len(toks)

    def word(i):
        return i < n and toks[i][0] not in "{}:,;"

    def body(i, blk: _Block, nested: bool, where: str):
        while i < n:
            t, ln = toks[i]
            if t == "}":
                if nested:
                    return i + 1
                raise _err(path, where, "-", f"line {ln}: unmatched '}}'")
            if t in ",;":
                i += 1
                continue
            if t in "{:":
                raise _err(path, where, "-", f"line {ln}: unexpected '{t}'")
            nxt = toks[i + 1][0] if i + 1 < n else None
            if nxt == ":":
                if i + 2 >= n:
                    raise _err(path, where, t, f"line {ln}: value missing at end of file")
                v, vln = toks[i + 2]
                if v == "{":
                    sub = _Block(t, None, vln)
                    i = body(i + 3, sub, True, where)
                    blk.fields[t] = sub
                elif word(i + 2):
                    blk.fields[t] = v
                    i += 3
                else:
                    raise _err(path, where, t, f"line {vln}: unexpected '{v}' after '{t}:'")
                blk.field_lines[t] = ln
            elif nxt == "{":  # keyed block: `Stride { X: 2, Y: 2 }`, `Dataflow { ... }`
                sub = _Block(t, None, ln)
                i = body(i + 2, sub, True, where)
                blk.fields[t] = sub
                blk.field_lines[t] = ln
            elif word(i + 1) and i + 2 < n and toks[i + 2][0] == "{":  # `Layer conv1 {`
                sub = _Block(t, nxt, ln)
                i = body(i + 3, sub, True, nxt)
                blk.children.append(sub)
            else:
                blk.words.append(t)
                i += 1
        if nested:
            raise _err(path, where, "-", f"missing '}}' for the block opened at line {blk.line}")
        return i

    root = _Block(None, None, 1)
    body(0, root, False, "-")
    return root


def _scalar(v: str) -> Any:
    if v in ("True", "true"):
        return True
    if v in ("False", "false"):
        return False
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


# ----------------------------------------------------------------------------- MAESTRO networks

@dataclasses.dataclass(frozen=True)
class ScenarioEntry:
    model: Model
    fps: Optional[float]
    depends_on: tuple[str, ...] = ()
    probability: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A MAESTRO / XR-bench usage scenario: several networks with FPS targets and cascades."""
    name: str
    path: str
    entries: tuple[ScenarioEntry, ...]

    @property
    def models(self) -> list[Model]:
        return [e.model for e in self.entries]

    @property
    def pairs(self) -> list[tuple[Model, Optional[float]]]:
        """(model, fps) per network, in file order."""
        return [(e.model, e.fps) for e in self.entries]

    def entry(self, name: str) -> ScenarioEntry:
        for e in self.entries:
            if e.model.name == name:
                return e
        raise KeyError(name)


def load_maestro(path) -> list[Model]:
    """Every `Network` in a MAESTRO .m file, as Models (a file of bare Layers is one network)."""
    return [e.model for e in _load_scenario(path, stacklevel=3).entries]


def load_maestro_scenario(path) -> Scenario:
    """A MAESTRO .m file as a Scenario: its networks with `FPS`, `Dependency`, `Probability`."""
    return _load_scenario(path, stacklevel=3)


def _parse_file(path) -> tuple[Path, "_Block"]:
    path = Path(path)
    return path, _parse(path, read_text(path))


def _load_scenario(path, stacklevel: int) -> Scenario:
    path, root = _parse_file(path)
    nets = [b for b in root.children if b.kind == "Network"]
    if not nets:
        layers = [b for b in root.children if b.kind == "Layer"]
        if not layers:
            raise _err(path, "-", "Network", "no Network or Layer blocks found")
        nets = [_Block("Network", path.stem, 1, children=layers)]
    seen = set()
    entries, missing_stride, total = [], 0, 0
    for net in nets:
        if net.name in seen:
            raise _err(path, net.name, "Network", "duplicate network name")
        seen.add(net.name)
        model, n_missing, n_layers = _network(path, net)
        missing_stride += n_missing
        total += n_layers
        fps = _opt_float(path, net, "FPS")
        prob = _opt_float(path, net, "Probability")
        dep = net.fields.get("Dependency")
        if dep is None:
            deps = ()
        elif isinstance(dep, _Block):
            deps = tuple(dep.words) + tuple(dep.fields)
        else:
            deps = (dep,)
        entries.append(ScenarioEntry(model, fps, deps, prob))
    if missing_stride:
        warnings.warn(f"{path}: {missing_stride} of {total} layers have no Stride; "
                      "read as stride 1 (MAESTRO's default)", MaestroWarning,
                      stacklevel=stacklevel)
    names = {e.model.name for e in entries}
    for e in entries:
        for d in e.depends_on:
            if d not in names:
                raise _err(path, e.model.name, "Dependency", f"unknown network '{d}'")
    return Scenario(name=path.stem, path=str(path), entries=tuple(entries))


def _opt_float(path, blk: _Block, key: str) -> Optional[float]:
    v = blk.fields.get(key)
    if v is None:
        return None
    try:
        return float(v) if isinstance(v, str) else float("x")
    except ValueError:
        got = repr(v) if isinstance(v, str) else "a { } block"
        raise _err(path, blk.name, key, f"must be a number, got {got}") from None


def _pos_int(path, lname, key, v) -> int:
    try:
        iv = int(v)
    except (TypeError, ValueError):
        raise _err(path, lname, key, f"must be an integer, got {v!r}") from None
    if iv <= 0:
        raise _err(path, lname, key, f"must be positive, got {iv}")
    return iv


@dataclasses.dataclass
class _Imp:
    """One imported MAESTRO layer before linking."""
    spec: dict
    fc: bool
    C: int
    K: int
    Y: int  # conv: input rows it reads; fc: its own token grid rows
    X: int
    Yo: int  # conv output rows/cols
    Xo: int
    notes: list

    @property
    def tokens(self) -> int:
        return self.Y * self.X


def _network(path, net: _Block) -> tuple[Model, int, int]:
    """Convert one Network block to a Model; returns (model, layers without Stride, layers)."""
    layer_blocks = [b for b in net.children if b.kind == "Layer"]
    if not layer_blocks:
        raise _err(path, net.name, "Layer", f"network '{net.name}' has no layers")
    used = {b.name for b in layer_blocks}

    def fresh(base: str) -> str:
        n, k = base, 2
        while n in used:
            n, k = f"{base}{k}", k + 1
        used.add(n)
        return n

    imps: list[_Imp] = []
    missing = 0
    seen: set = set()
    for blk in layer_blocks:
        lname = blk.name if blk.name not in seen else fresh(f"{blk.name}_")
        seen.add(blk.name)
        imp, n_missing = _maestro_layer(path, lname, blk)
        imp.spec["ref"] = blk.name
        imps.append(imp)
        missing += n_missing

    inputs: list[dict] = []
    out: list[dict] = []
    notes: dict = {}
    prev: Optional[tuple] = None  # (name, out shape, kernel size)
    for i, imp in enumerate(imps):
        lname = imp.spec["name"]
        grid = _grid_hint(imps, i) if imp.fc else None
        if prev is not None:
            inserted, src, why, grid2 = _link(prev, imp, grid, lname, fresh)
        else:
            inserted, src, why, grid2 = [], None, "", None
        if imp.fc:
            gy, gx = grid2 or grid or (imp.Y, imp.X)
            if (gy, gx) != (imp.Y, imp.X):
                imp.notes.append(f"{imp.tokens} tokens laid out as {gy}x{gx}")
            imp.spec["Y"], imp.spec["X"] = gy, gx
            want, out_shape = (imp.C, gy, gx), (imp.K, gy, gx)
        else:
            want, out_shape = (imp.C, imp.Y, imp.X), (imp.K, imp.Yo, imp.Xo)
        if src is None:
            iname = fresh("input" if prev is None else f"{lname}_in")
            inputs.append({"name": iname, "shape": list(want)})
            src = iname
            if prev is not None:
                imp.notes.append(f"importer: reads fresh input '{iname}' {list(want)}: {why}")
        elif inserted:
            imp.notes.append(f"importer: {why}")
        for s in inserted:
            notes[s["name"]] = s["note"]
        out.extend(inserted)
        imp.spec["inputs"] = [src]
        if imp.notes:
            imp.spec["note"] = notes[lname] = "; ".join(imp.notes)
        out.append(imp.spec)
        prev = (lname, out_shape, 1 if imp.fc else max(imp.spec["R"], imp.spec["S"]))
    doc = {
        "name": net.name,
        "description": f"imported from MAESTRO file {Path(path).name}",
        "source": {"format": "maestro", "file": str(path), "network": net.name,
                   "notes": notes},
        "inputs": inputs,
        "layers": out,
    }
    return build_model(doc, str(path)), missing, len(layer_blocks)


def _grid_hint(imps: list, i: int) -> Optional[tuple[int, int]]:
    """Token grid for fc layer i: the map of the first conv after its run of same-token fcs."""
    T = imps[i].tokens
    for j in range(i + 1, len(imps)):
        nxt = imps[j]
        if nxt.fc:
            if nxt.tokens != T:
                return None
            continue
        return (nxt.Y, nxt.X) if nxt.Y * nxt.X == T else None
    return None


def _maestro_layer(path, lname, blk: _Block) -> tuple[_Imp, int]:
    """One MAESTRO Layer as an `_Imp`, plus 1 if it has no Stride."""
    typ = blk.fields.get("Type", "CONV")
    if not isinstance(typ, str) or typ.upper() not in ("CONV", "DSCONV"):
        raise _err(path, lname, "Type", f"unsupported layer type {typ!r} (CONV or DSCONV)")
    typ = typ.upper()
    dims = blk.fields.get("Dimensions")
    if not isinstance(dims, _Block):
        raise _err(path, lname, "Dimensions", "missing")
    d = {}
    for key in ("N", "K", "C", "Y", "X", "R", "S"):
        if key not in dims.fields:
            if key == "N" or (key == "K" and typ == "DSCONV"):
                continue
            raise _err(path, lname, key, "missing from Dimensions")
        d[key] = _pos_int(path, lname, key, dims.fields[key])
    if d.get("N", 1) != 1:
        raise _err(path, lname, "N", f"batch {d['N']} not supported (must be 1)")
    stride = blk.fields.get("Stride")
    n_missing = 0
    if stride is None:
        sy = sx = 1
        n_missing = 1
    elif isinstance(stride, _Block):
        sy = _pos_int(path, lname, "Stride", stride.fields.get("Y", 1))
        sx = _pos_int(path, lname, "Stride", stride.fields.get("X", 1))
    else:
        sy = sx = _pos_int(path, lname, "Stride", stride)
    C, Y, X, R, S = d["C"], d["Y"], d["X"], d["R"], d["S"]
    K = C if typ == "DSCONV" else d["K"]
    Yo = max((Y - R) // sy + 1, 1)
    Xo = max((X - S) // sx + 1, 1)
    notes = []
    if lname.lower().startswith("fc") and R == 1 and S == 1 and typ == "CONV":
        if (sy, sx) != (1, 1):
            notes.append(f"fc over {Yo}x{Xo} tokens (MAESTRO {Y}x{X}, stride {sy}x{sx})")
        spec = {"name": lname, "op": "fc", "C": C, "K": K}
        return _Imp(spec, True, C, K, Yo, Xo, Yo, Xo, notes), n_missing
    Ye, Xe = max(Y, R), max(X, S)
    spec = {"name": lname, "op": "conv", "C": C, "K": K, "Y": Ye, "X": Xe, "R": R, "S": S,
            "padding": "valid"}
    if sy != 1:
        spec["stride"] = sy
    if sx != sy:
        spec["stride_x"] = sx
    if typ == "DSCONV":
        spec["groups"] = C
    if (Ye, Xe) != (Y, X):
        notes.append(f"kernel {R}x{S} exceeds MAESTRO input {Y}x{X}: input taken as "
                     f"{Ye}x{Xe} so the output is {Yo}x{Xo} as MAESTRO counts it")
    if lname.lower().startswith("fc"):
        notes.append(f"fc-named layer with a {R}x{S} kernel kept as conv")
    return _Imp(spec, False, C, K, Ye, Xe, Yo, Xo, notes), n_missing


def _pool_dim(L: int, t: int) -> Optional[tuple[int, int]]:
    """(window, stride) taking length L to exactly t outputs with valid padding: of the strides
    floor(L/t) and ceil(L/t), the one whose window is closest to the stride."""
    best = None
    for s in sorted({L // t, -(-L // t)}):
        w = L - (t - 1) * s
        if s >= 1 and w >= 1 and (best is None or abs(w - s) < abs(best[0] - best[1])):
            best = (w, s)
    return best


def _spatial(have: tuple[int, int], want: tuple[int, int], max_pad: int = MAX_PAD):
    """Plan taking a [Yp, Xp] map to [Y, X]: (upsample factor or 1, pool or None, cost), or
    None when it would need more than max_pad of padding. pool = (p, (R, sy), (S, sx))."""
    (Yp, Xp), (Y, X) = have, want
    if (Yp, Xp) == (Y, X):
        return 1, None, 0
    f = min(Y // Yp, X // Xp)
    f = f if f >= 2 else 1
    Yu, Xu = Yp * f, Xp * f
    if (Yu, Xu) == (Y, X):
        return f, None, 1
    best = None
    for p in range(0, max_pad + 1):
        if Yu + 2 * p < Y or Xu + 2 * p < X:
            continue
        a, b = _pool_dim(Yu + 2 * p, Y), _pool_dim(Xu + 2 * p, X)
        if a is None or b is None:
            continue
        cost = abs(a[0] - a[1]) + abs(b[0] - b[1]) + 2 * p  # window ~ stride, little pad
        if best is None or cost < best[0]:
            best = (cost, (p, a, b))
    if best is None:
        return None
    return f, best[1], 1 + (f > 1) + best[0]


def _emit(plan, lname, C, have, src, fresh) -> tuple[list, str, str]:
    """Inserted layer specs for a `_spatial` plan; returns (specs, new source, description)."""
    f, pool, _ = plan
    Y, X = have
    specs, steps = [], []
    if f > 1:
        up = {"name": fresh(f"{lname}_up"), "op": "upsample", "inputs": [src], "factor": f,
              "note": f"importer: upsample x{f} in front of '{lname}'"}
        specs.append(up)
        src, Y, X = up["name"], Y * f, X * f
        steps.append(f"upsample x{f}")
    if pool is not None:
        p, (R, sy), (S, sx) = pool
        Yo, Xo = (Y + 2 * p - R) // sy + 1, (X + 2 * p - S) // sx + 1
        sp = {"name": fresh(f"{lname}_pool"), "op": "pool", "inputs": [src], "C": C, "Y": Y,
              "X": X, "R": R, "S": S, "stride": sy, "padding": p if p else "valid",
              "note": f"importer: pool {Y}x{X} -> {Yo}x{Xo} in front of '{lname}'"}
        if sx != sy:
            sp["stride_x"] = sx
        specs.append(sp)
        src = sp["name"]
        steps.append(f"pool {Y}x{X} -> {Yo}x{Xo}" + (f" (pad {p})" if p else ""))
    return specs, src, " then ".join(steps)


def _link(prev, imp: _Imp, hint, lname, fresh):
    """Connect `imp` to the previous layer's output.

    Returns (inserted specs, source name or None for a fresh input, reason, fc grid or None)."""
    pname, (Cp, Yp, Xp), pk = prev
    C = imp.C
    # Zero padding up to what `same` padding of the producer's kernel would have added.
    max_pad = max(MAX_PAD, pk // 2)
    if imp.fc:
        T = imp.tokens
        if Cp == C:
            if Yp * Xp == T:
                return [], pname, "", (Yp, Xp)
            grids = {(imp.Y, imp.X)} | ({hint} if hint else set())
            grids |= {(a, T // a) for a in range(1, min(T, 2 * Yp) + 1)  # grids near the map
                      if T % a == 0 and T // a <= 2 * Xp}
            plans = [(pl[2], g, pl) for g in grids if (pl := _spatial((Yp, Xp), g, max_pad))]
            if plans:
                _, g, pl = min(plans, key=lambda t: (t[0], t[1] != hint, t[1]))
                specs, src, why = _emit(pl, lname, Cp, (Yp, Xp), pname, fresh)
                return specs, src, f"{why} in front (producer {[Cp, Yp, Xp]})", g
        elif Cp * Yp * Xp == C * T:
            return [], pname, "", None
        elif imp.Y == imp.X == 1 and C % Cp == 0:  # classifier over a pooled, flattened map
            t = C // Cp
            g = next(((a, t // a) for a in range(min(Yp, t), 0, -1)
                      if t % a == 0 and t // a <= Xp), None)
            if g is not None:
                specs, src, why = _emit(_spatial((Yp, Xp), g), lname, Cp, (Yp, Xp), pname,
                                        fresh)
                return specs, src, f"{why} then flatten (producer {[Cp, Yp, Xp]})", None
        return [], None, (f"producer gives {[Cp, Yp, Xp]}, fc reads {C} channels x {T} "
                          "tokens"), None
    Y, X = imp.Y, imp.X
    if (Cp, Yp, Xp) == (C, Y, X):
        return [], pname, "", None
    if Cp != C:
        why = "reshape" if Cp * Yp * Xp == C * Y * X else "channels differ"
        return [], None, f"{why}: producer gives {[Cp, Yp, Xp]}", None
    plan = _spatial((Yp, Xp), (Y, X), max_pad)
    if plan is None:
        return [], None, (f"sizes cannot be reconciled: producer gives {[Cp, Yp, Xp]} "
                          f"(more than {max_pad} rows/cols of padding)"), None
    specs, src, why = _emit(plan, lname, C, (Yp, Xp), pname, fresh)
    return specs, src, f"{why} in front (producer {[Cp, Yp, Xp]})", None


# ----------------------------------------------------------------------------- MAESTRO hardware

def load_maestro_hw(path) -> dict:
    """Fields of the `Accelerator` block of a MAESTRO hw config (or of its top level when there
    is no such block), as numbers / booleans / strings; the block's name under `name`."""
    path, root = _parse_file(path)
    accs = [b for b in root.children if b.kind == "Accelerator"]
    if len(accs) > 1:
        raise _err(path, accs[1].name, "Accelerator",
                   f"{len(accs)} Accelerator blocks; expected one")
    blk = accs[0] if accs else root
    hw: dict = {"name": blk.name or path.stem}
    for k, v in blk.fields.items():
        if isinstance(v, _Block):
            hw[k] = {kk: _scalar(vv) for kk, vv in v.fields.items() if isinstance(vv, str)}
        else:
            hw[k] = _scalar(v)
    if "num_pes" not in hw:
        raise _err(path, hw["name"], "num_pes", "missing")
    if not isinstance(hw["num_pes"], int) or isinstance(hw["num_pes"], bool) or hw["num_pes"] <= 0:
        raise _err(path, hw["name"], "num_pes",
                   f"must be a positive integer, got {hw['num_pes']!r}")
    return hw


# ----------------------------------------------------------------------------- layer tables

TABLE_COLUMNS = ("name", "op", "C", "K", "Y", "X", "R", "S", "stride", "groups", "inputs")
TABLE_OPTIONAL = ("stride_x", "padding", "kind", "factor", "M", "N", "Kd", "heads", "ref", "note")
_TABLE_INT = {"C", "K", "Y", "X", "R", "S", "stride", "groups", "stride_x", "factor", "M", "N",
              "Kd", "heads"}
_TABLE_META = ("name", "description", "source", "data_bytes", "inputs", "table")


def load_layer_table(path) -> Model:
    """A user's model as a layer table: CSV (header row of column names) or YAML
    `{name: ..., table: [{row}, ...]}`; see docs/layer_table_format.md."""
    path = Path(path)
    text = read_text(path)  # one-line errors: not a file, unreadable, not UTF-8
    meta: dict = {}
    if path.suffix.lower() == ".csv":
        rows = list(csv.reader(text.splitlines()))
        rows = [r for r in rows if any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
        if not rows:
            raise _err(path, "-", "header", "empty table")
        header = [h.strip() for h in rows[0]]
        for h in header:
            if h not in TABLE_COLUMNS and h not in TABLE_OPTIONAL:
                raise _err(path, "-", h or "-", "unknown column; known: "
                           + ", ".join(TABLE_COLUMNS + TABLE_OPTIONAL))
        if len(set(header)) != len(header):
            dup = next(h for h in header if header.count(h) > 1)
            raise _err(path, "-", dup, "duplicate column")
        for need in ("name", "op"):
            if need not in header:
                raise _err(path, "-", need, "column missing from the header")
        table = []
        for i, r in enumerate(rows[1:], 1):
            if len(r) > len(header):
                nm = r[header.index("name")].strip() if len(r) > header.index("name") else ""
                raise _err(path, nm or f"row {i}", "-",
                           f"{len(r)} cells but the header has {len(header)} columns")
            table.append({h: (c.strip() if c.strip() != "" else None)
                          for h, c in zip(header, r)})
        meta["name"] = path.stem
    else:
        doc = parse_yaml(path, text)
        if not isinstance(doc, dict) or "table" not in doc:
            raise _err(path, "-", "table", "missing (a layer table is {name: ..., table: [...]})")
        for k in doc:
            if k not in _TABLE_META:
                raise _err(path, "-", k, "unknown top-level key in a layer table")
        table = doc["table"]
        if not isinstance(table, list) or not table:
            raise _err(path, "-", "table", "must be a non-empty list of rows")
        for i, r in enumerate(table, 1):
            if not isinstance(r, dict):
                raise _err(path, f"row {i}", "-", "each row must be a mapping")
            for h in r:
                if h not in TABLE_COLUMNS and h not in TABLE_OPTIONAL:
                    raise _err(path, r.get("name") or f"row {i}", h, "unknown column")
        meta = {k: doc[k] for k in ("name", "description", "source", "data_bytes", "inputs")
                if k in doc}
        meta.setdefault("name", path.stem)
    if not table:
        raise _err(path, "-", "table", "no rows")
    return build_model(_table_doc(path, meta, table), str(path))


def _table_doc(path, meta: dict, table: list) -> dict:
    layers = []
    names = [r.get("name") for r in table]
    first = table[0]
    if "inputs" in meta:
        inputs = meta["inputs"]
        first_in = [inputs[0]["name"]] if isinstance(inputs, list) and inputs and \
            isinstance(inputs[0], dict) and "name" in inputs[0] else []
    else:
        inputs = None
    prev = None
    for i, row in enumerate(table, 1):
        name = row.get("name")
        if name is None or str(name).strip() == "":
            raise _err(path, f"row {i}", "name", "missing")
        if isinstance(name, (list, dict, bool)):
            raise _err(path, f"row {i}", "name", f"must be a string, got {name!r}")
        name = str(name)
        spec: dict = {"name": name}
        for col, v in row.items():
            if col in ("name", "inputs") or v is None or (isinstance(v, str) and v.strip() == ""):
                continue
            spec[col] = _table_value(path, name, col, v)
        if "op" not in spec:
            raise _err(path, name, "op", "missing")
        ins = row.get("inputs")
        if isinstance(ins, str):
            ins = [s.strip() for s in ins.split(";") if s.strip()]
        elif isinstance(ins, list):
            ins = [str(s) for s in ins]
        elif ins is not None:
            raise _err(path, name, "inputs", f"must be ';'-separated names, got {ins!r}")
        if not ins:
            if prev is not None:
                ins = [prev]
            elif inputs is not None:
                ins = first_in
            else:
                ins = ["input"]
        spec["inputs"] = ins
        layers.append(spec)
        prev = name
    if inputs is None:
        shape = []
        for col, default in (("C", None), ("Y", 1), ("X", 1)):
            v = first.get(col)
            if v is None or (isinstance(v, str) and v.strip() == ""):
                if default is None:
                    raise _err(path, names[0], col, "the first row must give C (the network "
                               "input shape is taken from its C, Y, X)")
                v = default
            shape.append(_table_value(path, names[0], col, v))
        iname = "input"
        if iname in names:
            raise _err(path, iname, "name", "'input' names the network input; rename the layer")
        inputs = [{"name": iname, "shape": shape}]
    doc = dict(meta)
    doc["inputs"] = inputs
    doc["layers"] = layers
    doc.setdefault("source", {"format": "layer_table", "file": str(path)})
    return doc


def _table_value(path, name, col, v):
    if col in _TABLE_INT:
        if isinstance(v, bool):
            raise _err(path, name, col, f"must be an integer, got {v!r}")
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        try:
            return int(str(v).strip())
        except ValueError:
            raise _err(path, name, col, f"must be an integer, got {v!r}") from None
    if col == "padding":
        s = str(v).strip()
        return int(s) if re.fullmatch(r"-?\d+", s) else s
    return v if not isinstance(v, str) else v.strip()

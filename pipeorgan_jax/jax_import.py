"""Flax / JAX models traced into workloads (docs/model_import.md).

`trace(module_or_fn, *example_inputs)` runs `jax.make_jaxpr` on a Flax module's `apply` (its
variables from `init`, or the ones given) or on any JAX function of the inputs, and maps the
equations with `graph_builder.Builder`, as the ONNX importer maps nodes:

- conv_general_dilated -> `conv` (strides, padding, rhs dilation, feature groups);
- dot_general with a constant operand (Dense, DenseGeneral, einsum with a kernel) -> `fc`;
  of two activations (attention scores, context) -> `matmul`;
- reduce_window_max / reduce_window_sum -> `pool` (max / avg); reduce_sum / reduce_max over a
  map's rows and cols -> a global `pool`;
- element-wise primitives of two or more layers -> `add`; with constants or of a layer with
  itself (bias, activations, normalizations, softmax) -> fused into the producer;
- concatenate along channels -> `concat`; slice / split along channels -> `slice`;
- reshape, transpose, squeeze, expand_dims, broadcast_in_dim, type casts -> free views;
- pjit / custom_jvp / custom_vjp / remat sub-jaxprs are walked inline.

Values computed from the closed-over variables only (weights, constants) make no layer. Layers
are named after the Flax module path of their equation (`Block_0/Conv_1`).
"""
from __future__ import annotations

import math

from pipeorgan_jax.graph_builder import Builder, Value, choose_padding
from pipeorgan_jax.workload import Model, WorkloadError, build_model

VIEWS = {"reshape", "transpose", "squeeze", "expand_dims", "convert_element_type", "copy",
         "copy_p", "reduce_precision", "stop_gradient", "optimization_barrier", "rev"}
ELEMENTWISE = {"add", "add_any", "sub", "mul", "div", "max", "min", "pow", "integer_pow", "exp",
               "exp2", "log", "log1p", "expm1", "tanh", "logistic", "neg", "abs", "sqrt",
               "rsqrt", "cbrt", "erf", "erfc", "erf_inv", "sign", "select_n", "clamp", "square",
               "sin", "cos", "tan", "atan2", "floor", "ceil", "round", "rem", "is_finite", "ge",
               "gt", "lt", "le", "eq", "ne", "and", "or", "not", "xor", "nextafter"}
REDUCES = {"reduce_sum": "avg", "reduce_max": "max", "reduce_min": "max", "reduce_prod": "avg",
           "argmax": "max", "argmin": "max", "reduce_and": "max", "reduce_or": "max"}
WINDOWS = {"reduce_window_max": "max", "reduce_window_sum": "avg", "reduce_window_min": "max"}
CONTROL_FLOW = {"cond", "while", "scan", "fori_loop"}
SUB_JAXPR_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def canonical_layout(rank: int):
    """JAX / Flax tensors are NHWC; rank 3 is [N, tokens, features]."""
    return {1: (0, None, None), 2: (1, None, None), 3: (2, 1, None), 4: (3, 1, 2)}.get(rank)


def trace(fn_or_module, *example_inputs, name: str | None = None, variables=None,
          **apply_kwargs) -> Model:
    """A workload from a Flax module or a JAX function, traced on example inputs (batch 1).

    For a Flax `nn.Module`, `variables` default to `module.init(PRNGKey(0), *inputs)`;
    `apply_kwargs` (e.g. `deterministic=True`) go to `init` and `apply`."""
    return build_model(trace_doc(fn_or_module, *example_inputs, name=name, variables=variables,
                                 **apply_kwargs), f"<trace {name or _name_of(fn_or_module)}>")


def _name_of(fn) -> str:
    if _is_module(fn):
        return fn.name or type(fn).__name__
    return getattr(fn, "__name__", None) or type(fn).__name__  # a function, or nnx.Module


def _is_module(obj) -> bool:
    try:
        import flax.linen as nn
    except ImportError:  # pragma: no cover - flax is a dependency
        return False
    return isinstance(obj, nn.Module)


def trace_doc(fn_or_module, *example_inputs, name: str | None = None, variables=None,
              **apply_kwargs) -> dict:
    import jax
    import jax.numpy as jnp
    name = name or _name_of(fn_or_module)
    where = f"<trace {name}>"
    if not example_inputs:
        raise WorkloadError(f"{where}: no example input; call trace(model, x) with x of batch 1")
    # Traced on shapes only (jax.eval_shape, ShapeDtypeStruct variables): no weights are
    # materialized and nothing is computed, so a large model traces in seconds.
    inputs = [jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)) for x in example_inputs]
    if _is_module(fn_or_module):
        module = fn_or_module
        if variables is None:
            variables = jax.eval_shape(
                lambda *xs: module.init(jax.random.PRNGKey(0), *xs, **apply_kwargs), *inputs)

        def fn(v, *xs):
            return module.apply(v, *xs, **apply_kwargs)
        weights = variables
    else:
        def fn(_, *xs):
            return fn_or_module(*xs)
        weights = ()
    n_weights = len(jax.tree_util.tree_leaves(weights))
    closed = jax.make_jaxpr(fn)(weights, *inputs)
    b = Builder(where, canonical_layout)
    env = {}
    for var in list(closed.jaxpr.constvars) + list(closed.jaxpr.invars[:n_weights]):
        env[var] = Value(None, tuple(var.aval.shape))
    act = closed.jaxpr.invars[n_weights:]
    for k, var in enumerate(act):
        shape = tuple(var.aval.shape)
        b.node = (f"input{k}", "input")
        if len(shape) >= 2 and shape[0] != 1:
            raise b.error(f"batch size {shape[0]} (shape {list(shape)})",
                          "trace with batch size 1 (e.g. x[:1]): the cost model maps one "
                          "inference")
        env[var] = b.add_input("input" if len(act) == 1 else f"input{k}", shape)
    _Walker(b, _is_module(fn_or_module)).walk(closed.jaxpr, env, "")
    return b.doc(name, {"format": "jax_trace", "function": name})


class _Walker:
    def __init__(self, b: Builder, drop_root: bool):
        self.b = b
        self.drop_root = drop_root
        self.count = 0

    def read(self, env, var) -> Value:
        if hasattr(var, "val"):  # a Literal (a Var has no value)
            return Value(None, tuple(getattr(var.aval, "shape", ())))
        return env[var]

    def walk(self, jaxpr, env: dict, scope: str) -> None:
        for eqn in jaxpr.eqns:
            self.count += 1
            prim = eqn.primitive.name
            stack = str(eqn.source_info.name_stack)
            parts = [p for p in (scope.split("/") + stack.split("/")) if p]
            parts = ["einsum" if "->" in p else p for p in parts]
            # drop the top module's own name: `Net/Block_0/Conv_1` -> `Block_0/Conv_1`
            where = "/".join(parts[1:] if self.drop_root else parts)
            self.b.node = ("/".join(parts) or f"equation {self.count}", prim)
            ins = [self.read(env, v) for v in eqn.invars]
            if prim in CONTROL_FLOW and any(v.src is not None for v in ins):
                raise self.b.error("control flow is not mapped", "unroll the loop (e.g. "
                                   "nn.scan -> a Python for loop) before tracing")
            sub = next((eqn.params[k] for k in SUB_JAXPR_PARAMS if k in eqn.params), None)
            if sub is not None:
                inner = getattr(sub, "jaxpr", sub)
                sub_env = {v: Value(None, tuple(v.aval.shape)) for v in inner.constvars}
                for v, val in zip(inner.invars, ins):
                    sub_env[v] = val
                self.walk(inner, sub_env, "/".join(parts))
                for o, io in zip(eqn.outvars, inner.outvars):
                    env[o] = self.read(sub_env, io)
                continue
            outs = [tuple(o.aval.shape) for o in eqn.outvars]
            if all(v.src is None for v in ins):
                for o, shp in zip(eqn.outvars, outs):
                    env[o] = Value(None, shp)
                continue
            res = self.map(eqn, prim, ins, outs, where)
            for o, v in zip(eqn.outvars, res):
                env[o] = v

    def map(self, eqn, prim, ins, outs, where) -> list:
        """Values of the equation's outputs. Layers are named after the module path `where`
        (a conv or dot product: the module itself; others: `<module>/<what>`)."""
        b, p = self.b, eqn.params

        def named(what):
            return f"{where}/{what}" if where else what
        if prim in VIEWS:
            x = ins[0]
            lay = canonical_layout(len(outs[0]))
            if prim == "transpose" and x.layout is not None:
                perm = list(p["permutation"])
                lay = tuple(perm.index(a) if a is not None else None for a in x.layout)
            return [Value(x.src, outs[0], lay, x.derived)]
        if prim == "broadcast_in_dim":
            x = ins[0]
            if math.prod(outs[0]) == x.elems:  # only size-1 axes added
                dims = p["broadcast_dimensions"]
                lay = tuple(dims[a] if a is not None else None for a in x.layout) \
                    if x.layout is not None else canonical_layout(len(outs[0]))
                return [Value(x.src, outs[0], lay, x.derived)]
            return [Value(x.src, outs[0], None, True)]  # a broadcast copy
        if prim in ELEMENTWISE:
            return [b.elementwise(ins, outs[0], named("add"))] + \
                [Value(None, s) for s in outs[1:]]
        if prim == "conv_general_dilated":
            return [self.conv(eqn, ins, outs[0], where or "conv")]
        if prim == "dot_general":
            return [self.dot(eqn, ins, outs[0], where or "dot")]
        if prim in WINDOWS:
            return [self.window(eqn, prim, ins[0], outs[0], named(f"{WINDOWS[prim]}_pool"))]
        if prim in REDUCES:
            return [b.reduce(ins[0], p["axes"], REDUCES[prim], outs[0],
                             named(f"global_{REDUCES[prim]}_pool"))]
        if prim == "concatenate":
            return [self.concat(ins, outs[0], p["dimension"], named("concat"))]
        if prim in ("slice", "split"):
            return self.slices(eqn, prim, ins[0], outs, named("slice"))
        raise b.error(f"primitive '{prim}' is not mapped to the workload format",
                      "express it with convolutions, dot products, pooling, element-wise ops, "
                      "concatenates and reshapes")

    def conv(self, eqn, ins, out, name) -> Value:
        b, p = self.b, eqn.params
        x, w = ins
        if w.src is not None:
            raise b.error("kernel computed from an activation",
                          "only constant kernels map to a conv")
        if any(d != 1 for d in p["lhs_dilation"]) or p["batch_group_count"] != 1:
            raise b.error("transposed or batch-grouped convolution",
                          "use upsampling followed by a convolution")
        lhs, rhs, outs = p["dimension_numbers"]
        nsp = len(lhs) - 2
        if nsp not in (1, 2):
            raise b.error(f"{nsp}-d convolution", "only 1-d and 2-d convolutions map")

        def dims(shape, spec):
            return [shape[spec[i]] if i < len(spec) else 1 for i in range(4)]
        _, C, Y, X = dims(x.shape, lhs)
        K, _, R, S = dims(w.shape, rhs)
        _, _, Yo, Xo = dims(out, outs)
        strides = list(p["window_strides"]) + [1]
        pads = list(p["padding"]) + [(0, 0)]
        dil = list(p["rhs_dilation"]) + [1]
        got = choose_padding((Y, X), (R, S), strides[:2], (Yo, Xo), pads[:2], dil[:2])
        if got is None:
            raise b.error(f"no padding of the workload format gives the output {[Yo, Xo]} from "
                          f"{[Y, X]} with kernel {[R, S]}, padding {pads[:nsp]}",
                          "use 'SAME', 'VALID' or symmetric padding")
        pad, exact = got
        spec = {"name": name, "op": "conv", "inputs": [b.need(x, (C, Y, X))], "C": C, "K": K,
                "Y": Y, "X": X, "R": R, "S": S}
        if strides[0] != 1:
            spec["stride"] = strides[0]
        if strides[1] != strides[0]:
            spec["stride_x"] = strides[1]
        if p["feature_group_count"] != 1:
            spec["groups"] = p["feature_group_count"]
        if pad != "same":
            spec["padding"] = pad
        note = "" if exact else (f"padding {pads[:nsp]} dilation {dil[:nsp]} modeled as "
                                 f"padding {pad} (same output size and MACs)")
        lay = (outs[1], outs[2], outs[3] if nsp == 2 else None)
        return Value(b.emit(spec, (K, Yo, Xo), note=note), out, lay)

    def dot(self, eqn, ins, out, name) -> Value:
        b = self.b
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        lhs, rhs = ins
        if lhs.src is not None and rhs.src is not None:
            free_l = [d for i, d in enumerate(lhs.shape) if i not in lc and i not in lb]
            free_r = [d for i, d in enumerate(rhs.shape) if i not in rc and i not in rb]
            return b.matmul(name, lhs, rhs, math.prod(lhs.shape[i] for i in lb),
                            math.prod(free_l), math.prod(free_r),
                            math.prod(lhs.shape[i] for i in lc), out)
        x, xc, w, wc, wb = (lhs, lc, rhs, rc, rb) if rhs.src is None else (rhs, rc, lhs, lc, lb)
        if wb and math.prod(w.shape[i] for i in wb) != 1:
            raise b.error(f"batched kernel {list(w.shape)}", "use one kernel for all tokens")
        C = math.prod(x.shape[i] for i in xc)
        K = math.prod(d for i, d in enumerate(w.shape) if i not in wc and i not in wb)
        return b.fc(name, x, C, K, out)

    def window(self, eqn, prim, x: Value, out, name) -> Value:
        b, p = self.b, eqn.params
        lay = x.layout or canonical_layout(len(x.shape))
        if lay is None:
            raise b.error(f"pooling over a tensor of shape {list(x.shape)}",
                          "pool an NHWC feature map")
        c, y, xa = lay
        win, strides, pads = p["window_dimensions"], p["window_strides"], p["padding"]
        for a in range(len(x.shape)):
            if a not in (y, xa) and (win[a] != 1 or strides[a] != 1):
                raise b.error(f"pooling window {list(win)} spans axis {a}, not rows or cols",
                              "pool over rows and cols only")
        C, Y, X = b.chw(Value(x.src, x.shape, lay))

        def ax(seq, a, default):
            return seq[a] if a is not None else default
        R, S = ax(win, y, 1), ax(win, xa, 1)
        sy, sx = ax(strides, y, 1), ax(strides, xa, 1)
        Yo, Xo = ax(out, y, 1), ax(out, xa, 1)
        got = choose_padding((Y, X), (R, S), (sy, sx), (Yo, Xo),
                             [ax(pads, y, (0, 0)), ax(pads, xa, (0, 0))])
        if got is None:
            raise b.error(f"no padding of the workload format gives {[Yo, Xo]} from {[Y, X]}",
                          "use 'SAME' or 'VALID' padding")
        spec = {"name": name, "op": "pool", "inputs": [b.need(x, (C, Y, X))], "C": C, "Y": Y,
                "X": X, "R": R, "S": S}
        if sy != 1:
            spec["stride"] = sy
        if sx != sy:
            spec["stride_x"] = sx
        if got[0] != "same":
            spec["padding"] = got[0]
        spec["kind"] = WINDOWS[prim]
        return Value(b.emit(spec, (C, Yo, Xo)), out, lay)

    def concat(self, ins, out, axis, name) -> Value:
        b = self.b
        if any(v.src is None for v in ins):
            raise b.error("concatenates a constant with activations (e.g. a class token)",
                          "the workload format concatenates layer outputs only")
        chws = []
        for v in ins:
            lay = v.layout or canonical_layout(len(v.shape))
            if lay is None or lay[0] != axis:
                raise b.error(f"concatenates along axis {axis}, not the channel axis of "
                              f"{list(v.shape)}", "the workload format concatenates channels only")
            chws.append(b.chw(Value(v.src, v.shape, lay)))
        srcs = [b.need(v, c) for v, c in zip(ins, chws)]
        cout = (sum(c[0] for c in chws),) + tuple(chws[0][1:])
        return Value(b.emit({"name": name, "op": "concat", "inputs": srcs}, cout), out,
                     ins[0].layout or canonical_layout(len(out)))

    def slices(self, eqn, prim, x: Value, outs, name) -> list:
        b, p = self.b, eqn.params
        lay = x.layout or canonical_layout(len(x.shape))
        if prim == "split":
            axis = p["axis"]
            parts = [(sum(p["sizes"][:k]), s) for k, s in enumerate(p["sizes"])]
        else:
            cut = [a for a, (i, o) in enumerate(zip(x.shape, outs[0])) if i != o]
            if not cut:
                return [Value(x.src, outs[0], x.layout, x.derived)]
            if len(cut) > 1 or (p.get("strides") and any(s != 1 for s in p["strides"])):
                raise b.error(f"slice {list(x.shape)} -> {list(outs[0])}",
                              "slice one axis, the channels, with step 1")
            axis = cut[0]
            parts = [(p["start_indices"][axis], outs[0][axis])]
        if lay is None or axis != lay[0]:
            raise b.error(f"slices along axis {axis}, not the channel axis of {list(x.shape)}",
                          "the workload format slices channels only")
        C, Y, X = b.chw(Value(x.src, x.shape, lay))
        src = b.need(x, (C, Y, X))
        res = []
        for k, ((start, size), shape) in enumerate(zip(parts, outs)):
            spec = {"name": name if len(parts) == 1 else f"{name}_{k}", "op": "slice",
                    "inputs": [src], "C": size}
            if start:
                spec["start"] = start
            res.append(Value(b.emit(spec, (size, Y, X)), shape, lay))
        return res

"""The fused CPU kernel: the exact combine of `score_one` for a whole batch, in C++ (csrc/),
called from JAX through the XLA FFI as one custom call.

It reads the same ModelArrays and HwArrays as the JAX path (packed here into a few operands;
nothing is computed in C++ but the combine itself) and returns the same `Cost`. It runs under
`jit` and `vmap` (a batching rule folds vmapped placements into the kernel's own batch axis),
and splits the batch over XLA's CPU threads. Built by `pip install .` (setup.py); where the
library is missing or does not load, `available()` is False, `load_error()` says why, and
`score_batch(backend="auto")` runs the JAX path (one warning line, from `resolve`).

The relaxed (differentiable) cost and the co-design batch keep the JAX combine.
"""
from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import logging
import sysconfig
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from pipeorgan_jax.cost.tables import HwArrays, ModelArrays

log = logging.getLogger(__name__)

ABI = 1  # csrc/ffi.cc pipeorgan_kernel_abi(): the operand layout below
TARGET = "pipeorgan_score"
BACKENDS = ("auto", "xla", "kernel")
# Operand rows, in csrc/arrays.h order.
LAYER_F = ("K", "Yo", "Xo", "Yin", "halo", "m", "ops", "W", "out_bytes", "in_row_bytes", "in_full_bytes",
           "out_elems", "net_in_first", "alive0", "t_bytes")
LAYER_I = ("rows_full", "net_out", "red_ok", "t_last", "net_first")
MODEL_S = ("W_total", "ops_total", "net_in_total", "net_out_total")
HW_S = ("sram", "glb", "glb_bw", "dist_bw", "dram_bw", "link_bw", "router", "macs_per_cycle", "db", "psum_b",
        "sram_per_mac", "e_mac", "e_sram", "e_noc", "e_glb", "e_dram")
HW_TABLES = ("key_scalars", "proj", "dist", "a2a_src", "a2a_dst", "ext", "chunk_x", "chunk_y", "chain_off",
             "chain", "by_n", "hx", "hy")
TOPOLOGIES = ("mesh", "torus", "express")
SCALAR_OUT = ("latency_cycles", "energy_pj", "energy_mac_pj", "energy_pe_sram_pj", "energy_noc_pj",
              "energy_glb_pj", "energy_dram_pj", "edp", "feasible", "reason", "max_link_bytes", "byte_hops",
              "dist_byte_hops", "glb_bytes", "dram_bytes")
LAYER_OUT = ("seg_latency", "seg_energy", "seg_feasible")


def _library_paths() -> list[Path]:
    """Where the built library may be: next to this file (an installed package, or a source
    checkout built in place), else in the installed distribution (a source checkout that
    shadows the installed package, as the tests run from the repository root)."""
    name = "_kernel" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so")
    out = [Path(__file__).with_name(name)]
    # every distribution of the package on the path: `pip install .` leaves a build's
    # pipeorgan_jax.egg-info in the checkout, which shadows the installed one's record
    for dist in importlib.metadata.distributions(name="pipeorgan_jax"):
        for f in dist.files or ():
            if f.name == name and f.parent.name == "cost":
                out.append(Path(f.locate()).resolve())
    for key in ("platlib", "purelib"):  # this interpreter's site-packages
        out.append(Path(sysconfig.get_paths()[key]) / "pipeorgan_jax" / "cost" / name)
    return list(dict.fromkeys(out))


@functools.lru_cache(maxsize=1)
def _load() -> tuple[bool, str]:
    """(loaded, why not): load the library and register its FFI target, once."""
    errors = []
    for path in _library_paths():
        if not path.exists():
            continue
        try:
            lib = ctypes.CDLL(str(path))
            abi = lib.pipeorgan_kernel_abi()
            if abi != ABI:
                errors.append(f"{path}: ABI {abi}, expected {ABI} (rebuild: pip install .)")
                continue
            jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(lib.PipeorganScore), platform="cpu")
            return True, ""
        except (OSError, AttributeError) as e:
            errors.append(f"{path}: {e}")
    return False, "; ".join(errors) or "not built (pip install . builds it)"


def available() -> bool:
    return _load()[0]


def load_error() -> str:
    return _load()[1]


@functools.lru_cache(maxsize=None)
def _warn_once(msg: str) -> None:
    log.warning(msg)


def resolve(backend: str, platform: str | None = None) -> str:
    """'xla' or 'kernel' for a requested backend: auto is the kernel on a CPU when it loaded.
    A kernel that cannot run falls back to XLA with one warning line."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: one of {', '.join(BACKENDS)}")
    if backend == "xla":
        return "xla"
    platform = platform or jax.default_backend()
    if platform != "cpu":
        if backend == "kernel":
            _warn_once(f"cost kernel: runs on a CPU only, not {platform}; using the XLA path")
        return "xla"
    if not available():
        _warn_once(f"cost kernel unavailable ({load_error()}); using the XLA path")
        return "xla"
    return "kernel"


def _alive0(ma: ModelArrays):
    """ModelArrays.alive0 where it has it; else the same (GLB bytes alive when a segment
    starts at l) from the tensors' producers and last consumers."""
    if hasattr(ma, "alive0"):
        return ma.alive0
    L = ma.n_layers
    t_last, t_prod, tb = jnp.asarray(ma.t_last), jnp.asarray(ma.t_prod), jnp.asarray(ma.t_bytes, jnp.float32)
    net_in = t_prod < 0
    # a tensor is alive from the layer after its producer (network inputs: from the start)
    # until its last consumer (network inputs without one: always; other outputs: never)
    lives = jnp.where(net_in, True, t_last > t_prod)
    begin = jnp.where(net_in, 0, t_prod + 1)
    end = jnp.where(t_last >= 0, t_last + 1, L + 1)
    delta = (jnp.zeros(L + 2, jnp.float32).at[begin].add(jnp.where(lives, tb, 0.0))
             .at[end].add(jnp.where(lives, -tb, 0.0)))
    return jnp.cumsum(delta)[:L]


def _net_in_first(ma: ModelArrays):
    """timing.memory's net_in_first: network input bytes charged to their first consumer."""
    L = ma.n_layers
    net_in_bytes = jnp.where(jnp.asarray(ma.t_prod) < 0, ma.t_bytes, 0.0)
    first_use = jnp.clip(ma.t_first, 0, L - 1)
    return jnp.zeros(L, jnp.float32).at[first_use].add(net_in_bytes)


def operands(ma: ModelArrays, ha: HwArrays) -> tuple:
    """The model and hardware operands of the kernel, in csrc/ffi.cc order."""
    L = ma.n_layers
    f32, i32 = jnp.float32, jnp.int32
    lf = dict(net_in_first=_net_in_first(ma), alive0=_alive0(ma), t_bytes=jnp.asarray(ma.t_bytes)[:L])
    layer_f = jnp.stack([jnp.asarray(lf[k] if k in lf else getattr(ma, k), f32) for k in LAYER_F])
    li = dict(t_last=jnp.asarray(ma.t_last)[:L],
              net_first=getattr(ma, "net_first", np.arange(L) == 0))
    layer_i = jnp.stack([jnp.asarray(li[k] if k in li else getattr(ma, k), i32) for k in LAYER_I])
    E = ma.e_src.shape[0]
    kind = np.zeros(E, np.int32)  # EK_INPUT; chain and skip edges are static index lists
    kind_j = jnp.asarray(kind).at[ma.chain_e].set(1).at[ma.skip_e].set(2)
    edge_i = jnp.stack([jnp.asarray(ma.e_src, i32), jnp.asarray(ma.e_dst, i32), kind_j])
    model_s = jnp.stack([jnp.asarray(getattr(ma, k), f32) for k in MODEL_S])
    hw_s = jnp.stack([jnp.asarray(getattr(ha, k), f32) for k in HW_S])
    return (layer_f, layer_i, edge_i, jnp.asarray(ma.e_bytes, f32), jnp.asarray(ma.in_eidx, i32),
            jnp.asarray(ma.out_eidx, i32), model_s, hw_s) + tuple(getattr(ha, k) for k in HW_TABLES)


def attributes(ha: HwArrays) -> tuple:
    """The static hardware shape, as the kernel's attributes (a hashable tuple)."""
    lx, ly = ha.lanes_xy
    return (("U", ha.U), ("GH", ha.GH), ("GW", ha.GW), ("uh", ha.uh), ("uw", ha.uw),
            ("max_depth", ha.max_depth), ("topology", TOPOLOGIES.index(ha.topology)),
            ("express_k", ha.express_k), ("lanes", float(ha.lanes)), ("lanes_x", float(lx)),
            ("lanes_y", float(ly)))


def _out_types(B: int, L: int):
    f32 = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)
    scal = [f32(B)] * 8 + [jax.ShapeDtypeStruct((B,), jnp.bool_), jax.ShapeDtypeStruct((B,), jnp.int32)] + [f32(B)] * 5
    return scal + [f32(B, L), f32(B, L), jax.ShapeDtypeStruct((B, L), jnp.bool_)]


N_PLACEMENT = 5


@functools.lru_cache(maxsize=None)
def _batched_call(attrs: tuple):
    """The custom call for one hardware shape: placements [B, L] (or [L]) and the operands,
    with a batching rule that folds vmapped placements into the batch axis (vmapped tables,
    as in a sweep over hardware scalars, are mapped one at a time)."""
    kw = {k: (np.int64(v) if isinstance(v, int) else np.float32(v)) for k, v in attrs}

    def call(*args):
        p = args[:N_PLACEMENT]
        one = p[0].ndim == 1
        if one:
            p = tuple(x[None] for x in p)
        B, L = p[0].shape
        p = (p[0].astype(jnp.bool_),) + tuple(x.astype(jnp.int32) for x in p[1:])
        out = jax.ffi.ffi_call(TARGET, _out_types(B, L))(*p, *args[N_PLACEMENT:], **kw)
        return tuple(o[0] for o in out) if one else tuple(out)

    fn = jax.custom_batching.custom_vmap(call)

    @fn.def_vmap
    def rule(axis_size, in_batched, *args):
        if any(in_batched[N_PLACEMENT:]):  # one call per mapped set of tables
            idx = [i for i, b in enumerate(in_batched) if b]

            def one(xs):
                full = list(args)
                for i, x in zip(idx, xs):
                    full[i] = x
                return fn(*full)

            out = jax.lax.map(one, [args[i] for i in idx])
            return tuple(out), (True,) * len(out)
        p = [a if b else jnp.broadcast_to(a, (axis_size,) + a.shape)
             for a, b in zip(args[:N_PLACEMENT], in_batched[:N_PLACEMENT])]
        lead = p[0].shape[:-1]  # (axis_size,) or (axis_size, B)
        flat = [x.reshape((-1, x.shape[-1])) for x in p]
        out = fn(*flat, *args[N_PLACEMENT:])
        return tuple(o.reshape(lead + o.shape[1:]) for o in out), (True,) * len(out)

    return fn


def score(ma: ModelArrays, ha: HwArrays, p):
    """Cost of a batch of placements (or of one), through the kernel (trace under jit)."""
    from pipeorgan_jax.cost import Cost
    if not available():
        raise RuntimeError(f"cost kernel unavailable: {load_error()}")
    out = _batched_call(attributes(ha))(p.seg_end, p.gran, p.org, p.share, p.part, *operands(ma, ha))
    return Cost(**dict(zip(SCALAR_OUT + LAYER_OUT, out)))

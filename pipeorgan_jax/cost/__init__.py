"""The batch cost model: tables built once, and a small jitted combine per placement.

docs/cost_model.md defines every quantity; reference.py implements the same contract per PE
and per link with a discrete-event schedule. The model reads as phases, one module each:

- `tables`   what is known before any placement: per-model arrays, and per-hardware
             geometry tables keyed by (organization, first slot, unit count), built once;
- `geometry` a placement's segments, units per layer and table rows, tiles;
- `traffic`  bytes per edge and layer, over the mesh and the distribution network, and the
             busiest links;
- `timing`   compute cycles, GLB and DRAM residency, the fill recurrence, bounds;
- `energy`   energy from the byte and MAC counts.

`combine` below is those phases in order, then the whole-network reductions; `score_one` runs
it on a placement. The phases' choice-dependent lines are written in `ops` primitives (exact
by default); `relaxed` runs the same combine on soft choices, differentiably.
Everything here is finite for any placement the validator accepts: an infeasible placement
gets feasible=False, a reason code and costs computed as if it fit.
"""
from __future__ import annotations

import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pipeorgan_jax.cost import energy as _energy
from pipeorgan_jax.cost import geometry, kernel, timing, traffic
from pipeorgan_jax.cost.geometry import CHANNEL, F32, HYBRID, REDUCTION, SPATIAL
from pipeorgan_jax.cost.ops import EXACT
from pipeorgan_jax.cost.tables import HwArrays, ModelArrays, hw_arrays, model_arrays
from pipeorgan_jax.hardware import Hardware
from pipeorgan_jax.placement import Placement
from pipeorgan_jax.workload import Model

__all__ = ["CHANNEL", "HYBRID", "REDUCTION", "SPATIAL", "REASONS", "Cost", "HwArrays", "ModelArrays",
           "Scorer", "SegmentCost", "combine", "hw_arrays", "model_arrays", "network_cost", "score_batch",
           "score_one"]

REASONS = ("ok", "segment deeper than the array has units (or than max_depth)", "PE SRAM capacity",
           "reduction partition on a layer that is not fc, matmul or 1x1 conv")


class Cost(NamedTuple):
    latency_cycles: jnp.ndarray
    energy_pj: jnp.ndarray
    energy_mac_pj: jnp.ndarray
    energy_pe_sram_pj: jnp.ndarray
    energy_noc_pj: jnp.ndarray
    energy_glb_pj: jnp.ndarray
    energy_dram_pj: jnp.ndarray
    edp: jnp.ndarray
    feasible: jnp.ndarray
    reason: jnp.ndarray
    max_link_bytes: jnp.ndarray
    byte_hops: jnp.ndarray  # mesh and distribution network together
    dist_byte_hops: jnp.ndarray  # the GLB distribution network's share
    glb_bytes: jnp.ndarray
    dram_bytes: jnp.ndarray
    # per layer: the cost of the segment that starts at this layer (0 elsewhere)
    seg_latency: jnp.ndarray
    seg_energy: jnp.ndarray
    seg_feasible: jnp.ndarray


def score_one(ma: ModelArrays, ha: HwArrays, p: Placement) -> Cost:
    """Cost of one placement (vmap this over a batch)."""
    sg = geometry.segments(p.seg_end, ma.n_layers, ha.max_depth)
    return combine(ma, ha, sg, geometry.layers(ma, ha, p, sg))


class SegmentCost(NamedTuple):
    """One segment's record: everything the whole-network cost sums or maximizes over
    segments, and what it needs from its neighbours (its weights, prefetched during the
    previous segment). `network_cost` reduces a placement's records to its Cost."""
    latency_cycles: jnp.ndarray  # GLB spill excluded
    energy_mac_pj: jnp.ndarray
    energy_pe_sram_pj: jnp.ndarray
    energy_noc_pj: jnp.ndarray
    energy_glb_pj: jnp.ndarray
    energy_dram_pj: jnp.ndarray  # spill excluded
    byte_hops: jnp.ndarray
    dist_byte_hops: jnp.ndarray
    glb_bytes: jnp.ndarray
    dram_bytes: jnp.ndarray  # spill excluded
    max_link_bytes: jnp.ndarray
    live_bytes: jnp.ndarray  # GLB live bytes while it runs, the next segment's weights excluded
    weight_bytes: jnp.ndarray  # its weights: prefetched into the GLB during the previous segment
    too_deep: jnp.ndarray  # reason 1
    no_fit: jnp.ndarray  # reason 2
    bad_red: jnp.ndarray  # reason 3

    @property
    def energy_pj(self):
        return (self.energy_mac_pj + self.energy_pe_sram_pj + self.energy_noc_pj + self.energy_glb_pj
                + self.energy_dram_pj)

    @property
    def feasible(self):
        return ~(self.too_deep | self.no_fit | self.bad_red)

    def spill_bytes(self, ha: HwArrays, next_weight_bytes=0.0):
        """DRAM bytes spilled and read back were this the busiest segment."""
        return 2.0 * jnp.maximum(self.live_bytes + next_weight_bytes - ha.glb, 0.0)


def network_cost(rec: SegmentCost, ha: HwArrays, valid=None) -> Cost:
    """A whole placement's Cost from its segments' records, in order along the leading axis
    ([S]; `valid` masks padding rows, which must come last): sums of latency, energy and
    bytes, the busiest link, and the GLB spill of the busiest segment."""
    valid = jnp.ones(rec.latency_cycles.shape, bool) if valid is None else valid
    z = lambda v: jnp.where(valid, v, 0.0)
    w_next = jnp.concatenate([z(rec.weight_bytes)[1:], jnp.zeros(1, F32)])
    spill = jnp.where(valid, rec.spill_bytes(ha, w_next), 0.0).max()
    latency = z(rec.latency_cycles).sum() + spill / ha.dram_bw
    parts = [z(v).sum() for v in (rec.energy_mac_pj, rec.energy_pe_sram_pj, rec.energy_noc_pj,
                                  rec.energy_glb_pj, rec.energy_dram_pj)]
    parts[4] = parts[4] + spill * ha.e_dram
    energy = sum(parts)
    any_ = lambda v: (v & valid).any()
    reason = jnp.where(any_(rec.too_deep), 1, jnp.where(any_(rec.no_fit), 2, jnp.where(any_(rec.bad_red), 3, 0)))
    seg_ok = rec.feasible | ~valid
    return Cost(latency_cycles=latency, energy_pj=energy, energy_mac_pj=parts[0],
                energy_pe_sram_pj=parts[1], energy_noc_pj=parts[2], energy_glb_pj=parts[3],
                energy_dram_pj=parts[4], edp=energy * latency, feasible=reason == 0, reason=reason,
                max_link_bytes=jnp.where(valid, rec.max_link_bytes, 0.0).max(),
                byte_hops=z(rec.byte_hops).sum(), dist_byte_hops=z(rec.dist_byte_hops).sum(),
                glb_bytes=z(rec.glb_bytes).sum(), dram_bytes=z(rec.dram_bytes).sum() + spill,
                seg_latency=z(rec.latency_cycles + rec.spill_bytes(ha, w_next) / ha.dram_bw),
                seg_energy=z(rec.energy_pj + rec.spill_bytes(ha, w_next) * ha.e_dram),
                seg_feasible=seg_ok)


def combine(ma: ModelArrays, ha: HwArrays, sg: geometry.Segments, ly: geometry.Layers,
            ops=EXACT, with_traffic: bool = False, with_segments: bool = False):
    """The phases after a placement's segments and layers, in order, then the whole-network
    reductions: a Cost (and the Traffic record, with_traffic; the per-layer SegmentCost,
    meaningful at each segment's first layer, with_segments). `ops` (cost/ops.py) is EXACT
    for the batch model; relaxed.py passes Soft primitives and layers whose choices are
    probabilities."""
    tl = geometry.tiles(ma, ly, sg, ops)
    ed = traffic.edges(ma, ha, ly, sg, tl, ops)
    tr = traffic.traffic(ma, ha, ly, sg, tl, ed, ops)
    lk = traffic.links(ma, ha, ly, sg, tl, ed, tr, ops)
    mem = timing.memory(ma, ha, sg, tr)
    seg_lat = timing.segment_latency(ma, ha, ly, sg, tl, ed, tr, lk, mem, ops)
    en = _energy.energy(ma, ha, tr, mem)

    # Whole-network reductions.
    latency = jnp.where(sg.is_first, seg_lat, 0.0).sum() + mem.spill / ha.dram_bw
    energy = en.total_pj
    too_deep = sg.depth > ha.max_depth
    bad_red = ops.hard(ly.red) & ~ma.red_ok
    reason = jnp.where(too_deep.any(), 1, jnp.where(tr.no_fit.any(), 2, jnp.where(bad_red.any(), 3, 0)))

    # Per-segment attribution for dynamic programming over segments: every term charged to
    # the segment of the layer it belongs to; spill charged per segment.
    spill_s = 2.0 * jnp.maximum(mem.live - ha.glb, 0.0)
    seg_ok = sg.sum((tr.no_fit | too_deep | bad_red).astype(jnp.float32)) == 0
    c = Cost(latency_cycles=latency, energy_pj=energy, energy_mac_pj=en.mac_pj,
             energy_pe_sram_pj=en.pe_sram_pj, energy_noc_pj=en.noc_pj, energy_glb_pj=en.glb_pj,
             energy_dram_pj=en.dram_pj, edp=energy * latency, feasible=reason == 0,
             reason=reason, max_link_bytes=lk.seg_link.max(), byte_hops=en.byte_hops,
             dist_byte_hops=en.dist_byte_hops, glb_bytes=mem.glb_bytes, dram_bytes=mem.dram_bytes,
             seg_latency=jnp.where(sg.is_first, seg_lat + spill_s / ha.dram_bw, 0.0),
             seg_energy=jnp.where(sg.is_first, sg.sum(_energy.per_layer(ma, ha, tr, mem))
                                  + spill_s * ha.e_dram, 0.0),
             seg_feasible=jnp.where(sg.is_first, seg_ok & ~too_deep, True))
    out = (c,)
    if with_traffic:
        out += (tr,)
    if with_segments:
        s = sg.sum(_energy.per_layer_parts(ma, ha, tr, mem))
        bad = sg.sum(jnp.stack([tr.no_fit, bad_red], 1).astype(F32)) > 0
        out += (SegmentCost(
            latency_cycles=seg_lat, energy_mac_pj=s[:, 0], energy_pe_sram_pj=s[:, 1],
            energy_noc_pj=s[:, 2], energy_glb_pj=s[:, 3], energy_dram_pj=s[:, 4],
            byte_hops=s[:, 5], dist_byte_hops=s[:, 6], glb_bytes=s[:, 7], dram_bytes=s[:, 8],
            max_link_bytes=lk.seg_link, live_bytes=mem.live_own, weight_bytes=mem.W_s,
            too_deep=too_deep, no_fit=bad[:, 0], bad_red=bad[:, 1]),)
    return out if len(out) > 1 else c


CPU_CHUNK = 128  # placements per vmapped step on a CPU: the intermediates stay in cache


def compiler_options() -> dict:
    """XLA options for compiling the batch model. On a CPU, XLA's older loop emitters compile
    it in ~60% of the time of the fusion emitters (GE_FBNet_C: 2.4 s against 4.0 s of CPU) and
    score within ~5% either way (SS_HRViT_b1 5% faster, GE_FBNet_C 6% slower), and in the main
    job compilation is a third of the time."""
    return {"xla_cpu_use_fusion_emitters": False} if jax.default_backend() == "cpu" else {}


def chunked_vmap(fn, args, chunk: int | None = None):
    """fn vmapped over the leading axis of every leaf of args. On a CPU a large batch runs
    `chunk` rows at a time (lax.map over vmapped chunks, about 2x faster at 4,096 than one
    vmap over all of it: the [chunk, L] intermediates stay in cache); elsewhere in one vmap."""
    B = jax.tree_util.tree_leaves(args)[0].shape[0]
    if chunk is None:
        chunk = CPU_CHUNK if jax.default_backend() == "cpu" else 0
    one = jax.vmap(fn)
    if not chunk or B <= chunk or B % chunk:
        return one(*args)
    ac = jax.tree_util.tree_map(lambda x: x.reshape((B // chunk, chunk) + x.shape[1:]), args)
    out = jax.lax.map(lambda a: one(*a), ac)
    return jax.tree_util.tree_map(lambda x: x.reshape((B,) + x.shape[2:]), out)


@functools.partial(jax.jit, static_argnames=("chunk", "backend"))
def score_batch(ma: ModelArrays, ha: HwArrays, p: Placement, chunk: int | None = None,
                backend: str = "auto") -> Cost:
    """Score a batch of placements (leading axis on every Placement field).

    `backend`: "kernel" is the fused C++ combine (cost/kernel.py), "xla" the combine above
    compiled by XLA (`chunk` placements at a time on a CPU: chunked_vmap), "auto" the kernel
    on a CPU where it loaded, else XLA."""
    if kernel.resolve(backend) == "kernel":
        return kernel.score(ma, ha, p)
    return chunked_vmap(lambda q: score_one(ma, ha, q), (p,), chunk)


class Scorer:
    """Convenience wrapper: a model on a hardware, scoring NumPy placement batches.

    Each batch shape is compiled once, ahead of time, so that compilation (or a load from the
    persistent compilation cache) is timed apart from scoring: `compile_seconds` accumulates
    it. The batch is split over `devices` (default: all of JAX's default backend) along a 1-D
    mesh; the model and hardware tables are replicated."""

    def __init__(self, model: Model, hw: Hardware, max_depth: int = 16, devices=None,
                 backend: str = "auto"):
        from pipeorgan_jax.devices import batch_mesh
        self.model, self.hw = model, hw
        self.devices = list(devices) if devices else jax.devices()
        self.backend = backend
        replicated = batch_mesh(self.devices)[1]
        self.ma = jax.device_put(model_arrays(model), replicated)
        # the tables go to the devices once, here, not with every call
        self.ha = jax.device_put(hw_arrays(hw, max_depth), replicated)

    MIN_BATCH = 128  # small batches are padded so that they reuse one compiled shape
    # Class-level defaults, so that a Scorer assembled field by field (tests swap `ha`) works.
    devices = None  # None: every device of JAX's default backend
    compile_seconds = 0.0
    backend = "auto"  # score_batch's backend: auto, xla or kernel

    @functools.cached_property
    def batch_sharding(self):
        from pipeorgan_jax.devices import batch_mesh
        return batch_mesh(self.devices or jax.devices())[0]

    def score_on_devices(self, p: Placement) -> tuple[Cost, int]:
        """(Cost as sharded device arrays, padded rows included; number of real rows)."""
        p = p.numpy()
        if p.seg_end.ndim == 1:
            p = Placement(*(f[None] for f in p.fields()))
        B = p.seg_end.shape[0]
        n_dev = len(self.batch_sharding.mesh.devices)
        padded = -(-max(B, self.MIN_BATCH) // n_dev) * n_dev  # every device gets equal rows
        if padded > B:
            pad = padded - B
            p = Placement(*(np.concatenate([f, np.repeat(f[:1], pad, 0)]) for f in p.fields()))
        p = jax.device_put(p, self.batch_sharding)
        return self._compiled_for(p)(self.ma, self.ha, p), B

    @functools.cached_property
    def resolved_backend(self) -> str:
        """xla or kernel. The kernel scores a batch with its own threads on one host, so
        `auto` picks it only where the batch is not split over several devices."""
        platform = self.batch_sharding.mesh.devices.flat[0].platform
        if self.backend == "auto" and len(self.batch_sharding.mesh.devices) > 1:
            return "xla"
        return kernel.resolve(self.backend, platform)

    def _compiled_for(self, p: Placement):
        """The compiled batch model for p's (padded) shape; compiled here the first time."""
        padded = p.seg_end.shape[0]
        compiled = self.__dict__.setdefault("_compiled", {})
        fn = compiled.get(padded)
        if fn is None:
            t0 = time.perf_counter()
            # chunking reshapes the batch axis, which would undo its split over devices
            n_dev = len(self.batch_sharding.mesh.devices)
            chunk = None if n_dev == 1 else 0
            fn = compiled[padded] = score_batch.lower(self.ma, self.ha, p, chunk=chunk,
                                                      backend=self.resolved_backend).compile(
                compiler_options=compiler_options())
            self.compile_seconds += time.perf_counter() - t0
        return fn

    def __call__(self, p: Placement) -> dict[str, np.ndarray]:
        c, B = self.score_on_devices(p)
        return {k: np.asarray(v)[:B] for k, v in c._asdict().items()}

    WINDOW_BLOCK = 1024  # window rows per call: one compiled shape per model

    def window_depth(self) -> int:
        """Layers per window (segment.windows): the deepest feasible segment, or the model."""
        return min(self.ha.max_depth, len(self.model.layers))

    def windows(self) -> ModelArrays:
        """The model's windows of window_depth() layers (segment.windows), on the device."""
        st = self.__dict__.get("_windows")
        if st is None:
            from pipeorgan_jax.cost import segment
            ma = jax.tree_util.tree_map(np.asarray, self.ma)
            st = self._windows = jax.device_put(segment.windows(ma, self.window_depth()))
        return st

    def score_windows(self, a0: np.ndarray, p: Placement, group: int = 0) -> dict[str, np.ndarray]:
        """Segment records (SegmentCost fields, [N, D]) of N window rows: row i is the
        window starting at layer a0[i] with local placement p[i] (segment.py).

        With `group` (rows come in runs of `group` rows of one window, as dp's do) and the
        kernel backend, the kernel scores each run as whole placements of its window: the
        result is then the window's Cost fields (seg_latency, seg_energy, seg_feasible per
        layer, at segment starts), which dp.Candidates reads instead."""
        from pipeorgan_jax.cost import segment
        st = self.windows()
        if group and self.resolved_backend == "kernel":
            return self._kernel_windows(st, np.asarray(a0)[::group], p.numpy(), group)
        N, blk = len(a0), self.WINDOW_BLOCK
        p = p.numpy()
        out: list = []
        for i in range(0, N, blk):
            j = min(i + blk, N)
            pad = lambda x: np.concatenate([x[i:j], np.repeat(x[i:i + 1], blk - (j - i), 0)])
            q = Placement(*(pad(np.asarray(f)) for f in p.fields()))
            a = pad(np.asarray(a0, np.int32))
            fn = self.__dict__.setdefault("_compiled_windows", None)
            if fn is None:
                t0 = time.perf_counter()
                fn = self._compiled_windows = segment.score_windows.lower(st, self.ha, a, q).compile(
                    compiler_options=compiler_options())
                self.compile_seconds += time.perf_counter() - t0
            out.append(jax.tree_util.tree_map(lambda x: np.asarray(x)[:j - i], fn(st, self.ha, a, q)))
        return {k: np.concatenate([o[n] for o in out]) for n, k in enumerate(SegmentCost._fields)}

    def _kernel_windows(self, st, a0: np.ndarray, p: Placement, group: int) -> dict[str, np.ndarray]:
        from pipeorgan_jax.cost import segment
        G = max(1, self.WINDOW_BLOCK * 4 // group)  # windows per call: one compiled shape
        fn = self.__dict__.setdefault("_kernel_windows_fn", {}).get(group)
        out: list = []
        for i in range(0, len(a0), G):
            j = min(i + G, len(a0))
            a = np.concatenate([a0[i:j], np.repeat(a0[i:i + 1], G - (j - i))]).astype(np.int32)
            rows = lambda x: np.concatenate([x[i * group:j * group],
                                             np.repeat(x[i * group:i * group + group], G - (j - i), 0)])
            q = Placement(*(rows(np.asarray(f)).reshape((G, group) + f.shape[1:]) for f in p.fields()))
            if fn is None:
                t0 = time.perf_counter()
                fn = self._kernel_windows_fn[group] = segment.kernel_windows.lower(st, self.ha, a, q).compile()
                self.compile_seconds += time.perf_counter() - t0
            c = fn(st, self.ha, a, q)
            out.append({k: np.asarray(v)[:j - i].reshape((-1,) + v.shape[2:])
                        for k, v in c._asdict().items() if k.startswith("seg_")})
        return {k: np.concatenate([o[k] for o in out]) for k in out[0]}

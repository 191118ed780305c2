"""Everything the batch model can know before it sees a placement, built once.

`model_arrays` holds per-layer, per-edge and per-tensor facts of one model. `hw_arrays` holds
the hardware's scalars and its geometry tables: almost all of a placement's geometry depends
only on a few small integers per layer (organization, first unit slot, unit count), so the
unit distributions, distribution-network wire, link-load factors and chunk-to-chunk hop counts
are tabulated here over every such key, in NumPy, once per hardware shape (cached), and the
jitted combine (cost/__init__.py) only looks rows up. docs/cost_model.md defines each quantity;
the comments here say how a table row encodes it.

Keys. A layer key is (org, start, n): organization, first position in the organization's slot
order, units. `start` is clamped to U: a segment deeper than the array (infeasible, reason 1)
gives its layers one unit each at positions past the last slot, which hold nothing.
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pipeorgan_jax.hardware import Hardware, hops
from pipeorgan_jax.organization import ORG_CURVE, ORG_INTERLEAVED, chunk_owner, curves, interleave_perm
from pipeorgan_jax.workload import Model

UNIFORM, CHUNKED = 0, 1  # how a layer's data spreads over its units: evenly, or as U chunks


@struct.dataclass
class Slots:
    """A ragged [L, *] index table (layer -> its in-edges, out-edges, ...) as a dense [L, K]
    part plus the few rows with more entries: dense slots for every layer up to the most
    entries any layer has (16 on SS_HRViT_b1, where 1,068 of 1,149 layers have at most 2)
    would make every per-layer reduction 8x the work."""
    lo: jnp.ndarray  # [L, K] the first K entries of every row, -1 empty
    hi_rows: jnp.ndarray  # [H] rows with more than K entries
    hi: jnp.ndarray  # [H, D - K] their other entries, -1 empty

    def reduce(self, v, op: str = "sum"):
        """Per row: op (sum or max) of v[entry] over its entries (0 for none; v >= 0 for max)."""
        red = (lambda a: a.sum(1)) if op == "sum" else (lambda a: a.max(1))
        out = red(jnp.where(self.lo >= 0, v[jnp.maximum(self.lo, 0)], 0.0))
        if self.hi_rows.shape[0]:
            more = red(jnp.where(self.hi >= 0, v[jnp.maximum(self.hi, 0)], 0.0))
            out = out.at[self.hi_rows].add(more) if op == "sum" else out.at[self.hi_rows].max(more)
        return out


def slots(table: np.ndarray, K: int = 2) -> Slots:
    table = np.asarray(table, np.int32)
    K = min(K, table.shape[1])
    rows = np.flatnonzero((table[:, K:] >= 0).any(1)) if table.shape[1] > K else np.zeros(0, np.int64)
    return Slots(lo=table[:, :K], hi_rows=rows.astype(np.int32),
                 hi=table[rows, K:] if len(rows) else np.zeros((0, max(table.shape[1] - K, 1)), np.int32))


@struct.dataclass
class ModelArrays:
    """Fixed-shape per-layer / per-edge / per-tensor arrays of one model."""
    K: jnp.ndarray
    Yo: jnp.ndarray
    Xo: jnp.ndarray
    Yin: jnp.ndarray
    halo: jnp.ndarray
    rows_full: jnp.ndarray
    m: jnp.ndarray  # ops per output element
    ops: jnp.ndarray
    W: jnp.ndarray  # weight bytes
    out_bytes: jnp.ndarray
    in_row_bytes: jnp.ndarray
    in_full_bytes: jnp.ndarray
    net_out: jnp.ndarray  # bool: consumed by nothing
    out_elems: jnp.ndarray
    red_ok: jnp.ndarray  # bool: the reduction partition applies (fc, matmul, 1x1 conv)
    in_src: jnp.ndarray  # [L, D] producer layer of each in-edge, -1 none / network input
    in_eidx: jnp.ndarray  # [L, D] edge index of each in-edge, -1 none
    out_eidx: jnp.ndarray  # [L, D2] edge index of each out-edge, -1 none
    in_bytes: jnp.ndarray  # [L, D]
    e_src: jnp.ndarray  # [E] producer layer, -1 for a network input
    e_dst: jnp.ndarray
    e_bytes: jnp.ndarray
    t_prod: jnp.ndarray  # [T] tensors: producer layer (-1: network input)
    t_last: jnp.ndarray  # last consumer layer (-1: none)
    t_first: jnp.ndarray  # first consumer layer (-1: none)
    t_bytes: jnp.ndarray
    # [L] GLB bytes alive when a segment starts at layer l, before it runs: network inputs
    # not yet last consumed, and layer outputs produced before l and consumed at or after l.
    # Such an output crosses a segment boundary whatever the boundaries are, so this depends
    # on l alone: a segment's GLB residency needs nothing from the other segments (segment.py).
    alive0: jnp.ndarray
    net_first: jnp.ndarray  # bool [L]: the network's first layer (its weights hide behind nothing)
    # Edges split statically: a chain edge (l -> l + 1) in one segment has its consumer's
    # units right after its producer's, so its chunk-to-chunk hops come from one table row.
    chain_e: jnp.ndarray  # [Ec] edge indices of chain edges
    skip_e: jnp.ndarray  # [Es] edge indices of the other layer-to-layer edges
    in_slots: Slots  # in_eidx and out_eidx as Slots
    out_slots: Slots
    # static sums
    W_total: float
    ops_total: float
    net_in_total: float  # network input bytes
    net_out_total: float
    n_layers: int = struct.field(pytree_node=False)


@struct.dataclass
class HwArrays:
    # Hardware parameters that do not change array shapes: pytree leaves, so a co-design
    # sweep can vmap over them (the tables below do not depend on them).
    sram: float
    glb: float
    glb_bw: float
    dist_bw: float
    dram_bw: float
    link_bw: float
    router: float
    macs_per_cycle: float
    db: float
    psum_b: float
    sram_per_mac: float
    e_mac: float
    e_sram: float
    e_noc: float
    e_glb: float
    e_dram: float
    # Geometry tables, keyed by layer key (org, start, n) flattened as
    # (org * (U + 1) + start) * U + n - 1.
    key_scalars: jnp.ndarray  # [K, NS] per-key scalars (KS_* columns)
    proj: jnp.ndarray  # [K, 2, GW + GH] a layer's (uniform, chunked) distribution times HX | HY
    dist: jnp.ndarray  # [K, 2, GW + GH] the distributions over unit columns | unit rows
    a2a_src: jnp.ndarray  # [K, 2, A] all-to-all source factors (east, west, south, north)
    a2a_dst: jnp.ndarray  # [K, 2, A] all-to-all destination factors
    ext: jnp.ndarray  # [K, 4] support extent: first/last unit column, first/last unit row
    chunk_x: jnp.ndarray  # [K, U] unit column of chunk q (int8/int16)
    chunk_y: jnp.ndarray  # [K, U] unit row of chunk q
    chain_off: jnp.ndarray  # [4, U + 1, U + 1] int32 row offset of (org, start, n_src)
    chain: jnp.ndarray  # [R, N_CHAIN] a chain edge's geometry (CH_* columns)
    by_n: jnp.ndarray  # [U + 1, 3]: U // n, ceil(U / n) / U, floor(U / n) / U
    hx: jnp.ndarray  # [GW] PE hops for a unit-column offset
    hy: jnp.ndarray  # [GH]
    topology: str = struct.field(pytree_node=False)
    express_k: int = struct.field(pytree_node=False)
    U: int = struct.field(pytree_node=False)
    GH: int = struct.field(pytree_node=False)
    GW: int = struct.field(pytree_node=False)
    uh: int = struct.field(pytree_node=False)
    uw: int = struct.field(pytree_node=False)
    max_depth: int = struct.field(pytree_node=False)

    @property
    def lanes(self) -> int:
        """Links into a unit across one side: min(uh, uw) ordinary links, or one express
        link per PE when express links skip exactly one unit."""
        return self.uh * self.uw if self.topology == "express" else min(self.uh, self.uw)

    @property
    def lanes_xy(self) -> tuple[int, int]:
        """Links across a unit boundary crossed moving along x (uh rows) and along y."""
        g = self.uh * self.uw
        return (g, g) if self.topology == "express" else (self.uh, self.uw)


# key_scalars columns
(KS_WIRE_ALL, KS_WIRE_HYB, KS_WIRE_UNI_U, KS_WIRE_UNI_C, KS_WIRE_UNIT_U, KS_WIRE_UNIT_C,
 KS_PORT_FAR, KS_PAIR_PS, KS_A2A_PS, KS_EXT_PS, KS_EMPTY) = range(11)
N_KS = 11
# chain table columns: chunk-matched mean and max hops; hops of the longest unit-to-unit flow;
# the distribution pair product and the all-to-all factor for each (source, destination)
# kind combination uniform-uniform, chunked-uniform, uniform-chunked
CH_HOP_MEAN, CH_HOP_MAX, CH_EXT, CH_PAIR, CH_A2A = 0, 1, 2, 3, 6
N_CHAIN = 9


def model_arrays(model: Model) -> ModelArrays:
    db = model.data_bytes
    L = len(model.layers)
    f = lambda v: np.asarray(v, np.float32)
    K, Yo, Xo, Yin, halo, full, m, ops, W, ob, irb, ifb = ([] for _ in range(12))
    for l in model.layers:
        k, yo, xo = l.out_shape
        K.append(k); Yo.append(yo); Xo.append(xo)
        yin = l.in_shapes[0][1]
        Yin.append(yin)
        halo.append(max(0, l.kernel_rows - l.stride_rows - l.pad_rows) if l.op in ("conv", "pool") else 0)
        full.append(l.rows_full)
        ops.append(l.ops)
        m.append(l.ops / (k * yo * xo))
        W.append(l.weight_elems * db)
        ob.append(l.out_act_elems * db)
        irb.append(sum(c * x for c, _, x in l.in_shapes) * db)
        ifb.append(l.in_act_elems * db)
    consumers: dict[int, list[int]] = {}
    for e in model.edges:
        consumers.setdefault(e.src, []).append(e.dst)
    deg = max(1, max(len(l.inputs) for l in model.layers))
    in_src = np.full((L, deg), -1, np.int32)
    in_bytes = np.zeros((L, deg), np.float32)
    in_eidx = np.full((L, deg), -1, np.int32)
    fill = [0] * L
    outs: dict[int, list[int]] = {}
    for ei, e in enumerate(model.edges):
        in_src[e.dst, fill[e.dst]] = e.src if e.src >= 0 else -1
        in_bytes[e.dst, fill[e.dst]] = e.elems * db
        in_eidx[e.dst, fill[e.dst]] = ei
        fill[e.dst] += 1
        if e.src >= 0:
            outs.setdefault(e.src, []).append(ei)
    out_eidx = np.full((L, max([1] + [len(v) for v in outs.values()])), -1, np.int32)
    for l, v in outs.items():
        out_eidx[l, :len(v)] = v
    tensors = list(range(L)) + [-1 - i for i in range(len(model.input_names))]
    t_bytes = [model.layers[t].out_act_elems * db if t >= 0 else math.prod(model.input_shapes[-1 - t]) * db
               for t in tensors]
    net_out = np.asarray([i not in consumers for i in range(L)])
    t_prod = np.asarray([max(t, -1) for t in tensors], np.int32)
    t_last = np.asarray([max(consumers.get(t, [-1])) for t in tensors], np.int32)
    alive0 = np.zeros(L + 1, np.float64)
    for ti, t in enumerate(tensors):
        b = model.layers[t].out_act_elems * db if t >= 0 else math.prod(model.input_shapes[-1 - t]) * db
        if t < 0:  # a network input, alive from the start until its last consumer (always if none)
            alive0[:(t_last[ti] + 1) if t_last[ti] >= 0 else L + 1] += b
        elif t_last[ti] > t:
            alive0[t + 1:t_last[ti] + 1] += b
    chain = [i for i, e in enumerate(model.edges) if e.src >= 0 and e.dst == e.src + 1]
    skip = [i for i, e in enumerate(model.edges) if e.src >= 0 and e.dst != e.src + 1]
    return ModelArrays(
        K=f(K), Yo=f(Yo), Xo=f(Xo), Yin=f(Yin), halo=f(halo), rows_full=np.asarray(full),
        m=f(m), ops=f(ops), W=f(W), out_bytes=f(ob), in_row_bytes=f(irb), in_full_bytes=f(ifb),
        net_out=net_out,
        out_elems=f([l.out_act_elems for l in model.layers]),
        red_ok=np.asarray([l.reduction_ok for l in model.layers]),
        in_src=in_src, in_bytes=in_bytes, in_eidx=in_eidx, out_eidx=out_eidx,
        e_src=np.asarray([max(e.src, -1) for e in model.edges], np.int32),
        e_dst=np.asarray([e.dst for e in model.edges], np.int32),
        e_bytes=f([e.elems * db for e in model.edges]),
        t_prod=t_prod,
        t_last=t_last,
        t_first=np.asarray([min(consumers.get(t, [-1])) for t in tensors], np.int32),
        t_bytes=f(t_bytes), alive0=f(alive0[:L]), net_first=np.arange(L) == 0,
        chain_e=np.asarray(chain, np.int32), skip_e=np.asarray(skip, np.int32),
        in_slots=slots(in_eidx), out_slots=slots(out_eidx),
        W_total=np.float32(f(W).sum()), ops_total=np.float32(f(ops).sum()),
        net_in_total=np.float32(f(t_bytes)[t_prod < 0].sum()),
        net_out_total=np.float32(f(ob)[net_out].sum()),
        n_layers=L)


def hw_arrays(hw: Hardware, max_depth: int = 16) -> HwArrays:
    t = geometry_tables(hw.rows, hw.cols, hw.unit_rows, hw.unit_cols, hw.topology, hw.express_k)
    gh, gw = hw.grid
    return HwArrays(
        sram=float(hw.pe_sram_bytes), glb=float(hw.glb_bytes), glb_bw=hw.glb_bytes_per_cycle,
        dist_bw=hw.distribution_bytes_per_cycle, dram_bw=hw.dram_bytes_per_cycle,
        link_bw=hw.link_bytes_per_cycle, router=float(hw.router_latency_cycles),
        macs_per_cycle=float(hw.macs_per_pe_per_cycle), db=float(hw.data_bytes),
        psum_b=float(hw.psum_bytes), sram_per_mac=float(hw.pe_sram_bytes_per_mac),
        e_mac=hw.mac_pj, e_sram=hw.pe_sram_pj_per_byte, e_noc=hw.noc_pj_per_byte_hop,
        e_glb=hw.glb_pj_per_byte, e_dram=hw.dram_pj_per_byte,
        **t,
        topology=hw.topology, express_k=hw.express_k, U=hw.n_units, GH=gh, GW=gw,
        uh=hw.unit_rows, uw=hw.unit_cols, max_depth=int(min(max_depth, hw.n_units)))


def table_cache_dir() -> Path | None:
    """Where built tables are kept between runs: $PIPEORGAN_JAX_TABLE_CACHE (empty: off), else
    $XDG_CACHE_HOME/pipeorgan_jax/tables, else ~/.cache/pipeorgan_jax/tables."""
    env = os.environ.get("PIPEORGAN_JAX_TABLE_CACHE")
    if env is not None:
        return Path(env) if env else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pipeorgan_jax" / "tables"


@functools.lru_cache(maxsize=8)
def geometry_tables(rows: int, cols: int, uh: int, uw: int, topology: str, express_k: int) -> dict:
    """Every geometry table of one array shape and NoC: built once per process, and kept on
    disk (table_cache_dir) keyed by the shape and this file's source, since an 8K array's
    chain table takes ~20 s to build on 2 cores and ~0.3 s to load."""
    folder = table_cache_dir()
    key = hashlib.sha256(repr((rows, cols, uh, uw, topology, express_k)).encode()
                         + Path(__file__).read_bytes()).hexdigest()[:24]
    path = folder / f"{key}.npz" if folder else None
    if path is not None and path.exists():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError):
            pass  # a damaged file: build again
    t = _build_tables(rows, cols, uh, uw, topology, express_k)
    if path is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **t)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache: build every time
    return t


def _build_tables(rows: int, cols: int, uh: int, uw: int, topology: str, express_k: int) -> dict:
    gh, gw = rows // uh, cols // uw
    U = gh * gw
    cv = curves(gh, gw)  # [4 curves, U, 2] (unit row, unit col) in slot order
    perm = interleave_perm(U)
    hx = hops(np.arange(gw) * uw, cols, topology, express_k).astype(np.float64)
    hy = hops(np.arange(gh) * uh, rows, topology, express_k).astype(np.float64)
    HX = hx[np.abs(np.arange(gw)[:, None] - np.arange(gw)[None, :])]
    HY = hy[np.abs(np.arange(gh)[:, None] - np.arange(gh)[None, :])]
    # distribution network: a row bus per PE row from the west edge, 1 + x pitches to column x
    port = 1 + np.arange(cols)
    glbx = port.reshape(gw, uw).mean(1)
    glb_far = port.reshape(gw, uw).max(1)
    ucol = np.arange(gw)
    tree_unit = (uh * (ucol + 1) * uw).astype(np.float64)
    hyb_row = 1 + ucol * uw + (uw - 1) / 2
    g = uh * uw
    lanes_x, lanes_y = (g, g) if topology == "express" else (uh, uw)

    # unit position (row, col) of slot-order position v of each organization
    pos = np.zeros((4, U, 2), np.int64)
    for o in range(4):
        order = perm if ORG_INTERLEAVED[o] else np.arange(U)
        pos[o] = cv[ORG_CURVE[o]][order]

    # Layer keys (org, start in 0..U, n in 1..U), as in docs/cost_model.md, "Data placement".
    K = 4 * (U + 1) * U
    o_k, s_k, n_k = np.meshgrid(np.arange(4), np.arange(U + 1), np.arange(1, U + 1), indexing="ij")
    o_k, s_k, n_k = o_k.ravel(), s_k.ravel(), n_k.ravel()
    # count of a layer's units (uniform) and chunks (chunked) on each unit, over all U slots
    v = np.arange(U)
    units = ((v[None, :] >= s_k[:, None]) & (v[None, :] < np.minimum(s_k + n_k, U)[:, None])).astype(np.float64)
    extra = ((v[None, :] >= s_k[:, None]) & (v[None, :] < np.minimum(s_k + U % n_k, U)[:, None])).astype(np.float64)
    bq = (U // n_k).astype(np.float64)
    u_w = units / n_k[:, None]  # uniform over the layer's units
    c_w = (bq[:, None] * units + extra) / U  # U chunks, the first U mod n units one more
    # onto the grid: [K, GH, GW]
    cell = pos[o_k][:, :, 0] * gw + pos[o_k][:, :, 1]  # [K, U] grid cell of slot v

    def to_grid(wts):
        out = np.zeros((K, gh * gw))
        np.add.at(out, (np.repeat(np.arange(K), U), cell.ravel()), wts.ravel())
        return out.reshape(K, gh, gw)

    u2d, c2d = to_grid(u_w), to_grid(c_w)
    ux, uy, cx, cy = u2d.sum(1), u2d.sum(2), c2d.sum(1), c2d.sum(2)

    occ = u2d > 0
    mc = np.where(occ, np.arange(gw)[None, None, :], -1).max(2)  # [K, GH] farthest unit col
    row_occ = mc >= 0
    mcc = np.maximum(mc, 0)
    ks = np.zeros((K, N_KS))
    ks[:, KS_WIRE_ALL] = np.where(row_occ, tree_unit[mcc], 0.0).sum(1)
    ks[:, KS_WIRE_HYB] = np.where(row_occ, hyb_row[mcc], 0.0).sum(1)
    ks[:, KS_WIRE_UNI_U] = ux @ glbx
    ks[:, KS_WIRE_UNI_C] = cx @ glbx
    ks[:, KS_WIRE_UNIT_U] = ux @ tree_unit
    ks[:, KS_WIRE_UNIT_C] = cx @ tree_unit
    ks[:, KS_PORT_FAR] = (glb_far[None, :] * (ux > 0)).max(1)
    ks[:, KS_PAIR_PS] = np.einsum("ka,ab,kb->k", ux, HX, cx) + np.einsum("ka,ab,kb->k", uy, HY, cy)
    colx, rowy = ux > 0, uy > 0
    ext_x = (HX[None] * (colx[:, :, None] & colx[:, None, :])).max((1, 2))
    ext_y = (HY[None] * (rowy[:, :, None] & rowy[:, None, :])).max((1, 2))
    ks[:, KS_EXT_PS] = ext_x + ext_y
    ks[:, KS_EMPTY] = ~colx.any(1)

    # All-to-all link loads factorize: on an eastward boundary link after column x in row y
    # the load is (sources in row y at columns <= x) x (destinations at columns > x), so its
    # maximum over (y, x) is a maximum over x of (max over y of the source factor) times the
    # destination factor; likewise west, and south / north along columns (XY routing).
    def a2a_factors(d2):
        Sx = np.cumsum(d2, axis=2)
        Dcx = np.cumsum(d2.sum(1), axis=1)
        Sr = np.cumsum(d2.sum(2), axis=1)
        Dy = np.cumsum(d2, axis=1)
        src = np.concatenate([Sx[:, :, :-1].max(1, initial=0.0), (Sx[:, :, -1:] - Sx)[:, :, :-1].max(1, initial=0.0),
                              Sr[:, :-1], (Sr[:, -1:] - Sr)[:, :-1]], axis=1)
        dst = np.concatenate([(Dcx[:, -1:] - Dcx)[:, :-1], Dcx[:, :-1],
                              (Dy[:, -1:, :] - Dy)[:, :-1, :].max(2, initial=0.0), Dy[:, :-1, :].max(2, initial=0.0)], axis=1)
        return src, dst

    su, du = a2a_factors(u2d)
    sc, dc = a2a_factors(c2d)
    ks[:, KS_A2A_PS] = n_k * a2a_combine(su, dc, gw, lanes_x, lanes_y)

    # chunk positions: chunk q of a layer with n units lives on unit chunk_owner(n)[q]
    owner = np.stack([chunk_owner(n, U) for n in range(1, U + 1)])  # [U (n-1), U q]
    vq = np.minimum(s_k[:, None] + owner[n_k - 1], U - 1)
    chunk_y = pos[o_k[:, None], vq, 0]
    chunk_x = pos[o_k[:, None], vq, 1]

    first = lambda m: np.where(m.any(1), m.argmax(1), 0)
    last = lambda m: np.where(m.any(1), m.shape[1] - 1 - m[:, ::-1].argmax(1), 0)

    # Chain edges: the consumer's units start where the producer's end. Rows (org, s, a, b):
    # s in 0..U, a in 1..max(U - s, 1), b in 1..max(U - s - a, 1); hops from each chunk of the
    # producer to the same chunk of the consumer, mean and max over the U chunks.
    chain_off = np.zeros((4, U + 1, U + 1), np.int64)
    keys = []
    r = 0
    for o in range(4):
        for s in range(U + 1):
            na = max(U - s, 1)
            nb = [max(U - s - ai, 1) for ai in range(1, na + 1)]
            a = np.repeat(np.arange(1, na + 1), nb)
            b = np.concatenate([np.arange(1, k + 1) for k in nb])
            chain_off[o, s, 1:na + 1] = r + np.concatenate([[0], np.cumsum(nb[:-1])]).astype(np.int64)
            keys.append(np.stack([np.full(len(a), o), np.full(len(a), s), a, b], 1))
            r += len(a)
    keys = np.concatenate(keys)
    proj = np.stack([np.concatenate([ux @ HX, uy @ HY], 1), np.concatenate([cx @ HX, cy @ HY], 1)], 1)
    dist = np.stack([np.concatenate([ux, uy], 1), np.concatenate([cx, cy], 1)], 1)
    a_src, a_dst = np.stack([su, sc], 1), np.stack([du, dc], 1)
    ext_k = np.stack([first(colx), last(colx), first(rowy), last(rowy)], 1)
    empty = ~colx.any(1)
    args = dict(pos=pos, owner=owner, hx=hx, hy=hy, proj=proj, dist=dist, a_src=a_src, a_dst=a_dst,
                ext_k=ext_k, empty=empty, colx=colx, rowy=rowy)
    args = {k: jnp.asarray(v, {np.dtype(np.float64): jnp.float32, np.dtype(np.int64): jnp.int32}.get(v.dtype, v.dtype))
            for k, v in args.items()}
    mono = tuple(bool(np.all(np.diff(h) >= 0)) for h in (hx, hy))  # hops grow with distance
    step = 1 << 15
    padded = np.concatenate([keys, np.repeat(keys[-1:], -len(keys) % step, 0)])
    chain = np.concatenate([np.asarray(_chain_rows(jnp.asarray(padded[c0:c0 + step], jnp.int32), U, gw, gh,
                                                   float(lanes_x), float(lanes_y), mono, **args))
                            for c0 in range(0, len(padded), step)])[:len(keys)]

    nn = np.arange(U + 1)
    nn1 = np.maximum(nn, 1)
    by_n = np.stack([U // nn1, np.ceil(U / nn1) / U, np.floor(U / nn1) / U], 1)
    f32 = lambda a: np.ascontiguousarray(a, np.float32)
    idt = np.int8 if max(gh, gw) < 127 else np.int16
    return dict(
        key_scalars=f32(ks),
        proj=f32(proj), dist=f32(dist), a2a_src=f32(a_src), a2a_dst=f32(a_dst),
        ext=ext_k.astype(np.int32),
        chunk_x=chunk_x.astype(idt), chunk_y=chunk_y.astype(idt),
        chain_off=chain_off.astype(np.int32), chain=f32(chain),
        by_n=f32(by_n), hx=f32(hx), hy=f32(hy))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6))
def _chain_rows(keys, U, gw, gh, lanes_x, lanes_y, mono, *, pos, owner, hx, hy, proj, dist, a_src, a_dst,
                ext_k, empty, colx, rowy):
    """Chain-table rows (CH_* columns) for chain keys (org, s, a, b) [R, 4] (jitted: the 8K
    array has 1.4M rows of 128 chunks each)."""
    o, s, a, b = keys.T
    ksrc = (o * (U + 1) + s) * U + a - 1
    kdst = (o * (U + 1) + jnp.minimum(s + a, U)) * U + b - 1
    vs = jnp.minimum(s[:, None] + owner[a - 1], U - 1)
    vd = jnp.minimum((s + a)[:, None] + owner[b - 1], U - 1)
    ps, pd = pos[o[:, None], vs], pos[o[:, None], vd]
    h = hx[jnp.abs(ps[..., 1] - pd[..., 1])] + hy[jnp.abs(ps[..., 0] - pd[..., 0])]
    cols = [h.mean(1), h.max(1), None]
    e = 0.0
    for (i0, i1), hh, m, n, mono_ in (((0, 1), hx, colx, gw, mono[0]), ((2, 3), hy, rowy, gh, mono[1])):
        if mono_:
            es_, ed_ = ext_k[ksrc], ext_k[kdst]
            e = e + hh[jnp.maximum(jnp.abs(es_[:, i1] - ed_[:, i0]), jnp.abs(ed_[:, i1] - es_[:, i0]))]
        else:  # every pair of occupied columns (rows)
            Hm = hh[jnp.abs(jnp.arange(n)[:, None] - jnp.arange(n)[None, :])]
            e = e + (Hm[None] * (m[ksrc][:, :, None] & m[kdst][:, None, :])).max((1, 2))
    cols[CH_EXT] = jnp.where(empty[ksrc] | empty[kdst], 0.0, e)
    combos = ((0, 0), (1, 0), (0, 1))  # uniform-uniform, chunked-uniform, uniform-chunked
    cols += [(proj[ksrc, sk] * dist[kdst, dk]).sum(1) for sk, dk in combos]
    cols += [a2a_combine(a_src[ksrc, sk], a_dst[kdst, dk], gw, lanes_x, lanes_y) for sk, dk in combos]
    return jnp.stack(cols, 1)


def a2a_combine(src, dst, gw: int, lanes_x: float, lanes_y: float):
    """Largest unit-boundary link load per byte of an all-to-all flow, from a source's and a
    destination's factors (`a2a_factors`; NumPy or jax.numpy, leading axes broadcast)."""
    xp = np if isinstance(src, np.ndarray) else jnp
    nx = gw - 1
    A = src.shape[-1]
    ny = (A - 2 * nx) // 2
    p = src * dst
    mx = lambda a: a.max(-1) if a.shape[-1] else xp.zeros(a.shape[:-1], a.dtype)
    east, west = mx(p[..., :nx]), mx(p[..., nx:2 * nx])
    south, north = mx(p[..., 2 * nx:2 * nx + ny]), mx(p[..., 2 * nx + ny:])
    return xp.maximum(xp.maximum(east, west) / lanes_x, xp.maximum(south, north) / lanes_y)


def layer_key(org, start, n, U: int):
    """Flat row of layer key (org, start, n) in the per-key tables."""
    return (org * (U + 1) + jnp.minimum(start, U)) * U + n - 1

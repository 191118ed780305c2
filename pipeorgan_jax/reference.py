"""The exact reference cost model (docs/cost_model.md), one placement at a time, plain NumPy.

Unlike the batch model (cost/, closed forms at allocation-unit level) this module
materializes every segment's PE -> layer map and unit positions (organization.py is the
definition), builds every flow of the contract at PE level, routes each mesh flow hop by hop
with XY routing on the actual topology (mesh, torus, express), counts bytes on every directed
link, computes every GLB delivery's multicast tree on the distribution network PE by PE, and
plays the segment's tiles as a discrete-event schedule (heapq) over PE groups, mesh links,
the GLB, the distribution network (each direction) and DRAM.

Links are indexed explicitly (`link_layout`): for each of the ordinary directions E, W, S, N
and the express directions XE, XW, XS, XN an [H, W] array indexed by the link's *source*
router (y, x): E[y, x] goes (y, x) -> (y, x+1), W[y, x] goes (y, x) -> (y, x-1), S[y, x] goes
(y, x) -> (y+1, x), N[y, x] goes (y, x) -> (y-1, x), XE[y, x] goes (y, x) -> (y, x+k), etc. On
a torus the wrap links are the ordinary links E[:, W-1] (-> column 0), W[:, 0] (-> column
W-1), S[H-1, :] and N[0, :]. A flat per-link array concatenates them in that order. The GLB
distribution network is not part of the mesh: one bus per PE row from a west-edge port; a
delivery's wire is, per PE row it reaches, 1 + its farthest column there (`mc_wire`).

Interpretive choices where the contract leaves room (each is marked `CHOICE` below):
  * data bytes `db` are the model's `data_bytes` (tensors and weights);
  * a segment deeper than the array's units (reason 1) is costed with every layer given
    max(1, n_k) units and unit slots taken modulo U (units overlap); its numbers are finite
    but meaningless;
  * reason 1 takes precedence over reason 2, and 2 over 3;
  * rows_full layers hold each input operand whole in the capacity check (C*Y*X of each
    operand; the contract's h_l*C_in*X_in with h_l = Yin of operand 0 only differs for a
    matmul whose operands have different row counts);
  * `max_link_bytes` is the largest per-link (mesh) byte count within one segment, over all
    segments (segments use the links at different times, so congestion is per segment);
    `max_link_bytes_total` sums each link over all segments;
  * preload: the first copy of every weight of the segment reaches the PEs before its first
    tile, at min(GLB, distribution) bandwidth, and for the first segment of the network at
    DRAM bandwidth too (later segments' weights come from DRAM while the previous one runs);
    resident weights are not played in the schedule (the preload stands for them), a
    re-streamed weight's copies for tiles 1..n-1 are;
  * the segment starts after its preload; GLB inputs (segment input edges and re-streamed
    weights) are double-buffered: issued two tiles (plus the consumer's look-ahead) ahead of the
    consumer's compute, in tile order; compute(l, t) waits for the GLB
    tile of a segment-input edge that holds the producer row it needs (same row rule as
    in-segment edges, with the producer's rows split evenly into n tiles);
  * a reduction layer's tile is done when its partial sums are reduce-scattered (a mesh
    transfer after its compute); its outputs leave then;
  * a network input's DRAM read and GLB write happen in the segment of its first consuming
    edge (per tile, on that edge's transfer); a network output's DRAM write on its output
    transfer; the spill is played after all segments, as spill / dram_bw cycles added to the
    total latency (no segment owns it);
  * router latency x max hops counts the hops of a transfer's PE flows (distribution-network
    transfers: 1 + the farthest column), not the intra-unit broadcast tree links;
  * a segment's latency is at least each of its servers' busy time (GLB, DRAM, distribution
    network, its busiest mesh link): the schedule plays every transfer but the preloaded
    weights, so this bound is what makes their traffic count;
  * fill_cycles = segment latency - preload - (n - 1) * steady_cycles.
"""
from __future__ import annotations

import heapq
import math
from typing import Optional

import numpy as np

from pipeorgan_jax.hardware import Hardware, hops as hw_hops
from pipeorgan_jax.organization import (CURVES, chunk_owner, ORG_CURVE, ORG_INTERLEAVED, curve,
                                        segment_map, slots, units_per_layer)
from pipeorgan_jax.placement import GRAN_ROWS, Placement, segments as seg_ranges
from pipeorgan_jax.workload import Model

LINK_TYPES = ("E", "W", "S", "N", "XE", "XW", "XS", "XN")
SPATIAL, CHANNEL, HYBRID, REDUCTION = 0, 1, 2, 3


def _cdiv(a: int, b: int) -> int:
    return -((-a) // b)


def _flat(w, size: int) -> np.ndarray:
    w = np.asarray(w, float).ravel()
    return np.full(size, w[0]) if w.size == 1 and size != 1 else w


# ----------------------------------------------------------------------------------------
# Links and routing
# ----------------------------------------------------------------------------------------
def link_layout(hw: Hardware) -> dict[str, tuple[int, tuple[int, ...]]]:
    """name -> (offset in the flat link array, shape)."""
    H, W = hw.rows, hw.cols
    out, off = {}, 0
    for t in LINK_TYPES:
        shape = (H, W)
        out[t] = (off, shape)
        off += int(np.prod(shape))
    return out


def n_links(hw: Hardware) -> int:
    return 8 * hw.rows * hw.cols


def split_links(hw: Hardware, flat: np.ndarray) -> dict[str, np.ndarray]:
    """Flat per-link array -> {link type: [H, W] (or [H] for ports)}."""
    return {t: flat[o:o + int(np.prod(s))].reshape(s) for t, (o, s) in link_layout(hw).items()}


class LinkAcc:
    """Accumulates mesh PE flows and broadcast trees on the links, hop by hop.

    Per-link bytes are added as ranges on difference arrays (one line per PE row for the
    horizontal links, one per PE column for the vertical ones; express ranges have stride k)
    and integrated by `loads()`. `byte_hops` is accumulated independently from the per-flow
    hop counts so that it can be checked against the link loads.
    """

    def __init__(self, hw: Hardware):
        self.hw = hw
        self.H, self.W = hw.rows, hw.cols
        self.topo = hw.topology
        self.k = hw.express_k if hw.topology == "express" else 1
        k = self.k
        wp = _cdiv(self.W + k + 1, k) * k
        hp = _cdiv(self.H + k + 1, k) * k
        # horizontal: lines are PE rows, positions columns; vertical: lines columns, pos rows
        self.h = {+1: np.zeros((self.H, wp)), -1: np.zeros((self.H, wp))}
        self.hx = {+1: np.zeros((self.H, wp)), -1: np.zeros((self.H, wp))}
        self.v = {+1: np.zeros((self.W, hp)), -1: np.zeros((self.W, hp))}
        self.vx = {+1: np.zeros((self.W, hp)), -1: np.zeros((self.W, hp))}
        self.byte_hops = 0.0
        self.tree_bytes = 0.0
        self.max_hops = 0

    # -- primitive: add w to `cnt` links starting at `lo` with stride `stride` on `line`
    @staticmethod
    def _range(arr, line, lo, cnt, w, stride):
        m = cnt > 0
        if not m.any():
            return
        line, lo, cnt, w = line[m], lo[m], cnt[m], w[m]
        np.add.at(arr, (line, lo), w)
        np.add.at(arr, (line, lo + cnt * stride), -w)

    def _dim(self, ordn, expr, N, line, a, b, w):
        """Route along one dimension from a to b on `line`; returns hops per flow."""
        line, a, b = (np.asarray(v, np.int64) for v in (line, a, b))
        w = np.asarray(w, float)
        d = b - a
        if self.topo == "mesh":
            self._range(ordn[+1], line, a, np.where(d > 0, d, 0), w, 1)
            self._range(ordn[-1], line, b + 1, np.where(d < 0, -d, 0), w, 1)
            h = np.abs(d)
        elif self.topo == "torus":
            f = d % N
            go_pos = (f > 0) & (f <= N - f)  # tie: increasing index
            go_neg = (f > 0) & ~go_pos
            # forward: links a, a+1, ..., a+f-1 (mod N)
            cf = np.where(go_pos, f, 0)
            c1 = np.minimum(cf, N - a)
            self._range(ordn[+1], line, a, c1, w, 1)
            self._range(ordn[+1], line, np.zeros_like(a), cf - c1, w, 1)
            # backward: links a, a-1, ..., a-c+1 (mod N), c = N - f
            cb = np.where(go_neg, N - f, 0)
            lo = a - cb + 1
            lo1 = np.maximum(lo, 0)
            self._range(ordn[-1], line, lo1, np.where(go_neg, a - lo1 + 1, 0), w, 1)
            self._range(ordn[-1], line, lo + N, np.where(go_neg, np.maximum(0, -lo), 0), w, 1)
            h = np.where(go_pos, f, np.where(go_neg, N - f, 0))
        else:  # express: floor(d/k) express links first, then d mod k ordinary links
            k = self.k
            ad = np.abs(d)
            q, r = ad // k, ad % k
            pos, neg = d > 0, d < 0
            self._range(expr[+1], line, a, np.where(pos, q, 0), w, k)
            self._range(ordn[+1], line, a + q * k, np.where(pos, r, 0), w, 1)
            self._range(expr[-1], line, a - (q - 1) * k, np.where(neg, q, 0), w, k)
            self._range(ordn[-1], line, b + 1, np.where(neg, r, 0), w, 1)
            h = q + r
        assert np.array_equal(h, hw_hops(np.abs(d), N, self.topo, self.hw.express_k))
        return h

    def pe_flows(self, ys, xs, yd, xd, w):
        """XY-routed PE -> PE flows: along the source row, then along the destination column."""
        ys, xs, yd, xd = (np.asarray(v, np.int64).ravel() for v in (ys, xs, yd, xd))
        w = _flat(w, ys.size)
        if ys.size == 0:
            return
        hh = self._dim(self.h, self.hx, self.W, ys, xs, xd, w)
        hv = self._dim(self.v, self.vx, self.H, xd, ys, yd, w)
        hop = hh + hv
        self.byte_hops += float((w * hop).sum())
        self.max_hops = max(self.max_hops, int(hop.max()))

    def tree(self, y0, x0, a, b, w):
        """Broadcast of a piece of w bytes from local PE (a, b) of the unit at PE (y0, x0) to the
        other g-1 PEs of the unit: along row a inside the unit, then along every unit column."""
        uh, uw = self.hw.unit_rows, self.hw.unit_cols
        y0, x0, a, b = (np.asarray(v, np.int64).ravel() for v in (y0, x0, a, b))
        w = _flat(w, y0.size)
        if y0.size == 0:
            return
        row = y0 + a
        self._range(self.h[+1], row, x0 + b, uw - 1 - b, w, 1)
        self._range(self.h[-1], row, x0 + 1, b, w, 1)
        c = np.arange(uw)
        col = (x0[:, None] + c[None, :]).ravel()
        rep = lambda v: np.repeat(v, uw)
        self._range(self.v[+1], col, rep(y0 + a), rep(uh - 1 - a), rep(w), 1)
        self._range(self.v[-1], col, rep(y0 + 1), rep(a), rep(w), 1)
        g = uh * uw
        self.byte_hops += float(w.sum()) * (g - 1)
        self.tree_bytes += float(w.sum()) * (g - 1)

    def loads(self) -> np.ndarray:
        """Flat per-link byte array (layout: `link_layout`)."""
        H, W, k = self.H, self.W, self.k

        def integ(arr, n, stride):
            lines, p = arr.shape
            if stride == 1:
                return np.cumsum(arr, axis=1)[:, :n]
            return np.cumsum(arr.reshape(lines, p // stride, stride), axis=1).reshape(lines, p)[:, :n]

        E, Wl = integ(self.h[+1], W, 1), integ(self.h[-1], W, 1)
        S, N = integ(self.v[+1], H, 1).T, integ(self.v[-1], H, 1).T
        if self.topo == "express":
            XE, XW = integ(self.hx[+1], W, k), integ(self.hx[-1], W, k)
            XS, XN = integ(self.vx[+1], H, k).T, integ(self.vx[-1], H, k).T
        else:
            XE = XW = np.zeros((H, W))
            XS = XN = np.zeros((H, W))
        out = np.concatenate([a.ravel() for a in (E, Wl, S, N, XE, XW, XS, XN)])
        # difference arrays integrate to exact zeros up to rounding
        out[np.abs(out) < 1e-9 * max(1.0, float(np.abs(out).max(initial=0)))] = 0.0
        tol = 1e-6 * max(1.0, float(out.max(initial=0)))
        if self.topo != "torus":  # no wrap links
            assert np.abs(E[:, W - 1]).max() <= tol and np.abs(Wl[:, 0]).max() <= tol
            assert np.abs(S[H - 1, :]).max() <= tol and np.abs(N[0, :]).max() <= tol
        if self.topo == "express":
            assert np.abs(XE[:, W - k:]).max(initial=0) <= tol
            assert np.abs(XW[:, :k]).max(initial=0) <= tol
            assert np.abs(XS[H - k:, :]).max(initial=0) <= tol
            assert np.abs(XN[:k, :]).max(initial=0) <= tol
        assert out.min(initial=0) >= -tol
        return np.maximum(out, 0.0)


# ----------------------------------------------------------------------------------------
# Segment geometry
# ----------------------------------------------------------------------------------------
def _units(hw: Hardware, shares: np.ndarray, org: int) -> list[np.ndarray]:
    """Per layer of a segment: [n_k, 2] PE origins (top-left row, col) of its units m=0..n_k-1."""
    gh, gw = hw.grid
    U = hw.n_units
    # CHOICE: a too-deep segment (reason 1) gets max(1, n_k) units, slots modulo U.
    n = np.maximum(units_per_layer(shares, U), 1)
    pos = curve(CURVES[ORG_CURVE[org]], gh, gw)
    out = []
    for sl in slots(n, bool(ORG_INTERLEAVED[org])):
        p = pos[np.asarray(sl) % U]
        out.append(np.stack([p[:, 0] * hw.unit_rows, p[:, 1] * hw.unit_cols], 1).astype(np.int64))
    return out


def _chunk_owner(n: int, U: int) -> np.ndarray:
    """Unit (0..n-1) holding chunk q of a position-split layer's output."""
    return chunk_owner(n, U)


def _chunks(n: int, U: int) -> np.ndarray:
    """c_m: chunks held by unit m of a position-split layer."""
    return np.bincount(_chunk_owner(n, U), minlength=n)[:n]


class _Group:
    """One family of flows of a segment (an edge, a GLB input, an output, a layer's weights)."""

    def __init__(self, kind, src, dst, edge=None):
        self.kind, self.src, self.dst, self.edge = kind, src, dst, edge
        self.loads = None  # whole-inference per-link bytes
        self.byte_hops = 0.0
        self.delivered = 0.0
        self.max_hops = 0
        self.glb_tile = 0.0  # GLB bytes per tile
        self.dram_tile = 0.0  # DRAM bytes per tile
        self.dist_in_tile = 0.0  # distribution-network bytes per tile, GLB -> PEs
        self.dist_out_tile = 0.0  # and PEs -> GLB
        self.tile_loads = None  # per-link (mesh) bytes of one tile's transfer


def _local_grid(hw):
    a, b = np.meshgrid(np.arange(hw.unit_rows), np.arange(hw.unit_cols), indexing="ij")
    return a.ravel(), b.ravel()


def _unit_to_unit(acc: LinkAcc, hw, src_o, dst_o, F):
    """Unit flows of F bytes -> g PE flows F/g between the same local positions."""
    m = F > 0
    src_o, dst_o, F = src_o[m], dst_o[m], F[m]
    a, b = _local_grid(hw)
    g = hw.unit_pes
    acc.pe_flows(src_o[:, 0, None] + a, src_o[:, 1, None] + b, dst_o[:, 0, None] + a,
                 dst_o[:, 1, None] + b, np.repeat(F / g, g).reshape(-1, g))
    return float(F.sum())


def _pe_coords(origins, hw, a=None, b=None):
    """PE coordinates (ys, xs) of every PE of the given units, or of local PE (a, b) of each."""
    if a is None:
        a, b = _local_grid(hw)
    a, b = np.atleast_1d(a), np.atleast_1d(b)
    return ((origins[:, 0, None] + a[None, :]).ravel(), (origins[:, 1, None] + b[None, :]).ravel())


def mc_wire(ys, xs) -> float:
    """Distribution-network wire, in PE pitches, of one multicast to the PEs (ys, xs): the bus
    of every PE row it reaches, from the west-edge port (1 pitch) to the farthest PE there."""
    ys, xs = np.asarray(ys, np.int64).ravel(), np.asarray(xs, np.int64).ravel()
    if ys.size == 0:
        return 0.0
    far = np.full(int(ys.max()) + 1, -1, np.int64)
    np.maximum.at(far, ys, xs)
    return float((far[far >= 0] + 1).sum())


class _Dist:
    """GLB <-> PE traffic on the distribution network: wire byte-hops, PE copies, hops."""

    def __init__(self):
        self.byte_hops = 0.0
        self.delivered = 0.0
        self.max_hops = 0

    def unicast(self, ys, xs, w):
        """Distinct pieces of w bytes each to (or from) PE (ys, xs)."""
        xs = np.asarray(xs, np.int64).ravel()
        w = _flat(w, xs.size)
        if xs.size == 0:
            return
        self.byte_hops += float((w * (1 + xs)).sum())
        self.delivered += float(w.sum())
        self.max_hops = max(self.max_hops, int(1 + xs.max()))

    def multicast(self, ys, xs, w):
        """The same w bytes to every PE (ys, xs)."""
        xs = np.asarray(xs).ravel()
        if xs.size == 0 or w <= 0:
            return
        self.byte_hops += w * mc_wire(ys, xs)
        self.delivered += w * xs.size
        self.max_hops = max(self.max_hops, int(1 + xs.max()))


def _broadcast(acc: LinkAcc, hw, dst_o, R):
    """Every PE of unit j (which received R_j bytes, R_j/g per PE) broadcasts its piece."""
    m = R > 0
    dst_o, R = dst_o[m], R[m]
    a, b = _local_grid(hw)
    g = hw.unit_pes
    nu = len(R)
    acc.tree(np.repeat(dst_o[:, 0], g), np.repeat(dst_o[:, 1], g), np.tile(a, nu),
             np.tile(b, nu), np.repeat(R / g, g))


# ----------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------
class _Net:
    """Per-layer constants of a model."""

    def __init__(self, model: Model):
        self.model = model
        # CHOICE: db is the model's data_bytes (equal to the hardware's in every config).
        db = self.db = model.data_bytes
        self.L = L = len(model.layers)
        ls = model.layers
        self.K = [l.out_shape[0] for l in ls]
        self.Yo = [l.out_shape[1] for l in ls]
        self.Xo = [l.out_shape[2] for l in ls]
        self.Yin = [l.in_shapes[0][1] for l in ls]
        self.halo = [max(0, l.kernel_rows - l.stride_rows - l.pad_rows)
                     if l.op in ("conv", "pool") else 0 for l in ls]
        self.full = [bool(l.rows_full) for l in ls]
        self.ops = [int(l.ops) for l in ls]
        self.W = [l.weight_elems * db for l in ls]
        self.out_bytes = [l.out_act_elems * db for l in ls]
        self.in_bytes_net = [math.prod(s) * db for s in model.input_shapes]
        self.in_rows_net = [s[1] for s in model.input_shapes]
        self.edges = list(model.edges)
        self.in_edges = [[] for _ in range(L)]
        self.consumers = {}  # tensor id (layer index or -1-i) -> [edge index]
        for ei, e in enumerate(self.edges):
            self.in_edges[e.dst].append(ei)
            self.consumers.setdefault(e.src, []).append(ei)
        self.net_out = [i not in self.consumers for i in range(L)]
        self.red_ok = [bool(l.reduction_ok) for l in ls]
        self.out_elems = [l.out_act_elems for l in ls]
        # a network input's DRAM read and GLB write ride on its first consuming edge
        self.first_use = {t: min(es) for t, es in self.consumers.items() if t < 0}

    def tensor_bytes(self, t: int) -> int:
        return self.out_bytes[t] if t >= 0 else self.in_bytes_net[-1 - t]

    def src_rows(self, t: int) -> int:
        return self.Yo[t] if t >= 0 else self.in_rows_net[-1 - t]


def _tiles(net: _Net, first: int, last: int, gran: int) -> int:
    T = GRAN_ROWS[gran]
    Yz = net.Yo[last]
    T = Yz if T == 0 else T
    return max(1, min(_cdiv(Yz, T), min(net.Yo[first:last + 1])))


def _needed_tile(net: _Net, l: int, t: int, n: int, r_l: int, r_src: int) -> int:
    """Producer tile holding the last input row that tile t of l needs."""
    if net.full[l]:
        return n - 1
    yin, yo = net.Yin[l], net.Yo[l]
    row = min(yin - 1, _cdiv((t + 1) * r_l * yin, yo) - 1 + net.halo[l])
    return min(n - 1, row // r_src)


def _compute_cycles(net: _Net, hw: Hardware, l: int, part: int, n_units: int, r: int) -> int:
    K, Yo, Xo, ops = net.K[l], net.Yo[l], net.Xo[l], net.ops[l]
    g = hw.unit_pes
    P = n_units * g
    Q = r * Xo
    if part == SPATIAL:
        a = _cdiv(Q, P) * K
    elif part == CHANNEL:
        a = _cdiv(K, P) * Q
    elif part == HYBRID:
        a = _cdiv(Q, n_units) * _cdiv(K, g)
    else:  # reduction: 1/n of the input channels per unit, K over the unit's PEs, then the
        # unit adds the n-1 partial sums it receives for its 1/n of the positions
        m = _cdiv(ops, K * Yo * Xo)
        a = (_cdiv(m, n_units) * Q + (n_units - 1) * _cdiv(Q, n_units)) * _cdiv(K, g)
        return _cdiv(a, hw.macs_per_pe_per_cycle)
    # ceil(a * m_l / macs) with m_l = ops / (K Yo Xo), in integers
    return _cdiv(a * ops, K * Yo * Xo * hw.macs_per_pe_per_cycle)


def evaluate(model: Model, hw: Hardware, placement: Placement, _keep: Optional[dict] = None) -> dict:
    """Exact cost of one placement (see the module docstring and docs/cost_model.md)."""
    p = placement.numpy()
    net = _Net(model)
    L = net.L
    assert p.seg_end.shape == (L,), f"placement has {p.seg_end.shape} layers, model has {L}"
    seg_end = np.asarray(p.seg_end, bool).copy()
    seg_end[L - 1] = True
    segs = seg_ranges(seg_end)
    seg_of = np.zeros(L, np.int64)
    for s, (a, b) in enumerate(segs):
        seg_of[a:b + 1] = s
    U = hw.n_units
    db = net.db

    too_deep = any(b - a + 1 > U for a, b in segs)
    no_fit = False
    total_loads = np.zeros(n_links(hw))
    byte_hops = delivered = dist_bh = 0.0
    bad_red = False
    latency = 0.0
    seg_out, restream_all, n_of = [], np.zeros(L, bool), np.zeros(L, np.int64)

    for s, (first, last) in enumerate(segs):
        info = _segment(net, hw, p, s, first, last, seg_of)
        no_fit |= info["no_fit"]
        restream_all[first:last + 1] = info["restream"]
        n_of[first:last + 1] = info["n_tiles"]
        total_loads += info["loads"]
        byte_hops += info["byte_hops"]
        dist_bh += info["dist_byte_hops"]
        delivered += info["delivered"]
        bad_red |= info["bad_reduction"]
        latency += info["latency_cycles"]
        if _keep is not None and s == _keep.get("segment"):
            _keep.update(info)
        seg_out.append({k: info[k] for k in (
            "first", "last", "n_tiles", "latency_cycles", "steady_cycles", "fill_cycles",
            "preload_cycles", "schedule_cycles", "bound_cycles", "max_link_bytes", "byte_hops",
            "dist_byte_hops", "units", "restream",
            "compute_cycles")})

    # GLB live bytes and spill.
    n_seg = len(segs)
    live = np.zeros(n_seg)
    for t, es in net.consumers.items():
        ps = seg_of[t] if t >= 0 else -1
        cs = {int(seg_of[net.edges[ei].dst]) for ei in es}
        for s in range(max(ps, 0), n_seg):
            if any(c > s for c in cs) or (s in cs and ps < s):
                live[s] += net.tensor_bytes(t)
    for l in range(L):
        if restream_all[l]:
            live[seg_of[l]] += net.W[l]
        if seg_of[l] > 0:  # fetched from DRAM into the GLB while the previous segment runs
            live[seg_of[l] - 1] += net.W[l]
    spill = 2.0 * max(0.0, float(live.max()) - hw.glb_bytes)

    # Traffic.
    crossing = [any(seg_of[net.edges[ei].dst] > seg_of[l] for ei in net.consumers.get(l, []))
                for l in range(L)]
    glb_w = sum(net.out_bytes[l] for l in range(L) if crossing[l] or net.net_out[l])
    glb_w += sum(net.in_bytes_net[i] for i in range(len(net.in_bytes_net)))
    glb_w += sum(net.W)
    glb_r = sum(e.elems * db for e in net.edges if e.src < 0 or seg_of[e.src] != seg_of[e.dst])
    glb_r += sum(net.W[l] * (n_of[l] if restream_all[l] else 1) for l in range(L))
    glb_bytes = float(glb_w + glb_r)
    dram_bytes = float(sum(net.W) + sum(net.in_bytes_net)
                       + sum(net.out_bytes[l] for l in range(L) if net.net_out[l]) + spill)
    # CHOICE: the spill is played after the segments at DRAM bandwidth.
    latency += spill / hw.dram_bytes_per_cycle

    ops = float(sum(net.ops))
    energy = {
        "mac": ops * hw.mac_pj,
        "pe_sram": (ops * hw.pe_sram_bytes_per_mac + delivered) * hw.pe_sram_pj_per_byte,
        "noc": byte_hops * hw.noc_pj_per_byte_hop,
        "glb": glb_bytes * hw.glb_pj_per_byte,
        "dram": dram_bytes * hw.dram_pj_per_byte,
    }
    e_tot = float(sum(energy.values()))
    reason = 1 if too_deep else (2 if no_fit else (3 if bad_red else 0))
    return {
        "latency_cycles": float(latency),
        "latency_s": float(latency) / (hw.clock_ghz * 1e9),
        "energy_pj": e_tot,
        "energy": energy,
        "edp": e_tot * float(latency),
        "feasible": reason == 0,
        "reason": reason,
        "max_link_bytes": float(max(s["max_link_bytes"] for s in seg_out)),
        "max_link_bytes_total": float(total_loads.max(initial=0.0)),
        "byte_hops": float(byte_hops),
        "dist_byte_hops": float(dist_bh),
        "glb_bytes": glb_bytes,
        "dram_bytes": dram_bytes,
        "delivered_bytes": float(delivered),
        "spill_bytes": spill,
        "glb_live_bytes": live.tolist(),
        "segments": seg_out,
    }


def _segment(net: _Net, hw: Hardware, p: Placement, s: int, first: int, last: int,
             seg_of: np.ndarray) -> dict:
    U, g = hw.n_units, hw.unit_pes
    db = net.db
    layers = list(range(first, last + 1))
    org = int(p.org[last])
    part = {l: int(p.part[l]) for l in layers}
    shares = np.asarray(p.share[first:last + 1], np.int64)
    origins = _units(hw, shares, org)
    unit_o = {l: origins[l - first] for l in layers}
    nu = {l: len(unit_o[l]) for l in layers}
    pos_split = {l: part[l] != CHANNEL for l in layers}  # output held as position chunks
    in_pos = {l: part[l] in (SPATIAL, HYBRID) for l in layers}  # input needed by position
    bcast = {l: part[l] != SPATIAL for l in layers}  # consumers that broadcast inside a unit
    bad_red = any(part[l] == REDUCTION and not net.red_ok[l] for l in layers)

    n = _tiles(net, first, last, int(p.gran[last]))
    r = {l: _cdiv(net.Yo[l], n) for l in layers}
    h = {}
    for l in layers:
        if net.full[l]:
            h[l] = net.Yin[l]
        else:
            h[l] = min(net.Yin[l], _cdiv(r[l] * net.Yin[l], net.Yo[l]) + net.halo[l])

    def lag(ei):
        e = net.edges[ei]
        if net.full[e.dst]:
            return n - 1
        return min(n - 1, (h[e.dst] - 1) // r[e.src])

    # Capacity.
    restream, no_fit = [], False
    for l in layers:
        P = nu[l] * g
        K, Wl = net.K[l], net.W[l]
        if part[l] == SPATIAL:
            w_pe = Wl
        elif part[l] == CHANNEL:
            w_pe = _cdiv(K, P) * Wl / K
        elif part[l] == HYBRID:
            w_pe = _cdiv(K, g) * Wl / K
        else:
            w_pe = _cdiv(K, g) * Wl / K / nu[l]
        lay = net.model.layers[l]
        if net.full[l]:  # CHOICE: the whole of every operand
            I = sum(c * y * x for c, y, x in lay.in_shapes) * db
        else:
            I = sum(h[l] * c * x for c, _, x in lay.in_shapes) * db
        I_pe = I / P if part[l] == SPATIAL else (I if part[l] == CHANNEL else I / nu[l])
        if part[l] == REDUCTION:  # partial sums of the PE's output channels, every position
            O_pe = r[l] * net.Xo[l] * _cdiv(K, g) * hw.psum_bytes
        else:
            O_pe = r[l] * K * net.Xo[l] * db / P
        skip = 0.0
        for ei in net.in_edges[l]:
            e = net.edges[ei]
            if e.src >= first and l - e.src > 1:
                skip += (l - e.src - 1 + lag(ei)) * e.elems * db / n
        need = w_pe + 2 * (I_pe + O_pe) + skip / P
        rs = False
        if need > hw.pe_sram_bytes:
            if need - w_pe <= hw.pe_sram_bytes:
                rs = True
            else:
                no_fit = True
        restream.append(rs)
    rs_of = dict(zip(layers, restream))

    # Flow groups.
    groups: list[_Group] = []
    seg_loads = np.zeros(n_links(hw))

    def finish(gr: _Group, acc: LinkAcc, mult: float = 1.0):
        ld = acc.loads()
        gr.byte_hops = acc.byte_hops * mult
        gr.loads = ld * mult
        gr.max_hops = acc.max_hops
        assert abs(gr.loads.sum() - gr.byte_hops) <= 1e-6 * max(1.0, gr.byte_hops), \
            (gr.kind, gr.loads.sum(), gr.byte_hops)
        gr.tile_loads = gr.loads / n
        groups.append(gr)

    def finish_dist(gr: _Group, dist: _Dist, mult: float = 1.0):
        """A distribution-network group: no mesh link carries it."""
        gr.byte_hops = dist.byte_hops * mult
        gr.delivered = dist.delivered * mult
        gr.dist_hops = gr.byte_hops
        gr.max_hops = dist.max_hops
        gr.loads = np.zeros(n_links(hw))
        gr.tile_loads = gr.loads
        groups.append(gr)

    a_loc, b_loc = _local_grid(hw)
    for l in layers:
        for ei in net.in_edges[l]:
            e = net.edges[ei]
            B = float(e.elems * db)
            dst_o = unit_o[l]
            if e.src >= first:  # in-segment edge, over the mesh
                acc = LinkAcc(hw)
                pl = e.src
                src_o = unit_o[pl]
                if pos_split[pl] and in_pos[l]:
                    i = _chunk_owner(nu[pl], U)
                    j = _chunk_owner(nu[l], U)
                    F = np.zeros((nu[pl], nu[l]))
                    np.add.at(F, (i, j), B / U)
                elif not in_pos[l]:  # channel: all of B to every unit; reduction: 1/n of it
                    f = _chunks(nu[pl], U) / U if pos_split[pl] else np.full(nu[pl], 1.0 / nu[pl])
                    share_j = 1.0 if part[l] == CHANNEL else 1.0 / nu[l]
                    F = np.repeat((B * f * share_j)[:, None], nu[l], 1)
                else:
                    cj = _chunks(nu[l], U)
                    F = np.repeat((B * cj / (U * nu[pl]))[None, :], nu[pl], 0)
                ii, jj = np.meshgrid(np.arange(nu[pl]), np.arange(nu[l]), indexing="ij")
                recv = _unit_to_unit(acc, hw, src_o[ii.ravel()], dst_o[jj.ravel()], F.ravel())
                R = F.sum(0)
                gr = _Group("edge", pl, l, ei)
                if bcast[l]:
                    _broadcast(acc, hw, dst_o, R)
                gr.delivered = recv + acc.tree_bytes
                finish(gr, acc)
            else:  # segment input: read from the GLB once, over the distribution network
                dist = _Dist()
                if part[l] == SPATIAL:  # unit j's chunks, spread over its PEs
                    for j, c in enumerate(_chunks(nu[l], U)):
                        dist.unicast(*_pe_coords(dst_o[j:j + 1], hw), B * c / U / g)
                elif part[l] == CHANNEL:  # all of B to every PE
                    dist.multicast(*_pe_coords(dst_o, hw), B)
                elif part[l] == HYBRID:  # unit j's chunks to every PE of unit j
                    for j, c in enumerate(_chunks(nu[l], U)):
                        dist.multicast(*_pe_coords(dst_o[j:j + 1], hw), B * c / U)
                else:  # reduction: unit j's input-channel slice to every PE of unit j
                    for j in range(nu[l]):
                        dist.multicast(*_pe_coords(dst_o[j:j + 1], hw), B / nu[l])
                gr = _Group("glb_in", e.src, l, ei)
                gr.glb_tile = B / n
                gr.dist_in_tile = B / n
                if e.src < 0 and net.first_use[e.src] == ei:
                    gr.glb_tile += B / n  # the network input's GLB write
                    gr.dram_tile = B / n  # and its DRAM read
                finish_dist(gr, dist)
        # weights, over the distribution network
        Wl = float(net.W[l])
        if Wl > 0:
            dist = _Dist()
            if part[l] == SPATIAL:  # every PE holds all of them
                dist.multicast(*_pe_coords(unit_o[l], hw), Wl)
            elif part[l] == HYBRID:  # local PE (a, b) of every unit holds the same 1/g
                for a_, b_ in zip(a_loc, b_loc):
                    dist.multicast(*_pe_coords(unit_o[l], hw, a_, b_), Wl / g)
            else:  # channel, reduction: each PE its own slice
                dist.unicast(*_pe_coords(unit_o[l], hw), Wl / (nu[l] * g))
            gr = _Group("weights", None, l)
            mult = n if rs_of[l] else 1
            finish_dist(gr, dist, mult)
            if rs_of[l]:  # copies for tiles 1..n-1 (tile 0's is preloaded)
                gr.glb_tile = gr.dist_in_tile = Wl
            else:
                gr.tile_loads = None  # preloaded, not played per tile
        # partial sums of a reduction layer: reduce-scatter over the mesh
        if part[l] == REDUCTION and nu[l] > 1:
            acc = LinkAcc(hw)
            O = float(net.out_elems[l] * hw.psum_bytes)
            cj = _chunks(nu[l], U)
            F = np.repeat((O * cj / U)[None, :], nu[l], 0)
            np.fill_diagonal(F, 0.0)
            ii, jj = np.meshgrid(np.arange(nu[l]), np.arange(nu[l]), indexing="ij")
            gr = _Group("psum", l, None)
            gr.delivered = _unit_to_unit(acc, hw, unit_o[l][ii.ravel()], unit_o[l][jj.ravel()],
                                         F.ravel())
            finish(gr, acc)
        # outputs to the GLB, gathered over the distribution network
        crossing = any(seg_of[net.edges[ei].dst] > s for ei in net.consumers.get(l, []))
        if crossing or net.net_out[l]:
            B = float(net.out_bytes[l])
            dist = _Dist()
            F = B * _chunks(nu[l], U) / U if pos_split[l] else np.full(nu[l], B / nu[l])
            for j in range(nu[l]):
                dist.unicast(*_pe_coords(unit_o[l][j:j + 1], hw), F[j] / g)
            gr = _Group("out", l, None)
            gr.glb_tile = B / n
            gr.dist_out_tile = B / n
            if net.net_out[l]:
                gr.dram_tile = B / n
            finish_dist(gr, dist)
            gr.delivered = 0.0  # written to the GLB, not into a PE

    for gr in groups:
        seg_loads += gr.loads
    seg_bh = float(sum(gr.byte_hops for gr in groups))
    dist_bh = float(sum(getattr(gr, "dist_hops", 0.0) for gr in groups))
    assert abs(seg_loads.sum() - (seg_bh - dist_bh)) <= 1e-6 * max(1.0, seg_bh)
    delivered = float(sum(gr.delivered for gr in groups))

    cyc = {l: _compute_cycles(net, hw, l, part[l], nu[l], r[l]) for l in layers}
    # Weights come from DRAM into the GLB while the previous segment runs (the first segment
    # has none to hide behind) and reach the PEs before the first tile.
    W_s = float(sum(net.W[l] for l in layers))
    preload = W_s / min(hw.glb_bytes_per_cycle, hw.distribution_bytes_per_cycle)
    if first == 0:
        preload = max(preload, W_s / hw.dram_bytes_per_cycle)
    des = _play(net, hw, layers, groups, n, r, cyc, preload)
    # No segment beats the rate at which its servers move its bytes (DESIGN.md section 6).
    cross_in = [ei for l in layers for ei in net.in_edges[l] if net.edges[ei].src < first]
    B_in = float(sum(net.edges[ei].elems * db for ei in cross_in))
    net_in = float(sum(net.in_bytes_net[-1 - net.edges[ei].src] for ei in cross_in
                       if net.edges[ei].src < 0 and net.first_use[net.edges[ei].src] == ei))
    W_reads = float(sum(net.W[l] * (n if rs_of[l] else 1) for l in layers))
    B_out = float(sum(gr.glb_tile * n for gr in groups if gr.kind == "out"))
    net_out = float(sum(net.out_bytes[l] for l in layers if net.net_out[l]))
    bounds = {
        "glb": (B_in + B_out + W_s + W_reads + net_in) / hw.glb_bytes_per_cycle,
        "dram": (W_s + net_in + net_out) / hw.dram_bytes_per_cycle,
        "distribution": max(B_in + W_reads, B_out) / hw.distribution_bytes_per_cycle,
        "link": float(seg_loads.max(initial=0.0)) / hw.link_bytes_per_cycle,
    }
    lat = max(des["latency"], max(bounds.values()))
    steady = 0.0
    if n > 1:
        ends = des["ends"][last]
        steady = (ends[-1] - ends[0]) / (n - 1)
    return {
        "first": first, "last": last, "n_tiles": n, "latency_cycles": lat,
        "schedule_cycles": des["latency"], "bound_cycles": bounds,
        "steady_cycles": steady, "fill_cycles": lat - preload - (n - 1) * steady,
        "preload_cycles": preload, "max_link_bytes": float(seg_loads.max(initial=0.0)),
        "byte_hops": seg_bh, "dist_byte_hops": dist_bh, "delivered": delivered,
        "loads": seg_loads, "no_fit": no_fit, "bad_reduction": bad_red,
        "restream": restream, "units": [int(nu[l]) for l in layers],
        "compute_cycles": [int(cyc[l]) for l in layers], "groups": groups,
        "compute_ends": des["ends"], "unit_origins": unit_o,
    }


def _play(net: _Net, hw: Hardware, layers, groups, n, r, cyc, t0) -> dict:
    """Discrete-event schedule of one segment's tiles; time 0 = segment start, t0 = preload."""
    link_free = np.zeros(n_links(hw))
    srv = {"glb": 0.0, "dram": 0.0, "dist_in": 0.0, "dist_out": 0.0}
    bw = hw.link_bytes_per_cycle
    played = [gi for gi, gr in enumerate(groups) if gr.tile_loads is not None]
    idx = {}
    dur = {}
    for gi in played:
        gr = groups[gi]
        nz = np.flatnonzero(groups[gi].tile_loads > 0)
        idx[gi], dur[gi] = nz, gr.tile_loads[nz] / bw
    # dependencies of compute(l, t): (group, function t -> needed tile of that group)
    deps = {l: [] for l in layers}
    outs = {l: [] for l in layers}
    psum = {}  # layer -> its partial-sum group: its tiles' outputs exist once it completes
    for gi in played:
        gr = groups[gi]
        if gr.kind == "edge":
            rl, rp = r[gr.dst], r[gr.src]
            deps[gr.dst].append((gi, lambda t, l=gr.dst, rl=rl, rp=rp: _needed_tile(net, l, t, n, rl, rp)))
            outs[gr.src].append(gi)
        elif gr.kind == "glb_in":
            rs = _cdiv(net.src_rows(gr.src), n)  # the producer's rows split into n tiles
            deps[gr.dst].append((gi, lambda t, l=gr.dst, rs=rs: _needed_tile(net, l, t, n, r[l], rs)))
        elif gr.kind == "weights":  # re-streamed: tile t's copy before compute(l, t)
            deps[gr.dst].append((gi, lambda t: t))
        elif gr.kind == "psum":
            psum[gr.src] = gi
        else:
            outs[gr.src].append(gi)
    done = {gi: np.zeros(n, bool) for gi in played}
    prefix = {gi: 0 for gi in played}  # tiles 0..prefix-1 of the group have arrived
    for gi in played:  # a re-streamed weight's tile-0 copy arrived with the preload
        if groups[gi].kind == "weights":
            done[gi][0], prefix[gi] = True, 1
    next_tile = {l: 0 for l in layers}
    busy = {l: False for l in layers}
    ends = {l: np.zeros(n) for l in layers}
    heap = []
    last_time = t0
    READY, COMPLETE, CDONE = 1, 0, 0

    def push(time, prio, tile, key, kind, payload):
        heapq.heappush(heap, (time, prio, tile, key, kind, payload))

    # GLB inputs and re-streamed weights are double-buffered: the first `ahead` tiles are
    # issued at segment start, tile j + ahead when the consumer finishes tile j (ahead = 2 plus
    # the rows of look-ahead the consumer's first tile needs), so they queue on the links with
    # the segment's other transfers instead of claiming them for every tile up front.
    prefetch = {l: [] for l in layers}
    for gi in played:
        gr = groups[gi]
        if gr.kind in ("glb_in", "weights"):
            need0 = next(need for g2, need in deps[gr.dst] if g2 == gi)(0)
            ahead = 2 + max(0, int(need0))
            prefetch[gr.dst].append((gi, ahead))
            for t in range(prefix[gi], min(n, ahead)):
                push(t0, READY, t, gi, "ready", (gi, t))

    def try_start(l, now):
        if busy[l] or next_tile[l] >= n:
            return
        t = next_tile[l]
        for gi, need in deps[l]:
            if prefix[gi] <= need(t):
                return
        busy[l] = True
        push(now + cyc[l], CDONE, t, 10**6 + l, "cdone", (l, t))

    for l in layers:  # layers whose inputs are all in the schedule already (none wait)
        try_start(l, t0)

    while heap:
        now, _, _, _, kind, payload = heapq.heappop(heap)
        last_time = max(last_time, now)
        if kind == "ready":
            gi, t = payload
            gr = groups[gi]
            fin = now
            ix = idx[gi]
            if ix.size:
                st = np.maximum(link_free[ix], now)
                f = st + dur[gi]
                link_free[ix] = f
                fin = max(fin, float(f.max()))
            for name, b, rate in (("glb", gr.glb_tile, hw.glb_bytes_per_cycle),
                                  ("dram", gr.dram_tile, hw.dram_bytes_per_cycle),
                                  ("dist_in", gr.dist_in_tile, hw.distribution_bytes_per_cycle),
                                  ("dist_out", gr.dist_out_tile, hw.distribution_bytes_per_cycle)):
                if b > 0:
                    st = max(srv[name], now)
                    srv[name] = st + b / rate
                    fin = max(fin, srv[name])
            fin += hw.router_latency_cycles * gr.max_hops
            push(fin, COMPLETE, t, gi, "complete", (gi, t))
        elif kind == "complete":
            gi, t = payload
            done[gi][t] = True
            while prefix[gi] < n and done[gi][prefix[gi]]:
                prefix[gi] += 1
            if groups[gi].kind == "psum":
                for go in outs[groups[gi].src]:
                    push(now, READY, t, go, "ready", (go, t))
            if groups[gi].dst is not None:
                try_start(groups[gi].dst, now)
        else:  # compute done
            l, t = payload
            ends[l][t] = now
            busy[l] = False
            next_tile[l] += 1
            for gi in ([psum[l]] if l in psum else outs[l]):
                push(now, READY, t, gi, "ready", (gi, t))
            for gi, ahead in prefetch[l]:
                if t + ahead < n:
                    push(now, READY, t + ahead, gi, "ready", (gi, t + ahead))
            try_start(l, now)
    assert all(next_tile[l] == n for l in layers), "schedule deadlocked"
    return {"latency": float(last_time), "ends": ends}


def pe_map(model: Model, hw: Hardware, placement: Placement, segment_index: int) -> np.ndarray:
    """PE -> layer map of one segment (values: layer index inside the segment)."""
    p = placement.numpy()
    seg_end = np.asarray(p.seg_end, bool).copy()
    seg_end[-1] = True
    a, b = seg_ranges(seg_end)[segment_index]
    if b - a + 1 <= hw.n_units:
        return segment_map(p.share[a:b + 1], int(p.org[b]), hw.rows, hw.cols, hw.unit_rows,
                           hw.unit_cols)
    m = np.full((hw.rows, hw.cols), -1, np.int32)  # too deep: overlapping units, last wins
    for k, o in enumerate(_units(hw, p.share[a:b + 1], int(p.org[b]))):
        for y, x in o:
            m[y:y + hw.unit_rows, x:x + hw.unit_cols] = k
    return m


def link_loads(model: Model, hw: Hardware, placement: Placement, segment_index: int) -> np.ndarray:
    """Whole-inference bytes on every directed link (layout: `link_layout`) for one segment."""
    keep = {"segment": segment_index}
    evaluate(model, hw, placement, _keep=keep)
    return keep["loads"]

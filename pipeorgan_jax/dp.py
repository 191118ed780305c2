"""Dynamic programming over segment boundaries, on segments scored directly.

Every candidate segment [a, b] (depth <= the space's max_depth) gets `batch_size` inner
choices (granularity, organization, shares, partitions) per round: all of them where a
segment has that few (depth 1), random ones in the first round, mutations of its best so far
in later rounds (a per-segment local search). Segments are scored on windows of the model
(cost/segment.py): a window row tiles D consecutive layers with segments, and every segment
in it is a candidate, so `segment_plan` packs the targets into as few rows as it can. The DP
then picks the boundaries minimizing the sum of segment values: latency, energy, or for EDP
the scalarization latency + lam * energy, each with its own GLB spill (the whole-network
spill, a maximum over segments, is not additive; the final placement is scored whole).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from pipeorgan_jax.cost.segment import segment_row
from pipeorgan_jax.counting import layer_words, mix
from pipeorgan_jax import objective as objectives
from pipeorgan_jax.objective import INFEASIBLE_PENALTY
from pipeorgan_jax.placement import MAX_SHARE, Placement, repair_parts


def tiling(n_layers: int, depth: int, offset: int) -> np.ndarray:
    """seg_end for segments of `depth` layers starting at offset (a shorter first one)."""
    seg_end = np.zeros(n_layers, bool)
    seg_end[np.arange(offset - 1, n_layers, depth)[np.arange(offset - 1, n_layers, depth) >= 0]] = True
    seg_end[n_layers - 1] = True
    return seg_end


def enumerated(seg_end: np.ndarray, space, depth: int) -> Placement:
    """Every inner choice of a depth-`depth` segment, applied to every segment of a tiling."""
    L = len(seg_end)
    ends = np.flatnonzero(seg_end)
    starts = np.concatenate([[0], ends[:-1] + 1])
    choices = space.enumerate_inner(depth)
    B = len(choices)
    gran, org = np.zeros((B, L), np.int32), np.zeros((B, L), np.int32)
    share, part = np.ones((B, L), np.int32), np.zeros((B, L), np.int32)
    for i, (g, o, sh, pa) in enumerate(choices):
        for a, b in zip(starts, ends):
            k = b - a + 1  # a shorter first segment takes the choice's last k layers
            gran[i, a:b + 1], org[i, a:b + 1] = g, o
            share[i, a:b + 1] = sh[-k:] if len(sh) >= k else sh[0]
            part[i, a:b + 1] = pa[-k:]
    return Placement(np.broadcast_to(seg_end, (B, L)).copy(), gran, org, share, part)


def segment_plan(n_layers: int, window: int, max_depth: int):
    """Window rows that hold every segment of depth <= max_depth at least once.

    Returns (a0 [P], seg_end [P, window], segs [S, 4]: row, local start, depth, first
    layer, n_cover). Each row is a window of `window` layers starting at a0, tiled with
    segments not yet covered where they fit (so most rows hold two or three candidates; every
    segment in a row is scored). The first n_cover rows tile the whole network, so a search
    stopped by its budget after them still has a placement; every later row opens with a
    target segment not yet covered."""
    L, W, D = n_layers, window, max_depth
    covered = np.zeros((L, D + 1), bool)
    a0s, ends, segs = [], [], []

    def fill(x, end, row):
        while x < end:
            r = end - x
            e = r if r <= D and not covered[x, r] else next(
                (e for e in range(min(D, r), 0, -1) if not covered[x, e]), min(D, r))
            row.append((x, e))
            covered[x, e] = True
            x += e

    def add(a0, row):
        k = len(a0s)
        a0s.append(a0)
        se = np.zeros(W, bool)
        for x, e in row:
            se[x - a0 + e - 1] = True
            segs.append((k, x - a0, e, x))
        ends.append(se)

    for c in range(0, L, W):  # the cover: consecutive windows (the last one shifted back)
        row: list = []
        a0 = min(c, L - W)
        fill(a0, c, row)
        fill(c, min(c + W, L), row)
        add(a0, row)
    n_cover = len(a0s)
    for d in range(D, 0, -1):
        for a in range(L - d + 1):
            if covered[a, d]:
                continue
            a0 = max(min(a, L - W), 0)
            row = []
            fill(a0, a, row)
            row.append((a, d))
            covered[a, d] = True
            fill(a + d, a0 + W, row)
            add(a0, row)
    return (np.asarray(a0s, np.int32), np.asarray(ends), np.asarray(segs, np.int64).reshape(-1, 4),
            n_cover)


def best_tiling(L: int, D: int, best: dict, H: int = 1) -> Placement:
    """The DP over segment boundaries: the tiling of L layers into segments of depth <= D
    minimizing the sum of segment values, each segment its stored best choice. `best` maps
    (first, last) to (value, fields): value a scalar or [H] (H problems at once, e.g. the
    points of a co-design sweep), fields 4 arrays (gran, org, share, part), [depth] or
    [H, depth]. Returns a Placement, [L] fields or [H, L] with H values."""
    f = np.full((H, L + 1), np.inf)
    f[:, 0] = 0.0
    arg = np.zeros((H, L + 1), int)
    for b in range(1, L + 1):
        for d in range(1, min(D, b) + 1):
            cand = best.get((b - d, b - 1))
            if cand is None:
                continue
            tot = f[:, b - d] + cand[0]
            better = tot < f[:, b]
            f[:, b] = np.where(better, tot, f[:, b])
            arg[:, b] = np.where(better, b - d, arg[:, b])
    if not np.isfinite(f[:, L]).all():
        raise RuntimeError("dp: the scored segments do not tile the network")
    seg_end = np.zeros((H, L), bool)
    fields = [np.zeros((H, L), np.int32) for _ in range(4)]
    for h in range(H):
        b = L
        while b > 0:
            a = arg[h, b]
            seg_end[h, b - 1] = True
            for fi, v in zip(fields, best[(a, b - 1)][1]):
                fi[h, a:b] = v[h] if np.ndim(v) == 2 else v
            b = a
    return Placement(seg_end, *fields)


class _Rows:
    """One round's window rows for a block of plan rows, `batch` placements each."""

    def __init__(self, prob, a0, seg_end, segs, batch):
        self.a0, self.seg_end, self.segs, self.B = a0, seg_end, segs, batch
        n, W = seg_end.shape
        self.glob = np.minimum(np.repeat(a0, batch)[:, None] + np.arange(W), prob.n_layers - 1)

    def random(self, prob) -> list[np.ndarray]:
        s, rng = prob.space, prob.rng
        N, W = self.glob.shape
        part = rng.choice(np.asarray(s.parts, np.int32), (N, W))
        return [rng.choice(np.asarray(s.grans, np.int32), (N, W)),
                rng.choice(np.asarray(s.orgs, np.int32), (N, W)),
                (rng.integers(1, MAX_SHARE + 1, (N, W)) if s.shares is None
                 else rng.choice(np.asarray(s.shares), (N, W))).astype(np.int32),
                repair_parts(rng, part, s.parts, prob.red_ok[self.glob])]

    def totals(self, v: np.ndarray) -> np.ndarray:
        """[n, B]: per-segment values v [S, B] (rows.segs order) summed over each row's
        segments."""
        out = np.zeros((len(self.a0), self.B))
        np.add.at(out, self.segs[:, 0], v)
        return out

    def placement(self, fields) -> Placement:
        return Placement(np.repeat(self.seg_end, self.B, 0), *fields)


def _mutation_mask(rng, B: int, d: int, rate: float) -> list[np.ndarray]:
    """Which (row, layer) of each field (gran, org, share, part) of a depth-d segment keep
    the best's value. Only choices the cost reads are drawn: granularity and organization at
    the segment's last layer, shares where d > 1, every partition; each is redrawn with
    probability `rate`, and a row that would redraw none redraws one (a copy of the best is
    a wasted row); row 0 keeps everything."""
    n = 2 + (d if d > 1 else 0) + d
    keep = rng.random((B, n)) >= rate
    none = keep.all(1)
    keep[none, rng.integers(0, n, int(none.sum()))] = False
    keep[0] = True
    full = np.ones((B, d), bool)
    last = lambda c: np.concatenate([full[:, :-1], c[:, None]], 1)
    share = keep[:, 2:2 + d] if d > 1 else full
    return [last(keep[:, 0]), last(keep[:, 1]), share, keep[:, n - d:]]


class Candidates:
    """Each candidate segment's best inner choice so far, harvested from scored window rows,
    and the DP over boundaries that assembles the best whole placement from them.

    A segment's value is its latency, its energy, or latency + lam * energy (EDP's
    scalarization), each with its own GLB spill; infeasible segments are penalized."""

    def __init__(self, prob, lam: Optional[float] = None):
        self.prob, self.lam = prob, lam
        self.L, self.W = prob.n_layers, prob.scorer.window_depth()
        self.D = min(prob.space.max_depth, prob.n_units, self.W)
        self.best: dict[tuple[int, int], tuple[float, float, float, tuple]] = {}

    def values(self, rows: _Rows, rec: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(value, latency, energy, infeasible), each [S, B]: every segment of the rows
        (rows.segs) in every one of the rows' B placements, with its own GLB spill; value
        unpenalized."""
        prob, ha = self.prob, self.prob.scorer.ha
        k, s, d, a = rows.segs.T
        n, B, Wd = len(rows.a0), rows.B, rows.seg_end.shape[1]
        at = lambda name: rec[name].reshape(n, B, Wd)[k, :, s].astype(np.float64)  # [S, B]
        if "seg_latency" in rec:  # the kernel's window Costs (Scorer.score_windows)
            lat, en, bad = at("seg_latency"), at("seg_energy"), at("seg_feasible") == 0
        else:  # SegmentCost records, each segment with its own GLB spill
            spill = 2.0 * np.maximum(at("live_bytes") - float(ha.glb), 0.0)
            lat = at("latency_cycles") + spill / float(ha.dram_bw)
            en = sum(at(f) for f in ("energy_mac_pj", "energy_pe_sram_pj", "energy_noc_pj",
                                     "energy_glb_pj", "energy_dram_pj")) + spill * float(ha.e_dram)
            bad = sum(rec[f].reshape(n, B, Wd)[k, :, s] for f in ("too_deep", "no_fit", "bad_red")) > 0
        w = objectives.log_weights(prob.objective)  # (1, 0): latency; (0, 1): energy
        v = lat if w[1] == 0 else en if w[0] == 0 else lat + (self.lam or 0.0) * en
        return v, lat, en, bad

    def harvest(self, rows: _Rows, p: Placement, rec: dict, count_rows: bool = True, values=None):
        """Keep each segment's best inner choice among the rows' evaluations of it (values:
        `values(rows, rec)` where the caller has them already)."""
        prob, best = self.prob, self.best
        k, s, d, a = rows.segs.T
        n, B, Wd = len(rows.a0), rows.B, rows.seg_end.shape[1]
        v, lat, en, bad = self.values(rows, rec) if values is None else values
        v = np.where(bad, v * INFEASIBLE_PENALTY, v)
        pick = np.argmin(v, axis=1)
        fields = [np.asarray(f).reshape(n, B, Wd) for f in p.fields()[1:]]
        for j in range(len(k)):
            key, i = (int(a[j]), int(a[j] + d[j] - 1)), pick[j]
            if key not in best or v[j, i] < best[key][0]:
                best[key] = (float(v[j, i]), float(lat[j, i]), float(en[j, i]),
                             tuple(f[k[j], i, s[j]:s[j] + d[j]].copy() for f in fields))
        # honest counts: every segment evaluation, and distinct (layers, inner choices)
        words = layer_words(p, offset=np.repeat(rows.a0, B)).reshape(n, B, Wd)
        with np.errstate(over="ignore"):
            cs = np.concatenate([np.zeros((n, B, 1), np.uint64), np.cumsum(words, 2, dtype=np.uint64)], 2)
            h = cs[k, :, s + d] - cs[k, :, s] + mix(a * 1_000_003 + a + d - 1 + (1 << 40))[:, None]
        if count_rows:
            prob.tally.rows += len(p.seg_end)
        prob.tally.add_segments(h)

    def score(self, rows: _Rows, fields):
        """Score window rows exactly and harvest them; their `values`."""
        p = rows.placement(fields)
        rec = self.prob.scorer.score_windows(np.repeat(rows.a0, rows.B), p, group=rows.B)
        vals = self.values(rows, rec)
        self.harvest(rows, p, rec, values=vals)
        self.prob.step()
        return vals

    def add_seeds(self, seeds):
        """Score seed placements whole, and each of their segments as a candidate: read off
        the whole placement's cost where the kernel scored it, else from window rows (one
        per segment, all of a seed's in one batch)."""
        L, W = self.L, self.W
        for sp in seeds or []:
            sp = sp.numpy()
            one = Placement(*(np.asarray(f)[None] for f in sp.fields()))
            _, c = self.prob.score(one, by_segments=True)
            ends = np.flatnonzero(sp.seg_end)
            starts = np.concatenate([[0], ends[:-1] + 1])
            keep = ends - starts + 1 <= W
            starts, ends = starts[keep], ends[keep]
            if self.prob.scorer.resolved_backend == "kernel":
                rows = _Rows(self.prob, np.zeros(1, np.int32), one.seg_end,
                             np.stack([np.zeros_like(starts), starts, ends - starts + 1, starts], 1), 1)
                self.harvest(rows, one, c, count_rows=False)  # prob.score counted it
                continue
            placed = [segment_row(L, W, int(a), int(b - a + 1)) for a, b in zip(starts, ends)]
            a0 = np.asarray([x[0] for x in placed], np.int32)
            rows = _Rows(self.prob, a0, np.stack([x[1] for x in placed]),
                         np.stack([np.arange(len(a0)), starts - a0, ends - starts + 1, starts], 1), 1)
            p = rows.placement([np.stack([np.asarray(f)[a:a + W] for a in a0]) for f in sp.fields()[1:]])
            self.harvest(rows, p, self.prob.scorer.score_windows(a0, p))
            self.prob.step()

    def solve(self) -> Placement:
        """The boundaries minimizing the sum of segment values, each segment its best choice;
        scored whole (by its segments) into the Problem."""
        p = best_tiling(self.L, self.D, {k: (v[0], v[3]) for k, v in self.best.items()})[0]
        self.prob.score(Placement(*(x[None] for x in p.fields())), by_segments=True)
        return p


def scalarizations(prob, seed_placements) -> Optional[list[float]]:
    """The weights lam of `latency + lam * energy` that stand in for a non-additive objective
    (each segment-scoring search runs once per lam and the Problem keeps the best whole
    placement; None for latency or energy, which are additive). r = latency / energy of the
    first seed (1e-4 without one). EDP: lam = r x (0.25, 1, 4). weighted:a (latency^(1-a) x
    energy^a): its tangent at the seed, a / (1 - a) x r, x (0.5, 1, 2)."""
    a = objectives.energy_weight(prob.objective)
    if prob.objective != "edp" and (a is None or a <= 0 or a >= 1):
        return None
    lb = prob.score(seed_placements[0], by_segments=True)[1] if seed_placements else None
    r = float(lb["latency_cycles"][0]) / float(lb["energy_pj"][0]) if lb else 1e-4
    if prob.objective == "edp":
        return [r * f for f in (0.25, 1.0, 4.0)]
    return [a / (1 - a) * r * f for f in (0.5, 1.0, 2.0)]


def per_scalarization(search, prob, seed_placements, lam, budget_s: float) -> bool:
    """Run `search(lam, budget_s)` once per scalarization (lam None: `scalarizations`), the
    i-th of n within a cumulative i/n of the budget (a Problem's elapsed time counts from
    its start). False, running nothing, where the objective is additive or lam is given."""
    lams = scalarizations(prob, seed_placements) if lam is None else None
    if not lams:
        return False
    for i, x in enumerate(lams):
        search(x, budget_s * (i + 1) / len(lams) if budget_s else 0.0)
    return True


def dp(prob, batch_size: int = 256, rounds: int = 2, budget_s: float = 0.0,
       seed_placements: Optional[list[Placement]] = None, lam: Optional[float] = None,
       mutation: float = 0.15):
    """Dynamic programming over segment boundaries (module docstring) on a search.Problem;
    returns its SearchResult. Seed placements (e.g. a baseline's best) add their segments as
    candidates, so the result is never worse than a seed on an additive objective."""
    if per_scalarization(lambda x, b: dp(prob, batch_size, rounds, b, seed_placements, x, mutation),
                         prob, seed_placements, lam, budget_s):
        return prob.result("dp")

    cands = Candidates(prob, lam)
    cands.add_seeds(seed_placements)
    a0, seg_end, segs, n_cover = segment_plan(cands.L, cands.W, cands.D)
    D = cands.D
    small = {d: _enumerated_rows(prob.space, d, batch_size) for d in range(1, D + 1)
             if prob.space.inner_choices(d) <= batch_size}
    block = max(1, prob.scorer.WINDOW_BLOCK * 4 // batch_size)  # plan rows per call
    # after round 0, rows whose segments were all enumerated have nothing left to find
    open_ = np.zeros(len(a0), bool)
    open_[segs[~np.isin(segs[:, 2], list(small)), 0]] = True
    for r in range(rounds):
        todo = np.arange(len(a0)) if r == 0 else np.flatnonzero(open_)
        for lo in range(0, len(todo), block):
            if prob.out_of_time(budget_s) and (r > 0 or lo >= n_cover):
                break
            rows = plan_rows(prob, a0, seg_end, segs, todo[lo:lo + block], batch_size)
            fields = rows.random(prob)
            B = batch_size
            for k, s, d, a in rows.segs:
                sl = (slice(k * B, (k + 1) * B), slice(s, s + d))
                got = cands.best.get((int(a), int(a + d - 1)))
                if r == 0 and d in small:  # every inner choice (repeated to fill the batch)
                    for f, v in zip(fields, small[d]):
                        f[sl] = v
                elif r > 0 and got is not None and d in small:  # known exhaustively
                    for f, bf in zip(fields, got[3]):
                        f[sl] = bf[None, :]
                elif r > 0 and got is not None:  # mutate around the best; row 0 is the best
                    keep = _mutation_mask(prob.rng, B, d, mutation)
                    for f, bf, kp in zip(fields, got[3], keep):
                        f[sl] = np.where(kp, bf[None, :], f[sl])
            cands.score(rows, fields)
    cands.solve()
    return prob.result("dp")


def _enumerated_rows(space, d: int, batch: int) -> list[np.ndarray]:
    """Every inner choice of a depth-d segment, repeated to fill `batch` rows: gran, org,
    share, part as [batch, d] arrays."""
    ch = space.enumerate_inner(d)
    idx = np.arange(batch) % len(ch)
    return [np.asarray([[ch[i][0]] * d for i in idx]), np.asarray([[ch[i][1]] * d for i in idx]),
            np.asarray([ch[i][2][-d:] if len(ch[i][2]) >= d else (ch[i][2][0],) * d for i in idx]),
            np.asarray([ch[i][3] for i in idx])]


def plan_rows(prob, a0, seg_end, segs, sel, batch: int) -> _Rows:
    """The plan rows `sel` (indices into segment_plan's rows), `batch` placements each."""
    where = np.full(len(a0), -1)
    where[sel] = np.arange(len(sel))
    sg = segs[where[segs[:, 0]] >= 0]
    sg[:, 0] = where[sg[:, 0]]
    return _Rows(prob, a0[sel], seg_end[sel], sg, batch)

"""Honest search counters (DESIGN.md section 7): distinct whole-network placements scored, and
for strategies that score segments, segment evaluations and distinct segments.

Placements are identified by a 64-bit hash of their *effective* choices: granularity and
organization are read only at a segment's last layer and a one-layer segment takes every unit
whatever its share, so two placements that differ only there are one placement and count once.
Hashes are sums of per-(layer, choice) random words, so a segment's hash is a difference of
prefix sums and every segment of a batch is hashed at once.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from pipeorgan_jax.placement import GRAN_ROWS, MAX_SHARE, Placement

_N_CODES = 2 * len(GRAN_ROWS) * 4 * (MAX_SHARE + 1) * 3  # seg_end x gran x org x share x part


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a well-spread 64-bit word per input (uint64 wrap-around)."""
    x = np.asarray(x, np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def layer_words(p: Placement, offset=None) -> np.ndarray:
    """[B, L] uint64: one random word per (layer position, effective choice of that layer).
    `offset` ([B]): the model layer of each row's first column, for rows that are windows
    of the model (cost/segment.py)."""
    seg_end, gran, org, share, part = (np.asarray(f).reshape(-1, np.shape(p.seg_end)[-1])
                                       for f in p.fields())
    seg_end = seg_end.astype(bool)
    L = seg_end.shape[1]
    # index of each layer's segment end, and whether its segment is one layer deep
    pos = np.where(seg_end, np.arange(L), L - 1)
    end = np.minimum.accumulate(pos[:, ::-1], axis=1)[:, ::-1]
    prev_end = np.concatenate([np.ones((len(seg_end), 1), bool), seg_end[:, :-1]], 1)
    alone = seg_end & prev_end
    g = np.take_along_axis(gran, end, 1).astype(np.int64)
    o = np.take_along_axis(org, end, 1).astype(np.int64)
    s = np.where(alone, 1, share).astype(np.int64)
    code = (((seg_end.astype(np.int64) * len(GRAN_ROWS) + g) * 4 + o) * (MAX_SHARE + 1) + s) * 3 \
        + part.astype(np.int64)
    pos = np.arange(L, dtype=np.int64) + (0 if offset is None else np.asarray(offset, np.int64)[:, None])
    return mix(code + pos * _N_CODES)


def placement_hashes(p: Placement) -> np.ndarray:
    """[B] uint64 hash of each whole-network placement."""
    with np.errstate(over="ignore"):
        return layer_words(p).sum(1, dtype=np.uint64)


def segment_hashes(p: Placement, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """[B, S] uint64 hash of segment [starts[j], ends[j]] (with its inner choices) of each row."""
    w = layer_words(p)
    with np.errstate(over="ignore"):
        cs = np.concatenate([np.zeros((len(w), 1), np.uint64), np.cumsum(w, 1, dtype=np.uint64)], 1)
        span = cs[:, ends + 1] - cs[:, starts]
        return span + mix(np.asarray(starts, np.int64) * 1_000_003 + ends + (1 << 40))[None]


@dataclasses.dataclass
class Tally:
    """What a search (or several sharing one Tally, e.g. the three spaces of one model) scored.

    rows: batch rows sent to the batch model (padding excluded); placements: distinct
    whole-network placements among them; segment_evaluations: segments whose cost a
    segment-scoring strategy (dp) read off those rows; distinct_segments: distinct
    (layer range, inner choices) among them.
    """
    rows: int = 0
    segment_evaluations: int = 0
    _seen: set = dataclasses.field(default_factory=set, repr=False)
    _merged: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.uint64), repr=False)
    _pending: list = dataclasses.field(default_factory=list, repr=False)
    _pending_n: int = 0

    def add_placements(self, p: Placement) -> int:
        """Count a scored batch; returns how many of its placements were new."""
        h = placement_hashes(p)
        self.rows += len(h)
        before = len(self._seen)
        self._seen.update(h.tolist())
        return len(self._seen) - before

    def add_segments(self, hashes: np.ndarray) -> None:
        self.segment_evaluations += int(np.size(hashes))
        # unique per batch keeps memory at the distinct count; merged lazily
        u = np.unique(hashes)
        self._pending.append(u)
        self._pending_n += len(u)
        if self._pending_n > max(1 << 20, len(self._merged)):
            self._merge()

    def _merge(self) -> None:
        """Fold the pending batches into the sorted distinct hashes: a stable sort of two
        sorted runs is a linear merge, so a count costs O(new), not a re-sort of everything."""
        if not self._pending:
            return
        c = np.concatenate([self._merged, np.unique(np.concatenate(self._pending))])
        c.sort(kind="stable")
        self._merged = c[np.concatenate([[True], c[1:] != c[:-1]])] if len(c) else c
        self._pending, self._pending_n = [], 0

    @property
    def placements(self) -> int:
        return len(self._seen)

    @property
    def distinct_segments(self) -> int:
        self._merge()
        return len(self._merged)

"""Whole-network placements as fixed-shape arrays (docs/cost_model.md, "Placement").

A `Placement` is a pytree; a batch of them is the same pytree with a leading batch axis on
every field. Sampling, validation and decoding live here; scoring is in cost/.
"""
from __future__ import annotations

from typing import Optional

import jax.numpy as jnp
import numpy as np
from flax import struct

from pipeorgan_jax.organization import ORGANIZATIONS

GRAN_ROWS = (1, 2, 4, 8, 16, 32, 0)  # 0 = the whole tensor
GRAN_NAMES = tuple("whole" if g == 0 else f"{g} rows" for g in GRAN_ROWS)
PARTITIONS = ("spatial", "channel", "hybrid", "reduction")
REDUCTION = 3  # input channels over units: only for fc, matmul and 1x1 conv (Layer.reduction_ok)
MAX_SHARE = 64


@struct.dataclass
class Placement:
    seg_end: jnp.ndarray  # bool[..., L]
    gran: jnp.ndarray  # int32[..., L], read at a segment's last layer
    org: jnp.ndarray  # int32[..., L], read at a segment's last layer
    share: jnp.ndarray  # int32[..., L] in 1..MAX_SHARE
    part: jnp.ndarray  # int32[..., L]

    @property
    def batch_size(self) -> int:
        return 1 if self.seg_end.ndim == 1 else self.seg_end.shape[0]

    def __getitem__(self, i) -> "Placement":
        return Placement(*(np.asarray(f)[i] for f in self.fields()))

    def fields(self):
        return (self.seg_end, self.gran, self.org, self.share, self.part)

    def numpy(self) -> "Placement":
        return Placement(*(np.asarray(f) for f in self.fields()))


def stack(placements: list[Placement]) -> Placement:
    return Placement(*(np.stack([np.asarray(f) for f in fs])
                       for fs in zip(*(p.fields() for p in placements))))


def concat(batches: list[Placement]) -> Placement:
    return Placement(*(np.concatenate([np.asarray(f) for f in fs])
                       for fs in zip(*(p.fields() for p in batches))))


def segments(seg_end: np.ndarray) -> list[tuple[int, int]]:
    """[(first, last)] layer ranges of one placement's segments."""
    ends = np.flatnonzero(np.asarray(seg_end))
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [(int(a), int(b)) for a, b in zip(starts, ends)]


def layer_by_layer(n_layers: int, gran: int = 6, part: Optional[np.ndarray] = None,
                   org: int = 0) -> Placement:
    """Every layer its own segment (no pipelining)."""
    return Placement(
        seg_end=np.ones(n_layers, bool), gran=np.full(n_layers, gran, np.int32),
        org=np.full(n_layers, org, np.int32), share=np.ones(n_layers, np.int32),
        part=np.zeros(n_layers, np.int32) if part is None else np.asarray(part, np.int32))


def layer_by_layer_grid(n_layers: int) -> tuple[Placement, list[tuple[int, int]]]:
    """Layer-by-layer placements, one per (granularity, partition): row k applies `rows[k]` to
    every layer (an intra-layer sweep of every layer at once)."""
    rows = [(g, q) for g in range(len(GRAN_ROWS)) for q in range(len(PARTITIONS))]
    full = lambda v: np.repeat(np.asarray(v, np.int32)[:, None], n_layers, 1)
    p = Placement(seg_end=np.ones((len(rows), n_layers), bool), gran=full([g for g, _ in rows]),
                  org=full([0] * len(rows)), share=full([1] * len(rows)),
                  part=full([q for _, q in rows]))
    return p, rows


def sample(rng: np.random.Generator, n_layers: int, batch: int, max_depth: int = 8,
           orgs=(0, 1, 2, 3), grans=tuple(range(len(GRAN_ROWS))),
           parts=(0, 1, 2, 3), max_units: Optional[int] = None,
           shares: Optional[tuple] = None, red_ok: Optional[np.ndarray] = None) -> Placement:
    """Random valid placements: segment depths uniform in 1..max_depth. With `red_ok` (per
    layer: the reduction partition applies, `Layer.reduction_ok`), layers it does not apply to
    draw from the other partitions; without it, no layer draws the reduction partition."""
    if red_ok is None:
        parts = tuple(q for q in parts if q != REDUCTION) or parts
    max_depth = max(1, min(max_depth, max_units or max_depth))
    # segment ends = running sums of depths drawn uniformly in 1..max_depth
    ends = np.cumsum(rng.integers(1, max_depth + 1, (batch, n_layers)), axis=1) - 1
    seg_end = np.zeros((batch, n_layers + 1), bool)
    np.put_along_axis(seg_end, np.minimum(ends, n_layers), True, axis=1)
    seg_end = seg_end[:, :n_layers]
    seg_end[:, -1] = True
    part = rng.choice(np.asarray(parts, np.int32), (batch, n_layers))
    return Placement(
        seg_end=seg_end,
        gran=rng.choice(np.asarray(grans, np.int32), (batch, n_layers)),
        org=rng.choice(np.asarray(orgs, np.int32), (batch, n_layers)),
        share=(rng.integers(1, MAX_SHARE + 1, (batch, n_layers)) if shares is None
               else rng.choice(np.asarray(shares), (batch, n_layers))).astype(np.int32),
        part=repair_parts(rng, part, parts, red_ok))


def repair_parts(rng: np.random.Generator, part: np.ndarray, parts, red_ok) -> np.ndarray:
    """Redraw the reduction partition, from the other allowed ones, where it does not apply."""
    if red_ok is None:
        return part
    other = np.asarray([q for q in parts if q != REDUCTION] or [2], np.int32)
    bad = (part == REDUCTION) & ~np.asarray(red_ok, bool)
    return np.where(bad, rng.choice(other, part.shape), part).astype(np.int32)


def validate(p: Placement, n_layers: int, n_units: int) -> list[str]:
    """What is wrong with one placement; empty when it is valid."""
    p = p.numpy()
    errs = []
    for name, f in zip(("seg_end", "gran", "org", "share", "part"), p.fields()):
        if f.shape != (n_layers,):
            errs.append(f"{name} has shape {f.shape}, expected ({n_layers},)")
    if errs:
        return errs
    if not p.seg_end[-1]:
        errs.append("seg_end: the last layer must end a segment")
    if ((p.gran < 0) | (p.gran >= len(GRAN_ROWS))).any():
        errs.append(f"gran: values must be in 0..{len(GRAN_ROWS) - 1}")
    if ((p.org < 0) | (p.org >= len(ORGANIZATIONS))).any():
        errs.append(f"org: values must be in 0..{len(ORGANIZATIONS) - 1}")
    if ((p.share < 1) | (p.share > MAX_SHARE)).any():
        errs.append(f"share: values must be in 1..{MAX_SHARE}")
    if ((p.part < 0) | (p.part >= len(PARTITIONS))).any():
        errs.append(f"part: values must be in 0..{len(PARTITIONS) - 1}")
    for a, b in segments(p.seg_end):
        if b - a + 1 > n_units:
            errs.append(f"segment {a}..{b} has {b - a + 1} layers but the array has "
                        f"only {n_units} allocation units")
    return errs


def decode(p: Placement, layer_names: list[str], n_units: Optional[int] = None) -> list[dict]:
    """Readable per-segment description of one placement."""
    from pipeorgan_jax.organization import units_per_layer
    p = p.numpy()
    out = []
    for a, b in segments(p.seg_end):
        seg = {
            "layers": layer_names[a:b + 1],
            "depth": b - a + 1,
            "granularity": GRAN_NAMES[int(p.gran[b])],
            "organization": ORGANIZATIONS[int(p.org[b])],
            "share": [int(v) for v in p.share[a:b + 1]],
            "partition": [PARTITIONS[int(v)] for v in p.part[a:b + 1]],
        }
        if n_units is not None and b - a + 1 <= n_units:
            seg["units"] = [int(v) for v in units_per_layer(p.share[a:b + 1], n_units)]
        out.append(seg)
    return out

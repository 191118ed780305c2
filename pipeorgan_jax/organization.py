"""Spatial organizations: where each layer's units sit on the array (docs/cost_model.md).

An organization is a curve (an order of the unit slots) plus an assignment (which slot the
m-th unit of the segment's k-th layer takes). The NumPy functions here are the definition;
`slots_jax` is the same assignment in jax.numpy for the batch model.
"""
from __future__ import annotations

import numpy as np

ORGANIZATIONS = ("blocked", "blocked_snake", "interleaved", "clustered")
CURVES = ("raster", "snake", "column_snake", "cluster")
# organization -> (curve, interleaved assignment?)
_ORG = {0: (0, False), 1: (1, False), 2: (2, True), 3: (3, True)}
ORG_CURVE = np.array([_ORG[i][0] for i in range(4)], np.int32)
ORG_INTERLEAVED = np.array([_ORG[i][1] for i in range(4)], bool)


def curve(name: str, gh: int, gw: int) -> np.ndarray:
    """Unit positions [U, 2] = (unit row, unit col) in the curve's slot order."""
    if name == "raster":
        return np.array([(k // gw, k % gw) for k in range(gh * gw)], np.int32)
    if name == "snake":
        return np.array([(k // gw, k % gw if (k // gw) % 2 == 0 else gw - 1 - k % gw)
                         for k in range(gh * gw)], np.int32)
    if name == "column_snake":
        return np.array([(k % gh if (k // gh) % 2 == 0 else gh - 1 - k % gh, k // gh)
                         for k in range(gh * gw)], np.int32)
    if name == "cluster":
        if gh % 2 or gw % 2:
            return curve("snake", gh, gw)
        out = []
        for cy, cx in curve("snake", gh // 2, gw // 2):
            for dy, dx in ((0, 0), (0, 1), (1, 1), (1, 0)):
                out.append((2 * cy + dy, 2 * cx + dx))
        return np.array(out, np.int32)
    raise ValueError(f"unknown curve {name!r}")


def curves(gh: int, gw: int) -> np.ndarray:
    """All curves stacked: [4, U, 2]."""
    return np.stack([curve(c, gh, gw) for c in CURVES])


def units_per_layer(shares: np.ndarray, n_units: int) -> np.ndarray:
    """Units per layer of one segment from integer shares (exact integer arithmetic)."""
    w = np.asarray(shares, np.int64)
    d = len(w)
    s = np.cumsum(w)
    free = n_units - d
    cum = (free * s) // s[-1]
    prev = np.concatenate([[0], cum[:-1]])
    return 1 + cum - prev


def interleave_perm(n_units: int) -> np.ndarray:
    """Slot of the v-th interleaved position: van der Corput (bit-reversal) order of the slots.

    Interleaving is contiguous assignment in this permuted order: a layer holding positions
    [start, start + n) gets slots spread evenly along the curve, and consecutive layers' m-th
    units land next to each other (for two equal layers, alternate slots).
    """
    bits = max(1, int(np.ceil(np.log2(n_units))))
    rev = [int(format(i, f"0{bits}b")[::-1], 2) for i in range(1 << bits)]
    return np.array([r for r in rev if r < n_units], np.int32)


def slots(n: np.ndarray, interleaved: bool) -> list[np.ndarray]:
    """Slot index of each unit m of each layer k of a segment with units per layer n."""
    n = np.asarray(n, np.int64)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    contiguous = [start[k] + np.arange(n[k]) for k in range(len(n))]
    if not interleaved:
        return contiguous
    perm = interleave_perm(int(n.sum()))
    return [perm[c] for c in contiguous]


def chunk_owner(n: int, n_units: int) -> np.ndarray:
    """Unit (0..n-1) holding chunk q (0..n_units-1) of a position-split layer with n units:
    the first n_units mod n units hold one chunk more, in order."""
    b, r = divmod(n_units, n)
    return np.repeat(np.arange(n), [b + 1] * r + [b] * (n - r))


def segment_map(shares: np.ndarray, org: int, rows: int, cols: int, unit_rows: int,
                unit_cols: int) -> np.ndarray:
    """PE -> layer map [rows, cols] for one segment (values are the layer's index in it)."""
    gh, gw = rows // unit_rows, cols // unit_cols
    n = units_per_layer(shares, gh * gw)
    pos = curve(CURVES[ORG_CURVE[org]], gh, gw)
    pe_map = np.full((rows, cols), -1, np.int32)
    for k, sl in enumerate(slots(n, bool(ORG_INTERLEAVED[org]))):
        for s in sl:
            uy, ux = pos[s]
            pe_map[uy * unit_rows:(uy + 1) * unit_rows, ux * unit_cols:(ux + 1) * unit_cols] = k
    return pe_map


def render_png(pe_map: np.ndarray, path: str, labels: list[str] | None = None,
               title: str = "") -> None:
    """Save a PE -> layer map as a PNG, one color per layer."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    k = int(pe_map.max()) + 1
    cmap = plt.get_cmap("tab20", max(k, 1))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(pe_map, cmap=cmap, vmin=-0.5, vmax=k - 0.5, interpolation="nearest")
    ax.set_xlabel("PE column")
    ax.set_ylabel("PE row")
    ax.set_title(title or "PE -> layer map")
    if labels:
        handles = [Patch(color=cmap(i), label=labels[i]) for i in range(min(k, len(labels)))]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""Best placements on disk: `placements/<model>.json`, one file per model with, per space, the
placement's arrays (one JSON list per Placement field, exactly what the batch model reads), its
decoded per-segment form and the cost it had when it was found."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeorgan_jax.placement import Placement, decode

FORMAT = "pipeorgan_jax.placements/1"
FIELDS = ("seg_end", "gran", "org", "share", "part")


class PlacementFileError(ValueError):
    pass


def to_doc(model, best: dict, costs: dict, hardware: dict, n_units: int, **meta) -> dict:
    """best: {space: Placement}; costs: {space: {quantity: value}}."""
    names = [l.name for l in model.layers]
    spaces = {}
    for space, p in best.items():
        p = p.numpy()
        spaces[space] = {
            **{f: np.asarray(getattr(p, f)).tolist() for f in FIELDS},
            "decoded": decode(p, names, n_units),
            "cost": {k: float(v) for k, v in costs[space].items() if np.ndim(v) == 0},
        }
    return {"format": FORMAT, "model": model.name, "model_path": model.path, "layers": names,
            "hardware": hardware, **meta, "spaces": spaces}


def save(path: Path, doc: dict) -> None:
    from pipeorgan_jax.runfiles import write_json_atomic
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, doc)


def load(path) -> tuple[dict, dict[str, Placement]]:
    """(the file's document, {space: Placement}) from a file written by `save`."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PlacementFileError(f"{path}: cannot read a placement file: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise PlacementFileError(f"{path}: not a placement file (expected format {FORMAT!r})")
    out = {}
    for space, d in doc["spaces"].items():
        L = len(doc["layers"])
        arrays = [np.asarray(d[f], bool if f == "seg_end" else np.int32) for f in FIELDS]
        if any(a.shape != (L,) for a in arrays):
            raise PlacementFileError(f"{path}: space {space!r}: every field needs {L} values")
        out[space] = Placement(*arrays)
    return doc, out

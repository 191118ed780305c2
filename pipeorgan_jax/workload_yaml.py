"""Writing a loaded model back as a workload YAML file (docs/workload_format.md).

`task=import` uses this so that a model read from ONNX, a MAESTRO `.m` file, a layer table or
traced from JAX becomes a file a user can read, edit and version: one line per layer, fields
at their defaults left out, the importer's notes kept on their layers. Loading the written file
gives the same layers, shapes, MACs and edges (tests/test_onnx_import.py checks this).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from pipeorgan_jax.workload import _OPTIONAL, _REQUIRED, Model


def to_doc(model: Model) -> dict:
    """The workload document of a model: what `build_model` needs to rebuild it."""
    source = dict(model.source)
    notes = source.pop("notes", {}) or {}
    doc: dict = {"name": model.name}
    if model.description:
        doc["description"] = model.description
    if source:
        doc["source"] = source
    if model.data_bytes != 1:
        doc["data_bytes"] = model.data_bytes
    doc["inputs"] = [{"name": n, "shape": list(s)}
                     for n, s in zip(model.input_names, model.input_shapes)]
    layers = []
    for layer in model.layers:
        spec = {"name": layer.name, "op": layer.op, "inputs": list(layer.inputs)}
        defaults = _OPTIONAL[layer.op]
        for k in (*_REQUIRED[layer.op], *defaults):  # the order docs/workload_format.md uses
            v = layer.params.get(k)
            if v is not None and not (k in defaults and defaults[k] == v):
                spec[k] = v
        if layer.ref is not None:
            spec["ref"] = layer.ref
        if layer.inferred:
            spec["inferred"] = list(layer.inferred)
        if layer.name in notes:
            spec["note"] = notes[layer.name]
        layers.append(spec)
    doc["layers"] = layers
    return doc


def _flow(d: dict) -> str:
    return yaml.safe_dump(d, default_flow_style=True, sort_keys=False, width=1 << 30).strip()


def dumps(doc: dict) -> str:
    """YAML text in the style of the built-in model files: one flow mapping per layer."""
    head = {k: doc[k] for k in ("name", "description", "source", "data_bytes") if k in doc}
    text = yaml.safe_dump(head, sort_keys=False, default_flow_style=False, width=100)
    text += "inputs:\n" + "".join(f"  - {_flow(i)}\n" for i in doc["inputs"])
    text += "layers:\n" + "".join(f"  - {_flow(l)}\n" for l in doc["layers"])
    return text


def write(model: Model, path) -> Path:
    path = Path(path)
    path.write_text(dumps(to_doc(model)))
    return path

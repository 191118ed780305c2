"""Loading a model by built-in name or by file, whatever its format.

The formats: a workload YAML (workload.py, docs/workload_format.md), a layer table (.csv or
a YAML with `table`) or a MAESTRO .m file (importers.py), an ONNX graph (onnx_import.py).
Every problem with a file is a one-line WorkloadError naming it. `python -m
pipeorgan_jax.loading FILE_OR_NAME ...` prints a summary of each.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from pipeorgan_jax.workload import MODELS_DIR, Model, WorkloadError, build_model, parse_yaml, read_text, summarize


def load_model(path_or_name: str | Path, onnx_unsupported: str = "error") -> Model:
    """Load a model by built-in name (`GE_FBNet_C`) or by path (.yaml, .csv layer table, .m,
    .onnx; `onnx_unsupported` is what an ONNX op without a mapping does: error | passthrough).
    Any problem with the file is a one-line WorkloadError."""
    path = resolve_model_path(path_or_name)
    try:
        return _load(path, onnx_unsupported)
    except WorkloadError:
        raise
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError) as e:
        # a slip of the checks is still one line naming the file, never a traceback
        raise WorkloadError(f"{path}: malformed workload ({type(e).__name__}: "
                            f"{' '.join(str(e).split())})") from None


def _load(path: Path, onnx_unsupported: str = "error") -> Model:
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from pipeorgan_jax import onnx_import
        return onnx_import.load_onnx(path, onnx_unsupported)
    if suffix in (".csv",) or (suffix in (".yaml", ".yml") and _is_layer_table_yaml(path)):
        from pipeorgan_jax import importers
        return importers.load_layer_table(path)
    if suffix == ".m":
        from pipeorgan_jax import importers
        models = importers.load_maestro(path)
        if len(models) != 1:
            raise WorkloadError(f"{path}: holds {len(models)} networks; load it as a scenario")
        return models[0]
    doc = parse_yaml(path, read_text(path))
    return build_model(doc, str(path))


def _is_layer_table_yaml(path: Path) -> bool:
    try:
        doc = yaml.safe_load(read_text(path))
    except (yaml.YAMLError, WorkloadError, RecursionError):
        return False  # load_model reports it
    return isinstance(doc, dict) and "table" in doc and "layers" not in doc


def builtin_models() -> list[str]:
    return sorted(p.stem for p in MODELS_DIR.glob("*.yaml"))


def resolve_model_path(path_or_name: str | Path) -> Path:
    p = Path(path_or_name)
    if p.suffix and p.exists():
        return p
    cand = MODELS_DIR / f"{path_or_name}.yaml"
    if cand.exists():
        return cand
    if p.suffix:
        raise WorkloadError(f"{p}: no such file")
    raise WorkloadError(f"unknown model '{path_or_name}'; built-in models: "
                        f"{', '.join(builtin_models())}")


def _main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m pipeorgan_jax.loading FILE_OR_NAME [...]", file=sys.stderr)
        return 2
    rc = 0
    for a in argv:
        try:
            m = load_model(a)
        except WorkloadError as e:
            print(f"error: {e}", file=sys.stderr)
            rc = 1
            continue
        s = summarize(m)
        print(f"{m.name}: {s['layers']} layers, {s['edges']} edges, {s['skip_edges']} skip "
              f"({s['inferred_edges']} inferred), {s['macs']:,} MACs, "
              f"{s['weight_elems']:,} weights, A/W {s['aw_min']:.3g}..{s['aw_max']:.3g}")
    return rc


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

"""Which devices score placements, and how a batch is spread over them: a 1-D mesh whose one
axis, "batch", splits every placement field's leading axis; the model and hardware tables are
replicated. On one device this is plain single-device execution."""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

CHOICES = ("all", "cpu", "gpu")


class DeviceError(ValueError):
    pass


def select_devices(kind: str = "all") -> list:
    """`all`: every device of JAX's default backend (the GPUs when there are any); `cpu` or
    `gpu`: every device of that platform."""
    kind = getattr(kind, "value", kind)
    if kind == "all":
        return jax.devices()
    if kind not in CHOICES:
        raise DeviceError(f"device must be one of {CHOICES}, got {kind!r}")
    try:
        return jax.devices(kind)
    except RuntimeError as e:  # no such backend in this jax install
        raise DeviceError(f"device={kind}: no {kind} device is visible to JAX ({e}). For GPUs, "
                          f"install the [gpu] extra: pip install '.[gpu]'") from None


def batch_mesh(devices) -> tuple[NamedSharding, NamedSharding]:
    """(sharding that splits the leading axis over the devices, replicated sharding)."""
    mesh = Mesh(np.asarray(list(devices)), ("batch",))
    return NamedSharding(mesh, PartitionSpec("batch")), NamedSharding(mesh, PartitionSpec())

"""The run folder's files: strict JSON, atomic rewrites, safe file names, and a lock.

Everything a run writes goes through here so that three promises hold in one place:
- a reader never sees a half-written file (write to a temporary file, then `os.replace`);
- JSON is strict: a number that does not apply or cannot be computed is `null`, never a bare
  `NaN` / `Infinity` (which `json.loads` in other languages rejects);
- one run folder has one writer (an advisory lock held for the whole run).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Optional

LOCK_NAME = ".pipeorgan.lock"


class RunFolderBusy(RuntimeError):
    """Another live process holds the run folder's lock."""


def clean(obj: Any) -> Any:
    """A JSON-ready copy: numpy scalars and arrays as Python values, non-finite floats as None."""
    import numpy as np
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Strict JSON (allow_nan=False after `clean`), written atomically."""
    write_text_atomic(path, json.dumps(clean(obj), indent=1, allow_nan=False))


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_filename(name: str, max_len: int = 80) -> str:
    """A file-name stem for any model or layer name: letters, digits and `._+-` only, no
    leading dot, bounded length; a changed name gets a short hash so two names never collide."""
    s = _UNSAFE.sub("_", str(name)).lstrip(".")[:max_len] or "_"
    if s != name:
        s += "-" + hashlib.sha1(str(name).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return s


class RunLock:
    """An exclusive advisory lock on a run folder (fcntl.flock on `<dir>/.pipeorgan.lock`).

    The kernel drops it when the process ends, however it ends, so a killed run never leaves a
    stale lock behind; the file itself may stay and only records the last holder's pid."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        import fcntl
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise RunFolderBusy(f"run folder {self.folder} is in use by another run (pid "
                                f"{holder}, lock {self.path}); wait for it or choose another "
                                "hydra.run.dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

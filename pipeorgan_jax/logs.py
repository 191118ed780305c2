"""Logging helpers named in conf/hydra/job_logging/pipeorgan.yaml: the terminal shows results
on stdout and problems on stderr, the job's log file gets both with time stamps."""
from __future__ import annotations

import logging


class BelowLevel(logging.Filter):
    """Pass records below `level` only (stdout gets INFO; WARNING and up go to stderr)."""

    def __init__(self, level: str = "WARNING"):
        super().__init__()
        self.level = logging.getLevelName(level) if isinstance(level, str) else int(level)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level

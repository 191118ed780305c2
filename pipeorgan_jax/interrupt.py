"""SIGINT / SIGTERM: stop with one line and exit 130 / 143, never a traceback or a crash.

Why not Python's default KeyboardInterrupt: it unwinds from wherever the main thread is, most
often from inside an XLA compile (`backend.compile_and_load`), and the interpreter then
finalizes while XLA's compile and runtime threads are still alive; tearing the PJRT client
down under them segfaulted in 2 of 5 tries (faulthandler: the main thread with no Python
frame, i.e. during interpreter shutdown). So: the handler raises `Interrupted` (a
BaseException, so no `except Exception` swallows it), the explore loop saves what it has, and
`exit_now` flushes and leaves with `os._exit`, skipping the interpreter teardown that crashes.
A second signal while saving exits at once (the results files are rewritten atomically, so
they hold the last finished model either way). An exception raised from a signal handler can
be swallowed when the signal lands in a finalizer (`__del__`, a weakref callback: Python
prints "Exception ignored in ..." and goes on): so the flag is also checked between models
(`pending`), and a grace timer exits if the main thread has not finished within
GRACE_S seconds.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading

SIGNALS = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class Interrupted(BaseException):
    def __init__(self, signum: int):
        super().__init__(SIGNALS.get(signum, str(signum)))
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return SIGNALS.get(self.signum, str(self.signum))


GRACE_S = 20.0
_state: dict = {"hit": None}


def _handler(signum, frame):
    name = SIGNALS.get(signum, str(signum))
    if _state["hit"] is not None:
        # a second signal while saving: leave now, without teardown
        exit_now(128 + signum, f"interrupted again by {name}; exiting")
    _state["hit"] = signum
    t = threading.Timer(GRACE_S, exit_now, (128 + signum, f"interrupted by {name}"))
    t.daemon = True
    t.start()
    raise Interrupted(signum)


def pending() -> None:
    """Raise Interrupted if a signal came but its exception was swallowed on the way."""
    if _state["hit"] is not None:
        raise Interrupted(_state["hit"])


def install() -> None:
    """Route SIGINT and SIGTERM to `Interrupted` (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _state["hit"] = None
    for s in SIGNALS:
        # a signal ignored at start (nohup, a background job of a non-interactive shell)
        # stays ignored, as the user asked
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, _handler)


def exit_now(code: int, message: str) -> None:
    """One line to stderr, flush everything, exit without interpreter teardown."""
    try:
        sys.stdout.flush()
        print(f"\n{message}" if message else "", file=sys.stderr)
        sys.stderr.flush()
        logging.shutdown()
    finally:
        os._exit(code)

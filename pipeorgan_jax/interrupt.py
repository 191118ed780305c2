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
be swallowed when the signal lands in a finalizer (`__del__`, a gc callback such as JAX's
`_xla_gc_callback`: Python prints "Exception ignored in ..." and goes on): so a
`sys.unraisablehook` drops that message and delivers the signal again, the flag is also checked
between models (`pending`), and a grace timer exits if the main thread has not finished within
GRACE_S seconds.
"""
from __future__ import annotations

import contextlib
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
_state: dict = {"hit": None, "redeliver": False}


def _handler(signum, frame):
    name = SIGNALS.get(signum, str(signum))
    if _state.get("deferred"):
        _state["hit"] = signum  # raised by `deferred` on leaving the fragile step
        return
    if _state["redeliver"]:
        # our own re-delivery of a signal a finalizer swallowed (see _unraisable)
        _state["redeliver"] = False
        raise Interrupted(signum)
    if _state["hit"] is not None:
        # a second signal while saving: leave now, without teardown
        exit_now(128 + signum, f"interrupted again by {name}; exiting")
    _state["hit"] = signum
    t = threading.Timer(GRACE_S, exit_now, (128 + signum, f"interrupted by {name}"))
    t.daemon = True
    t.start()
    raise Interrupted(signum)


def _unraisable(u) -> None:
    """An Interrupted raised inside a finalizer or gc callback (seen: JAX's
    `_xla_gc_callback`) is swallowed by Python with an "Exception ignored" traceback. Print
    nothing and deliver the signal to the main thread again, to surface at its next call."""
    if isinstance(u.exc_value, Interrupted):
        import _thread
        _state["redeliver"] = True
        # from another thread, a moment later: the main thread takes it once out of the
        # finalizer (from this thread it would run the handler here, inside the hook)
        t = threading.Timer(0.005, _thread.interrupt_main, (u.exc_value.signum,))
        t.daemon = True
        t.start()
        return
    _default_unraisable(u)


_default_unraisable = sys.unraisablehook


@contextlib.contextmanager
def deferred():
    """Hold a signal until the block ends. For steps that must not be unwound halfway:
    importing jax (an interrupt inside jaxlib's extension-module initialization was seen to
    segfault, 2 of ~40 tries)."""
    _state["deferred"] = True
    try:
        yield
    finally:
        _state["deferred"] = False
    pending()


def pending() -> None:
    """Raise Interrupted if a signal came but its exception was swallowed on the way."""
    if _state["hit"] is not None:
        raise Interrupted(_state["hit"])


def install() -> None:
    """Route SIGINT and SIGTERM to `Interrupted` (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _state["hit"], _state["redeliver"] = None, False
    sys.unraisablehook = _unraisable
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

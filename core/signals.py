"""Termination signals as exceptions, so that a killed command cleans up like an interrupted one.

Python turns SIGINT into ``KeyboardInterrupt``, which unwinds the stack: ``finally`` blocks
and context managers run, and the atomic writer removes its temporary file. SIGTERM and
SIGHUP kill the process outright by default, leaving that file behind. Inside
``exit_on_signals`` all three unwind the same way.

Forked workers (``--workers N``) inherit the handler. Their parent removes the temporary
file and reports; a worker that also raised would print a traceback of its own, so in a
worker the handler restores the default action and re-sends the signal: the worker dies
at once and says nothing.

Python ignores (prints and drops) an exception raised inside some callbacks: the hooks it
runs around ``fork``, ctypes callbacks such as numba's cache loader. A signal landing there
would be lost and the run would finish as if never signalled. So a signal is also
remembered: ``raise_if_signalled`` raises it again, and the atomic writer calls it before
committing an output; ``deferred`` holds signals back around a fork.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_received: int | None = None  # the signal that arrived inside exit_on_signals, if any
_deferring = 0  # depth of ``deferred`` blocks


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived. A ``BaseException``, like ``KeyboardInterrupt``, so that
    ``except Exception`` blocks do not swallow it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


def _exception(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def raise_if_signalled() -> None:
    """Raise the exception of a signal received inside ``exit_on_signals`` (no-op when
    none was): call it before committing work, so that a signal whose first exception was
    swallowed still stops the run."""
    if _received is not None:
        raise _exception(_received)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold a signal's exception back until the block ends (nothing is raised inside it);
    for code whose callbacks would swallow it, such as ``fork``."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    raise_if_signalled()


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """While the block runs, SIGINT raises ``KeyboardInterrupt`` and SIGTERM / SIGHUP raise
    ``Terminated`` in this process; forked children die silently (see the module docstring).
    Signals already ignored (``nohup``) stay ignored. The previous handlers are restored on
    exit. Outside the main thread, where Python cannot install handlers, the block runs
    unchanged."""
    global _received
    owner = os.getpid()

    def handler(signum: int, frame) -> None:
        global _received
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        _received = signum
        if not _deferring:
            raise _exception(signum)

    try:
        # A signal the caller ignores stays ignored: `nohup` (SIGHUP) and background jobs of
        # non-interactive shells (SIGINT) must survive the hang-up or the interrupt.
        previous = {s: signal.signal(s, handler) for s in HANDLED if signal.getsignal(s) is not signal.SIG_IGN}
    except ValueError:  # not the main thread
        yield
        return
    _received = None
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _received = None

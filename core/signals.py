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

Python runs a signal's handler in the main thread only, between two bytecodes: a kernel
running there holds the handler off until it returns (seconds, on a big input), and if the
handler then runs while numba boxes the kernel's result (numba calls back into Python for
tuples of arrays), its exception is set inside the call and the caller sees ``SystemError:
… returned a result with an exception set``. ``interruptible`` hands such a call to a helper
thread, where no handler ever runs, while the main thread waits: the handler runs at once
and its exception leaves the wait; the kernel, abandoned, dies with the process (helper
threads are daemons, and so are ``DaemonPool``'s, which run blocks of work: a
``ThreadPoolExecutor``'s threads are joined before the interpreter exits). Exiting while a
nogil kernel still runs on a daemon thread is safe: the thread holds no Python state until
the kernel returns, and the process ends first. Any ``SystemError`` of that kind left (a
short kernel called directly) leaves ``exit_on_signals`` as the signal's own exception.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

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
    except SystemError:
        # A handler that ran while a kernel's result was boxed (see the module docstring).
        if _received is not None:
            raise _exception(_received) from None
        raise
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _received = None


# --- long calls and the threads that run them --------------------------------------------

SLICE = 0.25
"""Seconds the main thread waits at a time for a helper (a signal also ends a wait at once
where the platform interrupts lock waits, as POSIX does)."""

LONG = 1 << 24
"""Pixels (or bytes) a kernel call may touch from which the call goes through
``interruptible``: about a tenth of a second of work; a smaller call ends soon enough by
itself, and handing it over would cost more than it saves."""


class _Helper:
    """A daemon thread that runs the calls ``interruptible`` hands it, one at a time."""

    def __init__(self) -> None:
        self._go = threading.Semaphore(0)
        self._done = threading.Semaphore(0)
        self._call: tuple | None = None
        self._outcome: tuple | None = None
        threading.Thread(target=self._serve, name="interruptible", daemon=True).start()

    def _serve(self) -> None:
        while True:
            self._go.acquire()
            fn, args = self._call
            self._call = None
            try:
                self._outcome = (True, fn(*args))
            except BaseException as e:  # raised in the caller's thread
                self._outcome = (False, e)
            del fn, args  # not held while idle: an array over a bytearray would pin its size
            self._done.release()

    def run(self, fn: Callable[..., T], args: tuple) -> T:
        """``fn(*args)``, waited for in slices; a signal's exception leaves the wait."""
        self._call = (fn, args)
        self._go.release()
        while not self._done.acquire(timeout=SLICE):
            pass
        _idle.append(self)  # not reached when a signal ends the wait: the helper is still busy
        ok, value = self._outcome
        self._outcome = None
        if not ok:
            raise value
        return value


_idle: list[_Helper] = []  # helpers waiting for a call (used by the main thread only)
os.register_at_fork(after_in_child=_idle.clear)  # a forked child has none of its parent's threads


def interruptible(fn: Callable[..., T], /, *args: Any, when: bool = True) -> T:
    """``fn(*args)`` (a kernel call that may run long), such that a signal ends the wait for it
    at once: in the main thread the call runs on a helper thread while the main thread waits,
    free to run the signal's handler (see the module docstring); anywhere else, or with
    ``when`` false (a call known to be short: handing it over costs some tens of µs), it
    is called directly.

    >>> interruptible(sum, [1, 2, 3])
    6
    """
    if not when or threading.current_thread() is not threading.main_thread():
        return fn(*args)
    context = contextvars.copy_context()  # the call sees the caller's context variables
    return (_idle.pop() if _idle else _Helper()).run(context.run, (fn, *args))


class DaemonPool:
    """Daemon threads running submitted calls, ``submit(fn, *args) -> Future`` like a
    ``ThreadPoolExecutor``, but whose threads never hold up the interpreter's exit: after a
    signal, ``shutdown(wait=False)`` leaves the calls still running to die with the process."""

    def __init__(self, threads: int, name: str = "pool") -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{k}", daemon=True) for k in range(threads)]
        for t in self._threads:
            t.start()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as e:  # raised by the future's result()
                    future.set_exception(e)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def shutdown(self, wait: bool = True, cancel: bool = False) -> None:
        """Stop the threads once the calls submitted are done, those not started cancelled
        first with ``cancel``; ``wait``: wait for the threads."""
        if cancel:
            with contextlib.suppress(queue.Empty):
                while True:
                    item = self._queue.get_nowait()
                    if item is not None:
                        item[0].cancel()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for t in self._threads:
                t.join()

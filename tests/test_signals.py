"""A command killed by SIGTERM, SIGHUP or SIGINT removes its temporary output, exits
128 + the signal's number with one line on stderr, and leaves no worker behind. Each test
runs ``python cli.py`` as a real process and signals it while the temporary file holds data;
the process is stopped (SIGSTOP) just before, so that the signal arrives mid-write however
fast the machine is. A signal that arrives while a kernel runs for seconds ends the run
within two seconds all the same. Every child starts with the three signals' default
actions, whatever the test runner inherited (``nohup`` ignores SIGHUP)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import default_signals

from core.signals import Terminated, deferred, exit_on_signals, raise_if_signalled
from core.synthetic import Generator, write_set

ROOT = Path(__file__).resolve().parent.parent
COPIES = 60  # each generated image is written this many times under new names


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """Three model CSVs and two map folders of 2048² predictions, large enough that writing
    the output takes many buffer flushes: a few generated images repeated under new names
    (map files hard-linked, so they cost no disk)."""
    base = tmp_path_factory.mktemp("base")
    gen = Generator(n_images=2, n_models=3, seed=3)
    paths = write_set(gen, base, maps={"model1": 64, "model2": 64})
    folder = tmp_path_factory.mktemp("big")
    out = {}
    for m in gen.model_names:
        lines = paths[m].read_text().splitlines()
        rows = [f"c{k}_{line}" for k in range(COPIES) for line in lines[1:]]
        out[m] = folder / f"{m}.csv"
        out[m].write_text(lines[0] + "\n" + "\n".join(rows) + "\n")
    for m in ("model1", "model2"):
        maps = folder / "maps" / m
        maps.mkdir(parents=True)
        for f in paths[f"maps/{m}"].iterdir():
            for k in range(COPIES):
                os.link(f, maps / f"c{k}_{f.name}")
    soft = folder / "soft.yaml"
    soft.write_text(
        yaml.safe_dump(
            {"prob_maps": [{"path": str(folder / "maps" / m)} for m in ("model1", "model2")], "threshold": 0.4}
        )
    )
    return {**out, "soft": soft}


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _holds_data(folder: Path) -> bool:
    """Whether a temporary output in ``folder`` holds data (the empty one that checks the
    folder is writable comes and goes first)."""
    for f in folder.glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if f.stat().st_size > 0:
                return True
    return False


def _niced() -> None:
    """A child's start: default signal actions, niced (so that on a busy machine the test's
    poller still sees the run early, workers alive)."""
    default_signals()
    os.nice(15)


def _kill_mid_write(args: list[str], out_dir: Path, signum: int, group: bool, forks: int):
    """Run ``cli.py ARGS``, wait until its temporary output holds data and ``forks`` worker
    processes run, stop it, send
    ``signum`` (to the process or its whole group), let it go on; returns (exit code,
    stderr, the worker pids seen)."""
    proc = subprocess.Popen(
        [sys.executable, "cli.py", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_niced,
    )
    try:
        deadline = time.monotonic() + 120  # a cold numba cache compiles first
        while not _holds_data(out_dir) or len(_children(proc.pid)) < forks:
            assert proc.poll() is None, f"finished before the signal: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no temporary output appeared"
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGSTOP)
        workers_seen = _children(proc.pid)
        (os.killpg if group else os.kill)(proc.pid, signum)
        os.killpg(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):  # a failed run must not leave workers behind
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode, err, workers_seen


CASES = [
    ("hard", signal.SIGTERM, False, 1),
    ("hard", signal.SIGHUP, False, 1),
    ("hard", signal.SIGTERM, False, 2),
    ("hard", signal.SIGHUP, True, 2),  # a closed terminal signals the whole group
    ("hard", signal.SIGINT, True, 2),  # Ctrl-C, likewise
    ("postprocess", signal.SIGTERM, True, 2),
    ("soft", signal.SIGTERM, False, 2),  # soft's workers are threads
    ("soft-device", signal.SIGTERM, False, 2),  # reader, encoder and writer threads
    ("soft-device", signal.SIGINT, True, 2),
]


@pytest.mark.parametrize(
    ("command", "signum", "group", "workers"),
    CASES,
    ids=[f"{c}-{s.name}-{'group' if g else 'process'}-w{w}" for c, s, g, w in CASES],
)
def test_a_signal_mid_write_leaves_nothing_and_exits_non_zero(big, tmp_path, command, signum, group, workers):
    out = tmp_path / "out.csv"
    args = {
        "hard": ["hard", big["model1"], big["model2"], big["model3"]],
        "postprocess": ["postprocess", big["model1"], "--fill-holes"],
        "soft": ["soft", "--setting", big["soft"]],
        "soft-device": ["soft", "--setting", big["soft"], "--engine", "device", "--device", "cpu"],
    }[command]
    forks = workers if workers > 1 and not command.startswith("soft") else 0
    code, err, workers_seen = _kill_mid_write(
        [*args, "-o", out, "--workers", str(workers)], tmp_path, signum, group, forks
    )
    assert len(workers_seen) == forks
    assert code == 128 + signum, err
    assert list(tmp_path.iterdir()) == []  # no temporary file, no output
    last = err.strip().splitlines()[-1]
    expected = "interrupted" if signum == signal.SIGINT else f"terminated by {signum.name}"
    assert last == f"{expected}; nothing written"
    assert "Traceback" not in err and "ignored" not in err, err
    assert not [p for p in workers_seen if _alive(p)]


# --- the library pieces, in process -------------------------------------------------------


def test_an_ignored_signal_stays_ignored():
    """Under `nohup` SIGHUP is ignored; a run must survive the hang-up, not remove its output."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with exit_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.01)
            raise_if_signalled()  # nothing was received
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # the others are handled
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_handlers_are_restored_and_a_swallowed_signal_still_stops_the_commit(tmp_path):
    from core.atomic import atomic_open

    before = signal.getsignal(signal.SIGTERM)
    with exit_on_signals(), pytest.raises(Terminated) as caught:
        with atomic_open(tmp_path / "o.csv") as fh:
            fh.write("x\n")
            with deferred():  # as in a fork hook: the exception is held back …
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.01)
            pytest.fail("the held-back signal must be raised when the block ends")
    assert caught.value.exit_code == 143 and caught.value.name == "SIGTERM"
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is before
    raise_if_signalled()  # outside the block nothing is pending


def test_the_atomic_writer_does_not_commit_after_a_signal(tmp_path):
    """Python drops exceptions raised in some callbacks; the signal is remembered and the
    writer checks before renaming."""
    import core.signals as sig
    from core.atomic import atomic_open

    with exit_on_signals():
        with pytest.raises(Terminated), atomic_open(tmp_path / "o.csv") as fh:
            fh.write("x\n")
            sig._received = signal.SIGHUP  # what the handler leaves when its exception was dropped
        assert list(tmp_path.iterdir()) == []


def test_stream_reports_a_worker_error_and_a_killed_worker(tmp_path):
    from core.errors import DataError
    from core.stream import write_images

    def work(i: int) -> list[str]:
        if i == 5:
            raise DataError("image 5 is bad")
        return ["1 1"]

    with pytest.raises(DataError, match="image 5 is bad"):
        write_images(tmp_path / "o.csv", ["a"], [f"{i}.png" for i in range(9)], work, workers=2)

    def dies(i: int) -> list[str]:
        if i == 6:
            os.kill(os.getpid(), signal.SIGKILL)
        return ["1 1"]

    with pytest.raises(Terminated) as caught:
        write_images(tmp_path / "o.csv", ["a"], [f"{i}.png" for i in range(9)], dies, workers=2)
    assert caught.value.signum == signal.SIGKILL
    assert list(tmp_path.iterdir()) == []
    n = write_images(tmp_path / "o.csv", ["a"], [f"{i}.png" for i in range(9)], lambda i: [f"{i + 1} 1"], workers=3)
    assert n == 9 and [r.split(",")[2] for r in (tmp_path / "o.csv").read_text().splitlines()[1:]] == [
        f"{i + 1} 1" for i in range(9)
    ]


# --- a signal while a kernel runs -----------------------------------------------------------

BIG = 10_000  # a 10000² canvas: the distance kernels' grid alone is 400 MB …
IN_KERNEL_RSS = 450 << 20  # … so a process this large is inside the cleaning kernel


def _rss(pid: int) -> int:
    """Resident bytes of process ``pid`` (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) << 10
    except OSError:
        pass
    return 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_mid_kernel_ends_the_run_within_two_seconds(tmp_path, signum):
    """One full 10000² mask opened and closed by a disk of radius 3000: one kernel call of
    several seconds in the main thread's stead (``core.signals.interruptible``). The signal,
    sent once the kernel's grid is allocated, ends the run at once: the documented line and
    exit code, no traceback, nothing written."""
    small, big, out = tmp_path / "small.csv", tmp_path / "big.csv", tmp_path / "out.csv"
    small.write_text("image_name,class,rle\na.png,x,1 4096\n")
    big.write_text(f"image_name,class,rle\na.png,x,1 {BIG * BIG}\n")
    rules = ["--classes", "x", "--open", "3000", "--close", "3000", "-q"]
    warm = [sys.executable, "cli.py", "postprocess", small, "-o", tmp_path / "warm.csv", "--height", "64", "--width"]
    subprocess.run([*warm, "64", *rules], cwd=ROOT, check=True, capture_output=True, preexec_fn=default_signals)
    (tmp_path / "warm.csv").unlink()  # the same kernels, now compiled and cached
    proc = subprocess.Popen(
        [sys.executable, "cli.py", "postprocess", big, "-o", out, "--height", str(BIG), "--width", str(BIG), *rules],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_signals,
    )
    try:
        deadline = time.monotonic() + 120
        while _rss(proc.pid) < IN_KERNEL_RSS:
            assert proc.poll() is None, f"finished before the signal: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "the kernel never started"
            time.sleep(0.005)
        sent = time.monotonic()
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert took < 2, f"{took:.1f} s after the signal"
    assert proc.returncode == 128 + signum, err
    expected = "interrupted" if signum == signal.SIGINT else f"terminated by {signum.name}"
    assert err.strip().splitlines() == [f"{expected}; nothing written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv", "small.csv"]


def _spin_kernel():
    """A nogil kernel returning a tuple of arrays (whose boxing calls back into Python) after
    about ``n`` steps."""
    import numba

    @numba.njit(nogil=True)
    def spin(n):
        out = np.zeros(4, np.int64)
        s = 0
        for i in range(n):
            s = (s * 31 + i) % 1000003
        out[0] = s
        return out, out

    spin(10)
    return spin


def _steps_for(seconds: float, spin) -> int:
    """Steps of ``spin`` that take about ``seconds``."""
    n = 1_000_000
    t0 = time.perf_counter()
    spin(n)
    return int(n * seconds / max(time.perf_counter() - t0, 1e-6))


def _signal_after(seconds: float, signum: int = signal.SIGTERM) -> None:
    import threading

    threading.Timer(seconds, os.kill, (os.getpid(), signum)).start()


def test_a_kernel_called_directly_in_the_main_thread_still_ends_with_the_signal():
    """Without ``interruptible``, the handler waits for the kernel, then may run while numba
    boxes its result: the caller would see ``SystemError: … returned a result with an
    exception set``; ``exit_on_signals`` turns that back into the signal."""
    spin = _spin_kernel()
    n = _steps_for(1.0, spin)
    with pytest.raises(Terminated), exit_on_signals():
        _signal_after(0.2)
        spin(n)


def test_interruptible_calls_end_at_once_and_their_helpers_are_reused():
    from core.signals import _idle, interruptible

    spin = _spin_kernel()
    n = _steps_for(5.0, spin)
    assert interruptible(spin, 100)[0][0] == spin(100)[0][0]
    helper = _idle[-1]
    assert interruptible(sum, [1, 2]) == 3 and _idle[-1] is helper  # one helper, reused
    with pytest.raises(ZeroDivisionError):
        interruptible(divmod, 1, 0)  # the call's own error comes back as is
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt), exit_on_signals():
        _signal_after(0.2, signal.SIGINT)
        interruptible(spin, n)
    assert time.monotonic() - t0 < 1.5
    assert helper not in _idle  # still busy: abandoned, never handed another call


def test_block_threads_do_not_hold_the_run_after_a_signal():
    """``core.stream.in_threads`` runs blocks on daemon threads: a signal ends the run
    without waiting for the kernels still running (nor would the interpreter's exit)."""
    from core.stream import in_threads

    spin = _spin_kernel()
    n = _steps_for(5.0, spin)
    t0 = time.monotonic()
    with pytest.raises(Terminated), exit_on_signals():
        _signal_after(0.3)
        with in_threads(lambda k: spin(n), 4) as results:
            list(results)
    assert time.monotonic() - t0 < 1.5

"""Shared helpers for tests: small CSV files and CLI invocation."""

from __future__ import annotations

import signal
from pathlib import Path

from click.testing import CliRunner

import cli

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("a", "b", "c")


def write_csv(path: Path, rows: list[tuple[str, str, str]], header: str = "image_name,class,rle") -> Path:
    path.write_text(header + "\n" + "".join(f"{i},{c},{r}\n" for i, c, r in rows))
    return path


SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)


def default_signals() -> None:
    """``preexec_fn`` of every child process a test starts: SIGHUP, SIGINT and SIGTERM back to
    their default actions, whatever the test runner was started with (under ``nohup`` SIGHUP
    is ignored, in a non-interactive shell's background job SIGINT; a child inherits that,
    and ``core.signals`` rightly keeps an inherited ignore)."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_DFL)


def run_cli(*args: str):
    """Invoke the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(cli.cli, [str(a) for a in args], catch_exceptions=False)


def package_kernels(package: str):
    """Every kernel (and constant) of a package's kernel files, as attributes of one namespace."""
    import importlib
    from types import SimpleNamespace

    from core.jit import kernel_files

    folder = ROOT / package
    found = {}
    for path in kernel_files(folder):
        mod = importlib.import_module(f"{package}.{path.stem}")
        found.update({k: v for k, v in vars(mod).items() if not k.startswith("__")})
    return SimpleNamespace(**found)

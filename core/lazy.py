"""Package attributes loaded on first use (PEP 562), so that importing a package stays as
light as ``python cli.py --help`` needs, while they behave as plain attributes: ``dir``
lists them, ``from package import *`` imports them, and once loaded each is cached in the
package's namespace (so a later import of a submodule cannot shadow it)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module path) on first use and
    keeps the value in the package, and a ``__dir__`` that lists the exports too."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__

"""Class lists: the hand-bone default and user-given lists."""

from __future__ import annotations

from pathlib import Path

from core.errors import UsageError

DEFAULT_CLASSES: tuple[str, ...] = (
    *(f"finger-{i}" for i in range(1, 20)),
    "Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate",
    "Triquetrum", "Pisiform", "Radius", "Ulna",
)


def parse_classes(spec: str | None) -> tuple[str, ...]:
    """Class list from ``--classes``: a file (one name per line, or a YAML list) or a
    comma-separated list; ``None`` gives the 29 hand-bone classes."""
    if spec is None:
        return DEFAULT_CLASSES
    path = Path(spec)
    if path.is_file():
        import yaml

        data = yaml.safe_load(path.read_text())
        if isinstance(data, str):
            names = data.split()
        elif isinstance(data, list):
            names = [str(x) for x in data]
        else:
            raise UsageError(f"{spec}: expected a list of class names")
    else:
        names = [s.strip() for s in spec.split(",") if s.strip()]
    return check_classes(names, spec)


def check_classes(names, where: str) -> tuple[str, ...]:
    """Validate a class list: non-empty, unique names."""
    names = tuple(str(n) for n in names)
    if not names:
        raise UsageError(f"{where}: empty class list")
    seen = set()
    for n in names:
        if n in seen:
            raise UsageError(f"{where}: class {n!r} listed twice")
        seen.add(n)
    return names

"""Class lists: the hand-bone default and user-given lists."""

from __future__ import annotations

from pathlib import Path

from core.errors import UsageError, quoted
from core.inputs import is_file, require_file

CANVAS = 2048
"""Default mask height and width (the hand-bone X-rays are 2048 × 2048)."""

CLASS_CHUNK = 8
"""Classes per step of the soft vote on a device (8 × 2048² float32 = 128 MB a buffer)."""

DEFAULT_CLASSES: tuple[str, ...] = (
    *(f"finger-{i}" for i in range(1, 20)),
    "Trapezium",
    "Trapezoid",
    "Capitate",
    "Hamate",
    "Scaphoid",
    "Lunate",
    "Triquetrum",
    "Pisiform",
    "Radius",
    "Ulna",
)


def parse_classes(spec: str | None) -> tuple[str, ...]:
    """Class list from ``--classes``: a file (one name per line, or a YAML list) or a
    comma-separated list; ``None`` gives the 29 hand-bone classes."""
    if spec is None:
        return DEFAULT_CLASSES
    path = Path(spec)
    if "," not in spec and ("/" in spec or "\\" in spec or path.suffix.lower() in _LIST_SUFFIXES):
        require_file(path, UsageError, "--classes ")
    if is_file(path):
        return check_classes(_read_class_file(path), spec)
    if "," not in spec and (path.suffix.lower() in _LIST_SUFFIXES or "/" in spec or "\\" in spec):
        raise UsageError(f"--classes {spec}: no such file (give a file or comma-separated names)")
    return check_classes([s.strip() for s in spec.split(",") if s.strip()], spec)


_LIST_SUFFIXES = (".txt", ".yaml", ".yml", ".json", ".csv", ".lst")


def _read_class_file(path: Path) -> list[str]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read class list ({e.__class__.__name__})") from None
    except yaml.YAMLError as e:
        raise UsageError(
            f"{path}: not a class list (one name per line, or a YAML list): {str(e).splitlines()[0]}"
        ) from None
    if isinstance(data, str):
        return data.split()
    if isinstance(data, list) and all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in data):
        return [str(x) for x in data]  # check_classes strips
    raise UsageError(f"{path}: expected a list of class names (one per line, or a YAML list of strings)")


def check_classes(names, where: str) -> tuple[str, ...]:
    """Validate a class list: non-empty, unique names (surrounding spaces are dropped, as
    the CSV reader drops them)."""
    names = tuple(str(n).strip() for n in names)
    if not names:
        raise UsageError(f"{where}: empty class list")
    if "" in names:
        raise UsageError(f"{where}: empty class name")
    seen = set()
    for n in names:
        if n in seen:
            raise UsageError(f"{where}: class {quoted(n)} listed twice")
        seen.add(n)
    return names

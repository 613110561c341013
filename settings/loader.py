"""YAML settings files → typed, validated objects with one-line error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ValidationError

from core.errors import UsageError

M = TypeVar("M", bound=BaseModel)


# Settings models are strict (``true`` is not a weight, ``"3"`` not a size), but a class
# may be named by a bare YAML number.
ClassName = Annotated[str, BeforeValidator(lambda v: str(v) if type(v) is int else v)]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; unreadable files and non-mappings raise UsageError."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise UsageError(f"{path}: settings file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read settings ({e.__class__.__name__})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}{at}: invalid YAML ({getattr(e, 'problem', None) or e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def parse_model(model: type[M], data: dict[str, Any], where: str) -> M:
    """Validate ``data`` as ``model``; the first error becomes a one-line UsageError."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise UsageError(f"{where}: {loc}: {msg}{more}") from None


def write_yaml(path: str | Path, data: dict[str, Any], header: str = "") -> None:
    """Write a settings file atomically (``header``: leading comment lines)."""
    import yaml

    from core.atomic import atomic_write_text

    if not Path(path).resolve().parent.is_dir():
        raise UsageError(f"{path}: folder {Path(path).parent} does not exist")
    atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120))

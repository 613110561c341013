"""YAML settings files → typed, validated objects with one-line error messages."""

from __future__ import annotations

import os
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError

from core.errors import NAME_LIMIT, UsageError, did_you_mean, quoted, shown, where
from core.inputs import require_file

M = TypeVar("M", bound=BaseModel)


# Settings models are strict (``true`` is not a weight, ``"3"`` not a size), but a class
# may be named by a bare YAML number.
ClassName = Annotated[str, BeforeValidator(lambda v: str(v) if type(v) is int else v)]


def _stays_in_place(value: str) -> str:
    if not value.strip():
        raise ValueError("empty path")
    if ".." in Path(value).parts:
        raise ValueError(f"{quoted(value)} leaves its folder ('..'); give the place itself")
    return value


def _file_name(value: str) -> str:
    if value in ("", ".", "..") or Path(value).name != value or "\\" in value:
        raise ValueError(f"{quoted(value)} is not a plain file name; the file is written inside save_dir")
    return value


OutputPath = Annotated[str, AfterValidator(_stays_in_place)]
"""A path a settings file names for an output: absolute or relative, never through ``..``."""
FileName = Annotated[str, AfterValidator(_file_name)]
"""A file name without a folder (``output_name``, written inside ``save_dir``)."""


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; unreadable files and non-mappings raise UsageError."""
    import yaml

    p = Path(path)
    require_file(p, UsageError)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise UsageError(f"{where(path)}: settings file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{where(path)}: cannot read settings ({e.__class__.__name__})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = shown(getattr(e, "problem", None) or e, 4 * NAME_LIMIT)
        at = where(path, mark.line + 1 if mark is not None else None)
        raise UsageError(f"{at}: invalid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{where(path)}: expected a mapping of settings, got {type(data).__name__}")
    return data


def parse_model(model: type[M], data: dict[str, Any], label: str) -> M:
    """Validate ``data`` as ``model``; the first error becomes a one-line UsageError naming
    ``label`` (the settings file) and the key (names shown cut and escaped)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(shown(x) for x in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = unknown_key_message(str(err["loc"][-1]), _model_at(model, err["loc"][:-1]))
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise UsageError(f"{where(label)}: {loc}: {msg}{more}") from None


def unknown_key_message(key: str, section: type[BaseModel] | None) -> str:
    """``unknown key (did you mean 'threshold'? valid keys: …)`` for ``section``'s keys."""
    if section is None:
        return "unknown key"
    keys = [f.alias or name for name, f in section.model_fields.items()]
    return f"unknown key ({did_you_mean(key, keys)}valid keys: {', '.join(keys)})"


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The settings model that validated the mapping at ``loc`` (a pydantic error location)
    inside ``model``, following fields through Optional, Annotated, lists and dicts."""
    current: Any = model
    parts = list(loc)
    while parts:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            key = parts.pop(0)
            field = next((f for n, f in current.model_fields.items() if key in (n, f.alias)), None)
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) in (list, dict):
            parts.pop(0)  # an index or a mapping key
            current = get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """``Annotated[X, …]`` → X; a union → its one settings model, or its one list/dict."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        if get_origin(tp) in (Union, UnionType):
            members = [_unwrap(a) for a in get_args(tp) if a is not type(None)]
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            containers = [a for a in members if get_origin(a) in (list, dict)]
            if len(models) == 1:
                return models[0]
            if len(containers) == 1:
                return containers[0]
            return None
        return tp


def write_yaml(path: str | Path, data: dict[str, Any], header: str = "") -> None:
    """Write a settings file atomically (``header``: leading comment lines)."""
    import yaml

    from core.atomic import atomic_write_text

    if not Path(path).resolve().parent.is_dir():
        raise UsageError(f"{path}: folder {Path(path).parent} does not exist")
    atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120))


def load_settings(
    model: type[M], settings: str | os.PathLike | dict[str, Any] | M | None, default_label: str = "settings"
) -> tuple[M, str | None, str]:
    """Settings given as a YAML path, a dict or the typed object, validated into ``model``.
    Returns ``(cfg, path or None, label)``: the label names the settings in messages (the
    path, else ``default_label``)."""
    if isinstance(settings, model):
        return settings, None, default_label
    if settings is None or isinstance(settings, dict):
        return parse_model(model, settings or {}, default_label), None, default_label
    path = str(settings)
    return parse_model(model, load_yaml(path), path), path, where(path)

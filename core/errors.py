"""Errors a user can cause, each carrying the CLI exit code it maps to."""


class ToolError(Exception):
    """A user-facing error: one line, no traceback."""

    exit_code = 1


class InputError(ToolError):
    """An input that cannot be read or is malformed (exit 2)."""

    exit_code = 2


class UsageError(ToolError):
    """Bad flags or settings (exit 2)."""

    exit_code = 2


class DataError(ToolError):
    """Valid files whose contents fail a check (exit 1)."""

    exit_code = 1


def where(path, line=None, image=None, cls=None) -> str:
    """``file:line: image X, class Y`` prefix for error messages."""
    head = str(path) + (f":{line}" if line is not None else "")
    parts = []
    if image is not None:
        parts.append(f"image {image}")
    if cls is not None:
        parts.append(f"class {cls}")
    return head + (": " + ", ".join(parts) if parts else "")


def plural(n: int, noun: str) -> str:
    """``1 image``, ``2 images``, ``1 class``, ``3 classes``, with thousands separators."""
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} {noun}{'es' if noun.endswith(('s', 'sh', 'ch', 'x')) else 's'}"

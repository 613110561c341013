"""Command-line plumbing shared by the commands of ``cli.py``: errors as one line and the
documented exit code, the common options, stderr notes and progress bars, and ``NAME=PATH``
sources. Light at import, like ``cli.py``: heavy imports happen inside the functions."""

from __future__ import annotations

import errno
import functools
import sys

import click

from commands.types import INPUT_FILE, POSITIVE, SIDE, WORKERS, finite_float
from core.errors import InputError, ToolError, UsageError, listing, named_among, printable, quoted, shown
from core.signals import Terminated, exit_on_signals


def exit_code(error: ToolError) -> int:
    """The documented exit code of a library error: 2 for usage errors and unreadable or
    malformed inputs, 1 for data that fails a check."""
    return 2 if isinstance(error, (UsageError, InputError)) else 1


def _flag_prefix(error: ToolError) -> str:
    """The message, a leading parameter name (``weights: …``) said as its flag (``--weights: …``)."""
    text, param = str(error), getattr(error, "param", None)
    ctx = click.get_current_context(silent=True)
    if param and ctx is not None and text.startswith(f"{param}:"):
        for p in ctx.command.params:
            if p.name == param and p.opts[0].startswith("--"):
                return p.opts[0] + text[len(param) :]
    return text


MESSAGE_LIMIT = 4000
"""A message longer than this is cut (names in messages are cut at 80 characters already)."""


def error_line(error: ToolError) -> str:
    """``error: …``: a library error as the command line says it, with its flags, on one line
    (control characters escaped, cut at ``MESSAGE_LIMIT``)."""
    return f"error: {shown(speak_flags(_flag_prefix(error)), MESSAGE_LIMIT)}"


def handle_errors(f):
    """Turn user errors into one line on stderr and the documented exit code; SIGINT,
    SIGTERM and SIGHUP unwind (removing any temporary output) and exit 128 + the signal."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            with exit_on_signals():
                return f(*args, **kwargs)
        except ToolError as e:
            click.echo(error_line(e), err=True)
            sys.exit(exit_code(e))
        except OSError as e:
            if e.errno != errno.ENAMETOOLONG:
                raise
            click.echo(f"error: {shown(e.filename, 320)}: file name too long", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; nothing written", err=True)
            sys.exit(130)
        except Terminated as e:
            click.echo(f"terminated by {e.name}; nothing written", err=True)
            sys.exit(e.exit_code)

    return wrapper


OUTPUT_HELP = (
    "Output CSV (written atomically), or a folder DIR/ (a path ending in /, or an existing folder) of PNGs "
    "named after the image stems: <stem>.png label maps with --exclusive (value k+1 for the k-th class, 0 the "
    "background; 8-bit up to 255 classes, else 16-bit), else <stem>/<class>.png binary masks."
)
"""The help of ``-o`` of the commands that write predictions."""


def shape_options(f):
    f = click.option("--width", type=SIDE, default=None, help="Mask width (default 2048).")(f)
    f = click.option("--height", type=SIDE, default=None, help="Mask height (default 2048).")(f)
    f = click.option(
        "--classes",
        default=None,
        help="Comma-separated class names or a file listing them (default: the 29 hand bones).",
    )(f)
    return f


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, help="No progress or notes on stderr.")(f)


def image_set_options(f):
    """``--expect-images N`` and ``--images-from FILE``. Their values are kept in the click
    context (read back by ``expected_images``) rather than passed as parameters, so that
    adding them leaves the commands' signatures alone."""

    def keep(ctx, param, value):
        ctx.meta[f"images.{param.name}"] = value
        return value

    f = click.option(
        "--images-from",
        type=INPUT_FILE,
        default=None,
        expose_value=False,
        callback=keep,
        help="Image list to compare with: a CSV with an image_name column (e.g. the "
        "sample submission) or one name per line; missing or extra images exit 1.",
    )(f)
    f = click.option(
        "--expect-images",
        type=POSITIVE,
        default=None,
        expose_value=False,
        callback=keep,
        help="Number of images expected; another count exits 1.",
    )(f)
    return f


def expected_images(output: str | None = None):
    """The ``ImageExpectation`` of ``image_set_options`` (``None`` when neither is given);
    the list file may not be the command's ``output``."""
    from core.imageset import ImageExpectation
    from core.label_write import check_prediction_output

    meta = click.get_current_context().meta
    path = meta.get("images.images_from")
    if path and output:
        check_prediction_output(output, [("the --images-from file", path)], click.get_current_context().info_name)
    return ImageExpectation.from_options(meta.get("images.expect_images"), path)


# Words of library messages that the command line says with its flags.
_FLAG_WORDS = {
    "pass allow_duplicate": "pass --allow-duplicate",
    "(allow_duplicate)": "(--allow-duplicate)",
    "missing='empty'": "--missing empty",
    "rules: max_hole needs fill_holes: true": "--max-hole: max_hole needs fill_holes: true (--fill-holes)",
    "(are height and width right?)": "(are --height and --width right?)",
    "give the size as height and width": "give the size with --height/--width",
    "rle_order='column'": "--rle-order column",
    "rle_order='row'": "--rle-order row",
}


def speak_flags(text: str) -> str:
    for word, flag in _FLAG_WORDS.items():
        text = text.replace(word, flag)
    return text


def echo_err(quiet: bool):
    """Notes to stderr (none when ``quiet``), said with the flags, control characters escaped."""
    return (lambda msg: None) if quiet else (lambda msg: click.echo(printable(speak_flags(msg), "\n"), err=True))


def quiet_bar(quiet: bool):
    """The progress factory of the library's jobs: a tqdm bar on stderr."""
    return lambda total, desc, unit="img": _progress(total, quiet, unit, desc)


def _progress(total: int, quiet: bool, unit: str = "img", desc: str | None = None):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, disable=quiet, file=sys.stderr, dynamic_ncols=True, leave=False)


def _unique_names(named: list[tuple[str, str]], flag: str = "--source") -> None:
    seen: dict[str, str] = {}
    for name, path in named:
        if name in seen:
            raise UsageError(
                f"{flag}: two sources named {quoted(name)} ({shown(seen[name], 320)} and {shown(path, 320)}); "
                "name them with NAME=PATH"
            )
        seen[name] = path


def parse_named(values: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--source expects NAME=PATH, got {quoted(v)}")
        out.append((name, path))
    return out


def settings_sources(cfg, inputs, source, where: str) -> dict[str, str]:
    """Source name → path from the settings' ``sources``, positional CSVs and ``--source``
    (the votes' and ``staple``'s settings).
    Positional CSVs next to settings that list ``sources`` are refused: they would add
    voters to a tuned set."""
    from core.sources import source_names

    named = (
        dict(cfg.sources)
        if isinstance(cfg.sources, dict)
        else dict(zip(source_names(cfg.sources), cfg.sources, strict=False))
    )
    if inputs and named:
        raise UsageError(
            f"{where} lists sources ({listing(named)}); positional CSVs would vote next to them: "
            "re-point one with --source NAME=PATH, or remove 'sources' from the settings"
        )
    named.update(zip(source_names(list(inputs)), inputs, strict=False))
    for name, path in parse_named(source):
        flag = f"--source {shown(name)}={shown(path, 320)}"
        if cfg.sources and name not in named:  # a typo must not add a voter to tuned settings
            raise UsageError(f"{flag}: {where} names no source {named_among(name, list(named), 'sources')}")
        if name in named and not cfg.sources:
            raise UsageError(
                f"{flag}: a positional CSV is already named {quoted(name)} ({shown(named[name], 320)}); "
                "give another name"
            )
        named[name] = path  # re-points a named source (or, without settings sources, adds one)
    return named


def file_twice(named: list[tuple[str, str]]) -> str | None:
    from core.sources import same_file_message

    return same_file_message(named)


def vote_command(
    kind,
    inputs,
    source,
    setting,
    output,
    weights,
    threshold,
    min_votes,
    missing,
    workers,
    classes,
    height,
    width,
    quiet,
    allow_duplicate,
):
    """The shell of ``hard`` and ``weighted``: sources from the settings, positional CSVs and
    --source, then one call."""
    from core.classes import parse_classes
    from ensemble.rle_votes import hard_vote, weighted_vote
    from settings.loader import load_settings
    from settings.vote import VoteSettings

    cfg, _, _ = load_settings(VoteSettings, setting, "flags")
    if kind == "hard" and cfg.weights is not None:
        raise UsageError(f"{setting or 'flags'}: 'hard' takes no weights; use 'weighted'")
    named = settings_sources(cfg, inputs, source, setting or "flags")
    if len(named) < 2 and not (len(named) == 1 and kind == "weighted"):
        raise UsageError("need at least two sources (positional CSVs or --source NAME=PATH)")
    out = output_path(output, cfg)
    extra = {"weights": numbers("--weights", weights)} if kind == "weighted" else {}
    result = call(
        weighted_vote if kind == "weighted" else hard_vote,
        named,
        cfg=cfg,
        output=out,
        settings=setting,
        threshold=threshold,
        min_votes=min_votes,
        missing=missing,
        classes=parse_classes(classes) if classes or not cfg.classes else None,
        height=height,
        width=width,
        workers=workers,
        allow_duplicate=allow_duplicate,
        expected_images=expected_images(out),
        echo=echo_err(quiet),
        progress=quiet_bar(quiet),
        **extra,
    )
    echo_cleaning(result)


def vote_options(f):
    from commands.layouts import layout_options

    f = layout_options(exclusive=True, writes=True)(f)
    f = cluster_options(f)
    f = image_set_options(f)
    f = quiet_option(f)
    f = shape_options(f)
    f = click.option(
        "--allow-duplicate",
        is_flag=True,
        help="Let a file given twice (same resolved path) vote twice; otherwise an error.",
    )(f)
    f = click.option("--workers", type=WORKERS, default=None, help="Worker processes (default 1).")(f)
    f = click.option(
        "--missing",
        type=click.Choice(["error", "empty"]),
        default=None,
        help="A row absent from a source: error (default) or an empty vote.",
    )(f)
    f = click.option(
        "--threshold",
        type=finite_float(),
        default=None,
        help="Keep where the vote share (weighted: Σ wᵢ·mᵢ / Σ wᵢ) > T (default 0.5); replaces "
        "the settings' default threshold, per-class thresholds stay.",
    )(f)
    f = click.option(
        "--setting",
        type=INPUT_FILE,
        default=None,
        help="YAML settings; a flag replaces a setting's default, per-class entries stay.",
    )(f)
    f = click.option("--output", "-o", default=None, help=OUTPUT_HELP)(f)
    f = click.option(
        "--source",
        multiple=True,
        metavar="NAME=PATH",
        help="A named source; re-points a source the settings name (positional CSVs next to "
        "settings 'sources' are an error).",
    )(f)
    f = click.argument("inputs", nargs=-1, type=INPUT_FILE)(f)
    return f


def named_sources(positional, source, flag: str = "--source") -> dict[str, str]:
    """Name → path of positional files (named by file stem) and ``--source NAME=PATH``; a
    name given twice is a usage error."""
    from core.sources import source_names

    named = list(zip(source_names(list(positional)), positional)) + parse_named(source)
    _unique_names(named, flag)
    return dict(named)


def command_line(name: str, positional) -> str:
    """The command as typed (``python cli.py NAME …``): ``sys.argv`` when run as ``cli.py``,
    else (called in process: tests, another program) rebuilt from the parsed values."""
    import shlex
    from pathlib import Path

    if Path(sys.argv[0]).name == "cli.py" and sys.argv[1:2] == [name]:
        args = sys.argv[2:]
    else:
        ctx = click.get_current_context()
        args = list(positional)
        for p in ctx.command.params:
            value = ctx.params.get(p.name)
            if not isinstance(p, click.Option) or value in (None, (), False, p.default):
                continue
            if p.is_flag:
                args.append(p.opts[0])
            else:
                args += [x for v in (value if p.multiple else [value]) for x in (p.opts[0], str(v))]
    return f"python cli.py {name} " + " ".join(shlex.quote(str(a)) for a in args)


def output_path(output: str | None, cfg) -> str:
    """``-o/--output``, else the settings' ``output:``; neither is a usage error."""
    out = output or cfg.output
    if not out:
        raise UsageError("no output: give -o/--output or 'output:' in the settings")
    return out


def numbers(flag: str, value: str | None) -> list[float] | None:
    """A flag's comma-separated numbers (``None`` when not given)."""
    if value is None:
        return None
    try:
        return [float(x) for x in value.split(",")]
    except ValueError:
        raise UsageError(f"{flag} expects comma-separated numbers, got {value!r}") from None


def echo_cleaning(result) -> None:
    """The inline cleaning's summary of a job's result, when it had one."""
    if result.cleaning is not None:
        click.echo("postprocess (inline):\n" + "\n".join(result.cleaning))


def nothing_to_do(flags: dict, setting: str | None) -> UsageError:
    """The error of ``postprocess`` when the library finds no rule that changes a mask, said
    with the flags: rules were given that change nothing, or none were given."""
    given = any(v not in (None, False) for k, v in flags.items() if k != "connectivity") or setting
    return UsageError(
        "nothing to do: "
        + (
            "the rules given change no mask (--min-size 1, --min-area 1, --keep-largest 0 and radius 0 are no-ops)"
            if given
            else "give a rule (--keep-largest, --min-size, --fill-holes, --open, --close, --min-area) or --setting"
        )
    )


def cluster_options(f):
    """``--scheduler``, ``--chunk`` and ``--ship-inputs``: run the command on a Dask cluster
    (``cluster/``). Kept in the click context, like ``image_set_options``, so that the
    commands' signatures stay as they are; ``call`` reads them back."""

    def keep(ctx, param, value):
        ctx.meta[f"cluster.{param.name}"] = value
        return value

    f = click.option(
        "--ship-inputs",
        is_flag=True,
        default=False,
        expose_value=False,
        callback=keep,
        help="With --scheduler: read the input CSVs here and send each task its chunk's rows "
        "(workers that do not see the files).",
    )(f)
    f = click.option(
        "--chunk",
        type=POSITIVE,
        default=None,
        expose_value=False,
        callback=keep,
        help="With --scheduler: images per task (default: at most 64, 4 tasks per worker).",
    )(f)
    f = click.option(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        expose_value=False,
        callback=keep,
        help="Run on Dask: tcp://HOST:PORT (a running scheduler) or local:N (N workers "
        "here); default: the settings' scheduler:, else this process.",
    )(f)
    return f


def call(fn, *args, cfg=None, **kwargs):
    """``fn(*args, **kwargs)``, or the same job on the Dask cluster that ``--scheduler`` (or the
    settings' ``scheduler:``) names. Dask is imported only in the second case."""
    meta = click.get_current_context().meta
    scheduler = meta.get("cluster.scheduler") or getattr(cfg, "scheduler", None)
    chunk = meta.get("cluster.chunk") or getattr(cfg, "chunk", None)
    ship = bool(meta.get("cluster.ship_inputs"))
    from commands.layouts import layout_kwargs

    kwargs = {**layout_kwargs(), **kwargs}
    if not scheduler:
        if meta.get("cluster.chunk") or ship:
            raise UsageError("--chunk and --ship-inputs apply to a cluster run: give --scheduler ADDRESS")
        return fn(*args, **kwargs)
    from cluster import run

    return run(fn, *args, scheduler=scheduler, chunk=chunk, ship_inputs=ship, **kwargs)

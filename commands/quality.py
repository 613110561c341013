"""Quality without ground truth: ``staple`` (STAPLE or SIMPLE estimates and fused masks) and
the QA flags that ``check --qa`` writes (``write_qa``)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from commands.common import (
    echo_err,
    file_twice,
    handle_errors,
    quiet_bar,
    quiet_option,
    settings_sources,
    shape_options,
)
from commands.help import HELP
from commands.types import Command, finite_float
from core.atomic import check_outputs
from core.errors import UsageError, plural

_OPEN_UNIT = finite_float(0, min_open=True, maximum=1, max_open=True)


@click.command(cls=Command, help=HELP["staple"])
@click.argument("inputs", nargs=-1, type=click.Path(dir_okay=False))
@click.option(
    "--source",
    multiple=True,
    metavar="NAME=PATH",
    help="A named source; re-points a source the settings name.",
)
@click.option(
    "--setting",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML settings (sources, output, estimates and the keys of the flags below); flags override them.",
)
@click.option("--output", "-o", default=None, help="Fused masks CSV (written atomically).")
@click.option("--estimates", default=None, help="Estimates CSV: per source and class (written atomically).")
@click.option("--method", type=click.Choice(["staple", "simple"]), default=None, help="STAPLE (default) or SIMPLE.")
@click.option(
    "--scope",
    type=click.Choice(["pooled", "image"]),
    default=None,
    help="One estimate per source and class over the whole set (pooled, default) or per image.",
)
@click.option(
    "--region",
    type=click.Choice(["all", "disagreement"]),
    default=None,
    help="STAPLE on every pixel (all, default) or only where the sources disagree.",
)
@click.option(
    "--prior",
    type=click.Choice(["fixed", "estimate"]),
    default=None,
    help="Foreground prior: the sources' mean foreground fraction (fixed, default) or re-estimated.",
)
@click.option(
    "--confidence",
    type=finite_float(0, maximum=1),
    default=None,
    help="Keep a pixel where its posterior >= this (default 0.5).",
)
@click.option("--init-sensitivity", type=_OPEN_UNIT, default=None, help="Initial sensitivity (default 0.99).")
@click.option("--init-specificity", type=_OPEN_UNIT, default=None, help="Initial specificity (default 0.99).")
@click.option(
    "--alpha",
    type=finite_float(0, maximum=1e6),
    default=None,
    help="SIMPLE: drop sources whose Dice < mean - alpha·std (default 1).",
)
@click.option(
    "--missing",
    type=click.Choice(["error", "empty"]),
    default=None,
    help="A row absent from a source: error (default) or an empty mask.",
)
@shape_options
@quiet_option
@handle_errors
def staple(
    inputs,
    source,
    setting,
    output,
    estimates,
    method,
    scope,
    region,
    prior,
    confidence,
    init_sensitivity,
    init_specificity,
    alpha,
    missing,
    classes,
    height,
    width,
    quiet,
):
    from core.classes import parse_classes
    from quality import staple as run_staple
    from settings.loader import load_settings
    from settings.staple import StapleSettings

    cfg, _, _ = load_settings(StapleSettings, setting, "flags")
    where = setting or "flags"
    named = settings_sources(cfg, inputs, source, where)
    if len(named) < 2:
        raise UsageError("need at least two sources (positional CSVs or --source NAME=PATH)")
    twice = file_twice([(f"source {n}", p) for n, p in named.items()])
    if twice:
        raise UsageError(f"{twice}: give each file once")
    out, est = output or cfg.output, estimates or cfg.estimates
    if not out and not est:
        raise UsageError("nothing to write: give -o/--output, --estimates, or 'output:'/'estimates:' in the settings")
    check_outputs(
        [("output", out), ("--estimates", est)],
        [("the settings", setting), *(("an input", p) for p in named.values())],
    )

    def pick(flag, key):
        return flag if flag is not None else getattr(cfg, key)

    note = echo_err(quiet)
    result = run_staple(
        named,
        output=out,
        fuse=bool(out),
        method=pick(method, "method"),
        scope=pick(scope, "scope"),
        region=pick(region, "region"),
        prior=pick(prior, "prior"),
        confidence=pick(confidence, "confidence"),
        init_sensitivity=pick(init_sensitivity, "init_sensitivity"),
        init_specificity=pick(init_specificity, "init_specificity"),
        alpha=pick(alpha, "alpha"),
        max_iter=cfg.max_iter,
        missing=pick(missing, "missing"),
        classes=parse_classes(classes) if classes or not cfg.classes else tuple(cfg.classes),
        height=height or cfg.height,
        width=width or cfg.width,
        echo=note,
        progress=quiet_bar(quiet),
    )
    if est:
        result.write_estimates(est)
    if result.n_missing:
        note(f"note: {plural(result.n_missing, 'missing row')} read as empty masks")
    note(result.table())
    wrote = [f"fused masks → {out}"] if out else []
    wrote += [f"estimates → {est}"] if est else []
    note(
        f"{result.method}: {plural(len(result.names), 'source')}, {plural(len(result.images), 'image')} × "
        f"{plural(len(result.classes), 'class')}; " + "; ".join(wrote)
    )


def write_qa(paths: Sequence[str], output: str, classes, height, width, quiet: bool) -> None:
    """``check --qa``: the QA flags of each prediction file (``quality.qa_flags``) written to
    ``output`` (a ``source`` column first when there are several files: the file's path as
    given), and each file's per-class summary on stderr."""
    from quality import qa_flags, write_flags

    check_outputs([("--qa", output)], [(f"input {p}", p) for p in paths])
    note = echo_err(quiet)
    reports = {}
    for p in paths:
        reports[p] = qa_flags(p, classes=classes, height=height, width=width, echo=note, progress=quiet_bar(quiet))
    if len(paths) == 1:
        write_flags(reports[paths[0]].flags, output)
    else:
        write_flags({p: r.flags for p, r in reports.items()}, output)
    for p, r in reports.items():
        note(f"QA flags of {p} ({plural(len(r.images), 'image')}):\n{r.table()}")
    note(f"QA flags → {output}")

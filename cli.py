"""Command line: ``python cli.py COMMAND …`` (see ``python cli.py --help``).

Commands are thin shells: they parse flags and settings, then call the packages. Heavy
imports (numpy, pandas, numba, torch) happen inside the commands so that ``--help`` and
start-up stay fast.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from core.errors import ToolError, UsageError


def handle_errors(f):
    """Turn user errors into one line on stderr and the documented exit code."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except ToolError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted; nothing written", err=True)
            sys.exit(130)

    return wrapper


def shape_options(f):
    f = click.option("--width", type=click.IntRange(min=1), default=None, help="Mask width (default 2048).")(f)
    f = click.option("--height", type=click.IntRange(min=1), default=None, help="Mask height (default 2048).")(f)
    f = click.option("--classes", default=None,
                     help="Comma-separated class names or a file listing them (default: the 29 hand bones).")(f)
    return f


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, help="No progress or notes on stderr.")(f)


def _echo_err(quiet: bool):
    return (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))


def _progress(total: int, quiet: bool, unit: str = "img", desc: str | None = None):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, disable=quiet, file=sys.stderr,
                dynamic_ncols=True, leave=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Combine and clean segmentation predictions (RLE CSVs, probability maps, models).

    Exit codes: 0 success, 1 invalid data or a failed strict check, 2 usage errors and
    unreadable or malformed inputs.
    """


@cli.command()
@click.argument("submission", type=click.Path(dir_okay=False))
@shape_options
@click.option("--max-problems", default=20, show_default=True, help="Problems listed before a count.")
@quiet_option
@handle_errors
def check(submission, classes, height, width, max_problems, quiet):
    """Validate a submission CSV: columns, every image has every class exactly once, every
    RLE valid (row-major, 1-indexed, ascending, inside HEIGHT×WIDTH). Prints a summary.

    Exit 0 valid, 1 invalid (every problem listed: the first --max-problems and a count),
    2 unreadable.
    """
    from core.check import check_submission
    from core.classes import parse_classes
    from core.jit import compile_notice

    note = _echo_err(quiet)
    compile_notice(note, "core/codec.py")
    report = check_submission(submission, parse_classes(classes), height or 2048, width or 2048)
    if report.preds.paths_stripped:
        note(f"note: {report.preds.paths_stripped} rows name images by path; matched on the basename")
    for p in report.problems[:max_problems]:
        click.echo(str(p))
    if len(report.problems) > max_problems:
        click.echo(f"… and {len(report.problems) - max_problems} more problems")
    status = "valid" if report.valid else f"INVALID ({len(report.problems)} problems)"
    click.echo(f"{submission}: {status}: {report.summary()}")
    sys.exit(0 if report.valid else 1)


def _parse_named(values: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--source expects NAME=PATH, got {v!r}")
        out.append((name, path))
    return out


def _vote_command(kind, inputs, source, setting, output, weights, threshold, min_votes, missing,
                  workers, classes, height, width, quiet):
    from core.classes import check_classes, parse_classes
    from settings.loader import load_yaml, parse_model
    from settings.postprocess import build_cleaner
    from settings.vote import VoteSettings, source_names, threshold_vector, weight_matrix

    where = setting or "flags"
    data = load_yaml(setting) if setting else {}
    cfg = parse_model(VoteSettings, data, where)
    if kind == "hard" and cfg.weights is not None:
        raise UsageError(f"{where}: 'hard' takes no weights; use 'weighted'")
    named = dict(cfg.sources) if isinstance(cfg.sources, dict) else dict(
        zip(source_names(cfg.sources), cfg.sources, strict=False))
    if inputs:
        for name, path in zip(source_names(list(inputs)), inputs, strict=False):
            if name in named:
                name = f"{name}-{len(named) + 1}"
            named[name] = path
    for name, path in _parse_named(source):
        named[name] = path  # re-points a named source or adds one
    if len(named) < 2 and not (len(named) == 1 and kind == "weighted"):
        raise UsageError("need at least two sources (positional CSVs or --source NAME=PATH)")
    out = output or cfg.output
    if not out:
        raise UsageError("no output: give -o/--output or 'output:' in the settings")
    resolved_inputs = {Path(p).resolve() for p in named.values()}
    if Path(out).resolve() in resolved_inputs:
        raise UsageError(f"{out}: output would overwrite an input")
    if classes or not cfg.classes:
        cls = parse_classes(classes)
    else:
        cls = check_classes(cfg.classes, where)
    names = list(named)
    if weights is not None:
        try:
            wl = [float(x) for x in weights.split(",")]
        except ValueError:
            raise UsageError(f"--weights expects comma-separated numbers, got {weights!r}") from None
        w = weight_matrix(wl, names, cls, "--weights")
    else:
        w = weight_matrix(cfg.weights, names, cls, where)
    thr = threshold_vector(threshold if threshold is not None else cfg.threshold, cls, where)
    k = min_votes if min_votes is not None else cfg.min_votes
    if k is not None and k > len(names):
        raise UsageError(f"--min-votes {k} exceeds the number of sources ({len(names)})")
    h, wd = height or cfg.height, width or cfg.width
    return dict(named=named, classes=cls, weights=w, thresholds=thr, min_votes=k or 0,
                missing=missing or cfg.missing, workers=workers or cfg.workers, output=out,
                height=h, width=wd, clean=build_cleaner(cfg.postprocess, cls, h, wd, where))


def _run_vote(job: dict, quiet: bool, label: str):
    from core.jit import compile_notice
    from core.predictions import read_predictions
    from ensemble.job import VotePlan, align, run_plan

    note = _echo_err(quiet)
    compile_notice(note, "core/codec.py", "ensemble/vote.py", *(["postprocess/clean.py"] if job["clean"] else []))
    sources = []
    for _name, path in job["named"].items():
        sources.append(read_predictions(path, job["classes"], job["height"], job["width"]))
        if sources[-1].paths_stripped:
            note(f"note: {path}: {sources[-1].paths_stripped} image names are paths; matched on the basename")
    aligned = align(sources, job["missing"])
    if aligned.n_missing:
        note(f"note: {aligned.n_missing} missing rows counted as empty votes")
    plan = VotePlan(aligned, job["weights"], job["thresholds"], job["min_votes"], clean=job["clean"])
    with _progress(len(aligned.images), quiet, desc=label) as bar:
        rows = run_plan(plan, job["output"], job["classes"], job["workers"], bar)
    note(f"{label}: {len(job['named'])} sources, {len(aligned.images)} images, {rows} rows → {job['output']}")
    if job["clean"] is not None:
        click.echo("postprocess (inline):\n" + "\n".join(job["clean"].summary()))


def vote_options(f):
    f = quiet_option(f)
    f = shape_options(f)
    f = click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Worker processes (default 1).")(f)
    f = click.option("--missing", type=click.Choice(["error", "empty"]), default=None,
                     help="A row absent from a source: error (default) or an empty vote.")(f)
    f = click.option("--threshold", type=float, default=None,
                     help="Keep where the weighted vote share > T (default 0.5).")(f)
    f = click.option("--setting", type=click.Path(dir_okay=False), default=None,
                     help="YAML settings; flags override it.")(f)
    f = click.option("--output", "-o", default=None, help="Output CSV (written atomically).")(f)
    f = click.option("--source", multiple=True, metavar="NAME=PATH",
                     help="A named source; re-points a source the settings name.")(f)
    f = click.argument("inputs", nargs=-1, type=click.Path(dir_okay=False))(f)
    return f


@cli.command()
@vote_options
@click.option("--min-votes", type=click.IntRange(min=1), default=None,
              help="Keep where at least K sources agree (1 = union, n = intersection).")
@handle_errors
def hard(inputs, source, setting, output, threshold, missing, workers, classes, height, width, quiet, min_votes):
    """Hard (majority) vote of several submission CSVs, computed on runs.

    A pixel is kept when votes / n > THRESHOLD (default 0.5, strict), or with --min-votes K
    when votes >= K. Inputs are joined on (image, class); output rows follow the first
    input's image order and the class list. A 'postprocess:' section in the settings cleans
    every voted mask (rules as in 'postprocess --help') and prints a per-class summary.
    """
    job = _vote_command("hard", inputs, source, setting, output, None, threshold, min_votes, missing,
                        workers, classes, height, width, quiet)
    _run_vote(job, quiet, "hard vote")


@cli.command()
@vote_options
@click.option("--weights", default=None, help="Comma-separated weights, one per source, in order.")
@click.option("--min-votes", type=click.IntRange(min=1), default=None, help="As in 'hard' (ignores weights' size).")
@handle_errors
def weighted(inputs, source, setting, output, threshold, missing, workers, classes, height, width, quiet,
             weights, min_votes):
    """Weighted vote: keep a pixel when Σ wᵢ·mᵢ / Σ wᵢ > THRESHOLD (strict).

    Weights and thresholds may be given per class in the settings file (a 'default' plus
    per-class overrides; a weight of 0 drops a source for that class):

    \b
      sources: {unet: val/unet.csv, hrnet: val/hrnet.csv}
      weights: {default: {unet: 1, hrnet: 1}, Pisiform: {unet: 0}}
      threshold: {default: 0.5, Trapezoid: 0.4}
      postprocess: {default: {keep_largest: 1, fill_holes: true}, finger-5: {keep_largest: 2}}

    --source NAME=PATH re-points a named source (apply tuned settings to test files).
    """
    job = _vote_command("weighted", inputs, source, setting, output, weights, threshold, min_votes, missing,
                        workers, classes, height, width, quiet)
    _run_vote(job, quiet, "weighted vote")


@cli.command()
@click.argument("folder", default="demo_output", type=click.Path(file_okay=False))
@click.option("--images", "n_images", default=4, show_default=True, help="Images to generate.")
@click.option("--models", "n_models", default=3, show_default=True, help="Models to simulate.")
@click.option("--seed", default=0, show_default=True)
@quiet_option
@handle_errors
def demo(folder, n_images, n_models, seed, quiet):
    """Generate a synthetic hand-bone set (2048², 29 classes: ground truth, several models of
    different per-class quality as CSVs and 512² probability maps) in FOLDER, then run the
    main job on it: validate each CSV, hard-vote the models, and score everything
    against the ground truth."""
    import numpy as np

    from core.check import check_submission
    from core.classes import DEFAULT_CLASSES
    from core.jit import compile_notice
    from core.predictions import read_predictions
    from core.score import dice_matrix
    from core.synthetic import Generator, write_set
    from ensemble.job import VotePlan, align, run_plan

    note = _echo_err(quiet)
    compile_notice(note, "core/codec.py", "core/runs.py", "ensemble/vote.py")
    gen = Generator(n_images=n_images, n_models=n_models, seed=seed)
    with _progress(n_images, quiet, desc="generate") as bar:
        paths = write_set(gen, folder, maps={m: 512 for m in gen.model_names}, progress=bar)
    for m in gen.model_names:
        report = check_submission(str(paths[m]), DEFAULT_CLASSES, 2048, 2048)
        if not report.valid:
            raise ToolError(f"generated {paths[m]} is invalid: {report.problems[0]}")
        click.echo(f"check {paths[m]}: valid: {report.summary()}")
    sources = [read_predictions(paths[m], DEFAULT_CLASSES) for m in gen.model_names]
    n = len(sources)
    plan = VotePlan(align(sources), np.ones((n, len(DEFAULT_CLASSES))), np.full(len(DEFAULT_CLASSES), 0.5))
    vote_path = Path(folder) / "hard_vote.csv"
    with _progress(n_images, quiet, desc="hard vote") as bar:
        run_plan(plan, str(vote_path), DEFAULT_CLASSES, 1, bar)
    gt = read_predictions(paths["gt"], DEFAULT_CLASSES)
    click.echo(f"\nmean Dice against {paths['gt']} ({n_images} images × 29 classes):")
    for name, path in [*((m, paths[m]) for m in gen.model_names), ("hard vote", vote_path)]:
        d = dice_matrix(read_predictions(path, DEFAULT_CLASSES), gt).mean(0)
        click.echo(f"  {name:<10} {d.mean():.4f}   worst class {DEFAULT_CLASSES[int(d.argmin())]} {d.min():.4f}")
    click.echo(f"\nresults in {Path(folder).resolve()}: gt.csv, {', '.join(f'{m}.csv' for m in gen.model_names)}, "
               f"hard_vote.csv, maps/<model>/<image>.npz")


@cli.command()
@click.argument("input_csv", metavar="IN.csv", type=click.Path(dir_okay=False))
@click.option("--output", "-o", default=None, help="Output CSV (written atomically).")
@click.option("--open", "open_r", type=click.IntRange(min=0), default=None,
              help="Opening by a disk of radius R (0: off).")
@click.option("--close", "close_r", type=click.IntRange(min=0), default=None,
              help="Closing by a disk of radius R (0: off).")
@click.option("--min-size", type=click.IntRange(min=0), default=None,
              help="Drop components with fewer than N pixels.")
@click.option("--keep-largest", type=click.IntRange(min=0), default=None,
              help="Keep the K largest components (ties: first in raster order; 0: all).")
@click.option("--fill-holes/--no-fill-holes", default=None, help="Fill holes (background not reaching the border).")
@click.option("--max-hole", type=click.IntRange(min=1), default=None,
              help="With --fill-holes: fill only holes of at most N pixels.")
@click.option("--connectivity", type=click.Choice(["4", "8"]), default=None,
              help="Object connectivity (default 8); holes use the other one.")
@click.option("--setting", type=click.Path(dir_okay=False), default=None,
              help="YAML rules: 'default' plus per-class overrides; flags override 'default'.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes (default 1).")
@shape_options
@quiet_option
@handle_errors
def postprocess(input_csv, output, open_r, close_r, min_size, keep_largest, fill_holes, max_hole, connectivity,
                setting, workers, classes, height, width, quiet):
    """Clean every mask of a submission, per class, on runs (no dense masks).

    \b
    Steps, always in this order (each optional):
      1. --open R        opening by the disk dy²+dx² <= R²
      2. --close R       closing by the same disk
      3. --min-size N    drop components with fewer than N pixels
      4. --keep-largest K  keep the K largest components (equal areas: the one whose
                         first pixel comes first in raster order)
      5. --fill-holes    fill holes of what is left (--max-hole N: only holes <= N px)

    Components are 8-connected (--connectivity 4: diagonal contact does not connect).
    A hole is background that cannot reach the image border, with the dual connectivity
    (objects 8 → background 4, as scipy.ndimage.binary_fill_holes(mask); objects 4 →
    background 8). Opening/closing take pixels outside the image as background and do
    not cut intermediate results at the border: opening equals
    scipy.ndimage.binary_opening(mask, disk); closing equals binary_closing on the mask
    padded by R, cropped back (it never removes pixels near the border).

    \b
    Per-class rules (--setting FILE, or 'postprocess:' in hard/weighted settings):
      default: {keep_largest: 1, fill_holes: true, min_size: 50}
      finger-5: {keep_largest: 2}     # overrides only the keys it names
      Trapezoid: null                 # leave this class alone
    Flags override 'default'; class entries keep the keys they name. The file may also
    be {postprocess: <that mapping>, classes:, height:, width:, workers:, output:}.
    Classes without rules are copied verbatim. Prints per class: masks changed,
    components removed, holes filled, pixels removed and added.
    """
    from core.classes import check_classes, parse_classes
    from core.jit import compile_notice
    from core.predictions import read_predictions
    from postprocess.job import clean_predictions
    from settings.loader import load_yaml, parse_model
    from settings.postprocess import PostprocessFile, build_cleaner

    note = _echo_err(quiet)
    data = load_yaml(setting) if setting else {}
    cfg = parse_model(PostprocessFile, data if "postprocess" in data else {"postprocess": data}, setting or "flags")
    out = output or cfg.output
    if not out:
        raise UsageError("no output: give -o/--output or 'output:' in the settings")
    if Path(out).resolve() == Path(input_csv).resolve():
        raise UsageError(f"{out}: output would overwrite the input")
    cls = parse_classes(classes) if classes or not cfg.classes else check_classes(cfg.classes, setting)
    h, w = height or cfg.height, width or cfg.width
    flags = dict(open=open_r, close=close_r, min_size=min_size, keep_largest=keep_largest, fill_holes=fill_holes,
                 max_hole=max_hole, connectivity=int(connectivity) if connectivity else None)
    cleaner = build_cleaner(cfg.postprocess, cls, h, w, setting or "flags", flags)
    if cleaner is None:
        raise UsageError("nothing to do: give a rule (--keep-largest, --min-size, --fill-holes, --open, --close) "
                         "or --setting")
    compile_notice(note, "core/codec.py", "postprocess/clean.py")
    preds = read_predictions(input_csv, cls, h, w)
    if preds.paths_stripped:
        note(f"note: {preds.paths_stripped} rows name images by path; matched on the basename")
    with _progress(len(preds.images), quiet, desc="postprocess") as bar:
        rows = clean_predictions(preds, cleaner, out, workers or cfg.workers, bar)
    note(f"postprocess: {len(preds.images)} images, {rows} rows → {out}")
    click.echo("\n".join(cleaner.summary()))


if __name__ == "__main__":
    cli()

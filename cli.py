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

from core.atomic import check_outputs
from core.errors import DataError, ToolError, UsageError, plural
from core.signals import Terminated, exit_on_signals


def handle_errors(f):
    """Turn user errors into one line on stderr and the documented exit code; SIGINT,
    SIGTERM and SIGHUP unwind (removing any temporary output) and exit 128 + the signal."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            with exit_on_signals():
                return f(*args, **kwargs)
        except ToolError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted; nothing written", err=True)
            sys.exit(130)
        except Terminated as e:
            click.echo(f"terminated by {e.name}; nothing written", err=True)
            sys.exit(e.exit_code)

    return wrapper


def shape_options(f):
    f = click.option("--width", type=click.IntRange(min=1), default=None, help="Mask width (default 2048).")(f)
    f = click.option("--height", type=click.IntRange(min=1), default=None, help="Mask height (default 2048).")(f)
    f = click.option("--classes", default=None,
                     help="Comma-separated class names or a file listing them (default: the 29 hand bones).")(f)
    return f


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, help="No progress or notes on stderr.")(f)


def image_set_options(f):
    """``--expect-images N`` and ``--images-from FILE``. Their values are kept in the click
    context (read back by ``_expected_images``) rather than passed as parameters, so that
    adding them leaves the commands' signatures alone."""

    def keep(ctx, param, value):
        ctx.meta[f"images.{param.name}"] = value
        return value

    f = click.option("--images-from", type=click.Path(dir_okay=False), default=None, expose_value=False,
                     callback=keep, help="Image list to compare with: a CSV with an image_name column (e.g. the "
                     "sample submission) or one name per line; missing or extra images exit 1.")(f)
    f = click.option("--expect-images", type=click.IntRange(min=1), default=None, expose_value=False,
                     callback=keep, help="Number of images expected; another count exits 1.")(f)
    return f


def _expected_images(output: str | None = None):
    """The ``ImageExpectation`` of ``image_set_options`` (``None`` when neither is given);
    the list file may not be the command's ``output``."""
    from core.imageset import ImageExpectation

    meta = click.get_current_context().meta
    path = meta.get("images.images_from")
    if path and output:
        check_outputs([("output", output)], [("the --images-from file", path)])
    return ImageExpectation.from_options(meta.get("images.expect_images"), path)


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
@click.option("--max-problems", type=click.IntRange(min=0), default=20, show_default=True,
              help="Problems listed before a count.")
@image_set_options
@quiet_option
@handle_errors
def check(submission, classes, height, width, max_problems, quiet):
    """Validate a submission CSV: columns, every image has every class exactly once, every
    RLE valid (row-major, 1-indexed, ascending, inside HEIGHT×WIDTH). Prints a summary.

    A file cut at an image boundary is a valid file of fewer images: --expect-images N
    or --images-from FILE (the sample submission, or a list) reports missing and extra
    images as problems.

    Exit 0 valid, 1 invalid (every problem listed: the first --max-problems and a count),
    2 unreadable.
    """
    from core.check import check_submission
    from core.classes import parse_classes
    from core.warmup import precompile

    note = _echo_err(quiet)
    expected = _expected_images()
    precompile(note, "read")
    report = check_submission(submission, parse_classes(classes), height or 2048, width or 2048, expected)
    if report.preds.paths_stripped:
        note(f"note: {plural(report.preds.paths_stripped, 'row')} name images by path; matched on the basename")
    for p in report.problems[:max_problems]:
        click.echo(str(p))
    if len(report.problems) > max_problems:
        click.echo(f"… and {plural(len(report.problems) - max_problems, 'more problem')}")
    empty = report.empty_report()
    if empty:
        click.echo(empty)
    status = "valid" if report.valid else f"INVALID ({plural(len(report.problems), 'problem')})"
    click.echo(f"{submission}: {status}: {report.summary()}")
    sys.exit(0 if report.valid else 1)


def _read_noting(path, classes, height, width, note):
    """``read_predictions``, with a note when image names were given as paths and a warning
    when the file looks truncated."""
    from core.predictions import read_predictions

    preds = read_predictions(path, classes, height, width)
    if preds.paths_stripped:
        note(f"note: {path}: {plural(preds.paths_stripped, 'row')} name images by path; matched on the basename")
    if preds.truncation is not None:  # the missing-row error that follows is its consequence
        note(f"warning: {preds.truncation}")
    return preds


def _note_unscored(gt, preds, note) -> None:
    """Say when a prediction holds images the ground truth does not: they are not scored,
    and a score over part of a prediction must not pass for a score of all of it."""
    known = set(gt.images)
    for p in preds:
        extra = [name for name in p.images if name not in known]
        if extra:
            verb = "is" if len(extra) == 1 else "are"
            note(f"note: {p.path}: {len(extra):,} of its {plural(len(p.images), 'image')} {verb} not in the ground "
                 f"truth and not scored (first: {', '.join(extra[:3])}); scores cover the "
                 f"{plural(len(gt.images), 'ground-truth image')}")


def _unique_names(named: list[tuple[str, str]], flag: str = "--source") -> None:
    seen: dict[str, str] = {}
    for name, path in named:
        if name in seen:
            raise UsageError(f"{flag}: two sources named {name!r} ({seen[name]} and {path}); "
                             "name them with NAME=PATH")
        seen[name] = path


def _parse_named(values: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--source expects NAME=PATH, got {v!r}")
        out.append((name, path))
    return out


def _same_file(named: list[tuple[str, str]]) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """The first two ``(name, path)`` pairs whose paths resolve to the same file, or None."""
    seen: dict[Path, tuple[str, str]] = {}
    for name, path in named:
        key = Path(path).resolve()
        if key in seen:
            return seen[key], (name, path)
        seen[key] = (name, path)
    return None


def _vote_sources(cfg, inputs, source, where: str) -> dict[str, str]:
    """Source name → path from the settings' ``sources``, positional CSVs and ``--source``.
    Positional CSVs next to settings that list ``sources`` are refused: they would add
    voters to a tuned set."""
    from settings.vote import source_names

    named = dict(cfg.sources) if isinstance(cfg.sources, dict) else dict(
        zip(source_names(cfg.sources), cfg.sources, strict=False))
    if inputs and named:
        raise UsageError(f"{where} lists sources ({', '.join(named)}); positional CSVs would vote next to them: "
                         "re-point one with --source NAME=PATH, or remove 'sources' from the settings")
    named.update(zip(source_names(list(inputs)), inputs, strict=False))
    for name, path in _parse_named(source):
        if cfg.sources and name not in named:  # a typo must not add a voter to tuned settings
            raise UsageError(f"--source {name}={path}: {where} names no source {name!r} (sources: {', '.join(named)})")
        if name in named and not cfg.sources:
            raise UsageError(f"--source {name}={path}: a positional CSV is already named {name!r} "
                             f"({named[name]}); give another name")
        named[name] = path  # re-points a named source (or, without settings sources, adds one)
    return named


def _twice(named: list[tuple[str, str]]) -> str | None:
    """``PATH: given twice (A and B)`` (or ``same file as``) for the first two ``(role,
    path)`` pairs that resolve to the same file; None when all differ."""
    same = _same_file(named)
    if same is None:
        return None
    (a, pa), (b, pb) = same
    return f"{pb}: given twice ({a} and {b})" if pa == pb else f"{pb}: same file as {pa} ({a} and {b})"


def _refuse_duplicates(named: dict[str, str], allow: bool, note) -> None:
    """A file that would vote twice (same resolved path) is an error unless ``allow``."""
    twice = _twice([(f"source {n}", p) for n, p in named.items()])
    if twice and not allow:
        raise UsageError(f"{twice}: each copy would vote; give it once (a larger weight counts it more) "
                         "or pass --allow-duplicate")
    if twice:
        note(f"note: {twice}: each copy votes (--allow-duplicate)")


def _vote_command(kind, inputs, source, setting, output, weights, threshold, min_votes, missing,
                  workers, classes, height, width, quiet, allow_duplicate=False):
    from core.classes import check_classes, parse_classes
    from settings.loader import load_yaml, parse_model
    from settings.postprocess import build_cleaner
    from settings.vote import VoteSettings

    where = setting or "flags"
    data = load_yaml(setting) if setting else {}
    cfg = parse_model(VoteSettings, data, where)
    if kind == "hard" and cfg.weights is not None:
        raise UsageError(f"{where}: 'hard' takes no weights; use 'weighted'")
    named = _vote_sources(cfg, inputs, source, where)
    if len(named) < 2 and not (len(named) == 1 and kind == "weighted"):
        raise UsageError("need at least two sources (positional CSVs or --source NAME=PATH)")
    out = output or cfg.output
    if not out:
        raise UsageError("no output: give -o/--output or 'output:' in the settings")
    check_outputs([("output", out)], [("the settings", setting), *(("an input", p) for p in named.values())])
    if classes or not cfg.classes:
        cls = parse_classes(classes)
    else:
        cls = check_classes(cfg.classes, where)
    names = list(named)
    w, thr, overrides = _vote_weights(cfg, names, cls, where, weights, threshold)
    k = min_votes if min_votes is not None else cfg.min_votes
    if k is not None and (threshold is not None or "threshold" in cfg.model_fields_set):
        raise UsageError("give a threshold or min_votes, not both (min_votes replaces the threshold)")
    if k is not None:
        voters = (w > 0).sum(0)
        short = [c for c in range(len(cls)) if voters[c] < k]
        if short:
            raise UsageError(f"min_votes {k}: class {cls[short[0]]} has only {voters[short[0]]} sources "
                             f"with weight > 0 (sources: {len(names)})")
    _refuse_duplicates(named, allow_duplicate, _echo_err(quiet))
    h, wd = height or cfg.height, width or cfg.width
    return dict(named=named, classes=cls, weights=w, thresholds=thr, min_votes=k or 0, overrides=overrides,
                missing=missing or cfg.missing, workers=workers or cfg.workers, output=out,
                height=h, width=wd, clean=build_cleaner(cfg.postprocess, cls, h, wd, where))


def _vote_weights(cfg, names, classes, where, weights, threshold):
    """Weights (sources × classes), thresholds per class and a description of the classes
    that differ from the default. A flag replaces the settings' default only: per-class
    entries stay."""
    from settings.vote import (
        class_overrides,
        default_threshold,
        default_weights,
        threshold_vector,
        weight_matrix,
        with_default_threshold,
        with_default_weights,
    )

    flag_w = None
    if weights is not None:
        try:
            flag_w = [float(x) for x in weights.split(",")]
        except ValueError:
            raise UsageError(f"--weights expects comma-separated numbers, got {weights!r}") from None
        weight_matrix(flag_w, names, classes, "--weights")  # the flag's own mistakes name the flag
    if threshold is not None:
        threshold_vector(threshold, classes, "--threshold")
    spec_w = with_default_weights(cfg.weights, flag_w)
    spec_t = with_default_threshold(cfg.threshold, threshold)
    w = weight_matrix(spec_w, names, classes, where)
    thr = threshold_vector(spec_t, classes, where)
    default_w, default_t = default_weights(spec_w, names, where), default_threshold(spec_t)
    lines = class_overrides(w, thr, default_w, default_t, names, classes)
    if lines:
        listed = ", ".join(f"{n} {x:g}" for n, x in zip(names, default_w, strict=True))
        head = f"per class (default: weights {listed}; threshold {default_t:g}):"
        lines = [head, *(f"  {line}" for line in lines)]
    return w, thr, lines


def _run_vote(job: dict, quiet: bool, label: str):
    from core.warmup import precompile
    from ensemble.job import VotePlan, align, run_plan

    note = _echo_err(quiet)
    for line in job["overrides"]:
        note(line)
    expected = _expected_images(job["output"])
    precompile(note, "read", "vote", *(["clean"] if job["clean"] else []))
    sources = [_read_noting(path, job["classes"], job["height"], job["width"], note) for path in job["named"].values()]
    if expected is not None:
        for src in sources:
            expected.check(src.images, src.path)
    aligned = align(sources, job["missing"])
    if aligned.n_missing:
        note(f"note: {plural(aligned.n_missing, 'missing row')} counted as empty votes")
    plan = VotePlan(aligned, job["weights"], job["thresholds"], job["min_votes"], clean=job["clean"])
    with _progress(len(aligned.images), quiet, desc=label) as bar:
        rows = run_plan(plan, job["output"], job["classes"], job["workers"], bar)
    note(f"{label}: {plural(len(job['named']), 'source')}, {plural(len(aligned.images), 'image')}, "
         f"{plural(rows, 'row')} → {job['output']}")
    if job["clean"] is not None:
        click.echo("postprocess (inline):\n" + "\n".join(job["clean"].summary()))


def vote_options(f):
    f = image_set_options(f)
    f = quiet_option(f)
    f = shape_options(f)
    f = click.option("--allow-duplicate", is_flag=True,
                     help="Let a file given twice (same resolved path) vote twice; otherwise an error.")(f)
    f = click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Worker processes (default 1).")(f)
    f = click.option("--missing", type=click.Choice(["error", "empty"]), default=None,
                     help="A row absent from a source: error (default) or an empty vote.")(f)
    f = click.option("--threshold", type=float, default=None,
                     help="Keep where the vote share (weighted: Σ wᵢ·mᵢ / Σ wᵢ) > T (default 0.5); replaces "
                          "the settings' default threshold, per-class thresholds stay.")(f)
    f = click.option("--setting", type=click.Path(dir_okay=False), default=None,
                     help="YAML settings; a flag replaces a setting's default, per-class entries stay.")(f)
    f = click.option("--output", "-o", default=None, help="Output CSV (written atomically).")(f)
    f = click.option("--source", multiple=True, metavar="NAME=PATH",
                     help="A named source; re-points a source the settings name (positional CSVs next to "
                          "settings 'sources' are an error).")(f)
    f = click.argument("inputs", nargs=-1, type=click.Path(dir_okay=False))(f)
    return f


@cli.command()
@vote_options
@click.option("--min-votes", type=click.IntRange(min=1), default=None,
              help="Keep where at least K sources agree (1 = union, n = intersection).")
@handle_errors
def hard(inputs, source, setting, output, threshold, missing, workers, allow_duplicate, classes, height, width, quiet,
         min_votes):
    """Hard (majority) vote of several submission CSVs, computed on runs.

    A pixel is kept when votes / n > THRESHOLD (default 0.5, strict), or with --min-votes K
    when votes >= K. Inputs are joined on (image, class); output rows follow the first
    input's image order and the class list. A 'postprocess:' section in the settings cleans
    every voted mask (rules as in 'postprocess --help') and prints a per-class summary.
    A file given twice (same resolved path) is an error unless --allow-duplicate.
    """
    job = _vote_command("hard", inputs, source, setting, output, None, threshold, min_votes, missing,
                        workers, classes, height, width, quiet, allow_duplicate)
    _run_vote(job, quiet, "hard vote")


@cli.command()
@vote_options
@click.option("--weights", default=None,
              help="Comma-separated weights, one per source, in order; replace the settings' default weights, "
                   "per-class entries stay.")
@click.option("--min-votes", type=click.IntRange(min=1), default=None, help="As in 'hard' (ignores weights' size).")
@handle_errors
def weighted(inputs, source, setting, output, threshold, missing, workers, allow_duplicate, classes, height, width,
             quiet, weights, min_votes):
    """Weighted vote: keep a pixel when Σ wᵢ·mᵢ / Σ wᵢ > THRESHOLD (strict).

    Weights and thresholds may be given per class in the settings file (a 'default' plus
    per-class overrides; a weight of 0 drops a source for that class):

    \b
      sources: {unet: val/unet.csv, hrnet: val/hrnet.csv}
      weights: {default: {unet: 1, hrnet: 1}, Pisiform: {unet: 0}}
      threshold: {default: 0.5, Trapezoid: 0.4}
      postprocess: {default: {keep_largest: 1, fill_holes: true}, finger-5: {keep_largest: 2}}

    --weights and --threshold replace the 'default' entries only; the weights and
    thresholds of classes that differ from the default are printed on stderr.
    --source NAME=PATH re-points a named source (apply tuned settings to test files).
    A file given twice (same resolved path) is an error unless --allow-duplicate.
    """
    job = _vote_command("weighted", inputs, source, setting, output, weights, threshold, min_votes, missing,
                        workers, classes, height, width, quiet, allow_duplicate)
    _run_vote(job, quiet, "weighted vote")


@cli.command()
@click.argument("folder", default="demo_output", type=click.Path(file_okay=False))
@click.option("--images", "n_images", type=click.IntRange(min=1), default=4, show_default=True,
              help="Images to generate.")
@click.option("--models", "n_models", type=click.IntRange(min=1), default=3, show_default=True,
              help="Models to simulate.")
@click.option("--seed", default=0, show_default=True)
@quiet_option
@handle_errors
def demo(folder, n_images, n_models, seed, quiet):
    """Generate a synthetic hand-bone set (2048², 29 classes: ground truth, several models of
    different per-class quality as CSVs and 512² probability maps) in FOLDER, then run the
    main jobs on it: validate each CSV, hard-vote the CSVs, soft-vote the maps (with the
    settings file it writes, soft_setting.yaml, and inline cleaning), and score everything
    against the ground truth."""
    import numpy as np

    from core.check import check_submission
    from core.classes import DEFAULT_CLASSES
    from core.predictions import read_predictions
    from core.score import dice_matrix
    from core.synthetic import Generator, write_set
    from core.warmup import precompile
    from ensemble.job import VotePlan, align, run_plan
    from ensemble.soft_job import build_job, run_job
    from settings.loader import load_yaml, parse_model, write_yaml
    from settings.soft import SoftSettings

    note = _echo_err(quiet)
    _demo_folder(Path(folder))
    precompile(note, "read", "vote", "soft", "clean", "score")
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
    soft_setting = Path(folder) / "soft_setting.yaml"
    write_yaml(soft_setting, {"prob_maps": [{"path": str(paths[f"maps/{m}"])} for m in gen.model_names],
                              "threshold": 0.5, "postprocess": {"default": {"keep_largest": 1, "fill_holes": True}},
                              "save_dir": str(folder), "output_name": "soft_vote.csv"},
               "# written by `cli.py demo`: python cli.py soft --setting " + str(soft_setting) + "\n")
    job = build_job(parse_model(SoftSettings, load_yaml(soft_setting), str(soft_setting)), str(soft_setting))
    soft_path = Path(folder) / "soft_vote.csv"
    with _progress(n_images, quiet, desc="soft vote") as bar:
        run_job(job, soft_path, bar)
    gt = read_predictions(paths["gt"], DEFAULT_CLASSES)
    click.echo(f"\nmean Dice against {paths['gt']} ({plural(n_images, 'image')} × 29 classes):")
    for name, path in [*((m, paths[m]) for m in gen.model_names), ("hard vote", vote_path),
                       ("soft vote", soft_path)]:
        d = dice_matrix(read_predictions(path, DEFAULT_CLASSES), gt).mean(0)
        click.echo(f"  {name:<10} {d.mean():.4f}   worst class {DEFAULT_CLASSES[int(d.argmin())]} {d.min():.4f}")
    click.echo(f"\nresults in {Path(folder).resolve()}: gt.csv, {', '.join(f'{m}.csv' for m in gen.model_names)}, "
               f"hard_vote.csv, soft_vote.csv (from soft_setting.yaml), maps/<model>/<image>.npz, images/")
    from report.demo import demo_report

    index = demo_report(gen, Path(folder), paths, vote_path, soft_path, soft_setting)
    click.echo(f"report: {index.resolve()}")


_DEMO_MARK = ".segment-ensemble-demo"


def _demo_folder(folder: Path) -> None:
    """Create the demo folder; refuse one that holds anything but an earlier demo's files."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / _DEMO_MARK).is_file():
        raise UsageError(f"{folder}: folder is not empty and was not written by demo; give a new or empty folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / _DEMO_MARK).write_text("written by `cli.py demo`; rerunning demo here replaces its files\n")
    except OSError as e:
        raise UsageError(f"{folder}: cannot create ({e.strerror or e.__class__.__name__})") from None


@cli.command()
@click.argument("preds", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--gt", "gt_csv", type=click.Path(dir_okay=False), default=None, help="Ground-truth CSV.")
@click.option("--gt-json", type=click.Path(file_okay=False), default=None,
              help="Ground truth as a folder of per-image polygon JSON files (found by image stem).")
@click.option("--source", multiple=True, metavar="NAME=PATH", help="A named prediction.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--output", "-o", default=None, help="Write source,class,dice rows (the scores file).")
@click.option("--missing", type=click.Choice(["error", "empty"]), default="error", show_default=True,
              help="A prediction row absent for a ground-truth (image, class): error, or score it as empty.")
@shape_options
@image_set_options
@quiet_option
@handle_errors
def evaluate(preds, gt_csv, gt_json, source, fmt, output, missing, classes, height, width, quiet):
    """Dice of each prediction against the ground truth, computed on runs.

    Dice per (image, class) = (2|A∩B| + 1e-4) / (|A| + |B| + 1e-4) (two empty masks score 1);
    per class the mean over the ground truth's images; overall the mean over classes. The
    table marks the best source per class; -o writes `source,class,dice` rows, the format
    `select --best-from` reads. With --gt-json, the images are those of the first prediction
    and polygons are filled like OpenCV's fillPoly (boundary pixels inside; Pillow rasteriser).
    --expect-images / --images-from check each prediction's image set first (exit 1).
    """
    from core.classes import parse_classes
    from core.warmup import precompile
    from evaluation.scores import evaluate as score
    from settings.vote import source_names

    if (gt_csv is None) == (gt_json is None):
        raise UsageError("give exactly one of --gt GT.csv or --gt-json DIR")
    named = list(zip(source_names(list(preds)), preds)) + _parse_named(source)
    if not named:
        raise UsageError("no predictions to evaluate")
    _unique_names(named)
    paths = [p for _, p in named]
    twice = _twice([(f"source {n}", p) for n, p in named])
    if twice:
        raise UsageError(twice)
    check_outputs([("output", output)], [("the ground truth", gt_csv), *(("an input", p) for p in paths)],
                  [("the --gt-json folder", gt_json)])
    note = _echo_err(quiet)
    precompile(note, "read", "score")
    cls = parse_classes(classes)
    h, w = height or 2048, width or 2048
    expected = _expected_images(output)
    loaded = [_read_noting(path, cls, h, w, note) for path in paths]
    if expected is not None:
        for p in loaded:
            expected.check(p.images, p.path)
    if gt_json:
        from evaluation.polygons import read_gt_json

        gt = read_gt_json(gt_json, loaded[0].images, cls, h, w)
    else:
        gt = _read_noting(gt_csv, cls, h, w, note)
    _note_unscored(gt, loaded, note)
    with _progress(len(loaded), quiet, unit="file", desc="evaluate") as bar:
        scores = score(gt, loaded, [n for n, _ in named], missing, bar)
    if output:
        from core.atomic import atomic_write_text

        atomic_write_text(output, scores.csv())
        note(f"scores → {output}")
    click.echo({"table": scores.table, "csv": scores.csv, "json": scores.json}[fmt]().rstrip("\n"))


@cli.command()
@click.argument("preds", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--gt", "gt_csv", type=click.Path(dir_okay=False), default=None,
              help="Ground-truth CSV (without ground truth the report shows agreement between sources).")
@click.option("--gt-json", type=click.Path(file_okay=False), default=None,
              help="Ground truth as a folder of per-image polygon JSON files (as evaluate reads them).")
@click.option("--source", multiple=True, metavar="NAME=PATH", help="A named prediction CSV.")
@click.option("--images", "images_dir", type=click.Path(file_okay=False), default=None,
              help="Folder of the X-rays (found by file name, recursively); without it a grey canvas.")
@click.option("--setting", type=click.Path(dir_okay=False), default=None,
              help="Settings to summarise per class (tune's output, weighted, select or soft settings).")
@click.option("--focus", default=None, help="Source whose errors and worst images are shown (default: best mean).")
@click.option("--pages", type=click.IntRange(min=0), default=12, show_default=True,
              help="Image pages: the worst images of the focus source (or where sources disagree most).")
@click.option("--image", "wanted", multiple=True, metavar="NAME", help="An image that always gets a page.")
@click.option("--baseline", multiple=True, metavar="NAME",
              help="Single sources the leaderboard's gain is measured against (default: every source).")
@click.option("--missing", type=click.Choice(["error", "empty"]), default="error", show_default=True,
              help="A prediction row absent for a scored (image, class): error, or an empty mask.")
@click.option("--output", "-o", required=True, help="Report folder (new, empty, or an earlier report).")
@shape_options
@quiet_option
@handle_errors
def report(preds, gt_csv, gt_json, source, images_dir, setting, focus, pages, wanted, baseline, missing, output,
           classes, height, width, quiet):
    """Write a static HTML report (index.html, image pages, PNG charts and overlays) that
    opens from file:// in any browser: leaderboard, Dice per class and source (heatmap),
    per-image Dice spread of the focus source, its worst images, the settings per class;
    each image page has the X-ray with a colour per class and an image browser (layers:
    ground truth, each source, vote count, false positives and negatives of the focus
    source; opacity, class filter, wrist zoom). Dice equals evaluate's. Without --gt: mean
    Dice between sources per class, mask areas, and the images where they disagree most.
    The folder is written under a temporary name and renamed when complete.
    """
    import shlex

    from core.classes import parse_classes
    from core.warmup import precompile
    from report import build_report
    from settings.vote import source_names

    named = list(zip(source_names(list(preds)), preds)) + _parse_named(source)
    if not named:
        raise UsageError("no predictions: give CSVs or --source NAME=PATH")
    _unique_names(named)
    twice = _twice([(f"source {n}", p) for n, p in named])
    if twice:
        raise UsageError(twice)
    note = _echo_err(quiet)
    precompile(note, "read", "score")
    ctx = click.get_current_context()
    if Path(sys.argv[0]).name == "cli.py" and sys.argv[1:2] == ["report"]:
        args = sys.argv[2:]
    else:  # called in process (tests, another program): rebuild the flags from the parsed values
        args = list(preds)
        for p in ctx.command.params:
            value = ctx.params.get(p.name)
            if not isinstance(p, click.Option) or value in (None, (), False, p.default):
                continue
            if p.is_flag:
                args.append(p.opts[0])
            else:
                args += [x for v in (value if p.multiple else [value]) for x in (p.opts[0], str(v))]
    command = "python cli.py report " + " ".join(shlex.quote(str(a)) for a in args)
    with _progress(len(wanted) + pages, quiet, desc="report pages") as bar:
        res = build_report(named, output, gt_csv=gt_csv, gt_json=gt_json, images=images_dir, setting=setting,
                           focus=focus, pages=pages, wanted=wanted, baselines=baseline,
                           classes=parse_classes(classes), height=height or 2048, width=width or 2048,
                           missing=missing, command=command, note=note, progress=bar)
    click.echo(f"report: {plural(len(res.data.images), 'image')}, {plural(len(res.pages), 'page')} → {res.index}")


@cli.command()
@click.argument("inputs", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--gt", "gt_csv", required=True, type=click.Path(dir_okay=False), help="Validation ground truth CSV.")
@click.option("--source", multiple=True, metavar="NAME=PATH", help="A named validation prediction.")
@click.option("--output", "-o", required=True, help="Tuned settings file to write (YAML).")
@click.option("--margin", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Accept a choice only when it beats the hard vote's class mean Dice by more than this.")
@click.option("--levels", default="0,1,2", show_default=True, help="Weight levels of the grid search.")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Time budget of the search (seconds; the best found so far is kept).")
@click.option("--missing", type=click.Choice(["error", "empty"]), default="error", show_default=True)
@click.option("--maps", "maps", multiple=True, metavar="NAME=DIR",
              help="Validation probability maps (float probabilities) for per-class soft-vote thresholds.")
@click.option("--soft-output", default=None, help="Soft settings to write with --maps (default: OUTPUT.soft.yaml).")
@shape_options
@quiet_option
@handle_errors
def tune(inputs, gt_csv, source, output, margin, levels, max_seconds, missing, maps, soft_output, classes, height,
         width, quiet):
    """Choose per class how to combine the sources, from validation data.

    Sources are validation prediction CSVs: positional INPUTS (named by file stem) and/or
    --source NAME=PATH; the names are what the written settings refer to.

    For every class it scores, exactly and at once, each single source and every weighted
    vote over the --levels grid at every threshold that changes the result, and keeps the
    best only when it beats the plain hard vote by more than --margin. Then, on the chosen
    combination's masks, it tries cleaning (fill holes, keep the 1 or 2 largest components,
    min_size 10…1000, alone or with hole filling) and keeps the best only when it beats no
    cleaning by more than --margin. Writes a settings file for `weighted` (weights,
    thresholds and a postprocess section); apply it to test predictions with only new paths:

    \b
      python cli.py weighted --setting tuned.yaml --source unet=test/unet.csv ... -o test.csv

    With --maps NAME=DIR (validation probability maps, one folder per model), one pass
    histograms the equal-weight mean probability on ground-truth and background pixels,
    which gives the soft vote's Dice at every threshold 0.05, 0.075, … 0.95 exactly; per
    class the best replaces 0.5 when it beats it by more than --margin. It writes a `soft`
    settings file (--soft-output); apply it with new folders for the same names:

    \b
      python cli.py soft --setting tuned.soft.yaml --source unet=test_maps/unet ... -o test.csv
    """
    import math
    import time

    from core.classes import parse_classes
    from core.warmup import precompile
    from ensemble.maps import MapSource
    from evaluation.tune import (
        SOFT_THRESHOLDS,
        coverage,
        few_images_warning,
        report,
        soft_histograms,
        tune_cleaning,
        tune_combination,
        tune_soft,
        tuned_settings,
    )
    from settings.loader import write_yaml
    from settings.vote import MAX_WEIGHT, source_names

    start = time.monotonic()
    if not math.isfinite(margin) or (max_seconds is not None and math.isnan(max_seconds)):
        raise UsageError("--margin must be a finite number >= 0 and --max-seconds a number > 0")
    named = list(zip(source_names(list(inputs)), inputs)) + _parse_named(source)
    if len(named) < 2:
        raise UsageError("tune needs at least two sources")
    _unique_names(named)
    named_maps = _parse_named(maps)
    _unique_names(named_maps, "--maps")
    twice = _twice([(f"source {n}", p) for n, p in named])
    if twice:  # weighted would refuse the tuned settings
        raise UsageError(f"{twice}: tune each file once")
    twice = _twice([(f"--maps {n}", d) for n, d in named_maps])
    if twice:  # soft would refuse the tuned soft settings
        raise UsageError(f"{twice}: give each maps folder once")
    if soft_output is None and output.strip():
        soft_output = str(Path(output).with_suffix("")) + ".soft.yaml"
    check_outputs([("output", output), *([("--soft-output", soft_output)] if maps else [])],
                  [("the ground truth", gt_csv), *(("an input", p) for _, p in named)],
                  [(f"the --maps folder of {n}", d) for n, d in named_maps])
    try:
        lv = sorted({float(x) for x in levels.split(",")})
    except ValueError:
        raise UsageError(f"--levels expects comma-separated numbers, got {levels!r}") from None
    if not all(0 <= x <= MAX_WEIGHT for x in lv) or not any(lv):
        raise UsageError(f"--levels must lie in [0, {MAX_WEIGHT:g}] with at least one positive level")
    note = _echo_err(quiet)
    precompile(note, "read", "tune", *(["soft"] if maps else []))
    cls = parse_classes(classes)
    h, w = height or 2048, width or 2048
    map_sources = [MapSource(name, Path(folder)) for name, folder in named_maps]
    gt = _read_noting(gt_csv, cls, h, w, note)
    sources = [_read_noting(p, cls, h, w, note) for _, p in named]
    names = [n for n, _ in named]
    _note_unscored(gt, sources, note)
    few = few_images_warning(len(gt.images), cls, names, lv)
    if few:
        note(few)
    with _progress(len(gt.images), quiet, desc="coverage") as bar:
        cov = coverage(gt, sources, names, missing, bar)
    deadline = start + max_seconds if max_seconds else None
    results = tune_combination(cov, cls, margin, lv, deadline)
    with _progress(len(cls), quiet, unit="class", desc="cleaning") as bar:
        tune_cleaning(results, gt, sources, margin, missing=missing, deadline=deadline, progress=bar)
    soft = None
    if map_sources:  # before anything is written: a bad map must leave no partial result
        with _progress(len(gt.images), quiet, desc="soft histograms") as bar:
            hist = soft_histograms(gt, map_sources, SOFT_THRESHOLDS, bar)
        soft = tune_soft(hist, gt, SOFT_THRESHOLDS, margin)
    settings = tuned_settings(results, names, [p for _, p in named], cls, h, w)
    header = (f"# tuned by `cli.py tune` on {gt_csv} ({plural(len(gt.images), 'image')}); apply with\n"
              f"# python cli.py weighted --setting {output} --source NAME=TEST.csv ... -o OUT.csv\n")
    write_yaml(output, settings, header)
    click.echo(report(results, names))
    note(f"tuned settings → {output}")
    if soft is not None:
        _write_tuned_maps(gt, soft, named_maps, soft_output, cls, h, w, quiet)


def _write_tuned_maps(gt, res, named_maps, output, classes, height, width, quiet) -> None:
    from settings.loader import write_yaml

    settings = {"CLASSES": list(classes), "prob_maps": [{"path": str(f), "name": n} for n, f in named_maps],
                "threshold": {"default": 0.5, **{c: float(t) for c, t in zip(classes, res.thresholds) if t != 0.5}}}
    if (height, width) != (2048, 2048):
        settings.update(height=height, width=width)
    write_yaml(output, settings, f"# tuned by `cli.py tune --maps` on {gt.path}; apply with\n"
                                 f"# python cli.py soft --setting {output} --source NAME=TEST_DIR ... -o OUT.csv\n")
    cw = max(len("class"), *(len(c) for c in classes)) + 2
    click.echo(f"\nsoft vote of {', '.join(n for n, _ in named_maps)} (equal weights):")
    click.echo(f"{'class':<{cw}}{'at 0.5':>9}{'tuned':>9}  threshold")
    for c, cls in enumerate(classes):
        click.echo(f"{cls:<{cw}}{res.at_default[c]:>9.4f}{res.best[c]:>9.4f}  {res.thresholds[c]:g}")
    click.echo(f"{'mean':<{cw}}{res.at_default.mean():>9.4f}{res.best.mean():>9.4f}")
    _echo_err(quiet)(f"tuned soft settings → {output}")
@cli.command("select")
@click.option("--setting", required=True, type=click.Path(dir_okay=False),
              help="YAML settings: sources, groups, select rules, output.")
@click.option("--output", "-o", default=None, help="Output CSV (written atomically; default: 'output:').")
@click.option("--source", multiple=True, metavar="NAME=PATH", help="Re-point a source the settings name.")
@click.option("--best-from", type=click.Path(dir_okay=False), default=None,
              help="Scores CSV (source,class,dice): per class take the source with the highest Dice.")
@click.option("--write-setting", type=click.Path(dir_okay=False), default=None,
              help="Write the rules used as a settings file (atomically).")
@shape_options
@quiet_option
@handle_errors
def select_command(setting, output, source, best_from, write_setting, classes, height, width, quiet):
    """Class selection: each class's mask is copied, as written, from one named source.

    \b
      sources: {ens: out/ensemble.csv, wrist: out/wrist_crop.csv, hr: out/hrnet.csv}
      groups: {wrist: [Trapezium, Trapezoid, Capitate, Hamate, Scaphoid, Lunate, Triquetrum, Pisiform]}
      select: {wrist: wrist, Pisiform: hr, default: ens}   # class, group or default -> source
      output: out/selected.csv

    A class named directly wins over its group, a group over 'default'; a class with no
    rule and no default is an error, so is a class in two groups that name different
    sources. A 'postprocess:' section may name groups too, with the same precedence.
    Only sources some class uses are read. Images follow the first source listed
    under 'sources' that is used; every used source must hold the same images and a row
    for each (image, class) it is selected for (it may hold only some classes); else exit
    1 and nothing is written. Image names given as paths are matched on the basename.

    --best-from SCORES.csv picks, per class, the source with the highest Dice among the
    settings' sources (rows for other sources or classes are ignored; a tie goes to the
    source listed first; a source without a score for a class does not compete for it;
    a class no source has a score for keeps the settings' rule, and is an error without
    one). --write-setting writes the rules used (with the sources, after --source) as a
    settings file that 'select --setting' reproduces; without an output it only writes it.
    Source paths are taken relative to the working directory. The rows each source gave
    (and the --best-from choice per class) are printed on stdout.
    """
    from core.classes import check_classes, parse_classes
    from settings.loader import load_yaml, parse_model, write_yaml
    from settings.postprocess import build_cleaner
    from settings.select import SelectSettings, resolve_rules, rule_table, rules_to_settings

    cfg = parse_model(SelectSettings, load_yaml(setting), setting)
    named = dict(cfg.sources)
    if not named:
        raise UsageError(f"{setting}: sources: no sources")
    for name, path in _parse_named(source):
        if name not in named:
            raise UsageError(f"--source {name}={path}: {setting} names no source {name!r} "
                             f"(sources: {', '.join(named)})")
        named[name] = path
    cls = parse_classes(classes) if classes or not cfg.classes else check_classes(cfg.classes, f"{setting}: classes")
    h, w = height or cfg.height, width or cfg.width
    names = list(named)
    out = output or cfg.output
    if not out and not write_setting:
        raise UsageError("no output: give -o/--output, 'output:' in the settings, or --write-setting")
    check_outputs([("output", out), ("--write-setting", write_setting)],
                  [("the settings", setting), ("the scores file", best_from),
                   *(("an input", p) for p in named.values())])
    if best_from:
        rules = _select_best(best_from, names, cls, rule_table(cfg, names, cls, setting), setting, quiet)
    else:
        rules = resolve_rules(cfg, names, cls, setting)
    if out:
        _select_run(named, rules, cls, h, w, out, quiet,
                    build_cleaner(cfg.postprocess, cls, h, w, setting, groups=cfg.groups))
    if write_setting:
        write_yaml(write_setting, rules_to_settings(named, rules, cls, out, h, w),
                       header=f"# written by 'cli.py select' from {setting}"
                              + (f" and {best_from}" if best_from else "") + "\n")
        click.echo(f"rules written to {write_setting}")


def _select_best(scores_path, names, classes, fallback, setting, quiet) -> list[str]:
    import numpy as np

    from fusion.best import best_rules, listing, read_scores

    note = _echo_err(quiet)
    scores = read_scores(scores_path, names, classes)
    for kind, other in [("sources", scores.other_sources), ("classes", scores.other_classes)]:
        if other:
            note(f"note: {scores_path}: ignored {plural(sum(other.values()), 'row')} of other {kind} "
                 f"({listing(list(other))})")
    unscored = [n for k, n in enumerate(names) if np.isnan(scores.dice[k]).all()]
    if unscored:  # a renamed source silently loses every class: say which names the file uses
        note(f"note: {scores_path} has no score for {'source' if len(unscored) == 1 else 'sources'} "
             f"{', '.join(unscored)} of {setting}" + (f" (its other sources: {listing(list(scores.other_sources))})"
                                                      if scores.other_sources else ""))
    rules, fell_back = best_rules(scores.dice, names, classes, fallback, setting)
    width = max(len(c) for c in classes)
    click.echo(f"best source per class from {scores_path}:")
    for c, (cls, rule) in enumerate(zip(classes, rules, strict=True)):
        if cls in fell_back:
            click.echo(f"  {cls:<{width}}  {rule}  (no scores; rule from {setting})")
            continue
        d = scores.dice[:, c]
        others = ", ".join(f"{n} {d[k]:.4f}" for k, n in enumerate(names) if n != rule and not np.isnan(d[k]))
        click.echo(f"  {cls:<{width}}  {rule}  {d[names.index(rule)]:.4f}" + (f"  ({others})" if others else ""))
    return rules


def _select_run(named, rules, classes, height, width, output, quiet, clean=None) -> None:
    from core.warmup import precompile
    from fusion.select import plan_select, write_selection

    note = _echo_err(quiet)
    precompile(note, "read", *(["clean"] if clean is not None else []))
    preds = {name: _read_noting(path, classes, height, width, note) for name, path in named.items() if name in rules}
    plan = plan_select(preds, rules)
    with _progress(len(plan.images), quiet, desc="select") as bar:
        write_selection(plan, output, bar, clean)
    by_source = plan.rows_by_source()
    click.echo(f"select: {plural(len(plan.images), 'image')} × {plural(len(classes), 'class')}, "
               f"{plural(sum(by_source.values()), 'row')} → {output}")
    for name, n in by_source.items():
        k = rules.count(name)
        click.echo(f"  {name}: {plural(n, 'row')} ({plural(k, 'class')}) from {named[name]}")
    if clean is not None:
        click.echo("postprocess (inline):\n" + "\n".join(clean.summary()))


@cli.command("merge")
@click.argument("parts", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--output", "-o", default=None, help="Output CSV (written atomically).")
@click.option("--setting", type=click.Path(dir_okay=False), default=None,
              help="YAML settings (parts, output, prefer, strict, classes, height, width); flags override it, "
                   "PART files replace 'parts'.")
@click.option("--prefer", type=click.Choice(["first", "last"]), default=None,
              help="Which file's row wins where rows differ (default first).")
@click.option("--strict", is_flag=True, default=None,
              help="Exit 1 on a conflicting overlap or a missing (image, class) row; nothing is written.")
@shape_options
@image_set_options
@quiet_option
@handle_errors
def merge_command(parts, output, setting, prefer, strict, classes, height, width, quiet):
    """Merge CSVs covering different images and/or classes (shards, per-class files).

    Output: images in first-seen order across the PARTS as given, classes in class-list
    order. An (image, class) in several parts: identical masks (compared as runs, so
    differently written but equal RLEs count as identical) give one row, written as in the
    --prefer file; different masks
    are a conflict: the row of the --prefer file (first or last in the order given) is
    taken, and conflicts are counted and reported. Expected rows are all images × all
    classes; a row no part holds is written as an empty mask and reported. With --strict,
    a conflict or a missing row exits 1 and nothing is written. Image names given as paths
    are matched on the basename. RLE strings are copied as written. The completeness and
    overlap report and the rows taken from each file are printed on stdout.
    --expect-images / --images-from check the merged image set (all parts together) and
    exit 1 before writing when it differs.
    """
    from core.classes import check_classes, parse_classes
    from core.warmup import precompile
    from fusion.merge import plan_merge, write_merge
    from settings.loader import load_yaml, parse_model
    from settings.merge import MergeSettings
    from settings.postprocess import build_cleaner

    note = _echo_err(quiet)
    where = setting or "flags"
    cfg = parse_model(MergeSettings, load_yaml(setting) if setting else {}, where)
    files = list(parts) or cfg.parts
    if not files:
        raise UsageError("no parts: give PART.csv files or 'parts:' in the settings")
    if parts and cfg.parts:
        note(f"note: the PART files given replace the {plural(len(cfg.parts), 'part')} listed in {setting}")
    twice = _twice([(f"part {k + 1}", p) for k, p in enumerate(files)])
    if twice:
        raise UsageError(f"{twice}: give each part once")
    out = output or cfg.output
    if not out:
        raise UsageError("no output: give -o/--output or 'output:' in the settings")
    check_outputs([("output", out)], [("the settings", setting), *(("an input", p) for p in files)])
    cls = parse_classes(classes) if classes or not cfg.classes else check_classes(cfg.classes, f"{where}: classes")
    h, w = height or cfg.height, width or cfg.width
    prefer = prefer or cfg.prefer
    strict = bool(strict or cfg.strict)
    clean = build_cleaner(cfg.postprocess, cls, h, w, where)
    precompile(note, "read", "merge", *(["clean"] if clean is not None else []))
    expected = _expected_images(out)
    preds = [_read_noting(path, cls, h, w, note) for path in files]
    plan = plan_merge(preds, prefer)
    if expected is not None:
        expected.check(plan.images, f"the merged parts ({', '.join(files[:3])}{', …' if len(files) > 3 else ''})")
    if strict and plan.strict_error():
        raise DataError(plan.strict_error())
    with _progress(len(plan.images), quiet, desc="merge") as bar:
        write_merge(plan, out, bar, clean)
    click.echo(f"merge: {plural(len(files), 'file')} → {out}: {plural(len(plan.images), 'image')} × "
               f"{plural(len(cls), 'class')}: {plural(plan.expected, 'row')} expected, "
               f"{plan.expected - plan.missing:,} present, {plan.missing:,} missing"
               + (f" (written as empty masks; first: {plan.first_missing()})" if plan.missing else ""))
    taken = f", taken from the {prefer} file (first: {plan.first_conflict()})" if plan.conflicts else ""
    click.echo(f"  overlaps: {plural(plan.overlaps, 'row')} in several files: {plan.overlaps - plan.conflicts:,} "
               f"identical, {plan.conflicts:,} conflicting{taken}")
    for path, n in zip(files, plan.rows_by_part(), strict=True):
        click.echo(f"  {path}: {plural(n, 'row')} taken")
    if clean is not None:
        click.echo("postprocess (inline):\n" + "\n".join(clean.summary()))


@cli.command()
@click.option("--setting", required=True, type=click.Path(dir_okay=False),
              help="Soft-voting settings (the original soft_voting_setting.yaml works as is).")
@click.option("--output", "-o", default=None,
              help="Output CSV, written atomically (default: save_dir/output_name of the settings, which default "
                   "to . and output.csv: ./output.csv in the current folder). Without -o the path is printed.")
@click.option("--device", default=None, help="Device for models: cpu, cuda, cuda:N (default: CUDA when available).")
@click.option("--engine", type=click.Choice(["auto", "cpu", "device"]), default=None,
              help="Vote with numba kernels on the CPU (cpu) or with torch on --device (device); "
                   "auto (default): device unless the device is the CPU.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Images voted at once, in threads (default: num_workers of the settings).")
@click.option("--source", multiple=True, metavar="NAME=DIR", help="Re-point the prob_maps source NAME to DIR.")
@quiet_option
@handle_errors
def soft(setting, output, device, engine, workers, source, quiet):
    """Soft vote of models and saved probability maps: keep a pixel where
    Σ wᵢ·pᵢ / Σ wᵢ > threshold (strict; per-class thresholds and weights allowed).

    \b
    Models (model_paths: {input size: [checkpoints]}): each image under image_root
    (*.png, recursive; CSV names are basenames) is read as 3-channel BGR scaled to [0,1]
    (as cv2.imread did), resized to the input size (bilinear, half-pixel centres, no
    antialias: the arithmetic of cv2 INTER_LINEAR), run through the model (TorchScript, or
    a pickled whole module unpickled with root_path on sys.path); the output (a tensor or
    a dict with 'out') is upsampled bilinearly to full size (align_corners=False), then
    sigmoid. tta: [hflip] averages the logits of the mirrored image first.
    Maps (prob_maps: folders of <stem>.npy/.npz, shape (C,h,w), any h×w): probabilities
    (float16/32), logits (logits: true; sigmoid after upsampling) or uint8/uint16 with a
    scale; resampled bilinearly like torch interpolate(align_corners=False); with boxes:
    resampled to the box and placed on the canvas (clipped), 0 outside it.
    weights: per source (checkpoint stems, then map folder names or their name:), as a
    list in that order or a mapping, optionally per class ({default: …, <class>: …});
    multiplied by each map's own weight; 0 leaves a source out for that class.
    A missing map is an error unless missing: skip (then the mean is over the sources
    present). Canvas: height × width (default 2048²). Relative paths are relative to the
    current folder. The output goes to -o, else save_dir/output_name (default
    ./output.csv, as the original tool), whose path is then printed on stdout.
    See soft_voting_setting.yaml (top level), settings/soft_maps_example.yaml.

    Engines (engine: or --engine): 'device' keeps the whole vote on the device with torch
    (upsample, sigmoid, weighted sum / Σ weights, > threshold, run boundaries; class_chunk
    classes at a time, default 8) and overlaps reading and writing in threads; 'cpu' votes
    with numba kernels on the CPU; 'auto' (default) takes 'device' unless the device is the
    CPU. tf32: false forbids TF32 in the models' convolutions on GPUs.
    """
    from core.warmup import precompile
    from ensemble.soft_job import build_job, load_models, resolve_engine, run_job
    from settings.loader import load_yaml, parse_model
    from settings.soft import SoftSettings, source_bases, source_names

    note = _echo_err(quiet)
    cfg = parse_model(SoftSettings, load_yaml(setting), setting)
    if device is not None:
        cfg.device = device
    if engine is not None:
        cfg.engine = engine
    if workers is not None:
        cfg.num_workers = workers
    names = source_names(cfg)[len(cfg.models()):]
    for name, folder in _parse_named(source):
        if name not in names:
            raise UsageError(f"--source {name}={folder}: {setting} has no prob_maps source {name!r} "
                             f"(map sources: {', '.join(names) or 'none'})")
        entry = cfg.prob_maps[names.index(name)]
        entry.name, entry.path = name, folder  # keeps the name that weights refer to
    job = build_job(cfg, setting)
    renamed = [f"{b} → {n}" for b, n in zip(source_bases(cfg), job.names, strict=True) if b != n]
    if renamed:
        note(f"note: sources with the same name were renamed ({', '.join(renamed)}); weights: use these names")
    out = Path(output) if output else cfg.output_path()
    if not output and not {"save_dir", "output_name"} & cfg.model_fields_set:
        note(f"note: no -o and no save_dir/output_name in {setting}: writing {out} in the current folder")
    if not output:
        out.parent.mkdir(parents=True, exist_ok=True)
    check_outputs([("output", out)], [("the settings", setting), *(("a model", p) for _, p in cfg.models()),
                                      *(("a boxes file", m.boxes) for m in cfg.prob_maps)],
                  [*((f"the maps folder of {m.name}", m.folder) for m in job.maps), ("image_root", cfg.image_root)])
    resolve_engine(job)
    load_models(job, note)
    precompile(note, *(["soft"] if job.engine == "cpu" else []), *(["clean"] if job.clean else []))
    with _progress(len(job.images), quiet, desc="soft vote") as bar:
        rows = run_job(job, out, bar)
    kinds = []
    if job.models:
        kinds.append(f"{plural(len(job.models), 'model')} on {job.device}" + (" with hflip TTA" if job.tta else ""))
    if job.maps:
        kinds.append(plural(len(job.maps), "map source"))
    engine = f"torch on {job.device}" if job.engine == "device" else "numba on the CPU"
    note(f"soft vote ({engine}): {' + '.join(kinds)}, {plural(len(job.images), 'image')}, {plural(rows, 'row')} "
         f"→ {out}")
    for name, n in job.skipped.items():
        note(f"note: source {name} had no map for {plural(n, 'image')} (missing: skip; averaged over the others)")
    if job.clean is not None:
        click.echo("postprocess (inline):\n" + "\n".join(job.clean.summary()))
    if not output:  # the settings chose the path, maybe by default: say where it went, --quiet or not
        click.echo(f"output: {out}")


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
    Per-class rules (--setting FILE, or a 'postprocess:' section in the settings of
    hard, weighted, soft, select and merge, applied inline; in select's, a key may also
    be one of the file's groups: a class's own entry beats its group's, a group's beats
    'default'):
      default: {keep_largest: 1, fill_holes: true, min_size: 50}
      finger-5: {keep_largest: 2}     # overrides only the keys it names
      Trapezoid: null                 # leave this class alone
    Flags override 'default'; class entries keep the keys they name. The file may also
    be {postprocess: <that mapping>, classes:, height:, width:, workers:, output:}.
    Classes without rules are copied verbatim. Prints per class: masks changed,
    components removed, holes filled, pixels removed and added.
    """
    from core.classes import check_classes, parse_classes
    from core.warmup import precompile
    from postprocess.job import clean_predictions
    from settings.loader import load_yaml, parse_model
    from settings.postprocess import PostprocessFile, build_cleaner

    note = _echo_err(quiet)
    data = load_yaml(setting) if setting else {}
    cfg = parse_model(PostprocessFile, data if "postprocess" in data else {"postprocess": data}, setting or "flags")
    out = output or cfg.output
    if not out:
        raise UsageError("no output: give -o/--output or 'output:' in the settings")
    check_outputs([("output", out)], [("the input", input_csv), ("the settings", setting)])
    cls = parse_classes(classes) if classes or not cfg.classes else check_classes(cfg.classes, setting)
    h, w = height or cfg.height, width or cfg.width
    flags = dict(open=open_r, close=close_r, min_size=min_size, keep_largest=keep_largest, fill_holes=fill_holes,
                 max_hole=max_hole, connectivity=int(connectivity) if connectivity else None)
    cleaner = build_cleaner(cfg.postprocess, cls, h, w, setting or "flags", flags)
    if cleaner is None:
        given = any(v not in (None, False) for k, v in flags.items() if k != "connectivity") or setting
        raise UsageError("nothing to do: " + ("the rules given change no mask (--min-size 1, --keep-largest 0 and "
                                              "radius 0 are no-ops)" if given else
                                              "give a rule (--keep-largest, --min-size, --fill-holes, --open, "
                                              "--close) or --setting"))
    precompile(note, "read", "clean")
    preds = _read_noting(input_csv, cls, h, w, note)
    with _progress(len(preds.images), quiet, desc="postprocess") as bar:
        rows = clean_predictions(preds, cleaner, out, workers or cfg.workers, bar)
    note(f"postprocess: {plural(len(preds.images), 'image')}, {plural(rows, 'row')} → {out}")
    click.echo("\n".join(cleaner.summary()))


if __name__ == "__main__":
    cli()

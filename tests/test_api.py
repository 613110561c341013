"""The public functions: the same results as the commands, from paths or from memory."""

from __future__ import annotations

import builtins
import io

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, default_signals, run_cli

from core.classes import DEFAULT_CLASSES
from core.errors import DataError, UsageError
from core.predictions import Predictions
from core.synthetic import Generator, write_set

SIZE = ("--height", 64, "--width", 64)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("set")
    gen = Generator(n_images=3, n_models=3, height=64, width=64, seed=3)
    return gen, write_set(gen, folder)


def test_hard_vote_in_memory_equals_the_command(small_set, tmp_path, monkeypatch):
    from ensemble import hard_vote

    gen, paths = small_set
    out = tmp_path / "cli.csv"
    assert run_cli("hard", *(paths[m] for m in gen.model_names), "-o", out, *SIZE, "-q").exit_code == 0
    frames = {m: Predictions.read(paths[m], DEFAULT_CLASSES, 64, 64).to_frame() for m in gen.model_names}

    def refuse(file, mode="r", *args, **kwargs):  # an in-memory vote writes nothing
        if any(ch in mode for ch in "wax+"):
            raise AssertionError(f"wrote {file}")
        return real_open(file, mode, *args, **kwargs)

    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    result = hard_vote(frames, height=64, width=64)
    monkeypatch.undo()
    assert result.output is None and result.rows == 3 * 29 and list(result.sources) == list(gen.model_names)
    assert result.predictions.to_frame().equals(Predictions.read(out, DEFAULT_CLASSES, 64, 64).to_frame())


def test_weighted_vote_paths_and_output(small_set, tmp_path):
    from ensemble import weighted_vote

    gen, paths = small_set
    names = list(gen.model_names)
    out = tmp_path / "w.csv"
    assert run_cli("weighted", *(paths[m] for m in names), "-o", out, "--weights", "1,1,3", *SIZE, "-q").exit_code == 0
    mine = tmp_path / "mine.csv"
    r = weighted_vote(
        [paths[m] for m in names],
        weights=[1, 1, 3],
        output=mine,
        height=64,
        width=64,
        settings={"threshold": {"default": 0.5}},
    )
    assert r.output == str(mine) and r.predictions is None and mine.read_bytes() == out.read_bytes()
    per_class = weighted_vote(
        [paths[m] for m in names], height=64, width=64, settings={"weights": {"default": [1, 1, 1], "Ulna": [0, 0, 1]}}
    )
    assert per_class.overrides[1:] == ["  Ulna: weights " + ", ".join(f"{n}={w}" for n, w in zip(names, "001"))]
    ulna = per_class.predictions.rle(0, "Ulna")
    assert ulna == Predictions.read(paths[names[2]], DEFAULT_CLASSES, 64, 64).rle(0, "Ulna")


def test_vote_errors_name_the_parameter(small_set):
    from ensemble import hard_vote, weighted_vote

    gen, paths = small_set
    files = [paths[m] for m in gen.model_names]
    with pytest.raises(UsageError, match="^weights: ") as e:
        weighted_vote(files, weights=[1, 2], height=64, width=64)
    assert e.value.param == "weights" and isinstance(e.value, ValueError)
    with pytest.raises(UsageError, match="allow_duplicate"):
        hard_vote([files[0], files[0]], height=64, width=64)
    one = Predictions.read(files[0], DEFAULT_CLASSES, 64, 64).to_frame()
    with pytest.raises(DataError, match="missing row"):
        hard_vote({"a": one, "b": one.iloc[1:]}, height=64, width=64)
    assert hard_vote({"a": one, "b": one.iloc[1:]}, height=64, width=64, missing="empty").n_missing == 1
    assert np.array_equal(hard_vote({"a": one, "b": one}, height=64, width=64).predictions.rows.shape, (3, 29))
    with pytest.raises(UsageError, match="two sources"):
        hard_vote({"a": one}, height=64, width=64)
    assert isinstance(one, pd.DataFrame)


def test_evaluate_in_memory_equals_the_command(small_set, tmp_path):
    from evaluation import evaluate

    gen, paths = small_set
    out = tmp_path / "scores.csv"
    r = run_cli("evaluate", "--gt", paths["gt"], *(paths[m] for m in gen.model_names), "-o", out, *SIZE, "-q")
    assert r.exit_code == 0
    gt = Predictions.read(paths["gt"], DEFAULT_CLASSES, 64, 64)
    scores = evaluate(
        {m: Predictions.read(paths[m], DEFAULT_CLASSES, 64, 64).to_frame() for m in gen.model_names},
        gt.to_frame(),
        height=64,
        width=64,
    )
    assert scores.csv() == out.read_text() and scores.table() in r.stdout
    assert scores.per_image.shape == (3, 3, 29) and np.all(evaluate([gt], gt, height=64, width=64).overall == 1)


def test_clean_predictions_in_memory_equals_the_command(small_set, tmp_path):
    from postprocess import clean_predictions

    gen, paths = small_set
    out = tmp_path / "clean.csv"
    r = run_cli("postprocess", paths[gen.model_names[0]], "-o", out, "--keep-largest", 1, "--fill-holes", *SIZE)
    assert r.exit_code == 0
    frame = Predictions.read(paths[gen.model_names[0]], DEFAULT_CLASSES, 64, 64).to_frame()
    result = clean_predictions(frame, {"default": {"keep_largest": 1, "fill_holes": True}}, height=64, width=64)
    assert result.predictions.to_frame().equals(Predictions.read(out, DEFAULT_CLASSES, 64, 64).to_frame())
    assert "\n".join(result.summary) in r.stdout
    with pytest.raises(UsageError, match="nothing to do") as e:
        clean_predictions(frame, rules={"min_size": 1}, height=64, width=64)
    assert e.value.param == "rules"


def test_select_in_memory_and_settings_written_reproduce_it(small_set, tmp_path):
    from fusion import select

    gen, paths = small_set
    m1, m2 = gen.model_names[:2]
    frames = {m: Predictions.read(paths[m], DEFAULT_CLASSES, 64, 64) for m in (m1, m2)}
    r = select(frames, {"default": m1, "Ulna": m2})
    assert r.rows_by_source() == {m1: 3 * 28, m2: 3}
    assert r.predictions.rle(1, "Ulna") == frames[m2].rle(1, "Ulna")
    assert r.predictions.rle(1, "Radius") == frames[m1].rle(1, "Radius")
    settings = tmp_path / "sel.yaml"
    select({m: paths[m] for m in (m1, m2)}, {"default": m1, "Ulna": m2}, height=64, width=64).selection.write(settings)
    out = tmp_path / "o.csv"
    assert run_cli("select", "--setting", settings, "-o", out, *SIZE, "-q").exit_code == 0
    assert Predictions.read(out, DEFAULT_CLASSES, 64, 64).to_frame().equals(r.predictions.to_frame())


def test_tune_in_memory_writes_the_settings_the_command_writes(small_set, tmp_path):
    from evaluation import tune

    gen, paths = small_set
    out = tmp_path / "t.yaml"
    args = [paths[m] for m in gen.model_names]
    assert run_cli("tune", "--gt", paths["gt"], *args, "-o", out, *SIZE, "-q").exit_code == 0
    frames = {m: Predictions.read(paths[m], DEFAULT_CLASSES, 64, 64).to_frame() for m in gen.model_names}
    r = tune(frames, paths["gt"], height=64, width=64)
    import yaml

    written = yaml.safe_load(out.read_text())
    assert {k: v for k, v in r.settings.items() if k != "sources"} == {
        k: v for k, v in written.items() if k != "sources"
    }
    assert r.report().splitlines()[0].startswith("class") and r.n_images == 3
    with pytest.raises(UsageError, match="^levels: ") as e:
        tune(frames, paths["gt"], levels=[0], height=64, width=64)
    assert e.value.param == "levels"


def test_soft_vote_from_a_dict_in_memory_equals_the_command(tmp_path):
    from ensemble import soft_vote

    gen = Generator(n_images=2, n_models=2, height=64, width=64, seed=5)
    paths = write_set(gen, tmp_path, maps={m: 16 for m in gen.model_names})
    settings = {
        "prob_maps": [{"path": str(paths[f"maps/{m}"])} for m in gen.model_names],
        "threshold": 0.4,
        "height": 64,
        "width": 64,
        "engine": "cpu",
    }
    from settings.loader import write_yaml

    write_yaml(tmp_path / "s.yaml", settings)
    out = tmp_path / "o.csv"
    assert run_cli("soft", "--setting", tmp_path / "s.yaml", "-o", out, "-q").exit_code == 0
    r = soft_vote(settings)
    assert r.output is None and r.engine == "cpu" and r.n_maps == 2 and r.rows == 2 * 29
    assert r.predictions.to_frame().equals(Predictions.read(out, DEFAULT_CLASSES, 64, 64).to_frame())
    pytest.importorskip("torch")
    on_device = soft_vote(settings, engine="device", device="cpu")
    assert on_device.engine == "device" and on_device.predictions.to_frame().equals(r.predictions.to_frame())
    with pytest.raises(UsageError, match="^maps: ") as e:
        soft_vote(settings, maps={"nope": tmp_path})
    assert e.value.param == "maps"


def test_lazy_exports_behave_as_plain_attributes():
    """``dir`` lists a package's lazy exports, ``from core import *`` imports each, and
    ``core.check`` stays the function whatever was touched first."""
    import subprocess
    import sys

    code = (
        "import core, ensemble, evaluation, postprocess, settings\n"
        "assert {'check', 'Predictions', 'CheckReport'} <= set(dir(core))\n"
        "assert {'hard_vote', 'soft_vote'} <= set(dir(ensemble)) and 'clean_predictions' in dir(postprocess)\n"
        "core.CheckReport\n"
        "import core.validate\n"
        "assert callable(core.check) and core.check.__module__ == 'core.validate', core.check\n"
        "ns = {}\n"
        "exec('from core import *', ns)\n"
        "assert set(core.__all__) <= set(ns) and callable(ns['check'])\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, preexec_fn=default_signals
    )
    assert done.stdout.strip() == "ok", done.stderr

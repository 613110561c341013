"""Classes a vote fuses by STAPLE (``staple:`` in the settings of ``hard`` and ``weighted``):
each equals, mask for mask, what ``staple`` fuses from the same files (pooled, that region),
the other classes what the vote gives, and inline cleaning applies to both."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from helpers import run_cli

from core.errors import UsageError
from core.stream import selecting
from core.synthetic import Generator, write_set
from ensemble import weighted_vote
from postprocess.cleaner import Rules, clean
from quality import staple

CLASSES = ("a", "b", "c", "d")
H, W = 48, 40
SHAPE = ["--classes", ",".join(CLASSES), "--height", str(H), "--width", str(W)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sc")
    return write_set(Generator(n_images=4, n_models=3, height=H, width=W, classes=CLASSES, seed=9), folder)


def rles(path) -> dict[tuple[str, str], str]:
    f = pd.read_csv(path, keep_default_na=False)
    return {(i, c): r for i, c, r in zip(f["image_name"], f["class"], f["rle"])}


def test_staple_classes_equal_the_staple_command(files, tmp_path):
    models = {m: str(files[m]) for m in ("model1", "model2", "model3")}
    s = tmp_path / "s.yaml"
    s.write_text(
        yaml.safe_dump(
            {
                "sources": models,
                "weights": {"default": {"model1": 2, "model2": 1, "model3": 1}},
                "staple": {"a": "disagreement", "c": "all"},
            }
        )
    )
    out = tmp_path / "w.csv"
    r = run_cli("weighted", "--setting", s, "-o", out, *SHAPE)
    assert r.exit_code == 0, r.output
    assert "a: STAPLE (disagreement), sensitivity model1" in r.stderr and "c: STAPLE (all)" in r.stderr
    got = rles(out)
    by = {
        region: staple(models, classes=CLASSES, height=H, width=W, region=region) for region in ("all", "disagreement")
    }
    voted = weighted_vote(models, weights=[2, 1, 1], classes=CLASSES, height=H, width=W).predictions
    for (image, cls), rle in got.items():
        if cls == "a":
            assert rle == by["disagreement"].to_frame().set_index(["image_name", "class"]).loc[(image, cls), "rle"]
        elif cls == "c":
            assert rle == by["all"].to_frame().set_index(["image_name", "class"]).loc[(image, cls), "rle"]
        else:
            assert rle == voted.rle(image, cls)
    # the same through the library, and with hard: same STAPLE classes, the others voted equally
    lib = weighted_vote(settings=str(s), classes=CLASSES, height=H, width=W, output=tmp_path / "lib.csv")
    assert rles(lib.output) == got and any("STAPLE (disagreement)" in line for line in lib.overrides)
    s.write_text(yaml.safe_dump({"sources": models, "staple": {"default": "disagreement", "b": "vote"}}))
    r = run_cli("hard", "--setting", s, "-o", out, *SHAPE, "-q")
    assert r.exit_code == 0, r.output
    hard = weighted_vote(models, classes=CLASSES, height=H, width=W).predictions
    fused = by["disagreement"].to_frame().set_index(["image_name", "class"])["rle"]
    for (image, cls), rle in rles(out).items():
        assert rle == (hard.rle(image, cls) if cls == "b" else fused[image, cls])


def test_inline_cleaning_applies_to_staple_classes(files, tmp_path):
    models = {m: str(files[m]) for m in ("model1", "model2", "model3")}
    rules = Rules(keep_largest=1, fill_holes=True, min_area=30)
    s = tmp_path / "s.yaml"
    s.write_text(
        yaml.safe_dump(
            {
                "sources": models,
                "staple": {"b": "all"},
                "postprocess": {"default": rules.model_dump(exclude_defaults=True)},
            }
        )
    )
    out = tmp_path / "w.csv"
    r = run_cli("weighted", "--setting", s, "-o", out, *SHAPE, "--workers", "2")
    assert r.exit_code == 0, r.output
    fused = staple(models, classes=CLASSES, height=H, width=W)
    hard = weighted_vote(models, classes=CLASSES, height=H, width=W).predictions
    from core.codec import format_rle

    for (image, cls), rle in rles(out).items():
        base = fused.runs(image, cls) if cls == "b" else hard.runs(hard.image_index(image), CLASSES.index(cls))
        assert rle == format_rle(clean(base, H, W, rules)), (image, cls)


@pytest.mark.parametrize(
    "staple_section, words",
    [
        ({"e": "all"}, "staple: unknown class 'e'"),
        ({"a": "some"}, "staple.a"),
        ({"a": 1}, "staple.a"),
    ],
)
def test_bad_staple_sections_are_one_line(files, tmp_path, staple_section, words):
    s = tmp_path / "s.yaml"
    s.write_text(yaml.safe_dump({"sources": [str(files["model1"]), str(files["model2"])], "staple": staple_section}))
    r = run_cli("weighted", "--setting", s, "-o", tmp_path / "o.csv", *SHAPE)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr
    assert not (tmp_path / "o.csv").exists()


def test_a_cluster_chunk_refuses_staple_classes(files):
    models = {m: str(files[m]) for m in ("model1", "model2")}
    with selecting(0, 1), pytest.raises(UsageError, match="whole set in one process"):
        weighted_vote(models, settings={"staple": {"a": "all"}}, classes=CLASSES, height=H, width=W)


def test_the_report_summary_names_staple_classes_and_gates(files, tmp_path):
    from report.setting import summarize

    s = tmp_path / "s.yaml"
    s.write_text(
        yaml.safe_dump(
            {
                "sources": {m: str(files[m]) for m in ("model1", "model2")},
                "staple": {"b": "disagreement"},
                "postprocess": {"c": {"min_area": 40}},
            }
        )
    )
    rows = {r[0]: r[1:] for r in summarize(str(s), CLASSES).rows}
    assert rows["b"][0] == "STAPLE (disagreement) of all sources" and rows["a"][0].startswith("all equal")
    assert rows["c"][2] == "min area 40" and rows["a"][2] == "—"

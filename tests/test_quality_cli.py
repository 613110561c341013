"""``staple`` and ``check --qa`` through the command line: the files they write equal the
library's results (``quality.staple``, ``quality.qa_flags``, themselves tested against dense
references), settings and flags, and every refusal in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import CLASSES, run_cli, write_csv

from core.errors import UsageError
from quality import qa_flags, staple, write_flags

H, W = 9, 11
SHAPE = ["--classes", ",".join(CLASSES), "--height", str(H), "--width", str(W)]
IMAGES = [f"img{i}.png" for i in range(5)]


def rle_of(mask: np.ndarray) -> str:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.reshape(-1).astype(np.int8), [0]])))
    return " ".join(f"{a + 1} {b - a}" for a, b in zip(edges[::2], edges[1::2]))


@pytest.fixture
def sources(tmp_path):
    """Four noisy copies of a truth (flip rates 1 % … 30 %), 5 images × 3 classes, 9 × 11."""
    rng = np.random.default_rng(7)
    truth = rng.random((len(IMAGES), len(CLASSES), H, W)) < 0.35
    paths = {}
    for k, rate in enumerate((0.01, 0.06, 0.15, 0.3)):
        noisy = truth ^ (rng.random(truth.shape) < rate)
        rows = [(img, cls, rle_of(noisy[i, c])) for i, img in enumerate(IMAGES) for c, cls in enumerate(CLASSES)]
        paths[f"m{k + 1}"] = write_csv(tmp_path / f"m{k + 1}.csv", rows)
    return paths


def one_line_error(r, code: int = 2) -> str:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), r.stderr
    return r.stderr


@pytest.mark.parametrize(
    "flags, kwargs",
    [
        ([], {}),
        (["--region", "disagreement"], {"region": "disagreement"}),
        (["--scope", "image"], {"scope": "image"}),
        (["--prior", "estimate", "--confidence", "0.7"], {"prior": "estimate", "confidence": 0.7}),
        (
            ["--init-sensitivity", "0.8", "--init-specificity", "0.9"],
            {"init_sensitivity": 0.8, "init_specificity": 0.9},
        ),
        (["--method", "simple", "--alpha", "0.5"], {"method": "simple", "alpha": 0.5}),
        (["--method", "simple", "--scope", "image"], {"method": "simple", "scope": "image"}),
    ],
)
def test_staple_writes_what_the_library_computes(sources, tmp_path, flags, kwargs):
    fused, est = tmp_path / "fused.csv", tmp_path / "est.csv"
    r = run_cli("staple", *sources.values(), "-o", fused, "--estimates", est, *flags, *SHAPE)
    assert r.exit_code == 0, r.output
    lib = staple(list(map(str, sources.values())), classes=CLASSES, height=H, width=W, **kwargs)
    got = pd.read_csv(fused, keep_default_na=False)
    assert got.values.tolist() == lib.to_frame().values.tolist()
    e = pd.read_csv(est)
    assert list(e.columns) == list(lib.columns)
    assert e.values.tolist() == lib.estimates_frame().values.tolist()  # floats read back exactly
    assert list(e["source"].unique()) == ["m1", "m2", "m3", "m4"]  # file stems
    # the summary on stderr: each source per class, the means
    what = "sensitivity" if lib.method == "staple" else "weight"
    assert f"{what} per source" in r.stderr and r.stderr.count("\n") >= len(CLASSES) + 3
    values = (lib.sensitivity if lib.method == "staple" else lib.weights).mean(0)
    line = next(s for s in r.stderr.splitlines() if s.startswith("b "))
    assert line.split()[1:5] == [f"{v:.4f}" for v in values[:, 1]]
    assert "fused masks → " in r.stderr and "estimates → " in r.stderr


def test_sensitivities_rank_the_sources_by_their_noise(sources, tmp_path):
    est = tmp_path / "est.csv"
    r = run_cli("staple", *sources.values(), "--estimates", est, *SHAPE, "-q")
    assert r.exit_code == 0 and r.stderr == "" and r.stdout == ""
    e = pd.read_csv(est)
    for _, per_class in e.groupby("class"):
        assert list(per_class.sort_values("sensitivity", ascending=False)["source"]) == ["m1", "m2", "m3", "m4"]
    assert not (tmp_path / "fused.csv").exists()


def test_settings_names_and_flags_over_them(sources, tmp_path):
    s = tmp_path / "s.yaml"
    fused = tmp_path / "fused.csv"
    s.write_text(
        "sources: {" + ", ".join(f"n{k}: {p}" for k, p in enumerate(sources.values())) + "}\n"
        f"output: {fused}\nestimates: {tmp_path / 'est.csv'}\nregion: disagreement\nconfidence: 0.6\n"
        f"classes: [{', '.join(CLASSES)}]\nheight: {H}\nwidth: {W}\n"
    )
    r = run_cli("staple", "--setting", s, "-q")
    assert r.exit_code == 0, r.output
    named = {f"n{k}": str(p) for k, p in enumerate(sources.values())}
    lib = staple(named, classes=CLASSES, height=H, width=W, region="disagreement", confidence=0.6)
    assert pd.read_csv(fused, keep_default_na=False).values.tolist() == lib.to_frame().values.tolist()
    assert pd.read_csv(tmp_path / "est.csv").values.tolist() == lib.estimates_frame().values.tolist()
    # a flag replaces the setting; --source re-points a named source
    copy = tmp_path / "copy.csv"
    copy.write_bytes(sources["m2"].read_bytes())
    r = run_cli("staple", "--setting", s, "--region", "all", "--source", f"n0={copy}", "-q")
    assert r.exit_code == 0, r.output
    named["n0"] = str(copy)
    lib = staple(named, classes=CLASSES, height=H, width=W, confidence=0.6)
    assert pd.read_csv(tmp_path / "est.csv").values.tolist() == lib.estimates_frame().values.tolist()
    err = one_line_error(run_cli("staple", "--setting", s, "--source", f"n9={sources['m2']}"))
    assert "names no source 'n9'" in err
    err = one_line_error(run_cli("staple", "--setting", s, sources["m1"]))
    assert "positional CSVs" in err
    s.write_text(s.read_text() + "confidance: 0.4\n")
    err = one_line_error(run_cli("staple", "--setting", s))
    assert "unknown key" in err and "did you mean 'confidence'" in err


@pytest.mark.parametrize(
    "args, words",
    [
        (["--confidence", "1.5"], "--confidence"),
        (["--confidence", "nan"], "--confidence"),
        (["--init-sensitivity", "1"], "--init-sensitivity"),
        (["--init-specificity", "0"], "--init-specificity"),
        (["--alpha", "-1"], "--alpha"),
        (["--alpha", "inf"], "--alpha"),
        (["--scope", "global"], "--scope"),
        (["--method", "simple", "--region", "disagreement"], "--region: SIMPLE"),
        (["--height", "0"], "--height"),
    ],
)
def test_bad_values_are_one_line(sources, tmp_path, args, words):
    err = one_line_error(run_cli("staple", *sources.values(), "-o", tmp_path / "f.csv", *SHAPE, *args))
    assert words in err
    assert not (tmp_path / "f.csv").exists()


def test_sources_count_outputs_and_missing_rows(sources, tmp_path):
    out = tmp_path / "f.csv"
    many = [sources[f"m{1 + k % 4}"] for k in range(17)]
    copies = [tmp_path / f"c{k}.csv" for k in range(17)]
    for p, c in zip(many, copies):
        c.write_bytes(p.read_bytes())
    err = one_line_error(run_cli("staple", *copies, "-o", out, *SHAPE))
    assert "at most 16 sources" in err and "got 17" in err
    assert run_cli("staple", *copies[:16], "--estimates", tmp_path / "e.csv", *SHAPE, "-q").exit_code == 0
    assert "at least two sources" in one_line_error(run_cli("staple", sources["m1"], "-o", out, *SHAPE))
    assert "nothing to write" in one_line_error(run_cli("staple", *sources.values(), *SHAPE))
    assert "give each file once" in one_line_error(run_cli("staple", sources["m1"], "--source", f"x={sources['m1']}"))
    err = one_line_error(run_cli("staple", *sources.values(), "-o", sources["m1"], *SHAPE))
    assert "would overwrite" in err
    err = one_line_error(run_cli("staple", *sources.values(), "-o", out, "--estimates", out, *SHAPE))
    assert "--estimates" in err
    # a row absent from a source: exit 1, or an empty mask with --missing empty
    lines = sources["m4"].read_text().splitlines(keepends=True)
    short = tmp_path / "short.csv"
    short.write_text("".join(lines[:-1]))
    paths = [sources["m1"], sources["m2"], short]
    err = one_line_error(run_cli("staple", *paths, "-o", out, *SHAPE), code=1)
    assert "missing row" in err and "--missing empty" in err
    assert not out.exists()
    r = run_cli("staple", *paths, "-o", out, "--missing", "empty", *SHAPE)
    assert r.exit_code == 0 and "1 missing row read as empty masks" in r.stderr
    lib = staple(list(map(str, paths)), classes=CLASSES, height=H, width=W, missing="empty")
    assert pd.read_csv(out, keep_default_na=False).values.tolist() == lib.to_frame().values.tolist()


def test_fuse_false_gives_the_same_estimates_and_no_masks(sources):
    paths = list(map(str, sources.values()))
    full = staple(paths, classes=CLASSES, height=H, width=W, region="disagreement")
    only = staple(paths, classes=CLASSES, height=H, width=W, region="disagreement", fuse=False)
    assert only.masks is None and only.rows == 0
    assert only.estimates_frame().equals(full.estimates_frame())
    with pytest.raises(UsageError, match="fuse=False"):
        staple(paths, output="x.csv", classes=CLASSES, height=H, width=W, fuse=False)


# --- check --qa ---------------------------------------------------------------------------


@pytest.fixture
def planted(tmp_path):
    """A file with a fragmented mask, a missing one and an outlying area."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(30):
        for c, cls in enumerate(CLASSES):
            m = np.zeros((H, W), bool)
            y, x = rng.integers(0, 3, 2)
            m[y : y + 4 + c % 2, x : x + 5] = True
            if (i, cls) == (4, "a"):
                m[8, 10] = True  # a speck: two components
            if (i, cls) == (7, "b"):
                m[:] = False  # missing
            if (i, cls) == (9, "c"):
                m[:, :] = True  # far too large
            rows.append((f"i{i:02d}.png", cls, rle_of(m)))
    return write_csv(tmp_path / "planted.csv", rows)


def test_check_qa_writes_the_library_flags(planted, tmp_path):
    flags = tmp_path / "flags.csv"
    r = run_cli("check", planted, "--qa", flags, *SHAPE)
    assert r.exit_code == 0, r.output
    got = pd.read_csv(flags)
    lib = qa_flags(str(planted), classes=CLASSES, height=H, width=W)
    assert list(got.columns) == ["image_name", "class", "flag", "value"]
    assert got.values.tolist() == lib.frame().values.tolist()
    found = {(f.image, f.cls, f.flag) for f in lib.flags}
    assert {("i04.png", "a", "fragments"), ("i07.png", "b", "missing"), ("i09.png", "c", "area")} <= found
    assert r.stdout == run_cli("check", planted, *SHAPE).stdout  # check's own report, unchanged, on stdout
    assert lib.table() in r.stderr and f"QA flags → {flags}" in r.stderr
    r = run_cli("check", planted, "--qa", flags, *SHAPE, "-q")
    assert r.exit_code == 0 and r.stderr == ""


def test_check_qa_refusals(planted, tmp_path):
    err = one_line_error(run_cli("check", planted, "--qa", planted, *SHAPE))
    assert "--qa" in err and "would overwrite" in err
    bad = write_csv(tmp_path / "bad.csv", [("x.png", "a", "5 3 1 2")])
    flags = tmp_path / "flags.csv"
    r = run_cli("check", bad, "--qa", flags, *SHAPE)
    assert r.exit_code == 1 and not flags.exists() and "not written" in r.stderr


def test_flags_of_several_files_have_a_source_column(planted, tmp_path):
    lib = qa_flags(str(planted), classes=CLASSES, height=H, width=W)
    other = qa_flags(str(planted), classes=CLASSES, height=H, width=W, max_deviation=2.0)
    out = tmp_path / "several.csv"
    n = write_flags({"first": lib.flags, "second, too": other.flags}, out)
    got = pd.read_csv(out)
    assert n == len(lib.flags) + len(other.flags) == len(got)
    assert list(got.columns) == ["source", "image_name", "class", "flag", "value"]
    assert got["source"].tolist() == ["first"] * len(lib.flags) + ["second, too"] * len(other.flags)
    assert got.iloc[:, 1:].values.tolist() == pd.concat([lib.frame(), other.frame()]).values.tolist()

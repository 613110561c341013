"""A `postprocess:` section in any combining command equals running `postprocess` afterwards."""

from pathlib import Path

import yaml
from helpers import CLASSES, run_cli

from core.synthetic import Generator, write_set

H = W = 96
SHAPE = ["--classes", ",".join(CLASSES), "--height", H, "--width", W]
RULES = {"default": {"keep_largest": 1, "fill_holes": True}, "b": {"min_size": 40}, "c": None}


def _clean_after(tmp_path: Path, raw: Path, rules: dict = RULES) -> str:
    pp = tmp_path / "pp.yaml"
    pp.write_text(yaml.safe_dump(rules))
    out = tmp_path / "cleaned_after.csv"
    r = run_cli("postprocess", raw, "-o", out, "--setting", pp, *SHAPE, "--quiet")
    assert r.exit_code == 0, r.stderr
    return out.read_text()


def _synth(tmp_path: Path):
    gen = Generator(n_images=3, n_models=3, height=H, width=W, classes=CLASSES, seed=9)
    return gen, write_set(gen, tmp_path / "data", maps={"model1": 48, "model2": 32})


def test_select_and_merge_inline_equal_cleaning_afterwards(tmp_path):
    gen, paths = _synth(tmp_path)
    base = {
        "sources": {m: str(paths[m]) for m in gen.model_names},
        "select": {"a": "model2", "default": "model1"},
        "classes": list(CLASSES),
        "height": H,
        "width": W,
    }
    for cmd, settings, extra in [
        ("select", base, []),
        ("merge", {"classes": list(CLASSES), "height": H, "width": W}, [paths["model1"], paths["model3"]]),
    ]:
        raw, inline = tmp_path / f"{cmd}_raw.csv", tmp_path / f"{cmd}_inline.csv"
        (tmp_path / "s.yaml").write_text(yaml.safe_dump(settings))
        r = run_cli(cmd, *extra, "--setting", tmp_path / "s.yaml", "-o", raw, "--quiet")
        assert r.exit_code == 0, r.stderr
        (tmp_path / "s.yaml").write_text(yaml.safe_dump({**settings, "postprocess": RULES}))
        r = run_cli(cmd, *extra, "--setting", tmp_path / "s.yaml", "-o", inline, "--quiet")
        assert r.exit_code == 0, r.stderr
        assert "postprocess (inline)" in r.stdout
        assert inline.read_text() == _clean_after(tmp_path, raw)
        assert inline.read_text() != raw.read_text()  # the rules did change something


def test_soft_inline_equals_cleaning_afterwards(tmp_path):
    gen, paths = _synth(tmp_path)
    settings = {
        "CLASSES": list(CLASSES),
        "height": H,
        "width": W,
        "threshold": 0.4,
        "prob_maps": [{"path": str(paths["maps/model1"])}, {"path": str(paths["maps/model2"])}],
    }
    raw, inline = tmp_path / "soft_raw.csv", tmp_path / "soft_inline.csv"
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(settings))
    assert run_cli("soft", "--setting", tmp_path / "s.yaml", "-o", raw, "--quiet").exit_code == 0
    rules = {**RULES, "a": {"open": 3}}  # smooth maps leave no specks: make the rules bite
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({**settings, "postprocess": rules}))
    r = run_cli("soft", "--setting", tmp_path / "s.yaml", "-o", inline, "--quiet", "--workers", 2)
    assert r.exit_code == 0, r.stderr
    assert inline.read_text() == _clean_after(tmp_path, raw, rules)
    assert inline.read_text() != raw.read_text()

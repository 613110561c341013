"""Cluster runs: every command on Dask's distributed scheduler gives the
single-machine output byte for byte, for any chunk size, when a worker dies mid-run, and
fails on a bad input with the local one-line error and no output file.

One ``LocalCluster`` of two worker processes (each advertising ``GPU=1``, so the soft vote's
model tasks take their resource path on this CPU-only machine) serves the whole module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import default_signals, run_cli
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import cluster
from core.synthetic import Generator, write_set
from ensemble import hard_vote, soft_vote, weighted_vote
from evaluation import evaluate, tune
from postprocess import clean_predictions

ROOT = Path(__file__).resolve().parent.parent
H = W = 64
N_IMAGES = 15


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            resources={"GPU": 1},
            silence_logs=50,
        ) as lc,
        distributed.Client(lc) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    gen = Generator(n_images=N_IMAGES, n_models=3, height=H, width=W, seed=3)
    paths = write_set(gen, folder, maps={"model1": 32, "model2": 16})
    return folder, paths


def sources(paths):
    return {m: str(paths[m]) for m in ("model1", "model2", "model3")}


@pytest.fixture(scope="module")
def hard_local(data, tmp_path_factory):
    folder, paths = data
    out = tmp_path_factory.mktemp("local") / "hard.csv"
    hard_vote(sources(paths), output=out, height=H, width=W)
    return out.read_bytes()


@pytest.mark.parametrize("chunk", [1, 7, N_IMAGES])
def test_hard_vote_identical_for_chunk_sizes(client, data, hard_local, tmp_path, chunk):
    out = tmp_path / "o.csv"
    r = cluster.run(hard_vote, sources(data[1]), output=out, height=H, width=W, scheduler=client, chunk=chunk)
    assert out.read_bytes() == hard_local
    assert (r.images, r.chunks, r.rows) == (N_IMAGES, -(-N_IMAGES // chunk), N_IMAGES * 29)


@hsettings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 9),
    seed=st.integers(0, 50),
    chunk=st.one_of(st.none(), st.integers(1, 10)),
    ship=st.booleans(),
    weights=st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=3, max_size=3),
)
def test_weighted_vote_any_data_any_chunk(client, tmp_path, n, seed, chunk, ship, weights):
    if not any(weights):
        weights[0] = 1.0
    folder = tmp_path / f"s{n}-{seed}-{chunk}-{ship}"
    paths = write_set(Generator(n_images=n, n_models=3, height=32, width=32, seed=seed), folder)
    kw = dict(weights=weights, threshold=0.4, height=32, width=32)
    weighted_vote(sources(paths), output=folder / "local.csv", **kw)
    cluster.run(
        weighted_vote, sources(paths), output=folder / "dask.csv", scheduler=client, chunk=chunk, ship_inputs=ship, **kw
    )
    assert (folder / "dask.csv").read_bytes() == (folder / "local.csv").read_bytes()


def test_worker_killed_mid_run(client, data, hard_local, tmp_path):
    marker = tmp_path / "killed"
    out = tmp_path / "o.csv"
    cluster.run(
        hard_vote, sources(data[1]), output=out, height=H, width=W, scheduler=client, chunk=2, fail_once=str(marker)
    )
    assert marker.exists()  # a worker process did die running the first chunk
    assert out.read_bytes() == hard_local
    client.wait_for_workers(2, timeout=60)


@pytest.mark.parametrize("ship", [False, True])
def test_postprocess_and_cleaning_summary(client, data, tmp_path, ship):
    path = data[1]["model1"]
    rules = {"keep_largest": 1, "fill_holes": True}
    local = clean_predictions(path, rules=rules, output=tmp_path / "a.csv", height=H, width=W)
    r = cluster.run(
        clean_predictions,
        path,
        rules=rules,
        output=tmp_path / "b.csv",
        height=H,
        width=W,
        scheduler=client,
        chunk=4,
        ship_inputs=ship,
    )
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    assert r.cleaning == local.summary


@pytest.mark.parametrize("ship", [False, True])
def test_evaluate_scores_identical(client, data, ship):
    folder, paths = data
    local = evaluate(sources(paths), str(paths["gt"]), height=H, width=W)
    remote = cluster.run(
        evaluate, sources(paths), str(paths["gt"]), height=H, width=W, scheduler=client, chunk=4, ship_inputs=ship
    )
    assert np.array_equal(local.per_image, remote.per_image)
    assert remote.table() == local.table() and remote.csv() == local.csv()
    assert np.array_equal(local.iou, remote.iou) and remote.csv(iou=True) == local.csv(iou=True)


def test_tune_identical_settings(client, data):
    folder, paths = data
    maps = {"model1": str(paths["maps/model1"]), "model2": str(paths["maps/model2"])}
    kw = dict(maps=maps, height=H, width=W)
    local = tune(sources(paths), str(paths["gt"]), **kw)
    remote = cluster.run(tune, sources(paths), str(paths["gt"]), scheduler=client, **kw)
    assert remote.settings == local.settings and remote.soft_settings == local.soft_settings
    assert remote.report() == local.report() and remote.soft_report() == local.soft_report()


@pytest.mark.parametrize("ship", [False, True])
def test_tune_staple_and_area_gate_identical(client, tmp_path, ship):
    """Per-class tasks score STAPLE and the area gate as one process does (a set where both win)."""
    from test_tune_quality import CLASSES as QC
    from test_tune_quality import H as QH
    from test_tune_quality import W as QW
    from test_tune_quality import frame, validation_set

    truth, masks = validation_set()
    frame(truth).to_csv(tmp_path / "gt.csv", index=False)
    named = {}
    for n, m in masks.items():
        frame(m).to_csv(tmp_path / f"{n}.csv", index=False)
        named[n] = str(tmp_path / f"{n}.csv")
    kw = dict(staple=True, area_gate=True, classes=QC, height=QH, width=QW)
    local = tune(named, str(tmp_path / "gt.csv"), **kw)
    remote = cluster.run(tune, named, str(tmp_path / "gt.csv"), scheduler=client, ship_inputs=ship, **kw)
    assert "staple" in local.settings and "min_area" in str(local.settings["postprocess"])
    assert remote.settings == local.settings and remote.report() == local.report()


def soft_settings(folder: Path, maps: dict, **extra) -> dict:
    return {
        "prob_maps": [{"path": str(d)} for d in maps.values()],
        "height": H,
        "width": W,
        "engine": "cpu",
        "postprocess": {"default": {"keep_largest": 1}},
        **extra,
    }


def test_cli_connects_to_a_running_scheduler(client, data, hard_local, tmp_path):
    res = run_cli(
        "hard",
        *sources(data[1]).values(),
        "-o",
        tmp_path / "o.csv",
        "--height",
        H,
        "--width",
        W,
        "-q",
        "--scheduler",
        client.scheduler.address,
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o.csv").read_bytes() == hard_local


@pytest.mark.parametrize("engine", ["cpu", "device"])
def test_soft_maps_identical(client, data, tmp_path, engine):
    folder, paths = data
    if engine == "device":
        pytest.importorskip("torch")
    s = soft_settings(folder, {m: paths[f"maps/{m}"] for m in ("model1", "model2")}, engine=engine, device="cpu")
    local = soft_vote(s, output=tmp_path / "a.csv")
    r = cluster.run(soft_vote, s, output=tmp_path / "b.csv", scheduler=client, chunk=3)
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    assert r.cleaning == local.cleaning


def test_soft_models_once_per_worker_on_gpu_slots(client, tmp_path):
    torch = pytest.importorskip("torch")
    from PIL import Image

    from core import workercache

    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for k in range(7):
        Image.fromarray(rng.integers(0, 256, (40, 48), dtype=np.uint8), "L").save(tmp_path / "images" / f"i{k}.png")
    models = []
    for k, size in enumerate((16, 32)):
        torch.manual_seed(k)
        net = torch.nn.Conv2d(3, 2, 3, padding=1)
        torch.jit.save(torch.jit.trace(net, torch.rand(1, 3, size, size)), tmp_path / f"m{k}.pt")
        models.append((size, str(tmp_path / f"m{k}.pt")))
    s = {
        "image_root": str(tmp_path / "images"),
        "CLASSES": ["x", "y"],
        "height": 40,
        "width": 48,
        "batch_size": 2,
        "model_paths": {size: [p] for size, p in models},
        "tta": ["hflip"],
        "device": "cpu",
        "engine": "cpu",
    }
    soft_vote(s, output=tmp_path / "a.csv")
    before = client.run(lambda: workercache.loads["model"])
    r = cluster.run(soft_vote, s, output=tmp_path / "b.csv", scheduler=client, chunk=1)
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    assert r.chunk == 2  # rounded up to whole batches: the models see the same batches
    after = client.run(lambda: workercache.loads["model"])
    assert all(after[w] - before.get(w, 0) <= len(models) for w in after)  # loaded once per worker, not per chunk
    assert sum(after.values()) - sum(before.values()) >= len(models)


def test_bad_row_in_one_chunk_same_error_no_output(client, data, tmp_path):
    folder, paths = data
    bad = tmp_path / "maps2"
    bad.mkdir()
    stems = sorted(p.stem for p in Path(paths["maps/model2"]).iterdir())
    for i, stem in enumerate(stems):
        src = Path(paths["maps/model2"]) / f"{stem}.npz"
        if i == 9:  # one image, in one chunk, has a map of the wrong shape
            np.save(bad / f"{stem}.npy", np.zeros((3, 8, 8), np.float32))
        else:
            (bad / src.name).write_bytes(src.read_bytes())
    s = soft_settings(folder, {"model1": paths["maps/model1"], "model2": bad})
    with pytest.raises(ValueError) as local:
        soft_vote(s, output=tmp_path / "a.csv")
    with pytest.raises(ValueError) as remote:
        cluster.run(soft_vote, s, output=tmp_path / "b.csv", scheduler=client, chunk=2)
    assert type(remote.value) is type(local.value) and str(remote.value) == str(local.value)
    assert not list(tmp_path.glob("b.csv*")) and not list(tmp_path.glob(".b.csv*"))


def test_cli_bad_csv_same_line_and_exit_code(data, tmp_path):
    folder, paths = data
    lines = Path(paths["model2"]).read_text().splitlines(True)
    lines[40] = lines[40].rsplit(",", 1)[0] + ",7 x\n"
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(lines))
    args = ["hard", paths["model1"], bad, paths["model3"], "--height", H, "--width", W, "-q"]
    local = run_cli(*args, "-o", tmp_path / "a.csv")
    remote = run_cli(*args, "-o", tmp_path / "b.csv", "--scheduler", "local:2", "--chunk", "3")
    assert local.exit_code == remote.exit_code == 2
    assert local.stderr == remote.stderr and remote.stderr.count("\n") == 1
    assert not list(tmp_path.glob("*b.csv*"))


def test_cli_flags_and_settings_scheduler(data, hard_local, tmp_path):
    folder, paths = data
    setting = tmp_path / "s.yaml"
    setting.write_text(f"sources: {sources(paths)}\nscheduler: local:2\nchunk: 4\nheight: {H}\nwidth: {W}\n")
    res = run_cli("hard", "--setting", setting, "-o", tmp_path / "o.csv", "-q")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o.csv").read_bytes() == hard_local
    res = run_cli("hard", paths["model1"], paths["model2"], "-o", tmp_path / "x.csv", "--chunk", "3")
    assert res.exit_code == 2 and "--scheduler" in res.stderr
    res = run_cli("hard", paths["model1"], paths["model2"], "-o", tmp_path / "x.csv", "--scheduler", "nowhere")
    assert res.exit_code == 2 and "tcp://HOST:PORT" in res.stderr


def test_single_machine_path_never_imports_dask(data, tmp_path):
    folder, paths = data
    code = (
        "import sys, cli\n"
        "try:\n    cli.cli(sys.argv[1:], standalone_mode=False)\nfinally:\n"
        "    print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'cluster')))\n"
    )
    args = [
        "hard",
        *map(str, sources(paths).values()),
        "-o",
        str(tmp_path / "o.csv"),
        "--height",
        str(H),
        "--width",
        str(W),
        "-q",
    ]
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=default_signals,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_evaluate_missing_rows_same_message(client, data, tmp_path):
    folder, paths = data
    lines = Path(paths["model2"]).read_text().splitlines(True)
    cut = tmp_path / "cut.csv"
    cut.write_text("".join(lines[:100] + lines[101:300] + lines[330:]))  # one row, then a whole image, missing
    named = {"model1": str(paths["model1"]), "cut": str(cut)}
    with pytest.raises(ValueError) as local:
        evaluate(named, str(paths["gt"]), height=H, width=W)
    with pytest.raises(ValueError) as remote:
        cluster.run(evaluate, named, str(paths["gt"]), height=H, width=W, scheduler=client, chunk=2)
    assert str(remote.value) == str(local.value) and "missing in all" in str(local.value)


def test_worker_cache_makes_each_thing_once_across_threads(monkeypatch):
    import threading
    import time

    from core import workercache

    monkeypatch.setattr(workercache, "_cache", None)
    monkeypatch.setattr(workercache, "loads", __import__("collections").Counter())
    assert workercache.cached("csv", "k", lambda: 1) == 1 and not workercache.loads  # off: made, not kept
    workercache.enable(2)
    made = []

    def make():
        made.append(1)
        time.sleep(0.1)
        return 42

    threads = [threading.Thread(target=workercache.cached, args=("csv", "k", make)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made == [1] and workercache.loads["csv"] == 1
    with pytest.raises(ValueError):  # a failure is not kept: the next call raises it again
        workercache.cached("csv", "bad", lambda: int("x"))
    with pytest.raises(ValueError):
        workercache.cached("csv", "bad", lambda: int("x"))
    for k in range(3):  # least recently used dropped past the limit
        workercache.cached("csv", k, lambda k=k: k)
    assert ("csv", "k") not in workercache._cache and len(workercache._cache) == 2


def test_each_task_reads_only_its_own_rows(data, hard_local, tmp_path):
    """The client indexes each input once; a task gets the byte ranges of its images' rows,
    which together are every data line once, and no worker parses a whole file."""
    distributed = pytest.importorskip("distributed")
    from cluster.ship import Shipper
    from core import workercache

    paths = sources(data[1])
    shipper = Shipper(hard_vote, "hard_vote", (paths,), {"height": H, "width": W}, ranged=True)
    prep = shipper.prepare(lambda line: None)
    assert all(hasattr(p, "take") for p in shipper.parts)  # every input indexed, no text kept
    for name, path in paths.items():
        lines = Path(path).read_bytes().split(b"\n")
        body = b"\n".join(lines[1:])
        seen = b""
        for lo in range(0, len(prep.images), 4):
            images = prep.images[lo : lo + 4]
            rows = shipper.chunk(images)[0][0][name]
            got = b"".join(Path(path).read_bytes()[a:b] for a, b in rows.ranges)
            assert {line.split(b",")[0].decode() for line in got.splitlines()} == set(images)
            seen += got
        assert sorted(seen.splitlines()) == sorted(body.splitlines())  # each line in one task
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=3, processes=True, dashboard_address=":0", silence_logs=50
        ) as lc,
        distributed.Client(lc) as c,
    ):
        cluster.run(hard_vote, paths, output=tmp_path / "o.csv", height=H, width=W, scheduler=c, chunk=1)
        loads = c.run(lambda: workercache.loads.get("csv", 0))
    assert (tmp_path / "o.csv").read_bytes() == hard_local
    assert list(loads.values()) == [0]


def test_a_task_takes_run_counts_and_areas_from_the_client(data, monkeypatch):
    """A task's rows are not validated again: their run counts and areas come from the
    client's read (the scan is not run), equal to a whole read's."""
    import core.csv_read
    from cluster.ship import Shipper
    from core.predictions import read_predictions

    paths = sources(data[1])
    shipper = Shipper(hard_vote, "hard_vote", (paths,), {"height": H, "width": W}, ranged=True)
    prep = shipper.prepare(lambda line: None)
    images = prep.images[1:4]
    rows = shipper.chunk(images)[0][0]["model1"]

    def no_scan(*args):
        raise AssertionError("scanned again")

    monkeypatch.setattr(core.csv_read, "scan_kernel", no_scan)
    part = rows.load()
    monkeypatch.undo()
    whole = read_predictions(paths["model1"], part.classes, H, W)
    for i, name in enumerate(images):
        for c in range(len(part.classes)):
            r, w = part.rows[i, c], whole.rows[whole.image_index(name), c]
            assert (part.run_counts[r], part.areas[r]) == (whole.run_counts[w], whole.areas[w])
            np.testing.assert_array_equal(part.runs(i, c), whole.runs(whole.image_index(name), c))


def test_a_file_changed_since_it_was_indexed_is_an_error(data, tmp_path):
    """A task whose file changed after the client read it fails with one line naming it."""
    from cluster.ship import Shipper
    from core.errors import InputError

    path = tmp_path / "m.csv"
    path.write_bytes(Path(data[1]["model1"]).read_bytes())
    shipper = Shipper(
        clean_predictions,
        "clean_predictions",
        (str(path),),
        {"rules": {"keep_largest": 1}, "height": H, "width": W},
        ranged=True,
    )
    prep = shipper.prepare(lambda line: None)
    rows = shipper.chunk(prep.images[:2])[0][0]
    assert len(rows.load().images) == 2
    os.utime(path, ns=(0, 0))  # the same bytes, but not the file that was read
    with pytest.raises(InputError, match=r"m\.csv: changed since the run began"):
        rows.load()


def test_files_that_cannot_be_indexed_travel_as_text(data, hard_local, tmp_path, client):
    """A quoted file (its rows may span lines) is sent as its chunks' RLE text: same output."""
    quoted = dict(sources(data[1]))
    text = Path(quoted["model2"]).read_text().splitlines()
    target = tmp_path / "quoted.csv"
    target.write_text("\n".join([text[0], *(f'"{a}",{b}' for a, _, b in (t.partition(",") for t in text[1:]))]) + "\n")
    quoted["model2"] = str(target)
    from cluster.ship import Shipper

    shipper = Shipper(hard_vote, "hard_vote", (quoted,), {"height": H, "width": W}, ranged=True)
    shipper.prepare(lambda line: None)
    assert [hasattr(p, "take") for p in shipper.parts] == [True, False, True]
    out = tmp_path / "o.csv"
    cluster.run(hard_vote, quoted, output=out, height=H, width=W, scheduler=client, chunk=4)
    assert out.read_bytes() == hard_local


def test_settings_output_is_never_written_by_a_worker(client, data, hard_local, tmp_path):
    """Settings that name their own ``output:``: the run writes the client's output only."""
    path = data[1]["model1"]
    elsewhere = tmp_path / "settings_said.csv"
    rules = {"default": {"keep_largest": 1}}
    clean_predictions(path, {"postprocess": rules}, output=tmp_path / "a.csv", height=H, width=W)
    cluster.run(
        clean_predictions,
        path,
        settings={"postprocess": rules, "output": str(elsewhere)},
        output=tmp_path / "b.csv",
        height=H,
        width=W,
        scheduler=client,
        chunk=5,
    )
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    cluster.run(
        hard_vote,
        sources(data[1]),
        settings={"output": str(elsewhere)},
        output=tmp_path / "c.csv",
        height=H,
        width=W,
        scheduler=client,
        chunk=5,
    )
    assert (tmp_path / "c.csv").read_bytes() == hard_local
    assert not elsewhere.exists()


def test_the_warm_up_inside_a_chunk_leaves_the_chunk_alone():
    """A worker with a cold numba cache compiles by running small jobs of its own inside its
    chunk's selection; they must run whole and leave the chunk's images untouched."""
    from core.stream import selecting
    from core.warmup import READ, compile_steps
    from ensemble.warmup import VOTE

    with selecting(0, 1) as sel:
        compile_steps(READ, VOTE)
    assert sel.images is None and sel.rles == []

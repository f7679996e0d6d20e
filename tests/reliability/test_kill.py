"""Kill -9, then continue (issue 11, item 6).

`samtune train`, `samtune study` and `samtune predict` run in child processes (see
killable.py) that are SIGKILLed at seeded random moments, when a given file appears, or in
the middle of writing a checkpoint / an output. After each kill, every file under its final
name must parse (temporary files are hidden: '.name.*'); then the command is continued the
way a user would (train --resume, or a fresh start with --overwrite when no checkpoint was
written; the same study command; predict --overwrite) and the result must equal an
uninterrupted run's: training weights bit-identical on the CPU, a study's results.csv equal
except its time and memory columns, predictions byte-identical.

Each killed run's outcome is recorded in OUTCOMES and printed at the end of each test,
for BENCHMARKS.md.
"""

from __future__ import annotations

import csv
import os
import random
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers.generated_data import write_disc_dataset
from tests.helpers.killable import check_no_torn_files, kill_when, start, wait_gone

from samtune.cli.main import main

OUTCOMES: list[str] = []


def _tensors(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted((run / "weights").glob("*.safetensors"))
    assert files, f"no weights in {run}"
    return {f"{f.name}/{k}": v for f in files for k, v in load_file(f).items()}


def _assert_same_weights(run: Path, reference: Path) -> None:
    ours, theirs = _tensors(run), _tensors(reference)
    assert ours.keys() == theirs.keys()
    different = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert not different, f"{len(different)} tensors differ from the uninterrupted run, e.g. {different[:3]}"
    last, ref_last = (torch.load(r / "state" / "last.pt", weights_only=True) for r in (run, reference))
    assert last["step"] == ref_last["step"]
    assert all(torch.equal(v, ref_last["trainable"][k]) for k, v in last["trainable"].items())


def _continue_training(recipe: Path, run: Path) -> str:
    """What a user does after a kill: resume from the checkpoint, else start again."""
    if (run / "state" / "last.pt").is_file():
        assert main(["train", "--resume", str(run)]) == 0
        return "resumed"
    assert main(["train", str(recipe), "--out", str(run), "--overwrite"]) == 0
    return "restarted"


# ------------------------------------------------------------------- train

@pytest.fixture(scope="module")
def train_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill_train")
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"name": "tiny_vit_test"},
        "strategy": {"component": "encoder+decoder", "method": "lora"},
        "data": {"train": str(write_disc_dataset(root / "train", 3, seed=1, size=32)),
                 "val": str(write_disc_dataset(root / "val", 1, seed=2, size=32)), "augment": True},
        "optim": {"steps": 8, "lr": 0.003, "warmup_steps": 2},
        "eval": {"every": 2},
        "run": {"device": "cpu", "threads": 1, "log_every": 1, "checkpoint_every": 2, "tensorboard": "off"},
    }))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.monotonic()
    assert main(["train", str(recipe), "--out", str(root / "reference")]) == 0
    seconds = time.monotonic() - started
    torch.set_num_threads(threads)
    return recipe, root / "reference", seconds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_train_killed_at_a_random_moment(tmp_path, train_setup, seed, one_thread):
    recipe, reference, seconds = train_setup
    run = tmp_path / "run"
    # kill somewhere between start-up and a little past the uninterrupted run's length
    delay = 0.3 + random.Random(seed).uniform(0, 1.2 * seconds)
    process = start(["train", recipe, "--out", run], tmp_path / "log.txt")
    what, _ = kill_when(process, lambda: False, delay)
    checked = check_no_torn_files(run) if run.exists() else 0
    how = _continue_training(recipe, run)
    _assert_same_weights(run, reference)
    OUTCOMES.append(f"train seed {seed}: {what} after {delay:.2f}s, {checked} files parsed, {how}, weights identical")
    print(OUTCOMES[-1])


@pytest.mark.parametrize("appears", ["state/last.pt", "weights", "metrics.jsonl"])
def test_train_killed_when_a_file_appears(tmp_path, train_setup, appears, one_thread):
    recipe, reference, _ = train_setup
    run = tmp_path / "run"
    process = start(["train", recipe, "--out", run], tmp_path / "log.txt")
    what, _ = kill_when(process, lambda: (run / appears).exists(), 120)
    assert what == "killed"
    checked = check_no_torn_files(run)
    how = _continue_training(recipe, run)
    _assert_same_weights(run, reference)
    OUTCOMES.append(f"train, kill when {appears} appears: {what}, {checked} files parsed, {how}, weights identical")
    print(OUTCOMES[-1])


@pytest.mark.parametrize("n", [1, 2, 4])
def test_train_killed_in_the_middle_of_a_checkpoint_write(tmp_path, train_setup, n, one_thread):
    """The n-th checkpoint write dies with half of its bytes in the temporary file."""
    recipe, reference, _ = train_setup
    run = tmp_path / "run"
    process = start(["train", recipe, "--out", run], tmp_path / "log.txt", die_in_write=("torch", n))
    process.join(120)
    assert process.exitcode == -9, (tmp_path / "log.txt").read_text()
    partial = [p.name for p in (run / "state").iterdir() if p.name.startswith(".last.pt.")]
    assert partial, "the kill did not land in a checkpoint write"
    checked = check_no_torn_files(run)
    if n > 1:  # the previous checkpoint is intact and is what resume reads
        assert torch.load(run / "state" / "last.pt", weights_only=True)["step"] == 2 * (n - 1)
    how = _continue_training(recipe, run)
    _assert_same_weights(run, reference)
    OUTCOMES.append(f"train, killed inside checkpoint write {n}: {checked} files parsed, {how}, weights identical")
    print(OUTCOMES[-1])


# ------------------------------------------------------------------- study

@pytest.fixture(scope="module")
def study_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill_study")
    data = {
        "title": "kill test",
        "train": {"optim": {"steps": 4, "lr": 0.003, "warmup_steps": 0}, "eval": {"every": 2},
                  "run": {"device": "cpu", "threads": 1, "log_every": 1, "checkpoint_every": 2,
                          "tensorboard": "off"}},
        "backbones": {"tiny_vit_test": {}},
        "components": ["decoder"],
        "methods": ["full", "lora"],
        "datasets": {"discs": {"train": str(write_disc_dataset(root / "train", 3, seed=1, size=32)),
                               "val": str(write_disc_dataset(root / "val", 1, seed=2, size=32))}},
        "seeds": [0],
    }
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    started = time.monotonic()
    assert main(["study", str(path), "--out", str(root / "reference"), "--in-process"]) == 0
    return path, root / "reference", time.monotonic() - started


VARYING = {"train_seconds", "peak_rss_mb", "peak_gpu_mb", "run_dir"}  # times, memory, where


def _visible_files(root: Path) -> int:
    if not root.is_dir():
        return 0
    files = [p for p in root.rglob("*") if p.is_file()]
    return sum(not any(part.startswith(".") for part in p.relative_to(root).parts) for p in files)


def _assert_same_cells(out: Path, reference: Path) -> None:
    """Every cell done, with weights bit-identical to the uninterrupted study's cell (the tiny
    cells score Dice 0 on one image, so results.csv alone would tell little)."""
    cells = sorted(p.name for p in (reference / "runs").iterdir())
    assert len(cells) == 2 and sorted(p.name for p in (out / "runs").iterdir()) == cells
    for row in _results(out):
        assert row["status"] == "done"
    for cell in cells:
        _assert_same_weights(out / "runs" / cell, reference / "runs" / cell)


def _results(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if k not in VARYING} for row in csv.DictReader(handle)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_study_killed_then_continued(tmp_path, study_setup, seed, keep_threads):
    """Seed 0 runs the cells in child processes (the default), which must end with the killed
    study, and kills when the first cell's first checkpoint appears; seeds 1 and 2 run the
    cells in the study's process (--in-process) and kill at a seeded random point of its
    progress (a timed kill lands in the start-up or after the end too often on a loaded
    machine)."""
    path, reference, _ = study_setup
    out = tmp_path / "study"
    process = start(["study", path, "--out", out, *([] if seed == 0 else ["--in-process"])], tmp_path / "log.txt")
    first = out / "runs"
    if seed == 0:
        condition = lambda: any(first.glob("*/state/last.pt"))  # noqa: E731
        what, descendants = kill_when(process, condition, 120)
    else:  # once a seeded number k of the uninterrupted study's files are visible
        total = _visible_files(reference)
        k = random.Random(seed).randint(1, total - 1)
        what, descendants = kill_when(process, lambda: _visible_files(out) >= k, 120)
    # The cell processes (grandchildren, forked by the fork server; they write into run
    # directories) end at once with the study; the study's own children, multiprocessing's
    # fork server and resource tracker, write nothing and end when they next look up (a
    # fork server still importing torch finishes that first).
    helpers = {pid for pid, parent in descendants.items() if parent == process.pid}
    cells = set(descendants) - helpers
    left = wait_gone(cells, timeout=20)
    assert not left, f"cell processes of the killed study still running: {_describe(left)}"
    left = wait_gone(helpers, timeout=120)
    assert not left, f"helper processes of the killed study still running: {_describe(left)}"
    checked = check_no_torn_files(out) if out.exists() else 0
    done = sum((run / "summary.json").is_file() for run in (out / "runs").glob("*")) if out.exists() else 0
    assert main(["study", str(path), "--out", str(out), "--in-process"]) == 0
    assert _results(out) == _results(reference)
    _assert_same_cells(out, reference)
    where = "first checkpoint" if seed == 0 else f"{k} of {total} files visible"
    OUTCOMES.append(f"study seed {seed}: {what} at {where} ({done} cell(s) trained before the kill), {len(cells)} cell "
                    f"process(es) ended with it, {checked} files parsed, continued, results.csv equal, "
                    "cell weights identical")
    print(OUTCOMES[-1])


def _describe(pids: set[int]) -> list[str]:
    found = []
    for pid in pids:
        try:
            found.append(f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200])
        except OSError:
            found.append(f"{pid}: gone")
    return found


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_study_cell_killed_in_a_checkpoint_write(tmp_path, study_setup, keep_threads):
    path, reference, _ = study_setup
    out = tmp_path / "study"
    process = start(["study", path, "--out", out, "--in-process"], tmp_path / "log.txt", die_in_write=("torch", 2))
    process.join(120)
    assert process.exitcode == -9, (tmp_path / "log.txt").read_text()
    checked = check_no_torn_files(out)
    assert main(["study", str(path), "--out", str(out), "--in-process"]) == 0
    assert _results(out) == _results(reference)
    _assert_same_cells(out, reference)
    OUTCOMES.append(f"study, cell killed inside its 2nd checkpoint write: {checked} files parsed, continued, "
                    "results.csv equal, cell weights identical")
    print(OUTCOMES[-1])


# ----------------------------------------------------------------- predict

@pytest.fixture(scope="module")
def predict_setup(tmp_path_factory, automatic_run):
    root = tmp_path_factory.mktemp("kill_predict")
    images = sorted((write_disc_dataset(root / "inputs", 6, seed=3, size=48) / "images").iterdir())
    started = time.monotonic()
    assert main(["predict", *map(str, images), "--run", str(automatic_run), "--out", str(root / "reference"),
                 "--overlay"]) == 0
    return images, automatic_run, root / "reference", time.monotonic() - started


def _outputs(folder: Path) -> list[str]:
    """Output files under their final names (labels, and overlays in overlays/), relative paths."""
    found = []
    # os.walk, not rglob: a temporary folder of a write in progress may vanish while it is listed
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [str((Path(root) / f).relative_to(folder)) for f in files if not f.startswith(".")]
    return sorted(found)


def _assert_same_outputs(out: Path, reference: Path) -> None:
    names = _outputs(reference)
    assert _outputs(out) == names
    assert all((out / n).read_bytes() == (reference / n).read_bytes() for n in names)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_predict_killed_then_rerun(tmp_path, predict_setup, seed, keep_threads):
    """Killed as soon as a seeded random number k of its 12 outputs (6 labels, 6 overlays)
    is visible: predicting tiny images takes milliseconds, so a timed kill would land in
    the start-up or after the end."""
    images, run, reference, _ = predict_setup
    out = tmp_path / "preds"
    k = random.Random(seed).randint(1, 11)
    process = start(["predict", *images, "--run", run, "--out", out, "--overlay"], tmp_path / "log.txt")

    def visible() -> int:
        return len(_outputs(out))

    what, _ = kill_when(process, lambda: visible() >= k, 120)
    checked = check_no_torn_files(out) if out.exists() else 0
    assert main(["predict", *map(str, images), "--run", str(run), "--out", str(out), "--overlay", "--overwrite"]) == 0
    _assert_same_outputs(out, reference)
    OUTCOMES.append(f"predict seed {seed}: {what} once {k} of 12 outputs were visible, {checked} outputs parsed, "
                    "rerun with --overwrite, outputs byte-identical")
    print(OUTCOMES[-1])


def test_predict_killed_in_the_middle_of_an_output_write(tmp_path, predict_setup, keep_threads):
    images, run, reference, _ = predict_setup
    out = tmp_path / "preds"
    process = start(["predict", *images, "--run", run, "--out", out, "--overlay"], tmp_path / "log.txt",
                    die_in_write=("png", 5))
    process.join(120)
    assert process.exitcode == -9, (tmp_path / "log.txt").read_text()
    visible = _outputs(out)
    assert len(visible) == 4  # two inputs, each with labels and overlay; the 5th PNG died half-written
    checked = check_no_torn_files(out)
    assert main(["predict", *map(str, images), "--run", str(run), "--out", str(out), "--overlay", "--overwrite"]) == 0
    _assert_same_outputs(out, reference)
    OUTCOMES.append(f"predict, killed inside its 5th PNG write: {checked} outputs parsed, rerun, byte-identical")
    print(OUTCOMES[-1])

"""`samtune view` refusals: one line, exit 2, nothing written (the `refused` contract)."""

from __future__ import annotations

import shutil
import socket
import sys

import pytest

pytest.importorskip("starlette", reason="the view extra is not installed: pip install 'samtune[view]'")


@pytest.fixture
def photo_folder(tmp_path):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(folder / "a.png")
    return folder


def test_a_folder_with_nothing_viewable(refused, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    refused(["view", empty, "--no-browser", "--corrections", tmp_path / "c"], watch=[tmp_path],
            names=[str(empty), "nothing to view"])


def test_a_missing_path(refused, tmp_path):
    refused(["view", tmp_path / "nope", "--no-browser"], watch=[tmp_path], names=[str(tmp_path / "nope")])


def test_a_run_that_cannot_prompt(refused, automatic_run, photo_folder, tmp_path):
    refused(["view", photo_folder, "--run", automatic_run, "--no-browser", "--corrections", tmp_path / "c"],
            watch=[tmp_path, automatic_run], names=[str(automatic_run), "cannot be prompted"])


def test_a_folder_that_is_not_a_run(refused, photo_folder, tmp_path):
    refused(["view", photo_folder, "--run", tmp_path, "--no-browser", "--corrections", tmp_path / "c"],
            watch=[tmp_path], names=[str(tmp_path), "is not a training run"])


def test_a_port_in_use(refused, photo_folder, tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        refused(["view", photo_folder, "--no-model", "--no-browser", "--port", port, "--corrections", tmp_path / "c"],
                watch=[tmp_path], names=[f"port {port}", "in use", "--port"])
    finally:
        taken.close()


def test_the_view_extra_not_installed(refused, photo_folder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    refused(["view", photo_folder, "--no-browser"], watch=[tmp_path], names=["samtune[view]", "uvicorn"])


def test_corrections_folder_over_the_labels(refused, photo_folder, tmp_path):
    labels = tmp_path / "fix" / "labels"
    labels.mkdir(parents=True)
    shutil.copy(photo_folder / "a.png", labels / "a.png")
    refused(["view", photo_folder, "--gt", labels, "--no-model", "--no-browser", "--corrections", tmp_path / "fix"],
            watch=[tmp_path], names=[str(labels), "--corrections"])


def test_corrections_path_is_a_file(refused, photo_folder, tmp_path):
    (tmp_path / "file").write_text("x")
    refused(["view", photo_folder, "--no-browser", "--corrections", tmp_path / "file"], watch=[tmp_path],
            names=[str(tmp_path / "file")])


def test_an_eval_folder_without_images(refused, tmp_path):
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    (evaluation / "per_case.csv").write_text("case,class,name,dice,iou,hd95,nsd,gt_voxels,pred_voxels\n")
    (evaluation / "summary.json").write_text('{"pred_dir": "%s", "gt_dir": "%s"}' % (tmp_path / "p", tmp_path / "g"))
    refused(["view", evaluation, "--no-browser", "--corrections", tmp_path / "c"], watch=[tmp_path],
            names=["--images"])


def test_a_bad_port_and_host(refused, photo_folder, tmp_path):
    refused(["view", photo_folder, "--port", "70000", "--no-browser"], watch=[tmp_path], names=["70000"])
    refused(["view", photo_folder, "--no-model", "--host", "no.such.host.invalid", "--no-browser",
             "--corrections", tmp_path / "c"], watch=[tmp_path], names=["no.such.host.invalid"])


def test_an_unknown_model(refused, photo_folder, tmp_path):
    refused(["view", photo_folder, "--model", "no_such_model", "--no-browser", "--corrections", tmp_path / "c"],
            watch=[tmp_path], names=["no_such_model"])

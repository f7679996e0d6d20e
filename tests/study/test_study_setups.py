"""The setups axis: a study whose inits include a setup-2 training recipe and a pretrain recipe,
both made once inside the study; the cells start from them and the table labels rows by setup."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest
import torch
from tests.helpers.tiny_study import study_dict, write_study

from samtune.assets import mni_template
from samtune.models.checkpoint import read_state_dict
from samtune.runs import RunDir
from samtune.study.preflight import load_study
from samtune.study.runner import run_study

QUICK = {"optim": {"steps": 2, "batch_size": 1, "lr": 0.003, "warmup_steps": 0}, "eval": {"every": 2},
         "run": {"device": "cpu", "threads": 1, "log_every": 1, "tensorboard": "off"}}


@pytest.fixture(scope="module")
def setups_study(disc_sources, tmp_path_factory):
    root = tmp_path_factory.mktemp("setups")
    inits = {
        "foundation": {},
        "expansive": {"train": {**QUICK, "task": {"mode": "prompted"},
                                "strategy": {"component": "encoder+decoder", "method": "lora"},
                                "data": {"train": [{"path": str(disc_sources["train"])},
                                                   {"path": str(disc_sources["val"])}]}}},
        "agnostic": {"pretrain": {**QUICK, "data": {"sources": [str(mni_template("t1"))]},
                                  "masking": {"patch": 16}, "eval": {"every": 2, "images": 1}}},
    }
    data = study_dict(disc_sources, backbones={"tiny_vit_test": {"image_size": 64}}, components=["decoder"],
                      methods=["full"], inits=inits)
    data["train"] = {**data["train"], "optim": {**data["train"]["optim"], "steps": 1}}  # not the shared TINY_TRAIN
    path = write_study(root / "setups.yaml", data)
    out = root / "out"
    lines: list[str] = []
    threads = torch.get_num_threads()
    try:
        outcome = run_study(load_study(path), out, isolate=False, log=lines.append)
        again = run_study(load_study(path), out, isolate=False, log=lines.append)
    finally:
        torch.set_num_threads(threads)
    return {"out": out, "outcome": outcome, "again": again, "lines": lines}


def cell_encoder(out, init: str) -> dict[str, torch.Tensor]:
    model = RunDir.open(out / "runs" / f"discs__tiny_vit_test__init-{init}__decoder__full__seed0").load_model()
    return {k: v for k, v in model.state_dict().items() if k.startswith("image_encoder.")}


def test_each_producer_ran_once_and_the_study_finished(setups_study):
    out, lines = setups_study["out"], setups_study["lines"]
    assert not setups_study["outcome"].failed and len(setups_study["outcome"].ran) == 3
    assert setups_study["again"].ran == []  # the second invocation finds everything done
    for name in ("expansive", "agnostic"):
        assert (out / "inits" / name / "summary.json").is_file()
        assert sum(line.startswith(f"inits.{name}: making") for line in lines) == 1, lines


def test_cells_start_from_the_produced_weights(setups_study):
    out = setups_study["out"]
    # decoder-only cells keep the image encoder they were built with: the produced one
    pretrained = read_state_dict(out / "inits" / "agnostic" / "weights" / "sam_pretrained.pth")
    merged = read_state_dict(out / "inits" / "expansive" / "weights" / "merged.safetensors")
    agnostic, expansive, foundation = (cell_encoder(out, name) for name in ("agnostic", "expansive", "foundation"))
    assert all(torch.equal(v, pretrained[k]) for k, v in agnostic.items())
    assert all(torch.equal(v, merged[k]) for k, v in expansive.items())
    # ... and the three starting points differ (pretraining and LoRA changed the encoder)
    key = next(k for k in foundation if k.endswith("qkv.weight"))
    assert not torch.equal(foundation[key], agnostic[key]) and not torch.equal(foundation[key], expansive[key])


def test_rows_are_labelled_by_setup(setups_study):
    out = setups_study["out"]
    markdown = (out / "results.md").read_text(encoding="utf-8")
    for label in ("setup 1 (foundation weights): tiny_vit_test@foundation/decoder/full",
                  "setup 2 (task-expansive): tiny_vit_test@expansive/decoder/full",
                  "setup 3 (task-agnostic): tiny_vit_test@agnostic/decoder/full"):
        assert f"| {label} |" in markdown
    with open(out / "results.csv", newline="") as handle:
        setups = {row["init"]: row["setup"] for row in csv.DictReader(handle)}
    assert setups == {"foundation": "1", "expansive": "2", "agnostic": "3"}


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (REPO.parent / "shared" / "data" / "TotalSeg-examples").is_dir(), reason="needs ../shared/data")
def test_setups_cpu_recipe(monkeypatch, tmp_path):
    from samtune.assets import mni_template
    from samtune.study.init_cost import estimate_producer
    from samtune.study.inits import producers
    from samtune.study.runner import plan_study

    monkeypatch.chdir(REPO)
    config = load_study("setups_cpu")
    planned = plan_study(config, tmp_path / "out", estimates=False)
    assert len(planned) == 18 and {p.cell.seed for p in planned} == {0, 1, 2}
    assert {p.cell.dataset for p in planned} == {"prostate", "prostate_swapped"}
    assert {p.cell.strategy for p in planned} == {
        f"setup {n} ({name}): lite_medsam@{init}/encoder+decoder/adapter"
        for n, name, init in ((1, "foundation weights", "foundation"), (2, "task-expansive", "expansive"),
                              (3, "task-agnostic", "agnostic"))}
    made = producers(config, tmp_path / "out")
    expansive, agnostic = made["expansive"], made["agnostic"]
    assert len(expansive.config.data.train) == 9 and expansive.config.task.mode == "prompted"
    rows = [row for rows in expansive.case_lists.values() for row in rows]
    assert [str(mni_template("t1")), str(mni_template("gm"))] in rows and len(rows) == 5
    assert str(mni_template("t1")) in agnostic.config.data.sources and len(agnostic.config.data.sources) == 10
    # The CPU table: 300 steps x (1.3 s LiteMedSAM forward x 4.2) + 3 x 4 reconstructions + 5 s set-up
    assert estimate_producer(agnostic, "new").seconds == pytest.approx(5 + 300 * 1.3 * 4.2 + 3 * 4 * 1.3)


def test_a_producer_held_by_another_worker_is_waited_for_not_run_twice(disc_sources, tmp_path):
    import threading

    from samtune.configs import save_config
    from samtune.study.inits import build_producer
    from samtune.study.locks import CellLock

    data = study_dict(disc_sources, inits={"agnostic": {"pretrain": {"data": {"sources": [str(disc_sources["train"])]}}}})
    config = load_study(write_study(tmp_path / "s.yaml", data))
    producer = build_producer(config, tmp_path / "out", "agnostic", config.inits["agnostic"])
    other = CellLock(tmp_path / "out", producer.lock_id, where="worker 2")
    assert other.acquire()
    calls, lines, outcome = [], [], {}

    def produce_it():
        from samtune.study.inits import produce

        outcome.update(produce(producer, tmp_path / "out", calls.append, lines.append, poll_s=0.05))

    waiter = threading.Thread(target=produce_it)
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive() and any("being made by" in line for line in lines)
    producer.run_dir.mkdir(parents=True)  # the other worker finishes its run
    save_config(producer.config, producer.run_dir / "config.yaml")
    (producer.run_dir / "summary.json").write_text("{}")
    other.release()
    waiter.join(timeout=10)
    assert outcome == {"ok": True} and calls == []


def test_an_init_is_made_when_its_first_cell_starts_and_a_failed_one_is_tried_once(disc_sources, tmp_path,
                                                                                   monkeypatch):
    """Cells that need no init run before the producer (a second worker would run them
    meanwhile); a producer that fails is tried once, and each of its cells fails at stage
    ``init`` with its error while the others finish."""
    import json

    import samtune.study.inits as inits_module

    inits = {"foundation": {}, "agnostic": {"pretrain": {**QUICK, "data": {"sources": [str(mni_template("t1"))]},
                                                         "masking": {"patch": 16}}}}
    data = study_dict(disc_sources, backbones={"tiny_vit_test": {"image_size": 64}}, components=["decoder"],
                      methods=["full"], inits=inits, seeds=[0, 1])
    data["train"] = {**data["train"], "optim": {**data["train"]["optim"], "steps": 1}}
    path = write_study(tmp_path / "s.yaml", data)
    order: list[str] = []

    def failing_produce(producer, out_dir, run, log, where="", poll_s=0.0):
        order.append(f"produce {producer.name}")
        return {"ok": False, "stage": "train", "error": "DataError: no images in the pretrain sources",
                "traceback": ""}

    monkeypatch.setattr(inits_module, "produce", failing_produce)
    threads = torch.get_num_threads()
    try:
        outcome = run_study(load_study(path), tmp_path / "out", isolate=False,
                            log=lambda line: order.append(line.split(":")[0]))
    finally:
        torch.set_num_threads(threads)
    cells = [f"discs__tiny_vit_test__init-{init}__decoder__full__seed{seed}"
             for seed in (0, 1) for init in ("foundation", "agnostic")]
    assert order.count("produce agnostic") == 1, order
    assert order.index("[1/4] " + cells[0]) < order.index("produce agnostic")  # the foundation cell did not wait
    assert sorted(outcome.failed) == sorted(cells[1::2])
    assert sorted(outcome.ran) == sorted(cells[0::2])
    for cell in cells[1::2]:
        failure = json.loads((tmp_path / "out" / "failures" / f"{cell}.json").read_text())
        assert failure["stage"] == "init" and "inits.agnostic: DataError: no images" in failure["error"]

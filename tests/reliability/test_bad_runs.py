"""Damaged run directories, bad checkpoints and bad method options: each refused in one line
naming the file (or option) and what is wrong, exit code 2, nothing written.

Run directories are copies of one tiny trained run (tests/trained_runs.py), damaged one
way each, and reached through `predict`, `eval --run` and `export`.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import struct
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

pytestmark = pytest.mark.usefixtures("one_thread")

WEIGHTS = "weights/tuning.safetensors"
RECORD = "weights/tuning.json"


# ------------------------------------------------------------------ damages
def edit_yaml(path: Path, change: Callable[[dict], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def edit_tensors(path: Path, change: Callable[[dict], None]) -> None:
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def first_float(tensors: dict) -> str:
    return sorted(k for k, v in tensors.items() if v.is_floating_point())[0]


def poison(value: float) -> Callable[[dict], None]:
    def change(tensors: dict) -> None:
        key = first_float(tensors)
        tensors[key] = torch.full_like(tensors[key], value)
    return change


def base_checkpoint(run: Path, path: Path, sha256: str | None) -> None:
    """Point the run at base weights `path` (config.yaml and tuning.json) recorded as `sha256`."""
    def config(data: dict) -> None:
        data["model"]["checkpoint"] = str(path)

    def record(data: dict) -> None:
        data["base"]["checkpoint"], data["base"]["sha256"] = str(path), sha256

    edit_yaml(run / "config.yaml", config)
    edit_json(run / RECORD, record)


def write_base(path: Path) -> Path:
    from samtune.models.registry import create_model

    torch.manual_seed(0)
    torch.save(create_model("tiny_vit_test", pretrained=False).state_dict(), path)
    return path


def drop(section: str, key: str | None = None) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        if key is None:
            del data[section]
        else:
            del data[section][key]
    return change


# name -> (damage(run), words the message must hold besides the file; the file, relative to the run)
DAMAGES: dict[str, tuple[Callable[[Path], None], str, list[str]]] = {
    "config lacks strategy": (lambda r: edit_yaml(r / "config.yaml", drop("strategy")), "config.yaml",
                              ["lacks 'strategy.method'", "incomplete"]),
    "config lacks model.name": (lambda r: edit_yaml(r / "config.yaml", drop("model", "name")), "config.yaml",
                                ["lacks 'model.name'"]),
    "config lacks task.mode": (lambda r: edit_yaml(r / "config.yaml", drop("task", "mode")), "config.yaml",
                               ["lacks 'task.mode'"]),
    "config not YAML": (lambda r: (r / "config.yaml").write_text("model: {name: [tiny\n  : :\n"), "config.yaml",
                        ["not valid YAML", "line"]),
    "config binary": (lambda r: (r / "config.yaml").write_bytes(b"\xff\xfe\x00garbage\x80"), "config.yaml",
                      ["not a text file"]),
    "config a list": (lambda r: (r / "config.yaml").write_text("- model\n- strategy\n"), "config.yaml",
                      ["not a mapping"]),
    "config bad mode": (lambda r: edit_yaml(r / "config.yaml", lambda d: d["task"].update(mode="auto")),
                        "config.yaml", ["'task.mode' is 'auto'"]),
    "config bad axis": (lambda r: edit_yaml(r / "config.yaml", lambda d: d["data"].update(axis="z")),
                        "config.yaml", ["'data.axis' should be an integer, got 'z'"]),
    "run.json missing": (lambda r: (r / "run.json").unlink(), "run.json", ["missing"]),
    "run.json not JSON": (lambda r: (r / "run.json").write_text("{labels: [oops"), "run.json", ["not valid JSON"]),
    "run.json a list": (lambda r: (r / "run.json").write_text("[1, 2]"), "run.json", ["not a JSON object"]),
    "run.json labels empty": (lambda r: edit_json(r / "run.json", lambda d: d.update(labels=[])), "run.json",
                              ["'labels'"]),
    "run.json labels count": (lambda r: edit_json(r / "run.json", lambda d: d.update(labels=["a", "b"])),
                              "run.json", ["lists 2 class(es) but the weights predict 1"]),
    "weights folder missing": (lambda r: shutil.rmtree(r / "weights"), RECORD, ["missing"]),
    "record missing": (lambda r: (r / RECORD).unlink(), RECORD, ["missing"]),
    "record not JSON": (lambda r: (r / RECORD).write_text("{\"format\": "), RECORD, ["not valid JSON"]),
    "record wrong format": (lambda r: edit_json(r / RECORD, lambda d: d.update(format="other")), RECORD,
                            ["not a samtune tuning record"]),
    "record strategy differs": (lambda r: edit_json(r / RECORD, lambda d: d["strategy"].update(method="lora")),
                                RECORD, ["decoder/lora", "decoder/full"]),
    "record bad option": (lambda r: edit_json(r / RECORD, lambda d: d["strategy"].update(options={"rnak": 2})),
                          RECORD, ["rnak", "it takes: none"]),
    "weights missing": (lambda r: (r / WEIGHTS).unlink(), WEIGHTS, ["missing"]),
    "weights garbage": (lambda r: (r / WEIGHTS).write_bytes(random.Random(2).randbytes(4096)), WEIGHTS,
                        ["not a safetensors file (header too large)", "incomplete"]),
    "weights truncated": (lambda r: (r / WEIGHTS).write_bytes((r / WEIGHTS).read_bytes()[:-400]), WEIGHTS,
                          ["truncated"]),
    "weights header not JSON": (lambda r: (r / WEIGHTS).write_bytes(struct.pack("<Q", 4) + b"{{{{" + b"\0" * 64),
                                WEIGHTS, ["header is not JSON"]),
    "weights tiny file": (lambda r: (r / WEIGHTS).write_bytes(b"abc"), WEIGHTS, ["only 3 bytes"]),
    "weights NaN": (lambda r: edit_tensors(r / WEIGHTS, poison(float("nan"))), WEIGHTS, ["holds NaN values"]),
    "weights inf": (lambda r: edit_tensors(r / WEIGHTS, poison(float("inf"))), WEIGHTS, ["holds infinite values"]),
    "weights lack a tensor": (lambda r: edit_tensors(r / WEIGHTS, lambda t: t.pop(first_float(t))), WEIGHTS,
                              ["does not fit this model", "missing"]),
    "base checkpoint missing": (lambda r: base_checkpoint(r, r.parent / "gone.pth", None), "gone.pth",
                                ["not found"]),
    "base checkpoint changed": (lambda r: base_checkpoint(r, write_base(r.parent / "base.pth"), "0" * 64),
                                "base.pth", ["sha256", "000000000000"]),
}
# `export` does not read run.json; it fits the tensors to the model only once it has the base
# weights, which this run (a random test base) lacks: that is its refusal there.
NOT_EXPORT = {name for name in DAMAGES if name.startswith("run.json")} | {"weights lack a tensor"}


@pytest.fixture(scope="module")
def inputs(automatic_run, tmp_path_factory):
    return {"image": automatic_run.parent / "val" / "images" / "case00.png", "data": automatic_run.parent / "val"}


def damaged_copy(run: Path, folder: Path, damage: Callable[[Path], None]) -> Path:
    copy = folder / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("state", "tensorboard", "*.png", "metrics.jsonl"))
    damage(copy)
    return copy


def command(kind: str, run: Path, inputs: dict, out: Path) -> list:
    if kind == "predict":
        return ["predict", inputs["image"], "--run", run, "--out", out / "pred"]
    if kind == "eval":
        return ["eval", "--run", run, "--data", inputs["data"], "--out", out / "eval"]
    return ["export", run, "--merge", "--out", out / "merged.pth"]


CASES = [(name, kind) for name in DAMAGES for kind in ("predict", "eval", "export")
         if not (kind == "export" and name in NOT_EXPORT)]


@pytest.mark.parametrize("name, kind", CASES, ids=[f"{kind}: {name}" for name, kind in CASES])
def test_damaged_run_is_refused_naming_the_file(name, kind, automatic_run, inputs, tmp_path, refused):
    damage, relative, words = DAMAGES[name]
    run = damaged_copy(automatic_run, tmp_path, damage)
    file = relative if relative.endswith(".pth") else str(run / relative)
    refused(command(kind, run, inputs, tmp_path), watch=[tmp_path], names=[file, *words])


@pytest.mark.parametrize("kind", ["predict", "eval", "export"])
def test_missing_run_directory(kind, inputs, tmp_path, refused):
    refused(command(kind, tmp_path / "nowhere", inputs, tmp_path), watch=[tmp_path], names=["nowhere"])


@pytest.mark.parametrize("kind", ["predict", "eval"])
def test_run_directory_that_is_a_file_or_has_no_config(kind, automatic_run, inputs, tmp_path, refused):
    (tmp_path / "file").write_text("x")
    refused(command(kind, tmp_path / "file", inputs, tmp_path), watch=[tmp_path], names=["file", "not a folder"])
    (tmp_path / "empty").mkdir()
    refused(command(kind, tmp_path / "empty", inputs, tmp_path), watch=[tmp_path],
            names=["empty", "not a training run", "config.yaml"])


# -------------------------------------------------------------- checkpoints
class Payload:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def write_checkpoint(kind: str, path: Path) -> Path:
    state = {"image_encoder.w": torch.ones(2)}
    if kind == "os.system pickle (protocol 2)":
        path.write_bytes(pickle.dumps(Payload(), protocol=2))
    elif kind == "os.system pickle (protocol 4)":
        path.write_bytes(pickle.dumps({"w": Payload()}, protocol=4))
    elif kind == "os.system inside torch.save":
        torch.save({"model": Payload()}, path)
    elif kind == "NaN tensor":
        torch.save({"image_encoder.w": torch.tensor([1.0, float("nan")])}, path)
    elif kind == "inf tensor":
        torch.save({"model": {"mask_decoder.b": torch.tensor([float("-inf")])}}, path)
    elif kind == "garbage":  # bytes on which torch's unpickler raises IndexError
        path.write_bytes(random.Random(2).randbytes(2048))
    elif kind == "truncated zip":
        torch.save(state, path)
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "NaN safetensors":
        save_file({"image_encoder.w": torch.tensor([float("nan")])}, str(path))
    elif kind == "garbage safetensors":
        path.write_bytes(random.Random(1).randbytes(512))
    return path


CHECKPOINTS = {
    "os.system pickle (protocol 2)": ("bad.pth", ["Python objects", "refused for safety", "posix.system"]),
    "os.system pickle (protocol 4)": ("bad.pth", ["Python objects", "refused for safety", "posix.system"]),
    "os.system inside torch.save": ("bad.pt", ["Python objects", "refused for safety", "posix.system"]),
    "NaN tensor": ("nan.pth", ["image_encoder.w", "NaN"]),
    "inf tensor": ("inf.pth", ["mask_decoder.b", "infinite"]),
    "garbage": ("garbage.pth", ["corrupt or not a PyTorch checkpoint"]),
    "truncated zip": ("cut.pth", ["corrupt or not a PyTorch checkpoint"]),
    "NaN safetensors": ("nan.safetensors", ["image_encoder.w", "NaN"]),
    "garbage safetensors": ("garbage.safetensors", ["cannot read safetensors checkpoint"]),
}


@pytest.mark.parametrize("kind", list(CHECKPOINTS))
def test_bad_checkpoint_is_refused(kind, inputs, tmp_path, refused):
    filename, words = CHECKPOINTS[kind]
    path = write_checkpoint(kind, tmp_path / filename)
    refused(["predict", inputs["image"], "--model", "tiny_vit_test", "--checkpoint", path, "--box", "5", "5", "30", "30",
             "--out", tmp_path / "out"], watch=[tmp_path], names=[str(path), *words])


# ----------------------------------------------------------- method options
OPTIONS = {
    "full takes no rank": (["strategy.method=full", "strategy.options.rank=8"],
                           ["strategy.options.rank", "method 'full'", "it takes: none"]),
    "adapter takes no rank": (["strategy.method=adapter", "strategy.options.rank=8"],
                              ["strategy.options.rank", "it takes: adapter_init, blocks"]),
    "lora misspelt": (["strategy.method=lora", "strategy.options.rnak=8"],
                      ["strategy.options.rnak", "did you mean rank", "alpha, blocks, dropout, rank"]),
    "dora takes no adapter_init": (["strategy.method=dora", "strategy.options.adapter_init=zero"],
                                   ["adapter_init", "method 'dora'"]),
    "rank zero": (["strategy.method=lora", "strategy.options.rank=0"], ["options.rank", "positive integer"]),
    "rank a word": (["strategy.method=lora", "strategy.options.rank=big"], ["strategy.options.rank", "'big'"]),
    "dropout one": (["strategy.method=lora", "strategy.options.dropout=1.0"], ["options.dropout", "[0, 1)"]),
    "adapter_init unknown": (["strategy.method=adapter", "strategy.options.adapter_init=random"],
                             ["adapter_init", "'random'"]),
    "flat legacy key": (["strategy.method=lora", "strategy.rank=8"], ["strategy.rank"]),
    "block beyond the encoder": (["strategy.method=lora", "strategy.component=encoder+decoder",
                                  "strategy.options.blocks=[40]"], ["options.blocks", "block 40"]),
}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_bad_method_option_is_refused_before_the_run_exists(name, inputs, tmp_path, refused):
    overrides, words = OPTIONS[name]
    argv = ["train", "default", "--out", tmp_path / "run", "--set", "model.name=tiny_vit_test",
            "--set", f"data.train={inputs['data']}", "--set", "run.device=cpu"]
    for text in overrides:
        argv += ["--set", text]
    refused(argv, watch=[tmp_path], names=words)
    assert not (tmp_path / "run").exists()


def test_resume_of_a_damaged_run_is_refused(automatic_run, tmp_path, refused):
    run = damaged_copy(automatic_run, tmp_path, lambda r: edit_yaml(r / "config.yaml", drop("run", "seed")))
    refused(["train", "--resume", run], watch=[tmp_path], names=[str(run / "config.yaml"), "lacks 'run.seed'"])
    (run / "config.yaml").write_text(yaml.safe_dump({"model": {"name": "tiny_vit_test"}}))
    refused(["train", "--resume", run], watch=[tmp_path], names=["lacks 'strategy.method'"])
    whole = damaged_copy(automatic_run, tmp_path / "whole", lambda r: None)  # state/ left out of the copy
    refused(["train", "--resume", whole], watch=[tmp_path], names=[str(whole / "state" / "last.pt"), "nothing to resume"])


# ------------------------------------------------------- train: validate, then write
def train_argv(out, data, *overrides: str) -> list:
    argv = ["train", "default", "--out", out, "--set", "model.name=tiny_vit_test", "--set", f"data.train={data}",
            "--set", "run.device=cpu", "--set", "strategy.component=decoder", "--set", "strategy.method=full"]
    for text in overrides:
        argv += ["--set", text]
    return argv


def test_train_refuses_before_creating_the_run_and_the_fixed_rerun_needs_no_overwrite(inputs, tmp_path, refused):
    out = tmp_path / "run"
    refused(train_argv(out, tmp_path / "typo"), watch=[tmp_path], names=[str(tmp_path / "typo")])
    nan = write_checkpoint("NaN tensor", tmp_path / "nan.pth")
    refused(train_argv(out, inputs["data"], f"model.checkpoint={nan}"), watch=[tmp_path], names=[str(nan), "NaN"])
    (tmp_path / "file").write_text("x")
    refused(train_argv(tmp_path / "file", inputs["data"]), watch=[tmp_path], names=[str(tmp_path / "file")])
    assert not out.exists()
    from samtune.cli.main import main

    steps = ["optim.steps=1", "optim.warmup_steps=0", "run.log_every=1", "run.checkpoint_every=1"]
    assert main([str(a) for a in train_argv(out, inputs["data"], *steps)]) == 0
    assert (out / "weights" / "tuning.safetensors").is_file() and (out / "summary.json").is_file()

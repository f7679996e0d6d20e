"""Bad recipe and study YAML files (issue 11): one line naming the file, line and column.

Every case goes through `samtune train RECIPE --out RUN` or `samtune study STUDY --out DIR`
and must meet the `refused` contract (exit 2, one line, nothing written). Numbers are
read as users write them: ``lr: 3e-4`` is 0.0003 in recipes, studies and `--set`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers.generated_data import write_disc_dataset

from samtune.configs import load_config, parse_override, parse_yaml
from samtune.engine.config import TrainConfig
from samtune.errors import ConfigError

# name -> (file bytes, text the one-line message must hold: "line L, column C" and the problem)
BAD_YAML = {
    "binary_png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 1, column 1: byte 0x89 is not UTF-8"),
    "latin1": ("optim:\n  lr: 0.001  # réglé\n".encode("latin-1"), "line 2, column 17: byte 0xe9 is not UTF-8"),
    "utf16": ("optim:\n  lr: 0.001\n".encode("utf-16"), "line 1, column 1: byte 0xff is not UTF-8"),
    "nul_byte": (b"optim:\n  lr: 0.0\x0001\n", "line 2, column 10: special characters are not allowed"),
    "unclosed_list": (b"optim: [steps\n", "line 2, column 1: expected ',' or ']'"),
    "tab_indent": (b"optim:\n\tlr: 0.1\n", "line 2, column 1: found character '\\t'"),
    "bad_indent": (b"optim:\n  lr: 0.1\n    steps: 3\n", "line 3, column 10: mapping values are not allowed here"),
    "unclosed_quote": (b'model:\n  name: "lite_medsam\n', "line 3, column 1: found unexpected end of stream"),
    "duplicate_key": (b"optim:\n  lr: 0.1\n  lr: 0.2\n", "line 3, column 3: key 'lr' is given twice (first on line 2)"),
    "duplicate_section": (b"optim: {lr: 0.1}\nrun: {}\noptim: {steps: 3}\n",
                          "line 3, column 1: key 'optim' is given twice (first on line 1)"),
    "stray_colon": (b"optim:\n  lr: 0.1: 0.2\n", "line 2, column 10: mapping values are not allowed here"),
    "alias_undefined": (b"optim: *missing\n", "line 1, column 8: found undefined alias 'missing'"),
}


@pytest.mark.parametrize("name", sorted(BAD_YAML))
def test_bad_recipe_is_refused_with_line_and_column(name, tmp_path, refused):
    data, expected = BAD_YAML[name]
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_bytes(data)
    message = refused(["train", recipe, "--out", tmp_path / "run"], watch=[tmp_path], names=[f"{recipe}, {expected}"])
    assert not (tmp_path / "run").exists()
    assert "\n" not in message


@pytest.mark.parametrize("name", ["binary_png", "latin1", "unclosed_list", "duplicate_key", "tab_indent"])
def test_bad_study_yaml_is_refused_with_line_and_column(name, tmp_path, refused):
    data, expected = BAD_YAML[name]
    study = tmp_path / f"{name}.yaml"
    study.write_bytes(data)
    refused(["study", study, "--out", tmp_path / "study"], watch=[tmp_path], names=[f"{study}, {expected}"])


def test_top_level_list_is_refused(tmp_path, refused):
    recipe = tmp_path / "list.yaml"
    recipe.write_text("- optim\n- run\n")
    refused(["train", recipe, "--out", tmp_path / "run"], watch=[tmp_path],
            names=[f"{recipe}: the top level must be a mapping"])


def test_quoted_number_for_a_float_field_is_still_refused_when_not_a_number(tmp_path, refused):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("optim:\n  lr: fast\n")
    refused(["train", recipe, "--out", tmp_path / "run"], watch=[tmp_path], names=["optim.lr", "'fast'"])


@pytest.mark.parametrize("written, value", [
    ("3e-4", 0.0003), ("3E-4", 0.0003), ("1e-3", 0.001), ("+2e1", 20.0), (".5", 0.5), ("5.", 5.0),
    ("1_000.5", 1000.5), ("'3e-4'", 0.0003), ("2", 2.0),
])
def test_recipe_numbers_read_as_written(written, value, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"optim:\n  lr: {written}\n")
    config = load_config(TrainConfig, recipe)
    assert config.optim.lr == value and isinstance(config.optim.lr, float)


@pytest.mark.parametrize("written, ok", [("1e3", True), ("1000.0", True), ("2.5", False), ("'12'", False)])
def test_whole_numbers_in_scientific_notation_fill_integer_fields(written, ok, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"optim:\n  steps: {written}\n")
    if ok:
        config = load_config(TrainConfig, recipe)
        assert config.optim.steps == 1000 and isinstance(config.optim.steps, int)
    else:
        with pytest.raises(ConfigError, match="optim.steps: expected an integer"):
            load_config(TrainConfig, recipe)


def test_strings_that_look_almost_numeric_stay_strings():
    data = parse_yaml("a: 1.2.3\nb: e5\nc: 3e\nd: v1.0\ne: '1e5'\nf: 0x10\ng: 12\n", "t.yaml")
    assert data == {"a": "1.2.3", "b": "e5", "c": "3e", "d": "v1.0", "e": "1e5", "f": 16, "g": 12}
    assert isinstance(data["g"], int)


def test_set_and_yaml_agree(tmp_path):
    assert parse_override("optim.lr=3e-4") == (["optim", "lr"], 0.0003)
    assert parse_override("x=[1e-3, 2]") == (["x"], [0.001, 2])
    assert parse_override("model.name=lite_medsam") == (["model", "name"], "lite_medsam")


def test_study_yaml_lr_in_scientific_notation(tmp_path):
    from samtune.study.preflight import load_study

    train = write_disc_dataset(tmp_path / "train", count=2, seed=0)
    val = write_disc_dataset(tmp_path / "val", count=1, seed=1)
    study = tmp_path / "study.yaml"
    study.write_text(
        "train:\n  optim: {lr: 3e-4, steps: 2}\n  run: {device: cpu}\n"
        "backbones: {tiny_vit_test: {}}\ncomponents: [decoder]\nmethods: [full]\n"
        f"per_method:\n  full: [optim.weight_decay=1e-5]\n"
        f"datasets:\n  discs: {{train: {train}, val: {val}}}\nseeds: [0]\n"
    )
    config = load_study(study)
    assert config.train.optim.lr == 0.0003
    assert config.per_method["full"] == ["optim.weight_decay=1e-5"]  # a string, parsed per cell


def test_error_is_config_error_naming_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"optim: {lr: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_config(TrainConfig, bad)
    assert str(info.value).startswith(f"{bad}, line 2, column 1: ")
    assert Path(str(bad)).name in str(info.value)


def test_saved_config_round_trips_strings_that_look_like_floats(tmp_path):
    from dataclasses import replace

    from samtune.configs import save_config

    config = TrainConfig()
    config = replace(config, data=replace(config.data, train="1e5"), optim=replace(config.optim, lr=3e-4))
    save_config(config, tmp_path / "config.yaml")
    assert "train: '1e5'" in (tmp_path / "config.yaml").read_text()
    loaded = load_config(TrainConfig, tmp_path / "config.yaml")
    assert loaded.data.train == "1e5" and loaded.optim.lr == 0.0003

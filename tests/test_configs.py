"""Strict YAML configuration loading."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from samtune.configs import load_config
from samtune.errors import ConfigError


@dataclass
class Optim:
    lr: float = 1e-4
    steps: int = 10
    schedule: Literal["cosine", "poly"] = "cosine"


@dataclass
class Root:
    name: str = "x"
    blocks: list[int] | None = None
    optim: Optim = field(default_factory=Optim)


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: run\noptim:\n  lr: 0.001\n  schedule: poly\n")
    config = load_config(Root, path, ["optim.steps=25", "blocks=[1, 3]"])
    assert config.name == "run"
    assert config.optim.lr == 0.001 and config.optim.steps == 25 and config.optim.schedule == "poly"
    assert config.blocks == [1, 3]


def test_int_accepted_for_float_field(tmp_path):
    assert load_config(Root, None, ["optim.lr=1"]).optim.lr == 1.0


def test_exponent_without_dot_is_a_number():
    assert load_config(Root, None, ["optim.lr=3e-4"]).optim.lr == 3e-4
    assert load_config(Root, None, ["name=3e-4x"]).name == "3e-4x"


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=0.1", "unknown configuration key 'optim.lrr'; did you mean lr?"),
        ("optim.steps=ten", "optim.steps: expected an integer, got 'ten'"),
        ("optim.schedule=linear", "optim.schedule: 'linear' is not one of 'cosine', 'poly'"),
        ("optim=3", "optim: expected a mapping of Optim fields, got 3"),
        ("blocks=[1, a]", "blocks: [1, 'a'] is not a valid list"),
    ],
)
def test_bad_values_name_their_key(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(Root, None, [override])
    assert str(info.value).startswith(message)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(Root, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(Root, bad)
    # the unclosed flow sequence is noticed at the end of the file: line 2, column 1
    assert str(info.value).startswith(f"{bad}, line 2, column 1: ")
    assert "\n" not in str(info.value)

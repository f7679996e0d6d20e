"""Strategies are validated configurations; the method registry behaves like the model registry."""

from __future__ import annotations

import pytest

from samtune.configs import from_dict
from samtune.errors import ConfigError
from samtune.methods import Method, MethodOptions, Strategy, get_method, list_methods, register_method
from samtune.methods.registry import METHODS


def test_registry_lists_methods_and_suggests_close_names() -> None:
    assert list_methods()[:4] == ["full", "adapter", "lora", "dora"]
    assert get_method("dora").mergeable and not get_method("adapter").mergeable
    with pytest.raises(ConfigError, match="did you mean lora"):
        get_method("loar")


def test_duplicate_method_name_is_an_error() -> None:
    class Again(Method):
        name = "lora"

    with pytest.raises(ValueError, match="already registered"):
        register_method(Again)
    assert type(METHODS.get("lora")).__name__ == "Lora"


def test_options_a_method_does_not_read_are_errors() -> None:
    with pytest.raises(ConfigError, match="rank do not apply to method 'adapter'"):
        Strategy("lite_medsam", "encoder+decoder", "adapter", MethodOptions(rank=8))
    with pytest.raises(ConfigError, match="blocks do not apply to method 'full'"):
        Strategy("lite_medsam", "encoder+decoder", "full", MethodOptions(blocks=(0,)))
    with pytest.raises(ConfigError, match="unknown component 'encoder_decoder'; did you mean 'encoder\\+decoder'"):
        Strategy("lite_medsam", "encoder_decoder", "lora")
    with pytest.raises(ConfigError, match="rank must be a positive integer"):
        MethodOptions(rank=0)
    with pytest.raises(ConfigError, match="dropout must be in"):
        MethodOptions(dropout=1.5)


def test_defaults_resolve_per_method() -> None:
    lora = Strategy("sam_vit_b", "decoder", "lora").resolved_options()
    assert (lora.rank, lora.dropout, lora.alpha) == (4, 0.0, None)  # alpha None: equals rank
    assert Strategy("sam_vit_b", "decoder", "adapter").resolved_options().adapter_init == "zero"


def test_round_trip_through_dict_and_strict_loading() -> None:
    strategy = Strategy("lite_medsam", "encoder+decoder", "dora", MethodOptions(rank=8, blocks=(0, 3)))
    data = strategy.to_dict()
    assert data == {
        "backbone": "lite_medsam",
        "component": "encoder+decoder",
        "method": "dora",
        "options": {"rank": 8, "blocks": [0, 3]},
    }
    assert Strategy.from_dict(data) == strategy
    assert from_dict(Strategy, data) == strategy  # embeddable in the YAML configs
    with pytest.raises(ConfigError, match="unknown configuration key 'strategy.options.rnak'"):
        Strategy.from_dict({**data, "options": {"rnak": 8}})

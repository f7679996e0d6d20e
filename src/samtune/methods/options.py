"""Method options: each fine-tuning method declares its own as a frozen dataclass.

A method's `Options` class lists every option it takes, with its default; configurations
give options as a mapping (``strategy.options`` in a recipe) that `load_options` turns into
that class strictly: an option the method does not take is an error naming it and listing
the ones it takes, so nothing a user writes is silently dropped.

`MethodOptions` is the older catch-all container (every option any built-in method takes,
None = unset); `Strategy` converts it to the chosen method's class, strictly as well.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields
from typing import Any, Literal, Mapping

from samtune.errors import ConfigError


def _check_rank(rank: Any) -> None:
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ConfigError(f"options.rank must be a positive integer, got {rank!r}")


def _check_alpha(alpha: Any) -> None:
    if alpha is not None and not alpha > 0:
        raise ConfigError(f"options.alpha must be positive, got {alpha!r}")


def _check_dropout(dropout: Any) -> None:
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise ConfigError(f"options.dropout must be in [0, 1), got {dropout!r}")


def _check_adapter_init(init: Any) -> None:
    if init not in (None, "zero", "study"):
        raise ConfigError(f"options.adapter_init must be 'zero' or 'study', got {init!r}")


def _blocks_tuple(options: Any) -> None:
    if options.blocks is not None:
        blocks = tuple(options.blocks)
        for block in blocks:
            if not isinstance(block, int) or isinstance(block, bool):
                raise ConfigError(f"options.blocks: {block!r} is not a block index; give whole numbers "
                                  f"(0 = first block, -1 = last), got {list(blocks)}")
        object.__setattr__(options, "blocks", blocks)


@dataclass(frozen=True)
class NoOptions:
    """A method that takes no options (`full`)."""


@dataclass(frozen=True)
class LoraOptions:
    """LoRA / DoRA: rank r, scaling alpha (update = alpha/r * B A; None: alpha = r, scale 1 as in
    the study's LoRA), dropout on the branch input, and the image-encoder blocks to adapt
    (global indices, see `samtune.methods.sites`; None: all)."""

    rank: int = 4
    alpha: float | None = None
    dropout: float = 0.0
    blocks: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _blocks_tuple(self)
        _check_rank(self.rank)
        _check_alpha(self.alpha)
        _check_dropout(self.dropout)


@dataclass(frozen=True)
class AdapterOptions:
    """Adapters: the image-encoder blocks to adapt (None: all) and the initialisation, "zero"
    (output projection zero-initialised: a fresh adapter is the identity) or "study"
    (PyTorch's default Linear initialisation, as in the study's code)."""

    blocks: tuple[int, ...] | None = None
    adapter_init: Literal["zero", "study"] = "zero"

    def __post_init__(self) -> None:
        _blocks_tuple(self)
        _check_adapter_init(self.adapter_init)


@dataclass(frozen=True)
class MethodOptions:
    """Every option a built-in method takes; None means unset (the method's default).

    Kept for callers that build strategies in code; `Strategy` converts it to the chosen
    method's own `Options` class and refuses options that method does not take.
    """

    rank: int | None = None
    alpha: float | None = None
    dropout: float | None = None
    blocks: tuple[int, ...] | None = None
    adapter_init: Literal["zero", "study"] | None = None

    def __post_init__(self) -> None:
        _blocks_tuple(self)
        if self.rank is not None:
            _check_rank(self.rank)
        _check_alpha(self.alpha)
        _check_dropout(self.dropout)
        _check_adapter_init(self.adapter_init)

    def set_options(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def option_names(options_type: type) -> list[str]:
    return [f.name for f in fields(options_type)]


def load_options(options_type: type, data: Mapping[str, Any] | None, method: str,
                 where: str = "strategy.options") -> Any:
    """`options_type` built strictly from `data`: unknown keys name what the method takes."""
    from samtune.configs import from_dict

    data = dict(data or {})
    names = option_names(options_type)
    unknown = [key for key in data if key not in names]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), names, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        takes = ", ".join(sorted(names)) or "none"
        raise ConfigError(
            f"unknown configuration key '{where}.{key}': method '{method}' takes no option '{key}'{hint} "
            f"(it takes: {takes})"
        )
    return from_dict(options_type, data, where)


def changed_options(options: Any) -> dict[str, Any]:
    """The options that differ from their class's defaults (what a record needs to keep)."""
    default = type(options)()
    changed = {}
    for item in fields(options):
        value = getattr(options, item.name)
        if value != getattr(default, item.name):
            changed[item.name] = list(value) if isinstance(value, tuple) else value
    return changed


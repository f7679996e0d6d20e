"""Registry of fine-tuning methods.

A method is a small object that, given a model whose parameters are all frozen and the
names of the components to tune, injects its modules and marks what trains. Methods
are registered by name (`register_method`) and looked up with `get_method`; a duplicate
name is an error and an unknown name suggests close matches, like the model registry.
"""

from __future__ import annotations

import difflib
from dataclasses import fields
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from samtune.errors import ConfigError
from samtune.methods.options import NoOptions, load_options

if TYPE_CHECKING:
    from torch import nn


class Method:
    """Base class of a fine-tuning method.

    Class attributes:
        name: registry key, as written in configurations ("lora").
        summary: one line for listings.
        Options: frozen dataclass of the options the method takes, with their defaults
            (see `samtune.methods.options`); any other option is an error.
        options, defaults: the names of `Options`' fields and their defaults (derived at
            registration, for listings).
        mergeable: True when the injected update can be folded into the base weights.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    options: ClassVar[frozenset[str]] = frozenset()
    defaults: ClassVar[dict[str, object]] = {}
    mergeable: ClassVar[bool] = False

    def load_options(self, data: Mapping[str, Any] | None, where: str = "strategy.options") -> Any:
        """This method's `Options` from a mapping, strictly (an unknown option is a ConfigError
        naming it and listing the options the method takes)."""
        return load_options(self.Options, data, self.name, where)

    def apply(self, model: nn.Module, components: Sequence[str], options: Any) -> None:
        """Inject into and/or unfreeze `components` (attribute names of `model`).

        Called with every parameter of `model` frozen; `options` is an instance of `Options`.
        """
        raise NotImplementedError


_METHODS: dict[str, Method] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: register one instance of `cls` under `cls.name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no `name`")
    if cls.name in _METHODS:
        raise ValueError(f"method '{cls.name}' is already registered")
    cls.options = frozenset(f.name for f in fields(cls.Options))
    cls.defaults = {f.name: getattr(cls.Options(), f.name) for f in fields(cls.Options)}
    _METHODS[cls.name] = cls()
    return cls


def _ensure_registered() -> None:
    # The built-in methods register themselves on import.
    import samtune.methods.full  # noqa: F401  (order here is the listing order)
    import samtune.methods.adapter  # noqa: F401
    import samtune.methods.lora  # noqa: F401  (lora and dora)


def get_method(name: str) -> Method:
    """The registered method called `name`; a ConfigError suggests close matches."""
    _ensure_registered()
    if name not in _METHODS:
        close = difflib.get_close_matches(name, list(_METHODS), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown fine-tuning method '{name}'{hint} (available: {', '.join(list_methods())})"
        )
    return _METHODS[name]


def load_method_options(name: str, data: Mapping[str, Any] | None, where: str = "strategy.options") -> Any:
    """The options of method `name` loaded strictly from `data` (see `Method.load_options`)."""
    return get_method(name).load_options(data, where)


def list_methods() -> list[str]:
    """Names of the registered methods, in registration order."""
    _ensure_registered()
    return list(_METHODS)

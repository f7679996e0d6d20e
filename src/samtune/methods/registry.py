"""Registry of fine-tuning methods.

A method is a small object that, given a model whose parameters are all frozen and the
names of the components to tune, injects its modules and marks what trains. Methods
are registered by name (`register_method`) and looked up with `get_method`; a duplicate
name is an error and an unknown name suggests close matches, like the model registry.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, ClassVar, Sequence

from samtune.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from samtune.methods.strategy import MethodOptions


class Method:
    """Base class of a fine-tuning method.

    Class attributes:
        name: registry key, as written in configurations ("lora").
        summary: one line for listings.
        options: `MethodOptions` fields the method reads; setting any other is an error,
            so no option is silently ignored.
        defaults: values of `options` when the configuration leaves them unset (None).
        mergeable: True when the injected update can be folded into the base weights.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    options: ClassVar[frozenset[str]] = frozenset()
    defaults: ClassVar[dict[str, object]] = {}
    mergeable: ClassVar[bool] = False

    def apply(self, model: nn.Module, components: Sequence[str], options: MethodOptions) -> None:
        """Inject into and/or unfreeze `components` (attribute names of `model`).

        Called with every parameter of `model` frozen and `options` fully resolved.
        """
        raise NotImplementedError


_METHODS: dict[str, Method] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: register one instance of `cls` under `cls.name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no `name`")
    if cls.name in _METHODS:
        raise ValueError(f"method '{cls.name}' is already registered")
    unknown = set(cls.defaults) - set(cls.options)
    if unknown:
        raise ValueError(f"method '{cls.name}' has defaults for options it does not accept: {unknown}")
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


def list_methods() -> list[str]:
    """Names of the registered methods, in registration order."""
    _ensure_registered()
    return list(_METHODS)

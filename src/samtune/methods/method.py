"""The base class of a fine-tuning method (registered in `samtune.methods.registry`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

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

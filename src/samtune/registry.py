"""One small registry type for everything looked up by name: models, fine-tuning methods,
image formats (and their file extensions) and data-source kinds.

    >>> MODELS: Registry[ModelSpec] = Registry("model", listing="run `samtune models` to list them")
    >>> MODELS.register("lite_medsam", spec)
    >>> MODELS.get("lite_medsm")
    UnknownNameError: unknown model 'lite_medsm'; did you mean lite_medsam? (run `samtune models` ...)

Registering a name twice is a programming error (`ValueError`). Looking up a name that is
not registered is a user error (`UnknownNameError`, one line, exit code 2) that suggests
the closest registered names. Each registry is filled by the module that owns it, which
imports the implementations and registers them explicitly (e.g. `samtune.models.registry`
registers the specs of `samtune.models.zoo`): implementations never register themselves
on import, so no package imports its own registry back.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Generic, Iterator, TypeVar

from samtune.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Items of one kind by unique name, in registration order.

    Args:
        kind: what the names name, for messages ("model", "fine-tuning method", "file type").
        listing: the end of the unknown-name message, in parentheses; ``{names}`` is replaced
            by the registered names joined by ", " (default "available: {names}").
        unknown: the word before `kind` in that message ("unknown", or "unsupported" for
            file types).
    """

    def __init__(self, kind: str, listing: str = "available: {names}", unknown: str = "unknown") -> None:
        self.kind = kind
        self.listing = listing
        self.unknown = unknown
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Add `item` under `name`; a name registered before is a ValueError."""
        if not name:
            raise ValueError(f"a {self.kind} needs a non-empty name")
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._items[name] = item
        return item

    def get(self, name: str, where: str = "") -> T:
        """The item registered as `name`; else UnknownNameError with the close names.

        `where` (e.g. a file path) prefixes the message as ``where: ...``.
        """
        try:
            return self._items[name]
        except KeyError:
            raise self.unknown_name(name, where) from None

    def unknown_name(self, name: str, where: str = "") -> UnknownNameError:
        """The one-line error for an unregistered `name`, naming the closest registered names."""
        close = difflib.get_close_matches(name, list(self._items), n=3, cutoff=0.5)
        hint = f"; did you mean {_either(close)}?" if close else ""
        listing = self.listing.format(names=", ".join(self._items))
        prefix = f"{where}: " if where else ""
        return UnknownNameError(f"{prefix}{self.unknown} {self.kind} '{name}'{hint} ({listing})")

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching the shell-style `pattern`, in registration order."""
        return [name for name in self._items if fnmatch.fnmatch(name, pattern)]

    def items(self) -> list[tuple[str, T]]:
        """(name, item) pairs in registration order."""
        return list(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _either(names: list[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"

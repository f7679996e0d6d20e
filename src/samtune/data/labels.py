"""From stored mask values to training classes: binary, explicit mapping, or a subset.

A mask file stores arbitrary integer values (the prostate masks store 254 and 255 for two
zones; nnU-Net masks store 0..K as declared in dataset.json). A `LabelMap` turns such a
mask into a class map with 0 = background and 1..K = ``classes`` in order:

- ``LabelMap.binary()``: every non-zero value (or every value >= ``threshold``) is class 1.
- ``LabelMap.from_values({"central": 254, "peripheral": 255})``: explicit mapping; a class
  may combine several values, e.g. ``{"gland": [254, 255]}``.
- ``label_map.subset(["peripheral"])``: keep some classes; values of the other declared
  classes become background *on purpose*.
- ``LabelMap.from_dataset_json(labels)``: nnU-Net's ``labels`` entry.

A non-zero value the map does not declare is an error naming the value: it is never
mapped to background silently. To train on a few classes of a rich label map (a
TotalSegmentator mask with 100 organs), say so: ``label_map.with_others("background")``
(``data.other_labels: background``) sends every undeclared value to background, and
``describe()`` says it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from samtune.data.geometry import LoadedImage
from samtune.errors import DataError


OTHER_LABEL_RULES = ("error", "background")


@dataclass(frozen=True)
class LabelMap:
    """Stored values -> classes 1..K (0 is background).

    Attributes:
        classes: K class names, class ``i + 1`` is ``classes[i]``.
        values: for each class, the stored values that belong to it (empty for binary).
        threshold: binary only: values >= threshold are foreground; None means "!= 0".
        ignored: declared values mapped to background on purpose (by `subset`).
    """

    classes: tuple[str, ...]
    values: tuple[tuple[int, ...], ...] = ()
    threshold: float | None = None
    ignored: tuple[int, ...] = field(default=())
    others: str = "error"  # undeclared non-zero values: "error", or "background" on request

    def with_others(self, rule: str) -> "LabelMap":
        """The same map with undeclared values refused ("error") or sent to background."""
        if rule not in OTHER_LABEL_RULES:
            raise DataError(f"other labels rule must be one of {', '.join(OTHER_LABEL_RULES)}, got '{rule}'")
        if rule == "background" and self.is_binary:
            raise DataError("'other labels: background' needs named classes (e.g. liver=5,spleen=1): "
                            "a binary map already takes every non-zero value as foreground")
        return LabelMap(self.classes, self.values, self.threshold, self.ignored, rule)

    @property
    def is_binary(self) -> bool:
        """True for the 'all foreground combined' map."""
        return not self.values

    @property
    def num_classes(self) -> int:
        """K, not counting background."""
        return len(self.classes)

    @classmethod
    def binary(cls, name: str = "foreground", threshold: float | None = None) -> "LabelMap":
        """All non-zero values (or values >= ``threshold``, e.g. 128 for a uint8
        probability map) form one class."""
        return cls(classes=(name,), threshold=threshold)

    @classmethod
    def from_values(cls, mapping: Mapping[str, int | list[int]]) -> "LabelMap":
        """Class name -> stored value(s), classes numbered 1..K in the order given."""
        if not mapping:
            raise DataError("the label mapping is empty; give at least one class")
        names: list[str] = []
        values: list[tuple[int, ...]] = []
        seen: dict[int, str] = {}  # stored value -> class name
        for name, stored in mapping.items():
            stored_values = tuple(int(v) for v in (stored if isinstance(stored, (list, tuple)) else [stored]))
            if not stored_values:
                raise DataError(f"class '{name}' has no stored values")
            for value in stored_values:
                if value == 0:
                    raise DataError(f"class '{name}' uses value 0, which is background")
                if value in seen:
                    raise DataError(
                        f"value {value} is given to both '{seen[value]}' and '{name}'; "
                        "classes must not overlap (pick one with a subset)"
                    )
                seen[value] = name
            names.append(str(name))
            values.append(stored_values)
        return cls(classes=tuple(names), values=tuple(values))

    @classmethod
    def from_dataset_json(cls, labels: dict) -> "LabelMap":
        """nnU-Net v2 ``{"background": 0, "PZ": 1, ...}`` (values may be lists for regions)
        or v1 ``{"0": "background", "1": "PZ"}``."""
        if not labels:
            raise DataError("dataset.json 'labels' is empty; declare at least one class")
        first_key = next(iter(labels))
        if str(first_key).lstrip("-").isdigit() and isinstance(labels[first_key], str):
            labels = {name: int(value) for value, name in labels.items()}  # v1 layout
        mapping: dict[str, int | list[int]] = {}
        for name, value in labels.items():
            stored = value if isinstance(value, list) else [value]
            if not all(isinstance(v, int) or (isinstance(v, str) and v.isdigit()) for v in stored):
                raise DataError(f"dataset.json label '{name}' has non-integer value {value!r}")
            stored = [int(v) for v in stored if int(v) != 0]
            if stored:
                mapping[name] = stored
        if not mapping:
            raise DataError("dataset.json 'labels' declares only background")
        return cls.from_values(mapping)

    def subset(self, names: list[str]) -> "LabelMap":
        """Keep only ``names`` (renumbered 1..len(names) in the order given)."""
        if self.is_binary:
            raise DataError("a binary label map has one class; a subset needs a value mapping")
        unknown = [n for n in names if n not in self.classes]
        if unknown or not names:
            raise DataError(
                f"unknown label(s) {unknown or names}; declared labels: {', '.join(self.classes)}"
            )
        index = {name: i for i, name in enumerate(self.classes)}
        kept = tuple(self.values[index[n]] for n in names)
        dropped = tuple(v for n, vs in zip(self.classes, self.values) if n not in names for v in vs)
        return LabelMap(tuple(names), kept, None, tuple(sorted(self.ignored + dropped)), self.others)

    def declared_values(self) -> set[int]:
        """Every stored value this map knows (0, class values and ignored values)."""
        return {0, *self.ignored, *(v for vs in self.values for v in vs)}

    def undeclared(self, found_values) -> list:
        """Values among ``found_values`` that are neither background nor declared."""
        if self.is_binary or self.others == "background":
            return []
        known = self.declared_values()
        return sorted(v for v in found_values if v not in known)

    def class_of_value(self, value) -> str:
        """Name of the class a stored value belongs to ('background' or 'ignored' if none)."""
        if self.is_binary:
            above = value >= self.threshold if self.threshold is not None else value != 0
            return self.classes[0] if above else "background"
        for name, stored in zip(self.classes, self.values):
            if value in stored:
                return name
        if value in self.ignored:
            return "ignored"
        if value != 0 and value not in self.declared_values() and self.others == "background":
            return "background (other label)"
        return "background"

    def apply(self, mask: np.ndarray, where: str = "mask") -> np.ndarray:
        """Stored mask (any shape, integer values) -> uint8/int64 class map, 0..K.

        Raises DataError naming ``where`` for undeclared values.
        """
        if self.is_binary:
            if self.threshold is not None:
                return (mask >= self.threshold).astype(np.uint8)
            return (mask != 0).astype(np.uint8)
        found = np.unique(mask)
        bad = self.undeclared(found.tolist())
        if bad:
            raise DataError(
                f"{where}: label value(s) {bad[:10]} not declared (declared: "
                f"{sorted(self.declared_values())}); add them to the label mapping"
            )
        if self.others == "background":
            # Only the declared values are looked up; everything else stays 0.
            classes = np.zeros(mask.shape, dtype=np.uint8 if self.num_classes < 256 else np.int64)
            for class_index, stored in enumerate(self.values, start=1):
                classes[np.isin(mask, stored)] = class_index
            return classes
        lookup_keys = np.asarray(sorted(self.declared_values()), dtype=np.int64)
        lookup_vals = np.zeros(len(lookup_keys), dtype=np.int64)
        for class_index, stored in enumerate(self.values, start=1):
            for value in stored:
                lookup_vals[np.searchsorted(lookup_keys, value)] = class_index
        classes = lookup_vals[np.searchsorted(lookup_keys, mask.astype(np.int64))]
        return classes.astype(np.uint8 if self.num_classes < 256 else np.int64)

    def describe(self) -> str:
        """One line, e.g. 'central=254, peripheral=255' or 'binary (value != 0)'."""
        if self.is_binary:
            rule = f">= {self.threshold:g}" if self.threshold is not None else "!= 0"
            return f"binary {self.classes[0]} (value {rule})"
        parts = [f"{n}={'+'.join(str(v) for v in vs)}" for n, vs in zip(self.classes, self.values)]
        rule = "; every other value -> background (other labels: background)" if self.others == "background" else ""
        return ", ".join(parts) + rule


def parse_label_spec(text: str) -> LabelMap:
    """CLI form: 'binary', 'binary>=128', or 'central=254,peripheral=255' ('gland=254+255')."""
    text = text.strip()
    if text.startswith("binary"):
        rest = text[len("binary"):].strip()
        if not rest:
            return LabelMap.binary()
        if rest.startswith(">="):
            try:
                return LabelMap.binary(threshold=float(rest[2:]))
            except ValueError:
                pass
        raise DataError(f"bad label spec '{text}'; use 'binary' or 'binary>=VALUE'")
    mapping: dict[str, list[int]] = {}
    for part in text.split(","):
        name, sep, values = part.partition("=")
        try:
            parsed = [int(v) for v in values.split("+")]
        except ValueError:
            parsed = []
        if not sep or not name.strip() or not parsed:
            raise DataError(
                f"bad label spec part '{part}'; use NAME=VALUE[+VALUE], e.g. central=254,peripheral=255"
            )
        mapping[name.strip()] = parsed
    return LabelMap.from_values(mapping)


def label_array(mask: LoadedImage) -> np.ndarray:
    """A mask file's pixels as a single-channel array in its spatial shape.

    Gray-looking RGB(A) masks (all colour channels equal) are reduced to one channel; real
    colour masks and non-integer values (other than binary probability maps, which are
    returned as they are for a threshold) raise DataError naming the file.
    """
    array = mask.array
    if array.ndim > mask.spatial_ndim:
        colour = array[..., :3] if array.shape[-1] >= 3 else array[..., :1]
        if not (colour == colour[..., :1]).all():
            raise DataError(
                f"mask {mask.path} has {array.shape[-1]} differing colour channels; "
                "store masks as one-channel label images (0 = background)"
            )
        array = colour[..., 0]
    if not np.issubdtype(array.dtype, np.integer) and array.dtype != np.bool_:
        if not np.isfinite(array).all():
            raise DataError(f"mask {mask.path} contains NaN or infinite values")
    if np.issubdtype(array.dtype, np.signedinteger) and array.size and array.min() < 0:
        raise DataError(f"mask {mask.path} holds negative value {int(array.min())}; labels must be >= 0")
    return array


def require_integer_labels(array: np.ndarray, label_map: LabelMap, where: str) -> None:
    """Refuse fractional mask values unless a binary threshold says how to cut them."""
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        return
    if label_map.is_binary and label_map.threshold is not None:
        return
    if not np.array_equal(array, np.round(array)):
        raise DataError(
            f"{where}: mask has fractional values (e.g. {float(array[array != np.round(array)][0]):g}); "
            "threshold probability maps with a binary label spec such as 'binary>=0.5'"
        )

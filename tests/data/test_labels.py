"""Label maps: binary, explicit values, subsets, dataset.json, undeclared values."""

from __future__ import annotations

import numpy as np
import pytest

from samtune.data.labels import LabelMap, parse_label_spec, require_integer_labels
from samtune.errors import DataError

PROSTATE_MASK = np.array([[0, 254, 255], [255, 0, 254]], dtype=np.uint8)


def test_binary_combines_all_foreground():
    out = LabelMap.binary().apply(PROSTATE_MASK)
    np.testing.assert_array_equal(out, [[0, 1, 1], [1, 0, 1]])
    probabilities = np.array([[0, 127, 128, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(LabelMap.binary(threshold=128).apply(probabilities), [[0, 0, 1, 1]])


def test_explicit_mapping_of_stored_values():
    labels = LabelMap.from_values({"central": 254, "peripheral": 255})
    np.testing.assert_array_equal(labels.apply(PROSTATE_MASK), [[0, 1, 2], [2, 0, 1]])
    assert labels.describe() == "central=254, peripheral=255"
    reversed_order = LabelMap.from_values({"peripheral": 255, "central": 254})
    np.testing.assert_array_equal(reversed_order.apply(PROSTATE_MASK), [[0, 2, 1], [1, 0, 2]])
    gland = LabelMap.from_values({"gland": [254, 255]})
    np.testing.assert_array_equal(gland.apply(PROSTATE_MASK), [[0, 1, 1], [1, 0, 1]])


def test_subset_drops_other_declared_classes_on_purpose():
    labels = LabelMap.from_values({"central": 254, "peripheral": 255}).subset(["peripheral"])
    np.testing.assert_array_equal(labels.apply(PROSTATE_MASK), [[0, 0, 1], [1, 0, 0]])
    assert labels.classes == ("peripheral",) and labels.ignored == (254,)
    assert labels.class_of_value(254) == "ignored"
    with pytest.raises(DataError, match=r"unknown label\(s\) \['apex'\]; declared labels: central, peripheral"):
        LabelMap.from_values({"central": 254, "peripheral": 255}).subset(["apex"])


def test_undeclared_value_is_an_error_not_background():
    labels = LabelMap.from_values({"central": 254})
    with pytest.raises(DataError, match=r"m.png: label value\(s\) \[255\] not declared"):
        labels.apply(PROSTATE_MASK, where="m.png")
    assert labels.undeclared([0, 254, 255, 7]) == [7, 255]


def test_dataset_json_v2_and_v1():
    v2 = LabelMap.from_dataset_json({"background": 0, "PZ": 1, "TZ": 2})
    assert v2.classes == ("PZ", "TZ") and v2.values == ((1,), (2,))
    v1 = LabelMap.from_dataset_json({"0": "background", "1": "PZ", "2": "TZ"})
    assert v1 == v2
    regions = LabelMap.from_dataset_json({"background": 0, "whole": [1, 2], "core": [3]})
    np.testing.assert_array_equal(regions.apply(np.array([0, 1, 2, 3])), [0, 1, 1, 2])
    with pytest.raises(DataError, match="value 1 is given to both 'whole' and 'core'"):
        LabelMap.from_dataset_json({"background": 0, "whole": [1, 2], "core": [1]})


def test_parse_label_spec():
    assert parse_label_spec("binary") == LabelMap.binary()
    assert parse_label_spec("binary>=128").threshold == 128
    spec = parse_label_spec("central=254, peripheral=255")
    assert spec.classes == ("central", "peripheral") and spec.values == ((254,), (255,))
    assert parse_label_spec("gland=254+255").values == ((254, 255),)
    with pytest.raises(DataError, match="bad label spec part 'central:254'"):
        parse_label_spec("central:254")
    with pytest.raises(DataError, match="uses value 0, which is background"):
        parse_label_spec("bg=0")


def test_fractional_masks_need_a_threshold():
    probabilities = np.array([[0.0, 0.25, 1.0]])
    with pytest.raises(DataError, match=r"m.nii: mask has fractional values \(e.g. 0.25\)"):
        require_integer_labels(probabilities, LabelMap.binary(), "m.nii")
    require_integer_labels(probabilities, LabelMap.binary(threshold=0.5), "m.nii")
    require_integer_labels(np.array([[0.0, 2.0]]), LabelMap.binary(), "m.nii")  # integral floats are fine

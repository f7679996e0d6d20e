"""One read pass for the data check and the dataset; the bounded LRU case cache (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.helpers.generated_data import write_disc_dataset
from PIL import Image

import samtune.data.case_io as case_io
from samtune.data.dataset import SliceDataset, SliceDatasetConfig
from samtune.data.prompts import PromptConfig
from samtune.data.sources import load_source
from samtune.data.validate import check_source
from samtune.errors import DataError

CONFIG = SliceDatasetConfig(32, "minmax", prompts=PromptConfig.study("hybrid"), seed=5)


@pytest.fixture
def reads(monkeypatch):
    """Paths read through `case_io.read_image` (every image and mask file of a case)."""
    calls: list = []
    original = case_io.read_image
    monkeypatch.setattr(case_io, "read_image", lambda path, role="image": calls.append(path) or original(path, role))
    return calls


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in ("image", "mask", "boxes", "points", "point_labels", "prompt_masks"):
        assert torch.equal(a[key], b[key]), key


def test_check_and_dataset_share_one_read(tmp_path, reads):
    source = load_source(write_disc_dataset(tmp_path / "d", 4, seed=1))
    checked = SliceDataset.checked(source, CONFIG, train=True)
    assert len(reads) == 8  # 4 images + 4 masks, each once (check, then dataset: 16 before)
    reads.clear()
    check_source(source).raise_if_fatal()
    separate = SliceDataset(source, CONFIG, train=True)
    assert len(reads) == 16
    assert checked.refs == separate.refs
    for index in range(len(checked)):
        _same(checked[index], separate[index])


def test_checked_dataset_raises_the_checks_first_problem(tmp_path):
    folder = write_disc_dataset(tmp_path / "d", 3, seed=1)
    Image.fromarray(np.full((64, 64), 7, np.uint8)).save(folder / "masks" / "case01.png")
    source = load_source(folder)
    from samtune.data.labels import LabelMap

    labels = LabelMap.from_values({"disc": 255})
    with pytest.raises(DataError) as expected:
        check_source(source, labels).raise_if_fatal()
    with pytest.raises(DataError) as raised:
        SliceDataset.checked(source, CONFIG, labels=labels)
    assert str(raised.value) == str(expected.value) and "case01.png" in str(raised.value)


def test_cache_is_bounded_by_megabytes_and_least_recently_used_goes_first(tmp_path, reads):
    source = load_source(write_disc_dataset(tmp_path / "d", 4, seed=1))
    unbounded = SliceDataset(source, CONFIG, train=False)
    per_case = unbounded._cache[0].nbytes  # 64x64 uint8 image + 64x64 class map
    assert len(unbounded._cache) == 4 and unbounded.cached_bytes == 4 * per_case
    bounded_config = SliceDatasetConfig(32, "minmax", prompts=PromptConfig.study("hybrid"), seed=5,
                                        cache_mb=2.5 * per_case / 2**20)  # room for two cases
    reads.clear()
    dataset = SliceDataset.checked(source, bounded_config, train=False)
    assert list(dataset._cache) == [2, 3] and dataset.cached_bytes == 2 * per_case
    assert len(reads) == 8
    _same(dataset[2], unbounded[2])  # cached: no read, and 2 is now the most recent
    assert len(reads) == 8
    _same(dataset[0], unbounded[0])  # evicted: read again (image + mask), evicts 3
    assert len(reads) == 10 and list(dataset._cache) == [2, 0]
    dataset[2]
    assert len(reads) == 10
    by_count = SliceDataset(source, SliceDatasetConfig(32, "minmax", cache_cases=1, cache_mb=None), train=False)
    assert list(by_count._cache) == [3]


def test_one_case_larger_than_the_bound_still_stays(tmp_path, reads):
    source = load_source(write_disc_dataset(tmp_path / "d", 2, seed=1))
    dataset = SliceDataset(source, SliceDatasetConfig(32, "minmax", cache_mb=1e-6), train=False)
    assert list(dataset._cache) == [1]
    reads.clear()
    dataset[1]
    dataset[1]
    assert reads == []  # the most recent case is kept whatever its size: no read per slice

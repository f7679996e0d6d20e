"""Every test taking `family` runs on both backbone families (tiny SAM ViT and TinyViT)."""

import pytest

from tiny_sam import FAMILIES


@pytest.fixture(params=list(FAMILIES))
def family(request) -> str:
    return request.param

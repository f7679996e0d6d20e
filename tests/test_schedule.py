import math

import pytest

from samtune.engine.schedule import lr_factor


def test_warmup_then_cosine_hand_values():
    # warmup 3: steps 0,1,2 -> 1/4, 2/4, 3/4; then cosine over 10 - 3 = 7 steps
    assert [lr_factor(s, 10, 3, "cosine") for s in range(3)] == [0.25, 0.5, 0.75]
    assert lr_factor(3, 10, 3, "cosine") == 1.0
    assert lr_factor(3 + 7 / 2, 10, 3, "cosine") == pytest.approx(0.5)
    assert lr_factor(10, 10, 3, "cosine") == pytest.approx(0.0)


def test_poly_and_constant():
    assert lr_factor(5, 10, 0, "poly") == pytest.approx(0.5**0.9)
    assert lr_factor(7, 10, 0, "constant") == 1.0
    with pytest.raises(ValueError):
        lr_factor(0, 10, 0, "linear")
    assert math.isclose(lr_factor(0, 10, 0, "cosine"), 1.0)

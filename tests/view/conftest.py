"""Data for the view tests: a real `samtune eval` folder over a small anisotropic volume and a
2D PNG case, and a prompt engine on the tiny registered test model (one torch thread)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("starlette", reason="the view extra is not installed: pip install 'samtune[view]'")

# Volume geometry (ITK x, y, z order): anisotropic, shifted, x axis flipped.
SPACING = (0.8, 0.6, 2.5)
ORIGIN = (10.0, -4.0, 7.5)
DIRECTION = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def ball(shape, centre, radius) -> np.ndarray:
    grid = np.indices(shape)
    return (sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2).astype(np.uint8)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="session")
def view_data(tmp_path_factory) -> dict[str, Path]:
    """images/ labels/ preds/ and eval/ (written by `samtune eval`) for cases 'vol' and 'photo'."""
    from samtune.cli.main import main
    from samtune.data.geometry import Geometry
    from samtune.data.readers import write_image

    root = tmp_path_factory.mktemp("view_data")
    for name in ("images", "labels", "preds"):
        (root / name).mkdir()
    rng = np.random.default_rng(0)
    shape = (10, 24, 30)  # z, y, x
    gt = ball(shape, (5, 12, 14), 5)
    pred = ball(shape, (5, 12, 17), 5)  # shifted 3 voxels along x: FP on one side, FN on the other
    image = (rng.normal(100, 10, shape) + 200 * gt).astype(np.int16)
    geometry = Geometry(SPACING, ORIGIN, DIRECTION)
    write_image(root / "images" / "vol.nii.gz", image, geometry)
    write_image(root / "labels" / "vol.nii.gz", gt, geometry)
    write_image(root / "preds" / "vol.nii.gz", pred, geometry)
    disc = ball((32, 40), (16, 20), 8)
    photo = np.clip(rng.normal(60, 10, (32, 40)) + 150 * disc, 0, 255).astype(np.uint8)
    Image.fromarray(photo).save(root / "images" / "photo.png")
    Image.fromarray(disc * 255).save(root / "labels" / "photo.png")
    Image.fromarray(disc).save(root / "preds" / "photo.png")  # perfect prediction (value 1 vs 255)
    assert main(["eval", "--pred", str(root / "preds"), "--gt", str(root / "labels"), "--out", str(root / "eval"),
                 "--label-map", "binary", "--pred-label-map", "binary"]) == 0
    return {"root": root, "gt": gt, "pred": pred, "image": image, "photo": photo, "disc": disc, "geometry": geometry}


@pytest.fixture(scope="session")
def tiny_predictor():
    """A prompted predictor on the tiny TinyViT test model (seeded random weights)."""
    from samtune.inference.predictor import Predictor
    from samtune.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("tiny_vit_test", pretrained=False, image_size=32)
    return Predictor(model.eval(), "prompted")


@pytest.fixture
def make_client(view_data, tiny_predictor, tmp_path):
    """make_client(path=eval folder, token=None, **open_view options) -> (TestClient, state)."""
    from starlette.testclient import TestClient

    from samtune.view import build_app, open_view
    from samtune.view.prompting import PromptEngine

    def make(path=None, token=None, base_url="http://127.0.0.1", **options):
        options.setdefault("corrections", tmp_path / "corrections")
        state = open_view(path or view_data["root"] / "eval", token=token, **options)
        state.prompts = PromptEngine(lambda: tiny_predictor, "tiny_vit_test")
        return TestClient(build_app(state), base_url=base_url), state

    return make

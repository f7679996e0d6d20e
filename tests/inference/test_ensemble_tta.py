"""Ensembles, test-time flips, probability maps and the QC score (issue 18)."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from PIL import Image
from torch import nn

from samtune.cli.main import main
from samtune.data.geometry import Geometry
from samtune.data.readers import read_image, write_image
from samtune.errors import UserError
from samtune.inference.ensemble import Ensemble, member_probabilities
from samtune.inference.predictor import Predictor
from samtune.inference.qc import Disagreement
from samtune.inference.tta import FLIPS_2D, flipped_probabilities


class PixelModel(nn.Module):
    """A toy automatic 'SAM': logits per pixel from its own intensity (and, with ``ramp``,
    from its column), at the model frame's full resolution."""

    normalization = "minmax"

    def __init__(self, size: int, ramp: float = 0.0):
        super().__init__()
        self.image_size, self.ramp = size, ramp

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images[:, :1]

    def decode(self, embeddings: torch.Tensor, multimask_output: bool = True, **_):
        columns = torch.arange(embeddings.shape[-1], dtype=torch.float32)
        foreground = 6 * (embeddings[:, 0] - 0.5) + self.ramp * columns
        return torch.stack([torch.zeros_like(foreground), foreground], 1), torch.zeros(len(embeddings), 2)


def toy_predictor(ramp: float = 0.0, size: int = 8, names=("foreground",)) -> Predictor:
    return Predictor(PixelModel(size, ramp).eval(), "automatic", names)


def test_flips_of_a_flip_equivariant_model_give_its_own_probabilities_exactly():
    image = np.random.default_rng(0).integers(0, 255, (8, 8)).astype(np.uint8)
    plain = Ensemble([toy_predictor()], ["toy"]).predict_case(image, probabilities=True)
    tta = Ensemble([toy_predictor()], ["toy"], tta="flips").predict_case(image, probabilities=True)
    assert tta.variants == 4 and plain.variants == 1
    assert np.array_equal(tta.probabilities, plain.probabilities)  # exact, not approximately
    assert np.array_equal(tta.labels.array, plain.labels.array) and tta.disagreement == 0.0


def test_flips_of_a_position_dependent_model_average_the_flipped_back_maps():
    """The column ramp breaks equivariance: under a horizontal flip pixel (r, c) is scored
    with ramp x (W-1-c); flipped back and averaged, columns see ramp x c and x (W-1-c)."""
    image = np.random.default_rng(1).integers(0, 255, (8, 8)).astype(np.uint8)
    ramp = 0.25
    tta = Ensemble([toy_predictor(ramp)], ["toy"], tta="flips").predict_case(image, probabilities=True)
    x = (image - image.min()) / (image.max() - image.min())
    columns = np.arange(8)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731 (softmax of [0, z])
    plain = sigmoid(6 * (x - 0.5) + ramp * columns)
    mirrored = sigmoid(6 * (x - 0.5) + ramp * (7 - columns))
    expected = (plain + plain + mirrored + mirrored) / 4  # identity, rows, columns, both
    np.testing.assert_allclose(tta.probabilities[1], expected, atol=1e-6)
    np.testing.assert_allclose(tta.probabilities.sum(0), 1, atol=1e-6)


def test_flipped_probabilities_undo_each_flip():
    image = np.arange(6).reshape(2, 3)

    def identity_probabilities(batch):
        return [b[None].astype(np.float32) for b in batch]

    (variants,) = flipped_probabilities(identity_probabilities, [image], FLIPS_2D)
    for variant in variants:
        assert np.array_equal(variant[0], image)


def test_disagreement_is_one_minus_the_mean_dice_to_the_consensus():
    consensus = np.array([[1, 1, 0, 0]])
    same = consensus.copy()
    half = np.array([[1, 0, 0, 0]])  # Dice 2*1/(1+2) = 2/3
    qc = Disagreement(variants=2, classes=1)
    qc.update([same, half], consensus)
    assert qc.score() == pytest.approx(1 - (1 + 2 / 3) / 2)
    empty = Disagreement(variants=2, classes=2)
    empty.update([np.zeros((2, 2), int)] * 2, np.zeros((2, 2), int))
    assert empty.score() == 0.0
    two_classes = Disagreement(variants=1, classes=2)  # class 2 absent everywhere: left out
    two_classes.update([half], consensus)
    assert two_classes.score() == pytest.approx(1 / 3)


def test_members_of_other_classes_or_modes_are_refused():
    with pytest.raises(UserError, match=r"b predicts classes \['tumour'\] but a predicts \['foreground'\]"):
        Ensemble([toy_predictor(), toy_predictor(names=("tumour",))], ["a", "b"])
    prompted = dataclasses.replace(toy_predictor(), mode="prompted")
    with pytest.raises(UserError, match="b is a prompted run"):
        Ensemble([toy_predictor(), prompted], ["a", "b"])


# ------------------------------------------------------------------ real tiny runs
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """tiny_vit_test trained twice: 64 px input, seed 0 and 128 px input, seed 1 (3 steps)."""
    from tests.helpers.generated_data import write_disc_dataset

    from samtune.engine.api import train
    from samtune.engine.config import TrainConfig

    root = tmp_path_factory.mktemp("ensemble")
    train_data = write_disc_dataset(root / "train", 3, seed=1)
    val_data = write_disc_dataset(root / "val", 2, seed=2)
    runs, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)
    for seed, size in ((0, 64), (1, 128)):
        config = TrainConfig()
        config.model.name, config.model.image_size = "tiny_vit_test", size
        config.strategy.component, config.strategy.method = "decoder", "full"
        config.data.train, config.data.val = str(train_data), str(val_data)
        config.optim.steps, config.optim.lr, config.run.seed = 3, 3e-3, seed
        config.eval.every, config.run.log_every, config.run.checkpoint_every = 3, 1, 3
        train(config, root / f"run{seed}")
        runs.append(root / f"run{seed}")
    torch.set_num_threads(threads)
    return {"runs": runs, "val": val_data, "root": root}


def test_one_member_without_tta_gives_the_predictors_labels(two_runs):
    image = np.asarray(Image.open(two_runs["val"] / "images" / "case00.png"))
    predictor = Predictor.from_run(two_runs["runs"][0])
    ensemble = Ensemble.from_runs(two_runs["runs"][:1])
    assert np.array_equal(ensemble.predict_image(image), predictor.predict_image(image))


def test_an_ensemble_of_two_input_sizes_averages_their_probabilities(two_runs):
    image = np.asarray(Image.open(two_runs["val"] / "images" / "case01.png"))
    members = [Predictor.from_run(run) for run in two_runs["runs"]]
    assert [m.model.image_size for m in members] == [64, 128]
    each = [member_probabilities(m, [image])[0] for m in members]
    ensemble = Ensemble.from_runs(two_runs["runs"])
    case = ensemble.predict_case(image, probabilities=True)
    np.testing.assert_allclose(case.probabilities, (each[0] + each[1]) / 2, atol=1e-6)
    assert np.array_equal(case.labels.array, ((each[0] + each[1]) / 2).argmax(0))
    # TTA: the flipped image through each member, flipped back by hand with slicing.
    flipped = [np.flip(member_probabilities(m, [image[:, ::-1].copy()])[0], 2) for m in members]
    tta = Ensemble.from_runs(two_runs["runs"], tta="flips").predict_case(image, probabilities=True)
    assert tta.variants == 4 * 2
    horizontal = (flipped[0] + flipped[1]) / 2
    variants = [member_probabilities(m, [np.flip(image, axes).copy()])[0] for m in members
                for axes in ((0,), (0, 1))]
    others = [np.flip(v, axes) for v, axes in zip(variants, [(1,), (1, 2)] * 2)]
    expected = (each[0] + each[1] + 2 * horizontal + sum(others)) / 8
    np.testing.assert_allclose(tta.probabilities, expected, atol=1e-6)


def test_predict_cli_writes_labels_probabilities_and_qc(two_runs, tmp_path, capsys):
    runs = [str(r) for r in two_runs["runs"]]
    png = two_runs["val"] / "images" / "case00.png"
    volume = np.stack([np.asarray(Image.open(p)) for p in sorted((two_runs["val"] / "images").glob("*.png"))])
    geometry = Geometry((0.5, 0.7, 2.0), (1.0, -2.0, 3.0), (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    nifti = write_image(tmp_path / "vol.nii.gz", volume, geometry)
    out = tmp_path / "preds"
    assert main(["predict", str(png), str(nifti), "--run", runs[0], "--run", runs[1], "--tta", "flips",
                 "--probabilities", "--out", str(out)]) == 0
    ensemble = Ensemble.from_runs(runs, tta="flips")
    case_2d = ensemble.predict_case(read_image(png), probabilities=True)
    stored = np.asarray(Image.open(out / "case00_prob_1.png"))
    assert stored.dtype == np.uint16
    assert np.array_equal(stored, np.round(case_2d.probabilities[1] * 65535).astype(np.uint16))
    case_3d = ensemble.predict_case(read_image(nifti), probabilities=True)
    maps = sitk.ReadImage(str(out / "vol_prob_1.nii.gz"))
    assert maps.GetPixelIDTypeAsString() == "32-bit float"
    source = sitk.ReadImage(str(nifti))
    assert maps.GetSpacing() == source.GetSpacing() and maps.GetOrigin() == source.GetOrigin() == (1.0, -2.0, 3.0)
    assert maps.GetDirection() == source.GetDirection() and maps.GetSize() == source.GetSize()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(maps), case_3d.probabilities[1])
    assert np.array_equal(read_image(out / "vol.nii.gz").array, case_3d.labels.array)
    with open(out / "qc.csv", newline="") as handle:
        rows = {row["case"]: row for row in csv.DictReader(handle)}
    assert float(rows["case00"]["disagreement"]) == pytest.approx(case_2d.disagreement, abs=1e-6)
    assert float(rows["vol"]["disagreement"]) == pytest.approx(case_3d.disagreement, abs=1e-6)
    assert rows["vol"]["variants"] == "8" and rows["vol"]["predicted_iou"] == ""


def test_eval_cli_scores_an_ensemble_and_writes_qc(two_runs, tmp_path):
    runs = [str(r) for r in two_runs["runs"]]
    out = tmp_path / "eval"
    assert main(["eval", "--run", runs[0], "--run", runs[1], "--data", str(two_runs["val"]), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    ensemble = Ensemble.from_runs(runs)
    dice = []
    for name in ("case00", "case01"):
        image = np.asarray(Image.open(two_runs["val"] / "images" / f"{name}.png"))
        truth = np.asarray(Image.open(two_runs["val"] / "masks" / f"{name}.png")) > 0
        pred = ensemble.predict_image(image) == 1
        dice.append(2 * (pred & truth).sum() / (pred.sum() + truth.sum()))
    assert summary["mean_over_classes"]["dice"] == pytest.approx(np.mean(dice), abs=1e-9)
    with open(out / "qc.csv", newline="") as handle:
        assert [row["case"] for row in csv.DictReader(handle)] == ["case00", "case01"]

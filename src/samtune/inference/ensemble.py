"""Ensembles of runs and test-time augmentation, as a `Predictor` look-alike.

    >>> ensemble = Ensemble.from_runs(["runs/fold0", "runs/fold1", "runs/fold2"], tta="flips")
    >>> labels = ensemble.predict_volume(read_image("ct.nii.gz"))   # like Predictor.predict_volume
    >>> case = ensemble.predict_case(read_image("ct.nii.gz"), probabilities=True)
    >>> case.probabilities.shape, case.disagreement                 # [K + 1, z, y, x], QC score

Each member (an automatic run) predicts softmax probabilities per 2D slice in the
image's own pixel grid (`member_probabilities`: its own input size, normalisation and
intensity range, then `ResizePad.logits_to_original`), so runs trained at different
input sizes combine. Under ``tta="flips"`` every member also predicts the three mirrored
slices, flipped back exactly (`samtune.inference.tta`). The ensemble's probabilities
are the plain mean over members x flips; its labels are their argmax. Members must
predict the same classes (same names, same order), on the same slicing axis and input
channels. Prompted runs and zero-shot models are not ensembled.

One member without TTA gives the labels of `Predictor` itself (argmax of the logits =
argmax of their softmax).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from samtune.data.geometry import Geometry, LoadedImage
from samtune.data.slicing import take_slice
from samtune.errors import UserError
from samtune.inference.predictor import Predictor
from samtune.inference.qc import Disagreement
from samtune.inference.tta import average, flipped_probabilities, tta_flips
from samtune.inference.volume import as_volume, batches, default_batch_size, pick_channels, slice_axis


@torch.inference_mode()
def member_probabilities(predictor: Predictor, images: Sequence[np.ndarray],
                         value_range: tuple[float, float] | None = None) -> list[np.ndarray]:
    """Softmax probabilities [K + 1, H, W] float32 (class 0 = background) per 2D image,
    in each image's own frame, for an automatic `Predictor`; one encoder forward."""
    embeddings, frames = predictor.encode_images(images, value_range)
    low_res, _ = predictor.model.decode(embeddings, multimask_output=True)
    return [torch.softmax(frame.logits_to_original(logits.float().cpu()), dim=0).numpy()
            for logits, frame in zip(low_res, frames)]


@dataclass
class CaseResult:
    """One predicted image or volume: labels with the source geometry, optionally the
    probabilities [K + 1, *spatial] float32, and the QC disagreement (`samtune.inference.qc`)."""

    labels: LoadedImage
    probabilities: np.ndarray | None
    disagreement: float
    variants: int


@dataclass
class Ensemble:
    """Automatic runs averaged (optionally under TTA); the predict API of `Predictor`."""

    members: list[Predictor]
    names: list[str]
    tta: str | None = None
    channels: tuple[int, ...] | None = None  # input channels selected before prediction
    last_disagreement: float | None = field(default=None, init=False)  # of the latest predict_* call
    qc_rows: list[dict] = field(default_factory=list, init=False)  # filled by samtune eval, one per case

    def __post_init__(self) -> None:
        if not self.members:
            raise UserError("an ensemble needs at least one run")
        self.flips = tta_flips(self.tta)
        first, first_name = self.members[0], self.names[0]
        for member, name in zip(self.members, self.names):
            if member.mode != "automatic":
                raise UserError(f"{name} is a prompted run; ensembles and --tta apply to automatic "
                                "(no-prompt) runs: predict it on its own")
            if member.class_names != first.class_names:
                raise UserError(f"{name} predicts classes {list(member.class_names)} but {first_name} predicts "
                                f"{list(first.class_names)}; an ensemble needs runs of one task with the same classes")
            if member.axis != first.axis:
                raise UserError(f"{name} was trained on slices across axis {member.axis}, {first_name} across axis "
                                f"{first.axis}; ensemble runs of the same slicing axis")
            if member.channels != first.channels:
                raise UserError(f"{name} uses input channels {member.channels}, {first_name} {first.channels}; "
                                "ensemble runs that read the same channels")

    @classmethod
    def from_runs(cls, runs: Sequence[str | Path], device: str = "cpu", tta: str | None = None) -> Ensemble:
        """Load every run (best weights) and check they can be averaged."""
        tta_flips(tta)  # a bad --tta is refused before any model loads
        if len({str(Path(r).resolve()) for r in runs}) != len(runs):
            raise UserError("the same run is given twice; give each --run once")
        members = [Predictor.from_run(run, device=device) for run in runs]
        return cls(members, [str(r) for r in runs], tta, members[0].channels)

    # The attributes callers of a Predictor read.
    mode = "automatic"

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.members[0].class_names

    @property
    def axis(self) -> int:
        return self.members[0].axis

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    @property
    def variants(self) -> int:
        return len(self.members) * len(self.flips)

    # ----------------------------------------------------------------- slices
    def slice_probabilities(self, images: Sequence[np.ndarray],
                            value_ranges: Sequence[tuple[float, float] | None] | None = None
                            ) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
        """(mean probabilities [K + 1, H, W] per image, the labels of every variant per image).

        ``value_ranges``: one intensity range per member (a volume's), or None for each
        image's own.
        """
        ranges = list(value_ranges) if value_ranges is not None else [None] * len(self.members)
        per_image: list[list[np.ndarray]] = [[] for _ in images]
        for member, value_range in zip(self.members, ranges):
            def predict(batch: list[np.ndarray], member=member, value_range=value_range) -> list[np.ndarray]:
                return member_probabilities(member, batch, value_range)

            for index, variants in enumerate(flipped_probabilities(predict, images, self.flips)):
                per_image[index].extend(variants)
        means = [average(variants) for variants in per_image]
        labels = [[v.argmax(0).astype(np.uint8) for v in variants] for variants in per_image]
        return means, labels

    def predict_case(self, image: LoadedImage | np.ndarray, axis: int | None = None, batch_size: int | None = None,
                     probabilities: bool = False) -> CaseResult:
        """A 2D image or a volume (every slice across ``axis``, default the runs')."""
        if isinstance(image, LoadedImage):
            loaded = image
        elif np.asarray(image).ndim == 2:  # a bare [H, W] image; a bare 3D array is a volume [z, y, x]
            loaded = LoadedImage(np.asarray(image), Geometry.identity(2))
        else:
            loaded = as_volume(image)
        loaded = pick_channels(loaded, self.channels)
        classes = len(self.class_names)
        qc = Disagreement(self.variants, classes)
        if loaded.spatial_ndim == 2:
            (mean,), (image_variants,) = self.slice_probabilities([loaded.array])
            labels = mean.argmax(0).astype(np.uint8)
            qc.update(image_variants, labels)
            self.last_disagreement = qc.score()
            return CaseResult(LoadedImage(labels, loaded.geometry, loaded.path), mean if probabilities else None,
                              self.last_disagreement, self.variants)
        axis = slice_axis(loaded, self.axis if axis is None else axis)
        ranges = [member.value_range(loaded.array) for member in self.members]  # once per volume, as in training
        labels = np.zeros(loaded.spatial_shape, dtype=np.uint8)
        by_slice = np.moveaxis(labels, axis, 0)
        maps = np.zeros((classes + 1, *loaded.spatial_shape), dtype=np.float32) if probabilities else None
        maps_by_slice = np.moveaxis(maps, axis + 1, 1) if maps is not None else None
        batch_size = default_batch_size(self.device) if batch_size is None else batch_size
        for indices in batches(by_slice.shape[0], batch_size):
            means, variant_labels = self.slice_probabilities([take_slice(loaded.array, axis, i) for i in indices], ranges)
            for index, mean, variants in zip(indices, means, variant_labels):
                by_slice[index] = mean.argmax(0)
                qc.update(variants, by_slice[index])
                if maps_by_slice is not None:
                    maps_by_slice[:, index] = mean
        self.last_disagreement = qc.score()
        return CaseResult(LoadedImage(labels, loaded.geometry, loaded.path), maps, self.last_disagreement,
                          self.variants)

    # ------------------------------------------------- the Predictor interface
    def predict_images(self, images: Sequence[np.ndarray], boxes=None, points=None, point_labels=None,
                       value_range: tuple[float, float] | None = None) -> list[np.ndarray]:
        """Labels [H, W] uint8 per 2D image (no prompts: ensembles are automatic)."""
        if any(b is not None for b in boxes or []) or any(p is not None for p in points or []):
            raise UserError("an ensemble segments automatically and takes no prompts; drop the box/points")
        ranges = None if value_range is None else [value_range] * len(self.members)
        means, variant_labels = self.slice_probabilities(images, ranges)
        labels = [mean.argmax(0).astype(np.uint8) for mean in means]
        if len(images) == 1:  # one 2D case: its QC score
            qc = Disagreement(self.variants, len(self.class_names))
            qc.update(variant_labels[0], labels[0])
            self.last_disagreement = qc.score()
        return labels

    def predict_image(self, image: np.ndarray, box=None, points=None, point_labels=None,
                      value_range=None) -> np.ndarray:
        return self.predict_images([image], [box], [points], [point_labels], value_range)[0]

    def predict_volume(self, volume: LoadedImage | np.ndarray, axis: int = 0,
                       batch_size: int | None = None) -> LoadedImage:
        """Labels of every slice, restacked with the source geometry (QC in ``last_disagreement``)."""
        return self.predict_case(as_volume(volume), axis, batch_size).labels

"""Volumes, structures and the slice-embedding cache used by bench_propagation.py.

Each volume is encoded once, slice by slice, by zero-shot LiteMedSAM, and the embeddings
are kept in a float32 .npy file under the cache folder (4 MB a slice). `CachedPredictor`
answers `encode_images` from that file, matched by the slice's bytes, so the real
`Predictor.propagate` code path runs on cached embeddings while the rule is tuned.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from samtune.assets import mni_template
from samtune.data.geometry import LoadedImage
from samtune.data.preprocess import prepare_image
from samtune.data.readers import read_image
from samtune.inference.predictor import Predictor

TOTALSEG = Path(__file__).resolve().parents[1].parent / "shared/data/TotalSeg-examples"
CT_WINDOW = (-160.0, 240.0)  # HU range of the soft-tissue window (level 40, width 400), as MedSAM's CT preprocessing
MNI_STEP = 3  # every 3rd axial slice of the 1 mm template (3 mm apart, as the CT), a third of the encoder time


@dataclass
class Volume:
    name: str
    image: LoadedImage
    value_range: tuple[float, float]
    structures: dict[str, np.ndarray]  # name -> bool [z, y, x]


def load_volumes(which: tuple[str, ...] = ("ct", "mr", "mni")) -> list[Volume]:
    volumes = []
    if "ct" in which:
        image = read_image(TOTALSEG / "example_ct.nii.gz")
        seg = read_image(TOTALSEG / "example_seg_fast_force_split.nii.gz").array
        labels = {"spleen": 1, "kidney_right": 2, "kidney_left": 3, "gallbladder": 4, "liver": 5,
                  "urinary_bladder": 21, "aorta": 52}
        volumes.append(Volume("example_ct", image, CT_WINDOW, {k: seg == v for k, v in labels.items()}))
    if "mr" in which:
        image = read_image(TOTALSEG / "example_mr_sm.nii.gz")
        seg = read_image(TOTALSEG / "example_seg_mr.nii.gz").array
        labels = {"spleen": 1, "kidney_right": 2, "kidney_left": 3, "liver": 5}
        lo, hi = np.percentile(image.array, (0.5, 99.5))
        volumes.append(Volume("example_mr_sm", image, (float(lo), float(hi)),
                              {k: seg == v for k, v in labels.items()}))
    if "mni" in which:
        t1 = read_image(mni_template("t1"))
        index = np.arange(0, t1.array.shape[0], MNI_STEP)
        image = LoadedImage(np.ascontiguousarray(t1.array[index]), t1.geometry)
        structures = {f"mni_{tissue}": read_image(mni_template(tissue)).array[index] >= 128 for tissue in ("wm", "gm")}
        volumes.append(Volume("mni152_t1", image, (0.0, 255.0), structures))
    return volumes


def slice_key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def encode_volume(predictor: Predictor, volume: Volume, cache: Path) -> Path:
    """Embeddings [z, C, h, w] float32 of every axial slice, in cache/NAME.npy (computed once)."""
    target = cache / f"{volume.name}.npy"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    array = volume.image.array
    out = None
    started = time.perf_counter()
    for z in range(array.shape[0]):
        embedding, _ = predictor.encode_images([array[z]], volume.value_range)
        if out is None:
            out = np.lib.format.open_memmap(cache / f"{volume.name}.partial.npy", "w+", np.float32,
                                            (array.shape[0], *embedding.shape[1:]))
        out[z] = embedding[0].float().numpy()
        if z % 10 == 0:
            print(f"{volume.name}: slice {z}/{array.shape[0]} {time.perf_counter() - started:.0f} s", flush=True)
    out.flush()
    del out
    (cache / f"{volume.name}.partial.npy").rename(target)
    return target


class CachedPredictor(Predictor):
    """A `Predictor` whose encoder forwards come from the cache (slices matched by bytes);
    counts the forwards it saved so the benchmark can report encoder calls per run."""

    def attach(self, volume: Volume, cache: Path) -> None:
        self._embeddings = np.load(cache / f"{volume.name}.npy", mmap_mode="r")
        self._range = volume.value_range  # the range the cache was encoded with (also for crops)
        # identical slices (empty ones above the head) share one key: point it at an encoded one
        self._index = {}
        for z in range(volume.image.array.shape[0]):
            key = slice_key(volume.image.array[z])
            if key not in self._index or not np.any(self._embeddings[self._index[key]]):
                self._index[key] = z
        self.encoded = 0

    def value_range(self, array):
        return self._range

    @torch.inference_mode()
    def encode_images(self, images, value_range=None):
        tensors, frames = [], []
        for image in images:
            z = self._index[slice_key(image)]
            embedding = np.array(self._embeddings[z])
            if not embedding.any():
                raise RuntimeError(f"slice {z} was not encoded into the cache")
            tensors.append(torch.from_numpy(embedding))
            frames.append(prepare_image(np.zeros(np.asarray(image).shape[:2], np.float32), self.model.image_size,
                                        self.model.normalization, value_range=(0.0, 1.0))[1])
            self.encoded += 1
        return torch.stack(tensors).to(self.device), frames


if __name__ == "__main__":  # encode every volume once: python benchmarks/propagation_volumes.py CACHE_DIR
    import sys

    torch.set_num_threads(2)
    predictor = Predictor.from_model("lite_medsam")
    for volume in load_volumes():
        print(encode_volume(predictor, volume, Path(sys.argv[1])), flush=True)

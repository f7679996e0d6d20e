"""`samtune view` responsiveness, measured through the page's API (Starlette TestClient, in process).

On the MNI152 T1 template (189 x 233 x 197) with LiteMedSAM zero-shot:
- slice requests: image (float32) + ground truth + prediction of one axial slice, for the
  first request of a slice (after the volume is open) and repeated;
- prompt clicks on one axial slice: the first (encodes the slice) and the following ones
  (cached embedding: prompt encoder + mask decoder + resize to the slice), with the server's
  own encode/decode split from the response headers.

    python benchmarks/view_latency.py [--threads 2] [--clicks 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clicks", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from starlette.testclient import TestClient

    from samtune.assets import mni_template
    from samtune.data.readers import read_image, write_image
    from samtune.view import build_app, open_view

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        (root / "labels").mkdir()
        image = read_image(mni_template("t1"))
        write_image(root / "images" / "mni.nii.gz", image.array, image.geometry)
        wm = read_image(mni_template("wm"))
        write_image(root / "labels" / "mni.nii.gz", (wm.array >= 0.5).astype(np.uint8), wm.geometry)
        state = open_view(root / "images", gt=root / "labels", corrections=root / "fixes", model="lite_medsam")
        client = TestClient(build_app(state), base_url="http://127.0.0.1")
        started = time.perf_counter()
        client.get("/api/cases/mni")
        print(f"open the volume (read image + labels): {time.perf_counter() - started:.2f} s")
        first, again = [], []
        for index in range(80, 110):
            for store in (first, again):
                started = time.perf_counter()
                for layer in ("image", "gt"):
                    assert client.get(f"/api/cases/mni/slice/{layer}/0/{index}").status_code == 200
                store.append(time.perf_counter() - started)
        print(f"axial slice (image + gt), 30 slices: first {statistics.median(first) * 1e3:.1f} ms median, "
              f"repeated {statistics.median(again) * 1e3:.1f} ms median")
        started = time.perf_counter()
        state.prompts.predictor()
        print(f"load LiteMedSAM: {time.perf_counter() - started:.2f} s")
        walls, encode, decode = [], [], []
        for click in range(args.clicks + 1):
            body = {"axis": 0, "index": 94, "box": [60, 80, 140, 160]}
            if click:
                body["points"], body["labels"] = [[100.0, 120.0 + click]], [1]
            started = time.perf_counter()
            response = client.post("/api/cases/mni/prompt", json=body)
            walls.append(time.perf_counter() - started)
            encode.append(float(response.headers["x-encode-seconds"]))
            decode.append(float(response.headers["x-decode-seconds"]))
        print(f"first click on a slice: {walls[0]:.2f} s (encode {encode[0]:.2f} s, decode {decode[0]:.3f} s)")
        print(f"next {args.clicks} clicks (cached embedding): median {statistics.median(walls[1:]):.3f} s, "
              f"max {max(walls[1:]):.3f} s (decode median {statistics.median(decode[1:]):.3f} s)")
        print(f"ratio first / cached: {walls[0] / statistics.median(walls[1:]):.1f}x; torch threads {args.threads}")


if __name__ == "__main__":
    main()

"""The human-in-the-loop cycle: correct cases through the page's API, train on the corrections
with `samtune train --set data.train=corrections.csv` (tiny model, 2 steps), predict with the run."""

from __future__ import annotations

import numpy as np

from samtune.cli.main import main
from samtune.data.readers import read_image
from samtune.data.sources import load_source


def test_correct_train_predict(make_client, tmp_path):
    from tests.helpers.generated_data import write_disc_dataset

    data = write_disc_dataset(tmp_path / "data", 3, seed=4, size=32)
    fixes = tmp_path / "fixes"
    client, _ = make_client(path=data / "images", gt=data / "masks", corrections=fixes, prompt=False)
    corrected = {}
    for case in ("case00", "case01", "case02"):
        work = read_image(data / "masks" / f"{case}.png", role="mask").array.astype(bool).astype(np.uint8)
        work[:, :4] = 1  # the "correction": a band the original labels lack
        assert client.put(f"/api/cases/{case}/work/0/0", content=work.tobytes()).status_code == 200
        assert client.post(f"/api/cases/{case}/accept").status_code == 200
        corrected[case] = work
    listed = fixes / "corrections.csv"
    source = load_source(listed)
    assert [c.case_id for c in source.cases] == ["case00", "case01", "case02"]
    for case in source.cases:
        assert case.images[0] == data / "images" / f"{case.case_id}.png"
        # written with the ground truth's stored value (255), as the original masks are
        np.testing.assert_array_equal(read_image(case.mask, role="mask").array, corrected[case.case_id] * 255)
    assert read_image(data / "masks" / "case00.png", role="mask").array[:, :4].min() == 0  # originals untouched

    run = tmp_path / "run"
    settings = {"model.name": "tiny_vit_test", "strategy.component": "decoder", "strategy.method": "full",
                "task.mode": "automatic", "data.train": listed, "data.val": listed, "optim.steps": 2,
                "eval.every": 2, "run.log_every": 1, "run.checkpoint_every": 2}
    argv = ["train", "default", "--out", run]
    for key, value in settings.items():
        argv += ["--set", f"{key}={value}"]
    assert main([str(a) for a in argv]) == 0
    assert (run / "weights").is_dir()
    assert main(["predict", str(data / "images" / "case01.png"), "--run", str(run), "--out", str(tmp_path / "pred")]) == 0
    predicted = read_image(tmp_path / "pred" / "case01.png", role="mask").array
    assert predicted.shape == (32, 32) and set(np.unique(predicted)) <= {0, 1}

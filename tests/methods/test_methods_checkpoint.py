"""Tuning weights on disk: small files, exact reload from the recorded base, and
`samtune export --merge` to the official layout, loaded by the reference code."""

from __future__ import annotations

import json

import pytest
import torch

import samtune
from tests.helpers.tiny_sam import IMAGE_SIZES, build, inputs, predict
from tests.helpers.reference_models import ReferenceLiteMedSAM
from samtune.assets import LITE_MEDSAM_SHA256
from samtune.cli.main import main
from samtune.errors import CheckpointError, UserError
from samtune.methods import (
    RECORD_FILE,
    WEIGHTS_FILE,
    Strategy,
    apply_strategy,
    load_tuned_model,
    merge,
    read_record,
    save_tuning,
    trainable_parameters,
)


def perturb(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for param in trainable_parameters(model).values():
            param.add_(torch.randn_like(param) * 0.05)


def tuned_from_file(tmp_path, method: str) -> tuple[torch.nn.Module, object]:
    """A tiny model loaded from a base checkpoint file, tuned and saved to tmp_path/run/tuning."""
    base_file = tmp_path / "base.pth"
    torch.save(build("sam_vit").state_dict(), base_file)
    overrides = {"image_size": IMAGE_SIZES["sam_vit"]}
    model = samtune.create_model("sam_vit_test", checkpoint=base_file, **overrides)
    apply_strategy(model, Strategy("sam_vit_test", "encoder+decoder", method))
    perturb(model)
    return model, save_tuning(model, tmp_path / "run" / "tuning", overrides=overrides)


@pytest.mark.slow  # two LiteMedSAM encoder passes at 256 px (~1.3 s each on an idle 2-core CPU)
def test_lite_medsam_lora_is_small_and_exports_for_the_reference_code(tmp_path) -> None:
    model = apply_strategy(samtune.create_model("lite_medsam"), Strategy("lite_medsam", "encoder+decoder", "lora"))
    perturb(model)
    directory = save_tuning(model, tmp_path / "run" / "tuning")
    assert (directory / WEIGHTS_FILE).stat().st_size < 1_000_000  # 53,248 float32 + header
    record = read_record(directory)
    assert (record.base.model, record.base.sha256) == ("lite_medsam", LITE_MEDSAM_SHA256)
    assert record.strategy == Strategy("lite_medsam", "encoder+decoder", "lora")

    restored = load_tuned_model(directory)
    assert all(torch.equal(v, restored.state_dict()[k]) for k, v in model.state_dict().items())

    out = tmp_path / "merged.pth"
    assert main(["export", str(tmp_path / "run"), "--merge", "--out", str(out)]) == 0
    reference = ReferenceLiteMedSAM()
    reference.load_state_dict(torch.load(out, weights_only=True), strict=True)
    reference.eval()
    model.eval()
    images = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([[60.0, 70.0, 190.0, 200.0]])
    with torch.no_grad():
        ours = model.image_encoder(images)
        theirs = reference.image_encoder(images)
        torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-4)
        masks, _ = model.decode(ours, boxes=boxes)
        ref_masks, _ = reference.decode_boxes(theirs, boxes)
    torch.testing.assert_close(ref_masks, masks, atol=1e-3, rtol=1e-3)


def test_load_tuned_model_checks_the_base_checkpoint(tmp_path) -> None:
    model, directory = tuned_from_file(tmp_path, "dora")
    images, boxes = inputs(model)
    with torch.no_grad():
        expected, _ = predict(model.eval(), images, boxes)
        restored = load_tuned_model(directory).eval()
        assert torch.equal(predict(restored, images, boxes)[0], expected)

    other = tmp_path / "other.pth"
    torch.save(build("sam_vit", seed=1).state_dict(), other)
    with pytest.raises(CheckpointError, match="sha256"):
        load_tuned_model(directory, checkpoint=other)
    record = json.loads((directory / RECORD_FILE).read_text())
    record["base"]["checkpoint"] = None
    record["base"]["sha256"] = None
    (directory / RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="cannot be rebuilt"):
        load_tuned_model(directory)


def test_save_refuses_merged_and_untuned_models(tmp_path) -> None:
    with pytest.raises(UserError, match="no strategy applied"):
        save_tuning(build("sam_vit"), tmp_path)
    model = apply_strategy(build("sam_vit"), Strategy("sam_vit_test", "decoder", "lora"))
    with pytest.raises(UserError, match="unmerge"):
        save_tuning(merge(model), tmp_path)


def test_export_cli_errors_are_one_line(tmp_path, capsys) -> None:
    _, directory = tuned_from_file(tmp_path, "adapter")
    out = tmp_path / "x.pth"
    assert main(["export", str(directory), "--out", str(out)]) == 2
    assert "pass --merge" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "run"), "--merge", "--out", str(out)]) == 2
    assert "cannot be folded" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "base.pth"), "--merge", "--out", str(out)]) == 2
    assert not out.exists()

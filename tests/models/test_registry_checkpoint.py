"""Registry behaviour and checkpoint loading: formats, wrappers, mismatches, packaged weights."""

import pytest
import torch
from safetensors.torch import save_file

from samtune.assets import LITE_MEDSAM_SHA256, lite_medsam_checkpoint, sha256_of
from samtune.errors import CheckpointError, UserError
from samtune.models.checkpoint import read_state_dict
from samtune.models.registry import ModelSpec, create_model, get_spec, list_models, register_model


def test_listing_and_wildcards():
    names = list_models()
    for name in ("sam_vit_b", "sam_vit_l", "sam_vit_h", "mobile_sam", "medsam_vit_b", "lite_medsam"):
        assert name in names
    assert list_models("sam_vit_*", include_test=False) == ["sam_vit_b", "sam_vit_h", "sam_vit_l"]
    assert "tiny_vit_test" not in list_models(include_test=False)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UserError, match=r"unknown model 'sam_vit_bb'; did you mean sam_vit_b"):
        get_spec("sam_vit_bb")


def test_duplicate_registration_is_an_error():
    spec = get_spec("tiny_vit_test")
    with pytest.raises(ValueError, match="already registered"):
        register_model(ModelSpec(**{**spec.__dict__}))


def test_packaged_lite_medsam_weights_are_verified_and_loaded():
    path = lite_medsam_checkpoint()
    assert sha256_of(path) == LITE_MEDSAM_SHA256
    model = create_model("lite_medsam")
    reference = torch.load(path, map_location="cpu", weights_only=True)
    state = model.state_dict()
    assert set(state) == set(reference) and len(reference) == 435
    for key in ("mask_decoder.iou_token.weight", "image_encoder.layers.2.blocks.0.attn.qkv.weight"):
        assert torch.equal(state[key], reference[key])


def _tiny_state(tmp_path):
    model = create_model("tiny_vit_test")
    return model, {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("wrap", ["plain", "medsam", "ddp", "safetensors"])
def test_checkpoint_formats_round_trip(tmp_path, wrap):
    model, state = _tiny_state(tmp_path)
    path = tmp_path / ("w.safetensors" if wrap == "safetensors" else "w.pth")
    if wrap == "plain":
        torch.save(state, path)
    elif wrap == "medsam":
        torch.save({"model": state, "epoch": 3, "optimizer": {"lr": 1e-4}}, path)
    elif wrap == "ddp":
        torch.save({"module." + k: v for k, v in state.items()}, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    loaded = create_model("tiny_vit_test", checkpoint=path)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_mismatched_architecture_lists_keys_and_names_the_file(tmp_path):
    path = tmp_path / "vit.pth"
    torch.save(create_model("sam_vit_test").state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        create_model("tiny_vit_test", checkpoint=path)
    message = str(info.value)
    assert str(path) in message and "missing keys" in message and "unexpected keys" in message
    assert "looks like a SAM ViT with width 32 weights" in message


def test_misshaped_keys_are_listed(tmp_path):
    model, state = _tiny_state(tmp_path)
    state["mask_decoder.iou_token.weight"] = torch.zeros(1, 7)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"1 mis-shaped keys: mask_decoder.iou_token.weight \(1, 7\) vs model \(1, 32\)"):
        create_model("tiny_vit_test", checkpoint=path)


def test_missing_corrupt_and_unsafe_files(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        read_state_dict(tmp_path / "nope.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt or not a PyTorch checkpoint"):
        read_state_dict(corrupt)
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"weights": torch.zeros(2), "object": ModelSpec}, unsafe)  # pickles a class
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_state_dict(unsafe)
    empty = tmp_path / "empty.pth"
    torch.save({"epoch": 3}, empty)
    with pytest.raises(CheckpointError, match="does not contain a state dict of tensors"):
        read_state_dict(empty)


def test_more_mask_outputs_start_from_pretrained_tokens(tmp_path):
    model, state = _tiny_state(tmp_path)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    wide = create_model("tiny_vit_test", checkpoint=path, num_multimask_outputs=5)  # 6 tokens from 4
    tokens = wide.state_dict()["mask_decoder.mask_tokens.weight"]
    assert tokens.shape[0] == 6
    assert torch.equal(tokens[4], state["mask_decoder.mask_tokens.weight"][0])
    assert torch.equal(
        wide.state_dict()["mask_decoder.output_hypernetworks_mlps.5.layers.0.weight"],
        state["mask_decoder.output_hypernetworks_mlps.1.layers.0.weight"],
    )


def test_user_weights_models_require_a_file():
    with pytest.raises(UserError, match="needs a weights file: pass --checkpoint PATH .*sam_vit_b_01ec64.pth"):
        create_model("sam_vit_b", pretrained=True)


def test_vit_h_weights_given_to_vit_b_are_named(tmp_path):
    path = tmp_path / "sam_vit_h.pth"
    meta = create_model("sam_vit_h", device="meta").state_dict()
    torch.save({k: torch.zeros(v.shape) for k, v in meta.items() if k.startswith("image_encoder.pos")}, path)
    with pytest.raises(CheckpointError, match="looks like sam_vit_h weights"):
        create_model("sam_vit_test", checkpoint=path)

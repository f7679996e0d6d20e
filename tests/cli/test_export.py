"""`samtune export --merge` of an automatic run: the card beside the weights (issue 12, item 3).

An automatic run with one class has num_multimask_outputs = 2 (mask tokens and output
heads for background + class), which the official builders (hard-coded 3) cannot load.
The card says so; the official `segment_anything` modules built with the card's value
load the export strictly and decode the same logits as samtune's model.
"""

from __future__ import annotations

import json
import os
import stat
from functools import partial

import pytest
import torch
from tests.helpers.generated_data import write_disc_dataset
from tests.helpers.reference_models import segment_anything
from torch import nn

from samtune.cli.main import main


def _official_tiny_sam(sa, outputs: int) -> nn.Module:
    """segment_anything's Sam with the `sam_vit_test` sizes (see samtune.models.zoo)."""
    m = sa.modeling
    encoder = m.ImageEncoderViT(
        img_size=128, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4, out_chans=32,
        qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True,
        window_size=4, global_attn_indexes=[1],
    )
    prompt_encoder = m.PromptEncoder(embed_dim=32, image_embedding_size=(8, 8), input_image_size=(128, 128),
                                     mask_in_chans=4)
    decoder = m.MaskDecoder(
        num_multimask_outputs=outputs,
        transformer=m.TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=2),
        transformer_dim=32, iou_head_depth=3, iou_head_hidden_dim=32,
    )
    return m.Sam(encoder, prompt_encoder, decoder, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]).eval()


@pytest.fixture(scope="module")
def automatic_vit_run(tmp_path_factory):
    from samtune.engine.api import train
    from samtune.engine.config import TrainConfig

    import samtune

    root = tmp_path_factory.mktemp("auto_vit")
    torch.manual_seed(0)
    base = root / "base.pth"  # the official layout with 3 outputs, as a user's SAM file
    torch.save(samtune.create_model("sam_vit_test", pretrained=False).state_dict(), base)
    config = TrainConfig()
    config.model.name, config.model.checkpoint = "sam_vit_test", str(base)
    config.strategy.component, config.strategy.method = "decoder", "lora"
    config.task.mode = "automatic"
    config.data.train = str(write_disc_dataset(root / "train", 2, seed=1))
    config.data.val = str(write_disc_dataset(root / "val", 1, seed=2))
    config.optim.steps, config.optim.lr = 2, 3e-3
    config.eval.every, config.run.log_every, config.run.checkpoint_every = 2, 1, 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(config, root / "run")
    finally:
        torch.set_num_threads(threads)
    return root / "run"


def test_automatic_export_card_lets_the_official_code_load_it(automatic_vit_run, tmp_path, capsys):
    out = tmp_path / "merged.pth"
    previous = os.umask(0o022)
    try:
        assert main(["export", str(automatic_vit_run), "--merge", "--out", str(out)]) == 0
    finally:
        os.umask(previous)
    printed = capsys.readouterr().out
    card_file = tmp_path / "merged.json"
    assert f"wrote {card_file}: num_multimask_outputs 2" in printed
    assert "MaskDecoder with num_multimask_outputs=2" in printed
    for path in (out, card_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644

    card = json.loads(card_file.read_text())
    assert card["num_multimask_outputs"] == 2 and card["mode"] == "automatic"
    assert card["classes"] == {"1": "foreground"} and card["image_size"] == 128
    assert card["normalisation"]["kind"] == "minmax" and card["weights"] == "merged.pth"

    sa = segment_anything()
    state = torch.load(out, weights_only=True)
    with pytest.raises(RuntimeError, match="mask_tokens"):
        _official_tiny_sam(sa, 3).load_state_dict(state, strict=True)  # what the card prevents
    official = _official_tiny_sam(sa, card["num_multimask_outputs"])
    official.load_state_dict(state, strict=True)

    from samtune.inference.predictor import Predictor

    ours = Predictor.from_run(automatic_vit_run).model
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        embedding = official.image_encoder(image)
        torch.testing.assert_close(ours.encode(image), embedding, atol=1e-4, rtol=1e-4)
        sparse, dense = official.prompt_encoder(points=None, boxes=None, masks=None)
        theirs, _ = official.mask_decoder(
            image_embeddings=embedding, image_pe=official.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True,
        )
        mine, _ = ours.decode(embedding, multimask_output=True)
    assert theirs.shape[1] == 2  # background + the class, as the card's "outputs" says
    torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4)

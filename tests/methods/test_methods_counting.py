"""Trainable/total parameter counts of the study's strategies against hand-computed values.

Base sizes are the published ones (segment-anything ViT-B: encoder 89,670,912, prompt
encoder 6,220, mask decoder 4,058,340; LiteMedSAM TinyViT-5M encoder 5,726,740).
Injected sizes follow from the method definitions:

- LoRA rank r on a Linear's rows c: r * (in + |c|); q and v branches per attention.
  Decoder attentions (embedding 256; cross attentions downsample to 128): per block
  self 2r(256+256) + two cross 2r(256+128) each, two blocks, plus the final cross.
- DoRA adds one magnitude per updated row: |c| per branch.
- Adapter dim -> dim/4 -> dim with biases: 2 * dim * dim/4 + dim/4 + dim, two per block.
"""

from __future__ import annotations

import pytest

from samtune.cli.main import main
from samtune.methods import Strategy, study_strategies
from samtune.methods.counting import strategy_counts

R = 4
DECODER = 4_058_340
PROMPT = 6_220
ENCODER = {"sam_vit_b": 89_670_912, "lite_medsam": 5_726_740}
# (dim, number of blocks) of the image encoder's transformer blocks
BLOCKS = {"sam_vit_b": [(768, 12)], "lite_medsam": [(128, 2), (160, 6), (320, 2)]}


def lora(dims_in_out: list[tuple[int, int]]) -> int:
    return sum(R * (i + o) for i, o in dims_in_out)


DEC_LORA = 2 * (2 * lora([(256, 256)]) + 2 * 2 * lora([(256, 128)])) + 2 * lora([(256, 128)])
DEC_DORA = DEC_LORA + 2 * (2 * 256 + 4 * 128) + 2 * 128
DEC_ADAPTER = 2 * 2 * (2 * 256 * 64 + 64 + 256)


def enc_lora(backbone: str) -> int:
    # q and v each: r * (dim + dim) (TinyViT-5M: key_dim = d = dim / heads, so |q| = |v| = dim)
    return sum(n * 2 * R * (d + d) for d, n in BLOCKS[backbone])


def enc_dora(backbone: str) -> int:
    return enc_lora(backbone) + sum(n * 2 * d for d, n in BLOCKS[backbone])


def enc_adapter(backbone: str) -> int:
    return sum(n * 2 * (2 * d * (d // 4) + d // 4 + d) for d, n in BLOCKS[backbone])


def expected(backbone: str, component: str, method: str) -> tuple[int, int]:
    base = ENCODER[backbone] + PROMPT + DECODER
    if method == "full":
        trainable = DECODER + (ENCODER[backbone] if component == "encoder+decoder" else 0)
        return trainable, base
    dec = {"lora": DEC_LORA, "dora": DEC_DORA, "adapter": DEC_ADAPTER}[method]
    enc = {"lora": enc_lora, "dora": enc_dora, "adapter": enc_adapter}[method](backbone)
    injected = dec + (enc if component == "encoder+decoder" else 0)
    return injected, base + injected


def test_hand_computed_values() -> None:
    # Spelled-out numbers for the two headline LoRA strategies.
    assert DEC_LORA == 23_552
    assert enc_lora("sam_vit_b") == 147_456
    assert enc_lora("lite_medsam") == 29_696
    assert enc_adapter("sam_vit_b") == 7_100_928


@pytest.mark.parametrize("backbone", ["sam_vit_b", "lite_medsam"])
def test_strategy_counts_match_formulas(backbone: str) -> None:
    strategies = study_strategies((backbone,))
    assert [s.method for s in strategies[:4]] == ["full", "adapter", "lora", "dora"]
    for count in strategy_counts(strategies):
        s = count.strategy
        assert (count.trainable, count.total) == expected(backbone, s.component, s.method), s.name


def test_new_heads_add_output_heads_to_lora() -> None:
    (plain,) = strategy_counts([Strategy("lite_medsam", "decoder", "lora")])
    (heads,) = strategy_counts([Strategy("lite_medsam", "decoder", "lora")], num_classes_changed=True)
    # mask tokens 4 x 256; 4 hypernetwork MLPs 256-256-256-32; IoU head 256-256-256-4.
    hyper = 4 * (256 * 256 + 256 + 256 * 256 + 256 + 256 * 32 + 32)
    iou_head = 256 * 256 + 256 + 256 * 256 + 256 + 256 * 4 + 4
    assert heads.trainable - plain.trainable == 4 * 256 + hyper + iou_head


def test_study_grid_is_18_strategies_plus_dora() -> None:
    study = study_strategies(extra=False)
    assert len(study) == 18 and len({s.name for s in study}) == 18
    assert {s.backbone for s in study} == {"sam_vit_h", "sam_vit_b", "lite_medsam"}
    assert len(study_strategies()) == 24


def test_cli_prints_every_strategy_with_counts(capsys) -> None:
    assert main(["strategies", "--model", "lite_medsam"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("lite_medsam")]
    assert len(rows) == 8
    lora_row = next(r for r in rows if "encoder+decoder" in r and " lora " in r)
    assert f"{DEC_LORA + enc_lora('lite_medsam'):,}" in lora_row


def test_cli_default_lists_the_study_backbones_including_vit_h(capsys) -> None:
    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("sam_vit_h")]
    vit_h_full = next(line for line in rows if "encoder+decoder" in line and " full " in line)
    assert "641,090,608" in vit_h_full  # SAM ViT-H total, built on the meta device

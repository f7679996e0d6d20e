"""A fine-tuning strategy is a configuration: backbone x component x method (+ options).

`apply_strategy(model, strategy, num_classes_changed)` does exactly what the strategy
says, in this order:

1. Every parameter is frozen.
2. The method injects its modules into, and/or unfreezes, the tuned components:
   ``component="decoder"``: the mask decoder only; image encoder and prompt encoder
   stay frozen. ``component="encoder+decoder"``: image encoder and mask decoder. The
   prompt encoder is frozen in both, as in the study (its point/box embeddings are
   tiny and pretrained on far more prompts than any fine-tuning set holds).
3. When the decoder's outputs change meaning (``num_classes_changed=True``; training
   passes it for every automatic task, where each output is one class instead of one of
   SAM's granularities, even when the count equals SAM's 3 multimask outputs, e.g. 2
   foreground classes + background), the decoder's output heads always train, whatever
   the method: ``mask_tokens``, ``output_hypernetworks_mlps`` and
   ``iou_prediction_head`` (see `NEW_HEAD_MODULES`). Heads for a new number of outputs
   are (re)initialised from the pretrained ones, and a head left frozen (a bug of the
   study's adapter mode) could never learn its new meaning. ``iou_token`` keeps its
   pretrained meaning (one token read by the IoU head) and follows the method like any
   other parameter.
4. Parts kept in eval mode whatever ``model.train()`` says (see `tuning.keep_in_eval`):
   components that do not train at all, and every BatchNorm layer (TinyViT's conv
   stages and depthwise convs). BatchNorm running statistics stay the pretrained ones
   even under `full`, whose affine parameters still train: batches of one or a few
   medical slices give statistics unlike the pretraining ones, gradient checkpointing
   would update them twice per step, and frozen statistics keep the saved weights
   (trainable parameters only) sufficient to rebuild the model.

Parameters the model itself marks frozen before `apply_strategy` (MobileSAM's unused
classification head) stay frozen under `full`: they take no part in the forward pass.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from samtune.errors import ConfigError, UserError
from samtune.methods.options import MethodOptions, changed_options
from samtune.methods.registry import get_method, list_methods
from samtune.methods.tuning import INITIALLY_FROZEN_ATTR, keep_in_eval, unfreeze

Component = Literal["decoder", "encoder+decoder"]
COMPONENTS: dict[Component, tuple[str, ...]] = {
    "decoder": ("mask_decoder",),
    "encoder+decoder": ("image_encoder", "mask_decoder"),
}
ALL_COMPONENTS = ("image_encoder", "prompt_encoder", "mask_decoder")
NEW_HEAD_MODULES = ("mask_tokens", "output_hypernetworks_mlps", "iou_prediction_head")
STUDY_BACKBONES = ("sam_vit_h", "sam_vit_b", "lite_medsam")
STUDY_METHODS = ("full", "adapter", "lora")
STRATEGY_ATTR = "_samtune_strategy"
NEW_HEADS_ATTR = "_samtune_new_heads"


@dataclass(frozen=True)
class Strategy:
    """What to fine-tune and how. `backbone` is a registered model name."""

    backbone: str
    component: Component = "decoder"
    method: str = "full"
    # The method's own `Options` instance; a mapping or a `MethodOptions` is converted to it,
    # strictly (an option the method does not take is a ConfigError).
    options: Any = None

    def __post_init__(self) -> None:
        if self.component not in COMPONENTS:
            close = difflib.get_close_matches(str(self.component), list(COMPONENTS), n=1, cutoff=0.4)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown component '{self.component}'{hint} (choose {' or '.join(COMPONENTS)})"
            )
        method = get_method(self.method)
        options = self.options
        if isinstance(options, MethodOptions):
            extra = sorted(set(options.set_options()) - method.options)
            if extra:
                accepted = ", ".join(sorted(method.options)) or "none"
                raise ConfigError(
                    f"option(s) {', '.join(extra)} do not apply to method '{self.method}' "
                    f"(it accepts: {accepted})"
                )
            options = options.set_options()
        if options is None or isinstance(options, dict):
            options = method.load_options(options)
        elif not isinstance(options, method.Options):
            raise ConfigError(
                f"strategy options {type(options).__name__} are not method '{self.method}'s "
                f"({method.Options.__name__})"
            )
        object.__setattr__(self, "options", options)

    @property
    def name(self) -> str:
        """Short display name, e.g. ``lite_medsam/encoder+decoder/lora``."""
        return f"{self.backbone}/{self.component}/{self.method}"

    def resolved_options(self) -> Any:
        """The method's `Options` (defaults filled in)."""
        return self.options

    def to_dict(self) -> dict[str, Any]:
        """Plain data; options only where they differ from the method's defaults."""
        return {"backbone": self.backbone, "component": self.component, "method": self.method,
                "options": changed_options(self.options)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Strategy:
        """Strict: an unknown key is a ConfigError naming it."""
        from samtune.configs import from_dict

        return from_dict(cls, data, "strategy")


def study_strategies(
    backbones: tuple[str, ...] = STUDY_BACKBONES, extra: bool = True
) -> list[Strategy]:
    """The study's 3 x 2 x 3 grid per backbone, plus (with `extra`) the methods beyond it."""
    methods = list(STUDY_METHODS) + ([m for m in list_methods() if m not in STUDY_METHODS] if extra else [])
    return [
        Strategy(backbone, component, method)
        for backbone in backbones
        for component in COMPONENTS
        for method in methods
    ]


def _check_model(model: nn.Module, strategy: Strategy) -> None:
    spec_name = getattr(getattr(model, "spec", None), "name", None)
    if spec_name is not None and spec_name != strategy.backbone:
        raise UserError(
            f"strategy {strategy.name} is for backbone '{strategy.backbone}', "
            f"but the model is '{spec_name}'"
        )
    missing = [c for c in ALL_COMPONENTS if not isinstance(getattr(model, c, None), nn.Module)]
    if missing:
        raise UserError(f"{type(model).__name__} is not a SAM-family model: it has no {', '.join(missing)}")
    if getattr(model, STRATEGY_ATTR, None) is not None:
        raise UserError(
            f"this model already has strategy {getattr(model, STRATEGY_ATTR).name} applied; "
            "build a fresh base model to apply another"
        )


def apply_strategy(model: nn.Module, strategy: Strategy, num_classes_changed: bool = False) -> nn.Module:
    """Freeze, inject and mark trainable as `strategy` says (see the module docstring).

    Modifies `model` in place and returns it. `get_strategy(model)` reads the strategy
    back; `trainable_parameters(model)` lists what trains.
    """
    _check_model(model, strategy)
    method = get_method(strategy.method)
    options = strategy.resolved_options()
    components = COMPONENTS[strategy.component]
    initially_frozen = frozenset(n for n, p in model.named_parameters() if not p.requires_grad)
    setattr(model, INITIALLY_FROZEN_ATTR, initially_frozen)
    model.requires_grad_(False)
    method.apply(model, components, options)
    if num_classes_changed:
        for name in NEW_HEAD_MODULES:
            unfreeze(getattr(model.mask_decoder, name), model, prefix=f"mask_decoder.{name}")
    _keep_frozen_parts_in_eval(model, components, num_classes_changed)
    setattr(model, STRATEGY_ATTR, strategy)
    setattr(model, NEW_HEADS_ATTR, bool(num_classes_changed))
    return model


def _keep_frozen_parts_in_eval(model: nn.Module, components: tuple[str, ...], heads: bool) -> None:
    touched = set(components) | ({"mask_decoder"} if heads else set())
    for name in ALL_COMPONENTS:
        if name not in touched:
            keep_in_eval(getattr(model, name))
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            keep_in_eval(module)


def get_strategy(model: nn.Module) -> Strategy | None:
    """The strategy applied to `model`, or None for an untouched base model."""
    return getattr(model, STRATEGY_ATTR, None)


def has_new_heads(model: nn.Module) -> bool:
    """Whether `apply_strategy` was told the number of classes changed (heads train)."""
    return bool(getattr(model, NEW_HEADS_ATTR, False))


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Name -> parameter for everything that trains (what to give the optimiser)."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def parameter_count(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, injected modules included in total."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


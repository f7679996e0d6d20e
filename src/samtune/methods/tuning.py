"""The side container that holds injected modules, and the rules that keep frozen parts frozen.

Design choice: forward hooks plus a side container, not peft-style wrappers.

Every injected module (an adapter, a LoRA/DoRA branch) is a `Delta` stored under
``model.tuning`` at the path of the base module it modifies, e.g.
``tuning.image_encoder.blocks.3.attn.q.lora_A`` is the q-branch of LoRA on
``image_encoder.blocks.3.attn.qkv``. It acts through a forward hook (or pre-hook)
registered on that base module. Why:
  - base modules are never renamed or wrapped, so the official checkpoint keys stay
    exactly what they were: `base_state_dict(model)` is ``model.state_dict()`` without
    the ``tuning.`` keys, and official checkpoints load with no key remapping (wrappers
    would turn ``attn.qkv.weight`` into ``attn.qkv.base_layer.weight`` and need a remap
    in both directions, for every consumer of the keys);
  - the model code (its forward, gradient checkpointing, parity with the reference
    implementation) is untouched: hooks run inside the module call, so they are
    recomputed under checkpointing like the rest of the block;
  - the container is still a submodule, so ``.to()``, DDP, optimisers and
    ``state_dict()`` see the injected parameters with readable, stable names.
Merging a LoRA/DoRA delta writes into the base weight and silences its hook.
"""

from __future__ import annotations

from typing import Any, Iterator, TypeVar

from torch import Tensor, nn

TUNING_ATTR = "tuning"
TUNING_PREFIX = TUNING_ATTR + "."
ModuleT = TypeVar("ModuleT", bound=nn.Module)

# Names of the parameters the model froze itself before a strategy applied (MobileSAM's
# unused head): `unfreeze` leaves them frozen.
INITIALLY_FROZEN_ATTR = "_samtune_initially_frozen"


class Delta(nn.Module):
    """An injected module acting on the base module at path `target` through a hook.

    Subclasses that can be folded into the target's weight set `mergeable = True` and
    implement `fold` / `unfold`, which return a new weight tensor (out of place).
    """

    mergeable = False

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.merged = False

    def fold(self, weight: Tensor) -> Tensor:
        """`weight` of the target with this delta folded in."""
        raise NotImplementedError(f"{type(self).__name__} cannot be merged")

    def unfold(self, weight: Tensor) -> Tensor:
        """Inverse of `fold` (after `fold` was called on the same delta)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be merged")


def first_input(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
    """The tensor a hooked module was called with, positionally or by keyword."""
    if args:
        return args[0]
    if len(kwargs) == 1:
        return next(iter(kwargs.values()))
    raise TypeError(f"cannot tell the input tensor among keyword arguments {sorted(kwargs)}")


def attach(model: nn.Module, path: str, name: str, delta: ModuleT) -> ModuleT:
    """Store `delta` at ``tuning.<path>.<name>``, creating the container levels."""
    node: Any = getattr(model, TUNING_ATTR, None)  # nested nn.ModuleDicts
    if node is None:
        node = nn.ModuleDict()
        setattr(model, TUNING_ATTR, node)
    for part in path.split("."):
        if part not in node:
            node[part] = nn.ModuleDict()
        node = node[part]
    if name in node:
        raise ValueError(f"{TUNING_PREFIX}{path}.{name} is already attached")
    node[name] = delta
    return delta


def deltas(model: nn.Module) -> Iterator[tuple[str, Delta]]:
    """(container path, delta) for every injected module, in injection order."""
    container = getattr(model, TUNING_ATTR, None)
    if container is None:
        return
    for name, module in container.named_modules(prefix=TUNING_ATTR):
        if isinstance(module, Delta):
            yield name, module


def unfreeze(module: nn.Module, model: nn.Module, prefix: str) -> None:
    """Set requires_grad on `module`'s parameters, except those the model marked frozen.

    `prefix` is the module's path from the model root.
    """
    skip: frozenset[str] = getattr(model, INITIALLY_FROZEN_ATTR, frozenset())
    for name, param in module.named_parameters(prefix=prefix):
        if name not in skip:
            param.requires_grad_(True)


def base_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict in the official key layout (injected modules left out).

    After `merge`, base weights hold the merged values.
    """
    return {k: v for k, v in model.state_dict().items() if not k.startswith(TUNING_PREFIX)}


# --- keeping frozen parts in eval mode -------------------------------------------------

KEEP_EVAL = "_samtune_keep_eval"  # attribute: train_mode leaves a module so marked in eval mode


def _stay_in_eval(module: nn.Module, args: tuple[Any, ...]) -> None:
    if module.training:
        module.eval()


def keep_in_eval(module: nn.Module) -> None:
    """Make `module` behave as in eval mode even after ``model.train()``.

    Used for frozen BatchNorm layers (in train mode they would update running
    statistics that are neither trained nor saved, so the tuned model could not be
    reproduced from its saved weights) and for components that are not tuned at all
    (frozen encoders then behave deterministically and their outputs can be cached).
    A forward pre-hook re-applies eval before every call, so forgetting `train_mode`
    cannot break this; `train_mode` makes the `.training` flags truthful up front.
    """
    if not getattr(module, KEEP_EVAL, False):
        module.register_forward_pre_hook(_stay_in_eval)
        setattr(module, KEEP_EVAL, True)


def train_mode(model: nn.Module, mode: bool = True) -> nn.Module:
    """``model.train(mode)``, with the parts kept frozen by `apply_strategy` left in eval."""
    model.train(mode)
    if mode:
        for module in model.modules():
            if getattr(module, KEEP_EVAL, False):
                module.eval()
    return model

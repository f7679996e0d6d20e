"""How to fine-tune: freeze, inject adapters/LoRA/DoRA, mark trainable, save, merge.

Typical use by the training engine::

    model = samtune.create_model("lite_medsam")
    strategy = Strategy("lite_medsam", "encoder+decoder", "lora", MethodOptions(rank=8))
    apply_strategy(model, strategy, num_classes_changed=False)
    optimizer = torch.optim.AdamW(trainable_parameters(model).values(), lr=1e-4)
    train_mode(model)            # instead of model.train(): frozen parts stay in eval
    ...
    save_tuning(model, run_dir / "tuning")        # trainable tensors + JSON record
    model = load_tuned_model(run_dir / "tuning")  # base + strategy + tensors, exact
    state = export_merged(model)                  # official key layout, LoRA folded in

Injected modules live under ``model.tuning`` and act through hooks, so the base keys
never change (see `samtune.methods.tuning`).
"""

from samtune.methods.checkpoint import (
    RECORD_FILE,
    WEIGHTS_FILE,
    TuningRecord,
    load_tuned_model,
    load_tuning,
    read_record,
    save_tuning,
    tuned_state_dict,
)
from samtune.methods.merging import export_merged, is_merged, merge, unmerge
from samtune.methods.options import AdapterOptions, LoraOptions, NoOptions
from samtune.methods.registry import Method, get_method, list_methods, load_method_options, register_method
from samtune.methods.strategy import (
    COMPONENTS,
    NEW_HEAD_MODULES,
    MethodOptions,
    Strategy,
    apply_strategy,
    get_strategy,
    parameter_count,
    study_strategies,
    trainable_parameters,
)
from samtune.methods.tuning import base_state_dict, train_mode

__all__ = [
    "COMPONENTS",
    "NEW_HEAD_MODULES",
    "AdapterOptions",
    "LoraOptions",
    "NoOptions",
    "load_method_options",
    "RECORD_FILE",
    "WEIGHTS_FILE",
    "Method",
    "MethodOptions",
    "Strategy",
    "TuningRecord",
    "apply_strategy",
    "base_state_dict",
    "export_merged",
    "get_method",
    "get_strategy",
    "is_merged",
    "list_methods",
    "load_tuned_model",
    "load_tuning",
    "merge",
    "parameter_count",
    "read_record",
    "register_method",
    "save_tuning",
    "study_strategies",
    "train_mode",
    "trainable_parameters",
    "tuned_state_dict",
    "unmerge",
]

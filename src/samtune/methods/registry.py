"""Registry of fine-tuning methods.

A method is a small object that, given a model whose parameters are all frozen and the
names of the components to tune, injects its modules and marks what trains (see
`samtune.methods.method.Method`). The built-in methods are registered here, in listing
order; `register_method` adds others. A duplicate name is an error and an unknown name
suggests close matches, like every registry (`samtune.registry`).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping

from samtune.methods.adapter import AdapterMethod
from samtune.methods.full import Full
from samtune.methods.lora import Dora, Lora
from samtune.methods.method import Method
from samtune.registry import Registry

__all__ = ["METHODS", "Method", "get_method", "list_methods", "load_method_options", "register_method"]

METHODS: Registry[Method] = Registry("fine-tuning method")


def register_method(cls: type[Method]) -> type[Method]:
    """Register one instance of `cls` under `cls.name` (usable as a class decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no `name`")
    if cls.name in METHODS:  # before the class attributes below change
        raise ValueError(f"fine-tuning method '{cls.name}' is already registered")
    cls.options = frozenset(f.name for f in fields(cls.Options))
    cls.defaults = {f.name: getattr(cls.Options(), f.name) for f in fields(cls.Options)}
    METHODS.register(cls.name, cls())
    return cls


for _cls in (Full, AdapterMethod, Lora, Dora):
    register_method(_cls)


def get_method(name: str) -> Method:
    """The registered method called `name`; UnknownNameError (a ConfigError) suggests close names."""
    return METHODS.get(name)


def load_method_options(name: str, data: Mapping[str, Any] | None, where: str = "strategy.options") -> Any:
    """The options of method `name` loaded strictly from `data` (see `Method.load_options`)."""
    return get_method(name).load_options(data, where)


def list_methods() -> list[str]:
    """Names of the registered methods, in registration order."""
    return METHODS.names()

"""Recipes shipped with samtune (src/samtune/recipes/*.yaml) resolved by name or path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from samtune.errors import ConfigError


def recipe_dir() -> Path:
    return Path(str(resources.files("samtune") / "recipes"))


def list_recipes() -> list[str]:
    """Training recipes (study definitions under studies/ are for `samtune study`)."""
    root = recipe_dir()
    names = (str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))
    return sorted(name for name in names if not name.startswith("studies/"))


def resolve_recipe(name_or_path: str) -> Path:
    """A YAML path as given, else a shipped recipe name such as 'default'."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    name = name_or_path.removesuffix(".yaml")
    shipped = recipe_dir() / f"{name}.yaml"
    if shipped.is_file() and name in list_recipes():
        return shipped
    raise ConfigError(
        f"recipe not found: {name_or_path} (not a file, nor one of the shipped recipes: {', '.join(list_recipes())})"
    )

"""Strict loading of dataclass configurations from YAML files and `--set key=value` overrides.

An unknown key is an error naming its dotted path (and close matches); values are
checked against the field's type. Used by training and study recipes alike.

YAML is read with `ConfigLoader`, PyYAML's safe loader with two changes: numbers are
read as users write them (YAML 1.2 floats: ``3e-4``, ``1E5``, ``.5``; PyYAML's YAML 1.1
rules read ``3e-4`` as a string), and a key given twice in one mapping is an error
instead of the last one silently winning. A file that is not UTF-8 text or not valid
YAML is refused in one line naming the file, line and column.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from samtune.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")  # the config classes are dataclasses

# YAML 1.2 core-schema floats (plus YAML 1.1's "1_000.5" underscores, which PyYAML keeps).
# PyYAML's 1.1 pattern needs a dot in the mantissa, so "3e-4" stays a string there.
_FLOAT = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class ConfigLoader(yaml.SafeLoader):
    """Safe YAML loader: YAML 1.2 floats, duplicate keys refused (see the module docstring)."""


def _construct_mapping(loader: ConfigLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice (first on line {seen[key].line + 1})", mark)
            seen[key] = key_node.start_mark
        except TypeError:  # unhashable key: let PyYAML report it
            pass
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


# Replace the float resolver: drop PyYAML's 1.1 pattern, add the 1.2 one for the same first characters.
ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
ConfigLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class ConfigDumper(yaml.SafeDumper):
    """Safe dumper that quotes strings `ConfigLoader` would read as floats ('1e5' stays a string)."""


ConfigDumper.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
}
ConfigDumper.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def parse_yaml(text: str, where: str) -> Any:
    """YAML text -> Python values with `ConfigLoader`; errors are one line naming ``where``."""
    try:
        return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - ConfigLoader is a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "invalid YAML"
        at = f"{where}, line {mark.line + 1}, column {mark.column + 1}" if mark else where
        raise ConfigError(f"{at}: {problem}; fix the YAML there") from None
    except yaml.YAMLError as error:  # reader errors (control characters) carry a position
        position = getattr(error, "position", None)
        line = text.count("\n", 0, position) + 1 if position is not None else None
        column = position - (text.rfind("\n", 0, position) + 1) + 1 if position is not None else None
        at = f"{where}, line {line}, column {column}" if line else where
        reason = getattr(error, "reason", None) or "invalid YAML"
        raise ConfigError(f"{at}: {reason} (not a text YAML file?); fix or replace the file") from None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check/convert `value` to the annotated type `tp`; raise ConfigError naming `path`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, path)
            except ConfigError as error:
                errors.append(str(error))
        names = " or ".join(_type_name(o) for o in options if o is not type(None))
        raise ConfigError(f"{path}: {value!r} is not a valid {names}")
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # an annotation: a class, never an instance
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping of {_type_name(tp)} fields, got {value!r}")
        return from_dict(tp, value, path)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        item_type = args[0] if args else Any
        items = [_coerce(v, item_type, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        key_type, value_type = typing.get_args(tp) or (Any, Any)
        return {
            _coerce(k, key_type, f"{path}.{k}"): _coerce(v, value_type, f"{path}.{k}") for k, v in value.items()
        }
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # 'steps: 1e3' is 1000
            return int(value)
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT.match(value.strip()):  # e.g. '3e-4' quoted
            return float(value.strip().replace("_", ""))
        raise ConfigError(f"{path}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], path: str = "") -> T:
    """Build dataclass `cls` from a nested dict; unknown keys are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; valid keys: {', '.join(fields)}"
            raise ConfigError(f"unknown configuration key '{where}'{hint}")
        kwargs[key] = _coerce(value, hints[key], where)
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ConfigError(f"{path or 'configuration'}: {error}") from None


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def parse_override(text: str) -> tuple[list[str], Any]:
    """'optim.lr=3e-4' -> (['optim', 'lr'], 0.0003); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.path=value")
    key, raw = text.split("=", 1)
    try:
        value = parse_yaml(raw, f"override '{text}'") if raw.strip() else ""
    except ConfigError:
        value = raw  # not YAML: the text as given (checked against the field's type later)
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `--set` overrides to a nested dict (validated later by `from_dict`)."""
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override '{text}': '{key}' is not a section")
            node = child
        node[keys[-1]] = value
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping ({} for an empty file); ConfigError in one line otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file not found: {path}")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise ConfigError(
            f"{path}, line {line}, column {column}: byte 0x{raw[error.start]:02x} is not UTF-8 text; "
            "save the file as UTF-8 (is it a YAML file?)"
        ) from None
    data = parse_yaml(text, str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Load `cls` from an optional YAML file plus `--set` overrides, strictly."""
    data = load_yaml(path) if path is not None else {}
    return from_dict(cls, apply_overrides(data, list(overrides or [])))


def save_config(config: Any, path: str | Path) -> None:
    from samtune.atomic import atomic_path

    with atomic_path(Path(path)) as tmp:
        tmp.write_text(yaml.dump(to_dict(config), Dumper=ConfigDumper, sort_keys=False))

"""Configs as data: the one serialisation of the frozen config dataclasses (plain dicts, YAML files and
back) and the one override grammar, `section.field=value`, of study scripts and the CLI.

Defaults live in the dataclasses only. An override names a field by its dotted path (`train.epochs`,
`model.model_dim`, `eps_s`; a field of an optional section that is off, `score.nplm.toys`, turns it
on with its defaults, and `score.nplm=null` turns it off); its value is read as YAML (a string field
takes the text as it is), checked against the field's type, and the config is built once at the end,
so its own validation (`__post_init__`) judges the result. Like nanoGPT's configurator and minGPT's
`merge_from_args`, but typed: an unknown key is refused with the valid ones, a wrong type with the type
expected.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError  # noqa: F401 - also configs.ConfigError: a file or override that does not fit

C = TypeVar("C")


def to_plain(obj: Any) -> Any:
    """A config (nested dataclasses, tuples, paths) as plain dicts, lists, strings and numbers: what
    YAML, JSON, checkpoints and MLflow params hold. `from_plain` reads it back."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy / torch scalars
        return obj.item()
    return obj


def from_plain(cls: type[C], data: Any, where: str | None = None) -> C:
    """The config `cls` from plain data as `to_plain` writes it: nested configs built, lists made
    tuples, every key and type checked; missing fields take their defaults."""
    where = where or cls.__name__
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {data!r}")
    fields = field_types(cls)
    if unknown := sorted(set(data) - set(fields)):
        raise ConfigError(f"{where}: unknown field {', '.join(map(repr, unknown))}; {cls.__name__} has "
                          f"{', '.join(fields)}")
    return cls(**{k: _coerce(fields[k], v, f"{where}.{k}") for k, v in data.items()})


def build(cls: type[C], overrides: Iterable[str] | Mapping[str, Any] = (), base: Mapping | None = None) -> C:
    """`cls` from `base` (plain data, missing fields at their defaults) with `overrides` applied:
    "key=value" strings (values as YAML) or a {key: value} mapping (Python values)."""
    plain = to_plain(dict(base or {}))
    items = overrides.items() if isinstance(overrides, Mapping) else map(_split, overrides)
    for key, value in items:
        _assign(cls, plain, key.split("."), value, key, text=not isinstance(overrides, Mapping))
    return from_plain(cls, plain)


def override(cfg: C, overrides: Iterable[str] | Mapping[str, Any]) -> C:
    """`cfg` with `overrides` applied (see `build`): a new config, validated once."""
    return build(type(cfg), overrides, to_plain(cfg))


def dump(cfg: Any, path: str | Path) -> Path:
    """Write `cfg` as YAML (every field, defaults included); `load` reads it back."""
    path = Path(path)
    path.write_text(yaml.safe_dump(to_plain(cfg), sort_keys=False))
    return path


def dumps(cfg: Any) -> str:
    return yaml.safe_dump(to_plain(cfg), sort_keys=False)


def load(cls: type[C], path: str | Path) -> C:
    """The config `cls` written by `dump` (or by hand: missing fields take their defaults)."""
    data = read_yaml(path)
    try:
        return from_plain(cls, data or {})
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{path}: {err}") from None


def read_yaml(path: str | Path) -> Any:
    """A YAML file's data; an unreadable file or bad syntax is a one-line `ConfigError` naming it."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file: {err.strerror}") from None
    except yaml.YAMLError as err:  # its own message spans lines: the problem and where, in one
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not a YAML file: {getattr(err, 'problem', None) or type(err).__name__}") from None


def field_types(cls: type) -> dict[str, Any]:
    """{field name: resolved type} of a config dataclass (its init fields)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _split(assignment: str) -> tuple[str, str]:
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {assignment!r}: expected KEY=VALUE, e.g. train.epochs=3")
    return key.strip(), value


def _assign(cls: type, plain: dict, path: list[str], value: Any, key: str, text: bool) -> None:
    """Set `path` in the plain data of `cls` to `value` (parsed from YAML when `text`)."""
    fields = field_types(cls)
    name = path[0]
    if name not in fields:
        level = key[: len(key) - len(".".join(path))].rstrip(".")
        raise ConfigError(f"unknown key {key!r}: {cls.__name__}{f' ({level})' if level else ''} has "
                          f"{', '.join(f'{k}.*' if _section(t) else k for k, t in fields.items())}")
    tp = fields[name]
    if len(path) > 1:
        if (section := _section(tp)) is None:
            raise ConfigError(f"unknown key {key!r}: {name} is a value, not a section")
        if plain.get(name) is None:  # an optional section that is off: setting a field turns it on
            plain[name] = {}
        _assign(section, plain[name], path[1:], value, key, text)
        return
    if dataclasses.is_dataclass(tp):
        raise ConfigError(f"key {key!r} is a section: set its fields, e.g. {key}.{next(iter(field_types(tp)))}=...")
    if text and not _takes_text(tp):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"{key}: value {value!r} is not YAML: {getattr(err, 'problem', None) or err}") from None
    plain[name] = to_plain(_coerce(tp, value, key))


def _section(tp: Any) -> type | None:
    """The config dataclass of a section field: `tp` itself, or X of an optional section `X | None`."""
    if dataclasses.is_dataclass(tp):
        return tp
    options = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(options) == 1 and dataclasses.is_dataclass(options[0]):
        return options[0]
    return None


def _takes_text(tp: Any) -> bool:
    """A string field takes the override's text as it is (`name=2024` is the name "2024")."""
    return tp is str or (typing.get_origin(tp) in (typing.Union, types.UnionType) and str in typing.get_args(tp))


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """`value` as the field type `tp`, or a ConfigError naming `where`, the type and the value."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        return from_plain(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list ({_type_name(tp)}), got {value!r}")
        elements = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(elements) != len(value):
            raise ConfigError(f"{where}: expected {len(elements)} values ({_type_name(tp)}), got {value!r}")
        return tuple(_coerce(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(elements, value)))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)  # YAML reads 5e-5 (no dot) as a string
        except ValueError:
            pass
    elif isinstance(tp, type) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) and not typing.get_args(tp) else str(tp).replace("typing.", "")

"""Typed settings sections in the standard library: declared fields, checked once at load.

pydantic did this job for two years and cost every pycam process about 15 MB of memory (its
core and the schemas built at import), a tenth of what a Raspberry Pi Zero 2 W can spare. The
settings need only a small part of it: scalars, Literal choices, lists, tuples, mappings, optional
values, nested sections, a union chosen by a `type` key, secrets, bounds and patterns, and
per-field checks. That part is here, with the same spelling (`Field`, `field_validator`,
`model_validate`), the lax conversions an environment variable needs ("5" is 5, "true" is True),
and every error of a file gathered into one message.
"""
from __future__ import annotations

import copy
import inspect
import re
import types
import typing
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Literal, Union

REQUIRED: Any = ...
_TRUE = {"1", "true", "t", "yes", "y", "on"}       # pydantic's lax booleans
_FALSE = {"0", "false", "f", "no", "n", "off"}


class Invalid(ValueError):
    """One or more settings are wrong; `errors` holds (location, value, what is allowed) each."""

    def __init__(self, errors: list[tuple[tuple, Any, str]]):
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, _, msg in errors))
        self.errors = errors


class SecretStr:
    """A secret that never shows in a repr, a log line or an error message."""
    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')"

    def __eq__(self, other) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class FieldInfo:
    """A field's default, bounds and description (what `Field(...)` declares)."""

    def __init__(self, default=REQUIRED, *, default_factory=None, description: str | None = None,
                 ge=None, gt=None, le=None, lt=None, pattern: str | None = None,
                 min_length: int | None = None, max_length: int | None = None):
        self.default, self.default_factory, self.description = default, default_factory, description
        self.ge, self.gt, self.le, self.lt = ge, gt, le, lt
        self.pattern = re.compile(pattern) if pattern else None
        self.min_length, self.max_length = min_length, max_length
        self.annotation: Any = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and self.default_factory is None

    def get_default(self, call_default_factory: bool = True) -> Any:
        if self.default_factory is not None:
            return self.default_factory() if call_default_factory else None
        return copy.copy(self.default)


def Field(default=REQUIRED, **kwargs) -> Any:  # noqa: N802 (spelled as the declarations read it)
    return FieldInfo(default, **kwargs)


def field_validator(*names: str, mode: Literal["before", "after"] = "after"):
    """Mark a classmethod `(cls, value[, info])` that checks or reshapes the named fields."""
    def mark(method):
        getattr(method, "__func__", method).__pycam_validates__ = (names, mode)
        return method
    return mark


class _Info:
    """What a validator taking `info` sees: the fields of its section checked so far."""

    def __init__(self, data: dict):
        self.data = data


class Section:
    """A settings section: fields declared as annotated class attributes; unknown keys refused."""
    model_fields: dict[str, FieldInfo] = {}
    _validators: dict[str, list[tuple[str, Any]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        hints = typing.get_type_hints(cls, include_extras=True)
        fields: dict[str, FieldInfo] = dict(cls.model_fields)      # a parent section's, then its own
        for name in cls.__dict__.get("__annotations__", {}):
            if name.startswith("_"):
                continue
            declared = cls.__dict__.get(name, REQUIRED)
            info = declared if isinstance(declared, FieldInfo) else FieldInfo(declared)
            info.annotation = hints[name]
            fields[name] = info
            if name in cls.__dict__:
                delattr(cls, name)
        cls.model_fields = fields
        validators: dict[str, list] = {}
        for attr in dir(cls):
            method = getattr(cls, attr, None)
            names, mode = getattr(method, "__pycam_validates__", ((), ""))
            for name in names:
                validators.setdefault(name, []).append((mode, method))
        cls._validators = validators

    def __init__(self, **values):
        checked = _check_section(type(self), values, ())
        object.__setattr__(self, "__dict__", checked)

    @classmethod
    def model_validate(cls, value: Any):
        return _convert(value, cls, (), None)

    def model_dump(self) -> dict:
        return {k: _dump(v) for k, v in self.__dict__.items()}

    def model_copy(self, update: dict | None = None):
        """A shallow copy with `update` applied as given (unchecked, as pydantic's)."""
        new = object.__new__(type(self))
        object.__setattr__(new, "__dict__", {**self.__dict__, **(update or {})})
        return new

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.model_fields:
            raise AttributeError(f"{type(self).__name__} has no setting {name!r}")
        data = dict(self.__dict__)
        data[name] = _field(type(self), name, value, (name,), data)
        self.__dict__[name] = data[name]

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


def _dump(v: Any) -> Any:
    if isinstance(v, Section):
        return v.model_dump()
    if isinstance(v, list):
        return [_dump(x) for x in v]
    if isinstance(v, dict):
        return {k: _dump(x) for k, x in v.items()}
    return v


def _check_section(cls: type[Section], values: Any, loc: tuple) -> dict:
    if isinstance(values, Section):
        values = values.__dict__
    if not isinstance(values, dict):
        raise Invalid([(loc, values, "Input should be a mapping of settings")])
    errors: list = [(loc + (k,), v, "Extra inputs are not permitted") for k, v in values.items()
                    if k not in cls.model_fields]
    data: dict = {}
    for name, info in cls.model_fields.items():
        try:
            if name in values:
                data[name] = _field(cls, name, values[name], loc + (name,), data)
            elif info.required:
                errors.append((loc + (name,), None, "Field required"))
            else:
                data[name] = info.get_default()
        except Invalid as e:
            errors += e.errors
    if errors:
        raise Invalid(errors)
    return data


def _field(cls: type[Section], name: str, value: Any, loc: tuple, data: dict) -> Any:
    info = cls.model_fields[name]
    validators = cls._validators.get(name, [])

    def run(mode: str, v: Any, shown: Any) -> Any:
        for m, method in validators:
            if m == mode:
                try:
                    takes_info = len(inspect.signature(method).parameters) > 1
                    v = method(v, _Info(data)) if takes_info else method(v)
                except (ValueError, TypeError) as e:
                    raise Invalid([(loc, shown, f"Value error, {e}")]) from None
        return v

    given = run("before", value, value)      # a before-validator may hide secrets: show that
    return run("after", _convert(given, info.annotation, loc, info), given)


def _bounds(v: Any, info: FieldInfo | None, loc: tuple, raw: Any) -> Any:
    if info is None:
        return v
    for bound, ok, text in ((info.ge, lambda b: v >= b, "greater than or equal to"),
                            (info.gt, lambda b: v > b, "greater than"),
                            (info.le, lambda b: v <= b, "less than or equal to"),
                            (info.lt, lambda b: v < b, "less than")):
        if bound is not None and isinstance(v, (int, float)) and not ok(bound):
            raise Invalid([(loc, raw, f"Input should be {text} {bound}")])
    if isinstance(v, (str, list, dict)):
        if info.min_length is not None and len(v) < info.min_length:
            raise Invalid([(loc, raw, f"Value should have at least {info.min_length} item(s) or character(s)")])
        if info.max_length is not None and len(v) > info.max_length:
            raise Invalid([(loc, raw, f"Value should have at most {info.max_length} item(s) or character(s)")])
    if isinstance(v, str) and info.pattern is not None and not info.pattern.search(v):
        raise Invalid([(loc, raw, f"String should match pattern '{info.pattern.pattern}'")])
    return v


def _scalar(v: Any, kind: type, loc: tuple) -> Any:
    """The lax conversions of one scalar: what a YAML file or an environment variable can hold."""
    bad = Invalid([(loc, v, f"Input should be a valid {kind.__name__}")])
    if kind is bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, float) and v in (0.0, 1.0):
            v = int(v)
        text = str(v).strip().lower() if isinstance(v, (str, int)) else None
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise Invalid([(loc, v, "Input should be a valid boolean")])
    if isinstance(v, bool):
        raise bad
    if kind is int:
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, str) and re.fullmatch(r"\s*[-+]?\d+(\.0*)?\s*", v):
            return int(float(v)) if "." in v else int(v)
        raise Invalid([(loc, v, "Input should be a valid integer")])
    if kind is float:
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                pass
        raise Invalid([(loc, v, "Input should be a valid number")])
    if kind is str:
        if isinstance(v, str):
            return v
        if isinstance(v, (int, float)):      # `source: 0` in YAML means the device "0"
            return str(v)
        raise Invalid([(loc, v, "Input should be a valid string")])
    if kind is Path:
        if isinstance(v, (str, Path)):
            return Path(v)
        raise bad
    if kind is SecretStr:
        if isinstance(v, SecretStr):
            return v
        if isinstance(v, str):
            return SecretStr(v)
        raise Invalid([(loc, "<hidden>", "Input should be a valid string")])
    if kind is IPv4Address:
        try:
            return IPv4Address(v)
        except ValueError:
            raise Invalid([(loc, v, "Input is not a valid IPv4 address")]) from None
    raise TypeError(f"settings cannot hold a {kind!r}")


def _convert(v: Any, ann: Any, loc: tuple, info: FieldInfo | None) -> Any:
    """`v` as the annotation `ann` says, with `info`'s bounds; Invalid naming `loc` otherwise."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _convert(v, args[0], loc, info)
    if ann is Any:
        return v
    if isinstance(ann, type) and issubclass(ann, Section):
        return _bounds(_new(ann, _check_section(ann, v, loc)), info, loc, v)
    if origin is Literal:
        for choice in args:
            if v == choice and type(v) is type(choice):
                return v
        shown = ", ".join(repr(c) for c in args[:-1]) + (" or " if len(args) > 1 else "") + repr(args[-1])
        raise Invalid([(loc, v, f"Input should be {shown}")])
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if v is None and len(options) < len(args):
            return None
        if len(options) == 1:
            return _convert(v, options[0], loc, info)
        return _tagged(v, options, loc)
    if origin is list:
        if not isinstance(v, (list, tuple)):
            raise Invalid([(loc, v, "Input should be a valid list")])
        items, errors = [], []
        for i, item in enumerate(v):
            try:
                items.append(_convert(item, args[0], loc + (i,), None))
            except Invalid as e:
                errors += e.errors
        if errors:
            raise Invalid(errors)
        return _bounds(items, info, loc, v)
    if origin is tuple:
        if not isinstance(v, (list, tuple)) or len(v) != len(args):
            raise Invalid([(loc, v, f"Input should be a list of {len(args)} items")])
        return tuple(_convert(x, a, loc + (i,), None) for i, (x, a) in enumerate(zip(v, args)))
    if origin is dict:
        if not isinstance(v, dict):
            raise Invalid([(loc, v, "Input should be a valid dictionary")])
        return _bounds({_convert(k, args[0], loc, None): _convert(x, args[1], loc + (k,), None)
                        for k, x in v.items()}, info, loc, v)
    return _bounds(_scalar(v, ann, loc), info, loc, v)


def _tagged(v: Any, options: list, loc: tuple) -> Any:
    """A union of sections, chosen by the `type` key each one fixes with a Literal."""
    tags = {typing.get_args(o.model_fields["type"].annotation)[0]: o for o in options}
    if not isinstance(v, dict) or v.get("type") not in tags:
        shown = " or ".join(repr(t) for t in tags)
        raise Invalid([(loc + ("type",), v.get("type") if isinstance(v, dict) else v,
                        f"Input tag should be {shown}")])
    return _convert(v, tags[v["type"]], loc + (v["type"],), None)


def _new(cls: type[Section], data: dict) -> Section:
    obj = object.__new__(cls)
    object.__setattr__(obj, "__dict__", data)
    return obj

"""msgspec Structs for every published event, generated from the models in contracts.events.

A replay decodes millions of records and every live consumer decodes each record it reads,
so decoding is on the hot path of every service (ADR 0021). msgspec reads a record's JSON
straight into a typed, validated Struct in one pass; pydantic parses it into dicts first
and then validates them, several times slower.

The models stay the one statement of each event: the Structs are generated from them at
import, field by field, with the same constraints (extra fields forbidden, types, lengths,
ranges, patterns), and a model feature this module does not know is refused at import
rather than silently dropped. A Struct is never looser than its model, only stricter:
msgspec never coerces ("5" is no int for it, pydantic's lax mode takes it). So
`contracts.envelope.decode` trusts a Struct's yes and asks the model about a Struct's
no: what is accepted or refused, and why, is exactly what the models say
(tests/test_contracts.py proves it over every golden record and the awkward ones).
"""

from __future__ import annotations

import enum
import functools
import operator
import re
import types
import typing
import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal, Union

import annotated_types
import msgspec
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from contracts.events import Event
from contracts.registry import BY_TYPE

ToModel = Callable[[Any], Any]
"""Turns a value msgspec decoded into the value the model would hold."""

_IMMUTABLE_DEFAULTS = (type(None), str, int, bool)
_set_attribute = object.__setattr__  # the frozen model's own __setattr__ refuses

_PLAIN_TYPES: frozenset[Any] = frozenset((str, int, bool, uuid.UUID, date))


def _constraints(metadata: typing.Iterable[Any]) -> dict[str, Any]:
    """msgspec.Meta keywords for a pydantic field's constraints."""
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):  # Annotated[str, Field(...)]: its constraints
            found.update(_constraints(item.metadata))
        elif isinstance(item, annotated_types.Ge):
            found["ge"] = item.ge
        elif isinstance(item, annotated_types.MinLen):
            found["min_length"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            found["max_length"] = item.max_length
        elif type(item).__name__ == "Strict":
            continue  # msgspec never coerces: every field is strict
        elif type(item).__name__ == "_PydanticGeneralMetadata" and set(vars(item)) == {"pattern"}:
            found["pattern"] = _search_pattern(item.pattern)
        else:
            raise TypeError(f"no msgspec constraint for {item!r}")
    return found


def _search_pattern(pattern: str) -> str:
    """The pattern as Python's `re` must read it to match what pydantic-core's matches.

    Both search (unanchored), but a final `$` in Python also matches before a trailing
    newline, and in pydantic-core's engine only at the very end: `\\Z` is that end.
    """
    if not pattern.startswith("^") or not pattern.endswith("$") or pattern.endswith("\\$"):
        raise TypeError(f"pattern {pattern!r} is not anchored at both ends")
    re.compile(pattern)
    return pattern[:-1] + r"\Z"


def _with_constraints(struct_type: Any, constraints: dict[str, Any]) -> Any:
    """`struct_type` with the constraints; on an optional type, on its non-None part."""
    if not constraints:
        return struct_type
    if typing.get_origin(struct_type) in (Union, types.UnionType):
        return functools.reduce(
            operator.or_,
            (
                arg if arg is type(None) else _with_constraints(arg, constraints)
                for arg in typing.get_args(struct_type)
            ),
        )
    return Annotated[struct_type, msgspec.Meta(**constraints)]


def _translate(annotation: Any, *, dumped: bool = False) -> tuple[Any, ToModel | None]:
    """The msgspec type for a pydantic annotation, and how to turn its values into the
    model's (None where they are the same). `dumped`: a nested model's type is its
    DumpedStruct (EventStruct.dumped_type)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        inner, to_model = _translate(args[0], dumped=dumped)
        return _with_constraints(inner, _constraints(args[1:])), to_model
    if origin in (Union, types.UnionType):
        translated = [_translate(arg, dumped=dumped) for arg in args]
        converters = [to_model for _, to_model in translated if to_model is not None]
        if converters and (len(args) != 2 or type(None) not in args):
            raise TypeError(f"no msgspec type for {annotation!r}")
        union = functools.reduce(operator.or_, (struct_type for struct_type, _ in translated))
        if not converters:
            return union, None
        [to_model] = converters
        return union, lambda value: None if value is None else to_model(value)
    if origin is list:
        item_type, item_to_model = _translate(args[0], dumped=dumped)
        if item_to_model is None:
            return list[item_type], None  # type: ignore[valid-type]
        return list[item_type], lambda values: [item_to_model(v) for v in values]  # type: ignore[valid-type]
    if origin is dict:
        key_type, key_to_model = _translate(args[0], dumped=dumped)
        value_type, value_to_model = _translate(args[1], dumped=dumped)
        if key_to_model is not None or value_to_model is not None:
            raise TypeError(f"no msgspec type for {annotation!r}")
        return dict[key_type, value_type], None  # type: ignore[valid-type]
    if origin is Literal or annotation is Any or annotation is type(None):
        return annotation, None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        struct = struct_for(annotation)
        return (struct.dumped_type if dumped else struct.struct_type), struct.to_model
    if isinstance(annotation, type) and issubclass(annotation, enum.StrEnum):
        return annotation, None
    if annotation in _PLAIN_TYPES:
        return annotation, None
    raise TypeError(f"no msgspec type for {annotation!r}")


def _builder(
    model: type[BaseModel],
    defaults: tuple[tuple[str, Any], ...],
    converted: tuple[tuple[str, ToModel], ...],
) -> Callable[[Any], BaseModel]:
    """How to build `model` from its decoded Struct, as model_validate would build it.

    Not validated again: decoding the Struct made every check the model makes. Built as
    pydantic's model_construct builds a model, without its per-field lookups, which cost
    as much as validating did (EventStruct refuses the models this would not build
    exactly: aliases, default factories, mutable defaults, post-init, private state).
    """
    as_dict = msgspec.structs.asdict
    new = model.__new__
    unset = msgspec.UNSET

    def build(decoded: Any) -> BaseModel:
        values = as_dict(decoded)
        given = set(values)
        for name, default in defaults:
            if values[name] is unset:
                values[name] = default
                given.discard(name)
        for name, to_model in converted:
            if name in given:
                values[name] = to_model(values[name])
        built = new(model)
        _set_attribute(built, "__dict__", values)
        _set_attribute(built, "__pydantic_fields_set__", given)
        _set_attribute(built, "__pydantic_extra__", None)
        _set_attribute(built, "__pydantic_private__", None)
        return built

    return build


def _event_struct(
    model: type[BaseModel], fields: list[tuple[str, Any, Any]]
) -> type[msgspec.Struct]:
    """A Struct of `model`'s name: keyword fields, none beyond them, immutable."""
    return msgspec.defstruct(
        model.__name__,
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        frozen=True,
        module=__name__,
    )


class EventStruct:
    """A model's Struct, and how to build the model from a decoded Struct."""

    def __init__(self, model: type[BaseModel]) -> None:
        if model.model_config.get("extra") != "forbid":
            raise TypeError(f"{model.__name__} must forbid extra fields")
        self.model = model
        if model.__pydantic_post_init__ or model.__private_attributes__:
            raise TypeError(f"{model.__name__}: no msgspec path for post-init or private state")
        fields: list[tuple[str, Any, Any]] = []
        dumped_fields: list[tuple[str, Any, Any]] = []
        converted: list[tuple[str, ToModel]] = []
        defaults: list[tuple[str, Any]] = []
        for name, info in model.model_fields.items():
            if info.alias is not None or info.default_factory is not None:
                raise TypeError(f"{model.__name__}.{name}: no msgspec field for {info!r}")
            struct_type, to_model = _translate(info.annotation)
            struct_type = _with_constraints(struct_type, _constraints(info.metadata))
            dumped_type = _with_constraints(
                _translate(info.annotation, dumped=True)[0], _constraints(info.metadata)
            )
            if info.is_required():
                fields.append((name, struct_type, msgspec.NODEFAULT))
                dumped_fields.append((name, dumped_type, msgspec.NODEFAULT))
            else:  # UNSET when absent: the model counts only given fields as set
                fields.append((name, struct_type | msgspec.UnsetType, msgspec.UNSET))
                dumped_fields.append((name, dumped_type, info.default))
            if to_model is not None:
                converted.append((name, to_model))
            if not info.is_required():
                if not isinstance(info.default, _IMMUTABLE_DEFAULTS):
                    raise TypeError(f"{model.__name__}.{name}: a default must be immutable")
                defaults.append((name, info.default))
        self.struct_type = _event_struct(model, fields)
        self._decoder = msgspec.json.Decoder(self.struct_type)
        # The same fields and checks, with the model's defaults in place of UNSET: what
        # `model_dump(mode="json")` writes, as a Struct that encodes to the same JSON.
        self.dumped_type = _event_struct(model, dumped_fields)
        self.dumped_decoder = msgspec.json.Decoder(self.dumped_type)

        self.to_model: Callable[[Any], BaseModel] = _builder(
            model, tuple(defaults), tuple(converted)
        )

    def decode(self, data_json: bytes | msgspec.Raw) -> BaseModel | None:
        """The model of a JSON document the Struct accepts, or None where it refuses."""
        try:
            decoded = self._decoder.decode(data_json)
        except msgspec.DecodeError:  # ValidationError is one
            return None
        return self.to_model(decoded)


_STRUCTS: dict[type[BaseModel], EventStruct] = {}


def struct_for(model: type[BaseModel]) -> EventStruct:
    if model not in _STRUCTS:
        _STRUCTS[model] = EventStruct(model)
    return _STRUCTS[model]


EVENT_STRUCTS: dict[str, EventStruct] = {
    event_type: struct_for(cls) for event_type, cls in BY_TYPE.items()
}
"""The current version of each event type -> its Struct (older versions take the models'
path: they are rare and must be upcast as dicts)."""


def decode_dumped(event_type: str, data_json: bytes | msgspec.Raw) -> msgspec.Struct | None:
    """The data of a current-version event as its DumpedStruct, if the Struct accepts it:
    every field present (the model's default where the record leaves one out), so it
    encodes to the JSON `model_dump(mode="json")` writes, and it reads like the model
    (same attribute names and values). None when the type is not current or the Struct
    refuses (the model then decides). For readers that only hash and fold events, such
    as the audit's replay (ADR 25), which would build each model only to dump it again."""
    struct = EVENT_STRUCTS.get(event_type)
    if struct is None:
        return None
    try:
        decoded: msgspec.Struct = struct.dumped_decoder.decode(data_json)
    except msgspec.DecodeError:
        return None
    return decoded


def decode_event(event_type: str, data_json: bytes | msgspec.Raw) -> Event | None:
    """The current-version event of `event_type` in `data_json` if its Struct accepts it;
    None when the type is not current or the Struct refuses (the model then decides)."""
    struct = EVENT_STRUCTS.get(event_type)
    if struct is None:
        return None
    event = struct.decode(data_json)
    return typing.cast(Event | None, event)
